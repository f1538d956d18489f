//! The reference's patch discriminator: taming's
//! `NLayerDiscriminator(input_nc=3, ndf=64, n_layers=2, use_actnorm=False)`
//! (spec §3.6), with its state-dict names (`main.{i}.…`) and its
//! `weights_init` for a fresh one.
//!
//! ```text
//! main.0  Conv 4×4 s2 p1, 3 → ndf, bias          main.1  LeakyReLU(0.2)
//! main.2  Conv 4×4 s2 p1, ndf → 2·ndf, no bias   main.3  BatchNorm  main.4  LeakyReLU
//! main.5  Conv 4×4 s1 p1, 2·ndf → 4·ndf, no bias main.6  BatchNorm  main.7  LeakyReLU
//! main.8  Conv 4×4 s1 p1, 4·ndf → 1, bias
//! ```
//!
//! A 128 × 128 input gives a 30 × 30 map of logits. BatchNorm runs in the
//! mode the caller gives (the reference trains it in train mode in both
//! passes).

use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::tensor::activation::leaky_relu;
use burn::tensor::{backend::Backend, Tensor};
use v2l_nn::layers::{self, Conv2dSpec};
use v2l_nn::modes::{BatchNorm2d, Mode};
use v2l_nn::{Init, Loader};

/// LeakyReLU slope.
const SLOPE: f64 = 0.2;
/// BatchNorm epsilon and momentum (PyTorch's defaults).
const BN_EPS: f64 = 1e-5;
const BN_MOMENTUM: f64 = 0.1;

/// The patch discriminator.
#[derive(Module, Debug)]
pub struct NLayerDiscriminator<B: Backend> {
    /// The convolutions `main.0`, `main.2`, `main.5`, `main.8`.
    pub convs: Vec<Conv2d<B>>,
    /// The BatchNorms `main.3`, `main.6`.
    pub norms: Vec<BatchNorm2d<B>>,
}

/// A 4×4 conv with padding 1.
fn conv4<B: Backend>(vb: &Loader<'_, B>, c: [usize; 2], stride: usize, bias: bool) -> Conv2d<B> {
    let spec = Conv2dSpec {
        bias,
        ..Conv2dSpec::square(c[0], c[1], 4, stride, 1)
    };
    // `weights_init`: conv weights N(0, 0.02); conv biases keep PyTorch's
    // default.
    layers::conv2d_init(vb, &spec, Init::Normal(0.02), spec.torch_init())
}

impl<B: Backend> NLayerDiscriminator<B> {
    /// Build under `vb` (the `discriminator.` scope of an official
    /// checkpoint, or a fresh seeded one) with `ndf` base channels.
    pub fn load(vb: &Loader<'_, B>, ndf: usize) -> Self {
        // `weights_init`: BatchNorm weights N(1, 0.02), biases 0.
        let bn = |name: &str, c: usize| {
            BatchNorm2d::load_init(
                &vb.pp(name),
                c,
                BN_EPS,
                BN_MOMENTUM,
                Init::NormalAround(1.0, 0.02),
            )
        };
        Self {
            convs: vec![
                conv4(&vb.pp("main.0"), [3, ndf], 2, true),
                conv4(&vb.pp("main.2"), [ndf, 2 * ndf], 2, false),
                conv4(&vb.pp("main.5"), [2 * ndf, 4 * ndf], 1, false),
                conv4(&vb.pp("main.8"), [4 * ndf, 1], 1, true),
            ],
            norms: vec![bn("main.3", 2 * ndf), bn("main.6", 4 * ndf)],
        }
    }

    /// A copy on `device` for another data-parallel peer: the same
    /// parameters (ids included), BatchNorm running statistics of its own.
    pub fn fork_peer(&self, device: &B::Device) -> Self {
        Self {
            convs: self.convs.iter().map(|c| c.clone().fork(device)).collect(),
            norms: self
                .norms
                .iter()
                .map(|n| n.fork_independent(device))
                .collect(),
        }
    }

    /// Logits `[N, 1, h, w]` of images `[N, 3, H, W]` in [-1, 1].
    pub fn forward(&self, x: Tensor<B, 4>, mode: Mode) -> Tensor<B, 4> {
        let mut h = leaky_relu(self.convs[0].forward(x), SLOPE);
        for (conv, norm) in self.convs[1..3].iter().zip(&self.norms) {
            h = leaky_relu(norm.forward(conv.forward(h), mode), SLOPE);
        }
        self.convs[3].forward(h)
    }
}
