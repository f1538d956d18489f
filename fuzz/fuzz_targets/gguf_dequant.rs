//! ggml dequantisation kernels (`v2l_io::gguf::dequantize`) on arbitrary
//! block data. Input: byte 0 picks the ggml type (by id), byte 1 perturbs the
//! number of output elements (0 = exactly the blocks the data holds), the
//! rest is the data.
#![no_main]

use libfuzzer_sys::fuzz_target;
use v2l_io::gguf::{dequantize, GgmlType};

fuzz_target!(|data: &[u8]| {
    let [ty, tweak, rest @ ..] = data else {
        return;
    };
    let Some(ty) = GgmlType::from_id(u32::from(*ty)) else {
        return;
    };
    let (Some(block), Some(size)) = (ty.block_size(), ty.type_size()) else {
        let mut out = [0f32; 32];
        let _ = dequantize(ty, rest, &mut out);
        return;
    };
    let blocks = rest.len() as u64 / size.max(1);
    let mut n = blocks * block;
    if *tweak != 0 {
        // Lengths that do not match the data (or are no whole number of blocks).
        n = n.wrapping_add(u64::from(*tweak)) % (n + 300);
    }
    let mut out = vec![0f32; n as usize];
    let _ = dequantize(ty, rest, &mut out);
});
