//! NumPy `.npy` files (`v2l_io::npy`), versions 1–3, numeric, string and
//! pickled object arrays, and their conversions.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(array) = v2l_io::npy::from_bytes(data, "fuzz.npy") {
        let _ = array.to_f32();
        let _ = array.to_f64();
        let _ = array.to_i64();
        let _ = array.to_strings();
    }
});
