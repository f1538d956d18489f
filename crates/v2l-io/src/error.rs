//! The one error type shared by every reader in [`crate`].

use std::path::PathBuf;

/// Result type of the readers.
pub type Result<T> = std::result::Result<T, ReadError>;

/// Everything that can go wrong while reading a pickle, `.npy`, IDX or PyTorch archive.
///
/// Every message names the file (or archive entry) and what was wrong with it. `file` fields
/// hold a display name: a path, `archive.pth:prefix/data.pkl` for an entry inside an archive,
/// or a caller-supplied label for in-memory input.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// Opening or reading a file from disk failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file that could not be read.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },

    /// The input ended before a complete value could be read.
    #[error("{file}: truncated input at byte {offset}: {what}")]
    Truncated {
        /// File or entry being read.
        file: String,
        /// Byte offset where more input was needed.
        offset: u64,
        /// What was being read.
        what: String,
    },

    /// A pickle names a global (class or function) that is not on the allow-list.
    /// Nothing was imported or called: the reader never executes pickle code.
    #[error(
        "{file}: pickle global `{module}.{name}` (at byte {offset}) is not on the allow-list; \
         refusing to load it (nothing was executed)"
    )]
    DisallowedGlobal {
        /// File or entry being read.
        file: String,
        /// Module part of the global, e.g. `posix`.
        module: String,
        /// Name part of the global, e.g. `system`.
        name: String,
        /// Byte offset of the opcode that named it.
        offset: u64,
    },

    /// A pickle contains an opcode this reader does not know or does not support
    /// (e.g. the extension registry or out-of-band buffers).
    #[error("{file}: unsupported pickle opcode 0x{opcode:02x} at byte {offset}")]
    UnsupportedOpcode {
        /// File or entry being read.
        file: String,
        /// The opcode byte.
        opcode: u8,
        /// Byte offset of the opcode.
        offset: u64,
    },

    /// A pickle is structurally wrong: stack underflow, missing mark, unknown memo key,
    /// arguments of the wrong type for an allowed global, and the like.
    #[error("{file}: malformed pickle at byte {offset}: {msg}")]
    MalformedPickle {
        /// File or entry being read.
        file: String,
        /// Byte offset of the opcode being executed.
        offset: u64,
        /// What was wrong.
        msg: String,
    },

    /// A size, count or nesting depth exceeds what the input can hold or a safety limit.
    #[error("{file}: {what} exceeds the limit ({value} > {limit})")]
    LimitExceeded {
        /// File or entry being read.
        file: String,
        /// What was too large.
        what: String,
        /// The value found.
        value: u64,
        /// The limit it exceeds.
        limit: u64,
    },

    /// A `.npy` file is malformed (bad magic, header or data length).
    #[error("{file}: invalid .npy file: {msg}")]
    Npy {
        /// File being read.
        file: String,
        /// What was wrong.
        msg: String,
    },

    /// A safetensors file (or a sharded model's index) is malformed.
    #[error("{file}: invalid safetensors: {msg}")]
    Safetensors {
        /// File being read.
        file: String,
        /// What was wrong.
        msg: String,
    },

    /// An IDX file is malformed (bad magic, type code or data length).
    #[error("{file}: invalid IDX file: {msg}")]
    Idx {
        /// File being read.
        file: String,
        /// What was wrong.
        msg: String,
    },

    /// The zip container of a PyTorch archive could not be read.
    #[error("{file}: zip archive error: {source}")]
    Zip {
        /// Archive being read.
        file: String,
        /// The underlying zip error.
        #[source]
        source: zip::result::ZipError,
    },

    /// An entry expected inside an archive is missing.
    #[error("{file}: archive entry `{entry}` is missing")]
    MissingEntry {
        /// Archive being read.
        file: String,
        /// The entry that was looked for.
        entry: String,
    },

    /// The file uses the tar-based serialization format of the earliest PyTorch releases
    /// (the later legacy non-zip format of torch < 1.6 is read).
    #[error(
        "{file}: tar-based PyTorch serialization format (earliest torch releases) is not \
         supported; re-save it with a recent torch (`torch.save(torch.load(f), g)`)"
    )]
    LegacyTorchFormat {
        /// File being read.
        file: String,
    },

    /// A PyTorch archive is readable but its content is not what was expected
    /// (no `data.pkl`, a tensor view outside its storage, a missing top-level key, ...).
    #[error("{file}: invalid PyTorch archive: {msg}")]
    TorchArchive {
        /// Archive being read.
        file: String,
        /// What was wrong.
        msg: String,
    },

    /// No tensor of that name exists in the archive.
    #[error("{file}: no tensor named `{name}`")]
    TensorNotFound {
        /// Archive being read.
        file: String,
        /// The name asked for.
        name: String,
    },

    /// The data is valid but uses a feature these readers do not implement
    /// (structured dtypes, complex numbers, quantized tensors, ...).
    #[error("{file}: unsupported: {what}")]
    Unsupported {
        /// File or entry being read.
        file: String,
        /// The feature that is not supported.
        what: String,
    },

    /// A value cannot be converted to the requested element type
    /// (e.g. floats asked for as `i64`, numbers asked for as strings).
    #[error("{what}: cannot convert dtype `{dtype}` to {target}")]
    TypeMismatch {
        /// What was being converted.
        what: String,
        /// The element type found.
        dtype: String,
        /// The requested target type.
        target: &'static str,
    },
}

impl ReadError {
    /// Builds an [`ReadError::Io`] for `path`.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ReadError::Io {
            path: path.into(),
            source,
        }
    }
}
