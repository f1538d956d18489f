//! The decoder's hyper-parameters, read from an HF `config.json`, a Meta
//! `params.json` (plus weight shapes) or GGUF metadata.

use serde::{Deserialize, Serialize};

use crate::error::{LlmError, Result};
use crate::gguf::GgufFile;

/// A LLaMA-family decoder's configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LlamaConfig {
    /// Vocabulary size (rows of the embedding).
    pub vocab_size: usize,
    /// Model width.
    pub hidden_size: usize,
    /// SwiGLU hidden width.
    pub intermediate_size: usize,
    /// Number of decoder layers.
    pub num_layers: usize,
    /// Query heads.
    pub num_heads: usize,
    /// Key/value heads (grouped-query attention when fewer than `num_heads`).
    pub num_kv_heads: usize,
    /// Per-head width (`hidden_size / num_heads` unless stated).
    pub head_dim: usize,
    /// RMSNorm epsilon.
    pub rms_norm_eps: f64,
    /// RoPE base θ.
    pub rope_theta: f64,
    /// Longest sequence (prompt + generation) the model accepts.
    pub max_position_embeddings: usize,
    /// Whether the output head reuses the token embedding.
    pub tie_word_embeddings: bool,
}

fn num(v: &serde_json::Value, key: &str) -> Option<f64> {
    v.get(key).and_then(serde_json::Value::as_f64)
}

fn req(v: &serde_json::Value, key: &str, what: &str) -> Result<usize> {
    v.get(key)
        .and_then(serde_json::Value::as_u64)
        .map(|x| x as usize)
        .ok_or_else(|| LlmError::Config(format!("{what}: missing or non-integer `{key}`")))
}

impl LlamaConfig {
    /// From an HF `config.json` (`LlamaForCausalLM`; transformers 4 and 5
    /// spellings of the RoPE base).
    pub fn from_hf(v: &serde_json::Value) -> Result<Self> {
        let what = "config.json";
        let hidden = req(v, "hidden_size", what)?;
        let heads = req(v, "num_attention_heads", what)?;
        let rope_theta = num(v, "rope_theta")
            .or_else(|| v.get("rope_parameters").and_then(|r| num(r, "rope_theta")))
            .unwrap_or(10_000.0);
        if let Some(kind) = v
            .get("rope_scaling")
            .and_then(|r| r.get("rope_type").or_else(|| r.get("type")))
            .and_then(serde_json::Value::as_str)
        {
            if kind != "default" {
                return Err(LlmError::Config(format!(
                    "{what}: RoPE scaling {kind:?} is not supported"
                )));
            }
        }
        let c = Self {
            vocab_size: req(v, "vocab_size", what)?,
            hidden_size: hidden,
            intermediate_size: req(v, "intermediate_size", what)?,
            num_layers: req(v, "num_hidden_layers", what)?,
            num_heads: heads,
            num_kv_heads: v
                .get("num_key_value_heads")
                .and_then(serde_json::Value::as_u64)
                .map_or(heads, |x| x as usize),
            head_dim: v
                .get("head_dim")
                .and_then(serde_json::Value::as_u64)
                .map_or(hidden / heads.max(1), |x| x as usize),
            rms_norm_eps: num(v, "rms_norm_eps").unwrap_or(1e-6),
            rope_theta,
            max_position_embeddings: req(v, "max_position_embeddings", what)?,
            tie_word_embeddings: v
                .get("tie_word_embeddings")
                .and_then(serde_json::Value::as_bool)
                .unwrap_or(false),
        };
        c.validate()?;
        Ok(c)
    }

    /// From a Meta `params.json`; the vocabulary and MLP widths come from the
    /// weight shapes (`vocab_size` is −1 in LLaMA-2's files), the context from
    /// `max_seq_len` when present, else 4096 (LLaMA-2's).
    pub fn from_meta(
        v: &serde_json::Value,
        vocab_size: usize,
        intermediate_size: usize,
    ) -> Result<Self> {
        let what = "params.json";
        let dim = req(v, "dim", what)?;
        let heads = req(v, "n_heads", what)?;
        let c = Self {
            vocab_size,
            hidden_size: dim,
            intermediate_size,
            num_layers: req(v, "n_layers", what)?,
            num_heads: heads,
            num_kv_heads: v
                .get("n_kv_heads")
                .and_then(serde_json::Value::as_u64)
                .map_or(heads, |x| x as usize),
            head_dim: dim / heads.max(1),
            rms_norm_eps: num(v, "norm_eps").unwrap_or(1e-5),
            rope_theta: num(v, "rope_theta").unwrap_or(10_000.0),
            max_position_embeddings: v
                .get("max_seq_len")
                .and_then(serde_json::Value::as_u64)
                .map_or(4096, |x| x as usize),
            tie_word_embeddings: false,
        };
        c.validate()?;
        Ok(c)
    }

    /// From GGUF metadata (`llama.*` keys); `has_output` says whether the
    /// file has its own `output.weight` (else the head is tied).
    pub fn from_gguf(g: &GgufFile, has_output: bool) -> Result<Self> {
        let arch = g.get_str("general.architecture")?;
        if arch != "llama" {
            return Err(LlmError::Config(format!(
                "GGUF architecture {arch:?} is not supported (expected \"llama\")"
            )));
        }
        let hidden = g.get_usize("llama.embedding_length")?;
        let heads = g.get_usize("llama.attention.head_count")?;
        let vocab = match g.get_usize("llama.vocab_size") {
            Ok(v) => v,
            Err(_) => g.get_str_array("tokenizer.ggml.tokens")?.len(),
        };
        let head_dim = match g.get_usize("llama.rope.dimension_count") {
            Ok(d) => d,
            Err(_) => hidden / heads.max(1),
        };
        let c = Self {
            vocab_size: vocab,
            hidden_size: hidden,
            intermediate_size: g.get_usize("llama.feed_forward_length")?,
            num_layers: g.get_usize("llama.block_count")?,
            num_heads: heads,
            num_kv_heads: g
                .get_usize("llama.attention.head_count_kv")
                .unwrap_or(heads),
            head_dim,
            rms_norm_eps: g
                .get_f64("llama.attention.layer_norm_rms_epsilon")
                .unwrap_or(1e-5),
            rope_theta: g.get_f64("llama.rope.freq_base").unwrap_or(10_000.0),
            max_position_embeddings: g.get_usize("llama.context_length")?,
            tie_word_embeddings: !has_output,
        };
        c.validate()?;
        Ok(c)
    }

    /// Check the numbers fit together.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(LlmError::Config(m));
        if self.num_heads == 0 || self.num_kv_heads == 0 || self.head_dim == 0 {
            return bad("heads and head_dim must be positive".into());
        }
        if !self.num_heads.is_multiple_of(self.num_kv_heads) {
            return bad(format!(
                "num_heads {} is not a multiple of num_kv_heads {}",
                self.num_heads, self.num_kv_heads
            ));
        }
        if !self.head_dim.is_multiple_of(2) {
            return bad(format!("head_dim {} must be even for RoPE", self.head_dim));
        }
        if self.vocab_size == 0 || self.hidden_size == 0 || self.max_position_embeddings == 0 {
            return bad(
                "vocab_size, hidden_size and max_position_embeddings must be positive".into(),
            );
        }
        Ok(())
    }
}
