//! burn-nn layers built through a [`Loader`], with PyTorch's file names
//! (`weight`, `bias`) and layouts.
//!
//! burn-nn's semantics equal PyTorch's for these layers as the models use
//! them (checked by the parity tests of every model crate):
//!
//! | layer | file (PyTorch) | module (burn) |
//! |---|---|---|
//! | [`linear`] | `weight [out, in]`, `bias [out]` | `Linear` `weight [in, out]` (transposed at load and export) |
//! | [`conv2d`] | `weight [out, in, kh, kw]`, `bias [out]` | `Conv2d`, same layout |
//! | [`group_norm`] | `weight`, `bias` `[C]` | `GroupNorm` `gamma`, `beta` (biased variance, as PyTorch) |
//! | [`layer_norm`] | `weight`, `bias` `[D]` | `LayerNorm` `gamma`, `beta` |
//! | [`rms_norm`] | `weight [D]` | `RmsNorm` `gamma` (`x / √(mean x² + ε) · γ`, as HF LLaMA) |
//! | [`embedding`] | `weight [N, D]` | `Embedding`, same layout |
//!
//! Layers of our own stay where burn's differ from the reference's: the
//! model crates keep one line on each saying how.

use burn::nn::conv::Conv2d;
use burn::nn::{
    Embedding, GroupNorm, LayerNorm, LayerNormConfig, Linear, PaddingConfig2d, RmsNorm,
};
use burn::tensor::{backend::Backend, Int, Tensor, TensorData};

use crate::init::Init;
use crate::load::{Layout, Loader};

/// How a layer's parameters are initialised when drawn (PyTorch's defaults
/// unless a model says otherwise).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinearInit {
    /// The weight's init (file layout `[out, in]`).
    pub weight: Init,
    /// The bias's init.
    pub bias: Init,
}

impl LinearInit {
    /// PyTorch's `nn.Linear` default: both `U(±1/√in)`.
    pub fn torch(d_in: usize) -> Self {
        Self {
            weight: Init::torch_default(d_in),
            bias: Init::torch_default(d_in),
        }
    }
}

/// A PyTorch `nn.Linear(d_in, d_out, bias)` as burn's [`Linear`].
pub fn linear<B: Backend>(vb: &Loader<'_, B>, d_in: usize, d_out: usize, bias: bool) -> Linear<B> {
    linear_init(vb, d_in, d_out, bias, LinearInit::torch(d_in))
}

/// [`linear`] with another initialisation.
pub fn linear_init<B: Backend>(
    vb: &Loader<'_, B>,
    d_in: usize,
    d_out: usize,
    bias: bool,
    init: LinearInit,
) -> Linear<B> {
    Linear {
        weight: vb.param_as("weight", Layout::Transposed, &[d_out, d_in], init.weight),
        bias: bias.then(|| vb.param("bias", [d_out], init.bias)),
    }
}

/// A linear layer over `[batch, tokens, d]` as one `[batch·tokens, d]`
/// matrix product (one large GEMM instead of a batched one; same values).
pub fn linear_rows<B: Backend>(layer: &Linear<B>, x: Tensor<B, 3>) -> Tensor<B, 3> {
    let [n, t, d] = x.dims();
    let y = layer.forward(x.reshape([n * t, d]));
    let [_, out] = y.dims();
    y.reshape([n, t, out])
}

/// The geometry of a 2-D convolution.
#[derive(Debug, Clone, PartialEq)]
pub struct Conv2dSpec {
    /// `[in, out]` channels.
    pub channels: [usize; 2],
    /// `[kh, kw]`.
    pub kernel: [usize; 2],
    /// `[sh, sw]`.
    pub stride: [usize; 2],
    /// Zero padding.
    pub padding: PaddingConfig2d,
    /// Whether it has a bias.
    pub bias: bool,
}

impl Conv2dSpec {
    /// A square `k × k` conv with stride `s` and `p` zeros on every side,
    /// with a bias (PyTorch's `nn.Conv2d(c_in, c_out, k, s, p)`).
    pub fn square(c_in: usize, c_out: usize, k: usize, s: usize, p: usize) -> Self {
        Self {
            channels: [c_in, c_out],
            kernel: [k, k],
            stride: [s, s],
            padding: PaddingConfig2d::Explicit(p, p, p, p),
            bias: true,
        }
    }

    /// The file shape of the weight: `[out, in, kh, kw]`.
    pub fn weight_shape(&self) -> [usize; 4] {
        let [i, o] = self.channels;
        let [kh, kw] = self.kernel;
        [o, i, kh, kw]
    }

    /// PyTorch's default init (`U(±1/√(in·kh·kw))` for weight and bias).
    pub fn torch_init(&self) -> Init {
        let [kh, kw] = self.kernel;
        Init::torch_default(self.channels[0] * kh * kw)
    }
}

/// A PyTorch `nn.Conv2d` as burn's [`Conv2d`] (same layout), PyTorch's
/// default init.
pub fn conv2d<B: Backend>(vb: &Loader<'_, B>, spec: &Conv2dSpec) -> Conv2d<B> {
    conv2d_init(vb, spec, spec.torch_init(), spec.torch_init())
}

/// [`conv2d`] with other inits for the weight and the bias.
pub fn conv2d_init<B: Backend>(
    vb: &Loader<'_, B>,
    spec: &Conv2dSpec,
    weight: Init,
    bias: Init,
) -> Conv2d<B> {
    Conv2d {
        weight: vb.param("weight", spec.weight_shape(), weight),
        bias: spec
            .bias
            .then(|| vb.param("bias", [spec.channels[1]], bias)),
        stride: spec.stride,
        kernel_size: spec.kernel,
        dilation: [1, 1],
        groups: 1,
        padding: spec.padding.clone(),
    }
}

/// PyTorch `nn.GroupNorm(groups, channels, eps)` as burn's [`GroupNorm`].
pub fn group_norm<B: Backend>(
    vb: &Loader<'_, B>,
    groups: usize,
    channels: usize,
    eps: f64,
) -> GroupNorm<B> {
    GroupNorm {
        gamma: Some(vb.param("weight", [channels], Init::Ones)),
        beta: Some(vb.param("bias", [channels], Init::Zeros)),
        num_groups: groups,
        num_channels: channels,
        epsilon: eps,
        affine: true,
    }
}

/// PyTorch `nn.LayerNorm(d, eps)` as burn's [`LayerNorm`].
pub fn layer_norm<B: Backend>(vb: &Loader<'_, B>, d: usize, eps: f64) -> LayerNorm<B> {
    let mut ln = LayerNormConfig::new(d)
        .with_epsilon(eps)
        .init::<B>(vb.device());
    ln.gamma = vb.param("weight", [d], Init::Ones);
    ln.beta = Some(vb.param("bias", [d], Init::Zeros));
    ln
}

/// HF `LlamaRMSNorm(d, eps)` as burn's [`RmsNorm`].
pub fn rms_norm<B: Backend>(vb: &Loader<'_, B>, d: usize, eps: f64) -> RmsNorm<B> {
    RmsNorm {
        gamma: vb.param("weight", [d], Init::Ones),
        epsilon: eps,
    }
}

/// PyTorch `nn.Embedding(n, d)` as burn's [`Embedding`].
pub fn embedding<B: Backend>(vb: &Loader<'_, B>, n: usize, d: usize, init: Init) -> Embedding<B> {
    Embedding {
        weight: vb.param("weight", [n, d], init),
    }
}

/// Why rows of token ids cannot become an id matrix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdRowsError {
    /// No rows, or an empty first row.
    Empty,
    /// Row `row` has `len` ids where row 0 has `first`.
    Ragged {
        /// The row.
        row: usize,
        /// Its length.
        len: usize,
        /// The length of row 0.
        first: usize,
    },
    /// `id` (in row `row`) is not below the vocabulary size.
    OutOfRange {
        /// The id.
        id: u32,
        /// Its row.
        row: usize,
    },
}

/// Rows of equal length whose ids are all below `vocab`, as the `[rows,
/// len]` int tensor an [`Embedding`] (or an embedding matrix) looks up.
///
/// # Errors
/// [`IdRowsError`] for no rows, rows of different lengths, or an id out of
/// range (the first in row order).
pub fn id_matrix<B: Backend>(
    rows: &[Vec<u32>],
    vocab: usize,
    device: &B::Device,
) -> Result<Tensor<B, 2, Int>, IdRowsError> {
    let n = rows.len();
    let t = rows.first().map_or(0, Vec::len);
    if n == 0 || t == 0 {
        return Err(IdRowsError::Empty);
    }
    let mut flat = Vec::with_capacity(n * t);
    for (r, row) in rows.iter().enumerate() {
        if row.len() != t {
            return Err(IdRowsError::Ragged {
                row: r,
                len: row.len(),
                first: t,
            });
        }
        if let Some(&id) = row.iter().find(|&&id| id as usize >= vocab) {
            return Err(IdRowsError::OutOfRange { id, row: r });
        }
        flat.extend(row.iter().map(|&id| i64::from(id)));
    }
    Ok(Tensor::from_data(TensorData::new(flat, [n, t]), device))
}
