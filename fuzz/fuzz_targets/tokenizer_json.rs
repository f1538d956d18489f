//! HF `tokenizer.json` files (`LlmTokenizer::from_file`), then one encode and
//! decode with the loaded tokenizer.
#![no_main]

use libfuzzer_sys::fuzz_target;
use v2l_llm::tokenizer::LlmTokenizer;

fuzz_target!(|data: &[u8]| {
    let path = v2l_fuzz::write_scratch("tokenizer.json", data);
    if let Ok(tok) = LlmTokenizer::from_file(&path) {
        v2l_fuzz::exercise_tokenizer(&tok);
    }
});
