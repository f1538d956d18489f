//! `v2l encode / reconstruct / decode / import-official` on the golden
//! model (`crates/v2l-model/tests/fixtures/v2l-tiny`: the official
//! architecture scaled down, outputs from the reference PyTorch code).

#![allow(clippy::needless_range_loop)]

use std::path::{Path, PathBuf};

use v2l::assets::readers::tensors::{SafetensorsFile, TensorSource};

use crate::v2l;

fn golden(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../v2l-model/tests/fixtures/v2l-tiny")
        .join(rel)
}

fn expected() -> SafetensorsFile {
    SafetensorsFile::open(golden("expected.safetensors")).unwrap()
}

fn rows(key: &str) -> Vec<Vec<u32>> {
    let (shape, v) = expected().read_f32(key).unwrap();
    v.chunks(shape[1])
        .map(|r| r.iter().map(|&x| x as u32).collect())
        .collect()
}

/// `round((clamp(x) + 1) · 127.5)` of a golden `[2, 3, 32, 32]` tensor, as
/// HWC bytes per image.
fn golden_u8(key: &str) -> Vec<Vec<u8>> {
    let (_, v) = expected().read_f32(key).unwrap();
    (0..2)
        .map(|i| {
            let base = i * 3 * 1024;
            let mut out = Vec::with_capacity(3 * 1024);
            for p in 0..1024 {
                for c in 0..3 {
                    let x = v[base + c * 1024 + p].clamp(-1.0, 1.0) as f64;
                    out.push(((x + 1.0) * 127.5).round() as u8);
                }
            }
            out
        })
        .collect()
}

fn png(path: &Path) -> Vec<u8> {
    v2l::model::image::open(path).unwrap().to_rgb8().into_raw()
}

fn max_diff(a: &[u8], b: &[u8]) -> u8 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| x.abs_diff(*y))
        .max()
        .unwrap_or(0)
}

fn ok(cmd: &mut std::process::Command) -> std::process::Output {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn images() -> [PathBuf; 2] {
    [golden("image_0.png"), golden("image_1.png")]
}

fn encode_json(checkpoint: &Path, extra: &[&str]) -> serde_json::Value {
    let out = ok(v2l()
        .args([
            "encode",
            "--json",
            "--image-size",
            "32",
            "--global-tokens",
            "5",
            "--checkpoint",
        ])
        .arg(checkpoint)
        .args(extra)
        .args(images()));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn check_ids(v: &serde_json::Value) {
    let ims = v["images"].as_array().unwrap();
    assert_eq!(ims.len(), 2);
    let g = rows("global_ids");
    let l = rows("local_ids");
    for i in 0..2 {
        let gi: Vec<u32> = serde_json::from_value(ims[i]["global_ids"].clone()).unwrap();
        let li: Vec<u32> = serde_json::from_value(ims[i]["local_ids"].clone()).unwrap();
        assert_eq!(gi, g[i], "global ids of image {i}");
        assert_eq!(li, l[i], "local ids of image {i}");
        assert_eq!(ims[i]["grid"], serde_json::json!([16, 16]));
    }
}

fn reconstruct(checkpoint: &Path, out: &Path) {
    ok(v2l()
        .args([
            "reconstruct",
            "--image-size",
            "32",
            "--global-tokens",
            "5",
            "--checkpoint",
        ])
        .arg(checkpoint)
        .arg("--out-dir")
        .arg(out)
        .args(images()));
}

#[test]
fn encode_reconstruct_decode_match_the_golden_model() {
    let ck = golden("checkpoint.pth");
    let v = encode_json(&ck, &[]);
    check_ids(&v);
    assert_eq!(v["model"]["kind"], "official");
    assert_eq!(v["model"]["sha256"].as_str().unwrap().len(), 64);
    assert!(v["images"][0]["path"]
        .as_str()
        .unwrap()
        .ends_with("image_0.png"));

    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("rec");
    reconstruct(&ck, &rec);
    let want = golden_u8("decoded");
    for i in 0..2 {
        let got = png(&rec.join(format!("image_{i}.png")));
        let d = max_diff(&got, &want[i]);
        assert!(
            d <= 1,
            "reconstruct image {i}: {d} levels from the reference"
        );
    }

    // decode from the JSON tokens gives the same PNGs (named after the paths).
    let tokens = dir.path().join("tokens.json");
    std::fs::write(&tokens, serde_json::to_string(&v).unwrap()).unwrap();
    let dec = dir.path().join("dec");
    ok(v2l()
        .args(["decode", "--checkpoint"])
        .arg(&ck)
        .arg("--tokens")
        .arg(&tokens)
        .arg("--out-dir")
        .arg(&dec));
    let want = golden_u8("decoded_from_ids");
    for i in 0..2 {
        let name = format!("image_{i}.png");
        let got = png(&dec.join(&name));
        assert_eq!(got, png(&rec.join(&name)), "decode and reconstruct differ");
        let d = max_diff(&got, &want[i]);
        assert!(d <= 1, "decode image {i}: {d} levels from the reference");
    }
}

#[test]
fn import_official_bundle_behaves_like_the_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let vocab = dir.path().join("vocab.json");
    let words: Vec<String> = (0..120).map(|i| format!("w{i}")).collect();
    std::fs::write(&vocab, serde_json::to_string(&words).unwrap()).unwrap();
    let bundle = dir.path().join("bundle");
    ok(v2l()
        .args([
            "import-official",
            "--image-size",
            "32",
            "--global-tokens",
            "5",
            "--checkpoint",
        ])
        .arg(golden("checkpoint.pth"))
        .arg("--global-vocab")
        .arg(&vocab)
        .arg("--out")
        .arg(&bundle));
    for f in [
        "config.json",
        "model.safetensors",
        "local_codebook.safetensors",
        "global_codebook.safetensors",
        "global_codebook.json",
        "clip_vision.safetensors",
    ] {
        assert!(bundle.join(f).is_file(), "{f} missing from the bundle");
    }
    // Defaults (image size 32, k 5) now come from the bundle.
    let out = ok(v2l()
        .args(["encode", "--json", "--checkpoint"])
        .arg(&bundle)
        .args(images()));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    check_ids(&v);
    assert_eq!(v["model"]["kind"], "bundle");
    let g = rows("global_ids");
    let w0: Vec<String> = serde_json::from_value(v["images"][0]["global_words"].clone()).unwrap();
    assert_eq!(
        w0,
        g[0].iter().map(|&i| format!("w{i}")).collect::<Vec<_>>()
    );

    let rec = dir.path().join("rec");
    reconstruct(&bundle, &rec);
    let want = golden_u8("decoded");
    for i in 0..2 {
        let d = max_diff(&png(&rec.join(format!("image_{i}.png"))), &want[i]);
        assert!(d <= 1, "bundle reconstruct image {i}: {d} levels");
    }
}

#[test]
fn bad_inputs_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let ck = golden("checkpoint.pth");
    // An unreadable image is named.
    let junk = dir.path().join("junk.png");
    std::fs::write(&junk, b"not an image").unwrap();
    let out = v2l()
        .args([
            "encode",
            "--image-size",
            "32",
            "--global-tokens",
            "5",
            "--checkpoint",
        ])
        .arg(&ck)
        .arg(&junk)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("junk.png"));
    // An image size the encoder cannot divide (one downsampling: odd sizes).
    let out = v2l()
        .args(["encode", "--image-size", "33", "--checkpoint"])
        .arg(&ck)
        .arg(golden("image_0.png"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("33×33"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // An out-of-range local id in a tokens file.
    let mut local = vec![0u32; 256];
    local[9] = 500;
    let tokens = serde_json::json!({"images": [{"path": "x.png", "global_ids": [1, 2, 3, 4, 5], "local_ids": local, "grid": [16, 16]}]});
    let tf = dir.path().join("t.json");
    std::fs::write(&tf, tokens.to_string()).unwrap();
    let out = v2l()
        .args(["decode", "--image-size", "32", "--checkpoint"])
        .arg(&ck)
        .arg("--tokens")
        .arg(&tf)
        .arg("--out-dir")
        .arg(dir.path().join("o"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("local id 500") && err.contains("position 9"),
        "{err}"
    );
    // A missing checkpoint.
    let out = v2l()
        .args(["encode", "--checkpoint"])
        .arg(dir.path().join("nope.pth"))
        .arg(golden("image_0.png"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope.pth"));
}

#[test]
fn lpips_command_reproduces_the_lpips_readme_example() {
    let Some(weights) = v2l::assets::fetch::test_asset("lpips-backbones", "alexnet.ckpt").unwrap()
    else {
        return;
    };
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../v2l-metrics/tests/fixtures/lpips");
    let mut values = Vec::new();
    for p in ["ex_p0.png", "ex_p1.png"] {
        let out = ok(v2l()
            .args(["lpips", "--json", "--weights"])
            .arg(&weights)
            .arg(dir.join("ex_ref.png"))
            .arg(dir.join(p)));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["metric"], "lpips_alex");
        assert_eq!(
            v["provenance"]["weights_sha256"].as_str().unwrap().len(),
            64
        );
        values.push(v["value"].as_f64().unwrap());
    }
    // The LPIPS README's published values for this triplet.
    assert!(
        (values[0] - 0.722).abs() < 5e-4 && (values[1] - 0.138).abs() < 5e-4,
        "{values:?}"
    );
    // Different sizes are an error naming both shapes.
    let out = v2l()
        .args(["lpips", "--weights"])
        .arg(&weights)
        .arg(dir.join("ex_ref.png"))
        .arg(dir.join("chelsea_wide_ref.png"))
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[test]
fn fid_command_streams_folders_saves_statistics_and_rejects_n_below_two() {
    let Some(weights) = v2l::assets::fetch::test_asset("fid-inception", "default_1.pt").unwrap()
    else {
        return;
    };
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../v2l-metrics/tests/fixtures/lpips");
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    for f in ["astronaut_ref", "chelsea_ref", "coffee_ref"] {
        std::fs::copy(src.join(format!("{f}.png")), a.join(format!("{f}.png"))).unwrap();
    }
    for f in ["astronaut_blur", "chelsea_noise", "coffee_jpeg"] {
        std::fs::copy(src.join(format!("{f}.png")), b.join(format!("{f}.png"))).unwrap();
    }
    let sa = dir.path().join("a.safetensors");
    let out = ok(v2l()
        .args(["fid", "--json", "--batch-size", "2", "--inception"])
        .arg(&weights)
        .arg(&a)
        .arg(&b)
        .arg("--save-a")
        .arg(&sa));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let value = v["value"].as_f64().unwrap();
    assert!(value.is_finite() && value > 0.0, "{value}");
    assert_eq!(v["provenance"]["a"]["n"], 3);
    assert_eq!(v["provenance"]["b"]["n"], 3);
    assert_eq!(
        v["provenance"]["a"]["weights_sha256"],
        "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"
    );
    // The saved statistics are the 2048-d mean and covariance of those 3 images.
    let stats = v2l::metrics::fid_stats::load_stats(&sa).unwrap();
    assert_eq!(
        (stats.mu.len(), stats.sigma.len(), stats.n),
        (2048, 2048 * 2048, Some(3))
    );
    assert_eq!(stats.provenance["folder"], a.display().to_string());
    // One image cannot give a covariance.
    let one = dir.path().join("one");
    std::fs::create_dir_all(&one).unwrap();
    std::fs::copy(src.join("coffee_ref.png"), one.join("x.png")).unwrap();
    let out = v2l()
        .args(["fid", "--inception"])
        .arg(&weights)
        .arg(&one)
        .arg(&sa)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("at least 2"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
