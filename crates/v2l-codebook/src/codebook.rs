//! [`Codebook`]: embeddings `[N, D]` with optional strings and token ids, and
//! its on-disk format.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use half::f16;
use safetensors::tensor::{Dtype, TensorView};
use serde::{Deserialize, Serialize};

use crate::error::{CodebookError, Result};
use crate::job::io;

/// How embeddings are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    /// f16 when every value survives the round trip, else f32.
    #[default]
    Auto,
    /// Always f16 (rounded; what the reference stores).
    F16,
    /// Always f32.
    F32,
}

/// A codebook: `rows × dim` embeddings (row-major f32 in memory), with the
/// entries' strings and LLM token ids when known.
#[derive(Debug, Clone, PartialEq)]
pub struct Codebook {
    embeddings: Vec<f32>,
    rows: usize,
    dim: usize,
    strings: Option<Vec<String>>,
    token_ids: Option<Vec<Vec<u32>>>,
    votes: Option<Vec<u64>>,
    /// Where the codebook came from (LLM, tokenizer hash, CLIP model,
    /// templates, thresholds, source files).
    pub provenance: serde_json::Value,
}

/// The JSON sidecar's fields.
#[derive(Serialize, Deserialize)]
pub(crate) struct SidecarParts {
    pub(crate) rows: usize,
    pub(crate) dim: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) strings: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) token_ids: Option<Vec<Vec<u32>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) votes: Option<Vec<u64>>,
    #[serde(default)]
    pub(crate) provenance: serde_json::Value,
}

impl SidecarParts {
    fn check(&self) -> Result<()> {
        let check = |what: &str, n: Option<usize>| match n {
            Some(n) if n != self.rows => Err(CodebookError::Shape {
                what: what.into(),
                found: format!("{n} entries"),
                expected: format!("{} (one per row)", self.rows),
            }),
            _ => Ok(()),
        };
        check("strings", self.strings.as_ref().map(Vec::len))?;
        check("token_ids", self.token_ids.as_ref().map(Vec::len))?;
        check("votes", self.votes.as_ref().map(Vec::len))
    }

    fn write(&self, path: &Path) -> Result<()> {
        let json = sidecar_path(path);
        let text = serde_json::to_string(self).map_err(|e| format_err(&json, e))?;
        v2l_io::atomic::write(&json, text.as_bytes()).map_err(io(&json))
    }
}

fn f16_lossless(values: &[f32]) -> bool {
    values
        .iter()
        .all(|&v| f16::from_f32(v).to_f32().to_bits() == v.to_bits())
}

fn encode_values(values: &[f32], half: bool) -> Vec<u8> {
    if half {
        values
            .iter()
            .flat_map(|&v| f16::from_f32(v).to_le_bytes())
            .collect()
    } else {
        values.iter().flat_map(|v| v.to_le_bytes()).collect()
    }
}

/// Write a codebook whose rows arrive in `n_chunks` pieces (`chunk(c)`),
/// holding one piece in memory at a time: the safetensors header is written
/// first (the shape is known), then each piece. [`Precision::Auto`] reads
/// the pieces twice (once to see whether f16 is lossless).
pub(crate) fn write_streamed(
    path: &Path,
    precision: Precision,
    parts: &SidecarParts,
    n_chunks: usize,
    chunk: &mut dyn FnMut(usize) -> Result<Vec<f32>>,
) -> Result<()> {
    use std::io::Write;
    parts.check()?;
    if parts.rows == 0 || parts.dim == 0 {
        return Err(CodebookError::Shape {
            what: "embeddings".into(),
            found: format!("[{}, {}]", parts.rows, parts.dim),
            expected: "both sides ≥ 1".into(),
        });
    }
    let half = match precision {
        Precision::F16 => true,
        Precision::F32 => false,
        Precision::Auto => {
            let mut all = true;
            for c in 0..n_chunks {
                if !f16_lossless(&chunk(c)?) {
                    all = false;
                    break;
                }
            }
            all
        }
    };
    let width = if half { 2 } else { 4 };
    let nbytes = parts.rows * parts.dim * width;
    let header = serde_json::json!({
        "__metadata__": { "format": "v2l-codebook" },
        "embeddings": {
            "dtype": if half { "F16" } else { "F32" },
            "shape": [parts.rows, parts.dim],
            "data_offsets": [0, nbytes],
        }
    })
    .to_string();
    let mut header = header.into_bytes();
    while !header.len().is_multiple_of(8) {
        header.push(b' ');
    }
    // Written through a temporary file and a rename (v2l_io::atomic); a
    // failure inside (a chunk, a non-finite value) is carried out here.
    let mut failure: Option<CodebookError> = None;
    let res = v2l_io::atomic::write_with(path, |file| {
        let mut w = std::io::BufWriter::new(file);
        w.write_all(&(header.len() as u64).to_le_bytes())?;
        w.write_all(&header)?;
        let mut written = 0usize;
        for c in 0..n_chunks {
            let values = match chunk(c) {
                Ok(v) => v,
                Err(e) => {
                    failure = Some(e);
                    return Err(std::io::Error::other("chunk failed"));
                }
            };
            if let Some(p) = values.iter().position(|v| !v.is_finite()) {
                failure = Some(CodebookError::NonFinite {
                    row: (written + p) / parts.dim,
                    col: p % parts.dim,
                    value: values[p],
                });
                return Err(std::io::Error::other("non-finite value"));
            }
            written += values.len();
            w.write_all(&encode_values(&values, half))?;
        }
        if written != parts.rows * parts.dim {
            failure = Some(CodebookError::Shape {
                what: "embedding chunks".into(),
                found: format!("{written} values"),
                expected: format!("[{}, {}]", parts.rows, parts.dim),
            });
            return Err(std::io::Error::other("short"));
        }
        w.flush()
    });
    if let Some(f) = failure {
        return Err(f);
    }
    res.map_err(io(path))?;
    parts.write(path)
}

fn format_err(path: &Path, m: impl std::fmt::Display) -> CodebookError {
    CodebookError::Format {
        path: path.to_path_buf(),
        message: m.to_string(),
    }
}

/// The JSON sidecar beside `NAME.safetensors`: `NAME.json`.
pub fn sidecar_path(path: &Path) -> PathBuf {
    path.with_extension("json")
}

impl Codebook {
    /// Embeddings `[rows, dim]` (row-major).
    ///
    /// # Errors
    /// Values that do not fill the shape; an empty shape; NaN or infinity.
    pub fn new(embeddings: Vec<f32>, rows: usize, dim: usize) -> Result<Self> {
        if rows == 0 || dim == 0 || embeddings.len() != rows * dim {
            return Err(CodebookError::Shape {
                what: "embeddings".into(),
                found: format!("{} values", embeddings.len()),
                expected: format!("[{rows}, {dim}] with both sides ≥ 1"),
            });
        }
        if let Some(p) = embeddings.iter().position(|v| !v.is_finite()) {
            return Err(CodebookError::NonFinite {
                row: p / dim,
                col: p % dim,
                value: embeddings[p],
            });
        }
        Ok(Self {
            embeddings,
            rows,
            dim,
            strings: None,
            token_ids: None,
            votes: None,
            provenance: serde_json::Value::Null,
        })
    }

    /// Attach one string per row.
    ///
    /// # Errors
    /// A count other than `rows`.
    pub fn with_strings(mut self, strings: Vec<String>) -> Result<Self> {
        self.check_per_row("strings", strings.len(), "strings")?;
        self.strings = Some(strings);
        Ok(self)
    }

    /// Attach the LLM token ids each row is made of.
    ///
    /// # Errors
    /// A count other than `rows`.
    pub fn with_token_ids(mut self, token_ids: Vec<Vec<u32>>) -> Result<Self> {
        self.check_per_row("token_ids", token_ids.len(), "entries")?;
        self.token_ids = Some(token_ids);
        Ok(self)
    }

    /// Attach a vote count per row (CLIP filtering).
    ///
    /// # Errors
    /// A count other than `rows`.
    pub fn with_votes(mut self, votes: Vec<u64>) -> Result<Self> {
        self.check_per_row("votes", votes.len(), "entries")?;
        self.votes = Some(votes);
        Ok(self)
    }

    /// A per-row attachment `what` must have one of `unit` per row.
    fn check_per_row(&self, what: &str, found: usize, unit: &str) -> Result<()> {
        if found == self.rows {
            return Ok(());
        }
        Err(CodebookError::Shape {
            what: what.into(),
            found: format!("{found} {unit}"),
            expected: format!("{} (one per row)", self.rows),
        })
    }

    /// The vote counts, if known.
    pub fn votes(&self) -> Option<&[u64]> {
        self.votes.as_deref()
    }

    /// Rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Width.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Row-major embeddings.
    pub fn embeddings(&self) -> &[f32] {
        &self.embeddings
    }

    /// Row `i`, if it exists.
    pub fn row(&self, i: usize) -> Option<&[f32]> {
        (i < self.rows).then(|| &self.embeddings[i * self.dim..(i + 1) * self.dim])
    }

    /// The strings, if known.
    pub fn strings(&self) -> Option<&[String]> {
        self.strings.as_deref()
    }

    /// The token ids, if known.
    pub fn token_ids(&self) -> Option<&[Vec<u32>]> {
        self.token_ids.as_deref()
    }

    /// Write `path` (`NAME.safetensors`) and its sidecar `NAME.json`.
    ///
    /// # Errors
    /// I/O failures.
    pub fn save(&self, path: impl AsRef<Path>, precision: Precision) -> Result<()> {
        let path = path.as_ref();
        let half = match precision {
            Precision::F16 => true,
            Precision::F32 => false,
            Precision::Auto => f16_lossless(&self.embeddings),
        };
        let dtype = if half { Dtype::F16 } else { Dtype::F32 };
        let bytes = encode_values(&self.embeddings, half);
        let view = TensorView::new(dtype, vec![self.rows, self.dim], &bytes)
            .map_err(|e| format_err(path, e))?;
        let mut meta = HashMap::new();
        meta.insert("format".to_string(), "v2l-codebook".to_string());
        safetensors::serialize_to_file(vec![("embeddings", view)], Some(meta), path)
            .map_err(|e| format_err(path, e))?;
        SidecarParts {
            rows: self.rows,
            dim: self.dim,
            strings: self.strings.clone(),
            token_ids: self.token_ids.clone(),
            votes: self.votes.clone(),
            provenance: self.provenance.clone(),
        }
        .write(path)
    }

    /// Read `path` (`NAME.safetensors`, embeddings f16/bf16/f32) and its
    /// sidecar `NAME.json` when present.
    ///
    /// # Errors
    /// Unreadable or malformed files; a sidecar that disagrees with the
    /// embeddings' shape.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        use v2l_io::tensors::{SafetensorsFile, TensorSource};
        let path = path.as_ref();
        let file = SafetensorsFile::open(path)?;
        let (shape, values) = file.read_f32("embeddings")?;
        let [rows, dim] = shape[..] else {
            return Err(format_err(
                path,
                format!("`embeddings` has shape {shape:?}, expected [rows, dim]"),
            ));
        };
        let mut cb = Self::new(values, rows, dim)?;
        let json = sidecar_path(path);
        if json.is_file() {
            let text = std::fs::read_to_string(&json).map_err(io(&json))?;
            let side: SidecarParts =
                serde_json::from_str(&text).map_err(|e| format_err(&json, e))?;
            if (side.rows, side.dim) != (rows, dim) {
                return Err(format_err(
                    &json,
                    format!(
                        "says [{}, {}], the embeddings are [{rows}, {dim}]",
                        side.rows, side.dim
                    ),
                ));
            }
            if let Some(s) = side.strings {
                cb = cb.with_strings(s)?;
            }
            if let Some(t) = side.token_ids {
                cb = cb.with_token_ids(t)?;
            }
            if let Some(v) = side.votes {
                cb = cb.with_votes(v)?;
            }
            cb.provenance = side.provenance;
        }
        Ok(cb)
    }
}
