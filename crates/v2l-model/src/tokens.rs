//! Visual tokens: what `encode` returns and `decode` reads, and their JSON
//! file (`v2l encode --json`, `v2l decode --tokens`).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{ModelError, Result};

/// The tokens of a batch of images.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VisualTokens {
    /// `[B][k]` global ids, nearest first.
    pub global_ids: Vec<Vec<u32>>,
    /// `[B][k]` the global codebook's strings for those ids, when the model
    /// knows them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub global_words: Option<Vec<Vec<String>>>,
    /// `[B][h·w]` local ids = LLM token ids, row-major over the grid.
    pub local_ids: Vec<Vec<u32>>,
    /// `[h, w]` the latent grid.
    pub grid: [usize; 2],
}

impl VisualTokens {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.local_ids.len()
    }

    /// Whether there are no images.
    pub fn is_empty(&self) -> bool {
        self.local_ids.is_empty()
    }

    /// Append another batch's tokens (e.g. the next chunk of the same
    /// encode). Global words are kept only if both batches have them.
    ///
    /// # Errors
    /// The batches have different grids.
    pub fn append(&mut self, other: VisualTokens) -> Result<()> {
        if other.grid != self.grid {
            return Err(ModelError::InvalidInput(format!(
                "cannot join tokens of grid {:?} to tokens of grid {:?}",
                other.grid, self.grid
            )));
        }
        self.global_ids.extend(other.global_ids);
        self.local_ids.extend(other.local_ids);
        self.global_words = match (self.global_words.take(), other.global_words) {
            (Some(mut a), Some(b)) => {
                a.extend(b);
                Some(a)
            }
            _ => None,
        };
        Ok(())
    }

    /// Check the lists agree with each other and with the grid.
    ///
    /// # Errors
    /// [`ModelError::InvalidInput`] naming the first inconsistency.
    pub fn validate(&self) -> Result<()> {
        let b = self.local_ids.len();
        if self.global_ids.len() != b {
            return Err(ModelError::InvalidInput(format!(
                "{b} images of local ids but {} of global ids",
                self.global_ids.len()
            )));
        }
        let n = self.grid[0].checked_mul(self.grid[1]).ok_or_else(|| {
            ModelError::InvalidInput(format!(
                "the grid {}×{} overflows",
                self.grid[0], self.grid[1]
            ))
        })?;
        for (i, row) in self.local_ids.iter().enumerate() {
            if row.len() != n {
                return Err(ModelError::InvalidInput(format!(
                    "image {i} has {} local ids, the grid {}×{} needs {n}",
                    row.len(),
                    self.grid[0],
                    self.grid[1]
                )));
            }
        }
        let k = self.global_ids.first().map_or(0, Vec::len);
        for (i, row) in self.global_ids.iter().enumerate() {
            if row.len() != k || k == 0 {
                return Err(ModelError::InvalidInput(format!(
                    "image {i} has {} global ids (image 0 has {k}; at least one is needed)",
                    row.len()
                )));
            }
        }
        Ok(())
    }

    /// Split into per-image records (paths attached by the caller).
    pub fn to_images(&self) -> Vec<ImageTokens> {
        (0..self.len())
            .map(|i| ImageTokens {
                path: None,
                global_ids: self.global_ids[i].clone(),
                global_words: self.global_words.as_ref().map(|w| w[i].clone()),
                local_ids: self.local_ids[i].clone(),
                grid: self.grid,
            })
            .collect()
    }

    /// Join per-image records with one grid and one `k` into a batch.
    ///
    /// # Errors
    /// Records with different grids or `k`.
    pub fn from_images(images: &[ImageTokens]) -> Result<Self> {
        let first = images
            .first()
            .ok_or_else(|| ModelError::InvalidInput("no images in the tokens".into()))?;
        for (i, im) in images.iter().enumerate() {
            if im.grid != first.grid || im.global_ids.len() != first.global_ids.len() {
                return Err(ModelError::InvalidInput(format!(
                    "image {i} has grid {:?} and {} global ids, image 0 has {:?} and {}; decode them separately",
                    im.grid,
                    im.global_ids.len(),
                    first.grid,
                    first.global_ids.len()
                )));
            }
        }
        let words: Option<Vec<Vec<String>>> =
            images.iter().map(|im| im.global_words.clone()).collect();
        let t = Self {
            global_ids: images.iter().map(|im| im.global_ids.clone()).collect(),
            global_words: words,
            local_ids: images.iter().map(|im| im.local_ids.clone()).collect(),
            grid: first.grid,
        };
        t.validate()?;
        Ok(t)
    }
}

/// One image's tokens in the JSON file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageTokens {
    /// The image file the tokens came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Global ids, nearest first.
    pub global_ids: Vec<u32>,
    /// Their strings, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub global_words: Option<Vec<String>>,
    /// Local ids (LLM token ids), row-major.
    pub local_ids: Vec<u32>,
    /// `[h, w]`.
    pub grid: [usize; 2],
}

/// The tokens JSON: `{"images": [...], "model": {provenance}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokensFile {
    /// One record per image.
    pub images: Vec<ImageTokens>,
    /// Where the tokens came from (checkpoint, its hash, sizes, k).
    #[serde(default)]
    pub model: serde_json::Value,
}

impl TokensFile {
    /// Read and check a tokens file.
    ///
    /// # Errors
    /// Unreadable file, malformed JSON, inconsistent records.
    pub fn read(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ModelError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let f: Self = serde_json::from_str(&text).map_err(|e| ModelError::Json {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        for (i, im) in f.images.iter().enumerate() {
            if im.grid[0].checked_mul(im.grid[1]) != Some(im.local_ids.len()) {
                return Err(ModelError::Json {
                    path: path.to_path_buf(),
                    message: format!(
                        "images[{i}] has {} local ids for a {}×{} grid",
                        im.local_ids.len(),
                        im.grid[0],
                        im.grid[1]
                    ),
                });
            }
        }
        Ok(f)
    }
}
