//! PyTorch archives (`v2l_io::torch_zip`): `torch.save` zip files, legacy
//! non-zip `torch.save` files and TorchScript archives (the reader picks by
//! content), then every tensor read back.
#![no_main]

use std::io::Cursor;

use libfuzzer_sys::fuzz_target;
use v2l_io::torch_zip::TorchArchive;

fuzz_target!(|data: &[u8]| {
    let Ok(archive) = TorchArchive::from_reader(Cursor::new(data), "fuzz.pth") else {
        return;
    };
    let names: Vec<String> = archive
        .tensor_names()
        .into_iter()
        .map(str::to_string)
        .collect();
    for name in &names {
        let _ = archive.read_f32(name);
        let _ = archive.read_i64(name);
    }
    let _ = archive.with_top_level_key("state_dict");
});
