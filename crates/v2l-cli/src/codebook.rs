//! `v2l codebook local|expand|filter|import`: build the codebooks from an
//! LLM's vocabulary with CLIP, or import the official files.

use crate::args::{
    CodebookCommand, CodebookImportArgs, EmbedArgs, ExpandArgs, ExpansionModeArg, FilterArgs,
    LlmEmbeddingsArgs, LocalArgs, StoragePrecisionArg,
};
use crate::error::{err, CliError};
use indicatif::ProgressBar;
use std::path::{Path, PathBuf};

use serde_json::json;
use v2l::burn::tensor::backend::Backend;
use v2l::clip::{Clip, ClipTokenizer, Truncation};
use v2l::codebook::expand::{candidates, Expander, ExpansionMode, LlamaNext};
use v2l::codebook::filter::{self, filter_codebook, ImageFiles, ImageSet, Selection, VoteOptions};
use v2l::codebook::job::Progress;
use v2l::codebook::{vocab, Codebook, Precision, TemplateEmbedder};
use v2l::llm::{Llama, LlamaWeights};

impl From<StoragePrecisionArg> for Precision {
    fn from(p: StoragePrecisionArg) -> Self {
        match p {
            StoragePrecisionArg::Auto => Precision::Auto,
            StoragePrecisionArg::F16 => Precision::F16,
            StoragePrecisionArg::F32 => Precision::F32,
        }
    }
}

/// Run `v2l codebook …`.
pub fn run(cmd: CodebookCommand) -> Result<(), CliError> {
    match cmd {
        CodebookCommand::Local(a) => crate::device::dispatch_f32(a.device.device, a),
        CodebookCommand::Expand(a) => crate::device::dispatch_f32(a.device.device, a),
        CodebookCommand::Filter(a) => crate::device::dispatch_f32(a.device.device, a),
        CodebookCommand::Import(a) => run_import(&a),
        CodebookCommand::LlmEmbeddings(a) => run_llm_embeddings(&a),
    }
}

/// The work folder of a job writing `out` (checked first: `out` must be a
/// regular file or new, since a codebook is a file, its `.json` sidecar
/// and the work folder beside them).
fn work_dir(out: &Path, given: &Option<PathBuf>) -> Result<PathBuf, CliError> {
    crate::files::check_output_file(out)?;
    Ok(given.clone().unwrap_or_else(|| out.with_extension("work")))
}

/// A stable id of a weights file or folder: the file's sha256, or for a
/// folder the sha256 of its files' names and sizes.
fn model_id(path: &Path) -> Result<String, CliError> {
    if path.is_file() {
        return crate::quality::sha256(path);
    }
    let mut names = Vec::new();
    for e in std::fs::read_dir(path).map_err(|e| CliError::read(path, &e))? {
        let e = e.map_err(err)?;
        let len = e.metadata().map(|m| m.len()).unwrap_or(0);
        names.push(format!("{}:{len}", e.file_name().to_string_lossy()));
    }
    names.sort();
    Ok(format!(
        "folder:{}",
        v2l::codebook::job::strings_sha256(&names)
    ))
}

fn on_progress(bar: &ProgressBar) -> impl FnMut(Progress<'_>) + '_ {
    move |p| {
        bar.set_length(p.total);
        bar.set_position(p.done);
    }
}

fn clip_tokenizer(bpe: &Option<PathBuf>) -> Result<ClipTokenizer, CliError> {
    let path = match bpe {
        Some(p) => p.clone(),
        None => crate::quality::cached_asset("clip-bpe", "bpe_simple_vocab_16e6.txt.gz")?,
    };
    ClipTokenizer::from_bpe_file(&path).map_err(err)
}

fn llm_tokenizer(
    tokenizer: Option<&Path>,
    llm: Option<&Path>,
) -> Result<v2l::llm::tokenizer::LlmTokenizer, CliError> {
    crate::complete::load_tokenizer_for(llm, tokenizer)
}

/// Whether a `--vl` value names the ConSE model.
pub fn is_conse(spec: &str) -> bool {
    matches!(spec, "conse" | "default")
}

fn embed_entries<B: Backend>(
    e: &EmbedArgs,
    device: &B::Device,
    entries: &[String],
    work: PathBuf,
) -> Result<(v2l::codebook::EmbeddingChunks, serde_json::Value), CliError> {
    let spec = e.vl.as_ref().ok_or(
        "--vl is needed to embed the entries (`conse`, or CLIP weights with the text tower)",
    )?;
    let pb = crate::progress::bar(entries.len() as u64, "entries embedded");
    if is_conse(spec) {
        let dir = v2l::vl::cached_file("minilm-l6", Some("model.safetensors"))
            .map_err(err)?
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let encoder = v2l::vl::SentenceEncoder::<B>::load(&dir, device).map_err(err)?;
        let embedder = TemplateEmbedder::sentence(&encoder).renormalize(e.renormalize);
        let id = format!("conse-text:{}", model_id(&dir)?);
        let chunks = embedder
            .embed_chunked(entries, &work, &id, e.chunk_rows, &mut on_progress(&pb))
            .map_err(err)?;
        pb.finish_and_clear();
        let provenance = json!({
            "vl": "conse",
            "text_model": "minilm-l6 (all-MiniLM-L6-v2)",
            "text_model_id": id,
            "templates": embedder.templates(),
            "template_set": "one template (docs/default.md)",
            "renormalized": e.renormalize,
        });
        return Ok((chunks, provenance));
    }
    let clip_path = PathBuf::from(spec);
    let clip = Clip::<B>::load(&clip_path, device).map_err(err)?;
    let tok = clip_tokenizer(&e.bpe)?;
    let embedder = TemplateEmbedder::new(&clip, &tok)
        .map_err(err)?
        .renormalize(e.renormalize)
        .batch_prompts(e.batch_prompts)
        .truncation(if e.truncate {
            Truncation::Truncate
        } else {
            Truncation::Error
        });
    let clip_id = model_id(&clip_path)?;
    let chunks = embedder
        .embed_chunked(
            entries,
            &work,
            &clip_id,
            e.chunk_rows,
            &mut on_progress(&pb),
        )
        .map_err(err)?;
    pb.finish_and_clear();
    let provenance = json!({
        "vl": "clip",
        "clip": clip_path.display().to_string(),
        "clip_id": clip_id,
        "templates": embedder.templates().len(),
        "template_set": "CLIP ImageNet (80)",
        "renormalized": e.renormalize,
        "truncated_prompts": e.truncate,
    });
    Ok((chunks, provenance))
}

impl crate::device::OnDevice for LocalArgs {
    fn run<B: Backend>(self, device: B::Device) -> Result<(), CliError> {
        let tok = llm_tokenizer(Some(&self.tokenizer), None)?;
        let strings = vocab::vocabulary_texts(&tok).map_err(err)?;
        let n = strings.len();
        let templates = match self.embed.vl.as_deref() {
            Some(v) if is_conse(v) => 1,
            _ => 80,
        };
        eprintln!(
            "{n} tokens ({:?}); embedding {} prompts",
            tok.kind(),
            n * templates
        );
        let work = work_dir(&self.out, &self.work_dir)?;
        let (chunks, clip) = embed_entries::<B>(&self.embed, &device, &strings, work)?;
        let provenance = json!({
            "kind": "local",
            "rule": "row i = token id i; text = the reference's single-id decode",
            "tokenizer": self.tokenizer.display().to_string(),
            "tokenizer_sha256": crate::quality::sha256(&self.tokenizer)?,
            "tokenizer_kind": format!("{:?}", tok.kind()),
            "embedding": clip,
        });
        let ids = (0..n as u32).map(|i| vec![i]).collect();
        chunks
            .save(
                &self.out,
                self.embed.precision.into(),
                Some(strings),
                Some(ids),
                provenance,
            )
            .map_err(err)?;
        eprintln!("wrote {} ({n} rows × {})", self.out.display(), chunks.dim());
        Ok(())
    }
}

fn parse_ids(spec: &str, vocab: usize) -> Result<Vec<u32>, CliError> {
    let bad = || {
        CliError::usage(format!(
            "--ids {spec:?}: expected FIRST..END with FIRST < END ≤ {vocab}"
        ))
    };
    let (a, b) = spec.split_once("..").ok_or_else(bad)?;
    let a: usize = a.trim().parse().map_err(|_| bad())?;
    let b: usize = b.trim().parse().map_err(|_| bad())?;
    if a >= b || b > vocab {
        return Err(bad());
    }
    Ok((a as u32..b as u32).collect())
}

impl crate::device::OnDevice for ExpandArgs {
    fn run<B: Backend>(self, device: B::Device) -> Result<(), CliError> {
        let tok = llm_tokenizer(self.tokenizer.as_deref(), Some(&self.llm))?;
        let ids = match &self.ids {
            Some(s) => parse_ids(s, tok.vocab_size())?,
            None => (0..tok.vocab_size() as u32).collect(),
        };
        let weights = LlamaWeights::open(&self.llm).map_err(err)?;
        let model = Llama::<B>::load(&weights, &device).map_err(err)?;
        let mode = match self.mode {
            ExpansionModeArg::Faithful => ExpansionMode::Faithful,
            ExpansionModeArg::Corrected => ExpansionMode::Corrected,
        };
        let llm_id = model_id(&self.llm)?;
        let work = work_dir(&self.out, &self.work_dir)?;
        let pb = crate::progress::bar(ids.len() as u64, "entries expanded");
        let mut next = LlamaNext::new(&model, self.batch);
        let expanded = Expander::new(&tok, mode)
            .expand_chunked(
                &ids,
                &mut next,
                work.join("expansion"),
                &llm_id,
                self.batch.max(64),
                &mut on_progress(&pb),
            )
            .map_err(err)?;
        pb.finish_and_clear();
        if self.expansions_only {
            let text = serde_json::to_string_pretty(&expanded).map_err(err)?;
            crate::files::write_atomic(&self.out, text.as_bytes())?;
            eprintln!(
                "wrote {} ({} expansions)",
                self.out.display(),
                expanded.len()
            );
            return Ok(());
        }
        let (strings, token_ids) = candidates(&expanded);
        let (chunks, clip) =
            embed_entries::<B>(&self.embed, &device, &strings, work.join("embedding"))?;
        let provenance = json!({
            "kind": "candidates",
            "order": "unigrams, then bigrams, then trigrams (rows 0..N, N..2N, 2N..3N)",
            "llm": self.llm.display().to_string(),
            "llm_id": llm_id,
            "mode": mode.name(),
            "prompt": "a photo of {entry}, one greedy token per step",
            "entries": ids.len(),
            "embedding": clip,
        });
        let rows = strings.len();
        chunks
            .save(
                &self.out,
                self.embed.precision.into(),
                Some(strings),
                Some(token_ids),
                provenance,
            )
            .map_err(err)?;
        eprintln!("wrote {} ({rows} candidate rows)", self.out.display());
        Ok(())
    }
}

fn image_set(args: &FilterArgs) -> Result<Box<dyn ImageSet>, CliError> {
    use v2l::assets::datasets::{DatasetSpec, Split};
    let mut sets: Vec<Box<dyn ImageSet>> = Vec::new();
    if let Some(d) = args.dataset.as_deref() {
        let spec = DatasetSpec::parse(d).map_err(|e| err(e).context("--dataset"))?;
        let set = spec.open(Split::Train).map_err(err)?;
        match args.limit {
            Some(n) => sets.push(Box::new(filter::Prefix(set, n))),
            None => sets.push(Box::new(set)),
        }
    }
    if let Some(dir) = &args.images {
        sets.push(Box::new(ImageFiles::from_dir(dir).map_err(err)?));
    }
    match sets.len() {
        0 => Err(CliError::usage("give --images DIR and/or --dataset NAME")),
        1 => Ok(sets.remove(0)),
        _ => Ok(Box::new(filter::Concat(sets))),
    }
}

impl crate::device::OnDevice for FilterArgs {
    fn run<B: Backend>(self, device: B::Device) -> Result<(), CliError> {
        let cands = Codebook::load(&self.candidates).map_err(err)?;
        let images = image_set(&self)?;
        let vl = v2l::vl::Vl::<B>::load(&self.vl, &device).map_err(err)?;
        let clip_id = if is_conse(&self.vl) {
            "conse-default".to_string()
        } else {
            model_id(Path::new(&self.vl))?
        };
        let work = work_dir(&self.out, &self.work_dir)?;
        let pb = crate::progress::bar(images.len() as u64, "images voted");
        let votes = filter::vote(
            vl.as_dyn(),
            &cands,
            images.as_ref(),
            VoteOptions {
                top: self.top,
                chunk_images: self.chunk_images,
            },
            &work,
            &clip_id,
            &mut on_progress(&pb),
        )
        .map_err(err)?;
        pb.finish_and_clear();
        let selection = match self.keep {
            Some(n) => Selection::TopN(n),
            None => Selection::Threshold(self.threshold),
        };
        let mut global = filter_codebook(&cands, &votes, selection).map_err(err)?;
        global.provenance["images_source"] = json!(images.id());
        global.provenance["vl"] = json!(self.vl);
        global.provenance["vl_id"] = json!(clip_id);
        global.save(&self.out, self.precision.into()).map_err(err)?;
        eprintln!(
            "wrote {} ({} of {} candidates kept; {} images voted)",
            self.out.display(),
            global.rows(),
            cands.rows(),
            votes.images
        );
        Ok(())
    }
}

fn run_llm_embeddings(a: &LlmEmbeddingsArgs) -> Result<(), CliError> {
    crate::files::check_output_file(&a.out)?;
    let llm = crate::tokenize::resolve_llm(&a.llm)?;
    let weights = LlamaWeights::open(&llm).map_err(err)?;
    let (rows, dim) = (weights.config().vocab_size, weights.config().hidden_size);
    let values = weights
        .read("model.embed_tokens.weight", &[rows, dim])
        .map_err(err)?;
    let mut cb = Codebook::new(values, rows, dim).map_err(err)?;
    cb.provenance = json!({
        "kind": "llm-input-embeddings",
        "llm": llm.display().to_string(),
        "llm_id": model_id(&llm)?,
    });
    cb.save(&a.out, a.precision.into()).map_err(err)?;
    eprintln!("wrote {} ({rows} × {dim})", a.out.display());
    Ok(())
}

fn run_import(a: &CodebookImportArgs) -> Result<(), CliError> {
    let (local, global) =
        v2l::codebook::official::import(&a.local, &a.global, &a.vocab).map_err(err)?;
    crate::files::create_dir(&a.out_dir)?;
    let lp = a.out_dir.join("local_codebook.safetensors");
    let gp = a.out_dir.join("global_codebook.safetensors");
    local.save(&lp, a.precision.into()).map_err(err)?;
    global.save(&gp, a.precision.into()).map_err(err)?;
    eprintln!(
        "wrote {} ({} × {}) and {} ({} × {}, with strings)",
        lp.display(),
        local.rows(),
        local.dim(),
        gp.display(),
        global.rows(),
        global.dim()
    );
    Ok(())
}
