//! Training: gradients reach the encoder, decoder, both 1×1 convs and the
//! projector; the codebooks and the CLIP tower stay frozen.

use burn::backend::Autodiff;
use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams, Optimizer};
use burn::tensor::{Tensor, TensorData};
use v2l_model::{ImageSize, OfficialCheckpoint};

use crate::common::{fixture, rel_err, Tensors};

type A = Autodiff<burn::backend::NdArray>;

fn values<const D: usize>(t: Tensor<A, D>) -> Vec<f32> {
    t.into_data().convert::<f32>().to_vec::<f32>().unwrap()
}

#[test]
fn one_optimiser_step_updates_trainable_parts_only() {
    let device = Default::default();
    let ck = OfficialCheckpoint::open(fixture("v2l-tiny/checkpoint.pth")).unwrap();
    let config = ck
        .infer_config(Some(ImageSize::Square(32)), Some(5))
        .unwrap();
    let model = ck.load::<A>(&config, &device).unwrap();
    let t = Tensors::open(fixture("v2l-tiny/expected.safetensors"));
    let (s, v) = t.get("input_image");
    let images = Tensor::<A, 4>::from_data(TensorData::new(v, s), &device);
    let (s, v) = t.get("input_clip");
    let clip_images = Tensor::<A, 4>::from_data(TensorData::new(v, s), &device);

    let before_enc = values(model.encoder.conv_in.weight.val());
    let before_dec = values(model.decoder.conv_out.weight.val());
    let before_cross = values(
        model
            .decoder
            .mid_cross_attn_1
            .as_ref()
            .unwrap()
            .to_q
            .weight
            .val(),
    );
    let before_qc = values(model.quant_conv.weight.val());
    let before_pqc = values(model.post_quant_conv.weight.val());
    let before_proj = values(model.projector.as_ref().unwrap().weight.val());
    let before_local = values(model.local_codebook.val());
    let before_global = values(model.global_codebook.val());
    let before_clip = values(clip_proj(&model));

    let out = model.forward(images.clone(), clip_images, 5).unwrap();
    let rec = (out.decoded - images).abs().mean();
    let loss = rec + out.local.qloss;
    let grads = loss.backward();
    let grads = GradientsParams::from_grads(grads, &model);
    let mut optim = AdamConfig::new()
        .with_beta_1(0.5)
        .with_beta_2(0.9)
        .with_epsilon(1e-7)
        .init();
    let model = optim.step(4.5e-4, model, grads);

    let changed = |a: &[f32], b: &[f32]| rel_err(a, b) > 1e-6;
    assert!(
        changed(&values(model.encoder.conv_in.weight.val()), &before_enc),
        "encoder"
    );
    assert!(
        changed(&values(model.decoder.conv_out.weight.val()), &before_dec),
        "decoder"
    );
    assert!(
        changed(
            &values(
                model
                    .decoder
                    .mid_cross_attn_1
                    .as_ref()
                    .unwrap()
                    .to_q
                    .weight
                    .val()
            ),
            &before_cross
        ),
        "cross-attention"
    );
    assert!(
        changed(&values(model.quant_conv.weight.val()), &before_qc),
        "quant_conv"
    );
    assert!(
        changed(&values(model.post_quant_conv.weight.val()), &before_pqc),
        "post_quant_conv"
    );
    assert!(
        changed(
            &values(model.projector.as_ref().unwrap().weight.val()),
            &before_proj
        ),
        "projector"
    );
    assert_eq!(
        values(model.local_codebook.val()),
        before_local,
        "local codebook must stay frozen"
    );
    assert_eq!(
        values(model.global_codebook.val()),
        before_global,
        "global codebook must stay frozen"
    );
    assert_eq!(
        values(clip_proj(&model)),
        before_clip,
        "CLIP must stay frozen"
    );
    let _ = model.num_params();
}

fn clip_proj<B: burn::tensor::backend::Backend>(
    model: &v2l_model::V2lModel<B>,
) -> burn::tensor::Tensor<B, 2> {
    match model.vl.as_ref().unwrap() {
        v2l_vl::ImageTower::Clip(v) => v.proj.val(),
        v2l_vl::ImageTower::Conse(_) => panic!("expected a CLIP tower"),
    }
}

/// The code-usage entropy term against an f64 re-implementation of its
/// formula on the host (docs/training.md, `code-entropy` mode), on the
/// golden v2l-tiny model: same local ids as `encode_local`, the same value,
/// and a gradient that reaches the encoder but not the projector.
#[test]
fn code_entropy_matches_host_formula() {
    let device = Default::default();
    let ck = OfficialCheckpoint::open(fixture("v2l-tiny/checkpoint.pth")).unwrap();
    let config = ck
        .infer_config(Some(ImageSize::Square(32)), Some(5))
        .unwrap();
    let model = ck.load::<A>(&config, &device).unwrap();
    let t = Tensors::open(fixture("v2l-tiny/expected.safetensors"));
    let (s, v) = t.get("input_image");
    let images = Tensor::<A, 4>::from_data(TensorData::new(v, s), &device);
    let settings = v2l_model::CodeEntropy {
        candidates: 7,
        temperature: 0.05,
    };
    let plain = model.encode_local(images.clone(), None).unwrap();
    let (enc, ent) = model.encode_local_with_entropy(images, &settings).unwrap();
    let ids = |x: Tensor<A, 2, burn::tensor::Int>| {
        x.into_data().convert::<i64>().to_vec::<i64>().unwrap()
    };
    assert_eq!(ids(enc.local_ids.clone()), ids(plain.local_ids));

    // Host: normalised features, squared distances to every projected row,
    // the 7 nearest, softmax(−d/τ), mean_t H(p_t) − H(mean_t p_t).
    let [b, d, h, w] = enc.quant_conv_out.dims();
    let q = values(enc.quant_conv_out.clone());
    let rows = values(model.projected_codebook());
    let k = rows.len() / d;
    let mut mean_p = vec![0f64; k];
    let mut h_sample = 0f64;
    let n = b * h * w;
    for bi in 0..b {
        for y in 0..h {
            for x in 0..w {
                let z: Vec<f64> = (0..d)
                    .map(|c| q[((bi * d + c) * h + y) * w + x] as f64)
                    .collect();
                let norm = z.iter().map(|v| v * v).sum::<f64>().sqrt();
                let z: Vec<f64> = z.iter().map(|v| v / norm).collect();
                let mut dist: Vec<(f64, usize)> = (0..k)
                    .map(|r| {
                        let dd = (0..d)
                            .map(|c| (z[c] - rows[r * d + c] as f64).powi(2))
                            .sum::<f64>();
                        (dd, r)
                    })
                    .collect();
                dist.sort_by(|a, b| a.partial_cmp(b).unwrap());
                let top = &dist[..settings.candidates];
                let logits: Vec<f64> = top
                    .iter()
                    .map(|(dd, _)| -dd / settings.temperature)
                    .collect();
                let mx = logits.iter().cloned().fold(f64::MIN, f64::max);
                let e: Vec<f64> = logits.iter().map(|l| (l - mx).exp()).collect();
                let sum: f64 = e.iter().sum();
                for (j, (_, r)) in top.iter().enumerate() {
                    let p = e[j] / sum;
                    mean_p[*r] += p / n as f64;
                    if p > 0.0 {
                        h_sample -= p * p.ln() / n as f64;
                    }
                }
            }
        }
    }
    let h_mean: f64 = mean_p
        .iter()
        .filter(|p| **p > 0.0)
        .map(|p| -p * p.ln())
        .sum();
    let want = h_sample - h_mean;
    let got = values(ent.clone())[0] as f64;
    assert!(
        (got - want).abs() <= 1e-4 * want.abs().max(1.0),
        "entropy {got} vs host {want}"
    );

    let grads = ent.backward();
    let enc_grad = model.encoder.conv_in.weight.grad(&grads);
    assert!(enc_grad.is_some(), "the encoder gets a gradient");
    let proj = model.projector.as_ref().unwrap();
    assert!(
        proj.weight.grad(&grads).is_none(),
        "the projector gets none from the entropy term"
    );

    // Bad settings are typed errors.
    let bad = v2l_model::CodeEntropy {
        candidates: 7,
        temperature: 0.0,
    };
    let (s, v) = t.get("input_image");
    let images = Tensor::<A, 4>::from_data(TensorData::new(v, s), &device);
    assert!(model.encode_local_with_entropy(images, &bad).is_err());
}
