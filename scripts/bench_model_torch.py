#!/usr/bin/env python3
"""PyTorch side of the V2L tokenizer CPU benchmark (reference for the Rust `v2l-model` bench).

The FULL official architecture (spec §3.1, `vqgan_configs/v2l.yaml` + `args.embed_dim = 768`):
ch 128, ch_mult [1,2,2,4], num_res_blocks 2, attn_resolutions [16], resolution 256 (so no
attention inside the levels), z_channels 256, embed_dim 768, local codebook 32000 x 768,
global codebook 11908 x 768, k = 21; plus, for the global branch, the CLIP ViT-L/14 vision tower
(patch 14, width 1024, 24 layers, 16 heads, output 768, input 224) built from openai-clip's
`clip/model.py` `VisionTransformer`. All weights random (PyTorch default init), float32, CPU.
The tokenizer model is `scripts/v2l_reference.py` (validated against the official code's golden
output).

Phases (each in a fresh subprocess, so `peak_rss_mib` = ru_maxrss of that phase alone; each
process builds the whole V2L model, i.e. encoder + decoder + both codebooks, and the CLIP tower
only for "encode"; the projected local codebook W = codebook_projection(E) is a constant at
inference and is computed once at setup, outside the timed region):

* `encode`: CLIP tower on a [B,3,224,224] input -> ln_post(cls) @ proj -> L2 normalise ->
  squared L2 to the global rows -> top-21; encoder + quant_conv on [B,3,128,128] -> per-position
  L2 normalise -> nearest of the 32000 projected rows (squared L2 argmin) -> 256 local ids.
* `encode_no_clip`: the same without the CLIP tower (CNN path + local search only).
* `decode`: `decode_from_ids` from 21 global + 16x16 local random ids: gather rows,
  post_quant_conv, decoder with the cross-attention -> [B,3,128,128].

Under `torch.inference_mode()`; 1 warm-up iteration, then `--iters` timed iterations;
seconds_per_iter = mean. Prints one JSON object per phase on stdout:
{"phase", "batch", "threads", "images_per_s", "seconds_per_iter", "peak_rss_mib", "torch"}.

Run by hand (never in CI), on an otherwise idle machine:

    /tmp/venv-fix/bin/python scripts/bench_model_torch.py [--batch 4] [--threads N] [--iters 5]
        [--phases encode,encode_no_clip,decode]

`--threads` defaults to all cores (os.cpu_count()). Needs torch and openai-clip 1.0.1
(`pip install --no-deps openai-clip==1.0.1`; its `clip/model.py` is loaded by file path because
`import clip` needs `pkg_resources`).
"""

import argparse
import importlib.util
import json
import os
import resource
import subprocess
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))

DDCONFIG = {
    "double_z": False,
    "z_channels": 256,
    "resolution": 256,
    "in_channels": 3,
    "out_ch": 3,
    "ch": 128,
    "ch_mult": [1, 2, 2, 4],
    "num_res_blocks": 2,
    "attn_resolutions": [16],
    "dropout": 0.0,
}
EMBED_DIM = 768
N_LOCAL = 32000
N_GLOBAL = 11908
K = 21
IMAGE = 128
CLIP_IMAGE = 224
PHASES = ("encode", "encode_no_clip", "decode")


def load_by_path(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def clip_model_module():
    spec = importlib.util.find_spec("clip")  # locates the package without executing it
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("pip install --no-deps openai-clip==1.0.1")
    return load_by_path("openai_clip_model",
                        os.path.join(spec.submodule_search_locations[0], "model.py"))


def run_phase(phase, batch, threads, iters):
    torch.manual_seed(0)
    torch.set_num_threads(threads)
    R = load_by_path("v2l_reference", os.path.join(HERE, "v2l_reference.py"))
    model = R.V2LModel(DDCONFIG, EMBED_DIM, N_LOCAL, N_GLOBAL).eval()
    clip_visual = None
    if phase == "encode":
        cm = clip_model_module()
        clip_visual = cm.VisionTransformer(input_resolution=CLIP_IMAGE, patch_size=14, width=1024,
                                           layers=24, heads=16, output_dim=EMBED_DIM).float().eval()

    with torch.inference_mode():
        w = model.projected_codebook().contiguous()  # constant at inference
        w_sq = w.pow(2).sum(dim=1)
        e_g = model.tok_embeddings_global.weight
        e_g_sq = e_g.pow(2).sum(dim=1)

        x = torch.rand(batch, 3, IMAGE, IMAGE) * 2 - 1
        x_clip = torch.randn(batch, 3, CLIP_IMAGE, CLIP_IMAGE)
        gen = torch.Generator().manual_seed(1)
        global_ids = torch.randint(0, N_GLOBAL, (batch, K), generator=gen)
        grid = (IMAGE // 8, IMAGE // 8)
        local_ids = torch.randint(0, N_LOCAL, (batch, grid[0] * grid[1]), generator=gen)

        def encode_local():
            z = model.normalise(model.quant_conv(model.encoder(x)))
            zf = z.permute(0, 2, 3, 1).reshape(-1, EMBED_DIM)
            d = zf.pow(2).sum(dim=1, keepdim=True) + w_sq[None, :] - 2.0 * (zf @ w.t())
            return d.argmin(dim=1).reshape(batch, -1)

        def encode_global():
            g = clip_visual(x_clip)
            g = g / g.norm(dim=-1, keepdim=True)
            d = g.pow(2).sum(dim=1, keepdim=True) + e_g_sq[None, :] - 2.0 * (g @ e_g.t())
            return torch.topk(-d, K, dim=1).indices

        if phase == "encode":
            def step():
                return encode_global(), encode_local()
        elif phase == "encode_no_clip":
            step = encode_local
        else:
            def step():
                quant = w[local_ids.reshape(-1)].reshape(batch, grid[0], grid[1], EMBED_DIM)
                return model.decode(quant.permute(0, 3, 1, 2), e_g[global_ids])

        step()  # warm-up
        t0 = time.perf_counter()
        for _ in range(iters):
            step()
        sec = (time.perf_counter() - t0) / iters

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux
    return {
        "phase": phase,
        "batch": batch,
        "threads": threads,
        "images_per_s": batch / sec,
        "seconds_per_iter": sec,
        "peak_rss_mib": round(peak, 1),
        "torch": torch.__version__,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--phases", default=",".join(PHASES))
    ap.add_argument("--phase", help=argparse.SUPPRESS)  # internal: run one phase in this process
    args = ap.parse_args()
    if args.phase:
        print(json.dumps(run_phase(args.phase, args.batch, args.threads, args.iters)), flush=True)
        return 0
    for phase in args.phases.split(","):
        if phase not in PHASES:
            raise SystemExit(f"unknown phase {phase!r}; expected one of {PHASES}")
        cmd = [sys.executable, os.path.abspath(__file__), "--phase", phase, "--batch",
               str(args.batch), "--threads", str(args.threads), "--iters", str(args.iters)]
        subprocess.run(cmd, check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
