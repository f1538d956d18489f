//! `v2l train` as a user runs it: exact resume after SIGKILL, refusals and
//! bad input named before any work starts.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::{files_under, v2l};

/// A small run: 32-pixel Fashion-MNIST, random codebooks, checkpoints
/// every 2 iterations.
const TINY: &str = r#"
batch_size = 2
image_size = 32
epochs = 1
warmup_epochs = 0
embed_dim = 32
k = 3
seed = 11
disc_ndf = 8
disc_start = 3
checkpoint_every = 2
keep_checkpoints = 2
val_every = 100
val_images = 2
[ddconfig]
ch = 32
ch_mult = [1, 2]
num_res_blocks = 1
z_channels = 32
resolution = 64
attn_resolutions = []
[data]
dataset = "fashion-mnist"
[codebooks]
random_local = 64
random_global = 8
"#;

fn assets_present() -> bool {
    let lpips = v2l::assets::fetch::test_asset("lpips-backbones", "vgg16.ckpt").unwrap();
    let data =
        v2l::assets::fetch::test_asset("fashion-mnist", "train-images-idx3-ubyte.gz").unwrap();
    lpips.is_some() && data.is_some()
}

fn train_cmd(config: &Path, run: &Path, steps: u64) -> Command {
    let mut c = v2l();
    c.args(["train", "--config"])
        .arg(config)
        .arg("--run-dir")
        .arg(run)
        .args(["--steps", &steps.to_string()]);
    c
}

#[test]
fn sigkill_then_resume_is_bit_identical_to_an_uninterrupted_run() {
    if !assets_present() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("tiny.toml");
    std::fs::write(&config, TINY).unwrap();
    let steps = 8;
    let a = tmp.path().join("a");
    let out = train_cmd(&config, &a, steps).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Killed at a random moment after its first checkpoint.
    let b = tmp.path().join("b");
    let mut child = train_cmd(&config, &b, steps)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while std::fs::read_link(b.join("last")).is_err()
        && started.elapsed() < Duration::from_secs(300)
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    std::thread::sleep(Duration::from_millis(u64::from(nanos % 3000)));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let killed_at = std::fs::read_link(b.join("last")).unwrap();
    let out = train_cmd(&config, &b, steps).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!(
        "killed with last = {}; resumed: {stderr}",
        killed_at.display()
    );

    let fa = files_under(&a.join("last"));
    let fb = files_under(&b.join("last"));
    assert_eq!(
        fa.iter().map(|f| &f.0).collect::<Vec<_>>(),
        fb.iter().map(|f| &f.0).collect::<Vec<_>>()
    );
    for ((name, x), (_, y)) in fa.iter().zip(&fb) {
        assert!(x == y, "{} differs after resume", name.display());
    }
    // The bundle records its training data as the configuration names it.
    let config_json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(a.join("last/config.json")).unwrap()).unwrap();
    assert_eq!(config_json["provenance"]["data"], "fashion-mnist");
    // The metrics log has each iteration once.
    let steps_logged: Vec<u64> = std::fs::read_to_string(b.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok()?["step"].as_u64())
        .collect();
    assert_eq!(steps_logged, (0..steps).collect::<Vec<_>>());
    // Rerunning a finished run does nothing; another setting is refused by name.
    let out = train_cmd(&config, &b, steps).output().unwrap();
    assert!(out.status.success());
    std::fs::write(&config, TINY.replace("seed = 11", "seed = 12")).unwrap();
    let out = train_cmd(&config, &b, steps).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("seed") && err.contains("only max_steps may change"),
        "{err}"
    );
    // The checkpoint is a model bundle the other commands load.
    let image = tmp.path().join("shoe.png");
    v2l::model::image::RgbImage::from_pixel(32, 32, v2l::model::image::Rgb([200, 90, 30]))
        .save(&image)
        .unwrap();
    let out = v2l()
        .args(["reconstruct", "--checkpoint"])
        .arg(b.join("last"))
        .arg("--out-dir")
        .arg(tmp.path().join("rec"))
        .arg(&image)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(tmp.path().join("rec/shoe.png").is_file());
}

fn expect_error(config_text: &str, setup: impl FnOnce(&Path) -> String, want: &[&str]) {
    let tmp = tempfile::tempdir().unwrap();
    let extra = setup(tmp.path());
    let config = tmp.path().join("c.toml");
    std::fs::write(&config, format!("{config_text}\n{extra}")).unwrap();
    let run = tmp.path().join("run");
    let out = train_cmd(&config, &run, 2).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    for w in want {
        assert!(err.contains(w), "{w:?} not in: {err}");
    }
    // Nothing was trained.
    assert!(!run
        .join("checkpoints")
        .read_dir()
        .is_ok_and(|mut d| d.next().is_some()));
}

const FOLDER_BASE: &str = "image_size = 32\nembed_dim = 32\nk = 3\n[ddconfig]\nch = 32\nch_mult = [1, 2]\nnum_res_blocks = 1\nz_channels = 32\nattn_resolutions = []\n[codebooks]\nrandom_local = 64\nrandom_global = 8\n";

#[test]
fn bad_input_is_named_before_any_work() {
    // Unknown keys, all named.
    expect_error(
        "batchsize = 3\n[ddconfig]\nchanels = 2",
        |_| String::new(),
        &["batchsize", "ddconfig.chanels"],
    );
    // Impossible shapes.
    expect_error(
        &TINY.replace("image_size = 32", "image_size = 33"),
        |_| String::new(),
        &["image_size = 33"],
    );
    expect_error(
        &TINY.replace("k = 3", "k = 9"),
        |_| String::new(),
        &["k = 9"],
    );
    // An empty folder.
    expect_error(
        FOLDER_BASE,
        |d| {
            std::fs::create_dir(d.join("empty")).unwrap();
            format!(
                "[data]\ndataset = \"folder\"\npath = {:?}\n",
                d.join("empty")
            )
        },
        &["no .png, .jpg or .jpeg files"],
    );
    // An unreadable image among good ones.
    expect_error(
        FOLDER_BASE,
        |d| {
            let f = d.join("imgs");
            std::fs::create_dir(&f).unwrap();
            v2l::model::image::RgbImage::new(8, 8)
                .save(f.join("a.png"))
                .unwrap();
            std::fs::write(f.join("b.png"), b"not a png").unwrap();
            format!("[data]\ndataset = \"folder\"\npath = {:?}\n", f)
        },
        &["b.png", "not a readable image"],
    );
}

#[test]
fn default_config_prints_and_parses_back() {
    let out = v2l()
        .args(["train", "--print-default-config"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("batch_size = 8") && text.contains("lr = 0.00045"),
        "{text}"
    );
    let c = v2l::train::TrainConfig::from_toml(&format!(
        "{text}\n[codebooks]\nrandom_local = 10\nrandom_global = 30\n"
    ));
    // The printed text already has a [codebooks] table (commented keys), so
    // a second one is a TOML error; the printed text with keys filled in parses.
    let filled = text
        .replace("# random_local = 300", "random_local = 300")
        .replace("# random_global = 40", "random_global = 40");
    assert!(c.is_err());
    let c = v2l::train::TrainConfig::from_toml(&filled).unwrap();
    assert_eq!(
        c,
        v2l::train::TrainConfig {
            codebooks: c.codebooks.clone(),
            ..Default::default()
        }
    );
}

#[test]
fn a_non_finite_loss_stops_the_run_and_keeps_the_last_good_checkpoint() {
    if !assets_present() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("c.toml");
    // Past disc_start (iteration 3 > 2) the GAN term's weight d_weight ×
    // rate_d overflows f32 in the gradient.
    let text = TINY
        .replace("checkpoint_every = 2", "checkpoint_every = 1")
        .replace("disc_start = 3", "disc_start = 2\nrate_d = 1e300");
    std::fs::write(&config, text).unwrap();
    let run = tmp.path().join("run");
    let out = train_cmd(&config, &run, 6).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is not finite; stopped"), "{err}");
    let last = std::fs::read_link(run.join("last")).unwrap();
    assert!(err.contains("iteration 3:"), "{err}");
    assert_eq!(last, Path::new("checkpoints/step-0000003"), "{err}");
}

#[test]
fn ctrl_c_writes_a_checkpoint_and_exits() {
    if !assets_present() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("c.toml");
    std::fs::write(
        &config,
        TINY.replace("checkpoint_every = 2", "checkpoint_every = 1000"),
    )
    .unwrap();
    let run = tmp.path().join("run");
    let child = train_cmd(&config, &run, 1000)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for a few iterations, then SIGINT.
    let started = Instant::now();
    let iterations = |p: &Path| {
        std::fs::read_to_string(p.join("metrics.jsonl"))
            .map(|t| t.lines().filter(|l| l.contains("\"step\"")).count())
            .unwrap_or(0)
    };
    while iterations(&run) < 3 && started.elapsed() < Duration::from_secs(300) {
        std::thread::sleep(Duration::from_millis(50));
    }
    // The shell's builtin `kill` (no procps needed).
    let status = Command::new("sh")
        .args(["-c", &format!("kill -INT {}", child.id())])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("stopped at iteration"), "{err}");
    let last = std::fs::read_link(run.join("last")).unwrap();
    let step: u64 = last
        .to_string_lossy()
        .trim_start_matches("checkpoints/step-")
        .parse()
        .unwrap();
    assert!((3..1000).contains(&step), "{}", last.display());
}

#[test]
fn a_clip_global_embedder_trains_and_its_checkpoint_encodes() {
    if !assets_present() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let clip = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../v2l-clip/tests/fixtures/model/tiny_openai.pth");
    let config = tmp.path().join("c.toml");
    // The tiny CLIP's embeddings are 64 wide.
    let text = TINY.replace("embed_dim = 32", "embed_dim = 64").replace(
        "seed = 11",
        &format!("seed = 11\nglobal_embedder = \"clip:{}\"", clip.display()),
    );
    std::fs::write(&config, text).unwrap();
    let run = tmp.path().join("run");
    let out = train_cmd(&config, &run, 2).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(run.join("last/clip_vision.safetensors").is_file());
    let image = tmp.path().join("x.png");
    v2l::model::image::RgbImage::from_fn(40, 40, |x, y| {
        v2l::model::image::Rgb([(x * 6) as u8, (y * 6) as u8, 90])
    })
    .save(&image)
    .unwrap();
    let out = v2l()
        .args(["encode", "--json", "--checkpoint"])
        .arg(run.join("last"))
        .arg(&image)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let image = &v["images"][0];
    assert_eq!(image["global_ids"].as_array().unwrap().len(), 3);
    assert_eq!(image["local_ids"].as_array().unwrap().len(), 16 * 16);
}
