//! Generation: greedy or seeded sampling (temperature, top-k, top-p), stop
//! tokens and stop strings, a token budget, batching, and constrained
//! decoding in two named modes:
//!
//! - [`Constraint::UnionMask`] — the official V2L few-shot decoder
//!   (`eval_understanding.py`, spec §5.2): at step j only tokens that appear
//!   at position j of *some* candidate's tokenisation are allowed (a
//!   position-wise union, so tokens of different candidates can mix), the
//!   choice is the argmax of `softmax(logits) ⊙ mask[j]`, and once every
//!   candidate is exhausted the all-zero row makes that argmax id 0.
//! - [`Constraint::Trie`] — the correct version: only continuations of the
//!   generated prefix that lead to some candidate are allowed, and decoding
//!   ends when a candidate is complete.
//!
//! This module is the one place generation and constrained decoding live in
//! v2l-rs; later crates call it.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use burn::tensor::backend::Backend;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::error::{LlmError, Result};
use crate::model::Llama;
use crate::tokenizer::LlmTokenizer;

/// How the next token is chosen among the allowed ones.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Sampling {
    /// The highest logit (ties: the lowest id, as `torch.argmax`).
    #[default]
    Greedy,
    /// Sample from `softmax(logits / temperature)`, restricted to the `top_k`
    /// highest and then to the smallest set whose probability reaches
    /// `top_p`, with a seeded RNG (one stream per sequence: seed + row).
    Sample {
        /// Temperature (> 0).
        temperature: f32,
        /// Keep the k most likely tokens.
        top_k: Option<usize>,
        /// Nucleus mass in (0, 1].
        top_p: Option<f32>,
        /// RNG seed.
        seed: u64,
    },
}

/// The official position-wise union mask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnionMask {
    rows: Vec<BTreeSet<u32>>,
}

impl UnionMask {
    /// Row j = every token at position j of any candidate, for `steps`
    /// positions (16 in the official code); rows past the longest candidate
    /// are empty. Candidates are token sequences as the official code makes
    /// them (`encode(name, bos=False, eos=True)`: EOS included).
    pub fn from_candidates(candidates: &[Vec<u32>], steps: usize) -> Self {
        let mut rows = vec![BTreeSet::new(); steps];
        for c in candidates {
            for (j, &id) in c.iter().enumerate().take(steps) {
                rows[j].insert(id);
            }
        }
        Self { rows }
    }

    /// The allowed ids at step j (empty past the end).
    pub fn allowed(&self, step: usize) -> Option<&BTreeSet<u32>> {
        self.rows.get(step)
    }

    /// Number of steps the mask covers.
    pub fn steps(&self) -> usize {
        self.rows.len()
    }
}

/// A prefix trie over candidate token sequences.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trie {
    nodes: Vec<TrieNode>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct TrieNode {
    children: BTreeMap<u32, usize>,
    terminal: bool,
}

impl Trie {
    /// Build from candidate sequences (empty sequences are ignored).
    pub fn from_candidates(candidates: &[Vec<u32>]) -> Self {
        let mut t = Self {
            nodes: vec![TrieNode::default()],
        };
        for c in candidates.iter().filter(|c| !c.is_empty()) {
            let mut at = 0;
            for &id in c {
                let next = t.nodes.len();
                let child = *t.nodes[at].children.entry(id).or_insert(next);
                if child == next {
                    t.nodes.push(TrieNode::default());
                }
                at = child;
            }
            t.nodes[at].terminal = true;
        }
        t
    }

    fn walk(&self, prefix: &[u32]) -> Option<usize> {
        let mut at = 0;
        for id in prefix {
            at = *self.nodes.get(at)?.children.get(id)?;
        }
        Some(at)
    }

    /// Tokens that may follow `prefix` (empty when `prefix` is a complete
    /// candidate with no longer extension, or not a prefix at all).
    pub fn allowed(&self, prefix: &[u32]) -> Vec<u32> {
        self.walk(prefix)
            .and_then(|n| self.nodes.get(n))
            .map(|n| n.children.keys().copied().collect())
            .unwrap_or_default()
    }

    /// Whether `prefix` is a complete candidate.
    pub fn is_complete(&self, prefix: &[u32]) -> bool {
        self.walk(prefix)
            .and_then(|n| self.nodes.get(n))
            .is_some_and(|n| n.terminal)
    }
}

/// A restriction on which tokens may be generated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Constraint {
    /// Any token.
    #[default]
    None,
    /// The official union mask (faithful mode).
    UnionMask(UnionMask),
    /// The prefix trie (corrected mode).
    Trie(Trie),
}

/// Options of [`Llama::generate`].
#[derive(Debug, Clone, Default)]
pub struct GenerateOptions {
    /// Most tokens to generate per sequence.
    pub max_tokens: usize,
    /// Token choice.
    pub sampling: Sampling,
    /// Stop (after emitting) when one of these ids is generated.
    pub stop_tokens: Vec<u32>,
    /// Stop when the decoded continuation contains one of these strings; the
    /// text is cut before it (needs a tokenizer).
    pub stop_strings: Vec<String>,
    /// Constrained decoding.
    pub constraint: Constraint,
}

/// Why a sequence stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    /// `max_tokens` reached.
    MaxTokens,
    /// A stop token was generated (it is the last token).
    StopToken(u32),
    /// A stop string appeared in the text.
    StopString(String),
    /// The trie constraint reached a complete candidate with no extension.
    CandidateComplete,
}

/// One generated continuation.
#[derive(Debug, Clone, PartialEq)]
pub struct Generation {
    /// Generated ids (prompt excluded).
    pub tokens: Vec<u32>,
    /// Decoded text of `tokens` (cut at a stop string), when a tokenizer was given.
    pub text: Option<String>,
    /// Why generation ended.
    pub stop: StopReason,
}

fn argmax_of(logits: &[f32], allowed: Option<&[u32]>) -> u32 {
    let better = |a: (usize, f32), i: usize, x: f32| x > a.1 || (x == a.1 && i < a.0);
    match allowed {
        None => {
            let mut best = (0usize, f32::NEG_INFINITY);
            for (i, &x) in logits.iter().enumerate() {
                if better(best, i, x) {
                    best = (i, x);
                }
            }
            best.0 as u32
        }
        Some(ids) => {
            let mut best = (usize::MAX, f32::NEG_INFINITY);
            for &id in ids {
                let x = logits[id as usize];
                if best.0 == usize::MAX || better(best, id as usize, x) {
                    best = (id as usize, x);
                }
            }
            if best.0 == usize::MAX {
                0
            } else {
                best.0 as u32
            }
        }
    }
}

fn sample(
    logits: &[f32],
    allowed: Option<&[u32]>,
    temperature: f32,
    top_k: Option<usize>,
    top_p: Option<f32>,
    rng: &mut StdRng,
) -> u32 {
    let mut cand: Vec<(u32, f32)> = match allowed {
        Some(ids) => ids.iter().map(|&i| (i, logits[i as usize])).collect(),
        None => logits
            .iter()
            .enumerate()
            .map(|(i, &x)| (i as u32, x))
            .collect(),
    };
    if cand.is_empty() {
        return 0;
    }
    cand.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    if let Some(k) = top_k {
        cand.truncate(k.max(1));
    }
    let m = cand[0].1;
    let mut probs: Vec<f64> = cand
        .iter()
        .map(|&(_, x)| (((x - m) / temperature) as f64).exp())
        .collect();
    let z: f64 = probs.iter().sum();
    probs.iter_mut().for_each(|p| *p /= z);
    if let Some(p) = top_p {
        let mut acc = 0.0;
        let mut keep = probs.len();
        for (i, q) in probs.iter().enumerate() {
            acc += q;
            if acc >= p as f64 {
                keep = i + 1;
                break;
            }
        }
        probs.truncate(keep);
        cand.truncate(keep);
        let z: f64 = probs.iter().sum();
        probs.iter_mut().for_each(|q| *q /= z);
    }
    let u: f64 = rng.random();
    let mut acc = 0.0;
    for (i, q) in probs.iter().enumerate() {
        acc += q;
        if u < acc {
            return cand[i].0;
        }
    }
    cand[cand.len() - 1].0
}

struct Seq {
    tokens: Vec<u32>,
    stop: Option<StopReason>,
    text: Option<String>,
    rng: Option<StdRng>,
}

impl<B: Backend> Llama<B> {
    /// Logits of the last position after feeding `rows` (equal lengths) into
    /// `cache`: one `Vec` per row.
    pub fn next_logits(
        &self,
        rows: &[Vec<u32>],
        cache: &mut crate::model::KvCache<B>,
    ) -> Result<Vec<Vec<f32>>> {
        let x = self.embed(rows)?;
        let hidden = self.forward_embeds(x, cache)?;
        let [b, t, d] = hidden.dims();
        let last = hidden.slice([0..b, t - 1..t, 0..d]);
        let logits = self.logits(last);
        let v = self.config.vocab_size;
        let data = logits
            .into_data()
            .to_vec::<f32>()
            .map_err(|e| LlmError::InvalidInput(format!("reading logits: {e:?}")))?;
        Ok(data.chunks(v).map(<[f32]>::to_vec).collect())
    }

    /// Generate continuations of `prompts` (token ids, BOS already applied as
    /// the caller's tokenizer policy says). Prompts of equal length run as one
    /// batch; different lengths run as separate batches (no padding, so every
    /// row computes exactly what it would alone).
    pub fn generate(
        &self,
        prompts: &[Vec<u32>],
        options: &GenerateOptions,
        tokenizer: Option<&LlmTokenizer>,
    ) -> Result<Vec<Generation>> {
        if prompts.is_empty() || prompts.iter().any(Vec::is_empty) {
            return Err(LlmError::InvalidInput(
                "every prompt needs at least one token".into(),
            ));
        }
        if !options.stop_strings.is_empty() && tokenizer.is_none() {
            return Err(LlmError::InvalidInput(
                "stop strings need a tokenizer".into(),
            ));
        }
        if let Sampling::Sample {
            temperature, top_p, ..
        } = &options.sampling
        {
            if !(*temperature > 0.0 && temperature.is_finite()) {
                return Err(LlmError::InvalidInput(format!(
                    "temperature {temperature} must be > 0"
                )));
            }
            if let Some(p) = top_p {
                if !(*p > 0.0 && *p <= 1.0) {
                    return Err(LlmError::InvalidInput(format!(
                        "top_p {p} must be in (0, 1]"
                    )));
                }
            }
        }
        let needed = prompts.iter().map(Vec::len).max().unwrap_or(0) + options.max_tokens;
        if needed > self.config.max_position_embeddings {
            return Err(LlmError::ContextOverflow {
                needed,
                context: self.config.max_position_embeddings,
            });
        }
        let mut groups: HashMap<usize, Vec<usize>> = HashMap::new();
        for (i, p) in prompts.iter().enumerate() {
            groups.entry(p.len()).or_default().push(i);
        }
        let mut out: Vec<Option<Generation>> = vec![None; prompts.len()];
        let mut keys: Vec<usize> = groups.keys().copied().collect();
        keys.sort_unstable();
        for len in keys {
            let idx = &groups[&len];
            let rows: Vec<Vec<u32>> = idx.iter().map(|&i| prompts[i].clone()).collect();
            let gens = self.generate_batch(&rows, idx, options, tokenizer)?;
            for (&i, g) in idx.iter().zip(gens) {
                out[i] = Some(g);
            }
        }
        out.into_iter()
            .map(|g| g.ok_or_else(|| LlmError::InvalidInput("internal: missing generation".into())))
            .collect()
    }

    fn generate_batch(
        &self,
        prompts: &[Vec<u32>],
        row_ids: &[usize],
        options: &GenerateOptions,
        tokenizer: Option<&LlmTokenizer>,
    ) -> Result<Vec<Generation>> {
        let mut seqs: Vec<Seq> = row_ids
            .iter()
            .map(|&r| Seq {
                tokens: Vec::new(),
                stop: None,
                text: None,
                rng: match &options.sampling {
                    Sampling::Sample { seed, .. } => {
                        Some(StdRng::seed_from_u64(seed.wrapping_add(r as u64)))
                    }
                    Sampling::Greedy => None,
                },
            })
            .collect();
        if options.max_tokens == 0 {
            return Ok(seqs
                .into_iter()
                .map(|_| Generation {
                    tokens: Vec::new(),
                    text: tokenizer.map(|_| String::new()),
                    stop: StopReason::MaxTokens,
                })
                .collect());
        }
        let mut cache = self.new_cache();
        let mut logits = self.next_logits(prompts, &mut cache)?;
        for step in 0..options.max_tokens {
            for (s, l) in seqs.iter_mut().zip(&logits) {
                if s.stop.is_some() {
                    continue;
                }
                let allowed: Option<Vec<u32>> = match &options.constraint {
                    Constraint::None => None,
                    Constraint::UnionMask(m) => Some(
                        m.allowed(step)
                            .map(|r| r.iter().copied().collect())
                            .unwrap_or_default(),
                    ),
                    Constraint::Trie(t) => Some(t.allowed(&s.tokens)),
                };
                let id = match (&options.sampling, s.rng.as_mut()) {
                    (
                        Sampling::Sample {
                            temperature,
                            top_k,
                            top_p,
                            ..
                        },
                        Some(rng),
                    ) => sample(l, allowed.as_deref(), *temperature, *top_k, *top_p, rng),
                    _ => argmax_of(l, allowed.as_deref()),
                };
                s.tokens.push(id);
                if options.stop_tokens.contains(&id) {
                    s.stop = Some(StopReason::StopToken(id));
                } else if let Constraint::Trie(t) = &options.constraint {
                    if t.is_complete(&s.tokens) && t.allowed(&s.tokens).is_empty() {
                        s.stop = Some(StopReason::CandidateComplete);
                    }
                }
                if s.stop.is_none() && !options.stop_strings.is_empty() {
                    if let Some(tok) = tokenizer {
                        let text = tok.decode(&s.tokens, false)?;
                        if let Some((cut, stop)) = options
                            .stop_strings
                            .iter()
                            .filter_map(|st| text.find(st.as_str()).map(|i| (i, st)))
                            .min_by_key(|(i, _)| *i)
                        {
                            s.text = Some(text[..cut].to_string());
                            s.stop = Some(StopReason::StopString(stop.clone()));
                        }
                    }
                }
            }
            if step + 1 == options.max_tokens || seqs.iter().all(|s| s.stop.is_some()) {
                break;
            }
            // Finished rows keep decoding their last token so the batch stays
            // rectangular; their output is ignored.
            let next: Vec<Vec<u32>> = seqs
                .iter()
                .map(|s| vec![s.tokens.last().copied().unwrap_or(0)])
                .collect();
            logits = self.next_logits(&next, &mut cache)?;
        }
        seqs.into_iter()
            .map(|s| {
                let text = match (s.text, tokenizer) {
                    (Some(t), _) => Some(t),
                    (None, Some(tok)) => Some(tok.decode(&s.tokens, false)?),
                    (None, None) => None,
                };
                Ok(Generation {
                    tokens: s.tokens,
                    text,
                    stop: s.stop.unwrap_or(StopReason::MaxTokens),
                })
            })
            .collect()
    }

    /// The log-probability of each continuation after `prompt`: the sum over
    /// its tokens of `log softmax(logits)` at the position before each
    /// (natural log, accumulated in f64). The prompt runs once; each
    /// continuation continues a copy of its KV cache.
    ///
    /// # Errors
    /// An empty prompt or continuation, ids outside the vocabulary, or a
    /// prompt plus continuation longer than the context window.
    pub fn continuation_log_probs(
        &self,
        prompt: &[u32],
        continuations: &[Vec<u32>],
    ) -> Result<Vec<f64>> {
        if prompt.is_empty() {
            return Err(LlmError::InvalidInput(
                "scoring needs a prompt of at least one token".into(),
            ));
        }
        let longest = continuations.iter().map(Vec::len).max().unwrap_or(0);
        if continuations.iter().any(Vec::is_empty) {
            return Err(LlmError::InvalidInput(
                "every continuation to score needs at least one token".into(),
            ));
        }
        let needed = prompt.len() + longest;
        if needed > self.config.max_position_embeddings {
            return Err(LlmError::ContextOverflow {
                needed,
                context: self.config.max_position_embeddings,
            });
        }
        let mut cache = self.new_cache();
        let first = self
            .next_logits(&[prompt.to_vec()], &mut cache)?
            .into_iter()
            .next()
            .unwrap_or_default();
        let first = log_softmax(&first);
        let v = self.config.vocab_size;
        continuations
            .iter()
            .map(|c| {
                let mut total = token_log_prob(&first, c[0])?;
                if c.len() > 1 {
                    let mut branch = cache.clone();
                    let out = self.forward(&[c[..c.len() - 1].to_vec()], &mut branch)?;
                    let data =
                        out.logits.into_data().to_vec::<f32>().map_err(|e| {
                            LlmError::InvalidInput(format!("reading logits: {e:?}"))
                        })?;
                    for (row, &t) in data.chunks(v).zip(&c[1..]) {
                        total += token_log_prob(&log_softmax(row), t)?;
                    }
                }
                Ok(total)
            })
            .collect()
    }
}

/// `log softmax` of one logit row, in f64.
fn log_softmax(logits: &[f32]) -> Vec<f64> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let max = f64::from(max);
    let sum: f64 = logits.iter().map(|&x| (f64::from(x) - max).exp()).sum();
    let log_z = max + sum.ln();
    logits.iter().map(|&x| f64::from(x) - log_z).collect()
}

fn token_log_prob(row: &[f64], id: u32) -> Result<f64> {
    row.get(id as usize).copied().ok_or_else(|| {
        LlmError::InvalidInput(format!(
            "token id {id} is outside the vocabulary of {} entries",
            row.len()
        ))
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn union_mask_mixes_candidates_and_falls_to_zero() {
        // "cat" = [5, 6, 2], "dog" = [7, 8, 9, 2]: step 1 allows 6 and 8 (mixing).
        let m = UnionMask::from_candidates(&[vec![5, 6, 2], vec![7, 8, 9, 2]], 6);
        let logits = |hot: &[u32]| {
            let mut l = vec![0.0f32; 12];
            for (r, &h) in hot.iter().enumerate() {
                l[h as usize] = 10.0 - r as f32;
            }
            l
        };
        // Step 0: logits favour 7 over 5 → 7 ("dog").
        let a = argmax_of(
            &logits(&[7, 5]),
            Some(&m.allowed(0).unwrap().iter().copied().collect::<Vec<_>>()),
        );
        assert_eq!(a, 7);
        // Step 1: logits favour 6 ("cat"'s 2nd token) → 6, a mixed sequence 7, 6.
        let b = argmax_of(
            &logits(&[6, 8]),
            Some(&m.allowed(1).unwrap().iter().copied().collect::<Vec<_>>()),
        );
        assert_eq!(b, 6);
        // Step 4 is past the longest candidate: the row is empty → id 0.
        let allowed: Vec<u32> = m.allowed(4).unwrap().iter().copied().collect();
        assert!(allowed.is_empty());
        assert_eq!(argmax_of(&logits(&[3, 4]), Some(&allowed)), 0);
    }

    #[test]
    fn trie_only_allows_candidate_continuations() {
        let t = Trie::from_candidates(&[vec![5, 6, 2], vec![7, 8, 9, 2], vec![7, 3, 2]]);
        assert_eq!(t.allowed(&[]), vec![5, 7]);
        assert_eq!(t.allowed(&[7]), vec![3, 8]);
        assert!(t.allowed(&[7, 6]).is_empty());
        assert!(t.is_complete(&[5, 6, 2]));
        assert!(!t.is_complete(&[5, 6]));
    }

    #[test]
    fn seeded_sampling_is_reproducible_and_respects_top_k() {
        let logits: Vec<f32> = (0..50).map(|i| (i as f32) * 0.1).collect();
        let draw = |seed| {
            let mut rng = StdRng::seed_from_u64(seed);
            (0..20)
                .map(|_| sample(&logits, None, 1.0, Some(3), None, &mut rng))
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(7), draw(7));
        assert!(draw(7).iter().all(|&i| i >= 47));
        let mut rng = StdRng::seed_from_u64(1);
        // top_p tiny → always the argmax.
        assert!((0..20).all(|_| sample(&logits, None, 1.0, None, Some(1e-6), &mut rng) == 49));
    }
}
