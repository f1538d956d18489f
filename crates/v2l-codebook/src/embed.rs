//! Codebook rows from a text encoder — CLIP's text tower, or a sentence
//! encoder (ConSE's all-MiniLM-L6-v2): every entry formatted into each of
//! the templates (CLIP: the 80 ImageNet templates), each template's
//! embedding L2-normalised, the normalised embeddings averaged — and the
//! average *not* renormalised, as the reference does (spec §2.1; row norms
//! end up somewhat below 1). [`TemplateEmbedder::renormalize`] names the
//! corrected variant.

use std::path::{Path, PathBuf};

use burn::tensor::backend::Backend;
use serde_json::json;
use v2l_clip::tokenizer::TokenizerError as ClipTokError;
use v2l_clip::{Clip, ClipTokenizer, Truncation};
use v2l_vl::SentenceEncoder;

use crate::codebook::{write_streamed, Precision, SidecarParts};
use crate::error::{CodebookError, Result};
use crate::job::{read_f32_chunk, strings_sha256, write_f32_chunk, OnProgress, Progress, WorkDir};
use crate::templates::{format_template, validate_templates, IMAGENET_TEMPLATES};
use crate::vocab::prompt_text;

/// The text encoder behind a [`TemplateEmbedder`].
#[derive(Debug)]
enum TextSide<'a, B: Backend> {
    Clip {
        clip: &'a Clip<B>,
        tokenizer: &'a ClipTokenizer,
    },
    Sentence(&'a SentenceEncoder<B>),
}

/// Embeds vocabulary entries with a text encoder over prompt templates.
#[derive(Debug)]
pub struct TemplateEmbedder<'a, B: Backend> {
    side: TextSide<'a, B>,
    templates: Vec<String>,
    renormalize: bool,
    batch_prompts: usize,
    truncation: Truncation,
}

impl<'a, B: Backend> TemplateEmbedder<'a, B> {
    /// The reference's setting: the 80 ImageNet templates, averages not
    /// renormalised, over-long prompts an error, 640 prompts per forward
    /// pass (8 entries).
    ///
    /// # Errors
    /// A CLIP model without a text tower.
    pub fn new(clip: &'a Clip<B>, tokenizer: &'a ClipTokenizer) -> Result<Self> {
        let Some(text) = clip.text() else {
            return Err(CodebookError::InvalidInput(
                "the CLIP model has no text tower (a V2L checkpoint carries only the vision \
                 tower; load full CLIP weights)"
                    .into(),
            ));
        };
        if tokenizer.vocab_size() > text.vocab_size() {
            return Err(CodebookError::InvalidInput(format!(
                "the CLIP tokenizer has {} ids, the text tower only {}",
                tokenizer.vocab_size(),
                text.vocab_size()
            )));
        }
        Ok(Self {
            side: TextSide::Clip { clip, tokenizer },
            templates: IMAGENET_TEMPLATES.iter().map(|s| s.to_string()).collect(),
            renormalize: false,
            batch_prompts: 640,
            truncation: Truncation::Error,
        })
    }

    /// A sentence encoder (mean-pooled, unit embeddings) with the single
    /// template [`v2l_vl::conse::DEFAULT_TEMPLATE`]; prompts are cut at the
    /// encoder's [`v2l_vl::bert::MAX_TOKENS`] tokens.
    pub fn sentence(encoder: &'a SentenceEncoder<B>) -> Self {
        Self {
            side: TextSide::Sentence(encoder),
            templates: vec![v2l_vl::conse::DEFAULT_TEMPLATE.to_string()],
            renormalize: false,
            batch_prompts: 256,
            truncation: Truncation::Truncate,
        }
    }

    /// Use other templates (each with exactly one `{}`).
    ///
    /// # Errors
    /// An empty list or a template without exactly one `{}`.
    pub fn with_templates(mut self, templates: Vec<String>) -> Result<Self> {
        validate_templates(&templates).map_err(CodebookError::InvalidInput)?;
        self.templates = templates;
        Ok(self)
    }

    /// Renormalise each averaged row to unit length (a corrected mode; the
    /// reference does not).
    pub fn renormalize(mut self, yes: bool) -> Self {
        self.renormalize = yes;
        self
    }

    /// Prompts per forward pass (rounded down to whole entries, at least one
    /// entry).
    pub fn batch_prompts(mut self, n: usize) -> Self {
        self.batch_prompts = n.max(1);
        self
    }

    /// What to do with prompts longer than CLIP's context: an error (the
    /// reference's `clip.tokenize` default) or cutting them.
    pub fn truncation(mut self, truncation: Truncation) -> Self {
        self.truncation = truncation;
        self
    }

    /// The templates in use.
    pub fn templates(&self) -> &[String] {
        &self.templates
    }

    /// Whether rows are renormalised.
    pub fn renormalizes(&self) -> bool {
        self.renormalize
    }

    /// Width of the rows (the text encoder's embedding width).
    pub fn dim(&self) -> usize {
        match &self.side {
            TextSide::Clip { clip, .. } => clip.config().text.as_ref().map_or(0, |t| t.output_dim),
            TextSide::Sentence(s) => s.dim(),
        }
    }

    fn context(&self) -> usize {
        match &self.side {
            TextSide::Clip { clip, .. } => clip.text().map_or(0, |t| t.context_length()),
            TextSide::Sentence(_) => v2l_vl::bert::MAX_TOKENS,
        }
    }

    fn prompts<S: AsRef<str>>(&self, entries: &[S]) -> Vec<String> {
        entries
            .iter()
            .flat_map(|e| {
                let e = prompt_text(e.as_ref());
                self.templates.iter().map(move |t| format_template(t, e))
            })
            .collect()
    }

    /// Check that every entry fits CLIP's context in every template (only
    /// when truncation is an error; with truncation everything fits).
    ///
    /// # Errors
    /// [`CodebookError::EntryTooLong`] with the count and the first one.
    pub fn check_lengths<S: AsRef<str> + Sync>(&self, entries: &[S]) -> Result<()> {
        let tokenizer = match &self.side {
            TextSide::Clip { tokenizer, .. } if self.truncation == Truncation::Error => *tokenizer,
            _ => return Ok(()),
        };
        let context = self.context();
        let t = self.templates.len();
        let mut count = 0;
        let mut last_counted = None;
        let mut first = None;
        for (chunk_index, chunk) in entries.chunks(1024).enumerate() {
            let prompts = self.prompts(chunk);
            for (i, prompt) in prompts.iter().enumerate() {
                let needed = tokenizer.encode(prompt).len() + 2;
                if needed > context {
                    let entry = chunk_index * 1024 + i / t;
                    if last_counted != Some(entry) {
                        count += 1;
                        last_counted = Some(entry);
                    }
                    if first.is_none() {
                        first = Some((entry, i % t, needed));
                    }
                }
            }
        }
        match first {
            None => Ok(()),
            Some((index, template, tokens)) => Err(CodebookError::EntryTooLong {
                count,
                index,
                entry: entries[index].as_ref().to_string(),
                template: self.templates[template].clone(),
                tokens,
                context,
            }),
        }
    }

    /// Rows for `entries`: `[entries.len(), dim]`, row-major.
    ///
    /// # Errors
    /// An empty list; a prompt too long for the context (when truncation is
    /// an error); CLIP failures.
    pub fn embed<S: AsRef<str> + Sync>(&self, entries: &[S]) -> Result<Vec<f32>> {
        if entries.is_empty() {
            return Err(CodebookError::InvalidInput("no entries to embed".into()));
        }
        let (clip, tokenizer) = match &self.side {
            TextSide::Clip { clip, tokenizer } => (*clip, *tokenizer),
            TextSide::Sentence(s) => {
                let texts: Vec<String> = entries
                    .iter()
                    .map(|e| prompt_text(e.as_ref()).to_string())
                    .collect();
                let rows = v2l_vl::conse::embed_with_templates(
                    s,
                    &texts,
                    &self.templates,
                    self.renormalize,
                )
                .map_err(|e| CodebookError::InvalidInput(e.to_string()))?;
                return rows.into_data().to_vec::<f32>().map_err(|e| {
                    CodebookError::InvalidInput(format!("reading embeddings back: {e:?}"))
                });
            }
        };
        let t = self.templates.len();
        let per_batch = (self.batch_prompts / t).max(1);
        let context = self.context();
        let dim = self.dim();
        let prompts = self.prompts(entries);
        let rows = tokenizer
            .tokenize_batch(&prompts, context, self.truncation)
            .map_err(|e| match e {
                ClipTokError::TooLong { tokens, .. } => {
                    // Name the entry, not just the prompt.
                    let (index, template) = prompts
                        .iter()
                        .position(|p| tokenizer.encode(p).len() + 2 > context)
                        .map_or((0, 0), |i| (i / t, i % t));
                    CodebookError::EntryTooLong {
                        count: 1,
                        index,
                        entry: entries[index].as_ref().to_string(),
                        template: self.templates[template].clone(),
                        tokens,
                        context,
                    }
                }
                other => other.into(),
            })?;
        // Batches of entries with similar prompt lengths: the text tower cuts
        // each batch after its longest prompt, so mixing a 40-token entry
        // with 8-token ones would make every row pay for 40 positions. The
        // order does not change any row's value.
        let eot = tokenizer.eot_id();
        let used = |r: &Vec<u32>| r.iter().position(|&i| i == eot).map_or(r.len(), |p| p + 1);
        let length: Vec<usize> = rows
            .chunks(t)
            .map(|g| g.iter().map(used).max().unwrap_or(0))
            .collect();
        let mut order: Vec<usize> = (0..entries.len()).collect();
        order.sort_by_key(|&i| (length[i], i));
        let mut out = vec![0f32; entries.len() * dim];
        for batch in order.chunks(per_batch) {
            let batch_rows: Vec<Vec<u32>> = batch
                .iter()
                .flat_map(|&i| rows[i * t..(i + 1) * t].iter().cloned())
                .collect();
            let emb = clip.encode_text(&batch_rows)?;
            let emb = v2l_clip::normalize(emb);
            let n = batch.len();
            let mean = emb.reshape([n, t, dim]).mean_dim(1).reshape([n, dim]);
            let mean = if self.renormalize {
                v2l_clip::normalize(mean)
            } else {
                mean
            };
            let values = mean.into_data().to_vec::<f32>().map_err(|e| {
                CodebookError::InvalidInput(format!("reading embeddings back: {e:?}"))
            })?;
            for (j, &i) in batch.iter().enumerate() {
                out[i * dim..(i + 1) * dim].copy_from_slice(&values[j * dim..(j + 1) * dim]);
            }
        }
        Ok(out)
    }

    /// Embed `entries` chunk by chunk into a work folder, skipping chunks a
    /// previous run with the same parameters finished. `model_id` names the
    /// CLIP weights (e.g. their sha256), so that a folder is never resumed
    /// with another model. Memory stays bounded by one chunk.
    ///
    /// # Errors
    /// [`CodebookError::JobMismatch`] for a folder of another job; as
    /// [`TemplateEmbedder::embed`].
    pub fn embed_chunked<S: AsRef<str> + Sync>(
        &self,
        entries: &[S],
        work_dir: impl Into<PathBuf>,
        model_id: &str,
        chunk_rows: usize,
        progress: OnProgress<'_>,
    ) -> Result<EmbeddingChunks> {
        if entries.is_empty() {
            return Err(CodebookError::InvalidInput("no entries to embed".into()));
        }
        let chunk_rows = chunk_rows.max(1);
        let dim = self.dim();
        let fingerprint = json!({
            "job": "template-embedding",
            "entries": entries.len(),
            "entries_sha256": strings_sha256(entries),
            "templates_sha256": strings_sha256(&self.templates),
            "renormalize": self.renormalize,
            "truncate": self.truncation == Truncation::Truncate,
            "model": model_id,
            "dim": dim,
            "chunk_rows": chunk_rows,
        });
        let work = WorkDir::open(work_dir, &fingerprint)?;
        self.check_lengths(entries)?;
        let n_chunks = entries.len().div_ceil(chunk_rows);
        let total = entries.len() as u64;
        let mut done = 0u64;
        for c in 0..n_chunks {
            let lo = c * chunk_rows;
            let hi = (lo + chunk_rows).min(entries.len());
            let path = work.chunk("embeddings", c, "f32");
            if !path.is_file() {
                let values = self.embed(&entries[lo..hi])?;
                write_f32_chunk(&path, &values)?;
            }
            done += (hi - lo) as u64;
            progress(Progress {
                phase: "embedding",
                done,
                total,
            });
        }
        Ok(EmbeddingChunks {
            work,
            rows: entries.len(),
            dim,
            chunk_rows,
        })
    }
}

/// The finished chunks of [`TemplateEmbedder::embed_chunked`].
#[derive(Debug, Clone)]
pub struct EmbeddingChunks {
    work: WorkDir,
    rows: usize,
    dim: usize,
    chunk_rows: usize,
}

impl EmbeddingChunks {
    /// Rows in all.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Width.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The work folder.
    pub fn work_dir(&self) -> &Path {
        self.work.path()
    }

    fn chunk_count(&self) -> usize {
        self.rows.div_ceil(self.chunk_rows)
    }

    /// The rows of chunk `c`.
    fn chunk(&self, c: usize) -> Result<Vec<f32>> {
        let lo = c * self.chunk_rows;
        let hi = (lo + self.chunk_rows).min(self.rows);
        read_f32_chunk(
            &self.work.chunk("embeddings", c, "f32"),
            (hi - lo) * self.dim,
        )
    }

    /// All rows in memory (`[rows, dim]`).
    ///
    /// # Errors
    /// A missing or damaged chunk file.
    pub fn to_vec(&self) -> Result<Vec<f32>> {
        let mut out = Vec::with_capacity(self.rows * self.dim);
        for c in 0..self.chunk_count() {
            out.extend(self.chunk(c)?);
        }
        Ok(out)
    }

    /// Write the codebook file (`NAME.safetensors` + `NAME.json`) streaming
    /// chunk by chunk, so memory stays bounded by one chunk plus the strings.
    ///
    /// # Errors
    /// Lists of the wrong length; I/O failures.
    pub fn save(
        &self,
        path: impl AsRef<Path>,
        precision: Precision,
        strings: Option<Vec<String>>,
        token_ids: Option<Vec<Vec<u32>>>,
        provenance: serde_json::Value,
    ) -> Result<()> {
        let parts = SidecarParts {
            rows: self.rows,
            dim: self.dim,
            strings,
            token_ids,
            votes: None,
            provenance,
        };
        let n = self.chunk_count();
        write_streamed(path.as_ref(), precision, &parts, n, &mut |c| self.chunk(c))
    }
}
