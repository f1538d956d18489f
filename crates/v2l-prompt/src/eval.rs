//! The evaluation harness: resumable JSON-lines logs, Markdown tables laid
//! out like the paper's, and runners for few-shot classification,
//! restoration and reconstruction over image sets on disk.
//!
//! Every runner appends one JSON line per finished unit (an episode, an
//! image × task, an image) to its log, keyed; a rerun with the same log
//! skips the keys already there, so an interrupted evaluation resumes. The
//! tables are computed from the log, and each number carries its provenance
//! (count, settings) in the table's notes.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};

use burn::tensor::backend::Backend;
use image::{DynamicImage, RgbImage};
use serde_json::{json, Value};
use v2l_llm::tokenizer::LlmTokenizer;
use v2l_llm::Llama;
use v2l_metrics::accuracy::Accuracy;
use v2l_model::V2lTokenizer;

use crate::episodes::{ClassNames, Episode, Item};
use crate::error::{io, write_io, PromptError, Result};
use crate::fewshot::{classify, FewShotOptions, TextEpisode};
use crate::prompt::{visual_text, LabelledText};
use crate::restore::{RestoreOptions, Restorer, Task};

/// The `"format"` value of a log's settings line.
pub const LOG_FORMAT: &str = "v2l-eval-log/1";

/// What to do with a log that already exists when a run opens it with
/// settings ([`JsonlLog::open_with_settings`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExistingLog {
    /// Resume it if its settings are this run's; refuse otherwise.
    #[default]
    Resume,
    /// Start a new log: the old one is renamed to `<log>.old` (replacing an
    /// earlier `.old`).
    Replace,
}

/// An append-only JSON-lines log of finished units, keyed by `"key"`.
///
/// A log opened with [`JsonlLog::open_with_settings`] starts with a
/// settings line, `{"format": "v2l-eval-log/1", "settings": {…}}`, holding
/// everything that determines its records (model and LLM hashes, decoding,
/// seeds, episode files, tool version…); reopening it with other settings
/// is refused with [`PromptError::SettingsChanged`] naming the differences,
/// so a rerun can never mix records made with different settings.
#[derive(Debug)]
pub struct JsonlLog {
    path: PathBuf,
    records: BTreeMap<String, Value>,
    order: Vec<String>,
    provenance: Option<Value>,
    settings: Option<Value>,
}

impl JsonlLog {
    /// Open (or create) a log without checking settings. Complete lines are
    /// loaded; a final line cut short by an interruption is dropped (the
    /// file is rewritten without it, atomically, and the rerun redoes it).
    ///
    /// # Errors
    /// I/O errors; a complete line that is not a JSON object with a string
    /// `key` (naming the line).
    pub fn open(path: impl Into<PathBuf>) -> Result<Self> {
        let path = path.into();
        let mut records = BTreeMap::new();
        let mut order = Vec::new();
        let mut settings = None;
        if path.exists() {
            let text = std::fs::read_to_string(&path).map_err(io(&path))?;
            let complete = text.is_empty() || text.ends_with('\n');
            let lines: Vec<&str> = text.lines().collect();
            let mut kept = String::new();
            for (i, line) in lines.iter().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                let last = i + 1 == lines.len();
                let v: Value = match serde_json::from_str(line) {
                    Ok(v) => v,
                    Err(_) if last && !complete => break,
                    Err(e) => {
                        return Err(PromptError::Format {
                            path: path.clone(),
                            message: format!("line {}: {e}", i + 1),
                        })
                    }
                };
                kept.push_str(line);
                kept.push('\n');
                if i == 0 && v.get("format").and_then(Value::as_str) == Some(LOG_FORMAT) {
                    settings = Some(v.get("settings").cloned().unwrap_or(Value::Null));
                    continue;
                }
                let key = v
                    .get("key")
                    .and_then(Value::as_str)
                    .ok_or_else(|| PromptError::Format {
                        path: path.clone(),
                        message: format!("line {}: no string \"key\"", i + 1),
                    })?
                    .to_string();
                if !records.contains_key(&key) {
                    order.push(key.clone());
                }
                records.insert(key, v);
            }
            if !complete {
                write_atomic(&path, kept.as_bytes())?;
            }
        }
        Ok(Self {
            path,
            records,
            order,
            provenance: None,
            settings,
        })
    }

    /// Open (or create) a log whose records are determined by `settings`
    /// (a JSON object). A new or empty log gets a settings line; an
    /// existing one is resumed only if it recorded the same settings.
    ///
    /// # Errors
    /// As [`JsonlLog::open`]; [`PromptError::SettingsChanged`] when the log
    /// holds records and its settings differ from `settings` (or it has
    /// none recorded) and `existing` is [`ExistingLog::Resume`].
    pub fn open_with_settings(
        path: impl Into<PathBuf>,
        settings: Value,
        existing: ExistingLog,
    ) -> Result<Self> {
        let path = path.into();
        if existing == ExistingLog::Replace && path.exists() {
            let old = old_path(&path);
            std::fs::rename(&path, &old).map_err(write_io(&old))?;
        }
        let mut log = Self::open(&path)?;
        match &log.settings {
            Some(recorded) => {
                let differences = setting_differences(recorded, &settings);
                if !differences.is_empty() {
                    return Err(PromptError::SettingsChanged { path, differences });
                }
            }
            None if !log.is_empty() => {
                return Err(PromptError::SettingsChanged {
                    path,
                    differences: vec![format!(
                    "the log records no settings ({} records written before logs recorded them)",
                    log.len()
                )],
                })
            }
            None => {
                let line =
                    serde_json::to_string(&json!({"format": LOG_FORMAT, "settings": settings}))
                        .map_err(|e| PromptError::Format {
                            path: path.clone(),
                            message: e.to_string(),
                        })?;
                write_atomic(&path, format!("{line}\n").as_bytes())?;
                log.settings = Some(settings);
            }
        }
        Ok(log)
    }

    /// The settings the log recorded, if it was opened with settings or
    /// found a settings line.
    pub fn settings(&self) -> Option<&Value> {
        self.settings.as_ref()
    }

    /// Attach `provenance` (models, hashes, settings) to every record
    /// appended from now on, under `"provenance"`.
    pub fn set_provenance(&mut self, provenance: Value) {
        self.provenance = Some(provenance);
    }

    /// Whether `key` is finished.
    pub fn is_done(&self, key: &str) -> bool {
        self.records.contains_key(key)
    }

    /// The record of `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.records.get(key)
    }

    /// Records in the order they were first written.
    pub fn records(&self) -> impl Iterator<Item = &Value> {
        self.order.iter().filter_map(|k| self.records.get(k))
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Append a record (an object; `key` is added) and flush it to disk.
    /// The line is written with one `write` call, so an interruption leaves
    /// at most a cut-short last line, which [`JsonlLog::open`] drops.
    ///
    /// # Errors
    /// I/O errors; a value that is not an object.
    pub fn append(&mut self, key: &str, mut value: Value) -> Result<()> {
        let obj = value
            .as_object_mut()
            .ok_or_else(|| PromptError::InvalidInput("log records must be JSON objects".into()))?;
        obj.insert("key".into(), json!(key));
        if let Some(p) = &self.provenance {
            obj.entry("provenance").or_insert_with(|| p.clone());
        }
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(write_io(&self.path))?;
        let mut line = serde_json::to_string(&value).map_err(|e| PromptError::Format {
            path: self.path.clone(),
            message: e.to_string(),
        })?;
        line.push('\n');
        f.write_all(line.as_bytes())
            .and_then(|()| f.flush())
            .map_err(write_io(&self.path))?;
        if !self.records.contains_key(key) {
            self.order.push(key.to_string());
        }
        self.records.insert(key.to_string(), value);
        Ok(())
    }

    /// The log's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Where [`ExistingLog::Replace`] keeps the old log: `<log>.old`.
pub fn old_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(".old");
    PathBuf::from(s)
}

/// The settings that differ between a log's record and this run's, one
/// line each (`name: <in the log> → <now>`), nested objects named by dotted
/// paths; empty when they agree.
pub fn setting_differences(recorded: &Value, now: &Value) -> Vec<String> {
    fn walk(prefix: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
        match (a, b) {
            (Value::Object(x), Value::Object(y)) => {
                let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
                for k in keys {
                    let name = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(
                        &name,
                        x.get(k).unwrap_or(&Value::Null),
                        y.get(k).unwrap_or(&Value::Null),
                        out,
                    );
                }
            }
            _ if a != b => out.push(format!(
                "{}: {} in the log, {} now",
                if prefix.is_empty() {
                    "settings"
                } else {
                    prefix
                },
                short(a),
                short(b)
            )),
            _ => {}
        }
    }
    fn short(v: &Value) -> String {
        let s = v.to_string();
        if s.chars().count() > 80 {
            format!("{}…", s.chars().take(79).collect::<String>())
        } else {
            s
        }
    }
    let mut out = Vec::new();
    walk("", recorded, now, &mut out);
    out
}

/// Write `bytes` to `path` atomically ([`v2l_io::atomic`]).
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    v2l_io::atomic::write(path, bytes).map_err(write_io(path))
}

/// A Markdown table: a header column, value columns, and notes carrying the
/// provenance of the numbers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Table {
    /// Title line (`### …`).
    pub title: String,
    /// Column headers (the first is the row header's).
    pub columns: Vec<String>,
    /// Rows: the row header and one cell per remaining column.
    pub rows: Vec<Vec<String>>,
    /// Notes under the table (settings, counts, sources).
    pub notes: Vec<String>,
}

impl Table {
    /// Render as Markdown.
    pub fn to_markdown(&self) -> String {
        let mut s = format!("### {}\n\n", self.title);
        s.push_str(&format!("| {} |\n", self.columns.join(" | ")));
        s.push_str(&format!(
            "|{}\n",
            self.columns.iter().map(|_| "---|").collect::<String>()
        ));
        for r in &self.rows {
            let mut cells = r.clone();
            cells.resize(self.columns.len(), String::new());
            s.push_str(&format!("| {} |\n", cells.join(" | ")));
        }
        if !self.notes.is_empty() {
            s.push('\n');
            for n in &self.notes {
                s.push_str(&format!("- {n}\n"));
            }
        }
        s
    }
}

/// Where episode images come from.
pub trait ImageSource {
    /// The image of an episode item.
    ///
    /// # Errors
    /// A missing or unreadable image.
    fn load(&self, item: &Item) -> Result<DynamicImage>;
    /// A description for provenance.
    fn describe(&self) -> String;
}

/// Images under a root folder (`root/class/file`, the reference's layout).
#[derive(Debug, Clone)]
pub struct FolderImages(pub PathBuf);

impl ImageSource for FolderImages {
    fn load(&self, item: &Item) -> Result<DynamicImage> {
        let p = self.0.join(&item.path);
        v2l_model::tokenizer::open_image(&p).map_err(PromptError::from)
    }
    fn describe(&self) -> String {
        format!("folder {}", self.0.display())
    }
}

/// A built-in dataset; items are `label/index`.
#[derive(Debug, Clone)]
pub struct DatasetImages(pub v2l_assets::datasets::LabelledImages);

impl DatasetImages {
    /// Every image as an item `label/index`.
    pub fn items(&self) -> Vec<Item> {
        (0..self.0.len())
            .map(|i| Item {
                class: self.0.labels[i].to_string(),
                path: format!("{}/{i}", self.0.labels[i]),
            })
            .collect()
    }
}

impl ImageSource for DatasetImages {
    fn load(&self, item: &Item) -> Result<DynamicImage> {
        let bad =
            || PromptError::InvalidInput(format!("{}: no image {:?}", self.0.name, item.path));
        let index: usize = item
            .path
            .split_once('/')
            .and_then(|(_, i)| i.parse().ok())
            .ok_or_else(bad)?;
        let px = self.0.image(index).ok_or_else(bad)?.to_vec();
        image::GrayImage::from_raw(self.0.width as u32, self.0.height as u32, px)
            .map(DynamicImage::ImageLuma8)
            .ok_or_else(bad)
    }
    fn describe(&self) -> String {
        format!("dataset {} ({} images)", self.0.name, self.0.len())
    }
}

/// A progress callback: `(done, total)`.
pub type OnProgress<'a> = &'a mut dyn FnMut(usize, usize);

/// Where an evaluation run writes: its log (records are skipped when already
/// there) and its progress callback.
pub struct Run<'a> {
    /// The run's log.
    pub log: &'a mut JsonlLog,
    /// Called with `(done, total)` after each item.
    pub progress: OnProgress<'a>,
}

impl std::fmt::Debug for Run<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Run")
            .field("log", &self.log)
            .finish_non_exhaustive()
    }
}

/// The models an evaluation runs on: the V2L tokenizer, the frozen LLM and
/// its tokenizer. Its methods are the task runners; restoration runs through
/// [`Session::restorer`] and [`Restorer::evaluate`].
#[derive(Debug)]
pub struct Session<'a, B: Backend> {
    /// The V2L tokenizer.
    pub tokenizer: &'a V2lTokenizer<B>,
    /// The frozen LLM.
    pub llm: &'a Llama<B>,
    /// The LLM's tokenizer.
    pub llm_tokenizer: &'a LlmTokenizer,
}

// Manual impls: the derive would require `B: Clone`.
impl<B: Backend> Clone for Session<'_, B> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<B: Backend> Copy for Session<'_, B> {}

impl<'a, B: Backend> Session<'a, B> {
    /// A restorer over these models with `options`.
    pub fn restorer(&self, options: RestoreOptions) -> Restorer<'a, B> {
        Restorer {
            tokenizer: self.tokenizer,
            llm: self.llm,
            llm_tokenizer: self.llm_tokenizer,
            options,
        }
    }
}

/// Few-shot evaluation settings.
#[derive(Debug, Clone)]
pub struct FewShotEval {
    /// N (ways).
    pub way: usize,
    /// K (shots).
    pub shot: usize,
    /// Global tokens per image to try (the reference: 5 and 21).
    pub ks: Vec<usize>,
    /// Prompt and decoding options.
    pub options: FewShotOptions,
}

impl<B: Backend> Session<'_, B> {
    /// Run few-shot classification over `episodes`, logging one line per
    /// (k, episode) and returning the accuracy per k. Images are encoded once
    /// (at the largest k; the first k global ids are the k nearest).
    ///
    /// # Errors
    /// Unknown classes; images that cannot be loaded; model and context errors.
    pub fn fewshot(
        &self,
        images: &dyn ImageSource,
        names: &ClassNames,
        episodes: &[Episode],
        settings: &FewShotEval,
        run: Run<'_>,
    ) -> Result<BTreeMap<usize, Accuracy>> {
        let (v2l, llm, tok) = (self.tokenizer, self.llm, self.llm_tokenizer);
        let Run { log, progress } = run;
        let max_k = settings.ks.iter().copied().max().unwrap_or(0);
        if max_k == 0 || max_k > v2l.config().k {
            return Err(PromptError::InvalidInput(format!(
                "global token counts {:?} must be in 1..={} (the tokenizer's k)",
                settings.ks,
                v2l.config().k
            )));
        }
        // Every class must have a name before any image is encoded.
        for ep in episodes {
            for it in ep.support.iter().chain(std::iter::once(&ep.query)) {
                names.name(&it.class)?;
            }
        }
        let mut words: HashMap<String, Vec<String>> = HashMap::new();
        let total = episodes.len() * settings.ks.len();
        let mut done = 0;
        for (e, ep) in episodes.iter().enumerate() {
            for &k in &settings.ks {
                let key = format!("{}way-{}shot/k{k}/{e}", settings.way, settings.shot);
                done += 1;
                if log.is_done(&key) {
                    progress(done, total);
                    continue;
                }
                let all: Vec<&Item> = ep
                    .support
                    .iter()
                    .chain(std::iter::once(&ep.query))
                    .collect();
                for it in &all {
                    if !words.contains_key(&it.path) {
                        let w = global_words(v2l, &images.load(it)?)?;
                        words.insert(it.path.clone(), w);
                    }
                }
                let vis = |it: &Item| visual_text(&words[&it.path][..k]);
                let te = TextEpisode {
                    support: ep
                        .support
                        .iter()
                        .map(|s| {
                            Ok(LabelledText {
                                visual: vis(s),
                                label: names.name(&s.class)?.to_string(),
                            })
                        })
                        .collect::<Result<Vec<_>>>()?,
                    query_visual: vis(&ep.query),
                    target: names.name(&ep.query.class)?.to_string(),
                };
                let p = classify(llm, tok, &te, &settings.options)?;
                let mut record = json!({
                    "task": "fewshot", "way": settings.way, "shot": settings.shot, "k": k,
                    "episode": e, "query": ep.query.path, "target": p.target,
                    "prediction": p.text, "tokens": p.tokens, "correct": p.correct,
                    "prompt_tokens": p.prompt_tokens,
                });
                if !p.scores.is_empty() {
                    record["scores"] = json!(p.scores);
                }
                log.append(&key, record)?;
                progress(done, total);
            }
        }
        let mut acc: BTreeMap<usize, Accuracy> = BTreeMap::new();
        for r in log.records() {
            if r["task"] == "fewshot" && r["way"] == settings.way && r["shot"] == settings.shot {
                if let (Some(k), Some(c)) = (r["k"].as_u64(), r["correct"].as_bool()) {
                    acc.entry(k as usize).or_default().push(c);
                }
            }
        }
        Ok(acc)
    }
}

/// The few-shot table: rows k, one column per N-way K-shot setting, cells
/// accuracy in % with the episode count.
pub fn fewshot_table(
    results: &BTreeMap<(usize, usize), BTreeMap<usize, Accuracy>>,
    notes: Vec<String>,
) -> Table {
    let settings: Vec<(usize, usize)> = results.keys().copied().collect();
    let ks: std::collections::BTreeSet<usize> =
        results.values().flat_map(|m| m.keys().copied()).collect();
    let mut columns = vec!["global tokens k".to_string()];
    columns.extend(settings.iter().map(|(n, k)| format!("{n}-way {k}-shot")));
    let rows = ks
        .iter()
        .map(|&k| {
            let mut row = vec![k.to_string()];
            for s in &settings {
                row.push(match results[s].get(&k) {
                    Some(a) if a.total > 0 => format!("{:.1} (n={})", 100.0 * a.value(), a.total),
                    _ => "–".into(),
                });
            }
            row
        })
        .collect();
    Table {
        title: "Few-shot classification accuracy (%)".into(),
        columns,
        rows,
        notes,
    }
}

fn to_metric_image(im: &RgbImage) -> Result<v2l_metrics::Image> {
    let (w, h) = im.dimensions();
    Ok(v2l_metrics::Image::from_hwc_u8(
        im.as_raw(),
        h as usize,
        w as usize,
        3,
    )?)
}

/// The file stem of an image's restoration panels (`<dir>/<task>/<stem>.png`
/// as [`Restorer::evaluate`] writes them): the id with every character other than
/// ASCII letters, digits, `-` and `_` replaced by `_`.
pub fn panel_file_stem(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// PSNR (Y channel, as the reference's pyiqa setting) and SSIM of `b`
/// against `a`.
///
/// # Errors
/// Images of different sizes.
pub fn psnr_ssim(a: &RgbImage, b: &RgbImage) -> Result<(f64, f64)> {
    let (x, y) = (to_metric_image(a)?, to_metric_image(b)?);
    Ok((
        v2l_metrics::psnr::psnr(&x, &y, v2l_metrics::psnr::PsnrChannels::Y)?,
        v2l_metrics::ssim::ssim(&x, &y)?,
    ))
}

impl<B: Backend> Restorer<'_, B> {
    /// Run restorations of `images` for each task, logging one line per
    /// (task, image): PSNR (Y) and SSIM of the restored decode against the
    /// clean input, of the clean decode (the tokenizer's own ceiling), and LPIPS
    /// when a network is given. `save_dir` receives `task/<id>.png` panels
    /// (clean | corrupted | clean decode | restored) and the clean inputs and
    /// restored decodes alone under `task/clean/` and `task/restored/` (for
    /// `v2l fid`).
    ///
    /// # Errors
    /// As [`Restorer::restore`]; I/O errors writing images.
    pub fn evaluate(
        &self,
        images: &[(String, DynamicImage)],
        tasks: &[Task],
        lpips: Option<&v2l_metrics::lpips::Lpips<B>>,
        save_dir: Option<&Path>,
        run: Run<'_>,
    ) -> Result<()> {
        let restorer = self;
        let Run { log, progress } = run;
        let total = images.len() * tasks.len();
        let mut done = 0;
        for &task in tasks {
            for (i, (id, img)) in images.iter().enumerate() {
                done += 1;
                let key = format!("restore/{}/{id}", task.name());
                if log.is_done(&key) {
                    progress(done, total);
                    continue;
                }
                let others: Vec<DynamicImage> = images
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != i)
                    .take(restorer.options.rates.len())
                    .map(|(_, (_, im))| im.clone())
                    .collect();
                let r = restorer.restore(img, &others, task)?;
                let (psnr, ssim) = psnr_ssim(&r.clean_image, &r.restored_decode)?;
                let (psnr_c, ssim_c) = psnr_ssim(&r.clean_image, &r.clean_decode)?;
                let lp = match lpips {
                    Some(net) => net
                        .distance_images(
                            std::slice::from_ref(&r.clean_image),
                            std::slice::from_ref(&r.restored_decode),
                        )
                        .map_err(|e| PromptError::InvalidInput(format!("LPIPS: {e}")))?
                        .first()
                        .map(|&v| f64::from(v)),
                    None => None,
                };
                if let Some(dir) = save_dir {
                    let d = dir.join(task.name());
                    std::fs::create_dir_all(&d).map_err(write_io(&d))?;
                    let (w, h) = r.clean_image.dimensions();
                    let mut panel = RgbImage::new(4 * w, h);
                    for (p, im) in [
                        &r.clean_image,
                        &r.corrupted_image,
                        &r.clean_decode,
                        &r.restored_decode,
                    ]
                    .iter()
                    .enumerate()
                    {
                        image::imageops::replace(&mut panel, *im, i64::from(p as u32 * w), 0);
                    }
                    let safe = panel_file_stem(id);
                    let save = |im: &RgbImage, p: PathBuf| -> Result<()> {
                        if let Some(parent) = p.parent() {
                            std::fs::create_dir_all(parent).map_err(write_io(parent))?;
                        }
                        let mut png = Vec::new();
                        im.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
                            .map_err(|e| {
                                PromptError::InvalidInput(format!("{}: {e}", p.display()))
                            })?;
                        write_atomic(&p, &png)
                    };
                    save(&panel, d.join(format!("{safe}.png")))?;
                    save(&r.clean_image, d.join("clean").join(format!("{safe}.png")))?;
                    save(
                        &r.restored_decode,
                        d.join("restored").join(format!("{safe}.png")),
                    )?;
                }
                let changed = r
                    .restored
                    .iter()
                    .zip(&r.clean)
                    .filter(|(a, b)| a != b)
                    .count();
                log.append(
                    &key,
                    json!({
                        "task": task.name(), "image": id, "psnr_y": psnr, "ssim": ssim, "lpips": lp,
                        "clean_decode_psnr_y": psnr_c, "clean_decode_ssim": ssim_c,
                        "calls": r.calls.len(), "tokens_differing_from_clean": changed,
                        "mode": restorer.options.mode, "seed": restorer.options.seed,
                    }),
                )?;
                progress(done, total);
            }
        }
        Ok(())
    }
}

/// Mean of a numeric field over the log's records matching `filter`.
pub fn mean_of(
    log: &JsonlLog,
    field: &str,
    filter: impl Fn(&Value) -> bool,
) -> Option<(f64, usize)> {
    let v: Vec<f64> = log
        .records()
        .filter(|r| filter(r))
        .filter_map(|r| r[field].as_f64())
        .collect();
    (!v.is_empty()).then(|| (v.iter().sum::<f64>() / v.len() as f64, v.len()))
}

/// The restoration table: rows tasks, columns PSNR (Y) and SSIM of the
/// restored decode, and of the clean decode for reference.
pub fn restore_table(log: &JsonlLog, tasks: &[Task], notes: Vec<String>) -> Table {
    let rows = tasks
        .iter()
        .map(|t| {
            let f = |field: &str| {
                mean_of(log, field, |r| r["task"] == t.name())
                    .map_or("–".to_string(), |(m, _)| format!("{m:.3}"))
            };
            let n = mean_of(log, "psnr_y", |r| r["task"] == t.name()).map_or(0, |(_, n)| n);
            vec![
                t.name().to_string(),
                f("psnr_y"),
                f("ssim"),
                f("clean_decode_psnr_y"),
                f("clean_decode_ssim"),
                n.to_string(),
            ]
        })
        .collect();
    Table {
        title: "Restoration by a frozen LLM".into(),
        columns: [
            "task",
            "PSNR-Y ↑",
            "SSIM ↑",
            "clean decode PSNR-Y",
            "clean decode SSIM",
            "images",
        ]
        .map(String::from)
        .to_vec(),
        rows,
        notes,
    }
}

/// Reconstruct `images` (encode + decode), logging PSNR (Y) and SSIM per
/// image and the local ids, and return the table with codebook usage
/// ("effective tokens": distinct local ids over all images).
///
/// # Errors
/// Model errors.
pub fn run_reconstruct<B: Backend>(
    v2l: &V2lTokenizer<B>,
    images: &[(String, DynamicImage)],
    log: &mut JsonlLog,
    progress: OnProgress<'_>,
) -> Result<Table> {
    let n = v2l.image_size()?;
    let prep = v2l_model::preprocess::TokenizerPreprocess::new(n as u32);
    for (i, (id, img)) in images.iter().enumerate() {
        let key = format!("reconstruct/{n}/{id}");
        if !log.is_done(&key) {
            let clean = prep
                .resize_crop(&img.to_rgb8())
                .map_err(|e| PromptError::InvalidInput(e.to_string()))?;
            let t = v2l.encode_images(std::slice::from_ref(img))?;
            let rec = v2l
                .decode_to_images(&t)?
                .into_iter()
                .next()
                .ok_or_else(|| PromptError::InvalidInput("nothing decoded".into()))?;
            let (psnr, ssim) = psnr_ssim(&clean, &rec)?;
            log.append(
                &key,
                json!({"task": "reconstruct", "size": n, "image": id, "psnr_y": psnr, "ssim": ssim,
                       "local_ids": t.local_ids[0], "grid": t.grid}),
            )?;
        }
        progress(i + 1, images.len());
    }
    let same = |r: &Value| r["task"] == "reconstruct" && r["size"] == n;
    let ids: Vec<u32> = log
        .records()
        .filter(|r| same(r))
        .flat_map(|r| {
            r["local_ids"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_u64())
                        .map(|x| x as u32)
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        })
        .collect();
    let usage = v2l_metrics::usage::codebook_usage(ids, v2l.config().n_local)?;
    let cell =
        |field: &str| mean_of(log, field, same).map_or("–".into(), |(m, _)| format!("{m:.3}"));
    let count = mean_of(log, "psnr_y", same).map_or(0, |(_, c)| c);
    Ok(Table {
        title: format!("Reconstruction at {n}×{n}"),
        columns: [
            "setting",
            "PSNR-Y ↑",
            "SSIM ↑",
            "effective tokens",
            "images",
        ]
        .map(String::from)
        .to_vec(),
        rows: vec![vec![
            format!("{n} px"),
            cell("psnr_y"),
            cell("ssim"),
            usage.used.to_string(),
            count.to_string(),
        ]],
        notes: vec![format!("log: {}", log.path().display())],
    })
}

/// One captioned image of a caption set (`[{"image": …, "captions": […]}]`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub struct CaptionItem {
    /// Image path (relative to the set's folder).
    pub image: String,
    /// Reference captions.
    pub captions: Vec<String>,
}

/// One VQA question (`[{"image", "question", "answers": [10 answers]}]`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub struct VqaItem {
    /// Image path.
    pub image: String,
    /// The question.
    pub question: String,
    /// Human answers (10 in VQA v2).
    pub answers: Vec<String>,
}

/// Settings of the caption and VQA runners.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextTaskEval {
    /// In-context examples (the first items of the set; not scored).
    pub shots: usize,
    /// Global tokens per image.
    pub k: usize,
    /// Most tokens generated per answer.
    pub max_tokens: usize,
}

/// An image's global words (all k of the tokenizer, nearest first).
///
/// # Errors
/// A tokenizer without global strings; model errors.
pub fn global_words<B: Backend>(
    v2l: &V2lTokenizer<B>,
    image: &DynamicImage,
) -> Result<Vec<String>> {
    let t = v2l.encode_images(std::slice::from_ref(image))?;
    t.global_words
        .and_then(|w| w.into_iter().next())
        .ok_or_else(|| {
            PromptError::InvalidInput(
                "the tokenizer has no global strings (pass the global vocabulary)".into(),
            )
        })
}

fn words_of<B: Backend>(
    v2l: &V2lTokenizer<B>,
    load: &dyn Fn(&str) -> Result<DynamicImage>,
    path: &str,
    k: usize,
) -> Result<String> {
    let w = global_words(v2l, &load(path)?)?;
    Ok(visual_text(&w[..k.min(w.len())]))
}

/// A full CLIP (both towers) and its tokenizer, for CLIP scores.
pub type ClipScorer<'a, B> = (&'a v2l_clip::Clip<B>, &'a v2l_clip::ClipTokenizer);

impl<B: Backend> Session<'_, B> {
    /// Few-shot captioning over a caption set: the first `shots` items are the
    /// examples (with their first caption), every later item is captioned and
    /// logged. Returns the table with BLEU-4 and CIDEr-D (pycocoevalcap
    /// conventions, captions PTB-tokenised) over the logged items, and the CLIP
    /// score of the generated captions when a CLIP is given
    /// (`100 · max(cos, 0)` averaged, as torchmetrics).
    ///
    /// # Errors
    /// Fewer items than `shots + 1`; model, image and metric errors.
    pub fn caption(
        &self,
        load: &dyn Fn(&str) -> Result<DynamicImage>,
        items: &[CaptionItem],
        settings: TextTaskEval,
        clip: Option<ClipScorer<'_, B>>,
        run: Run<'_>,
    ) -> Result<Table> {
        let (v2l, llm, tok) = (self.tokenizer, self.llm, self.llm_tokenizer);
        let Run { log, progress } = run;
        use crate::caption::{caption_prompt, generate_answer, CaptionExample};
        if items.len() <= settings.shots || items.iter().any(|i| i.captions.is_empty()) {
            return Err(PromptError::InvalidInput(format!(
                "a caption set needs more than {} items, each with a caption",
                settings.shots
            )));
        }
        let mut examples = Vec::new();
        for it in &items[..settings.shots] {
            examples.push(CaptionExample {
                visual: words_of(v2l, load, &it.image, settings.k)?,
                caption: it.captions[0].clone(),
            });
        }
        let queries = &items[settings.shots..];
        for (i, it) in queries.iter().enumerate() {
            let key = format!("caption/k{}/{}", settings.k, it.image);
            if !log.is_done(&key) {
                let vis = words_of(v2l, load, &it.image, settings.k)?;
                let prompt = caption_prompt(tok, &examples, &vis)?;
                let caption = generate_answer(llm, tok, &prompt, settings.max_tokens)?;
                let clip_score = match clip {
                    Some((c, ct)) => {
                        let img = load(&it.image)?;
                        let iv = c.encode_images(std::slice::from_ref(&img), 1)?;
                        let tv = c.encode_texts(
                            ct,
                            std::slice::from_ref(&caption),
                            v2l_clip::Truncation::Truncate,
                            1,
                        )?;
                        let host = |t: burn::tensor::Tensor<B, 2>| -> Result<Vec<Vec<f32>>> {
                            let v = t.into_data().to_vec::<f32>().map_err(|e| {
                                PromptError::InvalidInput(format!("reading CLIP embeddings: {e:?}"))
                            })?;
                            Ok(vec![v])
                        };
                        Some(v2l_metrics::clip_score::clip_score(&host(iv)?, &host(tv)?)?)
                    }
                    None => None,
                };
                log.append(
                &key,
                json!({"task": "caption", "k": settings.k, "image": it.image, "caption": caption,
                       "references": it.captions, "prompt_tokens": prompt.len(),
                       "clip_score": clip_score}),
            )?;
            }
            progress(i + 1, queries.len());
        }
        let recs: Vec<&Value> = log
            .records()
            .filter(|r| r["task"] == "caption" && r["k"] == settings.k)
            .collect();
        let cands: Vec<String> = recs
            .iter()
            .map(|r| r["caption"].as_str().unwrap_or("").to_string())
            .collect();
        let refs: Vec<Vec<String>> = recs
            .iter()
            .map(|r| {
                r["references"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|s| s.as_str().map(String::from))
                            .collect()
                    })
                    .unwrap_or_default()
            })
            .collect();
        use v2l_metrics::caption::{bleu, cider_d, Tokenization};
        let b = bleu(&cands, &refs, Tokenization::Ptb)?;
        let c = cider_d(&cands, &refs, Tokenization::Ptb)?;
        let cs = mean_of(log, "clip_score", |r| {
            r["task"] == "caption" && r["k"] == settings.k
        })
        .map_or("–".to_string(), |(m, _)| format!("{m:.2}"));
        Ok(Table {
            title: "Few-shot captioning".into(),
            columns: ["setting", "BLEU-4 ↑", "CIDEr-D ↑", "CLIP score ↑", "images"]
                .map(String::from)
                .to_vec(),
            rows: vec![vec![
                format!("{}-shot, k = {}", settings.shots, settings.k),
                format!("{:.2}", 100.0 * b.bleu[3]),
                format!("{:.2}", 100.0 * c.score),
                cs,
                cands.len().to_string(),
            ]],
            notes: vec![
            "prompts are v2l-rs's design (the reference has no captioning code); see docs/tasks.md"
                .into(),
            "BLEU-4 and CIDEr-D as pycocoevalcap computes them on PTB-style tokens, ×100".into(),
            format!("log: {}", log.path().display()),
        ],
        })
    }
}

impl<B: Backend> Session<'_, B> {
    /// Few-shot VQA over a question set: the first `shots` items are examples
    /// (with their first answer), the rest are answered and scored with the
    /// standard VQA accuracy (answer normalisation, min(#humans/3, 1) averaged
    /// over the 10 leave-one-out subsets).
    ///
    /// # Errors
    /// Fewer items than `shots + 1`; model, image and metric errors.
    pub fn vqa(
        &self,
        load: &dyn Fn(&str) -> Result<DynamicImage>,
        items: &[VqaItem],
        settings: TextTaskEval,
        run: Run<'_>,
    ) -> Result<Table> {
        let (v2l, llm, tok) = (self.tokenizer, self.llm, self.llm_tokenizer);
        let Run { log, progress } = run;
        use crate::caption::{generate_answer, vqa_prompt, VqaExample};
        if items.len() <= settings.shots || items.iter().any(|i| i.answers.is_empty()) {
            return Err(PromptError::InvalidInput(format!(
                "a VQA set needs more than {} items, each with answers",
                settings.shots
            )));
        }
        let mut examples = Vec::new();
        for it in &items[..settings.shots] {
            examples.push(VqaExample {
                visual: words_of(v2l, load, &it.image, settings.k)?,
                question: it.question.clone(),
                answer: it.answers[0].clone(),
            });
        }
        let queries = &items[settings.shots..];
        for (i, it) in queries.iter().enumerate() {
            let key = format!("vqa/k{}/{}/{}", settings.k, it.image, it.question);
            if !log.is_done(&key) {
                let vis = words_of(v2l, load, &it.image, settings.k)?;
                let prompt = vqa_prompt(tok, &examples, &vis, &it.question)?;
                let answer = generate_answer(llm, tok, &prompt, settings.max_tokens)?;
                let acc = v2l_metrics::vqa::vqa_accuracy(&answer, &it.answers)?;
                log.append(
                &key,
                json!({"task": "vqa", "k": settings.k, "image": it.image, "question": it.question,
                       "answer": answer, "answers": it.answers, "accuracy": acc}),
            )?;
            }
            progress(i + 1, queries.len());
        }
        let (mean, n) = mean_of(log, "accuracy", |r| {
            r["task"] == "vqa" && r["k"] == settings.k
        })
        .unwrap_or((f64::NAN, 0));
        Ok(Table {
            title: "Few-shot VQA".into(),
            columns: ["setting", "VQA accuracy ↑", "questions"]
                .map(String::from)
                .to_vec(),
            rows: vec![vec![
                format!("{}-shot, k = {}", settings.shots, settings.k),
                format!("{:.2}", 100.0 * mean),
                n.to_string(),
            ]],
            notes: vec![
                "prompts are v2l-rs's design (the reference has no VQA code); see docs/tasks.md"
                    .into(),
                format!("log: {}", log.path().display()),
            ],
        })
    }
}
