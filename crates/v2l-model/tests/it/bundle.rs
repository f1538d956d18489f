//! Bundles: an imported official checkpoint written as a bundle loads back
//! to identical values and outputs.

use v2l_model::bundle::{write_bundle, Bundle, BundleExtras};
use v2l_model::model::CLIP_PREFIX;
use v2l_model::{ImageSize, OfficialCheckpoint, V2lModel};

use crate::common::{fixture, host, int_rows, Tensors, B};

#[test]
fn official_import_round_trips_through_a_bundle() {
    let device = Default::default();
    let ck = OfficialCheckpoint::open(fixture("v2l-tiny/checkpoint.pth")).unwrap();
    let config = ck
        .infer_config(Some(ImageSize::Square(32)), Some(5))
        .unwrap();
    let model = ck.load::<B>(&config, &device).unwrap();
    let words: Vec<String> = (0..120).map(|i| format!("word{i}")).collect();
    let dir = tempfile::tempdir().unwrap();
    let extras = BundleExtras {
        clip: Some((ck.source(), CLIP_PREFIX)),
        global_words: Some(&words),
        provenance: serde_json::json!({"test": true}),
    };
    write_bundle(dir.path(), &model, &extras).unwrap();
    // Wrong word count is refused.
    let bad = BundleExtras {
        clip: Some((ck.source(), CLIP_PREFIX)),
        global_words: Some(&words[..3]),
        provenance: serde_json::Value::Null,
    };
    assert!(write_bundle(tempfile::tempdir().unwrap().path(), &model, &bad).is_err());

    let bundle = Bundle::open(dir.path()).unwrap();
    assert_eq!(bundle.config(), &config);
    assert_eq!(bundle.global_words().unwrap(), &words[..]);
    assert_eq!(bundle.provenance()["test"], true);
    let back = bundle.load::<B>(bundle.config(), &device).unwrap();
    let a = model.named_tensors().unwrap();
    let b = back.named_tensors().unwrap();
    assert_eq!(a.len(), b.len());
    for ((na, sa, va), (nb, sb, vb)) in a.iter().zip(&b) {
        assert_eq!((na, sa), (nb, sb));
        assert!(va == vb, "{na} differs after the round trip");
    }
    // The CLIP tower (stored f16, lossless) gives the same ids and values.
    let t = Tensors::open(fixture("v2l-tiny/expected.safetensors"));
    let e1 = host(model.image_embedding(t.tensor::<4>("input_clip")).unwrap()).1;
    let e2 = host(back.image_embedding(t.tensor::<4>("input_clip")).unwrap()).1;
    assert_eq!(e1, e2);
    let l1 = model
        .encode_local(t.tensor::<4>("input_image"), None)
        .unwrap();
    let l2 = back
        .encode_local(t.tensor::<4>("input_image"), None)
        .unwrap();
    assert_eq!(int_rows(l1.local_ids), int_rows(l2.local_ids));
    assert_eq!(host(l1.quantized).1, host(l2.quantized).1);
    // f16 only where lossless: the CLIP tower was f16 in the checkpoint.
    let clip = v2l_assets::readers::tensors::SafetensorsFile::open(
        dir.path().join("clip_vision.safetensors"),
    )
    .unwrap();
    let bytes = std::fs::metadata(dir.path().join("clip_vision.safetensors"))
        .unwrap()
        .len();
    let n: usize = v2l_assets::readers::tensors::TensorSource::keys(&clip)
        .iter()
        .map(|k| {
            v2l_assets::readers::tensors::TensorSource::shape(&clip, k)
                .unwrap()
                .iter()
                .product::<usize>()
        })
        .sum();
    assert!(
        bytes < (n * 3) as u64,
        "CLIP stored as f16: {bytes} bytes for {n} values"
    );
}

/// The tensors of one bundle file, by name: `(shape, values)`.
fn file_tensors(
    path: std::path::PathBuf,
) -> std::collections::BTreeMap<String, (Vec<usize>, Vec<f32>)> {
    use v2l_assets::readers::tensors::TensorSource;
    let f = v2l_assets::readers::tensors::SafetensorsFile::open(path).unwrap();
    f.keys()
        .into_iter()
        .map(|k| {
            let v = f.read_f32(&k).unwrap();
            (k, v)
        })
        .collect()
}

/// A bundle written at commit eb0201b, before the weight-loading layer
/// replaced the model's own loaders (`examples/write_legacy_bundle.rs`, run
/// at that commit), loads unchanged. Checked against that bundle's files
/// and the outputs the writing code computed then (`expected.safetensors`):
/// every parameter exports to the file's own name, shape and values
/// (PyTorch's `[out, in]` layout on disk); a bundle written back holds the
/// same tensors; the local ids are identical and the decoded images equal
/// within 1e-4 relative error.
#[test]
fn bundle_written_before_the_loading_layer_loads_unchanged() {
    let device = Default::default();
    let dir = fixture("legacy-bundle");
    let bundle = Bundle::open(dir.join("bundle")).unwrap();
    assert_eq!(bundle.global_words().unwrap()[19], "w19");
    let model = bundle.load::<B>(bundle.config(), &device).unwrap();

    let mut on_disk = file_tensors(dir.join("bundle/model.safetensors"));
    for (file, key) in [
        ("local_codebook.safetensors", "tok_embeddings.weight"),
        (
            "global_codebook.safetensors",
            "tok_embeddings_global.weight",
        ),
    ] {
        let mut t = file_tensors(dir.join("bundle").join(file));
        on_disk.insert(key.to_string(), t.remove("embeddings").unwrap());
    }
    let exported = model.named_tensors().unwrap();
    assert_eq!(exported.len(), on_disk.len());
    // Linear weights are [in, out] in the module and [out, in] on disk.
    let proj = &model.projector.as_ref().unwrap().weight;
    assert_eq!(proj.dims(), [16, 16]);
    let to_q = &model.decoder.mid_cross_attn_1.as_ref().unwrap().to_q.weight;
    assert_eq!(to_q.dims(), [32, 256]);
    assert_eq!(
        on_disk["decoder.mid.cross_attn_1.to_q.weight"].0,
        vec![256, 32]
    );
    for (name, shape, values) in &exported {
        let (s, v) = &on_disk[name];
        assert_eq!((shape, values), (s, v), "{name}");
    }

    // The writer drew the model with `V2lModel::random(config, 20261202)`:
    // today's seeded initialisation draws the same values.
    let drawn = V2lModel::<B>::random(bundle.config(), 20261202, &device)
        .unwrap()
        .named_tensors()
        .unwrap();
    assert_eq!(drawn.len(), on_disk.len());
    for (name, shape, values) in &drawn {
        let (s, v) = &on_disk[name];
        assert_eq!((shape, values), (s, v), "seeded {name}");
    }

    // Written back, the bundle holds the same tensors.
    let out = tempfile::tempdir().unwrap();
    let words = bundle.global_words().unwrap().to_vec();
    let extras = BundleExtras {
        clip: None,
        global_words: Some(&words),
        provenance: bundle.provenance().clone(),
    };
    write_bundle(out.path(), &model, &extras).unwrap();
    for file in [
        "model.safetensors",
        "local_codebook.safetensors",
        "global_codebook.safetensors",
    ] {
        assert_eq!(
            file_tensors(out.path().join(file)),
            file_tensors(dir.join("bundle").join(file)),
            "{file}"
        );
    }

    // The outputs recorded by the writing code.
    let expected = Tensors::open(dir.join("expected.safetensors"));
    let shape = [2, 3, 16, 16];
    let n: usize = shape.iter().product();
    let x: Vec<f32> = (0..n).map(|i| ((i as f32) * 0.37).sin()).collect();
    let x =
        burn::tensor::Tensor::<B, 4>::from_data(burn::tensor::TensorData::new(x, shape), &device);
    let local = model.encode_local(x, None).unwrap();
    let want: Vec<Vec<u32>> = expected.rows("local_ids");
    assert_eq!(int_rows(local.local_ids.clone()), want);
    crate::common::assert_close(
        "quantized",
        local.quantized.clone(),
        &expected,
        "quantized",
        1e-4,
    );
    let global = burn::tensor::Tensor::<B, 2, burn::tensor::Int>::from_data(
        burn::tensor::TensorData::new(vec![0i64, 5, 19, 7, 3, 11], [2, 3]),
        &device,
    );
    let decoded = model
        .decode_ids(local.local_ids, local.grid, global, None)
        .unwrap();
    crate::common::assert_close("decoded", decoded, &expected, "decoded", 1e-4);
}

/// The `vl` section: a ConSE section round-trips through JSON; an old
/// bundle's bare `clip_vision` reads as a CLIP section and is written back
/// as `vl`; both keys at once are refused (serde's duplicate field).
#[test]
fn vl_section_reads_old_clip_vision_and_round_trips_conse() {
    let golden = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/v2l-tiny/config.json");
    let text = std::fs::read_to_string(&golden).unwrap();
    assert!(text.contains("\"clip_vision\""));
    let c: v2l_model::ModelConfig = serde_json::from_str(&text).unwrap();
    let old: serde_json::Value = serde_json::from_str(&text).unwrap();
    match &c.vl {
        Some(v2l_vl::VlConfig::Clip { vision }) => {
            assert_eq!(
                vision.output_dim as u64,
                old["clip_vision"]["output_dim"].as_u64().unwrap()
            );
        }
        other => panic!("expected a CLIP section, got {other:?}"),
    }
    let back = serde_json::to_value(&c).unwrap();
    assert!(back.get("clip_vision").is_none());
    assert_eq!(back["vl"]["kind"], "clip");
    let again: v2l_model::ModelConfig = serde_json::from_value(back).unwrap();
    assert_eq!(again, c);

    let mut conse = c.clone();
    conse.vl = Some(v2l_vl::VlConfig::Conse(v2l_vl::ConseConfig {
        top: 7,
        temperature: 0.25,
        ..v2l_vl::ConseConfig::default()
    }));
    let v = serde_json::to_value(&conse).unwrap();
    assert_eq!(v["vl"]["kind"], "conse");
    assert_eq!(
        (v["vl"]["top"].as_u64(), v["vl"]["temperature"].as_f64()),
        (Some(7), Some(0.25))
    );
    let again: v2l_model::ModelConfig = serde_json::from_value(v).unwrap();
    assert_eq!(again, conse);

    let mut both: serde_json::Value = serde_json::from_str(&text).unwrap();
    both["vl"] = serde_json::json!({"kind": "conse", "top": 5, "temperature": 0.5,
        "templates": ["{}"], "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]});
    assert!(serde_json::from_value::<v2l_model::ModelConfig>(both).is_err());
}
