//! The values a pickle decodes to.

use std::fmt;

use crate::array::NdArray;

/// A qualified Python name, `module.name` (e.g. `argparse.Namespace`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct QualName {
    /// Module path, e.g. `__torch__.torch.nn.modules.conv`.
    pub module: String,
    /// Attribute name inside the module, e.g. `Conv2d`.
    pub name: String,
}

impl QualName {
    /// Builds a name from its two parts.
    pub fn new(module: impl Into<String>, name: impl Into<String>) -> Self {
        QualName {
            module: module.into(),
            name: name.into(),
        }
    }
}

impl fmt::Display for QualName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.module, self.name)
    }
}

/// Element type of a PyTorch storage / tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TorchDtype {
    /// `torch.float64` (`DoubleStorage`).
    F64,
    /// `torch.float32` (`FloatStorage`).
    F32,
    /// `torch.float16` (`HalfStorage`).
    F16,
    /// `torch.bfloat16` (`BFloat16Storage`).
    BF16,
    /// `torch.int64` (`LongStorage`).
    I64,
    /// `torch.int32` (`IntStorage`).
    I32,
    /// `torch.int16` (`ShortStorage`).
    I16,
    /// `torch.int8` (`CharStorage`).
    I8,
    /// `torch.uint8` (`ByteStorage`, and `UntypedStorage` bytes).
    U8,
    /// `torch.bool` (`BoolStorage`).
    Bool,
}

impl TorchDtype {
    /// Size of one element in bytes.
    pub fn element_size(self) -> usize {
        match self {
            TorchDtype::F64 | TorchDtype::I64 => 8,
            TorchDtype::F32 | TorchDtype::I32 => 4,
            TorchDtype::F16 | TorchDtype::BF16 | TorchDtype::I16 => 2,
            TorchDtype::I8 | TorchDtype::U8 | TorchDtype::Bool => 1,
        }
    }

    /// The torch name, e.g. `float16`.
    pub fn name(self) -> &'static str {
        match self {
            TorchDtype::F64 => "float64",
            TorchDtype::F32 => "float32",
            TorchDtype::F16 => "float16",
            TorchDtype::BF16 => "bfloat16",
            TorchDtype::I64 => "int64",
            TorchDtype::I32 => "int32",
            TorchDtype::I16 => "int16",
            TorchDtype::I8 => "int8",
            TorchDtype::U8 => "uint8",
            TorchDtype::Bool => "bool",
        }
    }

    /// Whether the type is a floating-point type.
    pub fn is_float(self) -> bool {
        matches!(
            self,
            TorchDtype::F64 | TorchDtype::F32 | TorchDtype::F16 | TorchDtype::BF16
        )
    }

    /// The dtype of a legacy typed-storage class name such as `FloatStorage`.
    pub fn from_storage_class(name: &str) -> Option<Self> {
        Some(match name {
            "DoubleStorage" => TorchDtype::F64,
            "FloatStorage" => TorchDtype::F32,
            "HalfStorage" => TorchDtype::F16,
            "BFloat16Storage" => TorchDtype::BF16,
            "LongStorage" => TorchDtype::I64,
            "IntStorage" => TorchDtype::I32,
            "ShortStorage" => TorchDtype::I16,
            "CharStorage" => TorchDtype::I8,
            "ByteStorage" | "UntypedStorage" => TorchDtype::U8,
            "BoolStorage" => TorchDtype::Bool,
            _ => return None,
        })
    }
}

impl fmt::Display for TorchDtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A storage named by a persistent id `('storage', <StorageClass>, key, location, numel)`:
/// the bytes live outside the pickle (in a PyTorch archive, entry `<prefix>/data/<key>`; in a
/// legacy non-zip `torch.save` file, the storage section after the pickles).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TorchStorageRef {
    /// Element type of the storage.
    pub dtype: TorchDtype,
    /// Storage key (the archive entry's file name; in a legacy file, the root storage's key).
    pub key: String,
    /// Device it was saved from, e.g. `cpu` or `cuda:0` (informational).
    pub location: String,
    /// Number of elements in the storage.
    pub numel: u64,
}

/// A tensor rebuilt by `torch._utils._rebuild_tensor_v2` (or a parameter around one):
/// a strided view into a storage. No data is read by the pickle reader.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TorchTensorRef {
    /// The storage the view points into.
    pub storage: TorchStorageRef,
    /// Offset of element `[0, 0, ...]` in the storage, in elements.
    pub storage_offset: usize,
    /// Shape of the view.
    pub shape: Vec<usize>,
    /// Stride of each dimension, in elements.
    pub stride: Vec<usize>,
    /// The saved `requires_grad` flag (informational).
    pub requires_grad: bool,
}

impl TorchTensorRef {
    /// Element type.
    pub fn dtype(&self) -> TorchDtype {
        self.storage.dtype
    }

    /// Number of elements of the view.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

/// A value decoded from a pickle. Python types map as follows:
///
/// | Python | `PickleValue` |
/// |---|---|
/// | `None`, `bool`, `int` (fits i64), `float` | `None`, `Bool`, `Int`, `Float` |
/// | `int` beyond i64 | `BigInt` (little-endian two's complement bytes) |
/// | `str` | `Str` |
/// | `bytes`, `bytearray`, Python 2 `str` | `Bytes` |
/// | `list`, `tuple`, `torch.Size` | `List`, `Tuple`, `Tuple` |
/// | `dict`, `collections.OrderedDict` | `Dict` (insertion order kept; a repeated key replaces the earlier value) |
/// | `set`, `frozenset` | `Set` |
/// | `numpy.ndarray` and numpy scalars | `NdArray` (scalars are 0-d arrays) |
/// | `numpy.dtype` on its own | `NumpyDtype` |
/// | torch tensors / `nn.Parameter` | `TorchTensor` |
/// | a torch storage on its own | `TorchStorage` |
/// | `argparse.Namespace`, TorchScript `__torch__.*` objects, `torch.device` | `Object` |
/// | an allowed global that was referenced but never called (a class, `torch.float32`) | `Global` |
///
/// Instance attributes set on a dict (`OrderedDict._metadata` in a `state_dict`) are dropped.
#[derive(Debug, Clone, PartialEq)]
pub enum PickleValue {
    /// Python `None`.
    None,
    /// Python `bool`.
    Bool(bool),
    /// Python `int` that fits in 64 bits.
    Int(i64),
    /// Python `int` beyond 64 bits: little-endian two's-complement bytes.
    BigInt(Vec<u8>),
    /// Python `float`.
    Float(f64),
    /// Python `str`.
    Str(String),
    /// Python `bytes` / `bytearray` (and Python 2 `str`).
    Bytes(Vec<u8>),
    /// Python `list`.
    List(Vec<PickleValue>),
    /// Python `tuple`.
    Tuple(Vec<PickleValue>),
    /// Python `dict` / `OrderedDict`, in insertion order.
    Dict(Vec<(PickleValue, PickleValue)>),
    /// Python `set` / `frozenset`.
    Set(Vec<PickleValue>),
    /// A numpy array or numpy scalar.
    NdArray(NdArray),
    /// A numpy dtype pickled on its own.
    NumpyDtype(crate::array::Dtype),
    /// A torch tensor (a view into an external storage).
    TorchTensor(TorchTensorRef),
    /// A torch storage pickled on its own.
    TorchStorage(TorchStorageRef),
    /// An instance of a tolerated class, kept opaque: its class, the arguments it was
    /// created with, and the state passed to `BUILD` (usually a dict of attributes).
    Object {
        /// The class.
        class: QualName,
        /// Constructor arguments.
        args: Vec<PickleValue>,
        /// The `BUILD` state, if any.
        state: Option<Box<PickleValue>>,
    },
    /// An allowed global referenced but never called.
    Global(QualName),
}

impl PickleValue {
    /// A short name of the variant, for messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            PickleValue::None => "None",
            PickleValue::Bool(_) => "bool",
            PickleValue::Int(_) | PickleValue::BigInt(_) => "int",
            PickleValue::Float(_) => "float",
            PickleValue::Str(_) => "str",
            PickleValue::Bytes(_) => "bytes",
            PickleValue::List(_) => "list",
            PickleValue::Tuple(_) => "tuple",
            PickleValue::Dict(_) => "dict",
            PickleValue::Set(_) => "set",
            PickleValue::NdArray(_) => "numpy.ndarray",
            PickleValue::NumpyDtype(_) => "numpy.dtype",
            PickleValue::TorchTensor(_) => "torch.Tensor",
            PickleValue::TorchStorage(_) => "torch storage",
            PickleValue::Object { .. } => "object",
            PickleValue::Global(_) => "global",
        }
    }

    /// The string of a `Str`.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            PickleValue::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The integer of an `Int` or `Bool`.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            PickleValue::Int(i) => Some(*i),
            PickleValue::Bool(b) => Some(i64::from(*b)),
            _ => None,
        }
    }

    /// The number of a `Float`, `Int` or `Bool`.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            PickleValue::Float(f) => Some(*f),
            PickleValue::Int(i) => Some(*i as f64),
            PickleValue::Bool(b) => Some(f64::from(u8::from(*b))),
            _ => None,
        }
    }

    /// The value of a `Bool` (or an `Int` 0/1).
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            PickleValue::Bool(b) => Some(*b),
            PickleValue::Int(0) => Some(false),
            PickleValue::Int(1) => Some(true),
            _ => None,
        }
    }

    /// The items of a `List`, `Tuple` or `Set`.
    pub fn as_seq(&self) -> Option<&[PickleValue]> {
        match self {
            PickleValue::List(v) | PickleValue::Tuple(v) | PickleValue::Set(v) => Some(v),
            _ => None,
        }
    }

    /// The entries of a `Dict`.
    pub fn as_dict(&self) -> Option<&[(PickleValue, PickleValue)]> {
        match self {
            PickleValue::Dict(d) => Some(d),
            _ => None,
        }
    }

    /// The array of an `NdArray`.
    pub fn as_ndarray(&self) -> Option<&NdArray> {
        match self {
            PickleValue::NdArray(a) => Some(a),
            _ => None,
        }
    }

    /// The tensor of a `TorchTensor`.
    pub fn as_tensor(&self) -> Option<&TorchTensorRef> {
        match self {
            PickleValue::TorchTensor(t) => Some(t),
            _ => None,
        }
    }

    /// Looks up `key` in a `Dict` (keys that are `Str`, or `Bytes` equal to its UTF-8), or in
    /// the state dict of an `Object` (so `args.get("lr")` works on an `argparse.Namespace`).
    pub fn get(&self, key: &str) -> Option<&PickleValue> {
        match self {
            PickleValue::Dict(entries) => entries.iter().find_map(|(k, v)| match k {
                PickleValue::Str(s) if s == key => Some(v),
                PickleValue::Bytes(b) if b.as_slice() == key.as_bytes() => Some(v),
                _ => None,
            }),
            PickleValue::Object {
                state: Some(state), ..
            } => state.get(key),
            _ => None,
        }
    }
}
