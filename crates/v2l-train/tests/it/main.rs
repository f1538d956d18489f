//! Tests of the training configuration and schedule. Expected values are
//! the reference's (`Run.sh` and argument defaults, spec §4) and closed
//! forms of `util/lr_sched.py`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod accum;
mod learning;
mod objective;
mod parallel;
mod parity;

use v2l_train::{GlobalEmbedder, LrSchedule, TrainConfig};

const MINIMAL: &str = "[codebooks]\nrandom_local = 300\nrandom_global = 40\n";

#[test]
fn defaults_are_run_sh() {
    let c = TrainConfig::from_toml(MINIMAL).unwrap();
    assert_eq!(
        (c.batch_size, c.image_size, c.epochs, c.warmup_epochs),
        (8, 128, 100, 5)
    );
    assert_eq!(
        (c.lr, c.min_lr, c.rate_q, c.rate_p, c.rate_d),
        (4.5e-4, 0.0, 1.0, 0.1, 0.75)
    );
    assert_eq!((c.disc_start, c.embed_dim, c.accum_iter), (10_000, 768, 1));
    assert_eq!(
        (c.use_cblinear, c.use_crossatt_dec, c.tuning_codebook),
        (1, 1, 0)
    );
    // vqgan_configs/v2l.yaml.
    let d = &c.ddconfig;
    assert_eq!(
        (d.z_channels, d.resolution, d.ch, d.num_res_blocks),
        (256, 256, 128, 2)
    );
    assert_eq!(
        (d.ch_mult.clone(), d.attn_resolutions.clone()),
        (vec![1, 2, 2, 4], vec![16])
    );
    assert_eq!(c.global_embedder().unwrap(), GlobalEmbedder::None);
    assert_eq!(c.max_steps, None);
}

#[test]
fn keys_override_and_round_trip() {
    let text = format!(
        "lr = 1e-3\nmax_steps = 200\nseed = 7\nglobal_embedder = \"clip:/m/ViT.pt\"\n\
         image_size = 32\n[ddconfig]\nch = 32\nch_mult = [1, 2]\nz_channels = 16\n\
         [data]\ndataset = \"folder\"\npath = \"/imgs\"\n{MINIMAL}"
    );
    let c = TrainConfig::from_toml(&text).unwrap();
    assert_eq!((c.lr, c.max_steps, c.seed), (1e-3, Some(200), 7));
    assert_eq!(c.ddconfig.ch_mult, vec![1, 2]);
    // Untouched ddconfig keys keep the yaml's values.
    assert_eq!(c.ddconfig.num_res_blocks, 2);
    assert_eq!(
        c.global_embedder().unwrap(),
        GlobalEmbedder::Clip("/m/ViT.pt".into())
    );
    let back = TrainConfig::from_toml(&c.to_toml().unwrap()).unwrap();
    assert_eq!(back, c);
}

fn error(text: &str) -> String {
    TrainConfig::from_toml(text).unwrap_err().to_string()
}

#[test]
fn bad_configurations_are_refused_with_their_keys() {
    let e = error(&format!(
        "learning_rate = 1\n[ddconfig]\nchh = 3\n{MINIMAL}"
    ));
    assert!(
        e.contains("unknown key(s): ddconfig.chh, learning_rate"),
        "{e}"
    );
    let e = error(&format!("lr = \"fast\"\n{MINIMAL}"));
    assert!(e.contains("lr"), "{e}");
    assert!(error("lr = 1e-3").contains("codebooks.local"));
    let both = "[codebooks]\nlocal = \"l\"\nrandom_local = 3\nrandom_global = 4\n";
    assert!(error(both).contains("either local or random_local"));
    assert!(error(&format!("[data]\ndataset = \"folder\"\n{MINIMAL}")).contains("data.path"));
    assert!(error(&format!("[data]\ndataset = \"cifar\"\n{MINIMAL}")).contains("cifar"));
    // The trainer chooses the split; inversion is the only modifier.
    let e = error(&format!(
        "[data]\ndataset = \"fashion-mnist:train\"\n{MINIMAL}"
    ));
    assert!(e.contains("split is chosen by the trainer"), "{e}");
    let inv = TrainConfig::from_toml(&format!(
        "[data]\ndataset = \"fashion-mnist:inverted\"\n{MINIMAL}"
    ))
    .unwrap();
    assert_eq!(inv.data.dataset, "fashion-mnist:inverted");
    // 3 downsampling steps need a multiple of 8.
    assert!(error(&format!("image_size = 100\n{MINIMAL}")).contains("multiple of 8"));
    assert!(error(&format!("warmup_epochs = 200\n{MINIMAL}")).contains("warmup_epochs"));
    assert!(error(&format!("use_cblinear = 2\n{MINIMAL}")).contains("use_cblinear"));
    assert!(error(&format!("global_embedder = \"siglip\"\n{MINIMAL}")).contains("siglip"));
    // ch must be a multiple of the 32 GroupNorm groups.
    assert!(error(&format!("[ddconfig]\nch = 48\n{MINIMAL}")).contains("32"));
    assert!(error("lr = ").contains("not valid TOML"));
}

#[test]
fn only_max_steps_may_change_on_resume() {
    let a = TrainConfig::from_toml(MINIMAL).unwrap();
    let b = TrainConfig::from_toml(&format!(
        "lr = 1e-3\nmax_steps = 5\n[ddconfig]\nch = 64\n{MINIMAL}"
    ))
    .unwrap();
    assert_eq!(a.differing_keys(&b), vec!["ddconfig.ch", "lr"]);
    let c = TrainConfig::from_toml(&format!("max_steps = 9\n{MINIMAL}")).unwrap();
    assert!(a.differing_keys(&c).is_empty());
}

#[test]
fn schedule_is_warmup_then_half_cosine() {
    let s = LrSchedule {
        lr: 4.5e-4,
        min_lr: 1e-5,
        warmup_epochs: 5.0,
        epochs: 100.0,
    };
    let close = |a: f64, b: f64| assert!((a - b).abs() < 1e-15, "{a} vs {b}");
    close(s.at_epoch(0.0), 0.0);
    close(s.at_epoch(2.5), 4.5e-4 * 0.5);
    close(s.at_epoch(5.0), 4.5e-4);
    // Halfway through the cosine: the mean of lr and min_lr.
    close(s.at_epoch(52.5), (4.5e-4 + 1e-5) / 2.0);
    close(s.at_epoch(100.0), 1e-5);
    // e = step / steps_per_epoch + epoch.
    close(s.at_iter(2_500, 1_000), s.at_epoch(2.5));
    close(s.at_iter(5_999, 1_000), s.at_epoch(5.999));
}

mod run_dir {
    use super::*;
    use v2l_train::run_dir::{atomic_write, step_name};
    use v2l_train::{RunDir, TrainError};

    fn config(extra: &str) -> TrainConfig {
        TrainConfig::from_toml(&format!("{extra}\n{MINIMAL}")).unwrap()
    }

    fn save(run: &RunDir, step: u64, keep: usize) -> std::path::PathBuf {
        run.save(step, keep, |dir| {
            atomic_write(&dir.join("model.txt"), format!("step {step}").as_bytes())
        })
        .unwrap()
    }

    #[test]
    fn resume_refuses_other_settings_and_accepts_new_max_steps() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("run");
        RunDir::open(&dir, &config("max_steps = 10")).unwrap();
        let again = RunDir::open(&dir, &config("max_steps = 20")).unwrap();
        assert_eq!(again.config().max_steps, Some(20));
        match RunDir::open(&dir, &config("max_steps = 20\nlr = 1e-3\nseed = 3")) {
            Err(TrainError::Refused { keys, .. }) => assert_eq!(keys, vec!["lr", "seed"]),
            other => panic!("expected a refusal, got {other:?}"),
        }
        let stored = std::fs::read_to_string(dir.join("config.toml")).unwrap();
        assert_eq!(TrainConfig::from_toml(&stored).unwrap().max_steps, Some(20));
    }

    #[test]
    fn checkpoints_are_whole_last_moves_and_old_ones_go() {
        let tmp = tempfile::tempdir().unwrap();
        let run = RunDir::open(tmp.path(), &config("")).unwrap();
        assert!(run.last().is_none());
        for step in [100, 200, 300, 400] {
            save(&run, step, 2);
        }
        assert_eq!(run.steps().unwrap(), vec![300, 400]);
        let (step, path) = run.last().unwrap();
        assert_eq!(step, 400);
        assert_eq!(path, tmp.path().join("checkpoints").join(step_name(400)));
        // `DIR/last` opens the newest checkpoint directly.
        let text = std::fs::read_to_string(tmp.path().join("last/model.txt")).unwrap();
        assert_eq!(text, "step 400");
        // A save that fails leaves `last` and the checkpoints as they were.
        let err = run.save(500, 2, |dir| {
            atomic_write(&dir.join("half.txt"), b"x")?;
            Err(TrainError::Config("disk full".into()))
        });
        assert!(err.is_err());
        assert_eq!(run.last().unwrap().0, 400);
        assert_eq!(run.steps().unwrap(), vec![300, 400]);
        // Reopening removes the interrupted save's leftovers.
        let tmp_dir = tmp
            .path()
            .join("checkpoints")
            .join(format!(".tmp-{}", step_name(500)));
        assert!(tmp_dir.exists());
        RunDir::open(tmp.path(), &config("")).unwrap();
        assert!(!tmp_dir.exists());
        assert_eq!(run.last().unwrap().0, 400);
    }

    #[test]
    fn metrics_append_and_a_cut_last_line_is_dropped() {
        let tmp = tempfile::tempdir().unwrap();
        let run = RunDir::open(tmp.path(), &config("")).unwrap();
        run.append_metrics(&serde_json::json!({"step": 1, "loss": 0.5}))
            .unwrap();
        run.append_metrics(&serde_json::json!({"step": 2, "loss": 0.25}))
            .unwrap();
        let path = tmp.path().join("metrics.jsonl");
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str("{\"step\": 3, \"lo");
        std::fs::write(&path, &text).unwrap();
        let m = run.metrics().unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m[1]["loss"], 0.25);
        // A malformed line in the middle is an error naming it.
        std::fs::write(&path, "{\"step\": 1}\nnot json\n{\"step\": 3}\n").unwrap();
        match run.metrics() {
            Err(TrainError::Malformed { line, .. }) => assert_eq!(line, 2),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn the_printed_default_configuration_parses_back_to_the_defaults() {
    let text = TrainConfig::default_config_text();
    assert!(
        text.contains("lr = 0.00045  # peak learning rate"),
        "{text}"
    );
    let filled = text
        .replace("# random_local = 300", "random_local = 300")
        .replace("# random_global = 40", "random_global = 40");
    let parsed = TrainConfig::from_toml(&filled).unwrap();
    assert_eq!(parsed, TrainConfig::from_toml(MINIMAL).unwrap());
}

mod discriminator {
    use burn::backend::NdArray;
    use burn::tensor::{Distribution, Tensor};
    use v2l_nn::modes::Mode;
    use v2l_nn::{Loader, Unexpected};
    use v2l_train::NLayerDiscriminator;

    type B = NdArray;

    /// Spec §3.6: a 128 input gives a 30 × 30 logit map; the parameters
    /// carry taming's state-dict names and `weights_init`'s distributions.
    #[test]
    fn shapes_names_and_init_follow_taming() {
        let device = Default::default();
        let vb = Loader::<B>::random(11, &device);
        let d = NLayerDiscriminator::load(&vb.pp("discriminator"), 64);
        let names = vb.finish(Unexpected::Ignore).unwrap();
        let x = Tensor::<B, 4>::random([2, 3, 128, 128], Distribution::Uniform(-1.0, 1.0), &device);
        assert_eq!(d.forward(x, Mode::Train).dims(), [2, 1, 30, 30]);
        let out = names.export(&d).unwrap();
        let mut keys: Vec<String> = out.iter().map(|(k, _, _)| k.clone()).collect();
        let mut want: Vec<String> = [
            "0.weight", "0.bias", "2.weight", "5.weight", "8.weight", "8.bias",
        ]
        .iter()
        .map(|k| format!("discriminator.main.{k}"))
        .collect();
        for bn in ["3", "6"] {
            for p in ["weight", "bias", "running_mean", "running_var"] {
                want.push(format!("discriminator.main.{bn}.{p}"));
            }
        }
        keys.sort_unstable();
        want.sort_unstable();
        assert_eq!(keys, want);
        let get = |k: &str| out.iter().find(|(n, _, _)| n == k).unwrap();
        // Conv weights N(0, 0.02): 128·64·16 draws, 5σ bounds on the moments.
        let w = &get("discriminator.main.5.weight").2;
        let n = w.len() as f64;
        let mean = w.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
        let var = w.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / n;
        assert!(mean.abs() < 5.0 * 0.02 / n.sqrt(), "{mean}");
        assert!((var - 4e-4).abs() < 5.0 * 4e-4 * (2.0 / n).sqrt(), "{var}");
        // BatchNorm weights N(1, 0.02), biases 0, running stats 0 / 1.
        let g = &get("discriminator.main.6.weight").2;
        let gm = g.iter().map(|&v| f64::from(v)).sum::<f64>() / g.len() as f64;
        assert!(
            (gm - 1.0).abs() < 5.0 * 0.02 / (g.len() as f64).sqrt(),
            "{gm}"
        );
        assert!(get("discriminator.main.6.bias").2.iter().all(|&v| v == 0.0));
        assert!(get("discriminator.main.6.running_var")
            .2
            .iter()
            .all(|&v| v == 1.0));
        // Conv biases keep PyTorch's default U(±1/√(in·16)).
        let bound = 1.0 / ((3.0f32 * 16.0).sqrt());
        assert!(get("discriminator.main.0.bias")
            .2
            .iter()
            .all(|v| v.abs() <= bound));
    }
}
