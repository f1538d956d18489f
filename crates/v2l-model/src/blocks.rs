//! The building blocks of the encoder and decoder: burn-nn's `Conv2d`,
//! `Linear` and `GroupNorm` loaded through `v2l-nn` with the reference's
//! state-dict names (conv `[out, in, kh, kw]` as stored; linear weights
//! stored `[out, in]` and transposed at load and export).

use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::nn::{GroupNorm, Linear, PaddingConfig2d};
use burn::tensor::activation::{silu, softmax};
use burn::tensor::{backend::Backend, Tensor};
use v2l_nn::layers::{self, linear_rows, Conv2dSpec};
use v2l_nn::Loader;

use crate::config::{GROUP_NORM_EPS, GROUP_NORM_GROUPS};

/// A 2-D convolution (burn-nn's, PyTorch's layout and semantics).
pub type Conv<B> = Conv2d<B>;

/// A square conv with `p` zeros on every side and a bias, PyTorch's
/// default init.
pub(crate) fn conv<B: Backend>(
    vb: &Loader<'_, B>,
    [c_out, c_in, k]: [usize; 3],
    stride: usize,
    padding: usize,
) -> Conv<B> {
    layers::conv2d(vb, &Conv2dSpec::square(c_in, c_out, k, stride, padding))
}

/// The reference's `Normalize`: GroupNorm with 32 groups and ε = 1e-6.
pub(crate) fn normalize<B: Backend>(vb: &Loader<'_, B>, channels: usize) -> GroupNorm<B> {
    layers::group_norm(vb, GROUP_NORM_GROUPS, channels, GROUP_NORM_EPS)
}

/// `x · sigmoid(x)`.
pub(crate) fn swish<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 4> {
    silu(x)
}

/// Pre-activation residual block: GroupNorm, swish, 3×3 conv, twice, plus a
/// 1×1 `nin_shortcut` when the channel count changes.
#[derive(Module, Debug)]
pub struct ResnetBlock<B: Backend> {
    /// First norm.
    pub norm1: GroupNorm<B>,
    /// First conv.
    pub conv1: Conv<B>,
    /// Second norm.
    pub norm2: GroupNorm<B>,
    /// Second conv.
    pub conv2: Conv<B>,
    /// Shortcut when `in ≠ out`.
    pub nin_shortcut: Option<Conv<B>>,
}

impl<B: Backend> ResnetBlock<B> {
    pub(crate) fn load(vb: &Loader<'_, B>, c_in: usize, c_out: usize) -> Self {
        Self {
            norm1: normalize(&vb.pp("norm1"), c_in),
            conv1: conv(&vb.pp("conv1"), [c_out, c_in, 3], 1, 1),
            norm2: normalize(&vb.pp("norm2"), c_out),
            conv2: conv(&vb.pp("conv2"), [c_out, c_out, 3], 1, 1),
            nin_shortcut: (c_in != c_out)
                .then(|| conv(&vb.pp("nin_shortcut"), [c_out, c_in, 1], 1, 0)),
        }
    }

    /// Apply (dropout is 0 in the reference and not applied here).
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let h = self.conv1.forward(swish(self.norm1.forward(x.clone())));
        let h = self.conv2.forward(swish(self.norm2.forward(h)));
        let x = match &self.nin_shortcut {
            Some(s) => s.forward(x),
            None => x,
        };
        x + h
    }
}

/// Single-head spatial self-attention with 1×1 convs and a residual.
#[derive(Module, Debug)]
pub struct AttnBlock<B: Backend> {
    /// Input norm.
    pub norm: GroupNorm<B>,
    /// Query projection.
    pub q: Conv<B>,
    /// Key projection.
    pub k: Conv<B>,
    /// Value projection.
    pub v: Conv<B>,
    /// Output projection.
    pub proj_out: Conv<B>,
}

impl<B: Backend> AttnBlock<B> {
    pub(crate) fn load(vb: &Loader<'_, B>, c: usize) -> Self {
        let one = |name: &str| conv(&vb.pp(name), [c, c, 1], 1, 0);
        Self {
            norm: normalize(&vb.pp("norm"), c),
            q: one("q"),
            k: one("k"),
            v: one("v"),
            proj_out: one("proj_out"),
        }
    }

    /// `x + proj_out(softmax(qᵀk / √C) applied to v)`.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let [b, c, h, w] = x.dims();
        let hn = self.norm.forward(x.clone());
        let q = self.q.forward(hn.clone()).reshape([b, c, h * w]);
        let k = self.k.forward(hn.clone()).reshape([b, c, h * w]);
        let v = self.v.forward(hn).reshape([b, c, h * w]);
        // [b, hw(query), hw(key)]
        let scores = q
            .swap_dims(1, 2)
            .matmul(k)
            .mul_scalar((c as f64).powf(-0.5));
        let attn = softmax(scores, 2);
        // out[c, i] = Σ_j v[c, j] · attn[i, j]
        let out = v.matmul(attn.swap_dims(1, 2)).reshape([b, c, h, w]);
        x + self.proj_out.forward(out)
    }
}

/// Zero-pad right and bottom by one, then a 3×3 stride-2 conv (the
/// reference's `F.pad(x, (0, 1, 0, 1))` is the conv's own asymmetric
/// padding here).
#[derive(Module, Debug)]
pub struct Downsample<B: Backend> {
    /// The strided conv.
    pub conv: Conv<B>,
}

impl<B: Backend> Downsample<B> {
    pub(crate) fn load(vb: &Loader<'_, B>, c: usize) -> Self {
        let spec = Conv2dSpec {
            // (top, left, bottom, right)
            padding: PaddingConfig2d::Explicit(0, 0, 1, 1),
            ..Conv2dSpec::square(c, c, 3, 2, 0)
        };
        Self {
            conv: layers::conv2d(&vb.pp("conv"), &spec),
        }
    }

    /// Halve the spatial size.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        self.conv.forward(x)
    }
}

/// Nearest-neighbour ×2, then a 3×3 conv.
#[derive(Module, Debug)]
pub struct Upsample<B: Backend> {
    /// The conv after the repeat.
    pub conv: Conv<B>,
}

impl<B: Backend> Upsample<B> {
    pub(crate) fn load(vb: &Loader<'_, B>, c: usize) -> Self {
        Self {
            conv: conv(&vb.pp("conv"), [c, c, 3], 1, 1),
        }
    }

    /// Double the spatial size.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        self.conv.forward(nearest2x(x))
    }
}

/// Nearest-neighbour ×2 by repetition (exact, and differentiable on every
/// backend).
pub(crate) fn nearest2x<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 4> {
    let [b, c, h, w] = x.dims();
    x.reshape([b, c, h, 1, w, 1])
        .expand([b, c, h, 2, w, 2])
        .reshape([b, c, 2 * h, 2 * w])
}

/// Multi-head cross-attention from image positions (queries) to the global
/// codes (keys and values); no bias on q/k/v, bias on the output. Its output
/// replaces the features (no residual, no norm), as in the reference.
#[derive(Module, Debug)]
pub struct CrossAttention<B: Backend> {
    /// `query_dim → heads·dim_head` (file `[heads·dim_head, query_dim]`).
    pub to_q: Linear<B>,
    /// `[heads·dim_head, context_dim]`.
    pub to_k: Linear<B>,
    /// `[heads·dim_head, context_dim]`.
    pub to_v: Linear<B>,
    /// `[query_dim, heads·dim_head]` with bias (`to_out.0`).
    pub to_out: Linear<B>,
    /// Number of heads.
    pub heads: usize,
}

impl<B: Backend> CrossAttention<B> {
    pub(crate) fn load(
        vb: &Loader<'_, B>,
        query_dim: usize,
        context_dim: usize,
        heads: usize,
        dim_head: usize,
    ) -> Self {
        let inner = heads * dim_head;
        Self {
            to_q: layers::linear(&vb.pp("to_q"), query_dim, inner, false),
            to_k: layers::linear(&vb.pp("to_k"), context_dim, inner, false),
            to_v: layers::linear(&vb.pp("to_v"), context_dim, inner, false),
            to_out: layers::linear(&vb.pp("to_out.0"), inner, query_dim, true),
            heads,
        }
    }

    /// `x` `[B, C, H, W]`, `context` `[B, k, context_dim]` → `[B, C, H, W]`.
    pub fn forward(&self, x: Tensor<B, 4>, context: Tensor<B, 3>) -> Tensor<B, 4> {
        let [b, c, h, w] = x.dims();
        let n = h * w;
        let tokens = x.reshape([b, c, n]).swap_dims(1, 2); // [b, n, c]
        let q = linear_rows(&self.to_q, tokens);
        let k = linear_rows(&self.to_k, context.clone());
        let v = linear_rows(&self.to_v, context);
        let inner = q.dims()[2];
        let heads = self.heads;
        let d = inner / heads;
        let m = k.dims()[1];
        let split = |t: Tensor<B, 3>, len: usize| t.reshape([b, len, heads, d]).swap_dims(1, 2);
        let q = split(q, n); // [b, heads, n, d]
        let k = split(k, m);
        let v = split(v, m);
        let scores = q
            .matmul(k.swap_dims(2, 3))
            .mul_scalar((d as f64).powf(-0.5));
        let attn = softmax(scores, 3);
        let out = attn.matmul(v).swap_dims(1, 2).reshape([b, n, inner]);
        let out = linear_rows(&self.to_out, out); // [b, n, c]
        out.swap_dims(1, 2).reshape([b, c, h, w])
    }
}
