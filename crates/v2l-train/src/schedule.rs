//! The reference's learning-rate schedule (`util/lr_sched.py`), set every
//! iteration from the fractional epoch `e = step / steps_per_epoch + epoch`:
//! linear warmup `lr · e / warmup_epochs` while `e < warmup_epochs`, then a
//! half cosine from `lr` to `min_lr` over the remaining epochs.

/// The schedule's constants.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LrSchedule {
    /// Peak learning rate.
    pub lr: f64,
    /// Final learning rate.
    pub min_lr: f64,
    /// Epochs of linear warmup.
    pub warmup_epochs: f64,
    /// Total epochs.
    pub epochs: f64,
}

impl LrSchedule {
    /// The learning rate at fractional epoch `e`.
    pub fn at_epoch(&self, e: f64) -> f64 {
        if e < self.warmup_epochs {
            return self.lr * e / self.warmup_epochs;
        }
        let span = (self.epochs - self.warmup_epochs).max(f64::MIN_POSITIVE);
        let progress = (e - self.warmup_epochs) / span;
        self.min_lr
            + (self.lr - self.min_lr) * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
    }

    /// The learning rate at global iteration `iter` (counted from 0) with
    /// `steps_per_epoch` iterations per epoch, as the reference computes
    /// `e = step / len(loader) + epoch`.
    pub fn at_iter(&self, iter: u64, steps_per_epoch: u64) -> f64 {
        let spe = steps_per_epoch.max(1);
        let epoch = iter / spe;
        let step = iter % spe;
        self.at_epoch(step as f64 / spe as f64 + epoch as f64)
    }
}
