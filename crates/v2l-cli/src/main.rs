//! `v2l` — the command-line tool of v2l-rs.
//!
//! Conventions shared by every subcommand: `--json` prints machine-readable
//! output on stdout; progress goes to stderr and is hidden when stderr is not
//! a terminal; errors go to stderr with a documented exit status
//! ([`error::ExitKind`]: 2 usage, 3 missing input or asset, 4 malformed
//! input, 5 refused, 6 cannot write output, 1 anything else).

use std::process::ExitCode;

use args::{Cli, Command};
use clap::Parser;

mod args;
mod assets;
mod clip;
mod codebook;
mod complete;
mod demo;
mod device;
mod error;
mod files;
mod logs;
mod metrics;
mod progress;
mod quality;
mod tasks;
mod tokenize;
mod train;

fn main() -> ExitCode {
    let cli = Cli::parse();
    files::install_interrupt_handler();
    let result = match cli.command {
        Command::Assets(cmd) => assets::run(cmd).map_err(error::err),
        Command::Psnr { pair, y } => {
            let ch = if y {
                v2l::metrics::psnr::PsnrChannels::Y
            } else {
                v2l::metrics::psnr::PsnrChannels::Rgb
            };
            metrics::run(pair, metrics::Metric::Psnr(ch))
        }
        Command::Ssim { pair } => metrics::run(pair, metrics::Metric::Ssim),
        Command::Clip(args) => clip::run(args),
        Command::Codebook(cmd) => codebook::run(cmd),
        Command::Complete(args) => complete::run(args),
        Command::Fid(args) => quality::run_fid(args),
        Command::Lpips(args) => quality::run_lpips(args),
        Command::Encode(args) => tokenize::run_encode(args),
        Command::Reconstruct(args) => tokenize::run_reconstruct(args),
        Command::Decode(args) => tokenize::run_decode(args),
        Command::ImportOfficial(args) => tokenize::run_import(args),
        Command::Classify(a) => tasks::run(a),
        Command::Caption(a) => tasks::run(a),
        Command::Vqa(a) => tasks::run(a),
        Command::Restore(a) => tasks::run(a),
        Command::Eval(cmd) => tasks::run_eval(cmd),
        Command::Train(args) => train::run(args),
        Command::Demo(args) => demo::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.kind.code())
        }
    }
}
