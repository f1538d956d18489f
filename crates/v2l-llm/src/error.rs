//! The crate's error type for the decoder and generation.

use crate::gguf::GgufError;
use crate::tokenizer::TokenizerError;

/// Everything that can go wrong loading or running an LLM.
#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    /// A weight the model needs is not in the file(s).
    #[error("{file}: tensor {key:?} is missing")]
    MissingTensor {
        /// The file or folder.
        file: String,
        /// The key in the file's own naming.
        key: String,
    },
    /// A weight has the wrong shape.
    #[error("{file}: tensor {key:?} has shape {found:?}, expected {expected:?}")]
    ShapeMismatch {
        /// The file or folder.
        file: String,
        /// The key in the file's own naming.
        key: String,
        /// The shape the configuration implies.
        expected: Vec<usize>,
        /// The shape in the file.
        found: Vec<usize>,
    },
    /// The configuration is inconsistent or unsupported.
    #[error("invalid LLM configuration: {0}")]
    Config(String),
    /// A token id is outside the vocabulary.
    #[error("token id {id} (row {row}) is outside the vocabulary of {vocab_size}")]
    TokenOutOfRange {
        /// The id.
        id: u32,
        /// Batch row.
        row: usize,
        /// Vocabulary size.
        vocab_size: usize,
    },
    /// The sequence would exceed the model's context.
    #[error("sequence of {needed} positions exceeds the context of {context}")]
    ContextOverflow {
        /// Positions needed (cached + new).
        needed: usize,
        /// The model's maximum.
        context: usize,
    },
    /// A malformed call (empty batch, ragged rows, bad option).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// Reading a safetensors / `.pth` file failed.
    #[error(transparent)]
    Read(#[from] v2l_io::ReadError),
    /// The weights do not fit the configuration: every missing, mis-shaped
    /// or unreadable tensor (in the file's own naming), at once.
    #[error("LLM weights: {0}")]
    Weights(#[from] Box<v2l_nn::LoadError>),
    /// Reading a GGUF file failed.
    #[error(transparent)]
    Gguf(#[from] GgufError),
    /// Tokenisation failed.
    #[error(transparent)]
    Tokenizer(#[from] TokenizerError),
    /// A file or folder could not be read, or a JSON file parsed.
    #[error(transparent)]
    File(#[from] v2l_io::FileError),
}

/// Result alias of the decoder and generation.
pub type Result<T> = std::result::Result<T, LlmError>;
