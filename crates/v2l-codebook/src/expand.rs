//! Vocabulary expansion with a frozen LLM (spec §2.3): every entry becomes a
//! unigram, a bigram and a trigram.
//!
//! For entry `w` (the text of token id `i`, [`crate::vocab::entry_text`]):
//! 1. the prompt `a photo of {w}` (encoded with the LLM's own BOS
//!    convention) gets one greedy next token `n1`;
//! 2. the bigram `w2` is built from `w` and `n1`;
//! 3. the prompt `a photo of {w2}` gets one greedy next token `n2`;
//! 4. the trigram `w3` is built from `w2` and `n2`.
//!
//! [`ExpansionMode::Faithful`] builds `w2 = w + decode([n1])` and
//! `w3 = w2 + decode([n2])`, gluing single-id decodes as the official code
//! does — for SentencePiece vocabularies a word-initial continuation loses
//! its `▁`, so `"dog"` + `"▁house"` gives `"doghouse"`.
//! [`ExpansionMode::Corrected`] decodes the id sequence as a whole
//! (`decode([i, n1])`, `decode([i, n1, n2])`), keeping word boundaries
//! (`"dog house"`) and joining a multi-byte character split across tokens.
//! For byte-level vocabularies (SmolLM2) word-initial tokens carry their
//! space, so the two modes differ only where a token is not valid UTF-8 on
//! its own. In both modes the text put into a prompt loses one leading space
//! ([`crate::vocab::prompt_text`]), and [`Expanded::token_ids`] records the
//! ids `[i]`, `[i, n1]`, `[i, n1, n2]`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use burn::tensor::backend::Backend;
use serde::{Deserialize, Serialize};
use serde_json::json;
use v2l_llm::tokenizer::{AddSpecial, LlmTokenizer};
use v2l_llm::Llama;

use crate::error::{CodebookError, Result};
use crate::job::{io, write_atomic, OnProgress, Progress, WorkDir};
use crate::vocab::{entry_text, prompt_text, sequence_text};

/// The reference's prompt prefix.
pub const PROMPT_PREFIX: &str = "a photo of ";

/// How bigram and trigram strings are spelled (see the [module
/// documentation](self)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExpansionMode {
    /// Single-id decodes concatenated, as the official code (glues words
    /// for SentencePiece vocabularies).
    #[default]
    Faithful,
    /// The id sequence decoded as a whole (keeps word boundaries).
    Corrected,
}

impl ExpansionMode {
    /// `"faithful"` or `"corrected"`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Faithful => "faithful",
            Self::Corrected => "corrected",
        }
    }
}

/// One entry's expansion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expanded {
    /// The token id of the entry.
    pub id: u32,
    /// Its text (the unigram).
    pub unigram: String,
    /// Unigram + first continuation.
    pub bigram: String,
    /// Bigram + second continuation.
    pub trigram: String,
    /// The two greedy continuations `[n1, n2]`.
    pub next: [u32; 2],
}

impl Expanded {
    /// The ids of the unigram, bigram and trigram.
    pub fn token_ids(&self) -> [Vec<u32>; 3] {
        [
            vec![self.id],
            vec![self.id, self.next[0]],
            vec![self.id, self.next[0], self.next[1]],
        ]
    }
}

/// Anything that gives the greedy next token of prompts.
pub trait NextToken {
    /// The greedy (argmax, ties to the lowest id) next token of each prompt.
    ///
    /// # Errors
    /// Model failures (an out-of-range id, a prompt past the context).
    fn next_tokens(&mut self, prompts: &[Vec<u32>]) -> Result<Vec<u32>>;
}

/// [`NextToken`] by a [`Llama`]: prompts of equal length run together in
/// batches of up to `batch_size` (no padding, so each row computes what it
/// would alone).
#[derive(Debug)]
pub struct LlamaNext<'a, B: Backend> {
    model: &'a Llama<B>,
    batch_size: usize,
}

impl<'a, B: Backend> LlamaNext<'a, B> {
    /// Wrap a model; `batch_size` ≥ 1 prompts per forward pass.
    pub fn new(model: &'a Llama<B>, batch_size: usize) -> Self {
        Self {
            model,
            batch_size: batch_size.max(1),
        }
    }
}

/// Index of the largest logit, ties to the lowest index.
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = (0usize, f32::NEG_INFINITY);
    for (i, &x) in logits.iter().enumerate() {
        if x > best.1 {
            best = (i, x);
        }
    }
    best.0 as u32
}

impl<B: Backend> NextToken for LlamaNext<'_, B> {
    fn next_tokens(&mut self, prompts: &[Vec<u32>]) -> Result<Vec<u32>> {
        let mut by_len: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for (i, p) in prompts.iter().enumerate() {
            if p.is_empty() {
                return Err(CodebookError::InvalidInput(format!(
                    "prompt {i} has no tokens"
                )));
            }
            by_len.entry(p.len()).or_default().push(i);
        }
        let mut out = vec![0u32; prompts.len()];
        for group in by_len.values() {
            for batch in group.chunks(self.batch_size) {
                let rows: Vec<Vec<u32>> = batch.iter().map(|&i| prompts[i].clone()).collect();
                let mut cache = self.model.new_cache();
                let logits = self.model.next_logits(&rows, &mut cache)?;
                for (&i, l) in batch.iter().zip(&logits) {
                    out[i] = argmax(l);
                }
            }
        }
        Ok(out)
    }
}

/// Expands vocabulary entries with an LLM (see the [module
/// documentation](self)).
#[derive(Debug, Clone)]
pub struct Expander<'a> {
    tokenizer: &'a LlmTokenizer,
    mode: ExpansionMode,
}

impl<'a> Expander<'a> {
    /// An expander for `tokenizer`'s vocabulary.
    pub fn new(tokenizer: &'a LlmTokenizer, mode: ExpansionMode) -> Self {
        Self { tokenizer, mode }
    }

    /// The mode.
    pub fn mode(&self) -> ExpansionMode {
        self.mode
    }

    /// The prompt ids for an entry text: `a photo of {text}` with the
    /// model's own BOS/EOS convention.
    ///
    /// # Errors
    /// Tokenizer failures.
    pub fn prompt(&self, text: &str) -> Result<Vec<u32>> {
        Ok(self.tokenizer.encode(
            &format!("{PROMPT_PREFIX}{}", prompt_text(text)),
            AddSpecial::ModelDefault,
        )?)
    }

    fn extend(&self, ids: &[u32], text: &str, next: u32) -> Result<String> {
        Ok(match self.mode {
            ExpansionMode::Faithful => format!("{text}{}", entry_text(self.tokenizer, next)?),
            ExpansionMode::Corrected => {
                let mut all = ids.to_vec();
                all.push(next);
                sequence_text(self.tokenizer, &all)?
            }
        })
    }

    /// Expand the entries of token ids `ids`, batching all first-step
    /// prompts, then all second-step prompts.
    ///
    /// # Errors
    /// Ids outside the vocabulary; model failures.
    pub fn expand(&self, ids: &[u32], llm: &mut dyn NextToken) -> Result<Vec<Expanded>> {
        let unigrams = ids
            .iter()
            .map(|&id| entry_text(self.tokenizer, id))
            .collect::<Result<Vec<_>>>()?;
        let prompts = unigrams
            .iter()
            .map(|t| self.prompt(t))
            .collect::<Result<Vec<_>>>()?;
        let n1 = llm.next_tokens(&prompts)?;
        let bigrams = ids
            .iter()
            .zip(&unigrams)
            .zip(&n1)
            .map(|((&id, w), &n)| self.extend(&[id], w, n))
            .collect::<Result<Vec<_>>>()?;
        let prompts = bigrams
            .iter()
            .map(|t| self.prompt(t))
            .collect::<Result<Vec<_>>>()?;
        let n2 = llm.next_tokens(&prompts)?;
        let mut out = Vec::with_capacity(ids.len());
        for (i, &id) in ids.iter().enumerate() {
            let trigram = self.extend(&[id, n1[i]], &bigrams[i], n2[i])?;
            out.push(Expanded {
                id,
                unigram: unigrams[i].clone(),
                bigram: bigrams[i].clone(),
                trigram,
                next: [n1[i], n2[i]],
            });
        }
        Ok(out)
    }

    /// [`Expander::expand`] chunk by chunk into a work folder (JSON per
    /// chunk), skipping chunks a previous run with the same parameters
    /// finished. `model_id` names the LLM weights.
    ///
    /// # Errors
    /// [`CodebookError::JobMismatch`] for a folder of another job; as
    /// [`Expander::expand`].
    pub fn expand_chunked(
        &self,
        ids: &[u32],
        llm: &mut dyn NextToken,
        work_dir: impl Into<PathBuf>,
        model_id: &str,
        chunk_entries: usize,
        progress: OnProgress<'_>,
    ) -> Result<Vec<Expanded>> {
        let chunk_entries = chunk_entries.max(1);
        let ids_bytes: Vec<u8> = ids.iter().flat_map(|i| i.to_le_bytes()).collect();
        let fingerprint = json!({
            "job": "vocabulary-expansion",
            "mode": self.mode.name(),
            "ids": ids.len(),
            "ids_sha256": crate::job::sha256_hex(&ids_bytes),
            "model": model_id,
            "vocab_size": self.tokenizer.vocab_size(),
            "prefix": PROMPT_PREFIX,
            "chunk_entries": chunk_entries,
        });
        let work = WorkDir::open(work_dir, &fingerprint)?;
        let total = ids.len() as u64;
        let mut out = Vec::with_capacity(ids.len());
        for (c, chunk) in ids.chunks(chunk_entries).enumerate() {
            let path = work.chunk("expansion", c, "json");
            let done: Vec<Expanded> = if path.is_file() {
                let text = std::fs::read_to_string(&path).map_err(io(&path))?;
                let v: Vec<Expanded> =
                    serde_json::from_str(&text).map_err(|e| CodebookError::Format {
                        path: path.clone(),
                        message: e.to_string(),
                    })?;
                if v.len() != chunk.len() || v.iter().zip(chunk).any(|(e, &id)| e.id != id) {
                    return Err(CodebookError::Format {
                        path,
                        message: "chunk does not hold the expected ids".into(),
                    });
                }
                v
            } else {
                let v = self.expand(chunk, llm)?;
                let text = serde_json::to_string(&v).map_err(|e| CodebookError::Format {
                    path: path.clone(),
                    message: e.to_string(),
                })?;
                write_atomic(&path, text.as_bytes())?;
                v
            };
            out.extend(done);
            progress(Progress {
                phase: "expanding",
                done: out.len() as u64,
                total,
            });
        }
        Ok(out)
    }
}

/// The candidate list in the reference's order: all unigrams, then all
/// bigrams, then all trigrams (rows 0..N, N..2N, 2N..3N), with their token
/// ids.
pub fn candidates(expanded: &[Expanded]) -> (Vec<String>, Vec<Vec<u32>>) {
    let n = expanded.len();
    let mut strings = Vec::with_capacity(3 * n);
    let mut ids = Vec::with_capacity(3 * n);
    for k in 0..3 {
        for e in expanded {
            let [a, b, c] = e.token_ids();
            let (s, t) = match k {
                0 => (&e.unigram, a),
                1 => (&e.bigram, b),
                _ => (&e.trigram, c),
            };
            strings.push(s.clone());
            ids.push(t);
        }
    }
    (strings, ids)
}
