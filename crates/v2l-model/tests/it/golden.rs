//! The official model's golden outputs (`tests/fixtures/v2l-tiny`, produced
//! from the reference PyTorch code on a scaled-down official architecture).

use burn::tensor::backend::Backend;
use v2l_model::{ImageSize, OfficialCheckpoint};

use crate::common::{assert_close, fixture, int_rows, Tensors, B};

type F = burn::backend::Flex;

fn golden(rel: &str) -> std::path::PathBuf {
    fixture("v2l-tiny").join(rel)
}

#[test]
fn official_checkpoint_reproduces_golden_outputs() {
    run::<B>();
}

/// The CLI's CPU backend.
#[test]
fn official_checkpoint_reproduces_golden_outputs_on_flex() {
    run::<F>();
}

fn run<BK: Backend>() {
    let device = Default::default();
    let ck = OfficialCheckpoint::open(golden("checkpoint.pth")).unwrap();
    assert_eq!(ck.root_key.as_deref(), Some("state_dict"));
    assert_eq!(ck.args.image_size, Some(32));
    assert_eq!(ck.args.use_cblinear, Some(1));
    assert!(ck.has_clip());
    // Image size and k given (the pickled args say 32 too).
    let defaults = ck.infer_config(None, None).unwrap();
    assert_eq!(
        (defaults.image_size, defaults.k),
        (ImageSize::Square(128), 21)
    );
    let config = ck
        .infer_config(Some(ImageSize::Square(32)), Some(5))
        .unwrap();
    let dd = &config.ddconfig;
    assert_eq!(config.image_size, ImageSize::Square(32));
    assert_eq!(
        (dd.ch, dd.ch_mult.clone(), dd.num_res_blocks, dd.z_channels),
        (32, vec![1, 2], 1, 32)
    );
    assert!(
        dd.attn_resolutions.is_empty(),
        "no level attention in the file"
    );
    assert_eq!(
        (config.embed_dim, config.n_local, config.n_global, config.k),
        (768, 500, 120, 5)
    );
    assert_eq!(
        (config.cross_attn_heads, config.cross_attn_dim_head()),
        (8, 64)
    );
    assert!(config.use_projector && config.normalize_features);
    let model = ck.load::<BK>(&config, &device).unwrap();
    let vc = model.config().clip_vision().cloned().unwrap();
    assert_eq!(
        (
            vc.width,
            vc.layers,
            vc.heads,
            vc.patch_size,
            vc.input_resolution,
            vc.output_dim
        ),
        (64, 2, 1, 8, 32, 768)
    );

    let t = Tensors::open(golden("expected.safetensors"));
    let images = t.tensor_on::<BK, 4>("input_image");
    let local = model.encode_local(images, None).unwrap();
    assert_eq!(local.grid, (16, 16));
    assert_close(
        "encoder_out",
        local.encoder_out.clone(),
        &t,
        "encoder_out",
        1e-4,
    );
    assert_close(
        "quant_conv_out",
        local.quant_conv_out.clone(),
        &t,
        "quant_conv_out",
        1e-4,
    );
    assert_eq!(
        int_rows(local.local_ids.clone()),
        t.rows("local_ids"),
        "local ids"
    );
    assert_close("quantized", local.quantized.clone(), &t, "quantized", 1e-4);
    assert_close("qloss", local.qloss.clone(), &t, "qloss", 1e-4);
    assert_close(
        "projected_codebook",
        model.projected_codebook(),
        &t,
        "projected_codebook",
        1e-4,
    );

    // Global branch from our CLIP tower on the golden CLIP input.
    let embedding = model
        .image_embedding(t.tensor_on::<BK, 4>("input_clip"))
        .unwrap();
    let global = model.encode_global(embedding, 5, None).unwrap();
    assert_eq!(
        int_rows(global.global_ids.clone()),
        t.rows("global_ids"),
        "global ids"
    );

    let decoded = model.decode(local.quantized, global.context).unwrap();
    assert_close("decoded", decoded, &t, "decoded", 1e-4);
    let from_ids = model
        .decode_ids(local.local_ids, (16, 16), global.global_ids, None)
        .unwrap();
    assert_close("decoded_from_ids", from_ids, &t, "decoded_from_ids", 1e-4);
}
