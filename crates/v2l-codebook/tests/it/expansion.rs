//! Vocabulary expansion with the real SmolLM2-135M-Instruct (GGUF Q4_1)
//! against transformers' greedy decoding of the same GGUF
//! (`scripts/gen_codebook_expansion_fixtures.py`), both modes, 50 entries.
//! Skipped when the asset is not cached. For SmolLM2's byte-level
//! vocabulary the two modes coincide on these entries (word-initial tokens
//! carry their space); the glued SentencePiece spelling is pinned in
//! `vocab.rs`.

use burn::backend::Flex;
use v2l_codebook::expand::{Expander, ExpansionMode, LlamaNext};
use v2l_llm::Llama;

use crate::common::{fixture, smollm2, smollm2_path};

fn ids(v: &serde_json::Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

#[test]
fn smollm2_expansion_matches_transformers_greedy() {
    let (Some(path), Some(tok)) = (smollm2_path(), smollm2()) else {
        return;
    };
    let model = Llama::<Flex>::open(&path, &Default::default()).unwrap();
    let reference: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("expansion/reference.json")).unwrap(),
    )
    .unwrap();
    let entry_ids = ids(&reference["entry_ids"]);
    assert_eq!(entry_ids.len(), 50);
    const NEAR_TIE: f64 = 1e-3;
    for (mode, key) in [
        (ExpansionMode::Faithful, "faithful"),
        (ExpansionMode::Corrected, "corrected"),
    ] {
        let expander = Expander::new(&tok, mode);
        let mut llm = LlamaNext::new(&model, 8);
        let got = expander.expand(&entry_ids, &mut llm).unwrap();
        for (g, r) in got.iter().zip(reference["entries"].as_array().unwrap()) {
            let m = &r[key];
            assert_eq!(g.id as u64, r["id"].as_u64().unwrap());
            assert_eq!(g.unigram, r["text1"].as_str().unwrap(), "id {}", g.id);
            assert_eq!(
                expander.prompt(&g.unigram).unwrap(),
                ids(&m["prompt1_ids"]),
                "id {}",
                g.id
            );
            let near = |gap: &str| m[gap].as_f64().unwrap() < NEAR_TIE;
            if g.next[0] != m["n1"].as_u64().unwrap() as u32 {
                assert!(
                    near("gap1"),
                    "{key} id {}: n1 {} vs {}",
                    g.id,
                    g.next[0],
                    m["n1"]
                );
                continue;
            }
            assert_eq!(g.bigram, m["text2"].as_str().unwrap(), "{key} id {}", g.id);
            assert_eq!(
                expander.prompt(&g.bigram).unwrap(),
                ids(&m["prompt2_ids"]),
                "id {}",
                g.id
            );
            if g.next[1] != m["n2"].as_u64().unwrap() as u32 {
                assert!(
                    near("gap2"),
                    "{key} id {}: n2 {} vs {}",
                    g.id,
                    g.next[1],
                    m["n2"]
                );
                continue;
            }
            assert_eq!(g.trigram, m["text3"].as_str().unwrap(), "{key} id {}", g.id);
        }
    }
}
