//! The error type of the LLM tokenizers.

use std::path::PathBuf;

/// Everything that can go wrong building or using an [`LlmTokenizer`](super::LlmTokenizer).
/// Messages name the file, metadata key, token or id concerned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenizerError {
    /// A file could not be read or written.
    #[error("{context} {}: {source}", path.display())]
    Io {
        /// What was being done (`"reading"`, `"writing"`).
        context: &'static str,
        /// The file concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A `tokenizer.json` file that HF `tokenizers` cannot load.
    #[error("{}: not a valid tokenizer.json: {message}", path.display())]
    InvalidTokenizerJson {
        /// The file.
        path: PathBuf,
        /// What `tokenizers` reported.
        message: String,
    },
    /// A GGUF file names a tokenizer model (`tokenizer.ggml.model`) other than `gpt2`
    /// (byte-level BPE) and `llama` (SentencePiece BPE).
    #[error(
        "unsupported GGUF tokenizer model \"{model}\" (tokenizer.ggml.model); \
         supported: \"gpt2\" (byte-level BPE), \"llama\" (SentencePiece BPE)"
    )]
    UnsupportedModel {
        /// The model name found in the file.
        model: String,
    },
    /// A byte-level GGUF tokenizer names a pre-tokenizer (`tokenizer.ggml.pre`) whose
    /// splitting rule is not known here.
    #[error(
        "unsupported GGUF pre-tokenizer \"{pre}\" (tokenizer.ggml.pre); supported: {supported}"
    )]
    UnsupportedPreTokenizer {
        /// The pre-tokenizer name found in the file.
        pre: String,
        /// The names that are supported, comma-separated.
        supported: String,
    },
    /// The vocabulary, merges, scores or special-token ids are missing, of the wrong type or
    /// inconsistent.
    #[error("malformed vocabulary in {origin}: {reason}")]
    MalformedVocab {
        /// Where the vocabulary came from (a GGUF key, a file).
        origin: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A token id that is not in the vocabulary (`decode`, `decode_single`).
    #[error("token id {id} is out of range: the vocabulary has {vocab_size} ids")]
    IdOutOfRange {
        /// The offending id.
        id: u32,
        /// The number of ids of the vocabulary (`0..vocab_size`).
        vocab_size: usize,
    },
    /// BOS or EOS was asked for but the tokenizer has none.
    #[error("this tokenizer has no {which} token")]
    NoSpecialToken {
        /// `"BOS"` or `"EOS"`.
        which: &'static str,
    },
    /// HF `tokenizers` reported an error while building, encoding, decoding or saving.
    #[error("tokenizers failed while {context}: {message}")]
    Tokenizers {
        /// What was being done.
        context: &'static str,
        /// The error message.
        message: String,
    },
}

impl TokenizerError {
    pub(crate) fn malformed(origin: impl Into<String>, reason: impl Into<String>) -> Self {
        TokenizerError::MalformedVocab {
            origin: origin.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn tokenizers(context: &'static str, err: impl std::fmt::Display) -> Self {
        TokenizerError::Tokenizers {
            context,
            message: err.to_string(),
        }
    }
}
