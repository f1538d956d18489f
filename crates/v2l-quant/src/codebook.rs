//! Codebooks: row storage (f32 or f16) and the prepared form the kernels search.

use half::f16;

use crate::error::{QuantError, Result};

/// How the rows of a codebook are stored.
#[derive(Clone, PartialEq)]
pub enum Rows {
    /// Full precision, row-major `[rows, dim]`.
    F32(Vec<f32>),
    /// Half precision, row-major `[rows, dim]` (half the memory; the kernels
    /// widen tiles to f32 on the fly, so results equal those of the widened
    /// f32 codebook).
    F16(Vec<f16>),
}

impl std::fmt::Debug for Rows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rows::F32(v) => write!(f, "F32({} values)", v.len()),
            Rows::F16(v) => write!(f, "F16({} values)", v.len()),
        }
    }
}

impl Rows {
    fn len(&self) -> usize {
        match self {
            Rows::F32(v) => v.len(),
            Rows::F16(v) => v.len(),
        }
    }
}

/// A codebook of `rows` vectors of width `dim`, searched by the kernels of
/// this crate after [`PreparedCodebook::new`].
///
/// Row *i* is codeword *i*; for V2L's local codebook row *i* is LLM token id *i*.
#[derive(Debug, Clone, PartialEq)]
pub struct Codebook {
    rows: Rows,
    n_rows: usize,
    dim: usize,
}

impl Codebook {
    /// A codebook from row-major f32 values `[rows, dim]`.
    ///
    /// # Errors
    /// [`QuantError::EmptyCodebook`] when there is no row or `dim == 0`;
    /// [`QuantError::RaggedBuffer`] when `values.len()` is not a multiple of `dim`.
    pub fn from_f32(values: Vec<f32>, dim: usize) -> Result<Self> {
        Self::new(Rows::F32(values), dim)
    }

    /// A codebook from row-major f16 values `[rows, dim]`, kept in f16.
    ///
    /// # Errors
    /// As [`Codebook::from_f32`].
    pub fn from_f16(values: Vec<f16>, dim: usize) -> Result<Self> {
        Self::new(Rows::F16(values), dim)
    }

    fn new(rows: Rows, dim: usize) -> Result<Self> {
        let len = rows.len();
        if dim == 0 || len == 0 {
            return Err(QuantError::EmptyCodebook {
                rows: len.checked_div(dim).unwrap_or(0),
                dim,
            });
        }
        if !len.is_multiple_of(dim) {
            return Err(QuantError::RaggedBuffer {
                what: "codebook",
                len,
                dim,
            });
        }
        Ok(Self {
            rows,
            n_rows: len / dim,
            dim,
        })
    }

    /// Number of codewords.
    pub fn len(&self) -> usize {
        self.n_rows
    }

    /// Always `false`: construction rejects empty codebooks.
    pub fn is_empty(&self) -> bool {
        self.n_rows == 0
    }

    /// Width of each codeword.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The stored rows.
    pub fn rows(&self) -> &Rows {
        &self.rows
    }

    /// Writes rows `start..start + out.len() / dim` as f32 into `out`.
    pub(crate) fn rows_f32_into(&self, start: usize, out: &mut [f32]) {
        let from = start * self.dim;
        let to = from + out.len();
        match &self.rows {
            Rows::F32(v) => out.copy_from_slice(&v[from..to]),
            Rows::F16(v) => {
                for (o, h) in out.iter_mut().zip(&v[from..to]) {
                    *o = h.to_f32();
                }
            }
        }
    }

    /// Row `i` as f32 values.
    ///
    /// # Panics
    /// Never for `i < self.len()`; callers index only existing rows.
    pub fn row_f32(&self, i: usize) -> Vec<f32> {
        let mut out = vec![0.0; self.dim];
        self.rows_f32_into(i, &mut out);
        out
    }

    /// The f32 rows without copying, when stored as f32.
    pub(crate) fn as_f32(&self) -> Option<&[f32]> {
        match &self.rows {
            Rows::F32(v) => Some(v),
            Rows::F16(_) => None,
        }
    }
}

/// A validated codebook with its squared row norms computed once, ready to
/// be searched many times ([`crate::nearest`], [`crate::top_k`]).
#[derive(Debug, Clone)]
pub struct PreparedCodebook {
    codebook: Codebook,
    sq_norms: Vec<f32>,
}

impl PreparedCodebook {
    /// Validates the rows (all finite) and computes `‖c_j‖²` for each row.
    ///
    /// # Errors
    /// [`QuantError::NonFinite`] naming the first NaN or infinity.
    pub fn new(codebook: Codebook) -> Result<Self> {
        let dim = codebook.dim;
        let mut sq_norms = Vec::with_capacity(codebook.n_rows);
        let mut row = vec![0.0f32; dim];
        for r in 0..codebook.n_rows {
            codebook.rows_f32_into(r, &mut row);
            let mut acc = 0.0f64;
            for (c, &v) in row.iter().enumerate() {
                if !v.is_finite() {
                    return Err(QuantError::NonFinite {
                        what: "codebook",
                        row: r,
                        col: c,
                        value: v,
                    });
                }
                acc += f64::from(v) * f64::from(v);
            }
            sq_norms.push(acc as f32);
        }
        Ok(Self { codebook, sq_norms })
    }

    /// A prepared codebook from row-major f32 values (shorthand for
    /// [`Codebook::from_f32`] then [`PreparedCodebook::new`]).
    ///
    /// # Errors
    /// As those two functions.
    pub fn from_f32(values: Vec<f32>, dim: usize) -> Result<Self> {
        Self::new(Codebook::from_f32(values, dim)?)
    }

    /// The codebook.
    pub fn codebook(&self) -> &Codebook {
        &self.codebook
    }

    /// `‖c_j‖²` per row, computed in f64 and rounded to f32.
    pub fn sq_norms(&self) -> &[f32] {
        &self.sq_norms
    }

    /// Number of codewords.
    pub fn len(&self) -> usize {
        self.codebook.n_rows
    }

    /// Always `false`.
    pub fn is_empty(&self) -> bool {
        self.codebook.n_rows == 0
    }

    /// Width of each codeword.
    pub fn dim(&self) -> usize {
        self.codebook.dim
    }
}
