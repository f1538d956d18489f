//! Streaming FID statistics against numpy (`scripts/gen_fid_stats_fixtures.py`).

use std::path::PathBuf;

use v2l_metrics::fid_stats::{fid, load_stats, FeatureStats, StoredStats};
use v2l_metrics::MetricsError;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/fid_stats")
        .join(name)
}

fn npy_f64(name: &str) -> Vec<f64> {
    v2l_assets::readers::npy::read(fixture(name))
        .unwrap()
        .to_f64()
        .unwrap()
}

fn rel(a: &[f64], b: &[f64]) -> f64 {
    let d = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max);
    let s = b.iter().map(|y| y.abs()).fold(0.0, f64::max);
    d / s
}

#[test]
fn streaming_mean_and_covariance_match_numpy() {
    let arr = v2l_assets::readers::npy::read(fixture("features.npy")).unwrap();
    let features = arr.to_f32().unwrap();
    let d = 16;
    let mu = npy_f64("mu.npy");
    let sigma = npy_f64("sigma.npy");
    // Uneven batches, and a merge of two halves, give the same statistics.
    let mut s = FeatureStats::new(d);
    for chunk in features.chunks(d * 37) {
        s.update(chunk).unwrap();
    }
    assert_eq!(s.n(), 301);
    assert!(rel(s.mean(), &mu) < 1e-12, "mean {:e}", rel(s.mean(), &mu));
    let cov = s.covariance().unwrap();
    assert!(rel(&cov, &sigma) < 1e-9, "cov {:e}", rel(&cov, &sigma));
    let (a, b) = features.split_at(d * 150);
    let mut s1 = FeatureStats::new(d);
    s1.update(a).unwrap();
    let mut s2 = FeatureStats::new(d);
    s2.update(b).unwrap();
    s1.merge(&s2).unwrap();
    assert!(rel(&s1.covariance().unwrap(), &sigma) < 1e-9);

    // Saved and reloaded: identical; pytorch-fid's .npz reads the same.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stats.safetensors");
    s.save(&path, &serde_json::json!({"resolution": 299}))
        .unwrap();
    let back = load_stats(&path).unwrap();
    assert_eq!(back.mu, s.mean());
    assert_eq!(back.sigma, cov);
    assert_eq!(back.n, Some(301));
    assert_eq!(back.provenance["resolution"], 299);
    let npz = load_stats(fixture("stats.npz")).unwrap();
    assert_eq!(npz.mu, mu);
    assert_eq!(npz.sigma, sigma);
    // FID of a set with itself is 0; with a shifted copy it is ‖shift‖².
    let live = StoredStats::from_stats(&s, serde_json::Value::Null).unwrap();
    assert!(fid(&live, &npz).unwrap().abs() < 1e-6);
    let shifted = StoredStats {
        mu: mu.iter().map(|v| v + 0.5).collect(),
        ..npz.clone()
    };
    let f = fid(&npz, &shifted).unwrap();
    assert!((f - 0.25 * d as f64).abs() < 1e-6, "{f}");
}

#[test]
fn too_few_rows_and_bad_rows_are_errors() {
    let mut s = FeatureStats::new(4);
    assert!(matches!(s.covariance(), Err(MetricsError::Undefined(_))));
    s.update(&[1.0, 2.0, 3.0, 4.0]).unwrap();
    assert!(matches!(s.covariance(), Err(MetricsError::Undefined(_))));
    assert!(matches!(
        s.update(&[1.0, 2.0, 3.0]),
        Err(MetricsError::BadLength { .. })
    ));
    assert!(matches!(
        s.update(&[1.0, f32::NAN, 3.0, 4.0]),
        Err(MetricsError::NonFinite { index: 1, .. })
    ));
    assert!(s.merge(&FeatureStats::new(5)).is_err());
    let dir = tempfile::tempdir().unwrap();
    assert!(s
        .save(dir.path().join("x.safetensors"), &serde_json::Value::Null)
        .is_err());
}
