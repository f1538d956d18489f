//! The crate's error type.

use std::path::PathBuf;

use crate::preprocess::PreprocessError;

pub use v2l_nn::{LoadError, ShapeProblem};

/// Everything that can go wrong building, loading or running the V2L model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The weights do not fit the architecture: every missing, unexpected,
    /// mis-shaped or unreadable tensor, in one error.
    #[error("the weights do not match the V2L architecture: {0}")]
    Weights(#[from] Box<LoadError>),
    /// A configuration is inconsistent or cannot be inferred.
    #[error("invalid V2L configuration: {0}")]
    Config(String),
    /// An input tensor or token set is malformed.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The image size cannot be divided down to the latent grid.
    #[error(
        "image size {height}×{width} cannot pass the encoder: {downsamples} downsampling steps \
         need both sides divisible by {factor}"
    )]
    Indivisible {
        /// Input height.
        height: usize,
        /// Input width.
        width: usize,
        /// Number of stride-2 steps.
        downsamples: usize,
        /// 2^downsamples.
        factor: usize,
    },
    /// A local or global id is outside its codebook.
    #[error("{which} id {id} (image {image}, position {position}) is outside the codebook of {size} rows")]
    IdOutOfRange {
        /// `"local"` or `"global"`.
        which: &'static str,
        /// The offending id.
        id: i64,
        /// Image index in the batch.
        image: usize,
        /// Position in that image's id list.
        position: usize,
        /// Codebook rows.
        size: usize,
    },
    /// The model was built without a part the call needs (e.g. the CLIP
    /// tower for the global branch).
    #[error("the model has no {0}")]
    Missing(&'static str),
    /// Reading a weight file failed.
    #[error(transparent)]
    Read(#[from] v2l_io::ReadError),
    /// The CLIP tower failed to load or run.
    #[error(transparent)]
    Clip(#[from] v2l_clip::ClipError),
    /// Vision-language model failures (ConSE, CLIP through `v2l-vl`).
    #[error(transparent)]
    Vl(#[from] v2l_vl::VlError),
    /// A codeword search failed.
    #[error(transparent)]
    Quant(#[from] v2l_quant::QuantError),
    /// Image preprocessing failed.
    #[error(transparent)]
    Preprocess(#[from] PreprocessError),
    /// An image could not be read or decoded.
    #[error("{path}: cannot read image: {message}")]
    Image {
        /// The file.
        path: PathBuf,
        /// The decoder's message.
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
    /// A JSON file is malformed.
    #[error("{path}: {message}")]
    Json {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        message: String,
    },
    /// Writing a safetensors file failed.
    #[error("{path}: cannot write safetensors: {message}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The writer's message.
        message: String,
    },
    /// A backend returned data in an unexpected form.
    #[error("backend data: {0}")]
    Backend(String),
}

/// Shorthand.
pub type Result<T> = std::result::Result<T, ModelError>;
