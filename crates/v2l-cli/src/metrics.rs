//! `v2l psnr` and `v2l ssim`: image metrics over a pair of files or two
//! folders (pairs matched by file name).

use crate::args::PairArgs;
use crate::error::{err, CliError};
use std::path::{Path, PathBuf};

use serde_json::json;
use v2l::metrics::psnr::{psnr, PsnrChannels};
use v2l::metrics::ssim::ssim;
use v2l::metrics::Image;

/// Which metric to run.
#[derive(Debug, Clone, Copy)]
pub enum Metric {
    /// PSNR over RGB or Y.
    Psnr(PsnrChannels),
    /// SSIM as piq.
    Ssim,
}

fn is_image(p: &Path) -> bool {
    matches!(
        p.extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref(),
        Some("png" | "jpg" | "jpeg")
    )
}

/// The PNG/JPEG files directly in `dir`, sorted by name.
pub(crate) fn image_files(dir: &Path) -> Result<Vec<PathBuf>, CliError> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| CliError::read(dir, &e).context("cannot list"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && is_image(p))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(CliError::malformed(format!(
            "no PNG/JPEG images in {}",
            dir.display()
        )));
    }
    Ok(files)
}

/// The (reference, distorted) pairs: one pair of files, or every image in
/// the reference folder with the file of the same name in the other folder.
pub(crate) fn pairs(a: &Path, b: &Path) -> Result<Vec<(PathBuf, PathBuf)>, CliError> {
    match (a.is_dir(), b.is_dir()) {
        (false, false) => Ok(vec![(a.to_path_buf(), b.to_path_buf())]),
        (true, true) => image_files(a)?
            .into_iter()
            .map(|f| {
                let name = f.file_name().map(PathBuf::from).unwrap_or_default();
                let other = b.join(&name);
                if other.is_file() {
                    Ok((f, other))
                } else {
                    Err(CliError::missing(format!(
                        "{} has no counterpart {}",
                        f.display(),
                        other.display()
                    )))
                }
            })
            .collect(),
        _ => Err(CliError::usage(format!(
            "{} and {} must both be files or both be folders",
            a.display(),
            b.display()
        ))),
    }
}

/// The file formats of the pairs (lower-case extensions), for provenance.
pub(crate) fn codecs_of(pairs: &[(PathBuf, PathBuf)]) -> Vec<String> {
    let mut set = std::collections::BTreeSet::new();
    for (a, b) in pairs {
        for p in [a, b] {
            if let Some(e) = p.extension().and_then(|e| e.to_str()) {
                set.insert(e.to_ascii_lowercase());
            }
        }
    }
    set.into_iter().collect()
}

/// Runs a pairwise metric and prints the mean (and, with `--json`, every pair).
pub fn run(args: PairArgs, metric: Metric) -> Result<(), CliError> {
    let pairs = pairs(&args.reference, &args.distorted)?;
    let bar = crate::progress::bar(pairs.len() as u64, "pairs");
    let mut values = Vec::with_capacity(pairs.len());
    let mut rows = Vec::new();
    let mut shape = None;
    let codecs = codecs_of(&pairs);
    for (a, b) in &pairs {
        bar.set_message(
            a.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        );
        let ia = Image::open(a).map_err(err)?;
        let ib = Image::open(b).map_err(err)?;
        let v = match metric {
            Metric::Psnr(ch) => psnr(&ia, &ib, ch),
            Metric::Ssim => ssim(&ia, &ib),
        }
        .map_err(|e| err(e).context(format!("{} vs {}", a.display(), b.display())))?;
        shape.get_or_insert(ia.shape());
        values.push(v);
        rows.push(json!({"reference": a.display().to_string(), "distorted": b.display().to_string(), "value": v}));
        bar.inc(1);
    }
    bar.finish_and_clear();
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    let (name, tool) = match metric {
        Metric::Psnr(PsnrChannels::Rgb) => ("psnr", "skimage peak_signal_noise_ratio convention (RGB, data range 1), mean of per-image dB"),
        Metric::Psnr(PsnrChannels::Y) => ("psnr_y", "BT.601 Y = (16 + 65.481R + 128.553G + 24.966B)/255 (BasicSR/pyiqa), mean of per-image dB"),
        Metric::Ssim => ("ssim", "piq.ssim defaults (Gaussian 11, sigma 1.5, valid, downsample round(min/256))"),
    };
    if args.json {
        println!(
            "{}",
            json!({
                "metric": name,
                "value": mean,
                "n": values.len(),
                "provenance": {
                    "tool": tool,
                    "resolution": shape.map(|s| [s[1], s[2]]),
                    "input": "8-bit files decoded to RGB in [0, 1]",
                    "codec": codecs,
                    "crop": "none",
                },
                "pairs": rows,
            })
        );
    } else {
        println!("{name} = {mean:.4} over {} image pair(s)", values.len());
    }
    Ok(())
}
