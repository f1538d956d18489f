//! Criterion sweep of the fused kernel at V2L shapes.
//!
//! `cargo bench -p v2l-quant --bench nearest` runs the whole sweep
//! (T ∈ {256, 4096} × K ∈ {1k, 32k, 49,152, 100k} × d ∈ {256, 768}, nearest
//! codeword; plus global top-21 for one query) with the default (fastest)
//! search path, then every path side by side at V2L's shapes (`paths/`).
//! Throughput is reported in
//! elements = floating-point operations (2·T·K·d), so "Gelem/s" reads as
//! GFLOP/s. Filter with criterion's usual argument, e.g.
//! `cargo bench -p v2l-quant --bench nearest -- 'nearest/T4096/K32000/d768'`.

// criterion_group! defines an undocumented public function.
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rand::{rngs::StdRng, Rng, SeedableRng};
use std::hint::black_box;
use std::time::Duration;
use v2l_quant::{nearest, top_k, Codebook, Metric, PreparedCodebook, SearchPath};

fn data(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n).map(|_| rng.random::<f32>() - 0.5).collect()
}

fn sweep(c: &mut Criterion) {
    let mut g = c.benchmark_group("nearest");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    for &d in &[256usize, 768] {
        for &k in &[1_000usize, 32_000, 49_152, 100_000] {
            let cb =
                PreparedCodebook::from_f32(data(k * d, 1), d).unwrap_or_else(|e| panic!("{e}"));
            for &t in &[256usize, 4096] {
                let q = data(t * d, 2);
                g.throughput(Throughput::Elements((2 * t * k * d) as u64));
                g.bench_with_input(
                    BenchmarkId::from_parameter(format!("T{t}/K{k}/d{d}")),
                    &q,
                    |b, q| b.iter(|| black_box(nearest(&cb, q, d, Metric::SquaredL2))),
                );
            }
        }
    }
    g.finish();

    let mut g = c.benchmark_group("global_top21");
    g.sample_size(20);
    for &k in &[11_908usize, 32_000, 100_000] {
        let d = 768;
        let cb = PreparedCodebook::from_f32(data(k * d, 3), d).unwrap_or_else(|e| panic!("{e}"));
        let q = data(d, 4);
        g.throughput(Throughput::Elements((2 * k * d) as u64));
        g.bench_with_input(
            BenchmarkId::from_parameter(format!("T1/K{k}/d{d}")),
            &q,
            |b, q| b.iter(|| black_box(top_k(&cb, q, d, 21, Metric::SquaredL2))),
        );
    }
    g.finish();
}

/// Every search path this CPU runs, side by side at V2L's shapes: the
/// local quantiser (one image, T = 256, and a batch of 16, T = 4096) against
/// LLaMA-2's K = 32,000 and SmolLM2's K = 49,152, and the global branch
/// (one query, top-21). Filter with e.g. `-- paths/`.
fn paths(c: &mut Criterion) {
    eprintln!("CPU flags: {}", v2l_quant::cpu_features());
    let d = 768;
    let mut g = c.benchmark_group("paths");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    for &k in &[32_000usize, 49_152] {
        let values = data(k * d, 1);
        let q = data(4096 * d, 2);
        let g1 = data(d, 4);
        for path in SearchPath::available() {
            let cb = PreparedCodebook::with_path(
                Codebook::from_f32(values.clone(), d).unwrap_or_else(|e| panic!("{e}")),
                path,
            )
            .unwrap_or_else(|e| panic!("{e}"));
            for &t in &[256usize, 4096] {
                let q = &q[..t * d];
                g.throughput(Throughput::Elements((2 * t * k * d) as u64));
                g.bench_function(format!("{path}/nearest/T{t}/K{k}/d{d}"), |b| {
                    b.iter(|| black_box(nearest(&cb, q, d, Metric::SquaredL2)))
                });
            }
            g.throughput(Throughput::Elements((2 * k * d) as u64));
            g.bench_function(format!("{path}/top21/T1/K{k}/d{d}"), |b| {
                b.iter(|| black_box(top_k(&cb, &g1, d, 21, Metric::SquaredL2)))
            });
        }
    }
    g.finish();
}

criterion_group!(benches, sweep, paths);
criterion_main!(benches);
