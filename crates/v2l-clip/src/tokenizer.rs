//! CLIP's byte-level BPE tokenizer (OpenAI `simple_tokenizer`, also used by open_clip).
//!
//! [`ClipTokenizer`] reads the merges file `bpe_simple_vocab_16e6.txt.gz` and reproduces
//! `SimpleTokenizer.encode` / `decode` and the rows of `clip.tokenize` exactly (checked against
//! reference ids in `tests/it/tokenizer.rs`):
//!
//! * text is cleaned by [`clean_text`] (ftfy-style fixes, HTML unescaping, whitespace
//!   collapsing, lower-casing);
//! * it is split into words, contractions (`'s`, `'t`, `'re`, `'ve`, `'m`, `'ll`, `'d`, matched
//!   case-insensitively), single digits, runs of other non-space characters, and the literal
//!   special tokens `<|startoftext|>` / `<|endoftext|>` (which encode to their special ids, as in
//!   OpenAI's tokenizer; open_clip's spells its specials `<start_of_text>` / `<end_of_text>`
//!   instead, so literal text differs there);
//! * each piece's UTF-8 bytes are mapped to the 256 printable "byte characters", the last one
//!   marked as end of word (`</w>`), and merged by rank.
//!
//! The vocabulary is the 256 byte characters, the same with `</w>`, the first
//! 49,152 − 256 − 2 = 48,894 merges of the file (after its header line) and the two special
//! tokens: 49,408 ids for the real file.

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex};

use rayon::prelude::*;
use regex::Regex;

pub use crate::text_clean::clean_text;

/// The start-of-text special token.
pub const SOT_TOKEN: &str = "<|startoftext|>";
/// The end-of-text special token.
pub const EOT_TOKEN: &str = "<|endoftext|>";
/// The context length of every released CLIP text tower.
pub const DEFAULT_CONTEXT_LENGTH: usize = 77;

/// Number of merges CLIP reads from the merges file (`49152 - 256 - 2`).
const MERGES_USED: usize = 49_152 - 256 - 2;
/// End-of-word marker appended to the last symbol of a word.
const END_OF_WORD: &str = "</w>";
/// Characters of input text shown in [`TokenizerError::TooLong`].
const TEXT_START_CHARS: usize = 40;
/// Cache shards and the entries each keeps before it is emptied.
const CACHE_SHARDS: usize = 64;
const CACHE_SHARD_CAPACITY: usize = 8192;

/// What [`ClipTokenizer::tokenize`] does with text longer than the context length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Truncation {
    /// Fail with [`TokenizerError::TooLong`] (the default of OpenAI's `clip.tokenize`).
    #[default]
    Error,
    /// Keep the first `context_length` tokens and make the last one the end token
    /// (`clip.tokenize(..., truncate=True)`, and open_clip's behaviour).
    Truncate,
}

/// Errors of [`ClipTokenizer`].
#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    /// The merges file could not be read.
    #[error("cannot read the CLIP BPE merges file {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The merges file is not a CLIP BPE merges file.
    #[error("malformed CLIP BPE merges {}, line {line}: {reason}", origin(path.as_deref()))]
    Malformed {
        /// The file, or `None` for [`ClipTokenizer::from_bpe_text`].
        path: Option<PathBuf>,
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// The text needs more tokens than the context length holds.
    #[error(
        "text {text_start:?} needs {tokens} tokens with the start and end tokens, more than the \
         context length {context_length}"
    )]
    TooLong {
        /// Tokens the text needs, including the start and end tokens.
        tokens: usize,
        /// The context length asked for.
        context_length: usize,
        /// The first characters of the text.
        text_start: String,
    },
    /// The context length cannot hold the start and end tokens.
    #[error("context length {context_length} is too short: it must be at least 2")]
    ContextTooShort {
        /// The context length asked for.
        context_length: usize,
    },
    /// [`ClipTokenizer::decode`] got an id outside the vocabulary.
    #[error("token id {id} is outside the vocabulary of {vocab_size} tokens")]
    UnknownId {
        /// The id.
        id: u32,
        /// The vocabulary size.
        vocab_size: usize,
    },
}

fn origin(path: Option<&Path>) -> String {
    path.map_or_else(|| "text".to_owned(), |p| format!("file {}", p.display()))
}

/// The byte ↔ character table of GPT-2 / CLIP byte-level BPE: printable Latin-1 bytes map to
/// themselves, the other 68 bytes to U+0100.. in byte order. Index = the byte's base token id.
fn byte_alphabet() -> [(u8, char); 256] {
    let printable = |b: u8| matches!(b, b'!'..=b'~' | 0xa1..=0xac | 0xae..=0xff);
    let mut table = [(0u8, '\0'); 256];
    let mut next = 0;
    for b in 0..=255u8 {
        if printable(b) {
            table[next] = (b, char::from(b));
            next += 1;
        }
    }
    let mut shifted = 0x100u32;
    for b in 0..=255u8 {
        if !printable(b) {
            table[next] = (b, char::from_u32(shifted).unwrap_or('\0'));
            shifted += 1;
            next += 1;
        }
    }
    table
}

/// The pre-tokenisation pattern of `simple_tokenizer` (applied to lower-cased text; the
/// `regex` module's IGNORECASE only matters for the literals, e.g. `'ſ` matches `'s`, and makes
/// U+0345, which case-folds to a letter, match none of the classes: it is dropped).
static PRE_TOKEN: LazyLock<Result<Regex, regex::Error>> = LazyLock::new(|| {
    Regex::new(
        r"(?i:<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d)|\p{L}+|\p{N}|[^\s\p{L}\p{N}\x{345}]+",
    )
});

/// A small fast hasher for the tokenizer's internal maps (keys are not attacker-chosen in a
/// way that matters: the maps are bounded).
#[derive(Default, Clone, Copy)]
struct FastHasher(u64);

impl Hasher for FastHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let mut word = [0u8; 8];
        let rest = chunks.remainder();
        word[..rest.len()].copy_from_slice(rest);
        self.add(u64::from_le_bytes(word) ^ ((rest.len() as u64) << 59));
    }

    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    fn finish(&self) -> u64 {
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h
    }
}

impl FastHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FastHasher>>;

/// One cache shard: word → ids.
type CacheShard = Mutex<FastMap<Box<str>, Box<[u32]>>>;

/// Cache of word → ids, sharded so that parallel encoders rarely wait on each other.
struct BpeCache {
    shards: Vec<CacheShard>,
}

impl BpeCache {
    fn new() -> Self {
        Self {
            shards: (0..CACHE_SHARDS).map(|_| Mutex::default()).collect(),
        }
    }

    fn shard(&self, word: &str) -> Option<&CacheShard> {
        let mut h = FastHasher::default();
        h.write(word.as_bytes());
        self.shards.get((h.finish() as usize) % CACHE_SHARDS)
    }

    fn get_into(&self, word: &str, out: &mut Vec<u32>) -> bool {
        let Some(shard) = self.shard(word) else {
            return false;
        };
        let map = shard.lock().unwrap_or_else(|e| e.into_inner());
        match map.get(word) {
            Some(ids) => {
                out.extend_from_slice(ids);
                true
            }
            None => false,
        }
    }

    fn insert(&self, word: &str, ids: &[u32]) {
        let Some(shard) = self.shard(word) else {
            return;
        };
        let mut map = shard.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= CACHE_SHARD_CAPACITY {
            map.clear();
        }
        map.insert(word.into(), ids.into());
    }

    fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).len())
            .sum()
    }
}

/// The loaded vocabulary and merge table, shared between clones.
struct Inner {
    /// Token string of every id.
    vocab: Vec<String>,
    /// Token string → id (the last id wins for a repeated string, as in Python's dict).
    encoder: FastMap<String, u32>,
    /// (left id, right id) → (rank, merged id).
    merges: FastMap<u64, (u32, u32)>,
    /// Base token id of every byte value.
    byte_id: [u32; 256],
    /// Bytes of every token (concatenated) and each token's end offset.
    token_bytes: Vec<u8>,
    token_ends: Vec<usize>,
    sot: u32,
    eot: u32,
    pattern: Regex,
    cache: BpeCache,
}

/// CLIP's BPE tokenizer (see the [module docs](self)).
///
/// Cloning is cheap: clones share the vocabulary and the word cache. Encoding is thread-safe.
#[derive(Clone)]
pub struct ClipTokenizer {
    inner: Arc<Inner>,
}

impl fmt::Debug for ClipTokenizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClipTokenizer")
            .field("vocab_size", &self.inner.vocab.len())
            .field("merges", &self.inner.merges.len())
            .field("sot_id", &self.inner.sot)
            .field("eot_id", &self.inner.eot)
            .field("cached_words", &self.inner.cache.len())
            .finish()
    }
}

impl ClipTokenizer {
    /// Loads a merges file such as `bpe_simple_vocab_16e6.txt.gz`; gzip is detected by its
    /// magic bytes, plain text is accepted too.
    pub fn from_bpe_file(path: impl AsRef<Path>) -> Result<Self, TokenizerError> {
        let path = path.as_ref();
        let io_err = |source| TokenizerError::Io {
            path: path.to_path_buf(),
            source,
        };
        let raw = std::fs::read(path).map_err(io_err)?;
        let bytes = if raw.starts_with(&[0x1f, 0x8b]) {
            let mut out = Vec::new();
            flate2::read::MultiGzDecoder::new(raw.as_slice())
                .read_to_end(&mut out)
                .map_err(io_err)?;
            out
        } else {
            raw
        };
        let with_path = |e: TokenizerError| match e {
            TokenizerError::Malformed { line, reason, .. } => TokenizerError::Malformed {
                path: Some(path.to_path_buf()),
                line,
                reason,
            },
            other => other,
        };
        let text = std::str::from_utf8(&bytes).map_err(|e| {
            let line = 1 + bytes
                .get(..e.valid_up_to())
                .map_or(0, |b| b.iter().filter(|&&c| c == b'\n').count());
            with_path(TokenizerError::Malformed {
                path: None,
                line,
                reason: "invalid UTF-8".to_owned(),
            })
        })?;
        Self::from_bpe_text(text).map_err(with_path)
    }

    /// Builds the tokenizer from the text of a merges file: a header line, then one merge
    /// (two space-separated symbols) per line, of which the first 48,894 are used. A shorter
    /// file gives a smaller vocabulary (the special tokens stay the last two ids).
    pub fn from_bpe_text(merges_file_text: &str) -> Result<Self, TokenizerError> {
        let malformed = |line: usize, reason: String| TokenizerError::Malformed {
            path: None,
            line,
            reason,
        };
        let alphabet = byte_alphabet();
        let mut char_byte: FastMap<char, u8> = FastMap::default();
        let mut byte_id = [0u32; 256];
        for (id, &(b, c)) in (0u32..).zip(alphabet.iter()) {
            char_byte.insert(c, b);
            byte_id[usize::from(b)] = id;
        }

        let mut lines = merges_file_text.split('\n');
        if lines.next().is_none_or(|header| header.trim().is_empty()) {
            return Err(malformed(1, "missing header line".to_owned()));
        }
        let mut merges_text: Vec<(&str, &str)> = Vec::new();
        let mut lines = lines.enumerate().peekable();
        while let Some((i, line)) = lines.next() {
            if merges_text.len() == MERGES_USED {
                break;
            }
            let line_no = i + 2;
            if line.is_empty() && lines.peek().is_none() {
                break; // the newline that ends the file
            }
            let mut parts = line
                .split(|c: char| c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c))
                .filter(|p| !p.is_empty());
            let (Some(left), Some(right), None) = (parts.next(), parts.next(), parts.next()) else {
                return Err(malformed(
                    line_no,
                    format!("expected two space-separated symbols, found {line:?}"),
                ));
            };
            if let Some(c) = left
                .chars()
                .chain(right.chars())
                .find(|c| !char_byte.contains_key(c))
            {
                return Err(malformed(
                    line_no,
                    format!("symbol character {c:?} is not one of the 256 byte characters"),
                ));
            }
            merges_text.push((left, right));
        }

        let mut vocab: Vec<String> = alphabet.iter().map(|&(_, c)| c.to_string()).collect();
        vocab.extend(alphabet.iter().map(|&(_, c)| format!("{c}{END_OF_WORD}")));
        vocab.extend(merges_text.iter().map(|(l, r)| format!("{l}{r}")));
        vocab.push(SOT_TOKEN.to_owned());
        vocab.push(EOT_TOKEN.to_owned());

        let mut encoder: FastMap<String, u32> = FastMap::default();
        for (id, token) in (0u32..).zip(vocab.iter()) {
            encoder.insert(token.clone(), id);
        }
        let mut merges: FastMap<u64, (u32, u32)> = FastMap::default();
        for (rank, (left, right)) in (0u32..).zip(merges_text.iter()) {
            let (Some(&l), Some(&r)) = (encoder.get(*left), encoder.get(*right)) else {
                continue; // can never apply: a symbol that no merge produces
            };
            let Some(&merged) = encoder.get(&format!("{left}{right}")) else {
                continue;
            };
            merges.insert(pair_key(l, r), (rank, merged));
        }

        let mut token_bytes = Vec::new();
        let mut token_ends = Vec::with_capacity(vocab.len());
        for token in &vocab {
            token_bytes.extend(token.chars().filter_map(|c| char_byte.get(&c).copied()));
            token_ends.push(token_bytes.len());
        }

        let pattern = match PRE_TOKEN.as_ref() {
            Ok(re) => re.clone(),
            Err(e) => return Err(malformed(0, format!("internal pattern error: {e}"))),
        };
        let sot = encoder.get(SOT_TOKEN).copied().unwrap_or_default();
        let eot = encoder.get(EOT_TOKEN).copied().unwrap_or_default();
        Ok(Self {
            inner: Arc::new(Inner {
                vocab,
                encoder,
                merges,
                byte_id,
                token_bytes,
                token_ends,
                sot,
                eot,
                pattern,
                cache: BpeCache::new(),
            }),
        })
    }

    /// Number of token ids (49,408 for CLIP's file).
    pub fn vocab_size(&self) -> usize {
        self.inner.vocab.len()
    }

    /// Id of [`SOT_TOKEN`] (49,406 for CLIP's file).
    pub fn sot_id(&self) -> u32 {
        self.inner.sot
    }

    /// Id of [`EOT_TOKEN`] (49,407 for CLIP's file).
    pub fn eot_id(&self) -> u32 {
        self.inner.eot
    }

    /// The id of a vocabulary entry, in its byte-character spelling (`"dog</w>"`, `"âĢ"`).
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.encoder.get(token).copied()
    }

    /// The vocabulary entry of an id, in its byte-character spelling.
    pub fn id_to_token(&self, id: u32) -> Option<&str> {
        self.inner.vocab.get(id as usize).map(String::as_str)
    }

    /// Cleans `text` ([`clean_text`]) and encodes it to BPE ids, without the start and end
    /// tokens (`SimpleTokenizer.encode`).
    pub fn encode(&self, text: &str) -> Vec<u32> {
        let cleaned = clean_text(text);
        let mut ids = Vec::with_capacity(cleaned.len() / 3 + 1);
        let mut symbols = Vec::new();
        for word in self.inner.pattern.find_iter(&cleaned) {
            self.encode_word(word.as_str(), &mut ids, &mut symbols);
        }
        ids
    }

    /// Appends the ids of one pre-token.
    fn encode_word(&self, word: &str, ids: &mut Vec<u32>, symbols: &mut Vec<u32>) {
        let inner = &*self.inner;
        if word == SOT_TOKEN {
            ids.push(inner.sot);
            return;
        }
        if word == EOT_TOKEN {
            ids.push(inner.eot);
            return;
        }
        if inner.cache.get_into(word, ids) {
            return;
        }
        symbols.clear();
        symbols.extend(word.bytes().map(|b| inner.byte_id[usize::from(b)]));
        if let Some(last) = symbols.last_mut() {
            *last += 256; // the same byte character with `</w>`
        }
        self.merge(symbols);
        inner.cache.insert(word, symbols);
        ids.extend_from_slice(symbols);
    }

    /// Applies merges to a word: repeatedly the lowest-ranked adjacent pair, every
    /// non-overlapping occurrence from left to right.
    fn merge(&self, symbols: &mut Vec<u32>) {
        let merges = &self.inner.merges;
        while symbols.len() > 1 {
            let mut best: Option<(u32, u32, u32, u32)> = None; // rank, left, right, merged
            for pair in symbols.windows(2) {
                if let [l, r] = *pair {
                    if let Some(&(rank, merged)) = merges.get(&pair_key(l, r)) {
                        if best.is_none_or(|b| rank < b.0) {
                            best = Some((rank, l, r, merged));
                        }
                    }
                }
            }
            let Some((_, left, right, merged)) = best else {
                break;
            };
            let n = symbols.len();
            let mut read = 0;
            let mut write = 0;
            while read < n {
                let here = symbols[read];
                if here == left && read + 1 < n && symbols[read + 1] == right {
                    symbols[write] = merged;
                    read += 2;
                } else {
                    symbols[write] = here;
                    read += 1;
                }
                write += 1;
            }
            symbols.truncate(write);
        }
    }

    /// Turns ids back into text like `SimpleTokenizer.decode`: token bytes are concatenated
    /// and read as UTF-8 (invalid sequences become U+FFFD), then every `</w>` becomes a space.
    /// Special tokens come out as their text.
    pub fn decode(&self, ids: &[u32]) -> Result<String, TokenizerError> {
        let inner = &*self.inner;
        let mut bytes = Vec::with_capacity(ids.len() * 6);
        for &id in ids {
            let i = id as usize;
            let range = match (i.checked_sub(1), inner.token_ends.get(i)) {
                (_, None) => {
                    return Err(TokenizerError::UnknownId {
                        id,
                        vocab_size: inner.vocab.len(),
                    })
                }
                (None, Some(&end)) => 0..end,
                (Some(prev), Some(&end)) => inner.token_ends.get(prev).copied().unwrap_or(0)..end,
            };
            bytes.extend_from_slice(inner.token_bytes.get(range).unwrap_or(&[]));
        }
        Ok(String::from_utf8_lossy(&bytes).replace(END_OF_WORD, " "))
    }

    /// One row of `clip.tokenize`: `[SOT, ids…, EOT]` padded with zeros to `context_length`.
    ///
    /// Text that needs more than `context_length` tokens fails with
    /// [`TokenizerError::TooLong`] or, with [`Truncation::Truncate`], keeps its first
    /// `context_length − 2` ids before the end token.
    pub fn tokenize(
        &self,
        text: &str,
        context_length: usize,
        truncation: Truncation,
    ) -> Result<Vec<u32>, TokenizerError> {
        if context_length < 2 {
            return Err(TokenizerError::ContextTooShort { context_length });
        }
        let ids = self.encode(text);
        let needed = ids.len() + 2;
        if needed > context_length && truncation == Truncation::Error {
            return Err(TokenizerError::TooLong {
                tokens: needed,
                context_length,
                text_start: text.chars().take(TEXT_START_CHARS).collect(),
            });
        }
        let kept = ids.len().min(context_length - 2);
        let mut row = Vec::with_capacity(context_length);
        row.push(self.inner.sot);
        row.extend_from_slice(ids.get(..kept).unwrap_or(&[]));
        row.push(self.inner.eot);
        row.resize(context_length, 0);
        Ok(row)
    }

    /// [`tokenize`](Self::tokenize) for many texts, in parallel (rayon), rows in input order.
    /// The first failing text (in input order) gives the error.
    pub fn tokenize_batch<S: AsRef<str> + Sync>(
        &self,
        texts: &[S],
        context_length: usize,
        truncation: Truncation,
    ) -> Result<Vec<Vec<u32>>, TokenizerError> {
        if context_length < 2 {
            return Err(TokenizerError::ContextTooShort { context_length });
        }
        let rows: Vec<Result<Vec<u32>, TokenizerError>> = texts
            .par_iter()
            .map(|t| self.tokenize(t.as_ref(), context_length, truncation))
            .collect();
        rows.into_iter().collect()
    }
}

fn pair_key(left: u32, right: u32) -> u64 {
    (u64::from(left) << 32) | u64::from(right)
}
