//! [`Codebook`]: embeddings `[N, D]` with optional strings and token ids, and
//! its on-disk format.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use half::f16;
use safetensors::tensor::{Dtype, TensorView};
use serde::{Deserialize, Serialize};

use crate::error::{CodebookError, Result};

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
    /// Where the codebook came from (LLM, tokenizer hash, CLIP model,
    /// templates, thresholds, source files).
    pub provenance: serde_json::Value,
}

#[derive(Serialize, Deserialize)]
struct Sidecar {
    rows: usize,
    dim: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    strings: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    token_ids: Option<Vec<Vec<u32>>>,
    #[serde(default)]
    provenance: serde_json::Value,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CodebookError + '_ {
    move |source| CodebookError::Io {
        path: path.to_path_buf(),
        source,
    }
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
            provenance: serde_json::Value::Null,
        })
    }

    /// Attach one string per row.
    ///
    /// # Errors
    /// A count other than `rows`.
    pub fn with_strings(mut self, strings: Vec<String>) -> Result<Self> {
        if strings.len() != self.rows {
            return Err(CodebookError::Shape {
                what: "strings".into(),
                found: format!("{} strings", strings.len()),
                expected: format!("{} (one per row)", self.rows),
            });
        }
        self.strings = Some(strings);
        Ok(self)
    }

    /// Attach the LLM token ids each row is made of.
    ///
    /// # Errors
    /// A count other than `rows`.
    pub fn with_token_ids(mut self, token_ids: Vec<Vec<u32>>) -> Result<Self> {
        if token_ids.len() != self.rows {
            return Err(CodebookError::Shape {
                what: "token_ids".into(),
                found: format!("{} entries", token_ids.len()),
                expected: format!("{} (one per row)", self.rows),
            });
        }
        self.token_ids = Some(token_ids);
        Ok(self)
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
        let lossless = || {
            self.embeddings
                .iter()
                .all(|&v| f16::from_f32(v).to_f32().to_bits() == v.to_bits())
        };
        let half = match precision {
            Precision::F16 => true,
            Precision::F32 => false,
            Precision::Auto => lossless(),
        };
        let (dtype, bytes): (Dtype, Vec<u8>) = if half {
            (
                Dtype::F16,
                self.embeddings
                    .iter()
                    .flat_map(|&v| f16::from_f32(v).to_le_bytes())
                    .collect(),
            )
        } else {
            (
                Dtype::F32,
                self.embeddings
                    .iter()
                    .flat_map(|v| v.to_le_bytes())
                    .collect(),
            )
        };
        let view = TensorView::new(dtype, vec![self.rows, self.dim], &bytes)
            .map_err(|e| format_err(path, e))?;
        let mut meta = HashMap::new();
        meta.insert("format".to_string(), "v2l-codebook".to_string());
        safetensors::serialize_to_file(vec![("embeddings", view)], Some(meta), path)
            .map_err(|e| format_err(path, e))?;
        let side = Sidecar {
            rows: self.rows,
            dim: self.dim,
            strings: self.strings.clone(),
            token_ids: self.token_ids.clone(),
            provenance: self.provenance.clone(),
        };
        let json = sidecar_path(path);
        let text = serde_json::to_string(&side).map_err(|e| format_err(&json, e))?;
        std::fs::write(&json, text).map_err(io(&json))
    }

    /// Read `path` (`NAME.safetensors`, embeddings f16/bf16/f32) and its
    /// sidecar `NAME.json` when present.
    ///
    /// # Errors
    /// Unreadable or malformed files; a sidecar that disagrees with the
    /// embeddings' shape.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        use v2l_assets::readers::tensors::{SafetensorsFile, TensorSource};
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
            let side: Sidecar = serde_json::from_str(&text).map_err(|e| format_err(&json, e))?;
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
            cb.provenance = side.provenance;
        }
        Ok(cb)
    }
}
