//! The reference's released codebook files (`v2l_codebook::official`):
//! `*_codebook_embedding.pth` (`torch.save` of one 2-D tensor) and
//! `global_vocabulary.npy` (a pickled object array of str). Inputs starting
//! with the `.npy` magic go to the vocabulary reader, all others to the
//! `.pth` reader.
#![no_main]

use libfuzzer_sys::fuzz_target;
use v2l_codebook::official;

fuzz_target!(|data: &[u8]| {
    if data.starts_with(b"\x93NUMPY") {
        let path = v2l_fuzz::write_scratch("global_vocabulary.npy", data);
        let _ = official::read_vocabulary_npy(&path);
    } else {
        let path = v2l_fuzz::write_scratch("codebook_embedding.pth", data);
        let _ = official::read_embedding_pth(&path);
    }
});
