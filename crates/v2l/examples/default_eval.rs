//! The default model on the first N Fashion-MNIST test images (grey levels
//! presented as in its training data), as
//! docs/default.md reports it: reconstruction PSNR-Y / SSIM / LPIPS-Alex
//! (against the tokenizer's 32-px input), and the share of images whose
//! top-T global words name their class or a listed synonym
//! (`v2l::default_model::FASHION_MNIST_SYNONYMS`), per class and overall.
//! Needs the default model's assets cached.
//!
//! ```text
//! cargo run --profile fast -p v2l --example default_eval -- [N (default 1000)] [T (default 5)]
//! ```

use std::process::ExitCode;

use v2l::assets::datasets::{DatasetSpec, Split, FASHION_MNIST_CLASSES};
use v2l::burn::backend::Flex;
use v2l::default_model::{self, names_any, FASHION_MNIST_SYNONYMS};
use v2l::metrics::lpips::{Lpips, LpipsNet, ASSET};
use v2l::model::image::{DynamicImage, GrayImage};
use v2l::model::preprocess::TokenizerPreprocess;
use v2l::model::tokenizer::OpenOptions;
use v2l::model::V2lTokenizer;
use v2l::prompt::eval::psnr_ssim;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(1000);
    let top: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(5);
    let device = Default::default();
    let dir = default_model::bundle::<Flex>(&device, &mut |_| {})?;
    let tok = V2lTokenizer::<Flex>::open(&dir, &OpenOptions::default(), &device)?;
    let lpips = Lpips::<Flex>::load(
        LpipsNet::Alex,
        v2l::assets::fetch::cached_file(ASSET, Some(LpipsNet::Alex.asset_file()))?,
        &device,
    )?;
    let prep = TokenizerPreprocess::new(tok.image_size()? as u32);
    let (mut psnr, mut ssim, mut lp) = (Vec::new(), Vec::new(), Vec::new());
    // Presented as the model was trained (`fashion-mnist:inverted`: grey
    // levels inverted).
    let set = DatasetSpec::parse(&default_model::training_data())?.open(Split::Test)?;
    let n = n.min(set.len());
    let (mut hits, mut seen) = ([0usize; 10], [0usize; 10]);
    for start in (0..n).step_by(32) {
        let end = (start + 32).min(n);
        let images: Vec<DynamicImage> = (start..end)
            .map(|i| {
                let px = set.image(i).unwrap_or_default().to_vec();
                GrayImage::from_raw(set.width as u32, set.height as u32, px)
                    .map(DynamicImage::ImageLuma8)
                    .ok_or("short data set")
            })
            .collect::<Result<_, _>>()?;
        let tokens = tok.encode_images(&images)?;
        let recs = tok.decode_to_images(&tokens)?;
        let clean = images
            .iter()
            .map(|im| prep.resize_crop(&im.to_rgb8()))
            .collect::<Result<Vec<_>, _>>()?;
        for (c, r) in clean.iter().zip(&recs) {
            let (p, s) = psnr_ssim(c, r)?;
            psnr.push(p);
            ssim.push(s);
        }
        lp.extend(
            lpips
                .distance_images(&clean, &recs)?
                .into_iter()
                .map(f64::from),
        );
        let words = tokens
            .global_words
            .ok_or("the default model has no global words")?;
        for (j, w) in words.iter().enumerate() {
            let c = set.labels[start + j] as usize;
            seen[c] += 1;
            if names_any(&w[..top.min(w.len())], FASHION_MNIST_SYNONYMS[c]) {
                hits[c] += 1;
            }
        }
        eprint!("\r{end}/{n}");
    }
    eprintln!();
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    println!("reconstruction of {n} Fashion-MNIST test images (32 px): PSNR-Y {:.2} dB, SSIM {:.4}, LPIPS-Alex {:.4}\n",
        mean(&psnr), mean(&ssim), mean(&lp));
    println!("| class | images | top-{top} words name it |");
    println!("|---|---|---|");
    for c in 0..10 {
        let share = hits[c] as f64 / seen[c].max(1) as f64;
        println!(
            "| {} | {} | {} ({:.1} %) |",
            FASHION_MNIST_CLASSES[c],
            seen[c],
            hits[c],
            100.0 * share
        );
    }
    let (h, s): (usize, usize) = (hits.iter().sum(), seen.iter().sum());
    println!(
        "| all | {s} | {h} ({:.1} %) |",
        100.0 * h as f64 / s.max(1) as f64
    );
    Ok(())
}
