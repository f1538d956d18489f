//! Image files as the project opens them (`v2l_model::tokenizer::open_image`:
//! format guessed from the content, PNG and JPEG decoders of the `image`
//! crate), then converted to RGB as the pipeline does.
#![no_main]

use libfuzzer_sys::fuzz_target;
use v2l_model::tokenizer::open_image;

fuzz_target!(|data: &[u8]| {
    let path = v2l_fuzz::write_scratch("image", data);
    if let Ok(img) = open_image(&path) {
        let _ = img.to_rgb8();
    }
});
