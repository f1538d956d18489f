//! Official checkpoints: the `.pth` zip-pickle the reference saves
//! (`{'state_dict' | 'model': …, 'epoch', 'args': argparse.Namespace}`),
//! read without executing pickle code; the architecture inferred from the
//! tensor shapes.

use std::path::{Path, PathBuf};

use burn::tensor::backend::Backend;
use v2l_clip::{ClipConfig, Layout, LoadOptions, VisionConfig, VisionTransformer};
use v2l_io::tensors::TensorSource;
use v2l_io::torch_zip::TorchArchive;

use crate::config::{DdConfig, ImageSize, ModelConfig, DEFAULT_GLOBAL_TOKENS, DEFAULT_IMAGE_SIZE};
use crate::error::{LoadError, ModelError, Result};
use crate::model::{V2lModel, CLIP_PREFIX};

/// The error for a tensor the configuration inference needs.
fn missing(source: &dyn TensorSource, key: String) -> ModelError {
    ModelError::Weights(Box::new(LoadError {
        file: source.describe().to_string(),
        missing: vec![key],
        ..LoadError::default()
    }))
}

fn shape_of(source: &dyn TensorSource, key: &str) -> Result<Vec<usize>> {
    source
        .shape(key)
        .ok_or_else(|| missing(source, key.to_string()))
}

fn dim(source: &dyn TensorSource, key: &str, axis: usize) -> Result<usize> {
    let s = shape_of(source, key)?;
    s.get(axis).copied().ok_or_else(|| {
        ModelError::Config(format!(
            "{}: tensor {key:?} has shape {s:?}, which has no axis {axis}",
            source.describe()
        ))
    })
}

/// Infer the architecture from a state dict's shapes (keys under `prefix`).
///
/// `image_size` becomes the nominal `resolution`; `attn_resolutions` lists
/// the levels that carry attention blocks in the file (an equivalent of the
/// reference's `resolution` quirk). The cross-attention width per head is
/// taken as the mid-block width (reference), heads = inner / width.
/// `normalize_features` follows the reference: on iff `embed_dim == 768`.
///
/// # Errors
/// A tensor the inference needs is missing or shapes do not divide.
pub fn infer_config(
    source: &dyn TensorSource,
    prefix: &str,
    image_size: ImageSize,
) -> Result<ModelConfig> {
    let key = |k: &str| format!("{prefix}{k}");
    let has = |k: &str| source.shape(&key(k)).is_some();
    let ch = dim(source, &key("encoder.conv_in.weight"), 0)?;
    let in_channels = dim(source, &key("encoder.conv_in.weight"), 1)?;
    let mut ch_mult = Vec::new();
    while has(&format!(
        "encoder.down.{}.block.0.conv1.weight",
        ch_mult.len()
    )) {
        let i = ch_mult.len();
        let c = dim(
            source,
            &key(&format!("encoder.down.{i}.block.0.conv1.weight")),
            0,
        )?;
        if ch == 0 || !c.is_multiple_of(ch) {
            return Err(ModelError::Config(format!(
                "level {i} has {c} channels, not a multiple of ch = {ch}"
            )));
        }
        ch_mult.push(c / ch);
    }
    if ch_mult.is_empty() {
        return Err(missing(source, key("encoder.down.0.block.0.conv1.weight")));
    }
    let mut num_res_blocks = 0;
    while has(&format!(
        "encoder.down.0.block.{num_res_blocks}.conv1.weight"
    )) {
        num_res_blocks += 1;
    }
    let (h, _) = image_size.hw();
    let resolution = h;
    let attn_resolutions: Vec<usize> = (0..ch_mult.len())
        .filter(|i| has(&format!("encoder.down.{i}.attn.0.q.weight")))
        .map(|i| resolution >> i)
        .collect();
    let z_channels = dim(source, &key("decoder.conv_in.weight"), 1)?;
    let enc_out = dim(source, &key("encoder.conv_out.weight"), 0)?;
    let double_z = enc_out == 2 * z_channels && enc_out != z_channels;
    let out_ch = dim(source, &key("decoder.conv_out.weight"), 0)?;
    let embed_dim = dim(source, &key("quant_conv.weight"), 0)?;
    let n_local = dim(source, &key("tok_embeddings.weight"), 0)?;
    let n_global = dim(source, &key("tok_embeddings_global.weight"), 0)?;
    let use_projector = has("codebook_projection.weight");
    let mid = ch * ch_mult.last().copied().unwrap_or(1);
    let inner = dim(source, &key("decoder.mid.cross_attn_1.to_q.weight"), 0)?;
    let (cross_attn_heads, cross_attn_dim_head) = if mid > 0 && inner.is_multiple_of(mid) {
        (inner / mid, None)
    } else if inner.is_multiple_of(8) {
        (8, Some(inner / 8))
    } else {
        return Err(ModelError::Config(format!(
            "cannot split the cross-attention width {inner} into heads"
        )));
    };
    let config = ModelConfig {
        image_size,
        ddconfig: DdConfig {
            double_z,
            z_channels,
            resolution,
            in_channels,
            out_ch,
            ch,
            ch_mult,
            num_res_blocks,
            attn_resolutions,
            dropout: 0.0,
        },
        embed_dim,
        n_local,
        n_global,
        k: DEFAULT_GLOBAL_TOKENS.min(n_global),
        vl: None,
        use_projector,
        normalize_features: embed_dim == 768,
        cross_attn_heads,
        cross_attn_dim_head,
        codebook_loss_weight: crate::config::OFFICIAL_CODEBOOK_LOSS_WEIGHT,
        fixed_global_ids: false,
        cross_attention: true,
    };
    config.validate()?;
    Ok(config)
}

/// Load the CLIP vision tower in OpenAI naming under `prefix` (e.g.
/// `global_encoder.` in an official checkpoint, `visual.` in a bundle),
/// inferring its configuration unless one is given.
///
/// # Errors
/// As [`v2l_clip::Clip::from_source`].
pub fn load_clip<B: Backend>(
    source: &dyn TensorSource,
    prefix: &str,
    config: Option<&VisionConfig>,
    device: &B::Device,
) -> Result<(VisionTransformer<B>, VisionConfig)> {
    let options = LoadOptions {
        layout: Some(Layout::OpenAi {
            vision: Some(prefix.to_string()),
            text: None,
        }),
        config: config.map(|v| ClipConfig {
            vision: Some(v.clone()),
            text: None,
        }),
        skip_text: true,
        ..Default::default()
    };
    let clip = v2l_clip::Clip::<B>::from_source(source, None, &options, device)?;
    let vc = clip
        .config()
        .vision
        .clone()
        .ok_or(ModelError::Missing("CLIP vision configuration"))?;
    let tower = clip
        .into_towers()
        .0
        .ok_or(ModelError::Missing("CLIP vision tower"))?;
    Ok((tower, vc))
}

/// The CLIP vision tower's configuration from OpenAI-named shapes under
/// `prefix`, as OpenAI's `build_model` infers it (heads = width / 64).
///
/// # Errors
/// Missing tensors or shapes that do not fit.
pub fn infer_clip_vision(source: &dyn TensorSource, prefix: &str) -> Result<VisionConfig> {
    let key = |k: &str| format!("{prefix}{k}");
    let width = dim(source, &key("conv1.weight"), 0)?;
    let patch_size = dim(source, &key("conv1.weight"), 2)?;
    let tokens = dim(source, &key("positional_embedding"), 0)?;
    let output_dim = dim(source, &key("proj"), 1)?;
    let mut layers = 0;
    while source
        .shape(&key(&format!("transformer.resblocks.{layers}.ln_1.weight")))
        .is_some()
    {
        layers += 1;
    }
    let grid = (1..=tokens).find(|g| g * g + 1 >= tokens).unwrap_or(0);
    if grid * grid + 1 != tokens {
        return Err(ModelError::Config(format!(
            "{}: CLIP positional embedding has {tokens} rows, not grid² + 1",
            source.describe()
        )));
    }
    if width < 64 {
        return Err(ModelError::Config(format!(
            "{}: CLIP width {width} is below 64, so heads = width / 64 cannot be inferred; \
             pass a config.json with vl.vision.heads",
            source.describe()
        )));
    }
    let mlp = dim(source, &key("transformer.resblocks.0.mlp.c_fc.weight"), 0)?;
    Ok(VisionConfig {
        input_resolution: grid * patch_size,
        patch_size,
        width,
        layers,
        heads: width / 64,
        output_dim,
        mlp_width: (mlp != 4 * width).then_some(mlp),
        activation: Default::default(),
        layer_norm_eps: 1e-5,
    })
}

/// What the pickled `args` (`argparse.Namespace`) of an official checkpoint
/// says, where readable.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OfficialArgs {
    /// `args.image_size`.
    pub image_size: Option<usize>,
    /// `args.embed_dim`.
    pub embed_dim: Option<usize>,
    /// `args.use_cblinear`.
    pub use_cblinear: Option<i64>,
    /// `args.tuning_codebook`.
    pub tuning_codebook: Option<i64>,
    /// `args.use_crossatt_dec`.
    pub use_crossatt_dec: Option<i64>,
}

/// An official checkpoint opened for import.
#[derive(Debug)]
pub struct OfficialCheckpoint {
    path: PathBuf,
    archive: TorchArchive,
    /// Which top-level entry holds the weights (`state_dict` or `model`).
    pub root_key: Option<String>,
    /// The pickled arguments, where readable.
    pub args: OfficialArgs,
}

impl OfficialCheckpoint {
    /// Open a `.pth` written by the reference (no pickle code is executed:
    /// only allow-listed globals are accepted, the `Namespace` is read as
    /// plain attributes).
    ///
    /// # Errors
    /// The file cannot be read or is not a PyTorch archive.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let archive = TorchArchive::open(path)?;
        let args = archive.get("args").map(read_args).unwrap_or_default();
        let mut root_key = None;
        for key in ["state_dict", "model"] {
            if archive.get(key).is_some() {
                root_key = Some(key.to_string());
                break;
            }
        }
        let archive = match &root_key {
            Some(k) => archive.with_top_level_key(k)?,
            None => archive,
        };
        Ok(Self {
            path: path.to_path_buf(),
            archive,
            root_key,
            args,
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The weights as a tensor source (names relative to the state dict).
    pub fn source(&self) -> &dyn TensorSource {
        &self.archive
    }

    /// Whether the checkpoint carries the CLIP tower (`global_encoder.*`).
    pub fn has_clip(&self) -> bool {
        self.archive
            .shape(&format!("{CLIP_PREFIX}conv1.weight"))
            .is_some()
    }

    /// The inferred configuration: `image_size` from the caller, else 128
    /// (the reference's; the pickled `args.image_size` is reported in
    /// [`args`](Self::args) but not applied); `k` from the caller, else 21;
    /// the CLIP configuration inferred from `global_encoder.*`.
    ///
    /// # Errors
    /// As [`infer_config`].
    pub fn infer_config(
        &self,
        image_size: Option<ImageSize>,
        k: Option<usize>,
    ) -> Result<ModelConfig> {
        let size = image_size.unwrap_or(ImageSize::Square(DEFAULT_IMAGE_SIZE));
        let mut c = infer_config(&self.archive, "", size)?;
        if let Some(k) = k {
            c.k = k;
        }
        if let Some(flag) = self.args.use_cblinear {
            if (flag != 0) != c.use_projector {
                return Err(ModelError::Config(format!(
                    "{}: args.use_cblinear = {flag} but the state dict {} codebook_projection",
                    self.path.display(),
                    if c.use_projector { "has" } else { "has no" }
                )));
            }
        }
        if self.has_clip() {
            c.vl = Some(v2l_vl::VlConfig::Clip {
                vision: infer_clip_vision(&self.archive, CLIP_PREFIX)?,
            });
        }
        if self.args.tuning_codebook == Some(-1) {
            // The reference skips the normalisation in this mode.
            c.normalize_features = false;
        }
        c.validate()?;
        Ok(c)
    }

    /// Load the model (and the CLIP tower if present) with `config` (from
    /// [`infer_config`](Self::infer_config) or a user's JSON).
    ///
    /// # Errors
    /// [`ModelError::Weights`] listing every problem; CLIP errors.
    pub fn load<B: Backend>(
        &self,
        config: &ModelConfig,
        device: &B::Device,
    ) -> Result<V2lModel<B>> {
        let model = V2lModel::from_source(&self.archive, "", config, device)?;
        if self.has_clip() {
            let (tower, vc) = load_clip(&self.archive, CLIP_PREFIX, config.clip_vision(), device)?;
            model.with_clip(tower, vc)
        } else {
            Ok(model)
        }
    }
}

fn read_args(v: &v2l_io::pickle::PickleValue) -> OfficialArgs {
    let int = |k: &str| v.get(k).and_then(|x| x.as_i64());
    OfficialArgs {
        image_size: int("image_size").and_then(|x| usize::try_from(x).ok()),
        embed_dim: int("embed_dim").and_then(|x| usize::try_from(x).ok()),
        use_cblinear: int("use_cblinear"),
        tuning_codebook: int("tuning_codebook"),
        use_crossatt_dec: int("use_crossatt_dec"),
    }
}
