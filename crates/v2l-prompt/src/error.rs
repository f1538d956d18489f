//! The crate's error type.

use std::path::PathBuf;

/// What can go wrong building prompts or running a task.
#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    /// A bad argument.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// A malformed line of an episode file.
    #[error("{path}, line {line}: {message}")]
    Episode {
        /// The file (or `<text>`).
        path: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A class id with no name.
    #[error("unknown class id {id:?} (not in the class-name mapping of {known} classes)")]
    UnknownClass {
        /// The id (e.g. an ImageNet wnid).
        id: String,
        /// How many classes the mapping has.
        known: usize,
    },
    /// The prompt does not fit the LLM's context window.
    #[error(
        "the prompt needs {needed} positions ({prompt} prompt + {generate} generated), more than \
         the context window of {context}"
    )]
    ContextOverflow {
        /// Positions needed.
        needed: usize,
        /// Prompt tokens.
        prompt: usize,
        /// Tokens to generate.
        generate: usize,
        /// The context window.
        context: usize,
    },
    /// An id outside the LLM's vocabulary.
    #[error("{what}: id {id} is outside the LLM vocabulary of {vocab_size}")]
    IdOutOfRange {
        /// Where it was.
        what: String,
        /// The id.
        id: u32,
        /// Vocabulary size.
        vocab_size: usize,
    },
    /// An I/O error on a named file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// An output (a log, a panel) could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file or folder.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A JSON file that cannot be parsed.
    #[error("{path}: {message}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A log was written with other settings than the run that reopens it
    /// (or before logs recorded their settings).
    #[error(
        "{}: the log was written with other settings than this run's: {}",
        path.display(),
        differences.join("; ")
    )]
    SettingsChanged {
        /// The log.
        path: PathBuf,
        /// One line per differing setting (`name: <in the log> → <now>`).
        differences: Vec<String>,
    },
    /// The LLM failed.
    #[error(transparent)]
    Llm(#[from] v2l_llm::LlmError),
    /// The LLM tokenizer failed.
    #[error(transparent)]
    LlmTokenizer(#[from] v2l_llm::tokenizer::TokenizerError),
    /// The V2L model failed.
    #[error(transparent)]
    Model(#[from] v2l_model::ModelError),
    /// CLIP failed.
    #[error(transparent)]
    Clip(#[from] v2l_clip::ClipError),
    /// A metric failed.
    #[error(transparent)]
    Metric(#[from] v2l_metrics::MetricsError),
    /// A dataset could not be loaded.
    #[error(transparent)]
    Asset(#[from] v2l_assets::AssetError),
}

/// Shorthand.
pub type Result<T> = std::result::Result<T, PromptError>;

pub(crate) fn write_io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> PromptError + '_ {
    move |source| PromptError::Write {
        path: path.to_path_buf(),
        source,
    }
}

pub(crate) fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> PromptError + '_ {
    move |source| PromptError::Io {
        path: path.to_path_buf(),
        source,
    }
}
