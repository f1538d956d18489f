//! Prefill and decode throughput and peak memory of SmolLM2-135M-Instruct
//! (the cached GGUF asset) on the CPU backends, shaped like the reference
//! run in `scripts/gen_llm_fixtures.py --bench` (128-token prompt, then 64
//! greedy single-token steps with the KV cache; best wall time of 5).
//! Run through `scripts/bench_llm.sh`, which times transformers in the same
//! session. Prints one JSON line per backend.

use std::time::Instant;

use burn::backend::{Flex, NdArray};
use burn::tensor::backend::Backend;
use v2l_llm::gguf::GgufFile;
use v2l_llm::tokenizer::{AddSpecial, LlmTokenizer};
use v2l_llm::Llama;

const REPS: usize = 5;

fn rss_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn argmax(v: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best as u32
}

fn run<B: Backend>(
    name: &str,
    path: &std::path::Path,
    ids: &[u32],
) -> Result<(), Box<dyn std::error::Error>> {
    let device = Default::default();
    let t0 = Instant::now();
    let model = Llama::<B>::open(path, &device)?;
    let load_s = t0.elapsed().as_secs_f64();
    let (rss_loaded, _) = rss_kib();
    let prompt = vec![ids.to_vec()];
    // Warm-up.
    model.next_logits(&prompt, &mut model.new_cache())?;
    let mut prefill = f64::INFINITY;
    let mut decode = f64::INFINITY;
    for _ in 0..REPS {
        let mut cache = model.new_cache();
        let t = Instant::now();
        let logits = model.next_logits(&prompt, &mut cache)?;
        prefill = prefill.min(t.elapsed().as_secs_f64());
        let mut next = argmax(&logits[0]);
        let t = Instant::now();
        for _ in 0..64 {
            let l = model.next_logits(&[vec![next]], &mut cache)?;
            next = argmax(&l[0]);
        }
        decode = decode.min(t.elapsed().as_secs_f64());
    }
    let (_, hwm) = rss_kib();
    println!(
        "{{\"bench\":\"v2l_{name}_smollm2_135m_f32\",\"threads\":{},\"load_s\":{load_s:.3},\"prefill_tokens\":128,\"prefill_s\":{prefill:.4},\"prefill_tok_per_s\":{:.1},\"decode_tokens\":64,\"decode_s\":{decode:.4},\"decode_tok_per_s\":{:.2},\"rss_loaded_mib\":{:.0},\"peak_rss_mib\":{:.0}}}",
        std::thread::available_parallelism().map_or(1, |p| p.get()),
        128.0 / prefill,
        64.0 / decode,
        rss_loaded as f64 / 1024.0,
        hwm as f64 / 1024.0
    );
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let Some(path) =
        v2l_assets::fetch::test_asset("smollm2-135m", "SmolLM2-135M-Instruct.Q4_1.gguf")?
    else {
        return Err("run `v2l assets fetch smollm2-135m` first".into());
    };
    let tok = LlmTokenizer::from_gguf(&GgufFile::open(&path)?)?;
    let text = "The history of astronomy is long and rich. Ancient peoples watched the sky to keep calendars, \
                to navigate and to tell stories. "
        .repeat(12);
    let ids = tok.encode(&text, AddSpecial::ModelDefault)?;
    let ids = ids
        .get(..128)
        .ok_or("prompt shorter than 128 tokens")?
        .to_vec();
    let which = std::env::args().nth(1).unwrap_or_else(|| "both".into());
    if which == "ndarray" || which == "both" {
        run::<NdArray>("ndarray", &path, &ids)?;
    }
    if which == "flex" || which == "both" {
        run::<Flex>("flex", &path, &ids)?;
    }
    Ok(())
}
