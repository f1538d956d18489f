//! Shared test helpers.

use std::path::PathBuf;

use burn::backend::NdArray;
use burn::tensor::{Tensor, TensorData};
use v2l_clip::weights::{SafetensorsFile, TensorSource};

/// The CPU backend the tests run on.
pub type B = NdArray;

/// `crates/v2l-clip/tests/fixtures/<rel>`.
pub fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

/// The shared golden folder (`../shared/golden/v2l-tiny`), if present.
pub fn golden(rel: &str) -> Option<PathBuf> {
    // The workspace's copy (committed with v2l-model's fixtures), else the
    // shared folder beside the workspace.
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let in_repo = manifest
        .join("../v2l-model/tests/fixtures/v2l-tiny")
        .join(rel);
    let p = if in_repo.exists() {
        in_repo
    } else {
        manifest.join("../../../shared/golden/v2l-tiny").join(rel)
    };
    if p.exists() {
        Some(p)
    } else {
        eprintln!("SKIP: golden file {} not found", p.display());
        None
    }
}

/// All f32 tensors of a safetensors file.
pub struct Tensors(pub SafetensorsFile);

impl Tensors {
    pub fn open(path: impl Into<PathBuf>) -> Self {
        Self(SafetensorsFile::open(path.into()).unwrap())
    }

    pub fn get(&self, key: &str) -> (Vec<usize>, Vec<f32>) {
        self.0
            .read_f32(key)
            .unwrap_or_else(|e| panic!("{key}: {e}"))
    }

    pub fn tensor<const D: usize>(&self, key: &str) -> Tensor<B, D> {
        let (shape, data) = self.get(key);
        Tensor::from_data(TensorData::new(data, shape), &Default::default())
    }

    /// Integer rows (stored as int64 or float) as u32 rows.
    pub fn rows(&self, key: &str) -> Vec<Vec<u32>> {
        let (shape, data) = self.get(key);
        let t = shape[1];
        data.chunks(t)
            .map(|r| r.iter().map(|&v| v as u32).collect())
            .collect()
    }
}

/// Values of a tensor on the host.
pub fn host<const D: usize>(t: Tensor<B, D>) -> (Vec<usize>, Vec<f32>) {
    let data = t.into_data();
    let shape = data.shape.clone().to_vec();
    (shape, data.to_vec::<f32>().unwrap())
}

/// max |a − b| / max |b| (the "relative error" of the parity tests).
pub fn rel_err(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    let mut diff = 0f64;
    let mut scale = 0f64;
    for (&x, &y) in a.iter().zip(b) {
        diff = diff.max((x as f64 - y as f64).abs());
        scale = scale.max((y as f64).abs());
    }
    diff / scale.max(1e-30)
}

/// Assert a tensor equals a reference within `tol` relative error.
pub fn assert_close<const D: usize>(
    name: &str,
    got: Tensor<B, D>,
    want: (Vec<usize>, Vec<f32>),
    tol: f64,
) {
    let (shape, data) = host(got);
    assert_eq!(shape, want.0, "{name}: shape");
    let e = rel_err(&data, &want.1);
    println!("{name}: rel err {e:.3e}");
    assert!(e <= tol, "{name}: rel err {e:.3e} > {tol:.0e}");
}
