//! Parity of both towers with HF transformers / OpenAI CLIP on tiny random
//! models (fixtures from `scripts/gen_clip_model_fixtures.py`; references
//! computed in float64), for every weight layout and file format.

use v2l_clip::{Clip, ClipError, LoadOptions, OutputOptions, TextPooling};

use crate::common::{assert_close, fixture, host, rel_err, Tensors, B};

const TOL: f64 = 1e-4;

fn io() -> Tensors {
    Tensors::open(fixture("model/tiny_io.safetensors"))
}

fn check_embeddings(clip: &Clip<B>, io: &Tensors, suffix: &str) {
    let images = io.tensor::<4>("pixel_values");
    let rows = io.rows("input_ids");
    if clip.vision().is_some() {
        let key = format!("image_embeds{suffix}");
        assert_close(&key, clip.encode_image(images).unwrap(), io.get(&key), TOL);
    }
    if clip.text().is_some() {
        let key = format!("text_embeds{suffix}");
        assert_close(&key, clip.encode_text(&rows).unwrap(), io.get(&key), TOL);
    }
}

#[test]
fn hf_layout_matches_transformers_with_hidden_states() {
    let device = Default::default();
    let clip = Clip::<B>::load(fixture("model/tiny_hf"), &device).unwrap();
    let (v, t) = (
        clip.config().vision.clone().unwrap(),
        clip.config().text.clone().unwrap(),
    );
    assert_eq!(
        (
            v.width,
            v.heads,
            v.layers,
            v.mlp_width(),
            v.input_resolution
        ),
        (128, 2, 2, 256, 32)
    );
    assert_eq!(
        (t.width, t.heads, t.vocab_size, t.context_length),
        (128, 2, 1000, 77)
    );
    // transformers pools at the first EOS (id 999) when eos_token_id != 2.
    assert_eq!(t.pooling, TextPooling::FirstEos(999));

    let io = io();
    check_embeddings(&clip, &io, "");

    let opts = OutputOptions {
        hidden_states: true,
        patch_tokens: true,
    };
    let out = clip
        .vision_forward(io.tensor::<4>("pixel_values"), opts)
        .unwrap();
    assert_close("vision_pooled", out.pooled, io.get("vision_pooled"), TOL);
    assert_close(
        "vision_patch_embeds",
        out.patch_embeds.unwrap(),
        io.get("vision_patch_embeds"),
        TOL,
    );
    let hs = io.get("vision_hidden_states");
    assert_eq!(out.hidden_states.len(), hs.0[0]);
    let per = hs.1.len() / hs.0[0];
    for (i, h) in out.hidden_states.into_iter().enumerate() {
        let want = (hs.0[1..].to_vec(), hs.1[i * per..(i + 1) * per].to_vec());
        assert_close(&format!("vision_hidden_states[{i}]"), h, want, TOL);
    }

    let rows = io.rows("input_ids");
    // Rows whose EOS is early are cut before the forward pass (positions 6
    // and 21 → 22 positions instead of 77); the embeddings are unchanged.
    let (shape, want) = io.get("text_embeds");
    let two = (vec![2, shape[1]], want[..2 * shape[1]].to_vec());
    assert_close(
        "text_embeds (cut rows)",
        clip.encode_text(&rows[..2]).unwrap(),
        two,
        TOL,
    );
    let out = clip.text_forward(&rows, opts).unwrap();
    assert_eq!(out.pooled_positions, vec![6, 21, 76]);
    assert_close(
        "text_last_hidden",
        out.last_hidden,
        io.get("text_last_hidden"),
        TOL,
    );
    let hs = io.get("text_hidden_states");
    assert_eq!(out.hidden_states.len(), hs.0[0]);
    let per = hs.1.len() / hs.0[0];
    for (i, h) in out.hidden_states.into_iter().enumerate() {
        let want = (hs.0[1..].to_vec(), hs.1[i * per..(i + 1) * per].to_vec());
        assert_close(&format!("text_hidden_states[{i}]"), h, want, TOL);
    }
}

#[test]
fn openai_layout_pth_matches() {
    let device = Default::default();
    let clip = Clip::<B>::load(fixture("model/tiny_openai.pth"), &device).unwrap();
    let t = clip.config().text.clone().unwrap();
    // OpenAI's rule (argmax id) — the same positions here, since EOT is the largest id.
    assert_eq!(t.pooling, TextPooling::ArgmaxId);
    assert_eq!(
        clip.config().vision.as_ref().unwrap().heads,
        2,
        "heads = width / 64"
    );
    check_embeddings(&clip, &io(), "");
}

#[test]
fn openai_layout_f16_safetensors_matches_f16_rounded_reference() {
    let device = Default::default();
    let clip = Clip::<B>::load(fixture("model/tiny_openai_f16.safetensors"), &device).unwrap();
    check_embeddings(&clip, &io(), "_f16w");
}

#[test]
fn v2l_style_checkpoint_vision_tower_under_prefix() {
    let device = Default::default();
    let path = fixture("model/tiny_v2l_style.pth");
    let source = v2l_clip::weights::open_source(&path).unwrap();
    let layout = v2l_clip::Layout::detect(source.as_ref()).unwrap();
    assert_eq!(
        layout,
        v2l_clip::Layout::OpenAi {
            vision: Some("state_dict.global_encoder.".into()),
            text: None
        }
    );
    let clip = Clip::<B>::load(&path, &device).unwrap();
    assert!(clip.text().is_none());
    check_embeddings(&clip, &io(), "_f16w");
}

#[test]
fn heads_inferred_as_width_over_64_can_be_overridden() {
    let device = Default::default();
    let io = Tensors::open(fixture("model/heads4_io.safetensors"));
    let images = || io.tensor::<4>("pixel_values");
    let rows = io.rows("input_ids");

    // HF folder: config.json says 4 heads.
    let hf = Clip::<B>::load(fixture("model/heads4_hf"), &device).unwrap();
    assert_eq!(hf.config().vision.as_ref().unwrap().heads, 4);
    assert_close(
        "hf image",
        hf.encode_image(images()).unwrap(),
        io.get("image_embeds"),
        TOL,
    );
    assert_close(
        "hf text",
        hf.encode_text(&rows).unwrap(),
        io.get("text_embeds"),
        TOL,
    );

    // OpenAI file: build_model's rule gives 64 / 64 = 1 head, which is wrong here.
    let path = fixture("model/heads4_openai.pth");
    let inferred = Clip::<B>::load(&path, &device).unwrap();
    assert_eq!(inferred.config().text.as_ref().unwrap().heads, 1);
    let (_, got) = host(inferred.encode_text(&rows).unwrap());
    assert!(rel_err(&got, &io.get("text_embeds").1) > 1e-2);

    let opts = LoadOptions {
        vision_heads: Some(4),
        text_heads: Some(4),
        ..Default::default()
    };
    let fixed = Clip::<B>::load_with(&path, &opts, &device).unwrap();
    assert_close(
        "override image",
        fixed.encode_image(images()).unwrap(),
        io.get("image_embeds"),
        TOL,
    );
    assert_close(
        "override text",
        fixed.encode_text(&rows).unwrap(),
        io.get("text_embeds"),
        TOL,
    );
}

#[test]
fn bad_weights_and_inputs_are_typed_errors() {
    let device = Default::default();
    let path = fixture("model/tiny_openai.pth");

    // A configuration whose output dim disagrees with the file: the error names
    // the file's key and both shapes.
    let clip = Clip::<B>::load(&path, &device).unwrap();
    let mut config = clip.config().clone();
    config.vision.as_mut().unwrap().output_dim = 32;
    let opts = LoadOptions {
        config: Some(config),
        ..Default::default()
    };
    match Clip::<B>::load_with(&path, &opts, &device) {
        Err(ClipError::Weights(report)) => {
            assert_eq!(report.shapes.len(), 1, "{report}");
            let s = &report.shapes[0];
            assert_eq!(s.key, "visual.proj");
            assert_eq!(
                (s.expected.clone(), s.found.clone()),
                (vec![128, 32], vec![128, 64])
            );
        }
        other => panic!("expected a shape problem, got {other:?}"),
    }

    // A missing tensor: drop one key from an HF file.
    let dir = tempfile::tempdir().unwrap();
    let src = v2l_clip::weights::SafetensorsFile::open(fixture("model/tiny_hf/model.safetensors"))
        .unwrap();
    write_without(
        &src,
        "text_model.encoder.layers.1.self_attn.k_proj.bias",
        &dir.path().join("model.safetensors"),
    );
    std::fs::copy(
        fixture("model/tiny_hf/config.json"),
        dir.path().join("config.json"),
    )
    .unwrap();
    match Clip::<B>::load(dir.path(), &device) {
        Err(ClipError::Weights(report)) => assert_eq!(
            report.missing,
            vec!["text_model.encoder.layers.1.self_attn.k_proj.bias".to_string()]
        ),
        other => panic!("expected a missing tensor, got {other:?}"),
    }

    // Not CLIP at all.
    let golden_like = dir.path().join("other.safetensors");
    write_only(&src, "logit_scale", &golden_like);
    assert!(matches!(
        Clip::<B>::load(&golden_like, &device),
        Err(ClipError::UnknownLayout { .. })
    ));
    assert!(matches!(
        Clip::<B>::load(dir.path().join("absent.pth"), &device),
        Err(ClipError::Read(v2l_assets::readers::ReadError::Io { .. }))
    ));

    // Inputs.
    let bad = burn::tensor::Tensor::<B, 4>::zeros([1, 3, 16, 32], &device);
    assert!(matches!(
        clip.encode_image(bad),
        Err(ClipError::InvalidInput(_))
    ));
    assert!(matches!(
        clip.encode_text(&[vec![998, 1000, 999]]),
        Err(ClipError::TokenOutOfRange {
            id: 1000,
            row: 0,
            vocab_size: 1000
        })
    ));
    assert!(matches!(
        clip.encode_text(&[vec![1; 78]]),
        Err(ClipError::InvalidInput(_))
    ));
    assert!(matches!(
        clip.encode_text(&[vec![1; 3], vec![1; 4]]),
        Err(ClipError::InvalidInput(_))
    ));
    assert!(matches!(
        clip.encode_text(&[]),
        Err(ClipError::InvalidInput(_))
    ));
}

fn write_filtered(
    src: &v2l_clip::weights::SafetensorsFile,
    keep: impl Fn(&str) -> bool,
    out: &std::path::Path,
) {
    use v2l_clip::TensorSource;
    let mut tensors = Vec::new();
    for k in src.keys() {
        if keep(&k) {
            let (shape, data) = src.read_f32(&k).unwrap();
            let bytes: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
            tensors.push((k, shape, bytes));
        }
    }
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = tensors
        .iter()
        .map(|(k, s, b)| {
            (
                k.clone(),
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b)
                    .unwrap(),
            )
        })
        .collect();
    safetensors::serialize_to_file(views, None, out).unwrap();
}

fn write_without(src: &v2l_clip::weights::SafetensorsFile, drop: &str, out: &std::path::Path) {
    write_filtered(src, |k| k != drop, out);
}

fn write_only(src: &v2l_clip::weights::SafetensorsFile, only: &str, out: &std::path::Path) {
    write_filtered(src, |k| k == only, out);
}
