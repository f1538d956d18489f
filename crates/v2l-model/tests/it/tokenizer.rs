//! `V2lTokenizer` on decoded images of any mode.

use image::{DynamicImage, GrayImage, ImageBuffer, Rgb, Rgba, RgbaImage};
use v2l_model::tokenizer::OpenOptions;
use v2l_model::V2lTokenizer;

use crate::common::{fixture, Tensors, B};

fn open() -> V2lTokenizer<B> {
    let options = OpenOptions {
        image_size: Some(32),
        global_tokens: Some(5),
        ..Default::default()
    };
    V2lTokenizer::<B>::open(
        fixture("v2l-tiny/checkpoint.pth"),
        &options,
        &Default::default(),
    )
    .unwrap()
}

#[test]
fn golden_pngs_give_golden_ids_and_modes_convert() {
    let tok = open();
    let paths = [
        fixture("v2l-tiny/image_0.png"),
        fixture("v2l-tiny/image_1.png"),
    ];
    let t = tok.encode_files(&paths).unwrap();
    let e = Tensors::open(fixture("v2l-tiny/expected.safetensors"));
    assert_eq!(t.local_ids, e.rows("local_ids"));
    assert_eq!(t.global_ids, e.rows("global_ids"));
    assert_eq!(t.grid, [16, 16]);
    assert!(t.global_words.is_none());

    // Grey → RGB by replication: the same tokens as the RGB copy.
    let grey = GrayImage::from_fn(48, 40, |x, y| image::Luma([((x * 5 + y * 3) % 256) as u8]));
    let rgb = DynamicImage::ImageLuma8(grey.clone()).to_rgb8();
    let a = tok
        .encode_images(&[DynamicImage::ImageLuma8(grey)])
        .unwrap();
    let b = tok
        .encode_images(&[DynamicImage::ImageRgb8(rgb.clone())])
        .unwrap();
    assert_eq!(a, b);
    // Opaque RGBA equals RGB; 16-bit equals its 8-bit rounding.
    let rgba: RgbaImage = ImageBuffer::from_fn(48, 40, |x, y| {
        let p = rgb.get_pixel(x, y).0;
        Rgba([p[0], p[1], p[2], 255])
    });
    assert_eq!(
        tok.encode_images(&[DynamicImage::ImageRgba8(rgba)])
            .unwrap(),
        b
    );
    let wide: ImageBuffer<Rgb<u16>, Vec<u16>> = ImageBuffer::from_fn(48, 40, |x, y| {
        let p = rgb.get_pixel(x, y).0;
        Rgb([p[0] as u16 * 257, p[1] as u16 * 257, p[2] as u16 * 257])
    });
    assert_eq!(
        tok.encode_images(&[DynamicImage::ImageRgb16(wide)])
            .unwrap(),
        b
    );

    // Decoding round trip of the tokens gives images of the input size.
    let images = tok.decode_to_images(&t).unwrap();
    assert_eq!(images.len(), 2);
    assert_eq!(images[0].dimensions(), (32, 32));
    // Bad tokens: a grid that does not match the ids.
    let mut bad = t.clone();
    bad.grid = [8, 8];
    assert!(tok.decode(&bad).is_err());
}
