//! Prompt token sequences against an independent construction with the
//! `llama-tokenizer-js` package's own tokenizer
//! (`scripts/gen_prompt_fixtures.mjs`), and the instruction strings.

use v2l_prompt::fewshot::{episode_prompt, FewShotOptions, TextEpisode};
use v2l_prompt::prompt::{class_candidates, instruction, restore_prompt, visual_text};
use v2l_prompt::{InstructionStyle, LabelledText};

use crate::common::{fixture, llama2};

fn reference() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(fixture("prompts.json")).unwrap()).unwrap()
}

fn ids(v: &serde_json::Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

#[test]
fn instruction_lines() {
    let classes = vec!["goldfish".to_string(), "house_finch".to_string()];
    assert_eq!(
        instruction(&classes, InstructionStyle::Faithful),
        "For each of the following input output pairs, output is one of ['goldfish' or ['house_finch']\n"
    );
    assert_eq!(
        instruction(&classes, InstructionStyle::Corrected),
        "For each of the following input output pairs, output is one of ['goldfish', 'house_finch']\n"
    );
    assert_eq!(instruction(&classes, InstructionStyle::None), "");
    assert_eq!(visual_text(&["gold", "fish", " bowl"]), "goldfish bowl");
}

#[test]
fn fewshot_prompt_matches_llama_tokenizer_js() {
    let Some(tok) = llama2() else { return };
    let r = reference();
    let f = &r["fewshot"];
    let support: Vec<LabelledText> = f["support"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| LabelledText {
            visual: s["visual"].as_str().unwrap().into(),
            label: s["label"].as_str().unwrap().into(),
        })
        .collect();
    let episode = TextEpisode {
        support,
        query_visual: f["query"]["visual"].as_str().unwrap().into(),
        target: f["query"]["target"].as_str().unwrap().into(),
    };
    // The query's class is never in the prompt's examples; the classes are
    // sorted as np.unique sorts them.
    assert_eq!(episode.classes(), ["goldfish", "house_finch"]);
    for (style, key) in [
        (InstructionStyle::Faithful, "faithful"),
        (InstructionStyle::Corrected, "corrected"),
    ] {
        let opts = FewShotOptions {
            style,
            ..FewShotOptions::default()
        };
        let got = episode_prompt(&tok, &episode, &opts).unwrap();
        assert_eq!(got, ids(&f["ids"][key]), "{key}");
        assert_eq!(got[0], 1, "BOS once, first");
        assert_eq!(got.iter().filter(|&&i| i == 1).count(), 1);
    }
    let cands = class_candidates(&tok, &episode.classes()).unwrap();
    let want: Vec<Vec<u32>> = f["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(ids)
        .collect();
    assert_eq!(cands, want);
}

#[test]
fn restoration_prompts_match_llama_tokenizer_js() {
    let Some(tok) = llama2() else { return };
    let r = reference();
    for key in ["restore_inpainting", "restore_deblur"] {
        let s = &r[key];
        let examples: Vec<(Vec<u32>, Vec<u32>)> = s["examples"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (ids(&e["input"]), ids(&e["output"])))
            .collect();
        let got = restore_prompt(&tok, 2, &examples, &ids(&s["query_input"])).unwrap();
        assert_eq!(got, ids(&s["ids"]), "{key}");
    }
    // An id outside the vocabulary is an error naming the segment.
    let e = restore_prompt(&tok, 2, &[(vec![5, 32_000], vec![1, 2])], &[3]).unwrap_err();
    assert!(e.to_string().contains("example input"), "{e}");
}
