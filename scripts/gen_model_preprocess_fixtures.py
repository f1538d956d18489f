#!/usr/bin/env python3
"""Generates the fixtures of `crates/v2l-model/tests/it/preprocess.rs` with the reference tools.

Run by hand (never in CI), from the workspace root:

    python3 -m venv /tmp/venv-fix
    /tmp/venv-fix/bin/pip install opencv-python-headless==5.0.0.93 albumentations==2.0.8 \
        numpy==2.4.6 pillow==13.0.0 scikit-image==0.26.0
    /tmp/venv-fix/bin/python scripts/gen_model_preprocess_fixtures.py

(The fixtures in the repository were written with exactly these versions on x86-64. The
same outputs were also obtained with opencv-python-headless 4.10.0.84 and, for the resize
alone, 4.5.5.64.)

Reference: the V2L tokenizer's evaluation dataset (`eval_reconstruction.py` of
zh460045050/V2L-Tokenizer): `albumentations.SmallestMaxSize(max_size=N)` (cv2.resize,
INTER_LINEAR, on the uint8 HxWx3 array), `albumentations.CenterCrop(N, N)`, then
`(image / 127.5 - 1.0).astype(np.float32)` transposed to CHW.

Writes into `crates/v2l-model/tests/fixtures/preprocess/` (about 200 KB):

- `inputs/*.png`: RGB inputs. Crops of scikit-image's CC0 `astronaut` and `chelsea` photos
  (96x120, 75x101 and its 101x75 transpose) and seeded uniform noise of awkward shapes
  (13x29, 17x1, 1x23, 16x16).
- `resize/*.png`: `cv2.resize(img, (W, H), interpolation=cv2.INTER_LINEAR)` for cases
  covering exact 2x downscale in both axes (OpenCV's INTER_AREA path), 2x in one axis only,
  exact 3x, non-integer down- and upscales, exact 2x upscale, 1-pixel-wide and 1-pixel-tall
  images, and an unchanged size (a copy).
- `pipeline/*.png`: `Compose([SmallestMaxSize(N), CenterCrop(N, N)])` outputs, uint8 HWC,
  with even and odd crop margins in either axis, a 2x-area resize, an upscale, a skipped
  resize (shorter side already N) and an input already N x N (returned unchanged).
- `pipeline/*_f32.bin`: the full float32 output, [3, N, N], little-endian.
- `manifest.json`: every case (input, size, output, OpenCV path taken, resized shape and
  crop offset), `SmallestMaxSize` output shapes for a table of (h, w, N) including
  round-half-to-even ties, the tool versions, and facts this script checked (same-size
  copy, pass-through, CenterCrop raising on a too-small image).
"""

import json
import os
import sys
from importlib import metadata

import albumentations as A
import cv2
import numpy as np
import skimage.data
from PIL import Image

OUT = os.path.join("crates", "v2l-model", "tests", "fixtures", "preprocess")


def save_png(rel, arr):
    path = os.path.join(OUT, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    assert arr.dtype == np.uint8 and arr.ndim == 3 and arr.shape[2] == 3
    Image.fromarray(np.ascontiguousarray(arr), mode="RGB").save(path, optimize=True)
    back = np.asarray(Image.open(path).convert("RGB"))
    assert np.array_equal(back, arr), rel
    return rel


def pipeline(n):
    return A.Compose([A.SmallestMaxSize(max_size=n), A.CenterCrop(height=n, width=n)])


def main():
    if not os.path.isdir(os.path.join("crates", "v2l-model")):
        sys.exit("run from the workspace root")
    rng = np.random.default_rng(20240611)

    astronaut = skimage.data.astronaut()[20:116, 170:290]  # 96x120, face
    chelsea = skimage.data.chelsea()[60:135, 150:251]  # 75x101, cat's face
    inputs = {
        "astronaut_96x120": astronaut,
        "chelsea_75x101": chelsea,
        "chelsea_101x75": np.ascontiguousarray(chelsea.transpose(1, 0, 2)),
        "noise_13x29": rng.integers(0, 256, (13, 29, 3), dtype=np.uint8),
        "noise_17x1": rng.integers(0, 256, (17, 1, 3), dtype=np.uint8),
        "noise_1x23": rng.integers(0, 256, (1, 23, 3), dtype=np.uint8),
        "noise_16x16": rng.integers(0, 256, (16, 16, 3), dtype=np.uint8),
    }
    paths = {k: save_png(f"inputs/{k}.png", v) for k, v in inputs.items()}

    # (input, out height, out width)
    resize_cases = [
        ("astronaut_96x120", 48, 60),  # exact 2x down in both axes: INTER_AREA path
        ("astronaut_96x120", 48, 61),  # 2x in y only: linear
        ("astronaut_96x120", 32, 40),  # exact 3x
        ("astronaut_96x120", 37, 53),  # non-integer
        ("chelsea_75x101", 38, 51),  # close to 2x, not exact
        ("chelsea_75x101", 75, 101),  # same size: a copy
        ("chelsea_75x101", 100, 135),  # non-integer upscale
        ("noise_13x29", 40, 71),  # upscale
        ("noise_13x29", 26, 58),  # exact 2x upscale (no special path)
        ("noise_13x29", 5, 9),  # strong downscale
        ("noise_17x1", 40, 3),  # 1-pixel-wide source
        ("noise_17x1", 5, 1),
        ("noise_1x23", 1, 9),  # 1-pixel-tall source
        ("noise_1x23", 4, 50),
    ]
    resize = []
    for name, h, w in resize_cases:
        img = inputs[name]
        out = cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR)
        assert out.shape == (h, w, 3)
        sh, sw = img.shape[:2]
        if (sh, sw) == (h, w):
            kind = "copy"
            assert np.array_equal(out, img)
        elif (sh, sw) == (2 * h, 2 * w):
            kind = "area"
            i = img.astype(np.int32)
            box = (i[0::2, 0::2] + i[0::2, 1::2] + i[1::2, 0::2] + i[1::2, 1::2] + 2) >> 2
            assert np.array_equal(out, box.astype(np.uint8))
        else:
            kind = "linear"
        case = f"{name}_to_{h}x{w}"
        resize.append({
            "name": case, "input": paths[name], "height": h, "width": w, "path": kind,
            "expected": save_png(f"resize/{case}.png", out),
        })

    # (input, N, also write the float32 output)
    pipe_cases = [
        ("astronaut_96x120", 48, False),  # 2x area resize to 48x60, margin 12
        ("astronaut_96x120", 37, False),  # non-integer downscale
        ("chelsea_75x101", 48, False),  # 48x65: odd horizontal margin
        ("chelsea_101x75", 48, False),  # 65x48: odd vertical margin
        ("chelsea_75x101", 75, False),  # shorter side already N: crop only
        ("chelsea_75x101", 24, True),  # float32 output
        ("noise_13x29", 32, False),  # upscale to 32x71, odd margin
        ("noise_17x1", 4, False),  # 1-pixel-wide: 68x4
        ("noise_16x16", 16, True),  # already N x N: unchanged
    ]
    pipe = []
    for name, n, with_f32 in pipe_cases:
        img = inputs[name]
        res = pipeline(n)(image=img)["image"]
        assert res.shape == (n, n, 3) and res.dtype == np.uint8
        resized = A.SmallestMaxSize(max_size=n)(image=img)["image"]
        rh, rw = resized.shape[:2]
        y0, x0 = (rh - n) // 2, (rw - n) // 2
        assert np.array_equal(res, resized[y0:y0 + n, x0:x0 + n])
        if (rh, rw) != img.shape[:2]:
            assert np.array_equal(resized, cv2.resize(img, (rw, rh), interpolation=cv2.INTER_LINEAR))
        if img.shape[:2] == (n, n):
            assert np.array_equal(res, img)
        case = f"{name}_n{n}"
        entry = {
            "name": case, "input": paths[name], "size": n, "resized": [rh, rw],
            "crop_offset": [y0, x0], "expected": save_png(f"pipeline/{case}.png", res),
        }
        if with_f32:
            f = (res / 127.5 - 1.0).astype(np.float32).transpose(2, 0, 1)
            rel = f"pipeline/{case}_f32.bin"
            with open(os.path.join(OUT, rel), "wb") as fh:
                fh.write(np.ascontiguousarray(f).astype("<f4").tobytes())
            entry["expected_f32"] = rel
            entry["f32_shape"] = list(f.shape)
        pipe.append(entry)

    sms = []
    for h, w, n in [(375, 500, 256), (500, 375, 256), (333, 500, 256), (480, 640, 128),
                    (2, 3, 3), (2, 5, 3), (4, 6, 3), (6, 4, 3), (4, 10, 6), (1, 7, 3), (7, 1, 3),
                    (49, 100, 1), (100, 49, 1), (300, 451, 256), (256, 300, 256), (10, 10, 10),
                    (3, 1000, 2), (97, 130, 64), (1, 1, 5)]:
        out = A.SmallestMaxSize(max_size=n)(image=np.zeros((h, w, 3), np.uint8))["image"]
        sms.append([h, w, n, out.shape[0], out.shape[1]])

    too_small_raises = False
    try:
        A.CenterCrop(height=8, width=8)(image=np.zeros((7, 9, 3), np.uint8))
    except Exception as e:  # albumentations 2.x: CropSizeError
        too_small_raises = type(e).__name__
    assert too_small_raises

    x = np.arange(256, dtype=np.uint8)
    ref = (x / 127.5 - 1.0).astype(np.float32)
    f32_math = x.astype(np.float32) / np.float32(127.5) - np.float32(1.0)

    manifest = {
        "generator": "scripts/gen_model_preprocess_fixtures.py",
        "versions": {
            "opencv-python-headless": metadata.version("opencv-python-headless"),
            "cv2": cv2.__version__,
            "albumentations": A.__version__,
            "numpy": np.__version__,
            "pillow": metadata.version("pillow"),
            "scikit-image": metadata.version("scikit-image"),
        },
        "resize": resize,
        "pipeline": pipe,
        "smallest_max_size": sms,
        "checked": {
            "same_size_resize_is_copy": True,
            "n_by_n_input_unchanged": True,
            "center_crop_too_small_raises": too_small_raises,
            "normalise_f32_math_differs_from_reference_for": int((ref != f32_math).sum()),
        },
    }
    with open(os.path.join(OUT, "manifest.json"), "w") as fh:
        json.dump(manifest, fh, indent=1)
        fh.write("\n")
    total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(OUT) for f in fs)
    print(f"wrote {OUT} ({total} bytes)")


if __name__ == "__main__":
    main()
