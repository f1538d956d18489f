//! Export a `v2l train` checkpoint as the default model's embedded files
//! (`v2l::default_model::export_checkpoint`), as `scripts/build_default.sh`
//! does after training:
//!
//! ```text
//! cargo run --example export_default -- runs/default/train/checkpoints/step-0001500 crates/v2l/default
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [checkpoint, out] = args.as_slice() else {
        eprintln!("usage: export_default CHECKPOINT_DIR OUT_DIR");
        return ExitCode::from(2);
    };
    match v2l::default_model::export_checkpoint(checkpoint, out) {
        Ok(()) => {
            println!("exported {} into {}", checkpoint.display(), out.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
