//! Crash safety of long jobs: a codebook job and an evaluation run, killed
//! with SIGKILL at pseudo-random points and rerun until they finish, end
//! with the same files, byte for byte, as an uninterrupted run, and leave
//! no temporary files behind.
//!
//! Checked against: the uninterrupted run of the same command (and, for the
//! folder listing, the absence of any `.v2l-tmp` file).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::tasks::{images, root, setup};
use crate::{files_under, v2l, v2l_ok};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A small deterministic generator (the kill points are reproducible).
struct Lcg(u64);

impl Lcg {
    fn unit(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Run `args` to completion; its wall time.
fn run_whole(args: &[String]) -> Duration {
    let t = Instant::now();
    v2l_ok(args);
    t.elapsed()
}

/// Start `args`, SIGKILL it after a random fraction of `whole`, and again,
/// until a run finishes by itself; returns how many runs were killed.
fn kill_until_done(args: &[String], whole: Duration, rng: &mut Lcg) -> usize {
    let mut killed = 0;
    loop {
        let mut child = v2l()
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // After a few kills let a run finish, so the test always ends.
        let at = if killed < 8 {
            whole.mul_f64(0.1 + 0.9 * rng.unit())
        } else {
            Duration::from_secs(3600)
        };
        let t = Instant::now();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                let out = child.wait_with_output().unwrap();
                assert!(
                    status.success(),
                    "{args:?} after {killed} kills: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                eprintln!("{}: finished after {killed} kills", args[..2].join(" "));
                return killed;
            }
            if t.elapsed() >= at {
                child.kill().unwrap(); // SIGKILL
                child.wait().unwrap();
                killed += 1;
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

fn assert_same_tree(a: &Path, b: &Path) {
    let (ta, tb) = (files_under(a), files_under(b));
    let names = |t: &[(PathBuf, Vec<u8>)]| t.iter().map(|x| x.0.clone()).collect::<Vec<_>>();
    assert_eq!(names(&ta), names(&tb), "the same files");
    for ((n, x), (_, y)) in ta.iter().zip(&tb) {
        assert!(x == y, "{} differs after kill and resume", n.display());
    }
}

fn tokenizer_with_101_entries(path: &Path) {
    let mut vocab = serde_json::Map::new();
    vocab.insert("[UNK]".into(), 0.into());
    let mut i = 1;
    for w in [
        "dog", "cat", "red", "blue", "tree", "car", "house", "fish", "bird", "sun", "moon", "star",
        "river", "stone", "wood", "fire", "snow", "rain", "leaf", "rose",
    ] {
        for suffix in ["", "s", "y", "er", "ing"] {
            vocab.insert(format!("{w}{suffix}"), i.into());
            i += 1;
        }
    }
    let json = serde_json::json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": [],
        "normalizer": null, "pre_tokenizer": { "type": "WhitespaceSplit" },
        "post_processor": null, "decoder": null,
        "model": { "type": "WordLevel", "unk_token": "[UNK]", "vocab": vocab }
    });
    std::fs::write(path, json.to_string()).unwrap();
}

#[test]
fn codebook_jobs_killed_and_resumed_end_with_the_same_files() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let tok = d.join("tokenizer.json");
    tokenizer_with_101_entries(&tok);
    let clip = root("v2l-clip/tests/fixtures/model/tiny_openai.pth");
    let bpe = root("v2l-codebook/tests/fixtures/templates/tiny_bpe.txt");
    let imgs = images(d);
    let mut rng = Lcg(17);
    let (a, b) = (d.join("a"), d.join("b"));
    let local = |out: &Path| -> Vec<String> {
        [
            "codebook",
            "local",
            "--tokenizer",
            s(&tok),
            "--clip",
            s(&clip),
            "--bpe",
            s(&bpe),
            "--precision",
            "f32",
            "--chunk-rows",
            "5",
            "--out",
        ]
        .iter()
        .map(|x| x.to_string())
        .chain([s(&out.join("local.safetensors")).to_string()])
        .collect()
    };
    // 101 entries × 80 templates in 21 chunks.
    let whole = run_whole(&local(&a));
    let kills = kill_until_done(&local(&b), whole, &mut rng);
    assert!(kills > 0, "no run was killed");
    assert_same_tree(&a, &b);

    // Filtering: the vote phase over 6 images, one per chunk.
    let filter = |out: &Path| -> Vec<String> {
        [
            "codebook",
            "filter",
            "--clip",
            s(&clip),
            "--images",
            s(&imgs),
            "--top",
            "2",
            "--keep",
            "20",
            "--chunk-images",
            "1",
            "--candidates",
        ]
        .iter()
        .map(|x| x.to_string())
        .chain([
            s(&a.join("local.safetensors")).to_string(),
            "--out".into(),
            s(&out.join("global.safetensors")).to_string(),
        ])
        .collect()
    };
    let whole = run_whole(&filter(&a));
    kill_until_done(&filter(&b), whole, &mut rng);
    assert_same_tree(&a, &b);
}

#[test]
fn an_eval_run_killed_and_resumed_ends_with_the_same_log() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (bundle, tok) = setup(d);
    let imgs = images(d);
    let llm = root("v2l-llm/tests/fixtures/llama/hf");
    let classes = d.join("classes.txt");
    // 24 two-way one-shot episodes over the 6 images.
    let eps = d.join("episodes");
    std::fs::create_dir_all(&eps).unwrap();
    let mut csv = String::new();
    for e in 0..24 {
        let (x, y, q) = (e % 3, (e / 3) % 3, (e + 1) % 3);
        let first = if e % 2 == 0 { "a" } else { "b" };
        let other = if e % 2 == 0 { "b" } else { "a" };
        csv.push_str(&format!(
            "{first}/{x}.png,{other}/{y}.png,{first}/{q}.png,\n"
        ));
    }
    std::fs::write(eps.join("2_way_1_shot.csv"), csv).unwrap();
    let args = |log: &Path| -> Vec<String> {
        [
            "eval",
            "fewshot",
            "--checkpoint",
            s(&bundle),
            "--llm",
            s(&llm),
            "--tokenizer",
            s(&tok),
            "--images",
            s(&imgs),
            "--classes",
            s(&classes),
            "--episodes-dir",
            s(&eps),
            "--ways",
            "2",
            "--shots",
            "1",
            "--ks",
            "1,3",
            "--log",
        ]
        .iter()
        .map(|x| x.to_string())
        .chain([s(log).to_string()])
        .collect()
    };
    let (a, b) = (d.join("a"), d.join("b"));
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    let whole = run_whole(&args(&a.join("eval.jsonl")));
    let mut rng = Lcg(5);
    // A run can finish before its random kill time when the machine is less
    // loaded than while `whole` was measured; then start the killed copy
    // again from nothing with half the time.
    let mut kills = 0;
    for attempt in 0..4 {
        std::fs::remove_dir_all(&b).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        let time = whole.mul_f64(0.5f64.powi(attempt));
        kills = kill_until_done(&args(&b.join("eval.jsonl")), time, &mut rng);
        if kills > 0 {
            break;
        }
    }
    assert!(kills > 0, "no run was killed");
    let log = std::fs::read_to_string(a.join("eval.jsonl")).unwrap();
    assert_eq!(
        log.lines().count(),
        1 + 48,
        "settings line + 24 episodes × 2 k"
    );
    assert_same_tree(&a, &b);
}
