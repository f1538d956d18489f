//! Metrics of v2l-rs, each matching a named reference tool so numbers are
//! comparable (conventions: the project's `METRICS.md`).
//!
//! Available now:
//! - [`psnr`]: PSNR on [0, 1] images, RGB (as `skimage.metrics.peak_signal_noise_ratio`
//!   with `data_range=1`) or the BT.601 luma Y of BasicSR/pyiqa
//!   (`Y = (16 + 65.481 R + 128.553 G + 24.966 B) / 255`), averaged per image.
//! - [`ssim`]: SSIM exactly as `piq.ssim` defaults (Gaussian 11 × 11, σ 1.5,
//!   K1 0.01, K2 0.03, valid convolution, per-channel mean, piq's average-pool
//!   downsampling by `round(min(H, W) / 256)`).
//! - [`frechet`]: the Fréchet distance between Gaussians (FID's formula) in
//!   f64, with the trace term from symmetric eigendecompositions.
//! - [`usage`]: codebook usage and perplexity of token ids.
//! - [`clip_score`]: CLIP score as torchmetrics' `CLIPScore` (mean of
//!   `100 · cos`, clamped at 0) and CLIP-R (this project's definition).
//!
//! Still to come (open issue): the FID Inception network and feature
//! statistics and LPIPS. Inception Score cannot be
//! computed from the available FID weights (no class logits).

pub mod clip_score;
mod error;
pub mod fid_stats;
pub mod frechet;
mod image;
pub mod psnr;
pub mod ssim;
pub mod usage;

pub use error::{MetricsError, Result};
pub use image::Image;
