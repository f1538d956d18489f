//! Training the V2L tokenizer: the configuration in the reference's own
//! argument names and the reference's learning-rate schedule. The training
//! loop itself is not in this crate yet.
//!
//! - [`config`]: [`TrainConfig`] from TOML (`Run.sh` defaults, unknown keys
//!   refused, the keys a resumed run may not change).
//! - [`schedule`]: [`LrSchedule`], warmup then half cosine, per iteration.

pub mod config;
mod error;
pub mod schedule;

pub use config::{GlobalEmbedder, TrainConfig};
pub use error::{Result, TrainError};
pub use schedule::LrSchedule;
