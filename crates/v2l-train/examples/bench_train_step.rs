//! Seconds per training iteration and peak memory of one configuration on
//! one CPU backend: the v2l-rs side of `scripts/bench_train.sh` (the
//! PyTorch side is `scripts/bench_train_torch.py`, doing the same work).
//!
//! One iteration is the reference's (`Trainer::step` past `disc_start`):
//! the generator step with LPIPS-VGG (dropout on, as in training) and the
//! adaptive weight, then the discriminator step, on a fixed batch, random
//! weights. The global branch gets a random unit image embedding per image
//! (the frozen CLIP forward is skipped on both sides); the top-k search
//! over the global codebook runs.
//!
//! `bench_train_step <tiny|official> <flex|ndarray> [batch] [iters]`
//! prints one JSON line. `tiny` is `configs/fashion-mnist-tiny.toml`;
//! `official` the reference's architecture (`ModelConfig::official`,
//! 128 px, discriminator ndf 64). Needs the `lpips-backbones` asset.

use std::time::Instant;

use burn::backend::Autodiff;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Distribution, Tensor, TensorData};
use v2l_metrics::lpips::{Lpips, LpipsNet};
use v2l_model::ModelConfig;
use v2l_nn::Loader;
use v2l_train::run::model_config;
use v2l_train::trainer::{GlobalInput, LossConfig, Trainer};
use v2l_train::{NLayerDiscriminator, TrainConfig};

struct Case {
    model: ModelConfig,
    ndf: usize,
    size: usize,
}

fn case(name: &str) -> Result<Case, String> {
    match name {
        "tiny" => {
            let path = concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../configs/fashion-mnist-tiny.toml"
            );
            let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
            let c = TrainConfig::from_toml(&text).map_err(|e| e.to_string())?;
            Ok(Case {
                model: model_config(&c, 512, 16, None),
                ndf: c.disc_ndf,
                size: c.image_size,
            })
        }
        "official" => Ok(Case {
            model: ModelConfig {
                vl: None,
                ..ModelConfig::official()
            },
            ndf: 64,
            size: 128,
        }),
        other => Err(format!("unknown configuration {other:?} (tiny | official)")),
    }
}

/// The process's peak resident memory (VmHWM), MB.
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn run<B: AutodiffBackend>(
    backend: &str,
    name: &str,
    batch: usize,
    iters: usize,
) -> Result<(), String> {
    let c = case(name)?;
    let device = Default::default();
    let vgg = v2l_assets::fetch::test_asset("lpips-backbones", "vgg16.ckpt")
        .map_err(|e| e.to_string())?
        .ok_or("fetch the lpips-backbones asset first")?;
    let model =
        v2l_model::V2lModel::<B>::random(&c.model, 1, &device).map_err(|e| e.to_string())?;
    let disc = NLayerDiscriminator::load(&Loader::<B>::random(2, &device), c.ndf);
    let lpips = Lpips::<B>::load(LpipsNet::Vgg, &vgg, &device).map_err(|e| e.to_string())?;
    let loss = LossConfig {
        rate_q: 1.0,
        rate_p: 0.1,
        rate_d: 0.75,
        disc_start: 0,
        lpips_dropout: true,
        code_entropy: None,
        accum_iter: 1,
        accum_mode: v2l_train::trainer::AccumMode::Faithful,
    };
    let k = c.model.k;
    let mut t = Trainer::new(model, disc, lpips, loss, k);
    let s = c.size;
    let n = batch * 3 * s * s;
    let x: Vec<f32> = (0..n)
        .map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0)
        .collect();
    let dim = c.model.embed_dim;
    let embedding = Tensor::<B, 2>::random([batch, dim], Distribution::Normal(0.0, 1.0), &device);
    let norm = embedding.clone().square().sum_dim(1).sqrt();
    let embedding = embedding / norm;
    let mut times = Vec::new();
    for i in 0..=iters {
        let images =
            Tensor::<B, 4>::from_data(TensorData::new(x.clone(), [batch, 3, s, s]), &device);
        let start = Instant::now();
        // Past disc_start: both steps run.
        t.step(
            images,
            GlobalInput::Embedding(embedding.clone()),
            1 + i as u64,
            0,
            4.5e-4,
            i as u64,
        )
        .map_err(|e| e.to_string())?;
        if i > 0 {
            times.push(start.elapsed().as_secs_f64());
        }
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "{{\"impl\": \"v2l-rs (burn {backend})\", \"config\": \"{name}\", \"batch\": {batch}, \
         \"threads\": {threads}, \"median_s\": {median:.4}, \"min_s\": {:.4}, \"timed\": {}, \
         \"steps_per_s\": {:.4}, \"peak_rss_mb\": {:.1}}}",
        times[0],
        times.len(),
        1.0 / median,
        peak_rss_mb().unwrap_or(f64::NAN)
    );
    Ok(())
}

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().collect();
    let name = args.get(1).map_or("tiny", String::as_str);
    let backend = args.get(2).map_or("flex", String::as_str);
    let batch = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(8);
    let iters = args.get(4).and_then(|a| a.parse().ok()).unwrap_or(3);
    match backend {
        "flex" => run::<Autodiff<burn::backend::Flex>>("Flex", name, batch, iters),
        "ndarray" => run::<Autodiff<burn::backend::NdArray>>("NdArray", name, batch, iters),
        other => Err(format!("unknown backend {other:?} (flex | ndarray)")),
    }
}
