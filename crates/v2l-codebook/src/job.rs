//! Resumable long jobs: a work folder of finished chunks, and progress
//! reports.
//!
//! A job (embedding 49k entries × 80 templates, expanding a vocabulary with
//! an LLM, voting over an image set) is cut into chunks. Each finished chunk
//! is written to the work folder atomically (a temporary file renamed into
//! place), so an interrupted run leaves only whole chunks behind; the next
//! run with the same folder and the same parameters skips them. The folder's
//! `job.json` records the parameters (a fingerprint); a run with different
//! parameters is refused with [`CodebookError::JobMismatch`] instead of mixing
//! results.

use std::path::{Path, PathBuf};

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::error::{CodebookError, Result};

/// One progress report: `done` of `total` units of `phase` are finished
/// (including units found finished in the work folder).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress<'a> {
    /// What is being done (`"embedding"`, `"expanding"`, `"voting"`).
    pub phase: &'a str,
    /// Units finished so far.
    pub done: u64,
    /// Units in all.
    pub total: u64,
}

/// A callback receiving [`Progress`] reports.
pub type OnProgress<'a> = &'a mut dyn FnMut(Progress<'_>);

/// A progress callback that does nothing.
pub fn no_progress(_: Progress<'_>) {}

pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CodebookError + '_ {
    move |source| CodebookError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Lower-case hex sha256 of bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let d = Sha256::digest(bytes);
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// sha256 of a list of strings (each length-prefixed, so `["ab", "c"]` and
/// `["a", "bc"]` differ).
pub fn strings_sha256<S: AsRef<str>>(strings: &[S]) -> String {
    let mut h = Sha256::new();
    for s in strings {
        let s = s.as_ref();
        h.update((s.len() as u64).to_le_bytes());
        h.update(s.as_bytes());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// sha256 of f32 values (their little-endian bytes).
pub fn floats_sha256(values: &[f32]) -> String {
    let mut h = Sha256::new();
    for chunk in values.chunks(1 << 16) {
        let bytes: Vec<u8> = chunk.iter().flat_map(|v| v.to_le_bytes()).collect();
        h.update(&bytes);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Write `bytes` to `path` through a temporary file in the same folder and a
/// rename, so readers see the old file or the whole new one.
///
/// # Errors
/// I/O failures.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    v2l_io::atomic::write(path, bytes).map_err(io(path))
}

/// A job's work folder (see the [module documentation](self)).
#[derive(Debug, Clone)]
pub struct WorkDir {
    dir: PathBuf,
}

impl WorkDir {
    /// Open (creating it if needed) the work folder of a job described by
    /// `fingerprint` (a JSON object of its parameters).
    ///
    /// # Errors
    /// [`CodebookError::JobMismatch`] naming the first differing parameter
    /// when the folder holds another job; I/O failures.
    pub fn open(dir: impl Into<PathBuf>, fingerprint: &Value) -> Result<Self> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let job = dir.join("job.json");
        if job.is_file() {
            let text = std::fs::read_to_string(&job).map_err(io(&job))?;
            let old: Value = serde_json::from_str(&text).map_err(|e| CodebookError::Format {
                path: job.clone(),
                message: e.to_string(),
            })?;
            if &old != fingerprint {
                let what = first_difference(&old, fingerprint);
                return Err(CodebookError::JobMismatch { dir, what });
            }
        } else {
            let text =
                serde_json::to_string_pretty(fingerprint).map_err(|e| CodebookError::Format {
                    path: job.clone(),
                    message: e.to_string(),
                })?;
            write_atomic(&job, text.as_bytes())?;
        }
        Ok(Self { dir })
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The file of chunk `index` of `phase` (`phase-000012.ext`).
    pub fn chunk(&self, phase: &str, index: usize, ext: &str) -> PathBuf {
        self.dir.join(format!("{phase}-{index:06}.{ext}"))
    }
}

fn first_difference(old: &Value, new: &Value) -> String {
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                if a.get(k) != Some(v) {
                    return k.clone();
                }
            }
            a.keys()
                .find(|k| !b.contains_key(*k))
                .cloned()
                .unwrap_or_else(|| "parameters".into())
        }
        _ => "parameters".into(),
    }
}

/// Write rows of f32 as a raw little-endian chunk file.
pub(crate) fn write_f32_chunk(path: &Path, values: &[f32]) -> Result<()> {
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    write_atomic(path, &bytes)
}

/// Read a raw f32 chunk of exactly `len` values.
pub(crate) fn read_f32_chunk(path: &Path, len: usize) -> Result<Vec<f32>> {
    let bytes = std::fs::read(path).map_err(io(path))?;
    if bytes.len() != len * 4 {
        return Err(CodebookError::Format {
            path: path.to_path_buf(),
            message: format!(
                "chunk has {} bytes, expected {} ({len} f32 values)",
                bytes.len(),
                len * 4
            ),
        });
    }
    Ok(bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect())
}
