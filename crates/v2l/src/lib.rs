//! # v2l — images as words of a frozen LLM's vocabulary
//!
//! The facade of v2l-rs, a Rust implementation of the V2L Tokenizer
//! ("Beyond Text: Frozen Large Language Models in Visual Signal
//! Comprehension", Zhu, Wei and Lu, CVPR 2024; reference code
//! `zh460045050/V2L-Tokenizer`).
//!
//! The pipeline: an image → CNN encoder → a 16×16 grid of 768-d features →
//! each snapped to the nearest row of the *local codebook* (one row per LLM
//! token) → 256 LLM token ids; a frozen CLIP image embedding → the k nearest
//! rows of the *global codebook* → k words. A decoder rebuilds the image from
//! the ids; a frozen LLM reads and writes them in prompts.
//!
//! Available now:
//! - [`assets`]: the pinned real weights and data sets from package
//!   registries, fetched and verified into a cache.
//! - [`io`]: the safe, burn-free readers (allow-listed pickle, `.npy`, IDX,
//!   `.pth`/TorchScript archives, safetensors, GGUF).
//! - [`nn`]: the weight-loading layer every model is built through (prefix
//!   scoping, declared layouts, every problem reported at once, seeded
//!   initialisation) and burn-nn layers with PyTorch's names.
//! - [`quant`]: nearest-codeword and top-k search (reference, fused CPU and
//!   burn-generic kernels) and the straight-through quantisation op.
//! - [`clip`]: OpenAI CLIP's vision and text towers in burn, loaded from
//!   OpenAI- or HF-layout weights (safetensors or `.pth`, f16 ok), the CLIP
//!   BPE tokenizer and CLIP preprocessing.
//! - [`llm`]: the frozen-LLM runtime: a LLaMA-family decoder in burn from
//!   GGUF, HF safetensors or Meta checkpoints, LLM tokenizers, generation and
//!   constrained decoding.
//! - [`metrics`]: PSNR (RGB / Y), SSIM (as `piq`), the Fréchet distance
//!   and codebook usage, matched against the reference tools.
//! - [`codebook`]: the codebook file format and import of the official
//!   codebook files (construction arrives with its issue).
//! - [`model`]: the V2L tokenizer itself — encoder, local and global
//!   quantisers, decoder with cross-attention — generic over the backend and
//!   trainable; official `.pth` import without executing pickle code, model
//!   bundles, preprocessing for both branches, tokens JSON.
//! - [`backend`]: the burn backends this build supports and `--device` parsing.
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
