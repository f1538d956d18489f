//! `v2l train`: train a V2L tokenizer in a run directory; rerunning the
//! same command resumes it.

use crate::args::TrainArgs;
use crate::error::{err, CliError};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use v2l::backend::{Devices, OnAutodiffDevices};
use v2l::burn::tensor::backend::AutodiffBackend;
use v2l::train::{PeerConfig, Progress, RunOptions, TrainConfig};

/// Run `v2l train`.
pub fn run(args: TrainArgs) -> Result<(), CliError> {
    if args.print_default_config {
        print!("{}", TrainConfig::default_config_text());
        return Ok(());
    }
    let (Some(config_path), Some(run_dir)) = (&args.config, &args.run_dir) else {
        return Err(CliError::usage("--config and --run-dir are required"));
    };
    let text = std::fs::read_to_string(config_path).map_err(|e| CliError::read(config_path, &e))?;
    let mut config =
        TrainConfig::from_toml(&text).map_err(|e| err(e).context(config_path.display()))?;
    if let Some(s) = args.steps {
        config.max_steps = Some(s);
    }
    let lpips = match &args.lpips_weights {
        Some(p) => p.clone(),
        None => crate::quality::cached_asset(
            v2l::metrics::lpips::ASSET,
            v2l::metrics::lpips::LpipsNet::Vgg.asset_file(),
        )?,
    };
    let stop = crate::files::graceful_stop();
    let devices = args
        .devices
        .unwrap_or_else(|| Devices(vec![args.device.device]));
    let job = Job {
        config,
        run_dir: run_dir.clone(),
        lpips,
        stop,
    };
    v2l::backend::run_autodiff_on_all(&devices, job).map_err(|e| CliError::usage(e.to_string()))?
}

struct Job {
    config: TrainConfig,
    run_dir: PathBuf,
    lpips: PathBuf,
    stop: Arc<AtomicBool>,
}

impl OnAutodiffDevices for Job {
    type Output = Result<(), CliError>;

    fn run<B: AutodiffBackend>(self, devices: Vec<B::Device>) -> Result<(), CliError> {
        let options = RunOptions {
            steps: self.config.max_steps,
            interrupt: Some(&self.stop),
            lpips_weights: self.lpips.clone(),
        };
        let bar = crate::progress::bar(0, "steps");
        let mut on_step = |p: &Progress<'_>| {
            if bar.length() != Some(p.total) {
                bar.set_length(p.total);
            }
            bar.set_position(p.step);
            let r = p.report;
            bar.set_message(format!(
                "loss {:.4} rec {:.4} lpips {:.4} q {:.4} g {:.3} d_w {:.3}{} lr {:.2e}",
                r.loss,
                r.rec_loss,
                r.p_loss,
                r.qloss,
                r.g_loss,
                r.d_weight,
                r.d_loss.map(|d| format!(" d {d:.3}")).unwrap_or_default(),
                p.lr
            ));
        };
        let peers = PeerConfig::local(devices);
        let summary = v2l::train::train_parallel::<B>(
            &self.config,
            &self.run_dir,
            &options,
            &peers,
            &mut on_step,
        )
        .map_err(err)?;
        bar.finish_and_clear();
        let resumed = if summary.resumed_from > 0 {
            format!(" (resumed at {})", summary.resumed_from)
        } else {
            String::new()
        };
        eprintln!(
            "{} at iteration {}{resumed}; checkpoint {}{}",
            if summary.interrupted {
                "stopped"
            } else {
                "done"
            },
            summary.steps,
            summary
                .checkpoint
                .as_ref()
                .map_or_else(|| "none".into(), |p| p.display().to_string()),
            match (summary.untrained_psnr, summary.val_psnr) {
                (Some(a), Some(b)) =>
                    format!("; validation PSNR {a:.2} dB untrained, {b:.2} dB now"),
                (None, Some(b)) => format!("; validation PSNR {b:.2} dB"),
                _ => String::new(),
            }
        );
        Ok(())
    }
}
