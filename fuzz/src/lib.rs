//! Helpers shared by the fuzz targets in `fuzz_targets/`.
//!
//! Several parsers of v2l-rs take a path (they read sidecars or folders
//! beside the file): the targets write each input into a scratch folder that
//! lives as long as the fuzzing process.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// A scratch folder for this process (removed when the process exits
/// normally; libFuzzer's crash exits may leave it in the temp dir).
pub fn scratch_dir() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        tempfile::Builder::new()
            .prefix("v2l-fuzz-")
            .tempdir()
            .unwrap_or_else(|e| panic!("cannot create a scratch folder: {e}"))
    })
    .path()
}

/// Writes `data` to `name` inside the scratch folder and returns the path.
pub fn write_scratch(name: &str, data: &[u8]) -> PathBuf {
    let path = scratch_dir().join(name);
    std::fs::write(&path, data).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    path
}

/// Removes `name` from the scratch folder if it is there.
pub fn remove_scratch(name: &str) {
    let _ = std::fs::remove_file(scratch_dir().join(name));
}

/// What every caller does with a freshly loaded LLM tokenizer: encode a short
/// text with the model's special tokens, decode it back, look tokens up.
pub fn exercise_tokenizer(tok: &v2l_llm::tokenizer::LlmTokenizer) {
    use v2l_llm::tokenizer::AddSpecial;
    if let Ok(ids) = tok.encode("A photo of a cat, 3 × 4 = 12.\n", AddSpecial::ModelDefault) {
        let _ = tok.decode(&ids, false);
        let _ = tok.decode(&ids, true);
    }
    let n = u32::try_from(tok.vocab_size()).unwrap_or(u32::MAX);
    for id in [0, 1, 2, n.saturating_sub(1), n] {
        let _ = tok.decode_single(id);
        let _ = tok.id_to_token(id);
        let _ = tok.is_special(id);
    }
    let _ = tok.token_to_id("<s>");
}
