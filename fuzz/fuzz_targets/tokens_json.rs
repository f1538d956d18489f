//! Visual-token JSON files (`TokensFile::read`, what `v2l decode --tokens`
//! reads), then joined into batches as `decode` does.
#![no_main]

use libfuzzer_sys::fuzz_target;
use v2l_model::{TokensFile, VisualTokens};

fuzz_target!(|data: &[u8]| {
    let path = v2l_fuzz::write_scratch("tokens.json", data);
    if let Ok(file) = TokensFile::read(&path) {
        if let Ok(batch) = VisualTokens::from_images(&file.images) {
            let _ = batch.to_images();
        }
    }
});
