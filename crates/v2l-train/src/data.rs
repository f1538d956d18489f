//! Training images and the reference's input pipeline (spec §4 "Data").
//!
//! Both input branches come from one image, as `ImageNetDataset` makes
//! them: `clip_preprocess` (Resize the short side to 224 with bicubic,
//! CenterCrop 224, RGB, ToTensor, Normalize with CLIP's mean and std) gives
//! the global branch's input; the tokenizer's input is that same normalised
//! tensor resized to `image_size` with bilinear interpolation
//! (`align_corners = False`, no antialias), de-normalised and mapped to
//! `[-1, 1]`. There is no augmentation.
//!
//! The data order is a permutation per epoch drawn from `(seed, epoch)`
//! alone, so a resumed run sees the same batches as an uninterrupted one.

use std::path::{Path, PathBuf};

use image::DynamicImage;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use v2l_assets::datasets::{DatasetSpec, LabelledImages, Split};
use v2l_clip::ClipPreprocess;
use v2l_nn::modes::StdRng;

use crate::config::TrainConfig;
use crate::error::{Result, TrainError};

/// The CLIP preprocessing resolution of the reference's data pipeline.
pub const CLIP_RESOLUTION: usize = 224;

/// File extensions a folder dataset reads.
const IMAGE_EXTENSIONS: &[&str] = &["png", "jpg", "jpeg"];

/// Where the images come from.
#[derive(Debug)]
enum Source {
    /// Grey images in memory (Fashion-MNIST, MNIST).
    Grey(LabelledImages),
    /// Image files, sorted by path.
    Folder(Vec<PathBuf>),
}

/// A batch in the two layouts the model takes.
#[derive(Debug, Clone)]
pub struct Batch {
    /// Images in the batch.
    pub len: usize,
    /// `[len, 3, image_size, image_size]` tokenizer inputs in `[-1, 1]`.
    pub images: Vec<f32>,
    /// `[len, 3, 224, 224]` inputs of the global branch (CLIP-normalised,
    /// or with the vision-language model's own constants).
    pub clip: Vec<f32>,
}

/// A training or validation image set with the reference's preprocessing
/// (a clone shares the images).
#[derive(Debug, Clone)]
pub struct TrainData {
    source: std::sync::Arc<Source>,
    image_size: usize,
    name: String,
    global_pre: ClipPreprocess,
}

impl TrainData {
    /// The training split named by `config.data`. Everything that can be
    /// checked is checked here, before any training work: the dataset is in
    /// the asset cache, the folder exists, holds images, and every image's
    /// header decodes.
    ///
    /// # Errors
    /// [`TrainError::Data`] naming the dataset, folder or file.
    pub fn train(config: &TrainConfig) -> Result<Self> {
        Self::open(config, Split::Train)
    }

    /// The validation images: Fashion-MNIST's test split, MNIST's own
    /// images (it has one split), or the folder itself.
    ///
    /// # Errors
    /// As [`train`](Self::train).
    pub fn validation(config: &TrainConfig) -> Result<Self> {
        Self::open(config, Split::Test)
    }

    fn open(config: &TrainConfig, split: Split) -> Result<Self> {
        let data_err = |what: &str, e: &dyn std::fmt::Display| {
            TrainError::Data(format!(
                "{what}: {e} (fetch it with `v2l assets fetch {what}`)"
            ))
        };
        let (source, name) = match config.data.dataset.as_str() {
            "folder" => {
                let dir = config.data.path.as_ref().ok_or_else(|| {
                    TrainError::Data("data.dataset = \"folder\" needs data.path".into())
                })?;
                (Source::Folder(list_images(dir)?), dir.display().to_string())
            }
            other => {
                let spec =
                    DatasetSpec::parse(other).map_err(|e| TrainError::Data(e.to_string()))?;
                let d = spec.open(split).map_err(|e| data_err(spec.asset(), &e))?;
                let n = d.name.clone();
                (Source::Grey(d), n)
            }
        };
        let data = Self {
            source: std::sync::Arc::new(source),
            image_size: config.image_size,
            name,
            global_pre: ClipPreprocess::new(CLIP_RESOLUTION),
        };
        if data.is_empty() {
            return Err(TrainError::Data(format!("{}: no images", data.name)));
        }
        Ok(data)
    }

    /// Images in the set.
    pub fn len(&self) -> usize {
        match &*self.source {
            Source::Grey(d) => d.len(),
            Source::Folder(f) => f.len(),
        }
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The set's name (dataset and split, or the folder).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Iterations per epoch: full batches only (the reference's loader
    /// drops the last incomplete batch).
    ///
    /// # Errors
    /// [`TrainError::Data`] when the set holds fewer images than one batch.
    pub fn steps_per_epoch(&self, batch_size: usize) -> Result<u64> {
        let steps = self.len() / batch_size.max(1);
        if steps == 0 {
            return Err(TrainError::Data(format!(
                "{}: {} images, fewer than one batch of {batch_size}",
                self.name,
                self.len()
            )));
        }
        Ok(steps as u64)
    }

    /// Normalise the global branch's input with these constants instead of
    /// CLIP's (ConSE's EfficientNet takes its own); the resolution stays
    /// [`CLIP_RESOLUTION`] and the tokenizer input, made by
    /// de-normalising, does not change.
    ///
    /// # Errors
    /// Non-finite or non-positive constants.
    pub fn with_global_mean_std(mut self, mean: [f32; 3], std: [f32; 3]) -> Result<Self> {
        self.global_pre = ClipPreprocess::new(CLIP_RESOLUTION)
            .with_mean_std(mean, std)
            .map_err(|e| TrainError::Config(e.to_string()))?;
        Ok(self)
    }

    /// The order of epoch `epoch`: a permutation of `0..len` drawn from
    /// `(seed, epoch)` only.
    pub fn order(&self, seed: u64, epoch: u64) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.len()).collect();
        let mut rng = StdRng::seed_from_u64(mix(seed, 0x6461_7461, epoch));
        order.shuffle(&mut rng);
        order
    }

    /// The images at `indices`, preprocessed.
    ///
    /// # Errors
    /// [`TrainError::Data`] naming an unreadable file or an index past the
    /// end.
    pub fn batch(&self, indices: &[usize]) -> Result<Batch> {
        let pre = &self.global_pre;
        let images: Vec<DynamicImage> = indices
            .iter()
            .map(|&i| self.image(i))
            .collect::<Result<_>>()?;
        let clip = pre
            .apply_batch(&images)
            .map_err(|e| TrainError::Data(format!("{}: {e}", self.name)))?;
        let s = self.image_size;
        let resized = v2l_metrics::inception::resize_bilinear(
            &clip,
            [indices.len(), 3, CLIP_RESOLUTION, CLIP_RESOLUTION],
            s,
            s,
        )
        .map_err(|e| TrainError::Data(e.to_string()))?;
        let (mean, std) = (pre.mean(), pre.std());
        let plane = s * s;
        let images = resized
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                let c = (i / plane) % 3;
                2.0 * (v * std[c] + mean[c]) - 1.0
            })
            .collect();
        Ok(Batch {
            len: indices.len(),
            images,
            clip,
        })
    }

    fn image(&self, i: usize) -> Result<DynamicImage> {
        match &*self.source {
            Source::Grey(d) => {
                let px = d.image(i).ok_or_else(|| {
                    TrainError::Data(format!("{}: no image {i} of {}", self.name, d.len()))
                })?;
                let grey = image::GrayImage::from_raw(d.width as u32, d.height as u32, px.to_vec())
                    .ok_or_else(|| {
                        TrainError::Data(format!("{}: image {i} is short", self.name))
                    })?;
                Ok(DynamicImage::ImageLuma8(grey))
            }
            Source::Folder(files) => {
                let path = files.get(i).ok_or_else(|| {
                    TrainError::Data(format!("{}: no image {i} of {}", self.name, files.len()))
                })?;
                decode(path)
            }
        }
    }
}

/// A 64-bit seed from `(seed, stream, index)` (SplitMix64 finaliser over a
/// combination), so that per-epoch and per-step randomness never depends on
/// state carried between steps.
pub fn mix(seed: u64, stream: u64, index: u64) -> u64 {
    let mut z = seed
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(stream.rotate_left(17))
        .wrapping_add(index.wrapping_mul(0xD1B5_4A32_D192_ED03));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The image files of `dir` (non-recursive, sorted), each one's header
/// checked.
fn list_images(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|source| TrainError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| TrainError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = entry.path();
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        if path.is_file() && ext.is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.as_str())) {
            files.push(path);
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(TrainError::Data(format!(
            "{}: no .png, .jpg or .jpeg files",
            dir.display()
        )));
    }
    for f in &files {
        let reader = image::ImageReader::open(f)
            .and_then(|r| r.with_guessed_format())
            .map_err(|source| TrainError::Io {
                path: f.clone(),
                source,
            })?;
        let (w, h) = reader
            .into_dimensions()
            .map_err(|e| TrainError::Data(format!("{}: not a readable image: {e}", f.display())))?;
        if w == 0 || h == 0 {
            return Err(TrainError::Data(format!("{}: empty image", f.display())));
        }
    }
    Ok(files)
}

fn decode(path: &Path) -> Result<DynamicImage> {
    image::ImageReader::open(path)
        .and_then(|r| r.with_guessed_format())
        .map_err(|source| TrainError::Io {
            path: path.to_path_buf(),
            source,
        })?
        .decode()
        .map_err(|e| TrainError::Data(format!("{}: not a readable image: {e}", path.display())))
}
