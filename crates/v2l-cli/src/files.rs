//! Output files of the CLI: every one is written through a temporary file
//! and a rename ([`v2l::io::atomic`]), so no command leaves a half-written
//! output; an interrupt (Ctrl-C, SIGTERM) removes the temporary files of
//! writes in progress before the process exits.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use crate::error::CliError;

/// Set by a command (`v2l train`) that stops cleanly on the first
/// interrupt; without it the first interrupt exits.
static GRACEFUL: OnceLock<Arc<AtomicBool>> = OnceLock::new();

/// Install the interrupt handler (once, from `main`): on SIGINT / SIGTERM it
/// removes pending temporary files and exits with 130, unless a command
/// asked for a graceful stop ([`graceful_stop`]), which the first interrupt
/// only requests.
pub fn install_interrupt_handler() {
    let installed = ctrlc::set_handler(|| {
        if let Some(stop) = GRACEFUL.get() {
            if !stop.swap(true, Ordering::SeqCst) {
                eprintln!(
                    "\ninterrupted: writing a checkpoint, then stopping (Ctrl-C again to quit now)"
                );
                return;
            }
            eprintln!("\nsecond interrupt: exiting without a checkpoint");
        }
        v2l::io::atomic::remove_pending();
        std::process::exit(130);
    });
    if let Err(e) = installed {
        eprintln!("warning: cannot install the interrupt handler: {e}");
    }
}

/// Ask the interrupt handler to set a flag on the first interrupt instead
/// of exiting; returns the flag.
pub fn graceful_stop() -> Arc<AtomicBool> {
    Arc::clone(GRACEFUL.get_or_init(|| Arc::new(AtomicBool::new(false))))
}

/// Write `bytes` to `path` atomically (exit 6 when it cannot be written).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), CliError> {
    v2l::io::atomic::write(path, bytes).map_err(|e| CliError::write(path, &e))
}

/// Write an image as PNG to `path` atomically.
pub fn save_png(im: &v2l::model::image::RgbImage, path: &Path) -> Result<(), CliError> {
    let mut bytes = Vec::new();
    im.write_to(
        &mut std::io::Cursor::new(&mut bytes),
        v2l::model::image::ImageFormat::Png,
    )
    .map_err(|e| CliError::from(format!("encoding {}: {e}", path.display())))?;
    write_atomic(path, &bytes)
}

/// Create an output folder (and its parents); exit 6 when it cannot be.
pub fn create_dir(dir: &Path) -> Result<(), CliError> {
    std::fs::create_dir_all(dir).map_err(|e| CliError::write(dir, &e))
}

/// Refuse (exit 6) an output path that exists and is not a regular file
/// (a folder, a device such as `/dev/full`): outputs that come with
/// sidecars or work folders cannot be written there.
pub fn check_output_file(path: &Path) -> Result<(), CliError> {
    match std::fs::metadata(path) {
        Ok(m) if !m.is_file() => Err(CliError::new(
            crate::error::ExitKind::Write,
            format!("cannot write {}: not a regular file", path.display()),
        )),
        _ => Ok(()),
    }
}
