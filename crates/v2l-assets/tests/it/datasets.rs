//! The dataset loaders on the real cached assets (skipped when absent).

use v2l_assets::datasets::{fashion_mnist, mnist, Split};
use v2l_assets::fetch::test_asset;

#[test]
fn fashion_mnist_test_split() {
    if test_asset("fashion-mnist", "t10k-images-idx3-ubyte.gz")
        .unwrap()
        .is_none()
    {
        return;
    }
    let d = fashion_mnist(Split::Test).unwrap();
    assert_eq!((d.len(), d.width, d.height), (10_000, 28, 28));
    // The test split is balanced: 1,000 images per class.
    for c in 0..10u8 {
        assert_eq!(d.labels.iter().filter(|&&l| l == c).count(), 1000);
    }
    // Its first image is an ankle boot (label 9).
    assert_eq!(d.class_name(d.labels[0]), "Ankle boot");
    assert_eq!(d.image(0).unwrap().len(), 784);
    assert!(d.image(10_000).is_none());
}

#[test]
fn mnist_digits() {
    if test_asset("mnist-digits", "0.json").unwrap().is_none() {
        return;
    }
    let d = mnist().unwrap();
    assert_eq!(d.len(), 10_000);
    assert_eq!(d.pixels.len(), 10_000 * 784);
    // Digits come grouped 0, 1, …, 9, each present.
    assert!(d.labels.windows(2).all(|w| w[0] <= w[1]));
    assert_eq!(d.labels[0], 0);
    assert_eq!(d.labels[9_999], 9);
    assert_eq!(d.class_name(3), "three");
    // Ink is white on black: most pixels are 0, the maximum is 255.
    let zeros = d.pixels.iter().filter(|&&p| p == 0).count();
    assert!(zeros > d.pixels.len() / 2);
    assert_eq!(d.pixels.iter().max(), Some(&255));
}
