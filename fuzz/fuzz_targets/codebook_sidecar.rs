//! Codebook JSON sidecars (`NAME.json` beside `NAME.safetensors`, read by
//! `Codebook::load`). The embeddings are a fixed valid file, the seed
//! codebook `seeds/codebook/codebook_f32.safetensors` ([3, 4], written by
//! `examples/make_seeds.rs`), so the sidecar's own checks are reached.
#![no_main]

use libfuzzer_sys::fuzz_target;
use v2l_codebook::Codebook;

const EMBEDDINGS: &[u8] = include_bytes!("../seeds/codebook/codebook_f32.safetensors");

fuzz_target!(|data: &[u8]| {
    let path = v2l_fuzz::write_scratch("sidecar.safetensors", EMBEDDINGS);
    v2l_fuzz::write_scratch("sidecar.json", data);
    if let Ok(cb) = Codebook::load(&path) {
        let _ = (cb.strings(), cb.token_ids(), cb.votes());
    }
});
