//! [`Clip`]: a loaded CLIP model (either or both towers) and batched encoding.

use std::path::Path;

use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use image::DynamicImage;
use rayon::prelude::*;

use crate::config::ClipConfig;
use crate::error::{ClipError, Result};
use crate::model::{OutputOptions, TextOutput, TextTransformer, VisionOutput, VisionTransformer};
use crate::preprocess::ClipPreprocess;
use crate::tokenizer::{ClipTokenizer, Truncation};
use v2l_nn::Precision;

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
    /// Run in this precision ([`Precision::F16`]: fp16 weights and
    /// activations with f32 LayerNorms, as the reference runs CLIP).
    pub precision: Precision,
}

/// A CLIP model: an image tower, a text tower, or both.
///
/// Weights in f16/bf16 are read as f32; the towers compute in f32, or in f16
/// with [`LoadOptions::precision`] (outputs are f32 either way).
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
        let reader = WeightReader::new(source, layout);
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
            .map(|c| VisionTransformer::from_weights(&reader, c, device))
            .transpose()?
            .map(|t| t.into_precision(options.precision));
        let text = config
            .text
            .as_ref()
            .map(|c| TextTransformer::from_weights(&reader, c, device))
            .transpose()?
            .map(|t| t.into_precision(options.precision));
        Ok(Self {
            config,
            vision,
            text,
        })
    }

    /// A model with random weights (benchmarks, training from scratch).
    pub fn random(config: ClipConfig, seed: u64, device: &B::Device) -> Result<Self> {
        config.validate()?;
        let vb = v2l_nn::Loader::random(seed, device);
        let vision = config
            .vision
            .as_ref()
            .map(|c| VisionTransformer::load(&vb, c))
            .transpose()?;
        let text = config
            .text
            .as_ref()
            .map(|c| TextTransformer::load(&vb, c))
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
        self.text_tower()?.embed(rows)
    }

    /// The text tower with extra outputs.
    pub fn text_forward(&self, rows: &[Vec<u32>], options: OutputOptions) -> Result<TextOutput<B>> {
        self.text_tower()?.forward(rows, options)
    }
}

impl<B: Backend> Clip<B> {
    /// OpenAI CLIP's preprocessing at this model's vision resolution
    /// (bicubic short-side resize, centre crop, CLIP mean/std).
    pub fn preprocess(&self) -> Result<ClipPreprocess> {
        let tower = self.vision_tower()?;
        Ok(ClipPreprocess::new(tower.input_resolution))
    }

    /// Preprocessed images as a `[n, 3, R, R]` tensor on this model's device.
    pub fn images_to_tensor(&self, images: &[DynamicImage]) -> Result<Tensor<B, 4>> {
        let tower = self.vision_tower()?;
        let r = tower.input_resolution;
        let data = self.preprocess()?.apply_batch(images)?;
        let device = tower.class_embedding.device();
        Ok(Tensor::from_data(
            TensorData::new(data, [images.len(), 3, r, r]),
            &device,
        ))
    }

    /// Image embeddings (not normalised) of decoded images, preprocessed and
    /// run in batches of `batch_size`: `[n, output_dim]`.
    pub fn encode_images(
        &self,
        images: &[DynamicImage],
        batch_size: usize,
    ) -> Result<Tensor<B, 2>> {
        check_batch(images.len(), batch_size)?;
        let parts = images
            .chunks(batch_size)
            .map(|chunk| self.encode_image(self.images_to_tensor(chunk)?))
            .collect::<Result<Vec<_>>>()?;
        Ok(Tensor::cat(parts, 0))
    }

    /// Image embeddings (not normalised) of image files (PNG or JPEG), in
    /// batches of `batch_size`: `[n, output_dim]`. Files are decoded and
    /// preprocessed in parallel, one batch at a time, so memory stays bounded.
    pub fn encode_image_files<P: AsRef<Path> + Sync>(
        &self,
        paths: &[P],
        batch_size: usize,
    ) -> Result<Tensor<B, 2>> {
        check_batch(paths.len(), batch_size)?;
        let tower = self.vision_tower()?;
        let r = tower.input_resolution;
        let pre = self.preprocess()?;
        let device = tower.class_embedding.device();
        let mut parts = Vec::new();
        for chunk in paths.chunks(batch_size) {
            let pixels = chunk
                .par_iter()
                .map(|p| pre.open(p))
                .collect::<std::result::Result<Vec<_>, _>>()?;
            let data: Vec<f32> = pixels.concat();
            let t = Tensor::from_data(TensorData::new(data, [chunk.len(), 3, r, r]), &device);
            parts.push(self.encode_image(t)?);
        }
        Ok(Tensor::cat(parts, 0))
    }

    /// Tokenise texts with `tokenizer` (at the text tower's context length,
    /// with the given truncation policy) and embed them in batches of
    /// `batch_size`: `[n, output_dim]`, not normalised.
    pub fn encode_texts<S: AsRef<str> + Sync>(
        &self,
        tokenizer: &ClipTokenizer,
        texts: &[S],
        truncation: Truncation,
        batch_size: usize,
    ) -> Result<Tensor<B, 2>> {
        check_batch(texts.len(), batch_size)?;
        let context = self.text_tower()?.context_length();
        let parts = texts
            .chunks(batch_size)
            .map(|chunk| {
                let rows = tokenizer.tokenize_batch(chunk, context, truncation)?;
                self.encode_text(&rows)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Tensor::cat(parts, 0))
    }
}

fn check_batch(n: usize, batch_size: usize) -> Result<()> {
    if n == 0 {
        return Err(ClipError::InvalidInput(
            "nothing to encode (empty input list)".into(),
        ));
    }
    if batch_size == 0 {
        return Err(ClipError::InvalidInput(
            "batch_size must be at least 1".into(),
        ));
    }
    Ok(())
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
