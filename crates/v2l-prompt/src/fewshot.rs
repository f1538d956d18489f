//! N-way K-shot classification by a frozen LLM (spec §5.2).
//!
//! The LLM reads the support images' global words with their class names,
//! then the query's words, and writes 16 tokens greedily under a
//! constraint built from the class names; the prediction is correct when the
//! decoded text starts with the query's class name (exact, case-sensitive
//! prefix, as the reference scores it).

use burn::tensor::backend::Backend;
use serde::Serialize;
use v2l_llm::tokenizer::{AddSpecial, LlmTokenizer};
use v2l_llm::{Constraint, GenerateOptions, Llama, Sampling, Trie, UnionMask};
use v2l_metrics::accuracy::{is_correct, MatchRule};

use crate::error::Result;
use crate::prompt::{
    check_context, class_candidates, class_candidates_joined, fewshot_prompt,
    fewshot_prompt_joined, sorted_classes, InstructionStyle, LabelledText, PromptTokens,
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
    /// Contextual calibration (Zhao et al., ICML 2021, "Calibrate Before
    /// Use"), not in the reference: every class name is scored by the sum of
    /// its tokens' log-probabilities after the prompt minus the same sum
    /// after the prompt whose query is the content-free text
    /// [`CONTENT_FREE`], and the best-scoring name is the answer (ties: the
    /// first in sorted order). It removes the small LLM's preference for
    /// some names regardless of the query.
    Calibrated,
}

/// The content-free query text of [`Decoding::Calibrated`] (one of the
/// three that Zhao et al. use).
pub const CONTENT_FREE: &str = "N/A";

/// Options of [`classify`].
#[derive(Debug, Clone, PartialEq)]
pub struct FewShotOptions {
    /// The instruction line.
    pub style: InstructionStyle,
    /// The decoding constraint.
    pub decoding: Decoding,
    /// How the prompt becomes token ids.
    pub tokens: PromptTokens,
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
            tokens: PromptTokens::Pieces,
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
    /// [`Decoding::Calibrated`] only: each class name (sorted) with its
    /// calibrated score (natural-log units); empty for the other decoders.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub scores: Vec<(String, f64)>,
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
    let build = match options.tokens {
        PromptTokens::Pieces => fewshot_prompt,
        PromptTokens::Joined => fewshot_prompt_joined,
    };
    build(
        tok,
        &episode.classes(),
        options.style,
        &episode.support,
        &episode.query_visual,
        options.repeat,
    )
}

/// The decoder's candidate token sequences for `classes` (class name + EOS,
/// written as `options.tokens` says).
///
/// # Errors
/// Tokenizer failures.
pub fn candidates(
    tok: &LlmTokenizer,
    classes: &[String],
    options: &FewShotOptions,
) -> Result<Vec<Vec<u32>>> {
    match options.tokens {
        PromptTokens::Pieces => class_candidates(tok, classes),
        PromptTokens::Joined => class_candidates_joined(tok, classes),
    }
}

/// The generated text as scored: a [`PromptTokens::Joined`] answer loses
/// its one leading space.
fn answer_text(text: String, options: &FewShotOptions) -> String {
    match (options.tokens, text.strip_prefix(' ')) {
        (PromptTokens::Joined, Some(rest)) => rest.to_string(),
        _ => text,
    }
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
    let candidates = candidates(tok, classes, options)?;
    let constraint = match options.decoding {
        Decoding::UnionMask => {
            Constraint::UnionMask(UnionMask::from_candidates(&candidates, options.max_tokens))
        }
        Decoding::Trie | Decoding::Calibrated => {
            Constraint::Trie(Trie::from_candidates(&candidates))
        }
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
    if options.decoding == Decoding::Calibrated {
        return classify_calibrated(llm, tok, episode, options, prompt, context);
    }
    check_context(prompt.len(), options.max_tokens, context)?;
    let gen = generate_options(tok, &episode.classes(), options)?;
    let out = llm.generate(std::slice::from_ref(&prompt), &gen, None)?;
    let tokens = out.into_iter().next().map(|g| g.tokens).unwrap_or_default();
    let text = v2l_codebook::vocab::sequence_text(tok, &tokens)
        .map_err(|e| crate::PromptError::InvalidInput(e.to_string()))?;
    let text = answer_text(text, options);
    let correct = is_correct(&text, &episode.target, MatchRule::ExactPrefix);
    Ok(Prediction {
        tokens,
        text,
        target: episode.target.clone(),
        correct,
        prompt_tokens: prompt.len(),
        scores: Vec::new(),
    })
}

fn classify_calibrated<B: Backend>(
    llm: &Llama<B>,
    tok: &LlmTokenizer,
    episode: &TextEpisode,
    options: &FewShotOptions,
    prompt: Vec<u32>,
    context: usize,
) -> Result<Prediction> {
    let classes = episode.classes();
    let names = classes
        .iter()
        .map(|c| {
            let written = match options.tokens {
                PromptTokens::Pieces => c.clone(),
                PromptTokens::Joined => format!(" {c}"),
            };
            Ok(tok.encode(&written, AddSpecial::Neither)?)
        })
        .collect::<Result<Vec<Vec<u32>>>>()?;
    if let Some((c, _)) = classes.iter().zip(&names).find(|(_, n)| n.is_empty()) {
        return Err(crate::PromptError::InvalidInput(format!(
            "class name {c:?} encodes to no tokens"
        )));
    }
    let free = TextEpisode {
        query_visual: CONTENT_FREE.to_string(),
        ..episode.clone()
    };
    let free_prompt = episode_prompt(tok, &free, options)?;
    let longest = names.iter().map(Vec::len).max().unwrap_or(0);
    check_context(prompt.len().max(free_prompt.len()), longest, context)?;
    let with_query = llm.continuation_log_probs(&prompt, &names)?;
    let without = llm.continuation_log_probs(&free_prompt, &names)?;
    let scores: Vec<f64> = with_query
        .iter()
        .zip(&without)
        .map(|(a, b)| a - b)
        .collect();
    let best = scores
        .iter()
        .enumerate()
        .fold(None::<(usize, f64)>, |acc, (i, &s)| match acc {
            Some((_, b)) if b >= s => acc,
            _ => Some((i, s)),
        })
        .map_or(0, |(i, _)| i);
    let text = classes[best].clone();
    let correct = is_correct(&text, &episode.target, MatchRule::ExactPrefix);
    Ok(Prediction {
        tokens: names[best].clone(),
        text,
        target: episode.target.clone(),
        correct,
        prompt_tokens: prompt.len(),
        scores: classes.into_iter().zip(scores).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joined_answers_lose_one_leading_space() {
        let joined = FewShotOptions {
            tokens: PromptTokens::Joined,
            ..FewShotOptions::default()
        };
        assert_eq!(answer_text(" Coat".into(), &joined), "Coat");
        assert_eq!(answer_text("  Coat".into(), &joined), " Coat");
        assert_eq!(answer_text("Coat".into(), &joined), "Coat");
        let pieces = FewShotOptions::default();
        assert_eq!(answer_text(" Coat".into(), &pieces), " Coat");
    }
}
