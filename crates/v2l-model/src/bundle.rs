//! Model bundles: a folder with everything needed to encode and decode.
//!
//! ```text
//! BUNDLE/
//!   config.json                  ModelConfig fields + "format", "format_version", "provenance"
//!   model.safetensors            the tokenizer's parameters in the reference's names (f32)
//!   local_codebook.safetensors   "embeddings" [n_local, D]  (f16 when that is lossless, else f32)
//!   global_codebook.safetensors  "embeddings" [n_global, D] (same rule)
//!   global_codebook.json         {"strings": [...]} when the global words are known
//!   clip_vision.safetensors      the CLIP vision tower in OpenAI names under "visual." (same rule;
//!                                only when `vl.kind` is "clip")
//! ```
//!
//! A ConSE vision-language model (`vl.kind` "conse") stores nothing: its
//! EfficientNet-Lite0, MiniLM and class names are registry assets read from
//! the asset cache when the bundle is loaded.
//!
//! A bundle written from a model loads back to identical values: f16 is
//! only used where every value survives the round trip.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use burn::tensor::backend::Backend;
use half::f16;
use safetensors::tensor::{Dtype, TensorView};
use serde::{Deserialize, Serialize};
use v2l_io::tensors::{SafetensorsFile, TensorSource};
use v2l_io::ReadError;

use crate::config::ModelConfig;
use crate::error::{ModelError, Result};
use crate::import::load_clip;
use crate::model::V2lModel;

/// The `format` value of a bundle's `config.json`.
pub const BUNDLE_FORMAT: &str = "v2l-bundle";
/// The bundle layout version this crate writes and reads.
pub const BUNDLE_VERSION: u32 = 1;

const MODEL_FILE: &str = "model.safetensors";
const LOCAL_FILE: &str = "local_codebook.safetensors";
const GLOBAL_FILE: &str = "global_codebook.safetensors";
const WORDS_FILE: &str = "global_codebook.json";
const CLIP_FILE: &str = "clip_vision.safetensors";
const CONFIG_FILE: &str = "config.json";
const CLIP_BUNDLE_PREFIX: &str = "visual.";
const LOCAL_KEY: &str = "tok_embeddings.weight";
const GLOBAL_KEY: &str = "tok_embeddings_global.weight";

#[derive(Serialize, Deserialize)]
struct BundleConfig {
    format: String,
    format_version: u32,
    #[serde(flatten)]
    model: ModelConfig,
    #[serde(default)]
    provenance: serde_json::Value,
}

#[derive(Serialize, Deserialize)]
struct Words {
    strings: Vec<String>,
}

/// Whether a folder looks like a bundle (has `config.json` and
/// `model.safetensors`).
pub fn is_bundle(path: &Path) -> bool {
    path.is_dir() && path.join(CONFIG_FILE).is_file() && path.join(MODEL_FILE).is_file()
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ModelError + '_ {
    move |source| ModelError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn f16_lossless(values: &[f32]) -> bool {
    values
        .iter()
        .all(|&v| f16::from_f32(v).to_f32().to_bits() == v.to_bits())
}

/// One tensor ready to be written.
struct Out {
    name: String,
    shape: Vec<usize>,
    dtype: Dtype,
    bytes: Vec<u8>,
}

impl Out {
    fn new(name: String, shape: Vec<usize>, values: &[f32], allow_f16: bool) -> Self {
        if allow_f16 && f16_lossless(values) {
            let bytes = values
                .iter()
                .flat_map(|&v| f16::from_f32(v).to_le_bytes())
                .collect();
            Self {
                name,
                shape,
                dtype: Dtype::F16,
                bytes,
            }
        } else {
            let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
            Self {
                name,
                shape,
                dtype: Dtype::F32,
                bytes,
            }
        }
    }
}

fn write_safetensors(path: &Path, tensors: &[Out]) -> Result<()> {
    let err = |m: String| ModelError::Write {
        path: path.to_path_buf(),
        message: m,
    };
    let views = tensors
        .iter()
        .map(|t| {
            TensorView::new(t.dtype, t.shape.clone(), &t.bytes)
                .map(|v| (t.name.clone(), v))
                .map_err(|e| err(e.to_string()))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut meta = HashMap::new();
    meta.insert("format".to_string(), "pt".to_string());
    // Serialised in memory, then written through a temporary file and a
    // rename (v2l_io::atomic): a killed write never leaves half a file.
    let bytes = safetensors::serialize(views, Some(meta)).map_err(|e| err(e.to_string()))?;
    v2l_io::atomic::write(path, &bytes).map_err(|e| err(e.to_string()))
}

/// Write named f32 tensors (state-dict names, PyTorch layout) to a
/// safetensors file.
///
/// # Errors
/// I/O failures, inconsistent shapes.
pub fn write_named_safetensors(path: &Path, tensors: &[v2l_nn::NamedTensor]) -> Result<()> {
    let out: Vec<Out> = tensors
        .iter()
        .map(|(name, shape, values)| Out::new(name.clone(), shape.clone(), values, false))
        .collect();
    write_safetensors(path, &out)
}

/// Write named tensors rounded to f16 (state-dict names, PyTorch layout)
/// to a safetensors file: half the size of
/// [`write_named_safetensors`], at f16's precision (a relative rounding
/// error of at most 2⁻¹¹ per value; magnitudes above 65504 are an error).
///
/// # Errors
/// I/O failures, inconsistent shapes, values that f16 cannot hold.
pub fn write_named_safetensors_f16(path: &Path, tensors: &[v2l_nn::NamedTensor]) -> Result<()> {
    let out = tensors
        .iter()
        .map(|(name, shape, values)| {
            if let Some(v) = values.iter().find(|v| !f16::from_f32(**v).is_finite()) {
                return Err(ModelError::Write {
                    path: path.to_path_buf(),
                    message: format!("{name}: {v} does not fit in f16"),
                });
            }
            let rounded: Vec<f32> = values.iter().map(|&v| f16::from_f32(v).to_f32()).collect();
            Ok(Out::new(name.clone(), shape.clone(), &rounded, true))
        })
        .collect::<Result<Vec<Out>>>()?;
    write_safetensors(path, &out)
}

/// What to put in a bundle besides the model.
#[derive(Default)]
pub struct BundleExtras<'a> {
    /// The CLIP vision tower's weights to copy: a source and the prefix of
    /// its OpenAI-named keys (`global_encoder.` in an official checkpoint).
    pub clip: Option<(&'a dyn TensorSource, &'a str)>,
    /// The global codebook's strings (one per row).
    pub global_words: Option<&'a [String]>,
    /// Free-form provenance (source file, hash, tool).
    pub provenance: serde_json::Value,
}

impl std::fmt::Debug for BundleExtras<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BundleExtras")
            .field(
                "clip",
                &self.clip.map(|(s, p)| (s.describe().to_string(), p)),
            )
            .field("global_words", &self.global_words.map(<[String]>::len))
            .field("provenance", &self.provenance)
            .finish()
    }
}

/// Write `model` (and the extras) as a bundle into `dir` (created if
/// needed; existing bundle files are overwritten).
///
/// # Errors
/// The model has a CLIP tower but no CLIP source was given; wrong word
/// count; I/O failures.
pub fn write_bundle<B: Backend>(
    dir: impl AsRef<Path>,
    model: &V2lModel<B>,
    extras: &BundleExtras<'_>,
) -> Result<()> {
    let dir = dir.as_ref();
    let config = model.config();
    if config.clip_vision().is_some() && extras.clip.is_none() {
        return Err(ModelError::InvalidInput(
            "the model has a CLIP tower; pass its source to copy it into the bundle".into(),
        ));
    }
    if let Some(w) = extras.global_words {
        if w.len() != config.n_global {
            return Err(ModelError::InvalidInput(format!(
                "{} global words for a global codebook of {} rows",
                w.len(),
                config.n_global
            )));
        }
    }
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let mut model_tensors = Vec::new();
    let mut local = None;
    let mut global = None;
    for (name, shape, values) in model.named_tensors()? {
        match name.as_str() {
            LOCAL_KEY => local = Some(Out::new("embeddings".into(), shape, &values, true)),
            GLOBAL_KEY => global = Some(Out::new("embeddings".into(), shape, &values, true)),
            _ => model_tensors.push(Out::new(name, shape, &values, false)),
        }
    }
    let (Some(local), Some(global)) = (local, global) else {
        return Err(ModelError::Backend(
            "the model lacks a codebook parameter".into(),
        ));
    };
    write_safetensors(&dir.join(MODEL_FILE), &model_tensors)?;
    write_safetensors(&dir.join(LOCAL_FILE), &[local])?;
    write_safetensors(&dir.join(GLOBAL_FILE), &[global])?;
    if let Some((source, prefix)) = extras.clip {
        let mut outs = Vec::new();
        for key in source.keys() {
            if let Some(rest) = key.strip_prefix(prefix) {
                let (shape, values) = source.read_f32(&key)?;
                outs.push(Out::new(
                    format!("{CLIP_BUNDLE_PREFIX}{rest}"),
                    shape,
                    &values,
                    true,
                ));
            }
        }
        if outs.is_empty() {
            return Err(ModelError::InvalidInput(format!(
                "{}: no tensors under {prefix:?} to copy as the CLIP tower",
                source.describe()
            )));
        }
        write_safetensors(&dir.join(CLIP_FILE), &outs)?;
    }
    let words_path = dir.join(WORDS_FILE);
    match extras.global_words {
        Some(w) => {
            let text = serde_json::to_string(&Words {
                strings: w.to_vec(),
            })
            .map_err(|e| ModelError::Backend(e.to_string()))?;
            v2l_io::atomic::write(&words_path, text.as_bytes()).map_err(io(&words_path))?;
        }
        None => {
            if words_path.exists() {
                std::fs::remove_file(&words_path).map_err(io(&words_path))?;
            }
        }
    }
    let bc = BundleConfig {
        format: BUNDLE_FORMAT.into(),
        format_version: BUNDLE_VERSION,
        model: config.clone(),
        provenance: extras.provenance.clone(),
    };
    let text = serde_json::to_string_pretty(&bc).map_err(|e| ModelError::Backend(e.to_string()))?;
    let cpath = dir.join(CONFIG_FILE);
    // The configuration last: a folder without it is not a bundle.
    v2l_io::atomic::write(&cpath, text.as_bytes()).map_err(io(&cpath))?;
    Ok(())
}

/// The model file with the two codebook files mapped to their state-dict
/// names.
struct BundleSource {
    name: String,
    model: SafetensorsFile,
    local: SafetensorsFile,
    global: SafetensorsFile,
}

impl BundleSource {
    fn route(&self, key: &str) -> (&SafetensorsFile, String) {
        match key {
            LOCAL_KEY => (&self.local, "embeddings".into()),
            GLOBAL_KEY => (&self.global, "embeddings".into()),
            _ => (&self.model, key.to_string()),
        }
    }
}

impl TensorSource for BundleSource {
    fn describe(&self) -> &str {
        &self.name
    }

    fn keys(&self) -> Vec<String> {
        let mut k = self.model.keys();
        if self.local.shape("embeddings").is_some() {
            k.push(LOCAL_KEY.into());
        }
        if self.global.shape("embeddings").is_some() {
            k.push(GLOBAL_KEY.into());
        }
        k
    }

    fn shape(&self, key: &str) -> Option<Vec<usize>> {
        let (f, k) = self.route(key);
        f.shape(&k)
    }

    fn read_f32(&self, key: &str) -> std::result::Result<(Vec<usize>, Vec<f32>), ReadError> {
        let (f, k) = self.route(key);
        f.read_f32(&k)
    }
}

/// An opened bundle folder.
pub struct Bundle {
    dir: PathBuf,
    config: ModelConfig,
    provenance: serde_json::Value,
    source: BundleSource,
    clip: Option<SafetensorsFile>,
    words: Option<Vec<String>>,
}

impl std::fmt::Debug for Bundle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bundle")
            .field("dir", &self.dir)
            .field("config", &self.config)
            .field("has_clip", &self.clip.is_some())
            .field("words", &self.words.as_ref().map(Vec::len))
            .finish()
    }
}

impl Bundle {
    /// Open a bundle folder and check its `config.json`.
    ///
    /// # Errors
    /// Missing files, a `format` other than `v2l-bundle`, a newer
    /// `format_version`, an invalid configuration, a word list of the wrong
    /// length.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let cpath = dir.join(CONFIG_FILE);
        let text = std::fs::read_to_string(&cpath).map_err(io(&cpath))?;
        let bc: BundleConfig = serde_json::from_str(&text).map_err(|e| ModelError::Json {
            path: cpath.clone(),
            message: e.to_string(),
        })?;
        if bc.format != BUNDLE_FORMAT || bc.format_version > BUNDLE_VERSION {
            return Err(ModelError::Json {
                path: cpath,
                message: format!(
                    "format {:?} version {} is not a {BUNDLE_FORMAT} of version ≤ {BUNDLE_VERSION}",
                    bc.format, bc.format_version
                ),
            });
        }
        bc.model.validate()?;
        let source = BundleSource {
            name: dir.display().to_string(),
            model: SafetensorsFile::open(dir.join(MODEL_FILE))?,
            local: SafetensorsFile::open(dir.join(LOCAL_FILE))?,
            global: SafetensorsFile::open(dir.join(GLOBAL_FILE))?,
        };
        let clip_path = dir.join(CLIP_FILE);
        let clip = if bc.model.clip_vision().is_some() {
            Some(SafetensorsFile::open(&clip_path)?)
        } else {
            None
        };
        let wpath = dir.join(WORDS_FILE);
        let words = if wpath.is_file() {
            let text = std::fs::read_to_string(&wpath).map_err(io(&wpath))?;
            let w: Words = serde_json::from_str(&text).map_err(|e| ModelError::Json {
                path: wpath.clone(),
                message: e.to_string(),
            })?;
            if w.strings.len() != bc.model.n_global {
                return Err(ModelError::Json {
                    path: wpath,
                    message: format!(
                        "{} strings for a global codebook of {} rows",
                        w.strings.len(),
                        bc.model.n_global
                    ),
                });
            }
            Some(w.strings)
        } else {
            None
        };
        Ok(Self {
            dir: dir.to_path_buf(),
            config: bc.model,
            provenance: bc.provenance,
            source,
            clip,
            words,
        })
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The configuration.
    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// The recorded provenance.
    pub fn provenance(&self) -> &serde_json::Value {
        &self.provenance
    }

    /// The global codebook's strings, if stored.
    pub fn global_words(&self) -> Option<&[String]> {
        self.words.as_deref()
    }

    /// Load the model (with its image tower: the bundle's CLIP tower, or
    /// ConSE from the asset cache) using `config` (normally
    /// [`config`](Self::config), possibly with another `k` or image size).
    ///
    /// # Errors
    /// [`ModelError::Weights`] listing every problem; CLIP errors; ConSE
    /// assets missing from the cache.
    pub fn load<B: Backend>(
        &self,
        config: &ModelConfig,
        device: &B::Device,
    ) -> Result<V2lModel<B>> {
        let model = V2lModel::from_source(&self.source, "", config, device)?;
        match (&self.clip, &config.vl) {
            (Some(clip), _) => {
                let (tower, vc) =
                    load_clip(clip, CLIP_BUNDLE_PREFIX, config.clip_vision(), device)?;
                model.with_clip(tower, vc)
            }
            (None, Some(vl @ v2l_vl::VlConfig::Conse(_))) => {
                let (tower, vc) = v2l_vl::Vl::<B>::from_config(vl, device)?.into_image_tower()?;
                model.with_image_tower(tower, vc)
            }
            _ => Ok(model),
        }
    }
}
