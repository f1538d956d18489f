//! What a run shows: validation measurements on a fixed batch, sample grids
//! and the curves picture.

use std::path::Path;

use burn::module::AutodiffModule;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{ElementConversion, Tensor};
use image::{Rgb, RgbImage};
use v2l_metrics::psnr::{psnr, PsnrChannels};
use v2l_metrics::ssim::ssim;
use v2l_metrics::Image;

use crate::data::Batch;
use crate::error::{Result, TrainError};
use crate::run::Session;
use crate::trainer::{GlobalInput, Trainer};

/// Validation measurements of the fixed batch (reconstructions clamped to
/// `[-1, 1]`, compared in `[0, 1]`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Validation {
    /// Mean PSNR (dB, RGB).
    pub psnr: f64,
    /// Mean SSIM.
    pub ssim: f64,
    /// Mean LPIPS-VGG (dropout off).
    pub lpips: f64,
}

/// Reconstruct `batch` with the current model (no gradients).
///
/// # Errors
/// Model errors.
pub fn reconstruct<B: AutodiffBackend>(
    session: &Session<B>,
    batch: &Batch,
    size: usize,
) -> Result<Tensor<B::InnerBackend, 4>> {
    let model = session.trainer.model.valid();
    let x = session.images(batch, size).inner();
    let local = model
        .encode_local(x, None)
        .map_err(crate::trainer::local_err)?;
    let global = match session.global_input(batch)? {
        GlobalInput::Embedding(e) => model.encode_global(e.inner(), session.trainer.k, None),
        GlobalInput::Ids(ids) => model.global_from_ids(ids.inner()),
    }
    .map_err(crate::trainer::model_err)?;
    model
        .decode(local.quantized, global.context)
        .map_err(crate::trainer::model_err)
}

/// PSNR, SSIM and LPIPS of the model's reconstructions of `batch`.
///
/// # Errors
/// Model and metric errors.
pub fn validate<B: AutodiffBackend>(
    trainer: &Trainer<B>,
    session: &Session<B>,
    batch: &Batch,
    size: usize,
) -> Result<Validation> {
    let xhat = reconstruct(session, batch, size)?.clamp(-1.0, 1.0);
    let x = session.images(batch, size).inner();
    let lp = trainer
        .lpips
        .valid()
        .forward_trusted(x, xhat.clone())
        .map_err(|e| TrainError::Model(e.to_string()))?
        .mean();
    let lpips: f32 = lp.into_scalar().elem();
    let rec = to_unit(xhat)?;
    let plane = 3 * size * size;
    let (mut p, mut s) = (0.0, 0.0);
    for i in 0..batch.len {
        let a: Vec<f32> = batch.images[i * plane..(i + 1) * plane]
            .iter()
            .map(|v| ((v + 1.0) / 2.0).clamp(0.0, 1.0))
            .collect();
        let b = rec[i * plane..(i + 1) * plane].to_vec();
        let metric = |e: v2l_metrics::MetricsError| TrainError::Model(e.to_string());
        let ia = Image::from_chw(a, 3, size, size).map_err(metric)?;
        let ib = Image::from_chw(b, 3, size, size).map_err(metric)?;
        p += psnr(&ia, &ib, PsnrChannels::Rgb)
            .map_err(metric)?
            .min(100.0);
        s += ssim(&ia, &ib).map_err(metric)?;
    }
    let n = batch.len.max(1) as f64;
    Ok(Validation {
        psnr: p / n,
        ssim: s / n,
        lpips: f64::from(lpips),
    })
}

/// `[-1, 1]` → `[0, 1]` values, row-major.
fn to_unit<B: Backend>(x: Tensor<B, 4>) -> Result<Vec<f32>> {
    x.add_scalar(1.0)
        .div_scalar(2.0)
        .into_data()
        .convert::<f32>()
        .into_vec::<f32>()
        .map_err(|e| TrainError::Model(format!("{e:?}")))
}

/// Write `samples.png`: the validation inputs on the top row, their
/// reconstructions below (each image scaled up to at least 64 pixels).
///
/// # Errors
/// Model and I/O errors.
pub fn write_samples<B: AutodiffBackend>(
    session: &Session<B>,
    batch: &Batch,
    size: usize,
    path: &Path,
) -> Result<()> {
    let rec = to_unit(reconstruct(session, batch, size)?.clamp(-1.0, 1.0))?;
    let input: Vec<f32> = batch
        .images
        .iter()
        .map(|v| ((v + 1.0) / 2.0).clamp(0.0, 1.0))
        .collect();
    let scale = (64 / size).max(1);
    let cell = size * scale + 2;
    let (w, h) = (cell * batch.len, cell * 2);
    let mut img = RgbImage::from_pixel(w as u32, h as u32, Rgb([255, 255, 255]));
    let plane = size * size;
    for (row, values) in [&input, &rec].into_iter().enumerate() {
        for i in 0..batch.len {
            for y in 0..size * scale {
                for x in 0..size * scale {
                    let p = (y / scale) * size + x / scale;
                    let px: [u8; 3] = std::array::from_fn(|c| {
                        (values[i * 3 * plane + c * plane + p] * 255.0).round() as u8
                    });
                    img.put_pixel(
                        (i * cell + 1 + x) as u32,
                        (row * cell + 1 + y) as u32,
                        Rgb(px),
                    );
                }
            }
        }
    }
    save_png(&img, path)
}

fn save_png(img: &RgbImage, path: &Path) -> Result<()> {
    let mut bytes = Vec::new();
    image::DynamicImage::ImageRgb8(img.clone())
        .write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageFormat::Png,
        )
        .map_err(|e| TrainError::Checkpoint {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    crate::run_dir::atomic_write(path, &bytes)
}

/// Panels of the curves picture: title and the metric keys drawn in it.
const PANELS: &[(&str, &[&str])] = &[
    ("REC LOSS", &["rec_loss"]),
    ("LPIPS", &["p_loss"]),
    ("QLOSS", &["qloss"]),
    ("VAL PSNR DB", &["val_psnr"]),
    ("LR", &["lr"]),
    ("CODES USED", &["codes_used"]),
];

const PANEL_W: u32 = 360;
const PANEL_H: u32 = 200;
const MARGIN: u32 = 34;

/// Draw `curves.png`: one panel per quantity against the iteration, with
/// its range written on the axis.
///
/// # Errors
/// I/O errors.
pub fn write_curves(records: &[serde_json::Value], path: &Path) -> Result<()> {
    let cols = 3u32;
    let rows = (PANELS.len() as u32).div_ceil(cols);
    let mut img = RgbImage::from_pixel(PANEL_W * cols, PANEL_H * rows, Rgb([255, 255, 255]));
    for (i, (title, keys)) in PANELS.iter().enumerate() {
        let ox = (i as u32 % cols) * PANEL_W;
        let oy = (i as u32 / cols) * PANEL_H;
        draw_panel(&mut img, ox, oy, title, keys, records);
    }
    save_png(&img, path)
}

fn draw_panel(
    img: &mut RgbImage,
    ox: u32,
    oy: u32,
    title: &str,
    keys: &[&str],
    records: &[serde_json::Value],
) {
    let (x0, y0) = (ox + MARGIN + 20, oy + 18);
    let (x1, y1) = (ox + PANEL_W - 10, oy + PANEL_H - MARGIN);
    let axis = Rgb([90, 90, 90]);
    text(img, ox + 6, oy + 4, title, axis);
    line(img, (x0, y1), (x1, y1), axis);
    line(img, (x0, y0), (x0, y1), axis);
    let points: Vec<(f64, f64)> = records
        .iter()
        .filter_map(|r| {
            let x = r["step"].as_f64().or_else(|| r["val_at"].as_f64())?;
            Some((x, r[keys[0]].as_f64()?))
        })
        .filter(|(_, v)| v.is_finite())
        .collect();
    if points.is_empty() {
        return;
    }
    let (smin, smax) = bounds(points.iter().map(|p| p.0));
    let (vmin, vmax) = bounds(points.iter().map(|p| p.1));
    text(img, ox + 2, y0, &number(vmax), axis);
    text(img, ox + 2, y1 - 8, &number(vmin), axis);
    text(img, x0, y1 + 6, &number(smin), axis);
    let last = number(smax);
    text(
        img,
        x1.saturating_sub(6 * last.len() as u32),
        y1 + 6,
        &last,
        axis,
    );
    text(img, (x0 + x1) / 2 - 12, y1 + 18, "STEP", axis);
    let to_px = |(s, v): (f64, f64)| {
        let fx = if smax > smin {
            (s - smin) / (smax - smin)
        } else {
            0.5
        };
        let fy = if vmax > vmin {
            (v - vmin) / (vmax - vmin)
        } else {
            0.5
        };
        (
            x0 + ((x1 - x0 - 1) as f64 * fx).round() as u32 + 1,
            y1 - 1 - ((y1 - y0 - 1) as f64 * fy).round() as u32,
        )
    };
    let colour = Rgb([31, 119, 180]);
    let mut prev = None;
    for p in points {
        let q = to_px(p);
        if let Some(pq) = prev {
            line(img, pq, q, colour);
        } else {
            img.put_pixel(q.0, q.1, colour);
        }
        prev = Some(q);
    }
}

fn bounds(values: impl Iterator<Item = f64>) -> (f64, f64) {
    values.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
        (a.min(v), b.max(v))
    })
}

/// A short label for an axis value.
fn number(v: f64) -> String {
    let a = v.abs();
    if a != 0.0 && !(1e-2..1e5).contains(&a) {
        format!("{v:.2E}")
    } else if a >= 100.0 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.3}")
    }
}

fn line(img: &mut RgbImage, (ax, ay): (u32, u32), (bx, by): (u32, u32), c: Rgb<u8>) {
    let (ax, ay, bx, by) = (ax as i64, ay as i64, bx as i64, by as i64);
    let steps = (bx - ax).abs().max((by - ay).abs()).max(1);
    for t in 0..=steps {
        let x = ax + (bx - ax) * t / steps;
        let y = ay + (by - ay) * t / steps;
        if x >= 0 && y >= 0 && (x as u32) < img.width() && (y as u32) < img.height() {
            img.put_pixel(x as u32, y as u32, c);
        }
    }
}

/// Draw `s` with a 5×7 pixel font (digits, capitals, `.`, `-`, `+`, space;
/// other characters are skipped).
fn text(img: &mut RgbImage, x: u32, y: u32, s: &str, c: Rgb<u8>) {
    for (i, ch) in s.chars().enumerate() {
        let Some(rows) = glyph(ch) else { continue };
        for (r, bits) in rows.iter().enumerate() {
            for col in 0..5u32 {
                if bits & (0b10000 >> col) != 0 {
                    let px = x + i as u32 * 6 + col;
                    let py = y + r as u32;
                    if px < img.width() && py < img.height() {
                        img.put_pixel(px, py, c);
                    }
                }
            }
        }
    }
}

fn glyph(c: char) -> Option<[u8; 7]> {
    Some(match c {
        '0' => [14, 17, 19, 21, 25, 17, 14],
        '1' => [4, 12, 4, 4, 4, 4, 14],
        '2' => [14, 17, 1, 2, 4, 8, 31],
        '3' => [31, 2, 4, 2, 1, 17, 14],
        '4' => [2, 6, 10, 18, 31, 2, 2],
        '5' => [31, 16, 30, 1, 1, 17, 14],
        '6' => [6, 8, 16, 30, 17, 17, 14],
        '7' => [31, 1, 2, 4, 8, 8, 8],
        '8' => [14, 17, 17, 14, 17, 17, 14],
        '9' => [14, 17, 17, 15, 1, 2, 12],
        '.' => [0, 0, 0, 0, 0, 12, 12],
        '-' => [0, 0, 0, 31, 0, 0, 0],
        '+' => [0, 4, 4, 31, 4, 4, 0],
        ' ' => [0; 7],
        'A' => [14, 17, 17, 31, 17, 17, 17],
        'B' => [30, 17, 17, 30, 17, 17, 30],
        'C' => [14, 17, 16, 16, 16, 17, 14],
        'D' => [28, 18, 17, 17, 17, 18, 28],
        'E' => [31, 16, 16, 30, 16, 16, 31],
        'I' => [14, 4, 4, 4, 4, 4, 14],
        'L' => [16, 16, 16, 16, 16, 16, 31],
        'N' => [17, 17, 25, 21, 19, 17, 17],
        'O' => [14, 17, 17, 17, 17, 17, 14],
        'P' => [30, 17, 17, 30, 16, 16, 16],
        'Q' => [14, 17, 17, 17, 21, 18, 13],
        'R' => [30, 17, 17, 30, 20, 18, 17],
        'S' => [15, 16, 16, 14, 1, 1, 30],
        'T' => [31, 4, 4, 4, 4, 4, 4],
        'U' => [17, 17, 17, 17, 17, 17, 14],
        'V' => [17, 17, 17, 17, 17, 10, 4],
        _ => return None,
    })
}
