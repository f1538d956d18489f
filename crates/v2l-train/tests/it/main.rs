//! Tests of the training configuration and schedule. Expected values are
//! the reference's (`Run.sh` and argument defaults, spec §4) and closed
//! forms of `util/lr_sched.py`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

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
