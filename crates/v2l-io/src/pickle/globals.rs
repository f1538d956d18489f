//! The allow-list: the only globals a pickle may name. Each maps to a Rust-side
//! implementation; nothing is ever imported or executed.

use super::value::{QualName, TorchDtype};

/// What an allowed global does when called (`REDUCE`, `NEWOBJ`, `INST`, `OBJ`) or built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GlobalKind {
    /// `collections.OrderedDict`, `builtins.dict`.
    Dict,
    /// `builtins.list`.
    List,
    /// `builtins.set`, `builtins.frozenset`.
    Set,
    /// `builtins.bytes`, `builtins.bytearray`.
    Bytes,
    /// `builtins.object` (only as the base argument of `copyreg._reconstructor`).
    Object,
    /// `_codecs.encode(str, encoding)`: how protocol-2 pickles store `bytes`.
    CodecsEncode,
    /// `copyreg._reconstructor(cls, object, None)`, for opaque classes only.
    CopyregReconstructor,
    /// `numpy.core.multiarray._reconstruct(ndarray, shape, typecode)`.
    NpReconstruct,
    /// `numpy.ndarray` (only as the class argument of `_reconstruct`).
    NpNdarray,
    /// `numpy.dtype(descr, align, copy)`.
    NpDtype,
    /// `numpy.core.multiarray.scalar(dtype, bytes)`.
    NpScalar,
    /// `numpy.core.numeric._frombuffer(buffer, dtype, shape, order)` (protocol 5).
    NpFromBuffer,
    /// `torch._utils._rebuild_tensor_v2` / `_rebuild_tensor`.
    TorchRebuildTensor,
    /// `torch._utils._rebuild_parameter` / `_rebuild_parameter_with_state`.
    TorchRebuildParameter,
    /// `torch._tensor._rebuild_from_type_v2(func, type, args, state)`.
    TorchRebuildFromType,
    /// `torch.Tensor`, `torch.nn.parameter.Parameter` (as the type argument above).
    TorchTensorClass,
    /// A typed storage class such as `torch.FloatStorage` (only inside a persistent id).
    TorchStorage(TorchDtype),
    /// `torch.Size(tuple)`.
    TorchSize,
    /// A harmless value reference such as `torch.float32`.
    Reference,
    /// `torch.jit._pickle.restore_type_tag(value, type_str)`: returns `value`.
    JitRestoreTypeTag,
    /// `torch.jit._pickle.build_{int,double,bool,tensor}list(list)`: returns the list.
    JitBuildList,
    /// A tolerated class kept as an opaque object: `argparse.Namespace`, `torch.device`,
    /// TorchScript classes under `__torch__.`.
    Opaque,
}

/// An allowed global: what it is and its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Global {
    pub(crate) kind: GlobalKind,
    pub(crate) name: QualName,
}

const TORCH_DTYPE_NAMES: &[&str] = &[
    "float64",
    "double",
    "float32",
    "float",
    "float16",
    "half",
    "bfloat16",
    "int64",
    "long",
    "int32",
    "int",
    "int16",
    "short",
    "int8",
    "uint8",
    "bool",
    "complex64",
    "complex128",
    "contiguous_format",
    "channels_last",
    "preserve_format",
];

/// Looks `module.name` up in the allow-list. Python 2 module names (`__builtin__`,
/// `copy_reg`) are accepted as their Python 3 equivalents. `None` means "not allowed".
pub(crate) fn resolve(module: &str, name: &str) -> Option<Global> {
    use GlobalKind as K;
    let canonical = match module {
        "__builtin__" => "builtins",
        "copy_reg" => "copyreg",
        m => m,
    };
    let numpy_multiarray = matches!(
        canonical,
        "numpy.core.multiarray" | "numpy._core.multiarray"
    );
    let numpy_numeric = matches!(canonical, "numpy.core.numeric" | "numpy._core.numeric");
    let kind = match (canonical, name) {
        ("collections", "OrderedDict") | ("builtins", "dict") => K::Dict,
        ("builtins", "list") => K::List,
        ("builtins", "set" | "frozenset") => K::Set,
        ("builtins", "bytes" | "bytearray") => K::Bytes,
        ("builtins", "object") => K::Object,
        ("_codecs", "encode") => K::CodecsEncode,
        ("copyreg", "_reconstructor") => K::CopyregReconstructor,
        (_, "_reconstruct") if numpy_multiarray => K::NpReconstruct,
        (_, "scalar") if numpy_multiarray => K::NpScalar,
        (_, "_frombuffer") if numpy_numeric => K::NpFromBuffer,
        ("numpy", "ndarray") => K::NpNdarray,
        ("numpy", "dtype") => K::NpDtype,
        ("argparse", "Namespace") => K::Opaque,
        ("torch._utils", "_rebuild_tensor_v2" | "_rebuild_tensor") => K::TorchRebuildTensor,
        ("torch._utils", "_rebuild_parameter" | "_rebuild_parameter_with_state") => {
            K::TorchRebuildParameter
        }
        ("torch._tensor", "_rebuild_from_type_v2") => K::TorchRebuildFromType,
        ("torch", "Tensor") | ("torch.nn.parameter", "Parameter") => K::TorchTensorClass,
        ("torch" | "torch.storage", "UntypedStorage") => K::TorchStorage(TorchDtype::U8),
        ("torch", n) if TorchDtype::from_storage_class(n).is_some() => {
            K::TorchStorage(TorchDtype::from_storage_class(n)?)
        }
        ("torch", "Size") => K::TorchSize,
        ("torch", "device") => K::Opaque,
        ("torch", n) if TORCH_DTYPE_NAMES.contains(&n) => K::Reference,
        ("torch.jit._pickle", "restore_type_tag") => K::JitRestoreTypeTag,
        (
            "torch.jit._pickle",
            "build_intlist" | "build_doublelist" | "build_boollist" | "build_tensorlist",
        ) => K::JitBuildList,
        (m, _) if m == "__torch__" || m.starts_with("__torch__.") => K::Opaque,
        _ => return None,
    };
    Some(Global {
        kind,
        name: QualName::new(canonical, name),
    })
}
