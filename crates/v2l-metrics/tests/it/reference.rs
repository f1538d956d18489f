//! Metrics against the reference tools.
//!
//! Expected values: `tests/fixtures/expected.json`, written by
//! `scripts/gen_metric_fixtures.py` with skimage (PSNR), the BT.601 Y formula
//! (Y-PSNR), `piq.ssim` (SSIM) and pytorch-fid's `calculate_frechet_distance`
//! on crops of scikit-image's CC0 photos and committed f64 statistics.

use std::path::{Path, PathBuf};

use serde_json::Value;
use v2l_assets::readers::npy;
use v2l_metrics::frechet::frechet_distance;
use v2l_metrics::psnr::{mean_psnr, psnr, PsnrChannels};
use v2l_metrics::ssim::ssim;
use v2l_metrics::usage::codebook_usage;
use v2l_metrics::{Image, MetricsError};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn expected() -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture("expected.json")).unwrap()).unwrap()
}

fn load_image(name: &str) -> Image {
    let a = npy::read(fixture(name)).unwrap();
    let shape = a.shape().to_vec();
    let bytes: Vec<u8> = a.to_i64().unwrap().into_iter().map(|v| v as u8).collect();
    Image::from_hwc_u8(&bytes, shape[0], shape[1], shape[2]).unwrap()
}

fn f64s(name: &str) -> Vec<f64> {
    npy::read(fixture(name)).unwrap().to_f64().unwrap()
}

#[test]
fn psnr_and_ssim_match_skimage_and_piq_on_photos() {
    let exp = expected();
    let cases = exp["images"].as_array().unwrap();
    assert_eq!(cases.len(), 3);
    for case in cases {
        let a = load_image(case["ref"].as_str().unwrap());
        let b = load_image(case["distorted"].as_str().unwrap());
        let name = case["distorted"].as_str().unwrap();
        let want_rgb = case["psnr_rgb"].as_f64().unwrap();
        let want_y = case["psnr_y"].as_f64().unwrap();
        let want_ssim = case["ssim_piq"].as_f64().unwrap();
        let got_rgb = psnr(&a, &b, PsnrChannels::Rgb).unwrap();
        let got_y = psnr(&a, &b, PsnrChannels::Y).unwrap();
        let got_ssim = ssim(&a, &b).unwrap();
        assert!(
            (got_rgb - want_rgb).abs() < 1e-4,
            "{name}: PSNR {got_rgb} vs {want_rgb}"
        );
        assert!(
            (got_y - want_y).abs() < 1e-4,
            "{name}: Y-PSNR {got_y} vs {want_y}"
        );
        assert!(
            (got_ssim - want_ssim).abs() < 1e-4,
            "{name}: SSIM {got_ssim} vs {want_ssim}"
        );
    }
}

#[test]
fn mean_psnr_is_the_mean_of_per_image_values() {
    let exp = expected();
    let cases = exp["images"].as_array().unwrap();
    let imgs: Vec<(Image, Image)> = cases
        .iter()
        .map(|c| {
            (
                load_image(c["ref"].as_str().unwrap()),
                load_image(c["distorted"].as_str().unwrap()),
            )
        })
        .collect();
    let want: f64 = cases
        .iter()
        .map(|c| c["psnr_rgb"].as_f64().unwrap())
        .sum::<f64>()
        / 3.0;
    let got = mean_psnr(imgs.iter().map(|(a, b)| (a, b)), PsnrChannels::Rgb).unwrap();
    assert!((got - want).abs() < 1e-4);
    // Identical images: infinite PSNR and SSIM exactly 1.
    let (a, _) = &imgs[2];
    assert_eq!(psnr(a, a, PsnrChannels::Rgb).unwrap(), f64::INFINITY);
    assert!((ssim(a, a).unwrap() - 1.0).abs() < 1e-12);
}

#[test]
fn frechet_distance_matches_pytorch_fid() {
    let exp = expected();
    let fr = &exp["frechet"];
    assert!(fr["n"].as_u64().unwrap() > 2048);
    let (mu1, s1) = (f64s("fid_mu1.npy"), f64s("fid_sigma1.npy"));
    let (mu2, s2) = (f64s("fid_mu2.npy"), f64s("fid_sigma2.npy"));
    let want = fr["distance_1_2"].as_f64().unwrap();
    let got = frechet_distance(&mu1, &s1, &mu2, &s2).unwrap();
    assert!(((got - want) / want).abs() < 1e-6, "{got} vs {want}");
    // Symmetric, and zero against itself (pytorch-fid: ~1e-13).
    let back = frechet_distance(&mu2, &s2, &mu1, &s1).unwrap();
    assert!(((back - want) / want).abs() < 1e-6);
    assert!(frechet_distance(&mu1, &s1, &mu1, &s1).unwrap().abs() < 1e-8);
}

#[test]
fn frechet_distance_closed_form_for_diagonal_covariances() {
    // N(0, diag(1, 4)) vs N((3, 4), diag(9, 16)): ‖Δμ‖² = 25; tr terms
    // 1 + 4 + 9 + 16 = 30; √(Σ1Σ2) = diag(3, 8) → −2·11. Total 33.
    let got = frechet_distance(
        &[0.0, 0.0],
        &[1.0, 0.0, 0.0, 4.0],
        &[3.0, 4.0],
        &[9.0, 0.0, 0.0, 16.0],
    )
    .unwrap();
    assert!((got - 33.0).abs() < 1e-9, "{got}");
}

#[test]
fn codebook_usage_and_perplexity_follow_the_definition() {
    // ids 0,0,1,3 over 8 entries: 3 used; p = (1/2, 1/4, 1/4) → H = 1.5 ln 2 → 2^1.5.
    let u = codebook_usage([0, 0, 1, 3], 8).unwrap();
    assert_eq!((u.used, u.total, u.size), (3, 4, 8));
    assert!((u.fraction - 3.0 / 8.0).abs() < 1e-12);
    assert!((u.perplexity - 2f64.powf(1.5)).abs() < 1e-12);
    assert!(matches!(
        codebook_usage([0, 9], 8),
        Err(MetricsError::OutOfRange { index: 1, .. })
    ));
    assert!(matches!(
        codebook_usage([], 8),
        Err(MetricsError::Undefined(_))
    ));
}

#[test]
fn bad_input_gives_typed_errors() {
    let a = Image::from_chw(vec![0.5; 3 * 16 * 16], 3, 16, 16).unwrap();
    let b = Image::from_chw(vec![0.5; 3 * 16 * 17], 3, 16, 17).unwrap();
    assert!(matches!(
        psnr(&a, &b, PsnrChannels::Rgb),
        Err(MetricsError::ShapeMismatch { .. })
    ));
    assert!(matches!(
        ssim(&a, &b),
        Err(MetricsError::ShapeMismatch { .. })
    ));
    assert!(matches!(
        Image::from_chw(vec![0.5, f32::NAN], 1, 1, 2),
        Err(MetricsError::NonFinite { index: 1, .. })
    ));
    assert!(matches!(
        Image::from_chw(vec![0.5, 1.5], 1, 1, 2),
        Err(MetricsError::OutOfRange { index: 1, .. })
    ));
    assert!(matches!(
        Image::from_chw(vec![0.5; 3], 1, 2, 2),
        Err(MetricsError::BadLength { .. })
    ));
    let small = Image::from_chw(vec![0.5; 8 * 8], 1, 8, 8).unwrap();
    assert!(matches!(
        ssim(&small, &small),
        Err(MetricsError::Undefined(_))
    ));
    let grey = Image::from_chw(vec![0.5; 16 * 16], 1, 16, 16).unwrap();
    assert!(matches!(
        psnr(&grey, &grey, PsnrChannels::Y),
        Err(MetricsError::Undefined(_))
    ));
    assert!(matches!(
        frechet_distance(&[0.0], &[1.0], &[0.0, 1.0], &[1.0, 0.0, 0.0, 1.0]),
        Err(MetricsError::ShapeMismatch { .. })
    ));
    assert!(matches!(
        frechet_distance(
            &[0.0, 0.0],
            &[1.0, 0.0, 0.0],
            &[0.0, 0.0],
            &[1.0, 0.0, 0.0, 1.0]
        ),
        Err(MetricsError::BadLength { .. })
    ));
    assert!(matches!(
        frechet_distance(&[f64::NAN], &[1.0], &[0.0], &[1.0]),
        Err(MetricsError::NonFinite { .. })
    ));
}
