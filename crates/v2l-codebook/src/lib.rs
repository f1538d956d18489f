//! # v2l-codebook — the codebooks of the V2L tokenizer
//!
//! The *local* codebook has one row per LLM token (row i = token id i, the
//! invariant the restoration tasks rely on); the *global* codebook has one
//! row per vocabulary entry kept after expansion and CLIP filtering, with its
//! string. This crate holds:
//!
//! - [`Codebook`] and its file format: `NAME.safetensors` (`embeddings`
//!   `[N, D]`, f16 when that is lossless or asked for, else f32) beside
//!   `NAME.json` (`rows`, `dim`, optional `strings`, optional `token_ids`,
//!   free-form `provenance`).
//! - [`official`]: import of the reference's released files —
//!   `local_codebook_embedding.pth`, `global_codebook_embedding.pth`
//!   (`torch.save` of one tensor, possibly f16) and `global_vocabulary.npy`
//!   (a pickled numpy object array of str) — read without executing pickle
//!   code.
//!
//! Construction (template-averaged CLIP text embeddings, LLM vocabulary
//! expansion, CLIP filtering) arrives with the rest of the codebook issue.

mod codebook;
mod error;
pub mod official;

pub use codebook::{Codebook, Precision};
pub use error::{CodebookError, Result};
