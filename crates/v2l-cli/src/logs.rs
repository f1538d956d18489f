//! Evaluation logs that carry their settings: file fingerprints and the
//! settings line every `eval` / `classify` log starts with.

use std::path::Path;

use serde_json::{json, Value};
use v2l::prompt::eval::{old_path, ExistingLog, JsonlLog};
use v2l::prompt::PromptError;

use crate::error::{err, CliError};

/// The sha256 of a file, or of a folder: the sha256 of one
/// `relative/path<TAB>sha256` string per regular file, sorted by path
/// ([`v2l::codebook::job::strings_sha256`]), so a model bundle or an HF
/// folder has one fingerprint.
///
/// # Errors
/// The path cannot be read (exit 3 when it does not exist).
pub fn fingerprint(path: &Path) -> Result<String, CliError> {
    fingerprint_matching(path, |_| true)
}

/// [`fingerprint`] of the files of a folder whose names `keep` accepts
/// (a file is fingerprinted whatever its name).
pub fn fingerprint_matching(path: &Path, keep: impl Fn(&str) -> bool) -> Result<String, CliError> {
    use crate::quality::sha256;
    let meta = std::fs::metadata(path).map_err(|e| CliError::read(path, &e))?;
    if meta.is_file() {
        return sha256(path);
    }
    let mut files = Vec::new();
    let mut stack = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).map_err(|e| CliError::read(&dir, &e))? {
            let p = entry.map_err(|e| CliError::read(&dir, &e))?.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.is_file() && p.file_name().and_then(|n| n.to_str()).is_some_and(&keep) {
                files.push(p);
            }
        }
    }
    files.sort();
    let mut lines = Vec::new();
    for f in &files {
        let rel = f.strip_prefix(path).unwrap_or(f);
        lines.push(format!("{}\t{}", rel.display(), sha256(f)?));
    }
    Ok(v2l::codebook::job::strings_sha256(&lines))
}

/// [`fingerprint`] of a V2L checkpoint, reusing the sha256 the tokenizer
/// took when it opened a single-file checkpoint (`provenance.sha256` of
/// that file), so a large `.pth` is not read twice.
pub fn checkpoint_fingerprint(ckpt: &Path, provenance: &Value) -> Result<String, CliError> {
    match provenance["sha256"].as_str() {
        Some(h) if ckpt.is_file() => Ok(h.to_string()),
        _ => fingerprint(ckpt),
    }
}

/// [`fingerprint`] of an optional path (`null` when absent).
pub fn fingerprint_opt(path: Option<&Path>) -> Result<Value, CliError> {
    Ok(match path {
        Some(p) => json!(fingerprint(p)?),
        None => Value::Null,
    })
}

/// The tool's version as a log setting.
pub fn tool() -> Value {
    json!(format!("v2l-rs {}", env!("CARGO_PKG_VERSION")))
}

/// Open the log at `path` for a run with `settings`: resume it when it
/// recorded the same settings, start it when new; with `new_log` the old
/// log is kept as `<log>.old` and a new one started.
///
/// # Errors
/// Exit 5 naming the differing settings when the log was written with
/// other settings; I/O and format errors of the log.
pub fn open_log(path: &Path, settings: Value, new_log: bool) -> Result<JsonlLog, CliError> {
    let existing = if new_log {
        ExistingLog::Replace
    } else {
        ExistingLog::Resume
    };
    JsonlLog::open_with_settings(path, settings, existing).map_err(|e| match e {
        PromptError::SettingsChanged { .. } => CliError::refused(format!(
            "{e}\nrefusing to resume it: pass --new-log to start the log again \
             (the old one is kept as {}), or give another --log",
            old_path(path).display()
        )),
        e => err(e),
    })
}
