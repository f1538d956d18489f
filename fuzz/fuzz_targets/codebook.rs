//! Codebook files (`Codebook::load`): `NAME.safetensors` with an
//! `embeddings` tensor, no sidecar (the `codebook_sidecar` target fuzzes the
//! sidecar).
#![no_main]

use libfuzzer_sys::fuzz_target;
use v2l_codebook::Codebook;

fuzz_target!(|data: &[u8]| {
    v2l_fuzz::remove_scratch("codebook.json");
    let path = v2l_fuzz::write_scratch("codebook.safetensors", data);
    if let Ok(cb) = Codebook::load(&path) {
        let _ = cb.row(cb.rows().saturating_sub(1));
    }
});
