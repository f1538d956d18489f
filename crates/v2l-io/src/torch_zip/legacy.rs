//! The legacy (non-zip) `torch.save` format: torch < 1.6, or
//! `_use_new_zipfile_serialization=False`.
//!
//! One file holds, back to back:
//!
//! 1. a pickle of the magic number `0x1950a86a20f9469cfc6c`;
//! 2. a pickle of the protocol version `1001`;
//! 3. a pickle of the writer's `sys_info` dict (`little_endian`, `type_sizes`, ...);
//! 4. the pickle of the saved object, whose tensors name their storages by persistent ids
//!    `('storage', <StorageClass>, root_key, location, numel, view_metadata)`;
//! 5. a pickle of the list of storage keys, in the order their data follows;
//! 6. for each of those keys: its element count (8 bytes, little-endian), then its elements
//!    (little-endian, element size from the storage class).
//!
//! Every pickle goes through the same allow-listed [`Unpickler`] as the zip format; nothing is
//! executed. Every count and length is checked against the file size.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};

use super::super::error::{ReadError, Result};
use super::super::pickle::{PickleValue, TorchDtype, Unpickler};

/// The magic number of the first pickle, as little-endian bytes (Python's `LONG1` encoding).
const MAGIC_LE: [u8; 10] = [0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];
/// The only protocol version torch has written.
const PROTOCOL_VERSION: i64 = 1001;
/// First read of the file head; doubled until the pickles fit.
const FIRST_CHUNK: usize = 1 << 16;

/// Where one storage's bytes lie in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct StorageSpan {
    /// Byte offset of the first element.
    pub(super) offset: u64,
    /// Length in bytes.
    pub(super) len: usize,
}

/// What [`parse`] found: the saved object and where each storage lies.
#[derive(Debug)]
pub(super) struct LegacyFile {
    /// The decoded main pickle.
    pub(super) data: PickleValue,
    /// Storage key → its bytes in the file.
    pub(super) storages: HashMap<String, StorageSpan>,
}

/// The head of the file, read in growing chunks until the pickle being decoded fits.
struct Head<'r, R> {
    reader: &'r mut R,
    name: &'r str,
    buf: Vec<u8>,
    file_len: u64,
}

impl<R: Read + Seek> Head<'_, R> {
    /// Reads more of the file (twice as much as held so far); `false` at the end of the file.
    fn grow(&mut self) -> Result<bool> {
        let held = self.buf.len() as u64;
        if held >= self.file_len {
            return Ok(false);
        }
        let target = held.max(FIRST_CHUNK as u64 / 2).saturating_mul(2);
        let want = target.min(self.file_len) - held;
        let io_err = |e: std::io::Error| ReadError::io(self.name, e);
        self.reader.seek(SeekFrom::Start(held)).map_err(io_err)?;
        let got = (&mut *self.reader)
            .take(want)
            .read_to_end(&mut self.buf)
            .map_err(io_err)?;
        if got == 0 {
            // The file is shorter than it was when measured: stop growing.
            self.file_len = self.buf.len() as u64;
            return Ok(false);
        }
        Ok(true)
    }

    /// Decodes the pickle starting at byte `pos`; returns it and the byte after its `STOP`.
    fn load(&mut self, pos: usize, what: &str) -> Result<(PickleValue, usize)> {
        let label = format!("{}:{what} (pickle at byte {pos})", self.name);
        loop {
            let avail = self.buf.get(pos..).unwrap_or_default();
            match Unpickler::new(label.clone()).load_prefix(avail) {
                Ok((value, used)) => return Ok((value, pos + used)),
                // Input-size dependent failures may only mean the chunk was too short.
                Err(e @ (ReadError::Truncated { .. } | ReadError::LimitExceeded { .. })) => {
                    if !self.grow()? {
                        return Err(e);
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }
}

fn invalid(name: &str, msg: impl Into<String>) -> ReadError {
    ReadError::TorchArchive {
        file: name.to_string(),
        msg: msg.into(),
    }
}

/// Whether `v` is the legacy magic number.
fn is_magic(v: &PickleValue) -> bool {
    match v {
        PickleValue::BigInt(bytes) => {
            // Ignore redundant sign-extension bytes a non-minimal encoder might add.
            let mut b = bytes.as_slice();
            while b.len() > MAGIC_LE.len() && b.last() == Some(&0) {
                b = &b[..b.len() - 1];
            }
            b == MAGIC_LE
        }
        _ => false,
    }
}

/// A storage key as the persistent ids spell it (`str`, Python 2 `str`, or `int`).
fn key_text(v: &PickleValue) -> Option<String> {
    match v {
        PickleValue::Str(s) => Some(s.clone()),
        PickleValue::Bytes(b) => std::str::from_utf8(b).ok().map(str::to_string),
        PickleValue::Int(i) => Some(i.to_string()),
        _ => None,
    }
}

/// Dtype and element count of every storage the saved object references (first reference
/// wins, as in torch).
fn referenced_storages(data: &PickleValue) -> HashMap<String, (TorchDtype, u64)> {
    let mut out = HashMap::new();
    let mut stack = vec![data];
    while let Some(v) = stack.pop() {
        let storage = match v {
            PickleValue::TorchTensor(t) => Some(&t.storage),
            PickleValue::TorchStorage(s) => Some(s),
            PickleValue::List(items) | PickleValue::Tuple(items) | PickleValue::Set(items) => {
                stack.extend(items.iter().rev());
                None
            }
            PickleValue::Dict(entries) => {
                for (k, v) in entries.iter().rev() {
                    stack.push(v);
                    stack.push(k);
                }
                None
            }
            PickleValue::Object { args, state, .. } => {
                if let Some(state) = state {
                    stack.push(state);
                }
                stack.extend(args.iter().rev());
                None
            }
            _ => None,
        };
        if let Some(s) = storage {
            out.entry(s.key.clone()).or_insert((s.dtype, s.numel));
        }
    }
    out
}

/// Parses a legacy file: checks the magic number, protocol version and byte order, decodes
/// the saved object and locates every storage. A file that does not start with the magic
/// number pickle is a [`ReadError::TorchArchive`] error (neither format).
pub(super) fn parse<R: Read + Seek>(reader: &mut R, name: &str) -> Result<LegacyFile> {
    let io_err = |e: std::io::Error| ReadError::io(name, e);
    let file_len = reader.seek(SeekFrom::End(0)).map_err(io_err)?;
    let mut head = Head {
        reader,
        name,
        buf: Vec::new(),
        file_len,
    };
    head.grow()?;

    let not_torch = || {
        invalid(
            name,
            "neither a zip archive nor a legacy torch.save file (no magic number pickle)",
        )
    };
    let pos = match head.load(0, "magic number") {
        Ok((v, end)) if is_magic(&v) => end,
        _ => return Err(not_torch()),
    };

    let (version, pos) = head.load(pos, "protocol version")?;
    if version.as_i64() != Some(PROTOCOL_VERSION) {
        return Err(invalid(
            name,
            format!("legacy protocol version {version:?} (only {PROTOCOL_VERSION} is known)"),
        ));
    }

    let (sys_info, pos) = head.load(pos, "sys_info")?;
    if sys_info.as_dict().is_none() {
        return Err(invalid(
            name,
            format!("sys_info is a {}, not a dict", sys_info.type_name()),
        ));
    }
    match sys_info.get("little_endian") {
        None => {}
        Some(PickleValue::Bool(true)) => {}
        Some(PickleValue::Bool(false)) => {
            // Torch versions disagree on whether such files hold native or little-endian
            // data, so the bytes cannot be interpreted reliably.
            return Err(ReadError::Unsupported {
                file: name.to_string(),
                what: "legacy torch.save file written on a big-endian machine \
                       (sys_info little_endian = False)"
                    .to_string(),
            });
        }
        Some(other) => {
            return Err(invalid(
                name,
                format!("sys_info little_endian is a {}", other.type_name()),
            ));
        }
    }

    let (data, pos) = head.load(pos, "data")?;
    let (keys, pos) = head.load(pos, "storage keys")?;
    let keys = keys
        .as_seq()
        .ok_or_else(|| {
            invalid(
                name,
                format!("storage key list is a {}, not a list", keys.type_name()),
            )
        })?
        .iter()
        .map(|k| {
            key_text(k)
                .ok_or_else(|| invalid(name, format!("storage key of type {}", k.type_name())))
        })
        .collect::<Result<Vec<String>>>()?;

    let referenced = referenced_storages(&data);
    let mut storages = HashMap::with_capacity(keys.len());
    let mut pos = pos as u64;
    let truncated = |offset: u64, what: String| ReadError::Truncated {
        file: name.to_string(),
        offset,
        what,
    };
    for key in keys {
        let &(dtype, numel) = referenced.get(&key).ok_or_else(|| {
            invalid(
                name,
                format!("storage `{key}` is listed but no tensor or storage refers to it"),
            )
        })?;
        let data_offset = pos
            .checked_add(8)
            .filter(|&end| end <= file_len)
            .ok_or_else(|| {
                truncated(
                    pos,
                    format!("element count of storage `{key}` needs 8 bytes"),
                )
            })?;
        let mut count = [0u8; 8];
        head.reader.seek(SeekFrom::Start(pos)).map_err(io_err)?;
        head.reader.read_exact(&mut count).map_err(io_err)?;
        let count = u64::from_le_bytes(count);
        if count != numel {
            return Err(invalid(
                name,
                format!("storage `{key}` holds {count} elements but the pickle says {numel}"),
            ));
        }
        let remaining = file_len - data_offset;
        let len = count
            .checked_mul(dtype.element_size() as u64)
            .filter(|&n| n <= remaining)
            .ok_or_else(|| {
                truncated(
                    data_offset,
                    format!(
                        "storage `{key}` of {count} {dtype} elements but only {remaining} \
                         bytes remain"
                    ),
                )
            })?;
        let len_usize = usize::try_from(len)
            .map_err(|_| invalid(name, format!("storage `{key}` of {len} bytes is too large")))?;
        storages.insert(
            key,
            StorageSpan {
                offset: data_offset,
                len: len_usize,
            },
        );
        pos = data_offset + len;
    }
    Ok(LegacyFile { data, storages })
}
