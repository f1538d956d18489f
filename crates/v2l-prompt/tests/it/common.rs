//! Shared helpers.

use std::path::{Path, PathBuf};

use v2l_llm::tokenizer::LlmTokenizer;

/// `crates/v2l-prompt/tests/fixtures/<rel>`.
pub fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

/// LLaMA-2's tokenizer (the `llama2-vocab` asset), if cached.
pub fn llama2() -> Option<LlmTokenizer> {
    let path = v2l_assets::fetch::test_asset("llama2-vocab", "llama-tokenizer.js").unwrap()?;
    Some(LlmTokenizer::from_llama_tokenizer_js(path).unwrap())
}

/// The tiny random LLaMA of v2l-llm's fixtures (vocab 256, context 64).
pub fn tiny_llm_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../v2l-llm/tests/fixtures/llama/hf")
}

/// A word-level tokenizer of 256 ids for the tiny LLaMA: `[UNK]` 0, `<s>` 1
/// (BOS, added), `</s>` 2, the given words from 3, then fillers.
pub fn word_tokenizer(dir: &Path, words: &[&str]) -> LlmTokenizer {
    let mut vocab = serde_json::Map::new();
    vocab.insert("[UNK]".into(), 0.into());
    vocab.insert("<s>".into(), 1.into());
    vocab.insert("</s>".into(), 2.into());
    for (i, w) in words.iter().enumerate() {
        vocab.insert((*w).to_string(), (3 + i).into());
    }
    for i in 3 + words.len()..256 {
        vocab.insert(format!("w{i}"), i.into());
    }
    let json = serde_json::json!({
        "version": "1.0", "truncation": null, "padding": null,
        "added_tokens": [
            {"id": 1, "content": "<s>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
            {"id": 2, "content": "</s>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}
        ],
        "normalizer": null, "pre_tokenizer": { "type": "WhitespaceSplit" },
        "post_processor": null, "decoder": null,
        "model": { "type": "WordLevel", "vocab": vocab, "unk_token": "[UNK]" }
    });
    let path = dir.join("tokenizer.json");
    std::fs::write(&path, json.to_string()).unwrap();
    LlmTokenizer::from_file(&path)
        .unwrap()
        .with_default_special(true, false)
}

/// SmolLM2's tokenizer (from the `smollm2-135m` GGUF asset), if cached.
pub fn smollm2() -> Option<LlmTokenizer> {
    let path = v2l_assets::fetch::test_asset("smollm2-135m", "SmolLM2-135M-Instruct.Q4_1.gguf")
        .unwrap()?;
    let gguf = v2l_llm::gguf::GgufFile::open(path).unwrap();
    Some(LlmTokenizer::from_gguf(&gguf).unwrap())
}
