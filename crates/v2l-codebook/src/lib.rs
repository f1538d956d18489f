//! # v2l-codebook — the codebooks of the V2L tokenizer
//!
//! The *local* codebook has one row per LLM token (row i = token id i, the
//! invariant the restoration tasks rely on); the *global* codebook has one
//! row per vocabulary entry kept after expansion and CLIP filtering, with its
//! string. This crate builds, stores and imports both:
//!
//! - [`vocab`]: the text of each vocabulary entry, as the reference's
//!   single-id decode spells it (SentencePiece and byte-level BPE rules).
//! - [`embed`]: [`TemplateEmbedder`] — CLIP text embeddings averaged over the
//!   80 ImageNet [`templates`], each normalised, the average not
//!   renormalised (a named option renormalises); chunked, resumable, with
//!   progress, streaming to disk.
//! - [`expand`]: [`Expander`] — bigrams and trigrams by one greedy LLM token
//!   each after `a photo of {entry}`, in the official glued spelling
//!   ([`ExpansionMode::Faithful`]) or with word boundaries kept
//!   ([`ExpansionMode::Corrected`]); batched; resumable.
//! - [`filter`]: CLIP image top-5 voting over an image set (a folder,
//!   Fashion-MNIST or MNIST) and selection by threshold or top-N.
//! - [`Codebook`] and its file format: `NAME.safetensors` (`embeddings`
//!   `[N, D]`, f16 when that is lossless or asked for, else f32) beside
//!   `NAME.json` (`rows`, `dim`, optional `strings`, `token_ids`, `votes`,
//!   free-form `provenance`).
//! - [`official`]: import of the reference's released files —
//!   `local_codebook_embedding.pth`, `global_codebook_embedding.pth`
//!   (`torch.save` of one tensor, possibly f16) and `global_vocabulary.npy`
//!   (a pickled numpy object array of str) — read without executing pickle
//!   code.
//! - [`job`]: the work folders that make long jobs resumable.
//!
//! The whole pipeline is described in `docs/codebook.md`.

mod codebook;
pub mod embed;
mod error;
pub mod expand;
pub mod filter;
pub mod job;
pub mod official;
pub mod templates;
pub mod vocab;

pub use codebook::{Codebook, Precision};
pub use embed::{EmbeddingChunks, TemplateEmbedder};
pub use error::{CodebookError, Result};
pub use expand::{candidates, Expanded, Expander, ExpansionMode, LlamaNext, NextToken};
pub use filter::{filter_codebook, ImageFiles, ImageSet, Selection, VoteOptions, Votes};
pub use job::{Progress, WorkDir};
pub use templates::IMAGENET_TEMPLATES;
