//! The burn-generic entry point (`B: Backend`) and the straight-through
//! quantisation op used in training.
//!
//! On CPU backends (NdArray, Flex, and their autodiff wrappers) searches copy
//! the values to the host once and run the fused kernel, which is several
//! times faster than burn's `matmul` + `argmin` there. On burn's CubeCL
//! backends (wgpu, CUDA; with this crate's `wgpu` / `cuda` feature, f32) they
//! run one CubeCL kernel (distances and a running top-k in registers and
//! shared memory, no `T × K` matrix; the `cube` module). Elsewhere — other
//! backends, autodiff wrappers of the GPU backends, f16 — they run as tensor
//! ops: `‖c‖² − 2 z·cᵀ` per query chunk, then `argmin` / a descending sort.
//! [`Strategy`] overrides the choice.

use burn::tensor::{backend::Backend, ElementConversion, Int, Tensor, TensorData};

use crate::{Metric, PreparedCodebook, QuantError, Result, MAX_TOP_K};

/// Where a burn-generic search runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strategy {
    /// The host kernel on CPU backends, tensor ops elsewhere.
    #[default]
    Auto,
    /// Copy to the host and run the fused kernel (any backend).
    HostKernel,
    /// Tensor ops on the tensors' device (any backend). Ties follow the
    /// backend's `argmin` / sort, which need not pick the lowest index.
    TensorOps,
    /// The CubeCL search kernel (burn's wgpu or CUDA backend with this
    /// crate's feature of the same name, f32); searches on any other
    /// backend are [`QuantError::Backend`] errors.
    DeviceKernel,
}

/// Backends whose tensors live in host memory, by their `Backend::name`
/// (autodiff and fusion wrappers are looked through).
pub fn is_host_backend<B: Backend>(device: &B::Device) -> bool {
    let name = B::name(device);
    let mut inner = name.as_str();
    for wrapper in ["autodiff<", "fusion<"] {
        while let Some(rest) = inner.strip_prefix(wrapper) {
            inner = rest.strip_suffix('>').unwrap_or(rest);
        }
    }
    matches!(inner, "ndarray" | "flex") || inner.starts_with("candle<cpu")
}

/// Largest number of `T × K` score elements the tensor-ops path holds at once.
const TENSOR_CHUNK_ELEMS: usize = 1 << 24;

/// A codebook `[K, d]` as a burn tensor, prepared once for repeated searches.
///
/// Memory: on the host path the rows live twice — as the burn tensor (kept
/// for the differentiable gather of [`StraightThrough::codes`]) and as the
/// prepared host copy the kernel searches. For inference-only use on a CPU,
/// [`PreparedCodebook`] alone holds a single copy.
#[derive(Debug, Clone)]
pub struct TensorCodebook<B: Backend> {
    rows: Tensor<B, 2>,
    host: Option<PreparedCodebook>,
    sq_norms: Option<Tensor<B, 1>>,
    device_kernel: DeviceKernel,
}

/// Top-k ids `[T, k]` and squared distances `[T, k]`.
type TopKTensors<B> = (Tensor<B, 2, Int>, Tensor<B, 2>);

/// Whether device searches try the CubeCL kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DeviceKernel {
    /// Use it where it runs, tensor ops elsewhere.
    Try,
    /// Use it; elsewhere an error.
    Require,
    /// Tensor ops only.
    Never,
}

fn read_f32(data: TensorData) -> Result<Vec<f32>> {
    data.convert::<f32>()
        .into_vec::<f32>()
        .map_err(|e| QuantError::Backend(format!("{e:?}")))
}

fn read_i64(data: TensorData) -> Result<Vec<i64>> {
    data.convert::<i64>()
        .into_vec::<i64>()
        .map_err(|e| QuantError::Backend(format!("{e:?}")))
}

/// Checks that a float tensor holds no NaN or infinity (one reduction).
fn check_finite<B: Backend, const D: usize>(what: &'static str, t: &Tensor<B, D>) -> Result<()> {
    let bad = t.clone().is_nan().any().into_scalar().elem::<bool>()
        || t.clone().is_inf().any().into_scalar().elem::<bool>();
    if bad {
        // Locate the first offender for the message (error path only).
        let dims = t.dims();
        let cols = dims[D - 1].max(1);
        let values = read_f32(t.to_data())?;
        if let Some(p) = values.iter().position(|v| !v.is_finite()) {
            return Err(QuantError::NonFinite {
                what,
                row: p / cols,
                col: p % cols,
                value: values[p],
            });
        }
    }
    Ok(())
}

impl<B: Backend> TensorCodebook<B> {
    /// Prepares `rows` (`[K, d]`): on the host path, copies them to the host
    /// and computes the norms there; on the tensor path, keeps `‖c‖²` on the
    /// device. The rows themselves are kept for gathers (and for gradients
    /// when they come from a trainable projector).
    ///
    /// # Errors
    /// [`QuantError::EmptyCodebook`] for `K = 0` or `d = 0`;
    /// [`QuantError::NonFinite`] for a NaN or infinity in the rows.
    pub fn new(rows: Tensor<B, 2>, strategy: Strategy) -> Result<Self> {
        let [k, d] = rows.dims();
        if k == 0 || d == 0 {
            return Err(QuantError::EmptyCodebook { rows: k, dim: d });
        }
        let host = match strategy {
            Strategy::HostKernel => true,
            Strategy::TensorOps | Strategy::DeviceKernel => false,
            Strategy::Auto => is_host_backend::<B>(&rows.device()),
        };
        let device_kernel = match strategy {
            Strategy::DeviceKernel => DeviceKernel::Require,
            Strategy::TensorOps => DeviceKernel::Never,
            _ => DeviceKernel::Try,
        };
        if host {
            let values = read_f32(rows.clone().detach().into_data())?;
            let prepared = PreparedCodebook::from_f32(values, d)?;
            Ok(Self {
                rows,
                host: Some(prepared),
                sq_norms: None,
                device_kernel,
            })
        } else {
            check_finite("codebook", &rows)?;
            let sq = rows.clone().detach().powi_scalar(2).sum_dim(1).reshape([k]);
            Ok(Self {
                rows,
                host: None,
                sq_norms: Some(sq),
                device_kernel,
            })
        }
    }

    /// The codebook rows `[K, d]`.
    pub fn rows(&self) -> &Tensor<B, 2> {
        &self.rows
    }

    /// Number of codewords `K`.
    pub fn len(&self) -> usize {
        self.rows.dims()[0]
    }

    /// Always `false`.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Width `d` of each codeword.
    pub fn dim(&self) -> usize {
        self.rows.dims()[1]
    }

    /// Whether searches run on the host kernel.
    pub fn uses_host_kernel(&self) -> bool {
        self.host.is_some()
    }

    fn check_queries(&self, z: &Tensor<B, 2>) -> Result<usize> {
        let [t, d] = z.dims();
        if d != self.dim() {
            return Err(QuantError::DimensionMismatch {
                queries: d,
                codebook: self.dim(),
            });
        }
        Ok(t)
    }

    /// The nearest codeword (squared L2) of each row of `z` (`[T, d]`) → `[T]`.
    ///
    /// # Errors
    /// [`QuantError::DimensionMismatch`] when `d` differs from the codebook's;
    /// [`QuantError::NonFinite`] for a NaN or infinity in `z`.
    pub fn nearest(&self, z: Tensor<B, 2>) -> Result<Tensor<B, 1, Int>> {
        let t = self.check_queries(&z)?;
        let device = z.device();
        if t == 0 {
            return Ok(Tensor::<B, 1, Int>::empty([0], &device));
        }
        match (&self.host, &self.sq_norms) {
            (Some(cb), _) => {
                let d = self.dim();
                let values = read_f32(z.detach().into_data())?;
                let hits = crate::nearest(cb, &values, d, Metric::SquaredL2)?;
                let ids: Vec<i64> = hits.indices.iter().map(|&i| i64::from(i)).collect();
                Ok(Tensor::from_data(TensorData::new(ids, [t]), &device))
            }
            (None, Some(sq)) => {
                check_finite("queries", &z)?;
                if let Some((ids, _)) = self.device_search(&z, sq, 1)? {
                    return Ok(ids.reshape([t]));
                }
                let scores_per_chunk = self.tensor_scores(z.detach(), sq);
                let parts: Vec<Tensor<B, 1, Int>> = scores_per_chunk
                    .into_iter()
                    .map(|s| {
                        let n = s.dims()[0];
                        s.argmin(1).reshape([n])
                    })
                    .collect();
                Ok(Tensor::cat(parts, 0))
            }
            (None, None) => Err(QuantError::Backend(
                "codebook has neither host nor device norms".into(),
            )),
        }
    }

    /// The CubeCL kernel's top-`k` (ids, squared distances), when this
    /// codebook may use it and the backend runs it.
    #[cfg_attr(not(any(feature = "wgpu", feature = "cuda")), allow(unused_variables))]
    fn device_search(
        &self,
        z: &Tensor<B, 2>,
        sq: &Tensor<B, 1>,
        k: usize,
    ) -> Result<Option<TopKTensors<B>>> {
        if self.device_kernel == DeviceKernel::Never {
            return Ok(None);
        }
        #[cfg(any(feature = "wgpu", feature = "cuda"))]
        if let Some(found) =
            crate::cube::search(&z.clone().detach(), &self.rows.clone().detach(), sq, k)
        {
            return Ok(Some(found));
        }
        if self.device_kernel == DeviceKernel::Require {
            return Err(QuantError::Backend(format!(
                "the device search kernel does not run on {} (it needs burn's wgpu or CUDA \
                 backend, f32, and v2l-quant's feature of the same name)",
                B::name(&z.device())
            )));
        }
        Ok(None)
    }

    /// `‖c‖² − 2 z·cᵀ` in query chunks bounded by [`TENSOR_CHUNK_ELEMS`].
    fn tensor_scores(&self, z: Tensor<B, 2>, sq: &Tensor<B, 1>) -> Vec<Tensor<B, 2>> {
        let [t, _] = z.dims();
        let k = self.len();
        let rows_t = self.rows.clone().detach().transpose();
        let chunk = (TENSOR_CHUNK_ELEMS / k).max(1);
        let norms = sq.clone().reshape([1, k]);
        (0..t)
            .step_by(chunk)
            .map(|s| {
                let e = (s + chunk).min(t);
                let zc = z.clone().slice(s..e);
                zc.matmul(rows_t.clone()).mul_scalar(-2.0) + norms.clone()
            })
            .collect()
    }

    /// The `k` nearest codewords (squared L2, ascending) of each row of `z`:
    /// indices `[T, k]` and squared distances `[T, k]`.
    ///
    /// # Errors
    /// [`QuantError::InvalidK`] unless `1 ≤ k ≤ min(K, MAX_TOP_K)`; otherwise
    /// as [`TensorCodebook::nearest`].
    pub fn top_k(&self, z: Tensor<B, 2>, k: usize) -> Result<(Tensor<B, 2, Int>, Tensor<B, 2>)> {
        if k == 0 || k > self.len() || k > MAX_TOP_K {
            return Err(QuantError::InvalidK {
                k,
                rows: self.len(),
                limit: MAX_TOP_K,
            });
        }
        let t = self.check_queries(&z)?;
        let device = z.device();
        match (&self.host, &self.sq_norms) {
            (Some(cb), _) => {
                let d = self.dim();
                let values = read_f32(z.detach().into_data())?;
                let hits = crate::top_k(cb, &values, d, k, Metric::SquaredL2)?;
                let ids: Vec<i64> = hits.indices.iter().map(|&i| i64::from(i)).collect();
                Ok((
                    Tensor::from_data(TensorData::new(ids, [t, k]), &device),
                    Tensor::from_data(TensorData::new(hits.scores, [t, k]), &device),
                ))
            }
            (None, Some(sq)) => {
                check_finite("queries", &z)?;
                if t == 0 {
                    return Ok((
                        Tensor::<B, 2, Int>::empty([0, k], &device),
                        Tensor::<B, 2>::empty([0, k], &device),
                    ));
                }
                if let Some(found) = self.device_search(&z, sq, k)? {
                    return Ok(found);
                }
                let z = z.detach();
                let zz = z.clone().powi_scalar(2).sum_dim(1);
                let mut ids = Vec::new();
                let mut dists = Vec::new();
                let chunk = (TENSOR_CHUNK_ELEMS / self.len()).max(1);
                for (i, s) in self.tensor_scores(z, sq).into_iter().enumerate() {
                    let n = s.dims()[0];
                    let (neg, idx) = s.neg().topk_with_indices(k, 1);
                    let zz_c = zz.clone().slice(i * chunk..i * chunk + n);
                    dists.push((neg.neg() + zz_c).clamp_min(0.0));
                    ids.push(idx);
                }
                Ok((Tensor::cat(ids, 0), Tensor::cat(dists, 0)))
            }
            (None, None) => Err(QuantError::Backend(
                "codebook has neither host nor device norms".into(),
            )),
        }
    }

    /// Nearest-codeword quantisation of `z` (`[T, d]`) with the
    /// straight-through estimator (see [`straight_through`]).
    ///
    /// # Errors
    /// As [`TensorCodebook::nearest`].
    pub fn quantize(&self, z: Tensor<B, 2>) -> Result<StraightThrough<B>> {
        let indices = self.nearest(z.clone())?;
        Ok(straight_through_unchecked(z, self.rows.clone(), indices))
    }
}

/// The result of straight-through quantisation.
#[derive(Debug, Clone)]
pub struct StraightThrough<B: Backend> {
    /// `[T, d]` = `z + sg(c[idx] − z)`: the value of `c[idx]`, with gradient
    /// flowing to `z` unchanged (the decoder's input in training).
    pub output: Tensor<B, 2>,
    /// `[T, d]` = `c[idx]`, differentiable with respect to the codebook rows
    /// (the codebook side of the official `qloss`).
    pub codes: Tensor<B, 2>,
    /// `[T]` the chosen codeword per row.
    pub indices: Tensor<B, 1, Int>,
}

fn straight_through_unchecked<B: Backend>(
    z: Tensor<B, 2>,
    rows: Tensor<B, 2>,
    indices: Tensor<B, 1, Int>,
) -> StraightThrough<B> {
    let codes = rows.select(0, indices.clone());
    let output = z.clone() + (codes.clone() - z).detach();
    StraightThrough {
        output,
        codes,
        indices,
    }
}

/// Straight-through quantisation with given indices: gathers `rows[indices]`
/// and forms `z + sg(rows[indices] − z)`.
///
/// # Errors
/// [`QuantError::DimensionMismatch`] when widths differ or the index count is
/// not `T`; [`QuantError::IndexOutOfRange`] for an index outside `0..K`.
pub fn straight_through<B: Backend>(
    z: Tensor<B, 2>,
    rows: Tensor<B, 2>,
    indices: Tensor<B, 1, Int>,
) -> Result<StraightThrough<B>> {
    let [t, d] = z.dims();
    let [k, dc] = rows.dims();
    if d != dc {
        return Err(QuantError::DimensionMismatch {
            queries: d,
            codebook: dc,
        });
    }
    let n = indices.dims()[0];
    if n != t {
        return Err(QuantError::DimensionMismatch {
            queries: t,
            codebook: n,
        });
    }
    if n > 0 {
        let ids = read_i64(indices.to_data())?;
        if let Some((p, &i)) = ids
            .iter()
            .enumerate()
            .find(|(_, &i)| i < 0 || i as u64 >= k as u64)
        {
            return Err(QuantError::IndexOutOfRange {
                index: i,
                position: p,
                rows: k,
            });
        }
    }
    Ok(straight_through_unchecked(z, rows, indices))
}
