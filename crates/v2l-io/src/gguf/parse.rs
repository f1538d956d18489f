//! Parsing of the GGUF header, metadata and tensor index.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;

use super::{GgmlType, GgufArray, GgufError, GgufValue, GgufValueType, TensorInfo};

/// ggml's `GGML_MAX_DIMS`.
pub(crate) const MAX_DIMS: u32 = 4;
/// Deepest nesting of arrays inside arrays accepted in metadata.
pub(crate) const MAX_ARRAY_DEPTH: u32 = 8;
/// Most elements reserved up front for a boxed (bool, string, array) array.
const MAX_RESERVE: usize = 1 << 16;
/// Alignment of tensor data when `general.alignment` is absent.
pub(crate) const DEFAULT_ALIGNMENT: u64 = 32;
/// The metadata key that overrides the alignment.
pub(crate) const ALIGNMENT_KEY: &str = "general.alignment";

/// Everything read from the front of a GGUF file.
#[derive(Debug)]
pub(crate) struct Header {
    pub version: u32,
    pub metadata: BTreeMap<String, GgufValue>,
    pub tensors: Vec<TensorInfo>,
    pub index: HashMap<String, usize>,
    pub alignment: u64,
    pub data_offset: u64,
}

/// A byte reader that knows its position and the total length, so that
/// every length read from the file is checked against the bytes left before
/// anything is allocated.
struct Reader<R> {
    inner: R,
    pos: u64,
    len: u64,
    /// Describes the source for I/O errors (a path or "in-memory buffer").
    source: String,
}

/// Lazily built description of what is being read, for error messages.
type Ctx<'a> = &'a dyn Fn() -> String;

impl<R: Read> Reader<R> {
    fn remaining(&self) -> u64 {
        self.len.saturating_sub(self.pos)
    }

    /// Fails with [`GgufError::Truncated`] unless `n` more bytes exist.
    fn need(&self, n: u64, ctx: Ctx<'_>) -> Result<(), GgufError> {
        if n > self.remaining() {
            return Err(GgufError::Truncated {
                context: ctx(),
                offset: self.pos,
                needed: n,
                file_len: self.len,
            });
        }
        Ok(())
    }

    fn fill(&mut self, buf: &mut [u8], ctx: Ctx<'_>) -> Result<(), GgufError> {
        let n = buf.len() as u64;
        self.need(n, ctx)?;
        self.inner.read_exact(buf).map_err(|source| GgufError::Io {
            context: format!(
                "reading {} at offset {} of {}",
                ctx(),
                self.pos,
                self.source
            ),
            source,
        })?;
        self.pos += n;
        Ok(())
    }

    fn array<const N: usize>(&mut self, ctx: Ctx<'_>) -> Result<[u8; N], GgufError> {
        let mut buf = [0u8; N];
        self.fill(&mut buf, ctx)?;
        Ok(buf)
    }

    /// `n` bytes, after checking they exist (so a corrupt length cannot
    /// trigger a huge allocation).
    fn bytes(&mut self, n: u64, ctx: Ctx<'_>) -> Result<Vec<u8>, GgufError> {
        self.need(n, ctx)?;
        let n = usize::try_from(n).map_err(|_| invalid(ctx(), "length does not fit in memory"))?;
        let mut buf = vec![0u8; n];
        self.fill(&mut buf, ctx)?;
        Ok(buf)
    }

    fn u32(&mut self, ctx: Ctx<'_>) -> Result<u32, GgufError> {
        Ok(u32::from_le_bytes(self.array(ctx)?))
    }

    fn u64(&mut self, ctx: Ctx<'_>) -> Result<u64, GgufError> {
        Ok(u64::from_le_bytes(self.array(ctx)?))
    }

    fn string(&mut self, ctx: Ctx<'_>) -> Result<String, GgufError> {
        let len = self.u64(&|| format!("{} (string length)", ctx()))?;
        let bytes = self.bytes(len, &|| format!("{} (string of {len} bytes)", ctx()))?;
        String::from_utf8(bytes).map_err(|source| GgufError::InvalidUtf8 {
            context: ctx(),
            source,
        })
    }

    fn value_type(&mut self, ctx: Ctx<'_>) -> Result<GgufValueType, GgufError> {
        let id = self.u32(&|| format!("{} (value type)", ctx()))?;
        GgufValueType::from_id(id).ok_or_else(|| GgufError::UnknownValueType {
            context: ctx(),
            type_id: id,
        })
    }

    fn bool(&mut self, ctx: Ctx<'_>) -> Result<bool, GgufError> {
        match self.array::<1>(ctx)?[0] {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(invalid(ctx(), format!("bool byte is {other}, not 0 or 1"))),
        }
    }

    fn value(&mut self, ty: GgufValueType, ctx: Ctx<'_>) -> Result<GgufValue, GgufError> {
        use GgufValueType as T;
        Ok(match ty {
            T::U8 => GgufValue::U8(u8::from_le_bytes(self.array(ctx)?)),
            T::I8 => GgufValue::I8(i8::from_le_bytes(self.array(ctx)?)),
            T::U16 => GgufValue::U16(u16::from_le_bytes(self.array(ctx)?)),
            T::I16 => GgufValue::I16(i16::from_le_bytes(self.array(ctx)?)),
            T::U32 => GgufValue::U32(u32::from_le_bytes(self.array(ctx)?)),
            T::I32 => GgufValue::I32(i32::from_le_bytes(self.array(ctx)?)),
            T::F32 => GgufValue::F32(f32::from_le_bytes(self.array(ctx)?)),
            T::U64 => GgufValue::U64(u64::from_le_bytes(self.array(ctx)?)),
            T::I64 => GgufValue::I64(i64::from_le_bytes(self.array(ctx)?)),
            T::F64 => GgufValue::F64(f64::from_le_bytes(self.array(ctx)?)),
            T::Bool => GgufValue::Bool(self.bool(ctx)?),
            T::String => GgufValue::String(self.string(ctx)?),
            T::Array => GgufValue::Array(self.array_value(0, ctx)?),
        })
    }

    /// Reads `count` fixed-size numbers in one go.
    fn numbers<const N: usize, T>(
        &mut self,
        count: u64,
        ctx: Ctx<'_>,
        convert: fn([u8; N]) -> T,
    ) -> Result<Vec<T>, GgufError> {
        let total = count
            .checked_mul(N as u64)
            .ok_or_else(|| invalid(ctx(), format!("array of {count} elements overflows")))?;
        let raw = self.bytes(total, ctx)?;
        let (chunks, _) = raw.as_chunks::<N>();
        Ok(chunks.iter().map(|c| convert(*c)).collect())
    }

    /// An array value: element type, count, elements.
    fn array_value(&mut self, depth: u32, ctx: Ctx<'_>) -> Result<GgufArray, GgufError> {
        use GgufValueType as T;
        let elem = self.value_type(&|| format!("{} (array element type)", ctx()))?;
        let count = self.u64(&|| format!("{} (array length)", ctx()))?;
        // Every element takes at least `min` bytes: bound the count by the
        // bytes left before reserving memory for it.
        let min = elem.min_encoded_size();
        if count > self.remaining() / min {
            return Err(invalid(
                ctx(),
                format!(
                    "array of {count} {elem} elements cannot fit in the {} bytes left in the file",
                    self.remaining()
                ),
            ));
        }
        // Bounded by the file size above; the up-front reservation is capped
        // further, so a corrupt count costs no more than the bytes it reads.
        let n = usize::try_from(count).map_err(|_| invalid(ctx(), "array too long"))?;
        let reserve = n.min(MAX_RESERVE);
        Ok(match elem {
            T::U8 => GgufArray::U8(self.numbers(count, ctx, u8::from_le_bytes)?),
            T::I8 => GgufArray::I8(self.numbers(count, ctx, i8::from_le_bytes)?),
            T::U16 => GgufArray::U16(self.numbers(count, ctx, u16::from_le_bytes)?),
            T::I16 => GgufArray::I16(self.numbers(count, ctx, i16::from_le_bytes)?),
            T::U32 => GgufArray::U32(self.numbers(count, ctx, u32::from_le_bytes)?),
            T::I32 => GgufArray::I32(self.numbers(count, ctx, i32::from_le_bytes)?),
            T::F32 => GgufArray::F32(self.numbers(count, ctx, f32::from_le_bytes)?),
            T::U64 => GgufArray::U64(self.numbers(count, ctx, u64::from_le_bytes)?),
            T::I64 => GgufArray::I64(self.numbers(count, ctx, i64::from_le_bytes)?),
            T::F64 => GgufArray::F64(self.numbers(count, ctx, f64::from_le_bytes)?),
            T::Bool => {
                let mut out = Vec::with_capacity(reserve);
                for i in 0..n {
                    out.push(self.bool(&|| format!("{}[{i}]", ctx()))?);
                }
                GgufArray::Bool(out)
            }
            T::String => {
                let mut out = Vec::with_capacity(reserve);
                for i in 0..n {
                    out.push(self.string(&|| format!("{}[{i}]", ctx()))?);
                }
                GgufArray::String(out)
            }
            T::Array => {
                if depth + 1 >= MAX_ARRAY_DEPTH {
                    return Err(invalid(
                        ctx(),
                        format!("arrays nested more than {MAX_ARRAY_DEPTH} deep"),
                    ));
                }
                let mut out = Vec::with_capacity(reserve);
                for i in 0..n {
                    out.push(self.array_value(depth + 1, &|| format!("{}[{i}]", ctx()))?);
                }
                GgufArray::Array(out)
            }
        })
    }
}

pub(crate) fn invalid(context: impl Into<String>, reason: impl Into<String>) -> GgufError {
    GgufError::Invalid {
        context: context.into(),
        reason: reason.into(),
    }
}

/// Reads and validates the header, metadata and tensor index from `inner`,
/// positioned at the start of a file of `len` bytes. `source` names the file
/// in I/O errors.
pub(crate) fn parse_header<R: Read>(inner: R, len: u64, source: &str) -> Result<Header, GgufError> {
    let mut r = Reader {
        inner,
        pos: 0,
        len,
        source: source.to_string(),
    };

    // Magic and version.
    let magic: [u8; 4] = r.array(&|| "the magic bytes".into())?;
    if &magic != b"GGUF" {
        return Err(GgufError::BadMagic { found: magic });
    }
    let version = r.u32(&|| "the version field".into())?;
    match version {
        2 | 3 => {}
        v if matches!(v.swap_bytes(), 1..=3) => {
            return Err(GgufError::BigEndian {
                version: v.swap_bytes(),
            })
        }
        v => return Err(GgufError::UnsupportedVersion { version: v }),
    }
    let tensor_count = r.u64(&|| "the tensor count".into())?;
    let kv_count = r.u64(&|| "the metadata count".into())?;
    // Smallest encodings: a key/value is a length, a type and one byte; a
    // tensor info is a name length, n_dims, type and offset.
    if kv_count > r.remaining() / 13 {
        return Err(invalid(
            "header",
            format!("{kv_count} metadata entries cannot fit in a file of {len} bytes"),
        ));
    }
    if tensor_count > r.remaining() / 24 {
        return Err(invalid(
            "header",
            format!("{tensor_count} tensor infos cannot fit in a file of {len} bytes"),
        ));
    }

    // Metadata.
    let mut metadata = BTreeMap::new();
    for i in 0..kv_count {
        let key = r.string(&|| format!("key of metadata entry {i}"))?;
        let ctx = || format!("metadata key {key:?}");
        let ty = r.value_type(&ctx)?;
        let value = r.value(ty, &ctx)?;
        if metadata.contains_key(&key) {
            return Err(GgufError::DuplicateKey { key });
        }
        metadata.insert(key, value);
    }
    let alignment = match metadata.get(ALIGNMENT_KEY) {
        None => DEFAULT_ALIGNMENT,
        Some(GgufValue::U32(a)) if a.is_power_of_two() => u64::from(*a),
        Some(GgufValue::U32(a)) => {
            return Err(invalid(
                format!("metadata key {ALIGNMENT_KEY:?}"),
                format!("alignment {a} is not a power of two"),
            ))
        }
        Some(other) => {
            return Err(GgufError::WrongType {
                key: ALIGNMENT_KEY.to_string(),
                expected: "UINT32",
                found: other.type_description(),
            })
        }
    };

    // Tensor infos.
    let mut tensors = Vec::new();
    let mut index = HashMap::new();
    for i in 0..tensor_count {
        let name = r.string(&|| format!("name of tensor info {i}"))?;
        let ctx = || format!("tensor {name:?}");
        let info = read_tensor_info(&mut r, name.clone(), &ctx)?;
        if index.insert(name.clone(), tensors.len()).is_some() {
            return Err(GgufError::DuplicateTensor { tensor: name });
        }
        tensors.push(info);
    }

    // Data section.
    let data_offset = r
        .pos
        .checked_next_multiple_of(alignment)
        .ok_or_else(|| invalid("header", "data offset overflows"))?;
    let data_len = len.saturating_sub(data_offset);
    for t in &mut tensors {
        if !t.offset.is_multiple_of(alignment) {
            return Err(invalid(
                format!("tensor {:?}", t.name),
                format!(
                    "data offset {} is not a multiple of the alignment {alignment}",
                    t.offset
                ),
            ));
        }
        let end = t.offset.checked_add(t.n_bytes);
        if end.is_none_or(|end| end > data_len) {
            return Err(invalid(
                format!("tensor {:?}", t.name),
                format!(
                    "data ({} bytes at offset {} of the data section) runs past the end \
                     of the file (the data section, from file offset {data_offset}, \
                     holds {data_len} bytes)",
                    t.n_bytes, t.offset
                ),
            ));
        }
        t.file_offset = data_offset + t.offset;
    }
    // No two tensors may share bytes.
    let mut by_offset: Vec<&TensorInfo> = tensors.iter().filter(|t| t.n_bytes > 0).collect();
    by_offset.sort_by_key(|t| t.offset);
    for pair in by_offset.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        if a.offset + a.n_bytes > b.offset {
            return Err(invalid(
                format!("tensor {:?}", b.name),
                format!(
                    "data at offset {} overlaps tensor {:?} ({} bytes at offset {})",
                    b.offset, a.name, a.n_bytes, a.offset
                ),
            ));
        }
    }

    Ok(Header {
        version,
        metadata,
        tensors,
        index,
        alignment,
        data_offset,
    })
}

fn read_tensor_info<R: Read>(
    r: &mut Reader<R>,
    name: String,
    ctx: Ctx<'_>,
) -> Result<TensorInfo, GgufError> {
    let n_dims = r.u32(&|| format!("{} (number of dimensions)", ctx()))?;
    if n_dims > MAX_DIMS {
        return Err(invalid(
            ctx(),
            format!("{n_dims} dimensions, at most {MAX_DIMS} are allowed"),
        ));
    }
    let mut dims = Vec::with_capacity(n_dims as usize);
    for d in 0..n_dims {
        dims.push(r.u64(&|| format!("{} (dimension {d})", ctx()))?);
    }
    let type_id = r.u32(&|| format!("{} (type)", ctx()))?;
    let offset = r.u64(&|| format!("{} (data offset)", ctx()))?;

    let ggml_type = GgmlType::from_id(type_id).ok_or_else(|| GgufError::UnknownTensorType {
        tensor: name.clone(),
        type_id,
    })?;
    let (Some(block), Some(_)) = (ggml_type.block_size(), ggml_type.type_size()) else {
        return Err(invalid(
            ctx(),
            format!("type {ggml_type} (id {type_id}) was removed from ggml"),
        ));
    };
    // ggml stores sizes as int64_t: every dimension and the element count
    // must fit, and so must the byte size.
    let mut n_elements: u64 = 1;
    for &d in &dims {
        if d > i64::MAX as u64 {
            return Err(invalid(ctx(), format!("dimension {d} is out of range")));
        }
        n_elements = n_elements
            .checked_mul(d)
            .filter(|&n| n <= i64::MAX as u64)
            .ok_or_else(|| invalid(ctx(), format!("element count of dims {dims:?} overflows")))?;
    }
    let row = dims.first().copied().unwrap_or(1);
    if !row.is_multiple_of(block) {
        return Err(invalid(
            ctx(),
            format!(
                "row length {row} (first GGUF dimension of {dims:?}) is not a multiple of \
                 the {ggml_type} block size {block}"
            ),
        ));
    }
    let n_bytes = ggml_type
        .bytes_for(n_elements)
        .ok_or_else(|| invalid(ctx(), "byte size overflows"))?;
    let shape = dims
        .iter()
        .rev()
        .map(|&d| usize::try_from(d))
        .collect::<Result<Vec<usize>, _>>()
        .map_err(|_| invalid(ctx(), "dimensions do not fit in memory on this platform"))?;
    usize::try_from(n_bytes)
        .ok()
        .and(usize::try_from(n_elements).ok())
        .ok_or_else(|| invalid(ctx(), "size does not fit in memory on this platform"))?;
    Ok(TensorInfo {
        name,
        ggml_type,
        dims,
        shape,
        offset,
        file_offset: 0,
        n_elements,
        n_bytes,
    })
}
