//! The frozen-LLM runtime of v2l-rs.
//!
//! - [`gguf`] (re-exported from `v2l-io`): a GGUF v2/v3 reader (metadata, tensor index, alignment) with
//!   dequantisation of F32, F16, BF16, F64, integer types, Q4_0, Q4_1, Q5_0,
//!   Q5_1, Q8_0 and Q2_K–Q6_K, bit-identical to gguf-py.
//! - [`tokenizer`]: LLM tokenizers with explicit BOS/EOS policy — HF
//!   `tokenizer.json`, the tokenizer embedded in GGUF metadata (GPT-2
//!   byte-level BPE as SmolLM2, SentencePiece-BPE as LLaMA GGUFs), and the
//!   LLaMA-2 vocabulary of the `llama-tokenizer-js` package.

pub mod config;
mod error;
pub mod generate;
pub use v2l_io::gguf;
pub mod model;
pub mod tokenizer;
pub mod weights;

pub use config::LlamaConfig;
pub use error::{LlmError, Result};
pub use generate::{
    Constraint, GenerateOptions, Generation, Sampling, StopReason, Trie, UnionMask,
};
pub use model::{KvCache, Llama, LlamaOutput};
pub use v2l_nn::{Precision, PrecisionError};
pub use weights::{Format, LlamaWeights};
