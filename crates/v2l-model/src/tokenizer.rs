//! [`V2lTokenizer`]: the model ready for inference on images — both
//! preprocessing branches, the codebooks prepared once, the global words,
//! batching — and its provenance.

use std::path::{Path, PathBuf};

use burn::tensor::{backend::Backend, Tensor, TensorData};
use image::{DynamicImage, RgbImage};
use v2l_nn::Precision;
use v2l_quant::tensor::TensorCodebook;

use crate::bundle::{is_bundle, Bundle};
use crate::config::{ImageSize, ModelConfig};
use crate::error::{ModelError, Result};
use crate::import::OfficialCheckpoint;
use crate::model::{ids_tensor, ids_to_rows, V2lModel};
use crate::preprocess::TokenizerPreprocess;
use crate::tokens::VisualTokens;

/// How to open a checkpoint for inference.
#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    /// Tokenizer input size (square); default: the bundle's, else 128.
    pub image_size: Option<usize>,
    /// Global tokens per image; default: the bundle's, else 21.
    pub global_tokens: Option<usize>,
    /// The global codebook's strings (`global_vocabulary.npy`, a JSON list or
    /// a `{"strings": [...]}` file), overriding the bundle's.
    pub global_vocab: Option<PathBuf>,
    /// A `config.json` that replaces the inferred configuration of an
    /// official checkpoint.
    pub config: Option<PathBuf>,
    /// Images per forward pass (default 8).
    pub batch_size: Option<usize>,
    /// The precision of the image tower of the global branch (default f32;
    /// f16 runs CLIP as the reference does). The rest of the model runs in
    /// f32.
    pub precision: Precision,
}

/// The V2L tokenizer for inference: images → [`VisualTokens`] → images.
#[derive(Debug)]
pub struct V2lTokenizer<B: Backend> {
    model: V2lModel<B>,
    local: TensorCodebook<B>,
    global: TensorCodebook<B>,
    words: Option<Vec<String>>,
    device: B::Device,
    batch_size: usize,
    provenance: serde_json::Value,
}

/// Read global strings from `.npy` (object array of str, read safely), a
/// JSON list, or a JSON object with `strings`.
///
/// # Errors
/// Unreadable or malformed file.
pub fn read_global_vocab(path: &Path) -> Result<Vec<String>> {
    let is_npy = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("npy"));
    if is_npy {
        return Ok(v2l_io::npy::read(path)?.to_strings()?);
    }
    let text = std::fs::read_to_string(path).map_err(|source| ModelError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| ModelError::Json {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let list = v.get("strings").unwrap_or(&v);
    serde_json::from_value::<Vec<String>>(list.clone()).map_err(|e| ModelError::Json {
        path: path.to_path_buf(),
        message: format!("expected a list of strings (or {{\"strings\": [...]}}): {e}"),
    })
}

impl<B: Backend> V2lTokenizer<B> {
    /// Wrap a model: project and prepare both codebooks once.
    ///
    /// # Errors
    /// A word list whose length differs from the global codebook's rows;
    /// non-finite codebook rows.
    pub fn new(model: V2lModel<B>, words: Option<Vec<String>>, device: &B::Device) -> Result<Self> {
        if let Some(w) = &words {
            if w.len() != model.config().n_global {
                return Err(ModelError::InvalidInput(format!(
                    "{} global words for a global codebook of {} rows",
                    w.len(),
                    model.config().n_global
                )));
            }
        }
        let local = model.prepare_local()?;
        let global = model.prepare_global()?;
        Ok(Self {
            model,
            local,
            global,
            words,
            device: device.clone(),
            batch_size: 8,
            provenance: serde_json::Value::Null,
        })
    }

    /// Open a bundle folder or an official `.pth` checkpoint.
    ///
    /// # Errors
    /// Unreadable files, weights that do not fit, invalid options.
    pub fn open(path: impl AsRef<Path>, options: &OpenOptions, device: &B::Device) -> Result<Self> {
        let path = path.as_ref();
        let (model, mut words, hash_file, kind, recorded) = if is_bundle(path) {
            let bundle = Bundle::open(path)?;
            let mut config = bundle.config().clone();
            apply_options(&mut config, options)?;
            let model = bundle.load::<B>(&config, device)?;
            let words = bundle.global_words().map(<[String]>::to_vec);
            let recorded = bundle.provenance().clone();
            (
                model,
                words,
                path.join("model.safetensors"),
                "bundle",
                recorded,
            )
        } else if path.is_dir() {
            return Err(ModelError::InvalidInput(format!(
                "{}: a folder that is not a bundle (no config.json + model.safetensors)",
                path.display()
            )));
        } else {
            let ck = OfficialCheckpoint::open(path)?;
            let mut config = match &options.config {
                Some(c) => ModelConfig::from_json_file(c)?,
                None => ck.infer_config(
                    options.image_size.map(ImageSize::Square),
                    options.global_tokens,
                )?,
            };
            apply_options(&mut config, options)?;
            let model = ck.load::<B>(&config, device)?;
            let recorded = serde_json::Value::Null;
            (model, None, path.to_path_buf(), "official", recorded)
        };
        if let Some(v) = &options.global_vocab {
            words = Some(read_global_vocab(v)?);
        }
        let model = model.with_vl_precision(options.precision);
        let mut t = Self::new(model, words, device)?;
        if let Some(b) = options.batch_size {
            t.batch_size = b.max(1);
        }
        let c = t.model.config();
        t.provenance = serde_json::json!({
            "checkpoint": path.display().to_string(),
            "kind": kind,
            "sha256": v2l_io::hash::sha256_file(&hash_file)
                .map_err(|e| ModelError::Backend(format!("hashing {}: {e}", hash_file.display())))?,
            "hashed_file": hash_file.file_name().map(|n| n.to_string_lossy().to_string()),
            "image_size": c.image_size,
            "k": c.k,
            "n_local": c.n_local,
            "n_global": c.n_global,
            "bundle": recorded,
            "tool": concat!("v2l-model ", env!("CARGO_PKG_VERSION")),
        });
        Ok(t)
    }

    /// The model.
    pub fn model(&self) -> &V2lModel<B> {
        &self.model
    }

    /// The device the model runs on.
    pub fn device(&self) -> &B::Device {
        &self.device
    }

    /// The configuration.
    pub fn config(&self) -> &ModelConfig {
        self.model.config()
    }

    /// The global strings, if known.
    pub fn global_words(&self) -> Option<&[String]> {
        self.words.as_deref()
    }

    /// Provenance of the loaded checkpoint (JSON).
    pub fn provenance(&self) -> &serde_json::Value {
        &self.provenance
    }

    /// Images per forward pass.
    pub fn set_batch_size(&mut self, n: usize) {
        self.batch_size = n.max(1);
    }

    /// The tokenizer-branch input size (square).
    ///
    /// # Errors
    /// The configured size is not square.
    pub fn image_size(&self) -> Result<usize> {
        match self.config().image_size {
            ImageSize::Square(n) => Ok(n),
            ImageSize::Rect([h, w]) if h == w => Ok(h),
            ImageSize::Rect([h, w]) => Err(ModelError::Config(format!(
                "image files are preprocessed to a square; image_size is {h}×{w}"
            ))),
        }
    }

    /// Tokens of preprocessed tensors: `images` `[B, 3, H, W]` in `[-1, 1]`
    /// and `clip_images` `[B, 3, R, R]` (CLIP-normalised).
    ///
    /// # Errors
    /// As [`V2lModel::encode_local`] and [`V2lModel::encode_global`].
    pub fn encode_tensors(
        &self,
        images: Tensor<B, 4>,
        clip_images: Tensor<B, 4>,
    ) -> Result<VisualTokens> {
        let embedding = self.model.image_embedding(clip_images)?;
        self.encode_with_embedding(images, embedding)
    }

    /// Tokens of preprocessed images with a precomputed CLIP embedding
    /// `[B, D]`.
    ///
    /// # Errors
    /// As [`V2lModel::encode_local`] and [`V2lModel::encode_global`].
    pub fn encode_with_embedding(
        &self,
        images: Tensor<B, 4>,
        embedding: Tensor<B, 2>,
    ) -> Result<VisualTokens> {
        let k = self.config().k;
        let local = self.model.encode_local(images, Some(&self.local))?;
        let global = self.model.encode_global(embedding, k, Some(&self.global))?;
        let global_ids = ids_to_rows(global.global_ids)?;
        let global_words = self.words.as_ref().map(|w| {
            global_ids
                .iter()
                .map(|row| row.iter().map(|&i| w[i as usize].clone()).collect())
                .collect()
        });
        Ok(VisualTokens {
            global_ids,
            global_words,
            local_ids: ids_to_rows(local.local_ids)?,
            grid: [local.grid.0, local.grid.1],
        })
    }

    /// Tokens of a model trained without an image embedder
    /// ([`ModelConfig::fixed_global_ids`]): local ids of `images` `[B, 3, H,
    /// W]` in `[-1, 1]`, global ids `0..k` for every image.
    ///
    /// # Errors
    /// As [`V2lModel::encode_local`].
    pub fn encode_fixed_global(&self, images: Tensor<B, 4>) -> Result<VisualTokens> {
        let [b, _, _, _] = images.dims();
        let k = self.config().k;
        let local = self.model.encode_local(images, Some(&self.local))?;
        let ids: Vec<Vec<u32>> = (0..b).map(|_| (0..k as u32).collect()).collect();
        let global_words = self.words.as_ref().map(|w| {
            ids.iter()
                .map(|row| row.iter().map(|&i| w[i as usize].clone()).collect())
                .collect()
        });
        Ok(VisualTokens {
            global_ids: ids,
            global_words,
            local_ids: ids_to_rows(local.local_ids)?,
            grid: [local.grid.0, local.grid.1],
        })
    }

    /// The tokenizer branch's input alone: `[B,3,N,N]` in `[-1,1]`.
    ///
    /// # Errors
    /// An image that cannot be preprocessed.
    pub fn preprocess_local(&self, images: &[DynamicImage]) -> Result<Tensor<B, 4>> {
        let size = self.image_size()?;
        let tok = TokenizerPreprocess::new(size as u32);
        let mut a = Vec::with_capacity(images.len() * 3 * size * size);
        for im in images {
            a.extend(tok.apply(&v2l_clip::preprocess::to_rgb8(im))?);
        }
        Ok(Tensor::from_data(
            TensorData::new(a, [images.len(), 3, size, size]),
            &self.device,
        ))
    }

    /// Preprocess images for both branches: `([B,3,N,N]` in `[-1,1]`,
    /// `[B,3,R,R]` CLIP-normalised`)`.
    ///
    /// # Errors
    /// No CLIP tower; an image that cannot be preprocessed.
    pub fn preprocess(&self, images: &[DynamicImage]) -> Result<(Tensor<B, 4>, Tensor<B, 4>)> {
        let size = self.image_size()?;
        let clip = self.config().vl_preprocess()?;
        let r = clip.resolution();
        let tok = TokenizerPreprocess::new(size as u32);
        let b = images.len();
        let mut a = Vec::with_capacity(b * 3 * size * size);
        let mut c = Vec::with_capacity(b * 3 * r * r);
        for im in images {
            let rgb = v2l_clip::preprocess::to_rgb8(im);
            a.extend(tok.apply(&rgb)?);
            c.extend(clip.apply(im).map_err(v2l_clip::ClipError::from)?);
        }
        Ok((
            Tensor::from_data(TensorData::new(a, [b, 3, size, size]), &self.device),
            Tensor::from_data(TensorData::new(c, [b, 3, r, r]), &self.device),
        ))
    }

    /// Tokens of decoded images, in batches.
    ///
    /// # Errors
    /// As [`preprocess`](Self::preprocess) and
    /// [`encode_tensors`](Self::encode_tensors).
    pub fn encode_images(&self, images: &[DynamicImage]) -> Result<VisualTokens> {
        let mut out: Option<VisualTokens> = None;
        for chunk in images.chunks(self.batch_size) {
            let t = if self.config().fixed_global_ids {
                let x = self.preprocess_local(chunk)?;
                self.encode_fixed_global(x)?
            } else {
                let (x, c) = self.preprocess(chunk)?;
                self.encode_tensors(x, c)?
            };
            match out.as_mut() {
                None => out = Some(t),
                Some(acc) => acc.append(t)?,
            }
        }
        out.ok_or_else(|| ModelError::InvalidInput("no images to encode".into()))
    }

    /// Tokens of image files (read in batches; an unreadable file is an
    /// error naming it).
    ///
    /// # Errors
    /// As [`encode_images`](Self::encode_images), plus unreadable images.
    pub fn encode_files<P: AsRef<Path>>(&self, paths: &[P]) -> Result<VisualTokens> {
        let mut images = Vec::with_capacity(paths.len());
        for p in paths {
            images.push(open_image(p.as_ref())?);
        }
        self.encode_images(&images)
    }

    /// Decode tokens to images `[B, 3, H, W]` (no clamp).
    ///
    /// # Errors
    /// Inconsistent tokens; ids outside the codebooks.
    pub fn decode(&self, tokens: &VisualTokens) -> Result<Tensor<B, 4>> {
        tokens.validate()?;
        let mut parts = Vec::new();
        for start in (0..tokens.len()).step_by(self.batch_size) {
            let end = (start + self.batch_size).min(tokens.len());
            let local = ids_tensor::<B>(&tokens.local_ids[start..end], &self.device)?;
            let global = ids_tensor::<B>(&tokens.global_ids[start..end], &self.device)?;
            let grid = (tokens.grid[0], tokens.grid[1]);
            let out = self
                .model
                .decode_ids(local, grid, global, Some(&self.local))
                .map_err(|e| match e {
                    ModelError::IdOutOfRange {
                        which,
                        id,
                        image,
                        position,
                        size,
                    } => ModelError::IdOutOfRange {
                        which,
                        id,
                        image: image + start,
                        position,
                        size,
                    },
                    e => e,
                })?;
            parts.push(out);
        }
        Ok(Tensor::cat(parts, 0))
    }

    /// Decode tokens to RGB images (clamped to `[-1, 1]`, then
    /// `round((x + 1) · 127.5)`).
    ///
    /// # Errors
    /// As [`decode`](Self::decode).
    pub fn decode_to_images(&self, tokens: &VisualTokens) -> Result<Vec<RgbImage>> {
        tensor_to_images(self.decode(tokens)?)
    }

    /// Encode and decode (`v2l reconstruct`).
    ///
    /// # Errors
    /// As [`encode_images`](Self::encode_images) and
    /// [`decode`](Self::decode).
    pub fn reconstruct_images(&self, images: &[DynamicImage]) -> Result<Vec<RgbImage>> {
        let tokens = self.encode_images(images)?;
        self.decode_to_images(&tokens)
    }
}

fn apply_options(config: &mut ModelConfig, options: &OpenOptions) -> Result<()> {
    if let Some(n) = options.image_size {
        config.image_size = ImageSize::Square(n);
    }
    if let Some(k) = options.global_tokens {
        config.k = k;
    }
    config.validate()
}

/// Open and decode an image file; errors name the file.
///
/// # Errors
/// [`ModelError::Image`].
pub fn open_image(path: &Path) -> Result<DynamicImage> {
    image::ImageReader::open(path)
        .map_err(|e| ModelError::Image {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?
        .with_guessed_format()
        .map_err(|e| ModelError::Image {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?
        .decode()
        .map_err(|e| ModelError::Image {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
}

/// `[B, 3, H, W]` in `[-1, 1]` → RGB images: clamp, then
/// `round((x + 1) · 127.5)`.
///
/// # Errors
/// Not three channels; backend data errors.
pub fn tensor_to_images<B: Backend>(x: Tensor<B, 4>) -> Result<Vec<RgbImage>> {
    let [b, c, h, w] = x.dims();
    if c != 3 {
        return Err(ModelError::InvalidInput(format!(
            "images need 3 channels, got {c}"
        )));
    }
    let v = x
        .into_data()
        .convert::<f32>()
        .into_vec::<f32>()
        .map_err(|e| ModelError::Backend(format!("{e:?}")))?;
    let plane = h * w;
    let mut out = Vec::with_capacity(b);
    for i in 0..b {
        let base = i * 3 * plane;
        let mut buf = Vec::with_capacity(3 * plane);
        for p in 0..plane {
            for ch in 0..3 {
                let x = v[base + ch * plane + p].clamp(-1.0, 1.0);
                buf.push(((x + 1.0) * 127.5).round() as u8);
            }
        }
        let im = RgbImage::from_raw(w as u32, h as u32, buf)
            .ok_or_else(|| ModelError::Backend("image buffer size".into()))?;
        out.push(im);
    }
    Ok(out)
}
