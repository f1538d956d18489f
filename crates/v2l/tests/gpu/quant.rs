//! The quantiser's tensor path on the GPU against the host reference kernel.

use burn::tensor::{Int, Tensor, TensorData};
use v2l::quant::tensor::{Strategy, TensorCodebook};
use v2l::quant::{top_k_with, Codebook, Kernel, Metric, PreparedCodebook};

use crate::common::{gpu, host, values, GpuDevice, G};

/// The reference kernel's top-`k` of `queries` (`[T, dim]`) in `rows`
/// (`[K, dim]`), the same codebook on the GPU with `strategy`, and the
/// queries there.
fn setup(
    rows: &[f32],
    queries: &[f32],
    dim: usize,
    k: usize,
    strategy: Strategy,
    device: &GpuDevice,
) -> (v2l::quant::TopK, TensorCodebook<G>, Tensor<G, 2>) {
    let prepared = PreparedCodebook::new(Codebook::from_f32(rows.to_vec(), dim).unwrap()).unwrap();
    let want = top_k_with(
        Kernel::Reference,
        &prepared,
        queries,
        dim,
        k,
        Metric::SquaredL2,
    )
    .unwrap();
    let cb = TensorCodebook::new(
        Tensor::<G, 2>::from_data(
            TensorData::new(rows.to_vec(), [rows.len() / dim, dim]),
            device,
        ),
        strategy,
    )
    .unwrap();
    let z = Tensor::<G, 2>::from_data(
        TensorData::new(queries.to_vec(), [queries.len() / dim, dim]),
        device,
    );
    (want, cb, z)
}

/// Nearest codeword and top-k (ids, squared distances) of random queries, at
/// sizes that are neither powers of two nor multiples of anything: the
/// device's ids equal the reference kernel's, its distances agree to 1e-4
/// of the largest.
#[test]
fn tensor_path_matches_the_reference_kernel() {
    let Some(device) = gpu() else { return };
    for (t, k_rows, dim, k) in [(37, 1000, 77, 5), (1, 321, 768, 21), (130, 17, 3, 1)] {
        let rows = values(k_rows * dim, 1 + k_rows as u64);
        let queries = values(t * dim, 2 + t as u64);
        let (want, cb, z) = setup(&rows, &queries, dim, k, Strategy::TensorOps, &device);
        assert!(!cb.uses_host_kernel());
        let nearest = ids(cb.nearest(z.clone()).unwrap().reshape([t, 1]));
        let firsts: Vec<u32> = want.indices.chunks(k).map(|r| r[0]).collect();
        assert_eq!(nearest, firsts, "nearest, T={t} K={k_rows} d={dim}");

        let (got_ids, got_d) = cb.top_k(z, k).unwrap();
        assert_eq!(
            ids(got_ids),
            want.indices,
            "top-{k}, T={t} K={k_rows} d={dim}"
        );
        let got_d = host(got_d);
        let scale = want.scores.iter().fold(1f32, |m, v| m.max(v.abs()));
        for (i, (g, w)) in got_d.iter().zip(&want.scores).enumerate() {
            assert!(
                (g - w).abs() <= 1e-4 * scale,
                "distance {i}: {g} vs {w} (T={t} K={k_rows} d={dim})"
            );
        }
    }
}

fn ids(t: Tensor<G, 2, Int>) -> Vec<u32> {
    t.into_data()
        .convert::<i64>()
        .to_vec::<i64>()
        .unwrap()
        .into_iter()
        .map(|i| i as u32)
        .collect()
}

/// Squared distance in f64 (the reference's arithmetic).
fn dist(q: &[f32], c: &[f32]) -> f64 {
    q.iter()
        .zip(c)
        .map(|(a, b)| (f64::from(*a) - f64::from(*b)).powi(2))
        .sum()
}

/// The CubeCL kernel (`Strategy::DeviceKernel`) against the exact f64
/// reference kernel, at sizes that are not multiples of its tiles (64
/// queries per cube, 32 rows × 16 columns per shared-memory tile) and at
/// k = 1 … 64: distances within 1e-4 of the largest, ids equal except where
/// the reference's own distances of the two ids are within that tolerance
/// (a near-tie f32 may order either way).
#[test]
fn device_kernel_matches_the_reference_kernel() {
    let Some(device) = gpu() else { return };
    for (t, k_rows, dim, k) in [
        (1, 1, 1, 1),
        (37, 1000, 77, 5),
        (65, 33, 17, 21),
        (130, 31, 768, 1),
        (64, 2049, 3, 64),
        (3, 64, 32, 2),
    ] {
        let rows = values(k_rows * dim, 10 + k_rows as u64);
        let queries = values(t * dim, 20 + t as u64);
        let (want, cb, z) = setup(&rows, &queries, dim, k, Strategy::DeviceKernel, &device);
        let (got_ids, got_d) = cb.top_k(z.clone(), k).unwrap();
        let (got_ids, got_d) = (ids(got_ids), host(got_d));
        let scale = want.scores.iter().fold(1f32, |m, v| m.max(v.abs()));
        let tol = 1e-4 * f64::from(scale);
        for i in 0..t * k {
            let (g, w) = (got_ids[i] as usize, want.indices[i] as usize);
            let q = &queries[(i / k) * dim..(i / k + 1) * dim];
            assert!(
                (f64::from(got_d[i]) - f64::from(want.scores[i])).abs() <= tol,
                "distance {i}: {} vs {} (T={t} K={k_rows} d={dim} k={k})",
                got_d[i],
                want.scores[i]
            );
            if g != w {
                let (dg, dw) = (
                    dist(q, &rows[g * dim..(g + 1) * dim]),
                    dist(q, &rows[w * dim..(w + 1) * dim]),
                );
                assert!(
                    (dg - dw).abs() <= tol,
                    "id {i}: {g} vs {w}, distances {dg} vs {dw} (T={t} K={k_rows} d={dim} k={k})"
                );
            }
        }
        let nearest = ids(cb.nearest(z).unwrap().reshape([t, 1]));
        let firsts: Vec<u32> = got_ids.chunks(k).map(|r| r[0]).collect();
        assert_eq!(nearest, firsts, "nearest = first of top-k");
    }
}

/// Exact ties (duplicated rows score bit-identically in the kernel) go to
/// the lowest index, in order: the reference kernel's ids exactly. 7 rows
/// repeated 150 times (K = 1,050) put copies of every row in each of the
/// kernel's codebook splits, so the merge's order is checked too.
#[test]
fn device_kernel_breaks_ties_to_the_lowest_index() {
    let Some(device) = gpu() else { return };
    let (distinct, copies, dim, t, k) = (7, 150, 45, 70, 6);
    let base = values(distinct * dim, 5);
    let rows: Vec<f32> = (0..distinct * copies)
        .flat_map(|i| base[(i % distinct) * dim..(i % distinct + 1) * dim].to_vec())
        .collect();
    let queries = values(t * dim, 6);
    let (want, cb, z) = setup(&rows, &queries, dim, k, Strategy::DeviceKernel, &device);
    // The reference's top-6 is the best distinct row's copies in index order.
    assert!(want
        .indices
        .chunks(k)
        .all(|r| r.windows(2).all(|w| w[1] == w[0] + distinct as u32)));
    assert_eq!(ids(cb.top_k(z, k).unwrap().0), want.indices);
}
