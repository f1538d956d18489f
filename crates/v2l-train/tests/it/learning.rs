//! Learning for real: the committed `configs/fashion-mnist-tiny.toml`, its
//! first 100 iterations. The validation PSNR (reconstructions of 8 fixed
//! Fashion-MNIST test images, measured independently of the training loss)
//! must rise by at least 2 dB over the untrained model's. The full run and
//! its curve are in `docs/training.md`.

use std::path::PathBuf;

use burn::backend::Autodiff;
use v2l_train::{train, RunOptions, TrainConfig};

type B = Autodiff<burn::backend::Flex>;

#[test]
fn fashion_mnist_tiny_learns_in_100_iterations() {
    let Some(vgg) = v2l_assets::fetch::test_asset("lpips-backbones", "vgg16.ckpt").unwrap() else {
        return;
    };
    if v2l_assets::fetch::test_asset("fashion-mnist", "train-images-idx3-ubyte.gz")
        .unwrap()
        .is_none()
    {
        return;
    }
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../configs/fashion-mnist-tiny.toml");
    let mut config = TrainConfig::from_toml(&std::fs::read_to_string(path).unwrap()).unwrap();
    config.max_steps = Some(100);
    config.checkpoint_every = 100;
    let dir = tempfile::tempdir().unwrap();
    let options = RunOptions {
        steps: None,
        interrupt: None,
        lpips_weights: vgg,
    };
    let mut seen = 0;
    let summary = train::<B>(
        &config,
        dir.path(),
        &options,
        &Default::default(),
        &mut |p| {
            seen = p.step;
        },
    )
    .unwrap();
    assert_eq!((summary.steps, seen), (100, 100));
    let before = summary.untrained_psnr.unwrap();
    let after = summary.val_psnr.unwrap();
    eprintln!("validation PSNR {before:.2} dB → {after:.2} dB");
    assert!(after >= before + 2.0, "{before:.2} dB → {after:.2} dB");
    assert!(dir.path().join("last/samples.png").is_file());
    assert!(dir.path().join("curves.png").is_file());
}
