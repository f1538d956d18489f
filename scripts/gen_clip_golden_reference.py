"""Reference CLIP image embeddings for the golden V2L checkpoint's tower.

`../shared/golden/v2l-tiny/checkpoint.pth` stores the official model's CLIP
tower (`global_encoder.*`) in fp16. This script runs OpenAI CLIP's
`VisionTransformer` (the `openai-clip` package's `clip/model.py`, whose
vision tower computes the same thing as the V2L repository's vendored
`models/global_encoder/model.py`; that copy only also returns the patch
tokens) on those weights, converted to float64, for the golden `input_clip`
images, and writes

  crates/v2l-clip/tests/fixtures/golden/golden_clip_reference.safetensors
    image_embeds   [2, 768] f32  ln_post(cls) @ proj, not normalised (float64 math)
    patch_embeds   [2, 16, 768] f32  ln_post(patches) @ proj (the V2L variant's 2nd output)

It also prints how far the golden `global_embedding` is from the same
computation: about 3.9e-4 (‖a−b‖/‖b‖), for torch float32 and float64 alike.
The golden value was evidently computed before the LayerNorm, class and
positional parameters were rounded to fp16 (OpenAI's `convert_weights` leaves
those in f32), so no computation on the saved checkpoint reproduces it to
better than that; the Rust test holds the tower to this reference at 1e-5 and
to the golden embedding at the checkpoint's own floor.

Run by hand (never in CI):
    /tmp/venv-fix/bin/python scripts/gen_clip_golden_reference.py
Versions used: torch 2.15.0, openai-clip 1.0.1, safetensors 0.8.0, numpy 2.4.6.
"""

import importlib.util
import os
import sys

import numpy as np
import torch
from safetensors.numpy import load_file, save_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GOLDEN = os.path.join(ROOT, "..", "shared", "golden", "v2l-tiny")
OUT = os.path.join(ROOT, "crates", "v2l-clip", "tests", "fixtures", "golden")


def clip_model_module():
    # clip/__init__ pulls in torchvision and friends; the model file needs torch only.
    import site

    for base in site.getsitepackages():
        path = os.path.join(base, "clip", "model.py")
        if os.path.exists(path):
            spec = importlib.util.spec_from_file_location("clip_model", path)
            mod = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(mod)
            return mod
    sys.exit("openai-clip is not installed (pip install --no-deps openai-clip==1.0.1)")


def main():
    cm = clip_model_module()
    global ln_forward_f32
    ln_forward_f32 = cm.LayerNorm.forward
    # OpenAI's LayerNorm subclass casts to float32 (for fp16 models); in a
    # float64 model that cast would lose precision, so use the plain forward.
    cm.LayerNorm.forward = torch.nn.LayerNorm.forward
    ckpt = torch.load(os.path.join(GOLDEN, "checkpoint.pth"), map_location="cpu", weights_only=False)
    prefix = "global_encoder."
    sd = {k[len(prefix):]: v for k, v in ckpt["state_dict"].items() if k.startswith(prefix)}
    width = sd["conv1.weight"].shape[0]
    patch = sd["conv1.weight"].shape[-1]
    grid = round((sd["positional_embedding"].shape[0] - 1) ** 0.5)
    layers = len({k.split(".")[2] for k in sd if k.startswith("transformer.resblocks.")})
    model = cm.VisionTransformer(
        input_resolution=patch * grid,
        patch_size=patch,
        width=width,
        layers=layers,
        heads=width // 64,
        output_dim=sd["proj"].shape[1],
    ).double()
    model.load_state_dict({k: v.double() for k, v in sd.items()})
    model.eval()

    expected = load_file(os.path.join(GOLDEN, "expected.safetensors"))
    x = torch.from_numpy(expected["input_clip"]).double()
    with torch.no_grad():
        y = model.conv1(x).reshape(x.shape[0], width, -1).permute(0, 2, 1)
        cls = model.class_embedding + torch.zeros(x.shape[0], 1, width, dtype=y.dtype)
        y = torch.cat([cls, y], dim=1) + model.positional_embedding
        y = model.ln_pre(y).permute(1, 0, 2)
        y = model.transformer(y).permute(1, 0, 2)
        y = model.ln_post(y) @ model.proj
        emb, patches = y[:, 0, :], y[:, 1:, :]
        # Same as the package's own forward (which returns only the CLS embedding).
        assert torch.allclose(emb, model(x), rtol=0, atol=1e-12)

    ref = expected["global_embedding"].astype(np.float64)
    e = emb.numpy()
    e = e / np.linalg.norm(e, axis=1, keepdims=True)
    print("golden global_embedding vs float64 recomputation: ‖a−b‖/‖b‖ =",
          np.linalg.norm(e - ref) / np.linalg.norm(ref))
    os.makedirs(OUT, exist_ok=True)
    save_file(
        {
            "image_embeds": emb.float().numpy(),
            "patch_embeds": patches.float().numpy().copy(),
        },
        os.path.join(OUT, "golden_clip_reference.safetensors"),
    )
    print("wrote", os.path.join(OUT, "golden_clip_reference.safetensors"))

    # The released OpenAI `.pt` files are TorchScript archives; trace the same
    # tower (f32 weights) under `visual.` the way those files name it.
    class Wrapper(torch.nn.Module):
        def __init__(self, visual):
            super().__init__()
            self.visual = visual

        def forward(self, images):
            return self.visual(images)

    cm.LayerNorm.forward = ln_forward_f32
    vision = cm.VisionTransformer(
        input_resolution=patch * grid,
        patch_size=patch,
        width=width,
        layers=layers,
        heads=width // 64,
        output_dim=sd["proj"].shape[1],
    )
    vision.load_state_dict({k: v.float() for k, v in sd.items()})
    traced = torch.jit.trace(Wrapper(vision).eval(), torch.zeros(1, 3, patch * grid, patch * grid))
    path = os.path.join(OUT, "tiny_vision_torchscript.pt")
    traced.save(path)
    print("wrote", path)


if __name__ == "__main__":
    main()
