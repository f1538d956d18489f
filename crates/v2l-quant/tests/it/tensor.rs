//! The burn-generic entry point and the straight-through op.
//!
//! Expected values: the reference kernel (host, exact f64) for searches, and
//! closed-form gradients for the straight-through op.

use burn::backend::{Autodiff, Flex, NdArray};
use burn::tensor::{backend::Backend, Int, Tensor, TensorData};
use rand::{rngs::StdRng, Rng, SeedableRng};
use v2l_quant::tensor::{is_host_backend, straight_through, Strategy, TensorCodebook};
use v2l_quant::{exact_scores, top_k_with, Kernel, Metric, PreparedCodebook, QuantError};

fn randv(seed: u64, n: usize) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n).map(|_| rng.random::<f32>() * 2.0 - 1.0).collect()
}

fn tensor<B: Backend>(v: Vec<f32>, shape: [usize; 2], dev: &B::Device) -> Tensor<B, 2> {
    Tensor::from_data(TensorData::new(v, shape), dev)
}

fn ids<B: Backend, const D: usize>(t: Tensor<B, D, Int>) -> Vec<i64> {
    t.into_data().convert::<i64>().into_vec::<i64>().unwrap()
}

/// Checks both strategies of one backend against the reference kernel.
fn search_matches_reference<B: Backend>() {
    let dev = B::Device::default();
    let (t, k, d) = (37, 1500, 24);
    let rows = randv(1, k * d);
    let q = randv(2, t * d);
    let reference = PreparedCodebook::from_f32(rows.clone(), d).unwrap();
    let want = top_k_with(Kernel::Reference, &reference, &q, d, 5, Metric::SquaredL2).unwrap();
    for strategy in [Strategy::HostKernel, Strategy::TensorOps, Strategy::Auto] {
        let cb = TensorCodebook::new(tensor::<B>(rows.clone(), [k, d], &dev), strategy).unwrap();
        let near = ids(cb.nearest(tensor::<B>(q.clone(), [t, d], &dev)).unwrap());
        let (top, dist) = cb.top_k(tensor::<B>(q.clone(), [t, d], &dev), 5).unwrap();
        let top = ids(top);
        let dist = dist.into_data().convert::<f32>().into_vec::<f32>().unwrap();
        for qi in 0..t {
            let exact =
                exact_scores(&reference, &q[qi * d..(qi + 1) * d], Metric::SquaredL2).unwrap();
            let best = f64::from(want.scores[qi * 5]);
            assert!(
                (exact[near[qi] as usize] - best).abs() < 1e-5,
                "{strategy:?} nearest of {qi}"
            );
            for r in 0..5 {
                let w = f64::from(want.scores[qi * 5 + r]);
                assert!(
                    (exact[top[qi * 5 + r] as usize] - w).abs() < 1e-5,
                    "{strategy:?} top {qi}/{r}"
                );
                assert!((f64::from(dist[qi * 5 + r]) - w).abs() < 1e-4 * w.max(1.0));
            }
        }
    }
}

#[test]
fn ndarray_search_matches_reference() {
    search_matches_reference::<NdArray>();
}

#[test]
fn flex_search_matches_reference() {
    search_matches_reference::<Flex>();
}

#[test]
fn cpu_backends_are_detected_through_autodiff() {
    assert!(is_host_backend::<NdArray>(&Default::default()));
    assert!(is_host_backend::<Flex>(&Default::default()));
    assert!(is_host_backend::<Autodiff<NdArray>>(&Default::default()));
    let cb = TensorCodebook::new(
        tensor::<Autodiff<Flex>>(vec![0.0; 8], [4, 2], &Default::default()),
        Strategy::Auto,
    )
    .unwrap();
    assert!(cb.uses_host_kernel());
}

/// Straight-through: the output's value is c[idx], d(output)/dz = I, and the
/// codes' gradient reaches the codebook rows as a scatter-add by index.
#[test]
fn straight_through_gradients_follow_the_closed_form() {
    type B = Autodiff<NdArray>;
    let dev = Default::default();
    // Codebook rows (0,0), (10,0), (0,10); queries near rows 1, 1, 2.
    let rows_v = vec![0.0, 0.0, 10.0, 0.0, 0.0, 10.0];
    let z_v = vec![9.0, 1.0, 8.0, -1.0, 1.0, 9.0];
    let rows = tensor::<B>(rows_v, [3, 2], &dev).require_grad();
    let z = tensor::<B>(z_v.clone(), [3, 2], &dev).require_grad();
    let cb = TensorCodebook::new(rows.clone(), Strategy::Auto).unwrap();
    let st = cb.quantize(z.clone()).unwrap();
    assert_eq!(ids(st.indices.clone()), vec![1, 1, 2]);
    let out = st.output.clone().into_data().into_vec::<f32>().unwrap();
    assert_eq!(out, vec![10.0, 0.0, 10.0, 0.0, 0.0, 10.0]);

    // loss = Σ w ⊙ output + Σ u ⊙ codes, w and u fixed weights.
    let w_v = vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
    let u_v = vec![0.5, -1.0, 2.0, 1.0, -3.0, 0.25];
    let w = tensor::<B>(w_v.clone(), [3, 2], &dev);
    let u = tensor::<B>(u_v.clone(), [3, 2], &dev);
    let loss = (st.output * w).sum() + (st.codes * u).sum();
    let grads = loss.backward();
    // dz = w exactly (identity through the straight-through estimator).
    let gz = z
        .grad(&grads)
        .unwrap()
        .into_data()
        .into_vec::<f32>()
        .unwrap();
    assert_eq!(gz, w_v);
    // d rows: row 0 unused → 0; row 1 gets u[0] + u[1]; row 2 gets u[2].
    let gr = rows
        .grad(&grads)
        .unwrap()
        .into_data()
        .into_vec::<f32>()
        .unwrap();
    assert_eq!(gr, vec![0.0, 0.0, 2.5, 0.0, -3.0, 0.25]);
}

#[test]
fn qloss_of_the_official_form_has_the_expected_gradients() {
    // qloss = mean((sg(c) − z)²) + 0.33·mean((c − sg(z))²) over T×d values.
    type B = Autodiff<NdArray>;
    let dev = Default::default();
    let rows = tensor::<B>(vec![1.0, 0.0, 0.0, 1.0], [2, 2], &dev).require_grad();
    let z = tensor::<B>(vec![0.8, 0.1, 0.2, 0.6], [2, 2], &dev).require_grad();
    let cb = TensorCodebook::new(rows.clone(), Strategy::HostKernel).unwrap();
    let st = cb.quantize(z.clone()).unwrap();
    let commit = (st.codes.clone().detach() - z.clone())
        .powi_scalar(2)
        .mean();
    let codebook = (st.codes - z.clone().detach()).powi_scalar(2).mean();
    let loss = commit + codebook.mul_scalar(0.33);
    let grads = loss.backward();
    // n = 4 values. dz = 2(z − c)/n; d c[idx] = 0.33·2(c − z)/n.
    let z_v = [0.8f32, 0.1, 0.2, 0.6];
    let c_v = [1.0f32, 0.0, 0.0, 1.0];
    let want_z: Vec<f32> = z_v
        .iter()
        .zip(&c_v)
        .map(|(z, c)| 2.0 * (z - c) / 4.0)
        .collect();
    let want_c: Vec<f32> = z_v
        .iter()
        .zip(&c_v)
        .map(|(z, c)| 0.33 * 2.0 * (c - z) / 4.0)
        .collect();
    let gz = z
        .grad(&grads)
        .unwrap()
        .into_data()
        .into_vec::<f32>()
        .unwrap();
    let gc = rows
        .grad(&grads)
        .unwrap()
        .into_data()
        .into_vec::<f32>()
        .unwrap();
    for (a, b) in gz.iter().zip(&want_z).chain(gc.iter().zip(&want_c)) {
        assert!((a - b).abs() < 1e-6, "{a} vs {b}");
    }
}

#[test]
fn tensor_bad_input_gives_typed_errors() {
    type B = NdArray;
    let dev = Default::default();
    let rows = tensor::<B>(vec![0.0, 1.0, 1.0, 0.0], [2, 2], &dev);
    for strategy in [Strategy::HostKernel, Strategy::TensorOps] {
        let cb = TensorCodebook::new(rows.clone(), strategy).unwrap();
        assert_eq!(
            cb.nearest(tensor::<B>(vec![0.0; 3], [1, 3], &dev))
                .unwrap_err(),
            QuantError::DimensionMismatch {
                queries: 3,
                codebook: 2
            }
        );
        assert!(matches!(
            cb.nearest(tensor::<B>(vec![0.0, f32::NAN], [1, 2], &dev)),
            Err(QuantError::NonFinite {
                what: "queries",
                row: 0,
                col: 1,
                ..
            })
        ));
        assert!(matches!(
            cb.top_k(tensor::<B>(vec![0.0; 2], [1, 2], &dev), 3),
            Err(QuantError::InvalidK { .. })
        ));
        let empty = cb.nearest(Tensor::<B, 2>::empty([0, 2], &dev)).unwrap();
        assert_eq!(empty.dims(), [0]);
    }
    assert!(matches!(
        TensorCodebook::new(
            tensor::<B>(vec![0.0, f32::INFINITY], [1, 2], &dev),
            Strategy::TensorOps
        ),
        Err(QuantError::NonFinite {
            what: "codebook",
            ..
        })
    ));
    let bad: Tensor<B, 1, Int> = Tensor::from_data(TensorData::new(vec![0i64, 2], [2]), &dev);
    assert_eq!(
        straight_through(tensor::<B>(vec![0.0; 4], [2, 2], &dev), rows.clone(), bad).unwrap_err(),
        QuantError::IndexOutOfRange {
            index: 2,
            position: 1,
            rows: 2
        }
    );
}

/// `Strategy::DeviceKernel` on a backend the CubeCL kernel does not run on
/// (here NdArray) is an error naming the backend, not a silent fallback.
#[test]
fn device_kernel_on_a_cpu_backend_is_an_error() {
    let dev = Default::default();
    let cb = TensorCodebook::<NdArray>::new(
        tensor::<NdArray>(randv(3, 40), [10, 4], &dev),
        Strategy::DeviceKernel,
    )
    .unwrap();
    assert!(!cb.uses_host_kernel());
    let z = tensor::<NdArray>(randv(4, 8), [2, 4], &dev);
    for e in [
        cb.nearest(z.clone()).unwrap_err(),
        cb.top_k(z, 2).unwrap_err(),
    ] {
        assert!(
            matches!(&e, QuantError::Backend(m) if m.contains("ndarray")),
            "{e}"
        );
    }
}
