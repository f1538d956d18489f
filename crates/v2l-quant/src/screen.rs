//! Screened exact search ([`crate::SearchPath::Avx512Bf16`]).
//!
//! The codebook is held split ([`crate::Layout::SplitBf16Panels`]): the high
//! 16 bits of every value (the value truncated to bf16) and the low 16 bits.
//! A task scores its queries against the high halves with `vdpbf16ps`
//! (queries rounded to bf16), twice the f32 rate and half the bytes, and
//! brackets each exact score between `s̃ − B` and `s̃ + B` with the bound
//! `B` below. A panel of 16 codewords is **rescored** — its f32 values
//! rebuilt from both halves and run through the same fused-multiply-add
//! chain as the f32 microkernels, so its scores are the exact kernel's, bit
//! for bit — as soon as one of its lanes could still enter the query's
//! top k: its lower bound is not above the k-th smallest upper bound (or
//! exact score) seen so far. Only rescored (exact) scores reach the
//! selection, and every codeword of the exact top k (ties included) is
//! rescored, so the result equals the exact kernel's by construction.
//!
//! # The bound
//! For query `z` and codeword `c` of width `d`, with `ẑ` = `z` rounded to
//! bf16 (relative error ≤ 2⁻⁸), `ĉ` = `c` truncated to bf16 (≤ 2⁻⁷),
//! `p = z·c`, `S = Σ|z_i c_i| ≤ ‖z‖‖c‖`:
//! - the products: `|Σẑĉ − p| ≤ η S`, `η = (1 + 2⁻⁸)(1 + 2⁻⁷) − 1`;
//! - the screen's f32 sums (`vdpbf16ps`; any rounding direction, so unit
//!   `2⁻²³`, over `d' = 2⌈d/2⌉` additions): `|p̃ − Σẑĉ| ≤ γ_s (1 + η) S`;
//! - the exact kernel's own sums: `|p_f − p| ≤ γ_f S` (`γ_n = n u /(1 − n u)`);
//! - so `|p̃ − p_f| ≤ ε ‖z‖‖c‖` with `ε = η + γ_s (1 + η) + γ_f`;
//! - scores `s = fl(α p + ‖c‖²)` (`α = −2`, or `−1` with no norm term for
//!   inner products) add one rounding each, and forming `s̃ ± B` one more:
//!   `B = β ‖z‖‖c‖ + τ ‖c‖² + δ` with `β = 1.001 (2ε + 8u(1 + ε))`,
//!   `τ = 1.001 · 4u`, and `δ = 2⁻¹²⁴ (√d (‖z‖ + ‖c‖) + 3d)` for the
//!   instruction's flushing of denormal inputs, products and sums; the
//!   factor 1.001 covers the f32 arithmetic that evaluates `B` itself, and
//!   the norms are rounded up.
//!
//! Non-finite screened values (a query above bf16's range) compare as
//! "rescore", so the result stays exact; only speed is lost.

use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::avx512::{self, MR};
use crate::codebook::PANEL;
use crate::fused::{as_block, score_alpha, Cand, Selection, Sweep, GEMV_ROWS};
use crate::{Metric, PreparedCodebook};

/// Width pairs per microkernel call: two panels' `hi` slices (2 × 96 × 64
/// bytes = 12 KiB) stay in L1.
const K2C: usize = 96;

/// Unit roundoff of f32.
const U: f64 = 1.0 / (1u64 << 24) as f64;

/// The coefficients of the bound `B = β‖z‖‖c‖ + τ‖c‖² + δ` (module docs).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bound {
    beta: f32,
    tau: f32,
    /// `2⁻¹²⁴ √d`, the per-norm part of `δ`.
    flush: f32,
    /// `2⁻¹²⁴ · 3d`, the constant part of `δ`.
    flush_const: f32,
}

impl Bound {
    pub(crate) fn new(dim: usize) -> Self {
        let gamma = |n: f64, u: f64| n * u / (1.0 - n * u);
        let d = dim as f64;
        let eta = (1.0 + 2f64.powi(-8)) * (1.0 + 2f64.powi(-7)) - 1.0;
        let gamma_s = gamma(2.0 * (dim.div_ceil(2) as f64), 2.0 * U);
        let gamma_f = gamma(d, U);
        let eps = eta + gamma_s * (1.0 + eta) + gamma_f;
        let flush_unit = 2f64.powi(-124);
        let up = |v: f64| (v * (1.0 + 2f64.powi(-20))) as f32;
        Self {
            beta: up(1.001 * (2.0 * eps + 8.0 * U * (1.0 + eps))),
            tau: up(1.001 * 4.0 * U),
            flush: up(flush_unit * d.sqrt()),
            flush_const: up(flush_unit * 3.0 * d),
        }
    }
}

impl Bound {
    /// A codeword's share of the bound, from its `‖c‖²` (`sq`) and rounded-up
    /// `‖c‖`: `(β‖c‖, τ‖c‖² + 2⁻¹²⁴√d‖c‖)`, with no `‖c‖²` term for inner
    /// products.
    fn row_terms(&self, sq: f32, c: f32, metric: Metric) -> (f32, f32) {
        let n = if metric == Metric::SquaredL2 { sq } else { 0.0 };
        (self.beta * c, self.tau * n + self.flush * c)
    }

    /// A query's share of `δ`, from its rounded-up norm `zn`.
    fn query_term(&self, zn: f32) -> f32 {
        self.flush * zn + self.flush_const
    }

    /// `B` for a query (norm `zn`, share `zq`) and a codeword's terms.
    #[inline]
    fn of(zn: f32, zq: f32, (cz, cc): (f32, f32)) -> f32 {
        zn * cz + (cc + zq)
    }
}

/// A norm rounded up to f32, so the bound never shrinks by its rounding.
fn norm_up(sq: f64) -> f32 {
    (sq.sqrt() * (1.0 + 2f64.powi(-20))) as f32
}

/// The shared threshold's value before any chunk set it (the key of +∞).
pub(crate) const UNSET: u32 = key_of(f32::INFINITY);

/// f32 → u32 with the same order (for an atomic minimum).
const fn key_of(v: f32) -> u32 {
    let bits = v.to_bits();
    if bits >> 31 == 1 {
        !bits
    } else {
        bits | 0x8000_0000
    }
}

/// Inverse of [`key_of`].
fn value_of(key: u32) -> f32 {
    f32::from_bits(if key >> 31 == 1 {
        key & 0x7fff_ffff
    } else {
        !key
    })
}

/// The running screen threshold of one query: the k-th smallest upper bound
/// (or exact score) seen so far; `+∞` until k were seen. For k = 1 the
/// chunks of one query share their minimum through `shared`, so a chunk
/// screens against the best seen anywhere (it is an upper bound on the
/// query's best exact score wherever it came from).
struct Threshold<'a> {
    k: usize,
    best: f32,
    heap: BinaryHeap<Cand>,
    shared: Option<&'a AtomicU32>,
}

impl<'a> Threshold<'a> {
    fn new(k: usize, shared: Option<&'a AtomicU32>) -> Self {
        Self {
            k,
            best: f32::INFINITY,
            heap: BinaryHeap::with_capacity(if k > 1 { k + 1 } else { 0 }),
            shared,
        }
    }

    #[inline]
    fn value(&mut self) -> f32 {
        if self.k == 1 {
            if let Some(s) = self.shared {
                let other = value_of(s.load(Ordering::Relaxed));
                if other < self.best {
                    self.best = other;
                }
            }
            self.best
        } else if self.heap.len() < self.k {
            f32::INFINITY
        } else {
            self.heap.peek().map_or(f32::INFINITY, |w| w.0)
        }
    }

    /// The values kept: the k smallest offered (for k = 1, the smallest).
    fn kept(self) -> Vec<f32> {
        if self.k == 1 {
            vec![self.best]
        } else {
            self.heap.into_iter().map(|w| w.0).collect()
        }
    }

    /// Counts `values` (one per codeword) toward the threshold; NaN is skipped
    /// (never lowers it).
    #[inline]
    fn offer(&mut self, values: &[f32]) {
        if self.k == 1 {
            let before = self.best;
            for &v in values {
                if v < self.best {
                    self.best = v;
                }
            }
            if let (Some(s), true) = (self.shared, self.best < before) {
                s.fetch_min(key_of(self.best), Ordering::Relaxed);
            }
            return;
        }
        for &v in values {
            if v.is_nan() {
                continue;
            }
            if self.heap.len() < self.k {
                self.heap.push(Cand(v, 0));
            } else if v < self.value() {
                self.heap.pop();
                self.heap.push(Cand(v, 0));
            }
        }
    }
}

/// What one query needs in the epilogue.
struct QueryState<'a, S> {
    z: &'a [f32],
    /// ‖z‖ rounded up.
    norm: f32,
    /// `2⁻¹²⁴ √d ‖z‖ + 2⁻¹²⁴ 3d` (the query's share of `δ`).
    flush: f32,
    sel: &'a mut S,
    thr: Threshold<'a>,
}

/// Per-task constants of the epilogue.
struct Epilogue<'a> {
    cb: &'a PreparedCodebook,
    metric: Metric,
    alpha: f32,
    c1: usize,
    bound: Bound,
    /// Per codeword of the task (from `c0`): `β‖c‖` and `τ‖c‖² + 2⁻¹²⁴√d‖c‖`.
    cz: Vec<f32>,
    cc: Vec<f32>,
    c0: usize,
}

impl Epilogue<'_> {
    /// Screens one panel's bf16 products for one query; rescores the panel
    /// when a lane may still enter the query's top k.
    #[inline]
    fn panel<S: Selection>(&self, q: &mut QueryState<'_, S>, p: usize, acc: &[f32]) {
        let first = p * PANEL;
        let cols = PANEL.min(self.c1 - first);
        let norms = &self.cb.sq_norms()[first..first + cols];
        let at = first - self.c0;
        let (cz, cc) = (&self.cz[at..at + cols], &self.cc[at..at + cols]);
        let mut upper = [0.0f32; PANEL];
        let mut open = false;
        let thr = q.thr.value();
        for l in 0..cols {
            let n = if self.metric == Metric::SquaredL2 {
                norms[l]
            } else {
                0.0
            };
            let s = self.alpha * acc[l] + n;
            let b = Bound::of(q.norm, q.flush, (cz[l], cc[l]));
            // Open unless the lower bound is above the threshold; a NaN
            // bound or score (no order) opens the panel.
            let lower = s - b;
            open |= lower.partial_cmp(&thr) != Some(std::cmp::Ordering::Greater);
            upper[l] = s + b;
        }
        if !open {
            q.thr.offer(&upper[..cols]);
            return;
        }
        let Some((hi, lo)) = self.cb.split_panel(p) else {
            return;
        };
        let mut exact = avx512::rescore(q.z, hi, lo);
        for (l, v) in exact.iter_mut().take(cols).enumerate() {
            let n = if self.metric == Metric::SquaredL2 {
                norms[l]
            } else {
                0.0
            };
            *v = self.alpha * *v + n;
        }
        q.sel.offer_panel(&exact[..cols], first as u32);
        q.thr.offer(&exact[..cols]);
    }
}

/// [`crate::fused`]'s task on a split codebook: queries `q` against
/// codewords `c0..c1`, `k` best per query.
pub(crate) fn run_task<S: Selection>(
    cb: &PreparedCodebook,
    q: &[f32],
    (c0, c1): (usize, usize),
    metric: Metric,
    (k, shared): (usize, &[AtomicU32]),
    make: &(impl Fn() -> S + Sync),
) -> Vec<S> {
    let dim = cb.dim();
    let rows = q.len() / dim;
    let bound = Bound::new(dim);
    let (cz, cc): (Vec<f32>, Vec<f32>) = cb.sq_norms()[c0..c1]
        .iter()
        .zip(&cb.norms_up()[c0..c1])
        .map(|(&sq, &c)| bound.row_terms(sq, c, metric))
        .unzip();
    let ep = Epilogue {
        cb,
        metric,
        alpha: score_alpha(metric),
        c1,
        bound,
        cz,
        cc,
        c0,
    };
    let mut sel: Vec<S> = (0..rows).map(|_| make()).collect();
    let mut states: Vec<QueryState<'_, S>> = q
        .chunks_exact(dim)
        .zip(sel.iter_mut())
        .enumerate()
        .map(|(i, (z, s))| {
            let norm = norm_up(z.iter().map(|&v| f64::from(v) * f64::from(v)).sum());
            QueryState {
                z,
                norm,
                flush: ep.bound.query_term(norm),
                sel: s,
                thr: Threshold::new(k, shared.get(i)),
            }
        })
        .collect();
    let (p0, p1) = (c0 / PANEL, c1.div_ceil(PANEL));
    if rows <= GEMV_ROWS {
        for st in &mut states {
            let pairs = avx512::query_pairs(st.z);
            for p in p0..p1 {
                if let Some((hi, _)) = cb.split_panel(p) {
                    let acc = avx512::gemv_bf16(&pairs, hi);
                    ep.panel(st, p, &acc);
                }
            }
        }
        drop(states);
        return sel;
    }
    let d2 = dim.div_ceil(2);
    let packed = avx512::pack_queries_bf16(q, dim);
    let hi_of = |p: usize, k0: usize, k1: usize| -> &[u16] {
        cb.split_panel(p)
            .map_or(&[][..], |(hi, _)| &hi[k0 * avx512::PAIR..k1 * avx512::PAIR])
    };
    let sweep = Sweep {
        a: &packed,
        mr: MR,
        rows,
        depth: (d2, K2C),
        panels: (p0, p1),
    };
    sweep.run(
        |a, (k0, k1), [p, q], [o0, o1], init| {
            let (h0, h1) = (hi_of(p, k0, k1), hi_of(q, k0, k1));
            avx512::BF16.run(a, [h0, h1], k1 - k0, [as_block(o0), as_block(o1)], init);
        },
        |r0, p, block| {
            for (st, row) in states[r0..].iter_mut().zip(block.chunks_exact(PANEL)) {
                ep.panel(st, p, row);
            }
        },
    );
    drop(states);
    sel
}

/// Panels per work item of [`search_one`].
const FEW_PANELS: usize = 64;

/// The screened search for one query `z` (the global branch; tasks of one
/// or two queries), in two passes over the codebook so that only the final window is rescored:
/// 1. screen every panel (rayon over ranges of [`FEW_PANELS`] panels),
///    keeping each codeword's lower bound and each range's k smallest upper
///    bounds;
/// 2. per query, the threshold is the k-th smallest upper bound of the whole
///    codebook; rescore (exactly) the panels holding a lower bound not above
///    it, and select among those exact scores.
///
/// A one-pass scan would rescore most panels early on, while its running
/// k-th smallest upper bound is still loose.
pub(crate) fn search_one<S: Selection>(
    cb: &PreparedCodebook,
    z: &[f32],
    (metric, k): (Metric, usize),
    make: &(impl Fn() -> S + Sync),
) -> Vec<(f32, u32)> {
    use rayon::prelude::*;
    let dim = cb.dim();
    let rows = cb.len();
    let panels = rows.div_ceil(PANEL);
    let bound = Bound::new(dim);
    let alpha = score_alpha(metric);
    let (norms, cnorms) = (cb.sq_norms(), cb.norms_up());
    let ranges: Vec<(usize, usize)> = (0..panels)
        .step_by(FEW_PANELS)
        .map(|p| (p, (p + FEW_PANELS).min(panels)))
        .collect();
    let pairs = avx512::query_pairs(z);
    let zn = norm_up(z.iter().map(|&v| f64::from(v) * f64::from(v)).sum());
    let zflush = bound.query_term(zn);
    // Pass 1: lower bounds per codeword, k smallest upper bounds per range.
    let mut lower = vec![0.0f32; panels * PANEL];
    let uppers: Vec<Vec<f32>> = lower
        .par_chunks_mut(FEW_PANELS * PANEL)
        .zip(&ranges)
        .map(|(low, &(p0, p1))| {
            let mut thr = Threshold::new(k, None);
            for (p, low) in (p0..p1).zip(low.chunks_exact_mut(PANEL)) {
                let Some((hi, _)) = cb.split_panel(p) else {
                    continue;
                };
                let acc = avx512::gemv_bf16(&pairs, hi);
                let first = p * PANEL;
                let cols = PANEL.min(rows - first);
                let mut upper = [0.0f32; PANEL];
                for l in 0..cols {
                    let (sq, c) = (norms[first + l], cnorms[first + l]);
                    let n = if metric == Metric::SquaredL2 { sq } else { 0.0 };
                    let s = alpha * acc[l] + n;
                    let b = Bound::of(zn, zflush, bound.row_terms(sq, c, metric));
                    // NaN (a query beyond bf16's range) must open the panel.
                    low[l] = if (s - b).is_nan() {
                        f32::NEG_INFINITY
                    } else {
                        s - b
                    };
                    upper[l] = s + b;
                }
                low[cols..].fill(f32::INFINITY);
                thr.offer(&upper[..cols]);
            }
            thr.kept()
        })
        .collect();
    let mut all = Threshold::new(k, None);
    for u in &uppers {
        all.offer(u);
    }
    let threshold = all.value();
    // Pass 2: rescore the panels that hold a candidate.
    let mut parts: Vec<S> = lower
        .par_chunks(FEW_PANELS * PANEL)
        .zip(&ranges)
        .map(|(low, &(p0, _))| {
            let mut sel = make();
            for (i, lanes) in low.chunks_exact(PANEL).enumerate() {
                if lanes.iter().all(|&l| l > threshold) {
                    continue;
                }
                let p = p0 + i;
                let Some((hi, lo)) = cb.split_panel(p) else {
                    continue;
                };
                let first = p * PANEL;
                let cols = PANEL.min(rows - first);
                let mut exact = avx512::rescore(z, hi, lo);
                for (l, v) in exact.iter_mut().take(cols).enumerate() {
                    let n = if metric == Metric::SquaredL2 {
                        norms[first + l]
                    } else {
                        0.0
                    };
                    *v = alpha * *v + n;
                }
                sel.offer_panel(&exact[..cols], first as u32);
            }
            sel
        })
        .collect();
    let mut acc = make();
    for part in parts.drain(..) {
        acc.merge(part);
    }
    acc.into_sorted()
}
