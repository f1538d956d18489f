//! Shared test helpers.
#![allow(dead_code)]

use std::path::PathBuf;

use burn::backend::NdArray;
use burn::tensor::{Int, Tensor, TensorData};
use v2l_assets::readers::tensors::{SafetensorsFile, TensorSource};

/// The CPU backend the tests run on.
pub type B = NdArray;

/// `crates/v2l-model/tests/fixtures/<rel>`.
pub fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

/// The tensors of a safetensors file.
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

    /// The same on any backend.
    pub fn tensor_on<BK: burn::tensor::backend::Backend, const D: usize>(
        &self,
        key: &str,
    ) -> Tensor<BK, D> {
        let (shape, data) = self.get(key);
        Tensor::from_data(TensorData::new(data, shape), &Default::default())
    }

    /// Integer rows (stored as int64) as u32 rows.
    pub fn rows(&self, key: &str) -> Vec<Vec<u32>> {
        let (shape, data) = self.get(key);
        let t = shape[1];
        data.chunks(t)
            .map(|r| r.iter().map(|&v| v as u32).collect())
            .collect()
    }
}

/// Values of a float tensor on the host.
pub fn host<const D: usize>(t: Tensor<B, D>) -> (Vec<usize>, Vec<f32>) {
    host_on(t)
}

/// Values of a float tensor of any backend on the host.
pub fn host_on<BK: burn::tensor::backend::Backend, const D: usize>(
    t: Tensor<BK, D>,
) -> (Vec<usize>, Vec<f32>) {
    let data = t.into_data();
    let shape = data.shape.clone().to_vec();
    (shape, data.convert::<f32>().to_vec::<f32>().unwrap())
}

/// Rows of an int tensor.
pub fn int_rows<BK: burn::tensor::backend::Backend>(t: Tensor<BK, 2, Int>) -> Vec<Vec<u32>> {
    v2l_model::model::ids_to_rows(t).unwrap()
}

/// max |a − b| / max |b|.
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

/// Assert a tensor equals the reference `key` within `tol` relative error;
/// returns the error.
pub fn assert_close<BK: burn::tensor::backend::Backend, const D: usize>(
    what: &str,
    got: Tensor<BK, D>,
    t: &Tensors,
    key: &str,
    tol: f64,
) -> f64 {
    let (shape, values) = host_on(got);
    let (rshape, reference) = t.get(key);
    assert_eq!(shape, rshape, "{what}: shape");
    let e = rel_err(&values, &reference);
    eprintln!("{what}: rel err {e:.2e}");
    assert!(e <= tol, "{what}: relative error {e:.3e} > {tol:.0e}");
    e
}
