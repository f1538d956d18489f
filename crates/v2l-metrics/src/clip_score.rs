//! CLIP score with torchmetrics' `CLIPScore` semantics, and CLIP-R (this
//! project's definition; the official V2L code has none).
//!
//! CLIP score: for each (image, text) pair `100 · cos(image, text)`, averaged
//! over all pairs, then clamped at 0 — torchmetrics clamps the *mean*
//! (`max(sum / n, 0)`), not each pair. Embeddings come from
//! the `v2l-clip` crate (`Clip::encode_images` /
//! `encode_texts`, CLIP preprocessing at 224 px and ViT-L/14 in METRICS.md's
//! convention); any embedding pair of equal width works.
//!
//! CLIP-R (ours, documented as such): the CLIP score of (image, its k global
//! words joined by spaces) divided by the CLIP score of (image,
//! `a photo of a {true label}`), over the same images. It says how much of the
//! label's semantic agreement the global words carry (1 = as much as the
//! label itself). [`global_words_text`] and [`label_prompt`] build the two texts.

use crate::error::{MetricsError, Result};

fn cosine(a: &[f32], b: &[f32]) -> Result<f64> {
    if a.len() != b.len() || a.is_empty() {
        return Err(MetricsError::ShapeMismatch {
            what: "image and text embeddings",
            left: vec![a.len()],
            right: vec![b.len()],
        });
    }
    let mut dot = 0f64;
    let (mut na, mut nb) = (0f64, 0f64);
    for (i, (&x, &y)) in a.iter().zip(b).enumerate() {
        for (what, v) in [("image embedding", x), ("text embedding", y)] {
            if !v.is_finite() {
                return Err(MetricsError::NonFinite {
                    what,
                    index: i,
                    value: v as f64,
                });
            }
        }
        dot += x as f64 * y as f64;
        na += x as f64 * x as f64;
        nb += y as f64 * y as f64;
    }
    if na == 0.0 || nb == 0.0 {
        return Err(MetricsError::Undefined(
            "CLIP score of an all-zero embedding".into(),
        ));
    }
    Ok(dot / (na.sqrt() * nb.sqrt()))
}

/// A running CLIP score over (image, text) embedding pairs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClipScore {
    sum: f64,
    n: usize,
}

impl ClipScore {
    /// An empty accumulator.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add one pair; returns its `100 · cos`.
    pub fn update(&mut self, image: &[f32], text: &[f32]) -> Result<f64> {
        let s = 100.0 * cosine(image, text)?;
        self.sum += s;
        self.n += 1;
        Ok(s)
    }

    /// Add pairs `(images[i], texts[i])`.
    pub fn update_batch(&mut self, images: &[Vec<f32>], texts: &[Vec<f32>]) -> Result<()> {
        if images.len() != texts.len() {
            return Err(MetricsError::ShapeMismatch {
                what: "number of images and texts",
                left: vec![images.len()],
                right: vec![texts.len()],
            });
        }
        for (i, t) in images.iter().zip(texts) {
            self.update(i, t)?;
        }
        Ok(())
    }

    /// Pairs seen so far.
    pub fn count(&self) -> usize {
        self.n
    }

    /// `max(mean(100 · cos), 0)`; an error when no pair was added.
    pub fn compute(&self) -> Result<f64> {
        if self.n == 0 {
            return Err(MetricsError::Undefined("CLIP score of zero pairs".into()));
        }
        Ok((self.sum / self.n as f64).max(0.0))
    }
}

/// CLIP score of pairs `(images[i], texts[i])` (torchmetrics semantics).
pub fn clip_score(images: &[Vec<f32>], texts: &[Vec<f32>]) -> Result<f64> {
    let mut s = ClipScore::new();
    s.update_batch(images, texts)?;
    s.compute()
}

/// CLIP-R (ours): `clip_score(images, words) / clip_score(images, labels)`,
/// where `words[i]` embeds image i's global words ([`global_words_text`]) and
/// `labels[i]` its true label's prompt ([`label_prompt`]). Undefined (an
/// error) when the label score is 0.
pub fn clip_r(images: &[Vec<f32>], words: &[Vec<f32>], labels: &[Vec<f32>]) -> Result<f64> {
    let w = clip_score(images, words)?;
    let l = clip_score(images, labels)?;
    if l == 0.0 {
        return Err(MetricsError::Undefined(
            "CLIP-R: the label prompts' CLIP score is 0".into(),
        ));
    }
    Ok(w / l)
}

/// The CLIP-R text of an image's global words: joined by single spaces.
pub fn global_words_text<S: AsRef<str>>(words: &[S]) -> String {
    words
        .iter()
        .map(AsRef::as_ref)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The CLIP-R reference text of a label: `a photo of a {label}`.
pub fn label_prompt(label: &str) -> String {
    format!("a photo of a {label}")
}
