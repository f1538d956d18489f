//! Choose ConSE's `T` (classes combined) and `τ` (softmax temperature) on
//! Fashion-MNIST *training* images: for each setting, the share of images
//! whose ConSE embedding is nearest (cosine) to the MiniLM embedding of
//! their own class name among the ten class names. The classifier runs
//! once; the grid reuses its logits. Never touches the test split.
//!
//! `cargo run --profile fast -p v2l-vl --example conse_select -- [IMAGES] [DATASET]`
//! (default 1000: the first 100 training images of each class; DATASET
//! `fashion-mnist` or `fashion-mnist:inverted`, always its training split).

use burn::backend::Flex;
use burn::tensor::{Tensor, TensorData};
use v2l_assets::datasets::{DatasetSpec, Split, FASHION_MNIST_CLASSES};
use v2l_vl::conse::{conse_weights, embed_with_templates, ConseConfig};
use v2l_vl::efficientnet::NUM_CLASSES;
use v2l_vl::{conse_paths_from_cache, Conse, VisionLanguage};

type B = Flex;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = std::env::args().nth(1).map_or(Ok(1000), |s| s.parse())?;
    let device = Default::default();
    let base = ConseConfig::default();
    let model = Conse::<B>::load(&conse_paths_from_cache(&base)?, base.clone(), &device)?;
    let spec = DatasetSpec::parse(&std::env::args().nth(2).unwrap_or("fashion-mnist".into()))?;
    if !spec.fashion || spec.split.is_some() {
        return Err("DATASET: fashion-mnist or fashion-mnist:inverted (training split)".into());
    }
    let data = spec.open(Split::Train)?;
    let per = n.div_ceil(10);
    let mut picked = Vec::new();
    let mut count = [0usize; 10];
    for i in 0..data.len() {
        let c = data.labels[i] as usize;
        if count[c] < per {
            count[c] += 1;
            picked.push(i);
        }
        if picked.len() == per * 10 {
            break;
        }
    }
    let labels: Vec<usize> = picked.iter().map(|&i| data.labels[i] as usize).collect();
    let pre = model.preprocess()?;
    let mut logits = Vec::new();
    for chunk in picked.chunks(32) {
        let imgs: Vec<image::DynamicImage> = chunk
            .iter()
            .map(|&i| {
                let px = data.image(i).unwrap_or_default().to_vec();
                image::GrayImage::from_raw(28, 28, px)
                    .map(image::DynamicImage::ImageLuma8)
                    .ok_or("short image")
            })
            .collect::<Result<_, _>>()?;
        let x = pre.apply_batch(&imgs)?;
        let x = Tensor::<B, 4>::from_data(TensorData::new(x, [chunk.len(), 3, 224, 224]), &device);
        logits.extend(
            model
                .image
                .net
                .forward(x)
                .into_data()
                .to_vec::<f32>()
                .map_err(|e| format!("{e:?}"))?,
        );
        eprint!("\r{} / {} images", logits.len() / NUM_CLASSES, picked.len());
    }
    eprintln!();
    let classes = model.image.classes.val();
    let names: Vec<String> = FASHION_MNIST_CLASSES
        .iter()
        .map(|s| s.to_string())
        .collect();
    let targets = embed_with_templates(&model.text, &names, &base.templates, true)?;
    println!("| T \\ τ | 0.5 | 1 | 2 | 4 |");
    println!("|---|---|---|---|---|");
    let mut best = (0.0, 0, 0.0);
    for top in [1usize, 3, 5, 10, 20, 50] {
        let mut row = format!("| {top} |");
        for tau in [0.5f64, 1.0, 2.0, 4.0] {
            let w = conse_weights(&logits, picked.len(), top, tau)?;
            let w =
                Tensor::<B, 2>::from_data(TensorData::new(w, [picked.len(), NUM_CLASSES]), &device);
            let e = v2l_vl::bert::normalize_rows(w.matmul(classes.clone()));
            let sim = e
                .matmul(targets.clone().transpose())
                .into_data()
                .to_vec::<f32>()
                .map_err(|e| format!("{e:?}"))?;
            let correct = sim
                .chunks(10)
                .zip(&labels)
                .filter(|(s, &l)| (0..10).max_by(|&a, &b| s[a].total_cmp(&s[b])) == Some(l))
                .count();
            let acc = correct as f64 / picked.len() as f64;
            if acc > best.0 {
                best = (acc, top, tau);
            }
            row.push_str(&format!(" {:.1} % |", 100.0 * acc));
        }
        println!("{row}");
    }
    println!(
        "best on {} training images: T = {}, τ = {} ({:.1} % nearest-class-name accuracy)",
        picked.len(),
        best.1,
        best.2,
        100.0 * best.0
    );
    Ok(())
}
