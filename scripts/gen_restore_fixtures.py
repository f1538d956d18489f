#!/usr/bin/env python3
"""Reference outputs of the restoration corruptions for v2l-prompt's tests.

Run by hand (never in CI) with the project's fixture venv (opencv-python,
numpy, safetensors):

    /tmp/venv-fix/bin/python scripts/gen_restore_fixtures.py

Writes ``crates/v2l-prompt/tests/fixtures/corruptions.safetensors`` (f32):

* ``input``: a [3, 20, 20] CHW image, uniform in [-1, 1] (seed 0), the form
  the tokenizer input has after ``/127.5 - 1``.
* ``blur_K`` for K in 5, 7, 9, 11: ``cv2.GaussianBlur(hwc, (K, K), 0)`` of
  that image (float32, default border BORDER_REFLECT_101), back to CHW. This
  is what albumentations 1.x ``GaussianBlur(blur_limit=(5, 11), p=1)`` calls
  with its default ``sigma_limit=0`` (the reference's deblur corruption).
  NB OpenCV uses fixed kernels for ksize <= 9 with sigma 0 (9:
  [4, 13, 30, 51, 60, 51, 30, 13, 4] / 256 in 4.5.5, 4.10 and 5.0), and a
  sampled Gaussian with sigma = 0.3*((k-1)/2 - 1) + 0.8 above.
* ``rot90``: ``np.rot90`` of the HWC image (90 degrees counter-clockwise),
  back to CHW (the rotation corruption).
"""
import os

import cv2
import numpy as np
from safetensors.numpy import save_file

OUT = os.path.join(os.path.dirname(__file__), "..", "crates", "v2l-prompt", "tests", "fixtures",
                   "corruptions.safetensors")


def main():
    rng = np.random.default_rng(0)
    chw = rng.uniform(-1, 1, size=(3, 20, 20)).astype(np.float32)
    hwc = np.ascontiguousarray(chw.transpose(1, 2, 0))
    out = {"input": chw}
    for k in (5, 7, 9, 11):
        b = cv2.GaussianBlur(hwc, (k, k), 0)
        out[f"blur_{k}"] = np.ascontiguousarray(b.transpose(2, 0, 1)).astype(np.float32)
    out["rot90"] = np.ascontiguousarray(np.rot90(hwc).transpose(2, 0, 1)).astype(np.float32)
    save_file(out, OUT)
    print(f"cv2 {cv2.__version__}, numpy {np.__version__} -> {OUT}")


if __name__ == "__main__":
    main()
