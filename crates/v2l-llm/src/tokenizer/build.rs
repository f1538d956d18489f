//! Assembling HF `tokenizers` pipelines: SentencePiece-style BPE and GPT-2-style byte-level BPE
//! from a token list and merges.

use std::collections::HashMap;

use tokenizers::decoders::byte_fallback::ByteFallback;
use tokenizers::decoders::fuse::Fuse;
use tokenizers::decoders::sequence::Sequence as DecoderSequence;
use tokenizers::decoders::strip::Strip;
use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::normalizers::{Prepend, Replace, Sequence as NormalizerSequence};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::processors::template::TemplateProcessing;
use tokenizers::{AddedToken, DecoderWrapper, PostProcessorWrapper, PreTokenizerWrapper};

use super::{LlmTokenizer, Result, Specials, TokenizerError, TokenizerKind};

/// SentencePiece's stand-in for a space.
pub(crate) const SPIECE_SPACE: &str = "\u{2581}";

/// A vocabulary entry to register as an added token (matched whole in the text).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Added {
    /// Its id in the token list.
    pub(crate) id: u32,
    /// Special (skipped by `decode(.., skip_special = true)`) or a plain added token.
    pub(crate) special: bool,
}

/// Everything a SentencePiece-style BPE tokenizer is made of.
#[derive(Debug)]
pub(crate) struct SentencePieceParts<'a> {
    pub(crate) tokens: &'a [String],
    pub(crate) merges: Vec<(String, String)>,
    pub(crate) unk: Option<u32>,
    pub(crate) added: Vec<Added>,
    pub(crate) add_space_prefix: bool,
    pub(crate) specials: Specials,
}

/// Everything a byte-level BPE tokenizer is made of.
#[derive(Debug)]
pub(crate) struct ByteLevelParts<'a> {
    pub(crate) tokens: &'a [String],
    pub(crate) merges: Vec<(String, String)>,
    pub(crate) pre_tokenizer: PreTokenizerWrapper,
    pub(crate) added: Vec<Added>,
    pub(crate) specials: Specials,
}

/// Token → id, rejecting a token that appears twice (it would leave an id without a token).
pub(crate) fn vocab_map(tokens: &[String], origin: &str) -> Result<Vocab> {
    if tokens.is_empty() {
        return Err(TokenizerError::malformed(origin, "the token list is empty"));
    }
    if u32::try_from(tokens.len()).is_err() {
        return Err(TokenizerError::malformed(
            origin,
            format!("{} tokens do not fit u32 ids", tokens.len()),
        ));
    }
    let mut vocab = Vocab::default();
    vocab.reserve(tokens.len());
    for (id, token) in (0u32..).zip(tokens) {
        if let Some(first) = vocab.insert(token.clone(), id) {
            return Err(TokenizerError::malformed(
                origin,
                format!("token {token:?} appears twice, at ids {first} and {id}"),
            ));
        }
    }
    Ok(vocab)
}

/// Checks that both parts of every merge and their concatenation are in the vocabulary.
pub(crate) fn check_merges(vocab: &Vocab, merges: &[(String, String)], origin: &str) -> Result<()> {
    for (k, (a, b)) in merges.iter().enumerate() {
        for part in [a, b] {
            if !vocab.contains_key(part) {
                return Err(TokenizerError::malformed(
                    origin,
                    format!("merge #{k} ({a:?}, {b:?}): {part:?} is not in the vocabulary"),
                ));
            }
        }
        if !vocab.contains_key(&format!("{a}{b}")) {
            return Err(TokenizerError::malformed(
                origin,
                format!(
                    "merge #{k} ({a:?}, {b:?}): the merged token {a}{b:?} is not in the vocabulary"
                ),
            ));
        }
    }
    Ok(())
}

/// Checks that an optional id is inside the token list.
pub(crate) fn check_id(id: Option<u32>, n: usize, origin: &str) -> Result<Option<u32>> {
    match id {
        Some(i) if i as usize >= n => Err(TokenizerError::malformed(
            origin,
            format!("token id {i} is outside the {n} tokens"),
        )),
        other => Ok(other),
    }
}

/// LLaMA-2's `tokenizer.json` layout over the given vocabulary and merges.
pub(crate) fn sentencepiece_bpe(
    parts: SentencePieceParts<'_>,
    origin: &str,
) -> Result<LlmTokenizer> {
    let vocab = vocab_map(parts.tokens, origin)?;
    check_merges(&vocab, &parts.merges, origin)?;
    let mut builder = BPE::builder()
        .vocab_and_merges(vocab, parts.merges)
        .fuse_unk(true)
        .byte_fallback(true);
    if let Some(unk) = parts.unk.and_then(|i| parts.tokens.get(i as usize)) {
        builder = builder.unk_token(unk.clone());
    }
    let bpe = builder
        .build()
        .map_err(|e| TokenizerError::tokenizers("building the BPE model", e))?;
    let mut tok = tokenizers::Tokenizer::new(bpe);

    let mut normalizers = Vec::with_capacity(2);
    if parts.add_space_prefix {
        normalizers.push(Prepend::new(SPIECE_SPACE.to_string()).into());
    }
    normalizers.push(
        Replace::new(" ", SPIECE_SPACE)
            .map_err(|e| TokenizerError::tokenizers("building the normalizer", e))?
            .into(),
    );
    tok.with_normalizer(Some(NormalizerSequence::new(normalizers)))
        .map_err(|e| TokenizerError::tokenizers("setting the normalizer", e))?;

    let mut decoders: Vec<DecoderWrapper> = vec![
        Replace::new(SPIECE_SPACE, " ")
            .map_err(|e| TokenizerError::tokenizers("building the decoder", e))?
            .into(),
        ByteFallback::new().into(),
        Fuse::new().into(),
    ];
    if parts.add_space_prefix {
        decoders.push(Strip::new(' ', 1, 0).into());
    }
    tok.with_decoder(Some(DecoderSequence::new(decoders)));

    finish(
        tok,
        parts.tokens,
        &parts.added,
        parts.specials,
        TokenizerKind::SentencePieceBpe,
    )
}

/// GPT-2-style byte-level BPE over the given vocabulary and merges.
pub(crate) fn byte_level_bpe(parts: ByteLevelParts<'_>, origin: &str) -> Result<LlmTokenizer> {
    let vocab = vocab_map(parts.tokens, origin)?;
    check_merges(&vocab, &parts.merges, origin)?;
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, parts.merges)
        .build()
        .map_err(|e| TokenizerError::tokenizers("building the BPE model", e))?;
    let mut tok = tokenizers::Tokenizer::new(bpe);
    tok.with_pre_tokenizer(Some(parts.pre_tokenizer));
    tok.with_decoder(Some(ByteLevel::new(true, true, true)));
    finish(
        tok,
        parts.tokens,
        &parts.added,
        parts.specials,
        TokenizerKind::ByteLevelBpe,
    )
}

/// Registers the added tokens and the BOS/EOS template, and wraps the result.
fn finish(
    mut tok: tokenizers::Tokenizer,
    tokens: &[String],
    added: &[Added],
    specials: Specials,
    kind: TokenizerKind,
) -> Result<LlmTokenizer> {
    let content = |a: &Added| tokens.get(a.id as usize).cloned();
    let special: Vec<AddedToken> = added
        .iter()
        .filter(|a| a.special)
        .filter_map(|a| Some(AddedToken::from(content(a)?, true).normalized(false)))
        .collect();
    let plain: Vec<AddedToken> = added
        .iter()
        .filter(|a| !a.special)
        .filter_map(|a| Some(AddedToken::from(content(a)?, false).normalized(false)))
        .collect();
    tok.add_special_tokens(special)
        .map_err(|e| TokenizerError::tokenizers("adding special tokens", e))?;
    tok.add_tokens(plain)
        .map_err(|e| TokenizerError::tokenizers("adding added tokens", e))?;
    if let Some(template) = template(tokens, specials)? {
        tok.with_post_processor(Some(template));
    }
    Ok(LlmTokenizer::from_parts(tok, kind, specials))
}

/// A `TemplateProcessing` post-processor adding BOS/EOS as the model does by default (for the
/// written `tokenizer.json`; `encode` adds them itself). `None` if a token cannot be written in
/// template syntax.
fn template(tokens: &[String], specials: Specials) -> Result<Option<PostProcessorWrapper>> {
    let name = |id: Option<u32>, add: bool| -> Option<Option<&String>> {
        match id {
            Some(i) if add => tokens.get(i as usize).map(Some),
            _ => Some(None),
        }
    };
    let (Some(bos), Some(eos)) = (
        name(specials.bos, specials.add_bos),
        name(specials.eos, specials.add_eos),
    ) else {
        return Ok(None);
    };
    let writable = |t: &&String| !t.is_empty() && !t.contains([' ', ':']) && !t.starts_with('$');
    if !bos.iter().all(writable) || !eos.iter().all(writable) {
        return Ok(None);
    }
    let piece = |t: Option<&String>, type_id: u32| t.map(|t| format!("{t}:{type_id}"));
    let single: Vec<String> = [piece(bos, 0), Some("$A:0".into()), piece(eos, 0)]
        .into_iter()
        .flatten()
        .collect();
    let pair: Vec<String> = [
        piece(bos, 0),
        Some("$A:0".into()),
        piece(eos, 0),
        piece(bos, 1),
        Some("$B:1".into()),
        piece(eos, 1),
    ]
    .into_iter()
    .flatten()
    .collect();
    let mut special_tokens: HashMap<&String, u32> = HashMap::new();
    if let (Some(t), Some(id)) = (bos, specials.bos) {
        special_tokens.insert(t, id);
    }
    if let (Some(t), Some(id)) = (eos, specials.eos) {
        special_tokens.insert(t, id);
    }
    let err = |e: String| TokenizerError::tokenizers("building the BOS/EOS template", e);
    let mut builder = TemplateProcessing::builder();
    builder.try_single(single).map_err(err)?;
    builder.try_pair(pair).map_err(err)?;
    builder.special_tokens(
        special_tokens
            .into_iter()
            .map(|(t, id)| (t.clone(), id))
            .collect::<Vec<_>>(),
    );
    let template = builder.build().map_err(|e| err(e.to_string()))?;
    Ok(Some(template.into()))
}
