//! The registry weights of the default model ([default], `../shared/ASSETS.md`)
//! read with v2l-io: EfficientNet-Lite0's legacy (non-zip) `torch.save` file
//! and all-MiniLM-L6-v2's safetensors. Expected counts and shapes are the
//! ones ASSETS.md states (296 tensors, `_fc` 1000×1280; BERT with 6 layers,
//! hidden 384, vocabulary 30,522) and the architectures' definitions.

use v2l_assets::fetch;
use v2l_assets::readers::tensors::{SafetensorsFile, TensorSource};
use v2l_assets::readers::torch_zip::{ArchiveKind, TorchArchive};

#[test]
fn efficientnet_lite0_legacy_file_reads_296_tensors() {
    let Some(path) =
        fetch::test_asset("efficientnet-lite0", "efficientnet-lite0-57934424.pth").unwrap()
    else {
        return;
    };
    let ar = TorchArchive::open(&path).unwrap();
    assert_eq!(ar.kind(), ArchiveKind::Legacy);
    assert_eq!(ar.len(), 296);
    let shape = |k: &str| {
        ar.tensor_info(k)
            .unwrap_or_else(|| panic!("no {k}"))
            .shape()
            .to_vec()
    };
    assert_eq!(shape("_fc.weight"), [1000, 1280]);
    assert_eq!(shape("_fc.bias"), [1000]);
    assert_eq!(shape("_conv_stem.weight"), [32, 3, 3, 3]);
    assert_eq!(shape("_conv_head.weight"), [1280, 320, 1, 1]);
    let (_, w) = ar.read_f32("_fc.weight").unwrap();
    assert!(w.iter().all(|v| v.is_finite()));
}

#[test]
fn minilm_l6_safetensors_is_a_6_layer_384_wide_bert() {
    let Some(path) = fetch::test_asset("minilm-l6", "model.safetensors").unwrap() else {
        return;
    };
    let f = SafetensorsFile::open(&path).unwrap();
    let keys = f.keys();
    let find = |suffix: &str| {
        keys.iter()
            .find(|k| k.ends_with(suffix))
            .unwrap_or_else(|| panic!("no key ending in {suffix}"))
            .clone()
    };
    let (shape, _) = f
        .read_f32(&find("embeddings.word_embeddings.weight"))
        .unwrap();
    assert_eq!(shape, [30522, 384]);
    let layers = (0..12)
        .filter(|i| {
            keys.iter()
                .any(|k| k.contains(&format!("encoder.layer.{i}.")))
        })
        .count();
    assert_eq!(layers, 6);
    let (shape, _) = f
        .read_f32(&find("encoder.layer.5.intermediate.dense.weight"))
        .unwrap();
    assert_eq!(shape, [1536, 384]);
}
