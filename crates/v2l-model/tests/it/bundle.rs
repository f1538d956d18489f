//! Bundles: an imported official checkpoint written as a bundle loads back
//! to identical values and outputs.

use v2l_model::bundle::{write_bundle, Bundle, BundleExtras};
use v2l_model::model::CLIP_PREFIX;
use v2l_model::{ImageSize, OfficialCheckpoint};

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
    let e1 = host(model.clip_embedding(t.tensor::<4>("input_clip")).unwrap()).1;
    let e2 = host(back.clip_embedding(t.tensor::<4>("input_clip")).unwrap()).1;
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
