#!/usr/bin/env python3
"""Seconds per training iteration of the reference (zh460045050/V2L-Tokenizer @ 80e50ac) in
PyTorch on the CPU: the PyTorch side of `scripts/bench_train.sh`, run by hand, never in CI.

One iteration is `training/engine_training.py`'s: the generator pass of the official
`VQModel_LLaMA.forward` (L1, qloss, LPIPS-VGG with its dropout on as in training, adaptive GAN
weight), backward, Adam step, then the second forward and the discriminator's backward and step.
The official modules are imported from the checkout at run time (as
scripts/gen_train_step_fixture.py does, whose import helper this reuses), never vendored.

Same work as the Rust side (crates/v2l-train/examples/bench_train_step.rs), with random weights:
* the global branch gets a random unit image embedding per image from a stub instead of the
  frozen CLIP ViT-L/14 forward (both sides skip that forward); the top-k search over the global
  codebook runs;
* `tiny` = configs/fashion-mnist-tiny.toml's networks (the official Decoder's cross-attention
  context is always 768 wide, so its global codebook is 768 wide here, 64 on the Rust side);
  `official` = vqgan_configs/v2l.yaml's ddconfig, embed_dim 768, 32,000 local and 11,908 global
  rows, k 21, discriminator ndf 64, 128 px;
* both past disc_start (both steps run), float32, torch.set_num_threads(--threads).

Prints one JSON line: seconds per iteration (median of --iters after one warm-up) and the
process's peak resident memory (ru_maxrss).

    /tmp/venv/bin/pip install torch torchvision numpy einops safetensors
    /tmp/venv/bin/python scripts/bench_train_torch.py --config official --batch 8 --iters 2
"""

import argparse
import json
import os
import resource
import statistics
import sys
import time
from argparse import Namespace
from pathlib import Path

import torch
import torchvision  # noqa: F401  (before import_official stubs tqdm, which torch's tracer probes)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gen_train_step_fixture import import_official  # noqa: E402

CONFIGS = {
    "tiny": dict(ddconfig=dict(double_z=False, z_channels=32, resolution=64, in_channels=3,
                               out_ch=3, ch=32, ch_mult=[1, 2], num_res_blocks=1,
                               attn_resolutions=[], dropout=0.0),
                 embed_dim=64, n_local=512, n_global=16, k=4, ndf=16, size=32),
    "official": dict(ddconfig=dict(double_z=False, z_channels=256, resolution=256, in_channels=3,
                                   out_ch=3, ch=128, ch_mult=[1, 2, 2, 4], num_res_blocks=2,
                                   attn_resolutions=[16], dropout=0.0),
                     embed_dim=768, n_local=32000, n_global=11908, k=21, ndf=64, size=128),
}


class EmbeddingStub(torch.nn.Module):
    """The global encoder: a fixed random unit embedding per image (CLIP's forward skipped)."""

    def __init__(self, batch):
        super().__init__()
        g = torch.Generator().manual_seed(3)
        e = torch.randn(batch, 768, generator=g)
        self.e = e / e.norm(dim=1, keepdim=True)

    def forward(self, global_input):
        return self.e.clone(), None


def build(mods, c, batch):
    ed_mod, disc_mod, lpips_mod, v2l_mod = mods
    args = Namespace(embed_dim=c["embed_dim"], quantizer_type="org", stage=1, tuning_codebook=0,
                     use_cblinear=1, use_crossatt_dec=1, n_vision_words=c["n_local"], rate_q=1.0,
                     rate_p=0.1, rate_d=0.75, disc_start=0)
    V = v2l_mod.VQModel_LLaMA
    m = V.__new__(V)
    torch.nn.Module.__init__(m)
    # Attributes as VQModel_LLaMA.__init__ sets them (models_v2l.py:40-120).
    m.image_key = "image"
    m.args = args
    m.quantize_type = args.quantizer_type
    m.e_dim = args.embed_dim
    m.remap = None
    m.sane_index_shape = False
    m.stage = args.stage
    m.encoder = ed_mod.Encoder(**c["ddconfig"])
    m.decoder = ed_mod.Decoder(**c["ddconfig"])
    m.global_encoder = EmbeddingStub(batch)
    z = c["ddconfig"]["z_channels"]
    m.quant_conv = torch.nn.Conv2d(z, args.embed_dim, 1)
    m.post_quant_conv = torch.nn.Conv2d(args.embed_dim, z, 1)
    m.criterion = torch.nn.CrossEntropyLoss()
    m.tok_embeddings = torch.nn.Embedding(c["n_local"], args.embed_dim)
    m.tok_embeddings.weight.requires_grad = False
    m.codebook_projection = torch.nn.Linear(args.embed_dim, args.embed_dim)
    m.tok_embeddings_global = torch.nn.Embedding(c["n_global"], 768)
    m.tok_embeddings_global.weight.requires_grad = False
    m.discriminator = disc_mod.NLayerDiscriminator(
        input_nc=3, n_layers=2, use_actnorm=False, ndf=c["ndf"]).apply(disc_mod.weights_init)
    # LPIPS: the checkout's lin layers (models/vgg.pth), a randomly initialised VGG16 backbone
    # (the same work as the real weights).
    m.perceptual_loss = lpips_mod.LPIPS().eval()
    m.perceptual_weight = args.rate_p
    return m


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ref", default=os.environ.get("V2L_REF", "/tmp/v2lref"))
    ap.add_argument("--config", choices=sorted(CONFIGS), default="tiny")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    c = CONFIGS[a.config]
    model = build(import_official(a.ref), c, a.batch)
    ae = [p for n in ("encoder", "decoder", "tok_embeddings", "quant_conv",
                      "codebook_projection", "post_quant_conv")
          for p in getattr(model, n).parameters()]
    opt_ae = torch.optim.Adam(ae, lr=4.5e-4, betas=(0.5, 0.9), eps=1e-7)
    opt_disc = torch.optim.Adam(model.discriminator.parameters(), lr=4.5e-4, betas=(0.5, 0.9),
                                eps=1e-7)
    s = c["size"]
    x = (torch.arange(a.batch * 3 * s * s) * 37 % 101).float().reshape(a.batch, 3, s, s) / 50 - 1
    clip_images = torch.zeros(a.batch, 3, 224, 224)
    times = []
    for i in range(a.iters + 1):
        start = time.perf_counter()
        model.train(True)  # engine_training.py:30 (LPIPS dropout on, as in training)
        loss, *_ = model(x, clip_images, 1 + i, step=0, k=c["k"])
        opt_ae.zero_grad()
        loss.backward()
        opt_ae.step()
        d_loss, *_ = model(x, clip_images, 1 + i, step=1, k=c["k"])
        opt_disc.zero_grad()
        d_loss.backward()
        opt_disc.step()
        if i > 0:
            times.append(time.perf_counter() - start)
    med = statistics.median(times)
    print(json.dumps({
        "impl": f"PyTorch {torch.__version__}",
        "config": a.config, "batch": a.batch, "threads": a.threads,
        "median_s": round(med, 4), "min_s": round(min(times), 4), "timed": len(times),
        "steps_per_s": round(1 / med, 4),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }))


if __name__ == "__main__":
    main()
