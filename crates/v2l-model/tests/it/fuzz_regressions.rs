//! Inputs that once panicked (found by the fuzz targets `tokens_json` and
//! `bundle_config` in `fuzz/`, docs/reliability.md, Fuzzing): each is committed
//! under `tests/fixtures/fuzz/` and must now end in a typed error.

use v2l_model::bundle::Bundle;
use v2l_model::{ImageTokens, ModelConfig, ModelError, TokensFile, VisualTokens};

use crate::common::fixture;

/// A tokens file whose grid `[2^32, 2^32]` overflows `h · w` (an arithmetic
/// overflow panic in `TokensFile::read` and `VisualTokens::validate`).
#[test]
fn tokens_grid_product_overflow_is_a_json_error() {
    let err = TokensFile::read(fixture("fuzz/tokens_grid_overflow.json")).unwrap_err();
    assert!(
        matches!(&err, ModelError::Json { message, .. } if message.contains("4294967296×4294967296")),
        "{err:?}"
    );
    let images = [ImageTokens {
        path: None,
        global_ids: vec![1],
        global_words: None,
        local_ids: vec![],
        grid: [1 << 32, 1 << 32],
    }];
    let err = VisualTokens::from_images(&images).unwrap_err();
    assert!(
        matches!(&err, ModelError::InvalidInput(m) if m.contains("overflows")),
        "{err:?}"
    );
}

/// Model configurations whose sizes overflow `usize`: `ch · ch_mult` (2^62 · 8),
/// 65 levels (the size factor 2^64) and `2 · z_channels` with `double_z`. Each
/// panicked with an arithmetic overflow in `ModelConfig::validate` or right
/// after it; now both readers of a `config.json` refuse them.
#[test]
fn config_size_overflows_are_config_errors() {
    for (name, needle) in [
        ("config_ch_overflow.json", "overflows"),
        ("config_levels_overflow.json", "65 levels"),
        ("config_double_z_overflow.json", "z_channels"),
    ] {
        let path = fixture(&format!("fuzz/{name}"));
        let err = ModelConfig::from_json_file(&path).unwrap_err();
        assert!(
            matches!(&err, ModelError::Config(m) if m.contains(needle)),
            "{name}: {err:?}"
        );
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(&path, dir.path().join("config.json")).unwrap();
        let err = Bundle::open(dir.path()).unwrap_err();
        assert!(matches!(&err, ModelError::Config(_)), "{name}: {err:?}");
    }
}
