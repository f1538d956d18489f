//! The error type of `v2l-metrics`.

/// What was wrong with a metric's input.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MetricsError {
    /// Two images (or statistics) that must match in shape do not.
    #[error("shape mismatch: {what}: {left:?} vs {right:?}")]
    ShapeMismatch {
        /// What was compared.
        what: &'static str,
        /// First shape.
        left: Vec<usize>,
        /// Second shape.
        right: Vec<usize>,
    },
    /// A buffer's length does not match its declared shape.
    #[error("{what}: {len} values do not fill shape {shape:?}")]
    BadLength {
        /// Which input.
        what: &'static str,
        /// Values given.
        len: usize,
        /// Declared shape.
        shape: Vec<usize>,
    },
    /// A NaN or infinity in the input.
    #[error("non-finite value {value} in {what} at index {index}")]
    NonFinite {
        /// Which input.
        what: &'static str,
        /// Flat index of the value.
        index: usize,
        /// The value.
        value: f64,
    },
    /// A pixel outside the metric's data range [0, 1].
    #[error("{what}: value {value} at index {index} is outside [0, 1]")]
    OutOfRange {
        /// Which input.
        what: &'static str,
        /// Flat index of the value.
        index: usize,
        /// The value.
        value: f64,
    },
    /// An image file could not be read or decoded.
    #[error("cannot read image {path}: {message}")]
    Io {
        /// The file.
        path: String,
        /// What the decoder said.
        message: String,
    },
    /// The metric is undefined for this input (too small, too few samples, …).
    #[error("{0}")]
    Undefined(String),
}

/// Result alias for this crate.
pub type Result<T> = std::result::Result<T, MetricsError>;
