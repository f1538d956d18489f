//! Weight files of LLaMA-family models, mapped onto one canonical naming
//! (HF `LlamaForCausalLM`, HF's rotate-half RoPE layout):
//!
//! - HF safetensors, single or sharded (`model.safetensors.index.json`),
//!   with `config.json`;
//! - Meta `consolidated.NN.pth` + `params.json`, merging model-parallel
//!   shards: column-parallel weights (`wq`, `wk`, `wv`, `w1`, `w3`, `output`)
//!   along dim 0, row-parallel ones (`wo`, `w2`) along dim 1, the parallel
//!   embedding along dim 1, norms replicated;
//! - GGUF (`token_embd`, `blk.N.*`, …), dequantised to f32.
//!
//! Meta and GGUF files store `wq`/`wk` in the interleaved (complex-number)
//! RoPE layout; they are permuted to HF's half-split layout at load, so one
//! RoPE implementation serves every format.

use std::path::{Path, PathBuf};

use v2l_io::tensors::{open_tensors, TensorSource};
use v2l_io::torch_zip::TorchArchive;
use v2l_io::FileError;

use crate::config::LlamaConfig;
use crate::error::{LlmError, Result};
use crate::gguf::GgufFile;

/// A GGUF file as a [`TensorSource`] (tensors dequantised to f32).
struct GgufSource {
    name: String,
    file: GgufFile,
}

impl TensorSource for GgufSource {
    fn describe(&self) -> &str {
        &self.name
    }

    fn keys(&self) -> Vec<String> {
        self.file
            .tensors()
            .iter()
            .map(|t| t.name().to_string())
            .collect()
    }

    fn shape(&self, key: &str) -> Option<Vec<usize>> {
        self.file.tensor_info(key).ok().map(|t| t.shape().to_vec())
    }

    fn read_f32(&self, key: &str) -> v2l_io::Result<(Vec<usize>, Vec<f32>)> {
        self.file
            .read_f32(key)
            .map_err(|e| v2l_io::ReadError::Unsupported {
                file: self.name.clone(),
                what: e.to_string(),
            })
    }
}

/// Which on-disk convention a model uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// HF `LlamaForCausalLM` safetensors (+ `config.json`).
    Hf,
    /// Meta `consolidated.*.pth` + `params.json`.
    Meta,
    /// GGUF.
    Gguf,
}

/// How one canonical tensor is assembled from file tensors.
enum Source<'a> {
    /// One file tensor (possibly permuted for RoPE).
    One(&'a dyn TensorSource, String),
    /// Model-parallel shards concatenated along `dim`.
    Shards(Vec<(&'a dyn TensorSource, String)>, usize),
}

/// Opened weights of one model with its configuration.
pub struct LlamaWeights {
    format: Format,
    name: String,
    sources: Vec<Box<dyn TensorSource>>,
    config: LlamaConfig,
}

impl std::fmt::Debug for LlamaWeights {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlamaWeights")
            .field("format", &self.format)
            .field("name", &self.name)
            .field("files", &self.sources.len())
            .field("config", &self.config)
            .finish()
    }
}

fn meta_shards(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|source| FileError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut shards: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("consolidated.") && n.ends_with(".pth"))
        })
        .collect();
    shards.sort();
    Ok(shards)
}

impl LlamaWeights {
    /// Open a model by what `path` is: a `.gguf` file; a folder with
    /// `params.json` + `consolidated.*.pth` (Meta); a folder with
    /// `config.json` + safetensors (HF, single or sharded).
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let is_gguf = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("gguf"));
        if is_gguf {
            let g = GgufFile::open(path)?;
            let has_output = g.tensor_info("output.weight").is_ok();
            let config = LlamaConfig::from_gguf(&g, has_output)?;
            let name = path.display().to_string();
            return Ok(Self {
                format: Format::Gguf,
                name: name.clone(),
                sources: vec![Box::new(GgufSource { name, file: g })],
                config,
            });
        }
        if !path.is_dir() {
            return Err(FileError::io(
                path,
                std::io::ErrorKind::NotFound,
                "expected a .gguf file or a model folder (HF config.json + safetensors, or Meta params.json + consolidated.*.pth)",
            )
            .into());
        }
        let params = path.join("params.json");
        if params.is_file() {
            let shards = meta_shards(path)?;
            if shards.is_empty() {
                return Err(FileError::io(
                    path,
                    std::io::ErrorKind::NotFound,
                    "params.json without consolidated.*.pth",
                )
                .into());
            }
            let sources = shards
                .iter()
                .map(|p| TorchArchive::open(p).map(|a| Box::new(a) as Box<dyn TensorSource>))
                .collect::<std::result::Result<Vec<_>, _>>()?;
            let vocab = merged_shape(&sources, "tok_embeddings.weight")?[0];
            let inter = merged_shape(&sources, "layers.0.feed_forward.w1.weight")?[0];
            let config = LlamaConfig::from_meta(&v2l_io::read_json(&params)?, vocab, inter)?;
            return Ok(Self {
                format: Format::Meta,
                name: path.display().to_string(),
                sources,
                config,
            });
        }
        let config_path = path.join("config.json");
        let config = LlamaConfig::from_hf(&v2l_io::read_json(&config_path)?)?;
        let source = open_tensors(path)?;
        Ok(Self {
            format: Format::Hf,
            name: path.display().to_string(),
            sources: vec![source],
            config,
        })
    }

    /// The configuration read with the weights.
    pub fn config(&self) -> &LlamaConfig {
        &self.config
    }

    /// Replace the configuration (e.g. a longer context); shapes are still
    /// checked at load.
    pub fn set_config(&mut self, config: LlamaConfig) {
        self.config = config;
    }

    /// The on-disk convention.
    pub fn format(&self) -> Format {
        self.format
    }

    /// The file key(s) behind a canonical (HF) name.
    fn locate(&self, canonical: &str) -> Result<Source<'_>> {
        let file_key = match self.format {
            Format::Hf => canonical.to_string(),
            Format::Meta => hf_to_meta(canonical)?,
            Format::Gguf => hf_to_gguf(canonical)?,
        };
        match self.format {
            Format::Meta if self.sources.len() > 1 => {
                let parts = self
                    .sources
                    .iter()
                    .map(|s| (s.as_ref(), file_key.clone()))
                    .collect();
                Ok(match meta_split_dim(&file_key) {
                    Some(d) => Source::Shards(parts, d),
                    None => Source::One(self.sources[0].as_ref(), file_key),
                })
            }
            _ => Ok(Source::One(self.sources[0].as_ref(), file_key)),
        }
    }

    /// Whether a canonical tensor exists.
    pub fn contains(&self, canonical: &str) -> bool {
        match self.locate(canonical) {
            Ok(Source::One(s, k)) => s.shape(&k).is_some(),
            Ok(Source::Shards(parts, _)) => parts.iter().all(|(s, k)| s.shape(k).is_some()),
            Err(_) => false,
        }
    }

    /// Read a canonical tensor (HF name, HF layout) checking its shape.
    /// q/k projections stored in the interleaved RoPE layout (Meta, GGUF) are
    /// permuted to HF's.
    pub fn read(&self, canonical: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let data = match self.locate(canonical)? {
            Source::One(s, k) => {
                let found = s.shape(&k).ok_or_else(|| LlmError::MissingTensor {
                    file: s.describe().to_string(),
                    key: k.clone(),
                })?;
                if found != shape {
                    return Err(LlmError::ShapeMismatch {
                        file: s.describe().to_string(),
                        key: k,
                        expected: shape.to_vec(),
                        found,
                    });
                }
                s.read_f32(&k)?.1
            }
            Source::Shards(parts, dim) => {
                let mut pieces = Vec::new();
                let mut total = 0usize;
                let mut other: Option<Vec<usize>> = None;
                for (s, k) in &parts {
                    let (sh, d) = s.read_f32(k).map_err(|_| LlmError::MissingTensor {
                        file: s.describe().to_string(),
                        key: k.clone(),
                    })?;
                    total += sh.get(dim).copied().unwrap_or(0);
                    other.get_or_insert_with(|| sh.clone());
                    pieces.push((sh, d));
                }
                let mut found = other.unwrap_or_default();
                if let Some(x) = found.get_mut(dim) {
                    *x = total;
                }
                if found != shape {
                    return Err(LlmError::ShapeMismatch {
                        file: self.name.clone(),
                        key: parts.first().map(|(_, k)| k.clone()).unwrap_or_default(),
                        expected: shape.to_vec(),
                        found,
                    });
                }
                concat(&pieces, dim, shape)
            }
        };
        let needs_permute = matches!(self.format, Format::Meta | Format::Gguf)
            && (canonical.ends_with("self_attn.q_proj.weight")
                || canonical.ends_with("self_attn.k_proj.weight"));
        if needs_permute {
            let rows = shape.first().copied().unwrap_or(0);
            let heads = rows / self.config.head_dim.max(1);
            return Ok(interleaved_to_half(
                &data,
                heads,
                self.config.head_dim,
                shape[1],
            ));
        }
        Ok(data)
    }
}

/// The canonical (HF-named, HF-layout) tensors as one source: what
/// [`crate::Llama::load`] builds from through `v2l-nn`'s loader. Messages
/// name the file's own keys.
impl TensorSource for LlamaWeights {
    fn describe(&self) -> &str {
        &self.name
    }

    /// Canonical names are not listed (nothing is reported as unexpected).
    fn keys(&self) -> Vec<String> {
        Vec::new()
    }

    fn shape(&self, key: &str) -> Option<Vec<usize>> {
        match self.locate(key).ok()? {
            Source::One(s, k) => s.shape(&k),
            // Shards hold the same key in every file of `self.sources`.
            Source::Shards(parts, _) => merged_shape(&self.sources, &parts.first()?.1).ok(),
        }
    }

    fn read_f32(&self, key: &str) -> v2l_io::Result<(Vec<usize>, Vec<f32>)> {
        let unsupported = |what: String| v2l_io::ReadError::Unsupported {
            file: self.name.clone(),
            what,
        };
        let shape = self
            .shape(key)
            .ok_or_else(|| unsupported(format!("no tensor behind `{key}`")))?;
        let data = self.read(key, &shape).map_err(|e| match e {
            LlmError::Read(r) => r,
            other => unsupported(other.to_string()),
        })?;
        Ok((shape, data))
    }

    fn file_names(&self, key: &str) -> Vec<String> {
        match self.locate(key) {
            Ok(Source::One(_, k)) => vec![k],
            Ok(Source::Shards(parts, _)) => parts.into_iter().map(|(_, k)| k).collect(),
            Err(_) => vec![key.to_string()],
        }
    }

    fn missing_names(&self, key: &str) -> Vec<String> {
        self.file_names(key)
    }
}

/// Shape of a Meta tensor with its model-parallel shards merged, without
/// reading data.
fn merged_shape(sources: &[Box<dyn TensorSource>], meta_key: &str) -> Result<Vec<usize>> {
    let parts: Vec<Vec<usize>> = sources
        .iter()
        .map(|s| {
            s.shape(meta_key).ok_or_else(|| LlmError::MissingTensor {
                file: s.describe().to_string(),
                key: meta_key.to_string(),
            })
        })
        .collect::<Result<_>>()?;
    let mut shape = parts.first().cloned().unwrap_or_default();
    if let (Some(d), true) = (meta_split_dim(meta_key), parts.len() > 1) {
        if let Some(total) = shape.get_mut(d) {
            *total = parts.iter().map(|p| p.get(d).copied().unwrap_or(0)).sum();
        }
    }
    Ok(shape)
}

/// Concatenate row-major pieces along `dim` (0 or 1 of a 2-D tensor).
fn concat(pieces: &[(Vec<usize>, Vec<f32>)], dim: usize, shape: &[usize]) -> Vec<f32> {
    if dim == 0 || shape.len() < 2 {
        return pieces.iter().flat_map(|(_, d)| d.iter().copied()).collect();
    }
    let rows = shape[0];
    let mut out = Vec::with_capacity(shape.iter().product());
    for r in 0..rows {
        for (sh, d) in pieces {
            let c = sh[1];
            out.extend_from_slice(&d[r * c..(r + 1) * c]);
        }
    }
    out
}

/// Meta/GGUF q or k rows (per head: pairs (2j, 2j+1)) → HF rows (per head:
/// j and j + d/2).
fn interleaved_to_half(w: &[f32], heads: usize, head_dim: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; w.len()];
    let half = head_dim / 2;
    for h in 0..heads {
        for j in 0..half {
            for p in 0..2 {
                let src = (h * head_dim + 2 * j + p) * cols;
                let dst = (h * head_dim + p * half + j) * cols;
                out[dst..dst + cols].copy_from_slice(&w[src..src + cols]);
            }
        }
    }
    out
}

/// The dimension along which Meta's model-parallel shards split a tensor
/// (`None`: replicated).
fn meta_split_dim(key: &str) -> Option<usize> {
    let column = [".wq.", ".wk.", ".wv.", ".w1.", ".w3."];
    if column.iter().any(|c| key.contains(c)) || key == "output.weight" {
        Some(0)
    } else if key.contains(".wo.") || key.contains(".w2.") || key == "tok_embeddings.weight" {
        Some(1)
    } else {
        None
    }
}

fn layer_of(canonical: &str) -> Option<(usize, &str)> {
    let rest = canonical.strip_prefix("model.layers.")?;
    let (n, tail) = rest.split_once('.')?;
    Some((n.parse().ok()?, tail))
}

fn hf_to_meta(c: &str) -> Result<String> {
    let fixed = match c {
        "model.embed_tokens.weight" => Some("tok_embeddings.weight"),
        "model.norm.weight" => Some("norm.weight"),
        "lm_head.weight" => Some("output.weight"),
        _ => None,
    };
    if let Some(f) = fixed {
        return Ok(f.to_string());
    }
    let (n, tail) = layer_of(c).ok_or_else(|| LlmError::Config(format!("no Meta name for {c}")))?;
    let t = match tail {
        "self_attn.q_proj.weight" => "attention.wq.weight",
        "self_attn.k_proj.weight" => "attention.wk.weight",
        "self_attn.v_proj.weight" => "attention.wv.weight",
        "self_attn.o_proj.weight" => "attention.wo.weight",
        "mlp.gate_proj.weight" => "feed_forward.w1.weight",
        "mlp.down_proj.weight" => "feed_forward.w2.weight",
        "mlp.up_proj.weight" => "feed_forward.w3.weight",
        "input_layernorm.weight" => "attention_norm.weight",
        "post_attention_layernorm.weight" => "ffn_norm.weight",
        _ => return Err(LlmError::Config(format!("no Meta name for {c}"))),
    };
    Ok(format!("layers.{n}.{t}"))
}

fn hf_to_gguf(c: &str) -> Result<String> {
    let fixed = match c {
        "model.embed_tokens.weight" => Some("token_embd.weight"),
        "model.norm.weight" => Some("output_norm.weight"),
        "lm_head.weight" => Some("output.weight"),
        _ => None,
    };
    if let Some(f) = fixed {
        return Ok(f.to_string());
    }
    let (n, tail) = layer_of(c).ok_or_else(|| LlmError::Config(format!("no GGUF name for {c}")))?;
    let t = match tail {
        "self_attn.q_proj.weight" => "attn_q.weight",
        "self_attn.k_proj.weight" => "attn_k.weight",
        "self_attn.v_proj.weight" => "attn_v.weight",
        "self_attn.o_proj.weight" => "attn_output.weight",
        "mlp.gate_proj.weight" => "ffn_gate.weight",
        "mlp.down_proj.weight" => "ffn_down.weight",
        "mlp.up_proj.weight" => "ffn_up.weight",
        "input_layernorm.weight" => "attn_norm.weight",
        "post_attention_layernorm.weight" => "ffn_norm.weight",
        _ => return Err(LlmError::Config(format!("no GGUF name for {c}"))),
    };
    Ok(format!("blk.{n}.{t}"))
}
