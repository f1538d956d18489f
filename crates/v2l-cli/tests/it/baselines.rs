//! The paper's baselines as configurations of `v2l train`
//! (`configs/baselines/*.toml`): each trains for two iterations on
//! Fashion-MNIST, its checkpoint loads in `v2l reconstruct`, and the
//! checkpoint has the structure the baseline means (checked by reading the
//! bundle's tensors, not through the trainer), plus `v2l train --devices
//! cpu,cpu`.

use std::path::{Path, PathBuf};

use v2l::io::tensors::{SafetensorsFile, TensorSource};

use crate::{succeed, v2l};

fn config_text(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../configs")
        .join(name);
    std::fs::read_to_string(path).unwrap()
}

/// The configuration made CI-sized: batch 2, a checkpoint after each
/// iteration, a tiny validation batch.
fn ci_sized(text: &str) -> String {
    let mut out = text.to_string();
    for (from, to) in [
        ("batch_size = 8", "batch_size = 2"),
        ("checkpoint_every = 200", "checkpoint_every = 1"),
        ("val_every = 50", "val_every = 100"),
        ("val_images = 8", "val_images = 2"),
    ] {
        assert!(out.contains(from), "{from}");
        out = out.replace(from, to);
    }
    out
}

/// Train `text` for two iterations in `dir/run` (extra arguments after the
/// command), then reconstruct an image with the last checkpoint.
fn train_and_reconstruct(dir: &Path, text: &str, extra: &[&str]) -> PathBuf {
    let config = dir.join("c.toml");
    std::fs::write(&config, text).unwrap();
    let run = dir.join("run");
    succeed(
        v2l()
            .args(["train", "--steps", "2", "--config"])
            .arg(&config)
            .arg("--run-dir")
            .arg(&run)
            .args(extra),
    );
    let image = dir.join("x.png");
    v2l::model::image::RgbImage::from_fn(32, 32, |x, y| {
        v2l::model::image::Rgb([(x * 7) as u8, (y * 7) as u8, 120])
    })
    .save(&image)
    .unwrap();
    let rec = dir.join("rec");
    succeed(
        v2l()
            .args(["reconstruct", "--checkpoint"])
            .arg(run.join("last"))
            .arg("--out-dir")
            .arg(&rec)
            .arg(&image),
    );
    let written = std::fs::read_dir(&rec).unwrap().count();
    assert!(written >= 1, "reconstruct wrote nothing");
    run
}

fn model_file(checkpoint: &Path) -> SafetensorsFile {
    SafetensorsFile::open(checkpoint.join("model.safetensors")).unwrap()
}

fn assets_present() -> bool {
    let lpips = v2l::assets::fetch::test_asset("lpips-backbones", "vgg16.ckpt").unwrap();
    let data =
        v2l::assets::fetch::test_asset("fashion-mnist", "train-images-idx3-ubyte.gz").unwrap();
    lpips.is_some() && data.is_some()
}

/// A baseline configuration trained and reconstructed with, and its last
/// checkpoint's tensor names (`None`: assets missing, skipped).
fn trained(name: &str) -> Option<(tempfile::TempDir, PathBuf, Vec<String>)> {
    if !assets_present() {
        return None;
    }
    let tmp = tempfile::tempdir().unwrap();
    let run = train_and_reconstruct(tmp.path(), &ci_sized(&config_text(name)), &[]);
    let keys = model_file(&run.join("last")).keys();
    Some((tmp, run, keys))
}

#[test]
fn vqgan_star_has_no_cross_attention_and_reconstructs() {
    let Some((_tmp, run, keys)) = trained("baselines/vqgan-star.toml") else {
        return;
    };
    assert!(keys.iter().any(|k| k.starts_with("decoder.mid.block_2.")));
    assert!(
        !keys.iter().any(|k| k.contains("cross_attn")),
        "{:?}",
        keys.iter()
            .filter(|k| k.contains("cross_attn"))
            .collect::<Vec<_>>()
    );
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("last/config.json")).unwrap())
            .unwrap();
    assert_eq!(config["cross_attention"], serde_json::json!(false));
}

#[test]
fn no_projector_has_no_projection_and_reconstructs() {
    let Some((_tmp, _run, keys)) = trained("baselines/no-projector.toml") else {
        return;
    };
    assert!(keys.iter().any(|k| k == "quant_conv.weight"));
    assert!(!keys.iter().any(|k| k.starts_with("codebook_projection")));
}

/// The projector's weight in the checkpoints after iterations 1 and 2.
fn projector_steps(dir: &Path, text: &str) -> (Vec<f32>, Vec<f32>) {
    let run = train_and_reconstruct(dir, &ci_sized(text), &[]);
    let read = |step: &str| {
        model_file(&run.join("checkpoints").join(step))
            .read_f32("codebook_projection.weight")
            .unwrap()
            .1
    };
    (read("step-0000001"), read("step-0000002"))
}

#[test]
fn a_frozen_projector_stays_put_and_a_trainable_one_moves() {
    if !assets_present() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let frozen = tmp.path().join("frozen");
    std::fs::create_dir(&frozen).unwrap();
    let (a, b) = projector_steps(&frozen, &config_text("baselines/frozen-projector.toml"));
    assert_eq!(a, b, "the frozen projector changed");
    let trainable = tmp.path().join("trainable");
    std::fs::create_dir(&trainable).unwrap();
    let (a, b) = projector_steps(&trainable, &config_text("fashion-mnist-tiny.toml"));
    assert_ne!(a, b, "the trainable projector did not change");
}

#[test]
fn lqae_uses_the_llms_input_embeddings_as_its_local_codebook() {
    if !assets_present() {
        return;
    }
    let Some(gguf) =
        v2l::assets::fetch::test_asset("smollm2-135m", "SmolLM2-135M-Instruct.Q4_1.gguf").unwrap()
    else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let table = tmp.path().join("embeddings.safetensors");
    succeed(
        v2l()
            .args(["codebook", "llm-embeddings", "--llm"])
            .arg(&gguf)
            .arg("--out")
            .arg(&table),
    );
    let text = config_text("baselines/lqae.toml").replace(
        "runs/smollm2-input-embeddings.safetensors",
        table.to_str().unwrap(),
    );
    let run = train_and_reconstruct(tmp.path(), &ci_sized(&text), &[]);
    let (shape, rows) = SafetensorsFile::open(run.join("last/local_codebook.safetensors"))
        .unwrap()
        .read_f32("embeddings")
        .unwrap();
    assert_eq!(shape, vec![49_152, 576]);
    let (_, file_rows) = SafetensorsFile::open(&table)
        .unwrap()
        .read_f32("embeddings")
        .unwrap();
    assert!(
        rows == file_rows,
        "the bundle's local codebook is the table"
    );
    let keys = model_file(&run.join("last")).keys();
    assert!(!keys.iter().any(|k| k.starts_with("codebook_projection")));
}

#[test]
fn train_devices_cpu_cpu_runs_two_peers() {
    if !assets_present() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let run = train_and_reconstruct(
        tmp.path(),
        &ci_sized(&config_text("fashion-mnist-tiny.toml")),
        &["--devices", "cpu,cpu"],
    );
    // Two peers, two iterations, one metrics record each.
    let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    assert_eq!(
        metrics.lines().filter(|l| l.contains("\"step\"")).count(),
        2
    );
    let out = v2l()
        .args([
            "train",
            "--steps",
            "1",
            "--devices",
            "cpu,cuda:0",
            "--config",
        ])
        .arg(tmp.path().join("c.toml"))
        .arg("--run-dir")
        .arg(tmp.path().join("other"))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "a mixed or missing backend is a usage error"
    );
}
