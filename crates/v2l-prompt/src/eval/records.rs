//! The typed records of an evaluation log: one struct per task, written with
//! [`JsonlLog::append_record`] and read back with [`JsonlLog::records_of`].
//!
//! On disk each record is one JSON object with the struct's fields plus
//! `"task"`, `"key"` and (when set) `"provenance"`; reading ignores the
//! fields a struct does not name, so a log stays readable when records gain
//! fields.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::JsonlLog;
use crate::error::{PromptError, Result};
use crate::restore::{ExampleMode, Task};

/// A record type of the evaluation log.
pub trait LogRecord: Serialize + DeserializeOwned {
    /// The `"task"` value of records of this type (a type whose records
    /// carry their own task overrides [`LogRecord::task`] and
    /// [`LogRecord::is_task`]).
    const TASK: &'static str;
    /// The `"task"` value this record is written with.
    fn task(&self) -> &str {
        Self::TASK
    }
    /// Whether a record written with `task` is of this type.
    fn is_task(task: &str) -> bool {
        task == Self::TASK
    }
}

/// One few-shot classification episode at one k.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FewShotRecord {
    /// N (classes per episode).
    pub way: usize,
    /// K (support images per class).
    pub shot: usize,
    /// Global tokens per image.
    pub k: usize,
    /// Index of the episode in the episode list.
    pub episode: usize,
    /// The query image's path or dataset entry.
    pub query: String,
    /// The query's class name.
    pub target: String,
    /// The decoded prediction.
    pub prediction: String,
    /// The generated token ids.
    pub tokens: Vec<u32>,
    /// Whether the prediction is the target.
    pub correct: bool,
    /// The prompt's length in tokens.
    pub prompt_tokens: usize,
    /// Per-class scores (calibrated decoding only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scores: Vec<(String, f64)>,
}

impl LogRecord for FewShotRecord {
    const TASK: &'static str = "fewshot";
}

/// One image × restoration task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RestoreRecord {
    /// The task's name ([`Task::name`]).
    pub task: String,
    /// The image's id.
    pub image: String,
    /// PSNR (dB, BT.601 Y) of the restored decode against the clean input.
    pub psnr_y: f64,
    /// SSIM of the restored decode.
    pub ssim: f64,
    /// LPIPS (AlexNet) of the restored decode, when measured.
    pub lpips: Option<f64>,
    /// PSNR-Y of the clean tokens' decode (the tokenizer's ceiling).
    pub clean_decode_psnr_y: f64,
    /// SSIM of the clean tokens' decode.
    pub clean_decode_ssim: f64,
    /// LLM calls made.
    pub calls: usize,
    /// Restored tokens that differ from the clean ones.
    pub tokens_differing_from_clean: usize,
    /// How the in-context examples were made.
    pub mode: ExampleMode,
    /// The RNG seed.
    pub seed: u64,
}

impl LogRecord for RestoreRecord {
    const TASK: &'static str = "restore";
    fn task(&self) -> &str {
        &self.task
    }
    fn is_task(task: &str) -> bool {
        Task::ALL.iter().any(|t| t.name() == task)
    }
}

/// One image's reconstruction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReconstructRecord {
    /// The tokenizer's input size.
    pub size: usize,
    /// The image's id.
    pub image: String,
    /// PSNR (dB, BT.601 Y) of the decode against the tokenizer's input.
    pub psnr_y: f64,
    /// SSIM of the decode.
    pub ssim: f64,
    /// The local token ids.
    pub local_ids: Vec<u32>,
    /// The token grid `[h, w]`.
    pub grid: [usize; 2],
}

impl LogRecord for ReconstructRecord {
    const TASK: &'static str = "reconstruct";
}

/// One captioned image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaptionRecord {
    /// Global tokens per image.
    pub k: usize,
    /// The image's path in the set.
    pub image: String,
    /// The generated caption.
    pub caption: String,
    /// The reference captions.
    pub references: Vec<String>,
    /// The prompt's length in tokens.
    pub prompt_tokens: usize,
    /// CLIP score of the caption, when a CLIP model was given.
    pub clip_score: Option<f64>,
}

impl LogRecord for CaptionRecord {
    const TASK: &'static str = "caption";
}

/// One answered question.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VqaRecord {
    /// Global tokens per image.
    pub k: usize,
    /// The image's path in the set.
    pub image: String,
    /// The question.
    pub question: String,
    /// The generated answer.
    pub answer: String,
    /// The human answers.
    pub answers: Vec<String>,
    /// VQA accuracy of the answer.
    pub accuracy: f64,
}

impl LogRecord for VqaRecord {
    const TASK: &'static str = "vqa";
}

impl JsonlLog {
    /// Append a typed record under `key` ([`JsonlLog::append`] with the
    /// record's fields and its `"task"`).
    ///
    /// # Errors
    /// As [`JsonlLog::append`].
    pub fn append_record<R: LogRecord>(&mut self, key: &str, record: &R) -> Result<()> {
        let mut value = serde_json::to_value(record).map_err(|e| PromptError::Format {
            path: self.path().to_path_buf(),
            message: format!("record {key}: {e}"),
        })?;
        if let Some(obj) = value.as_object_mut() {
            obj.insert("task".into(), json!(record.task()));
        }
        self.append(key, value)
    }

    /// The records of type `R` (those whose `"task"` is `R`'s), in the order
    /// they were first written.
    ///
    /// # Errors
    /// [`PromptError::Format`] naming the key of a record of `R`'s task
    /// that does not have `R`'s fields.
    pub fn records_of<R: LogRecord>(&self) -> Result<Vec<R>> {
        self.records()
            .filter(|r| r["task"].as_str().is_some_and(R::is_task))
            .map(|r| {
                R::deserialize(r).map_err(|e| PromptError::Format {
                    path: self.path().to_path_buf(),
                    message: format!("record {}: {e}", r["key"].as_str().unwrap_or("?")),
                })
            })
            .collect()
    }
}

/// Mean and count of `values`; `None` when there are none.
pub fn mean_count(values: impl IntoIterator<Item = f64>) -> Option<(f64, usize)> {
    let (sum, n) = values
        .into_iter()
        .fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| (sum / n as f64, n))
}
