//! Tensors inside PyTorch checkpoints, read without executing any pickle code.
//!
//! Two layouts share one container: a zip whose entries all start with one folder name, the
//! *prefix* (whatever it is — `archive/`, `checkpoint/`, `out_jit_module/` ...):
//!
//! - `torch.save` checkpoints (torch ≥ 1.6): `<prefix>/data.pkl` holds the saved object,
//!   tensors are persistent ids naming storages stored as `<prefix>/data/<key>`,
//!   `<prefix>/byteorder` says `little` or `big`;
//! - TorchScript archives (`torch.jit.save`): `<prefix>/data.pkl` holds the module object (an
//!   opaque `__torch__.*` object whose state is a dict of submodules, parameters and
//!   buffers), with storages in `<prefix>/data/<key>`; `<prefix>/constants.pkl` holds a
//!   tuple of constants whose storages are in `<prefix>/constants/<key>`.
//!
//! Tensors are found by walking the decoded value: dict keys, object attributes and list
//! indices are joined with `.` (`encoder.conv_in.weight`, `net.layers.0.conv.weight`);
//! tensors of `constants.pkl` are named `constants.<index>`.
//! [`TorchArchive::with_top_level_key`] re-roots the names at one entry of the top-level dict
//! (`state_dict`, `model`), as most checkpoints need.
//!
//! The legacy non-zip `torch.save` format (torch < 1.6, or
//! `_use_new_zipfile_serialization=False`) is read too ([`ArchiveKind::Legacy`]): one file
//! of consecutive pickles (magic number, protocol version, `sys_info`, the saved object, the
//! list of storage keys) followed by each storage's element count and little-endian bytes.
//! Its prefix is empty and [`TensorInfo::entry`] is the storage key. Files written on a
//! big-endian machine are refused ([`ReadError::Unsupported`]), and so is the tar-based
//! format of the earliest torch releases ([`ReadError::LegacyTorchFormat`]).
//!
//! ```no_run
//! # fn main() -> v2l_io::Result<()> {
//! use v2l_io::torch_zip::TorchArchive;
//! let ckpt = TorchArchive::open("checkpoint.pth")?.with_top_level_key("state_dict")?;
//! let (shape, values) = ckpt.read_f32("encoder.conv_in.weight")?;
//! let epoch = ckpt.get("epoch").and_then(|v| v.as_i64());
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Mutex;

use zip::result::ZipError;
use zip::ZipArchive;

use super::error::{ReadError, Result};
use super::pickle::{PickleValue, TorchDtype, TorchTensorRef, Unpickler};

mod legacy;

/// Deepest nesting walked when collecting tensor names.
const MAX_WALK_DEPTH: usize = 200;
/// Largest output of a view that repeats storage elements (more elements than its storage).
const MAX_EXPANDED_BYTES: usize = 1 << 30;

/// Which writer produced the archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveKind {
    /// `torch.save` (zip format, torch ≥ 1.6).
    TorchSave,
    /// `torch.jit.save` / `torch.jit.script(...).save(...)`: has `constants.pkl` or `code/`.
    TorchScript,
    /// `torch.save` in the legacy non-zip format (torch < 1.6, or
    /// `_use_new_zipfile_serialization=False`).
    Legacy,
}

/// One tensor of the archive: its dotted name, its view description and where its storage is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    /// Dotted name, e.g. `encoder.conv_in.weight`.
    pub name: String,
    /// The view: dtype, storage key, offset, shape, stride.
    pub tensor: TorchTensorRef,
    /// The archive entry holding the storage bytes, e.g. `checkpoint/data/0`; for a legacy
    /// (non-zip) file, the storage key.
    pub entry: String,
}

impl TensorInfo {
    /// Element type.
    pub fn dtype(&self) -> TorchDtype {
        self.tensor.storage.dtype
    }

    /// Shape.
    pub fn shape(&self) -> &[usize] {
        &self.tensor.shape
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.tensor.numel()
    }
}

/// Where the storage bytes come from.
#[derive(Debug)]
enum Source<R: Read + Seek> {
    /// Entries of a zip archive.
    Zip(Mutex<ZipArchive<R>>),
    /// Byte ranges of a legacy file, by storage key.
    Legacy {
        reader: Mutex<R>,
        storages: HashMap<String, legacy::StorageSpan>,
    },
}

/// An opened PyTorch archive (zip or legacy): decoded pickles plus an index of the tensors in
/// it. Tensor data is read on demand. Reading takes `&self` (the reader sits behind a mutex).
#[derive(Debug)]
pub struct TorchArchive<R: Read + Seek = BufReader<File>> {
    name: String,
    source: Source<R>,
    prefix: String,
    kind: ArchiveKind,
    big_endian: bool,
    data: PickleValue,
    constants: Option<PickleValue>,
    root_key: Option<String>,
    tensors: Vec<TensorInfo>,
    index: HashMap<String, usize>,
    /// Length of the whole file, which bounds the buffer reserved for an entry.
    file_len: u64,
}

impl TorchArchive<BufReader<File>> {
    /// Opens an archive file (`.pth`, `.pt`, `.ckpt`, TorchScript `.pt`, legacy `.pth`).
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|e| ReadError::io(path, e))?;
        Self::from_reader(BufReader::new(file), &path.display().to_string())
    }
}

impl<R: Read + Seek> TorchArchive<R> {
    /// Opens an archive from any seekable reader; `name` labels it in error messages.
    pub fn from_reader(mut reader: R, name: &str) -> Result<Self> {
        let name = name.to_string();
        let io_err = |e: std::io::Error| ReadError::io(name.clone(), e);
        let file_len = reader.seek(SeekFrom::End(0)).map_err(io_err)?;
        reader.seek(SeekFrom::Start(0)).map_err(io_err)?;
        let mut head = Vec::with_capacity(512);
        (&mut reader)
            .take(512)
            .read_to_end(&mut head)
            .map_err(io_err)?;
        reader.seek(SeekFrom::Start(0)).map_err(io_err)?;
        if !head.starts_with(b"PK") {
            if head.get(257..262) == Some(b"ustar".as_slice()) {
                return Err(ReadError::LegacyTorchFormat { file: name });
            }
            let parsed = legacy::parse(&mut reader, &name)?;
            let mut archive = TorchArchive {
                name,
                source: Source::Legacy {
                    reader: Mutex::new(reader),
                    storages: parsed.storages,
                },
                prefix: String::new(),
                kind: ArchiveKind::Legacy,
                big_endian: false,
                data: parsed.data,
                constants: None,
                root_key: None,
                tensors: Vec::new(),
                index: HashMap::new(),
                file_len,
            };
            archive.reindex()?;
            return Ok(archive);
        }
        let zip = ZipArchive::new(reader).map_err(|source| ReadError::Zip {
            file: name.clone(),
            source,
        })?;
        let names: Vec<String> = zip.file_names().map(str::to_string).collect();
        let data_entry = names
            .iter()
            .filter(|n| {
                n.as_str() == "data.pkl"
                    || n.strip_suffix("/data.pkl")
                        .is_some_and(|p| !p.is_empty() && !p.contains('/'))
            })
            .min_by_key(|n| n.len())
            .cloned()
            .ok_or_else(|| ReadError::TorchArchive {
                file: name.clone(),
                msg: "no `<prefix>/data.pkl` entry".to_string(),
            })?;
        let prefix = data_entry
            .strip_suffix("data.pkl")
            .unwrap_or_default()
            .to_string();
        let has = |entry: &str| names.iter().any(|n| n == entry);
        let kind = if has(&format!("{prefix}constants.pkl"))
            || names
                .iter()
                .any(|n| n.starts_with(&format!("{prefix}code/")))
        {
            ArchiveKind::TorchScript
        } else {
            ArchiveKind::TorchSave
        };
        let mut archive = TorchArchive {
            name,
            source: Source::Zip(Mutex::new(zip)),
            prefix,
            kind,
            big_endian: false,
            data: PickleValue::None,
            constants: None,
            root_key: None,
            tensors: Vec::new(),
            index: HashMap::new(),
            file_len,
        };
        let byteorder_entry = format!("{}byteorder", archive.prefix);
        if has(&byteorder_entry) {
            let bytes = archive.read_entry(&byteorder_entry)?;
            archive.big_endian = match String::from_utf8_lossy(&bytes).trim() {
                "little" => false,
                "big" => true,
                other => {
                    return Err(archive.invalid(format!("unknown byteorder {other:?}")));
                }
            };
        }
        let pkl = archive.read_entry(&data_entry)?;
        archive.data = Unpickler::new(format!("{}:{data_entry}", archive.name)).load(&pkl)?;
        let constants_entry = format!("{}constants.pkl", archive.prefix);
        if has(&constants_entry) {
            let pkl = archive.read_entry(&constants_entry)?;
            archive.constants =
                Some(Unpickler::new(format!("{}:{constants_entry}", archive.name)).load(&pkl)?);
        }
        archive.reindex()?;
        Ok(archive)
    }

    /// Re-roots tensor names at `key` of the top-level dict (e.g. `state_dict` or `model`):
    /// names then omit the key, and tensors outside it (and TorchScript constants) are no
    /// longer listed. Non-tensor values stay reachable through [`get`](Self::get).
    pub fn with_top_level_key(mut self, key: &str) -> Result<Self> {
        if self.data.get(key).is_none() {
            let keys = top_level_keys(&self.data);
            return Err(self.invalid(format!(
                "top-level key `{key}` not found (top-level keys: {keys:?})"
            )));
        }
        self.root_key = Some(key.to_string());
        self.reindex()?;
        Ok(self)
    }

    fn reindex(&mut self) -> Result<()> {
        let mut found = Vec::new();
        let data_dir = match self.kind {
            ArchiveKind::Legacy => String::new(),
            ArchiveKind::TorchSave | ArchiveKind::TorchScript => format!("{}data/", self.prefix),
        };
        match &self.root_key {
            Some(key) => {
                if let Some(root) = self.data.get(key) {
                    walk(root, "", &data_dir, 0, &mut found).map_err(|m| self.invalid(m))?;
                }
            }
            None => {
                walk(&self.data, "", &data_dir, 0, &mut found).map_err(|m| self.invalid(m))?;
                if let Some(constants) = &self.constants {
                    let dir = format!("{}constants/", self.prefix);
                    walk(constants, "constants", &dir, 0, &mut found)
                        .map_err(|m| self.invalid(m))?;
                }
            }
        }
        self.index.clear();
        self.tensors.clear();
        for info in found {
            if !self.index.contains_key(&info.name) {
                self.index.insert(info.name.clone(), self.tensors.len());
                self.tensors.push(info);
            }
        }
        Ok(())
    }

    fn invalid(&self, msg: impl Into<String>) -> ReadError {
        ReadError::TorchArchive {
            file: self.name.clone(),
            msg: msg.into(),
        }
    }

    /// Reads a whole storage: a zip entry, or a storage of a legacy file by key.
    fn read_storage(&self, entry: &str) -> Result<Vec<u8>> {
        let Source::Legacy { reader, storages } = &self.source else {
            return self.read_entry(entry);
        };
        let span = storages.get(entry).ok_or_else(|| {
            self.invalid(format!(
                "storage `{entry}` is not in the file's list of saved storages"
            ))
        })?;
        let mut reader = reader
            .lock()
            .map_err(|_| self.invalid("reader poisoned by an earlier panic"))?;
        let io_err = |e: std::io::Error| ReadError::io(self.name.clone(), e);
        reader.seek(SeekFrom::Start(span.offset)).map_err(io_err)?;
        let mut buf = Vec::new();
        let got = (&mut *reader)
            .take(span.len as u64)
            .read_to_end(&mut buf)
            .map_err(io_err)?;
        if got != span.len {
            return Err(ReadError::Truncated {
                file: self.name.clone(),
                offset: span.offset.saturating_add(got as u64),
                what: format!("storage `{entry}` needs {} bytes", span.len),
            });
        }
        Ok(buf)
    }

    /// Reads a whole entry of the zip.
    fn read_entry(&self, entry: &str) -> Result<Vec<u8>> {
        let Source::Zip(zip) = &self.source else {
            return Err(ReadError::MissingEntry {
                file: self.name.clone(),
                entry: entry.to_string(),
            });
        };
        let mut zip = zip
            .lock()
            .map_err(|_| self.invalid("zip reader poisoned by an earlier panic"))?;
        let mut file = zip.by_name(entry).map_err(|e| match e {
            ZipError::FileNotFound => ReadError::MissingEntry {
                file: self.name.clone(),
                entry: entry.to_string(),
            },
            source => ReadError::Zip {
                file: self.name.clone(),
                source,
            },
        })?;
        let mut buf = Vec::with_capacity(entry_capacity(file.size(), self.file_len));
        file.read_to_end(&mut buf).map_err(|e| ReadError::Zip {
            file: format!("{}:{entry}", self.name),
            source: ZipError::Io(e),
        })?;
        Ok(buf)
    }

    /// The display name of the archive (its path).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The folder prefix of every entry, with its trailing `/` (e.g. `checkpoint/`); empty for
    /// a legacy (non-zip) file.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Which writer produced the archive.
    pub fn kind(&self) -> ArchiveKind {
        self.kind
    }

    /// Whether the storages are big-endian (from `<prefix>/byteorder`; always `false` for a
    /// legacy file, whose storages are little-endian).
    pub fn is_big_endian(&self) -> bool {
        self.big_endian
    }

    /// The decoded `data.pkl` (the whole saved object; for a legacy file, its main pickle),
    /// tensors as [`PickleValue::TorchTensor`].
    pub fn data(&self) -> &PickleValue {
        &self.data
    }

    /// The decoded `constants.pkl` of a TorchScript archive.
    pub fn constants(&self) -> Option<&PickleValue> {
        self.constants.as_ref()
    }

    /// A top-level value of `data.pkl` by key (dict key, or attribute of a TorchScript module
    /// / `argparse.Namespace`), independent of [`with_top_level_key`](Self::with_top_level_key):
    /// e.g. `get("epoch")`, `get("args")`.
    pub fn get(&self, key: &str) -> Option<&PickleValue> {
        self.data.get(key)
    }

    /// The value tensor names are rooted at: `data.pkl`, or its entry chosen by
    /// [`with_top_level_key`](Self::with_top_level_key).
    pub fn root(&self) -> &PickleValue {
        match &self.root_key {
            Some(key) => self.data.get(key).unwrap_or(&self.data),
            None => &self.data,
        }
    }

    /// Tensor names, in the order they appear in the pickle.
    pub fn tensor_names(&self) -> Vec<&str> {
        self.tensors.iter().map(|t| t.name.as_str()).collect()
    }

    /// All tensors, in the order they appear in the pickle.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    /// Number of tensors.
    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    /// Whether the archive holds no tensors (under the current root).
    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    /// Description of one tensor (dtype, shape, stride, storage).
    pub fn tensor_info(&self, name: &str) -> Option<&TensorInfo> {
        self.index.get(name).and_then(|&i| self.tensors.get(i))
    }

    fn info(&self, name: &str) -> Result<&TensorInfo> {
        self.tensor_info(name)
            .ok_or_else(|| ReadError::TensorNotFound {
                file: self.name.clone(),
                name: name.to_string(),
            })
    }

    /// The elements of a tensor as little-endian bytes of its own dtype, in C order (strides
    /// and storage offset applied, so non-contiguous views come out contiguous).
    pub fn read_bytes(&self, name: &str) -> Result<Vec<u8>> {
        let info = self.info(name)?;
        self.gather(info)
    }

    fn gather(&self, info: &TensorInfo) -> Result<Vec<u8>> {
        let t = &info.tensor;
        let elem = t.storage.dtype.element_size();
        let storage = self.read_storage(&info.entry)?;
        let storage_len = storage.len() / elem;
        let ctx = |msg: String| self.invalid(format!("tensor `{}`: {msg}", info.name));
        let numel = t
            .shape
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .ok_or_else(|| ctx(format!("shape {:?} overflows", t.shape)))?;
        if numel == 0 {
            return Ok(Vec::new());
        }
        // Largest storage index the view touches.
        let last = t
            .shape
            .iter()
            .zip(&t.stride)
            .try_fold(t.storage_offset, |acc, (&d, &s)| {
                (d - 1).checked_mul(s).and_then(|x| acc.checked_add(x))
            })
            .ok_or_else(|| ctx("view extent overflows".to_string()))?;
        if last >= storage_len {
            return Err(ctx(format!(
                "view (offset {}, shape {:?}, stride {:?}) reaches element {last} but storage \
                 `{}` holds {storage_len} elements",
                t.storage_offset, t.shape, t.stride, info.entry
            )));
        }
        // A view may repeat storage elements (stride 0, as in `expand`): bound the output.
        let out_bytes = numel
            .checked_mul(elem)
            .filter(|&b| numel <= storage_len || b <= MAX_EXPANDED_BYTES)
            .ok_or_else(|| {
                ctx(format!(
                    "view of {numel} elements over a storage of {storage_len} exceeds the \
                     {MAX_EXPANDED_BYTES}-byte limit for repeating views"
                ))
            })?;
        let mut out = Vec::with_capacity(out_bytes);
        if is_contiguous(&t.shape, &t.stride) {
            let start = t.storage_offset * elem;
            let bytes = storage
                .get(start..start + out_bytes)
                .ok_or_else(|| ctx("view outside the storage".to_string()))?;
            out.extend_from_slice(bytes);
        } else {
            let nd = t.shape.len();
            let mut idx = vec![0usize; nd];
            let mut off = t.storage_offset;
            for _ in 0..numel {
                let bytes = storage
                    .get(off * elem..(off + 1) * elem)
                    .ok_or_else(|| ctx(format!("element offset {off} outside the storage")))?;
                out.extend_from_slice(bytes);
                let mut k = nd;
                // Wrapping arithmetic: intermediate values may pass the end of the view
                // (e.g. a huge stride on a dimension of size 1) but every element offset
                // read is within `0..=last`, checked above.
                while k > 0 {
                    k -= 1;
                    idx[k] += 1;
                    off = off.wrapping_add(t.stride[k]);
                    if idx[k] < t.shape[k] {
                        break;
                    }
                    off = off.wrapping_sub(t.stride[k].wrapping_mul(t.shape[k]));
                    idx[k] = 0;
                }
            }
        }
        if self.big_endian && elem > 1 {
            for chunk in out.chunks_exact_mut(elem) {
                chunk.reverse();
            }
        }
        Ok(out)
    }

    /// A tensor as `f32` in C order, with its shape. Converts f16, bf16, f64, integers and
    /// bool; honours storage offset and strides.
    pub fn read_f32(&self, name: &str) -> Result<(Vec<usize>, Vec<f32>)> {
        let info = self.info(name)?;
        let bytes = self.gather(info)?;
        let values = match info.dtype() {
            TorchDtype::F32 => bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            TorchDtype::F16 => bytes
                .chunks_exact(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            TorchDtype::BF16 => bytes
                .chunks_exact(2)
                .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            TorchDtype::F64 => bytes.chunks_exact(8).map(|c| le_f64(c) as f32).collect(),
            _ => read_ints(&bytes, info.dtype())
                .into_iter()
                .map(|v| v as f32)
                .collect(),
        };
        Ok((info.shape().to_vec(), values))
    }

    /// A tensor as `f64` in C order, with its shape (any dtype).
    pub fn read_f64(&self, name: &str) -> Result<(Vec<usize>, Vec<f64>)> {
        let info = self.info(name)?;
        if info.dtype() == TorchDtype::F64 {
            let bytes = self.gather(info)?;
            let values = bytes.chunks_exact(8).map(le_f64).collect();
            return Ok((info.shape().to_vec(), values));
        }
        let (shape, values) = self.read_f32(name)?;
        Ok((shape, values.into_iter().map(f64::from).collect()))
    }

    /// An integer or bool tensor as `i64` in C order, with its shape; float tensors are a
    /// [`ReadError::TypeMismatch`].
    pub fn read_i64(&self, name: &str) -> Result<(Vec<usize>, Vec<i64>)> {
        let info = self.info(name)?;
        if info.dtype().is_float() {
            return Err(ReadError::TypeMismatch {
                what: format!("{}: tensor `{name}`", self.name),
                dtype: info.dtype().name().to_string(),
                target: "i64",
            });
        }
        let bytes = self.gather(info)?;
        Ok((info.shape().to_vec(), read_ints(&bytes, info.dtype())))
    }
}

/// The buffer reserved for a zip entry that declares `declared` bytes in an archive of
/// `file_len` bytes: the declared size is untrusted, so it is capped by the file's length (a
/// compressed entry that really is larger grows the buffer as it is read) and by 64 MiB.
fn entry_capacity(declared: u64, file_len: u64) -> usize {
    usize::try_from(declared.min(file_len).min(1 << 26)).unwrap_or(0)
}

fn le_f64(c: &[u8]) -> f64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(c);
    f64::from_le_bytes(a)
}

/// Decodes little-endian integer (or bool) elements.
fn read_ints(bytes: &[u8], dtype: TorchDtype) -> Vec<i64> {
    match dtype {
        TorchDtype::I64 => bytes
            .chunks_exact(8)
            .map(|c| {
                let mut a = [0u8; 8];
                a.copy_from_slice(c);
                i64::from_le_bytes(a)
            })
            .collect(),
        TorchDtype::I32 => bytes
            .chunks_exact(4)
            .map(|c| i64::from(i32::from_le_bytes([c[0], c[1], c[2], c[3]])))
            .collect(),
        TorchDtype::I16 => bytes
            .chunks_exact(2)
            .map(|c| i64::from(i16::from_le_bytes([c[0], c[1]])))
            .collect(),
        TorchDtype::I8 => bytes.iter().map(|&b| i64::from(b as i8)).collect(),
        TorchDtype::U8 => bytes.iter().map(|&b| i64::from(b)).collect(),
        TorchDtype::Bool => bytes.iter().map(|&b| i64::from(b != 0)).collect(),
        // Float types never reach here (callers convert them first).
        TorchDtype::F64 | TorchDtype::F32 | TorchDtype::F16 | TorchDtype::BF16 => Vec::new(),
    }
}

/// Whether a view with these strides reads consecutive elements in C order.
fn is_contiguous(shape: &[usize], stride: &[usize]) -> bool {
    let mut expected = 1usize;
    for (&d, &s) in shape.iter().zip(stride).rev() {
        if d != 1 && s != expected {
            return false;
        }
        expected = expected.saturating_mul(d);
    }
    true
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

/// Collects the tensors under `value`, naming them by their dotted path.
fn walk(
    value: &PickleValue,
    path: &str,
    storage_dir: &str,
    depth: usize,
    out: &mut Vec<TensorInfo>,
) -> std::result::Result<(), String> {
    if depth > MAX_WALK_DEPTH {
        return Err(format!(
            "values nested deeper than {MAX_WALK_DEPTH} at `{path}`"
        ));
    }
    match value {
        PickleValue::TorchTensor(t) => out.push(TensorInfo {
            name: path.to_string(),
            tensor: t.clone(),
            entry: format!("{storage_dir}{}", t.storage.key),
        }),
        PickleValue::Dict(entries) => {
            for (k, v) in entries {
                let key = match k {
                    PickleValue::Str(s) => s.clone(),
                    PickleValue::Int(i) => i.to_string(),
                    PickleValue::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
                    _ => continue,
                };
                walk(v, &join(path, &key), storage_dir, depth + 1, out)?;
            }
        }
        PickleValue::List(items) | PickleValue::Tuple(items) => {
            for (i, v) in items.iter().enumerate() {
                walk(v, &join(path, &i.to_string()), storage_dir, depth + 1, out)?;
            }
        }
        PickleValue::Object {
            state: Some(state), ..
        } => walk(state, path, storage_dir, depth + 1, out)?,
        _ => {}
    }
    Ok(())
}

fn top_level_keys(value: &PickleValue) -> Vec<String> {
    let entries = match value {
        PickleValue::Dict(d) => d.as_slice(),
        PickleValue::Object {
            state: Some(state), ..
        } => state.as_dict().unwrap_or(&[]),
        _ => &[],
    };
    entries
        .iter()
        .filter_map(|(k, _)| k.as_str().map(str::to_string))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::entry_capacity;

    /// A zip entry's declared size is untrusted: before this cap, an archive of a few hundred
    /// bytes could have every entry read reserve 64 MiB (allocation audit, docs/reliability.md).
    #[test]
    fn entry_buffer_is_bounded_by_the_file_not_the_declared_size() {
        assert_eq!(entry_capacity(u64::MAX, 120), 120);
        assert_eq!(entry_capacity(4000, 120), 120);
        assert_eq!(entry_capacity(100, 1 << 40), 100);
        assert_eq!(entry_capacity(1 << 40, 1 << 40), 1 << 26);
    }
}
