//! CLIP in burn: the vision and text towers of OpenAI CLIP, loadable from
//! OpenAI-layout and HF-layout weights (safetensors or `.pth`, f16/bf16/f32),
//! with configuration inferred from the weights as OpenAI's `build_model`
//! does.
//!
//! This crate is the one place CLIP preprocessing and tokenisation live in
//! v2l-rs: V2L's global branch embeds images with the vision tower, and the
//! codebooks are built from text-tower embeddings of an LLM's vocabulary.
//!
//! ```no_run
//! use v2l_clip::{Clip, ClipConfig};
//! use burn::backend::NdArray;
//! # fn main() -> v2l_clip::Result<()> {
//! let device = Default::default();
//! // A V2L checkpoint: the vision tower under `global_encoder.`, in f16.
//! let clip = Clip::<NdArray>::load("checkpoint.pth", &device)?;
//! println!("{:?}", clip.config().vision);
//! // Random ViT-B/32-sized weights:
//! let random = Clip::<NdArray>::random(ClipConfig::vit_b_32(), 0, &device)?;
//! # let _ = random; Ok(()) }
//! ```

mod clip;
pub mod config;
mod error;
pub mod model;
pub mod preprocess;
mod text_clean;
pub mod tokenizer;
pub mod weights;

pub use clip::{normalize, Clip, LoadOptions};
pub use config::{Activation, ClipConfig, TextConfig, TextPooling, VisionConfig};
pub use error::{ClipError, Result};
pub use model::{OutputOptions, TextOutput, TextTransformer, VisionOutput, VisionTransformer};
pub use preprocess::{ClipPreprocess, OPENAI_CLIP_MEAN, OPENAI_CLIP_STD};
pub use tokenizer::{ClipTokenizer, Truncation};
pub use v2l_nn::{Precision, PrecisionError};
pub use weights::{Layout, TensorSource};
