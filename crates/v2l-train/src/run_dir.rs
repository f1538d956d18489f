//! A training run's directory:
//!
//! ```text
//! DIR/config.toml                       the run's configuration
//! DIR/checkpoints/step-NNNNNNN/         one self-contained checkpoint per save
//! DIR/last -> checkpoints/step-NNNNNNN  the newest (a symlink, swapped atomically)
//! DIR/metrics.jsonl                     one JSON record per line
//! ```
//!
//! Every file is written to a temporary name, synced and renamed into
//! place; a checkpoint folder is filled under a temporary name and renamed
//! whole; `last` is replaced by renaming a new link over it. A crash leaves
//! the previous state intact, and the next open removes the leftovers.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::config::TrainConfig;
use crate::error::{Result, TrainError};

const CONFIG: &str = "config.toml";
const CHECKPOINTS: &str = "checkpoints";
const LAST: &str = "last";
const METRICS: &str = "metrics.jsonl";
const TMP_PREFIX: &str = ".tmp-";

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TrainError + '_ {
    move |source| TrainError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Write `bytes` to `path` through a synced temporary file in the same
/// folder and a rename: readers see the old file or the new one, never a
/// part.
///
/// # Errors
/// [`TrainError::Io`] naming the path.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let tmp = dir.join(format!("{TMP_PREFIX}{name}"));
    let mut f = fs::File::create(&tmp).map_err(io(&tmp))?;
    f.write_all(bytes).map_err(io(&tmp))?;
    f.sync_all().map_err(io(&tmp))?;
    drop(f);
    fs::rename(&tmp, path).map_err(io(path))?;
    sync_dir(dir)
}

fn sync_dir(dir: &Path) -> Result<()> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))
}

/// The folder name of the checkpoint at `step`.
pub fn step_name(step: u64) -> String {
    format!("step-{step:07}")
}

fn parse_step(name: &str) -> Option<u64> {
    name.strip_prefix("step-")?.parse().ok()
}

/// An opened run directory.
#[derive(Debug, Clone)]
pub struct RunDir {
    dir: PathBuf,
    config: TrainConfig,
}

impl RunDir {
    /// Create `dir` for `config`, or reopen it: a stored configuration that
    /// differs from `config` in any key but `max_steps` is refused, naming
    /// the keys. Leftovers of an interrupted save are removed.
    ///
    /// # Errors
    /// [`TrainError::Refused`] for another configuration; I/O errors; a
    /// stored configuration that does not parse.
    pub fn open(dir: impl AsRef<Path>, config: &TrainConfig) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        let checkpoints = dir.join(CHECKPOINTS);
        fs::create_dir_all(&checkpoints).map_err(io(&checkpoints))?;
        let stored = dir.join(CONFIG);
        if stored.is_file() {
            let text = fs::read_to_string(&stored).map_err(io(&stored))?;
            let old = TrainConfig::from_toml(&text)?;
            let keys = old.differing_keys(config);
            if !keys.is_empty() {
                return Err(TrainError::Refused {
                    dir: dir.clone(),
                    keys,
                });
            }
        }
        atomic_write(&stored, config.to_toml()?.as_bytes())?;
        let run = Self {
            dir,
            config: config.clone(),
        };
        run.remove_leftovers()?;
        Ok(run)
    }

    fn remove_leftovers(&self) -> Result<()> {
        for folder in [self.dir.clone(), self.dir.join(CHECKPOINTS)] {
            for entry in fs::read_dir(&folder).map_err(io(&folder))?.flatten() {
                let name = entry.file_name().to_string_lossy().to_string();
                if name.starts_with(TMP_PREFIX) {
                    let p = entry.path();
                    let r = if p.is_dir() && !p.is_symlink() {
                        fs::remove_dir_all(&p)
                    } else {
                        fs::remove_file(&p)
                    };
                    r.map_err(io(&p))?;
                }
            }
        }
        Ok(())
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The configuration (with this invocation's `max_steps`).
    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// The checkpoint steps present, ascending.
    ///
    /// # Errors
    /// The checkpoints folder cannot be read.
    pub fn steps(&self) -> Result<Vec<u64>> {
        let folder = self.dir.join(CHECKPOINTS);
        let mut steps: Vec<u64> = fs::read_dir(&folder)
            .map_err(io(&folder))?
            .flatten()
            .filter_map(|e| parse_step(&e.file_name().to_string_lossy()))
            .collect();
        steps.sort_unstable();
        Ok(steps)
    }

    /// The newest checkpoint (`last`): its step and folder.
    pub fn last(&self) -> Option<(u64, PathBuf)> {
        let target = fs::read_link(self.dir.join(LAST)).ok()?;
        let step = parse_step(&target.file_name()?.to_string_lossy())?;
        Some((step, self.dir.join(target)))
    }

    /// Save the checkpoint of `step`: `fill` writes its files into an empty
    /// temporary folder, which is then renamed to `checkpoints/step-N` and
    /// made `last`; then only the newest `keep` checkpoints are kept.
    ///
    /// # Errors
    /// Whatever `fill` returns; I/O errors. On an error `last` is unchanged.
    pub fn save(
        &self,
        step: u64,
        keep: usize,
        fill: impl FnOnce(&Path) -> Result<()>,
    ) -> Result<PathBuf> {
        let folder = self.dir.join(CHECKPOINTS);
        let name = step_name(step);
        let tmp = folder.join(format!("{TMP_PREFIX}{name}"));
        if tmp.exists() {
            fs::remove_dir_all(&tmp).map_err(io(&tmp))?;
        }
        fs::create_dir_all(&tmp).map_err(io(&tmp))?;
        fill(&tmp)?;
        sync_dir(&tmp)?;
        let done = folder.join(&name);
        if done.exists() {
            fs::remove_dir_all(&done).map_err(io(&done))?;
        }
        fs::rename(&tmp, &done).map_err(io(&done))?;
        sync_dir(&folder)?;
        // Swap `last` by renaming a fresh link over it.
        let link_tmp = self.dir.join(format!("{TMP_PREFIX}{LAST}"));
        let _ = fs::remove_file(&link_tmp);
        symlink_dir(&Path::new(CHECKPOINTS).join(&name), &link_tmp)?;
        fs::rename(&link_tmp, self.dir.join(LAST)).map_err(io(&link_tmp))?;
        sync_dir(&self.dir)?;
        let steps = self.steps()?;
        let excess = steps.len().saturating_sub(keep.max(1));
        for old in steps.into_iter().take(excess).filter(|&s| s != step) {
            let p = folder.join(step_name(old));
            fs::remove_dir_all(&p).map_err(io(&p))?;
        }
        Ok(done)
    }

    /// Append one record to `metrics.jsonl` (one line, synced).
    ///
    /// # Errors
    /// I/O errors.
    pub fn append_metrics(&self, record: &serde_json::Value) -> Result<()> {
        let path = self.dir.join(METRICS);
        let mut f = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io(&path))?;
        writeln!(f, "{record}").map_err(io(&path))?;
        f.sync_data().map_err(io(&path))
    }

    /// The records of `metrics.jsonl`; a last line cut by an interruption
    /// is dropped.
    ///
    /// # Errors
    /// I/O errors; a malformed line other than the last.
    pub fn metrics(&self) -> Result<Vec<serde_json::Value>> {
        let path = self.dir.join(METRICS);
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io(&path)(e)),
        };
        let lines: Vec<&str> = text.lines().collect();
        let mut out = Vec::with_capacity(lines.len());
        for (i, line) in lines.iter().enumerate() {
            match serde_json::from_str(line) {
                Ok(v) => out.push(v),
                Err(_) if i + 1 == lines.len() && !text.ends_with('\n') => break,
                Err(e) => {
                    return Err(TrainError::Malformed {
                        path,
                        line: i + 1,
                        message: e.to_string(),
                    })
                }
            }
        }
        Ok(out)
    }
}

#[cfg(unix)]
fn symlink_dir(target: &Path, link: &Path) -> Result<()> {
    std::os::unix::fs::symlink(target, link).map_err(io(link))
}

#[cfg(windows)]
fn symlink_dir(target: &Path, link: &Path) -> Result<()> {
    std::os::windows::fs::symlink_dir(target, link).map_err(io(link))
}
