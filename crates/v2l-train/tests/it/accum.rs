//! `accum_iter`: the reference's behaviour (faithful: `zero_grad` every
//! iteration, so a step uses its own iteration's gradients only) and the
//! corrected mean.

use burn::backend::Autodiff;
use burn::tensor::{Tensor, TensorData};
use v2l_metrics::lpips::{Lpips, LpipsNet};
use v2l_nn::Loader;
use v2l_train::run::{fixed_global_ids, model_config};
use v2l_train::trainer::{AccumMode, GlobalInput, LossConfig, Trainer};
use v2l_train::{NLayerDiscriminator, TrainConfig};

type B = Autodiff<burn::backend::Flex>;

const TINY: &str = "image_size = 32\nembed_dim = 16\nk = 2\n[ddconfig]\nch = 32\nch_mult = [1, 2]\nnum_res_blocks = 1\nz_channels = 32\nattn_resolutions = []\n[codebooks]\nrandom_local = 40\nrandom_global = 4\n";

fn trainer(vgg: &std::path::Path, accum_iter: usize, accum_mode: AccumMode) -> Trainer<B> {
    let device = Default::default();
    let c = TrainConfig::from_toml(TINY).unwrap();
    let model =
        v2l_model::V2lModel::<B>::random(&model_config(&c, 40, 4, None), 3, &device).unwrap();
    let disc = NLayerDiscriminator::load(&Loader::<B>::random(4, &device), 8);
    let lpips = Lpips::<B>::load(LpipsNet::Vgg, vgg, &device).unwrap();
    let loss = LossConfig {
        rate_q: 1.0,
        rate_p: 0.1,
        rate_d: 0.75,
        disc_start: 100,
        lpips_dropout: false,
        code_entropy: None,
        accum_iter,
        accum_mode,
    };
    Trainer::new(model, disc, lpips, loss, 2)
}

fn batch(seed: usize) -> Tensor<B, 4> {
    let n = 2 * 3 * 32 * 32;
    let v: Vec<f32> = (0..n)
        .map(|i| (((i + seed) * 37 % 101) as f32 / 50.0) - 1.0)
        .collect();
    Tensor::from_data(TensorData::new(v, [2, 3, 32, 32]), &Default::default())
}

fn params(t: &Trainer<B>) -> Vec<Vec<f32>> {
    t.model
        .named_tensors()
        .unwrap()
        .into_iter()
        .map(|(_, _, v)| v)
        .collect()
}

fn ids() -> GlobalInput<B> {
    GlobalInput::Ids(fixed_global_ids::<B>(2, 2, &Default::default()))
}

#[test]
fn faithful_accumulation_steps_with_the_last_iterations_gradients_only() {
    let Some(vgg) = v2l_assets::fetch::test_asset("lpips-backbones", "vgg16.ckpt").unwrap() else {
        return;
    };
    let mut a = trainer(&vgg, 2, AccumMode::Faithful);
    let initial = params(&a);
    a.step(batch(1), ids(), 0, 0, 1e-3, 0).unwrap();
    assert_eq!(
        params(&a),
        initial,
        "no step on the first of two iterations"
    );
    a.step(batch(2), ids(), 1, 1, 1e-3, 0).unwrap();
    let mut b = trainer(&vgg, 1, AccumMode::Faithful);
    b.step(batch(2), ids(), 0, 0, 1e-3, 0).unwrap();
    assert_eq!(
        params(&a),
        params(&b),
        "the step used batch 2's gradients alone"
    );

    let mut m = trainer(&vgg, 2, AccumMode::Mean);
    m.step(batch(1), ids(), 0, 0, 1e-3, 0).unwrap();
    assert_eq!(
        params(&m),
        initial,
        "no step on the first of two iterations"
    );
    m.step(batch(2), ids(), 1, 1, 1e-3, 0).unwrap();
    assert_ne!(params(&m), params(&b), "the mean includes batch 1");
    assert_ne!(params(&m), initial);
}
