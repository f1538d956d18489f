//! Prompt token sequences, built exactly as the reference builds them:
//! every text segment is encoded **separately** (so a SentencePiece
//! tokenizer adds its dummy-prefix space to each), BOS comes once at the
//! start (by the LLM's own convention), and visual tokens go in either as
//! re-tokenised global words (classification, captioning, VQA) or as raw
//! local ids (restoration; local id = LLM token id).

use v2l_llm::tokenizer::{AddSpecial, LlmTokenizer};

use crate::error::{PromptError, Result};

/// Opens each in-context example's input (spec §5.2, §5.4).
pub const INPUT_OPEN: &str = "###\nInput: < ";
/// Closes the input and opens the output.
pub const OUTPUT_OPEN: &str = " >\nOutput: ";
/// Closes the input and opens the output in a [`PromptTokens::Joined`]
/// prompt: the space after `Output:` belongs to the label that follows.
pub const OUTPUT_OPEN_JOINED: &str = " >\nOutput:";

/// How a classification prompt becomes token ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum PromptTokens {
    /// The reference: every piece (instruction, opener, visual text,
    /// closer, label) encoded alone and the ids concatenated; the output
    /// opener ends with a space and labels are encoded without one. With
    /// LLaMA's SentencePiece (a dummy-prefix space on every piece) that reads
    /// like ordinary text; with a byte-level BPE such as SmolLM2's, the
    /// opener's space becomes a lone token and each label a word without its
    /// space — token sequences the model never saw in training.
    #[default]
    Pieces,
    /// Corrected (not in the reference): the same text written out whole
    /// and encoded once, with the opener ending at `Output:` and each label
    /// written `" name"`, so the space belongs to the label as in ordinary
    /// text. The decoder's candidates are then `" name"` too, and the one
    /// leading space is dropped from the answer before it is scored.
    Joined,
}

/// How the classification instruction is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum InstructionStyle {
    /// The reference's line, malformed brackets included:
    /// `… output is one of ['a' or ['b']\n`.
    #[default]
    Faithful,
    /// A well-formed list: `… output is one of ['a', 'b']\n`.
    Corrected,
    /// No instruction (the reference's `induction=0`): BOS only.
    None,
}

/// The classification instruction for the episode's classes (sorted, as
/// `np.unique` returns them).
pub fn instruction(classes: &[String], style: InstructionStyle) -> String {
    const HEAD: &str = "For each of the following input output pairs, output is one of ";
    match style {
        InstructionStyle::None => String::new(),
        InstructionStyle::Faithful => {
            let mut s = HEAD.to_string();
            for c in classes {
                s.push_str(&format!("['{c}' or "));
            }
            // The reference cuts the last " or " and closes one bracket.
            let cut = s.len().saturating_sub(4);
            s.truncate(cut);
            s.push_str("]\n");
            s
        }
        InstructionStyle::Corrected => {
            let list: Vec<String> = classes.iter().map(|c| format!("'{c}'")).collect();
            format!("{HEAD}[{}]\n", list.join(", "))
        }
    }
}

/// The episode's class names sorted and deduplicated, as `np.unique` (code
/// point order).
pub fn sorted_classes<S: AsRef<str>>(names: &[S]) -> Vec<String> {
    let mut v: Vec<String> = names.iter().map(|s| s.as_ref().to_string()).collect();
    v.sort();
    v.dedup();
    v
}

/// An image's global words as one string: the reference concatenates them
/// with no separator before re-tokenising.
pub fn visual_text<S: AsRef<str>>(words: &[S]) -> String {
    words.iter().map(AsRef::as_ref).collect()
}

/// Accumulates a prompt segment by segment.
#[derive(Debug, Clone)]
pub struct PromptBuilder<'a> {
    tok: &'a LlmTokenizer,
    ids: Vec<u32>,
    segments: Vec<(String, usize)>,
}

impl<'a> PromptBuilder<'a> {
    /// Start a prompt with `first` encoded with the model's BOS convention
    /// (LLaMA: BOS; SmolLM2: none); never an EOS.
    ///
    /// # Errors
    /// Tokenizer failures.
    pub fn new(tok: &'a LlmTokenizer, first: &str) -> Result<Self> {
        let mut ids = tok.encode(first, AddSpecial::ModelDefault)?;
        if tok.adds_eos() && ids.last() == tok.eos_id().as_ref() {
            ids.pop();
        }
        let n = ids.len();
        Ok(Self {
            tok,
            ids,
            segments: vec![("instruction".into(), n)],
        })
    }

    /// Append `text`, encoded on its own without special tokens.
    ///
    /// # Errors
    /// Tokenizer failures.
    pub fn text(&mut self, label: &str, text: &str) -> Result<&mut Self> {
        let ids = self.tok.encode(text, AddSpecial::Neither)?;
        self.segments.push((label.into(), ids.len()));
        self.ids.extend(ids);
        Ok(self)
    }

    /// Append raw token ids (checked against the vocabulary).
    ///
    /// # Errors
    /// [`PromptError::IdOutOfRange`].
    pub fn ids(&mut self, label: &str, ids: &[u32]) -> Result<&mut Self> {
        let v = self.tok.vocab_size();
        if let Some(&id) = ids.iter().find(|&&i| i as usize >= v) {
            return Err(PromptError::IdOutOfRange {
                what: label.into(),
                id,
                vocab_size: v,
            });
        }
        self.segments.push((label.into(), ids.len()));
        self.ids.extend_from_slice(ids);
        Ok(self)
    }

    /// The ids so far.
    pub fn as_ids(&self) -> &[u32] {
        &self.ids
    }

    /// The segments (label, token count) in order.
    pub fn segments(&self) -> &[(String, usize)] {
        &self.segments
    }

    /// The finished prompt.
    pub fn finish(self) -> Vec<u32> {
        self.ids
    }
}

/// One in-context example of classification: an image's visual text and
/// its class name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelledText {
    /// The image's global words, concatenated ([`visual_text`]).
    pub visual: String,
    /// Its class name.
    pub label: String,
}

/// The few-shot classification prompt (spec §5.2): BOS + instruction, then
/// each support example `repeat + 1` times (`"###\nInput: < "`, visual
/// text, `" >\nOutput: "`, class name), then the query (`"###\nInput: < "`,
/// visual text, `" >\nOutput: "`). `classes` are the episode's sorted class
/// names (for the instruction).
///
/// # Errors
/// Tokenizer failures.
pub fn fewshot_prompt(
    tok: &LlmTokenizer,
    classes: &[String],
    style: InstructionStyle,
    support: &[LabelledText],
    query_visual: &str,
    repeat: usize,
) -> Result<Vec<u32>> {
    let mut b = PromptBuilder::new(tok, &instruction(classes, style))?;
    for _ in 0..=repeat {
        for ex in support {
            b.text("input", INPUT_OPEN)?
                .text("visual", &ex.visual)?
                .text("output", OUTPUT_OPEN)?
                .text("label", &ex.label)?;
        }
    }
    b.text("input", INPUT_OPEN)?
        .text("visual", query_visual)?
        .text("output", OUTPUT_OPEN)?;
    Ok(b.finish())
}

/// The [`PromptTokens::Joined`] few-shot prompt: the text of
/// [`fewshot_prompt`] with [`OUTPUT_OPEN_JOINED`] and `" name"` labels,
/// encoded once with the model's BOS convention (never an EOS).
///
/// # Errors
/// Tokenizer failures.
pub fn fewshot_prompt_joined(
    tok: &LlmTokenizer,
    classes: &[String],
    style: InstructionStyle,
    support: &[LabelledText],
    query_visual: &str,
    repeat: usize,
) -> Result<Vec<u32>> {
    let mut text = instruction(classes, style);
    for _ in 0..=repeat {
        for ex in support {
            text.push_str(INPUT_OPEN);
            text.push_str(&ex.visual);
            text.push_str(OUTPUT_OPEN_JOINED);
            text.push(' ');
            text.push_str(&ex.label);
        }
    }
    text.push_str(INPUT_OPEN);
    text.push_str(query_visual);
    text.push_str(OUTPUT_OPEN_JOINED);
    Ok(PromptBuilder::new(tok, &text)?.finish())
}

/// The decoder's candidates for a [`PromptTokens::Joined`] prompt: each
/// class name written `" name"`, encoded alone, followed by EOS (none if
/// the tokenizer has none).
///
/// # Errors
/// Tokenizer failures.
pub fn class_candidates_joined(tok: &LlmTokenizer, classes: &[String]) -> Result<Vec<Vec<u32>>> {
    let written: Vec<String> = classes.iter().map(|c| format!(" {c}")).collect();
    class_candidates(tok, &written)
}

/// The token sequences the constrained decoder allows: each class name
/// encoded alone followed by EOS (the reference's `encode(name, bos=False,
/// eos=True)`; no EOS if the tokenizer has none).
///
/// # Errors
/// Tokenizer failures.
pub fn class_candidates(tok: &LlmTokenizer, classes: &[String]) -> Result<Vec<Vec<u32>>> {
    classes
        .iter()
        .map(|c| {
            let mut ids = tok.encode(c, AddSpecial::Neither)?;
            ids.extend(tok.eos_id());
            Ok(ids)
        })
        .collect()
}

/// The restoration instruction for `step` tokens per call.
pub fn restore_instruction(step: usize) -> String {
    format!("Learning a new language and predict the {step} tokens following the examples.\n")
}

/// The restoration prompt (spec §5.4): BOS + instruction, then each example
/// (`"###\nInput: < "`, input ids, `" >\nOutput: "`, output ids), then the
/// query (`"###\nInput: < "`, input ids, `" >\nOutput: "`). Visual tokens are
/// raw LLM ids.
///
/// # Errors
/// Tokenizer failures; ids outside the vocabulary.
pub fn restore_prompt(
    tok: &LlmTokenizer,
    step: usize,
    examples: &[(Vec<u32>, Vec<u32>)],
    query_input: &[u32],
) -> Result<Vec<u32>> {
    let mut b = PromptBuilder::new(tok, &restore_instruction(step))?;
    for (input, output) in examples {
        b.text("input", INPUT_OPEN)?
            .ids("example input", input)?
            .text("output", OUTPUT_OPEN)?
            .ids("example output", output)?;
    }
    b.text("input", INPUT_OPEN)?
        .ids("query input", query_input)?
        .text("output", OUTPUT_OPEN)?;
    Ok(b.finish())
}

/// Check that a prompt plus the tokens to generate fit `context`.
///
/// # Errors
/// [`PromptError::ContextOverflow`].
pub fn check_context(prompt: usize, generate: usize, context: usize) -> Result<()> {
    let needed = prompt + generate;
    if needed > context {
        return Err(PromptError::ContextOverflow {
            needed,
            prompt,
            generate,
            context,
        });
    }
    Ok(())
}
