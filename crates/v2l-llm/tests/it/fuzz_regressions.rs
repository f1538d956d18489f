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
