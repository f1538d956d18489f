//! `v2l lpips` (and `v2l fid`): network-based image metrics with
//! provenance.

use crate::args::{FidArgs, LpipsArgs};
use crate::error::{err, CliError};
use std::path::{Path, PathBuf};

use serde_json::json;
use v2l::burn::tensor::backend::Backend;
use v2l::metrics::lpips::{InputRange, Lpips, LpipsNet};

/// A cached asset file, or an error saying how to get it.
pub(crate) fn cached_asset(name: &str, file: &str) -> Result<PathBuf, CliError> {
    v2l::assets::fetch::cached_file(name, Some(file)).map_err(err)
}

pub(crate) fn sha256(path: &Path) -> Result<String, CliError> {
    v2l::io::hash::sha256_file(path).map_err(|e| CliError::read(path, &e))
}

/// Run `v2l lpips`.
pub fn run_lpips(args: LpipsArgs) -> Result<(), CliError> {
    crate::device::dispatch_f32(args.device.device, args)
}

impl crate::device::OnDevice for LpipsArgs {
    fn run<B: Backend>(self, device: B::Device) -> Result<(), CliError> {
        let net = match self.net.as_str() {
            "alex" => LpipsNet::Alex,
            "vgg" => LpipsNet::Vgg,
            other => {
                return Err(CliError::usage(format!(
                    "--net must be alex or vgg, not {other:?}"
                )))
            }
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
            .map_err(err)?
            .with_input_range(range);
        let pairs = crate::metrics::pairs(&self.reference, &self.distorted)?;
        let bar = crate::progress::bar(pairs.len() as u64, "pairs");
        let mut rows = Vec::with_capacity(pairs.len());
        let mut values = Vec::with_capacity(pairs.len());
        let mut size = None;
        for (a, b) in &pairs {
            let open = |p: &Path| {
                v2l::model::image::open(p)
                    .map(|i| i.to_rgb8())
                    .map_err(|e| err(e).context(format!("cannot read image {}", p.display())))
            };
            let (ia, ib) = (open(a)?, open(b)?);
            size.get_or_insert(ia.dimensions());
            let d = model
                .distance_images(std::slice::from_ref(&ia), std::slice::from_ref(&ib))
                .map_err(|e| err(e).context(format!("{} vs {}", a.display(), b.display())))?;
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
                        "codec": crate::metrics::codecs_of(&pairs),
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

/// Run `v2l fid`.
pub fn run_fid(args: FidArgs) -> Result<(), CliError> {
    crate::device::dispatch_f32(args.device.device, args)
}

/// Statistics of one side, with what it was computed from.
struct Side {
    stats: v2l::metrics::fid_stats::StoredStats,
    provenance: serde_json::Value,
}

fn side_stats<B: Backend>(
    path: &Path,
    net: &mut Option<v2l::metrics::inception::FidInception<B>>,
    weights: &Path,
    batch: usize,
    device: &B::Device,
    save: Option<&Path>,
    weights_sha: &str,
) -> Result<Side, CliError> {
    use v2l::metrics::fid_stats::{load_stats, FeatureStats, StoredStats};
    use v2l::metrics::inception::{
        preprocess_pytorch_fid_u8, FidInception, FEATURE_DIM, INPUT_SIZE,
    };
    if path.is_file() {
        if save.is_some() {
            return Err(CliError::usage(format!(
                "{} is already a statistics file; --save-a/--save-b apply to folders",
                path.display()
            )));
        }
        let stats = load_stats(path).map_err(err)?;
        let provenance = json!({"statistics_file": path.display().to_string(), "n": stats.n, "recorded": stats.provenance});
        return Ok(Side { stats, provenance });
    }
    let files = crate::metrics::image_files(path)?;
    if net.is_none() {
        *net = Some(FidInception::<B>::load_file(weights, device).map_err(err)?);
    }
    let model = net.as_ref().ok_or(CliError::from("no network"))?;
    let bar = crate::progress::bar(files.len() as u64, "images");
    bar.set_message(path.display().to_string());
    let mut stats = FeatureStats::new(FEATURE_DIM);
    let mut sizes = std::collections::BTreeSet::new();
    let mut codecs = std::collections::BTreeSet::new();
    for chunk in files.chunks(batch.max(1)) {
        let mut input = Vec::with_capacity(chunk.len() * 3 * INPUT_SIZE * INPUT_SIZE);
        for f in chunk {
            let im = v2l::model::image::open(f)
                .map_err(|e| err(e).context(format!("cannot read image {}", f.display())))?
                .to_rgb8();
            let (w, h) = im.dimensions();
            sizes.insert((h, w));
            if let Some(e) = f.extension().and_then(|e| e.to_str()) {
                codecs.insert(e.to_ascii_lowercase());
            }
            // HWC → CHW.
            let plane = (h * w) as usize;
            let raw = im.into_raw();
            let mut chw = vec![0u8; 3 * plane];
            for (p, px) in raw.chunks_exact(3).enumerate() {
                for c in 0..3 {
                    chw[c * plane + p] = px[c];
                }
            }
            let x = preprocess_pytorch_fid_u8(&chw, [1, 3, h as usize, w as usize])
                .map_err(|e| format!("{}: {e}", f.display()))?;
            input.extend(x);
        }
        let n = chunk.len();
        let x = v2l::burn::tensor::Tensor::<B, 4>::from_data(
            v2l::burn::tensor::TensorData::new(input, [n, 3, INPUT_SIZE, INPUT_SIZE]),
            device,
        );
        let feats = model.forward(x).map_err(err)?;
        let host = feats
            .into_data()
            .convert::<f32>()
            .into_vec::<f32>()
            .map_err(|e| CliError::from(format!("reading features: {e:?}")))?;
        stats.update(&host).map_err(err)?;
        bar.inc(n as u64);
    }
    bar.finish_and_clear();
    let provenance = json!({
        "folder": path.display().to_string(),
        "n": stats.n(),
        "resolutions": sizes.iter().map(|(h, w)| [h, w]).collect::<Vec<_>>(),
        "codecs": codecs,
        "crop": "none",
        "preprocessing": "RGB u8 / 255, bilinear resize to 299 (align_corners=False, no antialias), 2x - 1 (pytorch-fid)",
        "weights_sha256": weights_sha,
    });
    if let Some(p) = save {
        stats.save(p, &provenance).map_err(err)?;
    }
    let stats = StoredStats::from_stats(&stats, provenance.clone())
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(Side { stats, provenance })
}

impl crate::device::OnDevice for FidArgs {
    fn run<B: Backend>(self, device: B::Device) -> Result<(), CliError> {
        let needs_net = !self.a.is_file() || !self.b.is_file();
        let weights = match (&self.inception, needs_net) {
            (Some(p), _) => p.clone(),
            (None, true) => cached_asset("fid-inception", "default_1.pt")?,
            (None, false) => PathBuf::new(),
        };
        let weights_sha = if needs_net {
            sha256(&weights)?
        } else {
            String::new()
        };
        let mut net = None;
        let a = side_stats::<B>(
            &self.a,
            &mut net,
            &weights,
            self.batch_size,
            &device,
            self.save_a.as_deref(),
            &weights_sha,
        )?;
        let b = side_stats::<B>(
            &self.b,
            &mut net,
            &weights,
            self.batch_size,
            &device,
            self.save_b.as_deref(),
            &weights_sha,
        )?;
        let value = v2l::metrics::fid_stats::fid(&a.stats, &b.stats).map_err(err)?;
        if self.json {
            println!(
                "{}",
                json!({
                    "metric": "fid",
                    "value": value,
                    "provenance": {
                        "tool": "pytorch-fid conventions: FID Inception pool3 (2048-d), unbiased covariance, Fréchet distance with a symmetric-eigendecomposition trace term",
                        "weights": if needs_net { json!(weights.display().to_string()) } else { json!(null) },
                        "a": a.provenance,
                        "b": b.provenance,
                    },
                })
            );
        } else {
            println!(
                "fid = {value:.4} ({} vs {} images)",
                a.stats.n.map_or("?".into(), |n| n.to_string()),
                b.stats.n.map_or("?".into(), |n| n.to_string())
            );
        }
        Ok(())
    }
}
