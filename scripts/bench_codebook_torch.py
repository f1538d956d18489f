#!/usr/bin/env python3
"""PyTorch baselines for scripts/bench_codebook.sh, same machine, same work.

Run by hand: /tmp/venv-fix/bin/python scripts/bench_codebook_torch.py
(torch 2.15 CPU, open_clip 3.3, transformers 5.24 with gguf; 2 threads as the
machine has 2 cores).

* embed: CLIP ViT-L/14 and ViT-B/32 text towers (open_clip, random weights:
  speed does not depend on them), the reference's step 2 per entry: 80
  templates tokenised (77 ids), encode_text, L2-normalise, mean. Entries are
  LLaMA-2 token texts (the first ids of the llama2-vocab asset's vocabulary
  are control/byte tokens; ids 1000.. are words), as the Rust bench uses ids
  0.. — close enough for throughput.
* expand: SmolLM2-135M-Instruct GGUF loaded by transformers (f32), the
  reference's step 1: one prompt per call, one greedy token, twice per entry.
"""
import json
import os
import time

import torch

torch.set_num_threads(2)
ASSETS = os.path.expanduser("~/.cache/v2l/assets")


def templates():
    from open_clip.zero_shot_metadata import OPENAI_IMAGENET_TEMPLATES as T
    return [t("{}") for t in T]


def bench_embed(name, n):
    import open_clip
    model = open_clip.create_model(name, pretrained=None).eval()
    tok = open_clip.get_tokenizer(name)
    entries = [f"word{i}" for i in range(n)]
    tpl = templates()
    with torch.no_grad():
        model.encode_text(tok([t.format("warmup") for t in tpl]))
        t0 = time.time()
        for e in entries:
            f = model.encode_text(tok([t.format(e) for t in tpl]))
            f = f / f.norm(dim=-1, keepdim=True)
            f.mean(0)
        s = time.time() - t0
    print(json.dumps({"bench": "embed-torch", "clip": name, "entries": n, "seconds": round(s, 3),
                      "entries_per_s": round(n / s, 3), "prompts_per_s": round(80 * n / s, 1)}))


def bench_expand(n):
    import tempfile
    from transformers import AutoModelForCausalLM, AutoTokenizer
    gguf = os.path.join(ASSETS, "smollm2-135m", "SmolLM2-135M-Instruct.Q4_1.gguf")
    with tempfile.TemporaryDirectory() as d:
        os.symlink(gguf, os.path.join(d, "m.gguf"))
        tok = AutoTokenizer.from_pretrained(d, gguf_file="m.gguf")
        model = AutoModelForCausalLM.from_pretrained(d, gguf_file="m.gguf", dtype=torch.float32).eval()
    step = len(tok) // n
    ids = [i * step for i in range(n)]
    with torch.no_grad():
        t0 = time.time()
        for i in ids:
            w = tok.decode([i])
            for _ in range(2):
                p = tok("a photo of " + w.removeprefix(" "), return_tensors="pt").input_ids
                nxt = int(model(p).logits[0, -1].argmax())
                w = w + tok.decode([nxt])
        s = time.time() - t0
    print(json.dumps({"bench": "expand-torch", "llm": "SmolLM2-135M (transformers, f32)", "entries": n,
                      "batch": 1, "seconds": round(s, 3), "entries_per_s": round(n / s, 3)}))


if __name__ == "__main__":
    bench_embed("ViT-B-32", 16)
    bench_embed("ViT-L-14", 8)
    bench_expand(64)
