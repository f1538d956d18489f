//! The CLI's one error type and its exit codes.
//!
//! Every command returns [`CliError`]; `main` prints its message on stderr
//! and exits with its [`ExitKind`]'s code. The codes are documented in
//! `docs/reliability.md`:
//!
//! | code | kind |
//! |---|---|
//! | 1 | anything else (a backend failure, an internal error) |
//! | 2 | usage: arguments that do not make sense together (clap's own errors also exit 2) |
//! | 3 | a missing input file, folder or registry asset |
//! | 4 | malformed input: wrong format, truncated, wrong shape, out-of-range ids, non-finite weights, over-long prompt, empty folder |
//! | 5 | refused: a resume with other settings than the log or job it continues |
//! | 6 | cannot write an output (unwritable folder, full disk) |
//!
//! Library errors are classified by [`Classify`], variant by variant; I/O
//! errors by their [`std::io::ErrorKind`].

use std::fmt;
use std::io::ErrorKind;
use std::path::Path;

/// What went wrong, as an exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitKind {
    /// 1: anything else.
    Other,
    /// 2: a usage error.
    Usage,
    /// 3: a missing input or asset.
    Missing,
    /// 4: malformed input.
    Malformed,
    /// 5: refused (a resume with other settings).
    Refused,
    /// 6: an output cannot be written.
    Write,
}

impl ExitKind {
    /// The process exit code.
    pub fn code(self) -> u8 {
        match self {
            ExitKind::Other => 1,
            ExitKind::Usage => 2,
            ExitKind::Missing => 3,
            ExitKind::Malformed => 4,
            ExitKind::Refused => 5,
            ExitKind::Write => 6,
        }
    }

    /// The kind of an I/O error met while reading an input.
    pub fn of_read(e: &std::io::Error) -> Self {
        match e.kind() {
            ErrorKind::NotFound => ExitKind::Missing,
            ErrorKind::InvalidData
            | ErrorKind::UnexpectedEof
            | ErrorKind::InvalidInput
            | ErrorKind::IsADirectory
            | ErrorKind::NotADirectory => ExitKind::Malformed,
            k => Self::of_write_kind(k).unwrap_or(ExitKind::Other),
        }
    }

    /// The kind of an I/O error met while writing an output.
    pub fn of_write(e: &std::io::Error) -> Self {
        Self::of_write_kind(e.kind()).unwrap_or(ExitKind::Write)
    }

    /// Kinds that only a write (or a folder that cannot be written) gives.
    fn of_write_kind(k: ErrorKind) -> Option<Self> {
        matches!(
            k,
            ErrorKind::StorageFull
                | ErrorKind::ReadOnlyFilesystem
                | ErrorKind::QuotaExceeded
                | ErrorKind::FileTooLarge
                | ErrorKind::WriteZero
                | ErrorKind::PermissionDenied
                | ErrorKind::BrokenPipe
        )
        .then_some(ExitKind::Write)
    }
}

/// An error of the `v2l` command: a message and its exit kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError {
    /// The exit kind.
    pub kind: ExitKind,
    /// The message (printed after `error: `).
    pub message: String,
}

impl CliError {
    /// An error of `kind`.
    pub fn new(kind: ExitKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// A usage error (exit 2).
    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(ExitKind::Usage, message)
    }

    /// A missing input (exit 3).
    pub fn missing(message: impl Into<String>) -> Self {
        Self::new(ExitKind::Missing, message)
    }

    /// Malformed input (exit 4).
    pub fn malformed(message: impl Into<String>) -> Self {
        Self::new(ExitKind::Malformed, message)
    }

    /// A refusal (exit 5).
    pub fn refused(message: impl Into<String>) -> Self {
        Self::new(ExitKind::Refused, message)
    }

    /// Reading `path` failed with `e`.
    pub fn read(path: &Path, e: &std::io::Error) -> Self {
        Self::new(ExitKind::of_read(e), format!("{}: {e}", path.display()))
    }

    /// Writing `path` failed with `e` (exit 6 unless the kind says more).
    pub fn write(path: &Path, e: &std::io::Error) -> Self {
        Self::new(
            ExitKind::of_write(e),
            format!("cannot write {}: {e}", path.display()),
        )
    }

    /// The message with `context: ` in front.
    pub fn context(mut self, context: impl fmt::Display) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CliError {}

/// Messages built by the CLI itself: "anything else" unless marked.
impl From<String> for CliError {
    fn from(message: String) -> Self {
        Self::new(ExitKind::Other, message)
    }
}

impl From<&str> for CliError {
    fn from(message: &str) -> Self {
        Self::new(ExitKind::Other, message)
    }
}

/// Turn any classified library error into a [`CliError`] (for `map_err`).
pub fn err<E: Classify + fmt::Display>(e: E) -> CliError {
    CliError::new(e.kind(), e.to_string())
}

/// A library error's exit kind.
pub trait Classify {
    /// Which exit kind the error is.
    fn kind(&self) -> ExitKind;
}

impl Classify for std::io::Error {
    fn kind(&self) -> ExitKind {
        ExitKind::of_read(self)
    }
}

macro_rules! classify_all {
    ($($t:ty => $k:expr),* $(,)?) => {$(
        impl Classify for $t {
            fn kind(&self) -> ExitKind {
                $k
            }
        }
    )*};
}

use v2l::assets::AssetError;
use v2l::clip::ClipError;
use v2l::codebook::CodebookError;
use v2l::io::gguf::GgufError;
use v2l::io::{FileError, ReadError};
use v2l::llm::tokenizer::TokenizerError as LlmTokenizerError;
use v2l::llm::LlmError;
use v2l::metrics::MetricsError;
use v2l::model::ModelError;
use v2l::prompt::PromptError;
use v2l::quant::QuantError;
use v2l::train::TrainError;
use v2l::vl::VlError;

// Files that parse but do not hold what they should: malformed input.
classify_all!(
    v2l::nn::LoadError => ExitKind::Malformed,
    v2l::clip::preprocess::PreprocessError => ExitKind::Malformed,
    v2l::model::preprocess::PreprocessError => ExitKind::Malformed,
    v2l::metrics::lpips::LpipsError => ExitKind::Malformed,
    v2l::metrics::inception::InceptionError => ExitKind::Malformed,
    serde_json::Error => ExitKind::Malformed,
    v2l::backend::DeviceError => ExitKind::Usage,
    v2l::backend::PrecisionError => ExitKind::Usage,
);

impl Classify for v2l::model::image::ImageError {
    fn kind(&self) -> ExitKind {
        use v2l::model::image::ImageError as E;
        match self {
            E::IoError(e) => ExitKind::of_read(e),
            E::Decoding(_) | E::Unsupported(_) | E::Limits(_) => ExitKind::Malformed,
            E::Encoding(_) | E::Parameter(_) => ExitKind::Other,
        }
    }
}

/// An input that could not be read: missing when it does not exist,
/// malformed when it does.
fn missing_or_malformed(path: &Path) -> ExitKind {
    if path.exists() {
        ExitKind::Malformed
    } else {
        ExitKind::Missing
    }
}

impl Classify for ReadError {
    fn kind(&self) -> ExitKind {
        match self {
            ReadError::Io { source, .. } => ExitKind::of_read(source),
            _ => ExitKind::Malformed,
        }
    }
}

impl Classify for FileError {
    fn kind(&self) -> ExitKind {
        match self {
            FileError::Io { source, .. } => ExitKind::of_read(source),
            FileError::Json { .. } => ExitKind::Malformed,
        }
    }
}

impl Classify for GgufError {
    fn kind(&self) -> ExitKind {
        match self {
            GgufError::Io { source, .. } => ExitKind::of_read(source),
            _ => ExitKind::Malformed,
        }
    }
}

impl Classify for LlmTokenizerError {
    fn kind(&self) -> ExitKind {
        match self {
            LlmTokenizerError::Io { source, .. } => ExitKind::of_read(source),
            LlmTokenizerError::Tokenizers { .. } => ExitKind::Other,
            _ => ExitKind::Malformed,
        }
    }
}

impl Classify for v2l::clip::tokenizer::TokenizerError {
    fn kind(&self) -> ExitKind {
        match self {
            v2l::clip::tokenizer::TokenizerError::Io { source, .. } => ExitKind::of_read(source),
            _ => ExitKind::Malformed,
        }
    }
}

impl Classify for AssetError {
    fn kind(&self) -> ExitKind {
        match self {
            AssetError::UnknownAsset { .. }
            | AssetError::UnknownFile { .. }
            | AssetError::DatasetSpec { .. } => ExitKind::Usage,
            AssetError::NotCached { .. }
            | AssetError::NoCacheDir
            | AssetError::RequiredAssetMissing { .. }
            | AssetError::NotFetched { .. }
            | AssetError::MissingInPackage { .. }
            | AssetError::ClientMissing { .. } => ExitKind::Missing,
            AssetError::HashMismatch { .. }
            | AssetError::Archive { .. }
            | AssetError::Dataset { .. }
            | AssetError::UnexpectedDownload { .. } => ExitKind::Malformed,
            AssetError::Io { action, source, .. } => {
                if action.starts_with("read") || action.starts_with("open") {
                    ExitKind::of_read(source)
                } else {
                    ExitKind::of_write(source)
                }
            }
            AssetError::Read(e) => e.kind(),
            _ => ExitKind::Other,
        }
    }
}

impl Classify for ClipError {
    fn kind(&self) -> ExitKind {
        match self {
            ClipError::MissingTower(_) => ExitKind::Usage,
            ClipError::Read(e) => e.kind(),
            ClipError::Weights(e) => e.kind(),
            ClipError::File(e) => e.kind(),
            ClipError::Tokenizer(e) => e.kind(),
            ClipError::Preprocess(e) => e.kind(),
            _ => ExitKind::Malformed,
        }
    }
}

impl Classify for VlError {
    fn kind(&self) -> ExitKind {
        match self {
            VlError::Load(e) => e.kind(),
            VlError::Read(e) => e.kind(),
            VlError::File(e) => e.kind(),
            VlError::Clip(e) => e.kind(),
            VlError::Asset(_) => ExitKind::Missing,
            _ => ExitKind::Malformed,
        }
    }
}

impl Classify for QuantError {
    fn kind(&self) -> ExitKind {
        match self {
            QuantError::Backend(_) => ExitKind::Other,
            _ => ExitKind::Malformed,
        }
    }
}

impl Classify for LlmError {
    fn kind(&self) -> ExitKind {
        match self {
            LlmError::Read(e) => e.kind(),
            LlmError::Weights(e) => e.kind(),
            LlmError::Gguf(e) => e.kind(),
            LlmError::Tokenizer(e) => e.kind(),
            LlmError::File(e) => e.kind(),
            _ => ExitKind::Malformed,
        }
    }
}

impl Classify for MetricsError {
    fn kind(&self) -> ExitKind {
        match self {
            MetricsError::Io { path, .. } => missing_or_malformed(Path::new(path)),
            MetricsError::Undefined(_) => ExitKind::Other,
            _ => ExitKind::Malformed,
        }
    }
}

impl Classify for ModelError {
    fn kind(&self) -> ExitKind {
        match self {
            ModelError::Weights(e) => e.kind(),
            ModelError::Read(e) => e.kind(),
            ModelError::Clip(e) => e.kind(),
            ModelError::Vl(e) => e.kind(),
            ModelError::Quant(e) => e.kind(),
            ModelError::Preprocess(e) => e.kind(),
            ModelError::Io { source, .. } => ExitKind::of_read(source),
            ModelError::Write { .. } => ExitKind::Write,
            ModelError::Image { path, .. } => missing_or_malformed(path),
            ModelError::Missing(_) => ExitKind::Usage,
            ModelError::Backend(_) => ExitKind::Other,
            _ => ExitKind::Malformed,
        }
    }
}

impl Classify for CodebookError {
    fn kind(&self) -> ExitKind {
        match self {
            CodebookError::Io { source, .. } => ExitKind::of_read(source),
            CodebookError::JobMismatch { .. } => ExitKind::Refused,
            CodebookError::Read(e) => e.kind(),
            CodebookError::Asset(e) => e.kind(),
            CodebookError::Llm(e) => e.kind(),
            CodebookError::LlmTokenizer(e) => e.kind(),
            CodebookError::Clip(e) => e.kind(),
            CodebookError::ClipTokenizer(e) => e.kind(),
            CodebookError::Quant(e) => e.kind(),
            _ => ExitKind::Malformed,
        }
    }
}

impl Classify for PromptError {
    fn kind(&self) -> ExitKind {
        match self {
            PromptError::Io { source, .. } => ExitKind::of_read(source),
            PromptError::Write { source, .. } => ExitKind::of_write(source),
            PromptError::Llm(e) => e.kind(),
            PromptError::LlmTokenizer(e) => e.kind(),
            PromptError::Model(e) => e.kind(),
            PromptError::Clip(e) => e.kind(),
            PromptError::Metric(e) => e.kind(),
            PromptError::Asset(e) => e.kind(),
            PromptError::SettingsChanged { .. } => ExitKind::Refused,
            _ => ExitKind::Malformed,
        }
    }
}

impl Classify for TrainError {
    fn kind(&self) -> ExitKind {
        match self {
            TrainError::Refused { .. } => ExitKind::Refused,
            TrainError::Io { source, .. } => ExitKind::of_read(source),
            TrainError::Internal(_) | TrainError::NonFinite { .. } => ExitKind::Other,
            _ => ExitKind::Malformed,
        }
    }
}

impl Classify for v2l::default_model::DefaultModelError {
    fn kind(&self) -> ExitKind {
        use v2l::default_model::DefaultModelError as E;
        match self {
            E::Asset(_) => ExitKind::Missing,
            E::Io { source, .. } => ExitKind::of_write(source),
            E::Codebook(e) => e.kind(),
            E::Vl(e) => e.kind(),
            E::Llm(_) | E::Model(_) => ExitKind::Malformed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_are_the_documented_ones() {
        let codes: Vec<u8> = [
            ExitKind::Other,
            ExitKind::Usage,
            ExitKind::Missing,
            ExitKind::Malformed,
            ExitKind::Refused,
            ExitKind::Write,
        ]
        .iter()
        .map(|k| k.code())
        .collect();
        assert_eq!(codes, [1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn io_errors_are_classified_by_their_kind() {
        let e = |k| std::io::Error::new(k, "x");
        assert_eq!(
            ExitKind::of_read(&e(ErrorKind::NotFound)),
            ExitKind::Missing
        );
        assert_eq!(
            ExitKind::of_read(&e(ErrorKind::UnexpectedEof)),
            ExitKind::Malformed
        );
        assert_eq!(
            ExitKind::of_read(&e(ErrorKind::StorageFull)),
            ExitKind::Write
        );
        assert_eq!(ExitKind::of_write(&e(ErrorKind::NotFound)), ExitKind::Write);
        assert_eq!(ExitKind::of_write(&e(ErrorKind::Other)), ExitKind::Write);
    }
}
