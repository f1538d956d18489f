//! Training the V2L tokenizer: the configuration in the reference's own
//! argument names, the reference's learning-rate schedule and the run
//! directory. The training loop itself is not in this crate yet.
//!
//! - [`config`]: [`TrainConfig`] from TOML (`Run.sh` defaults, unknown keys
//!   refused, the keys a resumed run may not change).
//! - [`discriminator`]: [`NLayerDiscriminator`], taming's patch
//!   discriminator with the reference's sizes and init.
//! - [`schedule`]: [`LrSchedule`], warmup then half cosine, per iteration.
//! - [`run_dir`]: [`RunDir`], the run directory (configuration, atomic
//!   checkpoints, a `last` link swapped atomically, keep-N, `metrics.jsonl`).

pub mod config;
pub mod discriminator;
mod error;
pub mod run_dir;
pub mod schedule;

pub use config::{GlobalEmbedder, TrainConfig};
pub use discriminator::NLayerDiscriminator;
pub use error::{Result, TrainError};
pub use run_dir::RunDir;
pub use schedule::LrSchedule;
