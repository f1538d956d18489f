//! The tokenizer's preprocessing against OpenCV / albumentations outputs
//! (fixtures from `scripts/gen_model_preprocess_fixtures.py`): every `u8`
//! value and every `f32` bit must agree.

use std::path::PathBuf;

use image::{Rgb, RgbImage};
use serde_json::Value;
use v2l_model::preprocess::{
    center_crop, resize_linear_cv, smallest_max_size, PreprocessError, TokenizerPreprocess,
};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/preprocess")
}

fn manifest() -> Value {
    let text = std::fs::read_to_string(dir().join("manifest.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn png(rel: &Value) -> RgbImage {
    let rel = rel.as_str().unwrap();
    image::open(dir().join(rel))
        .unwrap_or_else(|e| panic!("{rel}: {e}"))
        .to_rgb8()
}

fn u32_of(v: &Value) -> u32 {
    u32::try_from(v.as_u64().unwrap()).unwrap()
}

/// Number of differing values (images of different shapes differ entirely).
fn differing(a: &RgbImage, b: &RgbImage) -> usize {
    if a.dimensions() != b.dimensions() {
        return usize::MAX;
    }
    a.as_raw()
        .iter()
        .zip(b.as_raw())
        .filter(|(x, y)| x != y)
        .count()
}

#[test]
fn resize_matches_opencv_inter_linear() {
    let m = manifest();
    let cases = m["resize"].as_array().unwrap();
    assert!(cases.len() >= 10);
    for case in cases {
        let input = png(&case["input"]);
        let expected = png(&case["expected"]);
        let (w, h) = (u32_of(&case["width"]), u32_of(&case["height"]));
        let got = resize_linear_cv(&input, w, h);
        assert_eq!(got.dimensions(), (w, h), "{}", case["name"]);
        assert_eq!(
            differing(&got, &expected),
            0,
            "{} ({})",
            case["name"],
            case["path"]
        );
    }
}

#[test]
fn resize_crop_matches_albumentations() {
    let m = manifest();
    for case in m["pipeline"].as_array().unwrap() {
        let input = png(&case["input"]);
        let n = u32_of(&case["size"]);
        let (rh, rw) = (u32_of(&case["resized"][0]), u32_of(&case["resized"][1]));
        let (h, w) = (input.height(), input.width());
        assert_eq!(smallest_max_size(h, w, n), (rh, rw), "{}", case["name"]);
        let got = TokenizerPreprocess::new(n).resize_crop(&input).unwrap();
        assert_eq!(
            differing(&got, &png(&case["expected"])),
            0,
            "{}",
            case["name"]
        );
    }
}

#[test]
fn apply_matches_reference_f32_bits() {
    let m = manifest();
    let mut checked = 0;
    for case in m["pipeline"].as_array().unwrap() {
        let Some(rel) = case["expected_f32"].as_str() else {
            continue;
        };
        let bytes = std::fs::read(dir().join(rel)).unwrap();
        let expected: Vec<u32> = bytes
            .chunks_exact(4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let n = u32_of(&case["size"]);
        assert_eq!(expected.len(), 3 * (n * n) as usize);
        let got = TokenizerPreprocess::new(n)
            .apply(&png(&case["input"]))
            .unwrap();
        let got: Vec<u32> = got.iter().map(|v| v.to_bits()).collect();
        let bad = got.iter().zip(&expected).filter(|(a, b)| a != b).count();
        assert_eq!(bad, 0, "{}", case["name"]);
        assert_eq!(got.len(), expected.len());
        checked += 1;
    }
    assert!(checked >= 1);
}

#[test]
fn normalisation_rounds_like_numpy_float64() {
    // One pixel per value 0..=255 in an image that is already 16x16.
    let img = RgbImage::from_fn(16, 16, |x, y| {
        let v = (y * 16 + x) as u8;
        Rgb([v, v, 255 - v])
    });
    let out = TokenizerPreprocess::new(16).apply(&img).unwrap();
    assert_eq!(out.len(), 3 * 256);
    for v in 0..256usize {
        let want = (v as f64 / 127.5 - 1.0) as f32;
        assert_eq!(out[v].to_bits(), want.to_bits(), "R {v}");
        assert_eq!(out[256 + v].to_bits(), want.to_bits(), "G {v}");
        assert_eq!(out[512 + 255 - v].to_bits(), want.to_bits(), "B {v}");
    }
    assert_eq!(out[0], -1.0);
    assert_eq!(out[255], 1.0);
}

#[test]
fn smallest_max_size_matches_albumentations_table() {
    let m = manifest();
    for row in m["smallest_max_size"].as_array().unwrap() {
        let r: Vec<u32> = row.as_array().unwrap().iter().map(u32_of).collect();
        assert_eq!(smallest_max_size(r[0], r[1], r[2]), (r[3], r[4]), "{r:?}");
    }
    // Ties go to the even neighbour (Python's round).
    assert_eq!(smallest_max_size(2, 3, 3), (3, 4));
    assert_eq!(smallest_max_size(2, 5, 3), (3, 8));
    // Degenerate shapes do not panic.
    assert_eq!(smallest_max_size(0, 5, 3), (0, 5));
    assert_eq!(smallest_max_size(4, 6, 0), (1, 1));
}

#[test]
fn already_at_size_passes_unchanged() {
    let img = RgbImage::from_fn(8, 8, |x, y| Rgb([(x * 31) as u8, (y * 29) as u8, 7]));
    assert_eq!(TokenizerPreprocess::new(8).resize_crop(&img).unwrap(), img);
    assert_eq!(resize_linear_cv(&img, 8, 8), img);
}

#[test]
fn center_crop_puts_odd_margin_bottom_right() {
    // Pixel (x, y) holds (x, y, 0).
    let img = RgbImage::from_fn(7, 4, |x, y| Rgb([x as u8, y as u8, 0]));
    let c = center_crop(&img, 3, 4).unwrap();
    assert_eq!(c.dimensions(), (4, 3));
    // Margins 3 (x) and 1 (y): the window starts at (1, 0).
    assert_eq!(c.get_pixel(0, 0).0, [1, 0, 0]);
    assert_eq!(c.get_pixel(3, 2).0, [4, 2, 0]);
    assert_eq!(center_crop(&img, 4, 7).unwrap(), img);
}

#[test]
fn errors_are_typed() {
    let img = RgbImage::new(9, 7);
    assert_eq!(
        center_crop(&img, 8, 8),
        Err(PreprocessError::CropTooLarge {
            crop_width: 8,
            crop_height: 8,
            width: 9,
            height: 7
        })
    );
    assert!(matches!(
        center_crop(&img, 0, 3),
        Err(PreprocessError::ZeroSize { .. })
    ));
    assert!(matches!(
        TokenizerPreprocess::new(0).apply(&img),
        Err(PreprocessError::ZeroSize { .. })
    ));
    for empty in [
        RgbImage::new(0, 5),
        RgbImage::new(5, 0),
        RgbImage::new(0, 0),
    ] {
        assert!(matches!(
            TokenizerPreprocess::new(4).resize_crop(&empty),
            Err(PreprocessError::EmptyImage { .. })
        ));
    }
    // The bare resize never panics on degenerate requests.
    assert_eq!(resize_linear_cv(&img, 0, 3).dimensions(), (0, 3));
    assert_eq!(
        resize_linear_cv(&RgbImage::new(0, 4), 3, 2).dimensions(),
        (3, 2)
    );
}

#[test]
fn odd_shapes_do_not_panic() {
    let img = RgbImage::from_fn(1, 1, |_, _| Rgb([10, 20, 30]));
    for (w, h) in [(1, 1), (1, 5), (5, 1), (3, 2), (2, 3)] {
        let out = resize_linear_cv(&img, w, h);
        assert!(out.pixels().all(|p| p.0 == [10, 20, 30]), "{w}x{h}");
    }
    let thin = RgbImage::from_fn(1, 9, |_, y| Rgb([y as u8, 0, 0]));
    for n in [1, 2, 3, 17] {
        let out = TokenizerPreprocess::new(n).apply(&thin).unwrap();
        assert_eq!(out.len(), 3 * (n * n) as usize);
    }
}
