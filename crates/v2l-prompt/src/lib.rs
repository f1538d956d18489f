//! # v2l-prompt — what a frozen LLM does with V2L tokens
//!
//! An unmodified LLM classifies, describes and restores images from
//! in-context examples written in V2L tokens:
//!
//! - [`fewshot`]: N-way K-shot classification exactly as the reference
//!   (`eval_understanding.py`, spec §5.2): the episode CSV format and class
//!   names ([`episodes`]), global words concatenated and re-tokenised, each
//!   prompt segment encoded separately, BOS once, the instruction line
//!   (faithful malformed brackets or corrected), 16 constrained greedy
//!   steps (the reference's union mask or a trie), exact-prefix scoring.
//! - [`restore`]: inpainting, outpainting, deblurring, rotation and shift
//!   exactly as the reference (`eval_denoising_generation.py`, spec §5.4),
//!   with a faithful and an honest example mode and a seeded RNG.
//! - [`caption`]: few-shot captioning and VQA prompts of our own design
//!   (the reference has none; see `docs/tasks.md`).
//! - [`prompt`]: the token-level prompt builders they share.
//!
//! Prompt token sequences are checked against an independent construction
//! with the `llama-tokenizer-js` package (`scripts/gen_prompt_fixtures.mjs`).

pub mod caption;
pub mod episodes;
mod error;
pub mod eval;
pub mod fewshot;
pub mod prompt;
pub mod restore;

pub use episodes::{ClassNames, Episode, Item};
pub use error::{PromptError, Result};
pub use fewshot::{classify, Decoding, FewShotOptions, Prediction, TextEpisode};
pub use prompt::{InstructionStyle, LabelledText, PromptTokens};
pub use restore::{ExampleMode, RestoreOptions, Restorer, SequenceLayout, Task};
