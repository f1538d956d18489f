//! Bad input gets typed errors naming what was wrong.

use std::collections::HashMap;

use burn::tensor::{Int, Tensor, TensorData};
use v2l_assets::readers::tensors::{SafetensorsFile, TensorSource};
use v2l_model::{ModelConfig, ModelError, V2lModel};

use crate::common::{fixture, B};

fn levels() -> (ModelConfig, SafetensorsFile) {
    let dir = fixture("model/levels");
    let config = ModelConfig::from_json_file(&dir.join("config.json")).unwrap();
    (
        config,
        SafetensorsFile::open(dir.join("weights.safetensors")).unwrap(),
    )
}

/// Rewrite a safetensors file: drop, add and reshape keys.
fn doctored(src: &SafetensorsFile) -> SafetensorsFile {
    let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    for k in src.keys() {
        if k == "decoder.conv_in.bias" {
            continue; // missing
        }
        let (mut shape, v) = src.read_f32(&k).unwrap();
        if k == "encoder.mid.attn_1.q.weight" {
            shape = vec![shape[0], shape[1]]; // mis-shaped (1×1 kernel squeezed)
        }
        tensors.push((k, shape, v.iter().flat_map(|x| x.to_le_bytes()).collect()));
    }
    tensors.push((
        "encoder.down.0.attn.0.q.weight".into(),
        vec![1],
        0f32.to_le_bytes().to_vec(),
    ));
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = tensors
        .iter()
        .map(|(k, s, b)| {
            (
                k.clone(),
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b)
                    .unwrap(),
            )
        })
        .collect();
    let bytes = safetensors::serialize(views, None::<HashMap<String, String>>).unwrap();
    SafetensorsFile::from_bytes("doctored".into(), bytes).unwrap()
}

#[test]
fn weight_problems_are_listed_together() {
    let (config, src) = levels();
    let bad = doctored(&src);
    let err = V2lModel::<B>::from_source(&bad, "", &config, &Default::default()).unwrap_err();
    match &err {
        ModelError::Weights(report) => {
            let v2l_model::error::LoadError {
                missing,
                unexpected,
                shapes,
                ..
            } = report.as_ref();
            assert_eq!(missing, &vec!["decoder.conv_in.bias".to_string()]);
            assert_eq!(
                unexpected,
                &vec!["encoder.down.0.attn.0.q.weight".to_string()]
            );
            assert_eq!(shapes.len(), 1);
            assert_eq!(shapes[0].key, "encoder.mid.attn_1.q.weight");
            assert_eq!(shapes[0].expected, vec![64, 64, 1, 1]);
            assert_eq!(shapes[0].found, vec![64, 64]);
        }
        e => panic!("expected a weights error, got {e}"),
    }
    let msg = err.to_string();
    for needle in [
        "1 missing",
        "1 unexpected",
        "1 mis-shaped",
        "decoder.conv_in.bias",
    ] {
        assert!(msg.contains(needle), "{msg}");
    }
}

#[test]
fn out_of_range_ids_and_indivisible_images_are_errors() {
    let (config, src) = levels();
    let device = Default::default();
    let model = V2lModel::<B>::from_source(&src, "", &config, &device).unwrap();
    let mut local = vec![0i64; 2 * 60];
    local[60 + 7] = 300; // n_local = 300
    let local = Tensor::<B, 2, Int>::from_data(TensorData::new(local, [2, 60]), &device);
    let global =
        Tensor::<B, 2, Int>::from_data(TensorData::new(vec![0i64, 1, 2, 3, 4, 5], [2, 3]), &device);
    match model.decode_ids(local.clone(), (6, 10), global.clone(), None) {
        Err(ModelError::IdOutOfRange {
            which,
            id,
            image,
            position,
            size,
        }) => {
            assert_eq!(
                (which, id, image, position, size),
                ("local", 300, 1, 7, 300)
            );
        }
        other => panic!("expected IdOutOfRange, got {other:?}"),
    }
    let global_bad = Tensor::<B, 2, Int>::from_data(
        TensorData::new(vec![0i64, 1, 2, 3, -1, 5], [2, 3]),
        &device,
    );
    let ok_local = Tensor::<B, 2, Int>::zeros([2, 60], &device);
    assert!(matches!(
        model.decode_ids(ok_local.clone(), (6, 10), global_bad, None),
        Err(ModelError::IdOutOfRange {
            which: "global",
            id: -1,
            image: 1,
            position: 1,
            ..
        })
    ));
    assert!(matches!(
        model.decode_ids(ok_local, (5, 10), global, None),
        Err(ModelError::InvalidInput(_))
    ));
    // 3 levels → 2 downsamplings → sides must be multiples of 4.
    let odd = Tensor::<B, 4>::zeros([1, 3, 24, 42], &device);
    match model.encode_local(odd, None) {
        Err(ModelError::Indivisible {
            height: 24,
            width: 42,
            factor: 4,
            ..
        }) => {}
        other => panic!("expected Indivisible, got {other:?}"),
    }
    let grey = Tensor::<B, 4>::zeros([1, 1, 24, 40], &device);
    assert!(matches!(
        model.encode_local(grey, None),
        Err(ModelError::InvalidInput(_))
    ));
    // No CLIP tower in this model.
    let clip_in = Tensor::<B, 4>::zeros([1, 3, 32, 32], &device);
    assert!(matches!(
        model.image_embedding(clip_in),
        Err(ModelError::Missing(_))
    ));
}
