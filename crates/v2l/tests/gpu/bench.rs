//! Benchmarks of the device check (`scripts/device_check.sh` runs them side
//! by side in one run with `--ignored bench_ --test-threads 1`, and PyTorch's
//! `matmul` + `argmin` from `scripts/bench_quant_torch.py` in the same run;
//! the table goes to docs/benchmarks.md). They assert nothing and are
//! ignored by the ordinary run. One JSON line per measurement:
//!
//! - `bench_quant`: the codeword search at V2L's shape (T = 256·B queries,
//!   K = 32,000 and 49,152 rows, d = 768): our CubeCL kernel
//!   (`Strategy::DeviceKernel`), burn's f32 `matmul` + `argmin`
//!   (`Strategy::TensorOps`) and burn's f32 `matmul` alone, as GFLOP/s of the
//!   `2·T·K·d` multiply-adds;
//! - `bench_encode` / `bench_decode`: images/s of the full official
//!   architecture at 128 px (random weights; encode without CLIP);
//! - `bench_llm`: a decoder with SmolLM2-135M's shapes and random weights,
//!   prefill (128 tokens) and greedy decode (64 tokens) tokens/s.
//!
//! `V2L_BENCH_BATCH` (B, default 32), `V2L_BENCH_ITERS` (default 5) and
//! `V2L_BENCH_K` (codebook sizes, default `32000,49152`).
//! Each timing ends with a read-back, so queued device work is included; the
//! first call of each method is a warm-up.

use std::time::Instant;

use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Int, Tensor};
use v2l::llm::{Llama, LlamaConfig};
use v2l::model::{ModelConfig, V2lModel};
use v2l::quant::tensor::{Strategy, TensorCodebook};

use crate::common::{gpu, BACKEND, G};

type Res<T> = Result<T, String>;

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// Seconds per call of `f` (after one warm-up call), averaged over `iters`.
fn time(iters: usize, mut f: impl FnMut() -> Res<()>) -> Res<f64> {
    f()?;
    let t0 = Instant::now();
    for _ in 0..iters {
        f()?;
    }
    Ok(t0.elapsed().as_secs_f64() / iters.max(1) as f64)
}

fn line(backend: &str, fields: &[(&str, String)]) {
    let body: Vec<String> = fields.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
    println!("{{\"backend\":\"{backend}\",{}}}", body.join(","));
}

fn quant<B: Backend>(name: &str, device: &B::Device, batch: usize, iters: usize) -> Res<()> {
    let (t, d) = (256 * batch, 768);
    for k_rows in rows_list() {
        let rows = Tensor::<B, 2>::random([k_rows, d], Distribution::Normal(0.0, 1.0), device);
        let z = Tensor::<B, 2>::random([t, d], Distribution::Normal(0.0, 1.0), device);
        let flop = 2.0 * (t * k_rows * d) as f64;
        let kernel = TensorCodebook::new(rows.clone(), Strategy::DeviceKernel).map_err(err)?;
        let ops = TensorCodebook::new(rows.clone(), Strategy::TensorOps).map_err(err)?;
        let rows_t = rows.clone().transpose();
        let s_kernel = time(iters, || {
            let ids = kernel.nearest(z.clone()).map_err(err)?;
            let _ = ids.into_data();
            Ok(())
        })?;
        let s_ops = time(iters, || {
            let ids = ops.nearest(z.clone()).map_err(err)?;
            let _ = ids.into_data();
            Ok(())
        })?;
        let s_mm = time(iters, || {
            let s = z.clone().matmul(rows_t.clone()).sum();
            let _ = s.into_data();
            Ok(())
        })?;
        for (method, s) in [
            ("v2l_kernel", s_kernel),
            ("burn_matmul_argmin", s_ops),
            ("burn_matmul", s_mm),
        ] {
            line(
                name,
                &[
                    ("phase", "\"quant\"".into()),
                    ("method", format!("\"{method}\"")),
                    ("t", t.to_string()),
                    ("k", k_rows.to_string()),
                    ("d", d.to_string()),
                    ("ms", format!("{:.3}", 1e3 * s)),
                    ("gflops", format!("{:.1}", flop / s / 1e9)),
                ],
            );
        }
    }
    Ok(())
}

fn tokenizer<B: Backend>(
    name: &str,
    phase: &str,
    device: &B::Device,
    batch: usize,
    iters: usize,
) -> Res<()> {
    let mut config = ModelConfig::official();
    config.vl = None;
    let model = V2lModel::<B>::random(&config, 7, device).map_err(err)?;
    let local = model.prepare_local().map_err(err)?;
    let images = Tensor::<B, 4>::random(
        [batch, 3, 128, 128],
        Distribution::Uniform(-1.0, 1.0),
        device,
    );
    let local_ids =
        Tensor::<B, 2, Int>::random([batch, 256], Distribution::Uniform(0.0, 32000.0), device);
    let global_ids =
        Tensor::<B, 2, Int>::random([batch, 21], Distribution::Uniform(0.0, 11908.0), device);
    let s = time(iters, || {
        match phase {
            "encode" => {
                let l = model
                    .encode_local(images.clone(), Some(&local))
                    .map_err(err)?;
                let _ = l.local_ids.into_data();
            }
            _ => {
                let x = model
                    .decode_ids(
                        local_ids.clone(),
                        (16, 16),
                        global_ids.clone(),
                        Some(&local),
                    )
                    .map_err(err)?;
                let _ = x.sum().into_data();
            }
        }
        Ok(())
    })?;
    line(
        name,
        &[
            ("phase", format!("\"{phase}\"")),
            ("batch", batch.to_string()),
            ("images_per_s", format!("{:.2}", batch as f64 / s)),
        ],
    );
    Ok(())
}

/// The greedy next token of the last position.
fn last_argmax<B: Backend>(logits: Tensor<B, 3>) -> Res<u32> {
    let ids = logits
        .argmax(2)
        .into_data()
        .convert::<i64>()
        .to_vec::<i64>()
        .map_err(|e| format!("{e:?}"))?;
    ids.last()
        .map(|&i| i as u32)
        .ok_or_else(|| "no logits".into())
}

fn llm<B: Backend>(name: &str, device: &B::Device, iters: usize) -> Res<()> {
    let config = LlamaConfig {
        vocab_size: 49_152,
        hidden_size: 576,
        intermediate_size: 1536,
        num_layers: 30,
        num_heads: 9,
        num_kv_heads: 3,
        head_dim: 64,
        rms_norm_eps: 1e-5,
        rope_theta: 100_000.0,
        max_position_embeddings: 8192,
        tie_word_embeddings: true,
    };
    let model = Llama::<B>::random(config, 3, device).map_err(err)?;
    let prompt: Vec<u32> = (0..128u32).map(|i| (i * 7919) % 49_152).collect();
    let s_prefill = time(iters, || {
        let out = model
            .forward(std::slice::from_ref(&prompt), &mut model.new_cache())
            .map_err(err)?;
        let _ = out.logits.sum().into_data();
        Ok(())
    })?;
    let s_decode = time(iters, || {
        let mut cache = model.new_cache();
        let out = model
            .forward(std::slice::from_ref(&prompt), &mut cache)
            .map_err(err)?;
        let mut next = last_argmax(out.logits)?;
        for _ in 0..64 {
            let out = model.forward(&[vec![next]], &mut cache).map_err(err)?;
            next = last_argmax(out.logits)?;
        }
        Ok(())
    })?;
    line(
        name,
        &[
            ("phase", "\"llm\"".into()),
            ("shape", "\"smollm2-135m\"".into()),
            ("prefill_tok_per_s", format!("{:.1}", 128.0 / s_prefill)),
            (
                "decode_tok_per_s",
                format!("{:.2}", 64.0 / (s_decode - s_prefill).max(1e-9)),
            ),
        ],
    );
    Ok(())
}

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `V2L_BENCH_K`: codebook sizes, comma-separated (default 32000,49152).
fn rows_list() -> Vec<usize> {
    std::env::var("V2L_BENCH_K")
        .ok()
        .map(|v| v.split(',').filter_map(|k| k.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![32_000, 49_152])
}

fn batch() -> usize {
    setting("V2L_BENCH_BATCH", 32)
}

fn iters() -> usize {
    setting("V2L_BENCH_ITERS", 5)
}

#[test]
#[ignore = "benchmark of the device check"]
fn bench_quant() {
    let Some(device) = gpu() else { return };
    quant::<G>(BACKEND, &device, batch(), iters()).unwrap();
}

#[test]
#[ignore = "benchmark of the device check"]
fn bench_encode() {
    let Some(device) = gpu() else { return };
    tokenizer::<G>(BACKEND, "encode", &device, batch(), iters()).unwrap();
}

#[test]
#[ignore = "benchmark of the device check"]
fn bench_decode() {
    let Some(device) = gpu() else { return };
    tokenizer::<G>(BACKEND, "decode", &device, batch(), iters()).unwrap();
}

#[test]
#[ignore = "benchmark of the device check"]
fn bench_llm() {
    let Some(device) = gpu() else { return };
    llm::<G>(BACKEND, &device, iters()).unwrap();
}
