//! Tests of the weight-loading layer. Expected values are closed forms
//! computed here (index formulas, hand-written sums), never the layer's own
//! output.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;

use burn::backend::NdArray;
use burn::nn::PaddingConfig2d;
use burn::tensor::{Int, Tensor, TensorData};
use safetensors::tensor::TensorView;
use safetensors::Dtype;
use v2l_io::tensors::SafetensorsFile;
use v2l_nn::layers::{self, Conv2dSpec, IdRowsError};
use v2l_nn::{Init, InitRng, Layout, LoadError, Loader, Unexpected};

type B = NdArray;

/// An in-memory safetensors file of `(name, dtype, shape, little-endian bytes)`.
fn file(tensors: &[(&str, Dtype, Vec<usize>, Vec<u8>)]) -> SafetensorsFile {
    let views: Vec<(String, TensorView<'_>)> = tensors
        .iter()
        .map(|(k, d, s, b)| (k.to_string(), TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    let bytes = safetensors::serialize(views, None::<HashMap<String, String>>).unwrap();
    SafetensorsFile::from_bytes("mem".into(), bytes).unwrap()
}

fn f32s(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn host<const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data().convert::<f32>().to_vec::<f32>().unwrap()
}

#[test]
fn layouts_follow_their_index_formulas() {
    // Transposed: a linear weight [out 2, in 3] and a conv kernel [2, 1, 2, 2].
    let v: Vec<f32> = (0..6).map(|i| i as f32).collect();
    let m = Layout::Transposed.to_module(&[2, 3], v.clone());
    for r in 0..2 {
        for c in 0..3 {
            assert_eq!(m[c * 2 + r], v[r * 3 + c]);
        }
    }
    assert_eq!(Layout::Transposed.module_shape(&[2, 1, 2, 2]), vec![4, 2]);
    assert_eq!(Layout::Transposed.to_file(&[2, 3], m), v);
    // HWIO [kh 2, kw 3, in 2, out 4] → OIHW [4, 2, 2, 3].
    let shape = [2, 3, 2, 4];
    let v: Vec<f32> = (0..48).map(|i| i as f32).collect();
    let m = Layout::HwioToOihw.to_module(&shape, v.clone());
    assert_eq!(Layout::HwioToOihw.module_shape(&shape), vec![4, 2, 2, 3]);
    for y in 0..2 {
        for x in 0..3 {
            for i in 0..2 {
                for o in 0..4 {
                    let file = v[((y * 3 + x) * 2 + i) * 4 + o];
                    assert_eq!(m[((o * 2 + i) * 2 + y) * 3 + x], file);
                }
            }
        }
    }
    assert_eq!(Layout::HwioToOihw.to_file(&shape, m), v);
}

#[test]
fn prefixes_join_with_dots_unless_raw() {
    let device = Default::default();
    let vb = Loader::<B>::random(0, &device);
    assert_eq!(
        vb.pp("encoder").pp("down.0").key("weight"),
        "encoder.down.0.weight"
    );
    assert_eq!(
        vb.pp("global_encoder.").pp("visual").key("proj"),
        "global_encoder.visual.proj"
    );
    assert_eq!(
        vb.pp("AlexNet_0/Conv_1/").key("kernel"),
        "AlexNet_0/Conv_1/kernel"
    );
    assert_eq!(vb.key("x"), "x");
}

#[test]
fn every_problem_is_reported_together() {
    let device = Default::default();
    let src = file(&[
        (
            "m.a.weight",
            Dtype::F32,
            vec![3, 2],
            f32s(&[1., 2., 3., 4., 5., 6.]),
        ),
        // m.a.bias is missing.
        ("m.b.weight", Dtype::F32, vec![2, 2], f32s(&[0.0; 4])),
        ("m.c.weight", Dtype::F32, vec![2], f32s(&[1.0, f32::NAN])),
        // Integers are converted.
        (
            "m.d.weight",
            Dtype::I64,
            vec![2],
            [7i64, -3].iter().flat_map(|v| v.to_le_bytes()).collect(),
        ),
        ("m.extra", Dtype::F32, vec![1], f32s(&[0.0])),
        ("other.x", Dtype::F32, vec![1], f32s(&[0.0])),
    ]);
    let vb = Loader::<B>::from_source(&src, &device)
        .check_finite()
        .pp("m");
    let a = layers::linear(&vb.pp("a"), 2, 3, true);
    let b = vb.param::<2>("b.weight", [3, 3], Init::Zeros);
    let c = vb.values("c.weight", &[2], Init::Zeros);
    let d = vb.values("d.weight", &[2], Init::Zeros);
    assert_eq!(d, vec![7.0, -3.0]);
    // Problems yield zeros so that building goes on.
    assert_eq!(host(a.bias.unwrap().val()), vec![0.0; 3]);
    assert_eq!(host(b.val()), vec![0.0; 9]);
    assert!(c[1].is_nan());
    let err: LoadError = *vb.finish(Unexpected::All).unwrap_err();
    assert_eq!(err.file, "mem");
    assert_eq!(err.missing, vec!["m.a.bias"]);
    assert_eq!(err.unexpected, vec!["m.extra"]);
    assert_eq!(err.shapes.len(), 1);
    assert_eq!(
        (
            err.shapes[0].key.as_str(),
            &err.shapes[0].expected,
            &err.shapes[0].found
        ),
        ("m.b.weight", &vec![3, 3], &vec![2, 2])
    );
    assert_eq!(err.values.len(), 1);
    assert_eq!(
        (err.values[0].key.as_str(), err.values[0].index),
        ("m.c.weight", 1)
    );
    assert_eq!(err.count(), 4);
    let msg = err.to_string();
    for needle in [
        "1 missing: `m.a.bias`",
        "1 unexpected: `m.extra`",
        "`m.b.weight` is [2, 2], expected [3, 3]",
        "1 non-finite",
    ] {
        assert!(msg.contains(needle), "{msg}");
    }
    // Only the named namespaces count as unexpected.
    let err = vb.finish(Unexpected::Under(&["z."])).unwrap_err();
    assert!(err.unexpected.is_empty());
    assert_eq!(vb.finish(Unexpected::Ignore).unwrap_err().count(), 3);
}

#[test]
fn linear_loads_transposed_and_exports_in_file_layout() {
    let device = Default::default();
    // PyTorch nn.Linear(2, 3): W [3, 2], b [3].
    let w = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
    let bias = [0.5f32, -1.0, 2.0];
    let src = file(&[
        ("proj.weight", Dtype::F32, vec![3, 2], f32s(&w)),
        ("proj.bias", Dtype::F32, vec![3], f32s(&bias)),
    ]);
    let vb = Loader::<B>::from_source(&src, &device);
    let lin = layers::linear(&vb.pp("proj"), 2, 3, true);
    let names = vb.finish(Unexpected::All).unwrap();
    assert_eq!(lin.weight.dims(), [2, 3]);
    // y = x Wᵀ + b for x = [1, -2].
    let x = Tensor::<B, 2>::from_data(TensorData::new(vec![1.0f32, -2.0], [1, 2]), &device);
    let want: Vec<f32> = (0..3)
        .map(|o| w[2 * o] - 2.0 * w[2 * o + 1] + bias[o])
        .collect();
    assert_eq!(host(lin.forward(x)), want);
    let out = names.export(&lin).unwrap();
    assert_eq!(out[0], ("proj.weight".to_string(), vec![3, 2], w.to_vec()));
    assert_eq!(out[1], ("proj.bias".to_string(), vec![3], bias.to_vec()));
    assert_eq!(names.name_of(lin.weight.id), Some("proj.weight"));
}

#[test]
fn seeded_draws_follow_the_file_layout_and_build_order() {
    let device = Default::default();
    let build = |seed| {
        let vb = Loader::<B>::random(seed, &device);
        let lin = layers::linear(&vb.pp("l"), 4, 3, true);
        let norm = layers::group_norm(&vb.pp("n"), 2, 4, 1e-6);
        (lin, norm)
    };
    let (lin, norm) = build(5);
    // The weight is drawn as [out 3, in 4] from U(±1/2), then the bias.
    let mut rng = InitRng::new(5);
    let w = rng.sample(Init::Uniform(0.5), 12);
    let b = rng.sample(Init::Uniform(0.5), 3);
    let got = host(lin.weight.val());
    for o in 0..3 {
        for i in 0..4 {
            assert_eq!(got[i * 3 + o], w[o * 4 + i]);
        }
    }
    assert_eq!(host(lin.bias.unwrap().val()), b);
    assert_eq!(host(norm.gamma.unwrap().val()), vec![1.0; 4]);
    assert_eq!(host(norm.beta.unwrap().val()), vec![0.0; 4]);
    assert_ne!(host(build(6).0.weight.val()), got);
}

/// Closed-form references in f64.
fn group_norm_ref(
    x: &[f32],
    c: usize,
    groups: usize,
    eps: f64,
    gamma: &[f32],
    beta: &[f32],
) -> Vec<f32> {
    let n = x.len() / c; // positions per channel (batch 1)
    let per = c / groups * n;
    let mut out = vec![0.0f32; x.len()];
    for g in 0..groups {
        let s = &x[g * per..(g + 1) * per];
        let mean = s.iter().map(|&v| f64::from(v)).sum::<f64>() / per as f64;
        let var = s
            .iter()
            .map(|&v| (f64::from(v) - mean).powi(2))
            .sum::<f64>()
            / per as f64;
        for (k, &v) in s.iter().enumerate() {
            let ch = (g * per + k) / n;
            out[g * per + k] = ((f64::from(v) - mean) / (var + eps).sqrt() * f64::from(gamma[ch])
                + f64::from(beta[ch])) as f32;
        }
    }
    out
}

fn close(a: &[f32], b: &[f32], tol: f32) {
    assert_eq!(a.len(), b.len());
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!((x - y).abs() <= tol * (1.0 + y.abs()), "at {i}: {x} vs {y}");
    }
}

#[test]
fn burn_layers_compute_pytorch_definitions() {
    let device = Default::default();
    let x: Vec<f32> = (0..32).map(|i| ((i * 7 % 11) as f32 - 5.0) * 0.3).collect();
    let gamma: Vec<f32> = (0..4).map(|i| 1.0 + 0.1 * i as f32).collect();
    let beta: Vec<f32> = (0..4).map(|i| -0.2 * i as f32).collect();
    let src = file(&[
        ("gn.weight", Dtype::F32, vec![4], f32s(&gamma)),
        ("gn.bias", Dtype::F32, vec![4], f32s(&beta)),
        ("ln.weight", Dtype::F32, vec![4], f32s(&gamma)),
        ("ln.bias", Dtype::F32, vec![4], f32s(&beta)),
        ("rms.weight", Dtype::F32, vec![4], f32s(&gamma)),
        (
            "conv.weight",
            Dtype::F32,
            vec![1, 1, 3, 3],
            f32s(&[1., 2., 3., 4., 5., 6., 7., 8., 9.]),
        ),
        ("conv.bias", Dtype::F32, vec![1], f32s(&[0.25])),
    ]);
    let vb = Loader::<B>::from_source(&src, &device);
    // GroupNorm(2 groups, 4 channels) on [1, 4, 2, 4]: biased variance.
    let gn = layers::group_norm(&vb.pp("gn"), 2, 4, 1e-6);
    let t = Tensor::<B, 4>::from_data(TensorData::new(x.clone(), [1, 4, 2, 4]), &device);
    close(
        &host(gn.forward(t)),
        &group_norm_ref(&x, 4, 2, 1e-6, &gamma, &beta),
        1e-5,
    );
    // LayerNorm(4) over rows of [8, 4] = GroupNorm with one group per row.
    let ln = layers::layer_norm(&vb.pp("ln"), 4, 1e-5);
    let t = Tensor::<B, 2>::from_data(TensorData::new(x.clone(), [8, 4]), &device);
    let got = host(ln.forward(t));
    for r in 0..8 {
        let row = &x[4 * r..4 * r + 4];
        let want: Vec<f32> = group_norm_ref(row, 4, 1, 1e-5, &[1.0; 4], &[0.0; 4])
            .iter()
            .enumerate()
            .map(|(k, v)| v * gamma[k] + beta[k])
            .collect();
        close(&got[4 * r..4 * r + 4], &want, 1e-5);
    }
    // RmsNorm(4): x / sqrt(mean(x²) + eps) · γ.
    let rms = layers::rms_norm(&vb.pp("rms"), 4, 1e-6);
    let t = Tensor::<B, 2>::from_data(TensorData::new(x.clone(), [8, 4]), &device);
    let got = host(rms.forward(t));
    for r in 0..8 {
        let row = &x[4 * r..4 * r + 4];
        let ms = row.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / 4.0;
        for k in 0..4 {
            let want = (f64::from(row[k]) / (ms + 1e-6).sqrt() * f64::from(gamma[k])) as f32;
            close(&got[4 * r + k..4 * r + k + 1], &[want], 1e-6);
        }
    }
    // Conv2d 3×3 stride 2 with the reference's F.pad(x, (0, 1, 0, 1)) as
    // asymmetric padding: out[i, j] = b + Σ w[u, v] · xp[2i + u, 2j + v].
    let spec = Conv2dSpec {
        padding: PaddingConfig2d::Explicit(0, 0, 1, 1),
        ..Conv2dSpec::square(1, 1, 3, 2, 0)
    };
    let conv = layers::conv2d(&vb.pp("conv"), &spec);
    vb.finish(Unexpected::All).unwrap();
    let img: Vec<f32> = x[..16].to_vec(); // [1, 1, 4, 4]
    let t = Tensor::<B, 4>::from_data(TensorData::new(img.clone(), [1, 1, 4, 4]), &device);
    let got = host(conv.forward(t));
    let xp = |r: usize, c: usize| if r < 4 && c < 4 { img[r * 4 + c] } else { 0.0 };
    let mut want = Vec::new();
    for i in 0..2 {
        for j in 0..2 {
            let mut s = 0.25f32;
            for u in 0..3 {
                for v in 0..3 {
                    s += (u * 3 + v + 1) as f32 * xp(2 * i + u, 2 * j + v);
                }
            }
            want.push(s);
        }
    }
    close(&got, &want, 1e-6);
}

#[test]
fn id_matrix_checks_rows() {
    let device = Default::default();
    let ids = layers::id_matrix::<B>(&[vec![1, 2], vec![3, 0]], 4, &device).unwrap();
    let got: Vec<i64> = ids.into_data().convert::<i64>().to_vec::<i64>().unwrap();
    assert_eq!(got, vec![1, 2, 3, 0]);
    let e = |rows: &[Vec<u32>]| {
        layers::id_matrix::<B>(rows, 4, &device)
            .map(|_: Tensor<B, 2, Int>| ())
            .unwrap_err()
    };
    assert_eq!(e(&[]), IdRowsError::Empty);
    assert_eq!(
        e(&[vec![1], vec![1, 2]]),
        IdRowsError::Ragged {
            row: 1,
            len: 2,
            first: 1
        }
    );
    assert_eq!(
        e(&[vec![1], vec![4]]),
        IdRowsError::OutOfRange { id: 4, row: 1 }
    );
}

mod modes {
    use super::*;
    use burn::backend::Autodiff;
    use rand::SeedableRng;
    use v2l_nn::modes::{BatchNorm2d, Dropout, Mode};

    type AD = Autodiff<NdArray>;

    /// PyTorch's BatchNorm2d definition, checked in closed form: train mode
    /// uses the biased batch variance and moves the running variance by the
    /// unbiased one; eval mode uses the running statistics, also under an
    /// autodiff backend.
    #[test]
    fn batch_norm_follows_pytorch_in_both_modes() {
        let device = Default::default();
        // [N 2, C 2, H 1, W 3].
        let x = [
            1.0f32, 2.0, 4.0, -1.0, 0.0, 3.0, 5.0, 7.0, 0.0, 2.0, 2.0, 2.0,
        ];
        let vb = Loader::<AD>::random(0, &device);
        let bn = BatchNorm2d::load(&vb.pp("bn"), 2, 1e-5, 0.1);
        let names = vb.finish(Unexpected::Ignore).unwrap();
        let t = Tensor::<AD, 4>::from_data(TensorData::new(x.to_vec(), [2, 2, 1, 3]), &device);
        let got = bn
            .forward(t.clone(), Mode::Train)
            .into_data()
            .to_vec::<f32>()
            .unwrap();
        let channel = |c: usize| -> Vec<f32> {
            (0..2)
                .flat_map(|n| x[(n * 2 + c) * 3..(n * 2 + c) * 3 + 3].to_vec())
                .collect()
        };
        let mut running = Vec::new();
        for c in 0..2 {
            let v = channel(c);
            let mean = v.iter().map(|&a| f64::from(a)).sum::<f64>() / 6.0;
            let var = v
                .iter()
                .map(|&a| (f64::from(a) - mean).powi(2))
                .sum::<f64>()
                / 6.0;
            for n in 0..2 {
                for k in 0..3 {
                    let i = (n * 2 + c) * 3 + k;
                    let want = ((f64::from(x[i]) - mean) / (var + 1e-5).sqrt()) as f32;
                    close(&got[i..=i], &[want], 1e-5);
                }
            }
            running.push((0.1 * mean, 0.9 + 0.1 * var * 6.0 / 5.0));
        }
        bn.sync();
        let rm = bn.running_mean.value().into_data().to_vec::<f32>().unwrap();
        let rv = bn.running_var.value().into_data().to_vec::<f32>().unwrap();
        for c in 0..2 {
            close(
                &[rm[c], rv[c]],
                &[running[c].0 as f32, running[c].1 as f32],
                1e-6,
            );
        }
        // Eval under autodiff: the running statistics, not the batch's.
        let got = bn
            .forward(t, Mode::Eval)
            .into_data()
            .to_vec::<f32>()
            .unwrap();
        for (i, &v) in x.iter().enumerate() {
            let c = (i / 3) % 2;
            let (m, var) = running[c];
            let want = ((f64::from(v) - m) / (var + 1e-5).sqrt()) as f32;
            close(&got[i..=i], &[want], 1e-5);
        }
        // Running statistics are exported under their state-dict names.
        let out = names.export(&bn).unwrap();
        let keys: Vec<&str> = out.iter().map(|(k, _, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            ["bn.weight", "bn.bias", "bn.running_mean", "bn.running_var"]
        );
        close(&out[2].2, &rm, 0.0);
    }

    #[test]
    fn dropout_mode_is_explicit_and_its_mask_seeded() {
        let device = Default::default();
        let x = Tensor::<AD, 2>::ones([100, 100], &device);
        let d = Dropout { p: 0.25 };
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        // Eval is the identity even with autodiff on.
        let same = d.forward(x.clone(), Mode::Eval, &mut rng);
        assert_eq!(same.into_data().to_vec::<f32>().unwrap(), vec![1.0; 10_000]);
        let run = |seed| {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            d.forward(x.clone(), Mode::Train, &mut rng)
                .into_data()
                .to_vec::<f32>()
                .unwrap()
        };
        let a = run(7);
        assert_eq!(a, run(7));
        assert_ne!(a, run(8));
        assert!(a.iter().all(|&v| v == 0.0 || (v - 1.0 / 0.75).abs() < 1e-6));
        let kept = a.iter().filter(|&&v| v > 0.0).count() as f64;
        // Binomial(10⁴, 0.75): 4σ ≈ 173.
        assert!(
            (kept - 7500.0).abs() < 4.0 * (10_000.0f64 * 0.75 * 0.25).sqrt(),
            "{kept}"
        );
    }
}
