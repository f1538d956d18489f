//! Shared helpers.

use std::path::PathBuf;

use burn::backend::NdArray;
use v2l_llm::gguf::GgufFile;
use v2l_llm::tokenizer::LlmTokenizer;

pub type B = NdArray;

/// `crates/v2l-codebook/tests/fixtures/<rel>`.
pub fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

/// The tiny random CLIP of v2l-clip's fixtures (text vocab 1000, width 128,
/// 2 layers, output 64; vision 32 px).
pub fn tiny_clip_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../v2l-clip/tests/fixtures/model/tiny_openai.pth")
}

/// LLaMA-2's tokenizer (from the `llama2-vocab` asset), if cached.
pub fn llama2() -> Option<LlmTokenizer> {
    let path = v2l_assets::fetch::test_asset("llama2-vocab", "llama-tokenizer.js").unwrap()?;
    Some(LlmTokenizer::from_llama_tokenizer_js(path).unwrap())
}

/// SmolLM2's GGUF path, if cached.
pub fn smollm2_path() -> Option<PathBuf> {
    v2l_assets::fetch::test_asset("smollm2-135m", "SmolLM2-135M-Instruct.Q4_1.gguf").unwrap()
}

/// SmolLM2's tokenizer (from its GGUF), if cached.
pub fn smollm2() -> Option<LlmTokenizer> {
    let gguf = GgufFile::open(smollm2_path()?).unwrap();
    Some(LlmTokenizer::from_gguf(&gguf).unwrap())
}

/// max |a − b| / max |b|.
pub fn rel_err(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    let mut diff = 0f64;
    let mut scale = 0f64;
    for (&x, &y) in a.iter().zip(b) {
        diff = diff.max((f64::from(x) - f64::from(y)).abs());
        scale = scale.max(f64::from(y).abs());
    }
    diff / scale
}
