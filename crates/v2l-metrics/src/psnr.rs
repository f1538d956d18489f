//! Peak signal-to-noise ratio on [0, 1] images (data range 1).

use crate::error::{MetricsError, Result};
use crate::image::{same_shape, Image};

/// Which values PSNR compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PsnrChannels {
    /// All channels (`skimage.metrics.peak_signal_noise_ratio`, the default).
    #[default]
    Rgb,
    /// BT.601 luma `Y = (16 + 65.481 R + 128.553 G + 24.966 B) / 255` of RGB
    /// images (BasicSR / pyiqa `rgb2ycbcr(y_only=True)`, as the official
    /// V2L evaluation uses).
    Y,
}

/// PSNR in dB of one image pair: `10 · log10(1 / MSE)`; `+∞` for identical images.
///
/// # Errors
/// [`MetricsError::ShapeMismatch`]; [`MetricsError::Undefined`] for
/// [`PsnrChannels::Y`] on an image without 3 channels.
pub fn psnr(a: &Image, b: &Image, channels: PsnrChannels) -> Result<f64> {
    same_shape(a, b)?;
    let mse = match channels {
        PsnrChannels::Rgb => {
            let n = a.data().len() as f64;
            a.data()
                .iter()
                .zip(b.data())
                .map(|(&x, &y)| {
                    let d = f64::from(x) - f64::from(y);
                    d * d
                })
                .sum::<f64>()
                / n
        }
        PsnrChannels::Y => {
            let [c, h, w] = a.shape();
            if c != 3 {
                return Err(MetricsError::Undefined(format!(
                    "Y-channel PSNR needs RGB images, got {c} channels"
                )));
            }
            let luma = |img: &Image, i: usize| {
                16.0 / 255.0
                    + (65.481 * f64::from(img.plane(0)[i])
                        + 128.553 * f64::from(img.plane(1)[i])
                        + 24.966 * f64::from(img.plane(2)[i]))
                        / 255.0
            };
            (0..h * w)
                .map(|i| {
                    let d = luma(a, i) - luma(b, i);
                    d * d
                })
                .sum::<f64>()
                / (h * w) as f64
        }
    };
    Ok(if mse == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (1.0 / mse).log10()
    })
}

/// The mean over pairs of per-image PSNR (the convention of METRICS.md).
///
/// # Errors
/// As [`psnr`]; [`MetricsError::Undefined`] for no pairs.
pub fn mean_psnr<'a>(
    pairs: impl IntoIterator<Item = (&'a Image, &'a Image)>,
    channels: PsnrChannels,
) -> Result<f64> {
    let mut sum = 0.0;
    let mut n = 0usize;
    for (a, b) in pairs {
        sum += psnr(a, b, channels)?;
        n += 1;
    }
    if n == 0 {
        return Err(MetricsError::Undefined("mean PSNR of no images".into()));
    }
    Ok(sum / n as f64)
}
