//! Times the Rust side of the quantizer comparison (`benches/compare/`):
//! the fused kernel on every search path this CPU runs (portable tiles,
//! AVX2, AVX-512, the AVX-512 BF16 screened search), plain SGEMM split like
//! the portable kernel (the ceiling), and burn's
//! tensor ops (`matmul` + `argmin`) on the NdArray and Flex CPU backends.
//!
//! ```text
//! quant_compare --queries q.f32 --codebook c.f32 --t 4096 --k 32000 --d 768 \
//!               --repeats 5 --out-dir bench-out
//! ```
//! Inputs are raw little-endian f32, row-major. Prints one JSON line per
//! implementation and writes each one's argmin indices as raw i64 to
//! `<out-dir>/<slug>.i64`.

use std::time::Instant;

use burn::backend::{Flex, NdArray};
use burn::tensor::{backend::Backend, Tensor, TensorData};
use v2l_quant::tensor::{Strategy, TensorCodebook};
use v2l_quant::{fused, Codebook, Metric, PreparedCodebook, SearchPath};

struct Args {
    queries: String,
    codebook: String,
    t: usize,
    k: usize,
    d: usize,
    repeats: usize,
    out_dir: String,
    skip_burn: bool,
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        queries: String::new(),
        codebook: String::new(),
        t: 4096,
        k: 32_000,
        d: 768,
        repeats: 5,
        out_dir: "bench-out".into(),
        skip_burn: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--skip-burn" {
            a.skip_burn = true;
            continue;
        }
        let v = it.next().ok_or(format!("{flag} needs a value"))?;
        let num = || v.parse::<usize>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--queries" => a.queries = v.clone(),
            "--codebook" => a.codebook = v.clone(),
            "--t" => a.t = num()?,
            "--k" => a.k = num()?,
            "--d" => a.d = num()?,
            "--repeats" => a.repeats = num()?.max(1),
            "--out-dir" => a.out_dir = v.clone(),
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    if a.queries.is_empty() || a.codebook.is_empty() {
        return Err("--queries and --codebook are required".into());
    }
    Ok(a)
}

fn read_f32(path: &str, n: usize) -> Result<Vec<f32>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{path}: {e}"))?;
    if bytes.len() != n * 4 {
        return Err(format!("{path}: {} bytes, expected {}", bytes.len(), n * 4));
    }
    Ok(bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect())
}

fn write_i64(path: &str, ids: &[i64]) -> Result<(), String> {
    let bytes: Vec<u8> = ids.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(path, bytes).map_err(|e| format!("{path}: {e}"))
}

/// Median, min and max seconds of the timed runs.
type Timing = (f64, f64, f64);

/// Runs `f` once untimed, then `repeats` timed; returns (median, min, max) and the last output.
fn time<R>(repeats: usize, mut f: impl FnMut() -> R) -> (Timing, R) {
    let mut out = f();
    let mut times = Vec::with_capacity(repeats);
    for _ in 0..repeats {
        let s = Instant::now();
        out = f();
        times.push(s.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    (
        (times[times.len() / 2], times[0], times[times.len() - 1]),
        out,
    )
}

/// A `kB` field of `/proc/self/status` (Linux; `None` elsewhere).
fn rss_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The growth of the peak resident set since `before` (KiB), in units of
/// `bytes`, formatted; "unknown" off Linux.
fn peak_ratio(before: Option<u64>, bytes: f64) -> String {
    match (before, rss_kib("VmHWM")) {
        (Some(b), Some(p)) => format!("{:.2}", p.saturating_sub(b) as f64 * 1024.0 / bytes),
        _ => "unknown".into(),
    }
}

/// Resets the peak resident set size (`VmHWM`) to the current one (Linux).
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn report(a: &Args, name: &str, slug: &str, t: Timing, ids: &[i64]) -> Result<(), String> {
    let path = format!("{}/{slug}.i64", a.out_dir);
    write_i64(&path, ids)?;
    let gflops = 2.0 * (a.t * a.k * a.d) as f64 / t.0 / 1e9;
    println!(
        "{{\"impl\":\"{name}\",\"median_s\":{:.6},\"min_s\":{:.6},\"max_s\":{:.6},\"gflops\":{gflops:.2},\"threads\":{},\"indices\":\"{path}\"}}",
        t.0,
        t.1,
        t.2,
        rayon::current_num_threads()
    );
    Ok(())
}

fn burn_tensor_ops<B: Backend>(
    a: &Args,
    q: &[f32],
    c: &[f32],
) -> Result<(Timing, Vec<i64>), String> {
    let dev = B::Device::default();
    let rows = Tensor::<B, 2>::from_data(TensorData::new(c.to_vec(), [a.k, a.d]), &dev);
    let cb = TensorCodebook::new(rows, Strategy::TensorOps).map_err(|e| e.to_string())?;
    let z = Tensor::<B, 2>::from_data(TensorData::new(q.to_vec(), [a.t, a.d]), &dev);
    let (t, ids) = time(a.repeats, || cb.nearest(z.clone()));
    let ids = ids
        .map_err(|e| e.to_string())?
        .into_data()
        .convert::<i64>()
        .into_vec::<i64>()
        .map_err(|e| format!("{e:?}"))?;
    Ok((t, ids))
}

fn main() -> Result<(), String> {
    let a = parse()?;
    std::fs::create_dir_all(&a.out_dir).map_err(|e| e.to_string())?;
    let q = read_f32(&a.queries, a.t * a.d)?;
    let c = read_f32(&a.codebook, a.k * a.d)?;

    eprintln!("CPU flags: {}", v2l_quant::cpu_features());
    // Every search path this CPU runs, the default (fastest) first.
    let mut paths = SearchPath::available();
    paths.reverse();
    let mut default_cb = None;
    for path in paths {
        // Peak memory of preparing: the rows are moved in and laid out in
        // place, so the peak above the rows themselves is one panel of
        // scratch (Linux: VmHWM, reset through /proc/self/clear_refs).
        // Calibration: the same measure around copying the rows reads ≈ 1.
        let before = rss_kib("VmRSS");
        reset_peak();
        let rows = c.clone();
        let copy_peak = peak_ratio(before, (a.k * a.d * 4) as f64);
        let before = rss_kib("VmRSS");
        reset_peak();
        let prep = Instant::now();
        let cb = PreparedCodebook::with_path(
            Codebook::from_f32(rows, a.d).map_err(|e| e.to_string())?,
            path,
        )
        .map_err(|e| e.to_string())?;
        let prep_s = prep.elapsed().as_secs_f64();
        let peak = peak_ratio(before, (a.k * a.d * 4) as f64);
        eprintln!(
            "prepared {path} codebook in {prep_s:.3} s; memory peak while preparing: +{peak} x the f32 rows moved in (copying them: +{copy_peak} x)"
        );
        let (t, hits) = time(a.repeats, || {
            v2l_quant::nearest(&cb, &q, a.d, Metric::SquaredL2)
        });
        let hits = hits.map_err(|e| e.to_string())?;
        let ids: Vec<i64> = hits.indices.iter().map(|&i| i64::from(i)).collect();
        let name = match path {
            SearchPath::Portable => "v2l fused [portable: matrixmultiply tiles]".to_string(),
            SearchPath::Avx2 => "v2l fused [avx2: 6x16 FMA microkernel]".to_string(),
            SearchPath::Avx512 => "v2l fused [avx512: 12x32 microkernel]".to_string(),
            SearchPath::Avx512Bf16 => {
                "v2l fused [avx512-bf16: bf16 screen + exact f32 rescoring]".to_string()
            }
        };
        report(
            &a,
            &name,
            &format!("v2l_{}", path.name().replace('-', "_")),
            t,
            &ids,
        )?;
        if default_cb.is_none() {
            default_cb = Some(cb);
        }
    }
    let cb = default_cb.ok_or("no search path available")?;

    let mut out = vec![0.0f32; a.t * a.k];
    let (t, r) = time(a.repeats, || fused::sgemm_ceiling(&c, a.d, &q, &mut out));
    r.map_err(|e| e.to_string())?;
    // Indices from the product (untimed): argmax of z·c − ‖c‖²/2.
    let norms = cb.sq_norms();
    let ids: Vec<i64> = out
        .chunks_exact(a.k)
        .map(|row| {
            let mut best = (f32::NEG_INFINITY, 0usize);
            for (j, (&p, &n)) in row.iter().zip(norms).enumerate() {
                let s = p - 0.5 * n;
                if s > best.0 {
                    best = (s, j);
                }
            }
            best.1 as i64
        })
        .collect();
    drop(out);
    report(
        &a,
        "sgemm (matrixmultiply, ceiling)",
        "sgemm_ceiling",
        t,
        &ids,
    )?;

    if !a.skip_burn {
        let (t, ids) = burn_tensor_ops::<NdArray>(&a, &q, &c)?;
        report(&a, "burn tensor ops (ndarray)", "burn_ndarray", t, &ids)?;
        let (t, ids) = burn_tensor_ops::<Flex>(&a, &q, &c)?;
        report(&a, "burn tensor ops (flex)", "burn_flex", t, &ids)?;
    }
    Ok(())
}
