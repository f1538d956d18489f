//! The tokenizer embedded in a GGUF file's metadata
//! (`LlmTokenizer::from_gguf`), then one encode and decode.
#![no_main]

use libfuzzer_sys::fuzz_target;
use v2l_llm::gguf::GgufFile;
use v2l_llm::tokenizer::LlmTokenizer;

fuzz_target!(|data: &[u8]| {
    let Ok(file) = GgufFile::from_bytes(data.to_vec()) else {
        return;
    };
    if let Ok(tok) = LlmTokenizer::from_gguf(&file) {
        v2l_fuzz::exercise_tokenizer(&tok);
    }
});
