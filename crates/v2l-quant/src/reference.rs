//! The reference kernel: exact per-pair differences accumulated in f64,
//! a full sort per query. Slow and obviously correct; the fused kernel is
//! tested against it.

use crate::{Metric, PreparedCodebook};

/// Exact scores of every codeword for one query: squared L2 distance
/// `Σ (z_i − c_i)²` or inner product `Σ z_i·c_i`, accumulated in f64.
pub(crate) fn exact_scores(cb: &PreparedCodebook, query: &[f32], metric: Metric) -> Vec<f64> {
    let dim = cb.dim();
    let mut row = vec![0.0f32; dim];
    (0..cb.len())
        .map(|j| {
            cb.rows_f32_into(j, &mut row);
            match metric {
                Metric::SquaredL2 => query
                    .iter()
                    .zip(&row)
                    .map(|(&z, &c)| {
                        let d = f64::from(z) - f64::from(c);
                        d * d
                    })
                    .sum(),
                Metric::InnerProduct => query
                    .iter()
                    .zip(&row)
                    .map(|(&z, &c)| f64::from(z) * f64::from(c))
                    .sum(),
            }
        })
        .collect()
}

/// The `k` best codewords of each query, best first; ties go to the lower index.
pub(crate) fn search(
    cb: &PreparedCodebook,
    queries: &[f32],
    k: usize,
    metric: Metric,
) -> (Vec<u32>, Vec<f32>) {
    let dim = cb.dim();
    let n = queries.len() / dim;
    let mut indices = Vec::with_capacity(n * k);
    let mut scores = Vec::with_capacity(n * k);
    for q in queries.chunks_exact(dim) {
        let s = exact_scores(cb, q, metric);
        let mut order: Vec<usize> = (0..s.len()).collect();
        order.sort_by(|&a, &b| {
            let by_score = match metric {
                Metric::SquaredL2 => s[a].total_cmp(&s[b]),
                Metric::InnerProduct => s[b].total_cmp(&s[a]),
            };
            by_score.then(a.cmp(&b))
        });
        for &j in order.iter().take(k) {
            indices.push(j as u32);
            scores.push(s[j] as f32);
        }
    }
    (indices, scores)
}
