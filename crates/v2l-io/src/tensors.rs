//! One interface over files of named tensors: safetensors (single or
//! sharded with `model.safetensors.index.json`) and PyTorch archives
//! (`torch.save` zip or legacy, TorchScript). Model crates build their
//! modules from a [`TensorSource`] (through `v2l-nn`'s loader) and never
//! care which format it was.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use safetensors::tensor::Dtype as StDtype;
use safetensors::SafeTensors;

use super::error::{ReadError, Result};
use super::torch_zip::TorchArchive;

/// A file (or set of files) of named tensors, read as f32.
pub trait TensorSource: Send + Sync {
    /// Human-readable name (the path) used in errors.
    fn describe(&self) -> &str;
    /// All tensor names.
    fn keys(&self) -> Vec<String>;
    /// Shape of one tensor, if present.
    fn shape(&self, key: &str) -> Option<Vec<usize>>;
    /// Read one tensor as f32 in C order; f16, bf16, f64 and integer tensors
    /// are converted.
    fn read_f32(&self, key: &str) -> Result<(Vec<usize>, Vec<f32>)>;

    /// The file's own name(s) behind `key`, for messages. Sources that
    /// rename or assemble tensors (a CLIP layout, an LLM format) override
    /// this; a plain file answers `key` itself.
    fn file_names(&self, key: &str) -> Vec<String> {
        vec![key.to_string()]
    }

    /// The file names that are missing when `key` is absent (for messages;
    /// by default `key` itself).
    fn missing_names(&self, key: &str) -> Vec<String> {
        vec![key.to_string()]
    }
}

/// A safetensors file held in memory.
pub struct SafetensorsFile {
    name: String,
    bytes: Vec<u8>,
    index: HashMap<String, Vec<usize>>,
}

impl std::fmt::Debug for SafetensorsFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SafetensorsFile")
            .field("name", &self.name)
            .field("tensors", &self.index.len())
            .finish()
    }
}

fn st_error(file: &str, e: impl std::fmt::Display) -> ReadError {
    ReadError::Safetensors {
        file: file.to_string(),
        msg: e.to_string(),
    }
}

impl SafetensorsFile {
    /// Read and index a `.safetensors` file.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| ReadError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_bytes(path.display().to_string(), bytes)
    }

    /// Index safetensors bytes; `name` is used in errors.
    pub fn from_bytes(name: String, bytes: Vec<u8>) -> Result<Self> {
        let index = {
            let st = SafeTensors::deserialize(&bytes).map_err(|e| st_error(&name, e))?;
            st.tensors()
                .into_iter()
                .map(|(k, v)| (k, v.shape().to_vec()))
                .collect()
        };
        Ok(Self { name, bytes, index })
    }
}

fn le<const N: usize>(c: &[u8]) -> [u8; N] {
    let mut a = [0u8; N];
    a.copy_from_slice(&c[..N]);
    a
}

impl TensorSource for SafetensorsFile {
    fn describe(&self) -> &str {
        &self.name
    }

    fn keys(&self) -> Vec<String> {
        self.index.keys().cloned().collect()
    }

    fn shape(&self, key: &str) -> Option<Vec<usize>> {
        self.index.get(key).cloned()
    }

    fn read_f32(&self, key: &str) -> Result<(Vec<usize>, Vec<f32>)> {
        let st = SafeTensors::deserialize(&self.bytes).map_err(|e| st_error(&self.name, e))?;
        let view = st.tensor(key).map_err(|_| ReadError::TensorNotFound {
            file: self.name.clone(),
            name: key.to_string(),
        })?;
        let d = view.data();
        let values: Vec<f32> = match view.dtype() {
            StDtype::F32 => d
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(le(c)))
                .collect(),
            StDtype::F16 => d
                .chunks_exact(2)
                .map(|c| half::f16::from_le_bytes(le(c)).to_f32())
                .collect(),
            StDtype::BF16 => d
                .chunks_exact(2)
                .map(|c| half::bf16::from_le_bytes(le(c)).to_f32())
                .collect(),
            StDtype::F64 => d
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(le(c)) as f32)
                .collect(),
            StDtype::I64 => d
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes(le(c)) as f32)
                .collect(),
            StDtype::I32 => d
                .chunks_exact(4)
                .map(|c| i32::from_le_bytes(le(c)) as f32)
                .collect(),
            StDtype::U8 => d.iter().map(|&b| f32::from(b)).collect(),
            other => {
                return Err(ReadError::TypeMismatch {
                    what: format!("{}: tensor `{key}`", self.name),
                    dtype: format!("{other:?}"),
                    target: "f32",
                })
            }
        };
        Ok((view.shape().to_vec(), values))
    }
}

/// A model split over several safetensors files, as HF writes it:
/// `model.safetensors.index.json` with a `weight_map` from tensor name to
/// shard file (in the same folder).
pub struct ShardedSafetensors {
    name: String,
    shards: Vec<SafetensorsFile>,
    map: BTreeMap<String, usize>,
}

impl std::fmt::Debug for ShardedSafetensors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardedSafetensors")
            .field("name", &self.name)
            .field("shards", &self.shards.len())
            .field("tensors", &self.map.len())
            .finish()
    }
}

impl ShardedSafetensors {
    /// Open the index and every shard it names. Every tensor the index
    /// lists must be in its shard.
    pub fn open(index_path: impl AsRef<Path>) -> Result<Self> {
        let index_path = index_path.as_ref();
        let name = index_path.display().to_string();
        let text = std::fs::read_to_string(index_path).map_err(|source| ReadError::Io {
            path: index_path.to_path_buf(),
            source,
        })?;
        let json: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| st_error(&name, e))?;
        let weight_map = json
            .get("weight_map")
            .and_then(serde_json::Value::as_object)
            .ok_or_else(|| st_error(&name, "no `weight_map` object"))?;
        let dir = index_path.parent().unwrap_or(Path::new("."));
        let mut files: Vec<String> = Vec::new();
        let mut map = BTreeMap::new();
        for (tensor, file) in weight_map {
            let file = file.as_str().ok_or_else(|| {
                st_error(&name, format!("weight_map[{tensor:?}] is not a string"))
            })?;
            if file.contains('/') || file.contains('\\') || file.starts_with('.') {
                return Err(st_error(
                    &name,
                    format!("shard name {file:?} must be a plain file name"),
                ));
            }
            let i = match files.iter().position(|f| f == file) {
                Some(i) => i,
                None => {
                    files.push(file.to_string());
                    files.len() - 1
                }
            };
            map.insert(tensor.clone(), i);
        }
        let shards = files
            .iter()
            .map(|f| SafetensorsFile::open(dir.join(f)))
            .collect::<Result<Vec<_>>>()?;
        for (tensor, &i) in &map {
            if shards[i].shape(tensor).is_none() {
                return Err(ReadError::TensorNotFound {
                    file: shards[i].name.clone(),
                    name: tensor.clone(),
                });
            }
        }
        Ok(Self { name, shards, map })
    }

    /// Number of shard files.
    pub fn num_shards(&self) -> usize {
        self.shards.len()
    }
}

impl TensorSource for ShardedSafetensors {
    fn describe(&self) -> &str {
        &self.name
    }

    fn keys(&self) -> Vec<String> {
        self.map.keys().cloned().collect()
    }

    fn shape(&self, key: &str) -> Option<Vec<usize>> {
        self.map.get(key).and_then(|&i| self.shards[i].shape(key))
    }

    fn read_f32(&self, key: &str) -> Result<(Vec<usize>, Vec<f32>)> {
        match self.map.get(key) {
            Some(&i) => self.shards[i].read_f32(key),
            None => Err(ReadError::TensorNotFound {
                file: self.name.clone(),
                name: key.to_string(),
            }),
        }
    }
}

impl TensorSource for TorchArchive {
    fn describe(&self) -> &str {
        self.name()
    }

    fn keys(&self) -> Vec<String> {
        self.tensor_names()
            .into_iter()
            .map(str::to_string)
            .collect()
    }

    fn shape(&self, key: &str) -> Option<Vec<usize>> {
        self.tensor_info(key).map(|i| i.shape().to_vec())
    }

    fn read_f32(&self, key: &str) -> Result<(Vec<usize>, Vec<f32>)> {
        TorchArchive::read_f32(self, key)
    }
}

/// Open a tensor file by what it is: a folder (its `model.safetensors`, or
/// `model.safetensors.index.json` for a sharded model), a `.safetensors`
/// file, a `*.index.json` shard index, or anything else as a PyTorch archive.
pub fn open_tensors(path: impl AsRef<Path>) -> Result<Box<dyn TensorSource>> {
    let path = path.as_ref();
    if path.is_dir() {
        let single = path.join("model.safetensors");
        if single.is_file() {
            return Ok(Box::new(SafetensorsFile::open(single)?));
        }
        let index = path.join("model.safetensors.index.json");
        if index.is_file() {
            return Ok(Box::new(ShardedSafetensors::open(index)?));
        }
        return Err(ReadError::Io {
            path: path.to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "folder has neither model.safetensors nor model.safetensors.index.json",
            ),
        });
    }
    if !path.is_file() {
        return Err(ReadError::Io {
            path: path.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
        });
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    if name.ends_with(".safetensors") {
        Ok(Box::new(SafetensorsFile::open(path)?))
    } else if name.ends_with(".index.json") {
        Ok(Box::new(ShardedSafetensors::open(path)?))
    } else {
        Ok(Box::new(TorchArchive::open(path)?))
    }
}

/// The folder holding `path` (itself if it is a folder).
pub fn containing_dir(path: &Path) -> PathBuf {
    if path.is_dir() {
        path.to_path_buf()
    } else {
        path.parent()
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
    }
}
