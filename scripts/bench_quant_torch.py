#!/usr/bin/env python3
"""PyTorch's nearest-codeword search at V2L's shape, the baseline of the
device check (scripts/device_check.sh): `argmin(‖c‖² − 2 z·cᵀ)` with
`torch.matmul` + `torch.argmin` in f32, and `torch.matmul` alone, on the
same shapes and random data as the `bench_quant` entry of the gpu group
(T = 256·B, K = 32,000 and 49,152, d = 768). One JSON line per measurement,
GFLOP/s of the 2·T·K·d multiply-adds.

    python3 scripts/bench_quant_torch.py [--batch 32] [--iters 5] [--k 32000,49152] [--device cuda]
"""
import argparse
import json
import time

import torch


def timed(fn, iters, device):
    fn()
    if device == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(iters):
        fn()
    if device == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - t0) / iters


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--iters", type=int, default=5)
    p.add_argument("--k", default="32000,49152", help="codebook sizes, comma-separated")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    a = p.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    t, d = 256 * a.batch, 768
    g = torch.Generator(device=a.device).manual_seed(0)
    for k in (int(x) for x in a.k.split(",")):
        rows = torch.randn(k, d, device=a.device, generator=g)
        z = torch.randn(t, d, device=a.device, generator=g)
        sq = (rows * rows).sum(1)
        flop = 2.0 * t * k * d

        def search():
            s = sq[None, :] - 2.0 * (z @ rows.T)
            return torch.argmin(s, dim=1).cpu()

        def matmul():
            return (z @ rows.T).sum().item()

        for method, fn in (("torch_matmul_argmin", search), ("torch_matmul", matmul)):
            s = timed(fn, a.iters, a.device)
            print(json.dumps({
                "backend": f"torch-{a.device}", "phase": "quant", "method": method,
                "t": t, "k": k, "d": d, "ms": round(1e3 * s, 3),
                "gflops": round(flop / s / 1e9, 1), "torch": torch.__version__,
            }))


if __name__ == "__main__":
    main()
