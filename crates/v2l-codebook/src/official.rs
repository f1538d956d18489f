//! The reference's released codebook files (spec §2.4), read without
//! executing pickle code:
//!
//! - `local_codebook_embedding.pth`: `torch.save` of one tensor
//!   `[32000, 768]` (row i = LLaMA-2 token id i), most likely f16;
//! - `global_codebook_embedding.pth`: one tensor `[11908, 768]`;
//! - `global_vocabulary.npy`: a pickled numpy object array of 11,908 str
//!   (`np.load(..., allow_pickle=True)` in Python).
//!
//! Values are converted to f32, as the model's `.float()` does.

use std::path::Path;

use v2l_io::tensors::TensorSource;
use v2l_io::torch_zip::TorchArchive;

use crate::codebook::Codebook;
use crate::error::{CodebookError, Result};

/// Read a `.pth` holding one 2-D tensor as a codebook (provenance records
/// the file).
///
/// # Errors
/// Not a PyTorch archive; not exactly one tensor; not 2-D; non-finite values.
pub fn read_embedding_pth(path: impl AsRef<Path>) -> Result<Codebook> {
    let path = path.as_ref();
    let archive = TorchArchive::open(path)?;
    let keys = TensorSource::keys(&archive);
    let [key] = &keys[..] else {
        return Err(CodebookError::Format {
            path: path.to_path_buf(),
            message: format!(
                "expected one tensor (torch.save(tensor)), found {}: {:?}",
                keys.len(),
                keys.iter().take(4).collect::<Vec<_>>()
            ),
        });
    };
    let (shape, values) = TensorSource::read_f32(&archive, key)?;
    let [rows, dim] = shape[..] else {
        return Err(CodebookError::Format {
            path: path.to_path_buf(),
            message: format!("the tensor has shape {shape:?}, expected [rows, dim]"),
        });
    };
    let mut cb = Codebook::new(values, rows, dim)?;
    cb.provenance = serde_json::json!({ "imported_from": path.display().to_string() });
    Ok(cb)
}

/// Read `global_vocabulary.npy` (a pickled object array of str, or a
/// fixed-width unicode array).
///
/// # Errors
/// Unreadable file; entries that are not strings.
pub fn read_vocabulary_npy(path: impl AsRef<Path>) -> Result<Vec<String>> {
    Ok(v2l_io::npy::read(path.as_ref())?.to_strings()?)
}

/// Import both official codebooks: the local one as is, the global one with
/// its strings.
///
/// # Errors
/// As the readers; a vocabulary whose length differs from the global rows;
/// local and global widths that differ.
pub fn import(
    local_pth: impl AsRef<Path>,
    global_pth: impl AsRef<Path>,
    vocabulary_npy: impl AsRef<Path>,
) -> Result<(Codebook, Codebook)> {
    let local = read_embedding_pth(local_pth)?;
    let global = read_embedding_pth(global_pth)?;
    if local.dim() != global.dim() {
        return Err(CodebookError::Shape {
            what: "global codebook width".into(),
            found: global.dim().to_string(),
            expected: format!("{} (the local codebook's)", local.dim()),
        });
    }
    let vocab_path = vocabulary_npy.as_ref();
    let words = read_vocabulary_npy(vocab_path)?;
    let mut global = global.with_strings(words)?;
    global.provenance["strings_from"] = serde_json::json!(vocab_path.display().to_string());
    Ok((local, global))
}
