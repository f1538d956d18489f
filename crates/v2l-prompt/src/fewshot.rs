//! N-way K-shot classification by a frozen LLM (spec §5.2).
//!
//! The LLM reads the support images' global words with their class names,
//! then the query's words, and writes 16 tokens greedily under a
//! constraint built from the class names; the prediction is correct when the
//! decoded text starts with the query's class name (exact, case-sensitive
//! prefix, as the reference scores it).

use burn::tensor::backend::Backend;
use serde::Serialize;
use v2l_llm::tokenizer::LlmTokenizer;
use v2l_llm::{Constraint, GenerateOptions, Llama, Sampling, Trie, UnionMask};
use v2l_metrics::accuracy::{is_correct, MatchRule};

use crate::error::Result;
use crate::prompt::{
    check_context, class_candidates, fewshot_prompt, sorted_classes, InstructionStyle, LabelledText,
};

/// The reference's number of generated tokens.
pub const MAX_TOKENS: usize = 16;

/// How generation is restricted to the class names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Decoding {
    /// The reference's position-wise union mask (tokens of different names
    /// can mix; after the longest name the empty mask yields id 0), always
    /// 16 steps.
    #[default]
    UnionMask,
    /// A prefix trie over the names: only real names can be written, and
    /// decoding stops when one is complete.
    Trie,
}

/// Options of [`classify`].
#[derive(Debug, Clone, PartialEq)]
pub struct FewShotOptions {
    /// The instruction line.
    pub style: InstructionStyle,
    /// The decoding constraint.
    pub decoding: Decoding,
    /// Tokens to generate (16 in the reference).
    pub max_tokens: usize,
    /// How many extra times the support examples are repeated (0 in the
    /// reference's runs).
    pub repeat: usize,
    /// Context window to check the prompt against (the reference uses a
    /// 1024-token LLaMA context); `None` = the model's own.
    pub context: Option<usize>,
}

impl Default for FewShotOptions {
    fn default() -> Self {
        Self {
            style: InstructionStyle::Faithful,
            decoding: Decoding::UnionMask,
            max_tokens: MAX_TOKENS,
            repeat: 0,
            context: None,
        }
    }
}

/// One episode as text: the support examples and the query's visual text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextEpisode {
    /// Support images' visual text and class names, in file order.
    pub support: Vec<LabelledText>,
    /// The query's visual text.
    pub query_visual: String,
    /// The query's class name (never put in the prompt).
    pub target: String,
}

impl TextEpisode {
    /// The episode's class names, sorted (support and query, as the
    /// reference's `np.unique`).
    pub fn classes(&self) -> Vec<String> {
        let names: Vec<&str> = self
            .support
            .iter()
            .map(|s| s.label.as_str())
            .chain(std::iter::once(self.target.as_str()))
            .collect();
        sorted_classes(&names)
    }
}

/// The outcome of one episode.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Prediction {
    /// Generated ids.
    pub tokens: Vec<u32>,
    /// Their text (SentencePiece control tokens dropped, as the reference's
    /// decoder does).
    pub text: String,
    /// The query's class name.
    pub target: String,
    /// Whether `text` starts with `target`.
    pub correct: bool,
    /// Prompt length in tokens.
    pub prompt_tokens: usize,
}

/// The prompt of an episode (see [`crate::prompt::fewshot_prompt`]).
///
/// # Errors
/// Tokenizer failures.
pub fn episode_prompt(
    tok: &LlmTokenizer,
    episode: &TextEpisode,
    options: &FewShotOptions,
) -> Result<Vec<u32>> {
    fewshot_prompt(
        tok,
        &episode.classes(),
        options.style,
        &episode.support,
        &episode.query_visual,
        options.repeat,
    )
}

/// The generation options for an episode's classes.
///
/// # Errors
/// Tokenizer failures.
pub fn generate_options(
    tok: &LlmTokenizer,
    classes: &[String],
    options: &FewShotOptions,
) -> Result<GenerateOptions> {
    let candidates = class_candidates(tok, classes)?;
    let constraint = match options.decoding {
        Decoding::UnionMask => {
            Constraint::UnionMask(UnionMask::from_candidates(&candidates, options.max_tokens))
        }
        Decoding::Trie => Constraint::Trie(Trie::from_candidates(&candidates)),
    };
    Ok(GenerateOptions {
        max_tokens: options.max_tokens,
        sampling: Sampling::Greedy,
        // The reference disables EOS stopping: all 16 steps run.
        stop_tokens: Vec::new(),
        stop_strings: Vec::new(),
        constraint,
    })
}

/// Classify an episode's query with a frozen LLM.
///
/// # Errors
/// [`crate::PromptError::ContextOverflow`] before any generation when the
/// prompt and the generated tokens do not fit; tokenizer and model
/// failures.
pub fn classify<B: Backend>(
    llm: &Llama<B>,
    tok: &LlmTokenizer,
    episode: &TextEpisode,
    options: &FewShotOptions,
) -> Result<Prediction> {
    let prompt = episode_prompt(tok, episode, options)?;
    let context = options
        .context
        .unwrap_or(llm.config.max_position_embeddings)
        .min(llm.config.max_position_embeddings);
    check_context(prompt.len(), options.max_tokens, context)?;
    let gen = generate_options(tok, &episode.classes(), options)?;
    let out = llm.generate(std::slice::from_ref(&prompt), &gen, None)?;
    let tokens = out.into_iter().next().map(|g| g.tokens).unwrap_or_default();
    let text = v2l_codebook::vocab::sequence_text(tok, &tokens)
        .map_err(|e| crate::PromptError::InvalidInput(e.to_string()))?;
    let correct = is_correct(&text, &episode.target, MatchRule::ExactPrefix);
    Ok(Prediction {
        tokens,
        text,
        target: episode.target.clone(),
        correct,
        prompt_tokens: prompt.len(),
    })
}
