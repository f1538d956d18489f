//! IDX files (`v2l_io::idx`, MNIST / Fashion-MNIST), plain or gzip-compressed.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(array) = v2l_io::idx::from_bytes(data, "fuzz.idx") {
        let _ = array.len();
        let _ = array.to_f32();
    }
});
