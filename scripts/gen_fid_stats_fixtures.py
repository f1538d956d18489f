#!/usr/bin/env python3
"""Reference values for v2l-metrics' streaming FID statistics.

Run by hand from the workspace root (never in CI):

    /tmp/venv-fix/bin/python scripts/gen_fid_stats_fixtures.py

numpy 2.4.6. Writes `crates/v2l-metrics/tests/fixtures/fid_stats/`:

* `features.npy`  float32 [301, 16]: seeded features with a large common
  offset (1e3) and correlated columns, so a naive one-pass E[xx]-E[x]E[x]
  covariance in f64 would lose digits while a centred one does not.
* `mu.npy`        float64 [16]:  `np.mean(features.astype(f64), axis=0)`
* `sigma.npy`     float64 [16,16]: `np.cov(features.astype(f64), rowvar=False)`
* `stats.npz`     pytorch-fid's stats-file layout (`np.savez(mu=..., sigma=...)`)
  of the same values.
"""
import os

import numpy as np

OUT = "crates/v2l-metrics/tests/fixtures/fid_stats"
os.makedirs(OUT, exist_ok=True)
rng = np.random.default_rng(20261126)
base = rng.normal(size=(301, 4))
mix = rng.normal(size=(4, 16))
features = (1e3 + base @ mix + 0.1 * rng.normal(size=(301, 16))).astype(np.float32)
x = features.astype(np.float64)
mu = x.mean(axis=0)
sigma = np.cov(x, rowvar=False)
np.save(os.path.join(OUT, "features.npy"), features)
np.save(os.path.join(OUT, "mu.npy"), mu)
np.save(os.path.join(OUT, "sigma.npy"), sigma)
np.savez(os.path.join(OUT, "stats.npz"), mu=mu, sigma=sigma)
print("wrote", OUT, features.shape, float(np.abs(sigma).max()))
