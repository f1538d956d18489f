//! A validated image of f32 values in [0, 1], channels first.

use crate::error::{MetricsError, Result};

/// An image `[channels, height, width]` (CHW, row-major) with values in [0, 1].
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    channels: usize,
    height: usize,
    width: usize,
    data: Vec<f32>,
}

impl Image {
    /// Wraps CHW values, checking the length, finiteness and the [0, 1] range.
    ///
    /// # Errors
    /// [`MetricsError::BadLength`], [`MetricsError::NonFinite`],
    /// [`MetricsError::OutOfRange`], or [`MetricsError::Undefined`] for an
    /// empty shape.
    pub fn from_chw(data: Vec<f32>, channels: usize, height: usize, width: usize) -> Result<Self> {
        if channels == 0 || height == 0 || width == 0 {
            return Err(MetricsError::Undefined(format!(
                "empty image shape [{channels}, {height}, {width}]"
            )));
        }
        if data.len() != channels * height * width {
            return Err(MetricsError::BadLength {
                what: "image",
                len: data.len(),
                shape: vec![channels, height, width],
            });
        }
        for (index, &v) in data.iter().enumerate() {
            if !v.is_finite() {
                return Err(MetricsError::NonFinite {
                    what: "image",
                    index,
                    value: f64::from(v),
                });
            }
            if !(0.0..=1.0).contains(&v) {
                return Err(MetricsError::OutOfRange {
                    what: "image",
                    index,
                    value: f64::from(v),
                });
            }
        }
        Ok(Self {
            channels,
            height,
            width,
            data,
        })
    }

    /// An image from interleaved 8-bit values `[height, width, channels]`
    /// (HWC, as decoded PNGs), scaled by 1/255.
    ///
    /// # Errors
    /// [`MetricsError::BadLength`] or [`MetricsError::Undefined`] as
    /// [`Image::from_chw`].
    pub fn from_hwc_u8(data: &[u8], height: usize, width: usize, channels: usize) -> Result<Self> {
        if data.len() != channels * height * width {
            return Err(MetricsError::BadLength {
                what: "image",
                len: data.len(),
                shape: vec![height, width, channels],
            });
        }
        let mut chw = vec![0.0f32; data.len()];
        for (i, &v) in data.iter().enumerate() {
            let (pix, c) = (i / channels, i % channels);
            chw[c * height * width + pix] = f32::from(v) / 255.0;
        }
        Self::from_chw(chw, channels, height, width)
    }

    /// `[channels, height, width]`.
    pub fn shape(&self) -> [usize; 3] {
        [self.channels, self.height, self.width]
    }

    /// The CHW values.
    pub fn data(&self) -> &[f32] {
        &self.data
    }

    /// Channel `c` as a `height × width` plane.
    pub(crate) fn plane(&self, c: usize) -> &[f32] {
        let n = self.height * self.width;
        &self.data[c * n..(c + 1) * n]
    }
}

/// Checks that two images have the same shape.
pub(crate) fn same_shape(a: &Image, b: &Image) -> Result<()> {
    if a.shape() != b.shape() {
        return Err(MetricsError::ShapeMismatch {
            what: "images",
            left: a.shape().to_vec(),
            right: b.shape().to_vec(),
        });
    }
    Ok(())
}

impl Image {
    /// Decodes an image file (PNG or JPEG) into RGB values in [0, 1]
    /// (8-bit and 16-bit sources; grey and alpha are converted to RGB).
    ///
    /// # Errors
    /// [`MetricsError::Io`] when the file cannot be read or decoded.
    pub fn open(path: impl AsRef<std::path::Path>) -> Result<Self> {
        let path = path.as_ref();
        let img = ::image::open(path).map_err(|e| MetricsError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        let rgb = img.to_rgb8();
        let (w, h) = rgb.dimensions();
        Self::from_hwc_u8(rgb.as_raw(), h as usize, w as usize, 3)
    }
}
