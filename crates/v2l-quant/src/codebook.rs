//! Codebooks: row storage (f32 or f16) and the prepared form the kernels search.

use half::f16;

use crate::cpu::SearchPath;
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

/// Codewords per panel of the packed layouts (two AVX2 registers of f32,
/// one AVX-512 register).
pub(crate) const PANEL: usize = 16;

/// How a prepared codebook holds its rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Row-major f32 `[rows, dim]`, searched by the portable tiled kernel.
    RowMajorF32,
    /// Row-major f16, widened one tile at a time by the portable kernel.
    RowMajorF16,
    /// Packed once into panels of 16 codewords, element-interleaved
    /// (`[panel][dim][16]`, the last panel zero-padded), for the AVX2 and
    /// AVX-512 microkernels. Replaces the row-major copy: no second copy is
    /// kept.
    PanelsF32,
    /// Each f32 value split into its high 16 bits (the value truncated to
    /// bf16, which the screening kernel reads) and its low 16 bits, in
    /// panels of 16 codewords with element pairs interleaved; the two
    /// halves rebuild every f32 exactly, in the same memory as f32.
    SplitBf16Panels,
}

#[derive(Debug, Clone)]
enum Storage {
    Rows(Codebook),
    /// `data[(p * dim + k) * PANEL + lane]` = element k of codeword `p * PANEL + lane`.
    Panels(Vec<f32>),
    /// `hi[p * h + k2 * 32 + 2 * lane + e]` (and `lo` likewise) = the high
    /// (low) 16 bits of element `2 * k2 + e` of codeword `p * PANEL + lane`,
    /// `h` = [`split_half`]; padding zero.
    Split {
        hi: Vec<u16>,
        lo: Vec<u16>,
    },
}

/// A validated codebook with its squared row norms computed once, packed
/// once into the layout its [`SearchPath`] searches, ready to be searched
/// many times ([`crate::nearest`], [`crate::top_k`]).
#[derive(Debug, Clone)]
pub struct PreparedCodebook {
    storage: Storage,
    path: SearchPath,
    n_rows: usize,
    dim: usize,
    sq_norms: Vec<f32>,
    /// `‖c_j‖` rounded up (split layout only; the screen's bound).
    norms_up: Vec<f32>,
}

/// Whether this CPU runs the packed AVX2+FMA microkernel
/// ([`SearchPath::Avx2`] is available).
pub fn packed_kernel_available() -> bool {
    SearchPath::Avx2.is_available()
}

impl PreparedCodebook {
    /// Validates the rows (all finite), computes `‖c_j‖²` for each row, and
    /// lays them out for [`SearchPath::selected`]: the fastest path this CPU
    /// runs, or the one `V2L_QUANT_PATH` names. f16 rows stay row-major
    /// (portable path).
    ///
    /// # Errors
    /// [`QuantError::NonFinite`] naming the first NaN or infinity; the
    /// errors of [`SearchPath::selected`] for a bad `V2L_QUANT_PATH`.
    pub fn new(codebook: Codebook) -> Result<Self> {
        let path = SearchPath::selected()?;
        Self::with_path(codebook, path)
    }

    /// As [`PreparedCodebook::new`], but keeps the row-major layout (the
    /// portable kernel), e.g. to compare kernels.
    ///
    /// # Errors
    /// As [`PreparedCodebook::new`].
    pub fn new_row_major(codebook: Codebook) -> Result<Self> {
        Self::with_path(codebook, SearchPath::Portable)
    }

    /// As [`PreparedCodebook::new`], for a chosen search path. f16 rows are
    /// kept row-major whatever the path (they are searched by the portable
    /// kernel; [`PreparedCodebook::path`] says so).
    ///
    /// # Errors
    /// [`QuantError::PathUnavailable`] when this CPU cannot run `path`;
    /// otherwise as [`PreparedCodebook::new`].
    pub fn with_path(codebook: Codebook, path: SearchPath) -> Result<Self> {
        path.check()?;
        let (n_rows, dim) = (codebook.n_rows, codebook.dim);
        let mut sq_norms = Vec::with_capacity(n_rows);
        let split = path == SearchPath::Avx512Bf16 && matches!(codebook.rows, Rows::F32(_));
        let mut norms_up = Vec::with_capacity(if split { n_rows } else { 0 });
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
            if split {
                norms_up.push((acc.sqrt() * (1.0 + 2f64.powi(-20))) as f32);
            }
        }
        let (storage, path) = match codebook.rows {
            Rows::F32(values) if path == SearchPath::Avx512Bf16 => {
                (split_panels(values, n_rows, dim), path)
            }
            Rows::F32(values) if path.is_packed() => (pack_panels(values, n_rows, dim), path),
            rows => (
                Storage::Rows(Codebook { rows, n_rows, dim }),
                SearchPath::Portable,
            ),
        };
        Ok(Self {
            storage,
            path,
            n_rows,
            dim,
            sq_norms,
            norms_up,
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
            Storage::Split { .. } => Layout::SplitBf16Panels,
        }
    }

    /// The search path this codebook is laid out for (f16 rows are always
    /// [`SearchPath::Portable`]).
    pub fn path(&self) -> SearchPath {
        self.path
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
            Storage::Split { .. } => {
                for (i, row) in out.chunks_exact_mut(self.dim).enumerate() {
                    let j = start + i;
                    if let Some((hi, lo)) = self.split_panel(j / PANEL) {
                        for (k, v) in row.iter_mut().enumerate() {
                            let at = (k / 2) * 2 * PANEL + 2 * (j % PANEL) + k % 2;
                            *v = f32::from_bits(u32::from(hi[at]) << 16 | u32::from(lo[at]));
                        }
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
            Storage::Panels(_) | Storage::Split { .. } => None,
        }
    }

    /// The packed panels, when held that way.
    pub(crate) fn panels(&self) -> Option<&[f32]> {
        match &self.storage {
            Storage::Panels(d) => Some(d),
            Storage::Rows(_) | Storage::Split { .. } => None,
        }
    }

    /// Whether the rows are held split for screening.
    pub(crate) fn is_split(&self) -> bool {
        matches!(self.storage, Storage::Split { .. })
    }

    /// The `hi` and `lo` halves of split panel `p` (each `[⌈dim/2⌉][32]`),
    /// when held that way and `p` exists.
    #[inline]
    pub(crate) fn split_panel(&self, p: usize) -> Option<(&[u16], &[u16])> {
        match &self.storage {
            Storage::Split { hi, lo } => {
                let half = split_half(self.dim);
                let span = p * half..(p + 1) * half;
                Some((hi.get(span.clone())?, lo.get(span)?))
            }
            Storage::Rows(_) | Storage::Panels(_) => None,
        }
    }

    /// `‖c_j‖` per row rounded up (computed in f64), for split codebooks;
    /// empty otherwise.
    pub(crate) fn norms_up(&self) -> &[f32] {
        &self.norms_up
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

/// Row-major f32 values packed into `[panel][dim][16]` panels (the last
/// zero-padded), in place: the 16 rows of panel `p` occupy exactly the
/// floats its packed panel occupies, so each panel is transposed through a
/// scratch copy of one panel and no second codebook is ever allocated.
fn pack_panels(mut values: Vec<f32>, n_rows: usize, dim: usize) -> Storage {
    let block = PANEL * dim;
    grow_exact(&mut values, n_rows.div_ceil(PANEL) * block);
    let mut scratch = vec![0.0f32; block];
    for panel in values.chunks_exact_mut(block) {
        scratch.copy_from_slice(panel);
        for (lane, row) in scratch.chunks_exact(dim).enumerate() {
            for (k, &v) in row.iter().enumerate() {
                panel[k * PANEL + lane] = v;
            }
        }
    }
    Storage::Panels(values)
}

/// u16 values of one split panel's half (`hi` or `lo`): `⌈dim/2⌉ × 32`.
fn split_half(dim: usize) -> usize {
    dim.div_ceil(2) * 2 * PANEL
}

/// Panels converted between two releases of the consumed f32 rows while
/// splitting.
const RELEASE_EVERY: usize = 64;

/// Row-major f32 values split into high and low 16-bit halves in the
/// screening kernel's pair-interleaved panels: all high halves in one
/// array (the screen streams it alone), all low halves in another. Panels
/// are converted from the last to the first, and every
/// [`RELEASE_EVERY`] panels the f32 rows already converted are released
/// (truncate + shrink, which gives the tail pages back), while the halves
/// are zero-allocated (untouched pages cost nothing until written): the
/// peak stays near the f32 size instead of doubling it.
fn split_panels(mut values: Vec<f32>, n_rows: usize, dim: usize) -> Storage {
    let (block, half) = (PANEL * dim, split_half(dim));
    let panels = n_rows.div_ceil(PANEL);
    let (mut hi, mut lo) = (vec![0u16; panels * half], vec![0u16; panels * half]);
    for p in (0..panels).rev() {
        let rows = &values[(p * block).min(values.len())..((p + 1) * block).min(values.len())];
        let (h, l) = (
            &mut hi[p * half..(p + 1) * half],
            &mut lo[p * half..(p + 1) * half],
        );
        for (lane, row) in rows.chunks_exact(dim).enumerate() {
            for (k, &v) in row.iter().enumerate() {
                let at = (k / 2) * 2 * PANEL + 2 * lane + k % 2;
                let bits = v.to_bits();
                h[at] = (bits >> 16) as u16;
                l[at] = bits as u16;
            }
        }
        if p % RELEASE_EVERY == 0 {
            values.truncate(p * block);
            values.shrink_to_fit();
        }
    }
    Storage::Split { hi, lo }
}

/// Zero-extends `v` to `len` values, growing its allocation to exactly that
/// (never to the doubled capacity `resize` may pick).
fn grow_exact(v: &mut Vec<f32>, len: usize) {
    if len > v.len() {
        v.reserve_exact(len - v.len());
        v.resize(len, 0.0);
    }
}
