//! CLIP image preprocessing without a tensor library: the uint8 pipeline of OpenAI CLIP's
//! `clip.clip._transform(n_px)` reproduced on top of the `image` crate.
//!
//! The reference is the torchvision composition OpenAI CLIP uses,
//!
//! ```text
//! Resize(n_px, interpolation=BICUBIC)  # PIL Image.resize, short side -> n_px
//! CenterCrop(n_px)
//! convert("RGB")
//! ToTensor()                           # uint8 / 255
//! Normalize(mean, std)
//! ```
//!
//! run on a PIL image. [`ClipPreprocess`] performs the same steps in the same order and in the
//! image's own colour mode, with a resampler that follows Pillow's fixed-point BICUBIC
//! algorithm ([`resize_bicubic`]), so that the uint8 image before `ToTensor` is bit-exact
//! against Pillow 13 / torchvision 0.29 (see [`ClipPreprocess`] for the measurements and for the
//! input kinds where this module deliberately differs from PIL).
//!
//! ```no_run
//! use v2l_clip::preprocess::ClipPreprocess;
//!
//! let pre = ClipPreprocess::new(224);
//! let chw: Vec<f32> = pre.open("cat.png")?; // 3 * 224 * 224 values, channel-major
//! assert_eq!(chw.len(), 3 * 224 * 224);
//! # Ok::<(), v2l_clip::preprocess::PreprocessError>(())
//! ```

use std::borrow::Cow;
use std::ops::Range;
use std::path::{Path, PathBuf};

use image::{DynamicImage, ImageBuffer, RgbImage};
use rayon::prelude::*;

/// Per-channel (R, G, B) mean OpenAI CLIP normalises with, as published in `clip/clip.py`.
#[allow(clippy::excessive_precision)]
pub const OPENAI_CLIP_MEAN: [f32; 3] = [0.48145466, 0.4578275, 0.40821073];

/// Per-channel (R, G, B) standard deviation OpenAI CLIP normalises with, as published in
/// `clip/clip.py`.
#[allow(clippy::excessive_precision)]
pub const OPENAI_CLIP_STD: [f32; 3] = [0.26862954, 0.26130258, 0.27577711];

/// Largest output side [`ClipPreprocess`] accepts (CLIP models use 224, 288, 336 or 448).
pub const MAX_RESOLUTION: usize = 16_384;

/// Fixed-point precision of the resampling coefficients: 32 bits less 8 for the pixel value
/// and 2 of headroom for negative lobes and overshoot, as in Pillow.
const PRECISION_BITS: u32 = 32 - 8 - 2;

/// Support (half-width, in source pixels at scale 1) of the bicubic kernel.
const BICUBIC_SUPPORT: f64 = 2.0;

/// Errors of CLIP preprocessing.
#[derive(Debug, thiserror::Error)]
pub enum PreprocessError {
    /// The image file could not be opened or read.
    #[error("cannot read image {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The image file was read but could not be decoded (unknown format, corrupt data,
    /// decoder limits).
    #[error("cannot decode image {}: {source}", path.display())]
    Decode {
        /// The file.
        path: PathBuf,
        /// The decoder's error.
        #[source]
        source: image::ImageError,
    },
    /// The input image has no pixels.
    #[error("image is empty ({width}x{height})")]
    EmptyImage {
        /// Width of the input, in pixels.
        width: u32,
        /// Height of the input, in pixels.
        height: u32,
    },
    /// The output resolution is 0 or larger than [`MAX_RESOLUTION`].
    #[error("invalid resolution {resolution} (expected 1..={MAX_RESOLUTION})")]
    InvalidResolution {
        /// The requested resolution.
        resolution: usize,
    },
    /// A normalisation mean is not finite, or a standard deviation is not finite and
    /// positive.
    #[error("invalid normalisation for channel {channel}: mean {mean}, std {std}")]
    InvalidNormalization {
        /// The channel (0 = R, 1 = G, 2 = B).
        channel: usize,
        /// Its mean.
        mean: f32,
        /// Its standard deviation.
        std: f32,
    },
    /// One image of a batch failed; `index` is its position in the batch.
    #[error("image {index} of the batch: {source}")]
    BatchItem {
        /// Position of the failing image in the batch.
        index: usize,
        /// Why it failed.
        #[source]
        source: Box<PreprocessError>,
    },
}

/// OpenAI CLIP's image preprocessing for one output resolution: resize (short side to
/// `resolution`, Pillow BICUBIC), centre crop, convert to RGB, scale to `[0, 1]` and
/// normalise per channel, giving a channel-major (CHW) `f32` buffer.
///
/// # Fidelity to the reference
///
/// The reference is `clip.clip._transform(n_px)` run with torchvision 0.29 on Pillow 13:
///
/// - **Resize**: the short side becomes `resolution` and the long side
///   `int(resolution * long / short)` (torchvision's rule, a truncated `f64` quotient).
///   When that size equals the input size, torchvision returns the image untouched, and so does
///   this type. Otherwise the image is resampled with [`resize_bicubic`]'s algorithm (including
///   Pillow 13's choice of which pass runs first) in its own mode: grey stays one channel, and
///   grey+alpha and RGBA images are resampled premultiplied by alpha and un-premultiplied
///   afterwards with Pillow's integer formulas (`LA`→`La`, `RGBA`→`RGBa` and back), as
///   `Image.resize` does.
/// - **CenterCrop**: offsets `int(round((size - resolution) / 2))` with Python's
///   round-half-to-even, so a leftover of 13 pixels starts the crop at 6 and one of 15 at 8.
///   Only the cropped window is ever computed; each output pixel is computed exactly as
///   Pillow computes it in the full-size resize, so the result is unchanged.
/// - **convert("RGB")**: see [`to_rgb8`] (grey replicated, alpha dropped without
///   compositing).
/// - **ToTensor + Normalize**: `(v as f32 / 255.0 - mean) / std` in `f32`, the same operations
///   in the same order as torch, which makes the output bit-identical to torch's for equal
///   uint8 input.
///
/// Measured against reference outputs generated with Pillow 13.0.0 / torchvision 0.29.2 on
/// x86-64 (`scripts/gen_clip_preprocess_fixtures.py`, checked by the `preprocess` tests): the
/// uint8 image before `ToTensor` is **bit-exact — maximum absolute difference 0 levels, 0 % of
/// values differing** — on every case: four real photos (downscaling at 224, upscaling to 336,
/// a 16x downscale to 32), RGB and grey upscaling (7x5, 300x40), a 40x300 image (vertical pass
/// first), grey, grey+alpha and RGBA inputs with varying and zero alpha, an input already at
/// the target size, odd and even crop offsets, and a 16-bit grey PNG (reference per the rule
/// of [`to_rgb8`]). A randomised sweep outside the test suite (1 800 images: L, LA, RGB and
/// RGBA, noise, gradients and checkerboards, sizes 1 to 900 pixels a side including extreme
/// aspect ratios, resolutions 1 to 336, plus arbitrary [`resize_bicubic`] sizes) also gave 0
/// differing values out of 1.65 × 10^8.
/// The normalised astronaut at 224 matches torch's `f32` tensor bit for bit (the test's
/// tolerance is 1e-6).
///
/// # Deliberate differences from PIL
///
/// These concern decoding and modes, not the transform:
///
/// - 16-bit images are scaled to 8 bits *before* resizing by `round(v / 257)` (see
///   [`to_rgb8`]); PIL resizes 16-bit grey in its `I;16` mode and then clips values to 255
///   when converting to RGB, which saturates almost every pixel. PIL decodes 16-bit RGB PNGs
///   to 8 bits by keeping the high byte (`v >> 8`), which differs from `round(v / 257)` by at
///   most one level.
/// - Palette (`P`) and 1-bit PNGs: PIL resizes those modes with NEAREST; the `image` crate
///   expands them to RGB(A) or grey on decoding, and this type resizes them with BICUBIC.
/// - PNGs with a `tRNS` colour key: PIL keeps them in `RGB`/`L` and ignores the key in this
///   pipeline; the `image` crate expands the key to an alpha channel, so those pixels are
///   resized premultiplied here (transparent pixels lose their colour).
/// - JPEG decoding: PIL uses libjpeg-turbo, the `image` crate zune-jpeg; decoded pixels
///   differ before preprocessing starts (measured on quality-90 JPEGs of two test photos: at
///   most 4 levels, on about 12 % of the values). EXIF orientation is ignored by both.
/// - Pillow 12 and older order the resampling passes differently for tall images (see
///   [`resize_bicubic`]); this type follows Pillow 13.
/// - Only the x86-64 Pillow wheel was measured; a Pillow build whose compiler fuses the
///   multiply-adds of the coefficient computation could round an occasional weight
///   differently.
#[derive(Debug, Clone)]
pub struct ClipPreprocess {
    resolution: usize,
    mean: [f32; 3],
    std: [f32; 3],
}

impl ClipPreprocess {
    /// Preprocessing to `resolution` x `resolution` with OpenAI's mean and standard deviation
    /// ([`OPENAI_CLIP_MEAN`], [`OPENAI_CLIP_STD`]). A resolution of 0 or above
    /// [`MAX_RESOLUTION`] is reported by the methods that use it.
    pub fn new(resolution: usize) -> Self {
        Self {
            resolution,
            mean: OPENAI_CLIP_MEAN,
            std: OPENAI_CLIP_STD,
        }
    }

    /// Replaces the normalisation constants (per channel R, G, B).
    ///
    /// # Errors
    /// [`PreprocessError::InvalidNormalization`] when a mean is not finite, or a standard
    /// deviation is not finite or not strictly positive.
    pub fn with_mean_std(mut self, mean: [f32; 3], std: [f32; 3]) -> Result<Self, PreprocessError> {
        for (channel, (&m, &s)) in mean.iter().zip(std.iter()).enumerate() {
            if !m.is_finite() || !s.is_finite() || s <= 0.0 {
                return Err(PreprocessError::InvalidNormalization {
                    channel,
                    mean: m,
                    std: s,
                });
            }
        }
        self.mean = mean;
        self.std = std;
        Ok(self)
    }

    /// The output side length in pixels.
    pub fn resolution(&self) -> usize {
        self.resolution
    }

    /// The normalisation means (R, G, B).
    pub fn mean(&self) -> [f32; 3] {
        self.mean
    }

    /// The normalisation standard deviations (R, G, B).
    pub fn std(&self) -> [f32; 3] {
        self.std
    }

    /// The uint8 image after Resize, CenterCrop and `convert("RGB")` — what the reference
    /// holds just before `ToTensor`.
    ///
    /// # Errors
    /// [`PreprocessError::InvalidResolution`], [`PreprocessError::EmptyImage`].
    pub fn resize_crop(&self, image: &DynamicImage) -> Result<RgbImage, PreprocessError> {
        let n = self.checked_resolution()?;
        let (width, height) = (image.width(), image.height());
        if width == 0 || height == 0 {
            return Err(PreprocessError::EmptyImage { width, height });
        }
        let src = Pixels::from_dynamic(image);
        let cropped = match src.layout {
            Layout::Luma => resize_crop_channels::<1>(&src, n),
            Layout::LumaAlpha => resize_crop_channels::<2>(&src, n),
            Layout::Rgb => resize_crop_channels::<3>(&src, n),
            Layout::Rgba => resize_crop_channels::<4>(&src, n),
        };
        let rgb = layout_to_rgb(&cropped, src.layout);
        Ok(rgb_image(n, n, rgb))
    }

    /// The preprocessed image: `3 * resolution * resolution` values in channel-major order
    /// (`[3, resolution, resolution]`, R plane first), scaled to `[0, 1]` and normalised.
    ///
    /// # Errors
    /// As [`ClipPreprocess::resize_crop`].
    pub fn apply(&self, image: &DynamicImage) -> Result<Vec<f32>, PreprocessError> {
        let mut out = vec![0.0; self.output_len()?];
        self.apply_into(image, &mut out)?;
        Ok(out)
    }

    /// Preprocesses a batch in parallel (rayon): `[N, 3, resolution, resolution]`, contiguous.
    /// Inputs may have different sizes and colour types.
    ///
    /// # Errors
    /// [`PreprocessError::InvalidResolution`]; [`PreprocessError::BatchItem`] wrapping the
    /// error of a failing image and naming its index (when several fail, one of them).
    pub fn apply_batch(&self, images: &[DynamicImage]) -> Result<Vec<f32>, PreprocessError> {
        let per_image = self.output_len()?;
        let total =
            per_image
                .checked_mul(images.len())
                .ok_or(PreprocessError::InvalidResolution {
                    resolution: self.resolution,
                })?;
        let mut out = vec![0.0; total];
        out.par_chunks_mut(per_image)
            .zip(images.par_iter())
            .enumerate()
            .try_for_each(|(index, (chunk, image))| {
                self.apply_into(image, chunk)
                    .map_err(|e| PreprocessError::BatchItem {
                        index,
                        source: Box::new(e),
                    })
            })?;
        Ok(out)
    }

    /// Opens and decodes an image file (format guessed from its content) and preprocesses it.
    ///
    /// # Errors
    /// [`PreprocessError::Io`] when the file cannot be read, [`PreprocessError::Decode`] when it
    /// cannot be decoded, otherwise as [`ClipPreprocess::apply`].
    pub fn open(&self, path: impl AsRef<Path>) -> Result<Vec<f32>, PreprocessError> {
        let path = path.as_ref();
        let io_err = |source| PreprocessError::Io {
            path: path.to_path_buf(),
            source,
        };
        let image = image::ImageReader::open(path)
            .map_err(io_err)?
            .with_guessed_format()
            .map_err(io_err)?
            .decode()
            .map_err(|source| PreprocessError::Decode {
                path: path.to_path_buf(),
                source,
            })?;
        self.apply(&image)
    }

    fn checked_resolution(&self) -> Result<u32, PreprocessError> {
        if self.resolution == 0 || self.resolution > MAX_RESOLUTION {
            return Err(PreprocessError::InvalidResolution {
                resolution: self.resolution,
            });
        }
        u32::try_from(self.resolution).map_err(|_| PreprocessError::InvalidResolution {
            resolution: self.resolution,
        })
    }

    fn output_len(&self) -> Result<usize, PreprocessError> {
        self.checked_resolution()?;
        Ok(3 * self.resolution * self.resolution)
    }

    /// Writes the normalised CHW image into `out` (length `3 * r * r`).
    fn apply_into(&self, image: &DynamicImage, out: &mut [f32]) -> Result<(), PreprocessError> {
        let rgb = self.resize_crop(image)?;
        let plane = self.resolution * self.resolution;
        // ToTensor (`float(v) / 255`) then Normalize (`(x - mean) / std`), in f32 and in that
        // order; a table per channel gives the same values as computing them per pixel.
        let mut tables = [[0.0f32; 256]; 3];
        for (c, table) in tables.iter_mut().enumerate() {
            for (v, entry) in table.iter_mut().enumerate() {
                *entry = (f32::from(v as u8) / 255.0 - self.mean[c]) / self.std[c];
            }
        }
        let (r_plane, rest) = out.split_at_mut(plane);
        let (g_plane, b_plane) = rest.split_at_mut(plane);
        for (((px, r), g), b) in rgb
            .as_raw()
            .chunks_exact(3)
            .zip(r_plane.iter_mut())
            .zip(g_plane.iter_mut())
            .zip(b_plane.iter_mut())
        {
            *r = tables[0][usize::from(px[0])];
            *g = tables[1][usize::from(px[1])];
            *b = tables[2][usize::from(px[2])];
        }
        Ok(())
    }
}

/// Converts an image to 8-bit RGB the way this module does PIL's `convert("RGB")`:
///
/// - grey (`L`): the value is replicated into R, G and B;
/// - grey+alpha and RGBA: the alpha channel is dropped **without compositing** on any
///   background (PIL's `LA`/`RGBA` → `RGB`); colour under fully transparent pixels is kept as
///   stored;
/// - 16-bit samples (grey, grey+alpha, RGB, RGBA): scaled to 8 bits as `round(v / 257)`,
///   computed exactly as `(v + 128) / 257` in integers (no ties can occur), which is also the
///   `image` crate's own `u16` → `u8` conversion. This intentionally differs from PIL, whose
///   handling of 16-bit grey (`I;16`, clipped to 255) is degenerate;
/// - `f32` samples: clamped to `[0, 1]`, multiplied by 255 and rounded half away from zero
///   (NaN becomes 255, as in the `image` crate's conversion);
/// - any colour type added to `image::DynamicImage` in future: through the `image` crate's
///   `to_rgba8`, then as RGBA.
///
/// [`ClipPreprocess`] applies the same sample scaling *before* resizing and resizes in the
/// image's own channel layout, as PIL resizes in the original mode; this function is the
/// conversion alone.
pub fn to_rgb8(image: &DynamicImage) -> RgbImage {
    let src = Pixels::from_dynamic(image);
    let rgb = layout_to_rgb(&src.data, src.layout);
    rgb_image(src.width as u32, src.height as u32, rgb)
}

/// Resizes an RGB image to `width` x `height` exactly as Pillow's
/// `Image.resize((width, height), Image.BICUBIC)` does for 8-bit images.
///
/// The algorithm (described here in our own terms, implemented independently):
/// a cubic convolution kernel with `a = -0.5` and support 2, widened by the downscale factor
/// when shrinking (antialiasing); for each output sample the source window is centred at
/// `(i + 0.5) * in / out`, clipped to the image, and its weights are normalised to sum 1 in
/// `f64`, then rounded half away from zero to 22-bit fixed point. Two separable passes, each
/// only when its dimension changes, with the first pass's result stored as uint8: horizontal
/// then vertical, except that (as in Pillow 13) the vertical pass comes first when the height
/// shrinks by more pixels than twice the width does
/// (`in_h - out_h > 0 && in_h - out_h > 2 * (in_w - out_w)`). Each sample accumulates from
/// `2^21` (rounding), is shifted right by 22 and clamped to `0..=255`.
///
/// Pillow 12 and older always ran the horizontal pass first; for images resized that way
/// (e.g. a downscaled portrait more than twice as tall as wide) their results differ from
/// Pillow 13's — and from this function — by a few levels (measured: at most 5 levels on
/// 16–20 % of the values for a 200x500 photo crop).
///
/// An unchanged size returns a copy; a zero `width` or `height` gives an empty image; an
/// empty input gives a black image.
pub fn resize_bicubic(image: &RgbImage, width: u32, height: u32) -> RgbImage {
    if width == 0 || height == 0 {
        return RgbImage::new(width, height);
    }
    if image.width() == 0 || image.height() == 0 {
        return RgbImage::new(width, height);
    }
    let src = Pixels {
        width: image.width() as usize,
        height: image.height() as usize,
        layout: Layout::Rgb,
        data: Cow::Borrowed(image.as_raw()),
    };
    let window = Window {
        cols: 0..width as usize,
        rows: 0..height as usize,
    };
    let out = resample_window::<3>(&src, width as usize, height as usize, &window);
    rgb_image(width, height, out)
}

/// Channel layout of an 8-bit working image (PIL modes `L`, `LA`, `RGB`, `RGBA`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    Luma,
    LumaAlpha,
    Rgb,
    Rgba,
}

/// An interleaved 8-bit image in one of the [`Layout`]s.
#[derive(Debug)]
struct Pixels<'a> {
    width: usize,
    height: usize,
    layout: Layout,
    data: Cow<'a, [u8]>,
}

impl<'a> Pixels<'a> {
    /// The image as 8-bit samples in its own channel layout (borrowed when already 8-bit).
    fn from_dynamic(image: &'a DynamicImage) -> Self {
        let width = image.width() as usize;
        let height = image.height() as usize;
        let (layout, data) = match image {
            DynamicImage::ImageLuma8(b) => (Layout::Luma, Cow::Borrowed(b.as_raw().as_slice())),
            DynamicImage::ImageLumaA8(b) => {
                (Layout::LumaAlpha, Cow::Borrowed(b.as_raw().as_slice()))
            }
            DynamicImage::ImageRgb8(b) => (Layout::Rgb, Cow::Borrowed(b.as_raw().as_slice())),
            DynamicImage::ImageRgba8(b) => (Layout::Rgba, Cow::Borrowed(b.as_raw().as_slice())),
            DynamicImage::ImageLuma16(b) => (Layout::Luma, Cow::Owned(u16_to_u8(b.as_raw()))),
            DynamicImage::ImageLumaA16(b) => (Layout::LumaAlpha, Cow::Owned(u16_to_u8(b.as_raw()))),
            DynamicImage::ImageRgb16(b) => (Layout::Rgb, Cow::Owned(u16_to_u8(b.as_raw()))),
            DynamicImage::ImageRgba16(b) => (Layout::Rgba, Cow::Owned(u16_to_u8(b.as_raw()))),
            DynamicImage::ImageRgb32F(b) => (Layout::Rgb, Cow::Owned(f32_to_u8(b.as_raw()))),
            DynamicImage::ImageRgba32F(b) => (Layout::Rgba, Cow::Owned(f32_to_u8(b.as_raw()))),
            other => (Layout::Rgba, Cow::Owned(other.to_rgba8().into_raw())),
        };
        Self {
            width,
            height,
            layout,
            data,
        }
    }
}

/// `round(v / 257)` for every sample, exactly.
fn u16_to_u8(samples: &[u16]) -> Vec<u8> {
    samples
        .iter()
        .map(|&v| ((u32::from(v) + 128) / 257) as u8)
        .collect()
}

/// Clamp to `[0, 1]` (NaN → 1), × 255, round half away from zero.
fn f32_to_u8(samples: &[f32]) -> Vec<u8> {
    samples
        .iter()
        .map(|&v| {
            let clamped = if v.is_nan() { 1.0 } else { v.clamp(0.0, 1.0) };
            (clamped * 255.0).round() as u8
        })
        .collect()
}

/// PIL's `convert("RGB")` from each layout: replicate grey, drop alpha.
fn layout_to_rgb(data: &[u8], layout: Layout) -> Vec<u8> {
    match layout {
        Layout::Rgb => data.to_vec(),
        Layout::Luma => data.iter().flat_map(|&v| [v, v, v]).collect(),
        Layout::LumaAlpha => data
            .chunks_exact(2)
            .flat_map(|p| [p[0], p[0], p[0]])
            .collect(),
        Layout::Rgba => data
            .chunks_exact(4)
            .flat_map(|p| [p[0], p[1], p[2]])
            .collect(),
    }
}

fn rgb_image(width: u32, height: u32, data: Vec<u8>) -> RgbImage {
    // The length always matches by construction; an inconsistent buffer degrades to an empty
    // image of the right size rather than panicking.
    ImageBuffer::from_raw(width, height, data).unwrap_or_else(|| RgbImage::new(width, height))
}

/// torchvision's `Resize(n)` output size `(width, height)` for an input of `width` x `height`:
/// the short side becomes `n`, the long side `int(n * long / short)`.
fn resized_size(width: u32, height: u32, n: u32) -> (usize, usize) {
    let (short, long) = if width <= height {
        (width, height)
    } else {
        (height, width)
    };
    // Python divides the exact integer product (true division, correctly rounded); for every
    // product below 2^53 the f64 product is exact and the f64 quotient is the same value.
    let product = u64::from(n) * u64::from(long);
    let new_long = (product as f64 / f64::from(short)).floor() as usize;
    // `new_long >= n` mathematically; the guard only matters for absurd sizes where the f64
    // quotient could round below it.
    let new_long = new_long.max(n as usize);
    if width <= height {
        (n as usize, new_long)
    } else {
        (new_long, n as usize)
    }
}

/// torchvision's `CenterCrop` offset: `int(round((size - n) / 2))`, ties to even.
fn crop_offset(size: usize, n: usize) -> usize {
    let excess = size.saturating_sub(n) as f64;
    (excess / 2.0).round_ties_even() as usize
}

/// The output window to compute: columns and rows of the (virtual) resized image.
struct Window {
    cols: Range<usize>,
    rows: Range<usize>,
}

/// Resize (if the torchvision size differs), centre-crop to `n` x `n`, keep the layout.
fn resize_crop_channels<const C: usize>(src: &Pixels<'_>, n: u32) -> Vec<u8> {
    let n_us = n as usize;
    let (width, height) = resized_size(src.width as u32, src.height as u32, n);
    let left = crop_offset(width, n_us);
    let top = crop_offset(height, n_us);
    let window = Window {
        cols: left..left + n_us,
        rows: top..top + n_us,
    };
    let resized = width != src.width || height != src.height;
    if resized && matches!(src.layout, Layout::LumaAlpha | Layout::Rgba) {
        // `Image.resize` on LA / RGBA: to La / RGBa, resize, back to LA / RGBA.
        let premultiplied = Pixels {
            width: src.width,
            height: src.height,
            layout: src.layout,
            data: Cow::Owned(premultiply::<C>(&src.data)),
        };
        let mut out = resample_window::<C>(&premultiplied, width, height, &window);
        unpremultiply::<C>(&mut out);
        out
    } else {
        // Grey and RGB resize as they are; without a resize (torchvision returns the image
        // unchanged) `resample_window` only crops.
        resample_window::<C>(src, width, height, &window)
    }
}

/// `(a * b + 127) / 255` as Pillow computes it (`t = a*b + 128; ((t >> 8) + t) >> 8`).
fn mul_div_255(a: u8, b: u8) -> u8 {
    let t = u32::from(a) * u32::from(b) + 128;
    (((t >> 8) + t) >> 8) as u8
}

/// Pillow's `RGBA` → `RGBa` (and `LA` → `La`): colour channels times alpha / 255.
fn premultiply<const C: usize>(data: &[u8]) -> Vec<u8> {
    let mut out = data.to_vec();
    for px in out.chunks_exact_mut(C) {
        let alpha = px[C - 1];
        for v in &mut px[..C - 1] {
            *v = mul_div_255(*v, alpha);
        }
    }
    out
}

/// Pillow's `RGBa` → `RGBA` (and `La` → `LA`): unchanged where alpha is 0 or 255, otherwise
/// `min(255 * v / alpha, 255)` with integer division.
fn unpremultiply<const C: usize>(data: &mut [u8]) {
    for px in data.chunks_exact_mut(C) {
        let alpha = u32::from(px[C - 1]);
        if alpha == 0 || alpha == 255 {
            continue;
        }
        for v in &mut px[..C - 1] {
            *v = ((255 * u32::from(*v)) / alpha).min(255) as u8;
        }
    }
}

/// Bicubic convolution kernel, `a = -0.5`, evaluated with the same operation order as Pillow.
fn bicubic(x: f64) -> f64 {
    const A: f64 = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * A
    } else {
        0.0
    }
}

/// Fixed-point resampling weights for a range of output positions along one axis.
struct Coefficients {
    /// Output positions covered (indices into the full resized axis).
    range: Range<usize>,
    /// Maximum taps per output position (stride of `weights`).
    ksize: usize,
    /// First source index of each output position.
    first: Vec<usize>,
    /// Number of taps of each output position.
    taps: Vec<usize>,
    /// `range.len() * ksize` weights, 22-bit fixed point.
    weights: Vec<i32>,
}

impl Coefficients {
    /// Weights of output positions `range` when an axis of `in_size` samples becomes
    /// `out_size` samples. Each position's weights depend only on the position, so computing
    /// a sub-range gives the same values as Pillow's full table.
    fn new(in_size: usize, out_size: usize, range: Range<usize>) -> Self {
        // Pillow passes the box edges as C floats: (float)in_size - 0.0f, widened to double.
        let scale = f64::from(in_size as f32) / out_size as f64;
        let filterscale = scale.max(1.0);
        let support = BICUBIC_SUPPORT * filterscale;
        let ksize = support.ceil() as usize * 2 + 1;
        let inv_filterscale = 1.0 / filterscale;
        let count = range.len();
        let mut first = Vec::with_capacity(count);
        let mut taps = Vec::with_capacity(count);
        let mut weights = vec![0i32; count * ksize];
        let mut real = vec![0f64; ksize];
        for (slot, xx) in range.clone().enumerate() {
            let center = (xx as f64 + 0.5) * scale;
            // C's (int) cast truncates toward zero; the clamp to 0 makes that equal to floor.
            let xmin = ((center - support + 0.5) as i64).max(0);
            let xmax = ((center + support + 0.5) as i64).min(in_size as i64);
            let n = usize::try_from(xmax - xmin).unwrap_or(0).min(ksize);
            let mut total = 0.0f64;
            for (x, w) in real.iter_mut().take(n).enumerate() {
                let arg = ((x as i64 + xmin) as f64 - center + 0.5) * inv_filterscale;
                *w = bicubic(arg);
                total += *w;
            }
            if total != 0.0 {
                for w in real.iter_mut().take(n) {
                    *w /= total;
                }
            }
            let one = f64::from(1u32 << PRECISION_BITS);
            for (dst, &w) in weights[slot * ksize..slot * ksize + n]
                .iter_mut()
                .zip(real.iter())
            {
                *dst = if w < 0.0 {
                    (-0.5 + w * one) as i32
                } else {
                    (0.5 + w * one) as i32
                };
            }
            first.push(xmin as usize);
            taps.push(n);
        }
        Self {
            range,
            ksize,
            first,
            taps,
            weights,
        }
    }

    /// First source index, weights of output position `xx` (which must lie in the range).
    fn at(&self, xx: usize) -> (usize, &[i32]) {
        let slot = xx - self.range.start;
        let start = slot * self.ksize;
        (
            self.first[slot],
            &self.weights[start..start + self.taps[slot]],
        )
    }

    /// The source indices the covered positions read, as a range.
    fn source_span(&self) -> Range<usize> {
        let start = self.first.first().copied().unwrap_or(0);
        let end = self
            .first
            .iter()
            .zip(&self.taps)
            .map(|(&f, &t)| f + t)
            .max()
            .unwrap_or(start);
        start..end.max(start)
    }
}

/// Rounding offset every accumulator starts from.
const HALF: i32 = 1 << (PRECISION_BITS - 1);

/// Drops the fraction bits and clamps to a byte.
#[inline]
fn clip8(acc: i32) -> u8 {
    (acc >> PRECISION_BITS).clamp(0, 255) as u8
}

/// Rows of interleaved pixels covering absolute rows from `y0` and absolute columns from `x0`.
struct Region<'a> {
    data: &'a [u8],
    stride: usize,
    x0: usize,
    y0: usize,
}

impl Region<'_> {
    /// Absolute row `y`, from absolute column `cols.start` to `cols.end` (`C` bytes a pixel).
    fn row<const C: usize>(&self, y: usize, cols: Range<usize>) -> &[u8] {
        let start = (y - self.y0) * self.stride + (cols.start - self.x0) * C;
        &self.data[start..start + cols.len() * C]
    }
}

/// Horizontal pass: output columns `cols` of the absolute rows `rows` of `src`.
fn horizontal_pass<const C: usize>(
    src: &Region<'_>,
    rows: Range<usize>,
    coeffs: &Coefficients,
    cols: Range<usize>,
) -> Vec<u8> {
    let span = coeffs.source_span();
    let row_len = cols.len() * C;
    let mut out = vec![0u8; rows.len() * row_len];
    for (y, out_row) in rows.zip(out.chunks_exact_mut(row_len)) {
        let (pixels, _) = src.row::<C>(y, span.clone()).as_chunks::<C>();
        let (out_pixels, _) = out_row.as_chunks_mut::<C>();
        for (xx, out_px) in cols.clone().zip(out_pixels) {
            let (xmin, k) = coeffs.at(xx);
            let start = xmin - span.start;
            let mut acc = [HALF; C];
            for (px, &w) in pixels[start..start + k.len()].iter().zip(k) {
                for (a, &v) in acc.iter_mut().zip(px) {
                    *a += i32::from(v) * w;
                }
            }
            for (o, &a) in out_px.iter_mut().zip(&acc) {
                *o = clip8(a);
            }
        }
    }
    out
}

/// Vertical pass: output rows `rows` over the absolute columns `cols` of `src`. Whole rows
/// are accumulated at once (integer sums, so the order of the terms does not matter).
fn vertical_pass<const C: usize>(
    src: &Region<'_>,
    coeffs: &Coefficients,
    rows: Range<usize>,
    cols: Range<usize>,
) -> Vec<u8> {
    let row_len = cols.len() * C;
    let mut out = vec![0u8; rows.len() * row_len];
    let mut acc = vec![HALF; row_len];
    for (yy, out_row) in rows.zip(out.chunks_exact_mut(row_len)) {
        let (ymin, k) = coeffs.at(yy);
        acc.fill(HALF);
        for (t, &w) in k.iter().enumerate() {
            let row = src.row::<C>(ymin + t, cols.clone());
            for (a, &v) in acc.iter_mut().zip(row) {
                *a += i32::from(v) * w;
            }
        }
        for (o, &a) in out_row.iter_mut().zip(&acc) {
            *o = clip8(a);
        }
    }
    out
}

/// Computes `window` of the `out_width` x `out_height` Pillow-BICUBIC resize of `src`
/// (`C` interleaved channels), row-major, `window.cols.len() * C` bytes per row.
///
/// Pillow 13 runs the horizontal pass first unless the height shrinks by more pixels than
/// twice the width does (`in_h - out_h > 0 && in_h - out_h > 2 * (in_w - out_w)`); the uint8
/// intermediate makes the order visible in the result, so it is followed here. Only the
/// source rows (horizontal first) or columns (vertical first) the window needs are
/// resampled in the first pass.
fn resample_window<const C: usize>(
    src: &Pixels<'_>,
    out_width: usize,
    out_height: usize,
    window: &Window,
) -> Vec<u8> {
    let horizontal = (out_width != src.width)
        .then(|| Coefficients::new(src.width, out_width, window.cols.clone()));
    let vertical = (out_height != src.height)
        .then(|| Coefficients::new(src.height, out_height, window.rows.clone()));
    let full = Region {
        data: &src.data,
        stride: src.width * C,
        x0: 0,
        y0: 0,
    };
    let shrink_h = src.height as i64 - out_height as i64;
    let shrink_w = src.width as i64 - out_width as i64;
    let vertical_first = shrink_h > 0 && shrink_h > shrink_w.saturating_mul(2);
    match (horizontal, vertical) {
        (None, None) => window
            .rows
            .clone()
            .flat_map(|y| full.row::<C>(y, window.cols.clone()).iter().copied())
            .collect(),
        (Some(h), None) => {
            horizontal_pass::<C>(&full, window.rows.clone(), &h, window.cols.clone())
        }
        (None, Some(v)) => vertical_pass::<C>(&full, &v, window.rows.clone(), window.cols.clone()),
        (Some(h), Some(v)) if vertical_first => {
            let cols_in = h.source_span();
            let tmp = vertical_pass::<C>(&full, &v, window.rows.clone(), cols_in.clone());
            let region = Region {
                data: &tmp,
                stride: cols_in.len() * C,
                x0: cols_in.start,
                y0: window.rows.start,
            };
            horizontal_pass::<C>(&region, window.rows.clone(), &h, window.cols.clone())
        }
        (Some(h), Some(v)) => {
            let rows_in = v.source_span();
            let tmp = horizontal_pass::<C>(&full, rows_in.clone(), &h, window.cols.clone());
            let region = Region {
                data: &tmp,
                stride: window.cols.len() * C,
                x0: window.cols.start,
                y0: rows_in.start,
            };
            vertical_pass::<C>(&region, &v, window.rows.clone(), window.cols.clone())
        }
    }
}
