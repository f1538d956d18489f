//! LLM tokenizers: hand-built GGUF vocabularies (no assets), typed errors, and — when the
//! assets are cached — LLaMA-2 from `llama-tokenizer-js` against the package's own JavaScript
//! tokenizer, a SentencePiece GGUF built from that vocabulary against transformers, and
//! SmolLM2-135M's GGUF against transformers. References: `scripts/gen_llm_tokenizer_fixtures.py`.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde_json::Value;
use v2l_llm::gguf::GgufFile;
use v2l_llm::tokenizer::{AddSpecial, LlmTokenizer, TokenizerError, TokenizerKind};

// ------------------------------------------------------------------------------ helpers

fn fixture(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tokenizer")
        .join(name);
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| u32::try_from(x.as_u64().unwrap()).unwrap())
        .collect()
}

fn strings(v: &Value) -> HashSet<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect()
}

/// A fresh scratch directory under the system temp dir.
fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("v2l-llm-tokenizer-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

const T_U32: u32 = 4;
const T_I32: u32 = 5;
const T_F32: u32 = 6;
const T_BOOL: u32 = 7;
const T_STRING: u32 = 8;
const T_ARRAY: u32 = 9;

fn gguf_str(s: &str) -> Vec<u8> {
    let mut out = (s.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(s.as_bytes());
    out
}

/// A metadata-only GGUF v3 file.
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
        self.kv(key, T_STRING, &gguf_str(v))
    }

    fn u32(self, key: &str, v: u32) -> Gguf {
        self.kv(key, T_U32, &v.to_le_bytes())
    }

    fn bool(self, key: &str, v: bool) -> Gguf {
        self.kv(key, T_BOOL, &[u8::from(v)])
    }

    fn array(self, key: &str, elem: u32, n: usize, body: Vec<u8>) -> Gguf {
        let mut payload = elem.to_le_bytes().to_vec();
        payload.extend((n as u64).to_le_bytes());
        payload.extend(body);
        self.kv(key, T_ARRAY, &payload)
    }

    fn strs<S: AsRef<str>>(self, key: &str, v: &[S]) -> Gguf {
        let body = v.iter().flat_map(|s| gguf_str(s.as_ref())).collect();
        self.array(key, T_STRING, v.len(), body)
    }

    fn f32s(self, key: &str, v: &[f32]) -> Gguf {
        let body = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        self.array(key, T_F32, v.len(), body)
    }

    fn i32s(self, key: &str, v: &[i32]) -> Gguf {
        let body = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        self.array(key, T_I32, v.len(), body)
    }

    fn open(self) -> GgufFile {
        let mut out = b"GGUF".to_vec();
        out.extend(3u32.to_le_bytes());
        out.extend(0u64.to_le_bytes());
        out.extend(self.n_kv.to_le_bytes());
        out.extend(self.kvs);
        GgufFile::from_bytes(out).unwrap()
    }
}

// ------------------------------------------------------- a tiny SentencePiece ("llama") GGUF

/// `<unk> <s> </s>`, the 256 byte tokens, then `▁ a b ▁a ab ▁ab <|user|>`.
fn tiny_spm_tokens() -> (Vec<String>, Vec<f32>, Vec<i32>) {
    let mut tokens: Vec<String> = vec!["<unk>".into(), "<s>".into(), "</s>".into()];
    tokens.extend((0..=255u8).map(|b| format!("<0x{b:02X}>")));
    let normal = [
        ("▁", -1000.0),
        ("a", -1001.0),
        ("b", -1002.0),
        ("▁a", -1.0),
        ("ab", -2.0),
        ("▁ab", -3.0),
    ];
    let mut scores = vec![0.0; tokens.len()];
    let mut types = vec![2, 3, 3];
    types.extend([6; 256]);
    for (t, s) in normal {
        tokens.push(t.into());
        scores.push(s);
        types.push(1);
    }
    tokens.push("<|user|>".into());
    scores.push(0.0);
    types.push(4);
    (tokens, scores, types)
}

fn tiny_spm(add_space_prefix: Option<bool>) -> LlmTokenizer {
    let (tokens, scores, types) = tiny_spm_tokens();
    let mut g = Gguf::default()
        .str("general.architecture", "llama")
        .str("tokenizer.ggml.model", "llama")
        .strs("tokenizer.ggml.tokens", &tokens)
        .f32s("tokenizer.ggml.scores", &scores)
        .i32s("tokenizer.ggml.token_type", &types)
        .u32("tokenizer.ggml.bos_token_id", 1)
        .u32("tokenizer.ggml.eos_token_id", 2)
        .u32("tokenizer.ggml.unknown_token_id", 0);
    if let Some(v) = add_space_prefix {
        g = g.bool("tokenizer.ggml.add_space_prefix", v);
    }
    LlmTokenizer::from_gguf(&g.open()).unwrap()
}

#[test]
fn tiny_sentencepiece_gguf() {
    let tok = tiny_spm(None);
    let id = |t: &str| tok.token_to_id(t).unwrap();
    assert_eq!(tok.kind(), TokenizerKind::SentencePieceBpe);
    assert_eq!(tok.vocab_size(), 3 + 256 + 7);
    assert_eq!((tok.bos_id(), tok.eos_id()), (Some(1), Some(2)));
    assert!(
        tok.adds_bos() && !tok.adds_eos(),
        "llama GGUFs add BOS by default"
    );

    // "▁ab": (▁,a) scores -1 beats (a,b) at -2, then (▁a,b) makes ▁ab.
    assert_eq!(
        tok.encode("ab", AddSpecial::ModelDefault).unwrap(),
        [1, id("▁ab")]
    );
    assert_eq!(tok.encode("ab", AddSpecial::Neither).unwrap(), [id("▁ab")]);
    assert_eq!(
        tok.encode("ab", AddSpecial::BosEos).unwrap(),
        [1, id("▁ab"), 2]
    );
    assert_eq!(tok.encode("ab", AddSpecial::Eos).unwrap(), [id("▁ab"), 2]);
    assert_eq!(
        tok.encode("ba", AddSpecial::Neither).unwrap(),
        [id("▁"), id("b"), id("a")]
    );
    // Byte fallback: 'c' and '\n' are not in the vocabulary.
    assert_eq!(
        tok.encode("c\n", AddSpecial::Neither).unwrap(),
        [id("▁"), 3 + 0x63, 3 + 0x0A]
    );
    // Multi-byte character: its UTF-8 bytes.
    assert_eq!(
        tok.encode("é", AddSpecial::Neither).unwrap(),
        [id("▁"), 3 + 0xC3, 3 + 0xA9]
    );
    assert_eq!(tok.encode("", AddSpecial::ModelDefault).unwrap(), [1]);
    // Special and user-defined tokens in the text are single ids.
    assert_eq!(
        tok.encode("a<s><|user|>", AddSpecial::Neither).unwrap(),
        [id("▁a"), 1, id("<|user|>")]
    );

    // Decoding.
    assert_eq!(tok.decode_single(id("▁ab")).unwrap(), "ab");
    assert_eq!(tok.decode_single(id("ab")).unwrap(), "ab");
    assert_eq!(tok.decode_single(id("▁")).unwrap(), "");
    assert_eq!(tok.decode_single(3 + 0x0A).unwrap(), "\n");
    assert_eq!(tok.decode_single(3 + 0xC3).unwrap(), "\u{FFFD}");
    assert_eq!(tok.decode_single(1).unwrap(), "<s>");
    assert_eq!(
        tok.decode(&[id("▁"), 3 + 0xC3, 3 + 0xA9], true).unwrap(),
        "é"
    );
    let with_bos = tok.encode("ab ba", AddSpecial::ModelDefault).unwrap();
    assert_eq!(tok.decode(&with_bos, false).unwrap(), "<s> ab ba");
    assert_eq!(tok.decode(&with_bos, true).unwrap(), "ab ba");
    assert!(tok.is_special(1) && tok.is_special(0) && !tok.is_special(id("<|user|>")));
    assert_eq!(
        tok.decode(&[id("<|user|>"), id("a")], true).unwrap(),
        "<|user|>a"
    );
    assert_eq!(tok.id_to_token(id("▁ab")).as_deref(), Some("▁ab"));
    assert_eq!(tok.id_to_token(9999), None);
}

#[test]
fn sentencepiece_without_space_prefix() {
    let tok = tiny_spm(Some(false));
    let id = |t: &str| tok.token_to_id(t).unwrap();
    assert_eq!(tok.encode("ab", AddSpecial::Neither).unwrap(), [id("ab")]);
    assert_eq!(
        tok.encode("a b", AddSpecial::Neither).unwrap(),
        [id("a"), id("▁"), id("b")]
    );
    assert_eq!(tok.decode_single(id("▁a")).unwrap(), " a");
    assert_eq!(tok.encode(" ab", AddSpecial::Neither).unwrap(), [id("▁ab")]);
    assert_eq!(tok.decode(&[id("▁ab")], false).unwrap(), " ab");
}

// --------------------------------------------------------- a tiny byte-level ("gpt2") GGUF

/// GPT-2's printable spelling of byte `b`.
fn byte_char(b: u8) -> char {
    let printable = |b: u8| matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
    if printable(b) {
        return char::from(b);
    }
    let n = (0..b).filter(|&x| !printable(x)).count() as u32;
    char::from_u32(256 + n).unwrap()
}

fn tiny_bpe(pre: Option<&str>) -> Result<LlmTokenizer, TokenizerError> {
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
    let mut g = Gguf::default()
        .str("tokenizer.ggml.model", "gpt2")
        .strs("tokenizer.ggml.tokens", &tokens)
        .strs("tokenizer.ggml.merges", &merges)
        .i32s("tokenizer.ggml.token_type", &types)
        .u32("tokenizer.ggml.bos_token_id", 1)
        .u32("tokenizer.ggml.eos_token_id", 2)
        .bool("tokenizer.ggml.add_bos_token", false);
    if let Some(p) = pre {
        g = g.str("tokenizer.ggml.pre", p);
    }
    LlmTokenizer::from_gguf(&g.open())
}

#[test]
fn tiny_byte_level_gguf() {
    let tok = tiny_bpe(Some("smollm")).unwrap();
    let id = |t: &str| tok.token_to_id(t).unwrap();
    assert_eq!(tok.kind(), TokenizerKind::ByteLevelBpe);
    assert_eq!(tok.vocab_size(), 3 + 256 + 4);
    assert!(!tok.adds_bos() && !tok.adds_eos());
    assert_eq!(
        tok.encode("hi hi", AddSpecial::ModelDefault).unwrap(),
        [id("hi"), id("Ġhi")]
    );
    assert_eq!(
        tok.encode("<|im_start|>hi<|im_end|>", AddSpecial::Neither)
            .unwrap(),
        [1, id("hi"), 2]
    );
    assert_eq!(
        tok.encode("hi", AddSpecial::BosEos).unwrap(),
        [1, id("hi"), 2]
    );
    // "smollm" splits digits off first: the two spaces stay together.
    assert_eq!(
        tok.encode("a  12", AddSpecial::Neither).unwrap(),
        [id("a"), id("ĠĠ"), id("1"), id("2")]
    );
    // GPT-2's own split keeps one space with the number.
    let gpt2 = tiny_bpe(None).unwrap();
    assert_eq!(
        gpt2.encode("a  12", AddSpecial::Neither).unwrap(),
        [id("a"), id("Ġ"), id("Ġ"), id("1"), id("2")]
    );
    // é = C3 A9 = "Ã©".
    assert_eq!(tok.encode("é", AddSpecial::Neither).unwrap(), [id("Ã©")]);
    assert_eq!(tok.decode_single(id("Ã©")).unwrap(), "é");
    assert_eq!(tok.decode_single(id("Ã")).unwrap(), "\u{FFFD}");
    assert_eq!(tok.decode_single(id("©")).unwrap(), "\u{FFFD}");
    assert_eq!(tok.decode_single(id("Ġhi")).unwrap(), " hi");
    assert_eq!(tok.decode_single(1).unwrap(), "<|im_start|>");
    assert_eq!(tok.decode(&[id("Ã"), id("©")], false).unwrap(), "é");
    let chat = tok
        .encode("<|im_start|>hi hi<|im_end|>", AddSpecial::Neither)
        .unwrap();
    assert_eq!(
        tok.decode(&chat, false).unwrap(),
        "<|im_start|>hi hi<|im_end|>"
    );
    assert_eq!(tok.decode(&chat, true).unwrap(), "hi hi");
    assert!(tok.is_special(0) && tok.is_special(2) && !tok.is_special(id("hi")));

    for pre in [
        "llama3",
        "llama-bpe",
        "qwen2",
        "default",
        "gpt-2",
        "starcoder",
    ] {
        let t = tiny_bpe(Some(pre)).unwrap();
        let text = "Hi there, it's 12345 o'clock!\n\n  ok  ";
        let ids = t.encode(text, AddSpecial::Neither).unwrap();
        assert_eq!(t.decode(&ids, false).unwrap(), text, "pre {pre}");
    }
}

// ------------------------------------------------------------------------------- errors

#[test]
fn unreadable_and_invalid_files() {
    let missing = Path::new("/nonexistent/v2l/tokenizer.json");
    match LlmTokenizer::from_file(missing) {
        Err(TokenizerError::Io { path, context, .. }) => {
            assert_eq!(path, missing);
            assert_eq!(context, "reading");
        }
        other => panic!("expected Io, got {other:?}"),
    }
    assert!(matches!(
        LlmTokenizer::from_llama_tokenizer_js(missing),
        Err(TokenizerError::Io { .. })
    ));

    let dir = scratch_dir("errors");
    let garbage = dir.join("tokenizer.json");
    std::fs::write(&garbage, "{\"model\": 3}").unwrap();
    let err = LlmTokenizer::from_file(&garbage).unwrap_err();
    assert!(
        matches!(&err, TokenizerError::InvalidTokenizerJson { path, .. } if path == &garbage),
        "{err:?}"
    );

    let js = dir.join("not-llama.js");
    std::fs::write(&js, "export const x = 1;\n").unwrap();
    let err = LlmTokenizer::from_llama_tokenizer_js(&js).unwrap_err();
    assert!(
        matches!(&err, TokenizerError::MalformedVocab { reason, .. } if reason.contains("llama_vocab_base64")),
        "{err:?}"
    );
    // Vocabulary "<unk>\n<s>\n</s>\na" and a merges blob of 3 bytes / naming id 9.
    let vocab = "PHVuaz4KPHM+Cjwvcz4KYQ==";
    for (merges, needle) in [("AAAA", "u16 pairs"), ("CQAAAA==", "token id 9")] {
        std::fs::write(
            &js,
            format!("const llama_vocab_base64 = \"{vocab}\"\nconst llama_merges_binary = \"{merges}\"\n"),
        )
        .unwrap();
        let err = LlmTokenizer::from_llama_tokenizer_js(&js).unwrap_err();
        assert!(
            matches!(&err, TokenizerError::MalformedVocab { reason, .. } if reason.contains(needle)),
            "{err:?}"
        );
    }
    std::fs::write(
        &js,
        format!("const llama_vocab_base64 = \"{vocab}\"\nconst llama_merges_binary = \"\"\n"),
    )
    .unwrap();
    let tiny = LlmTokenizer::from_llama_tokenizer_js(&js).unwrap();
    assert_eq!(tiny.vocab_size(), 4);
    assert_eq!(
        tiny.encode("a", AddSpecial::ModelDefault).unwrap(),
        [1, 0, 3]
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn tokenizer_json_with_a_gap_in_its_ids() {
    let dir = scratch_dir("gap");
    let path = dir.join("tokenizer.json");
    std::fs::write(
        &path,
        r#"{"version": "1.0", "added_tokens": [], "normalizer": null, "pre_tokenizer": null,
            "post_processor": null, "decoder": null,
            "model": {"type": "BPE", "vocab": {"a": 0, "c": 2}, "merges": []}}"#,
    )
    .unwrap();
    let tok = LlmTokenizer::from_file(&path).unwrap();
    assert_eq!(tok.kind(), TokenizerKind::Other);
    assert_eq!(tok.vocab_size(), 3);
    assert_eq!((tok.bos_id(), tok.eos_id()), (None, None));
    assert_eq!(tok.encode("ac", AddSpecial::ModelDefault).unwrap(), [0, 2]);
    assert_eq!(tok.decode(&[0, 2], false).unwrap(), "a c");
    assert!(matches!(
        tok.decode_single(1),
        Err(TokenizerError::IdOutOfRange {
            id: 1,
            vocab_size: 3
        })
    ));
    assert!(matches!(
        tok.encode("a", AddSpecial::Bos),
        Err(TokenizerError::NoSpecialToken { which: "BOS" })
    ));
    std::fs::remove_dir_all(dir).unwrap();
}

fn gguf_err(g: Gguf) -> TokenizerError {
    LlmTokenizer::from_gguf(&g.open()).unwrap_err()
}

fn assert_malformed(err: &TokenizerError, key: &str, needle: &str) {
    match err {
        TokenizerError::MalformedVocab { origin, reason } => {
            assert_eq!(origin, key, "{err}");
            assert!(reason.contains(needle), "{err}");
        }
        other => panic!("expected MalformedVocab({key}), got {other:?}"),
    }
}

#[test]
fn gguf_errors() {
    let err = gguf_err(Gguf::default().str("tokenizer.ggml.model", "bert"));
    assert!(
        matches!(&err, TokenizerError::UnsupportedModel { model } if model == "bert"),
        "{err:?}"
    );
    assert!(err.to_string().contains("\"bert\""), "{err}");

    let err = gguf_err(Gguf::default().str("general.architecture", "llama"));
    assert_malformed(&err, "tokenizer.ggml.model", "missing");
    let err = gguf_err(Gguf::default().u32("tokenizer.ggml.model", 1));
    assert_malformed(&err, "tokenizer.ggml.model", "STRING");

    let llama = || Gguf::default().str("tokenizer.ggml.model", "llama");
    assert_malformed(&gguf_err(llama()), "tokenizer.ggml.tokens", "missing");
    let err = gguf_err(llama().strs::<&str>("tokenizer.ggml.tokens", &[]));
    assert_malformed(&err, "tokenizer.ggml.tokens", "empty");
    let err = gguf_err(llama().strs("tokenizer.ggml.tokens", &["a", "b"]));
    assert_malformed(&err, "tokenizer.ggml.scores", "missing");
    let err = gguf_err(
        llama()
            .strs("tokenizer.ggml.tokens", &["a", "b"])
            .f32s("tokenizer.ggml.scores", &[0.0]),
    );
    assert_malformed(&err, "tokenizer.ggml.scores", "1 scores for 2 tokens");
    let err = gguf_err(
        llama()
            .strs("tokenizer.ggml.tokens", &["a", "b"])
            .f32s("tokenizer.ggml.scores", &[0.0, f32::NAN]),
    );
    assert_malformed(&err, "tokenizer.ggml.scores", "NaN");
    let err = gguf_err(
        llama()
            .strs("tokenizer.ggml.tokens", &["a", "b"])
            .i32s("tokenizer.ggml.token_type", &[1, 1, 1]),
    );
    assert_malformed(
        &err,
        "tokenizer.ggml.token_type",
        "3 token types for 2 tokens",
    );
    let err = gguf_err(
        llama()
            .strs("tokenizer.ggml.tokens", &["a", "b", "a"])
            .f32s("tokenizer.ggml.scores", &[0.0; 3]),
    );
    assert_malformed(
        &err,
        "tokenizer.ggml.tokens",
        "appears twice, at ids 0 and 2",
    );
    let err = gguf_err(
        llama()
            .strs("tokenizer.ggml.tokens", &["a", "b"])
            .f32s("tokenizer.ggml.scores", &[0.0; 2])
            .u32("tokenizer.ggml.bos_token_id", 7),
    );
    assert_malformed(&err, "tokenizer.ggml.bos_token_id", "token id 7");

    let gpt2 = |merges: &[&str]| {
        Gguf::default()
            .str("tokenizer.ggml.model", "gpt2")
            .strs("tokenizer.ggml.tokens", &["a", "b", "ab"])
            .strs("tokenizer.ggml.merges", merges)
    };
    // Without token types, BOS/EOS are the special tokens.
    let plain =
        LlmTokenizer::from_gguf(&gpt2(&["a b"]).u32("tokenizer.ggml.eos_token_id", 2).open())
            .unwrap();
    assert!(plain.is_special(2) && !plain.is_special(0));
    assert_eq!((plain.bos_id(), plain.eos_id()), (None, Some(2)));
    assert!(!plain.adds_bos() && !plain.adds_eos());
    assert_malformed(
        &gguf_err(gpt2(&["a c"])),
        "tokenizer.ggml.tokens",
        "\"c\" is not in the vocabulary",
    );
    assert_malformed(
        &gguf_err(gpt2(&["b a"])),
        "tokenizer.ggml.tokens",
        "merged token",
    );
    assert_malformed(
        &gguf_err(gpt2(&["ab"])),
        "tokenizer.ggml.merges",
        "merge #0",
    );
    assert_malformed(
        &gguf_err(gpt2(&["a b c"])),
        "tokenizer.ggml.merges",
        "one space",
    );
    let err = gguf_err(
        Gguf::default()
            .str("tokenizer.ggml.model", "gpt2")
            .strs("tokenizer.ggml.tokens", &["a"]),
    );
    assert_malformed(&err, "tokenizer.ggml.merges", "missing");
    let err = gguf_err(gpt2(&["a b"]).str("tokenizer.ggml.pre", "klingon"));
    match &err {
        TokenizerError::UnsupportedPreTokenizer { pre, supported } => {
            assert_eq!(pre, "klingon");
            assert!(supported.contains("smollm"));
        }
        other => panic!("expected UnsupportedPreTokenizer, got {other:?}"),
    }
}

#[test]
fn decode_and_special_token_errors() {
    let tok = tiny_spm(None);
    let n = tok.vocab_size();
    let out = u32::try_from(n).unwrap();
    for err in [
        tok.decode(&[1, out], false).unwrap_err(),
        tok.decode_single(u32::MAX).unwrap_err(),
    ] {
        match err {
            TokenizerError::IdOutOfRange { vocab_size, .. } => assert_eq!(vocab_size, n),
            other => panic!("expected IdOutOfRange, got {other:?}"),
        }
    }
    let no_eos = tok.clone().with_special_tokens(Some(1), None).unwrap();
    assert!(matches!(
        no_eos.encode("a", AddSpecial::Eos),
        Err(TokenizerError::NoSpecialToken { which: "EOS" })
    ));
    assert_eq!(
        no_eos.encode("ab", AddSpecial::ModelDefault).unwrap().len(),
        2
    );
    let no_bos = tok.clone().with_special_tokens(None, Some(2)).unwrap();
    assert!(!no_bos.adds_bos());
    assert!(matches!(
        no_bos.encode("a", AddSpecial::BosEos),
        Err(TokenizerError::NoSpecialToken { which: "BOS" })
    ));
    assert!(matches!(
        tok.clone().with_special_tokens(Some(out), None),
        Err(TokenizerError::IdOutOfRange { .. })
    ));
    let eos_too = tok.with_default_special(true, true);
    let ids = eos_too.encode("ab", AddSpecial::ModelDefault).unwrap();
    assert_eq!((ids[0], ids[ids.len() - 1]), (1, 2));
}

// ------------------------------------------------------------------ LLaMA-2 (asset-backed)

fn llama2() -> Option<LlmTokenizer> {
    let path = v2l_assets::fetch::test_asset("llama2-vocab", "llama-tokenizer.js").unwrap()?;
    Some(LlmTokenizer::from_llama_tokenizer_js(path).unwrap())
}

fn is_llama_special_text(text: &str) -> bool {
    text.is_empty() || ["<s>", "</s>", "<unk>"].iter().any(|s| text.contains(s))
}

#[test]
fn llama2_matches_the_javascript_tokenizer() {
    let Some(tok) = llama2() else { return };
    assert_eq!(tok.vocab_size(), 32_000);
    assert_eq!((tok.bos_id(), tok.eos_id()), (Some(1), Some(2)));
    assert!(tok.adds_bos() && !tok.adds_eos());
    assert_eq!(tok.kind(), TokenizerKind::SentencePieceBpe);
    assert_eq!(
        tok.encode("Hello world", AddSpecial::ModelDefault).unwrap(),
        [1, 15043, 3186]
    );
    assert_eq!(
        tok.encode("Hello world", AddSpecial::Neither).unwrap(),
        [15043, 3186]
    );
    assert_eq!(
        tok.encode("Hello world", AddSpecial::BosEos).unwrap(),
        [1, 15043, 3186, 2]
    );

    let f = fixture("llama2.json");
    let differ = strings(&f["hf_differs_from_js"]);
    for text in &differ {
        assert!(
            is_llama_special_text(text),
            "unexpected JS difference on {text:?}"
        );
    }
    let cases = f["cases"].as_array().unwrap();
    assert!(cases.len() > 300);
    let mut js_equal = 0;
    for c in cases {
        let text = c["text"].as_str().unwrap();
        let ours = tok.encode(text, AddSpecial::ModelDefault).unwrap();
        assert_eq!(ours, ids(&c["hf_ids"]), "{text:?}");
        if differ.contains(text) {
            assert_ne!(ours, ids(&c["js_ids"]), "{text:?}");
        } else {
            assert_eq!(ours, ids(&c["js_ids"]), "{text:?}");
            assert_eq!(
                tok.decode(&ours, true).unwrap(),
                c["js_decoded"],
                "{text:?}"
            );
            js_equal += 1;
        }
        assert_eq!(
            tok.decode(&ours, false).unwrap(),
            c["hf_decoded"],
            "{text:?}"
        );
        assert_eq!(
            tok.decode(&ours, true).unwrap(),
            c["hf_decoded_skip"],
            "{text:?}"
        );
        // `▁` in the text is the space token, which decodes to a space.
        if !is_llama_special_text(text) && !text.contains('▁') {
            assert_eq!(
                tok.decode(&ours, true).unwrap(),
                text,
                "round trip {text:?}"
            );
        }
    }
    assert_eq!(js_equal, cases.len() - differ.len());
    // Special-token text: one id in HF, characters in JS / SentencePiece.
    assert_eq!(tok.encode("a<s>b", AddSpecial::Neither).unwrap()[1..2], [1]);
}

#[test]
fn llama2_decode_single_matches_transformers() {
    let Some(tok) = llama2() else { return };
    let f = fixture("llama2.json");
    let singles = f["decode_single"].as_array().unwrap();
    assert!(singles.len() > 2500);
    for pair in singles {
        let id = u32::try_from(pair[0].as_u64().unwrap()).unwrap();
        assert_eq!(tok.decode_single(id).unwrap(), pair[1], "id {id}");
    }
    assert_eq!(tok.decode_single(15043).unwrap(), "Hello");
    assert_eq!(tok.id_to_token(15043).as_deref(), Some("▁Hello"));
    assert_eq!(tok.decode_single(13).unwrap(), "\n");
    assert_eq!(tok.decode_single(29871).unwrap(), "");
}

#[test]
fn llama2_tokenizer_json_round_trip() {
    let Some(tok) = llama2() else { return };
    let dir = scratch_dir("llama2-json");
    let path = dir.join("tokenizer.json");
    tok.to_tokenizer_json(&path).unwrap();
    let back = LlmTokenizer::from_file(&path).unwrap();
    assert_eq!(back.kind(), TokenizerKind::SentencePieceBpe);
    assert_eq!(back.vocab_size(), 32_000);
    assert_eq!((back.bos_id(), back.eos_id()), (Some(1), Some(2)));
    assert!(back.adds_bos() && !back.adds_eos());
    let f = fixture("llama2.json");
    for c in f["cases"].as_array().unwrap() {
        let text = c["text"].as_str().unwrap();
        assert_eq!(
            back.encode(text, AddSpecial::ModelDefault).unwrap(),
            ids(&c["hf_ids"]),
            "{text:?}"
        );
    }
    // A tokenizer_config.json beside the file overrides the defaults.
    std::fs::write(
        dir.join("tokenizer_config.json"),
        r#"{"bos_token": {"content": "<s>"}, "eos_token": "</s>", "add_bos_token": false, "add_eos_token": true}"#,
    )
    .unwrap();
    let configured = LlmTokenizer::from_file(&path).unwrap();
    assert_eq!(
        configured
            .encode("Hello world", AddSpecial::ModelDefault)
            .unwrap(),
        [15043, 3186, 2]
    );
    std::fs::write(dir.join("tokenizer_config.json"), "not json").unwrap();
    assert!(matches!(
        LlmTokenizer::from_file(&path),
        Err(TokenizerError::InvalidTokenizerJson { .. })
    ));
    std::fs::remove_dir_all(dir).unwrap();
}

/// The vocabulary and merges of a tokenizer, read back from its `tokenizer.json`.
fn vocab_and_merges(tok: &LlmTokenizer) -> (Vec<String>, Vec<(String, String)>) {
    let json: Value = serde_json::from_str(&tok.inner().to_string(false).unwrap()).unwrap();
    let vocab = json["model"]["vocab"].as_object().unwrap();
    let mut tokens = vec![String::new(); vocab.len()];
    for (t, id) in vocab {
        tokens[id.as_u64().unwrap() as usize] = t.clone();
    }
    let merges = json["model"]["merges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| match m {
            Value::Array(p) => (
                p[0].as_str().unwrap().to_string(),
                p[1].as_str().unwrap().to_string(),
            ),
            Value::String(s) => {
                let (a, b) = s.split_once(' ').unwrap();
                (a.to_string(), b.to_string())
            }
            other => panic!("merge {other:?}"),
        })
        .collect();
    (tokens, merges)
}

#[test]
fn llama_gguf_from_the_llama2_vocabulary_matches_transformers() {
    let Some(js) = llama2() else { return };
    let (tokens, merges) = vocab_and_merges(&js);
    assert_eq!((tokens.len(), merges.len()), (32_000, 61_249));
    // The synthetic scores of scripts/gen_llm_tokenizer_fixtures.py (`synthetic_llama_scores`).
    let mut first: HashMap<String, usize> = HashMap::new();
    for (k, (a, b)) in merges.iter().enumerate() {
        first.entry(format!("{a}{b}")).or_insert(k);
    }
    let types: Vec<i32> = (0..tokens.len())
        .map(|i| match i {
            0 => 2,
            1 | 2 => 3,
            3..=258 => 6,
            _ => 1,
        })
        .collect();
    let scores: Vec<f32> = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| {
            if i < 259 {
                0.0
            } else {
                -(first.get(t).copied().unwrap_or(1_000_000 + i) as f32)
            }
        })
        .collect();
    let gguf = Gguf::default()
        .str("general.architecture", "llama")
        .str("tokenizer.ggml.model", "llama")
        .str("tokenizer.ggml.pre", "default")
        .strs("tokenizer.ggml.tokens", &tokens)
        .f32s("tokenizer.ggml.scores", &scores)
        .i32s("tokenizer.ggml.token_type", &types)
        .u32("tokenizer.ggml.bos_token_id", 1)
        .u32("tokenizer.ggml.eos_token_id", 2)
        .u32("tokenizer.ggml.unknown_token_id", 0)
        .bool("tokenizer.ggml.add_bos_token", true)
        .bool("tokenizer.ggml.add_eos_token", false)
        .bool("tokenizer.ggml.add_space_prefix", true)
        .open();
    let tok = LlmTokenizer::from_gguf(&gguf).unwrap();
    assert_eq!(tok.vocab_size(), 32_000);
    let (_, derived) = vocab_and_merges(&tok);
    let f = fixture("llama_gguf.json");
    assert_eq!(
        derived.len() as u64,
        f["n_derived_merges"].as_u64().unwrap()
    );

    // transformers' GGUF loader uses Metaspace(prepend_scheme="first"): it differs on text that
    // starts with a space (or ▁) and on text after a special token.
    let differ = strings(&f["transformers_differs"]);
    for text in &differ {
        assert!(
            text.starts_with([' ', '▁']) || is_llama_special_text(text),
            "unexpected transformers difference on {text:?}"
        );
    }
    for c in f["cases"].as_array().unwrap() {
        let text = c["text"].as_str().unwrap();
        let ours = tok.encode(text, AddSpecial::ModelDefault).unwrap();
        assert_eq!(ours, ids(&c["ref_ids"]), "{text:?}");
        assert_eq!(
            ours,
            js.encode(text, AddSpecial::ModelDefault).unwrap(),
            "{text:?}"
        );
        if !differ.contains(text) {
            assert_eq!(ours, ids(&c["transformers_ids"]), "{text:?}");
            assert_eq!(
                tok.encode(text, AddSpecial::Neither).unwrap(),
                ids(&c["transformers_ids_no_special"]),
                "{text:?}"
            );
        }
    }
}

// ------------------------------------------------------------------ SmolLM2 (asset-backed)

fn smollm2() -> Option<LlmTokenizer> {
    let path = v2l_assets::fetch::test_asset("smollm2-135m", "SmolLM2-135M-Instruct.Q4_1.gguf")
        .unwrap()?;
    let gguf = GgufFile::open(path).unwrap();
    Some(LlmTokenizer::from_gguf(&gguf).unwrap())
}

#[test]
fn smollm2_matches_transformers() {
    let Some(tok) = smollm2() else { return };
    let f = fixture("smollm2.json");
    assert_eq!(tok.vocab_size() as u64, f["vocab_size"].as_u64().unwrap());
    assert_eq!(tok.vocab_size(), 49_152);
    assert_eq!((tok.bos_id(), tok.eos_id()), (Some(1), Some(2)));
    assert_eq!(tok.token_to_id(f["bos"].as_str().unwrap()), Some(1));
    assert_eq!(tok.token_to_id(f["eos"].as_str().unwrap()), Some(2));
    assert!(!tok.adds_bos() && !tok.adds_eos(), "SmolLM2 adds no BOS");
    assert_eq!(tok.kind(), TokenizerKind::ByteLevelBpe);
    for (i, name) in ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
        .iter()
        .enumerate()
    {
        assert_eq!(tok.token_to_id(name), Some(i as u32));
        assert!(tok.is_special(i as u32));
    }

    // transformers' GGUF loader drops SmolLM2's digit split: it differs only where a digit
    // follows whitespace or another numeric character.
    let differ = strings(&f["transformers_differs"]);
    for text in &differ {
        assert!(
            text.chars().any(char::is_numeric),
            "unexpected difference on {text:?}"
        );
    }
    let cases = f["cases"].as_array().unwrap();
    assert!(cases.len() > 300);
    for c in cases {
        let text = c["text"].as_str().unwrap();
        let ours = tok.encode(text, AddSpecial::Neither).unwrap();
        assert_eq!(ours, ids(&c["ids"]), "{text:?}");
        assert_eq!(tok.encode(text, AddSpecial::ModelDefault).unwrap(), ours);
        if !differ.contains(text) {
            assert_eq!(ours, ids(&c["transformers_ids"]), "{text:?}");
            assert_eq!(ours, ids(&c["transformers_ids_add_special"]), "{text:?}");
        }
        assert_eq!(tok.decode(&ours, false).unwrap(), c["decoded"], "{text:?}");
        assert_eq!(
            tok.decode(&ours, true).unwrap(),
            c["decoded_skip"],
            "{text:?}"
        );
    }
    let chat = "<|im_start|>user\nHi<|im_end|>";
    let ids_chat = tok.encode(chat, AddSpecial::Neither).unwrap();
    assert_eq!((ids_chat[0], *ids_chat.last().unwrap()), (1, 2));
    assert_eq!(tok.decode(&ids_chat, false).unwrap(), chat);
}

#[test]
fn smollm2_decode_single_matches_transformers() {
    let Some(tok) = smollm2() else { return };
    let f = fixture("smollm2.json");
    let singles = f["decode_single"].as_array().unwrap();
    assert!(singles.len() > 2500);
    let mut replacement = 0;
    for pair in singles {
        let id = u32::try_from(pair[0].as_u64().unwrap()).unwrap();
        let ours = tok.decode_single(id).unwrap();
        assert_eq!(ours, pair[1], "id {id}");
        replacement += usize::from(ours.contains('\u{FFFD}'));
    }
    assert_eq!(
        replacement as u64,
        f["n_invalid_utf8_singles"].as_u64().unwrap(),
        "every id that is not valid UTF-8 alone is in the fixture"
    );
    assert!(replacement > 100);
}

#[test]
fn smollm2_tokenizer_json_round_trip() {
    let Some(tok) = smollm2() else { return };
    let dir = scratch_dir("smollm2-json");
    let path = dir.join("tokenizer.json");
    tok.to_tokenizer_json(&path).unwrap();
    let back = LlmTokenizer::from_file(&path)
        .unwrap()
        .with_special_tokens(Some(1), Some(2))
        .unwrap();
    assert_eq!(back.kind(), TokenizerKind::ByteLevelBpe);
    assert_eq!(back.vocab_size(), 49_152);
    assert!(!back.adds_bos());
    let f = fixture("smollm2.json");
    for c in f["cases"].as_array().unwrap() {
        let text = c["text"].as_str().unwrap();
        assert_eq!(
            back.encode(text, AddSpecial::ModelDefault).unwrap(),
            ids(&c["ids"]),
            "{text:?}"
        );
    }
    std::fs::remove_dir_all(dir).unwrap();
}
