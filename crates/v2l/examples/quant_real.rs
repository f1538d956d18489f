//! The quantiser's search paths on real data: the default model's local
//! codebook (SmolLM2's 49,152 tokens through MiniLM and the trained
//! projector, 384-d) against the normalised features of Fashion-MNIST test
//! images (64 positions per image), the search the tokenizer runs. Prints
//! one JSON line per path (median seconds of the repeats, GFLOP/s of the
//! f32 search it stands for), how many of its ids differ from the first
//! (fastest) path's, and the largest relative gap between the exact (f64)
//! distances of two differing picks.
//! Needs the default model's assets cached.
//!
//! ```text
//! cargo run --release -p v2l --example quant_real -- [IMAGES (default 256)] [REPEATS (default 5)]
//! ```

use std::process::ExitCode;
use std::time::Instant;

use v2l::assets::datasets::{DatasetSpec, Split};
use v2l::burn::backend::Flex;
use v2l::burn::tensor::Tensor;
use v2l::default_model;
use v2l::model::image::{DynamicImage, GrayImage};
use v2l::model::tokenizer::OpenOptions;
use v2l::model::V2lTokenizer;
use v2l::quant::{Codebook, Metric, PreparedCodebook, SearchPath};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn host(t: Tensor<Flex, 2>) -> Result<Vec<f32>, Box<dyn std::error::Error>> {
    t.into_data()
        .convert::<f32>()
        .into_vec::<f32>()
        .map_err(|e| format!("{e:?}").into())
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(256);
    let repeats: usize = args
        .next()
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(5)
        .max(1);
    let device = Default::default();
    let dir = default_model::bundle::<Flex>(&device, &mut |_| {})?;
    let tok = V2lTokenizer::<Flex>::open(&dir, &OpenOptions::default(), &device)?;
    let model = tok.model();
    let set = DatasetSpec::parse(&default_model::training_data())?.open(Split::Test)?;
    let images: Vec<DynamicImage> = (0..n.min(set.len()))
        .map(|i| {
            let px = set.image(i).unwrap_or_default().to_vec();
            GrayImage::from_raw(set.width as u32, set.height as u32, px)
                .map(DynamicImage::ImageLuma8)
                .ok_or("short data set")
        })
        .collect::<Result<_, _>>()?;
    // The features the local quantiser searches with: quant_conv's output,
    // L2-normalised per position, as rows [B·h·w, D].
    let x = tok.preprocess_local(&images)?;
    let enc = model.encode_local(x, None)?;
    let [b, d, h, w] = enc.quant_conv_out.dims();
    let z = enc
        .quant_conv_out
        .permute([0, 2, 3, 1])
        .reshape([b * h * w, d]);
    let norm = z
        .clone()
        .powf_scalar(2.0)
        .sum_dim(1)
        .sqrt()
        .clamp_min(1e-12);
    let queries = host(z / norm)?;
    let rows = host(model.projected_codebook())?;
    let (t, k) = (b * h * w, rows.len() / d);
    eprintln!(
        "{b} images, T = {t} queries, K = {k} codewords, d = {d}; RAYON_NUM_THREADS={}; CPU flags: {}",
        std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "(unset: all cores)".into()),
        v2l::quant::cpu_features()
    );
    let mut first: Option<(SearchPath, Vec<u32>)> = None;
    let mut paths = SearchPath::available();
    paths.reverse();
    for path in paths {
        let cb = PreparedCodebook::with_path(Codebook::from_f32(rows.clone(), d)?, path)?;
        let mut times = Vec::with_capacity(repeats);
        let mut ids = v2l::quant::nearest(&cb, &queries, d, Metric::SquaredL2)?.indices;
        for _ in 0..repeats {
            let start = Instant::now();
            ids = v2l::quant::nearest(&cb, &queries, d, Metric::SquaredL2)?.indices;
            times.push(start.elapsed().as_secs_f64());
        }
        times.sort_by(f64::total_cmp);
        let median = times[times.len() / 2];
        // Differing picks, and the largest gap between the two picks' exact
        // (f64) distances relative to the distance: a tie at f32 precision
        // when tiny.
        let (same, gap) = match &first {
            Some((_, want)) => {
                let mut n = 0usize;
                let mut gap = 0.0f64;
                for (i, (a, b)) in ids.iter().zip(want).enumerate() {
                    if a != b {
                        n += 1;
                        let z = &queries[i * d..(i + 1) * d];
                        let dist = |j: u32| -> f64 {
                            let row = &rows[j as usize * d..(j as usize + 1) * d];
                            z.iter()
                                .zip(row)
                                .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
                                .sum()
                        };
                        let (da, db) = (dist(*a), dist(*b));
                        gap = gap.max((da - db).abs() / da.max(db).max(1e-30));
                    }
                }
                (n.to_string(), format!("{gap:.2e}"))
            }
            None => ("reference".to_string(), "-".to_string()),
        };
        println!(
            "{{\"path\":\"{path}\",\"median_s\":{median:.6},\"gflops\":{:.1},\"ids_differing_from_first\":\"{same}\",\"max_exact_distance_gap\":\"{gap}\"}}",
            2.0 * (t * k * d) as f64 / median / 1e9,
        );
        if first.is_none() {
            first = Some((path, ids));
        }
    }
    Ok(())
}
