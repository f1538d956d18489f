//! The crate's error type.

use std::path::PathBuf;

use crate::preprocess::PreprocessError;

/// A tensor whose shape differs from what the architecture needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShapeProblem {
    /// The key, in the file's own naming.
    pub key: String,
    /// The shape the configuration implies.
    pub expected: Vec<usize>,
    /// The shape in the file.
    pub found: Vec<usize>,
}

fn list_keys(keys: &[String]) -> String {
    const SHOWN: usize = 12;
    let mut s = keys
        .iter()
        .take(SHOWN)
        .map(|k| format!("{k:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    if keys.len() > SHOWN {
        s.push_str(&format!(", … ({} more)", keys.len() - SHOWN));
    }
    s
}

fn describe_weights(missing: &[String], unexpected: &[String], shapes: &[ShapeProblem]) -> String {
    let mut parts = Vec::new();
    if !missing.is_empty() {
        parts.push(format!("{} missing: {}", missing.len(), list_keys(missing)));
    }
    if !unexpected.is_empty() {
        parts.push(format!(
            "{} unexpected: {}",
            unexpected.len(),
            list_keys(unexpected)
        ));
    }
    if !shapes.is_empty() {
        let s = shapes
            .iter()
            .take(12)
            .map(|p| format!("{:?} is {:?}, expected {:?}", p.key, p.found, p.expected))
            .collect::<Vec<_>>()
            .join("; ");
        let more = if shapes.len() > 12 {
            format!("; … ({} more)", shapes.len() - 12)
        } else {
            String::new()
        };
        parts.push(format!("{} mis-shaped: {s}{more}", shapes.len()));
    }
    parts.join("; ")
}

/// Everything that can go wrong building, loading or running the V2L model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The weights do not fit the architecture: every missing, unexpected
    /// and mis-shaped tensor, in one error.
    #[error("{file}: the weights do not match the V2L architecture: {}", describe_weights(.missing, .unexpected, .shapes))]
    Weights {
        /// The file (or source description).
        file: String,
        /// Keys the architecture needs that the file lacks.
        missing: Vec<String>,
        /// Keys in the model's namespaces that the architecture does not use.
        unexpected: Vec<String>,
        /// Keys whose shape is wrong.
        shapes: Vec<ShapeProblem>,
    },
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
    Read(#[from] v2l_assets::readers::ReadError),
    /// The CLIP tower failed to load or run.
    #[error(transparent)]
    Clip(#[from] v2l_clip::ClipError),
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
