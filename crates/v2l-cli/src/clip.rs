//! `v2l clip`: vision-language embeddings (CLIP or ConSE) of images and
//! texts, and their cosine similarities (zero-shot ranking of texts per
//! image).

use crate::args::ClipArgs;
use crate::error::{err, CliError};
use std::path::PathBuf;

use serde_json::json;
use v2l::burn::tensor::backend::Backend;
use v2l::clip::{Clip, ClipTokenizer, LoadOptions, Truncation};

/// Run `v2l clip`.
pub fn run(args: ClipArgs) -> Result<(), CliError> {
    let (device, precision) = (args.device.device, args.precision.into());
    crate::device::dispatch(device, crate::device::CpuBackend::NdArray, precision, args)
}

impl crate::device::OnDevice for ClipArgs {
    fn run<B: Backend>(self, device: B::Device) -> Result<(), CliError> {
        run_on::<B>(&self, device)
    }
}

fn host_rows<B: Backend>(t: v2l::burn::tensor::Tensor<B, 2>) -> Result<Vec<Vec<f32>>, CliError> {
    let [_, d] = t.dims();
    let data = t
        .into_data()
        .to_vec::<f32>()
        .map_err(|e| CliError::from(format!("reading embeddings: {e:?}")))?;
    Ok(data.chunks(d.max(1)).map(<[f32]>::to_vec).collect())
}

fn run_on<B: Backend>(args: &ClipArgs, device: B::Device) -> Result<(), CliError> {
    if args.images.is_empty() && args.texts.is_empty() {
        return Err(CliError::usage(
            "nothing to embed: give at least one --image or --text",
        ));
    }
    if crate::codebook::is_conse(&args.vl) {
        return run_conse::<B>(args, device);
    }
    let clip_path = PathBuf::from(&args.vl);
    let options = LoadOptions {
        vision_heads: args.vision_heads,
        text_heads: args.text_heads,
        skip_text: args.texts.is_empty(),
        skip_vision: args.images.is_empty(),
        precision: args.precision.into(),
        ..Default::default()
    };
    let clip = Clip::<B>::load_with(&clip_path, &options, &device).map_err(err)?;

    let mut image_rows = Vec::new();
    if !args.images.is_empty() {
        let bar = crate::progress::bar(args.images.len() as u64, "images");
        let mut parts = Vec::new();
        for chunk in args.images.chunks(args.batch_size.max(1)) {
            let emb = clip
                .encode_image_files(chunk, args.batch_size.max(1))
                .map_err(err)?;
            parts.push(emb);
            bar.inc(chunk.len() as u64);
        }
        bar.finish_and_clear();
        image_rows = host_rows(v2l::burn::tensor::Tensor::cat(parts, 0))?;
    }
    let mut text_rows = Vec::new();
    if !args.texts.is_empty() {
        let bpe = match &args.bpe {
            Some(p) => p.clone(),
            None => {
                let asset = v2l::assets::fetch::lookup("clip-bpe").map_err(err)?;
                let file = asset
                    .files
                    .first()
                    .ok_or(CliError::missing("the clip-bpe asset lists no file"))?;
                let path = v2l::assets::fetch::file_path(asset, file).map_err(err)?;
                if !path.is_file() {
                    return Err(CliError::missing(format!(
                        "CLIP BPE vocabulary not cached at {}: run `v2l assets fetch clip-bpe` or pass --bpe",
                        path.display()
                    )));
                }
                path
            }
        };
        let tok = ClipTokenizer::from_bpe_file(&bpe).map_err(err)?;
        let truncation = if args.truncate {
            Truncation::Truncate
        } else {
            Truncation::Error
        };
        let emb = clip
            .encode_texts(&tok, &args.texts, truncation, args.batch_size.max(1))
            .map_err(err)?;
        text_rows = host_rows(emb)?;
    }
    let config = json!(clip.config());
    report(args, &image_rows, &text_rows, config)
}

/// `v2l clip --vl conse`: unit ConSE embeddings.
fn run_conse<B: Backend>(args: &ClipArgs, device: B::Device) -> Result<(), CliError> {
    use v2l::vl::VisionLanguage;
    let vl = match v2l::vl::Vl::<B>::load(&args.vl, &device).map_err(err)? {
        // --precision applies to the image classifier (the text side is f32).
        v2l::vl::Vl::Conse(mut c) => {
            c.image = c.image.into_precision(args.precision.into());
            v2l::vl::Vl::Conse(c)
        }
        other => other,
    };
    let mut image_rows = Vec::new();
    if !args.images.is_empty() {
        let bar = crate::progress::bar(args.images.len() as u64, "images");
        for chunk in args.images.chunks(args.batch_size.max(1)) {
            let decoded = chunk
                .iter()
                .map(|p| v2l::model::tokenizer::open_image(p).map_err(err))
                .collect::<Result<Vec<_>, CliError>>()?;
            let emb = vl
                .embed_decoded(&decoded, args.batch_size.max(1))
                .map_err(err)?;
            image_rows.extend(host_rows(emb)?);
            bar.inc(chunk.len() as u64);
        }
        bar.finish_and_clear();
    }
    let mut text_rows = Vec::new();
    for chunk in args.texts.chunks(args.batch_size.max(1)) {
        text_rows.extend(host_rows(vl.embed_texts(chunk).map_err(err)?)?);
    }
    report(args, &image_rows, &text_rows, json!(vl.vl_config()))
}

fn report(
    args: &ClipArgs,
    image_rows: &[Vec<f32>],
    text_rows: &[Vec<f32>],
    config: serde_json::Value,
) -> Result<(), CliError> {
    let unit = |v: &[f32]| -> Vec<f32> {
        let n = v
            .iter()
            .map(|x| x * x)
            .sum::<f32>()
            .sqrt()
            .max(f32::MIN_POSITIVE);
        v.iter().map(|x| x / n).collect()
    };
    let sims: Vec<Vec<f32>> = image_rows
        .iter()
        .map(|i| {
            let i = unit(i);
            text_rows
                .iter()
                .map(|t| unit(t).iter().zip(&i).map(|(a, b)| a * b).sum())
                .collect()
        })
        .collect();

    if args.json {
        let out = json!({
            "vl": args.vl,
            "clip": args.vl,
            "config": config,
            "images": args.images.iter().zip(image_rows).map(|(p, e)| json!({
                "path": p.display().to_string(), "embedding": e
            })).collect::<Vec<_>>(),
            "texts": args.texts.iter().zip(text_rows).map(|(t, e)| json!({
                "text": t, "embedding": e
            })).collect::<Vec<_>>(),
            "cosine_similarity": sims,
        });
        println!("{out}");
        return Ok(());
    }
    if sims.is_empty() || text_rows.is_empty() {
        for (p, e) in args.images.iter().zip(image_rows) {
            println!(
                "{}: {}-d image embedding, norm {:.4}",
                p.display(),
                e.len(),
                norm(e)
            );
        }
        for (t, e) in args.texts.iter().zip(text_rows) {
            println!("{t:?}: {}-d text embedding, norm {:.4}", e.len(), norm(e));
        }
        return Ok(());
    }
    for (p, row) in args.images.iter().zip(&sims) {
        println!("{}", p.display());
        // Zero-shot probabilities as CLIP's: softmax(100 · cosine).
        let m = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let exp: Vec<f32> = row.iter().map(|s| (100.0 * (s - m)).exp()).collect();
        let z: f32 = exp.iter().sum();
        let mut order: Vec<usize> = (0..row.len()).collect();
        order.sort_by(|&a, &b| row[b].total_cmp(&row[a]));
        for j in order {
            println!("  {:>7.4}  p={:.3}  {}", row[j], exp[j] / z, args.texts[j]);
        }
    }
    Ok(())
}

fn norm(v: &[f32]) -> f32 {
    v.iter().map(|x| x * x).sum::<f32>().sqrt()
}
