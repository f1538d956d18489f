//! CLIP score against torchmetrics' `CLIPScore` on the tiny CLIP fixture
//! (`scripts/gen_clip_score_fixtures.py`), end to end: embeddings from
//! v2l-clip's towers, the score from v2l-metrics.

use std::path::PathBuf;

use burn::backend::NdArray;
use v2l_clip::weights::{SafetensorsFile, TensorSource};
use v2l_clip::Clip;
use v2l_metrics::clip_score::{clip_r, clip_score, global_words_text, label_prompt, ClipScore};
use v2l_metrics::MetricsError;

fn clip_fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../v2l-clip/tests/fixtures/model")
        .join(rel)
}

fn rows(t: burn::tensor::Tensor<NdArray, 2>) -> Vec<Vec<f32>> {
    let [_, d] = t.dims();
    t.into_data()
        .to_vec::<f32>()
        .unwrap()
        .chunks(d)
        .map(<[f32]>::to_vec)
        .collect()
}

#[test]
fn clip_score_matches_torchmetrics() {
    let device = Default::default();
    let clip = Clip::<NdArray>::load(clip_fixture("tiny_hf"), &device).unwrap();
    let io = SafetensorsFile::open(clip_fixture("tiny_io.safetensors")).unwrap();
    let (shape, px) = io.read_f32("pixel_values").unwrap();
    let images = burn::tensor::Tensor::<NdArray, 4>::from_data(
        burn::tensor::TensorData::new(px, shape),
        &device,
    );
    let image_emb = rows(clip.encode_image(images).unwrap());
    let (shape, ids) = io.read_f32("input_ids").unwrap();
    let id_rows: Vec<Vec<u32>> = ids
        .chunks(shape[1])
        .map(|r| r.iter().map(|&v| v as u32).collect())
        .collect();
    let text_emb = rows(clip.encode_text(&id_rows).unwrap());

    let reference: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/clip_score/reference.json"),
        )
        .unwrap(),
    )
    .unwrap();
    for (name, case) in reference["cases"].as_object().unwrap() {
        let pick = |key: &str, from: &[Vec<f32>]| -> Vec<Vec<f32>> {
            case[key]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| from[i.as_u64().unwrap() as usize].clone())
                .collect()
        };
        let (im, tx) = (pick("image_rows", &image_emb), pick("text_rows", &text_emb));
        let got = clip_score(&im, &tx).unwrap();
        let want = case["clip_score"].as_f64().unwrap();
        let mut acc = ClipScore::new();
        acc.update_batch(&im, &tx).unwrap();
        let sum = case["sum"].as_f64().unwrap();
        println!("{name}: ours {got:.6} torchmetrics {want:.6} (sum {sum:.6})");
        assert!((got - want).abs() < 1e-4, "{name}: {got} vs {want}");
        // The clamp applies to the mean: the unclamped mean matches too.
        assert_eq!(acc.count(), case["n"].as_u64().unwrap() as usize);
        assert!((acc.compute().unwrap() - (sum / 2.0).max(0.0)).abs() < 1e-4);
    }
}

#[test]
fn clip_r_and_errors() {
    // Closed form: orthogonal → 0, identical → 100.
    let e = |v: &[f32]| v.to_vec();
    let img = vec![e(&[1.0, 0.0]), e(&[0.0, 2.0])];
    assert!((clip_score(&img, &img).unwrap() - 100.0).abs() < 1e-9);
    let words = vec![e(&[1.0, 1.0]), e(&[1.0, 1.0])];
    // cos 45° = 0.7071 → CLIP-R = 70.71 / 100.
    assert!((clip_r(&img, &words, &img).unwrap() - 0.5f64.sqrt()).abs() < 1e-9);
    assert_eq!(
        global_words_text(&["tabby", "cat", "kitten"]),
        "tabby cat kitten"
    );
    assert_eq!(label_prompt("tabby cat"), "a photo of a tabby cat");
    assert!(matches!(
        clip_score(&img, &img[..1]),
        Err(MetricsError::ShapeMismatch { .. })
    ));
    assert!(matches!(
        clip_score(&[e(&[1.0])], &[e(&[1.0, 0.0])]),
        Err(MetricsError::ShapeMismatch { .. })
    ));
    assert!(matches!(
        clip_score(&[e(&[f32::NAN])], &[e(&[1.0])]),
        Err(MetricsError::NonFinite { .. })
    ));
    assert!(matches!(
        clip_score(&[e(&[0.0])], &[e(&[1.0])]),
        Err(MetricsError::Undefined(_))
    ));
    assert!(matches!(
        clip_score(&[], &[]),
        Err(MetricsError::Undefined(_))
    ));
    let neg = vec![e(&[-1.0, 0.0])];
    assert!(matches!(
        clip_r(&img[..1], &img[..1], &neg),
        Err(MetricsError::Undefined(_))
    ));
}
