//! The LLaMA-family decoder in burn: RMSNorm, rotary position embeddings
//! (HF's half-split layout; interleaved weights are permuted at load),
//! grouped-query attention with a KV cache, SwiGLU MLP, tied or untied head.

use burn::module::Module;
use burn::nn::{Embedding, Linear, RmsNorm};
use burn::tensor::activation::{silu, softmax};
use burn::tensor::backend::Backend;
use burn::tensor::module::{attention, embedding};
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{Bool, DType, Tensor, TensorData};
use v2l_nn::layers::{self, linear_rows, IdRowsError};
use v2l_nn::precision::{self, to_dtype, to_f32, to_precision};
use v2l_nn::{Init, Layout, Loader, Precision, Unexpected};

use crate::config::LlamaConfig;
use crate::error::{LlmError, Result};
use crate::weights::LlamaWeights;

/// Random initialisation of a fresh model (HF's `initializer_range`).
const WEIGHT_INIT: Init = Init::Normal(0.02);

/// A bias-free PyTorch linear (`[out, in]`) as burn's `[in, out]`.
fn load_linear<B: Backend>(vb: &Loader<'_, B>, d_in: usize, d_out: usize) -> Linear<B> {
    let init = layers::LinearInit {
        weight: WEIGHT_INIT,
        bias: Init::Zeros,
    };
    layers::linear_init(vb, d_in, d_out, false, init)
}

/// Self-attention with grouped key/value heads.
#[derive(Module, Debug)]
pub struct Attention<B: Backend> {
    /// Query projection.
    pub q_proj: Linear<B>,
    /// Key projection.
    pub k_proj: Linear<B>,
    /// Value projection.
    pub v_proj: Linear<B>,
    /// Output projection.
    pub o_proj: Linear<B>,
    /// Query heads.
    pub heads: usize,
    /// Key/value heads.
    pub kv_heads: usize,
    /// Per-head width.
    pub head_dim: usize,
}

/// Cached keys and values of one layer: `[batch, kv_heads, positions, head_dim]`.
#[derive(Debug, Clone)]
pub struct LayerCache<B: Backend> {
    /// Keys (already rotated).
    pub k: Tensor<B, 4>,
    /// Values.
    pub v: Tensor<B, 4>,
}

/// The KV cache of a whole model for one batch of sequences.
#[derive(Debug, Clone)]
pub struct KvCache<B: Backend> {
    layers: Vec<Option<LayerCache<B>>>,
    len: usize,
}

impl<B: Backend> KvCache<B> {
    /// An empty cache for `layers` layers.
    pub fn new(layers: usize) -> Self {
        Self {
            layers: vec![None; layers],
            len: 0,
        }
    }

    /// Positions already cached.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// cos and sin tables for positions `start..start + t`: `[t, head_dim]`
/// each (the half-split layout repeats the frequencies).
fn rope_tables<B: Backend>(
    start: usize,
    t: usize,
    head_dim: usize,
    theta: f64,
    device: &B::Device,
) -> (Tensor<B, 2>, Tensor<B, 2>) {
    let half = head_dim / 2;
    let mut cos = Vec::with_capacity(t * head_dim);
    let mut sin = Vec::with_capacity(t * head_dim);
    for p in start..start + t {
        let mut row_c = Vec::with_capacity(half);
        let mut row_s = Vec::with_capacity(half);
        for i in 0..half {
            // Frequencies in f32 as transformers computes them, angles in f64.
            let inv = 1.0f32 / (theta.powf((2 * i) as f64 / head_dim as f64) as f32);
            let angle = p as f64 * inv as f64;
            row_c.push(angle.cos() as f32);
            row_s.push(angle.sin() as f32);
        }
        cos.extend_from_slice(&row_c);
        cos.extend_from_slice(&row_c);
        sin.extend_from_slice(&row_s);
        sin.extend_from_slice(&row_s);
    }
    (
        to_f32(Tensor::from_data(
            TensorData::new(cos, [t, head_dim]),
            device,
        )),
        to_f32(Tensor::from_data(
            TensorData::new(sin, [t, head_dim]),
            device,
        )),
    )
}

/// `x·cos + rotate_half(x)·sin` for `x`: `[b, heads, t, d]`, computed in f32
/// and returned in `x`'s dtype (as Meta's `apply_rotary_emb` does in fp16).
fn apply_rope<B: Backend>(x: Tensor<B, 4>, cos: &Tensor<B, 2>, sin: &Tensor<B, 2>) -> Tensor<B, 4> {
    let dtype = x.dtype();
    let x = to_f32(x);
    let [b, h, t, d] = x.dims();
    let half = d / 2;
    let x1 = x.clone().slice([0..b, 0..h, 0..t, 0..half]);
    let x2 = x.clone().slice([0..b, 0..h, 0..t, half..d]);
    let rotated = Tensor::cat(vec![x2.neg(), x1], 3);
    to_dtype(
        x * cos.clone().unsqueeze::<4>() + rotated * sin.clone().unsqueeze::<4>(),
        dtype,
    )
}

impl<B: Backend> Attention<B> {
    fn load(vb: &Loader<'_, B>, c: &LlamaConfig) -> Self {
        let (h, kv, d) = (c.num_heads, c.num_kv_heads, c.head_dim);
        let hd = c.hidden_size;
        Self {
            q_proj: load_linear(&vb.pp("q_proj"), hd, h * d),
            k_proj: load_linear(&vb.pp("k_proj"), hd, kv * d),
            v_proj: load_linear(&vb.pp("v_proj"), hd, kv * d),
            o_proj: load_linear(&vb.pp("o_proj"), h * d, hd),
            heads: h,
            kv_heads: kv,
            head_dim: d,
        }
    }

    fn forward(
        &self,
        x: Tensor<B, 3>,
        rope: &(Tensor<B, 2>, Tensor<B, 2>),
        mask: Option<Tensor<B, 4, Bool>>,
        cache: &mut Option<LayerCache<B>>,
    ) -> Tensor<B, 3> {
        let [b, t, _] = x.dims();
        let (h, kv, d) = (self.heads, self.kv_heads, self.head_dim);
        let split = |y: Tensor<B, 3>, n: usize| y.reshape([b, t, n, d]).swap_dims(1, 2);
        let q = apply_rope(
            split(linear_rows(&self.q_proj, x.clone()), h),
            &rope.0,
            &rope.1,
        );
        let k = apply_rope(
            split(linear_rows(&self.k_proj, x.clone()), kv),
            &rope.0,
            &rope.1,
        );
        let v = split(linear_rows(&self.v_proj, x), kv);
        let (k, v) = match cache.take() {
            Some(c) => (Tensor::cat(vec![c.k, k], 2), Tensor::cat(vec![c.v, v], 2)),
            None => (k, v),
        };
        *cache = Some(LayerCache {
            k: k.clone(),
            v: v.clone(),
        });
        let total = k.dims()[2];
        let group = h / kv;
        let expand = |y: Tensor<B, 4>| {
            if group == 1 {
                y
            } else {
                y.reshape([b, kv, 1, total, d])
                    .expand([b, kv, group, total, d])
                    .reshape([b, h, total, d])
            }
        };
        let y = if q.dtype() == DType::F32 {
            let options = AttentionModuleOptions {
                scale: None,
                softcap: None,
                is_causal: false,
            };
            attention(q, expand(k), expand(v), mask, None, options)
        } else {
            // Meta's fp16 attention: scores `q·kᵀ/√d` in fp16, softmax in
            // f32 rounded back to fp16, then the fp16 product with v.
            let dtype = q.dtype();
            let scores = q.matmul(expand(k).swap_dims(2, 3)) / (d as f64).sqrt();
            let scores = to_f32(scores);
            let scores = match mask {
                Some(m) => scores.mask_fill(m, f32::NEG_INFINITY),
                None => scores,
            };
            to_dtype(softmax(scores, 3), dtype).matmul(expand(v))
        };
        linear_rows(&self.o_proj, y.swap_dims(1, 2).reshape([b, t, h * d]))
    }
}

/// SwiGLU MLP: `down(silu(gate(x)) · up(x))`.
#[derive(Module, Debug)]
pub struct Mlp<B: Backend> {
    /// Gate projection.
    pub gate_proj: Linear<B>,
    /// Up projection.
    pub up_proj: Linear<B>,
    /// Down projection.
    pub down_proj: Linear<B>,
}

/// One decoder layer (pre-norm attention and MLP with residuals).
#[derive(Module, Debug)]
pub struct DecoderLayer<B: Backend> {
    /// Norm before attention.
    pub input_layernorm: RmsNorm<B>,
    /// Attention.
    pub self_attn: Attention<B>,
    /// Norm before the MLP.
    pub post_attention_layernorm: RmsNorm<B>,
    /// MLP.
    pub mlp: Mlp<B>,
}

/// A LLaMA-family causal language model.
#[derive(Module, Debug)]
pub struct Llama<B: Backend> {
    /// Token embedding `[vocab, hidden]`.
    pub embed_tokens: Embedding<B>,
    /// Decoder layers.
    pub layers: Vec<DecoderLayer<B>>,
    /// Final norm.
    pub norm: RmsNorm<B>,
    /// Output head (`[hidden, vocab]`, no bias); `None` when tied to the
    /// embedding.
    pub lm_head: Option<Linear<B>>,
    /// Configuration.
    #[module(skip)]
    pub config: LlamaConfig,
}

/// Output of a forward pass.
#[derive(Debug, Clone)]
pub struct LlamaOutput<B: Backend> {
    /// Logits `[batch, tokens, vocab]`.
    pub logits: Tensor<B, 3>,
    /// Final hidden states (after the last norm) `[batch, tokens, hidden]`,
    /// in f32.
    pub hidden: Tensor<B, 3>,
}

impl<B: Backend> Llama<B> {
    /// Build the model from opened weights; every missing or mis-shaped
    /// tensor is reported at once ([`LlmError::Weights`]).
    pub fn load(w: &LlamaWeights, device: &B::Device) -> Result<Self> {
        let c = w.config().clone();
        c.validate()?;
        let untied = !c.tie_word_embeddings || w.contains("lm_head.weight");
        let vb = Loader::from_source(w, device);
        let model = Self::build(&vb, c, untied);
        vb.finish(Unexpected::Ignore)?;
        Ok(model)
    }

    /// A model with seeded random weights (HF's `initializer_range` 0.02,
    /// norms 1): tests and benchmarks.
    ///
    /// # Errors
    /// An invalid configuration.
    pub fn random(config: LlamaConfig, seed: u64, device: &B::Device) -> Result<Self> {
        config.validate()?;
        let untied = !config.tie_word_embeddings;
        Ok(Self::build(&Loader::random(seed, device), config, untied))
    }

    /// The parameters in HF naming (`model.layers.{i}.…`).
    fn build(vb: &Loader<'_, B>, c: LlamaConfig, untied: bool) -> Self {
        let (v, hd) = (c.vocab_size, c.hidden_size);
        let m = vb.pp("model");
        let embed_tokens = layers::embedding(&m.pp("embed_tokens"), v, hd, WEIGHT_INIT);
        let layers = (0..c.num_layers)
            .map(|i| {
                let l = m.pp(format!("layers.{i}"));
                let im = c.intermediate_size;
                DecoderLayer {
                    input_layernorm: layers::rms_norm(&l.pp("input_layernorm"), hd, c.rms_norm_eps),
                    self_attn: Attention::load(&l.pp("self_attn"), &c),
                    post_attention_layernorm: layers::rms_norm(
                        &l.pp("post_attention_layernorm"),
                        hd,
                        c.rms_norm_eps,
                    ),
                    mlp: Mlp {
                        gate_proj: load_linear(&l.pp("mlp.gate_proj"), hd, im),
                        up_proj: load_linear(&l.pp("mlp.up_proj"), hd, im),
                        down_proj: load_linear(&l.pp("mlp.down_proj"), im, hd),
                    },
                }
            })
            .collect();
        let norm = layers::rms_norm(&m.pp("norm"), hd, c.rms_norm_eps);
        let lm_head = untied.then(|| Linear {
            weight: vb.param_as("lm_head.weight", Layout::Transposed, &[v, hd], WEIGHT_INIT),
            bias: None,
        });
        Self {
            embed_tokens,
            layers,
            norm,
            lm_head,
            config: c,
        }
    }

    /// The model in `precision`. [`Precision::F16`] runs it as the reference
    /// runs LLaMA-2: fp16 weights and activations, RMSNorm and rotary
    /// embeddings computed in f32, the attention softmax in f32 (burn's
    /// attention accumulates in f32), logits returned as f32.
    pub fn into_precision(self, precision: Precision) -> Self {
        to_precision(self, precision)
    }

    /// The dtype the model computes in.
    pub fn dtype(&self) -> burn::tensor::DType {
        self.embed_tokens.weight.val().dtype()
    }

    /// Open and load a model (`.gguf`, HF folder, Meta folder).
    pub fn open(path: impl AsRef<std::path::Path>, device: &B::Device) -> Result<Self> {
        Self::load(&LlamaWeights::open(path)?, device)
    }

    /// A fresh KV cache for this model.
    pub fn new_cache(&self) -> KvCache<B> {
        KvCache::new(self.layers.len())
    }

    /// Token embeddings of id rows (all the same length), checked against
    /// the vocabulary: `[batch, tokens, hidden]`, in the model's dtype.
    pub fn embed(&self, rows: &[Vec<u32>]) -> Result<Tensor<B, 3>> {
        let vocab = self.config.vocab_size;
        let device = self.embed_tokens.weight.device();
        let ids = layers::id_matrix::<B>(rows, vocab, &device).map_err(|e| match e {
            IdRowsError::Empty => LlmError::InvalidInput("no tokens".into()),
            IdRowsError::Ragged { row, len, first } => {
                LlmError::InvalidInput(format!("row {row} has {len} tokens, row 0 has {first}"))
            }
            IdRowsError::OutOfRange { id, row } => LlmError::TokenOutOfRange {
                id,
                row,
                vocab_size: vocab,
            },
        })?;
        Ok(embedding(self.embed_tokens.weight.val(), ids))
    }

    /// Logits of final hidden states: `[batch, tokens, vocab]`, in f32
    /// (hidden states of any dtype are cast to the model's first).
    pub fn logits(&self, hidden: Tensor<B, 3>) -> Tensor<B, 3> {
        let [b, t, d] = hidden.dims();
        let flat = to_dtype(hidden, self.dtype()).reshape([b * t, d]);
        let out = match &self.lm_head {
            Some(head) => flat.matmul(head.weight.val()),
            // Tied head: `embed · hᵀ` then a transpose of the small result,
            // so the [vocab, hidden] embedding is never copied into a
            // transposed layout (a per-step copy of the whole matrix on CPU
            // backends).
            None => self
                .embed_tokens
                .weight
                .val()
                .matmul(flat.transpose())
                .transpose(),
        };
        let [_, v] = out.dims();
        to_f32(out.reshape([b, t, v]))
    }

    /// Run the decoder on input embeddings `[batch, tokens, hidden]` that
    /// continue the sequences in `cache` (positions `cache.len()..`), cast to
    /// the model's dtype. Returns the final hidden states (after the last
    /// norm) in the model's dtype.
    pub fn forward_embeds(&self, x: Tensor<B, 3>, cache: &mut KvCache<B>) -> Result<Tensor<B, 3>> {
        let [_, t, d] = x.dims();
        if d != self.config.hidden_size {
            return Err(LlmError::InvalidInput(format!(
                "embeddings have width {d}, the model {}",
                self.config.hidden_size
            )));
        }
        let start = cache.len;
        let needed = start + t;
        if needed > self.config.max_position_embeddings {
            return Err(LlmError::ContextOverflow {
                needed,
                context: self.config.max_position_embeddings,
            });
        }
        if cache.layers.len() != self.layers.len() {
            return Err(LlmError::InvalidInput(
                "KV cache belongs to another model".into(),
            ));
        }
        let device = self.embed_tokens.weight.device();
        let rope = rope_tables::<B>(
            start,
            t,
            self.config.head_dim,
            self.config.rope_theta,
            &device,
        );
        // Query i (absolute start + i) may see keys 0..=start + i.
        let mask = (t > 1).then(|| {
            let total = start + t;
            let data: Vec<bool> = (0..t)
                .flat_map(|i| (0..total).map(move |j| j > start + i))
                .collect();
            let [b, _, _] = x.dims();
            Tensor::<B, 2, Bool>::from_data(TensorData::new(data, [t, total]), &device)
                .unsqueeze::<4>()
                .expand([b, self.config.num_heads, t, total])
        });
        let mut x = to_dtype(x, self.dtype());
        for (layer, slot) in self.layers.iter().zip(cache.layers.iter_mut()) {
            let h = layer.self_attn.forward(
                precision::rms_norm(&layer.input_layernorm, x.clone()),
                &rope,
                mask.clone(),
                slot,
            );
            let x1 = x + h;
            let m = &layer.mlp;
            let z = precision::rms_norm(&layer.post_attention_layernorm, x1.clone());
            let g = silu(linear_rows(&m.gate_proj, z.clone())) * linear_rows(&m.up_proj, z);
            x = x1 + linear_rows(&m.down_proj, g);
        }
        cache.len = needed;
        Ok(precision::rms_norm(&self.norm, x))
    }

    /// Run the decoder on token rows continuing `cache`: logits and hidden
    /// states for every new position.
    pub fn forward(&self, rows: &[Vec<u32>], cache: &mut KvCache<B>) -> Result<LlamaOutput<B>> {
        let x = self.embed(rows)?;
        let hidden = self.forward_embeds(x, cache)?;
        Ok(LlamaOutput {
            logits: self.logits(hidden.clone()),
            hidden: to_f32(hidden),
        })
    }
}
