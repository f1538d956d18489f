//! A reader for GGUF files (llama.cpp / ggml model files), versions 2 and 3,
//! with dequantisation to `f32`.
//!
//! # The format
//! A little-endian GGUF file is: the magic `GGUF`, a `u32` version, `u64`
//! tensor and metadata counts; the metadata (key, typed value; values may be
//! arrays, arrays may nest); one *tensor info* per tensor (name, dimensions,
//! ggml type, offset); padding to the alignment (`general.alignment`, default
//! 32); then the tensor data, each tensor at its offset from the start of that
//! data section.
//!
//! [`GgufFile::open`] reads and validates everything up to the data section —
//! counts against the file size, string lengths, UTF-8, type ids, dimensions,
//! block geometry, alignment, offsets in bounds and non-overlapping — and
//! reports any problem as a [`GgufError`] naming the key or tensor. It never
//! panics on malformed input. Tensor data is read only when asked for
//! ([`GgufFile::read_raw`], [`GgufFile::read_f32`]).
//!
//! # Shapes
//! GGUF lists a tensor's dimensions innermost first (ggml's `ne[0]` is the
//! length of a row). [`TensorInfo::gguf_dims`] returns them in that raw order;
//! [`TensorInfo::shape`] returns them reversed, the row-major ("PyTorch")
//! shape in which the dequantised values are laid out. A linear layer's
//! weight stored by llama.cpp with `gguf_dims() == [576, 1536]` has
//! `shape() == [1536, 576]`, i.e. `[out_features, in_features]` as in PyTorch.
//!
//! # Dequantisation
//! [`GgmlType::DEQUANTIZABLE`] lists the types [`GgufFile::read_f32`] and
//! [`dequantize`] turn into `f32`: F32, F16, BF16, F64, I8–I64, Q4_0, Q4_1,
//! Q5_0, Q5_1, Q8_0 and the k-quants Q2_K–Q6_K, each bit-identical to ggml's
//! reference dequantisation. Any other type opens fine and can be read raw;
//! dequantising it fails with [`GgufError::UnsupportedType`] naming the type.
//!
//! ```no_run
//! use v2l_io::gguf::GgufFile;
//! let gguf = GgufFile::open("SmolLM2-135M-Instruct.Q4_1.gguf")?;
//! assert_eq!(gguf.get_str("general.architecture")?, "llama");
//! let heads = gguf.get_u32("llama.attention.head_count")?;
//! let tokens = gguf.get_str_array("tokenizer.ggml.tokens")?;
//! let (shape, values) = gguf.read_f32("token_embd.weight")?;
//! assert_eq!(shape, [tokens.len(), 576]);
//! # let _ = (heads, values);
//! # Ok::<(), v2l_io::gguf::GgufError>(())
//! ```

mod dequant;
mod error;
mod ggml_type;
mod parse;
mod value;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

pub use dequant::dequantize;
pub use error::GgufError;
pub use ggml_type::GgmlType;
pub use value::{GgufArray, GgufValue, GgufValueType};

/// Result type of this module.
pub type Result<T, E = GgufError> = std::result::Result<T, E>;

/// Where a tensor's data lives and how many bytes it takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    name: String,
    ggml_type: GgmlType,
    dims: Vec<u64>,
    shape: Vec<usize>,
    offset: u64,
    file_offset: u64,
    n_elements: u64,
    n_bytes: u64,
}

impl TensorInfo {
    /// The tensor's name (`"blk.0.attn_q.weight"`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The element type.
    pub fn ggml_type(&self) -> GgmlType {
        self.ggml_type
    }

    /// Dimensions in GGUF/ggml order: **innermost first** (`dims[0]` is the
    /// row length, ggml's `ne[0]`). See [`TensorInfo::shape`] for row-major.
    pub fn gguf_dims(&self) -> &[u64] {
        &self.dims
    }

    /// The row-major ("PyTorch", C-order) shape: [`TensorInfo::gguf_dims`]
    /// reversed, outermost first. Dequantised values are laid out in this
    /// shape. Empty for a scalar (zero dimensions, one element).
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Offset of the data from the start of the data section, as stored.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Offset of the data from the start of the file.
    pub fn file_offset(&self) -> u64 {
        self.file_offset
    }

    /// Number of elements (the product of the dimensions).
    pub fn n_elements(&self) -> usize {
        // Checked to fit in `usize` when the file was opened.
        self.n_elements as usize
    }

    /// Size of the data in bytes.
    pub fn n_bytes(&self) -> usize {
        // Checked to fit in `usize` when the file was opened.
        self.n_bytes as usize
    }
}

/// The bytes behind a [`GgufFile`].
enum Source {
    File { file: Mutex<File>, path: PathBuf },
    Memory(Vec<u8>),
}

/// An opened GGUF file: its metadata and tensor index, with tensor data read
/// on demand.
///
/// `GgufFile` is `Send + Sync`; reads from several threads are serialised on
/// the file handle.
pub struct GgufFile {
    version: u32,
    metadata: BTreeMap<String, GgufValue>,
    tensors: Vec<TensorInfo>,
    index: HashMap<String, usize>,
    alignment: u64,
    data_offset: u64,
    file_len: u64,
    source: Source,
}

impl fmt::Debug for GgufFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let source = match &self.source {
            Source::File { path, .. } => path.display().to_string(),
            Source::Memory(_) => "<memory>".to_string(),
        };
        f.debug_struct("GgufFile")
            .field("source", &source)
            .field("version", &self.version)
            .field("metadata_entries", &self.metadata.len())
            .field("tensors", &self.tensors.len())
            .field("alignment", &self.alignment)
            .field("data_offset", &self.data_offset)
            .field("file_len", &self.file_len)
            .finish()
    }
}

impl GgufFile {
    /// Opens `path`, reading and validating the header, metadata and tensor
    /// index. Tensor data stays on disk until read.
    ///
    /// # Errors
    /// [`GgufError::Io`] if the file cannot be read; any other variant
    /// describes what is malformed or unsupported about it.
    pub fn open(path: impl AsRef<Path>) -> Result<GgufFile> {
        let path = path.as_ref();
        let io = |what: &str| {
            let context = format!("{what} {}", path.display());
            move |source| GgufError::Io { context, source }
        };
        let file = File::open(path).map_err(io("opening"))?;
        let len = file.metadata().map_err(io("reading the size of"))?.len();
        let header = parse::parse_header(
            BufReader::with_capacity(1 << 16, &file),
            len,
            &path.display().to_string(),
        )?;
        Ok(Self::assemble(
            header,
            len,
            Source::File {
                file: Mutex::new(file),
                path: path.to_path_buf(),
            },
        ))
    }

    /// Parses a GGUF file held in memory.
    ///
    /// # Errors
    /// As [`GgufFile::open`].
    pub fn from_bytes(bytes: Vec<u8>) -> Result<GgufFile> {
        let len = bytes.len() as u64;
        let header = parse::parse_header(bytes.as_slice(), len, "in-memory buffer")?;
        Ok(Self::assemble(header, len, Source::Memory(bytes)))
    }

    fn assemble(header: parse::Header, file_len: u64, source: Source) -> GgufFile {
        GgufFile {
            version: header.version,
            metadata: header.metadata,
            tensors: header.tensors,
            index: header.index,
            alignment: header.alignment,
            data_offset: header.data_offset,
            file_len,
            source,
        }
    }

    /// The format version (2 or 3).
    pub fn version(&self) -> u32 {
        self.version
    }

    /// Alignment of tensor data in bytes (`general.alignment`, default 32).
    pub fn alignment(&self) -> u64 {
        self.alignment
    }

    /// Offset of the data section from the start of the file.
    pub fn data_offset(&self) -> u64 {
        self.data_offset
    }

    /// Length of the file in bytes.
    pub fn file_len(&self) -> u64 {
        self.file_len
    }

    /// The path the file was opened from (`None` for [`GgufFile::from_bytes`]).
    pub fn path(&self) -> Option<&Path> {
        match &self.source {
            Source::File { path, .. } => Some(path),
            Source::Memory(_) => None,
        }
    }

    // ----- metadata -------------------------------------------------------

    /// All metadata, by key.
    pub fn metadata(&self) -> &BTreeMap<String, GgufValue> {
        &self.metadata
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&GgufValue> {
        self.metadata.get(key)
    }

    /// Whether `key` is present.
    pub fn contains_key(&self, key: &str) -> bool {
        self.metadata.contains_key(key)
    }

    /// The value of `key`, or [`GgufError::MissingKey`].
    ///
    /// # Errors
    /// [`GgufError::MissingKey`].
    pub fn value(&self, key: &str) -> Result<&GgufValue> {
        self.metadata.get(key).ok_or_else(|| GgufError::MissingKey {
            key: key.to_string(),
        })
    }

    fn wrong_type(key: &str, expected: &'static str, found: &GgufValue) -> GgufError {
        GgufError::WrongType {
            key: key.to_string(),
            expected,
            found: found.type_description(),
        }
    }

    fn integer<T: TryFrom<i128>>(&self, key: &str, target: &'static str) -> Result<T> {
        let value = self.value(key)?;
        let n = value
            .as_integer()
            .ok_or_else(|| Self::wrong_type(key, "an integer type", value))?;
        T::try_from(n).map_err(|_| GgufError::OutOfRange {
            key: key.to_string(),
            value: n.to_string(),
            target,
        })
    }

    /// `key` as a `u8`. Like all integer getters it accepts a value of any
    /// integer type that fits.
    ///
    /// # Errors
    /// [`GgufError::MissingKey`], [`GgufError::WrongType`] (not an integer),
    /// [`GgufError::OutOfRange`].
    pub fn get_u8(&self, key: &str) -> Result<u8> {
        self.integer(key, "u8")
    }

    /// `key` as an `i8` (any integer type that fits).
    ///
    /// # Errors
    /// As [`GgufFile::get_u8`].
    pub fn get_i8(&self, key: &str) -> Result<i8> {
        self.integer(key, "i8")
    }

    /// `key` as a `u16` (any integer type that fits).
    ///
    /// # Errors
    /// As [`GgufFile::get_u8`].
    pub fn get_u16(&self, key: &str) -> Result<u16> {
        self.integer(key, "u16")
    }

    /// `key` as an `i16` (any integer type that fits).
    ///
    /// # Errors
    /// As [`GgufFile::get_u8`].
    pub fn get_i16(&self, key: &str) -> Result<i16> {
        self.integer(key, "i16")
    }

    /// `key` as a `u32` (any integer type that fits).
    ///
    /// # Errors
    /// As [`GgufFile::get_u8`].
    pub fn get_u32(&self, key: &str) -> Result<u32> {
        self.integer(key, "u32")
    }

    /// `key` as an `i32` (any integer type that fits).
    ///
    /// # Errors
    /// As [`GgufFile::get_u8`].
    pub fn get_i32(&self, key: &str) -> Result<i32> {
        self.integer(key, "i32")
    }

    /// `key` as a `u64` (any integer type that fits).
    ///
    /// # Errors
    /// As [`GgufFile::get_u8`].
    pub fn get_u64(&self, key: &str) -> Result<u64> {
        self.integer(key, "u64")
    }

    /// `key` as an `i64` (any integer type that fits).
    ///
    /// # Errors
    /// As [`GgufFile::get_u8`].
    pub fn get_i64(&self, key: &str) -> Result<i64> {
        self.integer(key, "i64")
    }

    /// `key` as a `usize` (any integer type that fits).
    ///
    /// # Errors
    /// As [`GgufFile::get_u8`].
    pub fn get_usize(&self, key: &str) -> Result<usize> {
        self.integer(key, "usize")
    }

    /// `key` as an `f32`: a `float32`, or a `float64` rounded to `f32`.
    ///
    /// # Errors
    /// [`GgufError::MissingKey`], [`GgufError::WrongType`].
    pub fn get_f32(&self, key: &str) -> Result<f32> {
        match self.value(key)? {
            GgufValue::F32(v) => Ok(*v),
            GgufValue::F64(v) => Ok(*v as f32),
            other => Err(Self::wrong_type(key, "FLOAT32 or FLOAT64", other)),
        }
    }

    /// `key` as an `f64`: a `float64`, or a `float32` widened.
    ///
    /// # Errors
    /// [`GgufError::MissingKey`], [`GgufError::WrongType`].
    pub fn get_f64(&self, key: &str) -> Result<f64> {
        let value = self.value(key)?;
        value
            .as_float()
            .ok_or_else(|| Self::wrong_type(key, "FLOAT32 or FLOAT64", value))
    }

    /// `key` as a `bool`.
    ///
    /// # Errors
    /// [`GgufError::MissingKey`], [`GgufError::WrongType`].
    pub fn get_bool(&self, key: &str) -> Result<bool> {
        match self.value(key)? {
            GgufValue::Bool(v) => Ok(*v),
            other => Err(Self::wrong_type(key, "BOOL", other)),
        }
    }

    /// `key` as a string.
    ///
    /// # Errors
    /// [`GgufError::MissingKey`], [`GgufError::WrongType`].
    pub fn get_str(&self, key: &str) -> Result<&str> {
        let value = self.value(key)?;
        value
            .as_str()
            .ok_or_else(|| Self::wrong_type(key, "STRING", value))
    }

    /// `key` as an array of any element type.
    ///
    /// # Errors
    /// [`GgufError::MissingKey`], [`GgufError::WrongType`].
    pub fn get_array(&self, key: &str) -> Result<&GgufArray> {
        let value = self.value(key)?;
        value
            .as_array()
            .ok_or_else(|| Self::wrong_type(key, "ARRAY", value))
    }

    /// `key` as an array of strings (`tokenizer.ggml.tokens`, `…merges`).
    ///
    /// # Errors
    /// [`GgufError::MissingKey`], [`GgufError::WrongType`].
    pub fn get_str_array(&self, key: &str) -> Result<&[String]> {
        match self.value(key)? {
            GgufValue::Array(GgufArray::String(v)) => Ok(v),
            other => Err(Self::wrong_type(key, "ARRAY[STRING]", other)),
        }
    }

    /// `key` as an array of `int32` (`tokenizer.ggml.token_type`).
    ///
    /// # Errors
    /// [`GgufError::MissingKey`], [`GgufError::WrongType`].
    pub fn get_i32_array(&self, key: &str) -> Result<&[i32]> {
        match self.value(key)? {
            GgufValue::Array(GgufArray::I32(v)) => Ok(v),
            other => Err(Self::wrong_type(key, "ARRAY[INT32]", other)),
        }
    }

    /// `key` as an array of `uint32`.
    ///
    /// # Errors
    /// [`GgufError::MissingKey`], [`GgufError::WrongType`].
    pub fn get_u32_array(&self, key: &str) -> Result<&[u32]> {
        match self.value(key)? {
            GgufValue::Array(GgufArray::U32(v)) => Ok(v),
            other => Err(Self::wrong_type(key, "ARRAY[UINT32]", other)),
        }
    }

    /// `key` as an array of `float32` (`tokenizer.ggml.scores`).
    ///
    /// # Errors
    /// [`GgufError::MissingKey`], [`GgufError::WrongType`].
    pub fn get_f32_array(&self, key: &str) -> Result<&[f32]> {
        match self.value(key)? {
            GgufValue::Array(GgufArray::F32(v)) => Ok(v),
            other => Err(Self::wrong_type(key, "ARRAY[FLOAT32]", other)),
        }
    }

    // ----- tensors --------------------------------------------------------

    /// All tensor infos, in file order.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    /// The tensor named `name`.
    ///
    /// # Errors
    /// [`GgufError::TensorNotFound`].
    pub fn tensor_info(&self, name: &str) -> Result<&TensorInfo> {
        self.index
            .get(name)
            .and_then(|&i| self.tensors.get(i))
            .ok_or_else(|| GgufError::TensorNotFound {
                tensor: name.to_string(),
            })
    }

    /// The raw bytes of tensor `name`, exactly as stored (ggml block layout).
    ///
    /// # Errors
    /// [`GgufError::TensorNotFound`]; [`GgufError::Io`] if reading fails
    /// (e.g. the file was truncated after opening).
    pub fn read_raw(&self, name: &str) -> Result<Vec<u8>> {
        self.read_raw_info(self.tensor_info(name)?)
    }

    fn read_raw_info(&self, info: &TensorInfo) -> Result<Vec<u8>> {
        if info.n_bytes == 0 {
            // May sit at the end of a file without a data section.
            return Ok(Vec::new());
        }
        match &self.source {
            Source::Memory(bytes) => {
                // Bounds were validated when parsing; `get` keeps this
                // panic-free regardless.
                let start = usize::try_from(info.file_offset).ok();
                let range = start.and_then(|s| Some(s..s.checked_add(info.n_bytes())?));
                range
                    .and_then(|r| bytes.get(r))
                    .map(<[u8]>::to_vec)
                    .ok_or_else(|| {
                        parse::invalid(format!("tensor {:?}", info.name), "data out of bounds")
                    })
            }
            Source::File { file, path } => {
                let mut buf = vec![0u8; info.n_bytes()];
                let mut file = file.lock().unwrap_or_else(PoisonError::into_inner);
                file.seek(SeekFrom::Start(info.file_offset))
                    .and_then(|_| file.read_exact(&mut buf))
                    .map_err(|source| GgufError::Io {
                        context: format!(
                            "reading {} bytes of tensor {:?} at offset {} of {}",
                            info.n_bytes,
                            info.name,
                            info.file_offset,
                            path.display()
                        ),
                        source,
                    })?;
                Ok(buf)
            }
        }
    }

    /// Tensor `name` dequantised to `f32`: its row-major shape (see
    /// [`TensorInfo::shape`]) and values in that order.
    ///
    /// # Errors
    /// [`GgufError::TensorNotFound`]; [`GgufError::UnsupportedType`] naming
    /// the tensor and its type when it is not in [`GgmlType::DEQUANTIZABLE`];
    /// [`GgufError::Io`].
    pub fn read_f32(&self, name: &str) -> Result<(Vec<usize>, Vec<f32>)> {
        let info = self.tensor_info(name)?;
        if !info.ggml_type.can_dequantize() {
            // Refused before the output is allocated.
            return Err(GgufError::UnsupportedType {
                tensor: Some(info.name.clone()),
                ggml_type: info.ggml_type,
            });
        }
        let mut out = vec![0f32; info.n_elements()];
        self.read_f32_into(info, &mut out)?;
        Ok((info.shape.clone(), out))
    }

    /// Dequantises the tensor described by `info` (which must come from this
    /// file) into `out`, whose length must be `info.n_elements()`.
    ///
    /// # Errors
    /// [`GgufError::UnsupportedType`], [`GgufError::SizeMismatch`] (wrong
    /// `out` length), [`GgufError::Io`].
    pub fn read_f32_into(&self, info: &TensorInfo, out: &mut [f32]) -> Result<()> {
        if !info.ggml_type.can_dequantize() {
            return Err(GgufError::UnsupportedType {
                tensor: Some(info.name.clone()),
                ggml_type: info.ggml_type,
            });
        }
        let raw = self.read_raw_info(info)?;
        dequantize(info.ggml_type, &raw, out)
    }
}
