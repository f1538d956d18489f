//! ConSE (Norouzi et al., ICLR 2014, "Zero-Shot Learning by Convex
//! Combination of Semantic Embeddings"): an image classifier and a text
//! encoder become one image/text embedding space.
//!
//! A class name `c` has the semantic embedding `s(c)`: the text encoder's
//! unit embeddings of `c` in each prompt template, averaged and renormalised.
//! An image `x` with class probabilities `p(c|x) = softmax(logits(x) / τ)`
//! is embedded as `normalise(Σ_{c ∈ top-T(x)} p(c|x) · s(c))` — the
//! paper's convex combination (the `1/Z` of the paper disappears in the
//! normalisation). Ties in the top-T go to the lower class index.
//!
//! In v2l-rs the classifier is EfficientNet-Lite0 and the text encoder
//! all-MiniLM-L6-v2 (both registry assets); [`ConseConfig`] holds `T`, `τ`,
//! the templates and the image normalisation.

use std::path::{Path, PathBuf};

use burn::module::{Module, Param};
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use serde::{Deserialize, Serialize};
use v2l_clip::ClipPreprocess;
use v2l_io::torch_zip::TorchArchive;
use v2l_nn::precision::{to_dtype, to_f32, to_precision};
use v2l_nn::Precision;

use crate::bert::{normalize_rows, SentenceEncoder};
use crate::efficientnet::{EfficientNetLite, IMAGE_SIZE, NUM_CLASSES};
use crate::error::{Result, VlError};

/// ImageNet mean / standard deviation (torchvision's convention).
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
/// See [`IMAGENET_MEAN`].
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];
/// TensorFlow-Lite's EfficientNet-Lite input convention (`(x − 127) / 128`
/// on 0–255, here `(x − 0.5) / 0.5` on `[0, 1]`): the default, because the
/// registry photos are classified more confidently under it
/// (docs/default.md has the evidence).
pub const TFLITE_MEAN: [f32; 3] = [0.5, 0.5, 0.5];
/// See [`TFLITE_MEAN`].
pub const TFLITE_STD: [f32; 3] = [0.5, 0.5, 0.5];

/// The default single template for class names and vocabulary entries: the
/// bare text. A sentence encoder embeds single words as they are, and a
/// three-token input (`[CLS] word [SEP]`) makes SmolLM2's 49,152-entry
/// local codebook about 2.5× cheaper to compute than "a photo of a {}."
/// (docs/default.md).
pub const DEFAULT_TEMPLATE: &str = "{}";

/// The ConSE model's settings (also the bundle's `vl` section).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConseConfig {
    /// Classes combined per image (`T`).
    pub top: usize,
    /// Softmax temperature `τ` applied to the classifier's logits.
    pub temperature: f64,
    /// Prompt templates (each with one `{}`) for class names.
    pub templates: Vec<String>,
    /// Image normalisation mean (R, G, B) after scaling to `[0, 1]`.
    pub mean: [f32; 3],
    /// Image normalisation standard deviation.
    pub std: [f32; 3],
    /// The classifier's asset name.
    #[serde(default = "image_asset")]
    pub image_model: String,
    /// The text encoder's asset name.
    #[serde(default = "text_asset")]
    pub text_model: String,
    /// The class names' asset name.
    #[serde(default = "names_asset")]
    pub class_names: String,
}

fn image_asset() -> String {
    "efficientnet-lite0".into()
}
fn text_asset() -> String {
    "minilm-l6".into()
}
fn names_asset() -> String {
    "imagenet-classes".into()
}

impl Default for ConseConfig {
    /// The default model's settings: `T` = 20, `τ` = 1, chosen on 1000
    /// Fashion-MNIST training images (grey levels inverted, as the default
    /// model sees them) as the best nearest-class-name accuracy of a grid
    /// (`examples/conse_select.rs`; docs/default.md has the table); the
    /// bare-text template; TF-lite normalisation.
    fn default() -> Self {
        Self {
            top: 20,
            temperature: 1.0,
            templates: vec![DEFAULT_TEMPLATE.to_string()],
            mean: TFLITE_MEAN,
            std: TFLITE_STD,
            image_model: image_asset(),
            text_model: text_asset(),
            class_names: names_asset(),
        }
    }
}

impl ConseConfig {
    /// Check the settings.
    ///
    /// # Errors
    /// [`VlError::InvalidConfig`] naming the field.
    pub fn validate(&self) -> Result<()> {
        if self.top == 0 || self.top > NUM_CLASSES {
            return Err(VlError::InvalidConfig(format!(
                "conse top = {} is not in 1..={NUM_CLASSES}",
                self.top
            )));
        }
        if !(self.temperature.is_finite() && self.temperature > 0.0) {
            return Err(VlError::InvalidConfig(format!(
                "conse temperature = {} must be finite and positive",
                self.temperature
            )));
        }
        if self.templates.is_empty() {
            return Err(VlError::InvalidConfig("conse templates: none given".into()));
        }
        for t in &self.templates {
            if t.matches("{}").count() != 1 {
                return Err(VlError::InvalidConfig(format!(
                    "conse template {t:?} must hold exactly one {{}}"
                )));
            }
        }
        self.preprocess().map(|_| ())
    }

    /// The image preprocessing: bicubic short-side resize to 224, centre
    /// crop, this config's mean / std.
    ///
    /// # Errors
    /// Non-finite or non-positive constants.
    pub fn preprocess(&self) -> Result<ClipPreprocess> {
        ClipPreprocess::new(IMAGE_SIZE)
            .with_mean_std(self.mean, self.std)
            .map_err(|e| VlError::InvalidConfig(format!("conse mean/std: {e}")))
    }
}

/// Where the three registry files of a ConSE model are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsePaths {
    /// EfficientNet-Lite0's `.pth`.
    pub image_weights: PathBuf,
    /// The folder with the sentence encoder's `config.json`,
    /// `model.safetensors`, `tokenizer.json`.
    pub text_dir: PathBuf,
    /// The JSON list of the 1000 class names.
    pub class_names: PathBuf,
}

/// The image side as a module: the classifier and the class embeddings.
#[derive(Module, Debug)]
pub struct ConseImage<B: Backend> {
    /// EfficientNet-Lite0.
    pub net: EfficientNetLite<B>,
    /// Semantic embeddings of the classes `[1000, d]` (unit rows; frozen).
    pub classes: Param<Tensor<B, 2>>,
    /// `T`.
    pub top: usize,
    /// `τ`.
    pub temperature: f64,
}

impl<B: Backend> ConseImage<B> {
    /// Assemble; `classes` is `[1000, d]`.
    ///
    /// # Errors
    /// A class matrix of the wrong height; an invalid `top` / `temperature`.
    pub fn new(
        net: EfficientNetLite<B>,
        classes: Tensor<B, 2>,
        top: usize,
        temperature: f64,
    ) -> Result<Self> {
        let [c, _] = classes.dims();
        if c != NUM_CLASSES {
            return Err(VlError::InvalidInput(format!(
                "{c} class embeddings for a {NUM_CLASSES}-class head"
            )));
        }
        if top == 0 || top > NUM_CLASSES || !(temperature.is_finite() && temperature > 0.0) {
            return Err(VlError::InvalidConfig(format!(
                "conse top = {top}, temperature = {temperature}"
            )));
        }
        Ok(Self {
            net,
            classes: Param::from_tensor(classes).set_require_grad(false),
            top,
            temperature,
        })
    }

    /// Embedding width.
    pub fn dim(&self) -> usize {
        self.classes.dims()[1]
    }

    /// The classifier in `precision` (f16: weights and activations; the
    /// logits are read as f32). The class embeddings and the combination
    /// stay in f32.
    pub fn into_precision(mut self, precision: Precision) -> Self {
        self.net = to_precision(self.net, precision);
        self
    }

    /// The combination weights `[n, 1000]` from logits: `p(c|x)` on the
    /// top-T classes, 0 elsewhere (computed on the host in f64).
    ///
    /// # Errors
    /// Non-finite logits.
    pub fn weights(&self, logits: &[f32], n: usize) -> Result<Vec<f32>> {
        conse_weights(logits, n, self.top, self.temperature)
    }

    /// Unit image embeddings `[n, d]` of preprocessed images.
    ///
    /// # Errors
    /// Non-finite logits.
    pub fn embed(&self, images: Tensor<B, 4>) -> Result<Tensor<B, 2>> {
        let [n, _, _, _] = images.dims();
        let device = images.device();
        let logits = to_f32(
            self.net
                .forward(to_dtype(images, self.net.fc.weight.val().dtype())),
        );
        let values = logits
            .into_data()
            .to_vec::<f32>()
            .map_err(|e| VlError::InvalidInput(format!("reading logits: {e:?}")))?;
        let w = self.weights(&values, n)?;
        let w = Tensor::<B, 2>::from_data(TensorData::new(w, [n, NUM_CLASSES]), &device);
        Ok(normalize_rows(w.matmul(self.classes.val())))
    }
}

/// ConSE's combination weights for `n` rows of 1000 logits: softmax of
/// `logits / τ` in f64, kept on the `top` largest (ties to the lower index),
/// zero elsewhere.
///
/// # Errors
/// Non-finite logits or a wrong length.
pub fn conse_weights(logits: &[f32], n: usize, top: usize, temperature: f64) -> Result<Vec<f32>> {
    if logits.len() != n * NUM_CLASSES {
        return Err(VlError::InvalidInput(format!(
            "{} logits for {n} images of {NUM_CLASSES} classes",
            logits.len()
        )));
    }
    let mut out = vec![0f32; n * NUM_CLASSES];
    for (row, o) in logits.chunks(NUM_CLASSES).zip(out.chunks_mut(NUM_CLASSES)) {
        if row.iter().any(|v| !v.is_finite()) {
            return Err(VlError::InvalidInput("non-finite classifier logits".into()));
        }
        let z: Vec<f64> = row.iter().map(|&v| f64::from(v) / temperature).collect();
        let m = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = z.iter().map(|v| (v - m).exp()).collect();
        let s: f64 = e.iter().sum();
        let mut idx: Vec<usize> = (0..NUM_CLASSES).collect();
        idx.sort_by(|&a, &b| e[b].total_cmp(&e[a]).then(a.cmp(&b)));
        for &c in idx.iter().take(top) {
            o[c] = (e[c] / s) as f32;
        }
    }
    Ok(out)
}

/// The whole ConSE model: image side and text encoder.
#[derive(Debug)]
pub struct Conse<B: Backend> {
    /// The image side.
    pub image: ConseImage<B>,
    /// The text encoder.
    pub text: SentenceEncoder<B>,
    /// The settings.
    pub config: ConseConfig,
    /// The class names in head order.
    pub class_names: Vec<String>,
}

impl<B: Backend> Conse<B> {
    /// Load the three files and embed the class names.
    ///
    /// # Errors
    /// Missing or malformed files; an invalid config.
    pub fn load(paths: &ConsePaths, config: ConseConfig, device: &B::Device) -> Result<Self> {
        config.validate()?;
        let text = SentenceEncoder::<B>::load(&paths.text_dir, device)?;
        let class_names = read_class_names(&paths.class_names)?;
        let archive = TorchArchive::open(&paths.image_weights)?;
        let net = EfficientNetLite::<B>::from_source(&archive, device)?;
        let classes = embed_with_templates(&text, &class_names, &config.templates, true)?;
        let image = ConseImage::new(net, classes, config.top, config.temperature)?;
        Ok(Self {
            image,
            text,
            config,
            class_names,
        })
    }
}

/// Read a JSON list of exactly 1000 non-empty class names.
///
/// # Errors
/// A missing file, not a list of strings, or another count.
pub fn read_class_names(path: &Path) -> Result<Vec<String>> {
    let v = v2l_io::read_json(path)?;
    let names: Vec<String> = serde_json::from_value(v).map_err(|e| {
        VlError::InvalidInput(format!("{}: not a list of strings: {e}", path.display()))
    })?;
    if names.len() != NUM_CLASSES || names.iter().any(|n| n.trim().is_empty()) {
        return Err(VlError::InvalidInput(format!(
            "{}: expected {NUM_CLASSES} non-empty class names, found {}",
            path.display(),
            names.len()
        )));
    }
    Ok(names)
}

/// Rows for `entries`: each entry in every template, each embedding unit
/// length, averaged over the templates (renormalised if asked), in batches
/// of entries of similar token length.
///
/// # Errors
/// An empty list; tokenizer failures.
pub fn embed_with_templates<B: Backend>(
    text: &SentenceEncoder<B>,
    entries: &[String],
    templates: &[String],
    renormalize: bool,
) -> Result<Tensor<B, 2>> {
    if entries.is_empty() || templates.is_empty() {
        return Err(VlError::InvalidInput(
            "no entries or templates to embed".into(),
        ));
    }
    let t = templates.len();
    let d = text.dim();
    let mut rows = Vec::with_capacity(entries.len() * t);
    for e in entries {
        for tpl in templates {
            rows.push(text.token_ids(&tpl.replacen("{}", e, 1))?);
        }
    }
    let len: Vec<usize> = rows
        .chunks(t)
        .map(|g| g.iter().map(Vec::len).max().unwrap_or(0))
        .collect();
    let mut order: Vec<usize> = (0..entries.len()).collect();
    order.sort_by_key(|&i| (len[i], i));
    let per_batch = (256 / t).max(1);
    let mut out = vec![0f32; entries.len() * d];
    for batch in order.chunks(per_batch) {
        let batch_rows: Vec<Vec<u32>> = batch
            .iter()
            .flat_map(|&i| rows[i * t..(i + 1) * t].iter().cloned())
            .collect();
        let emb = text.embed_ids(&batch_rows)?;
        let n = batch.len();
        let mean = emb.reshape([n, t, d]).mean_dim(1).reshape([n, d]);
        let mean = if renormalize {
            normalize_rows(mean)
        } else {
            mean
        };
        let values = mean
            .into_data()
            .to_vec::<f32>()
            .map_err(|e| VlError::InvalidInput(format!("reading embeddings: {e:?}")))?;
        for (j, &i) in batch.iter().enumerate() {
            out[i * d..(i + 1) * d].copy_from_slice(&values[j * d..(j + 1) * d]);
        }
    }
    Ok(Tensor::from_data(
        TensorData::new(out, [entries.len(), d]),
        &text.device(),
    ))
}
