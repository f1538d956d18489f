//! Official-format files (`scripts/gen_codebook_official_fixtures.py`, written
//! with torch.save / np.save) load with identical values and strings, and
//! the codebook format round-trips.

use std::path::PathBuf;

use v2l_codebook::{official, Codebook, CodebookError, Precision};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/official")
        .join(name)
}

fn expected() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(fixture("expected.json")).unwrap()).unwrap()
}

fn values(v: &serde_json::Value) -> Vec<f32> {
    v["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

#[test]
fn official_files_import_with_identical_values_and_strings() {
    let e = expected();
    let (local, global) = official::import(
        fixture("local_codebook_embedding.pth"),
        fixture("global_codebook_embedding.pth"),
        fixture("global_vocabulary.npy"),
    )
    .unwrap();
    assert_eq!((local.rows(), local.dim()), (40, 8));
    assert_eq!((global.rows(), global.dim()), (12, 8));
    assert_eq!(local.embeddings(), &values(&e["local"])[..]);
    assert_eq!(global.embeddings(), &values(&e["global"])[..]);
    let words: Vec<String> = serde_json::from_value(e["strings"].clone()).unwrap();
    assert_eq!(global.strings().unwrap(), &words[..]);
    assert!(local.strings().is_none());
    // Row i is row i of the file (the local id ↔ LLM token id invariant).
    assert_eq!(local.row(7).unwrap(), &values(&e["local"])[7 * 8..8 * 8]);
    assert!(local.row(40).is_none());
}

#[test]
fn codebook_files_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let (local, global) = official::import(
        fixture("local_codebook_embedding.pth"),
        fixture("global_codebook_embedding.pth"),
        fixture("global_vocabulary.npy"),
    )
    .unwrap();
    let global = global
        .with_token_ids((0..12).map(|i| vec![i, i + 1]).collect())
        .unwrap();
    // f16 source: Auto stores f16 losslessly; f32 source stays f32.
    let lp = dir.path().join("local.safetensors");
    local.save(&lp, Precision::Auto).unwrap();
    let gp = dir.path().join("global.safetensors");
    global.save(&gp, Precision::Auto).unwrap();
    let lsize = std::fs::metadata(&lp).unwrap().len();
    let gsize = std::fs::metadata(&gp).unwrap().len();
    assert!(lsize < 40 * 8 * 4, "local stored as f16 ({lsize} bytes)");
    assert!(gsize >= 12 * 8 * 4, "global stored as f32 ({gsize} bytes)");
    assert_eq!(Codebook::load(&lp).unwrap(), local);
    assert_eq!(Codebook::load(&gp).unwrap(), global);
    // Forced f16 rounds the f32 codebook.
    let hp = dir.path().join("half.safetensors");
    global.save(&hp, Precision::F16).unwrap();
    let back = Codebook::load(&hp).unwrap();
    let max = back
        .embeddings()
        .iter()
        .zip(global.embeddings())
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(max > 0.0 && max < 1e-3, "{max}");
}

#[test]
fn bad_inputs_are_typed_errors() {
    assert!(matches!(
        Codebook::new(vec![1.0; 5], 2, 3),
        Err(CodebookError::Shape { .. })
    ));
    assert!(matches!(
        Codebook::new(vec![0.0, f32::NAN, 0.0, 0.0], 2, 2),
        Err(CodebookError::NonFinite { row: 0, col: 1, .. })
    ));
    let cb = Codebook::new(vec![0.0; 4], 2, 2).unwrap();
    assert!(cb.clone().with_strings(vec!["a".into()]).is_err());
    assert!(cb.with_token_ids(vec![vec![1]; 3]).is_err());
    // A vocabulary of the wrong length for the global rows.
    assert!(official::import(
        fixture("global_codebook_embedding.pth"),
        fixture("local_codebook_embedding.pth"),
        fixture("global_vocabulary.npy"),
    )
    .is_err());
    // Not a PyTorch archive.
    assert!(official::read_embedding_pth(fixture("expected.json")).is_err());
    // A sidecar that disagrees with the embeddings.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("c.safetensors");
    Codebook::new(vec![0.5; 6], 3, 2)
        .unwrap()
        .save(&p, Precision::F32)
        .unwrap();
    std::fs::write(dir.path().join("c.json"), r#"{"rows": 2, "dim": 3}"#).unwrap();
    assert!(matches!(
        Codebook::load(&p),
        Err(CodebookError::Format { .. })
    ));
}
