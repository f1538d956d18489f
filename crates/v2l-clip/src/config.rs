//! Tower configurations: presets, inference from weights, validation.

use serde::{Deserialize, Serialize};

use crate::error::{ClipError, Result};

/// Default LayerNorm epsilon of OpenAI CLIP and of HF `CLIPConfig`.
pub const LAYER_NORM_EPS: f64 = 1e-5;

/// The MLP activation inside a residual block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// `x · sigmoid(1.702 x)`: OpenAI CLIP and HF `hidden_act = "quick_gelu"`.
    #[default]
    QuickGelu,
    /// The exact (erf) GELU: HF `hidden_act = "gelu"` (e.g. LAION models).
    Gelu,
}

impl Activation {
    /// Parse an HF `hidden_act` string.
    pub fn from_hf(name: &str) -> Result<Self> {
        match name {
            "quick_gelu" => Ok(Self::QuickGelu),
            "gelu" => Ok(Self::Gelu),
            other => Err(ClipError::Config(format!(
                "hidden_act {other:?} is not supported (expected \"quick_gelu\" or \"gelu\")"
            ))),
        }
    }
}

/// How the text tower picks the token whose final state becomes the text
/// embedding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum TextPooling {
    /// OpenAI: the position of the largest token id in the row
    /// (`text.argmax(dim=-1)`); with CLIP's vocabulary that is the EOT token
    /// (49407, the largest id). Ties go to the first position, as torch.
    #[default]
    ArgmaxId,
    /// HF `transformers` when `eos_token_id != 2`: the first position holding
    /// this id; position 0 when the row has none (what `argmax` over an all-zero
    /// mask gives in torch).
    FirstEos(u32),
}

/// Vision tower hyper-parameters. Field names follow the V2L bundle's
/// `clip_vision` object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VisionConfig {
    /// Input side in pixels (224 or 336 for the released models).
    pub input_resolution: usize,
    /// Patch side in pixels (the patch convolution's kernel and stride).
    pub patch_size: usize,
    /// Transformer width.
    pub width: usize,
    /// Number of residual attention blocks.
    pub layers: usize,
    /// Number of attention heads (OpenAI infers `width / 64`).
    pub heads: usize,
    /// Embedding dimension after `proj`.
    pub output_dim: usize,
    /// MLP hidden width; `None` = 4 × width (every released CLIP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mlp_width: Option<usize>,
    /// MLP activation.
    #[serde(default)]
    pub activation: Activation,
    /// LayerNorm epsilon.
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
}

/// Text tower hyper-parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextConfig {
    /// Number of positions (77 for the released models).
    pub context_length: usize,
    /// Vocabulary size (49,408 for the released models).
    pub vocab_size: usize,
    /// Transformer width.
    pub width: usize,
    /// Number of residual attention blocks.
    pub layers: usize,
    /// Number of attention heads (OpenAI infers `width / 64`).
    pub heads: usize,
    /// Embedding dimension after `text_projection`.
    pub output_dim: usize,
    /// MLP hidden width; `None` = 4 × width (every released CLIP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mlp_width: Option<usize>,
    /// MLP activation.
    #[serde(default)]
    pub activation: Activation,
    /// LayerNorm epsilon.
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    /// Which position is pooled.
    #[serde(default)]
    pub pooling: TextPooling,
}

fn default_eps() -> f64 {
    LAYER_NORM_EPS
}

/// A CLIP model's configuration; either tower may be absent (the V2L
/// checkpoint ships only the vision tower).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClipConfig {
    /// The image tower.
    pub vision: Option<VisionConfig>,
    /// The text tower.
    pub text: Option<TextConfig>,
}

impl VisionConfig {
    /// The MLP hidden width (4 × width unless set).
    pub fn mlp_width(&self) -> usize {
        self.mlp_width.unwrap_or(4 * self.width)
    }

    /// Patches per side.
    pub fn grid(&self) -> usize {
        self.input_resolution / self.patch_size.max(1)
    }

    /// Tokens per image: the class token plus `grid²` patches.
    pub fn num_tokens(&self) -> usize {
        self.grid() * self.grid() + 1
    }

    /// Check the numbers fit together.
    pub fn validate(&self) -> Result<()> {
        check_tower(
            "vision",
            self.width,
            self.heads,
            self.layers,
            self.output_dim,
        )?;
        if self.patch_size == 0 || self.input_resolution == 0 {
            return Err(ClipError::Config(
                "vision: patch_size and input_resolution must be positive".into(),
            ));
        }
        if !self.input_resolution.is_multiple_of(self.patch_size) {
            return Err(ClipError::Config(format!(
                "vision: input_resolution {} is not a multiple of patch_size {}",
                self.input_resolution, self.patch_size
            )));
        }
        Ok(())
    }
}

impl TextConfig {
    /// The MLP hidden width (4 × width unless set).
    pub fn mlp_width(&self) -> usize {
        self.mlp_width.unwrap_or(4 * self.width)
    }

    /// Check the numbers fit together.
    pub fn validate(&self) -> Result<()> {
        check_tower("text", self.width, self.heads, self.layers, self.output_dim)?;
        if self.context_length == 0 || self.vocab_size == 0 {
            return Err(ClipError::Config(
                "text: context_length and vocab_size must be positive".into(),
            ));
        }
        Ok(())
    }
}

fn check_tower(tower: &str, width: usize, heads: usize, layers: usize, out: usize) -> Result<()> {
    if width == 0 || heads == 0 || out == 0 {
        return Err(ClipError::Config(format!(
            "{tower}: width ({width}), heads ({heads}) and output_dim ({out}) must be positive"
        )));
    }
    if !width.is_multiple_of(heads) {
        return Err(ClipError::Config(format!(
            "{tower}: width {width} is not divisible by heads {heads}"
        )));
    }
    let _ = layers;
    Ok(())
}

impl ClipConfig {
    fn preset(
        resolution: usize,
        patch: usize,
        vision_width: usize,
        vision_layers: usize,
        text_width: usize,
        embed: usize,
    ) -> Self {
        Self {
            vision: Some(VisionConfig {
                input_resolution: resolution,
                patch_size: patch,
                width: vision_width,
                layers: vision_layers,
                heads: vision_width / 64,
                output_dim: embed,
                mlp_width: None,
                activation: Activation::QuickGelu,
                layer_norm_eps: LAYER_NORM_EPS,
            }),
            text: Some(TextConfig {
                context_length: 77,
                vocab_size: 49_408,
                width: text_width,
                layers: 12,
                heads: text_width / 64,
                output_dim: embed,
                mlp_width: None,
                activation: Activation::QuickGelu,
                layer_norm_eps: LAYER_NORM_EPS,
                pooling: TextPooling::ArgmaxId,
            }),
        }
    }

    /// OpenAI ViT-B/32: 224 px, patch 32, width 768 × 12, text 512 × 12, embed 512.
    pub fn vit_b_32() -> Self {
        Self::preset(224, 32, 768, 12, 512, 512)
    }

    /// OpenAI ViT-B/16: 224 px, patch 16, width 768 × 12, text 512 × 12, embed 512.
    pub fn vit_b_16() -> Self {
        Self::preset(224, 16, 768, 12, 512, 512)
    }

    /// OpenAI ViT-L/14 (the V2L tower): 224 px, patch 14, width 1024 × 24,
    /// text 768 × 12, embed 768.
    pub fn vit_l_14() -> Self {
        Self::preset(224, 14, 1024, 24, 768, 768)
    }

    /// OpenAI ViT-L/14@336px.
    pub fn vit_l_14_336() -> Self {
        Self::preset(336, 14, 1024, 24, 768, 768)
    }

    /// A preset by its OpenAI name (`ViT-B/32`, `ViT-B/16`, `ViT-L/14`,
    /// `ViT-L/14@336px`; case-insensitive, `-336` also accepted).
    pub fn by_name(name: &str) -> Result<Self> {
        let n = name.to_ascii_lowercase().replace(['_', ' '], "-");
        match n.as_str() {
            "vit-b/32" | "vit-b-32" => Ok(Self::vit_b_32()),
            "vit-b/16" | "vit-b-16" => Ok(Self::vit_b_16()),
            "vit-l/14" | "vit-l-14" => Ok(Self::vit_l_14()),
            "vit-l/14@336px" | "vit-l/14-336" | "vit-l-14-336" => Ok(Self::vit_l_14_336()),
            _ => Err(ClipError::Config(format!(
                "unknown CLIP preset {name:?} (known: ViT-B/32, ViT-B/16, ViT-L/14, ViT-L/14@336px)"
            ))),
        }
    }

    /// Validate both towers.
    pub fn validate(&self) -> Result<()> {
        if let Some(v) = &self.vision {
            v.validate()?;
        }
        if let Some(t) = &self.text {
            t.validate()?;
        }
        if self.vision.is_none() && self.text.is_none() {
            return Err(ClipError::Config(
                "neither a vision nor a text tower".into(),
            ));
        }
        Ok(())
    }
}
