//! A safe pickle reader: a pickle virtual machine (protocols 0–5) that **never executes
//! pickle code**. Globals named by the pickle are looked up in a fixed allow-list and
//! "called" by Rust code that builds plain values; anything else is refused with
//! [`ReadError::DisallowedGlobal`] naming the module and name (`posix.system`,
//! `builtins.eval`, ...).
//!
//! The allow-list:
//!
//! - containers: `collections.OrderedDict` and `builtins.dict` (→ [`PickleValue::Dict`]),
//!   `builtins.list`, `builtins.set`/`frozenset` (→ [`PickleValue::Set`]),
//!   `builtins.bytes`/`bytearray`, `_codecs.encode` (how protocol 2 stores `bytes`),
//!   `copyreg._reconstructor` only as `(<tolerated class>, builtins.object, None)`;
//! - numpy: `numpy.core.multiarray._reconstruct` / `numpy._core.multiarray._reconstruct`
//!   with `numpy.ndarray`, `numpy.dtype`, `numpy{.core,._core}.multiarray.scalar`,
//!   `numpy{.core,._core}.numeric._frombuffer` (protocol 5) → [`PickleValue::NdArray`];
//! - `argparse.Namespace`, `torch.device` and TorchScript classes under `__torch__.` →
//!   opaque [`PickleValue::Object`]s that keep their arguments and `BUILD` state;
//! - torch: `torch._utils._rebuild_tensor_v2` / `_rebuild_tensor` / `_rebuild_parameter` /
//!   `_rebuild_parameter_with_state`, `torch._tensor._rebuild_from_type_v2` (with
//!   `torch.Tensor` / `torch.nn.parameter.Parameter`), the storage classes
//!   `torch.{Double,Float,Half,BFloat16,Long,Int,Short,Char,Byte,Bool}Storage` and
//!   `torch.UntypedStorage` (only inside persistent ids
//!   `('storage', <class>, key, location, numel)`, or the legacy (non-zip `torch.save`)
//!   `('storage', <class>, root_key, location, root_numel, view_metadata)` whose
//!   `view_metadata` is `None` or `(view_key, offset, numel)`: a tensor over such a view gets
//!   the view's offset added to its storage offset, and a view pickled on its own reads as
//!   its root storage), `torch.Size`, and bare references to torch dtypes (`torch.float32`)
//!   → [`PickleValue::TorchTensor`] references (no data);
//! - TorchScript helpers `torch.jit._pickle.restore_type_tag` and
//!   `torch.jit._pickle.build_{int,double,bool,tensor}list`.
//!
//! Python 2 module names `__builtin__` and `copy_reg` are read as `builtins` and `copyreg`;
//! Python 2 `str` objects become [`PickleValue::Bytes`].
//!
//! Limits: every length field is checked against the remaining input before anything is
//! allocated; nesting depth and the total size of the decoded tree are bounded
//! ([`Limits`]), so memo-sharing "billion laughs" inputs and self-referencing objects end in
//! [`ReadError::LimitExceeded`]. No input panics.

mod globals;
mod tree;
mod value;
mod vm;

use std::path::Path;

pub use tree::PickleTree;
pub use value::{PickleValue, QualName, TorchDtype, TorchStorageRef, TorchTensorRef};

use super::error::{ReadError, Result};

/// Safety limits of the unpickler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Deepest nesting of containers in the result (also what ends a self-referencing
    /// object). Default 200.
    pub max_depth: usize,
    /// Most values in the decoded tree; `None` = 16 × input length + 2^20. Shared memo
    /// references are counted once per use.
    pub max_output_nodes: Option<u64>,
    /// Most bytes of strings, bytes and array data in the decoded tree; `None` =
    /// 4 × input length + 64 MiB.
    pub max_output_bytes: Option<u64>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: 200,
            max_output_nodes: None,
            max_output_bytes: None,
        }
    }
}

/// A configured unpickler: a display name for error messages and the [`Limits`].
#[derive(Debug, Clone)]
pub struct Unpickler {
    name: String,
    limits: Limits,
}

impl Unpickler {
    /// An unpickler whose errors name the input `name` (a path or archive entry).
    pub fn new(name: impl Into<String>) -> Self {
        Unpickler {
            name: name.into(),
            limits: Limits::default(),
        }
    }

    /// Replaces the safety limits.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Decodes one pickle from `data` (trailing bytes after `STOP` are ignored, as Python does).
    pub fn load(&self, data: &[u8]) -> Result<PickleValue> {
        self.load_prefix(data).map(|(value, _)| value)
    }

    /// Decodes the pickle at the start of `data` and returns it with the number of bytes it
    /// took (up to and including `STOP`), for inputs holding several pickles back to back
    /// (the legacy `torch.save` format).
    pub fn load_prefix(&self, data: &[u8]) -> Result<(PickleValue, usize)> {
        vm::Vm::new(data, &self.name, &self.limits).run()
    }
}

/// Decodes a pickle held in memory, with default limits.
pub fn loads(data: &[u8]) -> Result<PickleValue> {
    Unpickler::new("<pickle bytes>").load(data)
}

/// Reads and decodes a pickle file (such as the LPIPS `.ckpt` files), with default limits.
pub fn load_file(path: impl AsRef<Path>) -> Result<PickleValue> {
    let path = path.as_ref();
    let data = std::fs::read(path).map_err(|e| ReadError::io(path, e))?;
    Unpickler::new(path.display().to_string()).load(&data)
}
