//! Writes a small bundle of a seeded random V2L tokenizer and the outputs the
//! writing code computes for a fixed input, for the bundle-compatibility test.
//!
//! The committed fixture `tests/fixtures/legacy-bundle/` was written by this
//! program at commit `eb0201b`, before the weight-loading layer replaced the
//! model's own loaders; the test loads it with today's code and compares.
//!
//! ```text
//! cargo run --profile fast -p v2l-model --example write_legacy_bundle -- OUT_DIR
//! ```

use std::collections::HashMap;

use burn::backend::NdArray;
use burn::tensor::{Tensor, TensorData};
use v2l_model::bundle::{write_bundle, BundleExtras};
use v2l_model::{DdConfig, ImageSize, ModelConfig, V2lModel};

type B = NdArray;

fn config() -> ModelConfig {
    ModelConfig {
        image_size: ImageSize::Square(16),
        ddconfig: DdConfig {
            double_z: false,
            z_channels: 8,
            resolution: 16,
            in_channels: 3,
            out_ch: 3,
            ch: 32,
            ch_mult: vec![1, 1],
            num_res_blocks: 1,
            attn_resolutions: vec![8],
            dropout: 0.0,
        },
        embed_dim: 16,
        n_local: 50,
        n_global: 20,
        k: 3,
        vl: None,
        use_projector: true,
        normalize_features: true,
        cross_attn_heads: 8,
        cross_attn_dim_head: None,
        codebook_loss_weight: 0.33,
        fixed_global_ids: false,
        cross_attention: true,
    }
}

/// A deterministic input in [-1, 1]: `sin` of the flat index.
fn input<Bk: burn::tensor::backend::Backend>(device: &Bk::Device) -> Tensor<Bk, 4> {
    let shape = [2, 3, 16, 16];
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n).map(|i| ((i as f32) * 0.37).sin()).collect();
    Tensor::from_data(TensorData::new(v, shape), device)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = std::env::args()
        .nth(1)
        .ok_or("usage: write_legacy_bundle OUT_DIR")?;
    let out = std::path::Path::new(&out);
    let device = Default::default();
    let model = V2lModel::<B>::random(&config(), 20261202, &device)?;
    let words: Vec<String> = (0..20).map(|i| format!("w{i}")).collect();
    let extras = BundleExtras {
        clip: None,
        global_words: Some(&words),
        provenance: serde_json::json!({"written_by": "write_legacy_bundle"}),
    };
    let bundle = out.join("bundle");
    write_bundle(&bundle, &model, &extras)?;

    let x = input::<B>(&device);
    let local = model.encode_local(x.clone(), None)?;
    let global_ids = Tensor::<B, 2, burn::tensor::Int>::from_data(
        TensorData::new(vec![0i64, 5, 19, 7, 3, 11], [2, 3]),
        &device,
    );
    let decoded = model.decode_ids(local.local_ids.clone(), local.grid, global_ids, None)?;
    let f32s = |t: Vec<f32>| t.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>();
    let host4 = |t: Tensor<B, 4>| -> Result<(Vec<usize>, Vec<f32>), String> {
        let dims = t.dims().to_vec();
        let v = t.into_data().convert::<f32>().into_vec::<f32>();
        Ok((dims, v.map_err(|e| format!("{e:?}"))?))
    };
    let ids_shape = local.local_ids.dims().to_vec();
    let ids: Vec<f32> = local
        .local_ids
        .into_data()
        .convert::<i64>()
        .into_vec::<i64>()
        .map_err(|e| format!("{e:?}"))?
        .into_iter()
        .map(|v| v as f32)
        .collect();
    let (sq, vq) = host4(local.quantized)?;
    let (sd, vd) = host4(decoded)?;
    let tensors: Vec<(String, Vec<usize>, Vec<u8>)> = vec![
        ("local_ids".into(), ids_shape, f32s(ids)),
        ("quantized".into(), sq, f32s(vq)),
        ("decoded".into(), sd, f32s(vd)),
    ];
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = tensors
        .iter()
        .map(|(k, s, b)| {
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b)
                .map(|v| (k.clone(), v))
        })
        .collect::<Result<_, _>>()?;
    safetensors::serialize_to_file(
        views,
        None::<HashMap<String, String>>,
        &out.join("expected.safetensors"),
    )?;
    println!("wrote {}", out.display());
    Ok(())
}
