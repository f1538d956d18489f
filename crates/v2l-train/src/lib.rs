//! Training the V2L tokenizer with the reference's objective
//! (`training/engine_training.py`, `models/models_v2l.py`; spec §3.6, §4).
//!
//! - [`config`]: [`TrainConfig`] from TOML (`Run.sh` defaults, unknown keys
//!   refused, the keys a resumed run may not change).
//! - [`data`]: [`TrainData`], the training images through the reference's
//!   two-branch preprocessing, with a per-epoch order drawn from the seed.
//! - [`trainer`]: [`Trainer`], one iteration: the generator step (L1,
//!   qloss, LPIPS-VGG, adaptive hinge GAN) and the discriminator step.
//! - [`parallel`]: data parallel over several devices on burn's collective
//!   engine ([`train_parallel`], [`PeerConfig`]).
//! - [`run`]: [`train`], a whole run in a run directory: build or resume
//!   exactly, checkpoints, metrics, validation, pictures.
//! - [`discriminator`]: [`NLayerDiscriminator`], taming's patch
//!   discriminator with the reference's sizes and init.
//! - [`schedule`]: [`LrSchedule`], warmup then half cosine, per iteration.
//! - [`run_dir`]: [`RunDir`], the run directory (configuration, atomic
//!   checkpoints, a `last` link swapped atomically, keep-N, `metrics.jsonl`).
//! - [`observe`]: validation measurements, sample grids, `curves.png`.

pub mod config;
pub mod data;
pub mod discriminator;
mod error;
pub mod observe;
pub mod parallel;
pub mod run;
pub mod run_dir;
pub mod schedule;
pub mod trainer;

pub use config::{GlobalEmbedder, TrainConfig};
pub use data::TrainData;
pub use discriminator::NLayerDiscriminator;
pub use error::{Result, TrainError};
pub use parallel::PeerConfig;
pub use run::{train, train_parallel, Progress, RunOptions, RunSummary, Session};
pub use run_dir::RunDir;
pub use schedule::LrSchedule;
pub use trainer::{Iteration, Net, StepReport, Trainer};
