//! Captioning metrics as the COCO caption evaluation computes them
//! (pycocoevalcap 1.2): corpus BLEU-1..4 (`Bleu(4)`) and CIDEr-D (`Cider()`),
//! with their per-image scores, on tokenised captions.
//!
//! The COCO pipeline first runs Stanford's Java `PTBTokenizer` (CoreNLP
//! 3.4.1, `-preserveLines -lowerCase`) and removes the punctuation tokens of
//! [`PTB_PUNCTUATION`]; the scorers then split each caption on whitespace.
//! Feed captions that were tokenised that way with
//! [`Tokenization::PreTokenized`]: the scores then match pycocoevalcap to
//! rounding (see `docs/metrics.md`). [`Tokenization::Ptb`] tokenises raw
//! captions with [`tokenize_caption`], a documented approximation of the Java
//! tokeniser, so scores from raw text can differ where the two tokenisers do.
//!
//! Both metrics are corpus-level: BLEU sums n-gram counts and lengths over
//! all images before combining them, and CIDEr-D takes its document
//! frequencies from the references of the evaluated set, so every per-image
//! CIDEr-D score depends on the whole set.

use std::collections::{HashMap, HashSet};

use crate::error::{MetricsError, Result};

/// The tokens pycocoevalcap's `PTBTokenizer` removes after tokenising
/// (`PUNCTUATIONS` in `ptbtokenizer.py`), compared case-sensitively.
pub const PTB_PUNCTUATION: [&str; 17] = [
    "''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-", ".", "?", "!", ",", ":", "-", "--",
    "...", ";",
];

/// Largest n-gram order of BLEU and CIDEr-D.
pub const MAX_ORDER: usize = 4;
/// σ of CIDEr-D's Gaussian length penalty.
pub const CIDER_SIGMA: f64 = 6.0;
/// pycocoevalcap BLEU's `small`, added to every denominator.
const BLEU_SMALL: f64 = 1e-9;
/// pycocoevalcap BLEU's `tiny`, added to every numerator.
const BLEU_TINY: f64 = 1e-15;

/// Words that keep a following period, as the PTB tokeniser keeps "mr."
/// (our short list; CoreNLP's is longer and context dependent).
const ABBREVIATIONS: [&str; 9] = ["mr", "mrs", "ms", "dr", "st", "jr", "sr", "vs", "etc"];
/// Clitics split off the end of a word ("dog's" → "dog", "'s").
const CLITICS: [&str; 6] = ["'s", "'re", "'ve", "'ll", "'d", "'m"];
/// Words the PTB conventions split into two (or three) tokens.
const SPLIT_WORDS: [(&str, &[&str]); 7] = [
    ("cannot", &["can", "not"]),
    ("gonna", &["gon", "na"]),
    ("gotta", &["got", "ta"]),
    ("wanna", &["wan", "na"]),
    ("gimme", &["gim", "me"]),
    ("lemme", &["lem", "me"]),
    ("dunno", &["du", "n", "no"]),
];

/// Python's `str.isspace`, which `str.split()` and `str.strip()` use: Rust's
/// `char::is_whitespace` plus the separators U+001C..U+001F.
pub(crate) fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Tokenises a raw caption as an approximation of the COCO evaluation's
/// tokenisation step: CoreNLP's `PTBTokenizer -preserveLines -lowerCase`,
/// then removal of the [`PTB_PUNCTUATION`] tokens.
///
/// What it does:
/// - lower-cases the text (Unicode, as Java's `toLowerCase`);
/// - splits on whitespace and around punctuation; hyphens, apostrophes, `&`,
///   `/` and `_` between letters or digits stay inside a word ("t-shirt",
///   "o'clock", "at&t"), as do periods followed by a letter or digit ("3.5",
///   "u.s"), and commas and colons between digits ("1,000", "4:45");
/// - keeps the final period of single-letter acronyms ("u.s.") and of a short
///   list of abbreviations (mr, mrs, ms, dr, st, jr, sr, vs, etc);
/// - splits clitics as PTB does: "dog's" → "dog" "'s", "they're" → "they"
///   "'re", "don't" → "do" "n't", "can't" → "ca" "n't"; and "cannot",
///   "gonna", "gotta", "wanna", "gimme", "lemme", "dunno" into their PTB parts;
/// - maps punctuation to PTB tokens (double quotes and curly quotes to the
///   PTB opening and closing quote tokens, runs of periods and `…` to `...`,
///   runs of hyphens and the dashes U+2012..U+2015 to `--`), drops soft
///   hyphens, then removes the [`PTB_PUNCTUATION`] tokens;
/// - turns brackets into `-lrb-`, `-rrb-`, `-lsb-`, `-rsb-`, `-lcb-`,
///   `-rcb-`, which are *kept*: CoreNLP's `-lowerCase` lower-cases tokens
///   after escaping (`PTBTokenizer.tokReader`), and pycocoevalcap's removal
///   list is upper-case;
/// - keeps runs of two or more `?`/`!` as one token ("?!"), as CoreNLP's
///   tokeniser tests show; a single one is removed;
/// - makes every other symbol its own token (`$`, `%`, `#`, `*`, `+`, `=`,
///   `@`, `/`, …), kept.
///
/// Where it may differ from the Java tokeniser: abbreviations outside the
/// short list ("no.", "corp.", "ph.d."); numbers glued to units or letters
/// ("4:45pm" stays one token here); a leading apostrophe other than a clitic
/// ("'90s", "'cause": dropped here); URLs, e-mail addresses, emoticons and
/// words with symbols ("c#", "f**k"); CoreNLP 3.4.1 may escape `/` and `*` as
/// `\/` and `\*`; non-ASCII quotes other than the curly ones; text not in NFC
/// (combining marks split words here). The bracket and `?!` behaviour was
/// checked against current CoreNLP sources, not against 3.4.1.
pub fn tokenize_caption(text: &str) -> Vec<String> {
    ptb_tokens(text)
        .into_iter()
        .filter(|t| !PTB_PUNCTUATION.contains(&t.as_str()))
        .collect()
}

/// PTB-style tokens, before the punctuation removal.
fn ptb_tokens(text: &str) -> Vec<String> {
    let mut chars: Vec<char> = Vec::with_capacity(text.len());
    for c in text.to_lowercase().chars() {
        match c {
            '\u{00AD}' => {}
            '\u{2018}' | '\u{201B}' => chars.push('`'),
            '\u{2019}' => chars.push('\''),
            '\u{201C}' | '\u{201D}' | '\u{201E}' | '\u{201F}' => chars.push('"'),
            '\u{2010}' | '\u{2011}' => chars.push('-'),
            '\u{2012}'..='\u{2015}' => chars.extend(['-', '-']),
            '\u{2026}' => chars.extend(['.', '.', '.']),
            c => chars.push(c),
        }
    }
    let n = chars.len();
    let run_of = |start: usize, set: &[char]| {
        let mut end = start;
        while end < n && set.contains(&chars[end]) {
            end += 1;
        }
        end
    };
    let mut out = Vec::new();
    let mut i = 0;
    while i < n {
        let c = chars[i];
        if is_py_space(c) {
            i += 1;
            continue;
        }
        if c.is_alphanumeric() {
            let start = i;
            i += 1;
            loop {
                if i < n && chars[i].is_alphanumeric() {
                    i += 1;
                } else if i + 1 < n
                    && chars[i + 1].is_alphanumeric()
                    && joins(chars[i - 1], chars[i], chars[i + 1])
                {
                    i += 2;
                } else {
                    break;
                }
            }
            let mut word: String = chars[start..i].iter().collect();
            let single_period = i < n && chars[i] == '.' && chars.get(i + 1) != Some(&'.');
            if single_period && (is_acronym(&word) || ABBREVIATIONS.contains(&word.as_str())) {
                word.push('.');
                i += 1;
            }
            push_word(&mut out, word);
            continue;
        }
        match c {
            '.' => {
                let end = run_of(i, &['.']);
                out.push(if end - i == 1 { "." } else { "..." }.to_string());
                i = end;
            }
            '-' => {
                let end = run_of(i, &['-']);
                out.push(if end - i == 1 { "-" } else { "--" }.to_string());
                i = end;
            }
            '?' | '!' => {
                let end = run_of(i, &['?', '!']);
                out.push(chars[i..end].iter().collect());
                i = end;
            }
            '`' => {
                let end = run_of(i, &['`']);
                out.push(if end - i == 1 { "`" } else { "``" }.to_string());
                i = end;
            }
            '"' => {
                let opening = i == 0 || is_py_space(chars[i - 1]) || "([{`".contains(chars[i - 1]);
                out.push(if opening { "``" } else { "''" }.to_string());
                i += 1;
            }
            '\'' => {
                // A clitic standing alone ("the dog 's bone") stays a token.
                let word_end = {
                    let mut e = i + 1;
                    while e < n && chars[e].is_alphanumeric() {
                        e += 1;
                    }
                    e
                };
                let clitic: String = chars[i..word_end].iter().collect();
                if word_end > i + 1 && CLITICS.contains(&clitic.as_str()) {
                    out.push(clitic);
                    i = word_end;
                } else if chars.get(i + 1) == Some(&'\'') {
                    out.push("''".to_string());
                    i += 2;
                } else {
                    out.push("'".to_string());
                    i += 1;
                }
            }
            other => {
                out.push(match other {
                    '(' => "-lrb-".to_string(),
                    ')' => "-rrb-".to_string(),
                    '[' => "-lsb-".to_string(),
                    ']' => "-rsb-".to_string(),
                    '{' => "-lcb-".to_string(),
                    '}' => "-rcb-".to_string(),
                    _ => other.to_string(),
                });
                i += 1;
            }
        }
    }
    out
}

/// Whether `mid` joins the letters or digits on either side into one word.
fn joins(prev: char, mid: char, next: char) -> bool {
    match mid {
        '-' | '\'' | '&' | '/' | '_' | '.' => true,
        ',' | ':' => prev.is_ascii_digit() && next.is_ascii_digit(),
        _ => false,
    }
}

/// "u.s", "a.m": single letters separated by periods.
fn is_acronym(word: &str) -> bool {
    let mut parts = 0;
    for part in word.split('.') {
        let mut cs = part.chars();
        match (cs.next(), cs.next()) {
            (Some(c), None) if c.is_alphabetic() => parts += 1,
            _ => return false,
        }
    }
    parts >= 2
}

/// Pushes a word, split into its PTB parts (clitics, "cannot", …).
fn push_word(out: &mut Vec<String>, word: String) {
    if let Some((_, parts)) = SPLIT_WORDS.iter().find(|(w, _)| *w == word) {
        out.extend(parts.iter().map(|p| (*p).to_string()));
        return;
    }
    let mut stem = word.as_str();
    let mut tail = Vec::new();
    'peel: loop {
        for suffix in CLITICS.iter().chain(std::iter::once(&"n't")) {
            if let Some(rest) = stem.strip_suffix(suffix) {
                if rest.chars().next_back().is_some_and(char::is_alphanumeric) {
                    tail.push(*suffix);
                    stem = rest;
                    continue 'peel;
                }
            }
        }
        break;
    }
    out.push(stem.to_string());
    out.extend(tail.iter().rev().map(|s| (*s).to_string()));
}

/// How captions are turned into tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Tokenization {
    /// Captions are already tokenised (the COCO evaluation's
    /// `PTBTokenizer` output): split on whitespace, as pycocoevalcap's
    /// scorers do (Python's `str.split()`).
    #[default]
    PreTokenized,
    /// Raw captions: tokenise each with [`tokenize_caption`] first.
    Ptb,
}

impl Tokenization {
    fn tokens(self, caption: &str) -> Vec<String> {
        match self {
            Self::PreTokenized => caption
                .split(is_py_space)
                .filter(|w| !w.is_empty())
                .map(str::to_string)
                .collect(),
            Self::Ptb => tokenize_caption(caption),
        }
    }
}

/// A checked, tokenised set of candidate captions (one per image) and their
/// reference captions, ready to score.
#[derive(Debug, Clone, PartialEq)]
pub struct CaptionSet {
    /// Token ids of each image's candidate.
    candidates: Vec<Vec<u32>>,
    /// Token ids of each image's references.
    references: Vec<Vec<Vec<u32>>>,
}

impl CaptionSet {
    /// Tokenises `candidates[i]` and `references[i]` (all reference captions
    /// of image `i`) with `tokenization`.
    ///
    /// # Errors
    /// [`MetricsError::ShapeMismatch`] when the two slices differ in length;
    /// [`MetricsError::Undefined`] for no images or an image without
    /// references.
    pub fn new<C, R, S>(
        candidates: &[C],
        references: &[R],
        tokenization: Tokenization,
    ) -> Result<Self>
    where
        C: AsRef<str>,
        R: AsRef<[S]>,
        S: AsRef<str>,
    {
        crate::check_paired(
            "caption candidates vs reference lists",
            candidates.len(),
            references.len(),
            "captioning metrics of no images",
        )?;
        let mut vocab: HashMap<String, u32> = HashMap::new();
        let mut ids = |caption: &str| -> Vec<u32> {
            tokenization
                .tokens(caption)
                .into_iter()
                .map(|t| {
                    let next = vocab.len() as u32;
                    *vocab.entry(t).or_insert(next)
                })
                .collect()
        };
        let mut cand_ids = Vec::with_capacity(candidates.len());
        let mut ref_ids = Vec::with_capacity(references.len());
        for (i, (c, refs)) in candidates.iter().zip(references).enumerate() {
            let refs = refs.as_ref();
            if refs.is_empty() {
                return Err(MetricsError::Undefined(format!(
                    "image {i} has no reference captions"
                )));
            }
            cand_ids.push(ids(c.as_ref()));
            ref_ids.push(refs.iter().map(|r| ids(r.as_ref())).collect());
        }
        Ok(Self {
            candidates: cand_ids,
            references: ref_ids,
        })
    }

    /// Number of images.
    pub fn num_images(&self) -> usize {
        self.candidates.len()
    }

    /// Corpus BLEU-1..4 and per-image BLEU, as pycocoevalcap's `Bleu(4)`.
    pub fn bleu(&self) -> Bleu {
        let mut per_image = Vec::with_capacity(self.num_images());
        let (mut guess_total, mut correct_total) = ([0usize; MAX_ORDER], [0usize; MAX_ORDER]);
        let (mut hyp_len, mut ref_len) = (0usize, 0usize);
        for (cand, refs) in self.candidates.iter().zip(&self.references) {
            // Clipping counts: the largest count of each n-gram in any reference.
            let mut max_counts: HashMap<&[u32], usize> = HashMap::new();
            for r in refs {
                for (g, c) in NgramCounts::new(r).entries {
                    let m = max_counts.entry(g).or_insert(0);
                    *m = (*m).max(c);
                }
            }
            let test_len = cand.len();
            // "closest": the reference length nearest the candidate's, the
            // shorter one on a tie.
            let closest = refs
                .iter()
                .map(|r| (r.len().abs_diff(test_len), r.len()))
                .min()
                .map_or(0, |(_, l)| l);
            let mut guess = [0usize; MAX_ORDER];
            let mut correct = [0usize; MAX_ORDER];
            for (k, g) in guess.iter_mut().enumerate() {
                *g = test_len.saturating_sub(k);
            }
            for (g, c) in NgramCounts::new(cand).entries {
                correct[g.len() - 1] += c.min(max_counts.get(g).copied().unwrap_or(0));
            }
            per_image.push(bleu_scores(&correct, &guess, test_len, closest));
            for k in 0..MAX_ORDER {
                guess_total[k] += guess[k];
                correct_total[k] += correct[k];
            }
            hyp_len += test_len;
            ref_len += closest;
        }
        Bleu {
            bleu: bleu_scores(&correct_total, &guess_total, hyp_len, ref_len),
            per_image,
            hypothesis_length: hyp_len,
            reference_length: ref_len,
        }
    }

    /// Corpus CIDEr-D and per-image CIDEr-D, as pycocoevalcap's `Cider()`.
    pub fn cider_d(&self) -> CiderD {
        // Document frequency: in how many images' reference sets an n-gram occurs.
        let mut df: HashMap<&[u32], f64> = HashMap::new();
        for refs in &self.references {
            let mut seen: HashSet<&[u32]> = HashSet::new();
            for r in refs {
                seen.extend(NgramCounts::new(r).entries.into_iter().map(|(g, _)| g));
            }
            for g in seen {
                *df.entry(g).or_insert(0.0) += 1.0;
            }
        }
        let log_n = (self.num_images() as f64).ln();
        let per_image: Vec<f64> = self
            .candidates
            .iter()
            .zip(&self.references)
            .map(|(cand, refs)| {
                let hyp = TfIdf::new(cand, &df, log_n);
                let mut score = [0.0f64; MAX_ORDER];
                for r in refs {
                    let sim = hyp.similarity(&TfIdf::new(r, &df, log_n));
                    for (s, v) in score.iter_mut().zip(sim) {
                        *s += v;
                    }
                }
                numpy_sum(&score) / MAX_ORDER as f64 / refs.len() as f64 * 10.0
            })
            .collect();
        CiderD {
            score: numpy_sum(&per_image) / per_image.len() as f64,
            per_image,
        }
    }
}

/// BLEU-1..4 from clipped matches, guesses and lengths, with pycocoevalcap's
/// smoothing constants and brevity penalty.
fn bleu_scores(
    correct: &[usize; MAX_ORDER],
    guess: &[usize; MAX_ORDER],
    hyp_len: usize,
    ref_len: usize,
) -> [f64; MAX_ORDER] {
    let mut out = [0.0; MAX_ORDER];
    let mut product = 1.0f64;
    for k in 0..MAX_ORDER {
        product *= (correct[k] as f64 + BLEU_TINY) / (guess[k] as f64 + BLEU_SMALL);
        out[k] = product.powf(1.0 / (k + 1) as f64);
    }
    let ratio = (hyp_len as f64 + BLEU_TINY) / (ref_len as f64 + BLEU_SMALL);
    if ratio < 1.0 {
        let penalty = (1.0 - 1.0 / ratio).exp();
        for b in &mut out {
            *b *= penalty;
        }
    }
    out
}

/// N-gram counts of orders 1..=4, in pycocoevalcap's order (by order, then
/// by first occurrence), which fixes the order of its float sums.
struct NgramCounts<'a> {
    entries: Vec<(&'a [u32], usize)>,
}

impl<'a> NgramCounts<'a> {
    fn new(words: &'a [u32]) -> Self {
        let mut index: HashMap<&'a [u32], usize> = HashMap::new();
        let mut entries: Vec<(&'a [u32], usize)> = Vec::new();
        for k in 1..=MAX_ORDER {
            for g in words.windows(k) {
                match index.get(g) {
                    Some(&at) => entries[at].1 += 1,
                    None => {
                        index.insert(g, entries.len());
                        entries.push((g, 1));
                    }
                }
            }
        }
        Self { entries }
    }
}

/// One caption's tf-idf vectors (pycocoevalcap's `counts2vec`).
struct TfIdf<'a> {
    /// Weights per order, in insertion order.
    by_order: [Vec<(&'a [u32], f64)>; MAX_ORDER],
    /// The same weights by n-gram.
    lookup: HashMap<&'a [u32], f64>,
    norm: [f64; MAX_ORDER],
    /// pycocoevalcap's "length": it counts the bigrams (`if n == 1`, with
    /// `n` the 0-based order), i.e. max(0, words − 1), not the words. Kept
    /// for parity; it only matters between 0- and 1-word captions.
    length: f64,
}

impl<'a> TfIdf<'a> {
    fn new(words: &'a [u32], df: &HashMap<&[u32], f64>, log_n: f64) -> Self {
        let mut by_order: [Vec<(&'a [u32], f64)>; MAX_ORDER] = Default::default();
        let mut lookup = HashMap::new();
        let mut norm = [0.0f64; MAX_ORDER];
        let mut length = 0.0;
        for (g, tf) in NgramCounts::new(words).entries {
            let idf = df.get(g).copied().unwrap_or(0.0).max(1.0).ln();
            let w = tf as f64 * (log_n - idf);
            let n = g.len() - 1;
            by_order[n].push((g, w));
            lookup.insert(g, w);
            norm[n] += w * w;
            if n == 1 {
                length += tf as f64;
            }
        }
        Self {
            by_order,
            lookup,
            norm: norm.map(f64::sqrt),
            length,
        }
    }

    /// Clipped cosine similarity per order times the Gaussian length penalty
    /// (pycocoevalcap's `sim`).
    fn similarity(&self, reference: &TfIdf<'_>) -> [f64; MAX_ORDER] {
        let delta = self.length - reference.length;
        let penalty =
            std::f64::consts::E.powf(-(delta * delta) / (2.0 * CIDER_SIGMA * CIDER_SIGMA));
        let mut val = [0.0f64; MAX_ORDER];
        for (n, v) in val.iter_mut().enumerate() {
            for &(g, w) in &self.by_order[n] {
                let r = reference.lookup.get(g).copied().unwrap_or(0.0);
                *v += w.min(r) * r;
            }
            if self.norm[n] != 0.0 && reference.norm[n] != 0.0 {
                *v /= self.norm[n] * reference.norm[n];
            }
            *v *= penalty;
        }
        val
    }
}

/// A sum in numpy's order (`np.add.reduce` on a contiguous f64 array:
/// pairwise, eight accumulators per block of up to 128), so means match
/// `np.mean` to the last bit.
fn numpy_sum(v: &[f64]) -> f64 {
    const BLOCK: usize = 128;
    let n = v.len();
    if n < 8 {
        v.iter().fold(0.0, |acc, x| acc + x)
    } else if n <= BLOCK {
        let mut r = [0.0f64; 8];
        r.copy_from_slice(&v[..8]);
        let full = n - n % 8;
        for chunk in v[8..full].chunks_exact(8) {
            for (acc, x) in r.iter_mut().zip(chunk) {
                *acc += x;
            }
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for x in &v[full..] {
            res += x;
        }
        res
    } else {
        let half = n / 2;
        let half = half - half % 8;
        numpy_sum(&v[..half]) + numpy_sum(&v[half..])
    }
}

/// BLEU as pycocoevalcap's `Bleu(4)` reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct Bleu {
    /// Corpus BLEU-1..4: clipped n-gram matches and guesses summed over all
    /// images, brevity penalty from the summed lengths.
    pub bleu: [f64; MAX_ORDER],
    /// BLEU-1..4 of each image alone.
    pub per_image: Vec<[f64; MAX_ORDER]>,
    /// Total candidate length in tokens.
    pub hypothesis_length: usize,
    /// Total effective reference length: per image, the reference length
    /// closest to the candidate's (the shorter on a tie).
    pub reference_length: usize,
}

/// CIDEr-D as pycocoevalcap's `Cider()` reports it (n = 1..4, σ = 6,
/// clipped tf-idf with document frequencies from this set's references,
/// ×10).
#[derive(Debug, Clone, PartialEq)]
pub struct CiderD {
    /// Mean of the per-image scores.
    pub score: f64,
    /// Each image's score: the mean over n-gram orders and references.
    pub per_image: Vec<f64>,
}

/// Corpus BLEU of `candidates` against `references` (one list per image).
///
/// # Errors
/// As [`CaptionSet::new`].
pub fn bleu<C, R, S>(candidates: &[C], references: &[R], tokenization: Tokenization) -> Result<Bleu>
where
    C: AsRef<str>,
    R: AsRef<[S]>,
    S: AsRef<str>,
{
    Ok(CaptionSet::new(candidates, references, tokenization)?.bleu())
}

/// Corpus CIDEr-D of `candidates` against `references` (one list per image).
///
/// # Errors
/// As [`CaptionSet::new`].
pub fn cider_d<C, R, S>(
    candidates: &[C],
    references: &[R],
    tokenization: Tokenization,
) -> Result<CiderD>
where
    C: AsRef<str>,
    R: AsRef<[S]>,
    S: AsRef<str>,
{
    Ok(CaptionSet::new(candidates, references, tokenization)?.cider_d())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numpy_sum_orders() {
        let v: Vec<f64> = (0..300).map(|i| f64::from(i) * 0.1).collect();
        let exact: f64 = (0..300).map(f64::from).sum::<f64>() * 0.1;
        assert!((numpy_sum(&v) - exact).abs() < 1e-9);
        assert_eq!(numpy_sum(&[]), 0.0);
        assert_eq!(numpy_sum(&[1.5, 2.5]), 4.0);
    }

    #[test]
    fn acronyms() {
        assert!(is_acronym("u.s"));
        assert!(!is_acronym("us"));
        assert!(!is_acronym("ph.d"));
        assert!(!is_acronym("3.5"));
    }
}
