//! The model's configuration: the reference `ddconfig` plus the V2L fields,
//! with the same names as the reference (and the bundle's `config.json`).

use serde::{Deserialize, Deserializer, Serialize};
use v2l_clip::VisionConfig;
use v2l_vl::VlConfig;

use crate::error::{ModelError, Result};

/// Number of GroupNorm groups in every normalisation layer (fixed in the
/// reference's `Normalize`).
pub const GROUP_NORM_GROUPS: usize = 32;
/// GroupNorm epsilon in the reference.
pub const GROUP_NORM_EPS: f64 = 1e-6;
/// Weight of the codebook-side term of the official `qloss`.
pub const OFFICIAL_CODEBOOK_LOSS_WEIGHT: f64 = 0.33;
/// Global tokens when nothing else says (the reference's `forward(k=21)`).
pub const DEFAULT_GLOBAL_TOKENS: usize = 21;
/// Tokenizer input size when nothing else says (the reference's 128 px).
pub const DEFAULT_IMAGE_SIZE: usize = 128;

/// The convolutional encoder/decoder's hyper-parameters (taming-transformers'
/// `ddconfig`, as in the reference's `vqgan_configs/v2l.yaml`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DdConfig {
    /// Whether the encoder emits `2·z_channels` (mean and log-variance); the
    /// V2L model uses `false`.
    #[serde(default)]
    pub double_z: bool,
    /// Latent channels between `conv_out` / `quant_conv` and
    /// `post_quant_conv` / `conv_in`.
    pub z_channels: usize,
    /// The nominal resolution that only places attention blocks: level `i`
    /// of the encoder is at `resolution / 2^i`, and gets attention iff that
    /// value is in `attn_resolutions` (the reference's quirk: 256 with
    /// 128-px images means no level attention).
    pub resolution: usize,
    /// Image channels in.
    #[serde(default = "three")]
    pub in_channels: usize,
    /// Image channels out.
    #[serde(default = "three")]
    pub out_ch: usize,
    /// Base channel count.
    pub ch: usize,
    /// Channel multiplier per level (`len − 1` downsampling steps).
    pub ch_mult: Vec<usize>,
    /// ResnetBlocks per encoder level (the decoder has one more).
    pub num_res_blocks: usize,
    /// Nominal resolutions at which levels get self-attention.
    #[serde(default)]
    pub attn_resolutions: Vec<usize>,
    /// Dropout probability inside ResnetBlocks (0 in the reference; only used
    /// in training).
    #[serde(default)]
    pub dropout: f64,
}

fn three() -> usize {
    3
}

fn yes() -> bool {
    true
}

fn default_heads() -> usize {
    8
}

fn default_beta() -> f64 {
    OFFICIAL_CODEBOOK_LOSS_WEIGHT
}

fn default_k() -> usize {
    DEFAULT_GLOBAL_TOKENS
}

/// A `vl` section, or an old bare `clip_vision` config.
fn de_vl<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<VlConfig>, D::Error> {
    use serde::de::Error;
    let v: Option<serde_json::Value> = Option::deserialize(d)?;
    match v {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(v) if v.get("kind").is_some() => serde_json::from_value(v)
            .map(Some)
            .map_err(D::Error::custom),
        Some(v) => serde_json::from_value::<VisionConfig>(v)
            .map(|vision| Some(VlConfig::Clip { vision }))
            .map_err(D::Error::custom),
    }
}

/// An image size: one number for square inputs, or `[height, width]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ImageSize {
    /// A square `n × n`.
    Square(usize),
    /// `[height, width]`.
    Rect([usize; 2]),
}

impl ImageSize {
    /// `(height, width)`.
    pub fn hw(self) -> (usize, usize) {
        match self {
            ImageSize::Square(n) => (n, n),
            ImageSize::Rect([h, w]) => (h, w),
        }
    }
}

impl Default for ImageSize {
    fn default() -> Self {
        ImageSize::Square(DEFAULT_IMAGE_SIZE)
    }
}

/// The whole V2L tokenizer's configuration (field names as the reference's
/// and as `golden/v2l-tiny/config.json`; unknown fields are ignored).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    /// The tokenizer input size the model is used at (the encoder accepts
    /// any size it can divide; this is the default for preprocessing).
    #[serde(default)]
    pub image_size: ImageSize,
    /// Encoder/decoder hyper-parameters.
    pub ddconfig: DdConfig,
    /// Code dimension: `quant_conv`'s output, the codebooks' width and the
    /// cross-attention context width (768 in the reference).
    pub embed_dim: usize,
    /// Rows of the local codebook (the LLM's vocabulary size).
    pub n_local: usize,
    /// Rows of the global codebook.
    pub n_global: usize,
    /// Global tokens per image.
    #[serde(default = "default_k")]
    pub k: usize,
    /// The vision-language model of the global branch (`vl` in
    /// `config.json`: `{"kind": "clip", "vision": {…}}` or `{"kind":
    /// "conse", …}`); absent: no global branch from images, global ids must
    /// be given. Older bundles' `clip_vision` (a bare CLIP vision config)
    /// is read as a CLIP section.
    #[serde(
        default,
        alias = "clip_vision",
        deserialize_with = "de_vl",
        skip_serializing_if = "Option::is_none"
    )]
    pub vl: Option<VlConfig>,
    /// Whether the local codebook goes through the trainable projector
    /// (`codebook_projection`; the reference's `--use_cblinear 1`).
    #[serde(default = "yes")]
    pub use_projector: bool,
    /// Whether encoder features are L2-normalised per position before the
    /// search. The reference does it only when `embed_dim == 768`; official
    /// imports set this accordingly, new models default to `true`.
    #[serde(default = "yes")]
    pub normalize_features: bool,
    /// Heads of the decoder's cross-attention (8 in the reference).
    #[serde(default = "default_heads")]
    pub cross_attn_heads: usize,
    /// Width per head of the cross-attention; `None` = the mid-block width
    /// (the reference's `dim_head = block_in`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cross_attn_dim_head: Option<usize>,
    /// Weight of the codebook-side term of `qloss` (0.33 in the reference).
    #[serde(default = "default_beta")]
    pub codebook_loss_weight: f64,
    /// The model was trained without an image embedder
    /// (`global_embedder = "none"` in `v2l train`): every image's global
    /// ids are `0..k` (the same context rows for all images).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub fixed_global_ids: bool,
    /// Whether the decoder has its cross-attention to the global tokens
    /// (`mid.cross_attn_1`; the reference's `--use_crossatt_dec 1`). Without
    /// it the decoder rebuilds the image from the local codes alone (the
    /// paper's VQ-GAN* baseline: a VQ-GAN with the LLM's vocabulary as
    /// codebook) and ignores any global context it is given.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub cross_attention: bool,
}

fn is_true(v: &bool) -> bool {
    *v
}

impl ModelConfig {
    /// The image preprocessing of the vision-language model (the global
    /// branch's input).
    ///
    /// # Errors
    /// [`ModelError::Missing`] without a `vl` section; invalid constants.
    pub fn vl_preprocess(&self) -> Result<v2l_clip::ClipPreprocess> {
        Ok(self
            .vl
            .as_ref()
            .ok_or(ModelError::Missing("vision-language image tower"))?
            .preprocess()?)
    }

    /// The CLIP vision tower's config when the vision-language model is CLIP.
    pub fn clip_vision(&self) -> Option<&VisionConfig> {
        match &self.vl {
            Some(VlConfig::Clip { vision }) => Some(vision),
            _ => None,
        }
    }
}

impl DdConfig {
    /// Number of levels.
    pub fn levels(&self) -> usize {
        self.ch_mult.len()
    }

    /// Stride-2 steps (levels − 1).
    pub fn downsamples(&self) -> usize {
        self.levels().saturating_sub(1)
    }

    /// Channels of level `i` (`ch · ch_mult[i]`; saturates at `usize::MAX`,
    /// which [`DdConfig::validate`] rejects).
    pub fn level_channels(&self, i: usize) -> usize {
        self.ch
            .saturating_mul(self.ch_mult.get(i).copied().unwrap_or(0))
    }

    /// Channels of the middle blocks (the last level's).
    pub fn mid_channels(&self) -> usize {
        self.level_channels(self.levels().saturating_sub(1))
    }

    /// Whether encoder level `i` has attention blocks (the `resolution`
    /// counter: `resolution // 2^i`, as the reference computes it).
    pub fn encoder_level_attention(&self, i: usize) -> bool {
        let mut r = self.resolution;
        for _ in 0..i {
            r /= 2;
        }
        self.attn_resolutions.contains(&r)
    }

    /// Whether decoder level `i` has attention blocks (the counter starts at
    /// `resolution // 2^(levels−1)` at the last level and doubles upwards).
    pub fn decoder_level_attention(&self, i: usize) -> bool {
        let levels = self.levels();
        let mut r = self.resolution;
        for _ in 0..levels.saturating_sub(1) {
            r /= 2;
        }
        for _ in i..levels.saturating_sub(1) {
            r = r.saturating_mul(2);
        }
        self.attn_resolutions.contains(&r)
    }

    /// Check the numbers fit together.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(ModelError::Config(m));
        if self.ch_mult.is_empty() {
            return bad("ddconfig.ch_mult is empty".into());
        }
        if self.ch == 0 || self.ch_mult.contains(&0) {
            return bad(format!(
                "ddconfig.ch ({}) and every ch_mult ({:?}) must be positive",
                self.ch, self.ch_mult
            ));
        }
        if self.downsamples() >= usize::BITS as usize {
            return bad(format!(
                "ddconfig.ch_mult has {} levels; {} stride-2 steps overflow the size factor",
                self.levels(),
                self.downsamples()
            ));
        }
        for i in 0..self.levels() {
            let Some(c) = self.ch.checked_mul(self.ch_mult[i]) else {
                return bad(format!(
                    "level {i}: ch {} × ch_mult {} overflows",
                    self.ch, self.ch_mult[i]
                ));
            };
            if !c.is_multiple_of(GROUP_NORM_GROUPS) {
                return bad(format!(
                    "level {i} has {c} channels; GroupNorm({GROUP_NORM_GROUPS}) needs a multiple of {GROUP_NORM_GROUPS}"
                ));
            }
        }
        if !self.ch.is_multiple_of(GROUP_NORM_GROUPS) {
            return bad(format!(
                "ddconfig.ch = {} must be a multiple of {GROUP_NORM_GROUPS} (GroupNorm)",
                self.ch
            ));
        }
        if self.z_channels == 0 || self.in_channels == 0 || self.out_ch == 0 {
            return bad("z_channels, in_channels and out_ch must be positive".into());
        }
        if self.double_z && self.z_channels.checked_mul(2).is_none() {
            return bad(format!("2 · z_channels ({}) overflows", self.z_channels));
        }
        if self.num_res_blocks == 0 {
            return bad("ddconfig.num_res_blocks must be at least 1".into());
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return bad(format!(
                "ddconfig.dropout {} is not in [0, 1)",
                self.dropout
            ));
        }
        Ok(())
    }
}

impl ModelConfig {
    /// Channels out of the encoder's `conv_out` (`2·z_channels` when
    /// `double_z`).
    pub fn encoder_out_channels(&self) -> usize {
        if self.ddconfig.double_z {
            self.ddconfig.z_channels.saturating_mul(2)
        } else {
            self.ddconfig.z_channels
        }
    }

    /// Cross-attention width per head.
    pub fn cross_attn_dim_head(&self) -> usize {
        self.cross_attn_dim_head
            .unwrap_or_else(|| self.ddconfig.mid_channels())
    }

    /// The latent grid `(h, w)` for an input of `height × width`, or an
    /// error if the encoder cannot divide it.
    pub fn grid_for(&self, height: usize, width: usize) -> Result<(usize, usize)> {
        let n = self.ddconfig.downsamples();
        let factor = u32::try_from(n)
            .ok()
            .and_then(|s| 1usize.checked_shl(s))
            .ok_or_else(|| {
                ModelError::Config(format!(
                    "{n} stride-2 steps: the size factor 2^{n} overflows"
                ))
            })?;
        if height == 0
            || width == 0
            || !height.is_multiple_of(factor)
            || !width.is_multiple_of(factor)
        {
            return Err(ModelError::Indivisible {
                height,
                width,
                downsamples: n,
                factor,
            });
        }
        Ok((height / factor, width / factor))
    }

    /// Check the numbers fit together.
    pub fn validate(&self) -> Result<()> {
        self.ddconfig.validate()?;
        let bad = |m: String| Err(ModelError::Config(m));
        if self.embed_dim == 0 || self.n_local == 0 || self.n_global == 0 {
            return bad(format!(
                "embed_dim ({}), n_local ({}) and n_global ({}) must be positive",
                self.embed_dim, self.n_local, self.n_global
            ));
        }
        if self.k == 0 || self.k > self.n_global || self.k > v2l_quant::MAX_TOP_K {
            return bad(format!(
                "k = {} global tokens must be in 1..={}",
                self.k,
                self.n_global.min(v2l_quant::MAX_TOP_K)
            ));
        }
        if self.cross_attn_heads == 0 || self.cross_attn_dim_head() == 0 {
            return bad("the cross-attention needs at least one head of positive width".into());
        }
        if let Some(v) = self.clip_vision() {
            if v.output_dim != self.embed_dim {
                return bad(format!(
                    "vl.vision.output_dim {} differs from embed_dim {} (the global codebook's width)",
                    v.output_dim, self.embed_dim
                ));
            }
        }
        if let Some(VlConfig::Conse(c)) = &self.vl {
            c.validate()
                .map_err(|e| ModelError::Config(e.to_string()))?;
        }
        let (h, w) = self.image_size.hw();
        self.grid_for(h, w)?;
        Ok(())
    }

    /// The reference's full-size architecture (`vqgan_configs/v2l.yaml`
    /// with `embed_dim` 768, LLaMA-2's 32,000 local and 11,908 global rows,
    /// CLIP ViT-L/14, 128 px, k = 21).
    pub fn official() -> Self {
        Self {
            image_size: ImageSize::Square(128),
            ddconfig: DdConfig {
                double_z: false,
                z_channels: 256,
                resolution: 256,
                in_channels: 3,
                out_ch: 3,
                ch: 128,
                ch_mult: vec![1, 2, 2, 4],
                num_res_blocks: 2,
                attn_resolutions: vec![16],
                dropout: 0.0,
            },
            embed_dim: 768,
            n_local: 32_000,
            n_global: 11_908,
            k: DEFAULT_GLOBAL_TOKENS,
            vl: Some(VlConfig::Clip {
                vision: VisionConfig {
                    input_resolution: 224,
                    patch_size: 14,
                    width: 1024,
                    layers: 24,
                    heads: 16,
                    output_dim: 768,
                    mlp_width: None,
                    activation: Default::default(),
                    layer_norm_eps: 1e-5,
                },
            }),
            use_projector: true,
            normalize_features: true,
            cross_attn_heads: 8,
            cross_attn_dim_head: None,
            codebook_loss_weight: OFFICIAL_CODEBOOK_LOSS_WEIGHT,
            fixed_global_ids: false,
            cross_attention: true,
        }
    }

    /// Parse a `config.json`.
    pub fn from_json_file(path: &std::path::Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| ModelError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let c: Self = serde_json::from_str(&text).map_err(|e| ModelError::Json {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        c.validate()?;
        Ok(c)
    }
}
