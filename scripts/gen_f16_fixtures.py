#!/usr/bin/env python3
"""fp16 reference outputs for `--precision f16` (CLIP tower and LLaMA).

The official V2L code runs its CLIP tower and LLaMA-2 in fp16 on CUDA. This
script computes the same fp16 forwards with PyTorch on the CPU and writes

  crates/v2l-clip/tests/fixtures/golden/golden_clip_f16.safetensors
    image_embeds_f16  [2, 768]  the golden V2L checkpoint's CLIP tower
                                (`global_encoder.*`, fp16 as stored), run as
                                the reference runs it: OpenAI `clip/model.py`
                                `VisionTransformer` after `convert_weights`
                                (conv / linear / attention / proj in fp16,
                                LayerNorm in fp32 through OpenAI's LayerNorm
                                subclass), input `.half()`, output `.float()`.
  crates/v2l-llm/tests/fixtures/llama/f16.safetensors
    logits_f16        [2, 12, 256]  the tiny `meta_1/` model (weights `.half()`)
                                on `io.safetensors`'s `input_ids`
    gen_greedy_f16    [1, 20]   the 20 greedy tokens after `gen_prompt` (full
                                recompute each step)

The CLIP forward is OpenAI's own module code (the `openai-clip` package's
`clip/model.py`; the V2L repository vendors the same tower in
`models/global_encoder/model.py`). The LLaMA forward is our transcription of
Meta's `llama/model.py` (the code the V2L repository vendors under
`llama_inference/llama/`) without fairscale, keeping each of its casts:
RMSNorm `_norm(x.float()).type_as(x) * weight`, rotary embedding on
`x.float()` then `.type_as(x)`, scores `q @ kᵀ / √d` in fp16,
`softmax(scores.float()).type_as(q)`, SwiGLU in fp16, logits `.float()`.

It also prints the f32 forward of the same weights and how far each is from
the fp16 one, which the Rust tests use to check that an f16 run is an f16 run.

Run by hand (never in CI):
    python3 -m venv /tmp/venv-fix
    /tmp/venv-fix/bin/pip install torch==2.15.0 safetensors==0.8.0 numpy
    /tmp/venv-fix/bin/pip install --no-deps openai-clip==1.0.1
    /tmp/venv-fix/bin/python scripts/gen_f16_fixtures.py
Versions used: torch 2.15.0 (+cu132 wheel, on CPU), openai-clip 1.0.1,
safetensors 0.8.0, numpy 2.4.6.
"""

import json
import math
import os
import sys

import numpy as np
import torch
from safetensors.numpy import load_file, save_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GOLDEN = os.path.join(ROOT, "crates", "v2l-model", "tests", "fixtures", "v2l-tiny")
CLIP_OUT = os.path.join(ROOT, "crates", "v2l-clip", "tests", "fixtures", "golden", "golden_clip_f16.safetensors")
LLAMA = os.path.join(ROOT, "crates", "v2l-llm", "tests", "fixtures", "llama")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_clip_golden_reference import clip_model_module  # noqa: E402  (openai-clip's model.py by path)


def rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def clip_part():
    cm = clip_model_module()
    ckpt = torch.load(os.path.join(GOLDEN, "checkpoint.pth"), map_location="cpu", weights_only=False)
    prefix = "global_encoder."
    sd = {k[len(prefix):]: v for k, v in ckpt["state_dict"].items() if k.startswith(prefix)}
    width = sd["conv1.weight"].shape[0]
    patch = sd["conv1.weight"].shape[-1]
    grid = round((sd["positional_embedding"].shape[0] - 1) ** 0.5)
    layers = len({k.split(".")[2] for k in sd if k.startswith("transformer.resblocks.")})

    def build():
        m = cm.VisionTransformer(
            input_resolution=patch * grid,
            patch_size=patch,
            width=width,
            layers=layers,
            heads=width // 64,
            output_dim=sd["proj"].shape[1],
        )
        m.load_state_dict({k: v.float() for k, v in sd.items()})
        return m.eval()

    x = torch.from_numpy(load_file(os.path.join(GOLDEN, "expected.safetensors"))["input_clip"])
    m16 = build()
    cm.convert_weights(m16)
    m32 = build()
    with torch.no_grad():
        e16 = m16(x.half()).float().numpy()
        e32 = m32(x.float()).numpy()
    print(f"CLIP: fp16 vs f32 embeddings ‖a−b‖/‖b‖ = {rel(e16, e32):.3e}")
    save_file({"image_embeds_f16": e16.copy()}, CLIP_OUT)
    print("wrote", CLIP_OUT)


class MetaF16:
    """Meta's llama/model.py forward (no KV cache) with its fp16 casts."""

    def __init__(self, sd, params, dtype):
        self.w = {k: v.to(dtype) for k, v in sd.items() if k != "rope.freqs"}
        self.dtype = dtype
        self.dim = params["dim"]
        self.n_heads = params["n_heads"]
        self.n_kv = params.get("n_kv_heads") or self.n_heads
        self.n_layers = params["n_layers"]
        self.eps = params["norm_eps"]
        self.hd = self.dim // self.n_heads
        theta = params.get("rope_theta", 10000.0)
        freqs = 1.0 / (theta ** (torch.arange(0, self.hd, 2)[: self.hd // 2].float() / self.hd))
        t = torch.arange(128, dtype=torch.float32)
        self.freqs_cis = torch.polar(torch.ones(128, self.hd // 2), torch.outer(t, freqs))

    def norm(self, x, w):
        xf = x.float()
        return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)).type_as(x) * w

    def rope(self, x, fc):
        xc = torch.view_as_complex(x.float().reshape(*x.shape[:-1], -1, 2))
        fc = fc.view(1, xc.shape[1], 1, xc.shape[-1])
        return torch.view_as_real(xc * fc).flatten(3).type_as(x)

    def forward(self, tokens):
        b, s = tokens.shape
        h = self.w["tok_embeddings.weight"][tokens]
        fc = self.freqs_cis[:s]
        mask = None
        if s > 1:
            mask = torch.triu(torch.full((s, s), float("-inf")), diagonal=1).type_as(h)
        rep = self.n_heads // self.n_kv
        for i in range(self.n_layers):
            p = f"layers.{i}."
            x = self.norm(h, self.w[p + "attention_norm.weight"])
            a = p + "attention."
            q = (x @ self.w[a + "wq.weight"].T).view(b, s, self.n_heads, self.hd)
            k = (x @ self.w[a + "wk.weight"].T).view(b, s, self.n_kv, self.hd)
            v = (x @ self.w[a + "wv.weight"].T).view(b, s, self.n_kv, self.hd)
            q, k = self.rope(q, fc), self.rope(k, fc)
            k = k[:, :, :, None, :].expand(b, s, self.n_kv, rep, self.hd).reshape(b, s, -1, self.hd)
            v = v[:, :, :, None, :].expand(b, s, self.n_kv, rep, self.hd).reshape(b, s, -1, self.hd)
            q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
            scores = q @ k.transpose(2, 3) / math.sqrt(self.hd)
            if mask is not None:
                scores = scores + mask
            scores = torch.softmax(scores.float(), dim=-1).type_as(q)
            out = (scores @ v).transpose(1, 2).reshape(b, s, -1)
            h = h + out @ self.w[a + "wo.weight"].T
            x = self.norm(h, self.w[p + "ffn_norm.weight"])
            f = p + "feed_forward."
            g = torch.nn.functional.silu(x @ self.w[f + "w1.weight"].T) * (x @ self.w[f + "w3.weight"].T)
            h = h + g @ self.w[f + "w2.weight"].T
        h = self.norm(h, self.w["norm.weight"])
        return (h @ self.w["output.weight"].T).float()

    def greedy(self, prompt, steps):
        ids = prompt.clone()
        for _ in range(steps):
            nxt = self.forward(ids)[:, -1].argmax(-1, keepdim=True)
            ids = torch.cat([ids, nxt], dim=1)
        return ids


def llama_part():
    sd = torch.load(os.path.join(LLAMA, "meta_1", "consolidated.00.pth"), map_location="cpu", weights_only=True)
    with open(os.path.join(LLAMA, "meta_1", "params.json")) as f:
        params = json.load(f)
    io = load_file(os.path.join(LLAMA, "io.safetensors"))
    ids = torch.from_numpy(io["input_ids"])
    prompt = torch.from_numpy(io["gen_prompt"])
    m16 = MetaF16(sd, params, torch.float16)
    m32 = MetaF16(sd, params, torch.float32)
    with torch.no_grad():
        l16 = m16.forward(ids).numpy()
        l32 = m32.forward(ids).numpy()
        n = io["gen_greedy"].shape[1]
        g16 = m16.greedy(prompt, n)[:, prompt.shape[1]:].numpy()
        g32 = m32.greedy(prompt, n)[:, prompt.shape[1]:].numpy()
    print(f"LLaMA: fp16 vs f32 logits ‖a−b‖/‖b‖ = {rel(l16, l32):.3e}; "
          f"f32 vs the committed float64 reference {rel(l32, io['logits']):.3e}")
    print("LLaMA greedy fp16:", g16.tolist(), "f32:", g32.tolist(), "committed:", io["gen_greedy"].tolist())
    top16, top32 = l16.argmax(-1), l32.argmax(-1)
    print(f"LLaMA argmax positions that differ fp16 vs f32: {(top16 != top32).sum()} of {top16.size}")
    out = os.path.join(LLAMA, "f16.safetensors")
    save_file({"logits_f16": l16.copy(), "gen_greedy_f16": g16.astype(np.int64)}, out)
    print("wrote", out)


if __name__ == "__main__":
    torch.manual_seed(0)
    clip_part()
    llama_part()
