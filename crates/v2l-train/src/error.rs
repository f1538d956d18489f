//! The crate's error type.

/// What can go wrong setting up or running training.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The configuration is invalid or has unknown keys.
    #[error("training configuration: {0}")]
    Config(String),
}

/// Result alias of the trainer.
pub type Result<T> = std::result::Result<T, TrainError>;
