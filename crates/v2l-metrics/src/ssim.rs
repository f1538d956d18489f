//! SSIM exactly as `piq.ssim` with its defaults (data range 1).
//!
//! piq: inputs average-pooled by `f = round(min(H, W) / 256)` (Python's
//! round-half-to-even; `f × f` windows, stride `f`, no padding) when `f > 1`;
//! an 11 × 11 Gaussian window (σ = 1.5) normalised to sum 1, applied as a
//! *valid* convolution per channel; `C1 = 0.01²`, `C2 = 0.03²`; the SSIM map
//! averaged over positions, then over channels. Computed here in f64.

use crate::error::{MetricsError, Result};
use crate::image::{same_shape, Image};

/// Window side.
pub const KERNEL: usize = 11;
/// Window σ.
pub const SIGMA: f64 = 1.5;
const K1: f64 = 0.01;
const K2: f64 = 0.03;

/// Python's `round` (half to even) of a non-negative ratio.
fn round_half_even(x: f64) -> usize {
    let f = x.floor();
    let frac = x - f;
    let r = if frac > 0.5 || (frac == 0.5 && (f as usize) % 2 == 1) {
        f + 1.0
    } else {
        f
    };
    r as usize
}

/// The normalised 2-D Gaussian window, row-major `KERNEL × KERNEL`.
fn window() -> Vec<f64> {
    let c = (KERNEL as f64 - 1.0) / 2.0;
    let mut g: Vec<f64> = (0..KERNEL * KERNEL)
        .map(|i| {
            let (y, x) = ((i / KERNEL) as f64 - c, (i % KERNEL) as f64 - c);
            (-(x * x + y * y) / (2.0 * SIGMA * SIGMA)).exp()
        })
        .collect();
    let s: f64 = g.iter().sum();
    g.iter_mut().for_each(|v| *v /= s);
    g
}

/// `f × f` average pooling (floor of the output size), f64.
fn pool(plane: &[f64], h: usize, w: usize, f: usize) -> (Vec<f64>, usize, usize) {
    let (oh, ow) = (h / f, w / f);
    let mut out = vec![0.0; oh * ow];
    for y in 0..oh {
        for x in 0..ow {
            let mut s = 0.0;
            for dy in 0..f {
                for dx in 0..f {
                    s += plane[(y * f + dy) * w + x * f + dx];
                }
            }
            out[y * ow + x] = s / (f * f) as f64;
        }
    }
    (out, oh, ow)
}

/// Valid 2-D correlation with the window.
fn filter(p: &[f64], h: usize, w: usize, g: &[f64]) -> Vec<f64> {
    let (oh, ow) = (h + 1 - KERNEL, w + 1 - KERNEL);
    let mut out = vec![0.0; oh * ow];
    for y in 0..oh {
        for x in 0..ow {
            let mut s = 0.0;
            for ky in 0..KERNEL {
                let row = &p[(y + ky) * w + x..(y + ky) * w + x + KERNEL];
                let grow = &g[ky * KERNEL..(ky + 1) * KERNEL];
                s += row.iter().zip(grow).map(|(a, b)| a * b).sum::<f64>();
            }
            out[y * ow + x] = s;
        }
    }
    out
}

/// SSIM of one image pair, piq defaults.
///
/// # Errors
/// [`MetricsError::ShapeMismatch`]; [`MetricsError::Undefined`] when the
/// (downsampled) image is smaller than the 11 × 11 window.
pub fn ssim(a: &Image, b: &Image) -> Result<f64> {
    same_shape(a, b)?;
    let [c, h, w] = a.shape();
    let f = round_half_even(h.min(w) as f64 / 256.0).max(1);
    let g = window();
    let (c1, c2) = (K1 * K1, K2 * K2);
    let mut total = 0.0;
    for ch in 0..c {
        let to64 = |p: &[f32]| p.iter().map(|&v| f64::from(v)).collect::<Vec<f64>>();
        let (x, hh, ww) = pool(&to64(a.plane(ch)), h, w, f);
        let (y, _, _) = pool(&to64(b.plane(ch)), h, w, f);
        if hh < KERNEL || ww < KERNEL {
            return Err(MetricsError::Undefined(format!(
                "SSIM needs at least {KERNEL}x{KERNEL} pixels after downsampling by {f}, got {hh}x{ww}"
            )));
        }
        let mu_x = filter(&x, hh, ww, &g);
        let mu_y = filter(&y, hh, ww, &g);
        let sq = |p: &[f64], q: &[f64]| p.iter().zip(q).map(|(u, v)| u * v).collect::<Vec<f64>>();
        let e_xx = filter(&sq(&x, &x), hh, ww, &g);
        let e_yy = filter(&sq(&y, &y), hh, ww, &g);
        let e_xy = filter(&sq(&x, &y), hh, ww, &g);
        let n = mu_x.len();
        let mut s = 0.0;
        for i in 0..n {
            let (mx, my) = (mu_x[i], mu_y[i]);
            let sxx = e_xx[i] - mx * mx;
            let syy = e_yy[i] - my * my;
            let sxy = e_xy[i] - mx * my;
            let cs = (2.0 * sxy + c2) / (sxx + syy + c2);
            s += (2.0 * mx * my + c1) / (mx * mx + my * my + c1) * cs;
        }
        total += s / n as f64;
    }
    Ok(total / c as f64)
}
