//! Nearest-codeword and top-k search against large codebooks — the hot
//! kernel of the V2L tokenizer.
//!
//! V2L snaps every position of an image's feature grid to the nearest row of
//! the *local codebook* (one row per LLM token: 32,000 for LLaMA-2, 49,152
//! for SmolLM2, d = 768) and picks the k nearest rows of the *global
//! codebook* for the CLIP image embedding. Both are
//! `argmin_j ‖z − c_j‖² = argmin_j (‖c_j‖² − 2 z·c_j)`: one GEMM and an
//! arg-reduction.
//!
//! # Kernels
//! - [`Kernel::Reference`]: exact differences in f64, a full sort per query.
//!   Obviously correct; used to test the others.
//! - [`Kernel::Fused`] (default): tiled over queries and codebook, a
//!   running selection per query, rayon over tiles, no `T × K` allocation,
//!   and a deterministic lowest-index tie-break (as `torch.argmin`). Its
//!   inner kernel is the prepared codebook's [`SearchPath`], chosen at run
//!   time from the CPU's instructions: AVX-512 BF16 screening with exact
//!   f32 rescoring, AVX-512F or AVX2 + FMA microkernels, or portable
//!   `matrixmultiply` tiles — all exact f32 (`docs/quantizer.md`).
//! - [`tensor`]: the burn-generic entry point (`B: Backend`): the fused
//!   kernel on CPU backends, tensor ops elsewhere; plus the straight-through
//!   quantisation used in training.
//!
//! ```
//! use v2l_quant::{Metric, PreparedCodebook};
//! // Three codewords of width 2.
//! let cb = PreparedCodebook::from_f32(vec![0.0, 0.0, 1.0, 0.0, 0.0, 1.0], 2)?;
//! let hits = v2l_quant::nearest(&cb, &[0.9, 0.2, 0.1, 0.8], 2, Metric::SquaredL2)?;
//! assert_eq!(hits.indices, vec![1, 2]);
//! # Ok::<(), v2l_quant::QuantError>(())
//! ```
//!
//! Parallelism: rayon's global pool (`RAYON_NUM_THREADS`).

/// Invokes the local macro `$m!(i)` once for each literal given: unrolls a
/// microkernel's rows so their accumulators stay in registers. (Textually
/// scoped: the modules declared below see it.)
#[cfg_attr(not(target_arch = "x86_64"), allow(unused_macros))]
macro_rules! unroll {
    ($m:ident, $($i:literal),+) => {
        $($m!($i);)+
    };
}

mod avx2;
mod avx512;
mod codebook;
mod cpu;
#[cfg(any(feature = "wgpu", feature = "cuda"))]
mod cube;
mod error;
pub mod fused;
mod reference;
mod screen;
pub mod tensor;

pub use codebook::{packed_kernel_available, Codebook, Layout, PreparedCodebook, Rows};
pub use cpu::{cpu_features, SearchPath, PATH_ENV};
pub use error::{QuantError, Result};

/// Largest `k` accepted by [`top_k`].
pub const MAX_TOP_K: usize = 128;

/// What "nearest" means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Metric {
    /// Smallest squared Euclidean distance `‖z − c‖²` (V2L's local and
    /// global quantisers). Scores are squared distances, ascending.
    #[default]
    SquaredL2,
    /// Largest inner product `z·c` (equal to the L2 ranking when all
    /// codewords have the same norm; used for CLIP-style filtering).
    /// Scores are inner products, descending.
    InnerProduct,
}

/// Which implementation runs a host-side search.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Kernel {
    /// Exact f64 differences, full sort. `O(T·K·d)` with no blocking.
    Reference,
    /// Tiled inner products on the codebook's [`SearchPath`] + running
    /// selection on rayon (see [`fused`]).
    #[default]
    Fused,
}

/// The nearest codeword of each query.
#[derive(Debug, Clone, PartialEq)]
pub struct Nearest {
    /// `[T]` codeword index per query.
    pub indices: Vec<u32>,
    /// `[T]` score of that codeword (see [`Metric`]).
    pub scores: Vec<f32>,
}

/// The `k` best codewords of each query, best first.
#[derive(Debug, Clone, PartialEq)]
pub struct TopK {
    /// Neighbours per query.
    pub k: usize,
    /// `[T, k]` row-major codeword indices.
    pub indices: Vec<u32>,
    /// `[T, k]` row-major scores (see [`Metric`]).
    pub scores: Vec<f32>,
}

impl TopK {
    /// The indices of query `i`, best first.
    pub fn row(&self, i: usize) -> &[u32] {
        &self.indices[i * self.k..(i + 1) * self.k]
    }
}

/// Number of rows in a flat buffer of `len` values of width `dim`.
pub(crate) fn check_rows(what: &'static str, len: usize, dim: usize) -> Result<usize> {
    if dim == 0 || !len.is_multiple_of(dim) {
        return Err(QuantError::RaggedBuffer { what, len, dim });
    }
    Ok(len / dim)
}

/// Checks a query buffer against a codebook: same width, whole rows, all finite.
fn check_queries(cb: &PreparedCodebook, queries: &[f32], dim: usize) -> Result<usize> {
    if dim != cb.dim() {
        return Err(QuantError::DimensionMismatch {
            queries: dim,
            codebook: cb.dim(),
        });
    }
    if !queries.len().is_multiple_of(dim) {
        return Err(QuantError::RaggedBuffer {
            what: "queries",
            len: queries.len(),
            dim,
        });
    }
    if let Some(p) = queries.iter().position(|v| !v.is_finite()) {
        return Err(QuantError::NonFinite {
            what: "queries",
            row: p / dim,
            col: p % dim,
            value: queries[p],
        });
    }
    Ok(queries.len() / dim)
}

/// The nearest codeword of each query row (`queries`: row-major `[T, dim]`)
/// with the default [`Kernel::Fused`].
///
/// # Errors
/// [`QuantError::DimensionMismatch`] when `dim` differs from the codebook's;
/// [`QuantError::RaggedBuffer`] when `queries` is not whole rows of `dim`; [`QuantError::NonFinite`] for a NaN or infinity.
/// An empty `queries` gives an empty result.
pub fn nearest(
    cb: &PreparedCodebook,
    queries: &[f32],
    dim: usize,
    metric: Metric,
) -> Result<Nearest> {
    nearest_with(Kernel::Fused, cb, queries, dim, metric)
}

/// [`nearest`] with a chosen kernel.
///
/// # Errors
/// As [`nearest`].
pub fn nearest_with(
    kernel: Kernel,
    cb: &PreparedCodebook,
    queries: &[f32],
    dim: usize,
    metric: Metric,
) -> Result<Nearest> {
    let (indices, scores) = search_with(kernel, cb, queries, dim, 1, metric)?;
    Ok(Nearest { indices, scores })
}

/// The `k` best of each query row by `kernel` (indices, scores), after the
/// query checks; no rows give empty lists.
fn search_with(
    kernel: Kernel,
    cb: &PreparedCodebook,
    queries: &[f32],
    dim: usize,
    k: usize,
    metric: Metric,
) -> Result<(Vec<u32>, Vec<f32>)> {
    if check_queries(cb, queries, dim)? == 0 {
        return Ok((Vec::new(), Vec::new()));
    }
    Ok(match kernel {
        Kernel::Reference => reference::search(cb, queries, k, metric),
        Kernel::Fused => fused::search(cb, queries, k, metric),
    })
}

/// The `k` best codewords of each query row, best first (ascending distance
/// for [`Metric::SquaredL2`], as `torch.topk(-d, k)`), ties to the lower index.
///
/// # Errors
/// [`QuantError::InvalidK`] unless `1 ≤ k ≤ min(rows, MAX_TOP_K)`; otherwise
/// as [`nearest`].
pub fn top_k(
    cb: &PreparedCodebook,
    queries: &[f32],
    dim: usize,
    k: usize,
    metric: Metric,
) -> Result<TopK> {
    top_k_with(Kernel::Fused, cb, queries, dim, k, metric)
}

/// [`top_k`] with a chosen kernel.
///
/// # Errors
/// As [`top_k`].
pub fn top_k_with(
    kernel: Kernel,
    cb: &PreparedCodebook,
    queries: &[f32],
    dim: usize,
    k: usize,
    metric: Metric,
) -> Result<TopK> {
    if k == 0 || k > cb.len() || k > MAX_TOP_K {
        return Err(QuantError::InvalidK {
            k,
            rows: cb.len(),
            limit: MAX_TOP_K,
        });
    }
    let (indices, scores) = search_with(kernel, cb, queries, dim, k, metric)?;
    Ok(TopK { k, indices, scores })
}

/// Exact scores (f64 accumulation) of `query` against every codeword — the
/// reference kernel's distances, for checking near-ties.
///
/// # Errors
/// [`QuantError::DimensionMismatch`] when `query.len() != cb.dim()`.
pub fn exact_scores(cb: &PreparedCodebook, query: &[f32], metric: Metric) -> Result<Vec<f64>> {
    if query.len() != cb.dim() {
        return Err(QuantError::DimensionMismatch {
            queries: query.len(),
            codebook: cb.dim(),
        });
    }
    Ok(reference::exact_scores(cb, query, metric))
}
