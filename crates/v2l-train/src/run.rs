//! A whole training run in a run directory: build or resume, iterate,
//! measure, checkpoint.
//!
//! ```text
//! DIR/config.toml                       the run's configuration
//! DIR/checkpoints/step-NNNNNNN/         a model bundle (v2l encode --checkpoint DIR/last)
//!     trainer/discriminator.safetensors the discriminator (taming names, running statistics)
//!     trainer/optimizer-generator.safetensors      Adam moments of the generator, by parameter index
//!     trainer/optimizer-discriminator.safetensors
//!     trainer/state.json                the next iteration, the seed
//!     samples.png                       validation inputs (top) and reconstructions (bottom)
//! DIR/last -> checkpoints/step-…        the newest checkpoint
//! DIR/metrics.jsonl                     one record per iteration, validation records
//! DIR/curves.png                        loss and validation curves, redrawn at each checkpoint
//! ```
//!
//! Randomness is reseeded every iteration from `(seed, iteration)` and the
//! data order of an epoch from `(seed, epoch)`, so a run resumed from a
//! checkpoint continues bit for bit as the uninterrupted run on the CPU.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use burn::module::{Module, ParamId};
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{Adam, Optimizer};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Int, Tensor, TensorData};
use serde_json::json;
use v2l_io::tensors::SafetensorsFile;
use v2l_metrics::lpips::{Lpips, LpipsNet};
use v2l_model::bundle::{write_bundle, Bundle, BundleExtras};
use v2l_model::{ImageSize, ModelConfig, V2lModel};
use v2l_nn::{Loader, Names, Unexpected};

use crate::config::{GlobalEmbedder, TrainConfig};
use crate::data::{mix, Batch, TrainData};
use crate::discriminator::NLayerDiscriminator;
use crate::error::{Result, TrainError};
use crate::observe;
use crate::parallel::{Order, PeerConfig, Peers};
use crate::run_dir::{atomic_write, RunDir};
use crate::trainer::{model_err, GlobalInput, LossConfig, StepReport, Trainer};

const TRAINER_DIR: &str = "trainer";
const DISC_FILE: &str = "discriminator.safetensors";
const OPT_G_FILE: &str = "optimizer-generator.safetensors";
const OPT_D_FILE: &str = "optimizer-discriminator.safetensors";
const STATE_FILE: &str = "state.json";
/// Seed streams (see [`mix`]).
const STREAM_INIT: u64 = 1;
const STREAM_DISC: u64 = 2;
const STREAM_STEP: u64 = 3;

/// How a run is driven (beyond its configuration).
#[derive(Debug, Default)]
pub struct RunOptions<'a> {
    /// Stop after this iteration count (overrides `max_steps`).
    pub steps: Option<u64>,
    /// Set (e.g. by Ctrl-C) to write a checkpoint and stop.
    pub interrupt: Option<&'a AtomicBool>,
    /// The LPIPS-VGG weights (`vgg16.ckpt` of the `lpips-backbones` asset).
    pub lpips_weights: PathBuf,
}

/// Progress of a run, given to the caller's callback after each iteration.
#[derive(Debug, Clone)]
pub struct Progress<'r> {
    /// Iterations done.
    pub step: u64,
    /// Where the run stops.
    pub total: u64,
    /// The iteration's measurements.
    pub report: &'r StepReport,
    /// The iteration's learning rate.
    pub lr: f64,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSummary {
    /// Iterations done in total (including earlier sessions).
    pub steps: u64,
    /// The iteration this session started at (0 for a fresh run).
    pub resumed_from: u64,
    /// Whether an interrupt stopped it.
    pub interrupted: bool,
    /// The last checkpoint written.
    pub checkpoint: Option<PathBuf>,
    /// Validation PSNR (dB) of the last measurement.
    pub val_psnr: Option<f64>,
    /// Validation PSNR (dB) of the untrained model (fresh runs only).
    pub untrained_psnr: Option<f64>,
}

/// The model configuration a training configuration builds.
pub fn model_config(
    config: &TrainConfig,
    n_local: usize,
    n_global: usize,
    vl: Option<v2l_vl::VlConfig>,
) -> ModelConfig {
    ModelConfig {
        image_size: ImageSize::Square(config.image_size),
        ddconfig: config.ddconfig.clone(),
        embed_dim: config.embed_dim,
        n_local,
        n_global,
        k: config.k,
        vl,
        use_projector: config.use_cblinear == 1,
        normalize_features: config.normalize_features,
        cross_attn_heads: 8,
        cross_attn_dim_head: None,
        codebook_loss_weight: v2l_model::config::OFFICIAL_CODEBOOK_LOSS_WEIGHT,
        fixed_global_ids: matches!(config.global_embedder(), Ok(GlobalEmbedder::None)),
        cross_attention: config.use_crossatt_dec == 1,
    }
}

/// Everything a run holds between iterations.
#[derive(Debug)]
pub struct Session<B: AutodiffBackend> {
    /// Networks and optimisers.
    pub trainer: Trainer<B>,
    disc_names: Names,
    global_words: Option<Vec<String>>,
    embedder: GlobalEmbedder,
    clip_source: Option<PathBuf>,
    /// The training data as configured (`data.dataset`, or the folder).
    data: String,
    /// The next iteration.
    pub step: u64,
    device: B::Device,
}

/// The training data named the way bundles record it (`provenance.data`).
fn data_name(config: &TrainConfig) -> String {
    match (&config.data.dataset[..], &config.data.path) {
        ("folder", Some(p)) => format!("folder:{}", p.display()),
        (d, _) => d.to_string(),
    }
}

impl<B: AutodiffBackend> Session<B> {
    /// A fresh session: seeded random networks, codebooks from their files
    /// (or random rows), LPIPS-VGG from `lpips_weights`.
    ///
    /// # Errors
    /// Unreadable codebook, CLIP or LPIPS files; an inconsistent
    /// configuration.
    pub fn fresh(config: &TrainConfig, lpips_weights: &Path, device: &B::Device) -> Result<Self> {
        let embedder = config.global_embedder()?;
        let (local, global, words) = codebooks(config)?;
        let n_local = local
            .as_ref()
            .map_or(config.codebooks.random_local.unwrap_or(0), |c| c.0);
        let n_global = global
            .as_ref()
            .map_or(config.codebooks.random_global.unwrap_or(0), |c| c.0);
        let (clip, clip_config, clip_source) = match &embedder {
            GlobalEmbedder::Clip(p) => {
                let src = open_tensors(p)?;
                let (tower, vc) = v2l_model::load_clip::<B>(src.as_ref(), "visual.", None, device)
                    .or_else(|_| v2l_model::load_clip::<B>(src.as_ref(), "", None, device))
                    .map_err(|e| TrainError::Model(format!("{}: {e}", p.display())))?;
                (Some(tower), Some(vc), Some(p.clone()))
            }
            GlobalEmbedder::Conse => (None, None, None),
            GlobalEmbedder::None => (None, None, None),
        };
        let mc = model_config(config, n_local, n_global, None);
        let seed = mix(config.seed, STREAM_INIT, 0);
        let mut model = V2lModel::<B>::random(&mc, seed, device).map_err(model_err)?;
        if let Some((_, rows)) = local {
            model.replace_local_codebook(rows).map_err(model_err)?;
        }
        if let Some((_, rows)) = global {
            model.replace_global_codebook(rows).map_err(model_err)?;
        }
        if let (Some(tower), Some(vc)) = (clip, clip_config) {
            model = model.with_clip(tower.no_grad(), vc).map_err(model_err)?;
        }
        if embedder == GlobalEmbedder::Conse {
            let (tower, vc) = v2l_vl::Vl::<B>::load("conse", device)
                .and_then(v2l_vl::Vl::into_image_tower)
                .map_err(|e| TrainError::Model(format!("ConSE: {e}")))?;
            model = model.with_image_tower(tower, vc).map_err(model_err)?;
        }
        let vb = Loader::<B>::random(mix(config.seed, STREAM_DISC, 0), device);
        let disc = NLayerDiscriminator::load(&vb, config.disc_ndf);
        let disc_names = vb
            .finish(Unexpected::Ignore)
            .map_err(|e| TrainError::Model(e.to_string()))?;
        let trainer = Trainer::new(
            prepare(model, config),
            disc,
            load_lpips(lpips_weights, device)?,
            loss_config(config),
            config.k,
        );
        Ok(Self {
            trainer,
            disc_names,
            global_words: words,
            embedder,
            clip_source,
            data: data_name(config),
            step: 0,
            device: device.clone(),
        })
    }

    /// Resume from a checkpoint folder written by [`Session::save`].
    ///
    /// # Errors
    /// [`TrainError::Checkpoint`] naming the unreadable part.
    pub fn resume(
        config: &TrainConfig,
        checkpoint: &Path,
        lpips_weights: &Path,
        device: &B::Device,
    ) -> Result<Self> {
        let ck = |message: String| TrainError::Checkpoint {
            path: checkpoint.to_path_buf(),
            message,
        };
        let bundle = Bundle::open(checkpoint).map_err(|e| ck(e.to_string()))?;
        let model: V2lModel<B> = bundle
            .load(bundle.config(), device)
            .map_err(|e| ck(e.to_string()))?;
        let mut model = model;
        model.vl = model.vl.map(Module::no_grad);
        let words = bundle.global_words().map(<[String]>::to_vec);
        let state_dir = checkpoint.join(TRAINER_DIR);
        let disc_file = SafetensorsFile::open(state_dir.join(DISC_FILE))
            .map_err(|e| ck(format!("{DISC_FILE}: {e}")))?;
        let vb = Loader::<B>::from_source(&disc_file, device);
        let disc = NLayerDiscriminator::load(&vb, config.disc_ndf);
        let disc_names = vb
            .finish(Unexpected::All)
            .map_err(|e| ck(format!("{DISC_FILE}: {e}")))?;
        let state_text = std::fs::read_to_string(state_dir.join(STATE_FILE))
            .map_err(|e| ck(format!("{STATE_FILE}: {e}")))?;
        let state: serde_json::Value =
            serde_json::from_str(&state_text).map_err(|e| ck(format!("{STATE_FILE}: {e}")))?;
        let step = state["next_step"]
            .as_u64()
            .ok_or_else(|| ck(format!("{STATE_FILE}: no next_step")))?;
        let mut trainer = Trainer::new(
            prepare(model, config),
            disc,
            load_lpips(lpips_weights, device)?,
            loss_config(config),
            config.k,
        );
        trainer.opt_g = load_optim(
            trainer.opt_g,
            trainer.model.names(),
            &state_dir.join(OPT_G_FILE),
            device,
        )
        .map_err(ck)?;
        trainer.opt_d = load_optim(
            trainer.opt_d,
            &disc_names,
            &state_dir.join(OPT_D_FILE),
            device,
        )
        .map_err(ck)?;
        Ok(Self {
            trainer,
            disc_names,
            global_words: words,
            embedder: config.global_embedder()?,
            clip_source: config.global_embedder().ok().and_then(|e| match e {
                GlobalEmbedder::Clip(p) => Some(p),
                GlobalEmbedder::Conse | GlobalEmbedder::None => None,
            }),
            data: data_name(config),
            step,
            device: device.clone(),
        })
    }

    /// A copy of this session for a data-parallel peer on `device`
    /// ([`Trainer::fork_peer`]).
    pub fn fork_peer(&self, device: &B::Device) -> Self {
        Self {
            trainer: self.trainer.fork_peer(device),
            disc_names: self.disc_names.clone(),
            global_words: self.global_words.clone(),
            embedder: self.embedder.clone(),
            clip_source: self.clip_source.clone(),
            data: self.data.clone(),
            step: self.step,
            device: device.clone(),
        }
    }

    /// The device the session computes on.
    pub fn device(&self) -> &B::Device {
        &self.device
    }

    /// The global branch's input for a batch.
    ///
    /// # Errors
    /// CLIP errors.
    pub fn global_input(&self, batch: &Batch) -> Result<GlobalInput<B>> {
        match self.embedder {
            GlobalEmbedder::Clip(_) | GlobalEmbedder::Conse => {
                let r = self
                    .trainer
                    .model
                    .config()
                    .vl_preprocess()
                    .map_or(crate::data::CLIP_RESOLUTION, |p| p.resolution());
                let clip = if r == crate::data::CLIP_RESOLUTION {
                    batch.clip.clone()
                } else {
                    v2l_metrics::inception::resize_bilinear(
                        &batch.clip,
                        [
                            batch.len,
                            3,
                            crate::data::CLIP_RESOLUTION,
                            crate::data::CLIP_RESOLUTION,
                        ],
                        r,
                        r,
                    )
                    .map_err(|e| TrainError::Data(e.to_string()))?
                };
                let t = Tensor::<B, 4>::from_data(
                    TensorData::new(clip, [batch.len, 3, r, r]),
                    &self.device,
                );
                let e = self.trainer.model.image_embedding(t).map_err(model_err)?;
                Ok(GlobalInput::Embedding(e))
            }
            GlobalEmbedder::None => Ok(GlobalInput::Ids(fixed_global_ids(
                batch.len,
                self.trainer.k,
                &self.device,
            ))),
        }
    }

    /// The batch's tokenizer input as a tensor.
    pub fn images(&self, batch: &Batch, size: usize) -> Tensor<B, 4> {
        Tensor::from_data(
            TensorData::new(batch.images.clone(), [batch.len, 3, size, size]),
            &self.device,
        )
    }

    /// Write a checkpoint of the state before iteration `self.step` into
    /// `dir` (an empty folder).
    ///
    /// # Errors
    /// I/O and serialisation errors.
    pub fn save(&self, dir: &Path, seed: u64) -> Result<()> {
        let ck = |message: String| TrainError::Checkpoint {
            path: dir.to_path_buf(),
            message,
        };
        let model = &self.trainer.model;
        let clip_file = match &self.clip_source {
            Some(p) => Some(open_tensors(p)?),
            None => None,
        };
        let prefix = clip_file
            .as_ref()
            .map(|f| {
                if f.keys().iter().any(|n| n.starts_with("visual.")) {
                    "visual."
                } else {
                    ""
                }
            })
            .unwrap_or("");
        let extras = BundleExtras {
            clip: clip_file
                .as_ref()
                .map(|f| (f.as_ref() as &dyn v2l_io::tensors::TensorSource, prefix)),
            global_words: self.global_words.as_deref(),
            provenance: json!({
                "tool": "v2l train",
                "step": self.step,
                "data": self.data,
                "global_embedder": match &self.embedder {
                    GlobalEmbedder::Clip(p) => format!("clip:{}", p.display()),
                    GlobalEmbedder::Conse => "conse".into(),
                    GlobalEmbedder::None => "none".into(),
                },
            }),
        };
        write_bundle(dir, model, &extras).map_err(|e| ck(e.to_string()))?;
        let state_dir = dir.join(TRAINER_DIR);
        std::fs::create_dir_all(&state_dir).map_err(|e| ck(e.to_string()))?;
        for n in &self.trainer.disc.norms {
            n.sync();
        }
        let disc = self
            .disc_names
            .export(&self.trainer.disc)
            .map_err(|e| ck(e.to_string()))?;
        v2l_model::bundle::write_named_safetensors(&state_dir.join(DISC_FILE), &disc)
            .map_err(|e| ck(e.to_string()))?;
        save_optim(
            &self.trainer.opt_g,
            model.names(),
            &state_dir.join(OPT_G_FILE),
        )
        .map_err(ck)?;
        save_optim(
            &self.trainer.opt_d,
            &self.disc_names,
            &state_dir.join(OPT_D_FILE),
        )
        .map_err(ck)?;
        let state = json!({ "next_step": self.step, "seed": seed });
        atomic_write(&state_dir.join(STATE_FILE), state.to_string().as_bytes())
    }
}

/// Run (or resume) training in `dir` on one device; `progress` is called
/// after every iteration.
///
/// # Errors
/// Configuration, data, checkpoint and model errors; a non-finite loss
/// ([`TrainError::NonFinite`]; the last good checkpoint is kept).
pub fn train<B: AutodiffBackend>(
    config: &TrainConfig,
    dir: &Path,
    options: &RunOptions<'_>,
    device: &B::Device,
    progress: &mut dyn FnMut(&Progress<'_>),
) -> Result<RunSummary> {
    train_parallel::<B>(
        config,
        dir,
        options,
        &PeerConfig::local(vec![device.clone()]),
        progress,
    )
}

/// [`train`] data-parallel over `peers` ([`crate::parallel`]): each
/// iteration takes `batch_size` images per peer, and the peers average
/// their gradients before every optimiser step. One peer is exactly
/// [`train`].
///
/// # Errors
/// As [`train`]; a peer's failure ([`TrainError::Parallel`], naming it);
/// no device given.
pub fn train_parallel<B: AutodiffBackend>(
    config: &TrainConfig,
    dir: &Path,
    options: &RunOptions<'_>,
    peers: &PeerConfig<B::Device>,
    progress: &mut dyn FnMut(&Progress<'_>),
) -> Result<RunSummary> {
    config.validate()?;
    let Some(device) = peers.devices.first() else {
        return Err(TrainError::Parallel("no device given".into()));
    };
    let global_batch = config.batch_size * peers.devices.len();
    let run = RunDir::open(dir, config)?;
    let mut data = TrainData::train(config)?;
    let mut val = TrainData::validation(config)?;
    let spe = data.steps_per_epoch(global_batch)?;
    let total = options
        .steps
        .or(config.max_steps)
        .unwrap_or(spe * config.epochs as u64);
    let mut session = match run.last() {
        Some((_, ck)) => Session::<B>::resume(config, &ck, &options.lpips_weights, device)?,
        None => Session::<B>::fresh(config, &options.lpips_weights, device)?,
    };
    let resumed_from = session.step;
    // The global branch's input takes the vision-language model's own
    // normalisation (CLIP's by default).
    if let Ok(pre) = session.trainer.model.config().vl_preprocess() {
        data = data.with_global_mean_std(pre.mean(), pre.std())?;
        val = val.with_global_mean_std(pre.mean(), pre.std())?;
    }
    truncate_metrics(&run, resumed_from)?;
    let val_n = config.val_images.min(val.len());
    let val_batch = val.batch(&(0..val_n).collect::<Vec<_>>())?;
    let measure = |session: &Session<B>, done: u64| -> Result<f64> {
        let v = observe::validate(&session.trainer, session, &val_batch, config.image_size)?;
        run.append_metrics(&json!({
            "val_at": done,
            "val_psnr": v.psnr,
            "val_ssim": v.ssim,
            "val_lpips": v.lpips,
        }))?;
        Ok(v.psnr)
    };
    let mut val_psnr = None;
    let mut untrained_psnr = None;
    if resumed_from == 0 && total > 0 {
        untrained_psnr = Some(measure(&session, 0)?);
    }
    std::thread::scope(|scope| {
        let peers = Peers::start(scope, &session, &data, config.image_size, peers)?;
        let schedule = config.schedule();
        let mut order: Option<(u64, Vec<usize>)> = None;
        let mut last_ck = None;
        let mut interrupted = false;
        let started = Instant::now();
        while session.step < total {
            let step = session.step;
            let epoch = step / spe;
            let within = (step % spe) as usize;
            if order.as_ref().is_none_or(|(e, _)| *e != epoch) {
                order = Some((epoch, data.order(config.seed, epoch)));
            }
            let idx = order
                .as_ref()
                .map(|(_, o)| o[within * global_batch..(within + 1) * global_batch].to_vec())
                .unwrap_or_default();
            let lr = schedule.at_iter(step, spe);
            let it = Order {
                step,
                within: within as u64,
                lr,
                seed: mix(config.seed, STREAM_STEP, step),
            };
            let report = peers
                .step(&mut session, &data, &idx, config.image_size, it)
                .map_err(|e| match e {
                    TrainError::NonFiniteValues(_) => TrainError::NonFinite {
                        step,
                        term: "the encoder's features",
                    },
                    e => e,
                })?;
            if let Some(term) = report.non_finite() {
                return Err(TrainError::NonFinite { step, term });
            }
            session.step += 1;
            let usage = v2l_metrics::usage::codebook_usage(
                report.local_ids.iter().copied(),
                session.trainer.model.config().n_local,
            )
            .map_err(|e| TrainError::Model(e.to_string()))?;
            let mut record = json!({
                "step": step,
                "epoch": step as f64 / spe as f64,
                "lr": lr,
                "loss": report.loss,
                "rec_loss": report.rec_loss,
                "p_loss": report.p_loss,
                "qloss": report.qloss,
                "g_loss": report.g_loss,
                "d_weight": report.d_weight,
                "grad_norm": report.grad_norm,
                "codes_used": usage.used,
                "perplexity": usage.perplexity,
                "seconds": started.elapsed().as_secs_f64(),
            });
            if let Some(d) = report.d_loss {
                record["d_loss"] = json!(d);
            }
            if let Some(e) = report.code_entropy {
                record["code_entropy"] = json!(e);
            }
            let done = session.step;
            run.append_metrics(&record)?;
            let diverged = |e: TrainError| match e {
                TrainError::NonFiniteValues(_) => TrainError::NonFinite {
                    step,
                    term: "the model's output",
                },
                e => e,
            };
            if done % config.val_every == 0 || done == total {
                val_psnr = Some(measure(&session, done).map_err(diverged)?);
            }
            progress(&Progress {
                step: done,
                total,
                report: &report,
                lr,
            });
            interrupted = options.interrupt.is_some_and(|f| f.load(Ordering::SeqCst));
            if done % config.checkpoint_every == 0 || done == total || interrupted {
                let path = run.save(done, config.keep_checkpoints, |tmp| {
                    session.save(tmp, config.seed)?;
                    observe::write_samples(
                        &session,
                        &val_batch,
                        config.image_size,
                        &tmp.join("samples.png"),
                    )
                })?;
                observe::write_curves(&run.metrics()?, &dir.join("curves.png"))?;
                last_ck = Some(path);
            }
            if interrupted {
                break;
            }
        }
        peers.finish::<B>()?;
        Ok(RunSummary {
            steps: session.step,
            resumed_from,
            interrupted,
            checkpoint: last_ck.or_else(|| run.last().map(|(_, p)| p)),
            val_psnr,
            untrained_psnr,
        })
    })
}

/// Drop metric records of iterations at or after `from` (left by a run that
/// stopped after its last checkpoint), so the log matches the resumed state.
fn truncate_metrics(run: &RunDir, from: u64) -> Result<()> {
    let records = run.metrics()?;
    // Training records carry `step` (the iteration, from 0), validation
    // records `val_at` (iterations done).
    let keep = |r: &serde_json::Value| {
        r["step"]
            .as_u64()
            .map(|s| s < from)
            .or_else(|| r["val_at"].as_u64().map(|v| v <= from))
            == Some(true)
    };
    if records.iter().all(keep) {
        return Ok(());
    }
    let mut text = String::new();
    for r in records.iter().filter(|r| keep(r)) {
        text.push_str(&r.to_string());
        text.push('\n');
    }
    atomic_write(&run.dir().join("metrics.jsonl"), text.as_bytes())
}

/// Ids `0..k` for every image: the global context when no image embedder is
/// configured (`global_embedder = "none"`).
pub fn fixed_global_ids<B: burn::tensor::backend::Backend>(
    b: usize,
    k: usize,
    device: &B::Device,
) -> Tensor<B, 2, Int> {
    let ids: Vec<i64> = (0..b).flat_map(|_| 0..k as i64).collect();
    Tensor::from_data(TensorData::new(ids, [b, k]), device)
}

/// The model with the reference's trainable set: the local codebook trains
/// only with `tuning_codebook = 1`, the projector unless
/// `tuning_projector = 0`.
fn prepare<B: AutodiffBackend>(mut model: V2lModel<B>, config: &TrainConfig) -> V2lModel<B> {
    if config.tuning_codebook == 1 {
        model.local_codebook = model.local_codebook.set_require_grad(true);
    }
    if config.tuning_projector == 0 {
        model.projector = model.projector.map(Module::no_grad);
    }
    model
}

fn loss_config(config: &TrainConfig) -> LossConfig {
    LossConfig {
        rate_q: config.rate_q,
        rate_p: config.rate_p,
        rate_d: config.rate_d,
        disc_start: config.disc_start,
        lpips_dropout: config.lpips_dropout,
        code_entropy: (config.code_entropy_weight > 0.0).then_some((
            config.code_entropy_weight,
            v2l_model::CodeEntropy {
                candidates: config.code_entropy_candidates,
                temperature: config.code_entropy_temperature,
            },
        )),
        accum_iter: config.accum_iter,
        accum_mode: config.accum_mode(),
    }
}

fn load_lpips<B: AutodiffBackend>(path: &Path, device: &B::Device) -> Result<Lpips<B>> {
    Lpips::<B>::load(LpipsNet::Vgg, path, device).map_err(|e| {
        TrainError::Model(format!(
            "LPIPS-VGG weights {}: {e} (fetch them with `v2l assets fetch lpips-backbones`)",
            path.display()
        ))
    })
}

type Rows = (usize, Vec<f32>);
/// The local and global codebooks' rows (where files give them) and the
/// global words.
type Codebooks = (Option<Rows>, Option<Rows>, Option<Vec<String>>);

/// The codebooks' rows from their files (None where random rows are
/// configured) and the global words.
fn codebooks(config: &TrainConfig) -> Result<Codebooks> {
    let read = |p: &PathBuf, which: &str| -> Result<v2l_codebook::Codebook> {
        v2l_codebook::Codebook::load(p)
            .map_err(|e| TrainError::Config(format!("codebooks.{which} = {}: {e}", p.display())))
    };
    let check = |cb: &v2l_codebook::Codebook, which: &str, p: &PathBuf| {
        if cb.dim() == config.embed_dim {
            Ok(())
        } else {
            Err(TrainError::Config(format!(
                "codebooks.{which} = {}: rows of width {}, embed_dim is {}",
                p.display(),
                cb.dim(),
                config.embed_dim
            )))
        }
    };
    let local = match &config.codebooks.local {
        Some(p) => {
            let cb = read(p, "local")?;
            check(&cb, "local", p)?;
            Some((cb.rows(), cb.embeddings().to_vec()))
        }
        None => None,
    };
    let (global, words) = match &config.codebooks.global {
        Some(p) => {
            let cb = read(p, "global")?;
            check(&cb, "global", p)?;
            let words = cb.strings().map(<[String]>::to_vec);
            (Some((cb.rows(), cb.embeddings().to_vec())), words)
        }
        None => (None, None),
    };
    Ok((local, global, words))
}

/// A weight file as a tensor source.
fn open_tensors(path: &Path) -> Result<Box<dyn v2l_io::tensors::TensorSource>> {
    v2l_io::tensors::open_tensors(path)
        .map_err(|e| TrainError::Config(format!("global_embedder {}: {e}", path.display())))
}

/// Save an optimiser's state as safetensors, each parameter's entry keyed by
/// its position in `names` (stable across processes, unlike burn's random
/// parameter ids): `{i}.moment_1`, `{i}.moment_2` (f32, the module's
/// layout) and `{i}.time` (i64 `[1]`). Written in index order, so equal
/// states give equal bytes.
fn save_optim<B: AutodiffBackend, M: burn::module::AutodiffModule<B>>(
    optim: &OptimizerAdaptor<Adam, M, B>,
    names: &Names,
    path: &Path,
) -> std::result::Result<(), String> {
    let index: HashMap<ParamId, usize> = names
        .entries()
        .iter()
        .enumerate()
        .map(|(i, e)| (e.id, i))
        .collect();
    let mut entries: Vec<(usize, Moments)> = Vec::new();
    for (id, r) in optim.to_record() {
        let i = *index
            .get(&id)
            .ok_or_else(|| format!("optimiser state of an unnamed parameter {id}"))?;
        entries.push((i, moments::<B>(r)?));
    }
    entries.sort_by_key(|(i, _)| *i);
    let mut blobs: Vec<(String, safetensors::Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
    for (i, m) in entries {
        let f32s = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
        blobs.push((
            format!("{i}.moment_1"),
            safetensors::Dtype::F32,
            m.shape.clone(),
            f32s(&m.m1),
        ));
        blobs.push((
            format!("{i}.moment_2"),
            safetensors::Dtype::F32,
            m.shape,
            f32s(&m.m2),
        ));
        blobs.push((
            format!("{i}.time"),
            safetensors::Dtype::I64,
            vec![1],
            (m.time as i64).to_le_bytes().to_vec(),
        ));
    }
    let views = blobs
        .iter()
        .map(|(n, d, s, b)| {
            safetensors::tensor::TensorView::new(*d, s.clone(), b)
                .map(|v| (n.clone(), v))
                .map_err(|e| e.to_string())
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let bytes = safetensors::serialize(views, None).map_err(|e| e.to_string())?;
    atomic_write(path, &bytes).map_err(|e| e.to_string())
}

/// One parameter's Adam state, on the host.
struct Moments {
    time: usize,
    shape: Vec<usize>,
    m1: Vec<f32>,
    m2: Vec<f32>,
}

fn moments<B: AutodiffBackend>(
    r: burn::optim::record::AdaptorRecord<Adam, B>,
) -> std::result::Result<Moments, String> {
    use burn::optim::record::AdaptorRecordV1 as V;
    fn host<I: burn::tensor::backend::Backend, const D: usize>(
        s: burn::optim::AdamState<I, D>,
    ) -> std::result::Result<Moments, String> {
        let m = s.momentum;
        let shape = m.moment_1.dims().to_vec();
        let read = |t: Tensor<I, D>| {
            t.into_data()
                .convert::<f32>()
                .into_vec::<f32>()
                .map_err(|e| format!("{e:?}"))
        };
        Ok(Moments {
            time: m.time,
            shape,
            m1: read(m.moment_1)?,
            m2: read(m.moment_2)?,
        })
    }
    match r {
        burn::optim::record::AdaptorRecord::V1(v) => match v {
            V::Rank1(s) => host(s),
            V::Rank2(s) => host(s),
            V::Rank3(s) => host(s),
            V::Rank4(s) => host(s),
            _ => Err("optimiser state of a parameter of unsupported rank".into()),
        },
    }
}

/// Load an optimiser state written by [`save_optim`] onto the parameters
/// `names` describes.
fn load_optim<B: AutodiffBackend, M: burn::module::AutodiffModule<B>>(
    optim: OptimizerAdaptor<Adam, M, B>,
    names: &Names,
    path: &Path,
    device: &B::Device,
) -> std::result::Result<OptimizerAdaptor<Adam, M, B>, String> {
    use burn::optim::record::AdaptorRecord;
    use burn::optim::{AdamState, AdaptiveMomentumState};
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let file = safetensors::SafeTensors::deserialize(&bytes)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let bad = |m: String| format!("{}: {m}", path.display());
    let f32s = |name: &str| -> std::result::Result<(Vec<usize>, Vec<f32>), String> {
        let t = file.tensor(name).map_err(|e| bad(format!("{name}: {e}")))?;
        if t.dtype() != safetensors::Dtype::F32 {
            return Err(bad(format!("{name} is not f32")));
        }
        let v = t
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        Ok((t.shape().to_vec(), v))
    };
    let mut record = optim.to_record();
    record.clear();
    let mut indices: Vec<usize> = file
        .names()
        .iter()
        .filter_map(|n| n.strip_suffix(".time")?.parse().ok())
        .collect();
    indices.sort_unstable();
    for i in indices {
        let e = names
            .entries()
            .get(i)
            .ok_or_else(|| bad(format!("state for parameter {i} of {}", names.len())))?;
        let t = file
            .tensor(&format!("{i}.time"))
            .map_err(|e| bad(e.to_string()))?;
        let time = t
            .data()
            .get(..8)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map(i64::from_le_bytes)
            .ok_or_else(|| bad(format!("{i}.time is not an i64")))? as usize;
        let (shape, m1) = f32s(&format!("{i}.moment_1"))?;
        let (shape2, m2) = f32s(&format!("{i}.moment_2"))?;
        if shape != shape2 || shape.len() != e.file_shape.len() {
            return Err(bad(format!(
                "{i}.moment_* of {} have shapes {shape:?}, {shape2:?}",
                e.name
            )));
        }
        fn state<I: burn::tensor::backend::Backend, const D: usize>(
            time: usize,
            shape: &[usize],
            m1: Vec<f32>,
            m2: Vec<f32>,
            device: &I::Device,
        ) -> AdamState<I, D> {
            let t = |v: Vec<f32>| {
                Tensor::<I, D>::from_data(burn::tensor::TensorData::new(v, shape.to_vec()), device)
            };
            AdamState::new(AdaptiveMomentumState::new(time, t(m1), t(m2)))
        }
        let r = match shape.len() {
            1 => AdaptorRecord::from_state::<1>(state(time, &shape, m1, m2, device)),
            2 => AdaptorRecord::from_state::<2>(state(time, &shape, m1, m2, device)),
            3 => AdaptorRecord::from_state::<3>(state(time, &shape, m1, m2, device)),
            4 => AdaptorRecord::from_state::<4>(state(time, &shape, m1, m2, device)),
            n => return Err(bad(format!("{}: rank {n}", e.name))),
        };
        record.insert(e.id, r);
    }
    Ok(optim.load_record(record))
}
