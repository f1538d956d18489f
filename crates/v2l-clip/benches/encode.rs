//! Image and text embeddings per second for ViT-B/32-sized random weights on
//! the CPU backends (NdArray and Flex). Run: `cargo bench -p v2l-clip --bench encode`.
//! Numbers are recorded in docs/benchmarks.md.

// criterion_group! defines an undocumented public function.
#![allow(missing_docs)]

use burn::backend::{Flex, NdArray};
use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Tensor};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use v2l_clip::{Clip, ClipConfig, ClipTokenizer, Truncation};

const BATCH: usize = 8;

fn bench_backend<Bk: Backend>(c: &mut Criterion, name: &str) {
    let device = Default::default();
    let clip = match Clip::<Bk>::random(ClipConfig::vit_b_32(), 0, &device) {
        Ok(c) => c,
        Err(e) => panic!("random ViT-B/32: {e}"),
    };
    let images = Tensor::<Bk, 4>::random(
        [BATCH, 3, 224, 224],
        Distribution::Normal(0.0, 1.0),
        &device,
    );
    // Rows as `clip.tokenize` makes them: SOT, 14 word pieces, EOT, zero padding to 77.
    let rows: Vec<Vec<u32>> = (0..BATCH)
        .map(|r| {
            let mut row = vec![0u32; 77];
            row[0] = 49_406;
            for (i, v) in row.iter_mut().enumerate().take(15).skip(1) {
                *v = (1000 + 37 * (r * 16 + i)) as u32;
            }
            row[15] = 49_407;
            row
        })
        .collect();

    let mut g = c.benchmark_group(format!("vit_b_32/{name}"));
    g.sample_size(10);
    g.throughput(Throughput::Elements(BATCH as u64));
    g.bench_function(BenchmarkId::new("image", BATCH), |b| {
        b.iter(|| {
            let e = clip.encode_image(images.clone()).map(|t| t.into_data());
            assert!(e.is_ok());
        })
    });
    g.bench_function(BenchmarkId::new("text", BATCH), |b| {
        b.iter(|| {
            let e = clip.encode_text(&rows).map(|t| t.into_data());
            assert!(e.is_ok());
        })
    });
    g.finish();
}

/// CLIP BPE tokenisation of the codebook workload's shape: the 80 ImageNet
/// templates filled with vocabulary-like words (skipped when the BPE asset is
/// not cached).
fn bench_tokenizer(c: &mut Criterion) {
    let path = match v2l_assets::fetch::test_asset("clip-bpe", "bpe_simple_vocab_16e6.txt.gz") {
        Ok(Some(p)) => p,
        _ => return,
    };
    let tok = match ClipTokenizer::from_bpe_file(path) {
        Ok(t) => t,
        Err(e) => panic!("{e}"),
    };
    let words = [
        "dog",
        "house",
        "tabby",
        "Ġcat",
        "espresso",
        "motor",
        "cycle",
        "astronaut",
        "123",
        "über",
        "straw",
        "berry",
        "ing",
        "tion",
        "photograph",
        "the",
        "wolf",
        "lamp",
        "volcano",
        "ship",
    ];
    let templates = [
        "a bad photo of a {}.",
        "a photo of many {}.",
        "a sculpture of a {}.",
        "a photo of the hard to see {}.",
        "a low resolution photo of the {}.",
        "a rendering of a {}.",
        "graffiti of a {}.",
        "a bad photo of the {}.",
    ];
    let texts: Vec<String> = words
        .iter()
        .flat_map(|w| templates.iter().map(move |t| t.replace("{}", w)))
        .collect();
    let mut g = c.benchmark_group("clip_bpe");
    g.throughput(Throughput::Elements(texts.len() as u64));
    g.bench_function("tokenize_batch", |b| {
        b.iter(|| {
            tok.tokenize_batch(&texts, 77, Truncation::Error)
                .map(|r| r.len())
        })
    });
    g.finish();
}

fn benches(c: &mut Criterion) {
    bench_tokenizer(c);
    bench_backend::<NdArray>(c, "ndarray");
    bench_backend::<Flex>(c, "flex");
}

criterion_group!(encode, benches);
criterion_main!(encode);
