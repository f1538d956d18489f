//! The weight-loading layer of v2l-rs (it needs burn, so it sits above the
//! burn-free readers of `v2l-io`).
//!
//! Every model crate — the V2L tokenizer, CLIP, the LLM, FID-Inception,
//! LPIPS — builds its parameters through one [`Loader`]:
//!
//! ```no_run
//! use burn::backend::NdArray;
//! use v2l_nn::{layers, Loader, Unexpected};
//!
//! let file = v2l_io::tensors::open_tensors("model.safetensors")?;
//! let device = Default::default();
//! let vb = Loader::<NdArray>::from_source(file.as_ref(), &device);
//! let proj = layers::linear(&vb.pp("proj"), 64, 32, true); // reads proj.weight [32, 64], proj.bias
//! let names = vb.finish(Unexpected::All)?; // every problem at once, or the names for export
//! let tensors = names.export(&proj)?; // back in PyTorch's layout
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! - [`load`]: [`Loader`] (prefix scoping, dtype conversion, [`Layout`]s,
//!   one [`LoadError`] for every problem, seeded [`Init`]), [`Names`] for
//!   writing parameters back in file layout.
//! - [`layers`]: burn-nn layers (`Linear`, `Conv2d`, `GroupNorm`,
//!   `LayerNorm`, `RmsNorm`, `Embedding`) read with PyTorch's names and
//!   layouts.
//! - [`modes`]: layers with an explicit train / eval [`modes::Mode`]
//!   (`BatchNorm2d`, `Dropout`), where burn-nn's pick their mode from the
//!   backend.
//! - [`init`]: the seeded initialisers.
//! - [`precision`]: [`Precision`] (f32, or f16 as the reference runs its
//!   frozen CLIP and LLaMA-2), casting loaded modules, norms computed in f32.

pub mod init;
pub mod layers;
pub mod load;
pub mod modes;
pub mod precision;

pub use init::{Init, InitRng};
pub use load::{
    ExportError, Layout, LoadError, Loader, NamedParam, NamedTensor, Names, ReadProblem,
    ShapeProblem, Unexpected, ValueProblem,
};
pub use precision::{Precision, PrecisionError};
