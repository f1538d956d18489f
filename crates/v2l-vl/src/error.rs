//! Errors of the vision-language models.

use thiserror::Error;

/// What went wrong building or running a vision-language model.
#[derive(Debug, Error)]
pub enum VlError {
    /// Weights that do not fit the architecture (every problem listed).
    #[error("{0}")]
    Load(Box<v2l_nn::LoadError>),
    /// Weight values that make a layer undefined.
    #[error("invalid weights: {0}")]
    InvalidWeights(String),
    /// A configuration that does not hold together.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// A tokenizer file that cannot be read, or text it cannot encode.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// Bad input (shapes, empty lists).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// A file that cannot be read.
    #[error(transparent)]
    Read(#[from] v2l_io::ReadError),
    /// A file that cannot be read (JSON).
    #[error(transparent)]
    File(#[from] v2l_io::FileError),
    /// CLIP failures.
    #[error(transparent)]
    Clip(#[from] v2l_clip::ClipError),
    /// A missing asset.
    #[error("{0}")]
    Asset(String),
}

/// Results of this crate.
pub type Result<T, E = VlError> = std::result::Result<T, E>;
