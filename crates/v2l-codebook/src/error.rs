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
    /// A safe reader (pickle, `.npy`, `.pth`) failed.
    #[error(transparent)]
    Read(#[from] v2l_assets::readers::ReadError),
}

/// Shorthand.
pub type Result<T> = std::result::Result<T, CodebookError>;
