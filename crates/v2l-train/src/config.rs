//! The training configuration: a TOML file whose keys are the reference's
//! own argument names (`step4_training_v2l_tokenizer.py`, `Run.sh`), with
//! `Run.sh`'s values as defaults, plus `max_steps`, `seed`, `[data]`,
//! `[codebooks]` and `global_embedder`.
//!
//! Unknown keys are refused with their names before any work starts, and a
//! resumed run may change only `max_steps`.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use v2l_assets::datasets::DatasetSpec;
use v2l_model::DdConfig;

use crate::error::{Result, TrainError};
use crate::schedule::LrSchedule;

/// Where training images come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataConfig {
    /// `fashion-mnist`, `mnist` (either may end in `:inverted`: grey levels
    /// 255 − v) or `folder`.
    pub dataset: String,
    /// The folder of images (for `folder`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
}

/// The two codebooks: files made by `v2l codebook`, or random rows of the
/// given counts (tests).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodebooksConfig {
    /// The local codebook file (row i = LLM token i).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local: Option<PathBuf>,
    /// The global codebook file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub global: Option<PathBuf>,
    /// Rows of a random local codebook instead of a file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub random_local: Option<usize>,
    /// Rows of a random global codebook instead of a file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub random_global: Option<usize>,
}

/// What embeds images for the global branch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GlobalEmbedder {
    /// A CLIP vision tower from this weight file (`clip:<path>`).
    Clip(PathBuf),
    /// ConSE (EfficientNet-Lite0 + all-MiniLM-L6-v2) from the asset cache
    /// with its default settings (`conse`).
    Conse,
    /// No global branch from images (`none`).
    None,
}

/// A training run's configuration (reference argument names).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Images per step (`--batch_size`, `Run.sh`: 8).
    pub batch_size: usize,
    /// Tokenizer input side in pixels (`--image_size`: 128).
    pub image_size: usize,
    /// Epochs of the schedule (`--epochs`: 100).
    pub epochs: usize,
    /// Epochs of linear warmup (`--warmup_epochs`: 5).
    pub warmup_epochs: usize,
    /// Peak learning rate, absolute (`--lr`: 4.5e-4).
    pub lr: f64,
    /// Final learning rate of the cosine (`--min_lr`: 0).
    pub min_lr: f64,
    /// Weight of `qloss` (`--rate_q`: 1).
    pub rate_q: f64,
    /// Weight of the LPIPS loss (`--rate_p`: 0.1).
    pub rate_p: f64,
    /// Factor on the adaptive GAN weight (`--rate_d`: 0.75).
    pub rate_d: f64,
    /// The GAN terms start when the iteration (from 0) exceeds this
    /// (`--disc_start`: 10000).
    pub disc_start: u64,
    /// Code width (`--embed_dim`: 768).
    pub embed_dim: usize,
    /// 1: the local codebook goes through the trainable projector
    /// (`--use_cblinear`: 1).
    pub use_cblinear: u8,
    /// 1: the decoder cross-attends to the global codes
    /// (`--use_crossatt_dec`: 1).
    pub use_crossatt_dec: u8,
    /// 1: the local codebook itself trains (`--tuning_codebook`: 0).
    pub tuning_codebook: u8,
    /// 1: the projector trains (the reference); 0: it stays at its seeded
    /// random initialisation (the frozen-projector baseline). Only with
    /// `use_cblinear = 1`.
    pub tuning_projector: u8,
    /// Gradient accumulation steps (`--accum_iter`: 1).
    pub accum_iter: usize,
    /// How `accum_iter > 1` combines gradients: `"faithful"` (the
    /// reference: `zero_grad` every iteration, so a step uses only its own
    /// iteration's gradients) or `"mean"` (corrected: their mean).
    pub accum_mode: String,
    /// Stop after this many iterations (the schedule stays the epoch-based
    /// one); may change on resume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_steps: Option<u64>,
    /// Seed of initialisation, data order and per-step randomness.
    pub seed: u64,
    /// Global tokens per image (the reference's `forward(..., k=21)`).
    pub k: usize,
    /// LPIPS lin-layer dropout during training: `true` as the reference
    /// (faithful), `false` for a deterministic perceptual loss.
    pub lpips_dropout: bool,
    /// L2-normalise the encoder features before the local search. The
    /// reference does it only when `embed_dim` is 768; `true` keeps that
    /// for every width (v2l-rs's default for new models).
    pub normalize_features: bool,
    /// Weight of the code-usage entropy term (corrected `code-entropy`
    /// mode against local-code collapse; 0, the reference, turns it off).
    /// See [`v2l_model::CodeEntropy`] and docs/training.md.
    pub code_entropy_weight: f64,
    /// Softmax temperature of the entropy term, in squared-distance units.
    pub code_entropy_temperature: f64,
    /// Nearest codebook rows per position that the entropy term spreads
    /// probability over.
    pub code_entropy_candidates: usize,
    /// Base channels of the patch discriminator (reference: 64).
    pub disc_ndf: usize,
    /// Write a checkpoint every this many iterations (and at the end).
    pub checkpoint_every: u64,
    /// Checkpoints kept (the newest).
    pub keep_checkpoints: usize,
    /// Measure the fixed validation batch every this many iterations.
    pub val_every: u64,
    /// Images in the fixed validation batch.
    pub val_images: usize,
    /// `clip:<path>`, `conse` or `none`.
    pub global_embedder: String,
    /// The encoder / decoder (`vqgan_configs/v2l.yaml`).
    pub ddconfig: DdConfig,
    /// Training images.
    pub data: DataConfig,
    /// The codebooks.
    pub codebooks: CodebooksConfig,
}

impl Default for TrainConfig {
    /// `Run.sh` and the reference's argument defaults; the `ddconfig` of
    /// `vqgan_configs/v2l.yaml`; Fashion-MNIST; no codebooks (they must be
    /// named).
    fn default() -> Self {
        Self {
            batch_size: 8,
            image_size: 128,
            epochs: 100,
            warmup_epochs: 5,
            lr: 4.5e-4,
            min_lr: 0.0,
            rate_q: 1.0,
            rate_p: 0.1,
            rate_d: 0.75,
            disc_start: 10_000,
            embed_dim: 768,
            use_cblinear: 1,
            use_crossatt_dec: 1,
            tuning_codebook: 0,
            tuning_projector: 1,
            accum_iter: 1,
            accum_mode: "faithful".into(),
            max_steps: None,
            seed: 0,
            k: 21,
            lpips_dropout: true,
            normalize_features: true,
            code_entropy_weight: 0.0,
            code_entropy_temperature: 0.01,
            code_entropy_candidates: 32,
            disc_ndf: 64,
            checkpoint_every: 1000,
            keep_checkpoints: 3,
            val_every: 500,
            val_images: 8,
            global_embedder: "none".into(),
            ddconfig: v2l_model::ModelConfig::official().ddconfig,
            data: DataConfig {
                dataset: "fashion-mnist".into(),
                path: None,
            },
            codebooks: CodebooksConfig::default(),
        }
    }
}

/// The dotted key paths of a TOML table's leaves.
fn key_paths(value: &toml::Value) -> BTreeSet<String> {
    let mut leaves = Vec::new();
    flatten(value, "", &mut leaves);
    leaves.into_iter().map(|(k, _)| k).collect()
}

/// The keys a configuration knows (every one of the default's, plus the
/// optional ones).
fn known_keys() -> BTreeSet<String> {
    let mut keys = toml::Value::try_from(TrainConfig::default())
        .map(|v| key_paths(&v))
        .unwrap_or_default();
    for k in [
        "max_steps",
        "data.path",
        "codebooks.local",
        "codebooks.global",
        "codebooks.random_local",
        "codebooks.random_global",
    ] {
        keys.insert(k.to_string());
    }
    keys
}

impl TrainConfig {
    /// Parse a TOML text: the defaults, overridden by the text's keys.
    ///
    /// # Errors
    /// [`TrainError::Config`] for TOML that does not parse, unknown keys
    /// (all named), values of the wrong type, or an invalid configuration
    /// ([`validate`](Self::validate)).
    pub fn from_toml(text: &str) -> Result<Self> {
        let given: toml::Value =
            toml::from_str(text).map_err(|e| TrainError::Config(format!("not valid TOML: {e}")))?;
        let unknown: Vec<String> = key_paths(&given)
            .difference(&known_keys())
            .cloned()
            .collect();
        if !unknown.is_empty() {
            return Err(TrainError::Config(format!(
                "unknown key(s): {} (`v2l train --print-default-config` lists every key)",
                unknown.join(", ")
            )));
        }
        let mut merged = toml::Value::try_from(Self::default())
            .map_err(|e| TrainError::Config(e.to_string()))?;
        merge(&mut merged, given);
        let config: Self = merged
            .try_into()
            .map_err(|e: toml::de::Error| TrainError::Config(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// Check what can be checked before any work starts.
    ///
    /// # Errors
    /// [`TrainError::Config`] naming the first problem.
    pub fn validate(&self) -> Result<()> {
        let bad = |msg: String| Err(TrainError::Config(msg));
        if self.batch_size == 0 || self.accum_iter == 0 || self.epochs == 0 {
            return bad("batch_size, accum_iter and epochs must be at least 1".into());
        }
        if self.warmup_epochs > self.epochs {
            return bad(format!(
                "warmup_epochs = {} exceeds epochs = {}",
                self.warmup_epochs, self.epochs
            ));
        }
        if !(self.lr.is_finite() && self.lr > 0.0 && self.min_lr.is_finite() && self.min_lr >= 0.0)
        {
            return bad(format!(
                "lr = {} and min_lr = {} must be finite, lr > 0, min_lr ≥ 0",
                self.lr, self.min_lr
            ));
        }
        for (name, v) in [
            ("rate_q", self.rate_q),
            ("rate_p", self.rate_p),
            ("rate_d", self.rate_d),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return bad(format!("{name} = {v} must be finite and ≥ 0"));
            }
        }
        if !(self.code_entropy_weight.is_finite() && self.code_entropy_weight >= 0.0) {
            return bad(format!(
                "code_entropy_weight = {} must be finite and ≥ 0",
                self.code_entropy_weight
            ));
        }
        if self.code_entropy_weight > 0.0 {
            let t = self.code_entropy_temperature;
            if !(t.is_finite() && t > 0.0) {
                return bad(format!(
                    "code_entropy_temperature = {t} must be finite and > 0"
                ));
            }
            let m = self.code_entropy_candidates;
            if m < 2 || m > v2l_quant_max_top_k() {
                return bad(format!(
                    "code_entropy_candidates = {m} must be in 2..={}",
                    v2l_quant_max_top_k()
                ));
            }
        }
        for (name, v) in [
            ("use_cblinear", self.use_cblinear),
            ("use_crossatt_dec", self.use_crossatt_dec),
            ("tuning_codebook", self.tuning_codebook),
            ("tuning_projector", self.tuning_projector),
        ] {
            if v > 1 {
                return bad(format!("{name} = {v} must be 0 or 1"));
            }
        }
        let factor = 1usize << self.ddconfig.ch_mult.len().saturating_sub(1);
        if self.image_size == 0 || !self.image_size.is_multiple_of(factor) {
            return bad(format!(
                "image_size = {} cannot pass {} downsampling steps (needs a multiple of {factor})",
                self.image_size,
                self.ddconfig.ch_mult.len().saturating_sub(1)
            ));
        }
        match self.data.dataset.as_str() {
            "folder" if self.data.path.is_some() => {}
            "folder" => return bad("data.dataset = \"folder\" needs data.path".into()),
            other => match DatasetSpec::parse(other) {
                Ok(spec) if spec.split.is_none() => {}
                _ => {
                    return bad(format!(
                        "data.dataset = {other:?}: expected \"fashion-mnist\", \"mnist\" \
                         (either with \":inverted\"; the split is chosen by the trainer) or \"folder\""
                    ))
                }
            },
        }
        let c = &self.codebooks;
        for (name, file, rows) in [
            ("local", &c.local, c.random_local),
            ("global", &c.global, c.random_global),
        ] {
            match (file, rows) {
                (Some(_), None) | (None, Some(1..)) => {}
                (Some(_), Some(_)) => {
                    return bad(format!(
                        "codebooks: give either {name} or random_{name}, not both"
                    ))
                }
                _ => {
                    return bad(format!(
                        "codebooks.{name} (a codebook file) or codebooks.random_{name} (≥ 1 rows) is required"
                    ))
                }
            }
        }
        self.global_embedder()?;
        if !matches!(self.accum_mode.as_str(), "faithful" | "mean") {
            return bad(format!(
                "accum_mode = {:?}: expected \"faithful\" or \"mean\"",
                self.accum_mode
            ));
        }
        let n_global = c.random_global.unwrap_or(usize::MAX);
        if self.k == 0 || self.k > n_global || self.k > v2l_quant_max_top_k() {
            return bad(format!(
                "k = {} global tokens must be in 1..={}",
                self.k,
                n_global.min(v2l_quant_max_top_k())
            ));
        }
        if self.disc_ndf == 0 || self.checkpoint_every == 0 || self.keep_checkpoints == 0 {
            return bad(
                "disc_ndf, checkpoint_every and keep_checkpoints must be at least 1".into(),
            );
        }
        if self.val_every == 0 || self.val_images == 0 {
            return bad("val_every and val_images must be at least 1".into());
        }
        let model = v2l_model::ModelConfig {
            image_size: v2l_model::ImageSize::Square(self.image_size),
            ddconfig: self.ddconfig.clone(),
            embed_dim: self.embed_dim,
            n_local: c.random_local.unwrap_or(1),
            // A codebook file's row count is checked against `k` when the
            // file is read; here only the random count is known.
            n_global: c.random_global.unwrap_or(self.k.max(1)),
            k: self.k.min(c.random_global.unwrap_or(self.k)),
            vl: None,
            use_projector: self.use_cblinear == 1,
            normalize_features: self.normalize_features,
            cross_attn_heads: 8,
            cross_attn_dim_head: None,
            codebook_loss_weight: v2l_model::config::OFFICIAL_CODEBOOK_LOSS_WEIGHT,
            fixed_global_ids: false,
            cross_attention: self.use_crossatt_dec == 1,
        };
        model
            .validate()
            .map_err(|e| TrainError::Config(e.to_string()))
    }

    /// The parsed `global_embedder`.
    ///
    /// # Errors
    /// Not `none`, `conse` or `clip:<path>`.
    pub fn global_embedder(&self) -> Result<GlobalEmbedder> {
        match self.global_embedder.as_str() {
            "none" => Ok(GlobalEmbedder::None),
            "conse" => Ok(GlobalEmbedder::Conse),
            s => match s.strip_prefix("clip:") {
                Some(p) if !p.is_empty() => Ok(GlobalEmbedder::Clip(PathBuf::from(p))),
                _ => Err(TrainError::Config(format!(
                    "global_embedder = {s:?}: expected \"none\", \"conse\" or \"clip:<path>\""
                ))),
            },
        }
    }

    /// The parsed `accum_mode` (`faithful` unless `mean`).
    pub fn accum_mode(&self) -> crate::trainer::AccumMode {
        if self.accum_mode == "mean" {
            crate::trainer::AccumMode::Mean
        } else {
            crate::trainer::AccumMode::Faithful
        }
    }

    /// The learning-rate schedule.
    pub fn schedule(&self) -> LrSchedule {
        LrSchedule {
            lr: self.lr,
            min_lr: self.min_lr,
            warmup_epochs: self.warmup_epochs as f64,
            epochs: self.epochs as f64,
        }
    }

    /// The keys whose values differ from `other`'s, except `max_steps` (the
    /// only key a resumed run may change).
    pub fn differing_keys(&self, other: &Self) -> Vec<String> {
        let flat = |c: &Self| -> Vec<(String, String)> {
            let mut out = Vec::new();
            if let Ok(v) = toml::Value::try_from(c) {
                flatten(&v, "", &mut out);
            }
            out
        };
        let a = flat(self);
        let b = flat(other);
        let keys: BTreeSet<&String> = a.iter().chain(&b).map(|(k, _)| k).collect();
        let get = |m: &[(String, String)], k: &str| {
            m.iter().find(|(x, _)| x == k).map(|(_, v)| v.clone())
        };
        keys.into_iter()
            .filter(|k| k.as_str() != "max_steps")
            .filter(|k| get(&a, k) != get(&b, k))
            .cloned()
            .collect()
    }

    /// The default configuration as commented TOML (`v2l train
    /// --print-default-config`): every key with its value and meaning; the
    /// codebooks, which have no default, are commented out.
    pub fn default_config_text() -> String {
        let body = toml::to_string(&Self::default()).unwrap_or_default();
        let mut out = String::from(
            "# v2l train configuration: the reference's argument names, Run.sh's values.\n",
        );
        let mut section = String::new();
        // The default has no codebooks: their table is written at the end.
        for line in body.lines().filter(|l| *l != "[codebooks]") {
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                section = format!("{name}.");
            }
            let key = line.split_once(" = ").map(|(k, _)| format!("{section}{k}"));
            match key.and_then(|k| KEY_NOTES.iter().find(|(n, _)| *n == k)) {
                Some((_, note)) => out.push_str(&format!("{line}  # {note}\n")),
                None => out.push_str(&format!("{line}\n")),
            }
        }
        out.push_str(
            "\n[codebooks]\n# local = \"local.safetensors\"    # v2l codebook local (row i = LLM token i)\n\
             # global = \"global.safetensors\"  # v2l codebook filter\n\
             # random_local = 300               # or random rows (tests)\n\
             # random_global = 40\n",
        );
        out
    }

    /// The configuration as TOML (what a run directory stores).
    ///
    /// # Errors
    /// Serialisation failure (not expected for valid values).
    pub fn to_toml(&self) -> Result<String> {
        toml::to_string(self).map_err(|e| TrainError::Config(e.to_string()))
    }
}

/// One line on each key of the default configuration.
const KEY_NOTES: &[(&str, &str)] = &[
    ("batch_size", "images per step"),
    ("image_size", "tokenizer input side (px)"),
    ("epochs", "epochs of the schedule"),
    ("warmup_epochs", "linear warmup epochs"),
    ("lr", "peak learning rate (absolute)"),
    ("min_lr", "end of the cosine"),
    ("rate_q", "weight of qloss"),
    ("rate_p", "weight of LPIPS-VGG"),
    ("rate_d", "factor on the adaptive GAN weight"),
    (
        "disc_start",
        "GAN terms once the iteration (from 0) exceeds this",
    ),
    ("embed_dim", "code width"),
    (
        "use_cblinear",
        "1: trainable projector on the local codebook",
    ),
    (
        "use_crossatt_dec",
        "1: decoder cross-attends to the global codes",
    ),
    ("tuning_codebook", "1: the local codebook itself trains"),
    (
        "tuning_projector",
        "1: the projector trains (reference); 0: frozen at its random init",
    ),
    ("accum_iter", "gradient accumulation steps"),
    (
        "accum_mode",
        "faithful (reference: a step uses its own iteration's gradients) | mean",
    ),
    ("seed", "initialisation, data order, per-step randomness"),
    ("k", "global tokens per image"),
    (
        "lpips_dropout",
        "true as the reference; false: deterministic LPIPS",
    ),
    (
        "normalize_features",
        "L2-normalise encoder features (reference: only at embed_dim 768)",
    ),
    (
        "code_entropy_weight",
        "0 as the reference; > 0: corrected code-entropy mode against local-code collapse",
    ),
    (
        "code_entropy_temperature",
        "softmax temperature of the entropy term (squared-distance units)",
    ),
    (
        "code_entropy_candidates",
        "nearest rows per position in the entropy term",
    ),
    ("disc_ndf", "discriminator base channels"),
    ("checkpoint_every", "iterations between checkpoints"),
    ("keep_checkpoints", "newest checkpoints kept"),
    ("val_every", "iterations between validation measurements"),
    ("val_images", "images in the fixed validation batch"),
    ("global_embedder", "\"none\", \"conse\" or \"clip:<path>\""),
    (
        "data.dataset",
        "fashion-mnist | mnist (either + \":inverted\") | folder (with path = \"…\")",
    ),
    (
        "ddconfig.resolution",
        "only places attention blocks (the reference's quirk)",
    ),
];

/// `over`'s keys replace `base`'s, recursively into tables.
fn merge(base: &mut toml::Value, over: toml::Value) {
    match (base, over) {
        (toml::Value::Table(b), toml::Value::Table(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(slot) if slot.is_table() && v.is_table() => merge(slot, v),
                    _ => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, o) => *b = o,
    }
}

/// `(dotted key, value as TOML text)` for every leaf.
fn flatten(value: &toml::Value, prefix: &str, out: &mut Vec<(String, String)>) {
    if let toml::Value::Table(t) = value {
        for (k, v) in t {
            let path = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            if v.is_table() {
                flatten(v, &path, out);
            } else {
                out.push((path, v.to_string()));
            }
        }
    }
}

/// The largest `k` the global search supports.
fn v2l_quant_max_top_k() -> usize {
    v2l_model::MAX_GLOBAL_K
}
