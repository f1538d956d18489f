//! Safe readers for the file formats v2l-rs reads, with no burn, network,
//! archive-extraction or cache dependencies (so they build and fuzz on
//! their own). Model crates build modules from these through `v2l-nn`.
//!
//! - [`pickle`]: an allow-listed pickle VM that never executes pickle code (numpy arrays,
//!   object arrays of `str`, torch tensor references, `argparse.Namespace`, TorchScript
//!   objects);
//! - [`tensors`]: one [`tensors::TensorSource`] interface over safetensors (single or sharded)
//!   and PyTorch archives;
//! - [`gguf`]: GGUF files (header, metadata, tensor table, dequantisation to f32);
//! - [`npy`]: NumPy `.npy` files, versions 1–3, numeric, string and object arrays;
//! - [`idx`]: IDX files (MNIST / Fashion-MNIST), plain or gzip-compressed;
//! - [`file`](mod@file): JSON configuration files with errors naming the path;
//! - [`atomic`]: crash-safe writes (temporary file + rename) and the interrupt-time cleanup
//!   of temporary files;
//! - [`torch_zip`]: tensors inside PyTorch zip archives (`torch.save` checkpoints and
//!   TorchScript modules) and legacy non-zip `torch.save` files.
//!
//! All of them report failures as one [`ReadError`] enum and never panic on bad input.

pub mod array;
pub mod atomic;
mod error;
pub mod file;
pub mod gguf;
pub mod hash;
pub mod idx;
pub mod npy;
pub mod pickle;
pub mod tensors;
pub mod torch_zip;

pub use array::{ArrayData, ByteOrder, Dtype, DtypeKind, NdArray};
pub use error::{ReadError, Result};
pub use file::{read_json, FileError};
pub use pickle::{PickleValue, QualName, TorchDtype, TorchStorageRef, TorchTensorRef};
