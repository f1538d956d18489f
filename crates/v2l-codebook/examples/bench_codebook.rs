//! Throughput and memory of codebook construction (run by
//! `scripts/bench_codebook.sh`, which records peak RSS per process).
//!
//! ```text
//! bench_codebook embed <tiny|b32|l14> <entries>   # 80-template CLIP text embedding, random weights
//! bench_codebook expand <entries> <batch>         # SmolLM2-135M expansion (both steps), faithful
//! bench_codebook memory <entries> [templates]     # embed_chunked + streamed save, tiny CLIP
//!                                                 # (templates: 80, or 1 for a quick curve)
//! ```
//! Entries are LLaMA-2's token texts (the `llama2-vocab` asset) in id order,
//! repeated with a numeric suffix past 32,000. Prints one JSON line.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::Instant;

use burn::backend::Flex;
use v2l_clip::{Clip, ClipConfig, ClipTokenizer};
use v2l_codebook::expand::{Expander, ExpansionMode, LlamaNext};
use v2l_codebook::vocab::vocabulary_texts;
use v2l_codebook::{Precision, TemplateEmbedder};
use v2l_llm::tokenizer::LlmTokenizer;
use v2l_llm::Llama;

type B = Flex;

fn asset(name: &str, file: &str) -> PathBuf {
    v2l_assets::fetch::test_asset(name, file)
        .unwrap()
        .unwrap_or_else(|| panic!("run `v2l assets fetch {name}` first"))
}

fn llama2() -> LlmTokenizer {
    LlmTokenizer::from_llama_tokenizer_js(asset("llama2-vocab", "llama-tokenizer.js")).unwrap()
}

fn entries(n: usize) -> Vec<String> {
    let base = vocabulary_texts(&llama2()).unwrap();
    (0..n)
        .map(|i| {
            let t = &base[i % base.len()];
            if i < base.len() {
                t.clone()
            } else {
                format!("{t}{}", i / base.len())
            }
        })
        .collect()
}

fn manifest(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let device = Default::default();
    match args.first().map(String::as_str) {
        Some("embed") => {
            let size = args[1].as_str();
            let n: usize = args[2].parse().unwrap();
            let (clip, tok) = match size {
                "tiny" => (
                    Clip::<B>::load(
                        manifest("../v2l-clip/tests/fixtures/model/tiny_openai.pth"),
                        &device,
                    )
                    .unwrap(),
                    ClipTokenizer::from_bpe_file(manifest("tests/fixtures/templates/tiny_bpe.txt"))
                        .unwrap(),
                ),
                "b32" | "l14" => {
                    let cfg = if size == "b32" {
                        ClipConfig::vit_b_32()
                    } else {
                        ClipConfig::vit_l_14()
                    };
                    (
                        Clip::<B>::random(cfg, 0, &device).unwrap(),
                        ClipTokenizer::from_bpe_file(asset(
                            "clip-bpe",
                            "bpe_simple_vocab_16e6.txt.gz",
                        ))
                        .unwrap(),
                    )
                }
                other => panic!("unknown size {other}"),
            };
            let e = entries(n);
            let embedder = TemplateEmbedder::new(&clip, &tok).unwrap();
            // Warm-up on one entry.
            embedder.embed(&e[..1]).unwrap();
            let t = Instant::now();
            let rows = embedder.embed(&e).unwrap();
            let s = t.elapsed().as_secs_f64();
            assert_eq!(rows.len(), n * embedder.dim());
            println!(
                "{{\"bench\":\"embed\",\"clip\":\"{size}\",\"entries\":{n},\"seconds\":{s:.3},\"entries_per_s\":{:.3},\"prompts_per_s\":{:.1}}}",
                n as f64 / s,
                80.0 * n as f64 / s
            );
        }
        Some("expand") => {
            let n: usize = args[1].parse().unwrap();
            let batch: usize = args[2].parse().unwrap();
            let path = asset("smollm2-135m", "SmolLM2-135M-Instruct.Q4_1.gguf");
            let gguf = v2l_llm::gguf::GgufFile::open(&path).unwrap();
            let tok = LlmTokenizer::from_gguf(&gguf).unwrap();
            let model = Llama::<B>::open(&path, &device).unwrap();
            // Ids spread over the vocabulary.
            let step = tok.vocab_size() / n;
            let ids: Vec<u32> = (0..n).map(|i| (i * step) as u32).collect();
            let exp = Expander::new(&tok, ExpansionMode::Faithful);
            exp.expand(&ids[..1], &mut LlamaNext::new(&model, batch))
                .unwrap();
            let t = Instant::now();
            let out = exp
                .expand(&ids, &mut LlamaNext::new(&model, batch))
                .unwrap();
            let s = t.elapsed().as_secs_f64();
            assert_eq!(out.len(), n);
            println!(
                "{{\"bench\":\"expand\",\"llm\":\"SmolLM2-135M Q4_1\",\"entries\":{n},\"batch\":{batch},\"seconds\":{s:.3},\"entries_per_s\":{:.3}}}",
                n as f64 / s
            );
        }
        Some("memory") => {
            let n: usize = args[1].parse().unwrap();
            let templates: usize = args.get(2).map_or(80, |t| t.parse().unwrap());
            let clip = Clip::<B>::load(
                manifest("../v2l-clip/tests/fixtures/model/tiny_openai.pth"),
                &device,
            )
            .unwrap();
            let tok =
                ClipTokenizer::from_bpe_file(manifest("tests/fixtures/templates/tiny_bpe.txt"))
                    .unwrap();
            let e = entries(n);
            let dir =
                std::env::temp_dir().join(format!("v2l-bench-memory-{n}-{}", std::process::id()));
            let mut embedder = TemplateEmbedder::new(&clip, &tok)
                .unwrap()
                .truncation(v2l_clip::Truncation::Truncate);
            if templates != 80 {
                embedder = embedder
                    .with_templates(
                        v2l_codebook::IMAGENET_TEMPLATES[..templates]
                            .iter()
                            .map(|s| s.to_string())
                            .collect(),
                    )
                    .unwrap();
            }
            let t = Instant::now();
            let chunks = embedder
                .embed_chunked(&e, dir.join("work"), "tiny", 512, &mut |_| {})
                .unwrap();
            chunks
                .save(
                    dir.join("out.safetensors"),
                    Precision::F16,
                    Some(e.clone()),
                    None,
                    serde_json::Value::Null,
                )
                .unwrap();
            let s = t.elapsed().as_secs_f64();
            std::fs::remove_dir_all(&dir).ok();
            println!(
                "{{\"bench\":\"memory\",\"entries\":{n},\"templates\":{templates},\"seconds\":{s:.3},\"entries_per_s\":{:.1}}}",
                n as f64 / s
            );
        }
        _ => eprintln!(
            "usage: bench_codebook embed <tiny|b32|l14> <n> | expand <n> <batch> | memory <n>"
        ),
    }
}
