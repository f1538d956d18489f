//! Vision-language models for V2L: one image/text embedding space shared by
//! the codebooks (text side) and the global branch (image side).
//!
//! Two models implement [`VisionLanguage`]:
//! - **CLIP** ([`ClipVl`]: the towers of `v2l-clip`), what the reference uses;
//! - **ConSE** ([`conse::Conse`]): EfficientNet-Lite0's ImageNet-1k class
//!   probabilities combining the all-MiniLM-L6-v2 sentence embeddings of the
//!   class names — built from registry assets only, the default model's
//!   vision-language model.
//!
//! [`VlConfig`] describes either in a bundle's `vl` section; [`ImageTower`]
//! is the image side as a burn module, held by the V2L model.
//!
//! ```no_run
//! use burn::backend::NdArray;
//! use v2l_vl::{Vl, VisionLanguage};
//! # fn main() -> v2l_vl::Result<()> {
//! let device = Default::default();
//! let vl = Vl::<NdArray>::load("conse", &device)?; // the cached registry assets
//! let words = vl.embed_texts(&["a photo of a cat.".to_string()])?;
//! println!("{:?}", words.dims());
//! # Ok(()) }
//! ```

pub mod bert;
pub mod conse;
pub mod efficientnet;
mod error;

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};
use v2l_clip::{Clip, ClipPreprocess, ClipTokenizer, Truncation, VisionConfig, VisionTransformer};
use v2l_nn::Precision;

pub use bert::{BertConfig, BertModel, SentenceEncoder};
pub use conse::{Conse, ConseConfig, ConseImage, ConsePaths};
pub use efficientnet::EfficientNetLite;
pub use error::{Result, VlError};

/// An image/text embedding space: unit-length image and text embeddings of
/// the same width, comparable by cosine.
pub trait VisionLanguage<B: Backend> {
    /// Embedding width.
    fn dim(&self) -> usize;
    /// The device the model runs on.
    fn device(&self) -> B::Device;
    /// Unit image embeddings `[n, dim]` of decoded images (preprocessed
    /// with [`preprocess`](Self::preprocess), in batches of `batch`).
    ///
    /// # Errors
    /// An image that cannot be preprocessed; as
    /// [`embed_images`](Self::embed_images).
    fn embed_decoded(&self, images: &[image::DynamicImage], batch: usize) -> Result<Tensor<B, 2>> {
        let pre = self.preprocess()?;
        let r = pre.resolution();
        let device = self.device();
        let mut parts = Vec::new();
        for chunk in images.chunks(batch.max(1)) {
            let data = pre
                .apply_batch(chunk)
                .map_err(|e| VlError::InvalidInput(e.to_string()))?;
            let x = Tensor::<B, 4>::from_data(
                burn::tensor::TensorData::new(data, [chunk.len(), 3, r, r]),
                &device,
            );
            parts.push(self.embed_images(x)?);
        }
        if parts.is_empty() {
            return Err(VlError::InvalidInput("no images to embed".into()));
        }
        Ok(Tensor::cat(parts, 0))
    }
    /// How images are brought to the image side's input.
    ///
    /// # Errors
    /// A model without an image side.
    fn preprocess(&self) -> Result<ClipPreprocess>;
    /// Unit image embeddings `[n, dim]` of preprocessed images
    /// `[n, 3, R, R]`.
    ///
    /// # Errors
    /// A model without an image side; wrong shapes.
    fn embed_images(&self, images: Tensor<B, 4>) -> Result<Tensor<B, 2>>;
    /// Unit text embeddings `[n, dim]` (no prompt template applied).
    ///
    /// # Errors
    /// A model without a text side; text it cannot encode.
    fn embed_texts(&self, texts: &[String]) -> Result<Tensor<B, 2>>;
    /// The description a bundle stores (`None` for a CLIP without a vision
    /// tower).
    fn vl_config(&self) -> Option<VlConfig>;
}

/// A bundle's `vl` section: which vision-language model the global branch
/// and the codebooks were built with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum VlConfig {
    /// A CLIP vision tower stored with the bundle.
    Clip {
        /// The tower's configuration.
        vision: VisionConfig,
    },
    /// ConSE over registry assets (nothing stored with the bundle).
    Conse(ConseConfig),
}

impl VlConfig {
    /// Width of the image embeddings.
    pub fn output_dim(&self) -> Option<usize> {
        match self {
            VlConfig::Clip { vision } => Some(vision.output_dim),
            // MiniLM-L6's width; checked against the loaded model.
            VlConfig::Conse(_) => None,
        }
    }

    /// The image preprocessing.
    ///
    /// # Errors
    /// Invalid constants.
    pub fn preprocess(&self) -> Result<ClipPreprocess> {
        match self {
            VlConfig::Clip { vision } => Ok(ClipPreprocess::new(vision.input_resolution)),
            VlConfig::Conse(c) => c.preprocess(),
        }
    }

    /// A short name for logs (`clip` / `conse`).
    pub fn kind(&self) -> &'static str {
        match self {
            VlConfig::Clip { .. } => "clip",
            VlConfig::Conse(_) => "conse",
        }
    }
}

/// The image side of a vision-language model as a burn module (what a V2L
/// model holds for its global branch).
#[derive(Module, Debug)]
pub enum ImageTower<B: Backend> {
    /// CLIP's vision transformer (embeddings not normalised by the tower).
    Clip(VisionTransformer<B>),
    /// ConSE's classifier and class embeddings.
    Conse(ConseImage<B>),
}

impl<B: Backend> ImageTower<B> {
    /// Image embeddings `[n, d]` of preprocessed images: CLIP's projection
    /// output (not normalised; callers normalise) or ConSE's unit vector.
    ///
    /// # Errors
    /// Wrong image shapes; non-finite logits.
    pub fn embed(&self, images: Tensor<B, 4>) -> Result<Tensor<B, 2>> {
        match self {
            ImageTower::Clip(v) => Ok(v
                .forward(images, v2l_clip::OutputOptions::default())?
                .embeds),
            ImageTower::Conse(c) => c.embed(images),
        }
    }

    /// The tower in `precision`: CLIP as the reference runs it in fp16
    /// ([`VisionTransformer::into_precision`]), ConSE's classifier in f16
    /// ([`ConseImage::into_precision`]). Embeddings are f32 either way.
    pub fn into_precision(self, precision: Precision) -> Self {
        match self {
            ImageTower::Clip(v) => ImageTower::Clip(v.into_precision(precision)),
            ImageTower::Conse(c) => ImageTower::Conse(c.into_precision(precision)),
        }
    }

    /// Embedding width.
    pub fn dim(&self) -> usize {
        match self {
            ImageTower::Clip(v) => v.proj.dims()[1],
            ImageTower::Conse(c) => c.dim(),
        }
    }
}

/// CLIP as a [`VisionLanguage`]: the model and, for texts, its BPE
/// tokenizer (prompts longer than the context are an error).
#[derive(Debug)]
pub struct ClipVl<B: Backend> {
    /// The towers.
    pub clip: Clip<B>,
    /// The tokenizer (needed for [`VisionLanguage::embed_texts`]).
    pub tokenizer: Option<ClipTokenizer>,
    /// The device the towers are on.
    pub device: B::Device,
}

impl<B: Backend> VisionLanguage<B> for ClipVl<B> {
    fn dim(&self) -> usize {
        self.clip
            .config()
            .vision
            .as_ref()
            .map(|v| v.output_dim)
            .or_else(|| self.clip.config().text.as_ref().map(|t| t.output_dim))
            .unwrap_or(0)
    }

    fn device(&self) -> B::Device {
        self.device.clone()
    }

    fn preprocess(&self) -> Result<ClipPreprocess> {
        Ok(self.clip.preprocess()?)
    }

    fn embed_images(&self, images: Tensor<B, 4>) -> Result<Tensor<B, 2>> {
        Ok(bert::normalize_rows(self.clip.encode_image(images)?))
    }

    fn embed_texts(&self, texts: &[String]) -> Result<Tensor<B, 2>> {
        let tok = self.tokenizer.as_ref().ok_or_else(|| {
            VlError::InvalidInput("CLIP text embeddings need the CLIP BPE tokenizer".into())
        })?;
        let context = self
            .clip
            .text()
            .map(|t| t.context_length())
            .ok_or_else(|| VlError::InvalidInput("the CLIP model has no text tower".into()))?;
        let rows = tok
            .tokenize_batch(texts, context, Truncation::Error)
            .map_err(|e| VlError::Tokenizer(e.to_string()))?;
        Ok(bert::normalize_rows(self.clip.encode_text(&rows)?))
    }

    fn vl_config(&self) -> Option<VlConfig> {
        self.clip
            .config()
            .vision
            .clone()
            .map(|vision| VlConfig::Clip { vision })
    }
}

impl<B: Backend> VisionLanguage<B> for Conse<B> {
    fn dim(&self) -> usize {
        self.text.dim()
    }

    fn device(&self) -> B::Device {
        self.text.device()
    }

    fn preprocess(&self) -> Result<ClipPreprocess> {
        self.config.preprocess()
    }

    fn embed_images(&self, images: Tensor<B, 4>) -> Result<Tensor<B, 2>> {
        self.image.embed(images)
    }

    fn embed_texts(&self, texts: &[String]) -> Result<Tensor<B, 2>> {
        self.text.embed(texts)
    }

    fn vl_config(&self) -> Option<VlConfig> {
        Some(VlConfig::Conse(self.config.clone()))
    }
}

/// Either vision-language model, chosen at run time.
#[derive(Debug)]
pub enum Vl<B: Backend> {
    /// CLIP.
    Clip(Box<ClipVl<B>>),
    /// ConSE.
    Conse(Box<Conse<B>>),
}

impl<B: Backend> Vl<B> {
    /// Load by a `--vl` value: `conse` or `default` (ConSE over the cached
    /// registry assets, default settings), or a CLIP weights path (with the
    /// cached `clip-bpe` tokenizer when present).
    ///
    /// # Errors
    /// Missing assets (naming the `v2l assets fetch` command) or files.
    pub fn load(spec: &str, device: &B::Device) -> Result<Self> {
        match spec {
            "conse" | "default" => Ok(Vl::Conse(Box::new(Conse::load(
                &conse_paths_from_cache(&ConseConfig::default())?,
                ConseConfig::default(),
                device,
            )?))),
            path => {
                let clip = Clip::<B>::load(path, device)?;
                let tokenizer = cached_file("clip-bpe", None)
                    .ok()
                    .and_then(|p| ClipTokenizer::from_bpe_file(p).ok());
                Ok(Vl::Clip(Box::new(ClipVl {
                    clip,
                    tokenizer,
                    device: device.clone(),
                })))
            }
        }
    }

    /// Load the model a bundle's `vl` section describes: ConSE from the
    /// cache; CLIP needs its weights, so only ConSE is loadable this way.
    ///
    /// # Errors
    /// A CLIP section (load CLIP weights by path), missing assets.
    pub fn from_config(config: &VlConfig, device: &B::Device) -> Result<Self> {
        match config {
            VlConfig::Conse(c) => Ok(Vl::Conse(Box::new(Conse::load(
                &conse_paths_from_cache(c)?,
                c.clone(),
                device,
            )?))),
            VlConfig::Clip { .. } => Err(VlError::InvalidInput(
                "a CLIP vision-language model is loaded from its weights file (--vl PATH)".into(),
            )),
        }
    }

    /// The model as the trait.
    pub fn as_dyn(&self) -> &dyn VisionLanguage<B> {
        match self {
            Vl::Clip(c) => c.as_ref(),
            Vl::Conse(c) => c.as_ref(),
        }
    }

    /// The image side as a module (for a V2L model's global branch).
    ///
    /// # Errors
    /// A CLIP model without a vision tower.
    pub fn into_image_tower(self) -> Result<(ImageTower<B>, VlConfig)> {
        match self {
            Vl::Clip(c) => {
                let c = *c;
                let config = c.vl_config().ok_or_else(|| {
                    VlError::InvalidInput("the CLIP model has no vision tower".into())
                })?;
                let (vision, _) = c.clip.into_towers();
                let vision = vision.ok_or_else(|| {
                    VlError::InvalidInput("the CLIP model has no vision tower".into())
                })?;
                Ok((ImageTower::Clip(vision), config))
            }
            Vl::Conse(c) => {
                let config = VlConfig::Conse(c.config.clone());
                Ok((ImageTower::Conse(c.image), config))
            }
        }
    }
}

impl<B: Backend> VisionLanguage<B> for Vl<B> {
    fn dim(&self) -> usize {
        self.as_dyn().dim()
    }
    fn device(&self) -> B::Device {
        self.as_dyn().device()
    }
    fn preprocess(&self) -> Result<ClipPreprocess> {
        self.as_dyn().preprocess()
    }
    fn embed_images(&self, images: Tensor<B, 4>) -> Result<Tensor<B, 2>> {
        self.as_dyn().embed_images(images)
    }
    fn embed_texts(&self, texts: &[String]) -> Result<Tensor<B, 2>> {
        self.as_dyn().embed_texts(texts)
    }
    fn vl_config(&self) -> Option<VlConfig> {
        self.as_dyn().vl_config()
    }
}

/// A cached asset file's path ([`v2l_assets::fetch::cached_file`]).
///
/// # Errors
/// An unknown asset, or a file that is not in the cache (naming the fetch
/// command).
pub fn cached_file(asset: &str, file: Option<&str>) -> Result<PathBuf> {
    v2l_assets::fetch::cached_file(asset, file).map_err(|e| VlError::Asset(e.to_string()))
}

/// The cached files of a ConSE model's assets.
///
/// # Errors
/// As [`cached_file`].
pub fn conse_paths_from_cache(config: &ConseConfig) -> Result<ConsePaths> {
    let image_weights = cached_file(&config.image_model, None)?;
    let text_dir = cached_file(&config.text_model, Some("model.safetensors"))?
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    for f in ["config.json", "tokenizer.json"] {
        cached_file(&config.text_model, Some(f))?;
    }
    let class_names = cached_file(&config.class_names, None)?;
    Ok(ConsePaths {
        image_weights,
        text_dir,
        class_names,
    })
}
