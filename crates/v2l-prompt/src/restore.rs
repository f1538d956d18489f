//! Image restoration by a frozen LLM (spec §5.4): inpainting, outpainting,
//! deblurring, rotation and shift.
//!
//! 1. The image is corrupted in pixel space (blur, 90° rotation, a
//!    bottom-right crop) on the tokenizer's `[-1, 1]` input; in- and
//!    outpainting corrupt nothing and are defined by which positions are
//!    predicted.
//! 2. Clean and corrupted images are tokenised. [`ExampleMode::Faithful`]
//!    tokenises both with the clean image's CLIP input, as the reference.
//! 3. Ten in-context examples follow the noise schedule 0.50 → 0.23: for
//!    rate r, n = ⌊r·(k + h·w)⌋ local positions (drawn by a cumulative
//!    shuffle) get the same uniform random LLM ids in a copy of the clean
//!    and of the corrupted sequence. In faithful mode the copies are of the
//!    query's own tokens, as the reference (so 50–77 % of each example's
//!    output is the query's ground truth); [`ExampleMode::Honest`] copies
//!    *other* images' tokens and tokenises the corrupted query with its own
//!    CLIP input.
//! 4. Positions are predicted 2 at a time in raster order, autoregressively:
//!    in/outpainting show the 16 preceding tokens, the other tasks the
//!    corrupted tokens at the same positions; each answer is written back
//!    before the next call. Generation is greedy and unconstrained over the
//!    whole vocabulary.
//! 5. The restored local ids (= LLM ids) are decoded with the global ids of
//!    step 2.

use burn::tensor::backend::Backend;
use image::{DynamicImage, RgbImage};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use v2l_llm::tokenizer::LlmTokenizer;
use v2l_llm::{GenerateOptions, Llama, Sampling};

use crate::error::{PromptError, Result};
use crate::prompt::{check_context, restore_prompt};

/// The reference's noise schedule: 10 examples.
pub const NOISE_RATES: [f64; 10] = [0.5, 0.47, 0.44, 0.41, 0.38, 0.35, 0.32, 0.29, 0.26, 0.23];

/// A restoration task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    /// Predict the centre (rows and columns h/4 … 3h/4; 8×8 of 16×16).
    Inpainting,
    /// Predict the bottom half.
    Outpainting,
    /// Undo a Gaussian blur (odd kernel 5–11).
    Deblur,
    /// Undo a 90° counter-clockwise rotation.
    Rotation,
    /// Undo a bottom-right (instead of centre) crop.
    Shift,
}

impl Task {
    /// All five, in the paper's order.
    pub const ALL: [Task; 5] = [
        Task::Inpainting,
        Task::Outpainting,
        Task::Deblur,
        Task::Rotation,
        Task::Shift,
    ];

    /// The task's name (`inpainting`, …).
    pub fn name(self) -> &'static str {
        match self {
            Self::Inpainting => "inpainting",
            Self::Outpainting => "outpainting",
            Self::Deblur => "deblur",
            Self::Rotation => "rotation",
            Self::Shift => "shift",
        }
    }

    /// Parse a name.
    ///
    /// # Errors
    /// An unknown name.
    pub fn parse(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|t| t.name() == s)
            .ok_or_else(|| {
                PromptError::InvalidInput(format!(
                    "unknown task {s:?} (inpainting, outpainting, deblur, rotation, shift)"
                ))
            })
    }

    /// Whether the LLM sees the preceding tokens (in/outpainting) rather than
    /// the corrupted tokens at the same positions.
    pub fn uses_preceding(self) -> bool {
        matches!(self, Self::Inpainting | Self::Outpainting)
    }
}

/// Which grid positions are predicted, row-major over `[h, w]`.
pub fn prediction_mask(task: Task, grid: [usize; 2]) -> Vec<bool> {
    let [h, w] = grid;
    (0..h * w)
        .map(|p| {
            let (r, c) = (p / w, p % w);
            match task {
                Task::Inpainting => {
                    (h / 2 - h / 4..h / 2 + h / 4).contains(&r)
                        && (w / 2 - w / 4..w / 2 + w / 4).contains(&c)
                }
                Task::Outpainting => r >= h / 2,
                _ => true,
            }
        })
        .collect()
}

/// How the in-context examples are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExampleMode {
    /// The reference: noisy copies of the query's own clean tokens, the
    /// corrupted image tokenised with the clean CLIP input, the clean global
    /// tokens decoded.
    #[default]
    Faithful,
    /// Noisy copies of other images' tokens; the corrupted image tokenised
    /// with its own CLIP input, and its global tokens decoded.
    Honest,
}

/// Options of the restoration loop.
#[derive(Debug, Clone, PartialEq)]
pub struct RestoreOptions {
    /// Tokens per LLM call (2 in the reference).
    pub step: usize,
    /// Preceding tokens shown for in/outpainting (16).
    pub prompt_length: usize,
    /// Noise rates, one example each ([`NOISE_RATES`]).
    pub rates: Vec<f64>,
    /// How examples are made.
    pub mode: ExampleMode,
    /// RNG seed (corruption kernel, positions and random ids).
    pub seed: u64,
    /// Context window to check prompts against; `None` = the model's own.
    pub context: Option<usize>,
}

impl Default for RestoreOptions {
    fn default() -> Self {
        Self {
            step: 2,
            prompt_length: 16,
            rates: NOISE_RATES.to_vec(),
            mode: ExampleMode::Faithful,
            seed: 0,
            context: None,
        }
    }
}

/// One example pair: (noisy clean copy, noisy corrupted copy), both
/// `[k + h·w]` (global ids then local ids).
pub type ExamplePair = (Vec<u32>, Vec<u32>);

/// Noisy example copies, one per rate: n = ⌊r·len⌋ positions among
/// `k..len` (the same cumulative shuffle as the reference's
/// `random.shuffle` of one index array) get the same uniform ids in
/// `[0, vocab)` in both copies. `sources` gives each example's (clean,
/// corrupted) pair, cycled (the query's own pair in faithful mode).
///
/// # Errors
/// No sources; sequences of different lengths; `k` ≥ the length.
pub fn noisy_examples(
    sources: &[(&[u32], &[u32])],
    k: usize,
    rates: &[f64],
    vocab: usize,
    rng: &mut StdRng,
) -> Result<Vec<ExamplePair>> {
    let len = sources.first().map_or(0, |s| s.0.len());
    if sources.is_empty()
        || sources
            .iter()
            .any(|(a, b)| a.len() != len || b.len() != len)
    {
        return Err(PromptError::InvalidInput(
            "example sources must be non-empty (clean, corrupted) pairs of one length".into(),
        ));
    }
    if k >= len || vocab == 0 {
        return Err(PromptError::InvalidInput(format!(
            "{k} global tokens leave no local positions in sequences of {len}"
        )));
    }
    let mut select: Vec<usize> = (k..len).collect();
    let mut out = Vec::with_capacity(rates.len());
    for (i, &r) in rates.iter().enumerate() {
        if !(0.0..=1.0).contains(&r) {
            return Err(PromptError::InvalidInput(format!(
                "noise rate {r} outside [0, 1]"
            )));
        }
        select.shuffle(rng);
        let n = ((r * len as f64) as usize).min(select.len());
        let (clean, corrupt) = sources[i % sources.len()];
        let mut a = clean.to_vec();
        let mut b = corrupt.to_vec();
        for &p in &select[..n] {
            let id = rng.random_range(0..vocab as u32);
            a[p] = id;
            b[p] = id;
        }
        out.push((a, b));
    }
    Ok(out)
}

/// Anything that writes the next `n` tokens of a prompt (greedy).
pub trait Generator {
    /// The next `n` tokens after `prompt`.
    ///
    /// # Errors
    /// Model failures.
    fn generate(&mut self, prompt: &[u32], n: usize) -> Result<Vec<u32>>;

    /// The context window, if bounded.
    fn context(&self) -> Option<usize> {
        None
    }
}

/// [`Generator`] by a [`Llama`]: greedy, unconstrained, no EOS stop.
#[derive(Debug)]
pub struct LlamaGenerator<'a, B: Backend> {
    /// The model.
    pub model: &'a Llama<B>,
}

impl<B: Backend> Generator for LlamaGenerator<'_, B> {
    fn generate(&mut self, prompt: &[u32], n: usize) -> Result<Vec<u32>> {
        let opts = GenerateOptions {
            max_tokens: n,
            sampling: Sampling::Greedy,
            ..GenerateOptions::default()
        };
        let out = self.model.generate(&[prompt.to_vec()], &opts, None)?;
        Ok(out.into_iter().next().map(|g| g.tokens).unwrap_or_default())
    }

    fn context(&self) -> Option<usize> {
        Some(self.model.config.max_position_embeddings)
    }
}

/// One LLM call of the loop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Call {
    /// The first position written (in the `[k + h·w]` sequence).
    pub start: usize,
    /// Prompt length in tokens.
    pub prompt_tokens: usize,
    /// The generated ids.
    pub generated: Vec<u32>,
}

/// How a visual token sequence is laid out: `k` global ids, then the local
/// ids of an `h × w` grid in raster order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SequenceLayout {
    /// Global ids first.
    pub k: usize,
    /// `[h, w]` of the local grid.
    pub grid: [usize; 2],
}

/// Run the autoregressive loop: `corrupted` is the starting sequence
/// (`[k + h·w]` in `layout`), `examples` the noisy pairs. Returns the
/// restored sequence and the calls in order.
///
/// # Errors
/// A prompt past the context window (before that call); sequences of the
/// wrong length; model failures.
pub fn restore_ids(
    tok: &LlmTokenizer,
    llm: &mut dyn Generator,
    task: Task,
    corrupted: &[u32],
    examples: &[ExamplePair],
    layout: SequenceLayout,
    options: &RestoreOptions,
) -> Result<(Vec<u32>, Vec<Call>)> {
    let SequenceLayout { k, grid } = layout;
    let total = k + grid[0] * grid[1];
    if corrupted.len() != total
        || examples
            .iter()
            .any(|(a, b)| a.len() != total || b.len() != total)
    {
        return Err(PromptError::InvalidInput(format!(
            "sequences must hold {k} global + {}×{} local ids = {total}",
            grid[0], grid[1]
        )));
    }
    if options.step == 0 {
        return Err(PromptError::InvalidInput("step must be at least 1".into()));
    }
    let context = match (options.context, llm.context()) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let mask = prediction_mask(task, grid);
    let mut current = corrupted.to_vec();
    let mut calls = Vec::new();
    let mut start = k;
    while start < total {
        if !mask[start - k] {
            start += 1;
            continue;
        }
        let end = (start + options.step).min(total);
        let (ex_in, query_in): (Vec<Vec<u32>>, Vec<u32>) = if task.uses_preceding() {
            let lo = start.saturating_sub(options.prompt_length);
            (
                examples
                    .iter()
                    .map(|(c, _)| c[lo..start].to_vec())
                    .collect(),
                current[lo..start].to_vec(),
            )
        } else {
            (
                examples
                    .iter()
                    .map(|(_, t)| t[start..end].to_vec())
                    .collect(),
                current[start..end].to_vec(),
            )
        };
        let pairs: Vec<ExamplePair> = ex_in
            .into_iter()
            .zip(examples.iter().map(|(c, _)| c[start..end].to_vec()))
            .collect();
        let prompt = restore_prompt(tok, options.step, &pairs, &query_in)?;
        if let Some(c) = context {
            check_context(prompt.len(), options.step, c)?;
        }
        let generated = llm.generate(&prompt, options.step)?;
        for (slot, &id) in current[start..end].iter_mut().zip(&generated) {
            *slot = id;
        }
        calls.push(Call {
            start,
            prompt_tokens: prompt.len(),
            generated,
        });
        start += options.step;
    }
    Ok((current, calls))
}

/// cv2's `getGaussianKernel(ksize, 0)`: its fixed kernels for odd sizes up
/// to 9 (checked against OpenCV 4.5.5, 4.10 and 5.0), else a Gaussian with
/// σ = 0.3·((ksize − 1)/2 − 1) + 0.8, normalised.
pub fn gaussian_kernel(ksize: usize) -> Vec<f64> {
    match ksize {
        1 => vec![1.0],
        3 => vec![0.25, 0.5, 0.25],
        5 => vec![0.0625, 0.25, 0.375, 0.25, 0.0625],
        7 => vec![
            0.03125, 0.109375, 0.21875, 0.28125, 0.21875, 0.109375, 0.03125,
        ],
        9 => [4.0, 13.0, 30.0, 51.0, 60.0, 51.0, 30.0, 13.0, 4.0]
            .iter()
            .map(|v| v / 256.0)
            .collect(),
        _ => {
            let sigma = 0.3 * ((ksize as f64 - 1.0) * 0.5 - 1.0) + 0.8;
            let c = (ksize as f64 - 1.0) / 2.0;
            let v: Vec<f64> = (0..ksize)
                .map(|i| (-(i as f64 - c).powi(2) / (2.0 * sigma * sigma)).exp())
                .collect();
            let s: f64 = v.iter().sum();
            v.into_iter().map(|x| x / s).collect()
        }
    }
}

fn reflect101(i: isize, n: usize) -> usize {
    let n = n as isize;
    if n == 1 {
        return 0;
    }
    let mut i = i;
    while i < 0 || i >= n {
        i = if i < 0 { -i } else { 2 * (n - 1) - i };
    }
    i as usize
}

/// Separable Gaussian blur of a CHW `f32` image with cv2's
/// `BORDER_REFLECT_101` (`cv2.GaussianBlur(img, (k, k), 0)`).
pub fn gaussian_blur(chw: &[f32], channels: usize, h: usize, w: usize, ksize: usize) -> Vec<f32> {
    let kern = gaussian_kernel(ksize);
    let r = (ksize / 2) as isize;
    let mut tmp = vec![0f32; chw.len()];
    let mut out = vec![0f32; chw.len()];
    for c in 0..channels {
        let plane = &chw[c * h * w..(c + 1) * h * w];
        for y in 0..h {
            for x in 0..w {
                let mut s = 0f64;
                for (j, kv) in kern.iter().enumerate() {
                    let xx = reflect101(x as isize + j as isize - r, w);
                    s += kv * f64::from(plane[y * w + xx]);
                }
                tmp[c * h * w + y * w + x] = s as f32;
            }
        }
        for y in 0..h {
            for x in 0..w {
                let mut s = 0f64;
                for (j, kv) in kern.iter().enumerate() {
                    let yy = reflect101(y as isize + j as isize - r, h);
                    s += kv * f64::from(tmp[c * h * w + yy * w + x]);
                }
                out[c * h * w + y * w + x] = s as f32;
            }
        }
    }
    out
}

/// `np.rot90` of an HWC image (90° counter-clockwise), on CHW data of a
/// square `n × n` image.
pub fn rot90_ccw(chw: &[f32], channels: usize, n: usize) -> Vec<f32> {
    let mut out = vec![0f32; chw.len()];
    for c in 0..channels {
        for i in 0..n {
            for j in 0..n {
                out[c * n * n + i * n + j] = chw[c * n * n + j * n + (n - 1 - i)];
            }
        }
    }
    out
}

/// The shift corruption: the image resized so its shorter side is `n`
/// (cv2 linear, as the tokenizer's preprocessing), then the **bottom-right**
/// `n × n` crop, normalised to `[-1, 1]` (CHW).
///
/// # Errors
/// An empty image.
pub fn shift_crop(rgb: &RgbImage, n: u32) -> Result<Vec<f32>> {
    use v2l_model::preprocess::{resize_linear_cv, smallest_max_size};
    let (w, h) = rgb.dimensions();
    if w == 0 || h == 0 || n == 0 {
        return Err(PromptError::InvalidInput("empty image or size".into()));
    }
    let (nh, nw) = smallest_max_size(h, w, n);
    let resized = if (nw, nh) == (w, h) {
        rgb.clone()
    } else {
        resize_linear_cv(rgb, nw, nh)
    };
    let (x0, y0) = (nw - n.min(nw), nh - n.min(nh));
    let plane = (n * n) as usize;
    let mut out = vec![0f32; 3 * plane];
    for y in 0..n {
        for x in 0..n {
            let px = resized.get_pixel(x0 + x, y0 + y);
            for c in 0..3 {
                out[c * plane + (y * n + x) as usize] = (f64::from(px.0[c]) / 127.5 - 1.0) as f32;
            }
        }
    }
    Ok(out)
}

/// Apply `task`'s pixel corruption to the tokenizer input `x` (`[3, n, n]`
/// CHW in `[-1, 1]`, from `original`). Deblur draws an odd kernel size in
/// 5..=11 from `rng` (albumentations `GaussianBlur(blur_limit=(5, 11))`).
///
/// # Errors
/// A wrong-sized input.
pub fn corrupt(
    task: Task,
    x: &[f32],
    n: usize,
    original: &RgbImage,
    rng: &mut StdRng,
) -> Result<Vec<f32>> {
    if x.len() != 3 * n * n {
        return Err(PromptError::InvalidInput(format!(
            "expected a [3, {n}, {n}] input, got {} values",
            x.len()
        )));
    }
    Ok(match task {
        Task::Inpainting | Task::Outpainting => x.to_vec(),
        Task::Deblur => {
            let k = [5usize, 7, 9, 11][rng.random_range(0..4)];
            gaussian_blur(x, 3, n, n, k)
        }
        Task::Rotation => rot90_ccw(x, 3, n),
        Task::Shift => shift_crop(original, n as u32)?,
    })
}

/// A CHW `[-1, 1]` image as 8-bit RGB (clamped, `round((x + 1)·127.5)`).
pub fn chw_to_rgb(chw: &[f32], n: usize) -> RgbImage {
    let plane = n * n;
    RgbImage::from_fn(n as u32, n as u32, |x, y| {
        let i = y as usize * n + x as usize;
        let v = |c: usize| ((chw[c * plane + i].clamp(-1.0, 1.0) + 1.0) * 127.5).round() as u8;
        image::Rgb([v(0), v(1), v(2)])
    })
}

/// The result of restoring one image.
#[derive(Debug, Clone)]
pub struct Restoration {
    /// The task.
    pub task: Task,
    /// Clean tokens `[k + h·w]`.
    pub clean: Vec<u32>,
    /// Corrupted tokens `[k + h·w]`.
    pub corrupted: Vec<u32>,
    /// Restored tokens `[k + h·w]` (global ids of the decode first).
    pub restored: Vec<u32>,
    /// The LLM calls.
    pub calls: Vec<Call>,
    /// The clean tokenizer input as an image.
    pub clean_image: RgbImage,
    /// The corrupted input as an image.
    pub corrupted_image: RgbImage,
    /// The decode of the clean tokens.
    pub clean_decode: RgbImage,
    /// The decode of the restored tokens.
    pub restored_decode: RgbImage,
}

/// Everything a restoration needs.
#[derive(Debug)]
pub struct Restorer<'a, B: Backend> {
    /// The V2L tokenizer (its local codebook must have one row per LLM id).
    pub tokenizer: &'a v2l_model::V2lTokenizer<B>,
    /// The frozen LLM.
    pub llm: &'a Llama<B>,
    /// Its tokenizer.
    pub llm_tokenizer: &'a LlmTokenizer,
    /// Options.
    pub options: RestoreOptions,
}

impl<B: Backend> Restorer<'_, B> {
    /// The vision-language image embedding of an image (the global
    /// branch's input).
    fn embedding(&self, image: &DynamicImage) -> Result<burn::tensor::Tensor<B, 2>> {
        let pre = self.tokenizer.config().vl_preprocess()?;
        let r = pre.resolution();
        let c = pre.apply(image).map_err(v2l_clip::ClipError::from)?;
        let c = burn::tensor::Tensor::<B, 4>::from_data(
            burn::tensor::TensorData::new(c, [1, 3, r, r]),
            self.tokenizer.device(),
        );
        Ok(self.tokenizer.model().image_embedding(c)?)
    }

    /// Tokens of a tokenizer input `x` (`[3, n, n]`) with a CLIP embedding:
    /// `[k + h·w]` (global then local ids) and the grid.
    fn tokens(
        &self,
        x: Vec<f32>,
        embedding: burn::tensor::Tensor<B, 2>,
        n: usize,
    ) -> Result<(Vec<u32>, [usize; 2])> {
        let t = burn::tensor::Tensor::<B, 4>::from_data(
            burn::tensor::TensorData::new(x, [1, 3, n, n]),
            &embedding.device(),
        );
        let vt = self.tokenizer.encode_with_embedding(t, embedding)?;
        let mut seq = vt.global_ids.first().cloned().unwrap_or_default();
        seq.extend(vt.local_ids.first().cloned().unwrap_or_default());
        Ok((seq, vt.grid))
    }

    /// Restore `image` after corrupting it for `task`. `others` are the
    /// images whose tokens make the examples in honest mode (ignored in
    /// faithful mode).
    ///
    /// # Errors
    /// A local codebook that does not match the LLM vocabulary; honest mode
    /// without other images; tokenizer, model and context errors.
    pub fn restore(
        &self,
        image: &DynamicImage,
        others: &[DynamicImage],
        task: Task,
    ) -> Result<Restoration> {
        let cfg = self.tokenizer.config();
        let vocab = self.llm_tokenizer.vocab_size();
        if cfg.n_local != vocab {
            return Err(PromptError::InvalidInput(format!(
                "the local codebook has {} rows but the LLM vocabulary {vocab} ids: restoration \
                 feeds local ids to the LLM as token ids",
                cfg.n_local
            )));
        }
        let n = self.tokenizer.image_size()?;
        let k = cfg.k;
        let mut rng = StdRng::seed_from_u64(self.options.seed);
        let rgb = image.to_rgb8();
        let x = v2l_model::preprocess::TokenizerPreprocess::new(n as u32)
            .apply(&rgb)
            .map_err(|e| PromptError::InvalidInput(e.to_string()))?;
        let xt = corrupt(task, &x, n, &rgb, &mut rng)?;
        let corrupted_image = chw_to_rgb(&xt, n);
        let clean_embedding = self.embedding(image)?;
        let (clean, grid) = self.tokens(x.clone(), clean_embedding.clone(), n)?;
        let corrupted = match self.options.mode {
            // The reference tokenises the corrupted image with the clean
            // image's CLIP input.
            ExampleMode::Faithful => self.tokens(xt, clean_embedding, n)?.0,
            ExampleMode::Honest => {
                let own = DynamicImage::ImageRgb8(corrupted_image.clone());
                self.tokens(xt, self.embedding(&own)?, n)?.0
            }
        };
        let other_pairs: Vec<(Vec<u32>, Vec<u32>)> = match self.options.mode {
            ExampleMode::Faithful => vec![(clean.clone(), corrupted.clone())],
            ExampleMode::Honest => {
                if others.is_empty() {
                    return Err(PromptError::InvalidInput(
                        "honest mode needs other images to build the examples from".into(),
                    ));
                }
                let mut v = Vec::new();
                for o in others {
                    let orgb = o.to_rgb8();
                    let ox = v2l_model::preprocess::TokenizerPreprocess::new(n as u32)
                        .apply(&orgb)
                        .map_err(|e| PromptError::InvalidInput(e.to_string()))?;
                    let oxt = corrupt(task, &ox, n, &orgb, &mut rng)?;
                    let oc = self.tokens(ox, self.embedding(o)?, n)?.0;
                    let own = DynamicImage::ImageRgb8(chw_to_rgb(&oxt, n));
                    let ot = self.tokens(oxt, self.embedding(&own)?, n)?.0;
                    v.push((oc, ot));
                }
                v
            }
        };
        let sources: Vec<(&[u32], &[u32])> = other_pairs
            .iter()
            .map(|(a, b)| (a.as_slice(), b.as_slice()))
            .collect();
        let examples = noisy_examples(&sources, k, &self.options.rates, vocab, &mut rng)?;
        let mut gen = LlamaGenerator { model: self.llm };
        let (restored, calls) = restore_ids(
            self.llm_tokenizer,
            &mut gen,
            task,
            &corrupted,
            &examples,
            SequenceLayout { k, grid },
            &self.options,
        )?;
        let decode = |seq: &[u32]| -> Result<RgbImage> {
            let vt = v2l_model::VisualTokens {
                global_ids: vec![seq[..k].to_vec()],
                global_words: None,
                local_ids: vec![seq[k..].to_vec()],
                grid,
            };
            self.tokenizer
                .decode_to_images(&vt)?
                .into_iter()
                .next()
                .ok_or_else(|| PromptError::InvalidInput("nothing decoded".into()))
        };
        Ok(Restoration {
            task,
            clean_decode: decode(&clean)?,
            restored_decode: decode(&restored)?,
            clean_image: chw_to_rgb(&x, n),
            corrupted_image,
            clean,
            corrupted,
            restored,
            calls,
        })
    }
}
