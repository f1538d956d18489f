//! Text of LLM vocabulary entries, as the reference spells them.
//!
//! The reference builds its local codebook from `tokenizer.decode(i)` for
//! every LLaMA-2 id `i` (spec §2.1), through SentencePiece. [`entry_text`]
//! reproduces that single-id decode for any tokenizer:
//!
//! - **SentencePiece BPE** (LLaMA, LLaMA-2, Mistral): a piece loses its
//!   leading `▁` (`"▁dog"` → `"dog"`), a byte token `<0x0A>` becomes its
//!   character, a byte ≥ 0x80 alone is not UTF-8 and becomes U+FFFD. Control
//!   tokens (`<s>`, `</s>`) decode to `""` and the unknown token to `" ⁇ "`,
//!   as SentencePiece's own decoder writes them (HF `tokenizers` would write
//!   `"<s>"`; the reference used SentencePiece).
//! - **Byte-level BPE** (GPT-2 style: SmolLM2, LLaMA-3, Qwen2): HF's
//!   `tokenizer.decode([i])`. A word-initial token keeps its space
//!   (`"Ġdog"` → `" dog"`); a token whose bytes are not valid UTF-8 alone
//!   decodes to U+FFFD, as the HF decoder does; special tokens decode to
//!   their text (`"<|im_start|>"`).
//!
//! Where that text meets CLIP or a prompt, [`prompt_text`] removes one
//! leading space, so that `" dog"` and `"dog"` are both embedded and
//! prompted as `dog`, like SentencePiece's `"dog"`.

use v2l_llm::tokenizer::{LlmTokenizer, TokenizerKind};

use crate::error::Result;

/// SentencePiece's surface for the unknown token.
pub const SENTENCEPIECE_UNK_SURFACE: &str = " \u{2047} ";

/// The text of vocabulary entry `id`, as the reference's single-id decode
/// spells it (see the [module documentation](self)).
///
/// # Errors
/// An id outside the vocabulary.
pub fn entry_text(tokenizer: &LlmTokenizer, id: u32) -> Result<String> {
    if tokenizer.kind() == TokenizerKind::SentencePieceBpe && tokenizer.is_special(id) {
        let token = tokenizer.id_to_token(id).unwrap_or_default();
        return Ok(if token == "<unk>" {
            SENTENCEPIECE_UNK_SURFACE.to_string()
        } else {
            String::new()
        });
    }
    Ok(tokenizer.decode_single(id)?)
}

/// The texts of ids `0..vocab_size`: row i of a local codebook is id i.
///
/// # Errors
/// As [`entry_text`] (an id without a token in a sparse vocabulary).
pub fn vocabulary_texts(tokenizer: &LlmTokenizer) -> Result<Vec<String>> {
    (0..tokenizer.vocab_size() as u32)
        .map(|id| entry_text(tokenizer, id))
        .collect()
}

/// `text` as it goes into a CLIP template or an LLM prompt: one leading
/// U+0020 removed, if there is one.
pub fn prompt_text(text: &str) -> &str {
    text.strip_prefix(' ').unwrap_or(text)
}

/// The text of an id sequence as one piece (the corrected expansion mode):
/// HF's `decode(ids)`, which keeps word boundaries and joins multi-byte
/// characters split across tokens. SentencePiece control tokens are left
/// out, as [`entry_text`] spells them `""`.
///
/// # Errors
/// An id outside the vocabulary.
pub fn sequence_text(tokenizer: &LlmTokenizer, ids: &[u32]) -> Result<String> {
    if tokenizer.kind() == TokenizerKind::SentencePieceBpe {
        let kept: Vec<u32> = ids
            .iter()
            .copied()
            .filter(|&id| !tokenizer.is_special(id))
            .collect();
        return Ok(tokenizer.decode(&kept, false)?);
    }
    Ok(tokenizer.decode(ids, false)?)
}
