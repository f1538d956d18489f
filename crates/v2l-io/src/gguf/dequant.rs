//! Dequantisation of ggml tensor data to `f32`.
//!
//! Each kernel reproduces ggml's reference `dequantize_row_*` arithmetic
//! step for step in `f32` (no fused multiply-add), so results are
//! bit-identical to ggml and to gguf-py's `quants.dequantize`. Block layouts
//! (all little-endian; `d`, `m`, `dmin` are f16):
//!
//! | type | bytes | layout | element `i` |
//! |---|---|---|---|
//! | Q8_0 | 34 | `d`, 32 × i8 `q` | `q[i]·d` |
//! | Q4_0 | 18 | `d`, 16 bytes | low nibble of byte `i` for `i < 16`, high nibble of byte `i − 16` after; `(q − 8)·d` |
//! | Q4_1 | 20 | `d`, `m`, 16 bytes | nibbles as Q4_0; `q·d + m` |
//! | Q5_0 | 22 | `d`, u32 `qh`, 16 bytes | nibble as Q4_0 plus bit `i` of `qh` as bit 4; `(q − 16)·d` |
//! | Q5_1 | 24 | `d`, `m`, u32 `qh`, 16 bytes | as Q5_0; `q·d + m` |
//! | Q2_K…Q6_K | 84–210 | super-blocks of 256 with 6-/4-/8-bit sub-block scales | see each kernel |

use half::f16;
use rayon::prelude::*;

use super::{GgmlType, GgufError};

/// Tensors with at least this many elements are dequantised on the rayon pool.
const PARALLEL_MIN_ELEMENTS: usize = 1 << 16;
/// Elements per rayon task.
const TASK_ELEMENTS: usize = 1 << 14;

/// Dequantises `data`, the raw bytes of `out.len()` elements of type `ty`
/// laid out as in a GGUF file, into `out`.
///
/// Large buffers are split across the rayon thread pool; the result does not
/// depend on the number of threads.
///
/// # Errors
/// [`GgufError::UnsupportedType`] when `ty` is not in
/// [`GgmlType::DEQUANTIZABLE`]; [`GgufError::SizeMismatch`] when `out.len()`
/// is not a whole number of blocks or `data.len()` is not the size of that
/// many blocks.
///
/// ```
/// use v2l_io::gguf::{dequantize, GgmlType};
/// // One Q8_0 block: f16 scale 0.5 (0x3800), then 32 signed bytes.
/// let mut block = vec![0x00, 0x38];
/// block.extend((0..32).map(|i| (i as i8 - 16) as u8));
/// let mut out = vec![0.0f32; 32];
/// dequantize(GgmlType::Q8_0, &block, &mut out)?;
/// assert_eq!(out[0], -8.0);
/// assert_eq!(out[31], 7.5);
/// # Ok::<(), v2l_io::gguf::GgufError>(())
/// ```
pub fn dequantize(ty: GgmlType, data: &[u8], out: &mut [f32]) -> Result<(), GgufError> {
    if !ty.can_dequantize() {
        return Err(GgufError::UnsupportedType {
            tensor: None,
            ggml_type: ty,
        });
    }
    check_sizes(ty, data.len(), out.len())?;
    match ty {
        GgmlType::F32 => run::<4, 1, _>(data, out, |b, o| o[0] = f32::from_le_bytes(*b)),
        GgmlType::F16 => run::<2, 1, _>(data, out, |b, o| o[0] = f16::from_le_bytes(*b).to_f32()),
        GgmlType::BF16 => run::<2, 1, _>(data, out, |b, o| {
            o[0] = f32::from_bits(u32::from(u16::from_le_bytes(*b)) << 16);
        }),
        GgmlType::F64 => run::<8, 1, _>(data, out, |b, o| o[0] = f64::from_le_bytes(*b) as f32),
        GgmlType::I8 => run::<1, 1, _>(data, out, |b, o| o[0] = f32::from(b[0] as i8)),
        GgmlType::I16 => run::<2, 1, _>(data, out, |b, o| o[0] = f32::from(i16::from_le_bytes(*b))),
        GgmlType::I32 => run::<4, 1, _>(data, out, |b, o| o[0] = i32::from_le_bytes(*b) as f32),
        GgmlType::I64 => run::<8, 1, _>(data, out, |b, o| o[0] = i64::from_le_bytes(*b) as f32),
        GgmlType::Q8_0 => run::<34, 32, _>(data, out, q8_0),
        GgmlType::Q4_0 => run::<18, 32, _>(data, out, q4_0),
        GgmlType::Q4_1 => run::<20, 32, _>(data, out, q4_1),
        GgmlType::Q5_0 => run::<22, 32, _>(data, out, q5_0),
        GgmlType::Q5_1 => run::<24, 32, _>(data, out, q5_1),
        GgmlType::Q2_K => run::<84, 256, _>(data, out, q2_k),
        GgmlType::Q3_K => run::<110, 256, _>(data, out, q3_k),
        GgmlType::Q4_K => run::<144, 256, _>(data, out, q4_k),
        GgmlType::Q5_K => run::<176, 256, _>(data, out, q5_k),
        GgmlType::Q6_K => run::<210, 256, _>(data, out, q6_k),
        other => {
            return Err(GgufError::UnsupportedType {
                tensor: None,
                ggml_type: other,
            })
        }
    }
    Ok(())
}

fn check_sizes(ty: GgmlType, bytes: usize, elements: usize) -> Result<(), GgufError> {
    let mismatch = |reason: String| GgufError::SizeMismatch {
        ggml_type: ty,
        bytes,
        elements,
        reason,
    };
    let (Some(block), Some(size)) = (ty.block_size(), ty.type_size()) else {
        return Err(mismatch("the type was removed from ggml".into()));
    };
    let elements64 = u64::try_from(elements).map_err(|_| mismatch("too many elements".into()))?;
    if !elements64.is_multiple_of(block) {
        return Err(mismatch(format!(
            "{elements} is not a multiple of the block size {block}"
        )));
    }
    let expected = ty
        .bytes_for(elements64)
        .ok_or_else(|| mismatch("size overflows u64".into()))?;
    if u64::try_from(bytes).ok() != Some(expected) {
        return Err(mismatch(format!(
            "{} blocks of {size} bytes take {expected} bytes",
            elements64 / block
        )));
    }
    Ok(())
}

/// Applies `kernel` to every block; sizes were checked by the caller, so the
/// remainders of `as_chunks` are empty.
fn run<const TS: usize, const BS: usize, K>(data: &[u8], out: &mut [f32], kernel: K)
where
    K: Fn(&[u8; TS], &mut [f32; BS]) + Sync + Send + Copy,
{
    let (blocks, _) = data.as_chunks::<TS>();
    let (outs, _) = out.as_chunks_mut::<BS>();
    let serial = |b: &[[u8; TS]], o: &mut [[f32; BS]]| {
        for (b, o) in b.iter().zip(o.iter_mut()) {
            kernel(b, o);
        }
    };
    if outs.len() * BS >= PARALLEL_MIN_ELEMENTS {
        let per_task = (TASK_ELEMENTS / BS).max(1);
        blocks
            .par_chunks(per_task)
            .zip(outs.par_chunks_mut(per_task))
            .for_each(|(b, o)| serial(b, o));
    } else {
        serial(blocks, outs);
    }
}

#[inline(always)]
fn half_at(lo: u8, hi: u8) -> f32 {
    f16::from_le_bytes([lo, hi]).to_f32()
}

fn q8_0(b: &[u8; 34], o: &mut [f32; 32]) {
    let d = half_at(b[0], b[1]);
    for (y, &q) in o.iter_mut().zip(&b[2..]) {
        *y = f32::from(q as i8) * d;
    }
}

fn q4_0(b: &[u8; 18], o: &mut [f32; 32]) {
    let d = half_at(b[0], b[1]);
    let (lo, hi) = o.split_at_mut(16);
    for ((&q, y0), y1) in b[2..].iter().zip(lo).zip(hi) {
        *y0 = f32::from(i16::from(q & 0x0F) - 8) * d;
        *y1 = f32::from(i16::from(q >> 4) - 8) * d;
    }
}

fn q4_1(b: &[u8; 20], o: &mut [f32; 32]) {
    let d = half_at(b[0], b[1]);
    let m = half_at(b[2], b[3]);
    let (lo, hi) = o.split_at_mut(16);
    for ((&q, y0), y1) in b[4..].iter().zip(lo).zip(hi) {
        *y0 = f32::from(q & 0x0F) * d + m;
        *y1 = f32::from(q >> 4) * d + m;
    }
}

/// The 5-bit values of a Q5_0/Q5_1 block: nibbles plus one high bit each.
#[inline(always)]
fn q5_values(qh: [u8; 4], qs: &[u8]) -> [u8; 32] {
    let qh = u32::from_le_bytes(qh);
    let mut q = [0u8; 32];
    for (j, &byte) in qs.iter().take(16).enumerate() {
        let h0 = ((qh >> j) & 1) as u8;
        let h1 = ((qh >> (j + 16)) & 1) as u8;
        q[j] = (byte & 0x0F) | (h0 << 4);
        q[j + 16] = (byte >> 4) | (h1 << 4);
    }
    q
}

fn q5_0(b: &[u8; 22], o: &mut [f32; 32]) {
    let d = half_at(b[0], b[1]);
    let q = q5_values([b[2], b[3], b[4], b[5]], &b[6..]);
    for (y, &q) in o.iter_mut().zip(&q) {
        *y = f32::from(i16::from(q) - 16) * d;
    }
}

fn q5_1(b: &[u8; 24], o: &mut [f32; 32]) {
    let d = half_at(b[0], b[1]);
    let m = half_at(b[2], b[3]);
    let q = q5_values([b[4], b[5], b[6], b[7]], &b[8..]);
    for (y, &q) in o.iter_mut().zip(&q) {
        *y = f32::from(q) * d + m;
    }
}

/// Q2_K: 16 bytes of 4-bit scale/min pairs, 64 bytes of 2-bit values, `d`,
/// `dmin`. Element `e` (in 0..256) takes 2 bits from byte
/// `32·(e / 128) + e % 32` at shift `2·((e % 128) / 32)`, and is
/// `(d·sc)·q − dmin·mn` with `sc`, `mn` the nibbles of scale byte `e / 16`.
fn q2_k(b: &[u8; 84], o: &mut [f32; 256]) {
    let (scales, rest) = b.split_at(16);
    let qs = &rest[..64];
    let d = half_at(b[80], b[81]);
    let dmin = half_at(b[82], b[83]);
    for (e, y) in o.iter_mut().enumerate() {
        let q = (qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3;
        let sc = scales[e / 16];
        let dl = d * f32::from(sc & 0x0F);
        let ml = dmin * f32::from(sc >> 4);
        *y = dl * f32::from(q) - ml;
    }
}

/// Q3_K: 32 bytes of high bits, 64 bytes of 2-bit values, 12 bytes of 6-bit
/// scales, `d`. Element `e`: low 2 bits as Q2_K, high bit `e / 32` of byte
/// `e % 32` of the mask (a clear bit subtracts 4); scale `j = e / 16` takes
/// its low nibble from byte `j % 8` (shift `4·(j / 8)`) and its top 2 bits
/// from byte `8 + j % 4` (shift `2·(j / 4)`), minus 32.
fn q3_k(b: &[u8; 110], o: &mut [f32; 256]) {
    let hmask = &b[0..32];
    let qs = &b[32..96];
    let sc = &b[96..108];
    let d = half_at(b[108], b[109]);
    let mut dl = [0f32; 16];
    for (j, dl) in dl.iter_mut().enumerate() {
        let low = (sc[j % 8] >> (4 * (j / 8))) & 0x0F;
        let high = (sc[8 + j % 4] >> (2 * (j / 4))) & 0x03;
        let scale = i16::from(low | (high << 4)) - 32;
        *dl = d * f32::from(scale);
    }
    for (e, y) in o.iter_mut().enumerate() {
        let low = i16::from((qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3);
        let high_set = (hmask[e % 32] >> (e / 32)) & 1 == 1;
        let q = if high_set { low } else { low - 4 };
        *y = dl[e / 16] * f32::from(q);
    }
}

/// The 6-bit scale and min of sub-block `j` (0..8) of a Q4_K/Q5_K block:
/// sub-blocks 0–3 use the low 6 bits of bytes `j` and `j + 4`; sub-blocks
/// 4–7 take their low nibbles from byte `j + 4` and their top 2 bits from the
/// top bits of bytes `j − 4` and `j`.
#[inline(always)]
fn k_scale_min(s: &[u8], j: usize) -> (u8, u8) {
    if j < 4 {
        (s[j] & 63, s[j + 4] & 63)
    } else {
        (
            (s[j + 4] & 0x0F) | ((s[j - 4] >> 6) << 4),
            (s[j + 4] >> 4) | ((s[j] >> 6) << 4),
        )
    }
}

/// Q4_K: `d`, `dmin`, 12 bytes of scales, 128 bytes of nibbles. Sub-block `j`
/// (32 elements) reads the low (even `j`) or high (odd `j`) nibbles of bytes
/// `32·(j / 2)..+32`; element = `(d·sc)·q − dmin·mn`.
fn q4_k(b: &[u8; 144], o: &mut [f32; 256]) {
    k_quant_4_5(&b[..16], &b[16..144], None, o);
}

/// Q5_K: as Q4_K plus 32 bytes of high bits: element `l` of sub-block `j`
/// gets bit `j` of byte `l` as bit 4.
fn q5_k(b: &[u8; 176], o: &mut [f32; 256]) {
    k_quant_4_5(&b[..16], &b[48..176], Some(&b[16..48]), o);
}

/// The shared body of Q4_K and Q5_K: `head` is `d`, `dmin` and the 12
/// scale bytes, `qs` the nibbles, `qh` Q5_K's high bits.
fn k_quant_4_5(head: &[u8], qs: &[u8], qh: Option<&[u8]>, o: &mut [f32; 256]) {
    let d = half_at(head[0], head[1]);
    let dmin = half_at(head[2], head[3]);
    let scales = &head[4..16];
    for (j, ys) in o.chunks_exact_mut(32).enumerate() {
        let (sc, mn) = k_scale_min(scales, j);
        let d1 = d * f32::from(sc);
        let m1 = dmin * f32::from(mn);
        let shift = 4 * (j % 2);
        let src = &qs[32 * (j / 2)..32 * (j / 2) + 32];
        for (l, (y, &q)) in ys.iter_mut().zip(src).enumerate() {
            let high = qh.map_or(0, |h| ((h[l] >> j) & 1) << 4);
            *y = d1 * f32::from(((q >> shift) & 0x0F) | high) - m1;
        }
    }
}

/// Q6_K: 128 bytes of low nibbles, 64 bytes of 2-bit highs, 16 signed 8-bit
/// scales, `d`. In each half `h` (128 elements), element `r` takes the
/// low/high nibble (`r / 64`) of byte `64·h + r % 64` and 2 bits (shift
/// `2·(r / 32)`) of byte `32·h + r % 32`; value `(d·sc)·(q − 32)` with scale
/// `e / 16`.
fn q6_k(b: &[u8; 210], o: &mut [f32; 256]) {
    let ql = &b[0..128];
    let qh = &b[128..192];
    let sc = &b[192..208];
    let d = half_at(b[208], b[209]);
    let mut ds = [0f32; 16];
    for (ds, &s) in ds.iter_mut().zip(sc) {
        *ds = d * f32::from(s as i8);
    }
    for (e, y) in o.iter_mut().enumerate() {
        let (h, r) = (e / 128, e % 128);
        let low = (ql[64 * h + r % 64] >> (4 * (r / 64))) & 0x0F;
        let high = (qh[32 * h + r % 32] >> (2 * (r / 32))) & 0x03;
        let q = i16::from(low | (high << 4)) - 32;
        *y = ds[e / 16] * f32::from(q);
    }
}
