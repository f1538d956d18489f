//! `v2l classify`, `v2l restore` and `v2l eval` on a tiny random V2L bundle
//! (local codebook = the tiny LLaMA's 256 ids) with the tiny random LLaMA
//! (context 64) and a word-level tokenizer.

use std::path::{Path, PathBuf};

use v2l::assets::readers::torch_zip::TorchArchive;
use v2l::model::bundle::{write_bundle, BundleExtras};
use v2l::model::{ModelConfig, V2lModel};

use crate::v2l;

type B = v2l::backend::Cpu;

fn root(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(rel)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Bundle, tokenizer and LLM folder in `dir`.
fn setup(dir: &Path) -> (PathBuf, PathBuf) {
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

fn images(dir: &Path) -> PathBuf {
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
    let e = String::from_utf8(run(&a2).stderr).unwrap();
    assert!(e.contains("line 2"), "{e}");
    std::fs::write(&bad_csv, "a/0.png,c/0.png,a/1.png,\n").unwrap();
    let e = String::from_utf8(run(&a2).stderr).unwrap();
    assert!(e.contains("unknown class id \"c\""), "{e}");
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
    let e = String::from_utf8(run(&a3).stderr).unwrap();
    assert!(e.contains("context window of 20"), "{e}");

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
