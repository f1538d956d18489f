//! The bad-input table of `docs/reliability.md`: every command meets
//! missing files, truncated files, wrong formats, wrong shapes, out-of-range
//! ids, non-finite weights, empty folders, over-long prompts, unwritable
//! output folders and a full disk (`/dev/full`), and must answer with its
//! documented exit code and a message naming what was wrong — never a
//! panic, and never a partial output file.
//!
//! Checked against: the exit codes documented in `docs/reliability.md`
//! (every row here must appear there) and message fragments written by
//! hand.

use std::path::{Path, PathBuf};

use crate::tasks::{images, root, setup};
use crate::{paths_under, v2l, v2l_ok};

/// One row: command, case, arguments, exit code, a fragment of the message.
struct Row {
    command: &'static str,
    case: &'static str,
    args: Vec<String>,
    code: i32,
    message: String,
}

/// A row; `args` is split at whitespace (the test's paths have none).
fn row(command: &'static str, case: &'static str, args: &str, code: i32, message: &str) -> Row {
    Row {
        command,
        case,
        args: args.split_whitespace().map(str::to_string).collect(),
        code,
        message: message.to_string(),
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Copy `src` to `dst` keeping only the first `keep` bytes.
fn truncated(src: &Path, dst: &Path, keep: usize) -> PathBuf {
    let bytes = std::fs::read(src).unwrap();
    std::fs::write(dst, &bytes[..keep.min(bytes.len())]).unwrap();
    dst.to_path_buf()
}

/// A copy of the bundle whose first f32 weight is NaN.
fn nan_bundle(bundle: &Path, dst: &Path) -> PathBuf {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(bundle).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, dst.join(p.file_name().unwrap())).unwrap();
    }
    let st = dst.join("model.safetensors");
    let mut bytes = std::fs::read(&st).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let (_, info) = header
        .as_object()
        .unwrap()
        .iter()
        .find(|(k, v)| *k != "__metadata__" && v["dtype"] == "F32")
        .unwrap();
    let start = 8 + n + info["data_offsets"][0].as_u64().unwrap() as usize;
    bytes[start..start + 4].copy_from_slice(&f32::NAN.to_le_bytes());
    std::fs::write(&st, bytes).unwrap();
    dst.to_path_buf()
}

#[test]
fn every_command_answers_bad_input_with_its_documented_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (bundle, tok) = setup(d);
    let imgs = images(d);
    let llm = root("v2l-llm/tests/fixtures/llama/hf");
    let clip = root("v2l-clip/tests/fixtures/model/tiny_openai.pth");
    let bpe = root("v2l-codebook/tests/fixtures/templates/tiny_bpe.txt");
    let official = root("v2l-codebook/tests/fixtures/official");
    let golden = root("v2l-model/tests/fixtures/v2l-tiny/checkpoint.pth");
    let classes = d.join("classes.txt");
    let img = imgs.join("a/0.png");

    // Bad files.
    let empty = d.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let not_png = d.join("not.png");
    std::fs::write(&not_png, "not an image").unwrap();
    let cut_png = truncated(&img, &d.join("cut.png"), 60);
    let small = d.join("small.png");
    image::RgbImage::new(8, 8).save(&small).unwrap();
    let cut_clip = truncated(&clip, &d.join("cut_clip.pth"), 4000);
    let cut_tok = truncated(&tok, &d.join("cut_tokenizer.json"), 200);
    let cut_gguf = truncated(
        &root("v2l-llm/tests/fixtures/gguf/values.gguf"),
        &d.join("cut.gguf"),
        300,
    );
    let cut_npy = truncated(
        &official.join("global_vocabulary.npy"),
        &d.join("cut.npy"),
        100,
    );
    let cut_bundle = d.join("cut_bundle");
    std::fs::create_dir_all(&cut_bundle).unwrap();
    for e in std::fs::read_dir(&bundle).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, cut_bundle.join(p.file_name().unwrap())).unwrap();
    }
    let m = cut_bundle.join("model.safetensors");
    let len = std::fs::metadata(&m).unwrap().len() as usize;
    truncated(&m.clone(), &m, len / 2);
    let nan = nan_bundle(&bundle, &d.join("nan_bundle"));
    let a_file = d.join("a_file");
    std::fs::write(&a_file, "x").unwrap();
    let under_file = a_file.join("out");

    // Tokens: a good file from `encode`, then broken copies.
    let out = v2l_ok(&["encode", "--json", "--checkpoint", s(&bundle), s(&img)]);
    let tokens: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let tokens_path = d.join("tokens.json");
    std::fs::write(&tokens_path, tokens.to_string()).unwrap();
    let mut far = tokens.clone();
    far["images"][0]["local_ids"][0] = 999_999.into();
    let far_path = d.join("far.json");
    std::fs::write(&far_path, far.to_string()).unwrap();
    let mut short = tokens.clone();
    short["images"][0]["local_ids"]
        .as_array_mut()
        .unwrap()
        .truncate(5);
    let short_path = d.join("short.json");
    std::fs::write(&short_path, short.to_string()).unwrap();
    let cut_tokens = truncated(&tokens_path, &d.join("cut_tokens.json"), 40);

    // Episodes and examples.
    let csv = d.join("2_way_1_shot.csv");
    std::fs::write(&csv, "a/0.png,b/0.png,a/1.png,\n").unwrap();
    let bad_csv = d.join("bad.csv");
    std::fs::write(&bad_csv, "a/0.png,b/0.png,a/1.png,\na/0.png,\n").unwrap();
    let examples = d.join("examples.json");
    std::fs::write(
        &examples,
        serde_json::json!([{"image": "images/a/0.png", "caption": "red fur"}]).to_string(),
    )
    .unwrap();
    let cut_examples = truncated(&examples, &d.join("cut_examples.json"), 10);
    let vqa_examples = d.join("vqa_examples.json");
    std::fs::write(
        &vqa_examples,
        serde_json::json!([{"image": "images/a/0.png", "question": "what?", "answer": "fur"}])
            .to_string(),
    )
    .unwrap();
    // A three-entry tokenizer and its local codebook (filter candidates).
    let small_tok = d.join("small_tokenizer.json");
    std::fs::write(
        &small_tok,
        serde_json::json!({
            "version": "1.0", "truncation": null, "padding": null, "added_tokens": [],
            "normalizer": null, "pre_tokenizer": { "type": "WhitespaceSplit" },
            "post_processor": null, "decoder": null,
            "model": { "type": "WordLevel", "unk_token": "[UNK]",
                       "vocab": { "[UNK]": 0, "dog": 1, "cat": 2 } }
        })
        .to_string(),
    )
    .unwrap();
    let cands = d.join("cands.safetensors");
    v2l_ok(&[
        "codebook",
        "local",
        "--tokenizer",
        s(&small_tok),
        "--clip",
        s(&clip),
        "--bpe",
        s(&bpe),
        "--out",
        s(&cands),
    ]);
    let config = d.join("train.toml");
    std::fs::write(&config, "[[[\n").unwrap();

    let (b, l, t) = (bundle.display(), llm.display(), tok.display());
    let task = format!("--checkpoint {b} --llm {l} --tokenizer {t}");
    let fewshot = format!(
        "classify {task} --images {} --classes {}",
        imgs.display(),
        classes.display()
    );
    let local = format!(
        "codebook local --clip {} --bpe {}",
        clip.display(),
        bpe.display()
    );
    let imp = |local_pth: &str, global_pth: &str, npy: &Path, out: &Path| {
        format!(
            "codebook import --local {} --global {} --vocab {} --out-dir {}",
            official.join(local_pth).display(),
            official.join(global_pth).display(),
            npy.display(),
            out.display()
        )
    };
    let (lp, gp) = (
        "local_codebook_embedding.pth",
        "global_codebook_embedding.pth",
    );
    let vocab = official.join("global_vocabulary.npy");
    let eval_fewshot = format!(
        "eval fewshot {task} --images {} --classes {} --episodes-dir {} --ways 2 --shots 1 --ks 3",
        imgs.display(),
        classes.display(),
        d.display()
    );
    let p = |x: &Path| x.display().to_string();
    let (img, dec) = (p(&img), p(&d.join("dec")));
    #[rustfmt::skip]
    let rows: Vec<Row> = vec![
        row("assets path", "wrong name", "assets path nosuch", 2, "unknown asset \"nosuch\""),
        row("psnr", "missing file", &format!("psnr /nonexistent/a.png {img}"), 3, "/nonexistent/a.png"),
        row("psnr", "wrong format", &format!("psnr {} {img}", p(&not_png)), 4, "not.png"),
        row("psnr", "truncated file", &format!("psnr {} {img}", p(&cut_png)), 4, "cut.png"),
        row("psnr", "wrong shape or size", &format!("psnr {} {img}", p(&small)), 4, "shape"),
        row("psnr", "empty folder", &format!("psnr {} {}", p(&empty), p(&empty)), 4, "no PNG/JPEG images"),
        row("ssim", "missing file", &format!("ssim {img} /nonexistent/b.png"), 3, "/nonexistent/b.png"),
        row("ssim", "truncated file", &format!("ssim {img} {}", p(&cut_png)), 4, "cut.png"),
        row("lpips", "missing file", &format!("lpips /nonexistent/a.png {img}"), 3, "/nonexistent/a.png"),
        row("lpips", "wrong shape or size", &format!("lpips {} {}", p(&small), p(&small)), 4, "at least"),
        row("fid", "empty folder", &format!("fid {} {}", p(&empty), p(&imgs)), 4, "no PNG/JPEG images"),
        row("clip", "missing file", &format!("clip --clip /nonexistent/clip.pt --image {img}"), 3, "/nonexistent/clip.pt"),
        row("clip", "truncated file", &format!("clip --clip {} --image {img}", p(&cut_clip)), 4, "cut_clip.pth"),
        row("clip", "wrong format", &format!("clip --clip {} --image {img}", p(&not_png)), 4, "not.png"),
        row("clip", "usage", &format!("clip --clip {}", p(&clip)), 2, "nothing to embed"),
        row("complete", "missing file", "complete --llm /nonexistent/m.gguf hi", 3, "/nonexistent/m.gguf"),
        row("complete", "truncated file", &format!("complete --llm {} hi", p(&cut_gguf)), 4, "cannot fit in a file of 300 bytes"),
        row("complete", "wrong format", &format!("complete --llm {} hi", p(&not_png)), 4, "GGUF"),
        row("complete", "truncated tokenizer", &format!("complete --llm {l} --tokenizer {} hi", p(&cut_tok)), 4, "cut_tokenizer.json"),
        row("complete", "over-long prompt", &format!("complete --llm {l} --tokenizer {t} --max-tokens 9000 red"), 4, "exceeds the context"),
        row("encode", "missing file", &format!("encode --checkpoint {b} /nonexistent/x.png"), 3, "/nonexistent/x.png"),
        row("encode", "missing model", &format!("encode --checkpoint /nonexistent/bundle {img}"), 3, "/nonexistent/bundle"),
        row("encode", "truncated file", &format!("encode --checkpoint {} {img}", p(&cut_bundle)), 4, "model.safetensors"),
        row("encode", "NaN/Inf weights", &format!("encode --checkpoint {} {img}", p(&nan)), 4, "non-finite"),
        row("encode", "wrong format", &format!("encode --checkpoint {b} {}", p(&not_png)), 4, "not.png"),
        row("encode", "unknown device", &format!("encode --checkpoint {b} --device tpu {img}"), 2, "invalid value 'tpu' for '--device"),
        row("encode", "unknown precision", &format!("encode --checkpoint {b} --precision bf16 {img}"), 2, "invalid value 'bf16' for '--precision"),
        row("reconstruct", "unwritable output folder", &format!("reconstruct --checkpoint {b} --out-dir {} {img}", p(&under_file)), 6, "a_file/out"),
        row("reconstruct", "full disk", &format!("reconstruct --checkpoint {b} --out-dir /dev/full {img}"), 6, "/dev/full"),
        row("decode", "truncated file", &format!("decode --checkpoint {b} --tokens {} --out-dir {dec}", p(&cut_tokens)), 4, "cut_tokens.json"),
        row("decode", "out-of-range ids", &format!("decode --checkpoint {b} --tokens {} --out-dir {dec}", p(&far_path)), 4, "999999"),
        row("decode", "wrong shape or size", &format!("decode --checkpoint {b} --tokens {} --out-dir {dec}", p(&short_path)), 4, "short.json"),
        row("import-official", "missing file", &format!("import-official --checkpoint /nonexistent/v2l.pth --out {}", p(&d.join("imp"))), 3, "/nonexistent/v2l.pth"),
        row("import-official", "wrong format", &format!("import-official --checkpoint {} --out {}", p(&not_png), p(&d.join("imp"))), 4, "not.png"),
        row("import-official", "unwritable output folder", &format!("import-official --checkpoint {} --out {}", p(&golden), p(&under_file)), 6, "a_file/.out.v2l-tmp"),
        row("codebook local", "missing file", &format!("{local} --tokenizer /nonexistent/t.json --out {}", p(&d.join("l.safetensors"))), 3, "/nonexistent/t.json"),
        row("codebook local", "truncated file", &format!("{local} --tokenizer {} --out {}", p(&cut_tok), p(&d.join("l.safetensors"))), 4, "cut_tokenizer.json"),
        row("codebook local", "full disk", &format!("{local} --tokenizer {} --out /dev/full", p(&small_tok)), 6, "/dev/full"),
        row("codebook import", "truncated file", &imp(lp, gp, &cut_npy, &d.join("cbi")), 4, "cut.npy"),
        row("codebook import", "wrong shape or size", &imp(lp, lp, &vocab, &d.join("cbi")), 4, "does not match"),
        row("codebook import", "unwritable output folder", &imp(lp, gp, &vocab, &under_file), 6, "a_file/out"),
        row("codebook filter", "empty folder", &format!("codebook filter --candidates {} --clip {} --images {} --out {}", p(&cands), p(&clip), p(&empty), p(&d.join("g.safetensors"))), 4, "no image files"),
        row("classify", "missing file", &format!("{fewshot} --episodes /nonexistent/e.csv"), 3, "/nonexistent/e.csv"),
        row("classify", "wrong format", &format!("{fewshot} --episodes {}", p(&bad_csv)), 4, "line 2"),
        row("classify", "over-long prompt", &format!("{fewshot} --episodes {} --max-seq-len 20", p(&csv)), 4, "context window of 20"),
        row("classify", "empty folder", &format!("classify {task} --images {} --classes {} --episodes {}", p(&empty), p(&classes), p(&csv)), 3, "a/0.png"),
        row("eval fewshot", "full disk", &format!("{eval_fewshot} --log {} --table /dev/full", p(&d.join("ev.jsonl"))), 6, "/dev/full"),
        row("eval fewshot", "unwritable output folder", &format!("{eval_fewshot} --log {}", p(&under_file)), 6, "a_file/out"),
        row("eval reconstruct", "empty folder", &format!("eval reconstruct --checkpoint {b} --llm {l} --images {} --size 32 --log {}", p(&empty), p(&d.join("rec.jsonl"))), 4, "no image files"),
        row("restore", "over-long prompt", &format!("restore {task} --task deblur --out-dir {} {img}", p(&d.join("rs"))), 4, "context window of 64"),
        row("restore", "unwritable output folder", &format!("restore {task} --task deblur --out-dir {} {img}", p(&under_file)), 6, "a_file/out"),
        row("restore", "usage", &format!("restore {task} --task sharpen --out-dir {} {img}", p(&d.join("rs"))), 2, "--task: invalid input: unknown task \"sharpen\""),
        row("caption", "missing file", &format!("caption {task} --examples /nonexistent/ex.json {img}"), 3, "/nonexistent/ex.json"),
        row("caption", "truncated file", &format!("caption {task} --examples {} {img}", p(&cut_examples)), 4, "cut_examples.json"),
        row("vqa", "missing file", &format!("vqa {task} --examples {} --image /nonexistent/q.png --question what", p(&vqa_examples)), 3, "/nonexistent/q.png"),
        row("train", "missing file", &format!("train --config /nonexistent/t.toml --run-dir {}", p(&d.join("run"))), 3, "/nonexistent/t.toml"),
        row("train", "wrong format", &format!("train --config {} --run-dir {}", p(&config), p(&d.join("run"))), 4, "not valid TOML"),
        row("demo", "empty folder", &format!("demo --quick --images {} --out {}", p(&empty), p(&d.join("demo"))), 4, "no readable image"),
        row("demo", "missing file", &format!("demo --quick --images /nonexistent/pics --out {}", p(&d.join("demo"))), 3, "/nonexistent/pics"),
    ];
    let doc = std::fs::read_to_string(root("../docs/reliability.md")).unwrap_or_default();
    let mut failures = Vec::new();
    for r in &rows {
        let t = std::time::Instant::now();
        let out = v2l().args(&r.args).output().unwrap();
        // The documentation's row, as printed with --nocapture.
        let first = String::from_utf8_lossy(&out.stderr)
            .lines()
            .find(|l| l.starts_with("error:"))
            .unwrap_or_default()
            .replace(&format!("{}/", d.display()), "")
            .replace('|', "\\|");
        eprintln!(
            "| `{}` | {} | {} | {} | ({:.1} s)",
            r.command,
            r.case,
            out.status.code().unwrap_or(-1),
            first.trim_start_matches("error: "),
            t.elapsed().as_secs_f64()
        );
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        let code = out.status.code();
        if code != Some(r.code) || !err.contains(&r.message) || err.contains("panicked") {
            failures.push(format!(
                "{} / {}: exit {:?} (want {}), stderr: {}",
                r.command,
                r.case,
                code,
                r.code,
                err.trim()
            ));
        }
        let line = format!("| `{}` | {} | {} |", r.command, r.case, r.code);
        if !doc.contains(&line) {
            failures.push(format!("docs/reliability.md lacks the row {line}"));
        }
    }
    // No command left a partial output behind.
    for leftover in [
        "l.safetensors",
        "imp",
        "cbi",
        "g.safetensors",
        "dec",
        "rec.jsonl",
    ] {
        let p = d.join(leftover);
        if p.is_file() {
            failures.push(format!("{} was left behind", p.display()));
        }
    }
    let temporaries: Vec<_> = paths_under(d)
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(".v2l-tmp"))
        .collect();
    assert!(
        temporaries.is_empty(),
        "temporary files left: {temporaries:?}"
    );
    assert!(
        failures.is_empty(),
        "{} rows failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
