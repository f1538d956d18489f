//! The crate's error type.

use std::path::PathBuf;

/// What can go wrong setting up or running training.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The configuration is invalid or has unknown keys.
    #[error("training configuration: {0}")]
    Config(String),
    /// A run directory holds a run with other settings.
    #[error(
        "{}: the run there was made with other settings ({}); only max_steps may change on resume — use another run directory",
        dir.display(),
        keys.join(", ")
    )]
    Refused {
        /// The run directory.
        dir: PathBuf,
        /// The keys whose values differ.
        keys: Vec<String>,
    },
    /// A file of the run directory is malformed.
    #[error("{}: line {line}: {message}", path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// The training images cannot be used.
    #[error("training data: {0}")]
    Data(String),
    /// Building or running a network failed.
    #[error("model: {0}")]
    Model(String),
    /// A loss became NaN or infinite; the run stopped and the last good
    /// checkpoint is kept.
    #[error("iteration {step}: {term} is not finite; stopped (the last good checkpoint is kept)")]
    NonFinite {
        /// The iteration (from 0).
        step: u64,
        /// The first non-finite term.
        term: &'static str,
    },
    /// The networks produced a NaN or infinity (diverged); the run loop
    /// turns this into [`TrainError::NonFinite`].
    #[error("non-finite values: {0}")]
    NonFiniteValues(String),
    /// A checkpoint cannot be written or read.
    #[error("checkpoint {}: {message}", path.display())]
    Checkpoint {
        /// The checkpoint folder or file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Data-parallel training: a peer failed, or burn's collective engine
    /// reported an error.
    #[error("data-parallel training: {0}")]
    Parallel(String),
    /// A broken invariant of the trainer (a bug).
    #[error("internal error: {0}")]
    Internal(&'static str),
    /// An I/O error on a named path.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// Result alias of the trainer.
pub type Result<T> = std::result::Result<T, TrainError>;
