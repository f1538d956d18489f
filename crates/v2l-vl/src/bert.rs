//! A BERT sentence encoder with mean pooling and L2 normalisation — the
//! all-MiniLM-L6-v2 text side of the ConSE model (HF `BertModel` key
//! layout: `embeddings.*`, `encoder.layer.N.*`; the pooler is not used).
//!
//! A sentence's embedding is `normalise(Σ_t mask_t · h_t / Σ_t mask_t)`
//! over the last layer's states `h`, as sentence-transformers' `Pooling`
//! (mean) + `Normalize` modules compute it. Sentences are tokenised by the
//! model's `tokenizer.json` (WordPiece, `[CLS] … [SEP]`), cut at
//! [`MAX_TOKENS`] tokens (sentence-transformers' `max_seq_length` for this
//! model), and batched with padding that the attention mask hides.

use std::path::Path;

use burn::module::Module;
use burn::nn::{Embedding, LayerNorm, Linear};
use burn::tensor::activation::{gelu, softmax};
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use serde::Deserialize;
use tokenizers::{Tokenizer, TruncationParams};
use v2l_io::tensors::{SafetensorsFile, TensorSource};
use v2l_nn::layers::{embedding, layer_norm, linear, linear_rows};
use v2l_nn::{Init, Loader, Unexpected};

use crate::error::{Result, VlError};

/// Tokens per sentence at most (`[CLS]` and `[SEP]` included).
pub const MAX_TOKENS: usize = 256;

/// The fields of a HF BERT `config.json` the encoder uses.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct BertConfig {
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Hidden width.
    pub hidden_size: usize,
    /// Layers.
    pub num_hidden_layers: usize,
    /// Attention heads.
    pub num_attention_heads: usize,
    /// MLP width.
    pub intermediate_size: usize,
    /// Learned positions.
    pub max_position_embeddings: usize,
    /// Token types.
    #[serde(default = "two")]
    pub type_vocab_size: usize,
    /// LayerNorm epsilon.
    #[serde(default = "ln_eps")]
    pub layer_norm_eps: f64,
    /// Activation (only `gelu`, the exact erf form, is supported).
    #[serde(default = "gelu_name")]
    pub hidden_act: String,
}

fn two() -> usize {
    2
}
fn ln_eps() -> f64 {
    1e-12
}
fn gelu_name() -> String {
    "gelu".into()
}

impl BertConfig {
    /// Check the numbers fit together.
    ///
    /// # Errors
    /// [`VlError::InvalidConfig`] naming the field.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(VlError::InvalidConfig(m));
        if self.hidden_size == 0 || self.num_attention_heads == 0 {
            return bad("hidden_size and num_attention_heads must be positive".into());
        }
        if !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return bad(format!(
                "hidden_size {} is not a multiple of num_attention_heads {}",
                self.hidden_size, self.num_attention_heads
            ));
        }
        if self.hidden_act != "gelu" {
            return bad(format!(
                "hidden_act `{}` is not supported (only `gelu`)",
                self.hidden_act
            ));
        }
        if self.max_position_embeddings == 0 || self.vocab_size == 0 {
            return bad("vocab_size and max_position_embeddings must be positive".into());
        }
        Ok(())
    }
}

/// One transformer layer (post-norm, as BERT).
#[derive(Module, Debug)]
pub struct BertLayer<B: Backend> {
    /// `attention.self.query`.
    pub query: Linear<B>,
    /// `attention.self.key`.
    pub key: Linear<B>,
    /// `attention.self.value`.
    pub value: Linear<B>,
    /// `attention.output.dense`.
    pub attn_out: Linear<B>,
    /// `attention.output.LayerNorm`.
    pub attn_norm: LayerNorm<B>,
    /// `intermediate.dense`.
    pub intermediate: Linear<B>,
    /// `output.dense`.
    pub output: Linear<B>,
    /// `output.LayerNorm`.
    pub out_norm: LayerNorm<B>,
    /// Heads.
    pub heads: usize,
}

impl<B: Backend> BertLayer<B> {
    fn forward(&self, x: Tensor<B, 3>, mask: Tensor<B, 4>) -> Tensor<B, 3> {
        let [n, t, d] = x.dims();
        let h = self.heads;
        let dh = d / h;
        let split = |y: Tensor<B, 3>| y.reshape([n, t, h, dh]).swap_dims(1, 2);
        let q = split(linear_rows(&self.query, x.clone()));
        let k = split(linear_rows(&self.key, x.clone()));
        let v = split(linear_rows(&self.value, x.clone()));
        let scores = q.matmul(k.swap_dims(2, 3)).div_scalar((dh as f64).sqrt()) + mask;
        let p = softmax(scores, 3);
        let ctx = p.matmul(v).swap_dims(1, 2).reshape([n, t, d]);
        let a = self.attn_norm.forward(linear_rows(&self.attn_out, ctx) + x);
        let m = gelu(linear_rows(&self.intermediate, a.clone()));
        self.out_norm.forward(linear_rows(&self.output, m) + a)
    }
}

/// The BERT network (embeddings and encoder layers).
#[derive(Module, Debug)]
pub struct BertModel<B: Backend> {
    /// `embeddings.word_embeddings`.
    pub word: Embedding<B>,
    /// `embeddings.position_embeddings`.
    pub position: Embedding<B>,
    /// `embeddings.token_type_embeddings`.
    pub token_type: Embedding<B>,
    /// `embeddings.LayerNorm`.
    pub norm: LayerNorm<B>,
    /// `encoder.layer.N`.
    pub layers: Vec<BertLayer<B>>,
}

impl<B: Backend> BertModel<B> {
    /// Build from a tensor source in HF names (a leading `bert.` is not
    /// expected; `embeddings.position_ids` and the pooler are ignored).
    ///
    /// # Errors
    /// [`VlError::Load`] listing every missing or mis-shaped tensor.
    pub fn from_source(
        config: &BertConfig,
        source: &dyn TensorSource,
        device: &B::Device,
    ) -> Result<Self> {
        config.validate()?;
        let vb = Loader::<B>::from_source(source, device);
        let model = Self::build(config, &vb);
        vb.finish(Unexpected::Under(&["encoder."]))
            .map_err(VlError::Load)?;
        Ok(model.no_grad())
    }

    /// Random weights (BERT's init: N(0, 0.02) weights, zero biases), for
    /// tests and benchmarks.
    ///
    /// # Errors
    /// An invalid configuration.
    pub fn random(config: &BertConfig, seed: u64, device: &B::Device) -> Result<Self> {
        config.validate()?;
        let vb = Loader::<B>::random(seed, device);
        Ok(Self::build(config, &vb))
    }

    fn build(c: &BertConfig, vb: &Loader<'_, B>) -> Self {
        let d = c.hidden_size;
        let e = vb.pp("embeddings");
        let normal = Init::Normal(0.02);
        let layers = (0..c.num_hidden_layers)
            .map(|i| {
                let l = vb.pp(format!("encoder.layer.{i}"));
                BertLayer {
                    query: linear(&l.pp("attention.self.query"), d, d, true),
                    key: linear(&l.pp("attention.self.key"), d, d, true),
                    value: linear(&l.pp("attention.self.value"), d, d, true),
                    attn_out: linear(&l.pp("attention.output.dense"), d, d, true),
                    attn_norm: layer_norm(&l.pp("attention.output.LayerNorm"), d, c.layer_norm_eps),
                    intermediate: linear(&l.pp("intermediate.dense"), d, c.intermediate_size, true),
                    output: linear(&l.pp("output.dense"), c.intermediate_size, d, true),
                    out_norm: layer_norm(&l.pp("output.LayerNorm"), d, c.layer_norm_eps),
                    heads: c.num_attention_heads,
                }
            })
            .collect();
        Self {
            word: embedding(&e.pp("word_embeddings"), c.vocab_size, d, normal),
            position: embedding(
                &e.pp("position_embeddings"),
                c.max_position_embeddings,
                d,
                normal,
            ),
            token_type: embedding(&e.pp("token_type_embeddings"), c.type_vocab_size, d, normal),
            norm: layer_norm(&e.pp("LayerNorm"), d, c.layer_norm_eps),
            layers,
        }
    }

    /// Last-layer states `[n, t, d]` for token ids `[n, t]` with a 0/1
    /// attention mask `[n, t]` (token type 0 everywhere).
    pub fn forward(&self, ids: Tensor<B, 2, Int>, mask: Tensor<B, 2>) -> Tensor<B, 3> {
        let [n, t] = ids.dims();
        let device = ids.device();
        let pos = Tensor::<B, 1, Int>::arange(0..t as i64, &device)
            .reshape([1, t])
            .repeat_dim(0, n);
        let types = Tensor::<B, 2, Int>::zeros([n, t], &device);
        let x =
            self.word.forward(ids) + self.position.forward(pos) + self.token_type.forward(types);
        let mut x = self.norm.forward(x);
        // Additive mask: 0 where attended, a large negative number on
        // padding (exp underflows to exactly 0, as with HF's finfo.min).
        let add = (mask.neg() + 1.0).mul_scalar(-1e30).reshape([n, 1, 1, t]);
        for l in &self.layers {
            x = l.forward(x, add.clone());
        }
        x
    }
}

/// A sentence encoder: tokenizer + BERT + mean pooling + L2 norm.
#[derive(Debug)]
pub struct SentenceEncoder<B: Backend> {
    model: BertModel<B>,
    tokenizer: Tokenizer,
    config: BertConfig,
    device: B::Device,
}

impl<B: Backend> SentenceEncoder<B> {
    /// Load from a folder holding `config.json`, `model.safetensors` and
    /// `tokenizer.json` (the `minilm-l6` asset's layout).
    ///
    /// # Errors
    /// A missing or malformed file, or weights that do not fit the config.
    pub fn load(dir: impl AsRef<Path>, device: &B::Device) -> Result<Self> {
        let dir = dir.as_ref();
        let config_path = dir.join("config.json");
        let config: BertConfig = v2l_io::read_json(&config_path)
            .map_err(|e| e.to_string())
            .and_then(|v| serde_json::from_value(v).map_err(|e| e.to_string()))
            .map_err(|e| VlError::InvalidConfig(format!("{}: {e}", config_path.display())))?;
        let weights = SafetensorsFile::open(dir.join("model.safetensors"))?;
        let model = BertModel::from_source(&config, &weights, device)?;
        let tokenizer = load_tokenizer(&dir.join("tokenizer.json"))?;
        Self::new(model, tokenizer, config, device)
    }

    /// Assemble from parts.
    ///
    /// # Errors
    /// A tokenizer whose vocabulary is larger than the model's.
    pub fn new(
        model: BertModel<B>,
        tokenizer: Tokenizer,
        config: BertConfig,
        device: &B::Device,
    ) -> Result<Self> {
        let v = tokenizer.get_vocab_size(true);
        if v > config.vocab_size {
            return Err(VlError::InvalidConfig(format!(
                "the tokenizer has {v} ids, the model only {}",
                config.vocab_size
            )));
        }
        Ok(Self {
            model,
            tokenizer,
            config,
            device: device.clone(),
        })
    }

    /// Embedding width.
    pub fn dim(&self) -> usize {
        self.config.hidden_size
    }

    /// The device the model is on.
    pub fn device(&self) -> B::Device {
        self.device.clone()
    }

    /// The configuration.
    pub fn config(&self) -> &BertConfig {
        &self.config
    }

    /// Token ids of one sentence (`[CLS] … [SEP]`, cut at [`MAX_TOKENS`]).
    ///
    /// # Errors
    /// A tokenizer failure.
    pub fn token_ids(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self
            .tokenizer
            .encode(text, true)
            .map_err(|e| VlError::Tokenizer(format!("{text:?}: {e}")))?;
        Ok(enc.get_ids().to_vec())
    }

    /// Unit-length embeddings `[texts.len(), dim]` of sentences, in one
    /// batch padded to the longest.
    ///
    /// # Errors
    /// An empty list or a tokenizer failure.
    pub fn embed(&self, texts: &[String]) -> Result<Tensor<B, 2>> {
        let rows = texts
            .iter()
            .map(|t| self.token_ids(t))
            .collect::<Result<Vec<_>>>()?;
        self.embed_ids(&rows)
    }

    /// [`embed`](Self::embed) from token ids (each row `[CLS] … [SEP]`).
    ///
    /// # Errors
    /// An empty list, an empty row, a row longer than the positions, or an
    /// id outside the vocabulary.
    pub fn embed_ids(&self, rows: &[Vec<u32>]) -> Result<Tensor<B, 2>> {
        if rows.is_empty() {
            return Err(VlError::InvalidInput("no sentences to embed".into()));
        }
        let t = rows.iter().map(Vec::len).max().unwrap_or(0);
        if t == 0 {
            return Err(VlError::InvalidInput("an empty token row".into()));
        }
        if t > self.config.max_position_embeddings {
            return Err(VlError::InvalidInput(format!(
                "a row of {t} tokens exceeds the model's {} positions",
                self.config.max_position_embeddings
            )));
        }
        let n = rows.len();
        let mut ids = vec![0i64; n * t];
        let mut mask = vec![0f32; n * t];
        for (r, row) in rows.iter().enumerate() {
            if row.is_empty() {
                return Err(VlError::InvalidInput(format!("token row {r} is empty")));
            }
            for (j, &id) in row.iter().enumerate() {
                if id as usize >= self.config.vocab_size {
                    return Err(VlError::InvalidInput(format!(
                        "token id {id} outside the vocabulary of {}",
                        self.config.vocab_size
                    )));
                }
                ids[r * t + j] = i64::from(id);
                mask[r * t + j] = 1.0;
            }
        }
        let ids = Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [n, t]), &self.device);
        let mask = Tensor::<B, 2>::from_data(TensorData::new(mask, [n, t]), &self.device);
        let h = self.model.forward(ids, mask.clone());
        let m = mask.clone().reshape([n, t, 1]);
        let sum = (h * m).sum_dim(1).reshape([n, self.dim()]);
        let count = mask.sum_dim(1).clamp_min(1e-9);
        let mean = sum / count;
        Ok(normalize_rows(mean))
    }
}

/// `x / max(‖x‖, 1e-12)` per row (PyTorch's `F.normalize`).
pub fn normalize_rows<B: Backend>(x: Tensor<B, 2>) -> Tensor<B, 2> {
    let norm = x.clone().powi_scalar(2).sum_dim(1).sqrt().clamp_min(1e-12);
    x / norm
}

/// Read a `tokenizer.json` for sentence embedding: no padding (batches pad
/// themselves), truncation at [`MAX_TOKENS`].
///
/// # Errors
/// [`VlError::Tokenizer`] for an unreadable or malformed file.
pub fn load_tokenizer(path: &Path) -> Result<Tokenizer> {
    let mut tok = Tokenizer::from_file(path)
        .map_err(|e| VlError::Tokenizer(format!("{}: {e}", path.display())))?;
    tok.with_padding(None);
    tok.with_truncation(Some(TruncationParams {
        max_length: MAX_TOKENS,
        ..Default::default()
    }))
    .map_err(|e| VlError::Tokenizer(format!("{}: {e}", path.display())))?;
    Ok(tok)
}
