//! The generator objective at model level, against closed forms of the
//! reference's `quantize` (spec §3.3): the straight-through estimator and
//! the two weights of `qloss`.

use burn::backend::Autodiff;
use burn::tensor::{Tensor, TensorData};
use v2l_train::run::model_config;
use v2l_train::TrainConfig;

type B = Autodiff<burn::backend::Flex>;

const TINY: &str = "image_size = 16\nembed_dim = 16\nk = 2\n[ddconfig]\nch = 32\nch_mult = [1, 2]\nnum_res_blocks = 1\nz_channels = 32\nattn_resolutions = []\n[codebooks]\nrandom_local = 40\nrandom_global = 4\n";

fn model() -> v2l_model::V2lModel<B> {
    let c = TrainConfig::from_toml(TINY).unwrap();
    let mc = model_config(&c, 40, 4, None);
    v2l_model::V2lModel::<B>::random(&mc, 5, &Default::default()).unwrap()
}

fn images() -> Tensor<B, 4> {
    let n = 2 * 3 * 16 * 16;
    let v: Vec<f32> = (0..n)
        .map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0)
        .collect();
    Tensor::from_data(TensorData::new(v, [2, 3, 16, 16]), &Default::default())
}

fn values<const D: usize>(
    t: Tensor<<B as burn::tensor::backend::AutodiffBackend>::InnerBackend, D>,
) -> Vec<f32> {
    t.into_data().convert::<f32>().into_vec::<f32>().unwrap()
}

#[test]
fn the_decoder_gradient_alone_reaches_the_encoder() {
    let m = model();
    let x = images();
    let local = m.encode_local(x.clone(), None).unwrap();
    let ids = v2l_train::run::fixed_global_ids::<B>(2, 2, &Default::default());
    let global = m.global_from_ids(ids).unwrap();
    let decoded = m.decode(local.quantized, global.context).unwrap();
    // Reconstruction loss only: no qloss term.
    let grads = (x - decoded).abs().mean().backward();
    let g = values(m.encoder.conv_in.weight.grad(&grads).unwrap());
    let norm: f32 = g.iter().map(|v| v * v).sum::<f32>().sqrt();
    assert!(
        norm.is_finite() && norm > 0.0,
        "‖∇ encoder.conv_in.weight‖ = {norm}"
    );
    // …and the codebook side gets nothing from the decoder (z_q = z + sg(z_q − z)).
    let p = m.projector.as_ref().unwrap();
    assert!(p
        .bias
        .as_ref()
        .unwrap()
        .grad(&grads)
        .is_none_or(|g| values(g).iter().all(|&v| v == 0.0)));
}

#[test]
fn qloss_gradients_are_the_reference_closed_form() {
    let m = model();
    let local = m.encode_local(images(), None).unwrap();
    let d = 16;
    // z: the per-position L2-normalised features, raster order; z_q: the
    // chosen rows (the straight-through output's value).
    let qc = values(local.quant_conv_out.clone().inner());
    let zq = values(local.quantized.clone().inner());
    let (b, hw) = (2, 8 * 8);
    let at = |v: &[f32], i: usize, c: usize| v[(i / hw) * d * hw + c * hw + i % hw];
    let n = b * hw;
    let grads = local.qloss.backward();
    // ∂qloss/∂bias of the projector = 0.33 · 2/(N·D) · Σ_i (z_q,i − z_i):
    // the codebook-side term only, weight 0.33.
    let mut want = vec![0f64; d];
    for i in 0..n {
        let norm = (0..d)
            .map(|c| f64::from(at(&qc, i, c)).powi(2))
            .sum::<f64>()
            .sqrt();
        for (c, w) in want.iter_mut().enumerate() {
            let z = f64::from(at(&qc, i, c)) / norm;
            *w += 0.33 * 2.0 * (f64::from(at(&zq, i, c)) - z) / (n * d) as f64;
        }
    }
    let got = values(
        m.projector
            .as_ref()
            .unwrap()
            .bias
            .as_ref()
            .unwrap()
            .grad(&grads)
            .unwrap(),
    );
    let err: f64 = got
        .iter()
        .zip(&want)
        .map(|(&g, &w)| (f64::from(g) - w).powi(2))
        .sum::<f64>()
        .sqrt();
    let scale: f64 = want.iter().map(|w| w * w).sum::<f64>().sqrt();
    assert!(
        err <= 1e-4 * scale,
        "projector bias gradient {got:?} vs closed form {want:?}"
    );
    // The commitment term, weight 1, reaches quant_conv through the
    // normalisation z = y/‖y‖: ∂qloss/∂z = 2/(N·D)·(z − z_q), and
    // ∂qloss/∂y = (g − z·(z·g))/‖y‖; quant_conv's bias sums it over positions.
    let mut want = vec![0f64; d];
    for i in 0..n {
        let norm = (0..d)
            .map(|c| f64::from(at(&qc, i, c)).powi(2))
            .sum::<f64>()
            .sqrt();
        let z: Vec<f64> = (0..d).map(|c| f64::from(at(&qc, i, c)) / norm).collect();
        let g: Vec<f64> = (0..d)
            .map(|c| 2.0 * (z[c] - f64::from(at(&zq, i, c))) / (n * d) as f64)
            .collect();
        let zg: f64 = z.iter().zip(&g).map(|(a, b)| a * b).sum();
        for c in 0..d {
            want[c] += (g[c] - z[c] * zg) / norm;
        }
    }
    let got = values(m.quant_conv.bias.as_ref().unwrap().grad(&grads).unwrap());
    let err: f64 = got
        .iter()
        .zip(&want)
        .map(|(&g, &w)| (f64::from(g) - w).powi(2))
        .sum::<f64>()
        .sqrt();
    let scale: f64 = want.iter().map(|w| w * w).sum::<f64>().sqrt();
    assert!(
        err <= 1e-4 * scale,
        "quant_conv bias gradient {got:?} vs closed form {want:?}"
    );
}
