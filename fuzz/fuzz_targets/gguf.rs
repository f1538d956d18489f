//! GGUF files (`v2l_io::gguf`): header, metadata, tensor table, then every
//! tensor read raw and dequantised to f32.
#![no_main]

use libfuzzer_sys::fuzz_target;
use v2l_io::gguf::GgufFile;

fuzz_target!(|data: &[u8]| {
    let Ok(file) = GgufFile::from_bytes(data.to_vec()) else {
        return;
    };
    for key in file.metadata().keys() {
        let _ = file.get_str(key);
        let _ = file.get_u64(key);
        let _ = file.get_f64(key);
        let _ = file.get_str_array(key);
    }
    let names: Vec<String> = file
        .tensors()
        .iter()
        .map(|t| t.name().to_string())
        .collect();
    for name in &names {
        let _ = file.read_raw(name);
        let _ = file.read_f32(name);
    }
});
