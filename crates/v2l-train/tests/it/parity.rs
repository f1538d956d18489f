//! One training iteration against the official code: the fixture
//! `tests/fixtures/train-step` was produced by `scripts/gen_train_step_fixture.py`,
//! which runs the official `models/models_v2l.py` forward (with its
//! `calculate_adaptive_weight` and `hinge_d_loss`), taming's
//! `NLayerDiscriminator` and LPIPS from the reference repository, through one
//! iteration of `training/engine_training.py` `train_one_epoch` as
//! transcribed in the generator (`run_iteration`: lines 30–87 and the
//! optimisers' construction; the file itself is not run), on the
//! v2l-tiny golden weights (LPIPS dropout off, discriminator ndf 16, lr 1e-4,
//! cur_iter 1 > disc_start 0).
//!
//! Tolerances. Loss terms, `d_weight` and the discriminator loss: 1e-4
//! relative to the official f32 values (issue [train]). Gradients: the
//! issue asks for 1e-4 relative with a floor of 1e-6·max|g|, but the
//! official code's own f32 gradients miss its float64 gradients by more
//! than that (up to 2.6e-3 of a tensor's max in the decoder: GroupNorm and
//! attention backward in f32; the fixture stores both, `grad.*` and
//! `grad64.*`, and `meta.json` `f32_vs_f64` lists the gaps). So each
//! gradient is compared with the float64 reference and may miss it by
//! `1e-4·|g64| + 1e-6·max|g64| + 2·e`, where `e` is the official f32
//! run's largest miss on that tensor: the port must be as exact as the
//! reference itself, within a factor of two. Updated parameters: 1e-6
//! absolute, plus what the gradient tolerance allows through Adam's first
//! step (`Δp = −lr·g/(|g| + ε)` moves by up to `lr·ε·δg/(|g| + ε)²` when `g`
//! moves by `δg`, which matters only for gradients near ε = 1e-7).

use std::collections::HashMap;
use std::path::PathBuf;

use burn::backend::Autodiff;
use burn::optim::Optimizer;
use burn::tensor::{Int, Tensor, TensorData};
use v2l_io::tensors::{SafetensorsFile, TensorSource};
use v2l_metrics::lpips::{Lpips, LpipsNet};
use v2l_model::{ImageSize, OfficialCheckpoint};
use v2l_nn::{Loader, Unexpected};
use v2l_train::trainer::{named_gradients, GlobalInput, LossConfig, Trainer};
use v2l_train::NLayerDiscriminator;

type B = Autodiff<burn::backend::Flex>;

const LR: f64 = 1e-4;
const EPS: f64 = 1e-7;

fn fixture() -> SafetensorsFile {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/train-step/fixture.safetensors");
    SafetensorsFile::open(p).unwrap()
}

fn golden_checkpoint() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../v2l-model/tests/fixtures/v2l-tiny/checkpoint.pth")
}

fn read(f: &SafetensorsFile, key: &str) -> Vec<f32> {
    f.read_f32(key).unwrap_or_else(|e| panic!("{key}: {e}")).1
}

fn scalar(f: &SafetensorsFile, key: &str) -> f64 {
    f64::from(read(f, key)[0])
}

fn assert_rel(name: &str, got: f64, want: f64, tol: f64) {
    let err = (got - want).abs() / want.abs().max(1e-30);
    assert!(
        err <= tol,
        "{name}: {got} vs official {want} (rel. error {err:.2e} > {tol:.0e})"
    );
}

/// The per-element tolerance of a gradient: `want64` the float64
/// reference, `want32` the official f32 values, `big` the largest |g64|
/// of the network.
fn tolerances(want64: &[f32], want32: &[f32], big: f64) -> Vec<f64> {
    let e = want64
        .iter()
        .zip(want32)
        .map(|(&a, &b)| (f64::from(a) - f64::from(b)).abs())
        .fold(0f64, f64::max);
    want64
        .iter()
        .map(|&g| 1e-4 * f64::from(g).abs() + 1e-6 * big + 2.0 * e)
        .collect()
}

/// Elementwise gradient check; returns the number of values compared.
fn check_grad(name: &str, got: &[f32], want64: &[f32], tol: &[f64]) -> usize {
    assert_eq!(got.len(), want64.len(), "{name}");
    for (i, ((&a, &b), &t)) in got.iter().zip(want64).zip(tol).enumerate() {
        let (a, b) = (f64::from(a), f64::from(b));
        assert!(
            (a - b).abs() <= t,
            "gradient of {name}[{i}]: {a:e} vs official float64 {b:e} (tolerance {t:e})"
        );
    }
    got.len()
}

/// Updated-parameter check with the gradient tolerance carried through
/// Adam's first step.
fn check_after(name: &str, got: &[f32], want: &[f32], grad: &[f32], tol: &[f64]) {
    for (i, (((&a, &b), &g), &dg)) in got.iter().zip(want).zip(grad).zip(tol).enumerate() {
        let (a, b, g) = (f64::from(a), f64::from(b), f64::from(g).abs());
        let carried = (LR * EPS * dg / ((g - dg).max(0.0) + EPS).powi(2)).min(2.0 * LR);
        assert!(
            (a - b).abs() <= 1e-6 + carried,
            "updated {name}[{i}]: {a:.9} vs official {b:.9} (gradient {g:e})"
        );
    }
}

fn max_abs<'a>(values: impl Iterator<Item = &'a f32>) -> f64 {
    values.fold(0f64, |m, &v| m.max(f64::from(v).abs()))
}

#[test]
fn one_iteration_matches_the_official_loop() {
    let Some(vgg) = v2l_assets::fetch::test_asset("lpips-backbones", "vgg16.ckpt").unwrap() else {
        return;
    };
    let device = Default::default();
    let fx = fixture();
    let ck = OfficialCheckpoint::open(golden_checkpoint()).unwrap();
    let config = ck
        .infer_config(Some(ImageSize::Square(32)), Some(5))
        .unwrap();
    let model = ck.load::<B>(&config, &device).unwrap();
    let initial: HashMap<String, Vec<f32>> = model
        .named_tensors()
        .unwrap()
        .into_iter()
        .map(|(n, _, v)| (n, v))
        .collect();
    let vb = Loader::<B>::from_source(&fx, &device).pp("disc_init.");
    let disc = NLayerDiscriminator::load(&vb, 16);
    let disc_names = vb.finish(Unexpected::Ignore).unwrap();
    let lpips = Lpips::<B>::load(LpipsNet::Vgg, &vgg, &device).unwrap();
    let loss = LossConfig {
        rate_q: 1.0,
        rate_p: 0.1,
        rate_d: 0.75,
        disc_start: 0,
        lpips_dropout: false,
        code_entropy: None,
        accum_iter: 1,
        accum_mode: v2l_train::trainer::AccumMode::Faithful,
    };
    let mut t = Trainer::new(model, disc, lpips, loss, 5);

    let (shape, x) = fx.read_f32("x").unwrap();
    let x = Tensor::<B, 4>::from_data(
        TensorData::new(x, [shape[0], shape[1], shape[2], shape[3]]),
        &device,
    );
    let ids: Vec<i64> = read(&fx, "global_ids").iter().map(|&v| v as i64).collect();
    let ids = Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [2, 5]), &device);
    let global = GlobalInput::Ids(ids);

    // Generator pass.
    let (grads, report) = t.generator_gradients(x.clone(), &global, 1, 0).unwrap();
    let want_ids: Vec<u32> = read(&fx, "local_ids").iter().map(|&v| v as u32).collect();
    assert_eq!(
        report.local_ids, want_ids,
        "local ids of the generator pass"
    );
    for (name, got) in [
        ("rec_loss", report.rec_loss),
        ("p_loss", report.p_loss),
        ("qloss", report.qloss),
        ("g_loss", report.g_loss),
        ("d_weight", report.d_weight),
        ("nll_grad_norm", report.nll_grad_norm),
        ("g_grad_norm", report.g_grad_norm),
        ("loss", report.loss),
    ] {
        assert_rel(name, got, scalar(&fx, name), 1e-4);
    }
    let ours = named_gradients(&t.model, t.model.names(), &grads).unwrap();
    let ours: HashMap<String, Vec<f32>> = ours.into_iter().map(|(n, _, v)| (n, v)).collect();
    let keys = fx.keys();
    let names: Vec<String> = keys
        .iter()
        .filter_map(|k| k.strip_prefix("norm.").map(str::to_string))
        .collect();
    assert_eq!(
        names.len(),
        131,
        "trainable tensors of the official optimiser"
    );
    assert_eq!(ours.len(), names.len(), "tensors with a gradient");
    let big = names
        .iter()
        .map(|n| max_abs(read(&fx, &format!("grad64.{n}")).iter()))
        .fold(0f64, f64::max);
    let mut compared = 0;
    let mut sampled: HashMap<String, Vec<usize>> = HashMap::new();
    let mut tols: HashMap<String, Vec<f64>> = HashMap::new();
    for name in &names {
        let g = ours
            .get(name)
            .unwrap_or_else(|| panic!("no gradient for {name}"));
        let norm = g.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>().sqrt();
        let want_norm = scalar(&fx, &format!("norm.{name}"));
        // Norms: 1e-3 relative (the official f32 run's own gap reaches 2.6e-3).
        assert!(
            (norm - want_norm).abs() <= 1e-3 * want_norm + 1e-6 * big,
            "‖∇{name}‖ = {norm:e} vs official {want_norm:e}"
        );
        let want64 = read(&fx, &format!("grad64.{name}"));
        let want32 = read(&fx, &format!("grad.{name}"));
        let tol = tolerances(&want64, &want32, big);
        let idx: Option<Vec<usize>> = keys.contains(&format!("idx.{name}")).then(|| {
            read(&fx, &format!("idx.{name}"))
                .iter()
                .map(|&v| v as usize)
                .collect()
        });
        let got: Vec<f32> = match &idx {
            Some(idx) => idx.iter().map(|&i| g[i]).collect(),
            None => g.clone(),
        };
        compared += check_grad(name, &got, &want64, &tol);
        tols.insert(name.clone(), tol);
        if let Some(idx) = idx {
            sampled.insert(name.clone(), idx);
        }
    }
    assert!(compared > 50_000, "{compared} gradient values compared");

    // The generator's Adam step.
    t.model = t.opt_g.step(LR, t.model.clone(), grads);
    let after: HashMap<String, Vec<f32>> = t
        .model
        .named_tensors()
        .unwrap()
        .into_iter()
        .map(|(n, _, v)| (n, v))
        .collect();
    for name in &names {
        let pick = |v: &Vec<f32>| -> Vec<f32> {
            match sampled.get(name) {
                Some(idx) => idx.iter().map(|&i| v[i]).collect(),
                None => v.clone(),
            }
        };
        let grad = read(&fx, &format!("grad.{name}"));
        check_after(
            name,
            &pick(&after[name]),
            &read(&fx, &format!("after.{name}")),
            &grad,
            &tols[name],
        );
    }
    // The frozen local codebook did not move.
    assert_eq!(
        after["tok_embeddings.weight"],
        initial["tok_embeddings.weight"]
    );

    // Discriminator pass through the updated generator.
    let (dgrads, d_loss, rec2) = t.discriminator_gradients(x, &global).unwrap();
    assert_rel("d_loss", d_loss, scalar(&fx, "d_loss"), 1e-4);
    assert_rel("rec_loss_2", rec2, scalar(&fx, "rec_loss_2"), 1e-4);
    let dg = named_gradients(&t.disc, &disc_names, &dgrads).unwrap();
    assert_eq!(dg.len(), 10, "discriminator tensors with a gradient");
    let dg: HashMap<String, Vec<f32>> = dg
        .into_iter()
        .map(|(n, _, g)| (n.trim_start_matches("disc_init.").to_string(), g))
        .collect();
    let dbig = dg
        .keys()
        .map(|n| max_abs(read(&fx, &format!("disc_grad64.{n}")).iter()))
        .fold(0f64, f64::max);
    let mut dtols = HashMap::new();
    for (name, g) in &dg {
        let want64 = read(&fx, &format!("disc_grad64.{name}"));
        let tol = tolerances(&want64, &read(&fx, &format!("disc_grad.{name}")), dbig);
        check_grad(name, g, &want64, &tol);
        dtols.insert(name.clone(), tol);
    }
    t.disc = t.opt_d.step(LR, t.disc.clone(), dgrads);
    for n in &t.disc.norms {
        n.sync();
    }
    let disc_after = disc_names.export(&t.disc).unwrap();
    for (name, _, v) in &disc_after {
        let name = name.trim_start_matches("disc_init.");
        let want = read(&fx, &format!("disc_after.{name}"));
        if name.contains("running_") {
            // Three updates in the official order: D(x̂), D(x), D(x̂₂).
            for (i, (&a, &b)) in v.iter().zip(&want).enumerate() {
                let (a, b) = (f64::from(a), f64::from(b));
                assert!(
                    (a - b).abs() <= 1e-5 * b.abs().max(1.0),
                    "{name}[{i}]: {a} vs {b}"
                );
            }
        } else {
            let grad = read(&fx, &format!("disc_grad.{name}"));
            check_after(name, v, &want, &grad, &dtols[name]);
        }
    }
}
