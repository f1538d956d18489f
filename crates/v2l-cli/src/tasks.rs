//! `v2l classify|caption|vqa|restore|eval`: the frozen-LLM tasks.

use crate::args::{
    CaptionArgs, CheckpointArgs, ClassifyArgs, DecodingArg, EvalCommand, EvalFewshotArgs, EvalOut,
    EvalReconstructArgs, EvalRestoreArgs, EvalTextArgs, FewShotArgs, ImageSetArgs, InstructionArg,
    ModelArgs, PromptTokensArg, RestoreArgs, RestoreCmdArgs, RestoreModeArg, VqaArgs,
};
use crate::error::{err, CliError};
use std::path::{Path, PathBuf};

use serde_json::json;
use v2l::burn::tensor::backend::Backend;
use v2l::llm::tokenizer::LlmTokenizer;
use v2l::llm::{Llama, LlamaWeights};
use v2l::model::image::DynamicImage;
use v2l::model::tokenizer::{open_image, OpenOptions};
use v2l::model::V2lTokenizer;
use v2l::prompt::episodes::{generate_episodes, read_csv, ClassNames, Episode};
use v2l::prompt::eval::{
    fewshot_table, restore_table, run_reconstruct, CaptionItem, DatasetImages, FewShotEval,
    FolderImages, ImageSource, Run, Session, Table, TextTaskEval, VqaItem,
};
use v2l::prompt::restore::{ExampleMode, RestoreOptions, Task};
use v2l::prompt::{Decoding, FewShotOptions, InstructionStyle, PromptTokens};

use crate::progress::bar;

struct Loaded<B: Backend> {
    v2l: V2lTokenizer<B>,
    llm: Llama<B>,
    tok: LlmTokenizer,
    provenance: serde_json::Value,
    /// The model bundle or checkpoint file, resolved.
    ckpt: PathBuf,
    /// The LLM file or folder, resolved.
    llm_path: PathBuf,
}

impl<B: Backend> Loaded<B> {
    /// The evaluation session over these models.
    fn session(&self) -> Session<'_, B> {
        Session {
            tokenizer: &self.v2l,
            llm: &self.llm,
            llm_tokenizer: &self.tok,
        }
    }

    /// The log settings that the models determine: fingerprints of the V2L
    /// model, the LLM and the overriding files, sizes, the tool's version.
    fn settings(&self, m: &ModelArgs) -> Result<serde_json::Value, CliError> {
        Ok(json!({
            "v2l": crate::logs::checkpoint_fingerprint(&self.ckpt, self.v2l.provenance())?,
            "llm": crate::logs::fingerprint(&self.llm_path)?,
            "tokenizer": crate::logs::fingerprint_opt(m.tokenizer.as_deref())?,
            "global_vocab": crate::logs::fingerprint_opt(m.global_vocab.as_deref())?,
            "global_tokens": self.v2l.config().k,
            "image_size": self.v2l.image_size().map_err(err)?,
            "precision": v2l::backend::Precision::from(m.checkpoint.precision).name(),
            "tool": crate::logs::tool(),
        }))
    }
}

/// Merge JSON objects (later keys win).
fn merged(parts: &[serde_json::Value]) -> serde_json::Value {
    let mut out = serde_json::Map::new();
    for p in parts {
        if let Some(o) = p.as_object() {
            out.extend(o.clone());
        }
    }
    serde_json::Value::Object(out)
}

fn load<B: Backend>(
    m: &ModelArgs,
    device: &B::Device,
    image_size: Option<usize>,
) -> Result<Loaded<B>, CliError> {
    let c = &m.checkpoint;
    let opts = OpenOptions {
        image_size: image_size.or(c.image_size),
        global_tokens: c.global_tokens,
        global_vocab: m.global_vocab.clone(),
        config: None,
        batch_size: Some(c.batch_size),
        precision: c.precision.into(),
    };
    let ckpt = crate::tokenize::resolve_checkpoint::<B>(&c.checkpoint, device)?;
    let v2l = V2lTokenizer::<B>::open(&ckpt, &opts, device).map_err(err)?;
    let llm_path = crate::tokenize::resolve_llm(&m.llm)?;
    let tok = crate::complete::load_tokenizer_for(Some(&llm_path), m.tokenizer.as_deref())?;
    let weights = LlamaWeights::open(&llm_path).map_err(err)?;
    let llm = Llama::<B>::load(&weights, device)
        .map_err(err)?
        .into_precision(c.precision.into());
    let llm_file = if llm_path.is_file() {
        json!({"file": llm_path.display().to_string(), "bytes": std::fs::metadata(&llm_path).map(|x| x.len()).ok()})
    } else {
        json!({"folder": llm_path.display().to_string()})
    };
    let provenance = json!({
        "v2l": c.checkpoint.display().to_string(),
        "v2l_provenance": v2l.provenance(),
        "llm": llm_file,
        "llm_vocab": tok.vocab_size(),
        "image_size": v2l.image_size().map_err(err)?,
        "k": v2l.config().k,
        "tool": format!("v2l-rs {}", env!("CARGO_PKG_VERSION")),
    });
    Ok(Loaded {
        v2l,
        llm,
        tok,
        provenance,
        ckpt,
        llm_path,
    })
}

impl FewShotArgs {
    fn options(&self) -> FewShotOptions {
        FewShotOptions {
            style: match self.instruction {
                InstructionArg::Faithful => InstructionStyle::Faithful,
                InstructionArg::Corrected => InstructionStyle::Corrected,
                InstructionArg::None => InstructionStyle::None,
            },
            decoding: match self.decoding {
                DecodingArg::Union => Decoding::UnionMask,
                DecodingArg::Trie => Decoding::Trie,
                DecodingArg::Calibrated => Decoding::Calibrated,
            },
            tokens: match self.prompt_tokens {
                PromptTokensArg::Pieces => PromptTokens::Pieces,
                PromptTokensArg::Joined => PromptTokens::Joined,
            },
            repeat: self.repeat,
            context: self.max_seq_len,
            ..FewShotOptions::default()
        }
    }

    /// Warn (on stderr) when `--dataset` presents grey levels the other way
    /// round from the model's training data (`provenance` as the bundle
    /// records it).
    fn warn_polarity(&self, provenance: &serde_json::Value) {
        if let Some(w) = self
            .dataset
            .as_deref()
            .and_then(|d| polarity_warning(d, provenance))
        {
            eprintln!("warning: {w}");
        }
    }

    /// The log settings these options determine (`episodes`: what the
    /// episodes come from).
    fn settings(&self, episodes: serde_json::Value) -> Result<serde_json::Value, CliError> {
        let o = self.options();
        Ok(json!({
            "instruction": format!("{:?}", o.style),
            "decoding": format!("{:?}", o.decoding),
            "prompt_tokens": format!("{:?}", o.tokens),
            "repeat": o.repeat,
            "max_seq_len": o.context,
            "eft_quirk": self.eft_quirk,
            "images": self.images.as_ref().map(|p| p.display().to_string()),
            "dataset": self.dataset,
            "classes": crate::logs::fingerprint_opt(self.classes.as_deref())?,
            "episodes": episodes,
        }))
    }

    /// What generated episodes come from.
    fn generated(&self) -> serde_json::Value {
        json!({"generated": {"count": self.count, "seed": self.seed}})
    }

    fn source(&self) -> Result<Source, CliError> {
        match (&self.images, self.dataset.as_deref()) {
            (Some(root), None) => {
                let path = self.classes.as_ref().ok_or(CliError::usage(
                    "--images needs --classes (the id → name mapping)",
                ))?;
                let names = ClassNames::read(path, self.eft_quirk).map_err(err)?;
                Ok((Box::new(FolderImages(root.clone())), names, None))
            }
            (None, Some(d)) => {
                let (set, names) = open_dataset(d)?;
                Ok((Box::new(set.clone()), names, Some(set)))
            }
            _ => Err(CliError::usage(
                "give --images DIR (with --classes) or --dataset NAME",
            )),
        }
    }
}

/// The warning for a `--dataset` whose grey levels are inverted while the
/// model's training data (`provenance.data`, written by `v2l train`) was
/// not, or the other way round; `None` when they agree or either is unknown.
pub(crate) fn polarity_warning(dataset: &str, provenance: &serde_json::Value) -> Option<String> {
    use v2l::assets::datasets::DatasetSpec;
    let trained = provenance["data"].as_str()?;
    let (asked, seen) = (
        DatasetSpec::parse(dataset).ok()?,
        DatasetSpec::parse(trained).ok()?,
    );
    (asked.name() == seen.name() && asked.inverted != seen.inverted).then(|| {
        format!(
            "--dataset {dataset} {} grey levels, but the model was trained on {trained}; \
             pass --dataset {}{} to present images the way the model saw them",
            if asked.inverted { "inverts" } else { "keeps" },
            dataset.trim_end_matches(":inverted"),
            if seen.inverted { ":inverted" } else { "" },
        )
    })
}

/// A cached dataset by name (`fashion-mnist[:test|:train][:inverted]`,
/// `mnist[:inverted]`; Fashion-MNIST's test split unless named) with its
/// built-in class names.
fn open_dataset(name: &str) -> Result<(DatasetImages, ClassNames), CliError> {
    use v2l::assets::datasets::{DatasetSpec, Split};
    let spec = DatasetSpec::parse(name).map_err(|e| err(e).context("--dataset"))?;
    Ok((
        DatasetImages(spec.open(Split::Test).map_err(err)?),
        ClassNames::builtin(spec.name()).map_err(err)?,
    ))
}

/// Episode images, class names, and the dataset when one was chosen.
type Source = (Box<dyn ImageSource>, ClassNames, Option<DatasetImages>);

fn episodes_for(
    csv: Option<&Path>,
    way: usize,
    shot: usize,
    args: &FewShotArgs,
    dataset: Option<&DatasetImages>,
) -> Result<Vec<Episode>, CliError> {
    match (csv, dataset) {
        (Some(p), _) => read_csv(p, Some((way, shot))).map_err(err),
        (None, Some(d)) => {
            generate_episodes(&d.items(), way, shot, args.count, args.seed).map_err(err)
        }
        (None, None) => Err(CliError::usage(
            "give --episodes CSV (or use --dataset to generate episodes)",
        )),
    }
}

impl crate::device::OnDevice for ClassifyArgs {
    fn run<B: Backend>(self, device: B::Device) -> Result<(), CliError> {
        let m = load::<B>(&self.model, &device, None)?;
        self.fewshot.warn_polarity(&m.v2l.provenance()["bundle"]);
        let (source, names, dataset) = self.fewshot.source()?;
        let eps = episodes_for(
            self.episodes.as_deref(),
            self.way,
            self.shot,
            &self.fewshot,
            dataset.as_ref(),
        )?;
        let k = self.k.unwrap_or(m.v2l.config().k);
        let tmp;
        let log_path = match &self.log {
            Some(p) => p.clone(),
            None => {
                tmp = tempfile_path("classify")?;
                tmp.clone()
            }
        };
        let episodes = match &self.episodes {
            Some(p) => json!({"csv": crate::logs::fingerprint(p)?}),
            None => self.fewshot.generated(),
        };
        let log_settings = merged(&[
            m.settings(&self.model)?,
            self.fewshot.settings(episodes)?,
            json!({"way": self.way, "shot": self.shot}),
        ]);
        let mut log = crate::logs::open_log(&log_path, log_settings, self.new_log)?;
        log.set_provenance(m.provenance.clone());
        let settings = FewShotEval {
            way: self.way,
            shot: self.shot,
            ks: vec![k],
            options: self.fewshot.options(),
        };
        let acc = crate::progress::logged(&mut log, "episodes", |run| {
            m.session()
                .fewshot(source.as_ref(), &names, &eps, &settings, run)
        })
        .map_err(err)?;
        if self.json {
            for r in log.records() {
                println!("{r}");
            }
        }
        let a = acc.get(&k).copied().unwrap_or_default();
        println!(
            "{}-way {}-shot, k = {k}: {}/{} correct = {:.2}%",
            self.way,
            self.shot,
            a.correct,
            a.total,
            100.0 * a.value()
        );
        if self.log.is_none() {
            std::fs::remove_file(&log_path).ok();
        }
        Ok(())
    }
}

fn tempfile_path(what: &str) -> Result<PathBuf, CliError> {
    let dir = std::env::temp_dir();
    Ok(dir.join(format!(
        "v2l-{what}-{}-{}.jsonl",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    )))
}

fn words<B: Backend>(v2l: &V2lTokenizer<B>, path: &Path, k: usize) -> Result<String, CliError> {
    let img = open_image(path).map_err(err)?;
    let w = v2l::prompt::eval::global_words(v2l, &img).map_err(err)?;
    Ok(v2l::prompt::prompt::visual_text(&w[..k.min(w.len())]))
}

/// One entry of an `--examples` file: an image (relative to the file's
/// folder) and the other fields of its example (`T`).
#[derive(serde::Deserialize)]
struct Shot<T> {
    image: PathBuf,
    #[serde(flatten)]
    fields: T,
}

/// The fields of a `v2l caption --examples` entry.
#[derive(serde::Deserialize)]
struct CaptionFields {
    caption: String,
}

/// The fields of a `v2l vqa --examples` entry.
#[derive(serde::Deserialize)]
struct VqaFields {
    question: String,
    answer: String,
}

/// The models, k (default: the model's) and the `--examples` file (a JSON
/// list of [`Shot`]s) as prompt examples made by `make(words, fields)`.
fn load_with_examples<T: serde::de::DeserializeOwned, E, B: Backend>(
    model: &ModelArgs,
    k: Option<usize>,
    path: &Path,
    device: &B::Device,
    make: impl Fn(String, T) -> E,
) -> Result<(Loaded<B>, usize, Vec<E>), CliError> {
    let m = load::<B>(model, device, None)?;
    let k = k.unwrap_or(m.v2l.config().k);
    let text = std::fs::read_to_string(path).map_err(|e| CliError::read(path, &e))?;
    let items: Vec<Shot<T>> = serde_json::from_str(&text).map_err(|e| {
        CliError::malformed(format!(
            "{}: expected a JSON list of examples: {e}",
            path.display()
        ))
    })?;
    let base = path.parent().unwrap_or(Path::new("."));
    let examples = items
        .into_iter()
        .map(|it| {
            let visual = words(&m.v2l, &base.join(&it.image), k)?;
            Ok(make(visual, it.fields))
        })
        .collect::<Result<_, CliError>>()?;
    Ok((m, k, examples))
}

impl crate::device::OnDevice for CaptionArgs {
    fn run<B: Backend>(self, device: B::Device) -> Result<(), CliError> {
        use v2l::prompt::caption::{caption_prompt, generate_answer, CaptionExample};
        let make = |visual, f: CaptionFields| CaptionExample {
            visual,
            caption: f.caption,
        };
        let (m, k, examples) =
            load_with_examples::<_, _, B>(&self.model, self.k, &self.examples, &device, make)?;
        for p in &self.images {
            let prompt = caption_prompt(&m.tok, &examples, &words(&m.v2l, p, k)?).map_err(err)?;
            let c = generate_answer(&m.llm, &m.tok, &prompt, self.max_tokens).map_err(err)?;
            println!("{}\t{c}", p.display());
        }
        Ok(())
    }
}

impl crate::device::OnDevice for VqaArgs {
    fn run<B: Backend>(self, device: B::Device) -> Result<(), CliError> {
        use v2l::prompt::caption::{generate_answer, vqa_prompt, VqaExample};
        let make = |visual, f: VqaFields| VqaExample {
            visual,
            question: f.question,
            answer: f.answer,
        };
        let (m, k, examples) =
            load_with_examples::<_, _, B>(&self.model, self.k, &self.examples, &device, make)?;
        let query = words(&m.v2l, &self.image, k)?;
        let prompt = vqa_prompt(&m.tok, &examples, &query, &self.question).map_err(err)?;
        let answer = generate_answer(&m.llm, &m.tok, &prompt, self.max_tokens).map_err(err)?;
        println!("{answer}");
        Ok(())
    }
}

impl RestoreArgs {
    /// The log settings these options determine.
    fn settings(&self) -> serde_json::Value {
        json!({
            "mode": format!("{:?}", self.mode),
            "seed": self.seed,
            "max_seq_len": self.max_seq_len,
        })
    }

    fn options(&self) -> RestoreOptions {
        RestoreOptions {
            mode: match self.mode {
                RestoreModeArg::Faithful => ExampleMode::Faithful,
                RestoreModeArg::Honest => ExampleMode::Honest,
            },
            seed: self.seed,
            context: self.max_seq_len,
            ..RestoreOptions::default()
        }
    }
}

fn named_images(paths: &[PathBuf]) -> Result<Vec<(String, DynamicImage)>, CliError> {
    paths
        .iter()
        .map(|p| Ok((p.display().to_string(), open_image(p).map_err(err)?)))
        .collect()
}

impl crate::device::OnDevice for RestoreCmdArgs {
    fn run<B: Backend>(self, device: B::Device) -> Result<(), CliError> {
        let task = Task::parse(&self.task).map_err(|e| CliError::usage(format!("--task: {e}")))?;
        let m = load::<B>(&self.model, &device, None)?;
        let restorer = m.session().restorer(self.restore.options());
        crate::files::create_dir(&self.out_dir)?;
        let mut images = named_images(&self.images)?;
        let n = images.len();
        images.extend(named_images(&self.others)?);
        let log_settings = merged(&[
            m.settings(&self.model)?,
            self.restore.settings(),
            json!({"others": self.others.iter().map(|p| p.display().to_string()).collect::<Vec<_>>()}),
        ]);
        let mut log = crate::logs::open_log(
            &self.out_dir.join("results.jsonl"),
            log_settings,
            self.new_log,
        )?;
        log.set_provenance(m.provenance.clone());
        crate::progress::logged(&mut log, "images", |run| {
            restorer.evaluate(
                &images[..n.max(1).min(images.len())],
                &[task],
                None,
                Some(&self.out_dir),
                run,
            )
        })
        .map_err(err)?;
        for r in log.records() {
            println!("{r}");
        }
        Ok(())
    }
}

fn emit(table: &Table, out: &EvalOut) -> Result<(), CliError> {
    let md = table.to_markdown();
    print!("{md}");
    if let Some(p) = &out.table {
        crate::files::write_atomic(p, md.as_bytes())?;
    }
    Ok(())
}

fn parse_list(s: &str, what: &str) -> Result<Vec<usize>, CliError> {
    s.split(',')
        .map(|x| {
            x.trim().parse().map_err(|_| {
                CliError::usage(format!("--{what} {s:?}: expected numbers like 1,3,5"))
            })
        })
        .collect()
}

impl crate::device::OnDevice for EvalFewshotArgs {
    fn run<B: Backend>(self, device: B::Device) -> Result<(), CliError> {
        let m = load::<B>(&self.model, &device, None)?;
        self.fewshot.warn_polarity(&m.v2l.provenance()["bundle"]);
        let (source, names, dataset) = self.fewshot.source()?;
        let ks = parse_list(&self.ks, "ks")?;
        let episodes = match &self.episodes_dir {
            // Only the episode files: the folder may hold anything else.
            Some(d) => json!({"csv_dir": crate::logs::fingerprint_matching(d, |n| {
                n.ends_with("_shot.csv") && n.contains("_way_")
            })?}),
            None => self.fewshot.generated(),
        };
        let log_settings = merged(&[m.settings(&self.model)?, self.fewshot.settings(episodes)?]);
        let mut log = crate::logs::open_log(&self.out.log, log_settings, self.out.new_log)?;
        log.set_provenance(m.provenance.clone());
        let mut results = std::collections::BTreeMap::new();
        for way in parse_list(&self.ways, "ways")? {
            for shot in parse_list(&self.shots, "shots")? {
                let csv = self
                    .episodes_dir
                    .as_ref()
                    .map(|d| d.join(format!("{way}_way_{shot}_shot.csv")));
                let eps = episodes_for(csv.as_deref(), way, shot, &self.fewshot, dataset.as_ref())?;
                let settings = FewShotEval {
                    way,
                    shot,
                    ks: ks.clone(),
                    options: self.fewshot.options(),
                };
                let acc =
                    crate::progress::logged(&mut log, &format!("{way}-way {shot}-shot"), |run| {
                        m.session()
                            .fewshot(source.as_ref(), &names, &eps, &settings, run)
                    })
                    .map_err(err)?;
                results.insert((way, shot), acc);
            }
        }
        let o = self.fewshot.options();
        let notes = vec![
            format!(
                "images: {}; episodes: {}",
                source.describe(),
                self.episodes_dir.as_ref().map_or(
                    format!(
                        "generated ({} per setting, seed {})",
                        self.fewshot.count, self.fewshot.seed
                    ),
                    |d| d.display().to_string()
                )
            ),
            format!(
                "instruction {:?}, decoding {:?}, prompt tokens {:?}, repeat {}, 16 greedy steps, exact-prefix scoring",
                o.style, o.decoding, o.tokens, o.repeat
            ),
            format!("models: {}", m.provenance),
            format!("log: {}", self.out.log.display()),
        ];
        emit(&fewshot_table(&results, notes), &self.out)
    }
}

impl ImageSetArgs {
    /// The log settings of the image set (not `--limit`: a larger limit
    /// resumes a smaller one).
    fn settings(&self) -> serde_json::Value {
        json!({
            "images": self.images.as_ref().map(|p| p.display().to_string()),
            "dataset": self.dataset,
        })
    }

    fn load(&self) -> Result<Vec<(String, DynamicImage)>, CliError> {
        let mut out = Vec::new();
        match (&self.images, self.dataset.as_deref()) {
            (Some(dir), None) => {
                let files = v2l::codebook::ImageFiles::from_dir(dir).map_err(err)?;
                for p in files.0.iter().take(self.limit.unwrap_or(usize::MAX)) {
                    let rel = p.strip_prefix(dir).unwrap_or(p).display().to_string();
                    out.push((rel, open_image(p).map_err(err)?));
                }
            }
            (None, Some(d)) => {
                let (set, _) = open_dataset(d)?;
                for it in set
                    .items()
                    .into_iter()
                    .take(self.limit.unwrap_or(usize::MAX))
                {
                    out.push((it.path.clone(), set.load(&it).map_err(err)?));
                }
            }
            _ => return Err(CliError::usage("give --images DIR or --dataset NAME")),
        }
        if out.is_empty() {
            return Err(CliError::malformed("no images"));
        }
        Ok(out)
    }
}

impl crate::device::OnDevice for EvalRestoreArgs {
    fn run<B: Backend>(self, device: B::Device) -> Result<(), CliError> {
        let tasks = self
            .tasks
            .split(',')
            .map(|t| Task::parse(t.trim()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| CliError::usage(format!("--tasks: {e}")))?;
        let m = load::<B>(&self.model, &device, None)?;
        let images = self.set.load()?;
        let restorer = m.session().restorer(self.restore.options());
        let log_settings = merged(&[
            m.settings(&self.model)?,
            self.set.settings(),
            self.restore.settings(),
            json!({"lpips": self.lpips, "pyiqa_compat": self.pyiqa_compat}),
        ]);
        let mut log = crate::logs::open_log(&self.out.log, log_settings, self.out.new_log)?;
        log.set_provenance(m.provenance.clone());
        let lpips = if self.lpips {
            use v2l::metrics::lpips::{InputRange, Lpips, LpipsNet, ASSET};
            let w = crate::quality::cached_asset(ASSET, LpipsNet::Alex.asset_file())?;
            let range = if self.pyiqa_compat {
                InputRange::PyiqaDoubleRescale
            } else {
                InputRange::MinusOneOne
            };
            Some(
                Lpips::<B>::load(LpipsNet::Alex, &w, &device)
                    .map_err(err)?
                    .with_input_range(range),
            )
        } else {
            None
        };
        crate::progress::logged(&mut log, "restorations", |run| {
            restorer.evaluate(
                &images,
                &tasks,
                lpips.as_ref(),
                self.save_dir.as_deref(),
                run,
            )
        })
        .map_err(err)?;
        let notes = vec![
            format!(
                "{} images; mode {:?}, seed {}, 10 examples (noise 0.50 → 0.23), 2 tokens per call",
                images.len(),
                restorer.options.mode,
                restorer.options.seed
            ),
            "PSNR on the Y channel and SSIM (piq) of the decode against the clean tokenizer input"
                .into(),
            format!("models: {}", m.provenance),
            format!("log: {}", self.out.log.display()),
        ];
        emit(&restore_table(&log, &tasks, notes), &self.out)
    }
}

impl crate::device::OnDevice for EvalReconstructArgs {
    fn run<B: Backend>(self, device: B::Device) -> Result<(), CliError> {
        let c = &self.model.checkpoint;
        let opts = OpenOptions {
            image_size: Some(self.size),
            global_tokens: c.global_tokens,
            global_vocab: self.model.global_vocab.clone(),
            config: None,
            batch_size: Some(c.batch_size),
            precision: c.precision.into(),
        };
        let ckpt = crate::tokenize::resolve_checkpoint::<B>(&c.checkpoint, &device)?;
        let v2l = V2lTokenizer::<B>::open(&ckpt, &opts, &device).map_err(err)?;
        let images = self.set.load()?;
        let log_settings = merged(&[
            json!({
                "v2l": crate::logs::checkpoint_fingerprint(&ckpt, v2l.provenance())?,
                "global_vocab": crate::logs::fingerprint_opt(self.model.global_vocab.as_deref())?,
                "global_tokens": v2l.config().k,
                "precision": v2l::backend::Precision::from(c.precision).name(),
                "tool": crate::logs::tool(),
            }),
            self.set.settings(),
        ]);
        let mut log = crate::logs::open_log(&self.out.log, log_settings, self.out.new_log)?;
        log.set_provenance(json!({"v2l": c.checkpoint.display().to_string(), "v2l_provenance": v2l.provenance(), "image_size": self.size, "tool": format!("v2l-rs {}", env!("CARGO_PKG_VERSION"))}));
        let pb = bar((images.len()) as u64, "images");
        let mut t = run_reconstruct(&v2l, &images, &mut log, &mut |d, _| {
            pb.set_position(d as u64)
        })
        .map_err(err)?;
        pb.finish_and_clear();
        t.notes.push(format!(
            "model: {}, k = {}",
            c.checkpoint.display(),
            v2l.config().k
        ));
        emit(&t, &self.out)
    }
}

/// Which text task `eval` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextTask {
    /// Captioning.
    Caption,
    /// VQA.
    Vqa,
}

/// `EvalTextArgs` with its task.
#[derive(Debug)]
pub struct TextJob(pub EvalTextArgs, pub TextTask);

impl crate::device::OnDevice for TextJob {
    fn run<B: Backend>(self, device: B::Device) -> Result<(), CliError> {
        let TextJob(a, task) = self;
        let m = load::<B>(&a.model, &device, None)?;
        let text = std::fs::read_to_string(&a.set).map_err(|e| CliError::read(&a.set, &e))?;
        let base = a.set.parent().unwrap_or(Path::new(".")).to_path_buf();
        let load_img =
            move |p: &str| open_image(&base.join(p)).map_err(v2l::prompt::PromptError::from);
        let settings = TextTaskEval {
            shots: a.shots,
            k: a.k.unwrap_or(m.v2l.config().k),
            max_tokens: a.max_tokens,
        };
        let log_settings = merged(&[
            m.settings(&a.model)?,
            json!({
                "set": crate::logs::fingerprint(&a.set)?,
                "shots": a.shots,
                "max_tokens": a.max_tokens,
                "clip": crate::logs::fingerprint_opt(a.clip.as_deref())?,
                "bpe": crate::logs::fingerprint_opt(a.bpe.as_deref())?,
            }),
        ]);
        let mut log = crate::logs::open_log(&a.out.log, log_settings, a.out.new_log)?;
        log.set_provenance(m.provenance.clone());
        let pb = bar(0, "items");
        let mut progress = |d: usize, t: usize| {
            pb.set_length(t as u64);
            pb.set_position(d as u64);
        };
        let mut table = match task {
            TextTask::Caption => {
                let items: Vec<CaptionItem> =
                    serde_json::from_str(&text).map_err(|e| err(e).context(a.set.display()))?;
                let clip = match &a.clip {
                    Some(p) => {
                        let c = v2l::clip::Clip::<B>::load(p, &device).map_err(err)?;
                        let bpe = match &a.bpe {
                            Some(b) => b.clone(),
                            None => crate::quality::cached_asset(
                                "clip-bpe",
                                "bpe_simple_vocab_16e6.txt.gz",
                            )?,
                        };
                        Some((
                            c,
                            v2l::clip::ClipTokenizer::from_bpe_file(&bpe).map_err(err)?,
                        ))
                    }
                    None => None,
                };
                let scorer = clip.as_ref().map(|(c, t)| (c, t));
                m.session()
                    .caption(
                        &load_img,
                        &items,
                        settings,
                        scorer,
                        Run {
                            log: &mut log,
                            progress: &mut progress,
                        },
                    )
                    .map_err(err)?
            }
            TextTask::Vqa => {
                let items: Vec<VqaItem> =
                    serde_json::from_str(&text).map_err(|e| err(e).context(a.set.display()))?;
                m.session()
                    .vqa(
                        &load_img,
                        &items,
                        settings,
                        Run {
                            log: &mut log,
                            progress: &mut progress,
                        },
                    )
                    .map_err(err)?
            }
        };
        pb.finish_and_clear();
        table.notes.push(format!("models: {}", m.provenance));
        emit(&table, &a.out)
    }
}

/// A command that loads a checkpoint and runs on its `--device` in its
/// `--precision` (the tokenizer and task commands).
pub trait Job: crate::device::OnDevice {
    /// The checkpoint options (device, precision).
    fn checkpoint(&self) -> &CheckpointArgs;
}

macro_rules! job {
    ($($t:ty => |$a:ident| $e:expr),* $(,)?) => {
        $(impl Job for $t {
            fn checkpoint(&self) -> &CheckpointArgs {
                let $a = self;
                &$e
            }
        })*
    };
}

job!(
    ClassifyArgs => |a| a.model.checkpoint,
    CaptionArgs => |a| a.model.checkpoint,
    VqaArgs => |a| a.model.checkpoint,
    RestoreCmdArgs => |a| a.model.checkpoint,
    EvalFewshotArgs => |a| a.model.checkpoint,
    EvalRestoreArgs => |a| a.model.checkpoint,
    EvalReconstructArgs => |a| a.model.checkpoint,
    TextJob => |a| a.0.model.checkpoint,
    crate::args::EncodeArgs => |a| a.checkpoint,
    crate::args::ReconstructArgs => |a| a.checkpoint,
    crate::args::DecodeArgs => |a| a.checkpoint,
);

/// Run a checkpoint command on its device (Flex on the CPU).
pub fn run<J: Job>(job: J) -> Result<(), CliError> {
    let c = job.checkpoint();
    let (d, precision) = (c.device.device, c.precision.into());
    crate::device::dispatch(d, crate::device::CpuBackend::Flex, precision, job)
}

/// Run `v2l eval …`.
pub fn run_eval(cmd: EvalCommand) -> Result<(), CliError> {
    match cmd {
        EvalCommand::Fewshot(a) => run(a),
        EvalCommand::Restore(a) => run(a),
        EvalCommand::Reconstruct(a) => run(a),
        EvalCommand::Caption(a) => run(TextJob(a, TextTask::Caption)),
        EvalCommand::Vqa(a) => run(TextJob(a, TextTask::Vqa)),
    }
}

#[cfg(test)]
mod tests {
    use super::polarity_warning;
    use serde_json::json;

    #[test]
    fn a_dataset_of_the_other_polarity_than_training_is_warned_about() {
        let inv = json!({"data": "fashion-mnist:inverted"});
        let w = polarity_warning("fashion-mnist:test", &inv).unwrap_or_default();
        assert!(w.contains("--dataset fashion-mnist:test:inverted"), "{w}");
        assert!(polarity_warning("fashion-mnist:test:inverted", &inv).is_none());
        let plain = json!({"data": "fashion-mnist"});
        let w = polarity_warning("fashion-mnist:inverted", &plain).unwrap_or_default();
        assert!(w.contains("pass --dataset fashion-mnist "), "{w}");
        // Other datasets, bundles without a record, unparsable names: no word.
        assert!(polarity_warning("mnist", &inv).is_none());
        assert!(polarity_warning("fashion-mnist", &json!({})).is_none());
        assert!(polarity_warning("fashion-mnist", &json!({"data": "folder:/x"})).is_none());
    }
}
