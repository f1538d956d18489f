//! The AVX-512 microkernels of the fused search (x86-64 only).
//!
//! - [`micro_f32`]: 12 queries × 32 codewords (two 16-codeword panels of the
//!   shared packed layout, `[panel][dim][16]`) over a `kc` slice of the
//!   width: 24 zmm accumulators, one broadcast per query element, two loads
//!   per codeword element. Each lane is the same chain of fused
//!   multiply-adds in width order as the AVX2 kernel's, so both give
//!   identical scores.
//! - [`micro_bf16`]: the screening kernel, 12 queries × 32 codewords of the
//!   split layout: `vdpbf16ps` adds two bf16 products per lane per
//!   instruction, twice the f32 rate.
//! - [`gemv_bf16`] and [`rescore`]: one query against one panel, screened
//!   (bf16) and exact (the f32 chain, rebuilt from the split halves).
//!
//! The split layout holds each f32 codebook value as its high 16 bits (`hi`,
//! the value truncated to bf16) and low 16 bits (`lo`), element pairs
//! interleaved for `vdpbf16ps`: `hi[(p·d₂ + k₂)·32 + 2·lane + e]` is element
//! `2·k₂ + e` of codeword `p·16 + lane`, with `d₂ = ⌈d / 2⌉`.

use crate::codebook::PANEL;

/// Queries per micro-panel of the AVX-512 kernels.
pub(crate) const MR: usize = 12;

/// u16 values per split-layout width pair of one panel (16 lanes × 2).
pub(crate) const PAIR: usize = 2 * PANEL;

/// Accumulates `acc0[i·16 + j] (+)= a_i · b0_j` and, with `b1`, the same
/// into `acc1` for a second panel, over `kc` elements for the 12 packed
/// queries in `a` (`[kc][12]`); `init` starts from zero.
///
/// Callers reach it only on a codebook prepared for
/// [`crate::SearchPath::Avx512`], which checked the CPU.
#[inline]
pub(crate) fn micro_f32(
    a: &[f32],
    b0: &[f32],
    b1: Option<&[f32]>,
    kc: usize,
    acc0: &mut [f32; MR * PANEL],
    acc1: &mut [f32; MR * PANEL],
    init: bool,
) {
    assert!(a.len() >= kc * MR && b0.len() >= kc * PANEL);
    assert!(b1.is_none_or(|b| b.len() >= kc * PANEL));
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: a codebook is prepared for this path only when the CPU
        // reports AVX-512F; the asserts bound every read of `a` (kc·12) and
        // of each panel (kc·16); the accumulators are fixed-size arrays.
        unsafe {
            match b1 {
                Some(b1) => micro_f32_2(a.as_ptr(), b0.as_ptr(), b1.as_ptr(), kc, acc0, acc1, init),
                None => micro_f32_1(a.as_ptr(), b0.as_ptr(), kc, acc0, init),
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (a, b0, b1, kc, acc0, acc1, init);
        unreachable_off_x86();
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn unreachable_off_x86() {
    // No codebook is ever prepared for an x86 path elsewhere
    // (`SearchPath::is_available` is false), so this cannot run.
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn micro_f32_2(
    a: *const f32,
    b0: *const f32,
    b1: *const f32,
    kc: usize,
    acc0: &mut [f32; MR * PANEL],
    acc1: &mut [f32; MR * PANEL],
    init: bool,
) {
    use std::arch::x86_64::*;
    // SAFETY (whole body): AVX-512F is present and `a`, `b0`, `b1` point to
    // at least kc·12, kc·16 and kc·16 floats (see `micro_f32`).
    unsafe {
        let (o0, o1) = (acc0.as_mut_ptr(), acc1.as_mut_ptr());
        let mut c0 = [_mm512_setzero_ps(); MR];
        let mut c1 = [_mm512_setzero_ps(); MR];
        if !init {
            for i in 0..MR {
                c0[i] = _mm512_loadu_ps(o0.add(i * PANEL));
                c1[i] = _mm512_loadu_ps(o1.add(i * PANEL));
            }
        }
        let (mut pa, mut p0, mut p1) = (a, b0, b1);
        for _ in 0..kc {
            let x0 = _mm512_loadu_ps(p0);
            let x1 = _mm512_loadu_ps(p1);
            macro_rules! row {
                ($i:literal) => {
                    let ai = _mm512_set1_ps(*pa.add($i));
                    c0[$i] = _mm512_fmadd_ps(ai, x0, c0[$i]);
                    c1[$i] = _mm512_fmadd_ps(ai, x1, c1[$i]);
                };
            }
            row!(0);
            row!(1);
            row!(2);
            row!(3);
            row!(4);
            row!(5);
            row!(6);
            row!(7);
            row!(8);
            row!(9);
            row!(10);
            row!(11);
            pa = pa.add(MR);
            p0 = p0.add(PANEL);
            p1 = p1.add(PANEL);
        }
        for i in 0..MR {
            _mm512_storeu_ps(o0.add(i * PANEL), c0[i]);
            _mm512_storeu_ps(o1.add(i * PANEL), c1[i]);
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn micro_f32_1(
    a: *const f32,
    b0: *const f32,
    kc: usize,
    acc0: &mut [f32; MR * PANEL],
    init: bool,
) {
    use std::arch::x86_64::*;
    // SAFETY (whole body): as `micro_f32_2`, one panel.
    unsafe {
        let o0 = acc0.as_mut_ptr();
        let mut c0 = [_mm512_setzero_ps(); MR];
        if !init {
            for (i, c) in c0.iter_mut().enumerate() {
                *c = _mm512_loadu_ps(o0.add(i * PANEL));
            }
        }
        let (mut pa, mut p0) = (a, b0);
        for _ in 0..kc {
            let x0 = _mm512_loadu_ps(p0);
            for (i, c) in c0.iter_mut().enumerate() {
                *c = _mm512_fmadd_ps(_mm512_set1_ps(*pa.add(i)), x0, *c);
            }
            pa = pa.add(MR);
            p0 = p0.add(PANEL);
        }
        for (i, c) in c0.iter().enumerate() {
            _mm512_storeu_ps(o0.add(i * PANEL), *c);
        }
    }
}

/// `x` rounded to bf16 (nearest, ties to even), as raw bits.
#[inline]
pub(crate) fn bf16_bits(x: f32) -> u16 {
    half::bf16::from_f32(x).to_bits()
}

/// Packs row-major queries `[rows, dim]` into bf16 pairs
/// `[⌈rows/12⌉][⌈dim/2⌉][12]`: each u32 holds elements `2k` (low half) and
/// `2k + 1` (high half) of one query, rounded to nearest; padding is zero.
pub(crate) fn pack_queries_bf16(q: &[f32], dim: usize) -> Vec<u32> {
    let rows = q.len() / dim;
    let d2 = dim.div_ceil(2);
    let mut out = vec![0u32; rows.div_ceil(MR) * d2 * MR];
    for (r, row) in q.chunks_exact(dim).enumerate() {
        let base = (r / MR) * d2 * MR + r % MR;
        for (k2, pair) in row.chunks(2).enumerate() {
            out[base + k2 * MR] = pair_bits(pair);
        }
    }
    out
}

/// One query's bf16 pairs, `[⌈dim/2⌉]`.
pub(crate) fn query_pairs(z: &[f32]) -> Vec<u32> {
    z.chunks(2).map(pair_bits).collect()
}

fn pair_bits(pair: &[f32]) -> u32 {
    let lo = u32::from(bf16_bits(pair[0]));
    let hi = pair.get(1).map_or(0, |&v| u32::from(bf16_bits(v)));
    lo | (hi << 16)
}

/// Accumulates bf16 inner products of the 12 packed query pairs in `a`
/// (`[k2c][12]`) with one or two split-layout panels' `hi` halves
/// (`[k2c][32]` each) into `acc0` / `acc1`; `init` starts from zero.
///
/// Callers reach it only on a codebook prepared for
/// [`crate::SearchPath::Avx512Bf16`], which checked the CPU.
#[inline]
pub(crate) fn micro_bf16(
    a: &[u32],
    h0: &[u16],
    h1: Option<&[u16]>,
    k2c: usize,
    acc0: &mut [f32; MR * PANEL],
    acc1: &mut [f32; MR * PANEL],
    init: bool,
) {
    assert!(a.len() >= k2c * MR && h0.len() >= k2c * PAIR);
    assert!(h1.is_none_or(|h| h.len() >= k2c * PAIR));
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: the path is prepared only when the CPU reports AVX-512F
        // and AVX-512 BF16; the asserts bound every read.
        unsafe {
            micro_bf16_impl(
                a.as_ptr(),
                h0.as_ptr(),
                h1.map(<[u16]>::as_ptr),
                k2c,
                acc0,
                acc1,
                init,
            )
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (a, h0, h1, k2c, acc0, acc1, init);
        unreachable_off_x86();
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn micro_bf16_impl(
    a: *const u32,
    h0: *const u16,
    h1: Option<*const u16>,
    k2c: usize,
    acc0: &mut [f32; MR * PANEL],
    acc1: &mut [f32; MR * PANEL],
    init: bool,
) {
    use std::arch::x86_64::*;
    // SAFETY (whole body): the CPU has AVX-512F + BF16; `a` holds k2c·12
    // u32 and each panel k2c·32 u16 (see `micro_bf16`). `__m512i` and
    // `__m512bh` are both 64-byte vectors, so the transmutes are plain
    // reinterpretations.
    unsafe {
        let (o0, o1) = (acc0.as_mut_ptr(), acc1.as_mut_ptr());
        let mut c0 = [_mm512_setzero_ps(); MR];
        let mut c1 = [_mm512_setzero_ps(); MR];
        if !init {
            for i in 0..MR {
                c0[i] = _mm512_loadu_ps(o0.add(i * PANEL));
                c1[i] = _mm512_loadu_ps(o1.add(i * PANEL));
            }
        }
        let bh = |v: __m512i| std::mem::transmute::<__m512i, __m512bh>(v);
        let mut pa = a;
        match h1 {
            Some(h1) => {
                let (mut p0, mut p1) = (h0, h1);
                for _ in 0..k2c {
                    let x0 = bh(_mm512_loadu_si512(p0.cast()));
                    let x1 = bh(_mm512_loadu_si512(p1.cast()));
                    macro_rules! row {
                        ($i:literal) => {
                            let ai = bh(_mm512_set1_epi32(*pa.add($i) as i32));
                            c0[$i] = _mm512_dpbf16_ps(c0[$i], ai, x0);
                            c1[$i] = _mm512_dpbf16_ps(c1[$i], ai, x1);
                        };
                    }
                    row!(0);
                    row!(1);
                    row!(2);
                    row!(3);
                    row!(4);
                    row!(5);
                    row!(6);
                    row!(7);
                    row!(8);
                    row!(9);
                    row!(10);
                    row!(11);
                    pa = pa.add(MR);
                    p0 = p0.add(PAIR);
                    p1 = p1.add(PAIR);
                }
            }
            None => {
                let mut p0 = h0;
                for _ in 0..k2c {
                    let x0 = bh(_mm512_loadu_si512(p0.cast()));
                    for (i, c) in c0.iter_mut().enumerate() {
                        let ai = bh(_mm512_set1_epi32(*pa.add(i) as i32));
                        *c = _mm512_dpbf16_ps(*c, ai, x0);
                    }
                    pa = pa.add(MR);
                    p0 = p0.add(PAIR);
                }
            }
        }
        for i in 0..MR {
            _mm512_storeu_ps(o0.add(i * PANEL), c0[i]);
            _mm512_storeu_ps(o1.add(i * PANEL), c1[i]);
        }
    }
}

/// The bf16 inner products of one query (`pairs`, `[d₂]`) with the 16
/// codewords of one split-layout panel (`hi`, `[d₂][32]`).
#[inline]
pub(crate) fn gemv_bf16(pairs: &[u32], hi: &[u16]) -> [f32; PANEL] {
    assert!(hi.len() >= pairs.len() * PAIR);
    #[cfg(target_arch = "x86_64")]
    {
        let mut out = [0.0f32; PANEL];
        // SAFETY: the path is prepared only on CPUs with AVX-512F + BF16;
        // the assert bounds the reads of `hi`.
        unsafe { gemv_bf16_impl(pairs, hi.as_ptr(), &mut out) }
        out
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        unreachable_off_x86();
        [0.0f32; PANEL]
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn gemv_bf16_impl(pairs: &[u32], hi: *const u16, out: &mut [f32; PANEL]) {
    use std::arch::x86_64::*;
    // SAFETY (whole body): see `gemv_bf16`; four accumulators (pairs
    // 4i … 4i + 3) shorten the dependency chain, summed at the end.
    unsafe {
        let bh = |v: __m512i| std::mem::transmute::<__m512i, __m512bh>(v);
        let mut acc = [_mm512_setzero_ps(); 4];
        let mut p = hi;
        let mut it = pairs.chunks_exact(4);
        for four in &mut it {
            for (j, a) in acc.iter_mut().enumerate() {
                let x = bh(_mm512_loadu_si512(p.add(j * PAIR).cast()));
                *a = _mm512_dpbf16_ps(*a, bh(_mm512_set1_epi32(four[j] as i32)), x);
            }
            p = p.add(4 * PAIR);
        }
        for (j, &pair) in it.remainder().iter().enumerate() {
            let x = bh(_mm512_loadu_si512(p.add(j * PAIR).cast()));
            acc[j] = _mm512_dpbf16_ps(acc[j], bh(_mm512_set1_epi32(pair as i32)), x);
        }
        let sum = _mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3]));
        _mm512_storeu_ps(out.as_mut_ptr(), sum);
    }
}

/// Exact f32 inner products of query `z` (`[dim]`) with the 16 codewords
/// of one split-layout panel (`hi`, `lo`: `[⌈dim/2⌉][32]`): each value is
/// rebuilt bit-exactly from its halves and accumulated by the same
/// fused-multiply-add chain, in width order, as the f32 microkernels.
#[inline]
pub(crate) fn rescore(z: &[f32], hi: &[u16], lo: &[u16]) -> [f32; PANEL] {
    let d2 = z.len().div_ceil(2);
    assert!(hi.len() >= d2 * PAIR && lo.len() >= d2 * PAIR);
    #[cfg(target_arch = "x86_64")]
    {
        let mut out = [0.0f32; PANEL];
        // SAFETY: the path is prepared only on CPUs with AVX-512F; the
        // assert bounds the reads of both halves.
        unsafe { rescore_impl(z, hi.as_ptr(), lo.as_ptr(), &mut out) }
        out
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        unreachable_off_x86();
        [0.0f32; PANEL]
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn rescore_impl(z: &[f32], hi: *const u16, lo: *const u16, out: &mut [f32; PANEL]) {
    use std::arch::x86_64::*;
    // SAFETY (whole body): see `rescore`. As 32-bit lanes, a pair holds
    // element 2k in its low half and 2k + 1 in its high half, so element
    // 2k's f32 bits are (hi << 16) | (lo & 0xffff) and element 2k + 1's are
    // (hi & 0xffff0000) | (lo >> 16).
    unsafe {
        let low = _mm512_set1_epi32(0xffff);
        let high = _mm512_set1_epi32(0xffff_0000_u32 as i32);
        let mut acc = _mm512_setzero_ps();
        let (mut ph, mut pl) = (hi, lo);
        for pair in z.chunks(2) {
            let h = _mm512_loadu_si512(ph.cast());
            let l = _mm512_loadu_si512(pl.cast());
            let even = _mm512_or_si512(_mm512_slli_epi32::<16>(h), _mm512_and_si512(l, low));
            acc = _mm512_fmadd_ps(_mm512_set1_ps(pair[0]), _mm512_castsi512_ps(even), acc);
            if let Some(&odd_z) = pair.get(1) {
                let odd = _mm512_or_si512(_mm512_and_si512(h, high), _mm512_srli_epi32::<16>(l));
                acc = _mm512_fmadd_ps(_mm512_set1_ps(odd_z), _mm512_castsi512_ps(odd), acc);
            }
            ph = ph.add(PAIR);
            pl = pl.add(PAIR);
        }
        _mm512_storeu_ps(out.as_mut_ptr(), acc);
    }
}
