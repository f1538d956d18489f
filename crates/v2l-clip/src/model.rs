//! The CLIP towers as burn modules.
//!
//! Both towers are built through `v2l-nn`'s loader from canonical tensors
//! (OpenAI naming and shapes, see [`crate::weights`]); PyTorch's `[out, in]`
//! linear weights become burn's `[in, out]` through the loader's declared
//! layout.

use burn::module::{Module, Param};
use burn::nn::{LayerNorm, Linear};
use burn::tensor::activation::{gelu, sigmoid};
use burn::tensor::backend::Backend;
use burn::tensor::module::{attention, embedding, linear};
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{Int, Tensor, TensorData};
use v2l_nn::layers::{self, linear_rows, IdRowsError, LinearInit};
use v2l_nn::precision::{self, to_dtype, to_f32, to_precision};
use v2l_nn::{Init, Layout, Loader, Precision, Unexpected};

use crate::config::{Activation, TextConfig, TextPooling, VisionConfig};
use crate::error::{ClipError, Result};
use crate::weights::{Tower, WeightReader};

/// CLIP's own initialisation, roughly: weights N(0, 0.02), biases 0,
/// LayerNorms 1 / 0 (random towers for benchmarks and training from
/// scratch).
const WEIGHT_INIT: Init = Init::Normal(0.02);

/// A PyTorch `nn.Linear` (`weight` [out, in], `bias` [out]) as a burn
/// [`Linear`] ([in, out]).
fn load_linear<B: Backend>(vb: &Loader<'_, B>, d_in: usize, d_out: usize) -> Linear<B> {
    let init = LinearInit {
        weight: WEIGHT_INIT,
        bias: Init::Zeros,
    };
    layers::linear_init(vb, d_in, d_out, true, init)
}

/// Build a tower from `reader` through the loader; every problem at once.
fn from_reader<B: Backend, T>(
    reader: &WeightReader<'_>,
    tower: Tower,
    device: &B::Device,
    build: impl FnOnce(&Loader<'_, B>) -> Result<T>,
) -> Result<T> {
    let source = reader.tower(tower);
    let vb = Loader::from_source(&source, device);
    let t = build(&vb)?;
    vb.finish(Unexpected::Ignore)?;
    Ok(t)
}

/// Multi-head self-attention with PyTorch's fused input projection
/// (`in_proj_weight` = q, k, v stacked).
#[derive(Module, Debug)]
pub struct FusedAttention<B: Backend> {
    /// q, k, v projection: [width, 3·width].
    pub in_proj: Linear<B>,
    /// Output projection.
    pub out_proj: Linear<B>,
    /// Number of heads.
    pub heads: usize,
}

impl<B: Backend> FusedAttention<B> {
    fn load(vb: &Loader<'_, B>, width: usize, heads: usize) -> Self {
        let in_proj = Linear {
            weight: vb.param_as(
                "in_proj_weight",
                Layout::Transposed,
                &[3 * width, width],
                WEIGHT_INIT,
            ),
            bias: Some(vb.param("in_proj_bias", [3 * width], Init::Zeros)),
        };
        Self {
            in_proj,
            out_proj: load_linear(&vb.pp("out_proj"), width, width),
            heads,
        }
    }

    /// `x`: [batch, tokens, width] → same shape.
    pub fn forward(&self, x: Tensor<B, 3>, causal: bool) -> Tensor<B, 3> {
        let [n, t, w] = x.dims();
        let h = self.heads;
        let d = w / h;
        let qkv = linear_rows(&self.in_proj, x);
        let split = |i: usize| {
            qkv.clone()
                .slice([0..n, 0..t, i * w..(i + 1) * w])
                .reshape([n, t, h, d])
                .swap_dims(1, 2)
        };
        let (q, k, v) = (split(0), split(1), split(2));
        let options = AttentionModuleOptions {
            scale: None,
            softcap: None,
            is_causal: causal,
        };
        let y = attention(q, k, v, None, None, options);
        let y = y.swap_dims(1, 2).reshape([n, t, w]);
        linear_rows(&self.out_proj, y)
    }
}

/// One pre-LN transformer block: `x + attn(ln_1(x))`, then `x + mlp(ln_2(x))`.
#[derive(Module, Debug)]
pub struct ResidualAttentionBlock<B: Backend> {
    /// Pre-attention LayerNorm.
    pub ln_1: LayerNorm<B>,
    /// Self-attention.
    pub attn: FusedAttention<B>,
    /// Pre-MLP LayerNorm.
    pub ln_2: LayerNorm<B>,
    /// MLP up-projection (4× width).
    pub c_fc: Linear<B>,
    /// MLP down-projection.
    pub c_proj: Linear<B>,
    /// MLP activation.
    #[module(skip)]
    pub activation: Activation,
}

impl<B: Backend> ResidualAttentionBlock<B> {
    /// The block with its LayerNorms back in f32 (after the tower is cast).
    fn with_f32_norms(mut self) -> Self {
        self.ln_1 = to_precision(self.ln_1, Precision::F32);
        self.ln_2 = to_precision(self.ln_2, Precision::F32);
        self
    }

    fn load(vb: &Loader<'_, B>, shape: &BlockShape) -> Self {
        let (w, eps) = (shape.width, shape.eps);
        Self {
            ln_1: layers::layer_norm(&vb.pp("ln_1"), w, eps),
            attn: FusedAttention::load(&vb.pp("attn"), w, shape.heads),
            ln_2: layers::layer_norm(&vb.pp("ln_2"), w, eps),
            c_fc: load_linear(&vb.pp("mlp.c_fc"), w, shape.mlp_width),
            c_proj: load_linear(&vb.pp("mlp.c_proj"), shape.mlp_width, w),
            activation: shape.activation,
        }
    }

    /// `x`: [batch, tokens, width] → same shape.
    pub fn forward(&self, x: Tensor<B, 3>, causal: bool) -> Tensor<B, 3> {
        let x = x.clone()
            + self
                .attn
                .forward(precision::layer_norm(&self.ln_1, x), causal);
        let h = linear_rows(&self.c_fc, precision::layer_norm(&self.ln_2, x.clone()));
        let h = match self.activation {
            Activation::QuickGelu => h.clone() * sigmoid(h * 1.702),
            Activation::Gelu => gelu(h),
        };
        x + linear_rows(&self.c_proj, h)
    }
}

/// The geometry shared by a tower's residual blocks.
/// Blocks of a cast tower with their LayerNorms back in f32.
fn f32_norms<B: Backend>(blocks: Vec<ResidualAttentionBlock<B>>) -> Vec<ResidualAttentionBlock<B>> {
    blocks
        .into_iter()
        .map(ResidualAttentionBlock::with_f32_norms)
        .collect()
}

struct BlockShape {
    width: usize,
    mlp_width: usize,
    heads: usize,
    activation: Activation,
    eps: f64,
}

impl BlockShape {
    fn new(width: usize, mlp_width: usize, heads: usize, activation: Activation, eps: f64) -> Self {
        Self {
            width,
            mlp_width,
            heads,
            activation,
            eps,
        }
    }
}

/// An output projection `[width, out]` (drawn N(0, width^-½)).
fn projection<B: Backend>(
    vb: &Loader<'_, B>,
    name: &str,
    w: usize,
    out: usize,
) -> Param<Tensor<B, 2>> {
    vb.param(name, [w, out], Init::Normal((w as f64).powf(-0.5)))
}

/// The `layers` residual blocks of one tower
/// (`transformer.resblocks.{i}`).
fn load_blocks<B: Backend>(
    vb: &Loader<'_, B>,
    layers: usize,
    shape: &BlockShape,
) -> Vec<ResidualAttentionBlock<B>> {
    (0..layers)
        .map(|i| ResidualAttentionBlock::load(&vb.pp(format!("transformer.resblocks.{i}")), shape))
        .collect()
}

/// Run the blocks; with `keep_hidden`, also every layer's input and the
/// last output (HF's `hidden_states`).
fn run_blocks<B: Backend>(
    blocks: &[ResidualAttentionBlock<B>],
    mut x: Tensor<B, 3>,
    causal: bool,
    keep_hidden: bool,
) -> (Tensor<B, 3>, Vec<Tensor<B, 3>>) {
    let mut hidden = Vec::new();
    for block in blocks {
        if keep_hidden {
            hidden.push(x.clone());
        }
        x = block.forward(x, causal);
    }
    if keep_hidden {
        hidden.push(x.clone());
    }
    (x, hidden)
}

/// What a tower returns besides its embedding.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutputOptions {
    /// Also return the per-layer hidden states (index 0 = the input of the
    /// first block, index i = the output of block i), as HF's
    /// `output_hidden_states`.
    pub hidden_states: bool,
    /// Vision only: also return `ln_post(patch tokens) @ proj` (the V2L
    /// variant of CLIP returns these as its second output).
    pub patch_tokens: bool,
}

/// The vision tower's outputs.
#[derive(Debug, Clone)]
pub struct VisionOutput<B: Backend> {
    /// `ln_post(cls) @ proj`: [batch, output_dim]; not normalised.
    pub embeds: Tensor<B, 2>,
    /// `ln_post(cls)`: [batch, width] (HF's `pooler_output`).
    pub pooled: Tensor<B, 2>,
    /// `ln_post(patches) @ proj`: [batch, grid², output_dim], if asked.
    pub patch_embeds: Option<Tensor<B, 3>>,
    /// [batch, tokens, width] per layer (layers + 1 entries), if asked.
    pub hidden_states: Vec<Tensor<B, 3>>,
}

/// OpenAI CLIP's `VisionTransformer`.
#[derive(Module, Debug)]
pub struct VisionTransformer<B: Backend> {
    /// The patch convolution (no bias) as a matrix: [3·patch², width].
    pub patch_embed: Param<Tensor<B, 2>>,
    /// Class token: `[width]`.
    pub class_embedding: Param<Tensor<B, 1>>,
    /// Positional embedding: [1 + grid², width].
    pub positional_embedding: Param<Tensor<B, 2>>,
    /// LayerNorm before the blocks.
    pub ln_pre: LayerNorm<B>,
    /// The residual blocks.
    pub blocks: Vec<ResidualAttentionBlock<B>>,
    /// LayerNorm after the blocks.
    pub ln_post: LayerNorm<B>,
    /// Output projection: [width, output_dim].
    pub proj: Param<Tensor<B, 2>>,
    /// Input side in pixels.
    pub input_resolution: usize,
    /// Patch side in pixels.
    pub patch_size: usize,
}

impl<B: Backend> VisionTransformer<B> {
    /// The tower in `precision`, as OpenAI's `convert_weights` makes an fp16
    /// CLIP: every weight cast, the LayerNorms kept in f32 (and computed in
    /// f32). Inputs are cast to the tower's dtype; outputs are f32.
    pub fn into_precision(self, precision: Precision) -> Self {
        let mut t = to_precision(self, precision);
        t.ln_pre = to_precision(t.ln_pre, Precision::F32);
        t.ln_post = to_precision(t.ln_post, Precision::F32);
        t.blocks = f32_norms(t.blocks);
        t
    }

    /// The dtype the tower computes in.
    pub fn dtype(&self) -> burn::tensor::DType {
        self.proj.val().dtype()
    }

    /// Build from canonical names under `vb` (checked against `c`).
    pub(crate) fn load(vb: &Loader<'_, B>, c: &VisionConfig) -> Result<Self> {
        c.validate()?;
        let (w, p) = (c.width, c.patch_size);
        let shape = BlockShape::new(w, c.mlp_width(), c.heads, c.activation, c.layer_norm_eps);
        // The patch conv (no bias) as a matrix [3·p², width].
        let patch_embed = vb.param_as(
            "conv1.weight",
            Layout::Transposed,
            &[w, 3, p, p],
            WEIGHT_INIT,
        );
        let class_embedding = vb.param("class_embedding", [w], WEIGHT_INIT);
        let positional_embedding =
            vb.param("positional_embedding", [c.num_tokens(), w], WEIGHT_INIT);
        let ln_pre = layers::layer_norm(&vb.pp("ln_pre"), w, c.layer_norm_eps);
        let blocks = load_blocks(vb, c.layers, &shape);
        let ln_post = layers::layer_norm(&vb.pp("ln_post"), w, c.layer_norm_eps);
        let proj = projection(vb, "proj", w, c.output_dim);
        Ok(Self {
            patch_embed,
            class_embedding,
            positional_embedding,
            ln_pre,
            blocks,
            ln_post,
            proj,
            input_resolution: c.input_resolution,
            patch_size: p,
        })
    }

    /// Load from a weight file; every missing or mis-shaped tensor is
    /// reported at once ([`ClipError::Weights`]).
    pub fn from_weights(
        reader: &WeightReader<'_>,
        c: &VisionConfig,
        device: &B::Device,
    ) -> Result<Self> {
        from_reader(reader, Tower::Vision, device, |vb| Self::load(vb, c))
    }

    /// Images `[batch, 3, R, R]` (CLIP-normalised, R = input resolution) →
    /// outputs. Fails on any other shape.
    pub fn forward(&self, images: Tensor<B, 4>, options: OutputOptions) -> Result<VisionOutput<B>> {
        let [n, ch, hgt, wid] = images.dims();
        let r = self.input_resolution;
        if ch != 3 || hgt != r || wid != r || n == 0 {
            return Err(ClipError::InvalidInput(format!(
                "vision tower expects images [batch ≥ 1, 3, {r}, {r}], got [{n}, {ch}, {hgt}, {wid}]"
            )));
        }
        let p = self.patch_size;
        let g = r / p;
        let [_, width] = self.positional_embedding.dims();
        // Patchify: [n,3,g,p,g,p] → [n,g,g,3,p,p] → [n, g², 3p²], matching the
        // conv weight's (c, kh, kw) flattening.
        let patches = to_dtype(images, self.dtype())
            .reshape([n, 3, g, p, g, p])
            .permute([0, 2, 4, 1, 3, 5])
            .reshape([n * g * g, 3 * p * p]);
        let x = patches
            .matmul(self.patch_embed.val())
            .reshape([n, g * g, width]);
        let cls = self
            .class_embedding
            .val()
            .reshape([1, 1, width])
            .expand([n, 1, width]);
        let x = Tensor::cat(vec![cls, x], 1) + self.positional_embedding.val().unsqueeze::<3>();
        let x = precision::layer_norm(&self.ln_pre, x);
        let (x, hidden) = run_blocks(&self.blocks, x, false, options.hidden_states);
        let tokens = g * g + 1;
        let pooled = precision::layer_norm(&self.ln_post, x.clone().slice([0..n, 0..1, 0..width]))
            .reshape([n, width]);
        let embeds = pooled.clone().matmul(self.proj.val());
        let patch_embeds = options.patch_tokens.then(|| {
            let patches =
                precision::layer_norm(&self.ln_post, x.slice([0..n, 1..tokens, 0..width]));
            to_f32(linear(patches, self.proj.val(), None))
        });
        Ok(VisionOutput {
            embeds: to_f32(embeds),
            pooled: to_f32(pooled),
            patch_embeds,
            hidden_states: hidden.into_iter().map(to_f32).collect(),
        })
    }
}

/// The text tower's outputs.
#[derive(Debug, Clone)]
pub struct TextOutput<B: Backend> {
    /// `ln_final(x)[pool] @ text_projection`: [batch, output_dim]; not normalised.
    pub embeds: Tensor<B, 2>,
    /// `ln_final(x)`: [batch, tokens, width] (HF's `last_hidden_state`).
    pub last_hidden: Tensor<B, 3>,
    /// [batch, tokens, width] per layer (layers + 1 entries), if asked.
    pub hidden_states: Vec<Tensor<B, 3>>,
    /// The pooled position of each row.
    pub pooled_positions: Vec<usize>,
}

/// OpenAI CLIP's text transformer (token + positional embedding, causal
/// blocks, `ln_final`, pooling, `text_projection`).
#[derive(Module, Debug)]
pub struct TextTransformer<B: Backend> {
    /// Token embedding: [vocab, width].
    pub token_embedding: Param<Tensor<B, 2>>,
    /// Positional embedding: [context, width].
    pub positional_embedding: Param<Tensor<B, 2>>,
    /// The residual blocks (causal).
    pub blocks: Vec<ResidualAttentionBlock<B>>,
    /// Final LayerNorm.
    pub ln_final: LayerNorm<B>,
    /// Output projection: [width, output_dim].
    pub text_projection: Param<Tensor<B, 2>>,
    /// Pooling rule.
    #[module(skip)]
    pub pooling: TextPooling,
}

impl<B: Backend> TextTransformer<B> {
    /// The tower in `precision` (see [`VisionTransformer::into_precision`]).
    pub fn into_precision(self, precision: Precision) -> Self {
        let mut t = to_precision(self, precision);
        t.ln_final = to_precision(t.ln_final, Precision::F32);
        t.blocks = f32_norms(t.blocks);
        t
    }

    /// The dtype the tower computes in.
    pub fn dtype(&self) -> burn::tensor::DType {
        self.text_projection.val().dtype()
    }

    /// Build from canonical names under `vb` (checked against `c`).
    pub(crate) fn load(vb: &Loader<'_, B>, c: &TextConfig) -> Result<Self> {
        c.validate()?;
        let w = c.width;
        let shape = BlockShape::new(w, c.mlp_width(), c.heads, c.activation, c.layer_norm_eps);
        let token_embedding = vb.param("token_embedding.weight", [c.vocab_size, w], WEIGHT_INIT);
        let positional_embedding =
            vb.param("positional_embedding", [c.context_length, w], WEIGHT_INIT);
        let blocks = load_blocks(vb, c.layers, &shape);
        let ln_final = layers::layer_norm(&vb.pp("ln_final"), w, c.layer_norm_eps);
        let text_projection = projection(vb, "text_projection", w, c.output_dim);
        Ok(Self {
            token_embedding,
            positional_embedding,
            blocks,
            ln_final,
            text_projection,
            pooling: c.pooling,
        })
    }

    /// Load from a weight file; every missing or mis-shaped tensor is
    /// reported at once ([`ClipError::Weights`]).
    pub fn from_weights(
        reader: &WeightReader<'_>,
        c: &TextConfig,
        device: &B::Device,
    ) -> Result<Self> {
        from_reader(reader, Tower::Text, device, |vb| Self::load(vb, c))
    }

    /// Vocabulary size.
    pub fn vocab_size(&self) -> usize {
        self.token_embedding.dims()[0]
    }

    /// Context length (number of positions).
    pub fn context_length(&self) -> usize {
        self.positional_embedding.dims()[0]
    }

    /// The position pooled for one row under this tower's rule.
    pub fn pool_position(&self, row: &[u32]) -> usize {
        match self.pooling {
            TextPooling::ArgmaxId => {
                let mut best = 0;
                for (i, &id) in row.iter().enumerate() {
                    if id > row[best] {
                        best = i;
                    }
                }
                best
            }
            TextPooling::FirstEos(eos) => row.iter().position(|&id| id == eos).unwrap_or(0),
        }
    }

    /// Text embeddings only (`[rows, output_dim]`, not normalised). Rows are
    /// cut after the last pooled position of the batch before the forward
    /// pass: attention is causal, so later positions cannot change the pooled
    /// state, and `clip.tokenize`'s zero padding (usually most of the 77
    /// positions) costs nothing.
    pub fn embed(&self, rows: &[Vec<u32>]) -> Result<Tensor<B, 2>> {
        let keep = rows
            .iter()
            .map(|r| self.pool_position(r) + 1)
            .max()
            .unwrap_or(0);
        let full = rows.first().map_or(0, Vec::len);
        if keep == 0
            || keep >= full
            || full > self.context_length()
            || rows.iter().any(|r| r.len() != full)
        {
            // Nothing to cut (or malformed: let `forward` report it).
            return Ok(self.forward(rows, OutputOptions::default())?.embeds);
        }
        let cut: Vec<Vec<u32>> = rows.iter().map(|r| r[..keep].to_vec()).collect();
        // Ids past the cut are still checked, so the result does not depend on
        // where a bad id sits.
        for (row, r) in rows.iter().enumerate() {
            if let Some(&id) = r[keep..]
                .iter()
                .find(|&&id| id as usize >= self.vocab_size())
            {
                return Err(ClipError::TokenOutOfRange {
                    id,
                    row,
                    vocab_size: self.vocab_size(),
                });
            }
        }
        Ok(self.forward(&cut, OutputOptions::default())?.embeds)
    }

    /// Token rows of equal length `1..=context_length` → outputs. Ids are
    /// checked against the vocabulary.
    pub fn forward(&self, rows: &[Vec<u32>], options: OutputOptions) -> Result<TextOutput<B>> {
        let n = rows.len();
        let t = rows.first().map_or(0, Vec::len);
        let ctx = self.context_length();
        let vocab = self.vocab_size();
        if t > ctx {
            return Err(ClipError::InvalidInput(format!(
                "token rows have {t} positions; the text tower's context is {ctx}"
            )));
        }
        let device = self.token_embedding.device();
        let ids = layers::id_matrix::<B>(rows, vocab, &device).map_err(|e| match e {
            IdRowsError::Empty => {
                ClipError::InvalidInput("text tower needs at least one non-empty row".into())
            }
            IdRowsError::Ragged { row, len, first } => ClipError::InvalidInput(format!(
                "token row {row} has {len} positions, row 0 has {first}; pad rows to one length"
            )),
            IdRowsError::OutOfRange { id, row } => ClipError::TokenOutOfRange {
                id,
                row,
                vocab_size: vocab,
            },
        })?;
        let positions: Vec<usize> = rows.iter().map(|r| self.pool_position(r)).collect();
        let [_, width] = self.positional_embedding.dims();
        let pos = self.positional_embedding.val().slice([0..t, 0..width]);
        let x = embedding(self.token_embedding.val(), ids) + pos.unsqueeze::<3>();
        let (x, hidden) = run_blocks(&self.blocks, x, true, options.hidden_states);
        let last = precision::layer_norm(&self.ln_final, x);
        let index: Vec<i64> = positions
            .iter()
            .enumerate()
            .map(|(r, &p)| (r * t + p) as i64)
            .collect();
        let index = Tensor::<B, 1, Int>::from_data(TensorData::new(index, [n]), &device);
        let pooled = last.clone().reshape([n * t, width]).select(0, index);
        let embeds = pooled.matmul(self.text_projection.val());
        Ok(TextOutput {
            embeds: to_f32(embeds),
            last_hidden: to_f32(last),
            hidden_states: hidden.into_iter().map(to_f32).collect(),
            pooled_positions: positions,
        })
    }
}
