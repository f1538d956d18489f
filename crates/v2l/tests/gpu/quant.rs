//! The quantiser's tensor path on the GPU against the host reference kernel.

use burn::tensor::{Int, Tensor, TensorData};
use v2l::quant::tensor::{Strategy, TensorCodebook};
use v2l::quant::{top_k_with, Codebook, Kernel, Metric, PreparedCodebook};

use crate::common::{gpu, host, values, G};

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
        let prepared =
            PreparedCodebook::new(Codebook::from_f32(rows.clone(), dim).unwrap()).unwrap();
        let want = top_k_with(
            Kernel::Reference,
            &prepared,
            &queries,
            dim,
            k,
            Metric::SquaredL2,
        )
        .unwrap();

        let cb = TensorCodebook::new(
            Tensor::<G, 2>::from_data(TensorData::new(rows, [k_rows, dim]), &device),
            Strategy::TensorOps,
        )
        .unwrap();
        assert!(!cb.uses_host_kernel());
        let z = Tensor::<G, 2>::from_data(TensorData::new(queries, [t, dim]), &device);
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
