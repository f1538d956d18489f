//! The tokenizer embedded in GGUF metadata (llama.cpp's `tokenizer.ggml.*` keys).

use std::collections::{HashMap, HashSet};

use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::{PreTokenizerWrapper, SplitDelimiterBehavior};

use super::build::{self, Added, ByteLevelParts, SentencePieceParts};
use super::{LlmTokenizer, Result, Specials, TokenizerError};
use crate::gguf::{GgufError, GgufFile};

const MODEL: &str = "tokenizer.ggml.model";
const PRE: &str = "tokenizer.ggml.pre";
const TOKENS: &str = "tokenizer.ggml.tokens";
const SCORES: &str = "tokenizer.ggml.scores";
const TOKEN_TYPE: &str = "tokenizer.ggml.token_type";
const MERGES: &str = "tokenizer.ggml.merges";
const BOS: &str = "tokenizer.ggml.bos_token_id";
const EOS: &str = "tokenizer.ggml.eos_token_id";
const UNK: &str = "tokenizer.ggml.unknown_token_id";
const ADD_BOS: &str = "tokenizer.ggml.add_bos_token";
const ADD_EOS: &str = "tokenizer.ggml.add_eos_token";
const ADD_SPACE_PREFIX: &str = "tokenizer.ggml.add_space_prefix";

/// llama.cpp's token types (`tokenizer.ggml.token_type`).
const TYPE_NORMAL: i32 = 1;
const TYPE_UNKNOWN: i32 = 2;
const TYPE_CONTROL: i32 = 3;
const TYPE_USER_DEFINED: i32 = 4;

/// GPT-2's split: contractions, letter runs, number runs, other runs, each with an optional
/// leading space, and whitespace not followed by a non-space.
const GPT2_RULES: &[&str] = &[
    "default",
    "gpt2",
    "gpt-2",
    "mpt",
    "olmo",
    "phi-2",
    "roberta-bpe",
];
/// Digits one by one, then GPT-2's split (StarCoder-style vocabularies, SmolLM, SmolLM2).
const DIGITS_GPT2_RULES: &[&str] = &[
    "smollm",
    "starcoder",
    "refact",
    "command-r",
    "codeshell",
    "exaone",
    "minerva-7b",
];
/// LLaMA-3's split (also cl100k's).
const LLAMA3_RULES: &[&str] = &[
    "llama3",
    "llama-v3",
    "llama-bpe",
    "falcon3",
    "smaug-bpe",
    "dbrx",
];
/// Qwen2's split (LLaMA-3's with digits one by one).
const QWEN2_RULES: &[&str] = &["qwen2", "deepseek-r1-qwen", "stablelm2", "megrez"];

const LLAMA3_REGEX: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const QWEN2_REGEX: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

fn malformed(key: &str, e: &GgufError) -> TokenizerError {
    TokenizerError::malformed(key, e.to_string())
}

/// `Some(value)` if `key` is present, `None` if absent, an error if present but unusable.
fn optional<'a, T>(
    gguf: &'a GgufFile,
    key: &str,
    get: impl FnOnce(&'a GgufFile, &str) -> crate::gguf::Result<T>,
) -> Result<Option<T>> {
    if gguf.contains_key(key) {
        get(gguf, key).map(Some).map_err(|e| malformed(key, &e))
    } else {
        Ok(None)
    }
}

pub(crate) fn from_gguf(gguf: &GgufFile) -> Result<LlmTokenizer> {
    let model = gguf.get_str(MODEL).map_err(|e| malformed(MODEL, &e))?;
    match model {
        "gpt2" => byte_level(gguf),
        "llama" => sentencepiece(gguf),
        other => Err(TokenizerError::UnsupportedModel {
            model: other.to_string(),
        }),
    }
}

/// The token list, the token types (if any, same length) and the special ids.
struct Common<'a> {
    tokens: &'a [String],
    types: Option<&'a [i32]>,
    bos: Option<u32>,
    eos: Option<u32>,
    unk: Option<u32>,
}

fn common(gguf: &GgufFile) -> Result<Common<'_>> {
    let tokens = gguf
        .get_str_array(TOKENS)
        .map_err(|e| malformed(TOKENS, &e))?;
    let n = tokens.len();
    if n == 0 {
        return Err(TokenizerError::malformed(TOKENS, "the token list is empty"));
    }
    let types = optional(gguf, TOKEN_TYPE, GgufFile::get_i32_array)?;
    if let Some(t) = types {
        if t.len() != n {
            return Err(TokenizerError::malformed(
                TOKEN_TYPE,
                format!("{} token types for {n} tokens", t.len()),
            ));
        }
    }
    let id = |key: &str| -> Result<Option<u32>> {
        build::check_id(optional(gguf, key, GgufFile::get_u32)?, n, key)
    };
    Ok(Common {
        tokens,
        types,
        bos: id(BOS)?,
        eos: id(EOS)?,
        unk: id(UNK)?,
    })
}

fn specials(
    gguf: &GgufFile,
    bos: Option<u32>,
    eos: Option<u32>,
    bos_default: bool,
) -> Result<Specials> {
    Ok(Specials {
        bos,
        eos,
        add_bos: optional(gguf, ADD_BOS, GgufFile::get_bool)?.unwrap_or(bos_default),
        add_eos: optional(gguf, ADD_EOS, GgufFile::get_bool)?.unwrap_or(false),
    })
}

/// Merges stored as `"left right"` strings.
fn stored_merges(merges: &[String]) -> Result<Vec<(String, String)>> {
    merges
        .iter()
        .enumerate()
        .map(|(k, m)| match m.split_once(' ') {
            Some((a, b)) if !a.is_empty() && !b.is_empty() && !b.contains(' ') => {
                Ok((a.to_string(), b.to_string()))
            }
            _ => Err(TokenizerError::malformed(
                MERGES,
                format!("merge #{k} {m:?} is not two tokens separated by one space"),
            )),
        })
        .collect()
}

// ------------------------------------------------------------------------- SentencePiece

fn sentencepiece(gguf: &GgufFile) -> Result<LlmTokenizer> {
    let c = common(gguf)?;
    let n = c.tokens.len();
    let find = |t: &str| {
        (0u32..)
            .zip(c.tokens)
            .find(|(_, x)| *x == t)
            .map(|(i, _)| i)
    };
    let bos = c.bos.or_else(|| find("<s>"));
    let eos = c.eos.or_else(|| find("</s>"));
    let unk = c.unk.or_else(|| {
        c.types
            .and_then(|t| t.iter().position(|&x| x == TYPE_UNKNOWN))
            .and_then(|i| u32::try_from(i).ok())
            .or_else(|| find("<unk>"))
    });

    let merges = match optional(gguf, MERGES, GgufFile::get_str_array)? {
        Some(m) if !m.is_empty() => stored_merges(m)?,
        _ => {
            let scores = gguf
                .get_f32_array(SCORES)
                .map_err(|e| malformed(SCORES, &e))?;
            if scores.len() != n {
                return Err(TokenizerError::malformed(
                    SCORES,
                    format!("{} scores for {n} tokens", scores.len()),
                ));
            }
            if let Some(i) = scores.iter().position(|s| s.is_nan()) {
                return Err(TokenizerError::malformed(
                    SCORES,
                    format!("score {i} is NaN"),
                ));
            }
            merges_from_scores(c.tokens, scores, c.types)
        }
    };

    // Control and unknown tokens are special; user-defined ones are matched whole but not
    // special. Without token types: unk, bos and eos are special.
    let mut added: Vec<Added> = match c.types {
        Some(types) => (0u32..)
            .zip(types)
            .filter_map(|(id, &t)| match t {
                TYPE_CONTROL | TYPE_UNKNOWN => Some(Added { id, special: true }),
                TYPE_USER_DEFINED => Some(Added { id, special: false }),
                _ => None,
            })
            .collect(),
        None => [unk, bos, eos]
            .into_iter()
            .flatten()
            .map(|id| Added { id, special: true })
            .collect(),
    };
    added.sort_by_key(|a| a.id);
    added.dedup_by_key(|a| a.id);

    let add_space_prefix = optional(gguf, ADD_SPACE_PREFIX, GgufFile::get_bool)?.unwrap_or(true);
    build::sentencepiece_bpe(
        SentencePieceParts {
            tokens: c.tokens,
            merges,
            unk,
            added,
            add_space_prefix,
            specials: specials(gguf, bos, eos, true)?,
        },
        TOKENS,
    )
}

/// The merges a SentencePiece BPE vocabulary implies: every split of a token into two
/// vocabulary entries, best score first; ties by longer left part, then longer right part, then
/// token id and the ids of the parts (transformers' `generate_merges` order). Tokens of type
/// control, byte, unknown or unused are never merge results.
fn merges_from_scores(
    tokens: &[String],
    scores: &[f32],
    types: Option<&[i32]>,
) -> Vec<(String, String)> {
    let vocab: HashMap<&str, u32> = (0u32..).zip(tokens).map(|(i, t)| (t.as_str(), i)).collect();
    struct Candidate {
        score: f32,
        left_chars: usize,
        right_chars: usize,
        token: u32,
        left: u32,
        right: u32,
        split: usize,
    }
    let mut candidates = Vec::new();
    for (id, token) in (0u32..).zip(tokens) {
        let mergeable = types.is_none_or(|t| {
            matches!(
                t.get(id as usize),
                Some(&TYPE_NORMAL) | Some(&TYPE_USER_DEFINED)
            )
        });
        if !mergeable {
            continue;
        }
        let total_chars = token.chars().count();
        for (left_chars, (split, _)) in token.char_indices().enumerate().skip(1) {
            let (l, r) = token.split_at(split);
            if let (Some(&left), Some(&right)) = (vocab.get(l), vocab.get(r)) {
                candidates.push(Candidate {
                    score: scores
                        .get(id as usize)
                        .copied()
                        .unwrap_or(f32::NEG_INFINITY),
                    left_chars,
                    right_chars: total_chars - left_chars,
                    token: id,
                    left,
                    right,
                    split,
                });
            }
        }
    }
    candidates.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(b.left_chars.cmp(&a.left_chars))
            .then(b.right_chars.cmp(&a.right_chars))
            .then(a.token.cmp(&b.token))
            .then((a.left, a.right).cmp(&(b.left, b.right)))
    });
    candidates
        .into_iter()
        .filter_map(|c| {
            let token = tokens.get(c.token as usize)?;
            let (l, r) = token.split_at(c.split);
            Some((l.to_string(), r.to_string()))
        })
        .collect()
}

// ------------------------------------------------------------------------- byte-level BPE

fn byte_level(gguf: &GgufFile) -> Result<LlmTokenizer> {
    let c = common(gguf)?;
    let alphabet = byte_alphabet();
    let alphabet_set: HashSet<char> = alphabet.iter().copied().collect();
    let in_alphabet = |t: &str| t.chars().all(|ch| alphabet_set.contains(&ch));
    // A token written with characters outside the byte alphabet is re-spelled byte by byte.
    let respelled: Vec<String> = c
        .tokens
        .iter()
        .map(|t| {
            if in_alphabet(t) {
                t.clone()
            } else {
                t.bytes().map(|b| alphabet[usize::from(b)]).collect()
            }
        })
        .collect();
    let merges = stored_merges(
        gguf.get_str_array(MERGES)
            .map_err(|e| malformed(MERGES, &e))?,
    )?;

    let pre_name = optional(gguf, PRE, GgufFile::get_str)?.unwrap_or("default");
    let pre_tokenizer = pre_tokenizer(pre_name)?;

    // Control tokens are special (unless spelled outside the byte alphabet, a llama.cpp
    // mislabel that transformers skips too); user-defined ones are matched whole. Without token
    // types, BOS, EOS and UNK are the special tokens.
    let added: Vec<Added> = match c.types {
        Some(types) => (0u32..)
            .zip(types)
            .zip(c.tokens)
            .filter_map(|((id, &t), token)| match t {
                TYPE_CONTROL if in_alphabet(token) => Some(Added { id, special: true }),
                TYPE_USER_DEFINED => Some(Added { id, special: false }),
                _ => None,
            })
            .collect(),
        None => [c.bos, c.eos, c.unk]
            .into_iter()
            .flatten()
            .map(|id| Added { id, special: true })
            .collect(),
    };

    build::byte_level_bpe(
        ByteLevelParts {
            tokens: &respelled,
            merges,
            pre_tokenizer,
            added,
            specials: specials(gguf, c.bos, c.eos, false)?,
        },
        TOKENS,
    )
}

/// The pre-tokenizer for llama.cpp's `tokenizer.ggml.pre` name.
fn pre_tokenizer(name: &str) -> Result<PreTokenizerWrapper> {
    let byte_level =
        |use_regex: bool| -> PreTokenizerWrapper { ByteLevel::new(false, true, use_regex).into() };
    let split = |regex: &str| -> Result<PreTokenizerWrapper> {
        let split = Split::new(
            SplitPattern::Regex(regex.to_string()),
            SplitDelimiterBehavior::Isolated,
            false,
        )
        .map_err(|e| TokenizerError::tokenizers("compiling the pre-tokenizer regex", e))?;
        Ok(Sequence::new(vec![split.into(), byte_level(false)]).into())
    };
    if GPT2_RULES.contains(&name) {
        Ok(byte_level(true))
    } else if DIGITS_GPT2_RULES.contains(&name) {
        Ok(Sequence::new(vec![Digits::new(true).into(), byte_level(true)]).into())
    } else if LLAMA3_RULES.contains(&name) {
        split(LLAMA3_REGEX)
    } else if QWEN2_RULES.contains(&name) {
        split(QWEN2_REGEX)
    } else {
        let supported = [GPT2_RULES, DIGITS_GPT2_RULES, LLAMA3_RULES, QWEN2_RULES]
            .concat()
            .join(", ");
        Err(TokenizerError::UnsupportedPreTokenizer {
            pre: name.to_string(),
            supported,
        })
    }
}

/// GPT-2's printable spelling of the 256 bytes: printable Latin-1 bytes stand for themselves,
/// the others take the code points from U+0100 on, in byte order.
fn byte_alphabet() -> Vec<char> {
    let printable = |b: u8| matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
    let mut next = 256u32;
    (0u8..=255)
        .map(|b| {
            if printable(b) {
                char::from(b)
            } else {
                let c = char::from_u32(next).unwrap_or(char::REPLACEMENT_CHARACTER);
                next += 1;
                c
            }
        })
        .collect()
}
