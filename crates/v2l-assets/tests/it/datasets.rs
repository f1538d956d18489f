//! The dataset loaders on the real cached assets (skipped when absent).

use v2l_assets::datasets::{fashion_mnist, mnist, DatasetSpec, LabelledImages, Split};
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

#[test]
fn dataset_names_parse_with_split_and_inversion() {
    let p = |s: &str| DatasetSpec::parse(s).map(|d| (d.name(), d.split, d.inverted));
    assert_eq!(p("fashion-mnist").unwrap(), ("fashion-mnist", None, false));
    assert_eq!(
        p("fashion-mnist:train").unwrap(),
        ("fashion-mnist", Some(Split::Train), false)
    );
    assert_eq!(
        p("fashion-mnist:test:inverted").unwrap(),
        ("fashion-mnist", Some(Split::Test), true)
    );
    assert_eq!(
        p("fashion-mnist:inverted").unwrap(),
        ("fashion-mnist", None, true)
    );
    assert_eq!(p("mnist:inverted").unwrap(), ("mnist", None, true));
    assert_eq!(DatasetSpec::parse("mnist").unwrap().asset(), "mnist-digits");
    for bad in [
        "",
        "cifar",
        "mnist:train",
        "fashion-mnist:inverted:test",
        "fashion-mnist:val",
        "fashion-mnist:test:inverted:inverted",
        "Fashion-MNIST",
    ] {
        let e = DatasetSpec::parse(bad).unwrap_err().to_string();
        assert!(
            e.contains(&format!("{bad:?}")) && e.contains("[:inverted]"),
            "{bad}: {e}"
        );
    }
}

#[test]
fn inverted_images_are_255_minus_each_grey_level() {
    let set = LabelledImages {
        name: "tiny".into(),
        width: 2,
        height: 1,
        pixels: vec![0, 255, 17, 128],
        labels: vec![0, 1],
        class_names: vec!["a".into(), "b".into()],
    };
    let inv = set.clone().inverted();
    assert_eq!(inv.pixels, vec![255, 0, 238, 127]);
    assert_eq!(inv.name, "tiny:inverted");
    assert_eq!((inv.labels, inv.width, inv.height), (set.labels, 2, 1));
    if test_asset("fashion-mnist", "t10k-images-idx3-ubyte.gz")
        .unwrap()
        .is_none()
    {
        return;
    }
    // On the cached test split: the first image's background (0 in the
    // file) becomes 255, and the whole set inverts pixel by pixel.
    let spec = DatasetSpec::parse("fashion-mnist:inverted").unwrap();
    let (plain, inv) = (
        fashion_mnist(Split::Test).unwrap(),
        spec.open(Split::Test).unwrap(),
    );
    assert_eq!(inv.name, "fashion-mnist/test:inverted");
    assert_eq!(plain.image(0).unwrap()[0], 0);
    assert_eq!(inv.image(0).unwrap()[0], 255);
    assert!(plain
        .pixels
        .iter()
        .zip(&inv.pixels)
        .all(|(a, b)| a + b == 255));
}
