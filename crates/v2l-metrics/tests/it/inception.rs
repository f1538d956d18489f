//! The FID Inception network against the TorchScript module it is read from,
//! and pytorch-fid's preprocessing against torch's `F.interpolate`.
//!
//! Fixtures: `tests/fixtures/inception/` from `scripts/gen_inception_fixtures.py`
//! (8 real images stored small: 4 scikit-image photos at 120 × 160, 3
//! Fashion-MNIST digits at 28 × 28 grey, one photo at 330 × 410; the
//! TorchScript module's features of their pytorch-fid preprocessing; the
//! preprocessed input on a 60 × 60 grid; bilinear resize cases). The
//! feature test needs the cached `fid-inception` asset and prints `SKIP`
//! without it (a failure with `V2L_REQUIRE_ASSETS=1`).

use std::path::{Path, PathBuf};

use burn::tensor::{Tensor, TensorData};
use serde_json::Value;
use v2l_assets::fetch;
use v2l_assets::readers::tensors::{SafetensorsFile, TensorSource};
use v2l_assets::readers::torch_zip::TorchArchive;
use v2l_assets::readers::{PickleValue, ReadError};
use v2l_metrics::inception::{
    preprocess_pytorch_fid, preprocess_pytorch_fid_f32, preprocess_pytorch_fid_u8, resize_bilinear,
    FidInception, InceptionError, CONV_LAYERS, FEATURE_DIM, INPUT_SIZE,
};

/// burn's Flex backend: its conv2d is several times faster than NdArray's
/// on CPU, which keeps the 8-image feature test short.
type B = burn::backend::Flex;

const CASES: [&str; 3] = ["photos", "fmnist", "large"];

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/inception")
}

fn fixtures() -> SafetensorsFile {
    SafetensorsFile::open(fixture_dir().join("inception.safetensors")).unwrap()
}

fn reference() -> Value {
    let text = std::fs::read_to_string(fixture_dir().join("reference.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn shape4(shape: &[usize]) -> [usize; 4] {
    shape.try_into().unwrap()
}

/// The stored u8 images of a case.
fn images_u8(fx: &SafetensorsFile, case: &str) -> ([usize; 4], Vec<u8>) {
    let (shape, v) = fx.read_f32(&format!("{case}_u8")).unwrap();
    (shape4(&shape), v.into_iter().map(|x| x as u8).collect())
}

/// `max|a − b| / max|b|`.
fn max_rel(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    let diff = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max);
    diff / b.iter().map(|y| y.abs()).fold(0.0, f32::max)
}

fn max_abs(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// `x[:, :, ::step, ::step]` of `[N, C, 299, 299]`.
fn grid(x: &[f32], n: usize, step: usize) -> Vec<f32> {
    let s = INPUT_SIZE;
    let mut out = Vec::new();
    for plane in x.chunks_exact(s * s).take(n * 3) {
        for y in (0..s).step_by(step) {
            for xx in (0..s).step_by(step) {
                out.push(plane[y * s + xx]);
            }
        }
    }
    out
}

#[test]
fn bilinear_resize_matches_torch_interpolate() {
    let fx = fixtures();
    let cases = reference()["resize_cases"].as_array().unwrap().clone();
    assert_eq!(cases.len(), 4);
    for (k, case) in cases.iter().enumerate() {
        let (shape, input) = fx.read_f32(&format!("resize{k}_in")).unwrap();
        let (out_shape, want) = fx.read_f32(&format!("resize{k}_out")).unwrap();
        let size: Vec<usize> = case["size"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect();
        assert_eq!(out_shape[2..], size[..]);
        let got = resize_bilinear(&input, shape4(&shape), size[0], size[1]).unwrap();
        let err = max_abs(&got, &want);
        println!("resize {shape:?} -> {size:?}: max |diff| {err:.2e}");
        assert!(err <= 1e-6, "resize case {k}: {err}");
    }
}

#[test]
fn preprocessing_matches_pytorch_fid() {
    let fx = fixtures();
    let step = reference()["pre_grid_step"].as_u64().unwrap() as usize;
    let device = Default::default();
    for case in CASES {
        let (shape, u8s) = images_u8(&fx, case);
        let got = preprocess_pytorch_fid_u8(&u8s, shape).unwrap();
        assert_eq!(got.len(), shape[0] * 3 * INPUT_SIZE * INPUT_SIZE);
        let (_, want) = fx.read_f32(&format!("pre_{case}")).unwrap();
        let err = max_abs(&grid(&got, shape[0], step), &want);
        println!("preprocess {case} {shape:?}: max |diff| vs torch {err:.2e}");
        assert!(err <= 1e-6, "{case}: {err}");
        // The f32 and tensor entry points agree with the u8 one.
        let f: Vec<f32> = u8s.iter().map(|&v| f32::from(v) / 255.0).collect();
        assert_eq!(preprocess_pytorch_fid_f32(&f, shape).unwrap(), got);
        let t = Tensor::<B, 4>::from_data(TensorData::new(f, shape), &device);
        let from_tensor = preprocess_pytorch_fid(t).unwrap();
        assert_eq!(from_tensor.dims(), [shape[0], 3, INPUT_SIZE, INPUT_SIZE]);
        assert_eq!(from_tensor.into_data().to_vec::<f32>().unwrap(), got);
    }
}

#[test]
fn preprocessing_rejects_bad_shapes() {
    let device = Default::default();
    for shape in [[1, 2, 8, 8], [0, 3, 8, 8], [1, 3, 0, 8], [1, 4, 8, 8]] {
        let n: usize = shape.iter().product();
        let err = preprocess_pytorch_fid_f32(&vec![0.5; n], shape).unwrap_err();
        assert!(
            matches!(&err, InceptionError::BadInputShape { shape: s, .. } if s[..] == shape[..]),
            "{err}"
        );
        assert!(err.to_string().contains(&format!("{shape:?}")), "{err}");
    }
    let err = preprocess_pytorch_fid_u8(&[0; 10], [1, 3, 2, 2]).unwrap_err();
    assert!(
        matches!(err, InceptionError::BadInputLength { len: 10, .. }),
        "{err}"
    );
    let t = Tensor::<B, 4>::zeros([1, 2, 4, 4], &device);
    assert!(matches!(
        preprocess_pytorch_fid(t),
        Err(InceptionError::BadInputShape { .. })
    ));
    assert!(resize_bilinear(&[0.0; 4], [1, 1, 2, 2], 0, 3).is_err());
}

/// A tensor source with every tensor the network needs, all zero except the
/// variances (one), optionally with one tensor removed, reshaped or edited.
struct FakeSource {
    drop: Option<String>,
    reshape: Option<(String, Vec<usize>)>,
    bad_var: Option<String>,
}

impl FakeSource {
    fn full() -> Self {
        Self {
            drop: None,
            reshape: None,
            bad_var: None,
        }
    }

    fn spec_shape(key: &str) -> Option<Vec<usize>> {
        let rest = key.strip_prefix("net.layers.")?;
        let (layer, field) = rest.rsplit_once('.')?;
        let s = CONV_LAYERS.iter().find(|s| s.name == layer)?;
        match field {
            "weight" => Some(vec![s.c_out, s.c_in, s.kernel[0], s.kernel[1]]),
            "beta" | "mean" | "var" => Some(vec![s.c_out]),
            _ => None,
        }
    }
}

impl TensorSource for FakeSource {
    fn describe(&self) -> &str {
        "fake"
    }

    fn keys(&self) -> Vec<String> {
        CONV_LAYERS
            .iter()
            .flat_map(|s| {
                ["weight", "beta", "mean", "var"].map(|f| format!("net.layers.{}.{f}", s.name))
            })
            .filter(|k| self.drop.as_deref() != Some(k.as_str()))
            .collect()
    }

    fn shape(&self, key: &str) -> Option<Vec<usize>> {
        if self.drop.as_deref() == Some(key) {
            return None;
        }
        if let Some((k, s)) = &self.reshape {
            if k == key {
                return Some(s.clone());
            }
        }
        Self::spec_shape(key)
    }

    fn read_f32(&self, key: &str) -> Result<(Vec<usize>, Vec<f32>), ReadError> {
        let shape = self.shape(key).ok_or_else(|| ReadError::TensorNotFound {
            file: "fake".into(),
            name: key.into(),
        })?;
        let n = shape.iter().product();
        let value = if key.ends_with(".var") {
            if self.bad_var.as_deref() == Some(key) {
                -1.0
            } else {
                1.0
            }
        } else {
            0.0
        };
        Ok((shape, vec![value; n]))
    }
}

#[test]
fn loading_reports_missing_and_misshaped_tensors() {
    let device = Default::default();
    let key = "net.layers.mixed_4.tower_1.conv_2.weight";
    let err = FidInception::<B>::load(
        &FakeSource {
            drop: Some(key.into()),
            ..FakeSource::full()
        },
        &device,
    )
    .unwrap_err();
    assert!(
        matches!(&err, InceptionError::Weights(r) if r.missing == vec![key.to_string()]),
        "{err}"
    );
    assert!(err.to_string().contains(key), "{err}");

    let err = FidInception::<B>::load(
        &FakeSource {
            reshape: Some((key.into(), vec![128, 128, 7, 1])),
            ..FakeSource::full()
        },
        &device,
    )
    .unwrap_err();
    match &err {
        InceptionError::Weights(r) => {
            assert_eq!(r.shapes.len(), 1, "{r}");
            assert_eq!(r.shapes[0].key, key);
            assert_eq!(r.shapes[0].expected, vec![128, 128, 1, 7]);
            assert_eq!(r.shapes[0].found, vec![128, 128, 7, 1]);
        }
        other => panic!("{other}"),
    }
    assert!(err.to_string().contains("[128, 128, 1, 7]"), "{err}");

    let var = "net.layers.conv_3.var";
    let err = FidInception::<B>::load(
        &FakeSource {
            bad_var: Some(var.into()),
            ..FakeSource::full()
        },
        &device,
    )
    .unwrap_err();
    assert!(
        matches!(&err, InceptionError::BadTensorValue { key: k, .. } if k == var),
        "{err}"
    );
}

#[test]
fn forward_rejects_bad_input_shapes() {
    let device = Default::default();
    let model = FidInception::<B>::load(&FakeSource::full(), &device).unwrap();
    for shape in [
        [1, 3, 224, 224],
        [2, 1, 299, 299],
        [1, 3, 299, 300],
        [0, 3, 299, 299],
    ] {
        let err = model
            .forward(Tensor::<B, 4>::zeros(shape, &device))
            .unwrap_err();
        assert!(
            matches!(&err, InceptionError::BadInputShape { shape: s, .. } if s[..] == shape[..]),
            "{err}"
        );
        assert!(err.to_string().contains(&format!("{shape:?}")), "{err}");
    }
}

#[test]
fn conv_table_matches_the_torchscript_module() {
    // The strides and paddings as torch reports them (reference.json, written
    // by the generator from the loaded module) ...
    let meta = reference();
    let convs = meta["convs"].as_object().unwrap();
    assert_eq!(convs.len(), CONV_LAYERS.len());
    let usizes = |v: &Value| -> Vec<usize> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as usize)
            .collect()
    };
    for s in CONV_LAYERS {
        let c = &convs[s.name];
        assert_eq!(
            usizes(&c["weight"]),
            vec![s.c_out, s.c_in, s.kernel[0], s.kernel[1]],
            "{}",
            s.name
        );
        assert_eq!(
            c["stride"].as_u64().unwrap() as usize,
            s.stride,
            "{}",
            s.name
        );
        assert_eq!(usizes(&c["padding"]), s.padding.to_vec(), "{}", s.name);
    }
    // ... and as the archive's pickled module attributes say (read with the
    // safe reader; no TorchScript code runs).
    let Some(path) = fetch::test_asset("fid-inception", "default_1.pt").unwrap() else {
        return;
    };
    let ar = TorchArchive::open(path).unwrap();
    assert_eq!(ar.len(), 4 * CONV_LAYERS.len());
    let layers = ar.root().get("net").and_then(|n| n.get("layers")).unwrap();
    for s in CONV_LAYERS {
        let module = s
            .name
            .split('.')
            .try_fold(layers, |m, part| m.get(part))
            .unwrap_or_else(|| panic!("{}", s.name));
        let stride = module.get("stride").and_then(PickleValue::as_i64).unwrap();
        assert_eq!(stride as usize, s.stride, "{}", s.name);
        let padding = match module.get("padding").unwrap() {
            p @ PickleValue::Int(_) => {
                let v = p.as_i64().unwrap() as usize;
                vec![v, v]
            }
            p => p
                .as_seq()
                .unwrap()
                .iter()
                .map(|v| v.as_i64().unwrap() as usize)
                .collect(),
        };
        assert_eq!(padding, s.padding.to_vec(), "{}", s.name);
        assert_eq!(
            ar.tensor_info(&format!("net.layers.{}.weight", s.name))
                .unwrap()
                .shape(),
            &[s.c_out, s.c_in, s.kernel[0], s.kernel[1]]
        );
    }
}

#[test]
fn features_match_the_torchscript_module_on_real_images() {
    let Some(path) = fetch::test_asset("fid-inception", "default_1.pt").unwrap() else {
        return;
    };
    let device = Default::default();
    let t = std::time::Instant::now();
    let model = FidInception::<B>::load_file(&path, &device).unwrap();
    println!("loaded in {:.2} s", t.elapsed().as_secs_f64());
    let fx = fixtures();
    for case in CASES {
        let t = std::time::Instant::now();
        let (shape, u8s) = images_u8(&fx, case);
        let n = shape[0];
        let pre = preprocess_pytorch_fid_u8(&u8s, shape).unwrap();
        let x = Tensor::<B, 4>::from_data(
            TensorData::new(pre, [n, 3, INPUT_SIZE, INPUT_SIZE]),
            &device,
        );
        let feat = model.forward(x).unwrap();
        assert_eq!(feat.dims(), [n, FEATURE_DIM]);
        let got = feat.into_data().to_vec::<f32>().unwrap();
        let (want_shape, want) = fx.read_f32(&format!("feat_{case}")).unwrap();
        assert_eq!(want_shape, vec![n, FEATURE_DIM]);
        for i in 0..n {
            let r = i * FEATURE_DIM..(i + 1) * FEATURE_DIM;
            let rel = max_rel(&got[r.clone()], &want[r]);
            println!("{case}[{i}]: max|a-b|/max|b| = {rel:.2e}");
            assert!(rel < 1e-4, "{case}[{i}]: {rel}");
        }
        println!("{case}: {n} images in {:.2} s", t.elapsed().as_secs_f64());
    }
}
