//! Global-codebook filtering with CLIP image embeddings (spec §2.3, step 3).
//!
//! Every image of a set is embedded with CLIP's vision tower and
//! L2-normalised; it votes for its top-5 candidates by dot product with the
//! *un-normalised* candidate rows (as the reference); candidates with more
//! than 100 votes are kept ([`Selection::Threshold`]), or the N most voted
//! ([`Selection::TopN`]). Ties in the top-5 go to the lower row index
//! (`torch.topk` leaves them unspecified).

use std::path::{Path, PathBuf};

use burn::tensor::backend::Backend;
use image::DynamicImage;
use serde::{Deserialize, Serialize};
use serde_json::json;
use v2l_assets::datasets::LabelledImages;
use v2l_quant::{Metric, PreparedCodebook};
use v2l_vl::VisionLanguage;

use crate::codebook::Codebook;
use crate::error::{CodebookError, Result};
use crate::job::{io, write_atomic, OnProgress, Progress, WorkDir};

/// The reference's votes per image.
pub const TOP_VOTES: usize = 5;
/// The reference's threshold: keep entries with more than 100 votes.
pub const DEFAULT_THRESHOLD: u64 = 100;

/// Which candidates to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selection {
    /// Votes strictly greater than this (the reference: 100).
    Threshold(u64),
    /// The N most voted (ties to the lower row index).
    TopN(usize),
}

impl Default for Selection {
    fn default() -> Self {
        Self::Threshold(DEFAULT_THRESHOLD)
    }
}

/// Vote counts over candidates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Votes {
    /// Votes per candidate row.
    pub counts: Vec<u64>,
    /// Images that voted.
    pub images: u64,
    /// Votes per image.
    pub top: usize,
}

impl Votes {
    /// No votes yet over `candidates` rows, `top` votes per image.
    pub fn new(candidates: usize, top: usize) -> Self {
        Self {
            counts: vec![0; candidates],
            images: 0,
            top,
        }
    }

    /// Add the votes of L2-normalised image embeddings (`[n, dim]`,
    /// row-major) against `candidates` (the un-normalised rows, prepared
    /// once with [`prepare`]).
    ///
    /// # Errors
    /// A width other than the candidates'; non-finite values; `top` larger
    /// than the candidates.
    pub fn add(&mut self, candidates: &PreparedCodebook, embeddings: &[f32]) -> Result<()> {
        if candidates.len() != self.counts.len() {
            return Err(CodebookError::Shape {
                what: "candidates".into(),
                found: format!("{} rows", candidates.len()),
                expected: format!("{} (the vote table's)", self.counts.len()),
            });
        }
        let dim = candidates.dim();
        let top = v2l_quant::top_k(candidates, embeddings, dim, self.top, Metric::InnerProduct)?;
        for &i in &top.indices {
            self.counts[i as usize] += 1;
        }
        self.images += (embeddings.len() / dim.max(1)) as u64;
        Ok(())
    }

    /// Row indices kept by `selection`, ascending.
    pub fn select(&self, selection: Selection) -> Vec<usize> {
        match selection {
            Selection::Threshold(t) => (0..self.counts.len())
                .filter(|&i| self.counts[i] > t)
                .collect(),
            Selection::TopN(n) => {
                let mut order: Vec<usize> = (0..self.counts.len()).collect();
                order.sort_by(|&a, &b| self.counts[b].cmp(&self.counts[a]).then(a.cmp(&b)));
                order.truncate(n);
                order.sort_unstable();
                order
            }
        }
    }
}

/// Prepare candidate rows for voting (the search structure of `v2l-quant`).
///
/// # Errors
/// An empty or malformed codebook.
pub fn prepare(candidates: &Codebook) -> Result<PreparedCodebook> {
    Ok(PreparedCodebook::from_f32(
        candidates.embeddings().to_vec(),
        candidates.dim(),
    )?)
}

/// The kept rows of `candidates` with their strings, token ids and votes;
/// provenance records the selection and the number of images.
///
/// # Errors
/// A vote table of another size; a selection that keeps nothing.
pub fn filter_codebook(
    candidates: &Codebook,
    votes: &Votes,
    selection: Selection,
) -> Result<Codebook> {
    if votes.counts.len() != candidates.rows() {
        return Err(CodebookError::Shape {
            what: "votes".into(),
            found: format!("{} counts", votes.counts.len()),
            expected: format!("{} (one per candidate)", candidates.rows()),
        });
    }
    let keep = votes.select(selection);
    if keep.is_empty() {
        return Err(CodebookError::InvalidInput(format!(
            "{selection:?} keeps no candidate ({} images voted; the largest count is {})",
            votes.images,
            votes.counts.iter().max().copied().unwrap_or(0)
        )));
    }
    let dim = candidates.dim();
    let mut rows = Vec::with_capacity(keep.len() * dim);
    for &i in &keep {
        if let Some(r) = candidates.row(i) {
            rows.extend_from_slice(r);
        }
    }
    let mut out = Codebook::new(rows, keep.len(), dim)?
        .with_votes(keep.iter().map(|&i| votes.counts[i]).collect())?;
    if let Some(s) = candidates.strings() {
        out = out.with_strings(keep.iter().map(|&i| s[i].clone()).collect())?;
    }
    if let Some(t) = candidates.token_ids() {
        out = out.with_token_ids(keep.iter().map(|&i| t[i].clone()).collect())?;
    }
    let selection = match selection {
        Selection::Threshold(t) => json!({ "threshold": t }),
        Selection::TopN(n) => json!({ "top_n": n }),
    };
    out.provenance = json!({
        "filtered_from": candidates.provenance,
        "candidates": candidates.rows(),
        "images": votes.images,
        "votes_per_image": votes.top,
        "selection": selection,
        "candidate_rows": keep,
    });
    Ok(out)
}

/// A set of images to vote with.
pub trait ImageSet {
    /// Number of images.
    fn len(&self) -> usize;
    /// Whether there are none.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Images `range` as decoded images.
    ///
    /// # Errors
    /// An unreadable image.
    fn load(&self, range: std::ops::Range<usize>) -> Result<Vec<DynamicImage>>;
    /// A stable description of the set (for resuming safely).
    fn id(&self) -> String;
}

/// Image files (any format the `image` crate reads).
#[derive(Debug, Clone)]
pub struct ImageFiles(pub Vec<PathBuf>);

impl ImageFiles {
    /// Every image file under `dir` (recursively; extensions png, jpg,
    /// jpeg, JPEG, bmp, webp…), sorted by path.
    ///
    /// # Errors
    /// An unreadable folder; a folder without images.
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let mut files = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(&d).map_err(io(&d))? {
                let p = entry.map_err(io(&d))?.path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().and_then(|e| e.to_str()).is_some_and(|e| {
                    matches!(
                        e.to_ascii_lowercase().as_str(),
                        "png" | "jpg" | "jpeg" | "bmp" | "webp" | "gif" | "tif" | "tiff"
                    )
                }) {
                    files.push(p);
                }
            }
        }
        if files.is_empty() {
            return Err(CodebookError::InvalidInput(format!(
                "no image files under {}",
                dir.display()
            )));
        }
        files.sort();
        Ok(Self(files))
    }
}

impl ImageSet for ImageFiles {
    fn len(&self) -> usize {
        self.0.len()
    }

    fn load(&self, range: std::ops::Range<usize>) -> Result<Vec<DynamicImage>> {
        self.0[range]
            .iter()
            .map(|p| {
                image::open(p).map_err(|e| CodebookError::Image {
                    path: p.clone(),
                    message: e.to_string(),
                })
            })
            .collect()
    }

    fn id(&self) -> String {
        let names: Vec<String> = self.0.iter().map(|p| p.display().to_string()).collect();
        format!("files:{}", crate::job::strings_sha256(&names))
    }
}

/// The first `n` images of a set.
#[derive(Debug)]
pub struct Prefix<S: ImageSet>(pub S, pub usize);

impl<S: ImageSet> ImageSet for Prefix<S> {
    fn len(&self) -> usize {
        self.0.len().min(self.1)
    }

    fn load(&self, range: std::ops::Range<usize>) -> Result<Vec<DynamicImage>> {
        if range.end > self.len() {
            return Err(CodebookError::InvalidInput(format!(
                "images {range:?} past the first {}",
                self.len()
            )));
        }
        self.0.load(range)
    }

    fn id(&self) -> String {
        format!("first {} of {}", self.len(), self.0.id())
    }
}

/// Several sets one after the other.
pub struct Concat(pub Vec<Box<dyn ImageSet>>);

impl std::fmt::Debug for Concat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|s| s.id()))
            .finish()
    }
}

impl ImageSet for Concat {
    fn len(&self) -> usize {
        self.0.iter().map(|s| s.len()).sum()
    }

    fn load(&self, range: std::ops::Range<usize>) -> Result<Vec<DynamicImage>> {
        let mut out = Vec::with_capacity(range.len());
        let mut offset = 0;
        for s in &self.0 {
            let (lo, hi) = (offset, offset + s.len());
            let a = range.start.max(lo);
            let b = range.end.min(hi);
            if a < b {
                out.extend(s.load(a - lo..b - lo)?);
            }
            offset = hi;
        }
        if out.len() != range.len() {
            return Err(CodebookError::InvalidInput(format!(
                "images {range:?} past the end ({})",
                self.len()
            )));
        }
        Ok(out)
    }

    fn id(&self) -> String {
        let ids: Vec<String> = self.0.iter().map(|s| s.id()).collect();
        ids.join(" + ")
    }
}

impl ImageSet for LabelledImages {
    fn len(&self) -> usize {
        LabelledImages::len(self)
    }

    fn load(&self, range: std::ops::Range<usize>) -> Result<Vec<DynamicImage>> {
        range
            .map(|i| {
                let px = self.image(i).map(<[u8]>::to_vec).unwrap_or_default();
                image::GrayImage::from_raw(self.width as u32, self.height as u32, px)
                    .map(DynamicImage::ImageLuma8)
                    .ok_or_else(|| {
                        CodebookError::InvalidInput(format!(
                            "{}: image {i} is incomplete",
                            self.name
                        ))
                    })
            })
            .collect()
    }

    fn id(&self) -> String {
        format!("dataset:{}:{}", self.name, self.len())
    }
}

/// The voting parameters of [`vote`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VoteOptions {
    /// Each image votes for its `top` nearest candidates (the reference: 5).
    pub top: usize,
    /// Images embedded per chunk (the resumable unit).
    pub chunk_images: usize,
}

/// Count votes of every image of `images` for `candidates` (`options`), in
/// chunks of `options.chunk_images`, saving the counts to the work folder after each chunk so
/// that an interrupted run resumes where it stopped. `clip_id` names the CLIP
/// weights. Memory: the candidates, one chunk of images, one chunk of scores.
///
/// # Errors
/// [`CodebookError::JobMismatch`] for a folder of another job; unreadable
/// images; CLIP failures; a CLIP width other than the candidates'.
pub fn vote<B: Backend>(
    vl: &dyn VisionLanguage<B>,
    candidates: &Codebook,
    images: &dyn ImageSet,
    options: VoteOptions,
    work_dir: impl Into<PathBuf>,
    clip_id: &str,
    progress: OnProgress<'_>,
) -> Result<Votes> {
    let VoteOptions { top, chunk_images } = options;
    if images.is_empty() {
        return Err(CodebookError::InvalidInput("no images to vote with".into()));
    }
    vl.preprocess()
        .map_err(|e| CodebookError::InvalidInput(e.to_string()))?;
    let width = vl.dim();
    if width != candidates.dim() {
        return Err(CodebookError::Shape {
            what: "image embeddings".into(),
            found: format!("width {width}"),
            expected: format!("{} (the candidates' width)", candidates.dim()),
        });
    }
    let chunk_images = chunk_images.max(1);
    let fingerprint = json!({
        "job": "clip-voting",
        "candidates": candidates.rows(),
        "candidates_sha256": crate::job::floats_sha256(candidates.embeddings()),
        "images": images.id(),
        "clip": clip_id,
        "top": top,
        "chunk_images": chunk_images,
    });
    let work = WorkDir::open(work_dir, &fingerprint)?;
    let state = work.path().join("votes.json");
    let mut votes = if state.is_file() {
        let text = std::fs::read_to_string(&state).map_err(io(&state))?;
        let v: Votes = serde_json::from_str(&text).map_err(|e| CodebookError::Format {
            path: state.clone(),
            message: e.to_string(),
        })?;
        if v.counts.len() != candidates.rows() || v.top != top {
            return Err(CodebookError::Format {
                path: state,
                message: "vote table does not match the candidates".into(),
            });
        }
        v
    } else {
        Votes::new(candidates.rows(), top)
    };
    let prepared = prepare(candidates)?;
    let n = images.len();
    let total = n as u64;
    progress(Progress {
        phase: "voting",
        done: votes.images,
        total,
    });
    let mut start = votes.images as usize;
    while start < n {
        let end = (start + chunk_images).min(n);
        let batch = images.load(start..end)?;
        let emb = vl
            .embed_decoded(&batch, 32.min(batch.len()))
            .map_err(|e| CodebookError::InvalidInput(e.to_string()))?;
        let values = emb
            .into_data()
            .to_vec::<f32>()
            .map_err(|e| CodebookError::InvalidInput(format!("reading embeddings back: {e:?}")))?;
        votes.add(&prepared, &values)?;
        let text = serde_json::to_string(&votes).map_err(|e| CodebookError::Format {
            path: state.clone(),
            message: e.to_string(),
        })?;
        write_atomic(&state, text.as_bytes())?;
        start = end;
        progress(Progress {
            phase: "voting",
            done: votes.images,
            total,
        });
    }
    Ok(votes)
}
