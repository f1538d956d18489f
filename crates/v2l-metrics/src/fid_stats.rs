//! Streaming feature statistics for FID: the mean and the unbiased
//! covariance (`numpy.cov(rowvar=False)`, divisor `n − 1`) of feature rows,
//! accumulated batch by batch in f64 with Chan's pairwise update (exact up
//! to rounding, no catastrophic cancellation), and saved / loaded as
//! statistics files.
//!
//! Files: our own safetensors (`mu` f64 `[d]`, `sigma` f64 `[d, d]`,
//! metadata `n` and a free-form JSON `provenance`), or pytorch-fid's `.npz`
//! (`mu`, `sigma`; read only).

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use safetensors::tensor::{Dtype, TensorView};

use crate::error::{MetricsError, Result};
use crate::frechet::frechet_distance;

/// Mean and scatter of feature rows seen so far.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureStats {
    dim: usize,
    n: usize,
    mean: Vec<f64>,
    /// Σ (x − mean)(x − mean)ᵀ, row-major `[dim, dim]`.
    scatter: Vec<f64>,
}

/// Statistics read from a file, with what the file says about them.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredStats {
    /// Mean `[d]`.
    pub mu: Vec<f64>,
    /// Covariance `[d, d]`, row-major.
    pub sigma: Vec<f64>,
    /// Samples, when the file records it (`.npz` files do not).
    pub n: Option<usize>,
    /// Provenance recorded with the statistics.
    pub provenance: serde_json::Value,
}

fn io_err(path: &Path, e: impl std::fmt::Display) -> MetricsError {
    MetricsError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

impl FeatureStats {
    /// Empty statistics of `dim`-wide features.
    pub fn new(dim: usize) -> Self {
        Self {
            dim,
            n: 0,
            mean: vec![0.0; dim],
            scatter: vec![0.0; dim * dim],
        }
    }

    /// Feature width.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Rows seen.
    pub fn n(&self) -> usize {
        self.n
    }

    /// The running mean.
    pub fn mean(&self) -> &[f64] {
        &self.mean
    }

    /// Add a batch of rows (`features`: row-major `[rows, dim]`).
    ///
    /// # Errors
    /// A length that is not whole rows; a NaN or infinity.
    pub fn update(&mut self, features: &[f32]) -> Result<()> {
        let d = self.dim;
        if d == 0 || !features.len().is_multiple_of(d) {
            return Err(MetricsError::BadLength {
                what: "features",
                len: features.len(),
                shape: vec![features.len() / d.max(1), d],
            });
        }
        if let Some((index, &v)) = features.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(MetricsError::NonFinite {
                what: "features",
                index,
                value: f64::from(v),
            });
        }
        let rows = features.len() / d;
        if rows == 0 {
            return Ok(());
        }
        // Batch mean and centred rows in f64.
        let mut bmean = vec![0.0f64; d];
        for r in features.chunks(d) {
            for (m, &x) in bmean.iter_mut().zip(r) {
                *m += f64::from(x);
            }
        }
        for m in &mut bmean {
            *m /= rows as f64;
        }
        let mut centred = vec![0.0f64; rows * d];
        for (c, r) in centred.chunks_mut(d).zip(features.chunks(d)) {
            for ((c, &x), m) in c.iter_mut().zip(r).zip(&bmean) {
                *c = f64::from(x) - m;
            }
        }
        // Batch scatter = Cᵀ C.
        let mut bscatter = vec![0.0f64; d * d];
        add_gram(&centred, rows, d, &mut bscatter);
        self.merge_parts(rows, &bmean, &bscatter);
        Ok(())
    }

    fn merge_parts(&mut self, nb: usize, bmean: &[f64], bscatter: &[f64]) {
        let d = self.dim;
        let na = self.n as f64;
        let nbf = nb as f64;
        let n = na + nbf;
        let delta: Vec<f64> = bmean.iter().zip(&self.mean).map(|(b, a)| b - a).collect();
        let w = na * nbf / n;
        for i in 0..d {
            let di = delta[i] * w;
            let row = &mut self.scatter[i * d..(i + 1) * d];
            let brow = &bscatter[i * d..(i + 1) * d];
            for j in 0..d {
                row[j] += brow[j] + di * delta[j];
            }
        }
        for (m, dl) in self.mean.iter_mut().zip(&delta) {
            *m += dl * nbf / n;
        }
        self.n += nb;
    }

    /// Combine with statistics of other rows (e.g. from another thread).
    ///
    /// # Errors
    /// Different widths.
    pub fn merge(&mut self, other: &FeatureStats) -> Result<()> {
        if other.dim != self.dim {
            return Err(MetricsError::ShapeMismatch {
                what: "feature widths",
                left: vec![self.dim],
                right: vec![other.dim],
            });
        }
        if other.n > 0 {
            self.merge_parts(other.n, &other.mean, &other.scatter);
        }
        Ok(())
    }

    /// The unbiased covariance `[d, d]` (divisor `n − 1`, as `numpy.cov`).
    ///
    /// # Errors
    /// Fewer than two rows.
    pub fn covariance(&self) -> Result<Vec<f64>> {
        if self.n < 2 {
            return Err(MetricsError::Undefined(format!(
                "a covariance needs at least 2 feature rows, got {}",
                self.n
            )));
        }
        let k = (self.n - 1) as f64;
        Ok(self.scatter.iter().map(|v| v / k).collect())
    }

    /// Save `mu`, `sigma`, `n` and `provenance` as a safetensors file.
    ///
    /// # Errors
    /// Fewer than two rows; I/O failures.
    pub fn save(&self, path: impl AsRef<Path>, provenance: &serde_json::Value) -> Result<()> {
        let path = path.as_ref();
        let sigma = self.covariance()?;
        let mu_bytes: Vec<u8> = self.mean.iter().flat_map(|v| v.to_le_bytes()).collect();
        let sigma_bytes: Vec<u8> = sigma.iter().flat_map(|v| v.to_le_bytes()).collect();
        let d = self.dim;
        let views = vec![
            (
                "mu".to_string(),
                TensorView::new(Dtype::F64, vec![d], &mu_bytes).map_err(|e| io_err(path, e))?,
            ),
            (
                "sigma".to_string(),
                TensorView::new(Dtype::F64, vec![d, d], &sigma_bytes)
                    .map_err(|e| io_err(path, e))?,
            ),
        ];
        let mut meta = HashMap::new();
        meta.insert("n".to_string(), self.n.to_string());
        meta.insert("provenance".to_string(), provenance.to_string());
        safetensors::serialize_to_file(views, Some(meta), path).map_err(|e| io_err(path, e))
    }
}

/// `Cᵀ C` for row-major `c` `[rows, d]` into `out` `[d, d]` (accumulating).
fn add_gram(c: &[f64], rows: usize, d: usize, out: &mut [f64]) {
    // Blocked over rows so the working set stays in cache; the inner update
    // is a rank-1 accumulation written to vectorise.
    const BLOCK: usize = 64;
    for start in (0..rows).step_by(BLOCK) {
        let end = (start + BLOCK).min(rows);
        for i in 0..d {
            let orow = &mut out[i * d..(i + 1) * d];
            for r in start..end {
                let x = &c[r * d..(r + 1) * d];
                let xi = x[i];
                if xi == 0.0 {
                    continue;
                }
                for (o, &xj) in orow.iter_mut().zip(x) {
                    *o += xi * xj;
                }
            }
        }
    }
}

/// Read statistics: our safetensors (`mu`, `sigma`, metadata) or
/// pytorch-fid's `.npz`.
///
/// # Errors
/// Unreadable file, missing `mu`/`sigma`, shapes that do not agree.
pub fn load_stats(path: impl AsRef<Path>) -> Result<StoredStats> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| io_err(path, e))?;
    let is_npz = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("npz"));
    let (mu, sigma, n, provenance) = if is_npz {
        let mut zip =
            zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(|e| io_err(path, e))?;
        let mut read = |name: &str| -> Result<Vec<f64>> {
            let mut f = zip
                .by_name(&format!("{name}.npy"))
                .map_err(|e| io_err(path, format!("{name}.npy: {e}")))?;
            let mut buf = Vec::new();
            f.read_to_end(&mut buf).map_err(|e| io_err(path, e))?;
            v2l_io::npy::from_bytes(&buf, name)
                .and_then(|a| a.to_f64())
                .map_err(|e| io_err(path, e))
        };
        (read("mu")?, read("sigma")?, None, serde_json::Value::Null)
    } else {
        let st = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| io_err(path, e))?;
        let get = |name: &str| -> Result<Vec<f64>> {
            let t = st
                .tensor(name)
                .map_err(|e| io_err(path, format!("{name}: {e}")))?;
            if t.dtype() != Dtype::F64 {
                return Err(io_err(
                    path,
                    format!("{name} is {:?}, expected F64", t.dtype()),
                ));
            }
            Ok(t.data()
                .chunks_exact(8)
                .map(|b| f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
                .collect())
        };
        let (_, meta) =
            safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| io_err(path, e))?;
        let info = meta.metadata().clone().unwrap_or_default();
        let n = info.get("n").and_then(|s| s.parse().ok());
        let provenance = info
            .get("provenance")
            .and_then(|s| serde_json::from_str(s).ok())
            .unwrap_or(serde_json::Value::Null);
        (get("mu")?, get("sigma")?, n, provenance)
    };
    let d = mu.len();
    if sigma.len() != d * d {
        return Err(MetricsError::BadLength {
            what: "sigma",
            len: sigma.len(),
            shape: vec![d, d],
        });
    }
    Ok(StoredStats {
        mu,
        sigma,
        n,
        provenance,
    })
}

impl StoredStats {
    /// From live statistics.
    ///
    /// # Errors
    /// Fewer than two rows.
    pub fn from_stats(s: &FeatureStats, provenance: serde_json::Value) -> Result<Self> {
        Ok(Self {
            mu: s.mean().to_vec(),
            sigma: s.covariance()?,
            n: Some(s.n()),
            provenance,
        })
    }
}

/// FID between two sets of statistics (the Fréchet distance of
/// [`frechet_distance`]).
///
/// # Errors
/// Widths differ; non-finite values.
pub fn fid(a: &StoredStats, b: &StoredStats) -> Result<f64> {
    frechet_distance(&a.mu, &a.sigma, &b.mu, &b.sigma)
}
