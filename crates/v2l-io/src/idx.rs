//! IDX files, the format of MNIST and Fashion-MNIST (`train-images-idx3-ubyte`, ...), plain
//! or gzip-compressed. Compression is detected from the content (magic `1f 8b`), never from
//! the file name.
//!
//! Layout: two zero bytes, a type code (`0x08` u8, `0x09` i8, `0x0B` i16, `0x0C` i32,
//! `0x0D` f32, `0x0E` f64), the number of dimensions, then one big-endian `u32` per
//! dimension, then the big-endian data. The data length must equal the product of the
//! dimensions times the element size: shorter or longer data is an error.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use flate2::read::MultiGzDecoder;

use super::error::{ReadError, Result};

/// The elements of an IDX file, decoded to native values, in file (row-major) order.
#[derive(Debug, Clone, PartialEq)]
pub enum IdxData {
    /// Type `0x08`.
    U8(Vec<u8>),
    /// Type `0x09`.
    I8(Vec<i8>),
    /// Type `0x0B`.
    I16(Vec<i16>),
    /// Type `0x0C`.
    I32(Vec<i32>),
    /// Type `0x0D`.
    F32(Vec<f32>),
    /// Type `0x0E`.
    F64(Vec<f64>),
}

/// An array read from an IDX file.
#[derive(Debug, Clone, PartialEq)]
pub struct IdxArray {
    shape: Vec<usize>,
    data: IdxData,
}

impl IdxArray {
    /// The dimensions, e.g. `[60000, 28, 28]` for MNIST training images.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The elements.
    pub fn data(&self) -> &IdxData {
        &self.data
    }

    /// Consumes the array and returns its elements.
    pub fn into_data(self) -> IdxData {
        self.data
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        match &self.data {
            IdxData::U8(v) => v.len(),
            IdxData::I8(v) => v.len(),
            IdxData::I16(v) => v.len(),
            IdxData::I32(v) => v.len(),
            IdxData::F32(v) => v.len(),
            IdxData::F64(v) => v.len(),
        }
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The elements of a `u8` file (images, labels), else `None`.
    pub fn as_u8(&self) -> Option<&[u8]> {
        match &self.data {
            IdxData::U8(v) => Some(v),
            _ => None,
        }
    }

    /// All elements converted to `f32` (no scaling).
    pub fn to_f32(&self) -> Vec<f32> {
        match &self.data {
            IdxData::U8(v) => v.iter().map(|&x| f32::from(x)).collect(),
            IdxData::I8(v) => v.iter().map(|&x| f32::from(x)).collect(),
            IdxData::I16(v) => v.iter().map(|&x| f32::from(x)).collect(),
            IdxData::I32(v) => v.iter().map(|&x| x as f32).collect(),
            IdxData::F32(v) => v.clone(),
            IdxData::F64(v) => v.iter().map(|&x| x as f32).collect(),
        }
    }
}

/// Reads an IDX file, gzip-compressed or not.
pub fn read(path: impl AsRef<Path>) -> Result<IdxArray> {
    let path = path.as_ref();
    let name = path.display().to_string();
    let file = File::open(path).map_err(|e| ReadError::io(path, e))?;
    let mut reader = BufReader::new(file);
    let gz = is_gzip(reader.fill_buf().map_err(|e| ReadError::io(path, e))?);
    if gz {
        parse(MultiGzDecoder::new(reader), &name)
    } else {
        parse(reader, &name)
    }
}

/// Parses an IDX file held in memory, gzip-compressed or not; `name` labels errors.
pub fn from_bytes(data: &[u8], name: &str) -> Result<IdxArray> {
    if is_gzip(data) {
        parse(MultiGzDecoder::new(data), name)
    } else {
        parse(data, name)
    }
}

fn is_gzip(head: &[u8]) -> bool {
    head.starts_with(&[0x1f, 0x8b])
}

fn read_exact(reader: &mut impl Read, buf: &mut [u8], name: &str, what: &str) -> Result<()> {
    reader.read_exact(buf).map_err(|e| ReadError::Idx {
        file: name.to_string(),
        msg: format!("cannot read {what}: {e}"),
    })
}

/// Parses an uncompressed IDX stream.
fn parse(mut reader: impl Read, name: &str) -> Result<IdxArray> {
    let err = |msg: String| ReadError::Idx {
        file: name.to_string(),
        msg,
    };
    let mut magic = [0u8; 4];
    read_exact(&mut reader, &mut magic, name, "the 4-byte magic")?;
    if magic[0] != 0 || magic[1] != 0 {
        return Err(err(format!(
            "bad magic {:02x} {:02x} (expected 00 00)",
            magic[0], magic[1]
        )));
    }
    let (type_code, ndim) = (magic[2], usize::from(magic[3]));
    let elem = match type_code {
        0x08 | 0x09 => 1,
        0x0B => 2,
        0x0C | 0x0D => 4,
        0x0E => 8,
        other => return Err(err(format!("unknown element type code 0x{other:02x}"))),
    };
    let mut dims = vec![0u8; 4 * ndim];
    read_exact(&mut reader, &mut dims, name, "the dimensions")?;
    let shape: Vec<usize> = dims
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let expected = shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .and_then(|n| n.checked_mul(elem))
        .ok_or_else(|| err(format!("dimensions {shape:?} are too large")))?;
    // Read at most one byte more than needed: memory stays bounded by the real data even when
    // the header claims huge dimensions, and extra data is detected.
    let mut bytes = Vec::new();
    reader
        .take((expected as u64).saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| err(format!("cannot read the data: {e}")))?;
    if bytes.len() != expected {
        let found = if bytes.len() > expected {
            "more".to_string()
        } else {
            bytes.len().to_string()
        };
        return Err(err(format!(
            "dimensions {shape:?} need {expected} data bytes, found {found}"
        )));
    }
    let data = match type_code {
        0x08 => IdxData::U8(bytes),
        0x09 => IdxData::I8(bytes.iter().map(|&b| b as i8).collect()),
        0x0B => IdxData::I16(
            bytes
                .chunks_exact(2)
                .map(|c| i16::from_be_bytes([c[0], c[1]]))
                .collect(),
        ),
        0x0C => IdxData::I32(
            bytes
                .chunks_exact(4)
                .map(|c| i32::from_be_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        ),
        0x0D => IdxData::F32(
            bytes
                .chunks_exact(4)
                .map(|c| f32::from_be_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        ),
        _ => IdxData::F64(
            bytes
                .chunks_exact(8)
                .map(|c| {
                    let mut a = [0u8; 8];
                    a.copy_from_slice(c);
                    f64::from_be_bytes(a)
                })
                .collect(),
        ),
    };
    Ok(IdxArray { shape, data })
}
