//! The crate's error type.

use std::path::PathBuf;

/// What can go wrong reading, writing or building a codebook.
#[derive(Debug, thiserror::Error)]
pub enum CodebookError {
    /// Values that do not fill `[rows, dim]`, or a list of the wrong length.
    #[error("{what}: {found} does not match {expected}")]
    Shape {
        /// Which input.
        what: String,
        /// What was found.
        found: String,
        /// What was needed.
        expected: String,
    },
    /// A NaN or infinity in the embeddings.
    #[error("non-finite value {value} in row {row}, column {col}")]
    NonFinite {
        /// Row.
        row: usize,
        /// Column.
        col: usize,
        /// The value.
        value: f32,
    },
    /// A file is not what it should be.
    #[error("{path}: {message}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        message: String,
    },
    /// An I/O error on a named file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A bad argument (empty input, zero batch size, malformed template…).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// Entries whose prompts do not fit CLIP's text context.
    #[error(
        "{count} entr{plural} too long for CLIP's {context}-token context, first: entry {index} \
         {entry:?} needs {tokens} tokens in template {template:?} (ask for truncation to cut them)",
        plural = if *count == 1 { "y is" } else { "ies are" }
    )]
    EntryTooLong {
        /// How many entries are too long.
        count: usize,
        /// Index of the first one.
        index: usize,
        /// Its text.
        entry: String,
        /// The template that overflows.
        template: String,
        /// Tokens it needs (start and end included).
        tokens: usize,
        /// The text tower's context.
        context: usize,
    },
    /// A work folder holds a different job.
    #[error(
        "work folder {dir} belongs to a different job ({what} differs); use another folder or \
         delete it to start over"
    )]
    JobMismatch {
        /// The folder.
        dir: PathBuf,
        /// Which parameter differs.
        what: String,
    },
    /// An image that cannot be read.
    #[error("image {path}: {message}")]
    Image {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A safe reader (pickle, `.npy`, `.pth`) failed.
    #[error(transparent)]
    Read(#[from] v2l_io::ReadError),
    /// A dataset asset could not be loaded.
    #[error(transparent)]
    Asset(#[from] v2l_assets::AssetError),
    /// The LLM failed (context overflow, bad id…).
    #[error(transparent)]
    Llm(#[from] v2l_llm::LlmError),
    /// The LLM tokenizer failed.
    #[error(transparent)]
    LlmTokenizer(#[from] v2l_llm::tokenizer::TokenizerError),
    /// CLIP failed.
    #[error(transparent)]
    Clip(#[from] v2l_clip::ClipError),
    /// The CLIP tokenizer failed.
    #[error(transparent)]
    ClipTokenizer(#[from] v2l_clip::tokenizer::TokenizerError),
    /// The nearest-neighbour search failed.
    #[error(transparent)]
    Quant(#[from] v2l_quant::QuantError),
}

/// Shorthand.
pub type Result<T> = std::result::Result<T, CodebookError>;
