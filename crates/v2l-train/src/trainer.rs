//! One training iteration of the reference (`training/engine_training.py`
//! `train_one_epoch`, `models/models_v2l.py` `forward`), spec §3.6 and §4.
//!
//! **Generator step.** `rec = mean|x − x̂|`, `p = mean LPIPS-VGG(x, x̂)`,
//! `qloss` (§3.3), `g = −mean D(x̂)`, and the adaptive weight
//! `d_weight = rate_d · clamp(‖∇_W(rec + rate_p·p)‖ / (‖∇_W g‖ + 1e-4), 0, 1e4)`
//! on `W = decoder.conv_out.weight`, computed every step; the loss is
//! `rec + rate_q·qloss + rate_p·p (+ d_weight·g once cur_iter > disc_start)`;
//! Adam(β 0.5 / 0.9, ε 1e-7).
//!
//! burn's backward consumes the graph, so the loss is split at `x̂`: the
//! image-side losses are differentiated with respect to detached copies of
//! `x̂` (giving `∂(rec + rate_p·p)/∂x̂` and `∂g/∂x̂`); `∇_W` of each follows
//! from the decoder's last features alone (`x̂ = conv_out(features)`); then
//! one backward of the surrogate `Σ x̂ ⊙ G + rate_q·qloss`, with
//! `G = ∂(rec + rate_p·p)/∂x̂ + d_weight·∂g/∂x̂`, gives every parameter the
//! gradient of the reference's loss (the image-side losses reach the
//! generator only through `x̂`).
//!
//! **Discriminator step** (once `cur_iter > disc_start` and `rate_d ≠ 0`):
//! a second forward through the just-updated generator, then
//! `0.5·(mean relu(1 − D(x)) + mean relu(1 + D(x̂)))`, BatchNorm in train
//! mode (the generator pass's `D(x̂)` updates its running statistics too,
//! as in the reference).

use burn::module::{AutodiffModule, Module, ModuleVisitor, Param};
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{Adam, AdamConfig, GradientsAccumulator, GradientsParams, Optimizer};
use burn::tensor::activation::relu;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{ElementConversion, Int, Tensor};
use rand::SeedableRng;
use v2l_metrics::lpips::Lpips;
use v2l_model::V2lModel;
use v2l_nn::modes::{Mode, StdRng};

use crate::discriminator::NLayerDiscriminator;
use crate::error::{Result, TrainError};

/// Adam's β₁, β₂ and ε of both optimisers (reference).
pub const ADAM_BETAS: (f32, f32) = (0.5, 0.9);
/// Adam's ε (reference).
pub const ADAM_EPS: f32 = 1e-7;
/// Added to `‖∇_W g‖` in the adaptive weight (reference).
pub const D_WEIGHT_EPS: f64 = 1e-4;
/// Upper clamp of the adaptive weight before `rate_d` (reference).
pub const D_WEIGHT_MAX: f64 = 1e4;
/// LPIPS lin-layer dropout probability (taming's `NetLinLayer`).
pub const LPIPS_DROPOUT: f64 = 0.5;

/// The loss weights and switches of one run.
#[derive(Debug, Clone, PartialEq)]
pub struct LossConfig {
    /// Weight of `qloss`.
    pub rate_q: f64,
    /// Weight of LPIPS.
    pub rate_p: f64,
    /// Factor on the adaptive GAN weight (0 turns the discriminator off).
    pub rate_d: f64,
    /// GAN terms once `cur_iter > disc_start`.
    pub disc_start: u64,
    /// LPIPS dropout active (faithful: the reference trains with it on).
    pub lpips_dropout: bool,
    /// The corrected `code-entropy` mode: `(weight, settings)` of the
    /// code-usage entropy term added to the generator loss (`None`: the
    /// reference's loss).
    pub code_entropy: Option<(f64, v2l_model::CodeEntropy)>,
    /// Iterations per optimiser step (`accum_iter`).
    pub accum_iter: usize,
    /// How gradients of the `accum_iter` iterations combine.
    pub accum_mode: AccumMode,
}

/// How `accum_iter > 1` combines gradients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccumMode {
    /// The reference: `zero_grad` runs every iteration, so each optimiser
    /// step (every `accum_iter`-th iteration of an epoch) uses only that
    /// iteration's gradients.
    Faithful,
    /// Corrected: the optimiser step uses the mean of the `accum_iter`
    /// iterations' gradients.
    Mean,
}

/// How the global branch is fed.
#[derive(Debug, Clone)]
pub enum GlobalInput<B: AutodiffBackend> {
    /// Image embeddings `[B, D]` (L2-normalised inside, top-k searched).
    Embedding(Tensor<B, 2>),
    /// Global ids `[B, k]` given directly.
    Ids(Tensor<B, 2, Int>),
}

/// What one iteration measured (all values read back from the device).
#[derive(Debug, Clone, PartialEq)]
pub struct StepReport {
    /// `mean|x − x̂|`.
    pub rec_loss: f64,
    /// `mean LPIPS(x, x̂)`.
    pub p_loss: f64,
    /// The quantiser's loss.
    pub qloss: f64,
    /// `−mean D(x̂)` of the generator pass.
    pub g_loss: f64,
    /// The adaptive weight (× `rate_d`), computed every step.
    pub d_weight: f64,
    /// `‖∇_W(rec + rate_p·p)‖` on `decoder.conv_out.weight`.
    pub nll_grad_norm: f64,
    /// `‖∇_W g‖` on `decoder.conv_out.weight`.
    pub g_grad_norm: f64,
    /// The generator's total loss.
    pub loss: f64,
    /// The L2 norm of all generator gradients.
    pub grad_norm: f64,
    /// The discriminator's loss, when its step ran.
    pub d_loss: Option<f64>,
    /// `mean|x − x̂|` of the discriminator step's second forward.
    pub rec_loss_2: Option<f64>,
    /// The code-usage entropy term (unweighted), when that mode is on.
    pub code_entropy: Option<f64>,
    /// Local ids of the batch (row-major per image).
    pub local_ids: Vec<u32>,
}

impl StepReport {
    /// The first loss term that is NaN or infinite, by name.
    pub fn non_finite(&self) -> Option<&'static str> {
        let terms = [
            ("rec_loss", self.rec_loss),
            ("p_loss", self.p_loss),
            ("qloss", self.qloss),
            ("g_loss", self.g_loss),
            ("d_weight", self.d_weight),
            ("loss", self.loss),
            ("grad_norm", self.grad_norm),
            ("d_loss", self.d_loss.unwrap_or(0.0)),
            ("code_entropy", self.code_entropy.unwrap_or(0.0)),
        ];
        terms.iter().find(|(_, v)| !v.is_finite()).map(|(n, _)| *n)
    }
}

/// The inputs of one iteration ([`Trainer::step`]'s arguments).
#[derive(Debug, Clone)]
pub struct Iteration<B: AutodiffBackend> {
    /// `[B, 3, S, S]` in `[-1, 1]`.
    pub images: Tensor<B, 4>,
    /// The global branch's input.
    pub global: GlobalInput<B>,
    /// The iteration's index in the run (`disc_start` compares with it).
    pub cur_iter: u64,
    /// The iteration's index in its epoch (`accum_iter` counts with it).
    pub within_epoch: u64,
    /// The learning rate of both optimisers.
    pub lr: f64,
    /// Seeds the LPIPS dropout masks.
    pub rng_seed: u64,
}

/// Which network's gradients a [`GradientSync`] is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Net {
    /// The tokenizer (generator).
    Generator,
    /// The patch discriminator.
    Discriminator,
}

/// Combines one peer's gradients with the other peers' before an optimiser
/// step (the identity on a single device).
pub type GradientSync<'a> = dyn FnMut(Net, GradientsParams) -> Result<GradientsParams> + 'a;

/// The generator's optimiser.
pub type GeneratorOptim<B> = OptimizerAdaptor<Adam, V2lModel<B>, B>;
/// The discriminator's optimiser.
pub type DiscriminatorOptim<B> = OptimizerAdaptor<Adam, NLayerDiscriminator<B>, B>;

/// The reference's Adam for either network.
pub fn adam<B: AutodiffBackend, M: AutodiffModule<B>>() -> OptimizerAdaptor<Adam, M, B> {
    AdamConfig::new()
        .with_beta_1(ADAM_BETAS.0)
        .with_beta_2(ADAM_BETAS.1)
        .with_epsilon(ADAM_EPS)
        .init()
}

/// The networks and optimisers of a run.
pub struct Trainer<B: AutodiffBackend> {
    /// The tokenizer being trained.
    pub model: V2lModel<B>,
    /// The patch discriminator.
    pub disc: NLayerDiscriminator<B>,
    /// LPIPS-VGG (frozen).
    pub lpips: Lpips<B>,
    /// Adam over the generator.
    pub opt_g: GeneratorOptim<B>,
    /// Adam over the discriminator.
    pub opt_d: DiscriminatorOptim<B>,
    /// Loss weights.
    pub loss: LossConfig,
    /// Global tokens per image.
    pub k: usize,
    acc_g: GradientsAccumulator<V2lModel<B>>,
    acc_d: GradientsAccumulator<NLayerDiscriminator<B>>,
}

impl<B: AutodiffBackend> std::fmt::Debug for Trainer<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trainer")
            .field("model", &self.model.config())
            .field("loss", &self.loss)
            .field("k", &self.k)
            .finish_non_exhaustive()
    }
}

impl<B: AutodiffBackend> Trainer<B> {
    /// Assemble a trainer with fresh optimisers. LPIPS is frozen here.
    pub fn new(
        model: V2lModel<B>,
        disc: NLayerDiscriminator<B>,
        lpips: Lpips<B>,
        loss: LossConfig,
        k: usize,
    ) -> Self {
        Self {
            model,
            disc,
            lpips: lpips.no_grad(),
            opt_g: adam(),
            opt_d: adam(),
            loss,
            k,
            acc_g: GradientsAccumulator::new(),
            acc_d: GradientsAccumulator::new(),
        }
    }

    /// A copy for another data-parallel peer on `device`: the same
    /// parameters (with their ids, so gradients pair up in the exchange),
    /// the optimisers' state, discriminator running statistics of its own.
    pub fn fork_peer(&self, device: &B::Device) -> Self {
        Self {
            model: self.model.clone().fork(device),
            disc: self.disc.fork_peer(device),
            lpips: self.lpips.clone().fork(device),
            opt_g: self.opt_g.clone(),
            opt_d: self.opt_d.clone(),
            loss: self.loss.clone(),
            k: self.k,
            acc_g: GradientsAccumulator::new(),
            acc_d: GradientsAccumulator::new(),
        }
    }

    /// The factor on the losses before backward (`1/accum_iter` when
    /// gradients are averaged).
    fn grad_scale(&self) -> f64 {
        match self.loss.accum_mode {
            AccumMode::Mean => 1.0 / self.loss.accum_iter.max(1) as f64,
            AccumMode::Faithful => 1.0,
        }
    }

    /// One iteration: the generator step, then (past `disc_start`) the
    /// discriminator step, both at learning rate `lr`. `images` `[B, 3, S,
    /// S]` in `[-1, 1]`; `rng_seed` seeds the LPIPS dropout masks;
    /// `within_epoch` is the iteration's index in its epoch (the optimisers
    /// step when `(within_epoch + 1) % accum_iter == 0`, as the reference).
    ///
    /// # Errors
    /// Shape errors from the model; a missing gradient (an internal error).
    pub fn step(
        &mut self,
        images: Tensor<B, 4>,
        global: GlobalInput<B>,
        cur_iter: u64,
        within_epoch: u64,
        lr: f64,
        rng_seed: u64,
    ) -> Result<StepReport> {
        self.step_synced(
            Iteration {
                images,
                global,
                cur_iter,
                within_epoch,
                lr,
                rng_seed,
            },
            &mut |_, grads| Ok(grads),
        )
    }

    /// [`step`](Self::step) with `sync` applied to the gradients right
    /// before each optimiser step (the generator's, then the
    /// discriminator's): data-parallel peers average theirs there
    /// ([`crate::parallel`]).
    ///
    /// # Errors
    /// As [`step`](Self::step), and whatever `sync` returns.
    pub fn step_synced(
        &mut self,
        iteration: Iteration<B>,
        sync: &mut GradientSync<'_>,
    ) -> Result<StepReport> {
        let it = iteration;
        let x = it.images.detach();
        let update = (it.within_epoch + 1).is_multiple_of(self.loss.accum_iter.max(1) as u64);
        let (grads, mut report) =
            self.generator_gradients(x.clone(), &it.global, it.cur_iter, it.rng_seed)?;
        if let Some(grads) = accumulate(
            &mut self.acc_g,
            &self.model,
            grads,
            self.loss.accum_mode,
            update,
        ) {
            let grads = sync(Net::Generator, grads)?;
            self.model = self.opt_g.step(it.lr, self.model.clone(), grads);
        }
        if it.cur_iter > self.loss.disc_start && self.loss.rate_d != 0.0 {
            let (grads, d, r) = self.discriminator_gradients(x, &it.global)?;
            if let Some(grads) = accumulate(
                &mut self.acc_d,
                &self.disc,
                grads,
                self.loss.accum_mode,
                update,
            ) {
                let grads = sync(Net::Discriminator, grads)?;
                self.disc = self.opt_d.step(it.lr, self.disc.clone(), grads);
            }
            report.d_loss = Some(d);
            report.rec_loss_2 = Some(r);
        }
        Ok(report)
    }

    /// The generator pass and its gradients (the optimiser is not touched):
    /// the gradients of the reference's generator loss for every trainable
    /// parameter, and the measurements (`d_loss` not yet set).
    ///
    /// # Errors
    /// As [`step`](Self::step).
    pub fn generator_gradients(
        &mut self,
        x: Tensor<B, 4>,
        global: &GlobalInput<B>,
        cur_iter: u64,
        rng_seed: u64,
    ) -> Result<(GradientsParams, StepReport)> {
        let l = self.loss.clone();
        let model = &self.model;
        let (local, entropy) = match &l.code_entropy {
            None => (
                model.encode_local(x.clone(), None).map_err(local_err)?,
                None,
            ),
            Some((w, settings)) => {
                let (local, e) = model
                    .encode_local_with_entropy(x.clone(), settings)
                    .map_err(local_err)?;
                (local, Some((*w, e)))
            }
        };
        let glob = match global {
            GlobalInput::Embedding(e) => model.encode_global(e.clone(), self.k, None),
            GlobalInput::Ids(ids) => model.global_from_ids(ids.clone()),
        }
        .map_err(model_err)?;
        let (features, xhat) = model
            .decode_with_features(local.quantized.clone(), glob.context.clone())
            .map_err(model_err)?;

        // ∂(rec + rate_p·p)/∂x̂ on a detached copy.
        let xd = xhat.clone().detach().require_grad();
        let rec = (x.clone() - xd.clone()).abs().mean();
        let p = if l.lpips_dropout {
            let mut rng = StdRng::seed_from_u64(rng_seed);
            self.lpips
                .forward_dropout(x.clone(), xd.clone(), LPIPS_DROPOUT, &mut rng)
        } else {
            self.lpips.forward_trusted(x.clone(), xd.clone())
        }
        .map_err(|e| TrainError::Model(e.to_string()))?
        .mean();
        let nll = rec.clone() + p.clone().mul_scalar(l.rate_p);
        let grads = nll.backward();
        let d_nll = xd.grad(&grads).ok_or(TrainError::Internal("no ∂nll/∂x̂"))?;

        // ∂g/∂x̂, the generator pass's D(x̂) (BatchNorm in train mode).
        let xd = xhat.clone().detach().require_grad();
        let g = self.disc.forward(xd.clone(), Mode::Train).mean().neg();
        let grads = g.backward();
        let d_g = xd.grad(&grads).ok_or(TrainError::Internal("no ∂g/∂x̂"))?;

        // ∇_W of both on decoder.conv_out.weight.
        let feats = features.inner();
        let w = &self.model.decoder.conv_out.weight;
        let nll_grad_norm = last_layer_grad_norm::<B>(feats.clone(), w, d_nll.clone())?;
        let g_grad_norm = last_layer_grad_norm::<B>(feats, w, d_g.clone())?;
        let d_weight =
            (nll_grad_norm / (g_grad_norm + D_WEIGHT_EPS)).clamp(0.0, D_WEIGHT_MAX) * l.rate_d;
        let coef = if cur_iter > l.disc_start {
            d_weight
        } else {
            0.0
        };

        let upstream = Tensor::<B, 4>::from_inner(d_nll + d_g.mul_scalar(coef));
        let mut surrogate = (xhat * upstream).sum() + local.qloss.clone().mul_scalar(l.rate_q);
        if let Some((w, e)) = &entropy {
            surrogate = surrogate + e.clone().mul_scalar(*w);
        }
        let surrogate = surrogate.mul_scalar(self.grad_scale());
        let grads = surrogate.backward();
        let grads = GradientsParams::from_grads(grads, &self.model);
        let grad_norm = grads_norm(&self.model, &grads);

        let rec_loss = scalar(rec)?;
        let p_loss = scalar(p)?;
        let qloss = scalar(local.qloss)?;
        let g_loss = scalar(g)?;
        let code_entropy = match entropy {
            Some((_, e)) => Some(scalar(e)?),
            None => None,
        };
        let loss = rec_loss
            + l.rate_q * qloss
            + l.rate_p * p_loss
            + coef * g_loss
            + l.code_entropy.map_or(0.0, |(w, _)| w) * code_entropy.unwrap_or(0.0);
        let local_ids = local
            .local_ids
            .into_data()
            .convert::<i64>()
            .into_vec::<i64>()
            .map_err(|e| TrainError::Model(format!("{e:?}")))?
            .into_iter()
            .map(|v| v as u32)
            .collect();
        let report = StepReport {
            rec_loss,
            p_loss,
            qloss,
            g_loss,
            d_weight,
            nll_grad_norm,
            g_grad_norm,
            loss,
            grad_norm,
            d_loss: None,
            rec_loss_2: None,
            code_entropy,
            local_ids,
        };
        Ok((grads, report))
    }

    /// The discriminator's gradients of
    /// `0.5·(mean relu(1 − D(x)) + mean relu(1 + D(x̂)))` with `x̂` from a
    /// fresh forward of the current generator (its running statistics are
    /// updated, real images first); also `d_loss` and that forward's
    /// `mean|x − x̂|`.
    ///
    /// # Errors
    /// Shape errors from the model.
    pub fn discriminator_gradients(
        &mut self,
        x: Tensor<B, 4>,
        global: &GlobalInput<B>,
    ) -> Result<(GradientsParams, f64, f64)> {
        let model = self.model.valid();
        let xi = x.clone().inner();
        let local = model.encode_local(xi.clone(), None).map_err(local_err)?;
        let glob = match global {
            GlobalInput::Embedding(e) => model.encode_global(e.clone().inner(), self.k, None),
            GlobalInput::Ids(ids) => model.global_from_ids(ids.clone().inner()),
        }
        .map_err(model_err)?;
        let xhat = model
            .decode(local.quantized, glob.context)
            .map_err(model_err)?;
        let rec2 = scalar((xi - xhat.clone()).abs().mean())?;
        let real = self.disc.forward(x.detach(), Mode::Train);
        let fake = self.disc.forward(Tensor::from_inner(xhat), Mode::Train);
        let d_loss = (relu(real.neg().add_scalar(1.0)).mean() + relu(fake.add_scalar(1.0)).mean())
            .mul_scalar(0.5);
        let grads = d_loss.clone().mul_scalar(self.grad_scale()).backward();
        let d_loss = scalar(d_loss.detach())?;
        let grads = GradientsParams::from_grads(grads, &self.disc);
        Ok((grads, d_loss, rec2))
    }
}

/// The gradients to step with now, if any: this iteration's (faithful) or
/// the accumulated sum of the scaled ones (mean), on update iterations.
fn accumulate<B: AutodiffBackend, M: AutodiffModule<B>>(
    acc: &mut GradientsAccumulator<M>,
    module: &M,
    grads: GradientsParams,
    mode: AccumMode,
    update: bool,
) -> Option<GradientsParams> {
    match mode {
        AccumMode::Faithful => update.then_some(grads),
        AccumMode::Mean => {
            acc.accumulate(module, grads);
            update.then(|| acc.grads())
        }
    }
}

/// `‖∂(Σ conv_out(features) ⊙ upstream)/∂W‖` (the gradient of a loss on the
/// decoder's output with respect to its last weight, given the loss's
/// gradient `upstream` on the output).
fn last_layer_grad_norm<B: AutodiffBackend>(
    features: Tensor<B::InnerBackend, 4>,
    weight: &Param<Tensor<B, 4>>,
    upstream: Tensor<B::InnerBackend, 4>,
) -> Result<f64> {
    let w = Tensor::<B, 4>::from_inner(weight.val().inner()).require_grad();
    let [_, _, kh, kw] = w.dims();
    let options = ConvOptions::new([1, 1], [kh / 2, kw / 2], [1, 1], 1);
    let y = conv2d(
        Tensor::<B, 4>::from_inner(features),
        w.clone(),
        None,
        options,
    );
    let grads = (y * Tensor::from_inner(upstream)).sum().backward();
    let gw = w.grad(&grads).ok_or(TrainError::Internal("no ∇W"))?;
    let norm: f32 = gw.square().sum().sqrt().into_scalar().elem();
    Ok(f64::from(norm))
}

/// The L2 norm over every gradient of `module`'s parameters.
fn grads_norm<B: AutodiffBackend, M: Module<B>>(module: &M, grads: &GradientsParams) -> f64 {
    struct Norm<'g> {
        grads: &'g GradientsParams,
        sum: f64,
    }
    impl<B: AutodiffBackend> ModuleVisitor<B> for Norm<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            if let Some(g) = self.grads.get::<B::InnerBackend, D>(param.id) {
                let s: f32 = g.square().sum().into_scalar().elem();
                self.sum += f64::from(s);
            }
        }
    }
    let mut v = Norm { grads, sum: 0.0 };
    module.visit(&mut v);
    v.sum.sqrt()
}

fn scalar<B: burn::tensor::backend::Backend>(t: Tensor<B, 1>) -> Result<f64> {
    let v: f32 = t.into_scalar().elem();
    Ok(f64::from(v))
}

/// A model error, with NaN or infinite features (a diverged network) told
/// apart.
pub(crate) fn local_err(e: v2l_model::ModelError) -> TrainError {
    match e {
        v2l_model::ModelError::Quant(q @ v2l_quant::QuantError::NonFinite { .. }) => {
            TrainError::NonFiniteValues(q.to_string())
        }
        e => model_err(e),
    }
}

/// A model error as the trainer's.
pub(crate) fn model_err(e: v2l_model::ModelError) -> TrainError {
    TrainError::Model(e.to_string())
}

/// The gradients in `grads` of the parameters `names` describes, by
/// state-dict name and in the file's layout (PyTorch's), in build order;
/// parameters without a gradient are left out.
///
/// # Errors
/// A backend returns data that cannot be read as f32.
pub fn named_gradients<B: AutodiffBackend, M: Module<B>>(
    module: &M,
    names: &v2l_nn::Names,
    grads: &GradientsParams,
) -> Result<Vec<v2l_nn::NamedTensor>> {
    struct Collect<'g> {
        grads: &'g GradientsParams,
        found: std::collections::HashMap<burn::module::ParamId, burn::tensor::TensorData>,
    }
    impl<B: AutodiffBackend> ModuleVisitor<B> for Collect<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            if let Some(g) = self.grads.get::<B::InnerBackend, D>(param.id) {
                self.found.insert(param.id, g.into_data());
            }
        }
    }
    let mut c = Collect {
        grads,
        found: Default::default(),
    };
    module.visit(&mut c);
    let mut out = Vec::new();
    for e in names.entries() {
        if let Some(data) = c.found.remove(&e.id) {
            let values = data
                .convert::<f32>()
                .into_vec::<f32>()
                .map_err(|err| TrainError::Model(format!("{}: {err:?}", e.name)))?;
            out.push((
                e.name.clone(),
                e.file_shape.clone(),
                e.layout.to_file(&e.file_shape, values),
            ));
        }
    }
    Ok(out)
}
