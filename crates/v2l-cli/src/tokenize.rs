//! `v2l encode`, `v2l reconstruct`, `v2l decode` and `v2l import-official`:
//! the V2L tokenizer on image files.

use crate::args::{CheckpointArgs, DecodeArgs, EncodeArgs, ImportOfficialArgs, ReconstructArgs};
use crate::error::{err, CliError};
use std::path::{Path, PathBuf};

use v2l::burn::tensor::backend::Backend;
use v2l::model::bundle::{write_bundle, BundleExtras};
use v2l::model::tokenizer::{open_image, read_global_vocab, OpenOptions};
use v2l::model::{
    ImageSize, ImageTokens, ModelConfig, OfficialCheckpoint, TokensFile, V2lTokenizer, VisualTokens,
};

fn open<B: Backend>(
    args: &CheckpointArgs,
    global_vocab: Option<PathBuf>,
    device: &B::Device,
) -> Result<V2lTokenizer<B>, CliError> {
    let options = OpenOptions {
        image_size: args.image_size,
        global_tokens: args.global_tokens,
        global_vocab,
        config: None,
        batch_size: Some(args.batch_size),
        precision: args.precision.into(),
    };
    let path = resolve_checkpoint::<B>(&args.checkpoint, device)?;
    V2lTokenizer::<B>::open(&path, &options, device).map_err(err)
}

/// `default` → the default bundle (made on first use, with a progress bar);
/// anything else unchanged.
pub(crate) fn resolve_checkpoint<B: Backend>(
    checkpoint: &Path,
    device: &B::Device,
) -> Result<PathBuf, CliError> {
    if !v2l::default_model::is_default(checkpoint) {
        return Ok(checkpoint.to_path_buf());
    }
    if !v2l::default_model::is_ready() {
        eprintln!("first use of the default model: computing its local codebook (SmolLM2's vocabulary embedded by MiniLM)");
    }
    let pb = crate::progress::bar(0, "entries embedded");
    let dir = v2l::default_model::bundle::<B>(device, &mut |p| {
        pb.set_length(p.total);
        pb.set_position(p.done);
    })
    .map_err(err)?;
    pb.finish_and_clear();
    Ok(dir)
}

/// `default` → the cached SmolLM2 GGUF; anything else unchanged.
pub(crate) fn resolve_llm(llm: &Path) -> Result<PathBuf, CliError> {
    if v2l::default_model::is_default(llm) {
        v2l::default_model::llm_path().map_err(err)
    } else {
        Ok(llm.to_path_buf())
    }
}

/// Encode files in batches with a progress bar; returns per-image records.
fn encode_files<B: Backend>(
    t: &V2lTokenizer<B>,
    paths: &[PathBuf],
    batch: usize,
) -> Result<VisualTokens, CliError> {
    let pb = crate::progress::bar(paths.len() as u64, "encoding");
    let mut all: Option<VisualTokens> = None;
    for chunk in paths.chunks(batch.max(1)) {
        let images = chunk
            .iter()
            .map(|p| open_image(p))
            .collect::<Result<Vec<_>, _>>()
            .map_err(err)?;
        let tokens = t.encode_images(&images).map_err(err)?;
        match all.as_mut() {
            None => all = Some(tokens),
            Some(acc) => acc.append(tokens).map_err(err)?,
        }
        pb.inc(chunk.len() as u64);
    }
    pb.finish_and_clear();
    all.ok_or_else(|| CliError::usage("no images"))
}

fn stem(path: &Path, fallback: usize) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| format!("image_{fallback}"))
}

fn out_names(paths: &[Option<PathBuf>]) -> Result<Vec<String>, CliError> {
    let names: Vec<String> = paths
        .iter()
        .enumerate()
        .map(|(i, p)| {
            p.as_deref()
                .map_or_else(|| format!("image_{i}"), |p| stem(p, i))
        })
        .collect();
    let mut seen = std::collections::HashSet::new();
    for n in &names {
        if !seen.insert(n) {
            return Err(CliError::usage(format!(
                "two inputs have the stem {n:?}; their outputs would overwrite each other"
            )));
        }
    }
    Ok(names)
}

fn write_pngs(
    dir: &Path,
    names: &[String],
    images: &[v2l::model::image::RgbImage],
) -> Result<(), CliError> {
    crate::files::create_dir(dir)?;
    for (name, im) in names.iter().zip(images) {
        let p = dir.join(format!("{name}.png"));
        crate::files::save_png(im, &p)?;
    }
    eprintln!("wrote {} images to {}", images.len(), dir.display());
    Ok(())
}

/// Run `v2l encode`.
pub fn run_encode(args: EncodeArgs) -> Result<(), CliError> {
    crate::tasks::run(args)
}

impl crate::device::OnDevice for EncodeArgs {
    fn run<B: Backend>(self, device: B::Device) -> Result<(), CliError> {
        let t = open::<B>(&self.checkpoint, self.global_vocab.clone(), &device)?;
        let tokens = encode_files(&t, &self.images, self.checkpoint.batch_size)?;
        let mut records = tokens.to_images();
        for (r, p) in records.iter_mut().zip(&self.images) {
            r.path = Some(p.display().to_string());
        }
        if self.json {
            let file = TokensFile {
                images: records,
                model: t.provenance().clone(),
            };
            let s = serde_json::to_string(&file).map_err(err)?;
            println!("{s}");
        } else {
            for r in &records {
                println!(
                    "{}: grid {}×{}, {} local ids, global ids {:?}",
                    r.path.as_deref().unwrap_or("?"),
                    r.grid[0],
                    r.grid[1],
                    r.local_ids.len(),
                    r.global_ids
                );
                if let Some(w) = &r.global_words {
                    println!("  global words: {}", w.join(" | "));
                }
            }
        }
        Ok(())
    }
}

/// Run `v2l reconstruct`.
pub fn run_reconstruct(args: ReconstructArgs) -> Result<(), CliError> {
    crate::tasks::run(args)
}

impl crate::device::OnDevice for ReconstructArgs {
    fn run<B: Backend>(self, device: B::Device) -> Result<(), CliError> {
        let names = out_names(&self.images.iter().cloned().map(Some).collect::<Vec<_>>())?;
        let t = open::<B>(&self.checkpoint, None, &device)?;
        let tokens = encode_files(&t, &self.images, self.checkpoint.batch_size)?;
        let images = t.decode_to_images(&tokens).map_err(err)?;
        write_pngs(&self.out_dir, &names, &images)
    }
}

/// Run `v2l decode`.
pub fn run_decode(args: DecodeArgs) -> Result<(), CliError> {
    crate::tasks::run(args)
}

impl crate::device::OnDevice for DecodeArgs {
    fn run<B: Backend>(self, device: B::Device) -> Result<(), CliError> {
        let file = TokensFile::read(&self.tokens).map_err(err)?;
        if file.images.is_empty() {
            return Err(CliError::malformed(format!(
                "{}: no images in the tokens file",
                self.tokens.display()
            )));
        }
        let paths: Vec<Option<PathBuf>> = file
            .images
            .iter()
            .map(|r| r.path.as_ref().map(PathBuf::from))
            .collect();
        let names = out_names(&paths)?;
        let t = open::<B>(&self.checkpoint, None, &device)?;
        let pb = crate::progress::bar(file.images.len() as u64, "decoding");
        let mut images = Vec::with_capacity(file.images.len());
        // Consecutive records with the same grid and k decode together.
        let mut start = 0;
        while start < file.images.len() {
            let first: &ImageTokens = &file.images[start];
            let mut end = start + 1;
            while end < file.images.len()
                && end - start < self.checkpoint.batch_size.max(1)
                && file.images[end].grid == first.grid
                && file.images[end].global_ids.len() == first.global_ids.len()
            {
                end += 1;
            }
            let batch = VisualTokens::from_images(&file.images[start..end])
                .map_err(|e| err(e).context(self.tokens.display()))?;
            let out = t.decode_to_images(&batch).map_err(|e| match e {
                v2l::model::ModelError::IdOutOfRange { which, id, image, position, size } => CliError::malformed(format!(
                    "{}: images[{}]: {which} id {id} at position {position} is outside the codebook of {size} rows",
                    self.tokens.display(),
                    image + start
                )),
                e => err(e).context(self.tokens.display()),
            })?;
            pb.inc(out.len() as u64);
            images.extend(out);
            start = end;
        }
        pb.finish_and_clear();
        write_pngs(&self.out_dir, &names, &images)
    }
}

fn read_codebook(path: &Path, rows: usize, dim: usize) -> Result<Vec<f32>, CliError> {
    let src = v2l::io::tensors::open_tensors(path).map_err(err)?;
    let keys = src.keys();
    let key = if keys.len() == 1 {
        keys[0].clone()
    } else if let Some(k) = ["embeddings", "weight"]
        .iter()
        .find(|k| keys.iter().any(|x| x == *k))
    {
        (*k).to_string()
    } else {
        return Err(CliError::malformed(format!(
            "{}: expected one tensor (or one named `embeddings`), found {} ({:?}…)",
            path.display(),
            keys.len(),
            keys.iter().take(4).collect::<Vec<_>>()
        )));
    };
    let (shape, values) = src.read_f32(&key).map_err(err)?;
    if shape != [rows, dim] {
        return Err(CliError::malformed(format!(
            "{}: codebook {key:?} has shape {shape:?}, the checkpoint needs [{rows}, {dim}]",
            path.display()
        )));
    }
    Ok(values)
}

/// Run `v2l import-official` (on the CPU; it only copies values).
pub fn run_import(args: ImportOfficialArgs) -> Result<(), CliError> {
    type B = v2l::backend::Cpu;
    let device = Default::default();
    let ck = OfficialCheckpoint::open(&args.checkpoint).map_err(err)?;
    let mut config = match &args.config {
        Some(c) => ModelConfig::from_json_file(c).map_err(err)?,
        None => ck
            .infer_config(args.image_size.map(ImageSize::Square), args.global_tokens)
            .map_err(err)?,
    };
    if let Some(n) = args.image_size {
        config.image_size = ImageSize::Square(n);
    }
    if let Some(k) = args.global_tokens {
        config.k = k;
    }
    config.validate().map_err(err)?;
    let mut model = ck.load::<B>(&config, &device).map_err(err)?;
    let d = config.embed_dim;
    if let Some(p) = &args.local_codebook {
        let v = read_codebook(p, config.n_local, d)?;
        model.replace_local_codebook(v).map_err(err)?;
    }
    if let Some(p) = &args.global_codebook {
        let v = read_codebook(p, config.n_global, d)?;
        model.replace_global_codebook(v).map_err(err)?;
    }
    let words = match &args.global_vocab {
        Some(p) => Some(read_global_vocab(p).map_err(err)?),
        None => None,
    };
    let provenance = serde_json::json!({
        "imported_from": args.checkpoint.display().to_string(),
        "sha256": crate::quality::sha256(&args.checkpoint)?,
        "local_codebook": args.local_codebook.as_ref().map(|p| p.display().to_string()),
        "global_codebook": args.global_codebook.as_ref().map(|p| p.display().to_string()),
        "global_vocab": args.global_vocab.as_ref().map(|p| p.display().to_string()),
        "tool": concat!("v2l import-official ", env!("CARGO_PKG_VERSION")),
    });
    let extras = BundleExtras {
        clip: ck
            .has_clip()
            .then(|| (ck.source(), v2l::model::model::CLIP_PREFIX)),
        global_words: words.as_deref(),
        provenance,
    };
    // A new bundle is written into a temporary folder beside it and renamed
    // into place, so an interrupted import leaves no half bundle; an
    // existing folder is rewritten file by file (each file atomically).
    if args.out.exists() {
        write_bundle(&args.out, &model, &extras).map_err(err)?;
    } else {
        let tmp = v2l::io::atomic::temporary_path(&args.out);
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).map_err(|e| CliError::write(&tmp, &e))?;
        }
        write_bundle(&tmp, &model, &extras).map_err(|e| match e {
            v2l::model::ModelError::Io { path, source } => CliError::write(&path, &source),
            e => err(e),
        })?;
        std::fs::rename(&tmp, &args.out).map_err(|e| CliError::write(&args.out, &e))?;
    }
    eprintln!("wrote bundle {}", args.out.display());
    Ok(())
}
