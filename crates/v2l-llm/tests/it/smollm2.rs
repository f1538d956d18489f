//! SmolLM2-135M-Instruct (real weights, GGUF Q4_1/Q8_0, fetched through
//! v2l-assets) against transformers loading the same GGUF (reference values
//! from `scripts/gen_llm_fixtures.py`). Skipped when the asset is not cached.
//! Runs the real 135M model: ~10 s in the fast test profile.

use std::path::PathBuf;

use burn::backend::NdArray;
use v2l_assets::readers::tensors::{SafetensorsFile, TensorSource};
use v2l_llm::Llama;

type B = NdArray;

fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/smollm2")
        .join(rel)
}

fn ids(v: &serde_json::Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

fn floats(v: &serde_json::Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

#[test]
fn smollm2_logits_and_greedy_match_transformers() {
    let Some(path) =
        v2l_assets::fetch::test_asset("smollm2-135m", "SmolLM2-135M-Instruct.Q4_1.gguf").unwrap()
    else {
        return;
    };
    let model = Llama::<B>::open(&path, &Default::default()).unwrap();
    let c = &model.config;
    assert_eq!(
        (
            c.num_layers,
            c.hidden_size,
            c.num_heads,
            c.num_kv_heads,
            c.vocab_size
        ),
        (30, 576, 9, 3, 49152)
    );
    assert!(model.lm_head.is_none(), "SmolLM2 ties its output head");
    let reference: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("reference.json")).unwrap()).unwrap();
    let vocab = c.vocab_size;
    // Tolerance on logits (magnitudes up to ~30): the reference's own f32-vs-f64
    // noise is 4.6e-5; allow 1e-3 absolute.
    const ATOL: f64 = 1e-3;
    for p in reference["prompts"].as_array().unwrap() {
        let name = p["name"].as_str().unwrap();
        let prompt = ids(&p["input_ids"]);
        let mut cache = model.new_cache();
        let logits = model
            .forward(std::slice::from_ref(&prompt), &mut cache)
            .unwrap()
            .logits
            .into_data()
            .to_vec::<f32>()
            .unwrap();
        let t = prompt.len();
        // Per-position summary statistics.
        let pp = &p["per_position"];
        let (means, maxes, argmaxes) =
            (floats(&pp["mean"]), floats(&pp["max"]), ids(&pp["argmax"]));
        let mut worst = 0f64;
        for pos in 0..t {
            let row = &logits[pos * vocab..(pos + 1) * vocab];
            let mean = row.iter().map(|&x| x as f64).sum::<f64>() / vocab as f64;
            let (am, mx) =
                row.iter()
                    .enumerate()
                    .fold((0usize, f32::NEG_INFINITY), |b, (i, &x)| {
                        if x > b.1 {
                            (i, x)
                        } else {
                            b
                        }
                    });
            worst = worst
                .max((mean - means[pos]).abs())
                .max((mx as f64 - maxes[pos]).abs());
            assert_eq!(am as u32, argmaxes[pos], "{name} position {pos} argmax");
        }
        // Top-20 of the last position: values within ATOL, ids in order
        // except where neighbours are closer than the tolerance.
        let last = &logits[(t - 1) * vocab..t * vocab];
        let top_ids = ids(&p["last_top20_ids"]);
        let top_vals = floats(&p["last_top20_values"]);
        for (&id, &v) in top_ids.iter().zip(&top_vals) {
            worst = worst.max((last[id as usize] as f64 - v).abs());
        }
        println!("{name}: max |Δ| over checked logits = {worst:.2e}");
        assert!(worst < ATOL, "{name}: {worst}");

        // Greedy 32-token continuation (KV cache), identical to transformers'
        // generate(do_sample=False). The reference's smallest top-1/top-2 gap
        // is recorded; a divergence would only be acceptable below 1e-3.
        let want = ids(&p["greedy_32"]);
        let mut got = Vec::new();
        let mut next = last.to_vec();
        for _ in 0..want.len() {
            let id = next
                .iter()
                .enumerate()
                .fold((0usize, f32::NEG_INFINITY), |b, (i, &x)| {
                    if x > b.1 {
                        (i, x)
                    } else {
                        b
                    }
                })
                .0 as u32;
            got.push(id);
            next = model
                .forward(&[vec![id]], &mut cache)
                .unwrap()
                .logits
                .into_data()
                .to_vec::<f32>()
                .unwrap();
        }
        assert_eq!(
            got, want,
            "{name}: greedy continuation (min reference gap {})",
            p["greedy_min_gap"]
        );
    }

    // Prompt 1's full last-position logits against transformers in float64.
    let st = SafetensorsFile::open(fixture("logits_p1.safetensors")).unwrap();
    let (_, want) = st.read_f32("logits_last_f64").unwrap();
    let (_, prompt) = st.read_f32("input_ids").unwrap();
    let prompt: Vec<u32> = prompt.iter().map(|&x| x as u32).collect();
    let logits = model
        .forward(std::slice::from_ref(&prompt), &mut model.new_cache())
        .unwrap()
        .logits
        .into_data()
        .to_vec::<f32>()
        .unwrap();
    let last = &logits[(prompt.len() - 1) * vocab..];
    let max_abs = last
        .iter()
        .zip(&want)
        .map(|(a, b)| (a - b).abs() as f64)
        .fold(0.0, f64::max);
    println!("p1 full last-position logits vs float64: max |Δ| = {max_abs:.2e}");
    assert!(max_abs < ATOL, "{max_abs}");
}
