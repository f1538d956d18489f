//! Crash-safe output files: every file v2l-rs writes goes through a
//! temporary file in the same folder and a rename, so a reader (or a
//! resumed job) sees either the old file or the whole new one, never half
//! of one.
//!
//! The temporary file of `dir/name` is `dir/.name.v2l-tmp`: the same name
//! every time, so a write killed mid-way (SIGKILL, power loss) leaves at
//! most that one file, which the next write of `name` replaces. Temporary
//! files being written are registered; a program's interrupt handler calls
//! [`remove_pending`] to delete them before it exits.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

static PENDING: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// The temporary file a write of `path` goes through: `.name.v2l-tmp` in
/// the same folder.
pub fn temporary_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.v2l-tmp"))
}

/// Whether `path` names a temporary file of [`write_with`].
pub fn is_temporary(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with('.') && n.ends_with(".v2l-tmp"))
}

/// Write `bytes` to `path` atomically (see the [module documentation](self)).
///
/// # Errors
/// The I/O error of creating, writing, syncing or renaming the temporary
/// file; `path` is then unchanged and the temporary file removed.
pub fn write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_with(path, |f| f.write_all(bytes))
}

/// Write `path` atomically with `fill`, which writes the content into the
/// temporary file. A `path` that exists and is not a regular file (a
/// device such as `/dev/stdout` or `/dev/full`, a FIFO) is written in
/// place: it cannot be replaced by a rename.
///
/// # Errors
/// As [`write()`], and `fill`'s errors; a folder at `path`.
pub fn write_with(path: &Path, fill: impl FnOnce(&mut File) -> io::Result<()>) -> io::Result<()> {
    if let Ok(meta) = std::fs::metadata(path) {
        if meta.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::IsADirectory,
                "is a folder, not a file",
            ));
        }
        if !meta.is_file() {
            let mut f = std::fs::OpenOptions::new().write(true).open(path)?;
            fill(&mut f)?;
            return f.flush();
        }
    }
    let tmp = temporary_path(path);
    register(&tmp);
    let res = File::create(&tmp)
        .and_then(|mut f| {
            fill(&mut f)?;
            f.flush()?;
            f.sync_all()
        })
        .and_then(|()| std::fs::rename(&tmp, path));
    if res.is_err() {
        std::fs::remove_file(&tmp).ok();
    }
    unregister(&tmp);
    res
}

fn register(tmp: &Path) {
    if let Ok(mut p) = PENDING.lock() {
        p.push(tmp.to_path_buf());
    }
}

fn unregister(tmp: &Path) {
    if let Ok(mut p) = PENDING.lock() {
        if let Some(i) = p.iter().rposition(|x| x == tmp) {
            p.swap_remove(i);
        }
    }
}

/// Delete the temporary files of writes in progress (for an interrupt
/// handler that is about to exit); returns how many were removed.
pub fn remove_pending() -> usize {
    let pending = match PENDING.lock() {
        Ok(mut p) => std::mem::take(&mut *p),
        Err(_) => return 0,
    };
    pending
        .iter()
        .filter(|t| std::fs::remove_file(t).is_ok())
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_replaces_the_file_whole_and_leaves_no_temporary() -> io::Result<()> {
        let dir = std::env::temp_dir().join(format!("v2l-atomic-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let p = dir.join("out.json");
        std::fs::write(&p, b"old")?;
        // A stale temporary file of a killed write is replaced, not kept.
        std::fs::write(temporary_path(&p), b"half")?;
        write(&p, b"new")?;
        assert_eq!(std::fs::read(&p)?, b"new");
        let names: Vec<_> = std::fs::read_dir(&dir)?
            .filter_map(|e| e.ok().map(|e| e.file_name()))
            .collect();
        assert_eq!(names, [std::ffi::OsString::from("out.json")]);
        // A failing fill leaves the old file and no temporary.
        let e = write_with(&p, |_| Err(io::Error::other("boom")));
        assert!(e.is_err());
        assert_eq!(std::fs::read(&p)?, b"new");
        assert!(!temporary_path(&p).exists());
        assert!(is_temporary(&temporary_path(&p)) && !is_temporary(&p));
        std::fs::remove_dir_all(&dir)
    }

    #[test]
    fn a_device_is_written_in_place_and_a_full_disk_is_reported() {
        // /dev/full fails every write with ENOSPC; it must be written in
        // place (a rename would replace the device node).
        let e = write(Path::new("/dev/full"), b"x");
        assert_eq!(e.map_err(|e| e.kind()), Err(io::ErrorKind::StorageFull));
        assert!(Path::new("/dev/full").exists());
        assert!(!temporary_path(Path::new("/dev/full")).exists());
        let e = write(&std::env::temp_dir(), b"x");
        assert_eq!(e.map_err(|e| e.kind()), Err(io::ErrorKind::IsADirectory));
    }
}
