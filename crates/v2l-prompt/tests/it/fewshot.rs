//! Constrained few-shot decoding on the tiny random LLaMA (vocab 256,
//! context 64): the union mask (faithful) and the trie (corrected), with
//! the expected tokens derived here from the model's own logits.

use burn::backend::NdArray;
use v2l_llm::tokenizer::AddSpecial;
use v2l_llm::Llama;
use v2l_prompt::fewshot::{classify, episode_prompt, Decoding, FewShotOptions, TextEpisode};
use v2l_prompt::{InstructionStyle, LabelledText, PromptError, PromptTokens};

use crate::common::{tiny_llm_dir, word_tokenizer};

type B = NdArray;

const WORDS: &[&str] = &[
    "###", "Input:", "<", ">", "Output:", "red", "fur", "wool", "coat", "x", "y",
];

fn episode() -> TextEpisode {
    TextEpisode {
        support: vec![
            LabelledText {
                visual: "x y".into(),
                label: "red fur".into(),
            },
            LabelledText {
                visual: "y y".into(),
                label: "wool coat".into(),
            },
        ],
        query_visual: "x x".into(),
        target: "red fur".into(),
    }
}

fn logits_after(llm: &Llama<B>, ids: &[u32]) -> Vec<f32> {
    let mut cache = llm.new_cache();
    llm.next_logits(&[ids.to_vec()], &mut cache)
        .unwrap()
        .remove(0)
}

fn best(logits: &[f32], allowed: &[u32]) -> u32 {
    *allowed
        .iter()
        .max_by(|&&a, &&b| {
            logits[a as usize]
                .total_cmp(&logits[b as usize])
                .then(b.cmp(&a))
        })
        .unwrap()
}

#[test]
fn union_mask_and_trie_decoding_on_a_tiny_llm() {
    let dir = tempfile::tempdir().unwrap();
    let tok = word_tokenizer(dir.path(), WORDS);
    let llm = Llama::<B>::open(tiny_llm_dir(), &Default::default()).unwrap();
    let id = |w: &str| tok.token_to_id(w).unwrap();
    let ep = episode();
    let opts = FewShotOptions {
        style: InstructionStyle::None,
        ..FewShotOptions::default()
    };
    let prompt = episode_prompt(&tok, &ep, &opts).unwrap();
    assert_eq!(prompt[0], 1, "BOS once");

    // Union mask: step 0 {red, wool}, step 1 {fur, coat}, step 2 {EOS},
    // then empty rows → id 0; always 16 steps.
    let rows: [Vec<u32>; 3] = [
        vec![id("red"), id("wool")],
        vec![id("fur"), id("coat")],
        vec![2],
    ];
    let mut seq = prompt.clone();
    let mut want = Vec::new();
    for step in 0..16 {
        let l = logits_after(&llm, &seq);
        let t = rows.get(step).map_or(0, |r| best(&l, r));
        want.push(t);
        seq.push(t);
    }
    let p = classify(&llm, &tok, &ep, &opts).unwrap();
    assert_eq!(p.tokens, want);
    assert_eq!(p.prompt_tokens, prompt.len());
    let name = format!(
        "{} {}",
        tok.id_to_token(want[0]).unwrap(),
        tok.id_to_token(want[1]).unwrap()
    );
    assert_eq!(p.correct, name == "red fur", "{name} / {}", p.text);

    // Trie: only whole names, stop after EOS.
    let trie = FewShotOptions {
        decoding: Decoding::Trie,
        ..opts.clone()
    };
    let t0 = best(&logits_after(&llm, &prompt), &[id("red"), id("wool")]);
    let t1 = if t0 == id("red") {
        id("fur")
    } else {
        id("coat")
    };
    let p = classify(&llm, &tok, &ep, &trie).unwrap();
    assert_eq!(p.tokens, vec![t0, t1, 2]);
    assert_eq!(p.correct, t0 == id("red"));
    assert!(p.text.starts_with(if t0 == id("red") {
        "red fur"
    } else {
        "wool coat"
    }));
}

#[test]
fn over_long_prompts_fail_before_generation() {
    let dir = tempfile::tempdir().unwrap();
    let tok = word_tokenizer(dir.path(), WORDS);
    let llm = Llama::<B>::open(tiny_llm_dir(), &Default::default()).unwrap();
    let mut ep = episode();
    // The tiny model's context is 64 positions.
    ep.support = (0..12)
        .map(|i| LabelledText {
            visual: "x y x".into(),
            label: if i % 2 == 0 { "red fur" } else { "wool coat" }.into(),
        })
        .collect();
    match classify(&llm, &tok, &ep, &FewShotOptions::default()) {
        Err(PromptError::ContextOverflow {
            context, generate, ..
        }) => assert_eq!((context, generate), (64, 16)),
        other => panic!("{other:?}"),
    }
    // A smaller declared window (the reference's max_seq_len) is honoured.
    let opts = FewShotOptions {
        context: Some(20),
        ..FewShotOptions::default()
    };
    assert!(matches!(
        classify(&llm, &tok, &episode(), &opts),
        Err(PromptError::ContextOverflow { context: 20, .. })
    ));
}

/// `log softmax(logits)[id]` in f64, computed here.
fn log_prob(logits: &[f32], id: u32) -> f64 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let z: f64 = logits.iter().map(|&x| (x as f64 - max).exp()).sum();
    logits[id as usize] as f64 - max - z.ln()
}

#[test]
fn calibrated_decoding_on_a_tiny_llm() {
    let dir = tempfile::tempdir().unwrap();
    let tok = word_tokenizer(dir.path(), WORDS);
    let llm = Llama::<B>::open(tiny_llm_dir(), &Default::default()).unwrap();
    let id = |w: &str| tok.token_to_id(w).unwrap();
    let opts = FewShotOptions {
        style: InstructionStyle::None,
        decoding: Decoding::Calibrated,
        ..FewShotOptions::default()
    };
    let ep = episode();
    let prompt = episode_prompt(&tok, &ep, &opts).unwrap();
    let free = TextEpisode {
        query_visual: "N/A".into(),
        ..episode()
    };
    let free_prompt = episode_prompt(&tok, &free, &opts).unwrap();
    assert_ne!(prompt, free_prompt);
    // Each name's log-probability from full forward passes over the prompt
    // and the name's prefix (no cache sharing), in f64.
    let score = |p: &[u32], name: &[u32]| {
        let mut seq = p.to_vec();
        let mut total = 0.0;
        for &t in name {
            total += log_prob(&logits_after(&llm, &seq), t);
            seq.push(t);
        }
        total
    };
    let names = [vec![id("red"), id("fur")], vec![id("wool"), id("coat")]];
    let want: Vec<f64> = names
        .iter()
        .map(|n| score(&prompt, n) - score(&free_prompt, n))
        .collect();
    let p = classify(&llm, &tok, &ep, &opts).unwrap();
    assert_eq!(p.scores.len(), 2);
    assert_eq!(p.scores[0].0, "red fur");
    assert_eq!(p.scores[1].0, "wool coat");
    for ((_, got), w) in p.scores.iter().zip(&want) {
        assert!((got - w).abs() < 1e-4, "{got} vs {w}");
    }
    let winner = if want[0] >= want[1] { 0 } else { 1 };
    assert_eq!(p.tokens, names[winner]);
    assert_eq!(p.text, ["red fur", "wool coat"][winner]);
    assert_eq!(p.correct, winner == 0);
}

#[test]
fn joined_prompts_write_labels_as_words() {
    let Some(tok) = crate::common::smollm2() else {
        return;
    };
    let id = |w: &str| {
        tok.token_to_id(w)
            .unwrap_or_else(|| panic!("{w:?} is not one token"))
    };
    let ep = TextEpisode {
        support: vec![
            LabelledText {
                visual: " sweater hoodie".into(),
                label: "Coat".into(),
            },
            LabelledText {
                visual: " purse".into(),
                label: "Bag".into(),
            },
        ],
        query_visual: " hoodie".into(),
        target: "Coat".into(),
    };
    let pieces = FewShotOptions {
        style: InstructionStyle::None,
        ..FewShotOptions::default()
    };
    let joined = FewShotOptions {
        tokens: PromptTokens::Joined,
        ..pieces.clone()
    };
    let has = |ids: &[u32], run: &[u32]| ids.windows(run.len()).any(|w| w == run);
    // SmolLM2's vocabulary: "ĠCoat" is the word with its space, "Ġ" a lone
    // space; "Coat" without its space is not a word of it.
    let a = episode_prompt(&tok, &ep, &pieces).unwrap();
    let bare = tok.encode("Coat", AddSpecial::Neither).unwrap();
    assert!(bare.len() > 1 && bare[0] != id("ĠCoat"));
    assert!(
        has(&a, &[[id(":"), id("Ġ")].as_slice(), &bare].concat()),
        "{a:?}"
    );
    assert_eq!(a.last(), Some(&id("Ġ")));
    let b = episode_prompt(&tok, &ep, &joined).unwrap();
    assert!(has(&b, &[id("Output"), id(":"), id("ĠCoat")]), "{b:?}");
    assert!(has(&b, &[id("Output"), id(":"), id("ĠBag")]), "{b:?}");
    assert_eq!(&b[b.len() - 2..], &[id("Output"), id(":")]);
    assert!(!has(&b, &[id(":"), id("Ġ")]), "{b:?}");
    let eos = tok.eos_id().into_iter().collect::<Vec<_>>();
    let cands = v2l_prompt::fewshot::candidates(&tok, &ep.classes(), &joined).unwrap();
    assert_eq!(
        cands,
        vec![
            [vec![id("ĠBag")], eos.clone()].concat(),
            [vec![id("ĠCoat")], eos].concat()
        ]
    );
}
