#!/usr/bin/env python3
"""Generates the fixtures of `crates/v2l-clip/tests/it/preprocess.rs` with the reference tools.

Run by hand (never in CI), from the workspace root, after `v2l assets fetch photos`:

    python3 -m venv /tmp/venv-fix
    /tmp/venv-fix/bin/pip install pillow==13.0.0 numpy torch torchvision==0.29.*
    /tmp/venv-fix/bin/python scripts/gen_clip_preprocess_fixtures.py

Reference: OpenAI CLIP's `clip.clip._transform(n_px)`, i.e. torchvision
`Resize(n_px, BICUBIC)`, `CenterCrop(n_px)`, `convert("RGB")`, `ToTensor()`,
`Normalize(OPENAI_MEAN, OPENAI_STD)` on a PIL image (built here from torchvision directly with
the same composition; when the `clip` package imports, its `_transform` is checked to agree).

Writes into `crates/v2l-clip/tests/fixtures/preprocess/`:

- `inputs/*.png`: small synthetic inputs (seeded), committed: grey (L), grey+alpha (LA) and
  RGBA with varying and zero alpha, a 7x5 and a 300x40 RGB image (upscaling; the latter also
  transposed to 40x300, where Pillow 13 runs its vertical pass first), a 224x224 RGB
  image (already at the target size: passes through), a 16-bit grey PNG, and four RGB sizes
  giving even and odd (round-half-to-even) centre-crop offsets, with and without a resize.
- `<case>.npy`: the uint8 image after Resize + CenterCrop + convert("RGB") (`np.asarray` of
  the PIL image before ToTensor), HWC. The 16-bit case's reference first scales to 8 bits as
  `round(v / 257)` in numpy (v2l-clip's documented rule; PIL's own I;16 handling is
  degenerate) and then runs the PIL pipeline on the 8-bit grey image.
- `astronaut_224_f32.npy`: the full transform's float32 output, [3, 224, 224].
- `manifest.json`: every case (input, resolution, output, sha256 of the input), the tool
  versions, and facts the generator checked (pass-through, crop offsets).

The photos (scikit-image's CC0 astronaut, chelsea, coffee, motorcycle_left) are read from the
v2l asset cache (`$V2L_HOME/assets/photos`, default `~/.cache/v2l`); they are not copied.
"""

import hashlib
import json
import os
import sys

import numpy as np
import PIL
import torch
import torchvision
from PIL import Image
from torchvision.transforms import CenterCrop, Compose, InterpolationMode, Normalize, Resize, ToTensor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "crates", "v2l-clip", "tests", "fixtures", "preprocess")
INPUTS = os.path.join(OUT, "inputs")
V2L_HOME = os.environ.get("V2L_HOME", os.path.join(os.path.expanduser("~"), ".cache", "v2l"))
PHOTOS = os.path.join(V2L_HOME, "assets", "photos")

MEAN = (0.48145466, 0.4578275, 0.40821073)
STD = (0.26862954, 0.26130258, 0.27577711)


def to_rgb(image):
    return image.convert("RGB")


def uint8_transform(n):
    """The reference up to (not including) ToTensor."""
    return Compose([Resize(n, interpolation=InterpolationMode.BICUBIC), CenterCrop(n), to_rgb])


def full_transform(n):
    return Compose([
        Resize(n, interpolation=InterpolationMode.BICUBIC),
        CenterCrop(n),
        to_rgb,
        ToTensor(),
        Normalize(MEAN, STD),
    ])


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def synthetic_rgb(rng, width, height, noise=0, waves=True):
    """Gradients, hard edges (overshoot and clipping) and seeded noise (kept mild so that the
    committed PNGs stay small)."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    r = 255 * x / max(width - 1, 1)
    g = 255 * y / max(height - 1, 1)
    b = 127.5 + 127.5 * np.sin(x / 3.0) * np.cos(y / 4.0) if waves else 255 - r
    img = np.stack([r, g, b], axis=-1)
    # A black/white checker block in one quadrant: the strongest ringing case.
    checker = ((x // 2 + y // 2) % 2 == 0) & (x < width / 2) & (y < height / 2)
    img[checker] = 255.0
    img[((x // 2 + y // 2) % 2 == 1) & (x < width / 2) & (y < height / 2)] = 0.0
    if noise:
        img = img + rng.normal(0, noise, img.shape)
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def save_png(array, mode, name):
    path = os.path.join(INPUTS, name)
    Image.fromarray(array, mode=mode).save(path, optimize=True)
    return path


def make_inputs(rng):
    """Writes the synthetic inputs; returns {name: path}."""
    os.makedirs(INPUTS, exist_ok=True)
    paths = {}

    grey = synthetic_rgb(rng, 120, 80, noise=4)[..., 1] // 2 + synthetic_rgb(rng, 120, 80)[..., 2] // 2
    paths["grey"] = save_png(grey.astype(np.uint8), "L", "grey_120x80.png")

    rgba = np.empty((50, 60, 4), np.uint8)
    rgba[..., :3] = synthetic_rgb(rng, 60, 50)
    y, x = np.mgrid[0:50, 0:60]
    alpha = np.clip(np.round(255 * x / 59 + rng.normal(0, 10, x.shape)), 0, 255)
    alpha[:, :8] = 0  # fully transparent band with non-zero colour underneath
    alpha[:, -8:] = 255  # opaque band
    alpha[20:26, :] = rng.integers(0, 256, (6, 60))  # a band of random alpha
    rgba[..., 3] = alpha.astype(np.uint8)
    paths["rgba"] = save_png(rgba, "RGBA", "rgba_60x50.png")

    la = np.empty((90, 70, 2), np.uint8)
    la[..., 0] = synthetic_rgb(rng, 70, 90)[..., 0]
    yy, xx = np.mgrid[0:90, 0:70]
    la[..., 1] = np.clip(np.round(255 * yy / 89 + rng.normal(0, 10, yy.shape)), 0, 255).astype(np.uint8)
    la[:10, :, 1] = 0
    paths["la"] = save_png(la, "LA", "la_70x90.png")

    paths["tiny"] = save_png(synthetic_rgb(rng, 7, 5, noise=60), "RGB", "tiny_7x5.png")
    paths["wide"] = save_png(synthetic_rgb(rng, 300, 40), "RGB", "wide_300x40.png")
    # No noise: the 224x224 input compresses well and stays a small fixture.
    paths["square"] = save_png(synthetic_rgb(rng, 224, 224, noise=0, waves=False), "RGB", "square_224.png")

    y, x = np.mgrid[0:40, 0:64].astype(np.float64)
    grey16 = np.clip(np.round(65535 * (x / 63) * (0.5 + 0.5 * np.cos(y / 5)) + rng.normal(0, 50, x.shape)), 0, 65535)
    grey16 = grey16.astype(np.uint16)
    grey16[:4, :4] = [[0, 127, 128, 129], [384, 385, 65407, 65408], [65535, 32767, 32768, 257], [256, 258, 1, 2]]
    path16 = os.path.join(INPUTS, "grey16_64x40.png")
    Image.fromarray(grey16).save(path16)  # uint16 -> mode I;16, a 16-bit grey PNG
    paths["grey16"] = path16

    for w, h in [(45, 32), (32, 47), (50, 30), (30, 70)]:
        paths[f"crop_{w}x{h}"] = save_png(synthetic_rgb(rng, w, h, noise=4), "RGB", f"crop_{w}x{h}.png")
    return paths


def crop_offsets(size, n):
    """torchvision's Resize + CenterCrop geometry: (resized w, h, left, top)."""
    w, h = size
    short, long = (w, h) if w <= h else (h, w)
    new_short, new_long = n, int(n * long / short)
    nw, nh = (new_short, new_long) if w <= h else (new_long, new_short)
    return nw, nh, int(round((nw - n) / 2.0)), int(round((nh - n) / 2.0))


def main():
    print(f"Pillow {PIL.__version__}, torchvision {torchvision.__version__}, torch {torch.__version__}")
    if not os.path.isdir(PHOTOS):
        sys.exit(f"photos not cached at {PHOTOS}: run `v2l assets fetch photos`")
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(20240607)
    inputs = make_inputs(rng)

    cases = []

    def add(name, input_path, n, image, note=""):
        out = np.asarray(uint8_transform(n)(image))
        assert out.dtype == np.uint8 and out.shape == (n, n, 3), out.shape
        file = f"{name}.npy"
        np.save(os.path.join(OUT, file), np.ascontiguousarray(out))
        nw, nh, left, top = crop_offsets(image.size, n)
        cases.append({
            "name": name,
            "input": os.path.relpath(input_path, OUT) if input_path.startswith(OUT) else os.path.basename(input_path),
            "input_sha256": sha256(input_path),
            "input_mode": image.mode,
            "input_size": list(image.size),
            "resolution": n,
            "resized_size": [nw, nh],
            "crop_left_top": [left, top],
            "output": file,
            "note": note,
        })
        print(f"{name}: {image.mode} {image.size} -> resize {nw}x{nh}, crop at ({left}, {top})")
        return out

    # Real photos (not copied into the repo).
    for photo, n in [("chelsea", 224), ("coffee", 224), ("motorcycle_left", 224), ("chelsea", 336),
                     ("astronaut", 32)]:
        path = os.path.join(PHOTOS, f"{photo}.png")
        add(f"{photo}_{n}", path, n, Image.open(path), "photo from the v2l asset cache")

    # Synthetic inputs.
    add("grey_32", inputs["grey"], 32, Image.open(inputs["grey"]), "L: resized as L, then replicated")
    add("rgba_32", inputs["rgba"], 32, Image.open(inputs["rgba"]), "RGBA: resized premultiplied (RGBa), alpha dropped")
    add("la_32", inputs["la"], 32, Image.open(inputs["la"]), "LA: resized premultiplied (La), alpha dropped")
    add("tiny_24", inputs["tiny"], 24, Image.open(inputs["tiny"]), "7x5 upscaled to 33x24")
    add("wide_32", inputs["wide"], 32, Image.open(inputs["wide"]), "300x40 downscaled to 240x32")
    add("wide_48", inputs["wide"], 48, Image.open(inputs["wide"]), "300x40 upscaled to 360x48")
    # The wide input transposed (pixel (x, y) <- (y, x)), not stored: 40x300 -> 32x240 shrinks
    # the height by more than twice the width, where Pillow 13 resamples vertically first.
    tall = Image.open(inputs["wide"]).transpose(Image.Transpose.TRANSPOSE)
    add("tall_32", inputs["wide"], 32, tall, "wide_300x40.png transposed: Pillow 13 resizes vertically first")
    for key in ["crop_45x32", "crop_32x47", "crop_50x30", "crop_30x70"]:
        add(f"{key}_32", inputs[key], 32, Image.open(inputs[key]), "centre-crop offset rounding")

    # 16-bit grey: scale to 8 bits by round(v / 257) in numpy, then the PIL pipeline on L.
    im16 = Image.open(inputs["grey16"])
    assert im16.mode in ("I;16", "I;16B", "I"), im16.mode
    v16 = np.asarray(im16).astype(np.uint32)
    v8 = ((v16 + 128) // 257).astype(np.uint8)
    exact = np.round(v16.astype(np.float64) / 257.0)
    assert np.array_equal(v8, exact.astype(np.uint8)), "(v + 128) // 257 must equal round(v / 257)"
    out16 = add("grey16_32", inputs["grey16"], 32, Image.fromarray(v8, mode="L"),
                "16-bit grey: round(v/257) in numpy (not PIL), then L pipeline")
    cases[-1]["input_mode"] = im16.mode
    pil16 = np.asarray(uint8_transform(32)(im16))
    print(f"  (PIL's own I;16 pipeline for comparison: {np.mean(pil16 == 255):.1%} of values are 255, "
          f"max |diff| vs rule {np.abs(pil16.astype(int) - out16.astype(int)).max()})")

    # Already at the target size: torchvision returns the image untouched.
    square = Image.open(inputs["square"])
    passed = np.asarray(uint8_transform(224)(square))
    assert np.array_equal(passed, np.asarray(square.convert("RGB"))), "224x224 must pass through"
    cases.append({
        "name": "square_224",
        "input": os.path.relpath(inputs["square"], OUT),
        "input_sha256": sha256(inputs["square"]),
        "input_mode": square.mode,
        "input_size": list(square.size),
        "resolution": 224,
        "resized_size": [224, 224],
        "crop_left_top": [0, 0],
        "output": None,
        "note": "pass-through: the reference output equals the input (checked here), so none is stored",
    })
    print("square_224: pass-through checked")

    # Full transform, float32.
    astronaut_path = os.path.join(PHOTOS, "astronaut.png")
    astronaut = Image.open(astronaut_path)
    tensor = full_transform(224)(astronaut)
    f32 = tensor.numpy().astype(np.float32)
    assert f32.shape == (3, 224, 224)
    try:
        try:
            import pkg_resources  # noqa: F401  (clip/clip.py imports `packaging` from it)
        except ImportError:
            import types

            import packaging.version

            shim = types.ModuleType("pkg_resources")
            shim.packaging = packaging
            sys.modules["pkg_resources"] = shim
        from clip.clip import _transform  # OpenAI CLIP, when importable

        official = _transform(224)(astronaut).numpy()
        assert np.array_equal(official, f32), "clip.clip._transform disagrees with the composition"
        print("clip.clip._transform(224) agrees bit for bit")
    except ImportError as err:
        print(f"(clip package not importable: {err}; composition used as is)")
    # The formula v2l-clip uses: (float32(v) / 255 - mean) / std, all in float32.
    u8 = np.asarray(uint8_transform(224)(astronaut)).transpose(2, 0, 1)
    mean = np.asarray(MEAN, np.float32)[:, None, None]
    std = np.asarray(STD, np.float32)[:, None, None]
    emulated = (u8.astype(np.float32) / np.float32(255) - mean) / std
    print(f"numpy f32 formula vs torch: max |diff| {np.abs(emulated - f32).max()}, "
          f"bit-identical {np.array_equal(emulated, f32)}")
    np.save(os.path.join(OUT, "astronaut_224_f32.npy"), np.ascontiguousarray(f32))
    cases.append({
        "name": "astronaut_224_f32",
        "input": "astronaut.png",
        "input_sha256": sha256(astronaut_path),
        "input_mode": astronaut.mode,
        "input_size": list(astronaut.size),
        "resolution": 224,
        "output": "astronaut_224_f32.npy",
        "note": "full transform (ToTensor + Normalize), float32 [3, 224, 224]",
    })

    manifest = {
        "generator": "scripts/gen_clip_preprocess_fixtures.py",
        "pillow": PIL.__version__,
        "torchvision": torchvision.__version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "mean": MEAN,
        "std": STD,
        "cases": cases,
    }
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(OUT) for f in fs)
    print(f"wrote {len(cases)} cases to {OUT} ({total} bytes)")


if __name__ == "__main__":
    main()
