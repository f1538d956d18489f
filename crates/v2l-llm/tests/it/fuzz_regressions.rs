//! Inputs that once panicked (found by the fuzz target `tokenizer_json` in
//! `fuzz/`, docs/reliability.md, Fuzzing): each is committed under
//! `tests/fixtures/fuzz/` and must now end in a typed error.

use std::path::PathBuf;

use v2l_llm::tokenizer::{LlmTokenizer, TokenizerError};

fn fuzz_fixture(name: &str) -> PathBuf {
    [
        env!("CARGO_MANIFEST_DIR"),
        "tests",
        "fixtures",
        "fuzz",
        name,
    ]
    .iter()
    .collect()
}

/// `{"decoder": {"type": "Fuse", (}}`: a syntax error inside the `decoder`
/// object made `tokenizers` 0.23 panic (`.expect("Helper")` in its decoder
/// deserializer) instead of returning the error.
#[test]
fn tokenizer_json_syntax_error_in_decoder_is_invalid_tokenizer_json() {
    let path = fuzz_fixture("tokenizer_json_decoder_syntax.json");
    let err = LlmTokenizer::from_file(&path).unwrap_err();
    assert!(
        matches!(&err, TokenizerError::InvalidTokenizerJson { path: p, message } if p == &path && message.contains("line 1")),
        "{err:?}"
    );
}

/// BPE merges that `tokenizers` 0.23's builder panics on instead of refusing:
/// `("abc", "b")` whose merged token is longer than every vocabulary entry
/// (it is copied into a buffer of that length: "range end index 4 out of
/// range for slice of length 3"; the long fuzz run found it), and `("a", "b")`
/// with the continuing-subword prefix `"##"`, longer than `"b"` (a subtraction
/// overflow). Both are now refused naming the merge.
#[test]
fn tokenizer_json_bpe_merges_tokenizers_panics_on_are_invalid_tokenizer_json() {
    for (name, needle) in [
        (
            "tokenizer_json_bpe_merge_longer_than_vocab.json",
            "the merged token \"abcb\" is not in the vocabulary",
        ),
        (
            "tokenizer_json_bpe_part_shorter_than_prefix.json",
            "does not extend past the continuing_subword_prefix \"##\"",
        ),
    ] {
        let path = fuzz_fixture(name);
        let err = LlmTokenizer::from_file(&path).unwrap_err();
        assert!(
            matches!(&err, TokenizerError::InvalidTokenizerJson { message, .. } if message.contains(needle)),
            "{name}: {err:?}"
        );
    }
}

/// A `Strip` decoder with `stop` > 0: `tokenizers` 0.23 panicked ("attempt to
/// subtract with overflow" in `decoders/strip.rs`) decoding a token made only
/// of `stop` or fewer `content` characters (the 2nd long fuzz run found it, in
/// `decode`; the 3rd found the same `Strip` written without its `"type"`, which
/// `tokenizers` also accepts). `from_file` now replaces such a decoder by
/// `Strip` of the start plus `Replace` of `" {0,stop}$"`, which decodes every
/// other token the same.
#[test]
fn tokenizer_json_strip_decoder_past_a_short_token_decodes() {
    for name in [
        "tokenizer_json_strip_stop_past_token.json",
        "tokenizer_json_untagged_strip_stop_past_token.json",
    ] {
        let tok = LlmTokenizer::from_file(fuzz_fixture(name)).unwrap();
        assert_eq!(tok.decode(&[1], false).unwrap(), "", "{name}");
        assert_eq!(tok.decode(&[3], false).unwrap(), " ", "{name}");
        assert_eq!(tok.decode(&[2], false).unwrap(), " a", "{name}");
        assert_eq!(tok.decode(&[0, 2], false).unwrap(), "a a", "{name}");
    }
}
