//! The codeword search as one CubeCL kernel for burn's CubeCL backends
//! (wgpu, CUDA): squared distances and a running top-k per query, with no
//! `T × K` score matrix in device memory.
//!
//! Layout. A cube of [`QUERIES_PER_CUBE`] units handles as many queries, one
//! per unit, against one split of the codebook (the grid is query blocks ×
//! splits, sized by `grid` so that even one image's 256 queries fill a GPU).
//! The cube walks its split in tiles of [`TILE_ROWS`] rows; for
//! each tile it walks the feature dimension in chunks of [`TILE_COLS`]
//! columns, loading the `TILE_ROWS × TILE_COLS` block of the codebook into
//! shared memory cooperatively (every codebook value is read from device
//! memory once per cube) while each unit accumulates its query's dot
//! products with the tile's rows in registers. After the last chunk each
//! unit turns the tile's dot products into `‖c‖² − 2 z·c` and merges them
//! into its sorted top-k in registers, written as a partial list
//! `[split, T, k]`. A second kernel merges each query's partial lists. Rows
//! are visited in increasing index order within a split, splits are merged
//! in increasing order, and a candidate displaces an entry only when
//! strictly smaller, so equal scores keep the lowest index (the reference's
//! rule). The distances written are `‖z‖² + ‖c‖² − 2 z·c`, clamped at 0.
//! Device memory besides the inputs: `2 · splits · T · k` values.
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

use kernel::{merge_kernel, search_kernel};

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

    /// Inserts `(d, i)` into the sorted top-`k` lists by swapping it down
    /// from the first entry it beats: strict `<` keeps earlier (lower)
    /// indices first among equals.
    #[cube]
    fn insert(
        best_d: &mut Array<f32>,
        best_i: &mut Array<i32>,
        d: f32,
        i: i32,
        #[comptime] k: usize,
    ) {
        if d < best_d[k - 1] {
            let mut cur_d = d;
            let mut cur_i = i;
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

    #[cube(launch)]
    pub fn search_kernel(
        queries: &Tensor<f32>,
        rows: &Tensor<f32>,
        norms: &Tensor<f32>,
        ids: &mut Tensor<i32>,
        dists: &mut Tensor<f32>,
        rows_per_split: usize,
        #[comptime] k: usize,
    ) {
        let t = queries.shape(0);
        let d = queries.shape(1);
        let split = CUBE_POS_Y as usize;
        let first = split * rows_per_split;
        let n_rows = usize::min(first + rows_per_split, rows.shape(0));
        let (qs0, qs1) = (queries.stride(0), queries.stride(1));
        let (rs0, rs1) = (rows.stride(0), rows.stride(1));
        let ns = norms.stride(0);
        let cube = CUBE_POS_X as usize;
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

        let mut c0 = first;
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
                        insert(&mut best_d, &mut best_i, s, c as i32, k);
                    }
                }
            }
            c0 += TILE_ROWS;
        }

        if live {
            // Partial results `[split][q][p]`, not clamped (the merge
            // compares them as the selection did, then clamps).
            let base = (split * t + q) * k;
            #[unroll]
            for p in 0..k {
                ids[base + p] = best_i[p];
                dists[base + p] = best_d[p] + zz;
            }
        }
    }

    /// Merges the `splits` partial top-k lists of each query (one unit per
    /// query): split `s` covers lower rows than split `s + 1` and each list
    /// is sorted, so inserting in split order with strict `<` keeps the
    /// lowest index among equal distances. Writes `[T, k]`, clamped at 0.
    #[cube(launch)]
    pub fn merge_kernel(
        part_ids: &Tensor<i32>,
        part_dists: &Tensor<f32>,
        ids: &mut Tensor<i32>,
        dists: &mut Tensor<f32>,
        t: usize,
        splits: usize,
        #[comptime] k: usize,
    ) {
        let q = (CUBE_POS_X * CUBE_DIM_X + UNIT_POS_X) as usize;
        if q < t {
            let mut best_d = Array::<f32>::new(k);
            let mut best_i = Array::<i32>::new(k);
            #[unroll]
            for p in 0..k {
                best_d[p] = f32::new(FAR);
                best_i[p] = -1;
            }
            for s in 0..splits {
                let base = (s * t + q) * k;
                for e in 0..k {
                    let cur_i = part_ids[base + e];
                    if cur_i >= 0 {
                        insert(&mut best_d, &mut best_i, part_dists[base + e], cur_i, k);
                    }
                }
            }
            let (is0, is1) = (ids.stride(0), ids.stride(1));
            let (ds0, ds1) = (dists.stride(0), dists.stride(1));
            #[unroll]
            for p in 0..k {
                ids[q * is0 + p * is1] = best_i[p];
                dists[q * ds0 + p * ds1] = f32::max(best_d[p], f32::new(0.0));
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
    let n_rows = rows.dims()[0];
    let q = float_cube::<B, R, 2>(queries)?;
    let r = float_cube::<B, R, 2>(rows)?;
    let n = float_cube::<B, R, 1>(norms)?;
    let device = queries.device();
    let (blocks, splits, rows_per_split) = grid(t, n_rows);
    let part_ids = Tensor::<B, 2, Int>::empty([splits * t, k], &device);
    let part_dists = Tensor::<B, 2>::empty([splits * t, k], &device);
    let (pi, pd) = (
        int_cube::<B, R, 2>(&part_ids)?,
        float_cube::<B, R, 2>(&part_dists)?,
    );
    let f32_all = [&q, &r, &n, &pd].iter().all(|x| x.dtype == DType::F32);
    if !f32_all || pi.dtype != DType::I32 {
        return None;
    }
    let client = q.client.clone();
    search_kernel::launch::<R>(
        &client,
        CubeCount::Static(blocks, splits as u32, 1),
        CubeDim::new_1d(QUERIES_PER_CUBE),
        q.into_tensor_arg(),
        r.into_tensor_arg(),
        n.into_tensor_arg(),
        pi.clone().into_tensor_arg(),
        pd.clone().into_tensor_arg(),
        rows_per_split,
        k,
    );
    let ids = Tensor::<B, 2, Int>::empty([t, k], &device);
    let dists = Tensor::<B, 2>::empty([t, k], &device);
    merge_kernel::launch::<R>(
        &client,
        CubeCount::Static(t.div_ceil(MERGE_UNITS as usize).max(1) as u32, 1, 1),
        CubeDim::new_1d(MERGE_UNITS),
        pi.into_tensor_arg(),
        pd.into_tensor_arg(),
        int_cube::<B, R, 2>(&ids)?.into_tensor_arg(),
        float_cube::<B, R, 2>(&dists)?.into_tensor_arg(),
        t,
        splits,
        k,
    );
    Some((ids, dists))
}

/// Units per cube of the merge kernel.
const MERGE_UNITS: u32 = 64;
/// Cubes a search aims to launch (enough to occupy a large GPU several
/// times over).
const TARGET_CUBES: usize = 1024;

/// The search grid: query blocks, codebook splits and rows per split. A
/// large batch gets few splits, a single image (T = 256, 4 query blocks)
/// many; a split never has fewer than 4 row tiles.
fn grid(t: usize, n_rows: usize) -> (u32, usize, usize) {
    let blocks = t.div_ceil(QUERIES_PER_CUBE as usize).max(1);
    let max_splits = n_rows.div_ceil(4 * TILE_ROWS).max(1);
    let splits = TARGET_CUBES.div_ceil(blocks).clamp(1, max_splits);
    let rows_per_split = n_rows.div_ceil(splits).div_ceil(TILE_ROWS) * TILE_ROWS;
    let splits = n_rows.div_ceil(rows_per_split);
    (blocks as u32, splits, rows_per_split)
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
