//! # v2l-model — the V2L tokenizer in burn
//!
//! Image → (global words, local LLM token ids) → image, as the reference
//! (`zh460045050/V2L-Tokenizer`, `VQModel_LLaMA`) computes it:
//!
//! - [`net::Encoder`]: taming-style CNN (ResnetBlocks, attention where the
//!   `resolution` counter places it, stride-2 downsampling) → `quant_conv`
//!   → per-position L2 normalisation → nearest row (squared L2) of the local
//!   codebook after the trainable projector → `h·w` local ids, which are LLM
//!   token ids (row i = token i).
//! - Global branch: the frozen CLIP image embedding, normalised → the `k`
//!   nearest rows of the (un-normalised) global codebook.
//! - [`net::Decoder`]: `post_quant_conv`, a middle block with
//!   cross-attention to the `k` global rows (its output replaces the
//!   features, no residual), upsampling levels, `conv_out` (no clamp).
//!
//! [`V2lModel`] is the burn module (trainable under an autodiff backend);
//! [`V2lTokenizer`] wraps it for inference on images with preprocessing,
//! prepared codebooks and the global words; [`import`] reads official
//! `.pth` checkpoints without executing pickle code; [`bundle`] writes and
//! reads the project's model folders.

pub mod blocks;
pub mod bundle;
pub mod config;
pub mod error;
pub mod import;
pub mod model;
pub mod net;
pub mod preprocess;
pub mod tokenizer;
pub mod tokens;

pub use config::{DdConfig, ImageSize, ModelConfig};
pub use error::{ModelError, Result};
pub use image;
pub use import::{infer_config, load_clip, OfficialCheckpoint};
pub use model::{CodeEntropy, ForwardOutput, GlobalEncoding, LocalEncoding, V2lModel};
pub use tokenizer::{OpenOptions, V2lTokenizer};
pub use tokens::{ImageTokens, TokensFile, VisualTokens};
pub use v2l_nn::{Precision, PrecisionError};
/// The largest number of global tokens per image the search supports.
pub use v2l_quant::MAX_TOP_K as MAX_GLOBAL_K;
