//! The error type of the GGUF reader.

use super::GgmlType;

/// Everything that can go wrong reading a GGUF file. Messages name the
/// metadata key or tensor concerned and what was wrong with it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GgufError {
    /// An I/O operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done (`"opening /path/x.gguf"`, …).
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The file does not start with the bytes `GGUF`.
    #[error("not a GGUF file: starts with bytes {found:02x?}, expected \"GGUF\" (47 47 55 46)")]
    BadMagic {
        /// The first four bytes found.
        found: [u8; 4],
    },
    /// The file is a big-endian GGUF file; only little-endian files are read.
    #[error(
        "GGUF file is big-endian (its version field reads {version} byte-swapped); \
         only little-endian GGUF files are supported"
    )]
    BigEndian {
        /// The version once byte-swapped.
        version: u32,
    },
    /// The format version is not 2 or 3.
    #[error("unsupported GGUF version {version}; supported versions: 2, 3")]
    UnsupportedVersion {
        /// The version field as read (little-endian).
        version: u32,
    },
    /// The file ends before a structure that must be present.
    #[error(
        "GGUF file is truncated: {context} needs {needed} bytes at offset {offset}, \
         but the file is {file_len} bytes long"
    )]
    Truncated {
        /// What was being read.
        context: String,
        /// Where it starts.
        offset: u64,
        /// How many bytes it needs.
        needed: u64,
        /// Length of the file.
        file_len: u64,
    },
    /// A metadata value or array element has an unknown type id.
    #[error("{context}: unknown GGUF value type id {type_id}")]
    UnknownValueType {
        /// The key or array concerned.
        context: String,
        /// The id read.
        type_id: u32,
    },
    /// A string is not valid UTF-8.
    #[error("{context}: string is not valid UTF-8 ({source})")]
    InvalidUtf8 {
        /// The key, array element or tensor name concerned.
        context: String,
        /// Where decoding failed.
        #[source]
        source: std::string::FromUtf8Error,
    },
    /// Two metadata entries share a key.
    #[error("metadata key {key:?} appears more than once")]
    DuplicateKey {
        /// The repeated key.
        key: String,
    },
    /// Two tensor infos share a name.
    #[error("tensor name {tensor:?} appears more than once")]
    DuplicateTensor {
        /// The repeated name.
        tensor: String,
    },
    /// A tensor has a type id ggml never assigned.
    #[error("tensor {tensor:?} has unknown ggml type id {type_id}")]
    UnknownTensorType {
        /// The tensor.
        tensor: String,
        /// The id read.
        type_id: u32,
    },
    /// A structural inconsistency: bad counts, sizes, offsets, alignment….
    #[error("invalid GGUF file: {context}: {reason}")]
    Invalid {
        /// The header field, key or tensor concerned.
        context: String,
        /// What is wrong.
        reason: String,
    },
    /// A metadata key that was asked for is absent.
    #[error("metadata key {key:?} is missing")]
    MissingKey {
        /// The key.
        key: String,
    },
    /// A metadata value has a different type than the one asked for.
    #[error("metadata key {key:?} has type {found}, expected {expected}")]
    WrongType {
        /// The key.
        key: String,
        /// The type (or types) the getter accepts.
        expected: &'static str,
        /// The type found.
        found: String,
    },
    /// An integer metadata value does not fit in the type asked for.
    #[error("metadata key {key:?}: value {value} does not fit in {target}")]
    OutOfRange {
        /// The key.
        key: String,
        /// The value found.
        value: String,
        /// The type asked for.
        target: &'static str,
    },
    /// No tensor has the name asked for.
    #[error("no tensor named {tensor:?} in the GGUF file")]
    TensorNotFound {
        /// The name asked for.
        tensor: String,
    },
    /// The tensor's type cannot be dequantised by this crate.
    #[error(
        "{} has type {ggml_type}, which is not supported; supported: {}",
        describe_tensor(tensor.as_deref()),
        supported_list()
    )]
    UnsupportedType {
        /// The tensor, when the data came from a file.
        tensor: Option<String>,
        /// Its type.
        ggml_type: GgmlType,
    },
    /// A buffer handed to [`crate::gguf::dequantize`] has the wrong length.
    #[error(
        "dequantising {ggml_type}: {bytes} bytes cannot hold exactly {elements} elements \
         ({reason})"
    )]
    SizeMismatch {
        /// The element type.
        ggml_type: GgmlType,
        /// Input length in bytes.
        bytes: usize,
        /// Output length in elements.
        elements: usize,
        /// Why the lengths do not match.
        reason: String,
    },
}

fn describe_tensor(tensor: Option<&str>) -> String {
    match tensor {
        Some(name) => format!("tensor {name}"),
        None => "the buffer".to_string(),
    }
}

fn supported_list() -> String {
    let names: Vec<&str> = GgmlType::DEQUANTIZABLE.iter().map(|t| t.name()).collect();
    names.join(", ")
}
