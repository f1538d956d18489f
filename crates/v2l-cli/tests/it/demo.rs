//! `v2l demo` and the `default` model names, as a user runs them. These
//! need the default model's assets (SmolLM2, MiniLM, EfficientNet-Lite0,
//! the ImageNet class names, Fashion-MNIST, the photos and LPIPS); without
//! them a test prints SKIP, and under `V2L_REQUIRE_ASSETS=1` (CI) fails.

use std::path::Path;

use serde_json::Value;

use super::v2l;

const ASSETS: [&str; 7] = [
    "smollm2-135m",
    "minilm-l6",
    "efficientnet-lite0",
    "imagenet-classes",
    "fashion-mnist",
    "photos",
    "lpips-backbones",
];

fn assets_present() -> bool {
    let out = v2l().args(["assets", "list", "--json"]).output().unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let ok = ASSETS.iter().all(|n| {
        v["assets"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["name"] == *n && a["state"] == "present")
    });
    if !ok {
        assert!(
            std::env::var("V2L_REQUIRE_ASSETS").as_deref() != Ok("1"),
            "the default model's assets are missing (V2L_REQUIRE_ASSETS=1)"
        );
        eprintln!("SKIP: the default model's assets are not cached");
    }
    ok
}

/// Every number in `v` is finite (JSON has no NaN; a null where a number
/// belongs counts as a failure at the fields checked below).
fn all_numbers_finite(v: &Value, path: &str) {
    match v {
        Value::Number(n) => assert!(n.as_f64().is_some_and(f64::is_finite), "{path}: {n}"),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .for_each(|(i, x)| all_numbers_finite(x, &format!("{path}[{i}]"))),
        Value::Object(o) => o
            .iter()
            .for_each(|(k, x)| all_numbers_finite(x, &format!("{path}.{k}"))),
        _ => {}
    }
}

fn num(v: &Value, what: &str) -> f64 {
    v.as_f64()
        .unwrap_or_else(|| panic!("{what} is not a number: {v}"))
}

#[test]
fn demo_quick_runs_end_to_end_and_reports_every_number() {
    if !assets_present() {
        return;
    }
    let out_dir = tempfile::tempdir().unwrap();
    let out = v2l()
        .args(["demo", "--quick", "--out"])
        .arg(out_dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("2-way 1-shot"), "{stdout}");
    let s: Value = serde_json::from_str(
        &std::fs::read_to_string(out_dir.path().join("summary.json")).unwrap(),
    )
    .unwrap();
    all_numbers_finite(&s, "summary");
    // Words: 5 Fashion-MNIST images and 2 photos, k global words and a full
    // grid of local tokens each.
    let k = s["model"]["config"]["k"].as_u64().unwrap() as usize;
    let words = s["words"]["images"].as_array().unwrap();
    assert_eq!(words.len(), 7);
    for w in words {
        let grid = w["grid"].as_array().unwrap();
        let cells = (grid[0].as_u64().unwrap() * grid[1].as_u64().unwrap()) as usize;
        assert_eq!(w["global_words"].as_array().unwrap().len(), k);
        assert_eq!(w["local_ids"].as_array().unwrap().len(), cells);
        assert_eq!(w["local_tokens"].as_array().unwrap().len(), cells);
    }
    // Reconstruction: PSNR in a plausible range, SSIM and LPIPS in [0, 1].
    let rec = &s["reconstruction"];
    assert_eq!(rec["images"].as_array().unwrap().len(), 12);
    let psnr = num(&rec["mean"]["psnr_y"], "mean PSNR");
    assert!((5.0..60.0).contains(&psnr), "{psnr}");
    for f in ["ssim", "lpips_alex"] {
        let x = num(&rec["mean"][f], f);
        assert!((-1.0..=1.0).contains(&x), "{f} {x}");
    }
    // Few-shot: both settings, 10 episodes, accuracy = correct / episodes,
    // an interval around it.
    let fs = s["fewshot"]["settings"].as_array().unwrap();
    assert_eq!(fs.len(), 2);
    for (f, way) in fs.iter().zip([2.0, 5.0]) {
        assert_eq!(f["episodes"], 10);
        let acc = num(&f["accuracy"], "accuracy");
        assert!((acc - num(&f["correct"], "correct") / 10.0).abs() < 1e-12);
        let (lo, hi) = (num(&f["wilson95"][0], "lo"), num(&f["wilson95"][1], "hi"));
        assert!(lo <= acc && acc <= hi && 0.0 <= lo && hi <= 1.0);
        assert!((num(&f["chance"], "chance") - 1.0 / way).abs() < 1e-12);
    }
    // Restoration: the five tasks on one image, each with its metrics.
    let r = s["restoration"]["results"].as_array().unwrap();
    let tasks: Vec<&str> = r.iter().map(|x| x["task"].as_str().unwrap()).collect();
    for t in ["inpainting", "outpainting", "deblur", "rotation", "shift"] {
        assert!(tasks.contains(&t), "{t} missing from {tasks:?}");
    }
    for x in r {
        num(&x["psnr_y"], "restoration PSNR");
        num(&x["ssim"], "restoration SSIM");
    }
    // Provenance with every section; report and pictures written.
    for sec in ["words", "reconstruction", "fewshot", "restoration"] {
        assert!(
            s[sec]["provenance"].as_str().is_some_and(|p| !p.is_empty()),
            "{sec}"
        );
    }
    let html = std::fs::read_to_string(out_dir.path().join("report.html")).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>") && html.contains("data:image/png;base64,"));
    assert!(out_dir.path().join("reconstruction.png").is_file());
    assert!(out_dir.path().join("restore/inpainting").is_dir());
}

#[test]
fn demo_with_own_images_skips_bad_files_and_refuses_an_unusable_folder() {
    if !assets_present() {
        return;
    }
    let photos = v2l()
        .args(["assets", "path", "photos", "coffee.png"])
        .output()
        .unwrap();
    let coffee = String::from_utf8(photos.stdout).unwrap().trim().to_string();
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(&coffee, dir.path().join("coffee.png")).unwrap();
    // A grey 300×17 image (another mode and size), an empty file and a
    // corrupt one.
    image::GrayImage::from_fn(300, 17, |x, _| image::Luma([(x % 256) as u8]))
        .save(dir.path().join("wide_grey.png"))
        .unwrap();
    std::fs::write(dir.path().join("empty.png"), b"").unwrap();
    std::fs::write(
        dir.path().join("corrupt.jpg"),
        b"\xff\xd8\xff\xe0 not a jpeg",
    )
    .unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    let out = v2l()
        .args(["demo", "--quick", "--episodes", "2", "--out"])
        .arg(out_dir.path())
        .arg("--images")
        .arg(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("skipped") && stderr.contains("empty.png"),
        "{stderr}"
    );
    let s: Value = serde_json::from_str(
        &std::fs::read_to_string(out_dir.path().join("summary.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(s["images"]["skipped"].as_array().unwrap().len(), 2);
    assert_eq!(s["words"]["images"].as_array().unwrap().len(), 2);

    // A folder with nothing readable is an error naming the folder.
    let bad = tempfile::tempdir().unwrap();
    std::fs::write(bad.path().join("x.png"), b"garbage").unwrap();
    let out = v2l()
        .args(["demo", "--quick", "--out"])
        .arg(out_dir.path().join("again"))
        .arg("--images")
        .arg(bad.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no readable image"), "{stderr}");
    assert!(!Path::new(&out_dir.path().join("again/summary.json")).exists());
}

#[test]
fn encode_with_the_default_checkpoint_prints_global_words() {
    if !assets_present() {
        return;
    }
    let photo = v2l()
        .args(["assets", "path", "photos", "chelsea.png"])
        .output()
        .unwrap();
    let photo = String::from_utf8(photo.stdout).unwrap().trim().to_string();
    let out = v2l()
        .args(["encode", "--checkpoint", "default", "--json", &photo])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let words = v["images"][0]["global_words"].as_array().unwrap();
    assert_eq!(words.len(), v["model"]["k"].as_u64().unwrap() as usize);
    assert!(words.iter().all(|w| w.as_str().is_some()));
}
