"""Reference timing for the `v2l-clip` criterion bench (`benches/encode.rs`):
OpenAI CLIP ViT-B/32 with random weights on torch CPU, image and text
embeddings per second, batch 8, the same inputs' shapes (224 px images; text
rows of 77 tokens whose EOT is at position 15, as `clip.tokenize` pads them).

Run by hand (never in CI), on an otherwise idle machine:
    /tmp/venv-fix/bin/python scripts/bench_clip_torch.py [--threads 2]
Uses the `openai-clip` package's `clip/model.py` (installed with --no-deps).
Prints one JSON line.
"""

import argparse
import importlib.util
import json
import os
import site
import time

import torch


def clip_model_module():
    for base in site.getsitepackages():
        path = os.path.join(base, "clip", "model.py")
        if os.path.exists(path):
            spec = importlib.util.spec_from_file_location("clip_model", path)
            mod = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(mod)
            return mod
    raise SystemExit("pip install --no-deps openai-clip==1.0.1")


def best_of(fn, reps):
    fn()  # warm-up
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times), sorted(times)[len(times) // 2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cm = clip_model_module()
    model = cm.CLIP(512, 224, 12, 768, 32, 77, 49408, 512, 8, 12).float().eval()
    images = torch.randn(8, 3, 224, 224)
    text = torch.zeros(8, 77, dtype=torch.long)
    text[:, 0] = 49406
    for r in range(8):
        for i in range(1, 15):
            text[r, i] = 1000 + 37 * (r * 16 + i)
    text[:, 15] = 49407
    with torch.no_grad():
        img_best, img_med = best_of(lambda: model.encode_image(images), args.reps)
        txt_best, txt_med = best_of(lambda: model.encode_text(text), args.reps)
    print(json.dumps({
        "torch": torch.__version__,
        "threads": args.threads,
        "image_per_s_median": 8 / img_med,
        "text_per_s_median": 8 / txt_med,
        "image_per_s_best": 8 / img_best,
        "text_per_s_best": 8 / txt_best,
    }))


if __name__ == "__main__":
    main()
