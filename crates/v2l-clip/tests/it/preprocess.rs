//! CLIP preprocessing against reference outputs of Pillow 13 / torchvision 0.29 made by
//! `scripts/gen_clip_preprocess_fixtures.py` (see `tests/fixtures/preprocess/manifest.json`).

use std::path::{Path, PathBuf};

use image::{DynamicImage, ImageBuffer, Luma, LumaA, Rgb, RgbImage, Rgba};
use v2l_assets::readers::npy;
use v2l_clip::preprocess::{
    resize_bicubic, to_rgb8, ClipPreprocess, PreprocessError, MAX_RESOLUTION, OPENAI_CLIP_MEAN,
    OPENAI_CLIP_STD,
};

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/preprocess")
}

fn input(name: &str) -> DynamicImage {
    let path = fixture_dir().join("inputs").join(name);
    image::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A uint8 `.npy` fixture: shape and bytes (C order).
fn read_u8(name: &str) -> (Vec<usize>, Vec<u8>) {
    let array = npy::read(fixture_dir().join(name)).unwrap();
    assert_eq!(array.descr(), "|u1", "{name}");
    assert!(!array.fortran_order(), "{name}");
    (array.shape().to_vec(), array.raw_bytes().unwrap().to_vec())
}

/// Maximum absolute difference and number of differing values.
fn deviation(actual: &[u8], expected: &[u8]) -> (u8, usize) {
    assert_eq!(actual.len(), expected.len());
    actual
        .iter()
        .zip(expected)
        .fold((0, 0), |(max, count), (&a, &b)| {
            let d = a.abs_diff(b);
            (max.max(d), count + usize::from(d != 0))
        })
}

/// `resize_crop` must equal the reference uint8 image bit for bit.
fn assert_matches_fixture(image: &DynamicImage, resolution: usize, fixture: &str) {
    let out = ClipPreprocess::new(resolution).resize_crop(image).unwrap();
    let (shape, expected) = read_u8(fixture);
    assert_eq!(shape, [resolution, resolution, 3], "{fixture}");
    assert_eq!(
        (out.width() as usize, out.height() as usize),
        (resolution, resolution)
    );
    let (max, count) = deviation(out.as_raw(), &expected);
    assert_eq!(
        count,
        0,
        "{fixture}: {count} of {} values differ from Pillow, max |diff| {max} levels",
        expected.len()
    );
}

fn photo(name: &str) -> Option<DynamicImage> {
    let path = v2l_assets::fetch::test_asset("photos", name).unwrap()?;
    Some(image::open(&path).unwrap())
}

#[test]
fn photos_match_pillow_bit_exactly() {
    let cases = [
        ("chelsea.png", 224, "chelsea_224.npy"),
        ("coffee.png", 224, "coffee_224.npy"),
        ("motorcycle_left.png", 224, "motorcycle_left_224.npy"),
        ("chelsea.png", 336, "chelsea_336.npy"),
        ("astronaut.png", 32, "astronaut_32.npy"),
    ];
    for (name, resolution, fixture) in cases {
        let Some(image) = photo(name) else { return };
        assert!(matches!(image, DynamicImage::ImageRgb8(_)), "{name}");
        assert_matches_fixture(&image, resolution, fixture);
    }
}

#[test]
fn astronaut_normalised_matches_torch() {
    let Some(image) = photo("astronaut.png") else {
        return;
    };
    let expected = npy::read(fixture_dir().join("astronaut_224_f32.npy")).unwrap();
    assert_eq!(expected.shape(), [3, 224, 224]);
    assert_eq!(expected.descr(), "<f4");
    let expected = expected.to_f32().unwrap();
    let pre = ClipPreprocess::new(224);
    let actual = pre.apply(&image).unwrap();
    assert_eq!(actual.len(), expected.len());
    let max = actual
        .iter()
        .zip(&expected)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(max <= 1e-6, "max |diff| {max}");
    // In fact bit-identical: the same f32 operations in the same order as torch.
    assert!(actual
        .iter()
        .zip(&expected)
        .all(|(a, b)| a.to_bits() == b.to_bits()));

    // `open` decodes the same file and gives the same tensor.
    let path = v2l_assets::fetch::test_asset("photos", "astronaut.png")
        .unwrap()
        .unwrap();
    assert_eq!(pre.open(&path).unwrap(), actual);
}

#[test]
fn grey_is_resized_as_grey_then_replicated() {
    let image = input("grey_120x80.png");
    assert!(matches!(image, DynamicImage::ImageLuma8(_)));
    assert_matches_fixture(&image, 32, "grey_32.npy");
}

#[test]
fn rgba_is_resized_premultiplied_and_alpha_dropped() {
    let image = input("rgba_60x50.png");
    assert!(matches!(image, DynamicImage::ImageRgba8(_)));
    assert_matches_fixture(&image, 32, "rgba_32.npy");
    // Resizing with the alpha simply dropped first gives a different image.
    let dropped = DynamicImage::ImageRgb8(to_rgb8(&image));
    let naive = ClipPreprocess::new(32).resize_crop(&dropped).unwrap();
    let (_, expected) = read_u8("rgba_32.npy");
    assert_ne!(naive.as_raw(), &expected);
}

#[test]
fn grey_alpha_is_resized_premultiplied_and_alpha_dropped() {
    let image = input("la_70x90.png");
    assert!(matches!(image, DynamicImage::ImageLumaA8(_)));
    assert_matches_fixture(&image, 32, "la_32.npy");
}

#[test]
fn upscaling_matches_pillow() {
    let tiny = input("tiny_7x5.png");
    assert_matches_fixture(&tiny, 24, "tiny_24.npy");
    let wide = input("wide_300x40.png");
    assert_matches_fixture(&wide, 48, "wide_48.npy");
    assert_matches_fixture(&wide, 32, "wide_32.npy");
}

#[test]
fn tall_images_are_resampled_vertically_first() {
    // 40x300 -> 32x240: the height shrinks by more than twice the width, so Pillow 13 runs
    // its vertical pass first (the fixture is the wide input transposed).
    let wide = input("wide_300x40.png").to_rgb8();
    let tall = RgbImage::from_fn(wide.height(), wide.width(), |x, y| *wide.get_pixel(y, x));
    assert_matches_fixture(&DynamicImage::ImageRgb8(tall), 32, "tall_32.npy");
}

#[test]
fn crop_offsets_round_half_to_even() {
    // 45x32 and 32x47 are not resized (offsets 6.5 -> 6 and 7.5 -> 8); 50x30 becomes 53x32
    // (10.5 -> 10), 30x70 becomes 32x74 (21).
    for (file, fixture) in [
        ("crop_45x32.png", "crop_45x32_32.npy"),
        ("crop_32x47.png", "crop_32x47_32.npy"),
        ("crop_50x30.png", "crop_50x30_32.npy"),
        ("crop_30x70.png", "crop_30x70_32.npy"),
    ] {
        assert_matches_fixture(&input(file), 32, fixture);
    }
    // Without a resize the crop is a plain window of the input.
    let image = input("crop_45x32.png").to_rgb8();
    let out = ClipPreprocess::new(32)
        .resize_crop(&DynamicImage::ImageRgb8(image.clone()))
        .unwrap();
    for (x, y, p) in out.enumerate_pixels() {
        assert_eq!(p, image.get_pixel(x + 6, y));
    }
}

#[test]
fn sixteen_bit_grey_is_scaled_by_257_before_resizing() {
    let image = input("grey16_64x40.png");
    assert!(matches!(image, DynamicImage::ImageLuma16(_)));
    assert_matches_fixture(&image, 32, "grey16_32.npy");
}

#[test]
fn image_at_target_size_passes_through() {
    let image = input("square_224.png");
    let out = ClipPreprocess::new(224).resize_crop(&image).unwrap();
    assert_eq!(out, to_rgb8(&image));
    // Also for alpha images: no premultiplication round trip without a resize.
    let rgba = DynamicImage::ImageRgba8(ImageBuffer::from_fn(8, 8, |x, y| {
        Rgba([(x * 30) as u8, (y * 30) as u8, 7, (x * y * 4) as u8])
    }));
    let out = ClipPreprocess::new(8).resize_crop(&rgba).unwrap();
    assert_eq!(out, to_rgb8(&rgba));
}

#[test]
fn resize_bicubic_matches_pillow_full_size() {
    // The tiny fixture is the 33x24 Pillow resize cropped at x = 4.
    let tiny = input("tiny_7x5.png").to_rgb8();
    let full = resize_bicubic(&tiny, 33, 24);
    let (_, expected) = read_u8("tiny_24.npy");
    let cropped: Vec<u8> = (0..24)
        .flat_map(|y| (4..28).flat_map(move |x| [(x, y)]))
        .flat_map(|(x, y)| full.get_pixel(x, y).0)
        .collect();
    assert_eq!(cropped, expected);
    // Same size: a copy. Zero size: empty. Empty input: black.
    assert_eq!(resize_bicubic(&tiny, 7, 5), tiny);
    assert_eq!(resize_bicubic(&tiny, 0, 5).dimensions(), (0, 5));
    let black = resize_bicubic(&RgbImage::new(0, 0), 3, 2);
    assert_eq!(black.dimensions(), (3, 2));
    assert!(black.as_raw().iter().all(|&v| v == 0));
}

#[test]
fn constant_images_stay_constant() {
    // Weights sum to one in fixed point, so a flat image stays flat up to rounding.
    for (w, h, n) in [(513, 301, 224), (5, 9, 224), (1, 1, 16), (1000, 3, 7)] {
        let image = DynamicImage::ImageRgb8(RgbImage::from_pixel(w, h, Rgb([0, 128, 255])));
        let out = ClipPreprocess::new(n).resize_crop(&image).unwrap();
        assert!(out.pixels().all(|p| p.0 == [0, 128, 255]), "{w}x{h} -> {n}");
    }
}

#[test]
fn sixteen_bit_and_float_inputs_convert_as_documented() {
    let rgb8 = input("tiny_7x5.png").to_rgb8();
    let pre = ClipPreprocess::new(24);
    let reference = pre
        .resize_crop(&DynamicImage::ImageRgb8(rgb8.clone()))
        .unwrap();

    // v * 257 + d with |d| < 128.5 rounds back to v.
    let rgb16: ImageBuffer<Rgb<u16>, Vec<u16>> = ImageBuffer::from_fn(7, 5, |x, y| {
        let p = rgb8.get_pixel(x, y).0;
        Rgb(p.map(|v| (u16::from(v) * 257).saturating_add(if v < 128 { 128 } else { 0 })))
    });
    let out16 = pre.resize_crop(&DynamicImage::ImageRgb16(rgb16)).unwrap();
    assert_eq!(out16, reference);

    // f32 v / 255 rounds back to v.
    let rgb32: ImageBuffer<Rgb<f32>, Vec<f32>> = ImageBuffer::from_fn(7, 5, |x, y| {
        Rgb(rgb8.get_pixel(x, y).0.map(|v| f32::from(v) / 255.0))
    });
    let out32 = pre.resize_crop(&DynamicImage::ImageRgb32F(rgb32)).unwrap();
    assert_eq!(out32, reference);

    // Sample rules of `to_rgb8`.
    let luma16: ImageBuffer<Luma<u16>, Vec<u16>> =
        ImageBuffer::from_raw(8, 1, vec![0, 128, 129, 385, 386, 65406, 65407, 65535]).unwrap();
    let rgb = to_rgb8(&DynamicImage::ImageLuma16(luma16));
    let grey: Vec<u8> = rgb.pixels().map(|p| p.0[0]).collect();
    assert_eq!(grey, [0, 0, 1, 1, 2, 254, 255, 255]);
    assert!(rgb.pixels().all(|p| p.0[0] == p.0[1] && p.0[1] == p.0[2]));

    let floats: ImageBuffer<Rgb<f32>, Vec<f32>> =
        ImageBuffer::from_raw(2, 1, vec![-0.5, 2.0, f32::NAN, 0.5, 1.0 / 510.0, 0.999]).unwrap();
    let rgb = to_rgb8(&DynamicImage::ImageRgb32F(floats));
    assert_eq!(rgb.as_raw(), &[0, 255, 255, 128, 1, 255]);

    let la = DynamicImage::ImageLumaA8(ImageBuffer::from_raw(2, 1, vec![10, 0, 200, 77]).unwrap());
    assert_eq!(to_rgb8(&la).as_raw(), &[10, 10, 10, 200, 200, 200]);
    let rgba = DynamicImage::ImageRgba8(ImageBuffer::from_raw(1, 1, vec![1, 2, 3, 0]).unwrap());
    assert_eq!(to_rgb8(&rgba).as_raw(), &[1, 2, 3]);
    let la16 = DynamicImage::ImageLumaA16(
        ImageBuffer::<LumaA<u16>, Vec<u16>>::from_raw(1, 1, vec![65535, 0]).unwrap(),
    );
    assert_eq!(to_rgb8(&la16).as_raw(), &[255, 255, 255]);
}

#[test]
fn apply_is_normalised_chw() {
    let image = input("crop_50x30.png");
    let pre = ClipPreprocess::new(32);
    let rgb = pre.resize_crop(&image).unwrap();
    let chw = pre.apply(&image).unwrap();
    assert_eq!(chw.len(), 3 * 32 * 32);
    for (i, p) in rgb.pixels().enumerate() {
        for c in 0..3 {
            let expected = (f32::from(p.0[c]) / 255.0 - OPENAI_CLIP_MEAN[c]) / OPENAI_CLIP_STD[c];
            assert_eq!(chw[c * 32 * 32 + i].to_bits(), expected.to_bits());
        }
    }
    // Custom constants.
    let plain = ClipPreprocess::new(32)
        .with_mean_std([0.0; 3], [1.0; 3])
        .unwrap();
    assert_eq!((plain.mean(), plain.std()), ([0.0; 3], [1.0; 3]));
    let unit = plain.apply(&image).unwrap();
    assert_eq!(unit[0], f32::from(rgb.get_pixel(0, 0).0[0]) / 255.0);
    assert_eq!(pre.resolution(), 32);
}

#[test]
fn apply_batch_equals_apply_per_image() {
    let images = vec![
        input("grey_120x80.png"),
        input("rgba_60x50.png"),
        input("tiny_7x5.png"),
        input("grey16_64x40.png"),
    ];
    let pre = ClipPreprocess::new(32);
    let batch = pre.apply_batch(&images).unwrap();
    let single: Vec<f32> = images
        .iter()
        .flat_map(|im| pre.apply(im).unwrap())
        .collect();
    assert_eq!(batch, single);
    assert!(pre.apply_batch(&[]).unwrap().is_empty());

    let with_empty = vec![input("tiny_7x5.png"), DynamicImage::new_rgb8(0, 4)];
    match pre.apply_batch(&with_empty) {
        Err(PreprocessError::BatchItem { index, source }) => {
            assert_eq!(index, 1);
            assert!(matches!(
                *source,
                PreprocessError::EmptyImage {
                    width: 0,
                    height: 4
                }
            ));
        }
        other => panic!("expected BatchItem, got {other:?}"),
    }
}

#[test]
fn bad_inputs_are_typed_errors() {
    let image = input("tiny_7x5.png");
    assert!(matches!(
        ClipPreprocess::new(0).apply(&image),
        Err(PreprocessError::InvalidResolution { resolution: 0 })
    ));
    assert!(matches!(
        ClipPreprocess::new(MAX_RESOLUTION + 1).resize_crop(&image),
        Err(PreprocessError::InvalidResolution { .. })
    ));
    assert!(matches!(
        ClipPreprocess::new(0).apply_batch(&[]),
        Err(PreprocessError::InvalidResolution { resolution: 0 })
    ));
    for empty in [
        DynamicImage::new_rgb8(0, 10),
        DynamicImage::new_luma8(10, 0),
    ] {
        assert!(matches!(
            ClipPreprocess::new(224).apply(&empty),
            Err(PreprocessError::EmptyImage { .. })
        ));
    }
    for (mean, std) in [
        ([f32::NAN, 0.0, 0.0], [1.0; 3]),
        ([0.0; 3], [1.0, 0.0, 1.0]),
        ([0.0; 3], [1.0, 1.0, -1.0]),
        ([0.0; 3], [f32::INFINITY, 1.0, 1.0]),
    ] {
        assert!(matches!(
            ClipPreprocess::new(224).with_mean_std(mean, std),
            Err(PreprocessError::InvalidNormalization { .. })
        ));
    }
}

#[test]
fn missing_and_corrupt_files_are_typed_errors() {
    let pre = ClipPreprocess::new(32);
    let missing = fixture_dir().join("inputs").join("does-not-exist.png");
    match pre.open(&missing) {
        Err(PreprocessError::Io { path, .. }) => assert_eq!(path, missing),
        other => panic!("expected Io, got {other:?}"),
    }

    let dir = std::env::temp_dir();
    let id = std::process::id();
    // Not an image at all.
    let garbage = dir.join(format!("v2l-clip-preprocess-{id}-garbage.png"));
    std::fs::write(&garbage, b"this is not an image, just text").unwrap();
    // A PNG cut in half: the signature is right, the data is not.
    let png = std::fs::read(fixture_dir().join("inputs").join("wide_300x40.png")).unwrap();
    let truncated = dir.join(format!("v2l-clip-preprocess-{id}-truncated.png"));
    std::fs::write(&truncated, &png[..png.len() / 2]).unwrap();
    for path in [&garbage, &truncated] {
        let result = pre.open(path);
        std::fs::remove_file(path).unwrap();
        match result {
            Err(PreprocessError::Decode { path: p, .. }) => assert_eq!(&p, path),
            other => panic!("expected Decode for {}, got {other:?}", path.display()),
        }
    }

    // Error messages name the file.
    let message = pre.open(&missing).unwrap_err().to_string();
    assert!(message.contains("does-not-exist.png"), "{message}");
}
