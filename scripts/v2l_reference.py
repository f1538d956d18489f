"""PyTorch reference of the V2L tokenizer (local CNN + quantisers + cross-attention decoder).

Written from `/work/shared/spec/v2l-official.md` sections 3.1-3.5 (not copied from the official
repository). Module and parameter names equal the official state-dict keys, so
`V2LModel.load_state_dict(sd, strict=True)` works on an official checkpoint once the
`global_encoder.*`, `discriminator.*` and `perceptual_loss.*` entries are dropped
(see `load_official_state_dict`).

The CLIP vision tower (global encoder) is not part of this module: the global branch takes a
precomputed global image embedding [B, embed_dim] (`ln_post(cls) @ proj`; normalised here).

Importable by file path (e.g. `importlib.util.spec_from_file_location`) or with `scripts/` on
`sys.path`. Only torch is needed.

Validation against the golden data of `/work/shared/golden/v2l-tiny` (official PyTorch code):

    /tmp/venv-fix/bin/python scripts/v2l_reference.py [/work/shared/golden/v2l-tiny]
"""

import json
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

SKIP_PREFIXES = ("global_encoder.", "discriminator.", "perceptual_loss.")
QLOSS_BETA = 0.33


def swish(x):
    return x * torch.sigmoid(x)


def group_norm(channels):
    return nn.GroupNorm(num_groups=32, num_channels=channels, eps=1e-6, affine=True)


class ResnetBlock(nn.Module):
    """norm1, swish, conv1, norm2, swish, dropout, conv2, plus shortcut (1x1 nin if channels change).

    No time embedding (temb_ch = 0)."""

    def __init__(self, in_channels, out_channels=None, dropout=0.0):
        super().__init__()
        out_channels = in_channels if out_channels is None else out_channels
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.norm1 = group_norm(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=1, padding=1)
        self.norm2 = group_norm(out_channels)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, stride=1, padding=1)
        if in_channels != out_channels:
            self.nin_shortcut = nn.Conv2d(in_channels, out_channels, 1, stride=1, padding=0)

    def forward(self, x):
        h = self.conv1(swish(self.norm1(x)))
        h = self.conv2(self.dropout(swish(self.norm2(h))))
        if self.in_channels != self.out_channels:
            x = self.nin_shortcut(x)
        return x + h


class AttnBlock(nn.Module):
    """Single-head spatial self-attention with 1x1 convs, scale C^-0.5, residual."""

    def __init__(self, channels):
        super().__init__()
        self.norm = group_norm(channels)
        self.q = nn.Conv2d(channels, channels, 1)
        self.k = nn.Conv2d(channels, channels, 1)
        self.v = nn.Conv2d(channels, channels, 1)
        self.proj_out = nn.Conv2d(channels, channels, 1)

    def forward(self, x):
        h = self.norm(x)
        q, k, v = self.q(h), self.k(h), self.v(h)
        b, c, hh, ww = q.shape
        q = q.reshape(b, c, hh * ww).permute(0, 2, 1)  # [b, n, c]
        k = k.reshape(b, c, hh * ww)  # [b, c, n]
        w = torch.bmm(q, k) * (float(c) ** -0.5)  # [b, n_query, n_key]
        w = torch.softmax(w, dim=2)
        v = v.reshape(b, c, hh * ww)  # [b, c, n]
        out = torch.bmm(v, w.permute(0, 2, 1))  # [b, c, n_query]
        out = self.proj_out(out.reshape(b, c, hh, ww))
        return x + out


class Downsample(nn.Module):
    """Zero-pad (left 0, right 1, top 0, bottom 1), then 3x3 conv stride 2 pad 0."""

    def __init__(self, channels):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=0)

    def forward(self, x):
        return self.conv(F.pad(x, (0, 1, 0, 1), mode="constant", value=0.0))


class Upsample(nn.Module):
    """Nearest-neighbour x2, then 3x3 conv pad 1."""

    def __init__(self, channels):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=1, padding=1)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class CrossAttention(nn.Module):
    """Multi-head cross-attention; q from the features, k/v from the context; no bias on q/k/v.

    inner = heads * dim_head; scale dim_head^-0.5; output Linear(inner, query_dim) with bias."""

    def __init__(self, query_dim, context_dim, heads, dim_head, dropout=0.0):
        super().__init__()
        inner = heads * dim_head
        self.heads = heads
        self.dim_head = dim_head
        self.scale = dim_head ** -0.5
        self.to_q = nn.Linear(query_dim, inner, bias=False)
        self.to_k = nn.Linear(context_dim, inner, bias=False)
        self.to_v = nn.Linear(context_dim, inner, bias=False)
        self.to_out = nn.Sequential(nn.Linear(inner, query_dim), nn.Dropout(dropout))

    def forward(self, x, context):
        # x [b, n, query_dim], context [b, m, context_dim]
        b, n, _ = x.shape
        m = context.shape[1]
        hd, dh = self.heads, self.dim_head
        q = self.to_q(x).reshape(b, n, hd, dh).permute(0, 2, 1, 3)  # [b, h, n, d]
        k = self.to_k(context).reshape(b, m, hd, dh).permute(0, 2, 1, 3)  # [b, h, m, d]
        v = self.to_v(context).reshape(b, m, hd, dh).permute(0, 2, 1, 3)
        sim = torch.matmul(q, k.transpose(-1, -2)) * self.scale  # [b, h, n, m]
        attn = torch.softmax(sim, dim=-1)
        out = torch.matmul(attn, v)  # [b, h, n, d]
        out = out.permute(0, 2, 1, 3).reshape(b, n, hd * dh)
        return self.to_out(out)


class Encoder(nn.Module):
    def __init__(self, *, ch, ch_mult, num_res_blocks, attn_resolutions, resolution, in_channels,
                 z_channels, dropout=0.0, double_z=False, out_ch=3, **_ignored):
        super().__init__()
        self.ch = ch
        self.num_resolutions = len(ch_mult)
        self.num_res_blocks = num_res_blocks
        self.conv_in = nn.Conv2d(in_channels, ch, 3, stride=1, padding=1)
        in_ch_mult = (1,) + tuple(ch_mult)
        curr_res = resolution
        self.down = nn.ModuleList()
        for i in range(self.num_resolutions):
            block_in = ch * in_ch_mult[i]
            block_out = ch * ch_mult[i]
            blocks = nn.ModuleList()
            attns = nn.ModuleList()
            for _ in range(num_res_blocks):
                blocks.append(ResnetBlock(block_in, block_out, dropout))
                block_in = block_out
                if curr_res in attn_resolutions:
                    attns.append(AttnBlock(block_in))
            level = nn.Module()
            level.block = blocks
            level.attn = attns
            if i != self.num_resolutions - 1:
                level.downsample = Downsample(block_in)
                curr_res = curr_res // 2
            self.down.append(level)
        self.mid = nn.Module()
        self.mid.block_1 = ResnetBlock(block_in, block_in, dropout)
        self.mid.attn_1 = AttnBlock(block_in)
        self.mid.block_2 = ResnetBlock(block_in, block_in, dropout)
        self.norm_out = group_norm(block_in)
        self.conv_out = nn.Conv2d(block_in, 2 * z_channels if double_z else z_channels, 3,
                                  stride=1, padding=1)

    def forward(self, x):
        h = self.conv_in(x)
        for i, level in enumerate(self.down):
            for j in range(self.num_res_blocks):
                h = level.block[j](h)
                if len(level.attn) > 0:
                    h = level.attn[j](h)
            if i != self.num_resolutions - 1:
                h = level.downsample(h)
        h = self.mid.block_1(h)
        h = self.mid.attn_1(h)
        h = self.mid.block_2(h)
        return self.conv_out(swish(self.norm_out(h)))


class Decoder(nn.Module):
    def __init__(self, *, ch, ch_mult, num_res_blocks, attn_resolutions, resolution, in_channels=3,
                 z_channels, out_ch=3, dropout=0.0, double_z=False, context_dim=768,
                 cross_heads=8, **_ignored):
        super().__init__()
        self.num_resolutions = len(ch_mult)
        self.num_res_blocks = num_res_blocks
        block_in = ch * ch_mult[-1]
        curr_res = resolution // 2 ** (self.num_resolutions - 1)
        self.conv_in = nn.Conv2d(z_channels, block_in, 3, stride=1, padding=1)
        self.mid = nn.Module()
        self.mid.block_1 = ResnetBlock(block_in, block_in, dropout)
        self.mid.attn_1 = AttnBlock(block_in)
        self.mid.cross_attn_1 = CrossAttention(query_dim=block_in, context_dim=context_dim,
                                               heads=cross_heads, dim_head=block_in,
                                               dropout=dropout)
        self.mid.block_2 = ResnetBlock(block_in, block_in, dropout)
        levels = [None] * self.num_resolutions
        for i in reversed(range(self.num_resolutions)):
            block_out = ch * ch_mult[i]
            blocks = nn.ModuleList()
            attns = nn.ModuleList()
            for _ in range(num_res_blocks + 1):
                blocks.append(ResnetBlock(block_in, block_out, dropout))
                block_in = block_out
                if curr_res in attn_resolutions:
                    attns.append(AttnBlock(block_in))
            level = nn.Module()
            level.block = blocks
            level.attn = attns
            if i != 0:
                level.upsample = Upsample(block_in)
                curr_res = curr_res * 2
            levels[i] = level
        self.up = nn.ModuleList(levels)  # stored by level index, run from last to 0
        self.norm_out = group_norm(block_in)
        self.conv_out = nn.Conv2d(block_in, out_ch, 3, stride=1, padding=1)

    def forward(self, z, context):
        h = self.conv_in(z)
        h = self.mid.block_1(h)
        h = self.mid.attn_1(h)
        b, c, hh, ww = h.shape
        tokens = h.reshape(b, c, hh * ww).permute(0, 2, 1)
        # no residual, no pre-norm: the cross-attention output replaces h
        h = self.mid.cross_attn_1(tokens, context).permute(0, 2, 1).reshape(b, c, hh, ww)
        h = self.mid.block_2(h)
        for i in reversed(range(self.num_resolutions)):
            level = self.up[i]
            for j in range(self.num_res_blocks + 1):
                h = level.block[j](h)
                if len(level.attn) > 0:
                    h = level.attn[j](h)
            if i != 0:
                h = level.upsample(h)
        return self.conv_out(swish(self.norm_out(h)))


class V2LModel(nn.Module):
    def __init__(self, ddconfig, embed_dim=768, n_local=32000, n_global=11908):
        super().__init__()
        self.embed_dim = embed_dim
        self.encoder = Encoder(**ddconfig)
        self.decoder = Decoder(**ddconfig, context_dim=embed_dim)
        z = ddconfig["z_channels"]
        self.quant_conv = nn.Conv2d(z, embed_dim, 1)
        self.post_quant_conv = nn.Conv2d(embed_dim, z, 1)
        self.tok_embeddings = nn.Embedding(n_local, embed_dim)
        self.tok_embeddings.weight.requires_grad_(False)
        self.codebook_projection = nn.Linear(embed_dim, embed_dim)
        self.tok_embeddings_global = nn.Embedding(n_global, embed_dim)
        self.tok_embeddings_global.weight.requires_grad_(False)

    # ---- local branch ------------------------------------------------------------------
    def projected_codebook(self):
        return self.codebook_projection(self.tok_embeddings.weight)

    def encode_features(self, x):
        """Returns (encoder_out, quant_conv_out) before normalisation."""
        enc = self.encoder(x)
        return enc, self.quant_conv(enc)

    @staticmethod
    def normalise(feat):
        # L2 over channels per position, no epsilon
        return feat / feat.norm(dim=1, keepdim=True)

    @staticmethod
    def local_distances(z_flat, w):
        return (z_flat.pow(2).sum(dim=1, keepdim=True) + w.pow(2).sum(dim=1)[None, :]
                - 2.0 * z_flat @ w.t())

    def quantize(self, z):
        """z [B,C,H,W] (normalised). Returns (z_q straight-through [B,C,H,W], qloss, ids [B,H*W])."""
        b, c, hh, ww = z.shape
        z_flat = z.permute(0, 2, 3, 1).reshape(-1, c)  # row-major (h, w)
        w = self.projected_codebook()
        d = self.local_distances(z_flat, w)
        idx = torch.argmin(d, dim=1)
        zq = w[idx].reshape(b, hh, ww, c).permute(0, 3, 1, 2)
        qloss = torch.mean((zq.detach() - z) ** 2) + QLOSS_BETA * torch.mean((zq - z.detach()) ** 2)
        zq = z + (zq - z).detach()
        return zq, qloss, idx.reshape(b, hh * ww)

    # ---- global branch -----------------------------------------------------------------
    def global_distances(self, global_embedding):
        g = global_embedding.float() if global_embedding.dtype == torch.float16 else global_embedding
        g = g / g.norm(dim=-1, keepdim=True)
        e = self.tok_embeddings_global.weight
        return (g.pow(2).sum(dim=1, keepdim=True) + e.pow(2).sum(dim=1)[None, :]
                - 2.0 * g @ e.t())

    def global_quantize(self, global_embedding, k):
        """Returns (context [B,k,D] raw global rows, ids [B,k] by ascending distance)."""
        d = self.global_distances(global_embedding)
        _, ids = torch.topk(-d, k, dim=1)
        return self.tok_embeddings_global.weight[ids], ids

    # ---- decoding ----------------------------------------------------------------------
    def decode(self, quant, context):
        return self.decoder(self.post_quant_conv(quant), context)

    def decode_from_ids(self, global_ids, local_ids, grid):
        hh, ww = grid
        w = self.projected_codebook()
        b = local_ids.shape[0]
        quant = w[local_ids.reshape(-1)].reshape(b, hh, ww, -1).permute(0, 3, 1, 2)
        context = self.tok_embeddings_global.weight[global_ids]
        return self.decode(quant, context)

    def forward(self, x, global_embedding, k=21):
        """Full tokenise + reconstruct. Returns a dict of the intermediate tensors."""
        enc, qc = self.encode_features(x)
        zq, qloss, local_ids = self.quantize(self.normalise(qc))
        context, global_ids = self.global_quantize(global_embedding, k)
        dec = self.decode(zq, context)
        return {
            "encoder_out": enc,
            "quant_conv_out": qc,
            "local_ids": local_ids,
            "global_ids": global_ids,
            "quantized": zq,
            "qloss": qloss.reshape(1),
            "decoded": dec,
        }


def filter_state_dict(sd):
    return {k: v for k, v in sd.items() if not k.startswith(SKIP_PREFIXES)}


def build_from_config(cfg):
    return V2LModel(cfg["ddconfig"], cfg["embed_dim"], cfg["n_local"], cfg["n_global"])


def rel_err(a, b):
    a = a.double()
    b = b.double()
    return float((a - b).abs().max() / b.abs().max())


# The golden decoder outputs carry f32 rounding of order 1e-4: in the golden weights the
# cross-attention output is nearly constant inside each GroupNorm group of the following
# `mid.block_2.norm1` (per-group std ~3e-4 against values ~3e-2), so rounding at 1e-7 in the
# cross-attention is amplified ~500x. The same model in f32 and in f64 differs by ~1e-4 there, and
# the f64 model differs from the golden by ~7e-5. Those two tensors get a looser tolerance.
TOL = 1e-5
TOL_DECODED = 2e-4


def validate_golden(golden_dir):
    import copy

    from safetensors.torch import load_file

    torch.set_num_threads(1)
    cfg = json.load(open(os.path.join(golden_dir, "config.json")))
    ck = torch.load(os.path.join(golden_dir, "checkpoint.pth"), map_location="cpu",
                    weights_only=False)
    model = build_from_config(cfg)
    model.load_state_dict(filter_state_dict(ck["state_dict"]), strict=True)
    model.eval()
    model64 = copy.deepcopy(model).double()
    exp = load_file(os.path.join(golden_dir, "expected.safetensors"))

    def run(m, dtype):
        with torch.no_grad():
            out = m(exp["input_image"].to(dtype), exp["global_embedding"].to(dtype), k=cfg["k"])
            out["projected_codebook"] = m.projected_codebook()
            grid = out["quant_conv_out"].shape[2:]
            out["decoded_from_ids"] = m.decode_from_ids(out["global_ids"], out["local_ids"], grid)
            out["decoded_from_golden_ids"] = m.decode_from_ids(exp["global_ids"], exp["local_ids"],
                                                               grid)
        return out

    out, out64 = run(model, torch.float32), run(model64, torch.float64)
    ok = True
    for name in ["encoder_out", "quant_conv_out", "projected_codebook", "local_ids", "global_ids",
                 "quantized", "qloss", "decoded", "decoded_from_ids", "decoded_from_golden_ids"]:
        ref = exp["decoded_from_ids" if name == "decoded_from_golden_ids" else name]
        got = out[name]
        if tuple(got.shape) != tuple(ref.shape):
            print(f"{name}: SHAPE {tuple(got.shape)} vs {tuple(ref.shape)}")
            ok = False
            continue
        if ref.dtype == torch.int64:
            n_diff = int((got != ref).sum())
            n_diff64 = int((out64[name] != ref).sum())
            print(f"{name}: {n_diff} / {ref.numel()} ids differ (f64 model: {n_diff64})")
            ok &= n_diff == 0 and n_diff64 == 0
        else:
            tol = TOL_DECODED if name.startswith("decoded") else TOL
            e, e64 = rel_err(got, ref), rel_err(out64[name], ref)
            e3264 = rel_err(got, out64[name])
            print(f"{name}: max rel err f32 {e:.3e}, f64 {e64:.3e} (f32 vs f64 {e3264:.3e}; "
                  f"tol {tol:.0e})")
            ok &= e <= tol and e64 <= tol
    print("OK" if ok else "MISMATCH")
    return ok


if __name__ == "__main__":
    d = sys.argv[1] if len(sys.argv) > 1 else "/work/shared/golden/v2l-tiny"
    sys.exit(0 if validate_golden(d) else 1)
