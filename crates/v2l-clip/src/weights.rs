//! Reading CLIP weights: safetensors and `.pth` sources, the OpenAI and HF
//! layouts, and configuration inference.
//!
//! Every tower is built from *canonical* tensors named and shaped as in
//! OpenAI's `clip/model.py` (`conv1.weight`, `transformer.resblocks.0.attn.in_proj_weight`,
//! `proj`, …). A [`Layout`] maps a canonical name to the file's own tensors:
//! the OpenAI layout under any prefix (`visual.`, `global_encoder.`,
//! `state_dict.global_encoder.`, …), or the HF `CLIPModel` layout, where the
//! fused `in_proj` is the concatenation of `q_proj`, `k_proj`, `v_proj` and the
//! projections are stored transposed. Errors name the file's key.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::config::{
    Activation, ClipConfig, TextConfig, TextPooling, VisionConfig, LAYER_NORM_EPS,
};
use crate::error::{ClipError, Result};

pub use v2l_io::tensors::{
    open_tensors as open_source, SafetensorsFile, ShardedSafetensors, TensorSource,
};

use v2l_nn::load::transpose;

/// The HF `config.json` beside a weight file (same folder), if any.
pub fn hf_config_path(path: &Path) -> Option<PathBuf> {
    let dir = if path.is_dir() { path } else { path.parent()? };
    let p = dir.join("config.json");
    p.is_file().then_some(p)
}

/// Which tower a canonical tensor belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tower {
    /// The image tower.
    Vision,
    /// The text tower.
    Text,
}

impl Tower {
    fn name(self) -> &'static str {
        match self {
            Tower::Vision => "vision",
            Tower::Text => "text",
        }
    }
}

/// How a file names the canonical tensors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// OpenAI `clip/model.py` naming. `vision` is the prefix of the visual
    /// tower's keys (`"visual."`, `"global_encoder."`, …), `text` the prefix
    /// of `token_embedding.weight` etc. (usually `""`); `None` = tower absent.
    OpenAi {
        /// Prefix of the vision keys.
        vision: Option<String>,
        /// Prefix of the text keys.
        text: Option<String>,
    },
    /// HF `transformers` `CLIPModel` naming under `prefix` (usually `""`).
    Hf {
        /// Common prefix.
        prefix: String,
        /// Whether `vision_model.*` is present.
        vision: bool,
        /// Whether `text_model.*` is present.
        text: bool,
    },
}

impl Layout {
    /// Detect the layout from the tensor names. Fails when nothing matches or
    /// when several prefixes match the same tower (pass a layout explicitly).
    pub fn detect(source: &dyn TensorSource) -> Result<Self> {
        let keys: BTreeSet<String> = source.keys().into_iter().collect();
        let prefixes = |suffix: &str, also: &[&str]| -> Vec<String> {
            keys.iter()
                .filter_map(|k| k.strip_suffix(suffix))
                .filter(|p| p.is_empty() || p.ends_with('.'))
                .filter(|p| also.iter().all(|a| keys.contains(&format!("{p}{a}"))))
                .map(str::to_string)
                .collect()
        };
        let one = |mut v: Vec<String>, what: &str| -> Result<Option<String>> {
            match v.len() {
                0 => Ok(None),
                1 => Ok(v.pop()),
                _ => Err(ClipError::UnknownLayout {
                    file: source.describe().to_string(),
                    reason: format!("several {what} prefixes {v:?}; pass the layout explicitly"),
                }),
            }
        };
        let hf_v = one(
            prefixes("vision_model.embeddings.patch_embedding.weight", &[]),
            "HF vision",
        )?;
        let hf_t = one(
            prefixes("text_model.embeddings.token_embedding.weight", &[]),
            "HF text",
        )?;
        if hf_v.is_some() || hf_t.is_some() {
            let prefix = hf_v.clone().or(hf_t.clone()).unwrap_or_default();
            return Ok(Layout::Hf {
                prefix,
                vision: hf_v.is_some(),
                text: hf_t.is_some(),
            });
        }
        let oa_v = one(
            prefixes("conv1.weight", &["class_embedding", "positional_embedding"]),
            "OpenAI vision",
        )?;
        let oa_t = one(
            prefixes(
                "token_embedding.weight",
                &["ln_final.weight", "positional_embedding"],
            ),
            "OpenAI text",
        )?;
        if oa_v.is_none() && oa_t.is_none() {
            return Err(ClipError::UnknownLayout {
                file: source.describe().to_string(),
                reason:
                    "found neither OpenAI keys (`visual.conv1.weight`, `token_embedding.weight`) \
                         nor HF keys (`vision_model.*`, `text_model.*`) under any prefix"
                        .into(),
            });
        }
        Ok(Layout::OpenAi {
            vision: oa_v,
            text: oa_t,
        })
    }

    /// Whether the layout holds the given tower.
    pub fn has(&self, tower: Tower) -> bool {
        match (self, tower) {
            (Layout::OpenAi { vision, .. }, Tower::Vision) => vision.is_some(),
            (Layout::OpenAi { text, .. }, Tower::Text) => text.is_some(),
            (Layout::Hf { vision, .. }, Tower::Vision) => *vision,
            (Layout::Hf { text, .. }, Tower::Text) => *text,
        }
    }
}

/// One file tensor that makes up (part of) a canonical tensor.
enum Plan {
    /// Same data, same shape.
    Direct(String),
    /// The file stores the transpose of a 2-D canonical tensor.
    Transposed(String),
    /// Canonical = concatenation along dim 0 of these tensors.
    Concat(Vec<String>),
}

/// Reads canonical tensors of one file through a [`Layout`].
pub struct WeightReader<'a> {
    source: &'a dyn TensorSource,
    layout: Layout,
}

impl std::fmt::Debug for WeightReader<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WeightReader")
            .field("source", &self.source.describe())
            .field("layout", &self.layout)
            .finish()
    }
}

/// One tower of a [`WeightReader`] as a source of canonical tensors
/// (OpenAI names and shapes, whatever the file's layout).
#[derive(Debug)]
pub struct TowerSource<'r, 'a> {
    reader: &'r WeightReader<'a>,
    tower: Tower,
}

impl TensorSource for TowerSource<'_, '_> {
    fn describe(&self) -> &str {
        self.reader.source.describe()
    }

    /// Canonical names are not listed (nothing is reported as unexpected).
    fn keys(&self) -> Vec<String> {
        Vec::new()
    }

    fn shape(&self, key: &str) -> Option<Vec<usize>> {
        self.reader.shape(self.tower, key).ok()
    }

    fn read_f32(&self, key: &str) -> v2l_io::Result<(Vec<usize>, Vec<f32>)> {
        let unsupported = |what: String| v2l_io::ReadError::Unsupported {
            file: self.describe().to_string(),
            what,
        };
        let shape = self
            .reader
            .shape(self.tower, key)
            .map_err(|e| unsupported(e.to_string()))?;
        let data = self
            .reader
            .read(self.tower, key, &shape)
            .map_err(|e| match e {
                ClipError::Read(r) => r,
                other => unsupported(other.to_string()),
            })?;
        Ok((shape, data))
    }

    fn file_names(&self, key: &str) -> Vec<String> {
        self.reader.plan_keys(self.tower, key)
    }

    fn missing_names(&self, key: &str) -> Vec<String> {
        let keys = self.reader.plan_keys(self.tower, key);
        let absent: Vec<String> = keys
            .iter()
            .filter(|k| self.reader.source.shape(k).is_none())
            .cloned()
            .collect();
        if absent.is_empty() {
            keys
        } else {
            absent
        }
    }
}

/// Map the canonical block-internal name to HF's.
fn hf_block_name(rest: &str) -> Option<String> {
    let map = [
        ("attn.out_proj.", "self_attn.out_proj."),
        ("ln_1.", "layer_norm1."),
        ("ln_2.", "layer_norm2."),
        ("mlp.c_fc.", "mlp.fc1."),
        ("mlp.c_proj.", "mlp.fc2."),
    ];
    map.iter()
        .find_map(|(a, b)| rest.strip_prefix(a).map(|tail| format!("{b}{tail}")))
}

impl<'a> WeightReader<'a> {
    /// A reader over `source` with the given layout.
    pub fn new(source: &'a dyn TensorSource, layout: Layout) -> Self {
        Self { source, layout }
    }

    /// The layout in use.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The file behind this reader.
    pub fn source(&self) -> &dyn TensorSource {
        self.source
    }

    fn missing_tower(&self, tower: Tower) -> ClipError {
        ClipError::MissingTensor {
            file: self.source.describe().to_string(),
            key: format!("<{} tower>", tower.name()),
            hint: format!(" (layout {:?} has no {} tower)", self.layout, tower.name()),
        }
    }

    fn plan(&self, tower: Tower, canonical: &str) -> Result<Plan> {
        match &self.layout {
            Layout::OpenAi { vision, text } => {
                let prefix = match tower {
                    Tower::Vision => vision,
                    Tower::Text => text,
                };
                let prefix = prefix.as_ref().ok_or_else(|| self.missing_tower(tower))?;
                Ok(Plan::Direct(format!("{prefix}{canonical}")))
            }
            Layout::Hf { prefix, .. } => {
                if !self.layout.has(tower) {
                    return Err(self.missing_tower(tower));
                }
                let (model, enc) = match tower {
                    Tower::Vision => (format!("{prefix}vision_model."), "encoder.layers."),
                    Tower::Text => (format!("{prefix}text_model."), "encoder.layers."),
                };
                if let Some(rest) = canonical.strip_prefix("transformer.resblocks.") {
                    let (layer, inner) = rest.split_once('.').unwrap_or((rest, ""));
                    let base = format!("{model}{enc}{layer}.");
                    let qkv = |suffix: &str| {
                        Plan::Concat(
                            ["q_proj", "k_proj", "v_proj"]
                                .iter()
                                .map(|p| format!("{base}self_attn.{p}.{suffix}"))
                                .collect(),
                        )
                    };
                    return match inner {
                        "attn.in_proj_weight" => Ok(qkv("weight")),
                        "attn.in_proj_bias" => Ok(qkv("bias")),
                        other => hf_block_name(other)
                            .map(|n| Plan::Direct(format!("{base}{n}")))
                            .ok_or_else(|| {
                                ClipError::Config(format!("no HF name for {canonical}"))
                            }),
                    };
                }
                let direct = |s: &str| Ok(Plan::Direct(format!("{model}{s}")));
                match (tower, canonical) {
                    (Tower::Vision, "conv1.weight") => direct("embeddings.patch_embedding.weight"),
                    (Tower::Vision, "class_embedding") => direct("embeddings.class_embedding"),
                    (Tower::Vision, "positional_embedding") => {
                        direct("embeddings.position_embedding.weight")
                    }
                    (Tower::Vision, "ln_pre.weight") => direct("pre_layrnorm.weight"),
                    (Tower::Vision, "ln_pre.bias") => direct("pre_layrnorm.bias"),
                    (Tower::Vision, "ln_post.weight") => direct("post_layernorm.weight"),
                    (Tower::Vision, "ln_post.bias") => direct("post_layernorm.bias"),
                    (Tower::Vision, "proj") => Ok(Plan::Transposed(format!(
                        "{prefix}visual_projection.weight"
                    ))),
                    (Tower::Text, "token_embedding.weight") => {
                        direct("embeddings.token_embedding.weight")
                    }
                    (Tower::Text, "positional_embedding") => {
                        direct("embeddings.position_embedding.weight")
                    }
                    (Tower::Text, "ln_final.weight") => direct("final_layer_norm.weight"),
                    (Tower::Text, "ln_final.bias") => direct("final_layer_norm.bias"),
                    (Tower::Text, "text_projection") => {
                        Ok(Plan::Transposed(format!("{prefix}text_projection.weight")))
                    }
                    _ => Err(ClipError::Config(format!(
                        "no HF name for {} tensor {canonical}",
                        tower.name()
                    ))),
                }
            }
        }
    }

    fn file_shape(&self, key: &str) -> Result<Vec<usize>> {
        self.source
            .shape(key)
            .ok_or_else(|| ClipError::MissingTensor {
                file: self.source.describe().to_string(),
                key: key.to_string(),
                hint: format!(" (layout {:?})", self.layout),
            })
    }

    /// Shape of a canonical tensor as the file stores it (after undoing the
    /// layout's transposition/concatenation), or a missing-tensor error.
    pub fn shape(&self, tower: Tower, canonical: &str) -> Result<Vec<usize>> {
        match self.plan(tower, canonical)? {
            Plan::Direct(k) => self.file_shape(&k),
            Plan::Transposed(k) => {
                let s = self.file_shape(&k)?;
                Ok(s.into_iter().rev().collect())
            }
            Plan::Concat(keys) => {
                let mut total: Option<Vec<usize>> = None;
                for k in &keys {
                    let s = self.file_shape(k)?;
                    total = Some(match total {
                        None => s,
                        Some(mut t) => {
                            if let (Some(a), Some(b)) = (t.first_mut(), s.first()) {
                                *a += *b;
                            }
                            t
                        }
                    });
                }
                total.ok_or_else(|| ClipError::Config(format!("empty concat for {canonical}")))
            }
        }
    }

    /// Whether a canonical tensor exists in the file.
    pub fn contains(&self, tower: Tower, canonical: &str) -> bool {
        self.shape(tower, canonical).is_ok()
    }

    fn read_checked(&self, key: &str, expected: &[usize]) -> Result<Vec<f32>> {
        let found = self.file_shape(key)?;
        if found != expected {
            return Err(ClipError::ShapeMismatch {
                file: self.source.describe().to_string(),
                key: key.to_string(),
                expected: expected.to_vec(),
                found,
            });
        }
        let (_, data) = self.source.read_f32(key)?;
        Ok(data)
    }

    /// Read a canonical tensor, checking it has the canonical `shape`.
    /// Errors name the file's key and both shapes.
    pub fn read(&self, tower: Tower, canonical: &str, shape: &[usize]) -> Result<Vec<f32>> {
        match self.plan(tower, canonical)? {
            Plan::Direct(k) => self.read_checked(&k, shape),
            Plan::Transposed(k) => {
                let [rows, cols] = match shape {
                    [r, c] => [*r, *c],
                    _ => return Err(ClipError::Config(format!("{canonical} is not 2-D"))),
                };
                let data = self.read_checked(&k, &[cols, rows])?;
                Ok(transpose(&data, cols, rows))
            }
            Plan::Concat(keys) => {
                let first = shape.first().copied().unwrap_or(0);
                if !first.is_multiple_of(keys.len()) {
                    return Err(ClipError::Config(format!(
                        "{canonical}: leading dimension {first} does not split into {} parts",
                        keys.len()
                    )));
                }
                let mut part = shape.to_vec();
                part[0] = first / keys.len();
                let mut out = Vec::with_capacity(shape.iter().product());
                for k in &keys {
                    out.extend(self.read_checked(k, &part)?);
                }
                Ok(out)
            }
        }
    }

    /// One tower's canonical tensors as a [`TensorSource`] (what the
    /// towers are built from through `v2l-nn`'s loader; messages name the
    /// file's own keys).
    pub fn tower(&self, tower: Tower) -> TowerSource<'_, 'a> {
        TowerSource {
            reader: self,
            tower,
        }
    }

    /// The file keys behind a canonical name.
    fn plan_keys(&self, tower: Tower, canonical: &str) -> Vec<String> {
        match self.plan(tower, canonical) {
            Ok(Plan::Direct(k) | Plan::Transposed(k)) => vec![k],
            Ok(Plan::Concat(keys)) => keys,
            Err(_) => vec![format!("<{} tower>.{canonical}", tower.name())],
        }
    }

    fn count_layers(&self, tower: Tower) -> usize {
        let mut n = 0;
        while self.contains(
            tower,
            &format!("transformer.resblocks.{n}.attn.in_proj_weight"),
        ) {
            n += 1;
        }
        n
    }

    /// `Some(hidden)` when the MLP is not the usual 4 × width.
    fn mlp_width(&self, tower: Tower, width: usize) -> Result<Option<usize>> {
        let key = "transformer.resblocks.0.mlp.c_fc.weight";
        if !self.contains(tower, key) {
            return Ok(None);
        }
        let hidden = self.dim(tower, key, 0)?;
        Ok((hidden != 4 * width).then_some(hidden))
    }

    fn dim(&self, tower: Tower, canonical: &str, axis: usize) -> Result<usize> {
        let s = self.shape(tower, canonical)?;
        s.get(axis).copied().ok_or_else(|| {
            ClipError::Config(format!("{canonical} has shape {s:?}, no axis {axis}"))
        })
    }

    /// Infer the configuration from the shapes, as OpenAI's `build_model`
    /// does (heads = width / 64), then apply an HF `config.json` if given
    /// (heads, activation, epsilon, EOS pooling rule).
    /// Fails when a tower is narrower than 64 (heads cannot be inferred).
    pub fn infer_config(&self, hf_config: Option<&serde_json::Value>) -> Result<ClipConfig> {
        let config = self.infer_config_unchecked(hf_config)?;
        for (tower, heads, width) in [
            (
                "vision",
                config.vision.as_ref().map(|v| v.heads),
                config.vision.as_ref().map(|v| v.width),
            ),
            (
                "text",
                config.text.as_ref().map(|t| t.heads),
                config.text.as_ref().map(|t| t.width),
            ),
        ] {
            if heads == Some(0) {
                return Err(ClipError::Config(format!(
                    "{tower} width {} is below 64, so heads = width / 64 cannot be inferred; \
                     set the head count explicitly",
                    width.unwrap_or(0)
                )));
            }
        }
        Ok(config)
    }

    /// [`infer_config`](Self::infer_config) without the head-count check
    /// (heads may come out 0; the caller overrides them).
    pub fn infer_config_unchecked(
        &self,
        hf_config: Option<&serde_json::Value>,
    ) -> Result<ClipConfig> {
        let vision = if self.layout.has(Tower::Vision) {
            let width = self.dim(Tower::Vision, "conv1.weight", 0)?;
            let patch = self.dim(Tower::Vision, "conv1.weight", 2)?;
            let tokens = self.dim(Tower::Vision, "positional_embedding", 0)?;
            let grid = ((tokens.saturating_sub(1)) as f64).sqrt().round() as usize;
            if grid * grid + 1 != tokens {
                return Err(ClipError::Config(format!(
                    "vision positional_embedding has {tokens} rows, not 1 + a square"
                )));
            }
            let output_dim = self.dim(Tower::Vision, "proj", 1)?;
            let mut v = VisionConfig {
                input_resolution: patch * grid,
                patch_size: patch,
                width,
                layers: self.count_layers(Tower::Vision),
                heads: width / 64,
                output_dim,
                mlp_width: self.mlp_width(Tower::Vision, width)?,
                activation: Activation::QuickGelu,
                layer_norm_eps: LAYER_NORM_EPS,
            };
            if let Some(c) = hf_config {
                let c = c.get("vision_config").unwrap_or(&serde_json::Value::Null);
                apply_hf(
                    c,
                    HF_VISION_HEADS,
                    &mut v.heads,
                    &mut v.activation,
                    &mut v.layer_norm_eps,
                )?;
            }
            Some(v)
        } else {
            None
        };
        let text = if self.layout.has(Tower::Text) {
            let width = self.dim(Tower::Text, "ln_final.weight", 0)?;
            let mut t = TextConfig {
                context_length: self.dim(Tower::Text, "positional_embedding", 0)?,
                vocab_size: self.dim(Tower::Text, "token_embedding.weight", 0)?,
                width,
                layers: self.count_layers(Tower::Text),
                heads: width / 64,
                output_dim: self.dim(Tower::Text, "text_projection", 1)?,
                mlp_width: self.mlp_width(Tower::Text, width)?,
                activation: Activation::QuickGelu,
                layer_norm_eps: LAYER_NORM_EPS,
                pooling: TextPooling::ArgmaxId,
            };
            if let Some(c) = hf_config {
                let c = c.get("text_config").unwrap_or(&serde_json::Value::Null);
                apply_hf(
                    c,
                    HF_TEXT_HEADS,
                    &mut t.heads,
                    &mut t.activation,
                    &mut t.layer_norm_eps,
                )?;
                // transformers: eos_token_id == 2 selects the legacy argmax
                // rule; any other id pools at its first occurrence. Absent,
                // it defaults to 49407.
                let eos = c
                    .get("eos_token_id")
                    .and_then(serde_json::Value::as_u64)
                    .unwrap_or(HF_EOS);
                if eos != 2 {
                    let eos = u32::try_from(eos).map_err(|_| {
                        ClipError::Config(format!("eos_token_id {eos} out of range"))
                    })?;
                    t.pooling = TextPooling::FirstEos(eos);
                }
            }
            Some(t)
        } else {
            None
        };
        Ok(ClipConfig { vision, text })
    }
}

/// transformers' `CLIPVisionConfig` default head count.
const HF_VISION_HEADS: usize = 12;
/// transformers' `CLIPTextConfig` default head count.
const HF_TEXT_HEADS: usize = 8;
/// transformers' (5.x) `CLIPTextConfig` default `eos_token_id`.
const HF_EOS: u64 = 49_407;

/// Apply an HF tower config; absent fields take transformers' defaults, as
/// `from_pretrained` would.
fn apply_hf(
    c: &serde_json::Value,
    default_heads: usize,
    heads: &mut usize,
    activation: &mut Activation,
    eps: &mut f64,
) -> Result<()> {
    *heads = c
        .get("num_attention_heads")
        .and_then(serde_json::Value::as_u64)
        .map_or(default_heads, |h| h as usize);
    *activation = match c.get("hidden_act").and_then(serde_json::Value::as_str) {
        Some(a) => Activation::from_hf(a)?,
        None => Activation::QuickGelu,
    };
    *eps = c
        .get("layer_norm_eps")
        .and_then(serde_json::Value::as_f64)
        .unwrap_or(LAYER_NORM_EPS);
    Ok(())
}

/// Read an HF `config.json`.
pub fn read_hf_config(path: &Path) -> Result<serde_json::Value> {
    Ok(v2l_io::read_json(path)?)
}
