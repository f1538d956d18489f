//! safetensors files (`v2l_io::tensors::SafetensorsFile`): the JSON header,
//! then every tensor read as f32.
#![no_main]

use libfuzzer_sys::fuzz_target;
use v2l_io::tensors::{SafetensorsFile, TensorSource};

fuzz_target!(|data: &[u8]| {
    let Ok(file) = SafetensorsFile::from_bytes("fuzz.safetensors".into(), data.to_vec()) else {
        return;
    };
    for key in file.keys() {
        let _ = file.shape(&key);
        let _ = file.read_f32(&key);
    }
});
