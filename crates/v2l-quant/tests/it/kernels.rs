//! The host kernels against the reference kernel and closed forms.
//!
//! Expected values come from (a) hand-computed distances on tiny codebooks,
//! (b) the reference kernel (exact f64 differences, full sort), which (a)
//! pins, and (c) exact f64 distances when two kernels pick different rows
//! (near-ties are compared by distance, not index).

use half::f16;
use rand::{rngs::StdRng, Rng, SeedableRng};
use v2l_quant::{
    cpu_features, exact_scores, nearest, nearest_with, top_k, top_k_with, Codebook, Kernel, Layout,
    Metric, PreparedCodebook, QuantError, SearchPath, MAX_TOP_K,
};

fn randn(rng: &mut StdRng, n: usize) -> Vec<f32> {
    // Sum of uniforms: cheap, roughly Gaussian, all finite.
    (0..n)
        .map(|_| (0..4).map(|_| rng.random::<f32>() - 0.5).sum::<f32>())
        .collect()
}

/// The same codebook prepared for every search path this CPU runs
/// (portable row-major tiles, AVX2 and AVX-512 panels, the bf16-screened
/// split layout), so every test below runs on every path; the paths are
/// logged once (`--nocapture` shows them).
fn layouts(values: Vec<f32>, d: usize) -> Vec<PreparedCodebook> {
    static LOGGED: std::sync::Once = std::sync::Once::new();
    LOGGED.call_once(|| {
        let names: Vec<&str> = SearchPath::available().iter().map(|p| p.name()).collect();
        eprintln!(
            "v2l-quant paths tested: {} (CPU flags: {})",
            names.join(", "),
            cpu_features()
        );
    });
    SearchPath::available()
        .into_iter()
        .map(|path| {
            let cb =
                PreparedCodebook::with_path(Codebook::from_f32(values.clone(), d).unwrap(), path)
                    .unwrap();
            assert_eq!(cb.path(), path);
            let want = match path {
                SearchPath::Portable => Layout::RowMajorF32,
                SearchPath::Avx2 | SearchPath::Avx512 => Layout::PanelsF32,
                SearchPath::Avx512Bf16 => Layout::SplitBf16Panels,
            };
            assert_eq!(cb.layout(), want);
            cb
        })
        .collect()
}

fn normalise_rows(v: &mut [f32], d: usize) {
    for r in v.chunks_exact_mut(d) {
        let n = r.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
        r.iter_mut().for_each(|x| *x /= n);
    }
}

/// Asserts that `got` picks, for each query, a row whose exact score equals
/// the reference's best within `tol` (relative to the score scale).
fn assert_same_or_tie(
    cb: &PreparedCodebook,
    queries: &[f32],
    d: usize,
    metric: Metric,
    got: &[u32],
    want: &[u32],
    k: usize,
) {
    for (qi, q) in queries.chunks_exact(d).enumerate() {
        let exact = exact_scores(cb, q, metric).unwrap();
        for r in 0..k {
            let (g, w) = (got[qi * k + r] as usize, want[qi * k + r] as usize);
            if g != w {
                let (sg, sw) = (exact[g], exact[w]);
                let scale = sw.abs().max(1.0);
                assert!(
                    (sg - sw).abs() <= 1e-5 * scale,
                    "query {qi} rank {r}: got row {g} ({sg}), reference row {w} ({sw})"
                );
            }
        }
    }
}

#[test]
fn reference_matches_hand_computed_distances() {
    // Rows (0,0), (3,4), (1,1); query (2,2): distances 8, 5, 2 → order 2, 1, 0.
    let cb = PreparedCodebook::from_f32(vec![0.0, 0.0, 3.0, 4.0, 1.0, 1.0], 2).unwrap();
    let r = top_k_with(Kernel::Reference, &cb, &[2.0, 2.0], 2, 3, Metric::SquaredL2).unwrap();
    assert_eq!(r.indices, vec![2, 1, 0]);
    assert_eq!(r.scores, vec![2.0, 5.0, 8.0]);
    // Inner products 0, 14, 4 → order 1, 2, 0.
    let r = top_k_with(
        Kernel::Reference,
        &cb,
        &[2.0, 2.0],
        2,
        3,
        Metric::InnerProduct,
    )
    .unwrap();
    assert_eq!(r.indices, vec![1, 2, 0]);
    assert_eq!(r.scores, vec![14.0, 4.0, 0.0]);
    assert_eq!(cb.sq_norms(), &[0.0, 25.0, 2.0]);
}

#[test]
fn fused_matches_hand_computed_distances() {
    for cb in layouts(vec![0.0, 0.0, 3.0, 4.0, 1.0, 1.0], 2) {
        let r = top_k(&cb, &[2.0, 2.0, 3.0, 3.5], 2, 2, Metric::SquaredL2).unwrap();
        // Second query (3, 3.5): distances 21.25, 0.25, 10.25.
        assert_eq!(r.indices, vec![2, 1, 1, 2]);
        assert_eq!(r.scores, vec![2.0, 5.0, 0.25, 10.25]);
        let n = nearest(&cb, &[2.0, 2.0, 3.0, 3.5], 2, Metric::SquaredL2).unwrap();
        assert_eq!(n.indices, vec![2, 1]);
        assert_eq!(n.scores, vec![2.0, 0.25]);
    }
}

/// Shapes chosen to hit the kernel's edges: d not a multiple of the SIMD
/// width, K below one tile and above several, T = 1 and above one query block.
#[test]
fn fused_nearest_matches_reference_across_shapes() {
    let mut rng = StdRng::seed_from_u64(7);
    for &(t, k, d) in &[
        (1, 1, 1),
        (1, 3, 7),
        (5, 100, 17),
        (3, 1023, 33),
        (257, 1500, 13),
        (300, 2049, 9),
        (256, 700, 20),
        (70, 1000, 3),
        (1, 5000, 768),
        (40, 3000, 768),
    ] {
        let cbv = randn(&mut rng, k * d);
        let mut q = randn(&mut rng, t * d);
        normalise_rows(&mut q, d);
        for cb in layouts(cbv.clone(), d) {
            for metric in [Metric::SquaredL2, Metric::InnerProduct] {
                let f = nearest(&cb, &q, d, metric).unwrap();
                let r = nearest_with(Kernel::Reference, &cb, &q, d, metric).unwrap();
                assert_eq!(f.indices.len(), t);
                assert_same_or_tie(&cb, &q, d, metric, &f.indices, &r.indices, 1);
                for (a, b) in f.scores.iter().zip(&r.scores) {
                    assert!(
                        (a - b).abs() <= 1e-4 * b.abs().max(1.0),
                        "{t}x{k}x{d} {metric:?}: {a} vs {b}"
                    );
                }
            }
        }
    }
}

#[test]
fn fused_top_k_matches_reference() {
    let mut rng = StdRng::seed_from_u64(11);
    for &(t, k_rows, d, k) in &[
        (1, 200, 33, 5),
        (7, 3000, 17, 21),
        (260, 1100, 8, 21),
        (2, 4096, 768, 128),
        (3, 128, 5, 128),
    ] {
        let values = randn(&mut rng, k_rows * d);
        let q = randn(&mut rng, t * d);
        for cb in layouts(values.clone(), d) {
            for metric in [Metric::SquaredL2, Metric::InnerProduct] {
                let f = top_k(&cb, &q, d, k, metric).unwrap();
                let r = top_k_with(Kernel::Reference, &cb, &q, d, k, metric).unwrap();
                assert_eq!(f.indices.len(), t * k);
                assert_same_or_tie(&cb, &q, d, metric, &f.indices, &r.indices, k);
                // Scores are sorted best first.
                for row in f.scores.chunks_exact(k) {
                    for w in row.windows(2) {
                        match metric {
                            Metric::SquaredL2 => assert!(w[0] <= w[1]),
                            Metric::InnerProduct => assert!(w[0] >= w[1]),
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn large_codebook_matches_reference() {
    // K = 49,152 (SmolLM2's vocabulary) at a small width keeps the reference fast.
    let (t, k, d) = (6, 49_152, 24);
    let mut rng = StdRng::seed_from_u64(3);
    let values = randn(&mut rng, k * d);
    let q = randn(&mut rng, t * d);
    for cb in layouts(values.clone(), d) {
        let f = top_k(&cb, &q, d, 21, Metric::SquaredL2).unwrap();
        let r = top_k_with(Kernel::Reference, &cb, &q, d, 21, Metric::SquaredL2).unwrap();
        assert_same_or_tie(&cb, &q, d, Metric::SquaredL2, &f.indices, &r.indices, 21);
    }
}

#[test]
fn ties_go_to_the_lowest_index() {
    // Rows 1, 3 and 4 are identical and nearest to the query; 4096 copies of
    // one row make every tile and chunk see the tie.
    let d = 5;
    let mut rows = vec![9.0f32; 6 * d];
    for r in [1, 3, 4] {
        rows[r * d..(r + 1) * d].copy_from_slice(&[1.0, 0.0, 0.0, 0.0, 0.0]);
    }
    let q = [1.0, 0.1, 0.0, 0.0, 0.0];
    for (cb, kernel) in layouts(rows, d)
        .into_iter()
        .flat_map(|cb| [Kernel::Reference, Kernel::Fused].map(|k| (cb.clone(), k)))
    {
        assert_eq!(
            nearest_with(kernel, &cb, &q, d, Metric::SquaredL2)
                .unwrap()
                .indices,
            vec![1]
        );
        let tk = top_k_with(kernel, &cb, &q, d, 3, Metric::SquaredL2).unwrap();
        assert_eq!(tk.indices, vec![1, 3, 4]);
    }
    let q = vec![0.1; 300 * 3];
    for same in layouts(vec![0.5; 4096 * 3], 3) {
        let n = nearest(&same, &q, 3, Metric::SquaredL2).unwrap();
        assert!(n.indices.iter().all(|&i| i == 0));
        let tk = top_k(&same, &q[..3], 3, 4, Metric::SquaredL2).unwrap();
        assert_eq!(tk.indices, vec![0, 1, 2, 3]);
    }
}

#[test]
fn results_do_not_depend_on_the_thread_count() {
    let mut rng = StdRng::seed_from_u64(5);
    let (t, k, d) = (300, 5000, 16);
    let values = randn(&mut rng, k * d);
    let q = randn(&mut rng, t * d);
    let small_values = randn(&mut rng, 700 * d);
    for (cb, small) in layouts(values, d).into_iter().zip(layouts(small_values, d)) {
        let run = |threads| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| {
                    (
                        nearest(&cb, &q, d, Metric::SquaredL2).unwrap(),
                        top_k(&cb, &q, d, 21, Metric::SquaredL2).unwrap(),
                    )
                })
        };
        let one = run(1);
        assert_eq!(run(2), one);
        assert_eq!(run(5), one);
        // A small codebook: the queries are split finer instead.
        let run_small = |threads| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| top_k(&small, &q, d, 3, Metric::SquaredL2).unwrap())
        };
        let one = run_small(1);
        assert_eq!(run_small(2), one);
        assert_eq!(run_small(7), one);
    }
}

#[test]
fn f16_codebook_equals_its_widened_f32_copy() {
    let mut rng = StdRng::seed_from_u64(9);
    let (t, k, d) = (20, 2500, 40);
    let h: Vec<f16> = randn(&mut rng, k * d)
        .into_iter()
        .map(f16::from_f32)
        .collect();
    let widened: Vec<f32> = h.iter().map(|v| v.to_f32()).collect();
    let cb16 = PreparedCodebook::new(Codebook::from_f16(h, d).unwrap()).unwrap();
    // Same (portable, row-major) kernel on both sides.
    let cb32 = PreparedCodebook::new_row_major(Codebook::from_f32(widened, d).unwrap()).unwrap();
    assert_eq!(cb16.sq_norms(), cb32.sq_norms());
    let q = randn(&mut rng, t * d);
    assert_eq!(
        top_k(&cb16, &q, d, 5, Metric::SquaredL2).unwrap(),
        top_k(&cb32, &q, d, 5, Metric::SquaredL2).unwrap()
    );
    assert_eq!(
        nearest(&cb16, &q, d, Metric::InnerProduct).unwrap(),
        nearest(&cb32, &q, d, Metric::InnerProduct).unwrap()
    );
}

#[test]
fn bad_input_gives_typed_errors() {
    assert!(matches!(
        Codebook::from_f32(vec![], 4),
        Err(QuantError::EmptyCodebook { .. })
    ));
    assert!(matches!(
        Codebook::from_f32(vec![1.0; 4], 0),
        Err(QuantError::EmptyCodebook { .. })
    ));
    assert!(matches!(
        Codebook::from_f32(vec![1.0; 7], 2),
        Err(QuantError::RaggedBuffer {
            what: "codebook",
            len: 7,
            dim: 2
        })
    ));
    match PreparedCodebook::from_f32(vec![0.0, 1.0, f32::NAN, 2.0], 2) {
        Err(QuantError::NonFinite {
            what: "codebook",
            row: 1,
            col: 0,
            value,
        }) => {
            assert!(value.is_nan())
        }
        other => panic!("expected NonFinite, got {other:?}"),
    }
    let cb = PreparedCodebook::from_f32(vec![0.0, 1.0, 1.0, 0.0], 2).unwrap();
    match nearest(&cb, &[0.0, 1.0, 0.0, f32::INFINITY], 2, Metric::SquaredL2) {
        Err(QuantError::NonFinite {
            what: "queries",
            row: 1,
            col: 1,
            value,
        }) => {
            assert!(value.is_infinite())
        }
        other => panic!("expected NonFinite, got {other:?}"),
    }
    assert_eq!(
        nearest(&cb, &[0.0, 1.0, 2.0], 3, Metric::SquaredL2).unwrap_err(),
        QuantError::DimensionMismatch {
            queries: 3,
            codebook: 2
        }
    );
    assert_eq!(
        nearest(&cb, &[0.0, 1.0, 2.0], 2, Metric::SquaredL2).unwrap_err(),
        QuantError::RaggedBuffer {
            what: "queries",
            len: 3,
            dim: 2
        }
    );
    for k in [0, 3, MAX_TOP_K + 1] {
        assert_eq!(
            top_k(&cb, &[0.0, 1.0], 2, k, Metric::SquaredL2).unwrap_err(),
            QuantError::InvalidK {
                k,
                rows: 2,
                limit: MAX_TOP_K
            }
        );
    }
    // Empty input is not an error: no queries, no results.
    let empty = nearest(&cb, &[], 2, Metric::SquaredL2).unwrap();
    assert!(empty.indices.is_empty() && empty.scores.is_empty());
    assert!(top_k(&cb, &[], 2, 2, Metric::SquaredL2)
        .unwrap()
        .indices
        .is_empty());
}

#[test]
fn huge_finite_values_do_not_break_the_fused_kernel() {
    // ‖c‖² overflows f32 (1e20² = 1e40 > f32::MAX), so GEMM-form scores are
    // inf − inf = NaN; the exact f64 kernel must answer instead. Closed form:
    // the query (1, 0) is nearest to row 1 (1, 1) at squared distance 1.
    for cb in layouts(vec![1e20, 1e20, 1.0, 1.0, -1e20, 0.0], 2) {
        for kernel in [Kernel::Reference, Kernel::Fused] {
            let n = nearest_with(kernel, &cb, &[1.0, 0.0], 2, Metric::SquaredL2).unwrap();
            assert_eq!(n.indices, vec![1], "{kernel:?}");
            assert_eq!(n.scores, vec![1.0], "{kernel:?}");
            let t = top_k_with(kernel, &cb, &[1.0, 0.0], 2, 3, Metric::SquaredL2).unwrap();
            // Exact distances: row 0 ≈ 2e40, row 2 ≈ 1e40.
            assert_eq!(t.indices, vec![1, 2, 0], "{kernel:?}");
        }
    }
}

/// Each packed path's (nearest, top-21) on `values`, for both metrics.
fn packed_results(values: &[f32], d: usize, q: &[f32]) -> Vec<(SearchPath, Vec<v2l_quant::TopK>)> {
    SearchPath::available()
        .into_iter()
        .filter(|p| *p != SearchPath::Portable)
        .map(|path| {
            let cb =
                PreparedCodebook::with_path(Codebook::from_f32(values.to_vec(), d).unwrap(), path)
                    .unwrap();
            let k = 21.min(cb.len());
            let runs = [Metric::SquaredL2, Metric::InnerProduct]
                .into_iter()
                .flat_map(|m| {
                    [
                        top_k(&cb, q, d, 1, m).unwrap(),
                        top_k(&cb, q, d, k, m).unwrap(),
                    ]
                })
                .collect();
            (path, runs)
        })
        .collect()
}

/// Asserts that every packed path returns exactly (indices and score bits)
/// what the first one (AVX2) returns: they compute the same f32 chain, and
/// the screened path rescored every candidate with it.
fn assert_packed_paths_identical(values: &[f32], d: usize, q: &[f32], what: &str) {
    let results = packed_results(values, d, q);
    let Some((first, want)) = results.first() else {
        eprintln!(
            "SKIP {what}: no packed path on this CPU ({})",
            cpu_features()
        );
        return;
    };
    for (path, got) in &results[1..] {
        for (g, w) in got.iter().zip(want) {
            assert_eq!(g.indices, w.indices, "{what}: {path} vs {first}");
            let (gb, wb): (Vec<u32>, Vec<u32>) = (
                g.scores.iter().map(|s| s.to_bits()).collect(),
                w.scores.iter().map(|s| s.to_bits()).collect(),
            );
            assert_eq!(gb, wb, "{what}: {path} vs {first} scores");
        }
    }
}

/// Checked against the AVX2 path (itself checked against the reference
/// above): same indices and bit-identical scores, over shapes with odd
/// widths, partial panels and one or two queries (the one-query path).
#[test]
fn packed_paths_agree_bit_for_bit() {
    let mut rng = StdRng::seed_from_u64(21);
    for &(t, k, d) in &[
        (1, 37, 7),
        (2, 1000, 33),
        (13, 1500, 17),
        (29, 2049, 64),
        (300, 3001, 9),
        (40, 3000, 768),
        (1, 5000, 768),
    ] {
        let values = randn(&mut rng, k * d);
        let mut q = randn(&mut rng, t * d);
        normalise_rows(&mut q, d);
        assert_packed_paths_identical(&values, d, &q, &format!("{t}x{k}x{d}"));
    }
}

/// Adversarial input for the bf16 screen, checked against the AVX2 path
/// (bit-identical) and the reference (same or exactly tied rows):
/// - near-ties the screen cannot see: 24 variants of each base row differ
///   from it only in the last 1–3 bits of every element, so their bf16
///   halves are identical and only the exact rescoring tells them apart;
/// - row norms spread over six orders of magnitude (10⁻³ … 10³), where the
///   bound is per row and inner-product rankings follow the norms;
/// - a query equal to a row (where the GEMM form's rounding, not the
///   screen, decides among its near-copies).
#[test]
fn screened_search_is_exact_on_near_ties_and_mixed_norms() {
    let mut rng = StdRng::seed_from_u64(99);
    // Near-ties.
    let (bases, variants, d) = (40, 24, 96);
    let base = randn(&mut rng, bases * d);
    let mut values = Vec::with_capacity(bases * variants * d);
    for b in base.chunks_exact(d) {
        for _ in 0..variants {
            values.extend(b.iter().map(|&v| {
                let bits = v.to_bits();
                let flip = rng.random_range(1u32..8);
                f32::from_bits(bits ^ flip)
            }));
        }
    }
    let mut q: Vec<f32> = base
        .iter()
        .map(|&v| v + 1e-6 * (rng.random::<f32>() - 0.5))
        .collect();
    q.extend_from_slice(&values[5 * d..6 * d]);
    assert_packed_paths_identical(&values, d, &q, "near-ties");
    for cb in layouts(values.clone(), d) {
        let f = nearest(&cb, &q, d, Metric::SquaredL2).unwrap();
        let r = nearest_with(Kernel::Reference, &cb, &q, d, Metric::SquaredL2).unwrap();
        assert_same_or_tie(&cb, &q, d, Metric::SquaredL2, &f.indices, &r.indices, 1);
        assert_eq!(r.indices[bases], 5, "the reference finds a row itself");
    }
    // Mixed norms.
    let (k, d) = (4000, 48);
    let mut values = randn(&mut rng, k * d);
    for row in values.chunks_exact_mut(d) {
        let scale = 10f32.powf(rng.random_range(-3.0f32..3.0));
        row.iter_mut().for_each(|v| *v *= scale);
    }
    let q = randn(&mut rng, 50 * d);
    assert_packed_paths_identical(&values, d, &q, "mixed norms");
    for cb in layouts(values.clone(), d) {
        for metric in [Metric::SquaredL2, Metric::InnerProduct] {
            let f = top_k(&cb, &q, d, 21, metric).unwrap();
            let r = top_k_with(Kernel::Reference, &cb, &q, d, 21, metric).unwrap();
            assert_same_or_tie(&cb, &q, d, metric, &f.indices, &r.indices, 21);
        }
    }
}

#[test]
fn search_paths_are_named_and_checked() {
    for path in SearchPath::ALL {
        assert_eq!(SearchPath::from_name(path.name()).unwrap(), path);
    }
    assert_eq!(
        SearchPath::from_name("avx9").unwrap_err(),
        QuantError::UnknownPath {
            name: "avx9".into()
        }
    );
    assert!(SearchPath::Portable.is_available());
    assert!(SearchPath::fastest().is_available());
    // The fastest path is the last available one in `ALL`'s order.
    assert_eq!(SearchPath::available().last(), Some(&SearchPath::fastest()));
    for path in SearchPath::ALL.into_iter().filter(|p| !p.is_available()) {
        let err = PreparedCodebook::with_path(Codebook::from_f32(vec![1.0], 1).unwrap(), path)
            .unwrap_err();
        assert!(matches!(err, QuantError::PathUnavailable { .. }), "{err}");
    }
    // f16 rows are searched row-major whatever the path asked for.
    let h = Codebook::from_f16(vec![f16::from_f32(1.0); 4], 2).unwrap();
    let cb = PreparedCodebook::with_path(h, SearchPath::fastest()).unwrap();
    assert_eq!(
        (cb.path(), cb.layout()),
        (SearchPath::Portable, Layout::RowMajorF16)
    );
}

/// The screen's worst case, checked against the AVX2 path (bit-identical):
/// every value positive, every codebook value losing almost a whole bf16
/// unit to truncation (low 16 bits all ones) and every query value almost
/// half a unit to rounding (low 16 bits 0x7fff), so the screen's errors all
/// point the same way and reach the bound's main term `η Σ|z_i c_i|`; rows
/// and queries near one common direction, so many rows compete.
#[test]
fn screened_search_is_exact_at_its_worst_case_rounding() {
    let mut rng = StdRng::seed_from_u64(123);
    let (k, d, t) = (3000, 64, 40);
    let base: Vec<f32> = (0..d).map(|_| 0.5 + rng.random::<f32>()).collect();
    let with_low = |v: f32, low: u32| f32::from_bits((v.to_bits() & !0xffff) | low);
    let mut values = Vec::with_capacity(k * d);
    for _ in 0..k {
        values.extend(
            base.iter()
                .map(|&b| with_low(b * (1.0 + 0.02 * rng.random::<f32>()), 0xffff)),
        );
    }
    let mut q = Vec::with_capacity(t * d);
    for _ in 0..t {
        q.extend(
            base.iter()
                .map(|&b| with_low(b * (1.0 + 0.02 * rng.random::<f32>()), 0x7fff)),
        );
    }
    assert_packed_paths_identical(&values, d, &q, "worst-case rounding");
    for cb in layouts(values.clone(), d) {
        let f = top_k(&cb, &q, d, 21, Metric::SquaredL2).unwrap();
        let r = top_k_with(Kernel::Reference, &cb, &q, d, 21, Metric::SquaredL2).unwrap();
        assert_same_or_tie(&cb, &q, d, Metric::SquaredL2, &f.indices, &r.indices, 21);
    }
}
