//! Plain files next to the tensor formats: JSON configuration files and
//! folders, with errors that name the path.

use std::path::{Path, PathBuf};

/// A file or folder that could not be read, or a JSON file that could not
/// be parsed.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// An I/O error on a named file or folder.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A JSON file could not be parsed.
    #[error("{}: {message}", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
}

impl FileError {
    /// An I/O error of `kind` on `path` with a message of ours.
    pub fn io(path: &Path, kind: std::io::ErrorKind, message: &str) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source: std::io::Error::new(kind, message.to_string()),
        }
    }
}

/// Read and parse a JSON file (an HF `config.json`, a `params.json`, …).
///
/// # Errors
/// [`FileError::Io`] when it cannot be read, [`FileError::Json`] when it is
/// not JSON.
pub fn read_json(path: &Path) -> Result<serde_json::Value, FileError> {
    let text = std::fs::read_to_string(path).map_err(|source| FileError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|e| FileError::Json {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}
