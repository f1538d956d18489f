//! # v2l — images as words of a frozen LLM's vocabulary
//!
//! The facade of v2l-rs, a Rust implementation of the V2L Tokenizer
//! ("Beyond Text: Frozen Large Language Models in Visual Signal
//! Comprehension", Zhu, Wei and Lu, CVPR 2024; reference code
//! `zh460045050/V2L-Tokenizer`).
//!
//! The pipeline: an image → CNN encoder → a grid of features → each snapped
//! to the nearest row of the *local codebook* (one row per LLM token) → LLM
//! token ids; a frozen vision-language image embedding → the k nearest rows
//! of the *global codebook* → k words. A decoder rebuilds the image from the
//! ids; a frozen LLM reads and writes them in prompts.
//!
//! ```no_run
//! use v2l::prelude::*;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let device = Default::default();
//! // The embedded default model (made into a bundle folder on first use).
//! let bundle = v2l::default_model::bundle::<CpuFlex>(&device, &mut |_| {})?;
//! let tokenizer = V2lTokenizer::<CpuFlex>::open(&bundle, &OpenOptions::default(), &device)?;
//! let tokens: VisualTokens = tokenizer.encode_files(&["photo.png"])?;
//! println!("global words {:?}", tokens.global_words);
//! println!("local ids (LLM token ids) {:?}", &tokens.local_ids[0][..8]);
//! let images = tokenizer.decode(&tokens)?; // [B, 3, H, W] in [-1, 1]
//! # let _ = images;
//! # Ok(()) }
//! ```
//!
//! First names, at the top level and in [`prelude`]:
//! - the tokenizer: [`V2lTokenizer`], [`OpenOptions`], [`VisualTokens`];
//! - the frozen LLM: [`Llama`], [`LlmTokenizer`], [`GenerateOptions`];
//! - a vision-language model: [`Vl`] and its [`VisionLanguage`] interface;
//! - codebooks: [`Codebook`];
//! - metrics: [`psnr`], [`ssim`], [`Lpips`];
//! - backends and devices: [`DeviceKind`], [`Precision`], [`run_on`] with
//!   [`OnDevice`], the backend aliases [`Cpu`], [`CpuFlex`] (and `Cuda`,
//!   `Wgpu` with their features).
//!
//! Every crate of the workspace is re-exported whole under a short name:
//! - [`assets`]: the pinned real weights and data sets from package
//!   registries, fetched and verified into a cache; labelled data sets.
//! - [`io`]: the safe, burn-free readers (allow-listed pickle, `.npy`, IDX,
//!   `.pth`/TorchScript archives, safetensors, GGUF) and atomic writes.
//! - [`nn`]: the weight-loading layer every model is built through and
//!   burn-nn layers with PyTorch's names; the f16 [`Precision`] machinery.
//! - [`quant`]: nearest-codeword and top-k search (reference, fused CPU and
//!   burn-generic kernels) and the straight-through quantisation op.
//! - [`clip`]: OpenAI CLIP's vision and text towers, the CLIP BPE tokenizer
//!   and CLIP preprocessing.
//! - [`vl`]: vision-language models behind one interface (CLIP; ConSE from
//!   registry assets).
//! - [`llm`]: the frozen-LLM runtime: a LLaMA-family decoder from GGUF, HF
//!   safetensors or Meta checkpoints, LLM tokenizers, generation and
//!   constrained decoding.
//! - [`codebook`]: building the local codebook (template embeddings of the
//!   LLM vocabulary), expanding the vocabulary with the LLM, filtering the
//!   global codebook by image votes, resumable jobs, the official files.
//! - [`model`]: the V2L tokenizer itself — encoder, quantisers, decoder with
//!   cross-attention — official `.pth` import, bundles, preprocessing,
//!   tokens JSON.
//! - [`train`]: training a tokenizer with the reference's objective.
//! - [`prompt`]: the frozen-LLM tasks (few-shot classification, captioning,
//!   VQA, restoration) and their evaluation harness.
//! - [`metrics`]: PSNR, SSIM, LPIPS, FID, CLIP score, captioning and VQA
//!   scores, codebook usage, matched against the reference tools.
//! - [`backend`]: backends, the device syntax and dispatch; [`default_model`]:
//!   the embedded default model.
//!
//! Cargo features: `cuda` and `wgpu` (off by default) add those backends;
//! the default build is CPU-only.

pub use burn;
pub use v2l_assets as assets;
pub use v2l_clip as clip;
pub use v2l_codebook as codebook;
pub use v2l_io as io;
pub use v2l_llm as llm;
pub use v2l_metrics as metrics;
pub use v2l_model as model;
pub use v2l_nn as nn;
pub use v2l_prompt as prompt;
pub use v2l_quant as quant;
pub use v2l_train as train;
pub use v2l_vl as vl;

pub mod backend;
pub mod default_model;

#[cfg(feature = "cuda")]
pub use backend::Cuda;
#[cfg(feature = "wgpu")]
pub use backend::Wgpu;
pub use backend::{run_on, Cpu, CpuBackend, CpuFlex, DeviceKind, OnDevice, Precision};
pub use v2l_codebook::Codebook;
pub use v2l_llm::tokenizer::LlmTokenizer;
pub use v2l_llm::{GenerateOptions, Llama, LlamaWeights};
pub use v2l_metrics::lpips::Lpips;
pub use v2l_metrics::psnr::psnr;
pub use v2l_metrics::ssim::ssim;
pub use v2l_model::{OpenOptions, V2lModel, V2lTokenizer, VisualTokens};
pub use v2l_vl::{VisionLanguage, Vl};

/// The names most programs start from: `use v2l::prelude::*;`.
pub mod prelude {
    pub use crate::backend::{run_on, Cpu, CpuBackend, CpuFlex, DeviceKind, OnDevice, Precision};
    pub use crate::burn::tensor::backend::Backend;
    pub use crate::burn::tensor::Tensor;
    pub use crate::{
        Codebook, GenerateOptions, Llama, LlamaWeights, LlmTokenizer, OpenOptions, V2lTokenizer,
        VisionLanguage, VisualTokens, Vl,
    };
}
