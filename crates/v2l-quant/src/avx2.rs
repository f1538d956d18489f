//! The AVX2 + FMA microkernel of the fused search (x86-64 only).
//!
//! One call accumulates a micro-panel of [`MR`] = 6 queries against one
//! panel of 16 codewords over a slice of `kc` elements of the width: 12 ymm
//! accumulators (6 rows × 2 × 8 lanes), one broadcast per query element and
//! two loads per codeword element. The codebook is packed once
//! ([`crate::PreparedCodebook`], `[panel][d][16]`); queries are packed per
//! task (`[micro-panel][d][6]`), so every load is sequential and a `kc`
//! slice of either is contiguous.

use crate::codebook::PANEL;

/// Queries per micro-panel.
pub(crate) const MR: usize = 6;

/// Packs row-major queries `[rows, dim]` into `[ceil(rows/mr)][dim][mr]`
/// (micro-panels of `mr` queries), zero-padding the last micro-panel.
pub(crate) fn pack_queries(q: &[f32], dim: usize, mr: usize) -> Vec<f32> {
    let rows = q.len() / dim;
    let micro = rows.div_ceil(mr);
    let mut out = vec![0.0f32; micro * dim * mr];
    for (r, row) in q.chunks_exact(dim).enumerate() {
        let (m, i) = (r / mr, r % mr);
        let base = m * dim * mr + i;
        for (k, &v) in row.iter().enumerate() {
            out[base + k * mr] = v;
        }
    }
    out
}

/// Inner products of one query `z` with the 16 codewords of one packed
/// panel (`[dim][16]`), by the same fused-multiply-add chain in width order
/// as [`micro`] (so a query scores identically alone or in a micro-panel).
#[inline]
pub(crate) fn gemv(z: &[f32], panel: &[f32]) -> [f32; PANEL] {
    assert!(panel.len() >= z.len() * PANEL);
    let mut out = [0.0f32; PANEL];
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: reached only on a codebook packed for an AVX2 + FMA (or
        // AVX-512) path, which checked the CPU; the assert bounds the reads.
        unsafe { gemv_avx2(z, panel.as_ptr(), &mut out) }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        for (k, &zk) in z.iter().enumerate() {
            for (o, &b) in out.iter_mut().zip(&panel[k * PANEL..(k + 1) * PANEL]) {
                *o = zk.mul_add(b, *o);
            }
        }
    }
    out
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn gemv_avx2(z: &[f32], b: *const f32, out: &mut [f32; PANEL]) {
    use std::arch::x86_64::*;
    // SAFETY (whole body): AVX2 + FMA present; `b` holds z.len()·16 floats.
    unsafe {
        let (mut c0, mut c1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
        let mut pb = b;
        for &zk in z {
            let a = _mm256_set1_ps(zk);
            c0 = _mm256_fmadd_ps(a, _mm256_loadu_ps(pb), c0);
            c1 = _mm256_fmadd_ps(a, _mm256_loadu_ps(pb.add(8)), c1);
            pb = pb.add(PANEL);
        }
        _mm256_storeu_ps(out.as_mut_ptr(), c0);
        _mm256_storeu_ps(out.as_mut_ptr().add(8), c1);
    }
}

/// Accumulates `acc[i·16 + j] (+)= a_i · b_j` over `kc` elements for the 6
/// packed queries in `a` (`[kc][6]`) and the 16 packed codewords in `b`
/// (`[kc][16]`); `init` starts from zero instead of `acc`.
///
/// Safe wrapper: checks the slice lengths, then runs the AVX2 kernel.
/// Callers reach it only on a codebook prepared for
/// [`crate::SearchPath::Avx2`], which checked the CPU.
#[inline]
pub(crate) fn micro(a: &[f32], b: &[f32], kc: usize, acc: &mut [f32; MR * PANEL], init: bool) {
    assert!(a.len() >= kc * MR && b.len() >= kc * PANEL);
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: the codebook is packed (and this function reached) only
        // when the CPU reports AVX2 and FMA; the assert above bounds every
        // read of `a` (kc·6 floats) and `b` (kc·16 floats); `acc` is a
        // fixed-size array.
        unsafe { micro_avx2(a.as_ptr(), b.as_ptr(), kc, acc, init) }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        // Unreachable in practice (nothing is packed off x86-64); a plain
        // loop keeps the function total.
        for i in 0..MR {
            for j in 0..PANEL {
                let mut sum = if init { 0.0 } else { acc[i * PANEL + j] };
                for k in 0..kc {
                    sum += a[k * MR + i] * b[k * PANEL + j];
                }
                acc[i * PANEL + j] = sum;
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn micro_avx2(
    a: *const f32,
    b: *const f32,
    kc: usize,
    acc: &mut [f32; MR * PANEL],
    init: bool,
) {
    use std::arch::x86_64::*;
    // SAFETY (whole body): the caller guarantees AVX2+FMA and that `a` and
    // `b` point to at least kc·6 and kc·16 floats.
    unsafe {
        let o = acc.as_mut_ptr();
        let mut c = [_mm256_setzero_ps(); 2 * MR];
        if !init {
            for (i, v) in c.iter_mut().enumerate() {
                *v = _mm256_loadu_ps(o.add(i * 8));
            }
        }
        let (mut pa, mut pb) = (a, b);
        for _ in 0..kc {
            let b0 = _mm256_loadu_ps(pb);
            let b1 = _mm256_loadu_ps(pb.add(8));
            macro_rules! row {
                ($i:literal) => {
                    let ai = _mm256_broadcast_ss(&*pa.add($i));
                    c[2 * $i] = _mm256_fmadd_ps(ai, b0, c[2 * $i]);
                    c[2 * $i + 1] = _mm256_fmadd_ps(ai, b1, c[2 * $i + 1]);
                };
            }
            unroll!(row, 0, 1, 2, 3, 4, 5);
            pa = pa.add(MR);
            pb = pb.add(PANEL);
        }
        for (i, v) in c.iter().enumerate() {
            _mm256_storeu_ps(o.add(i * 8), *v);
        }
    }
}
