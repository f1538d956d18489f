//! `v2l classify`, `v2l restore` and `v2l eval` on a tiny random V2L bundle
//! (local codebook = the tiny LLaMA's 256 ids) with the tiny random LLaMA
//! (context 64) and a word-level tokenizer.

use std::path::{Path, PathBuf};

use v2l::assets::readers::torch_zip::TorchArchive;
use v2l::model::bundle::{write_bundle, BundleExtras};
use v2l::model::{ModelConfig, V2lModel};

use crate::v2l;

type B = v2l::backend::Cpu;

pub(crate) fn root(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(rel)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Bundle, tokenizer and LLM folder in `dir`.
pub(crate) fn setup(dir: &Path) -> (PathBuf, PathBuf) {
    let tiny = root("v2l-clip/tests/fixtures/model/tiny_openai.pth");
    let clip = v2l::clip::Clip::<B>::load(&tiny, &Default::default()).unwrap();
    let config: ModelConfig = serde_json::from_value(serde_json::json!({
        "image_size": 32,
        "ddconfig": { "double_z": false, "z_channels": 32, "resolution": 32, "in_channels": 3,
                      "out_ch": 3, "ch": 32, "ch_mult": [1, 2, 2, 2], "num_res_blocks": 1,
                      "attn_resolutions": [], "dropout": 0.0 },
        "embed_dim": 64, "n_local": 256, "n_global": 6, "k": 3,
        "clip_vision": clip.config().vision.clone().unwrap(),
    }))
    .unwrap();
    let model = V2lModel::<B>::random(&config, 3, &Default::default()).unwrap();
    let words: Vec<String> = ["red", "fur", "wool", "coat", "x", "y"]
        .map(String::from)
        .to_vec();
    let src = TorchArchive::open(&tiny).unwrap();
    let bundle = dir.join("bundle");
    write_bundle(
        &bundle,
        &model,
        &BundleExtras {
            clip: Some((&src, "visual.")),
            global_words: Some(&words),
            provenance: serde_json::Value::Null,
        },
    )
    .unwrap();
    // A word-level tokenizer for the tiny LLaMA (256 ids, BOS <s> = 1).
    let mut vocab = serde_json::Map::new();
    for (i, w) in [
        "[UNK]", "<s>", "</s>", "###", "Input:", "<", ">", "Output:", "red", "fur", "wool", "coat",
    ]
    .iter()
    .enumerate()
    {
        vocab.insert((*w).to_string(), i.into());
    }
    for i in 12..256 {
        vocab.insert(format!("w{i}"), i.into());
    }
    let tok = serde_json::json!({
        "version": "1.0", "truncation": null, "padding": null,
        "added_tokens": [
            {"id": 1, "content": "<s>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
            {"id": 2, "content": "</s>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}],
        "normalizer": null, "pre_tokenizer": { "type": "WhitespaceSplit" },
        "post_processor": { "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}} },
        "decoder": null,
        "model": { "type": "WordLevel", "vocab": vocab, "unk_token": "[UNK]" }
    });
    let tok_path = dir.join("tokenizer.json");
    std::fs::write(&tok_path, tok.to_string()).unwrap();
    (bundle, tok_path)
}

pub(crate) fn images(dir: &Path) -> PathBuf {
    let imgs = dir.join("images");
    for (c, shade) in [("a", 40u8), ("b", 200u8)] {
        std::fs::create_dir_all(imgs.join(c)).unwrap();
        for i in 0..3u8 {
            let im = image::RgbImage::from_fn(36, 32, |x, y| {
                image::Rgb([
                    shade,
                    ((x * 7 + u32::from(i) * 20) % 256) as u8,
                    ((y * 5) % 256) as u8,
                ])
            });
            im.save(imgs.join(c).join(format!("{i}.png"))).unwrap();
        }
    }
    std::fs::write(dir.join("classes.txt"), "a red fur\nb wool coat\n").unwrap();
    imgs
}

fn run(args: &[&str]) -> std::process::Output {
    v2l().args(args).output().unwrap()
}

#[test]
fn classify_restore_and_eval_on_tiny_models() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (bundle, tok) = setup(d);
    let imgs = images(d);
    let llm = root("v2l-llm/tests/fixtures/llama/hf");
    let classes = d.join("classes.txt");
    let csv = d.join("2_way_1_shot.csv");
    std::fs::write(&csv, "a/0.png,b/0.png,a/1.png,\nb/1.png,a/2.png,b/2.png,\n").unwrap();
    let log = d.join("classify.jsonl");
    let common = [
        "--checkpoint",
        s(&bundle),
        "--llm",
        s(&llm),
        "--tokenizer",
        s(&tok),
    ];
    let mut args: Vec<&str> = vec!["classify"];
    args.extend(common);
    args.extend([
        "--images",
        s(&imgs),
        "--classes",
        s(&classes),
        "--episodes",
        s(&csv),
        "--way",
        "2",
        "--shot",
        "1",
        "--log",
        s(&log),
        "--json",
    ]);
    let out = run(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let records: Vec<serde_json::Value> = stdout
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 2);
    let correct = records.iter().filter(|r| r["correct"] == true).count();
    for r in &records {
        assert_eq!(r["tokens"].as_array().unwrap().len(), 16);
        // Every record carries its provenance.
        assert_eq!(
            (
                r["provenance"]["image_size"].as_u64(),
                r["provenance"]["k"].as_u64()
            ),
            (Some(32), Some(3))
        );
        // Scored as an exact prefix of the decoded text.
        let pred = r["prediction"].as_str().unwrap();
        assert_eq!(
            r["correct"],
            pred.starts_with(r["target"].as_str().unwrap())
        );
    }
    assert!(
        stdout.contains(&format!("2-way 1-shot, k = 3: {correct}/2 correct")),
        "{stdout}"
    );
    // Rerunning with the same log computes nothing new.
    let before = std::fs::read_to_string(&log).unwrap();
    assert!(run(&args).status.success());
    assert_eq!(std::fs::read_to_string(&log).unwrap(), before);

    // Bad input: a malformed episode line, an unknown class, a prompt over
    // the context window (the tiny LLaMA has 64 positions).
    let bad_csv = d.join("bad.csv");
    std::fs::write(&bad_csv, "a/0.png,b/0.png,a/1.png,\na/0.png,\n").unwrap();
    let mut a2: Vec<&str> = vec!["classify"];
    a2.extend(common);
    a2.extend([
        "--images",
        s(&imgs),
        "--classes",
        s(&classes),
        "--episodes",
        s(&bad_csv),
    ]);
    let o = run(&a2);
    let e = String::from_utf8(o.stderr).unwrap();
    assert!(e.contains("line 2"), "{e}");
    assert_eq!(o.status.code(), Some(4), "malformed input exits 4");
    std::fs::write(&bad_csv, "a/0.png,c/0.png,a/1.png,\n").unwrap();
    let o = run(&a2);
    let e = String::from_utf8(o.stderr).unwrap();
    assert!(e.contains("unknown class id \"c\""), "{e}");
    assert_eq!(o.status.code(), Some(4));
    let mut a3: Vec<&str> = vec!["classify"];
    a3.extend(common);
    a3.extend([
        "--images",
        s(&imgs),
        "--classes",
        s(&classes),
        "--episodes",
        s(&csv),
        "--max-seq-len",
        "20",
    ]);
    let o = run(&a3);
    let e = String::from_utf8(o.stderr).unwrap();
    assert!(e.contains("context window of 20"), "{e}");
    assert_eq!(o.status.code(), Some(4), "an over-long prompt exits 4");

    // Restoration prompts (10 examples) do not fit 64 positions: a clear
    // error before any generation.
    let mut a4: Vec<&str> = vec!["restore"];
    a4.extend(common);
    let out_dir = d.join("restore");
    a4.extend(["--task", "deblur", "--out-dir", s(&out_dir)]);
    let img0 = imgs.join("a/0.png");
    a4.push(s(&img0));
    let e = String::from_utf8(run(&a4).stderr).unwrap();
    assert!(e.contains("more than the context window of 64"), "{e}");

    // The harness: a table laid out by setting.
    let mut a5: Vec<&str> = vec!["eval", "fewshot"];
    a5.extend(common);
    let table = d.join("table.md");
    let eval_log = d.join("eval.jsonl");
    let rec_log = d.join("rec.jsonl");
    a5.extend([
        "--images",
        s(&imgs),
        "--classes",
        s(&classes),
        "--episodes-dir",
        s(d),
        "--ways",
        "2",
        "--shots",
        "1",
        "--ks",
        "1,3",
        "--log",
        s(&eval_log),
        "--table",
        s(&table),
    ]);
    let out = run(&a5);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let md = std::fs::read_to_string(&table).unwrap();
    assert!(md.contains("| global tokens k | 2-way 1-shot |"), "{md}");
    assert!(md.contains("(n=2)"), "{md}");
    // The log's first line records its settings.
    let text = std::fs::read_to_string(&eval_log).unwrap();
    let head: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(head["format"], "v2l-eval-log/1");
    assert_eq!(head["settings"]["decoding"], "UnionMask");
    assert_eq!(head["settings"]["precision"], "f32");
    // Resuming with the same settings computes nothing new ...
    assert!(run(&a5).status.success());
    assert_eq!(std::fs::read_to_string(&eval_log).unwrap(), text);
    // ... with another decoding (or seed, or episode file) it is refused,
    // exit 5, naming what differs, and the log is untouched.
    let mut changed = a5.clone();
    changed.extend(["--decoding", "trie"]);
    let o = run(&changed);
    let e = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(o.status.code(), Some(5), "{e}");
    assert!(
        e.contains("decoding: \"UnionMask\" in the log, \"Trie\" now") && e.contains("--new-log"),
        "{e}"
    );
    assert_eq!(std::fs::read_to_string(&eval_log).unwrap(), text);
    let csv_again = std::fs::read_to_string(&csv).unwrap();
    std::fs::write(&csv, "b/1.png,a/2.png,b/2.png,\na/0.png,b/0.png,a/1.png,\n").unwrap();
    let o = run(&a5);
    let e = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(o.status.code(), Some(5), "{e}");
    assert!(e.contains("episodes.csv_dir:"), "{e}");
    std::fs::write(&csv, csv_again).unwrap();
    // Another --precision is another setting too; in its own log, the f16
    // run (CLIP tower and LLM in f16 on Flex) completes.
    let mut half = a5.clone();
    half.extend(["--precision", "f16"]);
    let o = run(&half);
    let e = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(o.status.code(), Some(5), "{e}");
    assert!(
        e.contains("precision: \"f32\" in the log, \"f16\" now"),
        "{e}"
    );
    let log16 = d.join("eval16.jsonl");
    let table16 = d.join("table16.md");
    let mut half: Vec<&str> = a5
        .iter()
        .map(|a| {
            if *a == s(&eval_log) {
                s(&log16)
            } else if *a == s(&table) {
                s(&table16)
            } else {
                a
            }
        })
        .collect();
    half.extend(["--precision", "f16"]);
    let o = run(&half);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text16 = std::fs::read_to_string(&log16).unwrap();
    let head16: serde_json::Value = serde_json::from_str(text16.lines().next().unwrap()).unwrap();
    assert_eq!(head16["settings"]["precision"], "f16");
    assert!(std::fs::read_to_string(&table16).unwrap().contains("(n=2)"));
    // --new-log starts again and keeps the old log beside it.
    changed.push("--new-log");
    let o = run(&changed);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        std::fs::read_to_string(d.join("eval.jsonl.old")).unwrap(),
        text
    );
    let new_head = std::fs::read_to_string(&eval_log).unwrap();
    assert!(new_head.lines().next().unwrap().contains("\"Trie\""));

    let mut a6: Vec<&str> = vec!["eval", "reconstruct"];
    a6.extend(common);
    a6.extend(["--images", s(&imgs), "--size", "32", "--log", s(&rec_log)]);
    let out = run(&a6);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let md = String::from_utf8(out.stdout).unwrap();
    assert!(
        md.contains("Reconstruction at 32×32") && md.contains("| 32 px |"),
        "{md}"
    );
}

#[test]
fn eval_caption_and_vqa_with_clip_score() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (bundle, tok) = setup(d);
    images(d);
    let llm = root("v2l-llm/tests/fixtures/llama/hf");
    let tiny_clip = root("v2l-clip/tests/fixtures/model/tiny_openai.pth");
    let bpe = root("v2l-codebook/tests/fixtures/templates/tiny_bpe.txt");
    let caps = d.join("captions.json");
    std::fs::write(
        &caps,
        serde_json::json!([
            {"image": "images/a/0.png", "captions": ["red fur"]},
            {"image": "images/b/0.png", "captions": ["wool coat"]},
            {"image": "images/a/1.png", "captions": ["red fur", "a red fur"]},
        ])
        .to_string(),
    )
    .unwrap();
    let log = d.join("cap.jsonl");
    let common = [
        "--checkpoint",
        s(&bundle),
        "--llm",
        s(&llm),
        "--tokenizer",
        s(&tok),
    ];
    let mut a: Vec<&str> = vec!["eval", "caption"];
    a.extend(common);
    a.extend([
        "--set",
        s(&caps),
        "--shots",
        "2",
        "--max-tokens",
        "4",
        "--clip",
        s(&tiny_clip),
        "--bpe",
        s(&bpe),
        "--log",
        s(&log),
    ]);
    let out = run(&a);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let md = String::from_utf8(out.stdout).unwrap();
    assert!(
        md.contains("| BLEU-4 ↑ | CIDEr-D ↑ | CLIP score ↑ | images |"),
        "{md}"
    );
    assert!(md.contains("| 2-shot, k = 3 |"), "{md}");
    // The logged CLIP score is 100·max(cos, 0) of the query image and the
    // generated caption, recomputed here.
    // (Line 1 holds the log's settings; line 2 the first record.)
    let rec: serde_json::Value = serde_json::from_str(
        std::fs::read_to_string(&log)
            .unwrap()
            .lines()
            .nth(1)
            .unwrap(),
    )
    .unwrap();
    let caption = rec["caption"].as_str().unwrap().to_string();
    let clip = v2l::clip::Clip::<B>::load(&tiny_clip, &Default::default()).unwrap();
    let ct = v2l::clip::ClipTokenizer::from_bpe_file(&bpe).unwrap();
    let img = image::open(d.join("images/a/1.png")).unwrap();
    let iv = clip
        .encode_images(&[img], 1)
        .unwrap()
        .into_data()
        .to_vec::<f32>()
        .unwrap();
    let tv = clip
        .encode_texts(&ct, &[caption], v2l::clip::Truncation::Truncate, 1)
        .unwrap()
        .into_data()
        .to_vec::<f32>()
        .unwrap();
    let dot: f64 = iv
        .iter()
        .zip(&tv)
        .map(|(&x, &y)| f64::from(x) * f64::from(y))
        .sum();
    let n = |v: &[f32]| v.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>().sqrt();
    let want = 100.0 * (dot / (n(&iv) * n(&tv))).max(0.0);
    assert!(
        (rec["clip_score"].as_f64().unwrap() - want).abs() < 1e-3,
        "{rec} vs {want}"
    );

    // VQA: the logged accuracy is the leave-one-out rule on the answers.
    let vqa = d.join("vqa.json");
    let answers = |x: &str| vec![x.to_string(); 10];
    std::fs::write(
        &vqa,
        serde_json::json!([
            {"image": "images/a/0.png", "question": "what", "answers": answers("red")},
            {"image": "images/b/0.png", "question": "what", "answers": answers("wool")},
            {"image": "images/a/1.png", "question": "what", "answers": ["red", "red", "fur", "w5", "w5", "w5", "w5", "x", "y", "z"]},
        ])
        .to_string(),
    )
    .unwrap();
    let vlog = d.join("vqa.jsonl");
    let mut a: Vec<&str> = vec!["eval", "vqa"];
    a.extend(common);
    a.extend([
        "--set",
        s(&vqa),
        "--shots",
        "2",
        "--max-tokens",
        "1",
        "--log",
        s(&vlog),
    ]);
    let out = run(&a);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rec: serde_json::Value = serde_json::from_str(
        std::fs::read_to_string(&vlog)
            .unwrap()
            .lines()
            .nth(1)
            .unwrap(),
    )
    .unwrap();
    let ans = rec["answer"].as_str().unwrap().to_string();
    let humans: Vec<String> = rec["answers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect();
    let loo: f64 = (0..10)
        .map(|i| {
            let m = humans
                .iter()
                .enumerate()
                .filter(|&(j, h)| j != i && *h == ans)
                .count();
            (m as f64 / 3.0).min(1.0)
        })
        .sum::<f64>()
        / 10.0;
    assert!(
        (rec["accuracy"].as_f64().unwrap() - loo).abs() < 1e-12,
        "{rec}"
    );
    assert!(String::from_utf8(out.stdout)
        .unwrap()
        .contains("| 2-shot, k = 3 |"));
}
