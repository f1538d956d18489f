//! The one error type of `v2l-quant`.

/// What went wrong in a codeword search.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum QuantError {
    /// The codebook has no rows, or its rows have zero width.
    #[error("empty codebook: {rows} rows of dimension {dim}")]
    EmptyCodebook {
        /// Number of rows given.
        rows: usize,
        /// Row width given.
        dim: usize,
    },
    /// A flat buffer's length is not a multiple of the declared row width.
    #[error("{what}: buffer of {len} values is not a whole number of rows of width {dim}")]
    RaggedBuffer {
        /// Which operand (`"queries"` or `"codebook"`).
        what: &'static str,
        /// Buffer length.
        len: usize,
        /// Declared row width.
        dim: usize,
    },
    /// Queries and codebook rows have different widths.
    #[error("dimension mismatch: queries have dimension {queries}, codebook rows {codebook}")]
    DimensionMismatch {
        /// Width of the query rows.
        queries: usize,
        /// Width of the codebook rows.
        codebook: usize,
    },
    /// A NaN or infinity in the input.
    #[error("non-finite value {value} in {what} at row {row}, column {col}")]
    NonFinite {
        /// Which operand (`"queries"` or `"codebook"`).
        what: &'static str,
        /// Row of the offending value.
        row: usize,
        /// Column of the offending value.
        col: usize,
        /// The value itself.
        value: f32,
    },
    /// `k` is zero, larger than the codebook, or above [`crate::MAX_TOP_K`].
    #[error("invalid k = {k}: must be in 1..={max} (codebook has {rows} rows, limit {limit})", max = (*rows).min(*limit))]
    InvalidK {
        /// Requested k.
        k: usize,
        /// Codebook rows.
        rows: usize,
        /// The crate's limit on k.
        limit: usize,
    },
    /// An index given to a gather is outside the codebook.
    #[error("index {index} at position {position} is out of range for a codebook of {rows} rows")]
    IndexOutOfRange {
        /// The offending index.
        index: i64,
        /// Its position in the index list.
        position: usize,
        /// Codebook rows.
        rows: usize,
    },
    /// A search path name that does not exist (see [`crate::SearchPath::name`]).
    #[error("unknown search path {name:?} (known: portable, avx2, avx512, avx512-bf16)")]
    UnknownPath {
        /// The name given.
        name: String,
    },
    /// A search path this CPU cannot run.
    #[error("search path {path} needs instructions this CPU lacks (it has: {cpu})")]
    PathUnavailable {
        /// The path asked for.
        path: &'static str,
        /// The CPU's relevant flags ([`crate::cpu_features`]).
        cpu: String,
    },
    /// A tensor could not be read back from its backend.
    #[error("could not read tensor data from the backend: {0}")]
    Backend(String),
}

/// Result alias for this crate.
pub type Result<T> = std::result::Result<T, QuantError>;
