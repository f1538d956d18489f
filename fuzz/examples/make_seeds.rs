//! Writes the committed seed corpora `fuzz/seeds/<target>/`: small real files
//! copied from the crates' test fixtures, and files that have no fixture
//! written here with the project's own writers (codebooks, tokens JSON,
//! episode CSV, evaluation logs, tokenizer files, JPEGs).
//!
//! ```sh
//! cargo run --manifest-path fuzz/Cargo.toml --example make_seeds
//! ```
//!
//! Run from anywhere; it rewrites the seed folders from scratch. The output is
//! deterministic.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::json;
use v2l_codebook::{Codebook, Precision};
use v2l_io::gguf::GgufFile;
use v2l_llm::tokenizer::LlmTokenizer;
use v2l_model::{ImageTokens, ModelConfig, TokensFile, VisualTokens};
use v2l_prompt::episodes::{generate_episodes, write_csv};
use v2l_prompt::eval::JsonlLog;
use v2l_prompt::Item;

type Res<T = ()> = Result<T, Box<dyn std::error::Error>>;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn seeds(target: &str) -> Res<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("seeds")
        .join(target);
    fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Copies fixtures (paths relative to the repository root) into a target's
/// seeds, naming each `<parent>_<file>` when `prefix_parent` to keep names
/// unique.
fn copy(target: &str, files: &[&str]) -> Res {
    let dir = seeds(target)?;
    for f in files {
        let src = root().join(f);
        let p = Path::new(f);
        let parent = p
            .parent()
            .and_then(Path::file_name)
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let name = p.file_name().ok_or("no file name")?.to_string_lossy();
        let dst = dir.join(format!("{parent}_{name}"));
        fs::copy(&src, &dst).map_err(|e| format!("{}: {e}", src.display()))?;
    }
    Ok(())
}

const READERS: &str = "crates/v2l-io/tests/fixtures/readers";

fn copied() -> Res {
    let readers = |names: &[&str]| -> Vec<String> {
        names.iter().map(|n| format!("{READERS}/{n}")).collect()
    };
    let refs = |v: &[String]| -> Vec<String> { v.to_vec() };
    let pkl = readers(&[
        "misc_p0.pkl",
        "misc_p1.pkl",
        "misc_p2.pkl",
        "misc_p3.pkl",
        "misc_p4.pkl",
        "misc_p5.pkl",
        "nested_arrays_p0.pkl",
        "nested_arrays_p2.pkl",
        "nested_arrays_p4.pkl",
        "nested_arrays_p5.pkl",
        "legacy.pth",
    ]);
    copy(
        "pickle",
        &pkl.iter().map(String::as_str).collect::<Vec<_>>(),
    )?;
    let torch = [
        format!("{READERS}/legacy.pth"),
        format!("{READERS}/views.pth"),
        format!("{READERS}/tiny_script.pt"),
        "crates/v2l-codebook/tests/fixtures/official/local_codebook_embedding.pth".into(),
        "crates/v2l-codebook/tests/fixtures/official/global_codebook_embedding.pth".into(),
    ];
    copy(
        "torch_archive",
        &refs(&torch).iter().map(String::as_str).collect::<Vec<_>>(),
    )?;
    let mut npy = readers(&[
        "be_i4.npy",
        "bool.npy",
        "f16.npy",
        "f32.npy",
        "fortran_f8.npy",
        "i64.npy",
        "object_str.npy",
        "object_str_p2.npy",
        "u2_v2.npy",
        "u2_v3.npy",
        "u8.npy",
        "unicode.npy",
    ]);
    npy.push("crates/v2l-codebook/tests/fixtures/official/global_vocabulary.npy".into());
    npy.push("crates/v2l-llm/tests/fixtures/gguf/expected/scalar.npy".into());
    npy.push("crates/v2l-llm/tests/fixtures/gguf/expected/empty.npy".into());
    copy("npy", &npy.iter().map(String::as_str).collect::<Vec<_>>())?;
    let idx = readers(&[
        "f32.idx",
        "f64.idx",
        "i16.idx",
        "i32.idx",
        "i8.idx",
        "labels_u8.idx",
        "u8_3x4x5.idx.gz",
        "u8_3x4x5_gzipped.idx",
    ]);
    copy("idx", &idx.iter().map(String::as_str).collect::<Vec<_>>())?;
    copy(
        "safetensors",
        &[
            "crates/v2l-model/tests/fixtures/legacy-bundle/bundle/global_codebook.safetensors",
            "crates/v2l-model/tests/fixtures/legacy-bundle/bundle/local_codebook.safetensors",
            "crates/v2l-model/tests/fixtures/legacy-bundle/expected.safetensors",
            "crates/v2l-clip/tests/fixtures/model/heads4_io.safetensors",
            "crates/v2l-vl/tests/fixtures/vl.safetensors",
            "crates/v2l-prompt/tests/fixtures/corruptions.safetensors",
        ],
    )?;
    copy(
        "gguf",
        &[
            "crates/v2l-llm/tests/fixtures/gguf/tensors.gguf",
            "crates/v2l-llm/tests/fixtures/gguf/values.gguf",
            "crates/v2l-llm/tests/fixtures/gguf/big_endian.gguf",
        ],
    )?;
    copy(
        "codebook",
        &["crates/v2l-model/tests/fixtures/legacy-bundle/bundle/global_codebook.safetensors"],
    )?;
    copy(
        "codebook_sidecar",
        &[
            "crates/v2l-model/tests/fixtures/legacy-bundle/bundle/global_codebook.json",
            "crates/v2l/default/global_codebook.json",
        ],
    )?;
    copy(
        "codebook_official",
        &[
            "crates/v2l-codebook/tests/fixtures/official/local_codebook_embedding.pth",
            "crates/v2l-codebook/tests/fixtures/official/global_codebook_embedding.pth",
            "crates/v2l-codebook/tests/fixtures/official/global_vocabulary.npy",
        ],
    )?;
    copy(
        "bundle_config",
        &[
            "crates/v2l/default/config.json",
            "crates/v2l-model/tests/fixtures/legacy-bundle/bundle/config.json",
            "crates/v2l-model/tests/fixtures/v2l-tiny/config.json",
            "crates/v2l-model/tests/fixtures/model/levels/config.json",
        ],
    )?;
    // Inputs that once crashed a parser (the crates' fuzz regression fixtures).
    let fuzz = |krate: &str, name: &str| format!("crates/{krate}/tests/fixtures/fuzz/{name}");
    for (target, krate, names) in [
        (
            "tokenizer_json",
            "v2l-llm",
            &[
                "tokenizer_json_decoder_syntax.json",
                "tokenizer_json_bpe_merge_longer_than_vocab.json",
                "tokenizer_json_bpe_part_shorter_than_prefix.json",
                "tokenizer_json_strip_stop_past_token.json",
                "tokenizer_json_untagged_strip_stop_past_token.json",
            ][..],
        ),
        ("npy", "v2l-io", &["npy_u0_huge_shape.npy"][..]),
        (
            "tokens_json",
            "v2l-model",
            &["tokens_grid_overflow.json"][..],
        ),
        (
            "bundle_config",
            "v2l-model",
            &[
                "config_ch_overflow.json",
                "config_levels_overflow.json",
                "config_double_z_overflow.json",
            ][..],
        ),
    ] {
        let files: Vec<String> = names.iter().map(|n| fuzz(krate, n)).collect();
        copy(
            target,
            &files.iter().map(String::as_str).collect::<Vec<_>>(),
        )?;
    }
    copy(
        "image",
        &[
            "crates/v2l-model/tests/fixtures/preprocess/inputs/noise_16x16.png",
            "crates/v2l-model/tests/fixtures/preprocess/inputs/noise_17x1.png",
            "crates/v2l-model/tests/fixtures/v2l-tiny/image_0.png",
            "crates/v2l-clip/tests/fixtures/preprocess/inputs/tiny_7x5.png",
            "crates/v2l-clip/tests/fixtures/preprocess/inputs/grey16_64x40.png",
            "crates/v2l-clip/tests/fixtures/preprocess/inputs/la_70x90.png",
            "crates/v2l-clip/tests/fixtures/preprocess/inputs/rgba_60x50.png",
        ],
    )?;
    Ok(())
}

/// GGUF dequantisation seeds: `[ggml type id, 0, raw tensor bytes]` for every
/// tensor of the GGUF fixture (one per ggml type it holds).
fn dequant() -> Res {
    let dir = seeds("gguf_dequant")?;
    let file = GgufFile::open(root().join("crates/v2l-llm/tests/fixtures/gguf/tensors.gguf"))?;
    let mut seen = std::collections::BTreeSet::new();
    for t in file.tensors() {
        let ty = t.ggml_type();
        if !ty.can_dequantize() || !seen.insert(ty.id()) {
            continue;
        }
        let mut seed = vec![u8::try_from(ty.id())?, 0];
        seed.extend(file.read_raw(t.name())?);
        fs::write(dir.join(format!("{}.bin", ty.name().to_lowercase())), seed)?;
    }
    Ok(())
}

// ------------------------------------------------------------- tokenizer files

fn gguf_str(s: &str) -> Vec<u8> {
    let mut out = (s.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(s.as_bytes());
    out
}

/// A metadata-only GGUF v3 file (as in `crates/v2l-llm/tests/it/tokenizer.rs`).
#[derive(Default)]
struct Gguf {
    kvs: Vec<u8>,
    n_kv: u64,
}

impl Gguf {
    fn kv(mut self, key: &str, ty: u32, payload: &[u8]) -> Gguf {
        self.kvs.extend(gguf_str(key));
        self.kvs.extend(ty.to_le_bytes());
        self.kvs.extend_from_slice(payload);
        self.n_kv += 1;
        self
    }
    fn str(self, key: &str, v: &str) -> Gguf {
        self.kv(key, 8, &gguf_str(v))
    }
    fn u32(self, key: &str, v: u32) -> Gguf {
        self.kv(key, 4, &v.to_le_bytes())
    }
    fn bool(self, key: &str, v: bool) -> Gguf {
        self.kv(key, 7, &[u8::from(v)])
    }
    fn array(self, key: &str, elem: u32, n: usize, body: Vec<u8>) -> Gguf {
        let mut payload = elem.to_le_bytes().to_vec();
        payload.extend((n as u64).to_le_bytes());
        payload.extend(body);
        self.kv(key, 9, &payload)
    }
    fn strs<S: AsRef<str>>(self, key: &str, v: &[S]) -> Gguf {
        let body = v.iter().flat_map(|s| gguf_str(s.as_ref())).collect();
        self.array(key, 8, v.len(), body)
    }
    fn f32s(self, key: &str, v: &[f32]) -> Gguf {
        let body = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        self.array(key, 6, v.len(), body)
    }
    fn i32s(self, key: &str, v: &[i32]) -> Gguf {
        let body = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        self.array(key, 5, v.len(), body)
    }
    fn bytes(self) -> Vec<u8> {
        let mut out = b"GGUF".to_vec();
        out.extend(3u32.to_le_bytes());
        out.extend(0u64.to_le_bytes());
        out.extend(self.n_kv.to_le_bytes());
        out.extend(self.kvs);
        out
    }
}

/// A SentencePiece ("llama") tokenizer: `<unk> <s> </s>`, the 256 byte
/// tokens, `▁ a b ▁a ab ▁ab`, a user-defined `<|user|>`.
fn spm_gguf() -> Vec<u8> {
    let mut tokens: Vec<String> = vec!["<unk>".into(), "<s>".into(), "</s>".into()];
    tokens.extend((0..=255u8).map(|b| format!("<0x{b:02X}>")));
    let mut scores = vec![0.0; tokens.len()];
    let mut types = vec![2, 3, 3];
    types.extend([6; 256]);
    for (t, s) in [
        ("▁", -1000.0),
        ("a", -1001.0),
        ("b", -1002.0),
        ("▁a", -1.0),
        ("ab", -2.0),
        ("▁ab", -3.0),
    ] {
        tokens.push(t.into());
        scores.push(s);
        types.push(1);
    }
    tokens.push("<|user|>".into());
    scores.push(0.0);
    types.push(4);
    Gguf::default()
        .str("general.architecture", "llama")
        .str("tokenizer.ggml.model", "llama")
        .strs("tokenizer.ggml.tokens", &tokens)
        .f32s("tokenizer.ggml.scores", &scores)
        .i32s("tokenizer.ggml.token_type", &types)
        .u32("tokenizer.ggml.bos_token_id", 1)
        .u32("tokenizer.ggml.eos_token_id", 2)
        .u32("tokenizer.ggml.unknown_token_id", 0)
        .bool("tokenizer.ggml.add_space_prefix", true)
        .bytes()
}

/// GPT-2's byte → printable character map.
fn byte_char(b: u8) -> char {
    let printable = |b: u8| (b'!'..=b'~').contains(&b) || (0xA1..=0xAC).contains(&b) || b >= 0xAE;
    if printable(b) {
        return char::from(b);
    }
    let n = (0..b).filter(|&x| !printable(x)).count() as u32;
    char::from_u32(256 + n).unwrap_or('?')
}

/// A byte-level BPE ("gpt2") tokenizer with a SmolLM2-like pre-tokenizer.
fn bpe_gguf() -> Vec<u8> {
    let mut tokens: Vec<String> = vec![
        "<|endoftext|>".into(),
        "<|im_start|>".into(),
        "<|im_end|>".into(),
    ];
    tokens.extend((0..=255u8).map(|b| byte_char(b).to_string()));
    let merges = ["Ġ Ġ", "h i", "Ġ hi", "Ã ©"];
    for m in merges {
        tokens.push(m.replace(' ', ""));
    }
    let mut types = vec![3, 3, 3];
    types.extend(vec![1; tokens.len() - 3]);
    Gguf::default()
        .str("tokenizer.ggml.model", "gpt2")
        .str("tokenizer.ggml.pre", "smollm")
        .strs("tokenizer.ggml.tokens", &tokens)
        .strs("tokenizer.ggml.merges", &merges)
        .i32s("tokenizer.ggml.token_type", &types)
        .u32("tokenizer.ggml.bos_token_id", 1)
        .u32("tokenizer.ggml.eos_token_id", 2)
        .bool("tokenizer.ggml.add_bos_token", false)
        .bytes()
}

fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::new();
    for c in bytes.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                s.push(char::from(A[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                s.push('=');
            }
        }
    }
    s
}

/// `llama-tokenizer.js` in miniature: the two base64 constants the reader
/// looks for, in the package's own layout (vocabulary lines; merges as u16
/// pairs of token ids).
fn llama_js() -> String {
    let mut tokens: Vec<String> = vec!["<unk>".into(), "<s>".into(), "</s>".into()];
    tokens.extend((0..=255u8).map(|b| format!("<0x{b:02X}>")));
    let base = tokens.len() as u16;
    for t in ["▁", "a", "b", "▁a", "ab", "▁ab", "c", "▁c"] {
        tokens.push(t.into());
    }
    let id = |t: &str| {
        base + ["▁", "a", "b", "▁a", "ab", "▁ab", "c", "▁c"]
            .iter()
            .position(|x| *x == t)
            .unwrap_or(0) as u16
    };
    let merges: Vec<u8> = [("▁", "a"), ("a", "b"), ("▁a", "b"), ("▁", "c")]
        .iter()
        .flat_map(|(l, r)| [id(l).to_le_bytes(), id(r).to_le_bytes()].concat())
        .collect();
    format!(
        "// llama-tokenizer-js layout (miniature)\nconst llama_tokenizer = {{}};\n\
         llama_tokenizer.encode = function() {{}};\n\
         const llama_vocab_base64 = \"{}\"\nconst llama_merges_binary = \"{}\"\n\
         export default llama_tokenizer\n",
        base64(tokens.join("\n").as_bytes()),
        base64(&merges)
    )
}

fn tokenizers() -> Res {
    let gg = seeds("tokenizer_gguf")?;
    let spm = spm_gguf();
    let bpe = bpe_gguf();
    fs::write(gg.join("spm.gguf"), &spm)?;
    fs::write(gg.join("bpe.gguf"), &bpe)?;
    let js = seeds("tokenizer_llama_js")?;
    fs::write(js.join("llama-tokenizer.js"), llama_js())?;
    // tokenizer.json files written by the project's own writer from those.
    let tj = seeds("tokenizer_json")?;
    let tmp = tempfile::tempdir()?;
    let js_path = tmp.path().join("llama-tokenizer.js");
    fs::write(&js_path, llama_js())?;
    let loaded = [
        ("spm", LlmTokenizer::from_gguf(&GgufFile::from_bytes(spm)?)?),
        ("bpe", LlmTokenizer::from_gguf(&GgufFile::from_bytes(bpe)?)?),
        ("llama_js", LlmTokenizer::from_llama_tokenizer_js(&js_path)?),
    ];
    for (name, tok) in loaded {
        tok.to_tokenizer_json(tj.join(format!("{name}.json")))?;
    }
    Ok(())
}

// --------------------------------------------------------------- other files

fn codebooks() -> Res {
    let cb = seeds("codebook")?;
    let side = seeds("codebook_sidecar")?;
    let values: Vec<f32> = (0..12).map(|i| (i as f32 - 5.5) / 4.0).collect();
    let book = Codebook::new(values, 3, 4)?
        .with_strings(vec!["cat".into(), " dog".into(), "a\u{2581}b".into()])?
        .with_token_ids(vec![vec![1], vec![2, 3], vec![]])?
        .with_votes(vec![5, 0, 17])?;
    let mut book = book;
    book.provenance = json!({"llm": "fuzz seed", "templates": 80});
    let tmp = tempfile::tempdir()?;
    for (name, p) in [
        ("codebook_f32", Precision::F32),
        ("codebook_f16", Precision::F16),
    ] {
        let path = tmp.path().join(format!("{name}.safetensors"));
        book.save(&path, p)?;
        fs::copy(&path, cb.join(format!("{name}.safetensors")))?;
        fs::copy(
            path.with_extension("json"),
            side.join(format!("{name}.json")),
        )?;
    }
    Ok(())
}

fn tokens_json() -> Res {
    let dir = seeds("tokens_json")?;
    let batch = VisualTokens {
        global_ids: vec![vec![7, 3, 1], vec![2, 2, 9]],
        global_words: Some(vec![
            vec!["cat".into(), "fur".into(), "pet".into()],
            vec!["car".into(), "car".into(), "road".into()],
        ]),
        local_ids: vec![(0..16).collect(), (100..116).collect()],
        grid: [4, 4],
    };
    let mut images: Vec<ImageTokens> = batch.to_images();
    images[0].path = Some("images/cat.png".into());
    let file = TokensFile {
        images,
        model: json!({"checkpoint": "v2l-tiny", "sha256": "00ff", "k": 3}),
    };
    fs::write(
        dir.join("tokens.json"),
        serde_json::to_string_pretty(&file)?,
    )?;
    let single = TokensFile {
        images: vec![ImageTokens {
            path: None,
            global_ids: vec![4],
            global_words: None,
            local_ids: vec![5, 6],
            grid: [1, 2],
        }],
        model: serde_json::Value::Null,
    };
    fs::write(dir.join("tokens_min.json"), serde_json::to_string(&single)?)?;
    Ok(())
}

fn episodes() -> Res {
    let dir = seeds("episodes_csv")?;
    let items: Vec<Item> = [
        "n01440764",
        "n02102040",
        "n02979186",
        "n03000684",
        "n03028079",
    ]
    .iter()
    .flat_map(|c| (0..3).map(move |i| format!("{c}/{c}_{i}.JPEG")))
    .map(|e| Item::parse(&e))
    .collect::<Result<_, _>>()?;
    for (n, k) in [(2, 1), (5, 1)] {
        let eps = generate_episodes(&items, n, k, 3, 7)?;
        fs::write(dir.join(format!("{n}way_{k}shot.csv")), write_csv(&eps))?;
    }
    fs::write(
        dir.join("class_names.json"),
        r#"{"0": ["n01440764", "tench"], "1": ["n02102040", "English springer"]}"#,
    )?;
    fs::write(
        dir.join("class_names_flat.json"),
        r#"{"n01440764": "tench"}"#,
    )?;
    fs::write(
        dir.join("class_names.txt"),
        "n01440764 tench, Tinca tinca\nn02102040 English springer\n",
    )?;
    Ok(())
}

fn eval_log() -> Res {
    let dir = seeds("eval_log")?;
    let tmp = tempfile::tempdir()?;
    let path = tmp.path().join("log.jsonl");
    let mut log = JsonlLog::open(&path)?;
    log.set_provenance(json!({"model": "v2l-tiny", "sha256": "00ff", "way": 2, "shot": 1}));
    log.append(
        "0",
        json!({"query": "n01440764/a.JPEG", "predicted": "tench", "correct": true}),
    )?;
    log.append(
        "1",
        json!({"query": "n02102040/b.JPEG", "predicted": "tench", "correct": false}),
    )?;
    drop(log);
    let text = fs::read(&path)?;
    fs::write(dir.join("fewshot.jsonl"), &text)?;
    // An interrupted last line (dropped and rewritten by `open`).
    let mut cut = text.clone();
    cut.extend_from_slice(b"{\"key\": \"2\", \"pred");
    fs::write(dir.join("interrupted.jsonl"), cut)?;
    // A log that starts with a settings line (`JsonlLog::open_with_settings`).
    let mut with_settings =
        br#"{"format": "v2l-eval-log/1", "settings": {"model": "v2l-tiny", "seed": 7}}"#.to_vec();
    with_settings.push(b'\n');
    with_settings.extend_from_slice(&text);
    fs::write(dir.join("settings.jsonl"), with_settings)?;
    Ok(())
}

fn bundle_config() -> Res {
    let dir = seeds("bundle_config")?;
    let cfg = ModelConfig::official();
    fs::write(
        dir.join("official.json"),
        serde_json::to_string_pretty(&cfg)?,
    )?;
    Ok(())
}

fn jpegs() -> Res {
    use v2l_model::image::codecs::jpeg::JpegEncoder;
    let dir = seeds("image")?;
    for (src, name) in [
        (
            "crates/v2l-model/tests/fixtures/preprocess/inputs/noise_16x16.png",
            "noise_16x16.jpg",
        ),
        (
            "crates/v2l-clip/tests/fixtures/preprocess/inputs/crop_45x32.png",
            "crop_45x32.jpg",
        ),
    ] {
        let img = v2l_model::image::open(root().join(src))?.to_rgb8();
        let mut out = Vec::new();
        JpegEncoder::new_with_quality(&mut out, 85).encode_image(&img)?;
        fs::write(dir.join(name), out)?;
    }
    let grey = v2l_model::image::open(
        root().join("crates/v2l-clip/tests/fixtures/preprocess/inputs/grey16_64x40.png"),
    )?
    .to_luma8();
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, 60).encode_image(&grey)?;
    fs::write(dir.join("grey_64x40.jpg"), out)?;
    Ok(())
}

fn main() -> Res {
    let all = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
    if all.exists() {
        fs::remove_dir_all(&all)?;
    }
    copied()?;
    dequant()?;
    tokenizers()?;
    codebooks()?;
    tokens_json()?;
    episodes()?;
    eval_log()?;
    bundle_config()?;
    jpegs()?;
    let mut total = 0;
    let mut dirs: Vec<_> = fs::read_dir(&all)?.collect::<Result<_, _>>()?;
    dirs.sort_by_key(fs::DirEntry::file_name);
    for d in dirs {
        let (mut n, mut bytes) = (0, 0);
        for f in fs::read_dir(d.path())? {
            n += 1;
            bytes += f?.metadata()?.len();
        }
        total += bytes;
        println!(
            "{:<20} {n:>3} files {bytes:>8} bytes",
            d.file_name().to_string_lossy()
        );
    }
    println!("total {total} bytes");
    Ok(())
}
