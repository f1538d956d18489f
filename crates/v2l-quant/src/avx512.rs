//! The AVX-512 microkernels of the fused search (x86-64 only).
//!
//! - [`F32`]: 12 queries × 32 codewords (two 16-codeword panels of the
//!   shared packed layout, `[panel][dim][16]`) over a `kc` slice of the
//!   width: 24 zmm accumulators, one broadcast per query element, two loads
//!   per codeword element. Each lane is the same chain of fused
//!   multiply-adds in width order as the AVX2 kernel's, so both give
//!   identical scores.
//! - [`BF16`]: the screening kernel, 12 queries × 32 codewords of the
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

/// A two-panel microkernel: `(a, b0, b1, depth, acc0, acc1, init)` adds
/// `depth` steps of the 12 packed queries in `a` against panels `b0` and
/// `b1` into `acc0` and `acc1` (zeroed first when `init`).
type Kernel2<A, B> = unsafe fn(
    *const A,
    *const B,
    *const B,
    usize,
    &mut [f32; MR * PANEL],
    &mut [f32; MR * PANEL],
    bool,
);

/// One of this module's 12 × 32 microkernels, with the panel width it reads
/// per step.
pub(crate) struct Micro<A: 'static, B: 'static> {
    kernel: Kernel2<A, B>,
    /// Values of one panel per step of the depth.
    b_step: usize,
}

/// The f32 kernel: `acc (+)= a_i · b_j` over `depth` elements of the width,
/// by fused multiply-adds in width order (panels `[depth][16]`). For
/// [`crate::SearchPath::Avx512`].
pub(crate) const F32: Micro<f32, f32> = Micro {
    kernel: micro_f32_2,
    b_step: PANEL,
};

/// The screening kernel: bf16 inner products of query pairs (`[depth][12]`
/// u32) with split panels' high halves (`[depth][32]` u16) by `vdpbf16ps`.
/// For [`crate::SearchPath::Avx512Bf16`].
pub(crate) const BF16: Micro<u32, u16> = Micro {
    kernel: micro_bf16_impl,
    b_step: PAIR,
};

impl<A, B> Micro<A, B> {
    /// Runs the kernel on `depth` steps of `a` against panels `b[0]`,
    /// `b[1]` into `acc[0]`, `acc[1]` (callers with one panel left pass it
    /// twice and ignore the second block); `init` starts from zero.
    ///
    /// Callers reach it only on a codebook prepared for the kernel's path,
    /// which checked that the CPU has the instructions it enables.
    #[inline]
    pub(crate) fn run(
        &self,
        a: &[A],
        b: [&[B]; 2],
        depth: usize,
        acc: [&mut [f32; MR * PANEL]; 2],
        init: bool,
    ) {
        let step = self.b_step;
        assert!(a.len() >= depth * MR && b[0].len() >= depth * step && b[1].len() >= depth * step);
        let [acc0, acc1] = acc;
        // SAFETY: the path was checked against the CPU's features when the
        // codebook was prepared; the assert bounds every read of `a` and of
        // both panels; the accumulators are fixed-size arrays.
        unsafe {
            (self.kernel)(
                a.as_ptr(),
                b[0].as_ptr(),
                b[1].as_ptr(),
                depth,
                acc0,
                acc1,
                init,
            )
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn unreachable_off_x86() {
    // No codebook is ever prepared for an x86 path elsewhere
    // (`SearchPath::is_available` is false), so this cannot run.
}

/// Defines a two-panel microkernel ([`Kernel2`]) on the skeleton the f32
/// and bf16 kernels share: 24 zmm accumulators (12 queries × two panels),
/// per step one load per panel, one broadcast per query, two
/// multiply-accumulates per query. `$load(p)` reads one panel step,
/// `$bcast(p)` broadcasts one query value, `$madd(c, a, x)` accumulates.
/// Off x86-64 it defines an unreachable stand-in.
macro_rules! two_panel_kernel {
    (
        $(#[$doc:meta])*
        $name:ident, $features:literal, $a:ty, $b:ty, $step:expr,
        load: |$lp:ident| $load:expr,
        bcast: |$bp:ident| $bcast:expr,
        madd: |$c:ident, $ai:ident, $x:ident| $madd:expr $(,)?
    ) => {
        $(#[$doc])*
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = $features)]
        unsafe fn $name(
            a: *const $a,
            b0: *const $b,
            b1: *const $b,
            depth: usize,
            acc0: &mut [f32; MR * PANEL],
            acc1: &mut [f32; MR * PANEL],
            init: bool,
        ) {
            #[allow(unused_imports)]
            use std::arch::x86_64::*;
            // SAFETY (whole body): the CPU has `$features` (the path was
            // checked when the codebook was prepared), `a` holds depth·12
            // values and each panel depth·$step (`Micro::run` asserts it).
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
                for _ in 0..depth {
                    let x0 = {
                        let $lp = p0;
                        $load
                    };
                    let x1 = {
                        let $lp = p1;
                        $load
                    };
                    macro_rules! row {
                        ($i:literal) => {
                            let $ai = {
                                let $bp = pa.add($i);
                                $bcast
                            };
                            c0[$i] = {
                                let ($c, $x) = (c0[$i], x0);
                                $madd
                            };
                            c1[$i] = {
                                let ($c, $x) = (c1[$i], x1);
                                $madd
                            };
                        };
                    }
                    unroll!(row, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11);
                    pa = pa.add(MR);
                    p0 = p0.add($step);
                    p1 = p1.add($step);
                }
                for i in 0..MR {
                    _mm512_storeu_ps(o0.add(i * PANEL), c0[i]);
                    _mm512_storeu_ps(o1.add(i * PANEL), c1[i]);
                }
            }
        }

        #[cfg(not(target_arch = "x86_64"))]
        unsafe fn $name(
            _: *const $a,
            _: *const $b,
            _: *const $b,
            _: usize,
            _: &mut [f32; MR * PANEL],
            _: &mut [f32; MR * PANEL],
            _: bool,
        ) {
            unreachable_off_x86();
        }
    };
}

two_panel_kernel!(
    /// f32: `c ← fma(a_i, x_j, c)` per lane.
    micro_f32_2, "avx512f", f32, f32, PANEL,
    load: |p| _mm512_loadu_ps(p),
    bcast: |p| _mm512_set1_ps(*p),
    madd: |c, a, x| _mm512_fmadd_ps(a, x, c),
);

two_panel_kernel!(
    /// bf16: `c ← c + a₀x₀ + a₁x₁` per lane (`vdpbf16ps`); `__m512i` and
    /// `__m512bh` are both 64-byte vectors, so the transmutes are plain
    /// reinterpretations.
    micro_bf16_impl, "avx512f,avx512bf16", u32, u16, PAIR,
    load: |p| std::mem::transmute::<__m512i, __m512bh>(_mm512_loadu_si512(p.cast())),
    bcast: |p| std::mem::transmute::<__m512i, __m512bh>(_mm512_set1_epi32(*p as i32)),
    madd: |c, a, x| _mm512_dpbf16_ps(c, a, x),
);

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
