//! Entry texts (single-id decode rules) and the expansion algorithm with a
//! scripted next-token oracle, on the real LLaMA-2 and SmolLM2 tokenizers.

use v2l_codebook::expand::{candidates, Expander, ExpansionMode, NextToken};
use v2l_codebook::vocab::{entry_text, prompt_text, sequence_text, vocabulary_texts};
use v2l_llm::tokenizer::{AddSpecial, LlmTokenizer};

use crate::common::{llama2, smollm2};

fn id(tok: &LlmTokenizer, piece: &str) -> u32 {
    tok.token_to_id(piece)
        .unwrap_or_else(|| panic!("{piece:?} is not one token"))
}

#[test]
fn llama2_entry_texts_follow_sentencepiece() {
    let Some(tok) = llama2() else { return };
    // Control tokens decode to "" and <unk> to " ⁇ ", as SentencePiece's
    // decoder (the reference's) writes them.
    assert_eq!(entry_text(&tok, 0).unwrap(), " \u{2047} ");
    assert_eq!(entry_text(&tok, 1).unwrap(), "");
    assert_eq!(entry_text(&tok, 2).unwrap(), "");
    // A word-initial piece loses its ▁; a mid-word piece is unchanged.
    assert_eq!(entry_text(&tok, id(&tok, "▁dog")).unwrap(), "dog");
    assert_eq!(entry_text(&tok, id(&tok, "ing")).unwrap(), "ing");
    // Byte tokens: <0x0A> is a newline, a lone 0xE2 is not UTF-8.
    assert_eq!(entry_text(&tok, 13).unwrap(), "\n");
    assert_eq!(entry_text(&tok, id(&tok, "<0xE2>")).unwrap(), "\u{FFFD}");
    // The whole-sequence spelling keeps word boundaries.
    let seq = [id(&tok, "▁dog"), id(&tok, "▁house")];
    assert_eq!(sequence_text(&tok, &seq).unwrap(), "dog house");
    // Out of range: an error, not a panic.
    assert!(entry_text(&tok, 32_000).is_err());
    // Row i = id i over the whole vocabulary.
    let all = vocabulary_texts(&tok).unwrap();
    assert_eq!(all.len(), 32_000);
    assert_eq!(all[id(&tok, "▁dog") as usize], "dog");
    assert_eq!(all[1], "");
}

#[test]
fn smollm2_entry_texts_follow_hf_byte_level() {
    let Some(tok) = smollm2() else { return };
    let dog = id(&tok, "Ġdog");
    assert_eq!(entry_text(&tok, dog).unwrap(), " dog");
    assert_eq!(prompt_text(" dog"), "dog");
    assert_eq!(prompt_text("  x"), " x");
    // Special tokens decode to their text.
    assert_eq!(entry_text(&tok, 1).unwrap(), "<|im_start|>");
    // "Ã" (0xC3) alone is half of a UTF-8 character.
    let half = id(&tok, "Ã");
    assert_eq!(entry_text(&tok, half).unwrap(), "\u{FFFD}");
    assert_eq!(vocabulary_texts(&tok).unwrap().len(), 49_152);
}

/// Answers each call with the next scripted id per prompt and records the
/// prompts it saw.
struct Scripted {
    answers: Vec<u32>,
    seen: Vec<Vec<Vec<u32>>>,
}

impl NextToken for Scripted {
    fn next_tokens(&mut self, prompts: &[Vec<u32>]) -> v2l_codebook::Result<Vec<u32>> {
        let a = self.answers[self.seen.len()];
        self.seen.push(prompts.to_vec());
        Ok(vec![a; prompts.len()])
    }
}

#[test]
fn expansion_glues_in_faithful_mode_and_keeps_spaces_in_corrected_mode() {
    let Some(tok) = llama2() else { return };
    let (dog, house, party) = (id(&tok, "▁dog"), id(&tok, "▁house"), id(&tok, "▁party"));
    let enc = |s: &str| tok.encode(s, AddSpecial::ModelDefault).unwrap();
    for (mode, bigram, trigram) in [
        (ExpansionMode::Faithful, "doghouse", "doghouseparty"),
        (ExpansionMode::Corrected, "dog house", "dog house party"),
    ] {
        let mut llm = Scripted {
            answers: vec![house, party],
            seen: Vec::new(),
        };
        let out = Expander::new(&tok, mode).expand(&[dog], &mut llm).unwrap();
        assert_eq!(out.len(), 1);
        let e = &out[0];
        assert_eq!((e.unigram.as_str(), e.bigram.as_str()), ("dog", bigram));
        assert_eq!(e.trigram, trigram, "{mode:?}");
        assert_eq!(e.next, [house, party]);
        assert_eq!(
            e.token_ids(),
            [vec![dog], vec![dog, house], vec![dog, house, party]]
        );
        // The prompts: BOS (LLaMA's convention) + "a photo of {text}".
        assert_eq!(llm.seen[0], vec![enc("a photo of dog")]);
        assert_eq!(llm.seen[0][0][0], 1);
        assert_eq!(llm.seen[1], vec![enc(&format!("a photo of {bigram}"))]);
    }
}

#[test]
fn candidates_follow_the_reference_order() {
    let Some(tok) = llama2() else { return };
    let ids = [id(&tok, "▁dog"), id(&tok, "▁cat")];
    let (house, party) = (id(&tok, "▁house"), id(&tok, "▁party"));
    let mut llm = Scripted {
        answers: vec![house, party],
        seen: Vec::new(),
    };
    let out = Expander::new(&tok, ExpansionMode::Faithful)
        .expand(&ids, &mut llm)
        .unwrap();
    let (strings, token_ids) = candidates(&out);
    assert_eq!(
        strings,
        [
            "dog",
            "cat",
            "doghouse",
            "cathouse",
            "doghouseparty",
            "cathouseparty"
        ]
    );
    assert_eq!(token_ids[3], vec![ids[1], house]);
    assert_eq!(token_ids[4], vec![ids[0], house, party]);
}
