//! NumPy `.npy` files, format versions 1.0, 2.0 and 3.0.
//!
//! Numeric dtypes (`b1`, `i1`–`i8`, `u1`–`u8`, `f2`/`f4`/`f8`) in either byte order (big-endian
//! data is converted when read out), fixed-width strings (`<U*`, `|S*`), C and Fortran order,
//! and object arrays (`|O`, which `np.save(..., allow_pickle=True)` writes as a pickle after
//! the header — decoded by the allow-listed [`pickle`](super::pickle) VM, so e.g. the
//! official `global_vocabulary.npy` reads as strings). Structured dtypes are refused.
//!
//! ```no_run
//! # fn main() -> v2l_io::Result<()> {
//! let vocab = v2l_io::npy::read("global_vocabulary.npy")?;
//! let words: Vec<String> = vocab.to_strings()?;
//! # Ok(()) }
//! ```

use std::path::Path;

use super::array::{ArrayData, Dtype, DtypeKind, NdArray};
use super::error::{ReadError, Result};
use super::pickle::{PickleValue, Unpickler};

const MAGIC: &[u8] = b"\x93NUMPY";
/// Largest header accepted (numpy itself refuses more than 10 000 bytes by default).
const MAX_HEADER: usize = 1 << 20;
const MAX_LITERAL_DEPTH: usize = 32;

/// Reads a `.npy` file.
pub fn read(path: impl AsRef<Path>) -> Result<NdArray> {
    let path = path.as_ref();
    let data = std::fs::read(path).map_err(|e| ReadError::io(path, e))?;
    from_bytes(&data, &path.display().to_string())
}

/// Parses a `.npy` file held in memory; `name` labels it in error messages.
pub fn from_bytes(data: &[u8], name: &str) -> Result<NdArray> {
    let err = |msg: String| ReadError::Npy {
        file: name.to_string(),
        msg,
    };
    if data.len() < MAGIC.len() + 2 || !data.starts_with(MAGIC) {
        return Err(err("missing the \\x93NUMPY magic".to_string()));
    }
    let (major, minor) = (data[6], data[7]);
    let (header_len, start) = match major {
        1 => {
            let b = data
                .get(8..10)
                .ok_or_else(|| err("truncated header length".to_string()))?;
            (usize::from(u16::from_le_bytes([b[0], b[1]])), 10)
        }
        2 | 3 => {
            let b = data
                .get(8..12)
                .ok_or_else(|| err("truncated header length".to_string()))?;
            let len = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            (usize::try_from(len).unwrap_or(usize::MAX), 12)
        }
        _ => return Err(err(format!("unsupported format version {major}.{minor}"))),
    };
    if header_len > MAX_HEADER {
        return Err(ReadError::LimitExceeded {
            file: name.to_string(),
            what: ".npy header length".to_string(),
            value: header_len as u64,
            limit: MAX_HEADER as u64,
        });
    }
    let header_bytes = data
        .get(start..start + header_len)
        .ok_or_else(|| ReadError::Truncated {
            file: name.to_string(),
            offset: data.len() as u64,
            what: format!(".npy header of {header_len} bytes"),
        })?;
    let header: String = if major == 3 {
        std::str::from_utf8(header_bytes)
            .map_err(|_| err("header is not UTF-8".to_string()))?
            .to_string()
    } else {
        header_bytes.iter().map(|&b| char::from(b)).collect()
    };
    let body = &data[start + header_len..];

    let lit = Parser::new(&header)
        .parse_all()
        .ok_or_else(|| err(format!("cannot parse header {:?}", header.trim_end())))?;
    let Lit::Dict(entries) = lit else {
        return Err(err("header is not a dict".to_string()));
    };
    let field = |key: &str| {
        entries.iter().find_map(|(k, v)| match k {
            Lit::Str(s) if s == key => Some(v),
            _ => None,
        })
    };
    let descr = match field("descr") {
        Some(Lit::Str(s)) => s.clone(),
        Some(Lit::List) => {
            return Err(ReadError::Unsupported {
                file: name.to_string(),
                what: "structured .npy dtype".to_string(),
            })
        }
        _ => return Err(err("header has no 'descr' string".to_string())),
    };
    let dtype = Dtype::parse(&descr).ok_or_else(|| ReadError::Unsupported {
        file: name.to_string(),
        what: format!(".npy dtype {descr:?}"),
    })?;
    let fortran_order = match field("fortran_order") {
        Some(Lit::Bool(b)) => *b,
        _ => return Err(err("header has no 'fortran_order' bool".to_string())),
    };
    let shape = match field("shape") {
        Some(Lit::Tuple(items)) => items
            .iter()
            .map(|i| match i {
                Lit::Int(v) => usize::try_from(*v).ok(),
                _ => None,
            })
            .collect::<Option<Vec<usize>>>()
            .ok_or_else(|| err("'shape' must hold non-negative ints".to_string()))?,
        _ => return Err(err("header has no 'shape' tuple".to_string())),
    };

    if dtype.kind == DtypeKind::Object {
        let value = Unpickler::new(format!("{name} (object array pickle)")).load(body)?;
        let PickleValue::NdArray(array) = value else {
            return Err(err(format!(
                "object array pickle holds a {}, not an array",
                value.type_name()
            )));
        };
        if array.shape() != shape.as_slice() {
            return Err(err(format!(
                "header shape {shape:?} differs from the pickled array's {:?}",
                array.shape()
            )));
        }
        return Ok(array);
    }

    let count = shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .and_then(|c| c.checked_mul(dtype.item_size))
        .ok_or_else(|| err(format!("shape {shape:?} is too large")))?;
    if body.len() != count {
        return Err(err(format!(
            "data holds {} bytes, dtype {descr} and shape {shape:?} need {count}",
            body.len()
        )));
    }
    NdArray::new(
        dtype,
        shape,
        fortran_order,
        ArrayData::Raw(body.to_vec()),
        name,
    )
}

/// A Python literal as found in a `.npy` header.
#[derive(Debug)]
enum Lit {
    Str(String),
    Int(i64),
    Bool(bool),
    None,
    Tuple(Vec<Lit>),
    /// A list (only its presence matters: a list `descr` is a structured dtype).
    List,
    Dict(Vec<(Lit, Lit)>),
}

struct Parser<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
}

impl<'a> Parser<'a> {
    fn new(s: &'a str) -> Self {
        Parser {
            chars: s.chars().peekable(),
        }
    }

    fn parse_all(mut self) -> Option<Lit> {
        let lit = self.value(0)?;
        self.skip_ws();
        if self.chars.next().is_some() {
            return None;
        }
        Some(lit)
    }

    fn skip_ws(&mut self) {
        while self.chars.peek().is_some_and(|c| c.is_whitespace()) {
            self.chars.next();
        }
    }

    fn value(&mut self, depth: usize) -> Option<Lit> {
        if depth > MAX_LITERAL_DEPTH {
            return None;
        }
        self.skip_ws();
        match *self.chars.peek()? {
            '{' => {
                self.chars.next();
                let mut entries = Vec::new();
                loop {
                    self.skip_ws();
                    if self.chars.peek() == Some(&'}') {
                        self.chars.next();
                        return Some(Lit::Dict(entries));
                    }
                    let k = self.value(depth + 1)?;
                    self.skip_ws();
                    if self.chars.next()? != ':' {
                        return None;
                    }
                    let v = self.value(depth + 1)?;
                    entries.push((k, v));
                    self.skip_ws();
                    match self.chars.next()? {
                        ',' => {}
                        '}' => return Some(Lit::Dict(entries)),
                        _ => return None,
                    }
                }
            }
            open @ ('(' | '[') => {
                self.chars.next();
                let close = if open == '(' { ')' } else { ']' };
                let mut items = Vec::new();
                loop {
                    self.skip_ws();
                    if self.chars.peek() == Some(&close) {
                        self.chars.next();
                        break;
                    }
                    items.push(self.value(depth + 1)?);
                    self.skip_ws();
                    match self.chars.next()? {
                        ',' => {}
                        c if c == close => break,
                        _ => return None,
                    }
                }
                Some(if open == '(' {
                    Lit::Tuple(items)
                } else {
                    Lit::List
                })
            }
            q @ ('\'' | '"') => {
                self.chars.next();
                let mut s = String::new();
                loop {
                    match self.chars.next()? {
                        '\\' => s.push(self.chars.next()?),
                        c if c == q => return Some(Lit::Str(s)),
                        c => s.push(c),
                    }
                }
            }
            c if c.is_ascii_digit() || c == '-' || c == '+' => {
                let mut s = String::new();
                while let Some(&c) = self.chars.peek() {
                    if c.is_ascii_digit() || c == '-' || c == '+' {
                        s.push(c);
                        self.chars.next();
                    } else {
                        break;
                    }
                }
                // Python 2 long suffix, as in "(3L, 4L)".
                if matches!(self.chars.peek(), Some('L' | 'l')) {
                    self.chars.next();
                }
                s.parse().ok().map(Lit::Int)
            }
            _ => {
                let mut word = String::new();
                while let Some(&c) = self.chars.peek() {
                    if c.is_ascii_alphabetic() {
                        word.push(c);
                        self.chars.next();
                    } else {
                        break;
                    }
                }
                match word.as_str() {
                    "True" => Some(Lit::Bool(true)),
                    "False" => Some(Lit::Bool(false)),
                    "None" => Some(Lit::None),
                    _ => None,
                }
            }
        }
    }
}
