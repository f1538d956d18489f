#!/usr/bin/env python3
"""Generates the tiny random V2L tokenizer model of `crates/v2l-model/tests/fixtures/model/levels/`.

Run by hand (never in CI), from the workspace root, on CPU:

    python3 -m venv /tmp/venv-fix
    /tmp/venv-fix/bin/pip install numpy torch safetensors
    /tmp/venv-fix/bin/python scripts/gen_model_fixtures.py

Versions used for the committed files: torch 2.15.0, safetensors 0.8.0, numpy 2.4.6. The model is
`scripts/v2l_reference.py` (written from `/work/shared/spec/v2l-official.md` §3 and validated
against `/work/shared/golden/v2l-tiny`, the official code's output: run
`python scripts/v2l_reference.py`). Everything is seeded and runs on CPU, so a rerun rewrites the
same values.

Why a second model: the golden `v2l-tiny` (like the official `v2l.yaml`) has no attention blocks
inside the encoder/decoder levels, a square image and a 768-d code. "levels" exercises what it
does not:

* ddconfig: ch 32, ch_mult [1,2,2], num_res_blocks 2, attn_resolutions [8], resolution 16,
  z_channels 16, in/out channels 3, dropout 0. The `resolution` counter puts attention blocks
  where curr_res == 8: encoder level 1 (curr_res 16 -> 8 -> 4) gets `attn.0`, `attn.1` (one per
  ResnetBlock), decoder level 1 (curr_res 4 -> 8 -> 16) gets `attn.0..2` (num_res_blocks + 1).
  Channels 32/64/64, so `nin_shortcut` exists in `encoder.down.1.block.0` and
  `decoder.up.0.block.0`; the decoder levels are stored as `decoder.up.{i}` by level index i and
  run i = 2, 1, 0.
* embed_dim 64 (so the decoder cross-attention has context_dim 64, heads 8, dim_head 64, inner
  512), n_local 300, n_global 40, k 3.
* A non-square input: 2 images 24x40 -> local grid 6x10 (60 ids per image, raster order),
  decoded back to 24x40.

Initialisation (from one seeded torch.Generator, in state-dict order): conv / linear weights
N(0, (g / sqrt(fan_in))^2) with g = 1, except g = 1.3 for the AttnBlock q/k 1x1 convs (peaked
spatial attention), std 1.0 (g = 8) for post_quant_conv, cross-attention to_k/to_v (their inputs
are ~unit-norm 64-d rows) and std 1.5 / sqrt(64) for to_q; biases N(0, 0.1^2) (codebook_projection
bias N(0, 0.02^2)); GroupNorm weight 1 + 0.1 N, bias 0.1 N. Codebooks: local and global rows
N(0, 1/64) (norm ~1). Inputs: input_image U[-1, 1]; global_embedding N(0, 1), not normalised.
The seed is bumped until both id margins (below) exceed 2e-4 absolute (1e-4 relative to the
distances, which are ~2).

Files written to `crates/v2l-model/tests/fixtures/model/levels/`:

* `config.json`: the golden's field names (`image_size` is [h, w] here; no `clip_vision`: the
  global branch is fed `global_embedding`), `min_local_margin` = smallest (second-best - best)
  squared distance over all local positions, `min_global_margin` = smallest (k+1-th - k-th)
  global distance, both computed in float64, and `tensors` {name: shape}.
* `weights.safetensors`: the official-named state dict (float16: every weight is drawn in float64,
  rounded to float16, and used as that exact value everywhere), exactly the keys of
  `V2LModel.state_dict()` (`encoder.*`, `decoder.*`, `quant_conv.*`, `post_quant_conv.*`,
  `tok_embeddings.weight`, `codebook_projection.*`, `tok_embeddings_global.weight`).
* `expected.safetensors`: computed with the model in float64 (`.double()` of the stored float16
  weights, inputs also rounded to float32 first) and stored as float32 (ids int64):
    input_image [2,3,24,40], global_embedding [2,64], global_ids [2,3] i64,
    encoder_out [2,16,6,10], quant_conv_out [2,64,6,10] (before normalisation),
    local_ids [2,60] i64, projected_codebook [300,64], quantized [2,64,6,10],
    qloss [1], decoded [2,3,24,40], decoded_from_ids [2,3,24,40].

The script then reloads the written files into a float32 model and prints its agreement with the
expected tensors (what an f32 port can hope for).
"""

import copy
import importlib.util
import json
import math
import os
import sys

import torch
from safetensors.torch import load_file, save_file

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
OUT = os.path.join(ROOT, "crates", "v2l-model", "tests", "fixtures", "model", "levels")


def load_reference():
    spec = importlib.util.spec_from_file_location("v2l_reference",
                                                  os.path.join(HERE, "v2l_reference.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


R = load_reference()

DDCONFIG = {
    "double_z": False,
    "z_channels": 16,
    "resolution": 16,
    "in_channels": 3,
    "out_ch": 3,
    "ch": 32,
    "ch_mult": [1, 2, 2],
    "num_res_blocks": 2,
    "attn_resolutions": [8],
    "dropout": 0.0,
}
EMBED_DIM = 64
N_LOCAL = 300
N_GLOBAL = 40
K = 3
BATCH = 2
H, W = 24, 40
FIRST_SEED = 20240
MARGIN_ABS = 2e-4


def init_weights(model, gen):
    sd = model.state_dict()
    new = {}

    def normal(shape, std, mean=0.0):
        return torch.randn(shape, generator=gen, dtype=torch.float64) * std + mean

    for name, t in sd.items():
        shape = t.shape
        if name in ("tok_embeddings.weight", "tok_embeddings_global.weight"):
            v = normal(shape, 1.0 / math.sqrt(EMBED_DIM))
        elif ".norm" in name or name.endswith(("norm_out.weight", "norm_out.bias")):
            v = normal(shape, 0.1, 1.0 if name.endswith("weight") else 0.0)
        elif name.endswith("bias"):
            v = normal(shape, 0.02 if name.startswith("codebook_projection") else 0.1)
        else:
            fan_in = int(torch.tensor(shape[1:]).prod())
            g = 1.0
            if name.endswith((".q.weight", ".k.weight")):
                g = 1.3
            if name.startswith("post_quant_conv") or name.endswith(("to_k.weight", "to_v.weight")):
                g = math.sqrt(fan_in)
            if name.endswith("to_q.weight"):
                g = 1.5
            v = normal(shape, g / math.sqrt(fan_in))
        # Rounded to float16 (and stored so): the values are exact in both
        # precisions, and the file is half the size.
        new[name] = v.to(torch.float16).to(torch.float32).contiguous()
    model.load_state_dict(new, strict=True)
    return new


def reference(model64, x, g):
    """All expected tensors (float64) plus margins."""
    with torch.no_grad():
        out = model64(x, g, k=K)
        out["projected_codebook"] = model64.projected_codebook()
        grid = tuple(out["quant_conv_out"].shape[2:])
        out["decoded_from_ids"] = model64.decode_from_ids(out["global_ids"], out["local_ids"], grid)
        z = model64.normalise(out["quant_conv_out"])
        zf = z.permute(0, 2, 3, 1).reshape(-1, EMBED_DIM)
        dl = model64.local_distances(zf, out["projected_codebook"])
        two = dl.topk(2, dim=1, largest=False).values
        local_gap = two[:, 1] - two[:, 0]
        dg = model64.global_distances(g)
        kk = dg.topk(K + 1, dim=1, largest=False).values
        global_gap = kk[:, K] - kk[:, K - 1]
        stats = {
            "min_local_margin": float(local_gap.min()),
            "min_local_margin_rel": float((local_gap / two[:, 1]).min()),
            "min_global_margin": float(global_gap.min()),
            "min_global_margin_rel": float((global_gap / kk[:, K]).min()),
        }
    return out, stats


def attention_stats(model, x, g):
    """Max softmax weight (mean and range) of every attention in a float64 forward."""
    rows = {}

    def spatial_hook(name):
        def f(mod, inp, out):
            h = mod.norm(inp[0])
            q, k = mod.q(h), mod.k(h)
            b, c = q.shape[:2]
            w = torch.softmax(torch.bmm(q.reshape(b, c, -1).transpose(1, 2), k.reshape(b, c, -1))
                              * c ** -0.5, dim=2)
            rows[name] = (w.max(dim=2).values, 1.0 / w.shape[2])
        return f

    def cross_hook(mod, inp, out):
        xq, ctx = inp
        b, n, _ = xq.shape
        q = mod.to_q(xq).reshape(b, n, mod.heads, -1).transpose(1, 2)
        kk = mod.to_k(ctx).reshape(b, ctx.shape[1], mod.heads, -1).transpose(1, 2)
        w = torch.softmax(q @ kk.transpose(-1, -2) * mod.scale, dim=-1)
        rows["decoder.mid.cross_attn_1"] = (w.max(dim=-1).values, 1.0 / w.shape[-1])
        o = out.reshape(b, n, 32, -1)  # GroupNorm(32) groups of the next block
        rows["cross_out_group_std_over_absmax"] = float(
            (o.std(dim=(1, 3)) / out.abs().max()).min())

    handles = []
    for name, mod in model.named_modules():
        if isinstance(mod, R.AttnBlock):
            handles.append(mod.register_forward_hook(spatial_hook(name)))
    handles.append(model.decoder.mid.cross_attn_1.register_forward_hook(cross_hook))
    with torch.no_grad():
        model(x, g, k=K)
    for h in handles:
        h.remove()
    for name, val in rows.items():
        if isinstance(val, float):
            print(f"  {name}: {val:.3g}")
        else:
            m, uni = val
            print(f"  {name}: max weight mean {float(m.mean()):.3f} "
                  f"range [{float(m.min()):.3f}, {float(m.max()):.3f}] (uniform {uni:.3f})")


def main():
    torch.set_num_threads(1)
    seed = FIRST_SEED
    while True:
        gen = torch.Generator().manual_seed(seed)
        model = R.V2LModel(DDCONFIG, EMBED_DIM, N_LOCAL, N_GLOBAL).eval()
        weights = init_weights(model, gen)
        x = (torch.rand((BATCH, 3, H, W), generator=gen, dtype=torch.float64) * 2 - 1).float()
        g = torch.randn((BATCH, EMBED_DIM), generator=gen, dtype=torch.float64).float()
        model64 = copy.deepcopy(model).double()
        out, stats = reference(model64, x.double(), g.double())
        print(f"seed {seed}: {stats}")
        if stats["min_local_margin"] > MARGIN_ABS and stats["min_global_margin"] > MARGIN_ABS:
            break
        seed += 1

    print("attention (float64):")
    attention_stats(model64, x.double(), g.double())
    n_distinct = len(set(out["local_ids"].reshape(-1).tolist()))
    print(f"distinct local ids: {n_distinct} / {out['local_ids'].numel()}; global ids "
          f"{out['global_ids'].tolist()}")
    for name in ["encoder_out", "quant_conv_out", "quantized", "decoded", "decoded_from_ids"]:
        t = out[name]
        print(f"  {name}: std {float(t.std()):.3g} absmax {float(t.abs().max()):.3g}")
    print(f"  qloss {float(out['qloss']):.6g}")

    expected = {"input_image": x, "global_embedding": g}
    for name in ["global_ids", "encoder_out", "quant_conv_out", "local_ids", "projected_codebook",
                 "quantized", "qloss", "decoded", "decoded_from_ids"]:
        t = out[name]
        expected[name] = (t if t.dtype == torch.int64 else t.to(torch.float32)).contiguous()

    os.makedirs(OUT, exist_ok=True)
    meta = {"generator": "scripts/gen_model_fixtures.py", "torch": torch.__version__}
    save_file({k: v.to(torch.float16) for k, v in weights.items()},
              os.path.join(OUT, "weights.safetensors"), metadata=meta)
    save_file(expected, os.path.join(OUT, "expected.safetensors"), metadata=meta)
    config = {
        "description": (
            "random V2L tokenizer exercising level attention (resolution 16, attn_resolutions [8]: "
            "encoder.down.1.attn.{0,1}, decoder.up.1.attn.{0,1,2}), nin_shortcut, 3 levels, a "
            f"64-d code and a non-square 24x40 input (6x10 grid); seed {seed}; reference computed "
            "in float64 by scripts/gen_model_fixtures.py"),
        "image_size": [H, W],
        "ddconfig": DDCONFIG,
        "embed_dim": EMBED_DIM,
        "n_local": N_LOCAL,
        "n_global": N_GLOBAL,
        "k": K,
        "batch": BATCH,
        "min_local_margin": stats["min_local_margin"],
        "min_global_margin": stats["min_global_margin"],
        "tensors": {name: list(t.shape) for name, t in expected.items()},
    }
    with open(os.path.join(OUT, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    for name in ("weights.safetensors", "expected.safetensors"):
        os.chmod(os.path.join(OUT, name), 0o644)  # save_file creates them 0600

    # Reload what was written into a float32 model: the agreement an f32 port can expect.
    m32 = R.build_from_config(json.load(open(os.path.join(OUT, "config.json")))).eval()
    m32.load_state_dict({k: v.float() for k, v in
                         load_file(os.path.join(OUT, "weights.safetensors")).items()}, strict=True)
    exp = load_file(os.path.join(OUT, "expected.safetensors"))
    with torch.no_grad():
        o32 = m32(exp["input_image"], exp["global_embedding"], k=K)
        o32["projected_codebook"] = m32.projected_codebook()
        o32["decoded_from_ids"] = m32.decode_from_ids(exp["global_ids"], exp["local_ids"], (6, 10))
    print("float32 model vs expected:")
    for name in ["encoder_out", "quant_conv_out", "projected_codebook", "local_ids", "global_ids",
                 "quantized", "qloss", "decoded", "decoded_from_ids"]:
        if exp[name].dtype == torch.int64:
            print(f"  {name}: {int((o32[name] != exp[name]).sum())} ids differ")
        else:
            print(f"  {name}: max rel err {R.rel_err(o32[name], exp[name]):.2e}")
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print(f"wrote {OUT} ({total} bytes)")


if __name__ == "__main__":
    sys.exit(main())
