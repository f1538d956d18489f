//! Seconds per training iteration of `configs/fashion-mnist-tiny.toml`'s
//! networks on the CPU backends, side by side in one process: the full
//! reference iteration (generator step with LPIPS-VGG and the adaptive
//! weight, discriminator step) on a fixed batch.
//!
//! `scripts/bench_train.sh [batch] [iters]`
//! (needs the `lpips-backbones` asset). Used by `scripts/bench_train.sh`.

use std::time::Instant;

use burn::backend::Autodiff;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Tensor, TensorData};
use v2l_metrics::lpips::{Lpips, LpipsNet};
use v2l_nn::Loader;
use v2l_train::run::{fixed_global_ids, model_config};
use v2l_train::trainer::{GlobalInput, LossConfig, Trainer};
use v2l_train::{NLayerDiscriminator, TrainConfig};

fn run<B: AutodiffBackend>(
    name: &str,
    config: &TrainConfig,
    batch: usize,
    iters: usize,
) -> Result<(), String> {
    let device = Default::default();
    let vgg = v2l_assets::fetch::test_asset("lpips-backbones", "vgg16.ckpt")
        .map_err(|e| e.to_string())?
        .ok_or("fetch the lpips-backbones asset first")?;
    let mc = model_config(config, 512, 16, None);
    let model = v2l_model::V2lModel::<B>::random(&mc, 1, &device).map_err(|e| e.to_string())?;
    let disc = NLayerDiscriminator::load(&Loader::<B>::random(2, &device), config.disc_ndf);
    let lpips = Lpips::<B>::load(LpipsNet::Vgg, &vgg, &device).map_err(|e| e.to_string())?;
    let loss = LossConfig {
        rate_q: config.rate_q,
        rate_p: config.rate_p,
        rate_d: config.rate_d,
        disc_start: 0,
        lpips_dropout: true,
        code_entropy: None,
        accum_iter: 1,
        accum_mode: config.accum_mode(),
    };
    let mut t = Trainer::new(model, disc, lpips, loss, config.k);
    let s = config.image_size;
    let n = batch * 3 * s * s;
    let x: Vec<f32> = (0..n)
        .map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0)
        .collect();
    let mut times = Vec::new();
    for i in 0..=iters {
        let images =
            Tensor::<B, 4>::from_data(TensorData::new(x.clone(), [batch, 3, s, s]), &device);
        let ids = GlobalInput::Ids(fixed_global_ids::<B>(batch, config.k, &device));
        let start = Instant::now();
        // Past disc_start: both steps run.
        t.step(images, ids, 1 + i as u64, 0, 4.5e-4, i as u64)
            .map_err(|e| e.to_string())?;
        if i > 0 {
            times.push(start.elapsed().as_secs_f64());
        }
    }
    times.sort_by(f64::total_cmp);
    println!(
        "{name:8} batch {batch} {s}px: median {:.3} s/iteration (min {:.3}, max {:.3}, {} timed after 1 warm-up)",
        times[times.len() / 2],
        times[0],
        times[times.len() - 1],
        times.len()
    );
    Ok(())
}

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().collect();
    let batch = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(8);
    let iters = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(3);
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../configs/fashion-mnist-tiny.toml"
    );
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    let config = TrainConfig::from_toml(&text).map_err(|e| e.to_string())?;
    run::<Autodiff<burn::backend::Flex>>("flex", &config, batch, iters)?;
    run::<Autodiff<burn::backend::NdArray>>("ndarray", &config, batch, iters)
}
