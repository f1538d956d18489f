#!/usr/bin/env python3
"""Generates the fixtures of `crates/v2l-metrics/tests/it/` with the reference tools.

Run by hand (never in CI), from the workspace root:

    python3 -m venv /tmp/venv-fix
    /tmp/venv-fix/bin/pip install numpy torch piq==0.8.0 scipy scikit-image pytorch-fid
    /tmp/venv-fix/bin/python scripts/gen_metric_fixtures.py

Images: crops of scikit-image's CC0 photos (astronaut, coffee, chelsea) as uint8 RGB, each paired
with a mildly distorted copy (Gaussian noise, a box blur, coarse quantisation), saved as `.npy`
(HWC uint8). Reference values: `skimage.metrics.peak_signal_noise_ratio` (RGB, data_range 1 on
[0,1] floats), the BT.601 Y formula of METRICS.md for Y-PSNR, and `piq.ssim` with its defaults
(data_range 1). Fréchet distance: pytorch-fid's `calculate_frechet_distance` on f64 statistics
of n = 3000 > d = 64 seeded Gaussian features, stored as `.npy` f64.
"""

import json
import os

import imageio.v3 as imageio
import numpy as np
import piq
import skimage.data
import torch
from pytorch_fid.fid_score import calculate_frechet_distance
from skimage.metrics import peak_signal_noise_ratio

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "crates", "v2l-metrics", "tests", "fixtures")


def distort(img, kind, rng):
    x = img.astype(np.float64)
    if kind == "noise":
        x = x + rng.normal(0, 12, x.shape)
    elif kind == "blur":
        k = 3
        p = np.pad(x, ((1, 1), (1, 1), (0, 0)), mode="edge")
        x = sum(p[i:i + img.shape[0], j:j + img.shape[1]] for i in range(k) for j in range(k)) / 9
    elif kind == "quant":
        x = np.floor(x / 32) * 32 + 16
    return np.clip(np.round(x), 0, 255).astype(np.uint8)


def y_psnr(a, b):
    def y(v):
        v = v.astype(np.float64) / 255
        return (16 + 65.481 * v[..., 0] + 128.553 * v[..., 1] + 24.966 * v[..., 2]) / 255
    mse = np.mean((y(a) - y(b)) ** 2)
    return 10 * np.log10(1 / mse)


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(0)
    cases = []
    crops = {
        # name: (image, rows, cols): sizes cover piq's no-downsampling and
        # downsampling (min side 384 → f = round(1.5) = 2) branches, and an odd size.
        "astronaut": (skimage.data.astronaut(), slice(0, 384), slice(64, 464)),
        "coffee": (skimage.data.coffee(), slice(100, 196), slice(200, 333)),
        "chelsea": (skimage.data.chelsea(), slice(50, 114), slice(100, 164)),
    }
    for (name, (img, r, c)), kind in zip(crops.items(), ["noise", "blur", "quant"]):
        ref = np.ascontiguousarray(img[r, c, :3])
        dist = distort(ref, kind, rng)
        np.save(os.path.join(OUT, f"{name}_ref.npy"), ref)
        np.save(os.path.join(OUT, f"{name}_{kind}.npy"), dist)
        if name == "chelsea":
            # Lossless PNG copies of the smallest pair, for the CLI test.
            for sub, arr in (("ref", ref), ("distorted", dist)):
                os.makedirs(os.path.join(OUT, sub), exist_ok=True)
                imageio.imwrite(os.path.join(OUT, sub, "chelsea.png"), arr)
        a = ref.astype(np.float64) / 255
        b = dist.astype(np.float64) / 255
        ta = torch.tensor(a, dtype=torch.float64).permute(2, 0, 1)[None]
        tb = torch.tensor(b, dtype=torch.float64).permute(2, 0, 1)[None]
        cases.append({
            "ref": f"{name}_ref.npy",
            "distorted": f"{name}_{kind}.npy",
            "shape_hwc": list(ref.shape),
            "psnr_rgb": float(peak_signal_noise_ratio(a, b, data_range=1.0)),
            "psnr_y": float(y_psnr(ref, dist)),
            "ssim_piq": float(piq.ssim(ta, tb, data_range=1.0)),
        })
    # Fréchet distance on committed statistics.
    n, d = 3000, 64
    f1 = rng.normal(0, 1, (n, d))
    mix = rng.normal(0, 0.3, (d, d))
    f2 = rng.normal(0.1, 1, (n, d)) @ (np.eye(d) + mix)
    stats = {}
    for i, f in ((1, f1), (2, f2)):
        mu, sigma = f.mean(0), np.cov(f, rowvar=False)
        np.save(os.path.join(OUT, f"fid_mu{i}.npy"), mu)
        np.save(os.path.join(OUT, f"fid_sigma{i}.npy"), sigma)
        stats[i] = (mu, sigma)
    fd = float(calculate_frechet_distance(stats[1][0], stats[1][1], stats[2][0], stats[2][1]))
    fd_self = float(calculate_frechet_distance(stats[1][0], stats[1][1], stats[1][0], stats[1][1]))
    expected = {
        "tools": {"piq": piq.__version__, "torch": torch.__version__, "numpy": np.__version__},
        "images": cases,
        "frechet": {"n": n, "d": d, "distance_1_2": fd, "distance_1_1": fd_self},
    }
    with open(os.path.join(OUT, "expected.json"), "w") as fh:
        json.dump(expected, fh, indent=1)
    print(json.dumps(expected, indent=1))


if __name__ == "__main__":
    main()
