//! NumPy-style arrays shared by the pickle and `.npy` readers: [`Dtype`] (parsed from a
//! descr string such as `<f4`, `|O` or `<U5`) and [`NdArray`] (shape, memory order and the
//! element data), with conversions to plain Rust vectors in C (row-major) order.

use std::fmt;

use super::error::{ReadError, Result};
use super::pickle::PickleValue;

/// Most elements an array of a zero-size dtype (`<U0`, `|S0`, `|V0`) may have: their data is
/// empty whatever the shape, so nothing else bounds what converting them allocates.
pub const MAX_EMPTY_ELEMENTS: usize = 1 << 20;

/// Byte order of a multi-byte element type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ByteOrder {
    /// Little-endian (`<`).
    Little,
    /// Big-endian (`>`).
    Big,
    /// Byte order does not apply (one-byte types, strings of bytes, objects): `|`.
    NotApplicable,
}

impl ByteOrder {
    /// The host byte order (`=` in a descr).
    pub fn native() -> Self {
        if cfg!(target_endian = "big") {
            ByteOrder::Big
        } else {
            ByteOrder::Little
        }
    }

    fn descr_char(self) -> char {
        match self {
            ByteOrder::Little => '<',
            ByteOrder::Big => '>',
            ByteOrder::NotApplicable => '|',
        }
    }
}

/// Kind of a NumPy element type (the letter of its descr).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DtypeKind {
    /// `b`: booleans, one byte each.
    Bool,
    /// `i`: signed integers.
    Int,
    /// `u`: unsigned integers.
    UInt,
    /// `f`: IEEE floats (2, 4 or 8 bytes).
    Float,
    /// `c`: complex numbers (parsed but not convertible).
    Complex,
    /// `U`: fixed-width UTF-32 strings (`item_size` is in bytes, 4 per character).
    Unicode,
    /// `S`: fixed-width byte strings, NUL-padded.
    Bytes,
    /// `O`: Python objects (pickled).
    Object,
    /// `V`: raw void records (parsed but not convertible).
    Void,
}

impl DtypeKind {
    fn descr_char(self) -> char {
        match self {
            DtypeKind::Bool => 'b',
            DtypeKind::Int => 'i',
            DtypeKind::UInt => 'u',
            DtypeKind::Float => 'f',
            DtypeKind::Complex => 'c',
            DtypeKind::Unicode => 'U',
            DtypeKind::Bytes => 'S',
            DtypeKind::Object => 'O',
            DtypeKind::Void => 'V',
        }
    }
}

/// A simple (non-structured) NumPy dtype.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Dtype {
    /// Element kind.
    pub kind: DtypeKind,
    /// Byte order of each element.
    pub byte_order: ByteOrder,
    /// Size of one element in bytes (for `U`, four bytes per character; for `O`, 8).
    pub item_size: usize,
}

impl Dtype {
    /// Parses a descr string such as `<f4`, `|u1`, `>i8`, `|O`, `<U5`, `|S3`, `?`, or the
    /// unprefixed forms numpy pickles use (`f4`, `O8`, `U5`). A missing or `=` byte order
    /// means the host order. Returns `None` for anything else (structured or datetime types).
    pub fn parse(descr: &str) -> Option<Dtype> {
        let mut chars = descr.chars();
        let first = chars.clone().next()?;
        let explicit = match first {
            '<' => Some(ByteOrder::Little),
            '>' | '!' => Some(ByteOrder::Big),
            '|' => Some(ByteOrder::NotApplicable),
            '=' => Some(ByteOrder::native()),
            _ => None,
        };
        if explicit.is_some() || first == '=' {
            chars.next();
        }
        let kind_char = chars.next()?;
        let digits: &str = chars.as_str();
        let size: Option<usize> = if digits.is_empty() {
            None
        } else if digits.bytes().all(|b| b.is_ascii_digit()) {
            Some(digits.parse().ok()?)
        } else {
            return None;
        };
        let (kind, item_size) = match kind_char {
            'b' | '?' => (DtypeKind::Bool, size.unwrap_or(1)),
            'i' => (DtypeKind::Int, size?),
            'u' => (DtypeKind::UInt, size?),
            'f' => (DtypeKind::Float, size?),
            'c' => (DtypeKind::Complex, size?),
            'U' => (DtypeKind::Unicode, size.unwrap_or(0).checked_mul(4)?),
            'S' | 'a' => (DtypeKind::Bytes, size.unwrap_or(0)),
            'O' => (DtypeKind::Object, 8),
            'V' => (DtypeKind::Void, size.unwrap_or(0)),
            _ => return None,
        };
        let valid_size = match kind {
            DtypeKind::Bool => item_size == 1,
            DtypeKind::Int | DtypeKind::UInt => matches!(item_size, 1 | 2 | 4 | 8),
            DtypeKind::Float => matches!(item_size, 2 | 4 | 8),
            DtypeKind::Complex => matches!(item_size, 8 | 16),
            _ => true,
        };
        if !valid_size {
            return None;
        }
        let byte_order = match kind {
            DtypeKind::Bool | DtypeKind::Bytes | DtypeKind::Object | DtypeKind::Void => {
                ByteOrder::NotApplicable
            }
            DtypeKind::Int | DtypeKind::UInt if item_size == 1 => ByteOrder::NotApplicable,
            _ => match explicit {
                Some(ByteOrder::NotApplicable) | None => ByteOrder::native(),
                Some(order) => order,
            },
        };
        Some(Dtype {
            kind,
            byte_order,
            item_size,
        })
    }

    /// The canonical descr string, as `np.save` writes it (`<f4`, `|u1`, `|O`, `<U5`).
    pub fn descr(&self) -> String {
        let size = match self.kind {
            DtypeKind::Object => return "|O".to_string(),
            DtypeKind::Unicode => self.item_size / 4,
            _ => self.item_size,
        };
        format!(
            "{}{}{}",
            self.byte_order.descr_char(),
            self.kind.descr_char(),
            size
        )
    }
}

impl fmt::Display for Dtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.descr())
    }
}

/// The elements of an [`NdArray`], in the array's memory order.
#[derive(Debug, Clone, PartialEq)]
pub enum ArrayData {
    /// Fixed-size elements: `len * item_size` bytes, in the dtype's byte order.
    Raw(Vec<u8>),
    /// Elements of an object array (`|O`), one Python value each.
    Objects(Vec<PickleValue>),
}

/// A NumPy array read from a pickle or a `.npy` file.
///
/// Invariant (checked at construction): the data holds exactly `product(shape)` elements.
#[derive(Debug, Clone, PartialEq)]
pub struct NdArray {
    dtype: Dtype,
    shape: Vec<usize>,
    len: usize,
    fortran_order: bool,
    data: ArrayData,
}

/// Numeric value of one element, before conversion.
enum Num {
    F(f64),
    I(i64),
    U(u64),
}

impl NdArray {
    /// Builds an array, checking that `data` holds `product(shape)` elements of `dtype`
    /// (raw data for fixed-size kinds, objects for `|O`). `what` names the source for errors.
    pub fn new(
        dtype: Dtype,
        shape: Vec<usize>,
        fortran_order: bool,
        data: ArrayData,
        what: &str,
    ) -> Result<Self> {
        let count = shape
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
            .ok_or_else(|| ReadError::LimitExceeded {
                file: what.to_string(),
                what: format!("element count of shape {shape:?}"),
                value: u64::MAX,
                limit: usize::MAX as u64,
            })?;
        // Elements of a zero-size dtype (`<U0`, `|S0`, `|V0`) take no bytes, so the data cannot
        // bound their count; converting them materialises one value each.
        if dtype.item_size == 0 && count > MAX_EMPTY_ELEMENTS {
            return Err(ReadError::LimitExceeded {
                file: what.to_string(),
                what: format!("element count of a zero-size dtype {dtype} of shape {shape:?}"),
                value: count as u64,
                limit: MAX_EMPTY_ELEMENTS as u64,
            });
        }
        match (&data, dtype.kind) {
            (ArrayData::Objects(items), DtypeKind::Object) => {
                if items.len() != count {
                    return Err(ReadError::MalformedPickle {
                        file: what.to_string(),
                        offset: 0,
                        msg: format!(
                            "object array of shape {shape:?} holds {} elements, expected {count}",
                            items.len()
                        ),
                    });
                }
            }
            (ArrayData::Raw(bytes), kind) if kind != DtypeKind::Object => {
                let expected = count.checked_mul(dtype.item_size);
                if expected != Some(bytes.len()) {
                    return Err(ReadError::MalformedPickle {
                        file: what.to_string(),
                        offset: 0,
                        msg: format!(
                            "array of dtype {dtype} and shape {shape:?} needs {} bytes, found {}",
                            expected.map_or_else(|| "too many".to_string(), |e| e.to_string()),
                            bytes.len()
                        ),
                    });
                }
            }
            _ => {
                return Err(ReadError::MalformedPickle {
                    file: what.to_string(),
                    offset: 0,
                    msg: format!("array data does not match dtype {dtype}"),
                })
            }
        }
        Ok(NdArray {
            dtype,
            shape,
            len: count,
            fortran_order,
            data,
        })
    }

    /// The element type.
    pub fn dtype(&self) -> Dtype {
        self.dtype
    }

    /// The element type as a descr string (`<f4`, `|O`, `<U5`).
    pub fn descr(&self) -> String {
        self.dtype.descr()
    }

    /// The shape (empty for a 0-d array / NumPy scalar).
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Whether the data is stored in Fortran (column-major) order. Conversions always return
    /// C (row-major) order.
    pub fn fortran_order(&self) -> bool {
        self.fortran_order
    }

    /// Number of elements (`product(shape)`, 1 for a 0-d array).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The data in memory order.
    pub fn data(&self) -> &ArrayData {
        &self.data
    }

    /// The raw bytes of a fixed-size array, in memory order; `None` for object arrays.
    pub fn raw_bytes(&self) -> Option<&[u8]> {
        match &self.data {
            ArrayData::Raw(bytes) => Some(bytes),
            ArrayData::Objects(_) => None,
        }
    }

    /// The elements of an object array, in memory order; `None` for fixed-size arrays.
    pub fn objects(&self) -> Option<&[PickleValue]> {
        match &self.data {
            ArrayData::Objects(items) => Some(items),
            ArrayData::Raw(_) => None,
        }
    }

    /// Consumes the array and returns its data.
    pub fn into_data(self) -> ArrayData {
        self.data
    }

    /// For each position in C order, the index of that element in memory order.
    /// `None` when memory order already is C order.
    fn c_order_permutation(&self) -> Option<Vec<usize>> {
        let non_trivial = self.shape.iter().filter(|&&d| d > 1).count();
        if !self.fortran_order || non_trivial <= 1 {
            return None;
        }
        let nd = self.shape.len();
        let n = self.len();
        let mut fstride = vec![1usize; nd];
        for k in 1..nd {
            fstride[k] = fstride[k - 1] * self.shape[k - 1];
        }
        let mut idx = vec![0usize; nd];
        let mut off = 0usize;
        let mut perm = Vec::with_capacity(n);
        for _ in 0..n {
            perm.push(off);
            let mut k = nd;
            while k > 0 {
                k -= 1;
                idx[k] += 1;
                off += fstride[k];
                if idx[k] < self.shape[k] {
                    break;
                }
                off -= fstride[k] * self.shape[k];
                idx[k] = 0;
            }
        }
        Some(perm)
    }

    fn reorder<T: Clone>(&self, values: Vec<T>) -> Vec<T> {
        match self.c_order_permutation() {
            None => values,
            Some(perm) => perm
                .into_iter()
                .filter_map(|i| values.get(i).cloned())
                .collect(),
        }
    }

    fn mismatch(&self, target: &'static str) -> ReadError {
        ReadError::TypeMismatch {
            what: format!("array of shape {:?}", self.shape),
            dtype: self.dtype.descr(),
            target,
        }
    }

    /// Decodes every element as a number, in memory order.
    fn numbers(&self, target: &'static str) -> Result<Vec<Num>> {
        let bytes = match &self.data {
            ArrayData::Raw(bytes) => bytes,
            ArrayData::Objects(items) => {
                return items
                    .iter()
                    .map(|v| match v {
                        PickleValue::Bool(b) => Ok(Num::I(i64::from(*b))),
                        PickleValue::Int(i) => Ok(Num::I(*i)),
                        PickleValue::Float(f) => Ok(Num::F(*f)),
                        _ => Err(self.mismatch(target)),
                    })
                    .collect();
            }
        };
        let size = self.dtype.item_size;
        let big = self.dtype.byte_order == ByteOrder::Big;
        let kind = self.dtype.kind;
        match kind {
            DtypeKind::Bool | DtypeKind::Int | DtypeKind::UInt | DtypeKind::Float => {}
            _ => return Err(self.mismatch(target)),
        }
        let mut out = Vec::with_capacity(self.len());
        for chunk in bytes.chunks_exact(size) {
            let mut buf = [0u8; 8];
            buf[..size].copy_from_slice(chunk);
            if big {
                buf[..size].reverse();
            }
            let bits = u64::from_le_bytes(buf);
            let num = match (kind, size) {
                (DtypeKind::Bool, _) => Num::I(i64::from(bits != 0)),
                (DtypeKind::UInt, _) => Num::U(bits),
                (DtypeKind::Int, 8) => Num::I(bits as i64),
                (DtypeKind::Int, _) => {
                    let shift = 64 - 8 * size as u32;
                    Num::I(((bits << shift) as i64) >> shift)
                }
                (DtypeKind::Float, 2) => Num::F(half::f16::from_bits(bits as u16).to_f64()),
                (DtypeKind::Float, 4) => Num::F(f64::from(f32::from_bits(bits as u32))),
                (DtypeKind::Float, _) => Num::F(f64::from_bits(bits)),
                _ => return Err(self.mismatch(target)),
            };
            out.push(num);
        }
        Ok(out)
    }

    /// All elements as `f32`, in C order (floats are rounded, integers and booleans converted).
    pub fn to_f32(&self) -> Result<Vec<f32>> {
        let values = self
            .numbers("f32")?
            .into_iter()
            .map(|n| match n {
                Num::F(f) => f as f32,
                Num::I(i) => i as f32,
                Num::U(u) => u as f32,
            })
            .collect();
        Ok(self.reorder(values))
    }

    /// All elements as `f64`, in C order.
    pub fn to_f64(&self) -> Result<Vec<f64>> {
        let values = self
            .numbers("f64")?
            .into_iter()
            .map(|n| match n {
                Num::F(f) => f,
                Num::I(i) => i as f64,
                Num::U(u) => u as f64,
            })
            .collect();
        Ok(self.reorder(values))
    }

    /// All elements as `i64`, in C order. Only integer and boolean arrays convert
    /// (an unsigned value above `i64::MAX` is an error); floats are a [`ReadError::TypeMismatch`].
    pub fn to_i64(&self) -> Result<Vec<i64>> {
        let values = self
            .numbers("i64")?
            .into_iter()
            .map(|n| match n {
                Num::I(i) => Ok(i),
                Num::U(u) => i64::try_from(u).map_err(|_| self.mismatch("i64")),
                Num::F(_) => Err(self.mismatch("i64")),
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(self.reorder(values))
    }

    /// All elements as strings, in C order: object arrays of `str` (or UTF-8 `bytes`),
    /// fixed-width `U` arrays (trailing NULs removed) and `S` arrays (trailing NULs removed,
    /// must be UTF-8).
    pub fn to_strings(&self) -> Result<Vec<String>> {
        let values: Vec<String> = match &self.data {
            ArrayData::Objects(items) => items
                .iter()
                .map(|v| match v {
                    PickleValue::Str(s) => Ok(s.clone()),
                    PickleValue::Bytes(b) => {
                        String::from_utf8(b.clone()).map_err(|_| self.mismatch("String"))
                    }
                    _ => Err(self.mismatch("String")),
                })
                .collect::<Result<_>>()?,
            ArrayData::Raw(bytes) => match self.dtype.kind {
                DtypeKind::Unicode if self.dtype.item_size == 0 => vec![String::new(); self.len()],
                DtypeKind::Unicode => {
                    let big = self.dtype.byte_order == ByteOrder::Big;
                    bytes
                        .chunks_exact(self.dtype.item_size)
                        .map(|item| {
                            let mut s = String::new();
                            for cp in item.chunks_exact(4) {
                                let arr = [cp[0], cp[1], cp[2], cp[3]];
                                let code = if big {
                                    u32::from_be_bytes(arr)
                                } else {
                                    u32::from_le_bytes(arr)
                                };
                                let c =
                                    char::from_u32(code).ok_or_else(|| self.mismatch("String"))?;
                                s.push(c);
                            }
                            Ok(s.trim_end_matches('\0').to_string())
                        })
                        .collect::<Result<_>>()?
                }
                DtypeKind::Bytes if self.dtype.item_size == 0 => vec![String::new(); self.len()],
                DtypeKind::Bytes => bytes
                    .chunks_exact(self.dtype.item_size)
                    .map(|item| {
                        let end = item.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
                        String::from_utf8(item[..end].to_vec()).map_err(|_| self.mismatch("String"))
                    })
                    .collect::<Result<_>>()?,
                _ => return Err(self.mismatch("String")),
            },
        };
        Ok(self.reorder(values))
    }
}
