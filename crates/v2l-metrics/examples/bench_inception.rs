//! CPU throughput of the FID Inception network (`v2l_metrics::inception`)
//! with the real weights (cached asset `fid-inception`, `default_1.pt`):
//! pool3 features of a batch of preprocessed images `[8, 3, 299, 299]`
//! (uniform in [-1, 1]), 1 warm-up run then `iters` timed runs; the same
//! methodology as `scripts/bench_inception_torch.py`.
//!
//! ```text
//! cargo run --release -p v2l-metrics --example bench_inception -- <ndarray|flex> [batch] [iters]
//! ```
//!
//! Prints one JSON line: `{"impl", "backend", "batch", "iters",
//! "images_per_s_median", "images_per_s_best", "load_s"}`.

use std::time::Instant;

use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Tensor};
use v2l_metrics::inception::FidInception;

fn run<B: Backend>(backend: &str, batch: usize, iters: usize) -> Result<(), String> {
    let path = v2l_assets::fetch::test_asset("fid-inception", "default_1.pt")
        .map_err(|e| e.to_string())?
        .ok_or("the fid-inception asset is not cached: run `v2l assets fetch fid-inception`")?;
    let device = B::Device::default();
    let t = Instant::now();
    let model = FidInception::<B>::load_file(&path, &device).map_err(|e| e.to_string())?;
    let load_s = t.elapsed().as_secs_f64();
    let x = Tensor::<B, 4>::random(
        [batch, 3, 299, 299],
        Distribution::Uniform(-1.0, 1.0),
        &device,
    );
    let step = || -> Result<(), String> {
        let f = model.forward(x.clone()).map_err(|e| e.to_string())?;
        // Read the result back so lazy backends finish the work.
        let v = f
            .into_data()
            .to_vec::<f32>()
            .map_err(|e| format!("{e:?}"))?;
        if v.len() != batch * 2048 {
            return Err(format!("got {} values", v.len()));
        }
        Ok(())
    };
    step()?; // warm-up
    let mut times = Vec::with_capacity(iters);
    for _ in 0..iters {
        let t = Instant::now();
        step()?;
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let best = times[0];
    println!(
        "{{\"impl\":\"v2l-rs\",\"backend\":\"{backend}\",\"batch\":{batch},\"iters\":{iters},\
         \"images_per_s_median\":{:.3},\"images_per_s_best\":{:.3},\"load_s\":{load_s:.3}}}",
        batch as f64 / median,
        batch as f64 / best
    );
    Ok(())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let backend = args.get(1).map_or("flex", String::as_str);
    let batch = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(8);
    let iters: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(5).max(1);
    let result = match backend {
        "ndarray" => run::<burn::backend::NdArray>(backend, batch, iters),
        "flex" => run::<burn::backend::Flex>(backend, batch, iters),
        b => Err(format!("unknown backend {b} (ndarray or flex)")),
    };
    if let Err(e) = result {
        eprintln!("bench_inception: {e}");
        std::process::exit(1);
    }
}
