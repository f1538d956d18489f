//! The fused CPU kernel: GEMM-style inner products with a running selection.
//!
//! Work is split into tasks of (query block × codebook chunk); tasks run on
//! rayon and the chunk results are merged in codebook order, so ties go to
//! the lowest index whatever the thread count. The `T × K` distance matrix is
//! never materialised. Each task runs the inner kernel of the prepared
//! codebook's [`SearchPath`] (see `docs/quantizer.md`):
//!
//! - **packed** (`avx2`, `avx512`; [`crate::Layout::PanelsF32`]): the
//!   queries are packed into micro-panels (6 or 12 rows) and a microkernel
//!   scores 6 × 16 or 12 × 32 blocks, blocked over the width so a panel
//!   slice stays in L1 (`Sweep`); the epilogue adds `‖c‖²` and k = 1 keeps
//!   a lane-wise running minimum. Every score is the same fused-multiply-add
//!   chain in width order, so the packed paths agree bit for bit.
//! - **screened** (`avx512-bf16`; [`crate::Layout::SplitBf16Panels`]): see
//!   `crate::screen`.
//! - **portable** (row-major f32 or f16): tiles of [`CODE_TILE`] codewords,
//!   one single-threaded SGEMM (`matrixmultiply`) per tile into a task-local
//!   buffer of at most [`QUERY_BLOCK`] × [`CODE_TILE`] floats, then the norms
//!   are added and each query row keeps its best candidates.
//!
//! Tasks of one or two queries (the global branch) stream each panel or
//! tile once per query instead. For squared L2,
//! `‖z − c‖² = ‖z‖² + (‖c‖² − 2 z·c)`: the bracket is ranked and `‖z‖²`
//! (f64) is added to the winners only.

use std::collections::BinaryHeap;
use std::sync::atomic::AtomicU32;

use rayon::prelude::*;

use crate::avx2::{self, MR};
use crate::avx512;
use crate::codebook::PANEL;
use crate::{Metric, PreparedCodebook, SearchPath};

/// Queries per block (rows of the GEMM's left operand).
pub const QUERY_BLOCK: usize = 256;
/// Codewords per tile (columns of one GEMM call).
pub const CODE_TILE: usize = 1024;

/// A per-query selection of the best `(score, index)` pairs (lower score wins).
pub(crate) trait Selection: Send + Sized {
    fn offer_tile(&mut self, scores: &[f32], base: u32);
    /// One packed panel's scores (`scores.len() ≤ PANEL`), in codebook order.
    #[inline]
    fn offer_panel(&mut self, scores: &[f32], base: u32) {
        self.offer_tile(scores, base);
    }
    fn merge(&mut self, later: Self);
    /// Best first.
    fn into_sorted(self) -> Vec<(f32, u32)>;
}

/// k = 1: the running minimum. Full packed panels update a lane-wise
/// minimum (one compare-and-blend per lane, no scan); the lanes are folded
/// into `(score, index)` by value, then index, before any merge.
#[derive(Clone)]
struct Best1 {
    score: f32,
    index: u32,
    seen: bool,
    lane_score: [f32; PANEL],
    lane_index: [u32; PANEL],
}

impl Best1 {
    fn new() -> Self {
        Self {
            score: f32::INFINITY,
            index: 0,
            seen: false,
            lane_score: [f32::INFINITY; PANEL],
            lane_index: [u32::MAX; PANEL],
        }
    }

    /// Folds the lane minima into `(score, index)`: lower score, then lower
    /// index, wins.
    fn settle(&mut self) {
        for (&v, &i) in self.lane_score.iter().zip(&self.lane_index) {
            if i != u32::MAX
                && (!self.seen || v < self.score || (v == self.score && i < self.index))
            {
                self.score = v;
                self.index = i;
                self.seen = true;
            }
        }
        self.lane_index = [u32::MAX; PANEL];
        self.lane_score = [f32::INFINITY; PANEL];
    }
}

/// Minimum of a slice and the first position holding it (`None` if all NaN).
#[inline]
fn argmin(s: &[f32]) -> Option<(f32, usize)> {
    const L: usize = 16;
    let mut lanes = [f32::INFINITY; L];
    let chunks = s.chunks_exact(L);
    let rest = chunks.remainder();
    for c in chunks {
        for l in 0..L {
            if c[l] < lanes[l] {
                lanes[l] = c[l];
            }
        }
    }
    let mut m = f32::INFINITY;
    for &v in lanes.iter().chain(rest) {
        if v < m {
            m = v;
        }
    }
    s.iter().position(|&v| v == m).map(|p| (m, p))
}

impl Selection for Best1 {
    #[inline]
    fn offer_tile(&mut self, scores: &[f32], base: u32) {
        if let Some((m, p)) = argmin(scores) {
            if !self.seen || m < self.score {
                self.score = m;
                self.index = base + p as u32;
                self.seen = true;
            }
        }
    }

    #[inline]
    fn offer_panel(&mut self, scores: &[f32], base: u32) {
        if let Ok(full) = <&[f32; PANEL]>::try_from(scores) {
            let lanes = self.lane_score.iter_mut().zip(self.lane_index.iter_mut());
            for ((best, idx), (&v, l)) in lanes.zip(full.iter().zip(0u32..)) {
                // Strict: an equal later score keeps the lower index.
                if v < *best {
                    *best = v;
                    *idx = base + l;
                }
            }
        } else {
            self.offer_tile(scores, base);
        }
    }

    fn merge(&mut self, mut later: Self) {
        self.settle();
        later.settle();
        if later.seen && (!self.seen || later.score < self.score) {
            *self = later;
        }
    }

    fn into_sorted(mut self) -> Vec<(f32, u32)> {
        self.settle();
        if self.seen {
            vec![(self.score, self.index)]
        } else {
            Vec::new()
        }
    }
}

/// Total order on `(score, index)`: lower score first, then lower index.
#[derive(Clone, Copy, PartialEq)]
pub(crate) struct Cand(pub(crate) f32, pub(crate) u32);

impl Eq for Cand {}
impl PartialOrd for Cand {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Cand {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0).then(self.1.cmp(&other.1))
    }
}

/// k > 1: a max-heap of the k best seen so far (its top is the worst kept).
#[derive(Clone)]
struct BestK {
    k: usize,
    heap: BinaryHeap<Cand>,
}

impl Selection for BestK {
    #[inline]
    fn offer_tile(&mut self, scores: &[f32], base: u32) {
        let mut worst = if self.heap.len() == self.k {
            self.heap.peek().map_or(f32::INFINITY, |c| c.0)
        } else {
            f32::INFINITY
        };
        for (p, &s) in scores.iter().enumerate() {
            // Indices grow within a task, so an equal score never displaces.
            if s < worst || (self.heap.len() < self.k && !s.is_nan()) {
                self.heap.push(Cand(s, base + p as u32));
                if self.heap.len() > self.k {
                    self.heap.pop();
                }
                if self.heap.len() == self.k {
                    worst = self.heap.peek().map_or(f32::INFINITY, |c| c.0);
                }
            }
        }
    }

    fn merge(&mut self, later: Self) {
        for c in later.heap {
            self.heap.push(c);
            if self.heap.len() > self.k {
                self.heap.pop();
            }
        }
    }

    fn into_sorted(self) -> Vec<(f32, u32)> {
        self.heap
            .into_sorted_vec()
            .into_iter()
            .map(|c| (c.0, c.1))
            .collect()
    }
}

/// Scale of the inner product in a ranked score (lower wins): `‖c‖² − 2 z·c`
/// for squared L2, `−z·c` for inner product.
pub(crate) fn score_alpha(metric: Metric) -> f32 {
    match metric {
        Metric::SquaredL2 => -2.0,
        Metric::InnerProduct => -1.0,
    }
}

/// The term added to a packed panel's scaled products: `‖c‖²` of its
/// `cols` live codewords for squared L2, zero otherwise (and for padding).
fn panel_norms(metric: Metric, norms: &[f32], first: usize, cols: usize) -> [f32; PANEL] {
    let mut nrm = [0.0f32; PANEL];
    if metric == Metric::SquaredL2 {
        nrm[..cols].copy_from_slice(&norms[first..first + cols]);
    }
    nrm
}

/// Task rows up to which scores are plain dot products instead of a GEMM.
pub(crate) const GEMV_ROWS: usize = 2;

/// `Σ a_i·b_i` with 16 independent accumulators (vectorised by the compiler).
#[inline]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    const L: usize = 16;
    let mut acc = [0.0f32; L];
    let (ac, bc) = (a.chunks_exact(L), b.chunks_exact(L));
    let tail: f32 = ac
        .remainder()
        .iter()
        .zip(bc.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ac.zip(bc) {
        for l in 0..L {
            acc[l] += x[l] * y[l];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// `c = α · q · tileᵀ` for `rows` queries and `n` codewords of width `dim`.
fn gemm_tile(
    q: &[f32],
    tile: &[f32],
    c: &mut [f32],
    rows: usize,
    dim: usize,
    n: usize,
    alpha: f32,
) {
    // An invariant of the callers; checked because the GEMM below is unsafe.
    assert!(q.len() >= rows * dim && tile.len() >= n * dim && c.len() >= rows * n);
    // SAFETY: `q` holds rows×dim values (row stride dim), `tile` holds n×dim
    // values read as the dim×n matrix cᵀ (row stride 1, column stride dim),
    // and `c` holds rows×n values (row stride n). beta = 0, so `c` is only
    // written. All strides and extents match the slices' lengths.
    unsafe {
        matrixmultiply::sgemm(
            rows,
            dim,
            n,
            alpha,
            q.as_ptr(),
            dim as isize,
            1,
            tile.as_ptr(),
            1,
            dim as isize,
            0.0,
            c.as_mut_ptr(),
            n as isize,
            1,
        );
    }
}

/// The work split for `t` queries against `codes` codewords: rows per query
/// block and the number of codebook chunks, so every thread gets work even
/// when there are few query blocks (one image, one global query) or a small
/// codebook.
fn split(t: usize, codes: usize) -> (usize, usize) {
    let threads = rayon::current_num_threads().max(1);
    let want = 4 * threads;
    let qblocks = t.div_ceil(QUERY_BLOCK).max(1);
    let chunks = want
        .div_ceil(qblocks)
        .clamp(1, codes.div_ceil(CODE_TILE).max(1));
    if qblocks * chunks >= want {
        return (QUERY_BLOCK, chunks);
    }
    // A small codebook cannot be split further: split the queries finer,
    // down to 32 rows per block.
    let qblock = t.div_ceil(want.div_ceil(chunks)).clamp(32, QUERY_BLOCK);
    (qblock, chunks)
}

/// Runs one task: queries `q` (rows × dim) against codewords `c0..c1`.
fn run_task<S: Selection>(
    cb: &PreparedCodebook,
    q: &[f32],
    (c0, c1): (usize, usize),
    metric: Metric,
    (k, shared): (usize, &[AtomicU32]),
    make: &(impl Fn() -> S + Sync),
) -> Vec<S> {
    if let Some(panels) = cb.panels() {
        return run_task_packed(cb, panels, q, c0, c1, metric, make);
    }
    if cb.is_split() {
        return crate::screen::run_task(cb, q, (c0, c1), metric, (k, shared), make);
    }
    let dim = cb.dim();
    let rows = q.len() / dim;
    let mut sel: Vec<S> = (0..rows).map(|_| make()).collect();
    let mut buf = vec![0.0f32; rows * CODE_TILE.min(c1 - c0)];
    let mut widened = match cb.as_f32() {
        Some(_) => Vec::new(),
        None => vec![0.0f32; CODE_TILE.min(c1 - c0) * dim],
    };
    let norms = cb.sq_norms();
    let alpha = score_alpha(metric);
    let mut t0 = c0;
    while t0 < c1 {
        let n = CODE_TILE.min(c1 - t0);
        let tile: &[f32] = match cb.as_f32() {
            Some(all) => &all[t0 * dim..(t0 + n) * dim],
            None => {
                let w = &mut widened[..n * dim];
                cb.rows_f32_into(t0, w);
                w
            }
        };
        let c = &mut buf[..rows * n];
        if rows <= GEMV_ROWS {
            // A GEMM would repack the whole tile for a row or two: plain dot
            // products stream the codebook once instead.
            for (r, out) in c.chunks_exact_mut(n).enumerate() {
                let z = &q[r * dim..(r + 1) * dim];
                for (o, code) in out.iter_mut().zip(tile.chunks_exact(dim)) {
                    *o = alpha * dot(z, code);
                }
            }
        } else {
            gemm_tile(q, tile, c, rows, dim, n, alpha);
        }
        let tile_norms = &norms[t0..t0 + n];
        for (r, s) in sel.iter_mut().enumerate() {
            let row = &mut c[r * n..(r + 1) * n];
            if metric == Metric::SquaredL2 {
                for (v, &nrm) in row.iter_mut().zip(tile_norms) {
                    *v += nrm;
                }
            }
            s.offer_tile(row, t0 as u32);
        }
        t0 += n;
    }
    sel
}

/// Width slice per AVX2 microkernel call: a 16-codeword panel slice of
/// `KC × 16` floats (16 KiB) stays in L1 while the query micro-panels stream
/// past it from L2.
const KC: usize = 256;
/// Width slice per AVX-512 call: two panels' slices (16 KiB) in L1.
const KC_512: usize = 128;
/// Panels whose partial sums are kept per pass over the width.
pub(crate) const GROUP: usize = 4;

/// Offers one scored block (`mr` queries × one panel, `[mr][16]` partial
/// sums) to the selections of its live queries: `α·acc + ‖c‖²` per lane,
/// in codebook order.
fn offer_block<S: Selection>(
    sel: &mut [S],
    block: &mut [f32],
    first: usize,
    cols: usize,
    alpha: f32,
    nrm: &[f32; PANEL],
) {
    for (s, row) in sel.iter_mut().zip(block.chunks_exact_mut(PANEL)) {
        for (v, &n) in row.iter_mut().zip(nrm) {
            *v = alpha * *v + n;
        }
        s.offer_panel(&row[..cols], first as u32);
    }
}

/// [`run_task`] on a packed codebook: the AVX2 (6 × 16) or AVX-512
/// (12 × 32) microkernel, blocked over the width so operands stay in cache.
/// Both compute every score as the same fused-multiply-add chain in width
/// order, as does the one-query path, so the paths agree bit for bit.
fn run_task_packed<S: Selection>(
    cb: &PreparedCodebook,
    panels: &[f32],
    q: &[f32],
    c0: usize,
    c1: usize,
    metric: Metric,
    make: &(impl Fn() -> S + Sync),
) -> Vec<S> {
    let dim = cb.dim();
    let rows = q.len() / dim;
    let mut sel: Vec<S> = (0..rows).map(|_| make()).collect();
    let norms = cb.sq_norms();
    let alpha = score_alpha(metric);
    let panel =
        |p: usize, k0: usize, k1: usize| &panels[(p * dim + k0) * PANEL..(p * dim + k1) * PANEL];
    if rows <= GEMV_ROWS {
        // One or two queries: a micro-panel would waste most of its work;
        // stream each panel once per query instead (memory-bound).
        for (z, s) in q.chunks_exact(dim).zip(sel.iter_mut()) {
            for p in c0 / PANEL..c1.div_ceil(PANEL) {
                let first = p * PANEL;
                let cols = PANEL.min(c1 - first);
                let mut acc = avx2::gemv(z, panel(p, 0, dim));
                let nrm = panel_norms(metric, norms, first, cols);
                offer_block(std::slice::from_mut(s), &mut acc, first, cols, alpha, &nrm);
            }
        }
        return sel;
    }
    let wide = cb.path() == SearchPath::Avx512;
    let (mr, kc) = if wide { (avx512::MR, KC_512) } else { (MR, KC) };
    let packed_q = avx2::pack_queries(q, dim, mr);
    let sweep = Sweep {
        a: &packed_q,
        mr,
        rows,
        depth: (dim, kc),
        panels: (c0 / PANEL, c1.div_ceil(PANEL)),
    };
    sweep.run(
        |a, (k0, k1), [p, q], [o0, o1], init| {
            if wide {
                let (b0, b1) = (panel(p, k0, k1), panel(q, k0, k1));
                avx512::F32.run(a, [b0, b1], k1 - k0, [as_block(o0), as_block(o1)], init);
            } else {
                avx2::micro(a, panel(p, k0, k1), k1 - k0, as_block(o0), init);
                if q != p {
                    avx2::micro(a, panel(q, k0, k1), k1 - k0, as_block(o1), init);
                }
            }
        },
        // Epilogue: α·acc + ‖c‖², offered in codebook order per query.
        |r0, p, block| {
            let first = p * PANEL;
            let cols = PANEL.min(c1 - first);
            let nrm = panel_norms(metric, norms, first, cols);
            let live = block.len() / PANEL;
            offer_block(&mut sel[r0..r0 + live], block, first, cols, alpha, &nrm);
        },
    );
    sel
}

/// The blocked loop of a packed task. The queries are packed in
/// micro-panels of `mr` rows (`a`: `[micro-panel][depth][mr]`); the task's
/// panels go in groups of [`GROUP`], the depth in slices.
pub(crate) struct Sweep<'a, A> {
    /// The packed queries.
    pub(crate) a: &'a [A],
    /// Queries per micro-panel.
    pub(crate) mr: usize,
    /// Live queries.
    pub(crate) rows: usize,
    /// Steps of the depth per query, and per slice.
    pub(crate) depth: (usize, usize),
    /// The task's panels, `p0..p1`.
    pub(crate) panels: (usize, usize),
}

impl<A> Sweep<'_, A> {
    /// For each group of panels: `kernel(micro-panel slice, (k0, k1),
    /// [panel, second panel], [their accumulator blocks], first slice?)` for
    /// every micro-panel and depth slice, two panels at a time (an odd last
    /// panel comes as its own second, with a spare block to write); then
    /// `epilogue(first query, panel, block)` for each micro-panel and panel
    /// of the group in codebook order, `block` holding the live queries'
    /// `[rows][16]` sums.
    pub(crate) fn run(
        &self,
        mut kernel: impl FnMut(&[A], (usize, usize), [usize; 2], [&mut [f32]; 2], bool),
        mut epilogue: impl FnMut(usize, usize, &mut [f32]),
    ) {
        let (mr, (depth, kc), (p0, p1)) = (self.mr, self.depth, self.panels);
        let blk = mr * PANEL;
        let micro_panels = self.rows.div_ceil(mr);
        let mut acc = vec![0.0f32; micro_panels * GROUP * blk];
        let mut g0 = p0;
        while g0 < p1 {
            let g1 = (g0 + GROUP).min(p1);
            let mut k0 = 0;
            while k0 < depth {
                let k1 = (k0 + kc).min(depth);
                for m in 0..micro_panels {
                    let a = &self.a[(m * depth + k0) * mr..(m * depth + k1) * mr];
                    let accs = &mut acc[m * GROUP * blk..(m + 1) * GROUP * blk];
                    for (p, out) in (g0..g1).step_by(2).zip(accs.chunks_exact_mut(2 * blk)) {
                        let q = if p + 1 < g1 { p + 1 } else { p };
                        let (o0, o1) = out.split_at_mut(blk);
                        kernel(a, (k0, k1), [p, q], [o0, o1], k0 == 0);
                    }
                }
                k0 = k1;
            }
            for m in 0..micro_panels {
                let live = mr.min(self.rows - m * mr);
                for (gi, p) in (g0..g1).enumerate() {
                    epilogue(
                        m * mr,
                        p,
                        &mut acc[(m * GROUP + gi) * blk..][..live * PANEL],
                    );
                }
            }
            g0 = g1;
        }
    }
}

/// A block of `N` accumulators viewed as the fixed-size array a microkernel
/// takes (the callers slice exactly `N` values).
#[inline]
pub(crate) fn as_block<const N: usize>(s: &mut [f32]) -> &mut [f32; N] {
    match s.try_into() {
        Ok(b) => b,
        Err(_) => unreachable!("accumulator blocks are sliced to the microkernel's size"),
    }
}

fn search_with<S: Selection>(
    cb: &PreparedCodebook,
    queries: &[f32],
    metric: Metric,
    k: usize,
    make: impl Fn() -> S + Sync,
) -> Vec<Vec<(f32, u32)>> {
    let dim = cb.dim();
    let t = queries.len() / dim;
    if cb.is_split() && t <= GEMV_ROWS {
        let one = |z| crate::screen::search_one(cb, z, (metric, k), &make);
        return queries.chunks_exact(dim).map(one).collect();
    }
    let k_rows = cb.len();
    let (qblock, chunks) = split(t, k_rows);
    let qblocks = t.div_ceil(qblock);
    // Chunks start on panel boundaries (the packed kernel's unit).
    let chunk_len = k_rows.div_ceil(chunks).next_multiple_of(PANEL);
    let tasks: Vec<(usize, usize)> = (0..qblocks)
        .flat_map(|b| (0..chunks).map(move |c| (b, c)))
        .collect();
    // The screened path's per-query threshold for k = 1, shared by the
    // chunks of a query (see `crate::screen`).
    let shared: Vec<AtomicU32> = if cb.is_split() && k == 1 && chunks > 1 {
        (0..t)
            .map(|_| AtomicU32::new(crate::screen::UNSET))
            .collect()
    } else {
        Vec::new()
    };
    let mut parts: Vec<Vec<S>> = tasks
        .par_iter()
        .map(|&(b, c)| {
            let r0 = b * qblock;
            let r1 = (r0 + qblock).min(t);
            let c0 = (c * chunk_len).min(k_rows);
            let c1 = (c0 + chunk_len).min(k_rows);
            let shared = shared.get(r0..r1).unwrap_or(&[]);
            run_task(
                cb,
                &queries[r0 * dim..r1 * dim],
                (c0, c1),
                metric,
                (k, shared),
                &make,
            )
        })
        .collect();
    // Merge each block's chunks in codebook order (deterministic tie-break).
    let mut out = Vec::with_capacity(t);
    let mut it = parts.drain(..);
    for _ in 0..qblocks {
        let mut acc = match it.next() {
            Some(first) => first,
            None => break,
        };
        for _ in 1..chunks {
            if let Some(later) = it.next() {
                for (a, l) in acc.iter_mut().zip(later) {
                    a.merge(l);
                }
            }
        }
        out.extend(acc.into_iter().map(Selection::into_sorted));
    }
    out
}

/// The `k` best codewords per query, best first (see [`crate::top_k`]).
pub(crate) fn search(
    cb: &PreparedCodebook,
    queries: &[f32],
    k: usize,
    metric: Metric,
) -> (Vec<u32>, Vec<f32>) {
    let dim = cb.dim();
    let ranked = if k == 1 {
        search_with(cb, queries, metric, 1, Best1::new)
    } else {
        search_with(cb, queries, metric, k, || BestK {
            k,
            heap: BinaryHeap::with_capacity(k + 1),
        })
    };
    let mut indices = Vec::with_capacity(ranked.len() * k);
    let mut scores = Vec::with_capacity(ranked.len() * k);
    for (q, best) in queries.chunks_exact(dim).zip(ranked) {
        if best.len() < k || best.iter().any(|(s, _)| !s.is_finite()) {
            // Only when f32 scores overflowed (finite inputs beyond ~1e19):
            // answer this query with the exact f64 kernel.
            let (i, s) = crate::reference::search(cb, q, k, metric);
            indices.extend(i);
            scores.extend(s);
            continue;
        }
        let zz: f64 = q.iter().map(|&v| f64::from(v) * f64::from(v)).sum();
        for (s, j) in best {
            indices.push(j);
            scores.push(match metric {
                Metric::SquaredL2 => (zz + f64::from(s)).max(0.0) as f32,
                Metric::InnerProduct => -s,
            });
        }
    }
    (indices, scores)
}

/// Plain SGEMM of all queries against the whole codebook, split over rayon
/// exactly as the fused kernel splits its work, writing the full `T × K`
/// product. This is the ceiling the fused kernel is measured against; it is
/// not part of any search.
///
/// `codebook` is row-major `[k_rows, dim]`, `queries` `[t, dim]`, `out`
/// `[t, k_rows]`; lengths that do not fit are reported as an error.
pub fn sgemm_ceiling(
    codebook: &[f32],
    dim: usize,
    queries: &[f32],
    out: &mut [f32],
) -> crate::Result<()> {
    let k_rows = crate::check_rows("codebook", codebook.len(), dim)?;
    let t = crate::check_rows("queries", queries.len(), dim)?;
    if out.len() != t * k_rows {
        return Err(crate::QuantError::RaggedBuffer {
            what: "output",
            len: out.len(),
            dim: k_rows,
        });
    }
    let all = codebook;
    out.par_chunks_mut(QUERY_BLOCK * k_rows)
        .zip(queries.par_chunks(QUERY_BLOCK * dim))
        .for_each(|(o, q)| {
            let rows = q.len() / dim;
            gemm_tile(q, all, o, rows, dim, k_rows, 1.0);
        });
    Ok(())
}
