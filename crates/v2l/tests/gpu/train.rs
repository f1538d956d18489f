//! Two training iterations of the tiny official architecture with a patch
//! discriminator, on the GPU and on the CPU: the reference's objective
//! (reconstruction, codebook, perceptual with LPIPS-AlexNet instead of VGG,
//! adaptive-weight GAN term, hinge discriminator loss), backward and Adam.

use burn::backend::Autodiff;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Tensor, TensorData};
use v2l::io::tensors::{SafetensorsFile, TensorSource};
use v2l::metrics::lpips::{Lpips, LpipsNet};
use v2l::model::{ImageSize, OfficialCheckpoint};
use v2l::nn::Loader;
use v2l::train::trainer::{AccumMode, GlobalInput, LossConfig, StepReport, Trainer};
use v2l::train::NLayerDiscriminator;

use crate::common::{fixture, gpu, C, G};

fn trainer<B: AutodiffBackend>(alex: &std::path::Path, device: &B::Device) -> Trainer<B> {
    let ck = OfficialCheckpoint::open(fixture("v2l-model", "v2l-tiny/checkpoint.pth")).unwrap();
    let config = ck
        .infer_config(Some(ImageSize::Square(32)), Some(5))
        .unwrap();
    let model = ck.load::<B>(&config, device).unwrap();
    let disc = NLayerDiscriminator::load(&Loader::<B>::random(3, device), 8);
    let lpips = Lpips::<B>::load(LpipsNet::Alex, alex, device).unwrap();
    let loss = LossConfig {
        rate_q: 1.0,
        rate_p: 0.1,
        rate_d: 0.75,
        disc_start: 0,
        lpips_dropout: false,
        code_entropy: None,
        accum_iter: 1,
        accum_mode: AccumMode::Faithful,
    };
    Trainer::new(model, disc, lpips, loss, 5)
}

fn two_steps<B: AutodiffBackend>(alex: &std::path::Path, device: &B::Device) -> Vec<StepReport> {
    let io = SafetensorsFile::open(fixture("v2l-model", "v2l-tiny/expected.safetensors")).unwrap();
    let input = |key: &str| {
        let (shape, data) = io.read_f32(key).unwrap();
        Tensor::<B, 4>::from_data(TensorData::new(data, shape), device)
    };
    let mut t = trainer::<B>(alex, device);
    let embedding = t.model.image_embedding(input("input_clip")).unwrap();
    (1..=2)
        .map(|it| {
            t.step(
                input("input_image"),
                GlobalInput::Embedding(embedding.clone()),
                it,
                it - 1,
                1e-4,
                0,
            )
            .unwrap()
        })
        .collect()
}

fn close(what: &str, got: f64, want: f64, tol: f64) {
    let e = (got - want).abs() / want.abs().max(1e-12);
    eprintln!("{what}: {got:.6e} vs CPU {want:.6e} (rel {e:.1e})");
    assert!(
        e <= tol,
        "{what}: {got} vs CPU {want}: rel {e:.2e} > {tol:.0e}"
    );
}

/// Losses, gradient norms and the adaptive
/// weight (a ratio of two of them) within 1e-4 of the CPU's, in both iterations; the
/// second iteration sees the parameters each backend's first update made.
#[test]
fn two_training_iterations_match_the_cpu() {
    let Some(device) = gpu() else { return };
    let Some(alex) = v2l::assets::fetch::test_asset("lpips-backbones", "alexnet.ckpt").unwrap()
    else {
        return;
    };
    let g = two_steps::<Autodiff<G>>(&alex, &device);
    let c = two_steps::<Autodiff<C>>(&alex, &Default::default());
    for (i, (g, c)) in g.iter().zip(&c).enumerate() {
        let it = i + 1;
        assert_eq!(g.local_ids, c.local_ids, "iteration {it}: local ids");
        close(&format!("{it}: rec_loss"), g.rec_loss, c.rec_loss, 1e-4);
        close(&format!("{it}: p_loss"), g.p_loss, c.p_loss, 1e-4);
        close(&format!("{it}: qloss"), g.qloss, c.qloss, 1e-4);
        close(&format!("{it}: g_loss"), g.g_loss, c.g_loss, 1e-4);
        close(&format!("{it}: loss"), g.loss, c.loss, 1e-4);
        close(
            &format!("{it}: d_loss"),
            g.d_loss.unwrap(),
            c.d_loss.unwrap(),
            1e-4,
        );
        close(&format!("{it}: grad_norm"), g.grad_norm, c.grad_norm, 1e-4);
        close(&format!("{it}: d_weight"), g.d_weight, c.d_weight, 1e-4);
    }
}
