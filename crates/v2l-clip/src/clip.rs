//! [`Clip`]: a loaded CLIP model (either or both towers) and batched encoding.

use std::path::Path;

use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use crate::config::ClipConfig;
use crate::error::{ClipError, Result};
use crate::model::{
    OutputOptions, RandomParams, TextOutput, TextTransformer, VisionOutput, VisionTransformer,
};
use crate::weights::{
    hf_config_path, open_source, read_hf_config, Layout, TensorSource, WeightReader,
};

/// How to read a weight file.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Use this layout instead of detecting it (e.g. when a file holds two
    /// candidate prefixes).
    pub layout: Option<Layout>,
    /// Override the vision tower's head count (OpenAI infers width / 64).
    pub vision_heads: Option<usize>,
    /// Override the text tower's head count (OpenAI infers width / 64).
    pub text_heads: Option<usize>,
    /// Use this whole configuration instead of inferring one; it is still
    /// checked against every tensor's shape.
    pub config: Option<ClipConfig>,
    /// Load only the vision tower even if the file has a text tower.
    pub skip_text: bool,
    /// Load only the text tower even if the file has a vision tower.
    pub skip_vision: bool,
}

/// A CLIP model: an image tower, a text tower, or both.
///
/// Weights in f16/bf16 are converted to f32 at load; all computation runs in
/// the backend's float type.
#[derive(Debug)]
pub struct Clip<B: Backend> {
    config: ClipConfig,
    vision: Option<VisionTransformer<B>>,
    text: Option<TextTransformer<B>>,
}

impl<B: Backend> Clip<B> {
    /// Load from a file or folder with detected layout and inferred
    /// configuration: OpenAI layout (`visual.*`, `token_embedding.weight`, …,
    /// also under a prefix such as `global_encoder.`) or HF layout
    /// (`vision_model.*`, `text_model.*`), from `.safetensors` or `.pth`, or a
    /// folder with `model.safetensors` and `config.json`.
    pub fn load(path: impl AsRef<Path>, device: &B::Device) -> Result<Self> {
        Self::load_with(path, &LoadOptions::default(), device)
    }

    /// [`load`](Self::load) with options.
    pub fn load_with(
        path: impl AsRef<Path>,
        options: &LoadOptions,
        device: &B::Device,
    ) -> Result<Self> {
        let path = path.as_ref();
        let source = open_source(path)?;
        let hf = match hf_config_path(path) {
            Some(p) if path.is_dir() || is_hf_sidecar(path) => Some(read_hf_config(&p)?),
            _ => None,
        };
        Self::from_source(source.as_ref(), hf.as_ref(), options, device)
    }

    /// Load from an open tensor source; `hf_config` is an HF `config.json`
    /// (heads, activation, epsilon, EOS id), if any.
    pub fn from_source(
        source: &dyn TensorSource,
        hf_config: Option<&serde_json::Value>,
        options: &LoadOptions,
        device: &B::Device,
    ) -> Result<Self> {
        let layout = match &options.layout {
            Some(l) => l.clone(),
            None => Layout::detect(source)?,
        };
        let mut reader = WeightReader::new(source, layout);
        let mut config = match &options.config {
            Some(c) => c.clone(),
            None => {
                let mut c = reader.infer_config(hf_config).or_else(|e| {
                    // Heads below 64-wide cannot be inferred; an override fixes that.
                    if options.vision_heads.is_some() || options.text_heads.is_some() {
                        reader.infer_config_unchecked(hf_config)
                    } else {
                        Err(e)
                    }
                })?;
                if let (Some(v), Some(h)) = (c.vision.as_mut(), options.vision_heads) {
                    v.heads = h;
                }
                if let (Some(t), Some(h)) = (c.text.as_mut(), options.text_heads) {
                    t.heads = h;
                }
                c
            }
        };
        if options.skip_text {
            config.text = None;
        }
        if options.skip_vision {
            config.vision = None;
        }
        config.validate()?;
        let vision = config
            .vision
            .as_ref()
            .map(|c| VisionTransformer::from_weights(&mut reader, c, device))
            .transpose()?;
        let text = config
            .text
            .as_ref()
            .map(|c| TextTransformer::from_weights(&mut reader, c, device))
            .transpose()?;
        Ok(Self {
            config,
            vision,
            text,
        })
    }

    /// A model with random weights (benchmarks, training from scratch).
    pub fn random(config: ClipConfig, seed: u64, device: &B::Device) -> Result<Self> {
        config.validate()?;
        let mut src = RandomParams::new(seed);
        let vision = config
            .vision
            .as_ref()
            .map(|c| VisionTransformer::load(&mut src, c, device))
            .transpose()?;
        let text = config
            .text
            .as_ref()
            .map(|c| TextTransformer::load(&mut src, c, device))
            .transpose()?;
        Ok(Self {
            config,
            vision,
            text,
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &ClipConfig {
        &self.config
    }

    /// The vision tower, if loaded.
    pub fn vision(&self) -> Option<&VisionTransformer<B>> {
        self.vision.as_ref()
    }

    /// The text tower, if loaded.
    pub fn text(&self) -> Option<&TextTransformer<B>> {
        self.text.as_ref()
    }

    /// Split into the towers.
    pub fn into_towers(self) -> (Option<VisionTransformer<B>>, Option<TextTransformer<B>>) {
        (self.vision, self.text)
    }

    fn vision_tower(&self) -> Result<&VisionTransformer<B>> {
        self.vision
            .as_ref()
            .ok_or(ClipError::MissingTower("vision"))
    }

    fn text_tower(&self) -> Result<&TextTransformer<B>> {
        self.text.as_ref().ok_or(ClipError::MissingTower("text"))
    }

    /// Image embeddings (not normalised) of preprocessed images
    /// `[batch, 3, R, R]`: `[batch, output_dim]`.
    pub fn encode_image(&self, images: Tensor<B, 4>) -> Result<Tensor<B, 2>> {
        Ok(self
            .vision_tower()?
            .forward(images, OutputOptions::default())?
            .embeds)
    }

    /// The vision tower with extra outputs.
    pub fn vision_forward(
        &self,
        images: Tensor<B, 4>,
        options: OutputOptions,
    ) -> Result<VisionOutput<B>> {
        self.vision_tower()?.forward(images, options)
    }

    /// Text embeddings (not normalised) of token rows of equal length
    /// (e.g. [`crate::tokenizer::ClipTokenizer::tokenize`] output):
    /// `[rows, output_dim]`.
    pub fn encode_text(&self, rows: &[Vec<u32>]) -> Result<Tensor<B, 2>> {
        Ok(self
            .text_tower()?
            .forward(rows, OutputOptions::default())?
            .embeds)
    }

    /// The text tower with extra outputs.
    pub fn text_forward(&self, rows: &[Vec<u32>], options: OutputOptions) -> Result<TextOutput<B>> {
        self.text_tower()?.forward(rows, options)
    }
}

/// `config.json` is read beside `model.safetensors`-style files only, not
/// beside arbitrary `.pth` files in the same folder.
fn is_hf_sidecar(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("safetensors"))
}

/// L2-normalise rows (`x / ‖x‖`, as CLIP's `x / x.norm(dim=-1, keepdim=True)`).
pub fn normalize<B: Backend>(x: Tensor<B, 2>) -> Tensor<B, 2> {
    let norm = x.clone().powi_scalar(2).sum_dim(1).sqrt();
    x / norm
}
