//! Few-shot captioning and visual question answering.
//!
//! The reference code has neither (spec §5.3). These prompts are **our
//! design**, built from the paper's description and in the same style as the
//! classification prompt: each segment is encoded separately, BOS once, and
//! the image is represented by its global words concatenated with no
//! separator.
//!
//! Captioning:
//! ```text
//! <BOS>Write a short caption for each input.\n
//! ###\nInput: < {words} >\nOutput: {caption}\n      (per example)
//! ###\nInput: < {words} >\nOutput:                 (query)
//! ```
//! VQA:
//! ```text
//! <BOS>Answer each question about the condition in a few words.\n
//! ###\nCondition: < {words} >\nQuestion: {question}\nAnswer: {answer}\n
//! ###\nCondition: < {words} >\nQuestion: {question}\nAnswer:
//! ```
//! Generation is greedy and stops at the example delimiter (a newline or
//! `###`) or at EOS; the text before the delimiter, trimmed, is the answer.

use burn::tensor::backend::Backend;
use v2l_llm::tokenizer::LlmTokenizer;
use v2l_llm::{GenerateOptions, Llama, Sampling};

use crate::error::Result;
use crate::prompt::{check_context, PromptBuilder, INPUT_OPEN, OUTPUT_OPEN};

/// The captioning instruction.
pub const CAPTION_INSTRUCTION: &str = "Write a short caption for each input.\n";
/// The VQA instruction.
pub const VQA_INSTRUCTION: &str = "Answer each question about the condition in a few words.\n";
/// Where a generated answer ends.
pub const STOP_STRINGS: [&str; 2] = ["\n", "###"];

/// One captioning example.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptionExample {
    /// The image's visual text (global words concatenated).
    pub visual: String,
    /// Its caption.
    pub caption: String,
}

/// One VQA example.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VqaExample {
    /// The image's visual text.
    pub visual: String,
    /// The question.
    pub question: String,
    /// The answer.
    pub answer: String,
}

/// The captioning prompt.
///
/// # Errors
/// Tokenizer failures.
pub fn caption_prompt(
    tok: &LlmTokenizer,
    examples: &[CaptionExample],
    query_visual: &str,
) -> Result<Vec<u32>> {
    let mut b = PromptBuilder::new(tok, CAPTION_INSTRUCTION)?;
    for e in examples {
        b.text("input", INPUT_OPEN)?
            .text("visual", &e.visual)?
            .text("output", OUTPUT_OPEN)?
            .text("caption", &format!("{}\n", e.caption))?;
    }
    b.text("input", INPUT_OPEN)?
        .text("visual", query_visual)?
        .text("output", OUTPUT_OPEN.trim_end_matches(' '))?;
    Ok(b.finish())
}

/// The VQA prompt.
///
/// # Errors
/// Tokenizer failures.
pub fn vqa_prompt(
    tok: &LlmTokenizer,
    examples: &[VqaExample],
    query_visual: &str,
    question: &str,
) -> Result<Vec<u32>> {
    let mut b = PromptBuilder::new(tok, VQA_INSTRUCTION)?;
    for e in examples {
        b.text("condition", "###\nCondition: < ")?
            .text("visual", &e.visual)?
            .text(
                "question",
                &format!(" >\nQuestion: {}\nAnswer: ", e.question),
            )?
            .text("answer", &format!("{}\n", e.answer))?;
    }
    b.text("condition", "###\nCondition: < ")?
        .text("visual", query_visual)?
        .text("question", &format!(" >\nQuestion: {question}\nAnswer:"))?;
    Ok(b.finish())
}

/// Greedy generation up to `max_tokens`, cut at the delimiter or EOS, and
/// trimmed.
///
/// # Errors
/// [`crate::PromptError::ContextOverflow`] before generation; model
/// failures.
pub fn generate_answer<B: Backend>(
    llm: &Llama<B>,
    tok: &LlmTokenizer,
    prompt: &[u32],
    max_tokens: usize,
) -> Result<String> {
    check_context(prompt.len(), max_tokens, llm.config.max_position_embeddings)?;
    let opts = GenerateOptions {
        max_tokens,
        sampling: Sampling::Greedy,
        stop_tokens: tok.eos_id().into_iter().collect(),
        stop_strings: STOP_STRINGS.iter().map(|s| s.to_string()).collect(),
        ..GenerateOptions::default()
    };
    let g = llm.generate(&[prompt.to_vec()], &opts, Some(tok))?;
    let text = g
        .into_iter()
        .next()
        .and_then(|g| {
            let eos = tok.eos_id();
            match (&g.stop, g.text) {
                (v2l_llm::StopReason::StopToken(id), _) if Some(*id) == eos => {
                    let n = g.tokens.len().saturating_sub(1);
                    tok.decode(&g.tokens[..n], true).ok()
                }
                (_, t) => t,
            }
        })
        .unwrap_or_default();
    Ok(text.trim().to_string())
}
