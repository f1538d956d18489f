//! Layers whose behaviour differs between training and evaluation, with the
//! mode chosen by the caller (PyTorch's `module.train()` / `module.eval()`),
//! never by the backend.
//!
//! burn-nn's own versions differ from the reference's where it matters:
//! burn's `BatchNorm` picks train or eval from `B::ad_enabled()` and updates
//! its running variance with the biased batch variance; burn's `Dropout` is
//! active whenever autodiff is on and draws its mask from the backend's RNG.
//! The reference's discriminator runs BatchNorm in train mode, its LPIPS
//! loss applies dropout during training, and exact resume needs masks drawn
//! from a seed the caller controls.

use burn::module::{Module, Param, RunningState};
use burn::tensor::{backend::Backend, Tensor, TensorData};
pub use rand::rngs::StdRng;
use rand::Rng;

use crate::init::Init;
use crate::load::Loader;

/// Training or evaluation behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `module.train()`: batch statistics, dropout active.
    Train,
    /// `module.eval()`: running statistics, dropout off.
    Eval,
}

/// PyTorch's `nn.BatchNorm2d(C, eps, momentum)` with affine parameters and
/// running statistics.
///
/// - [`Mode::Train`]: normalise with the batch mean and the *biased* batch
///   variance over `(N, H, W)`; move the running statistics by momentum
///   `m`: `running_mean ← (1 − m)·running_mean + m·mean`,
///   `running_var ← (1 − m)·running_var + m·var·n/(n − 1)` (the *unbiased*
///   variance, as PyTorch).
/// - [`Mode::Eval`]: normalise with the running statistics.
///
/// State-dict names: `weight`, `bias`, `running_mean`, `running_var`
/// (`num_batches_tracked` is not used with a fixed momentum).
#[derive(Module, Debug)]
pub struct BatchNorm2d<B: Backend> {
    /// Scale `[C]`.
    pub gamma: Param<Tensor<B, 1>>,
    /// Shift `[C]`.
    pub beta: Param<Tensor<B, 1>>,
    /// Running mean `[C]`.
    pub running_mean: RunningState<Tensor<B, 1>>,
    /// Running (unbiased) variance `[C]`.
    pub running_var: RunningState<Tensor<B, 1>>,
    /// Momentum of the running statistics (PyTorch's default 0.1).
    pub momentum: f64,
    /// Added to the variance (PyTorch's default 1e-5).
    pub eps: f64,
}

impl<B: Backend> BatchNorm2d<B> {
    /// Read (or draw) the layer under `vb` with PyTorch's defaults for a
    /// fresh layer: weight 1, bias 0, running mean 0, running variance 1.
    pub fn load(vb: &Loader<'_, B>, channels: usize, eps: f64, momentum: f64) -> Self {
        Self::load_init(vb, channels, eps, momentum, Init::Ones)
    }

    /// [`load`](Self::load) with another init of the weight (taming's
    /// `weights_init` draws it from N(1, 0.02)).
    pub fn load_init(
        vb: &Loader<'_, B>,
        channels: usize,
        eps: f64,
        momentum: f64,
        weight: Init,
    ) -> Self {
        Self {
            gamma: vb.param("weight", [channels], weight),
            beta: vb.param("bias", [channels], Init::Zeros),
            running_mean: vb.running("running_mean", [channels], Init::Zeros),
            running_var: vb.running("running_var", [channels], Init::Ones),
            momentum,
            eps,
        }
    }

    /// Normalise `[N, C, H, W]` in `mode` (updating the running statistics
    /// in [`Mode::Train`]; call [`sync`](Self::sync) before reading them).
    pub fn forward(&self, x: Tensor<B, 4>, mode: Mode) -> Tensor<B, 4> {
        let [n, c, h, w] = x.dims();
        let (mean, var) = match mode {
            Mode::Eval => (
                self.running_mean.value_sync(),
                self.running_var.value_sync(),
            ),
            Mode::Train => {
                let count = n * h * w;
                let flat = x.clone().swap_dims(0, 1).reshape([c, count]);
                let mean = flat.clone().mean_dim(1).reshape([c]);
                let centred = flat - mean.clone().reshape([c, 1]);
                let var = centred.square().mean_dim(1).reshape([c]);
                let m = self.momentum;
                let unbiased = if count > 1 {
                    count as f64 / (count - 1) as f64
                } else {
                    1.0
                };
                let rm = self.running_mean.value_sync().mul_scalar(1.0 - m)
                    + mean.clone().detach().mul_scalar(m);
                let rv = self.running_var.value_sync().mul_scalar(1.0 - m)
                    + var.clone().detach().mul_scalar(m * unbiased);
                self.running_mean.update(rm.detach());
                self.running_var.update(rv.detach());
                (mean, var)
            }
        };
        let shape = [1, c, 1, 1];
        let normed = (x - mean.reshape(shape)) / var.add_scalar(self.eps).sqrt().reshape(shape);
        normed * self.gamma.val().reshape(shape) + self.beta.val().reshape(shape)
    }

    /// A copy on `device` with running statistics of its own (a `clone`
    /// shares them, and `fork` would move the shared ones): the parameters
    /// keep their ids, so gradients of the copy pair with the original's.
    pub fn fork_independent(&self, device: &B::Device) -> Self {
        let own =
            |s: &RunningState<Tensor<B, 1>>| RunningState::new(s.value_sync().to_device(device));
        Self {
            gamma: self.gamma.clone().fork(device),
            beta: self.beta.clone().fork(device),
            running_mean: own(&self.running_mean),
            running_var: own(&self.running_var),
            momentum: self.momentum,
            eps: self.eps,
        }
    }

    /// Make the running statistics reflect every update so far (before
    /// reading or saving them).
    pub fn sync(&self) {
        let _ = self.running_mean.value_sync();
        let _ = self.running_var.value_sync();
    }
}

/// PyTorch's `nn.Dropout(p)` with an explicit mode and a mask drawn on the
/// host from the caller's RNG: in [`Mode::Train`] each element is kept with
/// probability `1 − p` and scaled by `1 / (1 − p)`; in [`Mode::Eval`] (or
/// with `p = 0`) it is the identity.
#[derive(Module, Debug, Clone)]
pub struct Dropout {
    /// Drop probability in `[0, 1)`.
    pub p: f64,
}

impl Dropout {
    /// Apply to `x`.
    pub fn forward<B: Backend, const D: usize>(
        &self,
        x: Tensor<B, D>,
        mode: Mode,
        rng: &mut StdRng,
    ) -> Tensor<B, D> {
        if mode == Mode::Eval || self.p <= 0.0 {
            return x;
        }
        let keep = 1.0 - self.p;
        let dims = x.dims();
        let n: usize = dims.iter().product();
        let scale = (1.0 / keep) as f32;
        let mask: Vec<f32> = (0..n)
            .map(|_| {
                if rng.random::<f64>() < keep {
                    scale
                } else {
                    0.0
                }
            })
            .collect();
        let mask = Tensor::<B, D>::from_data(TensorData::new(mask, dims), &x.device());
        x * mask
    }
}
