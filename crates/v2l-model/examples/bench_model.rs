//! CPU benchmark of the V2L tokenizer at the reference's full size (random
//! weights): ch 128, ch_mult [1,2,2,4], 2 blocks per level, z 256, D 768,
//! 32,000 local and 11,908 global rows, k 21, CLIP ViT-L/14 at 224 px, 128-px
//! tokenizer input. The same phases and methodology as
//! `scripts/bench_model_torch.py`; run both through `scripts/bench_model.sh`.
//!
//! ```text
//! cargo run --release -p v2l-model --example bench_model -- <ndarray|flex> <encode|encode_no_clip|decode> [batch] [iters]
//! ```
//!
//! Prints one JSON line: `{"impl", "backend", "phase", "batch", "images_per_s",
//! "seconds_per_iter", "peak_rss_mib"}`. Peak RSS is the process's `VmHWM`
//! (Linux), so run one phase per process.

use std::time::Instant;

use burn::tensor::{backend::Backend, Distribution, Int, Tensor};
use v2l_model::{ModelConfig, V2lModel};

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

fn run<B: Backend>(name: &str, phase: &str, batch: usize, iters: usize) -> Result<(), String> {
    let device = B::Device::default();
    let mut config = ModelConfig::official();
    if phase != "encode" {
        config.vl = None;
    }
    let model = V2lModel::<B>::random(&config, 7, &device).map_err(|e| e.to_string())?;
    // Constant at inference: projected once, outside the timed region.
    let local = model.prepare_local().map_err(|e| e.to_string())?;
    let global = model.prepare_global().map_err(|e| e.to_string())?;
    let images = Tensor::<B, 4>::random(
        [batch, 3, 128, 128],
        Distribution::Uniform(-1.0, 1.0),
        &device,
    );
    let clip_in = Tensor::<B, 4>::random(
        [batch, 3, 224, 224],
        Distribution::Normal(0.0, 1.0),
        &device,
    );
    let local_ids =
        Tensor::<B, 2, Int>::random([batch, 256], Distribution::Uniform(0.0, 32000.0), &device);
    let global_ids =
        Tensor::<B, 2, Int>::random([batch, 21], Distribution::Uniform(0.0, 11908.0), &device);
    let step = || -> Result<(), String> {
        match phase {
            "encode" | "encode_no_clip" => {
                if phase == "encode" {
                    let e = model
                        .image_embedding(clip_in.clone())
                        .map_err(|e| e.to_string())?;
                    let g = model
                        .encode_global(e, 21, Some(&global))
                        .map_err(|e| e.to_string())?;
                    let _ = g.global_ids.into_data();
                }
                let l = model
                    .encode_local(images.clone(), Some(&local))
                    .map_err(|e| e.to_string())?;
                let _ = l.local_ids.into_data();
            }
            "decode" => {
                let x = model
                    .decode_ids(
                        local_ids.clone(),
                        (16, 16),
                        global_ids.clone(),
                        Some(&local),
                    )
                    .map_err(|e| e.to_string())?;
                let _ = x.into_data();
            }
            p => return Err(format!("unknown phase {p}")),
        }
        Ok(())
    };
    step()?; // warm-up
    let t0 = Instant::now();
    for _ in 0..iters {
        step()?;
    }
    let s = t0.elapsed().as_secs_f64() / iters as f64;
    println!(
        "{}",
        serde_json::json!({
            "impl": "v2l-rs",
            "backend": name,
            "phase": phase,
            "batch": batch,
            "images_per_s": batch as f64 / s,
            "seconds_per_iter": s,
            "peak_rss_mib": peak_rss_mib(),
        })
    );
    Ok(())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let backend = args.get(1).map_or("ndarray", String::as_str);
    let phase = args.get(2).map_or("encode_no_clip", String::as_str);
    let batch = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(4);
    let iters = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(5);
    let r = match backend {
        "ndarray" => run::<burn::backend::NdArray>(backend, phase, batch, iters),
        "flex" => run::<burn::backend::Flex>(backend, phase, batch, iters),
        b => Err(format!("unknown backend {b} (ndarray or flex)")),
    };
    if let Err(e) = r {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
