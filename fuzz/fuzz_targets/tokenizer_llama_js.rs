//! The LLaMA-2 vocabulary embedded in `llama-tokenizer-js`'s JavaScript
//! module (`LlmTokenizer::from_llama_tokenizer_js`), then one encode and
//! decode.
#![no_main]

use libfuzzer_sys::fuzz_target;
use v2l_llm::tokenizer::LlmTokenizer;

fuzz_target!(|data: &[u8]| {
    let path = v2l_fuzz::write_scratch("llama-tokenizer.js", data);
    if let Ok(tok) = LlmTokenizer::from_llama_tokenizer_js(&path) {
        v2l_fuzz::exercise_tokenizer(&tok);
    }
});
