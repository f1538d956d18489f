//! Evaluation preprocessing of the V2L tokenizer, bit-exact with the
//! reference pipeline.
//!
//! The reference (`zh460045050/V2L-Tokenizer`, `eval_reconstruction.py`)
//! decodes an image with PIL, converts it to 8-bit RGB and then runs
//! `albumentations.SmallestMaxSize(max_size=N)` (OpenCV `cv2.resize` with
//! `INTER_LINEAR` on the `uint8` HxWx3 array), `albumentations.CenterCrop(N, N)`
//! and `(image / 127.5 - 1.0).astype(np.float32)`, transposed to CHW.
//!
//! This module reproduces each step without OpenCV:
//!
//! - [`smallest_max_size`]: the output shape of `SmallestMaxSize`.
//! - [`resize_linear_cv`]: OpenCV's `INTER_LINEAR` resize of 8-bit images,
//!   including its fixed-point arithmetic and its switch to the 2x2 box
//!   average for exact halving in both axes.
//! - [`center_crop`]: the crop window of `CenterCrop` (the extra pixel of an
//!   odd margin goes to the bottom / right side).
//! - [`TokenizerPreprocess`]: the whole chain, as `u8` RGB or as CHW `f32`.
//!
//! The results were checked to be identical, value for value, to
//! opencv-python-headless 4.10.0.84 and 5.0.0.93 with albumentations 2.0.8
//! on x86-64 (see `scripts/gen_model_preprocess_fixtures.py`).

use image::{DynamicImage, RgbImage};
use thiserror::Error;

/// Fixed-point precision of OpenCV's linear interpolation weights: a weight
/// `w` in `[0, 1]` is stored as `round(w * 2^11)`.
const COEF_BITS: u32 = 11;

/// `1.0` in the fixed-point weight format (`2^COEF_BITS`).
const COEF_ONE: i32 = 1 << COEF_BITS;

/// Channels of an [`RgbImage`] pixel.
const CHANNELS: usize = 3;

/// Why an image could not be preprocessed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PreprocessError {
    /// The input image has no pixels (a zero width or height).
    #[error("the input image is empty ({width}x{height} pixels, width x height)")]
    EmptyImage {
        /// Width of the input, in pixels.
        width: u32,
        /// Height of the input, in pixels.
        height: u32,
    },
    /// A requested output or crop size has a zero side.
    #[error("the requested size {width}x{height} (width x height) has a zero side")]
    ZeroSize {
        /// Requested width, in pixels.
        width: u32,
        /// Requested height, in pixels.
        height: u32,
    },
    /// The crop window is larger than the image in at least one axis.
    #[error(
        "cannot crop {crop_width}x{crop_height} (width x height) out of a \
         {width}x{height} image"
    )]
    CropTooLarge {
        /// Requested crop width.
        crop_width: u32,
        /// Requested crop height.
        crop_height: u32,
        /// Width of the image.
        width: u32,
        /// Height of the image.
        height: u32,
    },
}

/// Output `(height, width)` of albumentations' `SmallestMaxSize(max_size)`
/// for an input of `h` rows and `w` columns.
///
/// The scale is `max_size / min(h, w)` in `f64`; each side becomes
/// `max(1, round(side * scale))` with ties rounded to even (Python's
/// `round`). The shorter side therefore becomes exactly `max_size` (for
/// `max_size >= 1`) and the longer side is never shorter than it.
///
/// albumentations 2.x computes it this way; 0.4.x to 1.x round the same way
/// (their `py3round` also breaks ties to even) but lack the lower bound of 1,
/// which only matters for `max_size == 0`.
///
/// A degenerate input (`h == 0` or `w == 0`) has no scale and is returned
/// unchanged; [`TokenizerPreprocess`] rejects such images before this point.
#[must_use]
pub fn smallest_max_size(h: u32, w: u32, max_size: u32) -> (u32, u32) {
    let shorter = h.min(w);
    if shorter == 0 {
        return (h, w);
    }
    let scale = f64::from(max_size) / f64::from(shorter);
    let side = |d: u32| -> u32 {
        let v = (f64::from(d) * scale).round_ties_even();
        // `as` saturates at u32::MAX; the floor of 1 follows albumentations 2.x.
        (v as u32).max(1)
    };
    (side(h), side(w))
}

/// Source positions and fixed-point weights of one output coordinate.
#[derive(Debug, Clone, Copy)]
struct Tap {
    /// First source index (already clamped into the image where OpenCV clamps).
    index: i64,
    /// Weight of `index`, in units of `1 / COEF_ONE`.
    w0: i32,
    /// Weight of `index + 1`, in units of `1 / COEF_ONE`.
    w1: i32,
}

/// OpenCV's `saturate_cast<short>(float)`: round half to even, then clamp.
fn fixed_weight(w: f32) -> i32 {
    let v = (w * COEF_ONE as f32).round_ties_even();
    v.clamp(f32::from(i16::MIN), f32::from(i16::MAX)) as i32
}

/// The sampling position of output `d` when `src` samples are resized to
/// `dst`: centre-aligned (`(d + 0.5) * scale - 0.5`), evaluated in `f64` and
/// rounded to `f32` as OpenCV does, split into an integer floor and a
/// fraction in `[0, 1)`.
fn source_position(d: u32, scale: f64) -> (i64, f32) {
    let f = ((f64::from(d) + 0.5) * scale - 0.5) as f32;
    let floor = f.floor();
    let index = floor as i64;
    (index, f - index as f32)
}

/// `dst / src` inverted the way OpenCV derives the sampling step: the
/// destination-over-source ratio first, then its reciprocal (this can differ
/// from `src / dst` in the last bit).
fn sampling_scale(src: u32, dst: u32) -> f64 {
    1.0 / (f64::from(dst) / f64::from(src))
}

/// Horizontal taps: the position is clamped into the image at both borders
/// (weight moved entirely onto the border pixel).
fn horizontal_taps(src: u32, dst: u32) -> Vec<Tap> {
    let scale = sampling_scale(src, dst);
    let last = i64::from(src) - 1;
    (0..dst)
        .map(|d| {
            let (mut index, mut frac) = source_position(d, scale);
            if index < 0 {
                index = 0;
                frac = 0.0;
            }
            if index >= last {
                // Also the case for every output when the source is one pixel
                // wide: only one source column exists, taken at full weight.
                return Tap {
                    index: last,
                    w0: COEF_ONE,
                    w1: 0,
                };
            }
            Tap {
                index,
                w0: fixed_weight(1.0 - frac),
                w1: fixed_weight(frac),
            }
        })
        .collect()
}

/// Vertical taps: the weights come from the unclamped position; the two
/// source rows are clamped into the image when they are read.
fn vertical_taps(src: u32, dst: u32) -> Vec<Tap> {
    let scale = sampling_scale(src, dst);
    (0..dst)
        .map(|d| {
            let (index, frac) = source_position(d, scale);
            Tap {
                index,
                w0: fixed_weight(1.0 - frac),
                w1: fixed_weight(frac),
            }
        })
        .collect()
}

/// Horizontal pass over one source row: interleaved RGB values scaled by
/// `COEF_ONE` (no rounding, exact in `i32`).
fn resize_row(src_row: &[u8], taps: &[Tap], out: &mut [i32]) {
    for (tap, px) in taps.iter().zip(out.chunks_exact_mut(CHANNELS)) {
        let base = usize::try_from(tap.index).unwrap_or(0) * CHANNELS;
        for (c, v) in px.iter_mut().enumerate() {
            let a = i32::from(src_row.get(base + c).copied().unwrap_or(0));
            *v = if tap.w1 == 0 {
                a * tap.w0
            } else {
                let b = i32::from(src_row.get(base + CHANNELS + c).copied().unwrap_or(0));
                a * tap.w0 + b * tap.w1
            };
        }
    }
}

/// Vertical blend of two horizontally resized values, rounded the way
/// OpenCV's vectorised 8-bit kernel rounds (which the library also uses for
/// the last, partial vector): each operand is reduced by 4 bits, multiplied
/// by its 11-bit weight keeping the high 16 bits (floor), and the sum is
/// rounded by its last 2 bits; 22 fractional bits in all.
fn blend(s0: i32, s1: i32, w0: i32, w1: i32) -> u8 {
    let t0 = ((s0 >> 4) * w0) >> 16;
    let t1 = ((s1 >> 4) * w1) >> 16;
    ((t0 + t1 + 2) >> 2).clamp(0, 255) as u8
}

/// Exact halving in both axes: OpenCV replaces `INTER_LINEAR` by its fast
/// area path, i.e. the rounded mean of each 2x2 block.
fn halve(image: &RgbImage, width: u32, height: u32) -> RgbImage {
    let mut out = RgbImage::new(width, height);
    let src = image.as_raw();
    let stride = image.width() as usize * CHANNELS;
    let w = width as usize;
    for (y, row) in out.chunks_exact_mut(w * CHANNELS).enumerate() {
        let r0 = 2 * y * stride;
        let r1 = r0 + stride;
        for (i, v) in row.iter_mut().enumerate() {
            let x = (i / CHANNELS) * 2 * CHANNELS + i % CHANNELS;
            let at = |k: usize| u32::from(src.get(k).copied().unwrap_or(0));
            let sum = at(r0 + x) + at(r0 + x + CHANNELS) + at(r1 + x) + at(r1 + x + CHANNELS);
            *v = ((sum + 2) >> 2) as u8;
        }
    }
    out
}

/// Resizes an 8-bit RGB image to `width` x `height` exactly as OpenCV's
/// `cv2.resize(img, (width, height), interpolation=cv2.INTER_LINEAR)` does
/// on a `uint8` HxWx3 array.
///
/// Semantics (no antialiasing, so downscaling only ever reads two source
/// pixels per axis):
///
/// - Same size: a copy.
/// - Source exactly twice the target in both axes: each output is
///   `(a + b + c + d + 2) >> 2` over its 2x2 source block (OpenCV's switch to
///   `INTER_AREA` for this case).
/// - Otherwise separable bilinear sampling at `(d + 0.5) * src / dst - 0.5`
///   (step computed as `1 / (dst / src)` in `f64`, positions rounded to
///   `f32`), weights rounded to 11 fractional bits, borders replicated. The
///   horizontal pass is exact in integers; the vertical pass rounds as
///   described on OpenCV's 8-bit vector kernel (see the crate's tests).
///
/// Degenerate requests do not panic: a zero `width` or `height` gives an
/// empty image, and an empty source gives a black image of the requested
/// size. [`TokenizerPreprocess`] reports both as errors instead.
#[must_use]
pub fn resize_linear_cv(image: &RgbImage, width: u32, height: u32) -> RgbImage {
    let (src_w, src_h) = image.dimensions();
    if width == 0 || height == 0 || src_w == 0 || src_h == 0 {
        return RgbImage::new(width, height);
    }
    if (src_w, src_h) == (width, height) {
        return image.clone();
    }
    if u64::from(src_w) == 2 * u64::from(width) && u64::from(src_h) == 2 * u64::from(height) {
        return halve(image, width, height);
    }

    let htaps = horizontal_taps(src_w, width);
    let vtaps = vertical_taps(src_h, height);
    let src = image.as_raw();
    let src_stride = src_w as usize * CHANNELS;
    let dst_stride = width as usize * CHANNELS;
    let last_row = i64::from(src_h) - 1;

    // Two cached horizontally resized rows, keyed by source row index.
    let mut rows: [(i64, Vec<i32>); 2] = [(-1, vec![0; dst_stride]), (-1, vec![0; dst_stride])];
    let fill = |slot: &mut (i64, Vec<i32>), y: i64| {
        if slot.0 != y {
            let start = usize::try_from(y).unwrap_or(0) * src_stride;
            let row = src.get(start..start + src_stride).unwrap_or(&[]);
            resize_row(row, &htaps, &mut slot.1);
            slot.0 = y;
        }
    };

    let mut out = RgbImage::new(width, height);
    for (tap, dst_row) in vtaps.iter().zip(out.chunks_exact_mut(dst_stride)) {
        let y0 = tap.index.clamp(0, last_row);
        let y1 = (tap.index + 1).clamp(0, last_row);
        // Keep slot 0 for y0 and slot 1 for y1, reusing whatever matches.
        if rows[0].0 != y0 && rows[1].0 == y0 {
            rows.swap(0, 1);
        }
        fill(&mut rows[0], y0);
        if y1 == y0 {
            for (dst, (a, b)) in dst_row
                .iter_mut()
                .zip(rows[0].1.iter().zip(rows[0].1.iter()))
            {
                *dst = blend(*a, *b, tap.w0, tap.w1);
            }
            continue;
        }
        fill(&mut rows[1], y1);
        for (dst, (a, b)) in dst_row
            .iter_mut()
            .zip(rows[0].1.iter().zip(rows[1].1.iter()))
        {
            *dst = blend(*a, *b, tap.w0, tap.w1);
        }
    }
    out
}

/// Cuts a `height` x `width` window out of the middle of `image`, as
/// albumentations' `CenterCrop(height, width)` does.
///
/// The window starts at `((H - height) / 2, (W - width) / 2)` rounded down,
/// so for an odd margin the extra pixel stays on the bottom / right side.
///
/// # Errors
///
/// [`PreprocessError::ZeroSize`] for a zero `height` or `width`, and
/// [`PreprocessError::CropTooLarge`] when the window does not fit (the
/// reference raises `CropSizeError` there; it does not pad by default).
pub fn center_crop(image: &RgbImage, height: u32, width: u32) -> Result<RgbImage, PreprocessError> {
    if height == 0 || width == 0 {
        return Err(PreprocessError::ZeroSize { width, height });
    }
    let (w, h) = image.dimensions();
    if height > h || width > w {
        return Err(PreprocessError::CropTooLarge {
            crop_width: width,
            crop_height: height,
            width: w,
            height: h,
        });
    }
    let top = (h - height) / 2;
    let left = (w - width) / 2;
    Ok(image::imageops::crop_imm(image, left, top, width, height).to_image())
}

/// `x / 127.5 - 1` for every `u8` value, as the reference computes it:
/// in `f64` (numpy promotes the `uint8` array), then rounded to `f32`.
///
/// Computing the same formula directly in `f32` differs by one ulp for 128
/// of the 256 inputs, hence the detour.
fn normalisation_table() -> [f32; 256] {
    let mut table = [0.0f32; 256];
    for (x, v) in table.iter_mut().enumerate() {
        *v = (x as f64 / 127.5 - 1.0) as f32;
    }
    table
}

/// The V2L tokenizer's evaluation preprocessing for a square input of side
/// `size`: [`smallest_max_size`] + [`resize_linear_cv`], [`center_crop`],
/// then `x / 127.5 - 1` as CHW `f32`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenizerPreprocess {
    /// Side of the square output (the model's input resolution).
    size: u32,
}

impl TokenizerPreprocess {
    /// Preprocessing to `size` x `size` pixels. A zero `size` is accepted
    /// here and reported by [`Self::resize_crop`] / [`Self::apply`].
    #[must_use]
    pub fn new(size: u32) -> Self {
        Self { size }
    }

    /// Side of the square output, in pixels.
    #[must_use]
    pub fn size(&self) -> u32 {
        self.size
    }

    /// Resizes the shorter side to `size` (skipped when the shape does not
    /// change, as albumentations skips it) and crops the centre square.
    /// An image that is already `size` x `size` comes back unchanged.
    ///
    /// # Errors
    ///
    /// [`PreprocessError::ZeroSize`] when `size` is 0 and
    /// [`PreprocessError::EmptyImage`] when the image has no pixels.
    pub fn resize_crop(&self, rgb: &RgbImage) -> Result<RgbImage, PreprocessError> {
        let n = self.size;
        if n == 0 {
            return Err(PreprocessError::ZeroSize {
                width: n,
                height: n,
            });
        }
        let (w, h) = rgb.dimensions();
        if w == 0 || h == 0 {
            return Err(PreprocessError::EmptyImage {
                width: w,
                height: h,
            });
        }
        if (w, h) == (n, n) {
            return Ok(rgb.clone());
        }
        let (new_h, new_w) = smallest_max_size(h, w, n);
        if (new_w, new_h) == (w, h) {
            center_crop(rgb, n, n)
        } else {
            center_crop(&resize_linear_cv(rgb, new_w, new_h), n, n)
        }
    }

    /// The full preprocessing: [`Self::resize_crop`], then each value `x`
    /// becomes `x / 127.5 - 1` (computed as the reference does, in `f64`
    /// and rounded to `f32`), laid out channel-major: `[3, size, size]`
    /// flattened, R plane first.
    ///
    /// # Errors
    ///
    /// As [`Self::resize_crop`].
    pub fn apply(&self, rgb: &RgbImage) -> Result<Vec<f32>, PreprocessError> {
        let img = self.resize_crop(rgb)?;
        let table = normalisation_table();
        let plane = img.width() as usize * img.height() as usize;
        let mut out = vec![0.0f32; CHANNELS * plane];
        for (i, px) in img.pixels().enumerate() {
            for (c, &v) in px.0.iter().enumerate() {
                if let Some(dst) = out.get_mut(c * plane + i) {
                    *dst = table[usize::from(v)];
                }
            }
        }
        Ok(out)
    }

    /// [`Self::apply`] on a decoded image of any colour type, converted to
    /// 8-bit RGB first (alpha dropped, grey replicated: what PIL's
    /// `convert("RGB")` does for 8-bit sources).
    ///
    /// # Errors
    ///
    /// As [`Self::resize_crop`].
    pub fn apply_dynamic(&self, image: &DynamicImage) -> Result<Vec<f32>, PreprocessError> {
        self.apply(&image.to_rgb8())
    }
}
