//! The codeword search as one CubeCL kernel for burn's CubeCL backends
//! (wgpu, CUDA): squared distances and a running top-k per query, with no
//! `T × K` score matrix in device memory.
//!
//! Layout. A cube of [`QUERIES_PER_CUBE`] units handles as many queries, one
//! per unit. The cube walks the codebook in tiles of [`TILE_ROWS`] rows; for
//! each tile it walks the feature dimension in chunks of [`TILE_COLS`]
//! columns, loading the `TILE_ROWS × TILE_COLS` block of the codebook into
//! shared memory cooperatively (every codebook value is read from device
//! memory once per cube) while each unit accumulates its query's dot
//! products with the tile's rows in registers. After the last chunk each
//! unit turns the tile's dot products into `‖c‖² − 2 z·c` and merges them
//! into its sorted top-k in registers. Rows are visited in increasing index
//! order and a candidate displaces an entry only when strictly smaller, so
//! equal scores keep the lowest index (the reference's rule). The distances
//! written are `‖z‖² + ‖c‖² − 2 z·c`, clamped at 0.
//!
//! Inputs are read through their strides (no copies for transposed or
//! sliced views); all must be f32, the index output i32 (burn's `Int` on
//! wgpu and CUDA).

use std::any::Any;

use burn::tensor::backend::Backend;
use burn::tensor::{DType, Int, Tensor};
use burn_cubecl::tensor::CubeTensor;
use burn_cubecl::CubeRuntime;
use cubecl::{CubeCount, CubeDim};

use kernel::search_kernel;

/// Units (= queries) per cube.
pub const QUERIES_PER_CUBE: u32 = 64;
/// Codebook rows per shared-memory tile (dot products per unit in registers).
pub const TILE_ROWS: usize = 32;
/// Feature columns per shared-memory chunk.
pub const TILE_COLS: usize = 16;
/// Larger than any score (WGSL has no infinity literal).
const FAR: f32 = 3.0e38;

mod kernel {
    use super::{FAR, TILE_COLS, TILE_ROWS};
    use cubecl::prelude::*;

    #[cube(launch)]
    pub fn search_kernel(
        queries: &Tensor<f32>,
        rows: &Tensor<f32>,
        norms: &Tensor<f32>,
        ids: &mut Tensor<i32>,
        dists: &mut Tensor<f32>,
        #[comptime] k: usize,
    ) {
        let t = queries.shape(0);
        let d = queries.shape(1);
        let n_rows = rows.shape(0);
        let (qs0, qs1) = (queries.stride(0), queries.stride(1));
        let (rs0, rs1) = (rows.stride(0), rows.stride(1));
        let ns = norms.stride(0);
        let cube = (CUBE_POS_Y * CUBE_COUNT_X + CUBE_POS_X) as usize;
        let unit = UNIT_POS_X as usize;
        let n_units = CUBE_DIM_X as usize;
        let q = cube * n_units + unit;
        let live = q < t;

        let mut tile = SharedMemory::<f32>::new(TILE_ROWS * TILE_COLS);
        let mut best_d = Array::<f32>::new(k);
        let mut best_i = Array::<i32>::new(k);
        #[unroll]
        for p in 0..k {
            best_d[p] = f32::new(FAR);
            best_i[p] = -1;
        }

        let mut zz = f32::new(0.0);
        if live {
            for col in 0..d {
                let v = queries[q * qs0 + col * qs1];
                zz += v * v;
            }
        }

        let mut c0 = 0;
        while c0 < n_rows {
            let mut acc = Array::<f32>::new(TILE_ROWS);
            #[unroll]
            for j in 0..TILE_ROWS {
                acc[j] = f32::new(0.0);
            }
            let mut d0 = 0;
            while d0 < d {
                let mut e = unit;
                while e < TILE_ROWS * TILE_COLS {
                    let c = c0 + e / TILE_COLS;
                    let col = d0 + e % TILE_COLS;
                    let mut v = f32::new(0.0);
                    if c < n_rows && col < d {
                        v = rows[c * rs0 + col * rs1];
                    }
                    tile[e] = v;
                    e += n_units;
                }
                sync_cube();
                if live {
                    #[unroll]
                    for col in 0..TILE_COLS {
                        let mut qv = f32::new(0.0);
                        if d0 + col < d {
                            qv = queries[q * qs0 + (d0 + col) * qs1];
                        }
                        #[unroll]
                        for j in 0..TILE_ROWS {
                            acc[j] += qv * tile[j * TILE_COLS + col];
                        }
                    }
                }
                sync_cube();
                d0 += TILE_COLS;
            }
            if live {
                for j in 0..TILE_ROWS {
                    let c = c0 + j;
                    if c < n_rows {
                        let s = norms[c * ns] - f32::new(2.0) * acc[j];
                        if s < best_d[k - 1] {
                            // Insert by swapping down the sorted list: strict `<`
                            // keeps earlier (lower) indices first among equals.
                            let mut cur_d = s;
                            let mut cur_i = c as i32;
                            #[unroll]
                            for p in 0..k {
                                if cur_d < best_d[p] {
                                    let (od, oi) = (best_d[p], best_i[p]);
                                    best_d[p] = cur_d;
                                    best_i[p] = cur_i;
                                    cur_d = od;
                                    cur_i = oi;
                                }
                            }
                        }
                    }
                }
            }
            c0 += TILE_ROWS;
        }

        if live {
            let (is0, is1) = (ids.stride(0), ids.stride(1));
            let (ds0, ds1) = (dists.stride(0), dists.stride(1));
            #[unroll]
            for p in 0..k {
                ids[q * is0 + p * is1] = best_i[p];
                dists[q * ds0 + p * ds1] = f32::max(best_d[p] + zz, f32::new(0.0));
            }
        }
    }
}

/// The primitive of a float tensor as `CubeTensor<R>`, when `B`'s is.
fn float_cube<B: Backend, R: CubeRuntime, const D: usize>(
    t: &Tensor<B, D>,
) -> Option<CubeTensor<R>> {
    let prim: Box<dyn Any> = Box::new(t.clone().into_primitive().tensor());
    prim.downcast::<CubeTensor<R>>().ok().map(|b| *b)
}

/// The primitive of an int tensor as `CubeTensor<R>`, when `B`'s is.
fn int_cube<B: Backend, R: CubeRuntime, const D: usize>(
    t: &Tensor<B, D, Int>,
) -> Option<CubeTensor<R>> {
    let prim: Box<dyn Any> = Box::new(t.clone().into_primitive());
    prim.downcast::<CubeTensor<R>>().ok().map(|b| *b)
}

/// The `k` nearest rows of `rows` (`[K, d]`, squared norms `norms` `[K]`) to
/// each row of `queries` (`[T, d]`), ascending, with their squared
/// distances; `None` when `B` is not a CubeCL backend of runtime `R`, a
/// tensor is not f32, or burn's `Int` is not i32 there (the caller falls
/// back to tensor ops).
fn search_on<B: Backend, R: CubeRuntime>(
    queries: &Tensor<B, 2>,
    rows: &Tensor<B, 2>,
    norms: &Tensor<B, 1>,
    k: usize,
) -> Option<(Tensor<B, 2, Int>, Tensor<B, 2>)> {
    let [t, _] = queries.dims();
    let q = float_cube::<B, R, 2>(queries)?;
    let r = float_cube::<B, R, 2>(rows)?;
    let n = float_cube::<B, R, 1>(norms)?;
    let device = queries.device();
    let ids = Tensor::<B, 2, Int>::empty([t, k], &device);
    let dists = Tensor::<B, 2>::empty([t, k], &device);
    let ids_c = int_cube::<B, R, 2>(&ids)?;
    let dists_c = float_cube::<B, R, 2>(&dists)?;
    let f32_all = [&q, &r, &n, &dists_c].iter().all(|x| x.dtype == DType::F32);
    if !f32_all || ids_c.dtype != DType::I32 {
        return None;
    }
    let cubes = t.div_ceil(QUERIES_PER_CUBE as usize).max(1) as u32;
    let x = cubes.min(u16::MAX as u32);
    let count = CubeCount::Static(x, cubes.div_ceil(x), 1);
    let client = q.client.clone();
    search_kernel::launch::<R>(
        &client,
        count,
        CubeDim::new_1d(QUERIES_PER_CUBE),
        q.into_tensor_arg(),
        r.into_tensor_arg(),
        n.into_tensor_arg(),
        ids_c.into_tensor_arg(),
        dists_c.into_tensor_arg(),
        k,
    );
    Some((ids, dists))
}

/// [`search_on`] for each runtime compiled in.
pub(crate) fn search<B: Backend>(
    queries: &Tensor<B, 2>,
    rows: &Tensor<B, 2>,
    norms: &Tensor<B, 1>,
    k: usize,
) -> Option<(Tensor<B, 2, Int>, Tensor<B, 2>)> {
    #[cfg(feature = "wgpu")]
    if let Some(out) = search_on::<B, cubecl::wgpu::WgpuRuntime>(queries, rows, norms, k) {
        return Some(out);
    }
    #[cfg(feature = "cuda")]
    if let Some(out) = search_on::<B, cubecl::cuda::CudaRuntime>(queries, rows, norms, k) {
        return Some(out);
    }
    None
}
