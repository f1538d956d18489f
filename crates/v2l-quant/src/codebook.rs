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

    /// Row `i` as f32 values (`None` when `i` is out of range).
    pub fn row_f32(&self, i: usize) -> Option<Vec<f32>> {
        if i >= self.n_rows {
            return None;
        }
        let mut out = vec![0.0; self.dim];
        self.rows_f32_into(i, &mut out);
        Some(out)
    }

    /// The f32 rows without copying, when stored as f32.
    pub(crate) fn as_f32(&self) -> Option<&[f32]> {
        match &self.rows {
            Rows::F32(v) => Some(v),
            Rows::F16(_) => None,
        }
    }
}

/// Codewords per panel of the packed layout (two AVX2 registers of f32).
pub(crate) const PANEL: usize = 16;

/// How a prepared codebook holds its rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Row-major f32 `[rows, dim]`, searched by the portable tiled kernel.
    RowMajorF32,
    /// Row-major f16, widened one tile at a time by the portable kernel.
    RowMajorF16,
    /// Packed once into panels of 16 codewords, element-interleaved
    /// (`[panel][dim][16]`, the last panel zero-padded), for the AVX2+FMA
    /// microkernel. Replaces the row-major copy: no second copy is kept.
    PanelsF32,
}

#[derive(Debug, Clone)]
enum Storage {
    Rows(Codebook),
    /// `data[(p * dim + k) * PANEL + lane]` = element k of codeword `p * PANEL + lane`.
    Panels(Vec<f32>),
}

/// A validated codebook with its squared row norms computed once (and, for
/// f32 rows on CPUs with AVX2 and FMA, packed once into the microkernel's
/// panel layout), ready to be searched many times ([`crate::nearest`],
/// [`crate::top_k`]).
#[derive(Debug, Clone)]
pub struct PreparedCodebook {
    storage: Storage,
    n_rows: usize,
    dim: usize,
    sq_norms: Vec<f32>,
}

/// Whether this CPU runs the packed AVX2+FMA microkernel.
pub fn packed_kernel_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

impl PreparedCodebook {
    /// Validates the rows (all finite), computes `‖c_j‖²` for each row, and
    /// packs f32 rows into panels when [`packed_kernel_available`].
    ///
    /// # Errors
    /// [`QuantError::NonFinite`] naming the first NaN or infinity.
    pub fn new(codebook: Codebook) -> Result<Self> {
        let pack = packed_kernel_available();
        Self::with_packing(codebook, pack)
    }

    /// As [`PreparedCodebook::new`], but keeps the row-major layout (the
    /// portable kernel), e.g. to compare kernels.
    ///
    /// # Errors
    /// As [`PreparedCodebook::new`].
    pub fn new_row_major(codebook: Codebook) -> Result<Self> {
        Self::with_packing(codebook, false)
    }

    fn with_packing(codebook: Codebook, pack: bool) -> Result<Self> {
        let (n_rows, dim) = (codebook.n_rows, codebook.dim);
        let mut sq_norms = Vec::with_capacity(n_rows);
        let mut row = vec![0.0f32; dim];
        for r in 0..n_rows {
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
        let storage = match codebook.rows {
            Rows::F32(values) if pack => {
                let panels = n_rows.div_ceil(PANEL);
                let mut data = vec![0.0f32; panels * dim * PANEL];
                for (j, row) in values.chunks_exact(dim).enumerate() {
                    let (p, lane) = (j / PANEL, j % PANEL);
                    let base = p * dim * PANEL + lane;
                    for (k, &v) in row.iter().enumerate() {
                        data[base + k * PANEL] = v;
                    }
                }
                Storage::Panels(data)
            }
            rows => Storage::Rows(Codebook { rows, n_rows, dim }),
        };
        Ok(Self {
            storage,
            n_rows,
            dim,
            sq_norms,
        })
    }

    /// A prepared codebook from row-major f32 values (shorthand for
    /// [`Codebook::from_f32`] then [`PreparedCodebook::new`]).
    ///
    /// # Errors
    /// As those two functions.
    pub fn from_f32(values: Vec<f32>, dim: usize) -> Result<Self> {
        Self::new(Codebook::from_f32(values, dim)?)
    }

    /// How the rows are held.
    pub fn layout(&self) -> Layout {
        match &self.storage {
            Storage::Rows(c) => match c.rows {
                Rows::F32(_) => Layout::RowMajorF32,
                Rows::F16(_) => Layout::RowMajorF16,
            },
            Storage::Panels(_) => Layout::PanelsF32,
        }
    }

    /// Writes rows `start..start + out.len() / dim` as f32 into `out`.
    pub(crate) fn rows_f32_into(&self, start: usize, out: &mut [f32]) {
        match &self.storage {
            Storage::Rows(c) => c.rows_f32_into(start, out),
            Storage::Panels(data) => {
                let dim = self.dim;
                for (i, row) in out.chunks_exact_mut(dim).enumerate() {
                    let j = start + i;
                    let base = (j / PANEL) * dim * PANEL + j % PANEL;
                    for (k, v) in row.iter_mut().enumerate() {
                        *v = data[base + k * PANEL];
                    }
                }
            }
        }
    }

    /// Row `i` as f32 values (`None` when `i` is out of range).
    pub fn row_f32(&self, i: usize) -> Option<Vec<f32>> {
        if i >= self.n_rows {
            return None;
        }
        let mut out = vec![0.0; self.dim];
        self.rows_f32_into(i, &mut out);
        Some(out)
    }

    /// The row-major f32 rows without copying, when held that way.
    pub(crate) fn as_f32(&self) -> Option<&[f32]> {
        match &self.storage {
            Storage::Rows(c) => c.as_f32(),
            Storage::Panels(_) => None,
        }
    }

    /// The packed panels, when held that way.
    pub(crate) fn panels(&self) -> Option<&[f32]> {
        match &self.storage {
            Storage::Panels(d) => Some(d),
            Storage::Rows(_) => None,
        }
    }

    /// `‖c_j‖²` per row, computed in f64 and rounded to f32.
    pub fn sq_norms(&self) -> &[f32] {
        &self.sq_norms
    }

    /// Number of codewords.
    pub fn len(&self) -> usize {
        self.n_rows
    }

    /// Always `false`.
    pub fn is_empty(&self) -> bool {
        self.n_rows == 0
    }

    /// Width of each codeword.
    pub fn dim(&self) -> usize {
        self.dim
    }
}
