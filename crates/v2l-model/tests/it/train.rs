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
    let before_cross = values(model.decoder.mid_cross_attn_1.to_q.weight.val());
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
            &values(model.decoder.mid_cross_attn_1.to_q.weight.val()),
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
