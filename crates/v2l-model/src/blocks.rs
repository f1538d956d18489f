//! The building blocks of the encoder and decoder, with PyTorch's parameter
//! layouts (conv `[out, in, kh, kw]`, linear `[out, in]`) so that state-dict
//! tensors load without reshuffling.

use burn::module::{Module, Param};
use burn::tensor::activation::{silu, softmax};
use burn::tensor::module::conv2d;
use burn::tensor::ops::{ConvOptions, PadMode};
use burn::tensor::{backend::Backend, Tensor};

use crate::config::{GROUP_NORM_EPS, GROUP_NORM_GROUPS};
use crate::params::{param, Init, ParamSource};

/// A 2-D convolution (square kernel, equal padding on every side unless the
/// caller pads).
#[derive(Module, Debug)]
pub struct Conv<B: Backend> {
    /// `[out, in, k, k]`.
    pub weight: Param<Tensor<B, 4>>,
    /// `[out]`.
    pub bias: Param<Tensor<B, 1>>,
    /// Stride.
    pub stride: usize,
    /// Zero padding on each side.
    pub padding: usize,
}

impl<B: Backend> Conv<B> {
    pub(crate) fn load(
        src: &mut dyn ParamSource,
        key: &str,
        [c_out, c_in, k]: [usize; 3],
        stride: usize,
        padding: usize,
        device: &B::Device,
    ) -> Self {
        let bound = 1.0 / ((c_in * k * k) as f64).sqrt();
        Self {
            weight: param(
                src,
                &format!("{key}.weight"),
                [c_out, c_in, k, k],
                Init::Uniform(bound),
                device,
            ),
            bias: param(
                src,
                &format!("{key}.bias"),
                [c_out],
                Init::Uniform(bound),
                device,
            ),
            stride,
            padding,
        }
    }

    /// Apply to `[B, C_in, H, W]` (burn's `conv2d`; on CPU the Flex
    /// backend runs it as a tuned kernel, NdArray as direct loops — see
    /// docs/benchmarks.md).
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        conv2d(
            x,
            self.weight.val(),
            Some(self.bias.val()),
            ConvOptions::new(
                [self.stride, self.stride],
                [self.padding, self.padding],
                [1, 1],
                1,
            ),
        )
    }
}

/// A linear layer stored as PyTorch does (`weight [out, in]`).
#[derive(Module, Debug)]
pub struct LinearT<B: Backend> {
    /// `[out, in]`.
    pub weight: Param<Tensor<B, 2>>,
    /// `[out]`, if the layer has one.
    pub bias: Option<Param<Tensor<B, 1>>>,
}

impl<B: Backend> LinearT<B> {
    pub(crate) fn load(
        src: &mut dyn ParamSource,
        key: &str,
        [d_out, d_in]: [usize; 2],
        bias: bool,
        device: &B::Device,
    ) -> Self {
        let bound = 1.0 / (d_in as f64).sqrt();
        Self {
            weight: param(
                src,
                &format!("{key}.weight"),
                [d_out, d_in],
                Init::Uniform(bound),
                device,
            ),
            bias: bias.then(|| {
                param(
                    src,
                    &format!("{key}.bias"),
                    [d_out],
                    Init::Uniform(bound),
                    device,
                )
            }),
        }
    }

    /// `x Wᵀ + b` for `x` `[N, in]`.
    pub fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        let y = x.matmul(self.weight.val().transpose());
        match &self.bias {
            Some(b) => y + b.val().unsqueeze_dim(0),
            None => y,
        }
    }

    /// The same for `x` `[B, N, in]`.
    pub fn forward3(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let [b, n, d] = x.dims();
        let y = self.forward(x.reshape([b * n, d]));
        let o = y.dims()[1];
        y.reshape([b, n, o])
    }
}

/// GroupNorm with 32 groups and ε = 1e-6 (the reference's `Normalize`).
#[derive(Module, Debug)]
pub struct GroupNorm<B: Backend> {
    /// Scale `[C]`.
    pub weight: Param<Tensor<B, 1>>,
    /// Shift `[C]`.
    pub bias: Param<Tensor<B, 1>>,
}

impl<B: Backend> GroupNorm<B> {
    pub(crate) fn load(
        src: &mut dyn ParamSource,
        key: &str,
        channels: usize,
        device: &B::Device,
    ) -> Self {
        Self {
            weight: param(
                src,
                &format!("{key}.weight"),
                [channels],
                Init::Ones,
                device,
            ),
            bias: param(src, &format!("{key}.bias"), [channels], Init::Zeros, device),
        }
    }

    /// Normalise `[B, C, H, W]` over each group of `C/32` channels and all
    /// positions (biased variance, as PyTorch).
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let [b, c, h, w] = x.dims();
        let g = GROUP_NORM_GROUPS;
        let n = (c / g) * h * w;
        let xg = x.reshape([b, g, n]);
        let mean = xg.clone().mean_dim(2);
        let centred = xg - mean;
        let var = centred.clone().square().mean_dim(2);
        let normed = (centred / var.add_scalar(GROUP_NORM_EPS).sqrt()).reshape([b, c, h, w]);
        normed * self.weight.val().reshape([1, c, 1, 1]) + self.bias.val().reshape([1, c, 1, 1])
    }
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
    pub(crate) fn load(
        src: &mut dyn ParamSource,
        key: &str,
        c_in: usize,
        c_out: usize,
        device: &B::Device,
    ) -> Self {
        Self {
            norm1: GroupNorm::load(src, &format!("{key}.norm1"), c_in, device),
            conv1: Conv::load(src, &format!("{key}.conv1"), [c_out, c_in, 3], 1, 1, device),
            norm2: GroupNorm::load(src, &format!("{key}.norm2"), c_out, device),
            conv2: Conv::load(
                src,
                &format!("{key}.conv2"),
                [c_out, c_out, 3],
                1,
                1,
                device,
            ),
            nin_shortcut: (c_in != c_out).then(|| {
                Conv::load(
                    src,
                    &format!("{key}.nin_shortcut"),
                    [c_out, c_in, 1],
                    1,
                    0,
                    device,
                )
            }),
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
    pub(crate) fn load(src: &mut dyn ParamSource, key: &str, c: usize, device: &B::Device) -> Self {
        let conv = |src: &mut dyn ParamSource, name: &str| {
            Conv::load(src, &format!("{key}.{name}"), [c, c, 1], 1, 0, device)
        };
        Self {
            norm: GroupNorm::load(src, &format!("{key}.norm"), c, device),
            q: conv(src, "q"),
            k: conv(src, "k"),
            v: conv(src, "v"),
            proj_out: conv(src, "proj_out"),
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

/// Zero-pad right and bottom by one, then a 3×3 stride-2 conv.
#[derive(Module, Debug)]
pub struct Downsample<B: Backend> {
    /// The strided conv.
    pub conv: Conv<B>,
}

impl<B: Backend> Downsample<B> {
    pub(crate) fn load(src: &mut dyn ParamSource, key: &str, c: usize, device: &B::Device) -> Self {
        Self {
            conv: Conv::load(src, &format!("{key}.conv"), [c, c, 3], 2, 0, device),
        }
    }

    /// Halve the spatial size.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        // (left, right, top, bottom)
        self.conv
            .forward(x.pad((0, 1, 0, 1), PadMode::Constant(0.0)))
    }
}

/// Nearest-neighbour ×2, then a 3×3 conv.
#[derive(Module, Debug)]
pub struct Upsample<B: Backend> {
    /// The conv after the repeat.
    pub conv: Conv<B>,
}

impl<B: Backend> Upsample<B> {
    pub(crate) fn load(src: &mut dyn ParamSource, key: &str, c: usize, device: &B::Device) -> Self {
        Self {
            conv: Conv::load(src, &format!("{key}.conv"), [c, c, 3], 1, 1, device),
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
    /// `[heads·dim_head, query_dim]`.
    pub to_q: LinearT<B>,
    /// `[heads·dim_head, context_dim]`.
    pub to_k: LinearT<B>,
    /// `[heads·dim_head, context_dim]`.
    pub to_v: LinearT<B>,
    /// `[query_dim, heads·dim_head]` with bias (`to_out.0`).
    pub to_out: LinearT<B>,
    /// Number of heads.
    pub heads: usize,
}

impl<B: Backend> CrossAttention<B> {
    pub(crate) fn load(
        src: &mut dyn ParamSource,
        key: &str,
        query_dim: usize,
        context_dim: usize,
        heads: usize,
        dim_head: usize,
        device: &B::Device,
    ) -> Self {
        let inner = heads * dim_head;
        Self {
            to_q: LinearT::load(
                src,
                &format!("{key}.to_q"),
                [inner, query_dim],
                false,
                device,
            ),
            to_k: LinearT::load(
                src,
                &format!("{key}.to_k"),
                [inner, context_dim],
                false,
                device,
            ),
            to_v: LinearT::load(
                src,
                &format!("{key}.to_v"),
                [inner, context_dim],
                false,
                device,
            ),
            to_out: LinearT::load(
                src,
                &format!("{key}.to_out.0"),
                [query_dim, inner],
                true,
                device,
            ),
            heads,
        }
    }

    /// `x` `[B, C, H, W]`, `context` `[B, k, context_dim]` → `[B, C, H, W]`.
    pub fn forward(&self, x: Tensor<B, 4>, context: Tensor<B, 3>) -> Tensor<B, 4> {
        let [b, c, h, w] = x.dims();
        let n = h * w;
        let tokens = x.reshape([b, c, n]).swap_dims(1, 2); // [b, n, c]
        let q = self.to_q.forward3(tokens);
        let k = self.to_k.forward3(context.clone());
        let v = self.to_v.forward3(context);
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
        let out = self.to_out.forward3(out); // [b, n, c]
        out.swap_dims(1, 2).reshape([b, c, h, w])
    }
}
