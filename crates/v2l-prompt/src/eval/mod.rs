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

mod fewshot;
mod reconstruct;
mod records;
mod restore;
mod text;

pub use fewshot::{fewshot_table, FewShotEval};
pub use reconstruct::run_reconstruct;
pub use records::{
    mean_count, CaptionRecord, FewShotRecord, LogRecord, ReconstructRecord, RestoreRecord,
    VqaRecord,
};
pub use restore::{mean_of, panel_file_stem, psnr_ssim, restore_table};
pub use text::{global_words, CaptionItem, ClipScorer, TextTaskEval, VqaItem};
