//! EfficientNet-Lite0, the ImageNet-1k classifier of the ConSE image side,
//! read from the `efficientnet_pytorch` key layout (`_conv_stem`, `_bn0`,
//! `_blocks.N._expand_conv` / `_depthwise_conv` / `_project_conv` with their
//! batch norms, `_conv_head`, `_bn1`, `_fc`).
//!
//! The Lite variants differ from EfficientNet-B0 in three ways: ReLU6
//! instead of swish, no squeeze-and-excitation, and a stem and head that are
//! not scaled. Convolutions pad as TensorFlow's `SAME` (total padding
//! `max((⌈i/s⌉ − 1)·s + k − i, 0)`, the smaller half before), computed from
//! the input size at each call. Batch norm (ε = 1e-3) is folded into the
//! preceding convolution at load, in f64 rounded to f32:
//! `s = γ / √(var + ε)`, `w' = w·s`, `b' = β − mean·s`. Inference only.

use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::tensor::backend::Backend;
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Tensor, TensorData};
use v2l_io::tensors::TensorSource;
use v2l_nn::precision::to_dtype;
use v2l_nn::{Init, Loader, Unexpected};

use crate::error::{Result, VlError};

/// Batch-norm epsilon of the Lite models (TensorFlow's 1e-3).
pub const BN_EPS: f64 = 1e-3;
/// ImageNet-1k classes of the head.
pub const NUM_CLASSES: usize = 1000;
/// Input resolution of Lite0.
pub const IMAGE_SIZE: usize = 224;
/// Width of the features before the head (`_conv_head` output).
pub const FEATURES: usize = 1280;

/// One stage of MBConv blocks: `(repeats, kernel, stride, expand ratio,
/// input channels, output channels)` — the Lite0 rows of the official
/// builder (`r1_k3_s11_e1_i32_o16`, …).
const STAGES: [(usize, usize, usize, usize, usize, usize); 7] = [
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
];

/// A convolution with its batch norm folded in.
#[derive(Module, Debug)]
pub struct ConvBn<B: Backend> {
    /// Folded weight `[c_out, c_in / groups, k, k]`.
    pub weight: Param<Tensor<B, 4>>,
    /// Folded bias `[c_out]`.
    pub bias: Param<Tensor<B, 1>>,
    /// Stride (both axes).
    pub stride: usize,
    /// Groups (the channel count for depthwise convolutions).
    pub groups: usize,
}

impl<B: Backend> ConvBn<B> {
    /// `conv2d(pad_same(x), w', b')`.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let [_, _, h, w] = x.dims();
        let [_, _, k, _] = self.weight.dims();
        let (top, bottom) = same_padding(h, k, self.stride);
        let (left, right) = same_padding(w, k, self.stride);
        let x = if top + bottom + left + right > 0 {
            pad_zeros(x, (left, right, top, bottom))
        } else {
            x
        };
        conv2d(
            x,
            self.weight.val(),
            Some(self.bias.val()),
            ConvOptions::new([self.stride, self.stride], [0, 0], [1, 1], self.groups),
        )
    }
}

/// Zero padding `(left, right, top, bottom)` in `x`'s own dtype (burn's
/// `pad` builds its canvas in the device's default dtype, which an f16
/// tensor cannot be assigned into).
fn pad_zeros<B: Backend>(
    x: Tensor<B, 4>,
    (l, r, t, b): (usize, usize, usize, usize),
) -> Tensor<B, 4> {
    let [n, c, h, w] = x.dims();
    let canvas = to_dtype(
        Tensor::<B, 4>::zeros([n, c, h + t + b, w + l + r], &x.device()),
        x.dtype(),
    );
    canvas.slice_assign([0..n, 0..c, t..t + h, l..l + w], x)
}

/// TensorFlow `SAME` padding along one axis: `(before, after)`.
pub fn same_padding(size: usize, kernel: usize, stride: usize) -> (usize, usize) {
    let out = size.div_ceil(stride.max(1));
    let total = (out.saturating_sub(1) * stride + kernel).saturating_sub(size);
    (total / 2, total - total / 2)
}

fn relu6<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 4> {
    x.clamp(0.0, 6.0)
}

/// An MBConv block without squeeze-and-excitation.
#[derive(Module, Debug)]
pub struct MbConv<B: Backend> {
    /// `_expand_conv` + `_bn0` (absent when the expand ratio is 1).
    pub expand: Option<ConvBn<B>>,
    /// `_depthwise_conv` + `_bn1`.
    pub depthwise: ConvBn<B>,
    /// `_project_conv` + `_bn2`.
    pub project: ConvBn<B>,
    /// Whether the input is added to the output (stride 1, same channels).
    pub skip: bool,
}

impl<B: Backend> MbConv<B> {
    /// The block's output.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let mut y = x.clone();
        if let Some(e) = &self.expand {
            y = relu6(e.forward(y));
        }
        y = relu6(self.depthwise.forward(y));
        y = self.project.forward(y);
        if self.skip {
            y + x
        } else {
            y
        }
    }
}

/// EfficientNet-Lite0 with batch norm folded (module documentation).
#[derive(Module, Debug)]
pub struct EfficientNetLite<B: Backend> {
    /// `_conv_stem` + `_bn0`.
    pub stem: ConvBn<B>,
    /// `_blocks.0` … `_blocks.15`.
    pub blocks: Vec<MbConv<B>>,
    /// `_conv_head` + `_bn1`.
    pub head: ConvBn<B>,
    /// `_fc` (1280 → 1000).
    pub fc: Linear<B>,
}

impl<B: Backend> EfficientNetLite<B> {
    /// Build Lite0 from a tensor source in `efficientnet_pytorch` names
    /// (batch norms' `num_batches_tracked` are ignored).
    ///
    /// # Errors
    /// [`VlError::Load`] listing every missing, mis-shaped or unexpected
    /// tensor; [`VlError::InvalidWeights`] for a batch norm whose
    /// `var + ε` is not positive.
    pub fn from_source(source: &dyn TensorSource, device: &B::Device) -> Result<Self> {
        let vb = Loader::<B>::from_source(source, device);
        let mut bad = Vec::new();
        let stem = conv_bn(&vb, "_conv_stem", "_bn0", [32, 3, 3, 2, 1], &mut bad);
        let mut blocks = Vec::new();
        for &(repeats, k, s, e, c_in, c_out) in &STAGES {
            for r in 0..repeats {
                let (c_in, s) = if r == 0 { (c_in, s) } else { (c_out, 1) };
                let mid = c_in * e;
                let b = vb.pp(format!("_blocks.{}", blocks.len()));
                let expand = (e != 1)
                    .then(|| conv_bn(&b, "_expand_conv", "_bn0", [mid, c_in, 1, 1, 1], &mut bad));
                let depthwise =
                    conv_bn(&b, "_depthwise_conv", "_bn1", [mid, 1, k, s, mid], &mut bad);
                let project = conv_bn(&b, "_project_conv", "_bn2", [c_out, mid, 1, 1, 1], &mut bad);
                blocks.push(MbConv {
                    expand,
                    depthwise,
                    project,
                    skip: s == 1 && c_in == c_out,
                });
            }
        }
        let head = conv_bn(
            &vb,
            "_conv_head",
            "_bn1",
            [FEATURES, 320, 1, 1, 1],
            &mut bad,
        );
        let fc = v2l_nn::layers::linear(&vb.pp("_fc"), FEATURES, NUM_CLASSES, true);
        let result = vb.finish(Unexpected::All);
        match result {
            Ok(_) => {}
            Err(e) => {
                // num_batches_tracked counters are bookkeeping, not weights.
                let mut e = *e;
                e.unexpected.retain(|k| !k.ends_with("num_batches_tracked"));
                if e.count() > 0 {
                    return Err(VlError::Load(Box::new(e)));
                }
            }
        }
        if let Some((key, msg)) = bad.into_iter().next() {
            return Err(VlError::InvalidWeights(format!("{key}: {msg}")));
        }
        Ok(Self {
            stem,
            blocks,
            head,
            fc,
        })
    }

    /// Features after the head convolution, average-pooled: `[N, 1280]`.
    pub fn features(&self, images: Tensor<B, 4>) -> Tensor<B, 2> {
        let mut x = relu6(self.stem.forward(images));
        for b in &self.blocks {
            x = b.forward(x);
        }
        let x = relu6(self.head.forward(x));
        let [n, c, _, _] = x.dims();
        x.mean_dim(3).mean_dim(2).reshape([n, c])
    }

    /// Class logits `[N, 1000]` for normalised images `[N, 3, H, W]`.
    pub fn forward(&self, images: Tensor<B, 4>) -> Tensor<B, 2> {
        self.fc.forward(self.features(images))
    }
}

/// Read `conv` and its batch norm `bn` and fold them; the shape is
/// `[c_out, c_in / groups, kernel, stride, groups]`.
fn conv_bn<B: Backend>(
    vb: &Loader<'_, B>,
    conv: &str,
    bn: &str,
    [c_out, c_in_per_group, k, stride, groups]: [usize; 5],
    bad: &mut Vec<(String, String)>,
) -> ConvBn<B> {
    let cv = vb.pp(conv);
    let mut weight = cv.values("weight", &[c_out, c_in_per_group, k, k], Init::Zeros);
    let b = vb.pp(bn);
    let gamma = b.values("weight", &[c_out], Init::Ones);
    let beta = b.values("bias", &[c_out], Init::Zeros);
    let mean = b.values("running_mean", &[c_out], Init::Zeros);
    let var = b.values("running_var", &[c_out], Init::Ones);
    let per_out = c_in_per_group * k * k;
    let mut bias = Vec::with_capacity(c_out);
    for (ch, w) in weight.chunks_mut(per_out.max(1)).enumerate().take(c_out) {
        let denom = f64::from(var[ch]) + BN_EPS;
        if denom <= 0.0 || !denom.is_finite() {
            bad.push((
                b.key("running_var"),
                format!("channel {ch}: var + eps = {denom}"),
            ));
            bias.push(0.0);
            continue;
        }
        let s = f64::from(gamma[ch]) / denom.sqrt();
        for v in w.iter_mut() {
            *v = (f64::from(*v) * s) as f32;
        }
        bias.push((f64::from(beta[ch]) - f64::from(mean[ch]) * s) as f32);
    }
    let device = vb.device();
    ConvBn {
        weight: Param::from_tensor(Tensor::from_data(
            TensorData::new(weight, [c_out, c_in_per_group, k, k]),
            device,
        ))
        .set_require_grad(false),
        bias: Param::from_tensor(Tensor::from_data(TensorData::new(bias, [c_out]), device))
            .set_require_grad(false),
        stride,
        groups,
    }
}

#[cfg(test)]
mod tests {
    use super::same_padding;

    #[test]
    fn same_padding_matches_tensorflow() {
        // 224, k3 s2 → out 112, total (111·2 + 3) − 224 = 1 → (0, 1).
        assert_eq!(same_padding(224, 3, 2), (0, 1));
        // 56, k5 s2 → out 28, total 27·2 + 5 − 56 = 3 → (1, 2).
        assert_eq!(same_padding(56, 5, 2), (1, 2));
        // stride 1: k − 1 split evenly.
        assert_eq!(same_padding(14, 5, 1), (2, 2));
        assert_eq!(same_padding(7, 1, 1), (0, 0));
    }
}
