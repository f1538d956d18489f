//! How much `--precision f16` changes what the tokenizer and the LLM emit:
//! global top-k ids and greedy tokens, f16 against f32, on the golden models
//! (the official-format tiny V2L checkpoint and the tiny Meta-format LLaMA of
//! the test fixtures) and on the default model (its bundle on Fashion-MNIST
//! test images, SmolLM2-135M). Runs on burn's Flex CPU backend; the numbers
//! are recorded in `docs/reliability.md`.
//!
//! ```sh
//! cargo run --release -p v2l-examples --example precision -- [IMAGES] [PROMPTS]
//! ```
//!
//! `IMAGES` (default 500) Fashion-MNIST test images are encoded; `PROMPTS`
//! (default 50) of them become SmolLM2 prompts ("Words: w1, w2, …" and a
//! question), each decoded greedily for 16 tokens. The golden LLaMA decodes
//! 32 tokens from 16 seeded random prompts.

use std::path::PathBuf;

use rand::{Rng, SeedableRng};
use v2l::backend::{CpuFlex as B, Precision};
use v2l::burn::tensor::{Tensor, TensorData};
use v2l::llm::tokenizer::{AddSpecial, LlmTokenizer};
use v2l::llm::{GenerateOptions, Llama, LlamaWeights};
use v2l::model::image::{DynamicImage, GrayImage};
use v2l::model::{OpenOptions, V2lTokenizer};

type Error = Box<dyn std::error::Error>;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Positions (rank-wise) and set members that differ between id rows.
#[derive(Default, Debug)]
struct IdDiff {
    rows: usize,
    ids: usize,
    positions: usize,
    members: usize,
    rows_changed: usize,
}

impl IdDiff {
    fn add(&mut self, a: &[Vec<u32>], b: &[Vec<u32>]) {
        for (x, y) in a.iter().zip(b) {
            self.rows += 1;
            self.ids += x.len();
            let pos = x.iter().zip(y).filter(|(p, q)| p != q).count();
            let mem = x.iter().filter(|id| !y.contains(id)).count();
            self.positions += pos;
            self.members += mem;
            self.rows_changed += usize::from(pos > 0);
        }
    }

    fn report(&self, what: &str) {
        println!(
            "{what}: {} rows × k = {} ids; {} ids at another rank ({:.2} %), {} ids not in the other top-k ({:.2} %), {} rows with any change",
            self.rows,
            self.ids,
            self.positions,
            100.0 * self.positions as f64 / self.ids.max(1) as f64,
            self.members,
            100.0 * self.members as f64 / self.ids.max(1) as f64,
            self.rows_changed
        );
    }
}

/// Greedy continuations of `prompts` in both precisions: (tokens, differing
/// tokens counted from the first divergence, sequences that diverge).
fn greedy_diff(
    m32: &Llama<B>,
    m16: &Llama<B>,
    prompts: &[Vec<u32>],
    steps: usize,
) -> Result<(usize, usize, usize), Error> {
    let opts = GenerateOptions {
        max_tokens: steps,
        ..Default::default()
    };
    let (mut total, mut differ, mut seqs) = (0, 0, 0);
    for p in prompts {
        let a = &m32.generate(std::slice::from_ref(p), &opts, None)?[0].tokens;
        let b = &m16.generate(std::slice::from_ref(p), &opts, None)?[0].tokens;
        total += a.len().max(b.len());
        if let Some(first) = (0..a.len().max(b.len())).find(|&i| a.get(i) != b.get(i)) {
            differ += a.len().max(b.len()) - first;
            seqs += 1;
        }
    }
    Ok((total, differ, seqs))
}

fn tensor(shape: Vec<usize>, data: Vec<f32>) -> Tensor<B, 4> {
    Tensor::from_data(TensorData::new(data, shape), &Default::default())
}

fn golden() -> Result<(), Error> {
    use v2l::io::tensors::{SafetensorsFile, TensorSource};
    let dir = root().join("crates/v2l-model/tests/fixtures/v2l-tiny");
    let expected = SafetensorsFile::open(dir.join("expected.safetensors"))?;
    let (s_img, img) = expected.read_f32("input_image")?;
    let (s_clip, clip) = expected.read_f32("input_clip")?;
    let (_, want) = expected.read_f32("global_ids")?;
    let k = 5;
    let mut ids = Vec::new();
    for precision in [Precision::F32, Precision::F16] {
        let options = OpenOptions {
            global_tokens: Some(k),
            precision,
            ..Default::default()
        };
        let t = V2lTokenizer::<B>::open(dir.join("checkpoint.pth"), &options, &Default::default())?;
        let tokens = t.encode_tensors(
            tensor(s_img.clone(), img.clone()),
            tensor(s_clip.clone(), clip.clone()),
        )?;
        ids.push(tokens.global_ids);
    }
    let want: Vec<Vec<u32>> = want
        .chunks(k)
        .map(|r| r.iter().map(|&v| v as u32).collect())
        .collect();
    let mut d = IdDiff::default();
    d.add(&ids[0], &ids[1]);
    d.report("golden V2L (v2l-tiny, official checkpoint) global top-5, f16 vs f32");
    let mut r = IdDiff::default();
    r.add(&ids[1], &want);
    r.report("golden V2L global top-5, f16 vs the official code's ids");

    let meta = root().join("crates/v2l-llm/tests/fixtures/llama/meta_1");
    let m32 = Llama::<B>::open(&meta, &Default::default())?;
    let m16 = Llama::<B>::open(&meta, &Default::default())?.into_precision(Precision::F16);
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let prompts: Vec<Vec<u32>> = (0..16)
        .map(|_| (0..8).map(|_| rng.random_range(3..256)).collect())
        .collect();
    let (total, differ, seqs) = greedy_diff(&m32, &m16, &prompts, 32)?;
    println!(
        "golden LLaMA (tiny, Meta format): {total} greedy tokens from 16 prompts; {differ} differ from the first divergence on, in {seqs} sequences"
    );
    Ok(())
}

fn default_model(images: usize, prompts: usize) -> Result<(), Error> {
    let device = Default::default();
    let bundle = v2l::default_model::bundle::<B>(&device, &mut |_| {})?;
    let data = v2l::assets::datasets::fashion_mnist(v2l::assets::datasets::Split::Test)?.inverted();
    let n = images.min(data.len());
    let decoded: Vec<DynamicImage> = (0..n)
        .map(|i| {
            let px = data.image(i).ok_or("image out of range")?.to_vec();
            let g = GrayImage::from_raw(data.width as u32, data.height as u32, px)
                .ok_or("bad image")?;
            Ok(DynamicImage::ImageLuma8(g).to_rgb8().into())
        })
        .collect::<Result<_, Error>>()?;
    let mut tokens = Vec::new();
    for precision in [Precision::F32, Precision::F16] {
        let options = OpenOptions {
            batch_size: Some(32),
            precision,
            ..Default::default()
        };
        let t = V2lTokenizer::<B>::open(&bundle, &options, &device)?;
        tokens.push(t.encode_images(&decoded)?);
    }
    let k = tokens[0].global_ids.first().map_or(0, Vec::len);
    let mut d = IdDiff::default();
    d.add(&tokens[0].global_ids, &tokens[1].global_ids);
    d.report(&format!("default V2L (ConSE global branch) on {n} Fashion-MNIST test images, global top-{k}, f16 vs f32"));
    let local_same = tokens[0].local_ids == tokens[1].local_ids;
    println!("default V2L local ids identical (the encoder stays f32): {local_same}");

    let llm_path = v2l::default_model::llm_path()?;
    let tok = LlmTokenizer::from_gguf(&v2l::llm::gguf::GgufFile::open(&llm_path)?)?;
    let weights = LlamaWeights::open(&llm_path)?;
    let m32 = Llama::<B>::load(&weights, &device)?;
    let m16 = Llama::<B>::load(&weights, &device)?.into_precision(Precision::F16);
    let words = tokens[0]
        .global_words
        .clone()
        .ok_or("the default model has global words")?;
    let prompts: Vec<Vec<u32>> = words
        .iter()
        .take(prompts)
        .map(|w| {
            let text = format!(
                "Words: {}.\nQuestion: which garment do these words describe?\nAnswer:",
                w.join(", ")
            );
            tok.encode(&text, AddSpecial::ModelDefault)
        })
        .collect::<Result<_, _>>()?;
    let (total, differ, seqs) = greedy_diff(&m32, &m16, &prompts, 16)?;
    println!(
        "default LLM (SmolLM2-135M-Instruct Q4_1): {total} greedy tokens from {} prompts; {differ} differ from the first divergence on, in {seqs} sequences",
        prompts.len()
    );
    Ok(())
}

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let images = args.first().map(|s| s.parse()).transpose()?.unwrap_or(500);
    let prompts = args.get(1).map(|s| s.parse()).transpose()?.unwrap_or(50);
    golden()?;
    default_model(images, prompts)?;
    Ok(())
}
