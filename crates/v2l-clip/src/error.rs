//! The crate's error type.

use crate::preprocess::PreprocessError;
use crate::tokenizer::TokenizerError;

/// Everything that can go wrong loading or running CLIP.
#[derive(Debug, thiserror::Error)]
pub enum ClipError {
    /// A weight the tower needs is not in the file.
    #[error("{file}: tensor {key:?} is missing{hint}")]
    MissingTensor {
        /// The file (or source description).
        file: String,
        /// The key that was looked up (in the file's own naming).
        key: String,
        /// Extra context (e.g. the layout that was assumed).
        hint: String,
    },
    /// A weight has the wrong shape.
    #[error("{file}: tensor {key:?} has shape {found:?}, expected {expected:?}")]
    ShapeMismatch {
        /// The file (or source description).
        file: String,
        /// The key, in the file's own naming.
        key: String,
        /// The shape the configuration implies.
        expected: Vec<usize>,
        /// The shape in the file.
        found: Vec<usize>,
    },
    /// The weights match neither the OpenAI nor the HF layout.
    #[error("{file}: cannot recognise a CLIP layout: {reason}")]
    UnknownLayout {
        /// The file.
        file: String,
        /// What was looked for.
        reason: String,
    },
    /// A configuration is inconsistent or cannot be inferred.
    #[error("invalid CLIP configuration: {0}")]
    Config(String),
    /// A model input is malformed (shape, id range, length).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// A token id is outside the vocabulary.
    #[error("token id {id} in row {row} is outside the vocabulary of {vocab_size}")]
    TokenOutOfRange {
        /// The offending id.
        id: u32,
        /// Row of the batch.
        row: usize,
        /// The tower's vocabulary size.
        vocab_size: usize,
    },
    /// The tower asked for is not in the loaded model.
    #[error("the loaded CLIP model has no {0} tower")]
    MissingTower(&'static str),
    /// Reading a weight file (safetensors, `.pth`) failed.
    #[error(transparent)]
    Read(#[from] v2l_io::ReadError),
    /// A tower's weights do not fit its configuration: every missing,
    /// mis-shaped or unreadable tensor (in the file's own naming), at once.
    #[error("CLIP weights: {0}")]
    Weights(#[from] Box<v2l_nn::LoadError>),
    /// A file or folder could not be read, or a JSON file parsed.
    #[error(transparent)]
    File(#[from] v2l_io::FileError),
    /// Tokenisation failed.
    #[error(transparent)]
    Tokenizer(#[from] TokenizerError),
    /// Image preprocessing failed.
    #[error(transparent)]
    Preprocess(#[from] PreprocessError),
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, ClipError>;
