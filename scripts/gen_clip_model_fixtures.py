#!/usr/bin/env python3
"""Generates the tiny random CLIP models of `crates/v2l-clip/tests/fixtures/model/`.

Run by hand (never in CI), from the workspace root, on CPU:

    python3 -m venv /tmp/venv-fix
    /tmp/venv-fix/bin/pip install numpy torch transformers safetensors
    /tmp/venv-fix/bin/pip install --no-deps openai-clip==1.0.1 open_clip_torch==3.3.0
    /tmp/venv-fix/bin/python scripts/gen_clip_model_fixtures.py

Versions used for the committed files: torch 2.15.0, transformers 5.24.0, safetensors 0.8.0,
numpy 2.4.6, openai-clip 1.0.1 (only `clip/model.py`, loaded by file path because
`import clip` needs `pkg_resources`). Everything is seeded and runs on CPU, so a rerun
rewrites the same values (the files may differ in bytes only if a library changes its
serialisation).

Two models, both `transformers.CLIPModel` with `hidden_act = "quick_gelu"`, layer_norm_eps 1e-5,
every parameter re-initialised from a seeded generator: Linear/Conv weights and biases
N(0, 0.05^2); token, position and class embeddings N(0, 0.5^2); LayerNorm weight 1 + 0.1 N,
bias 0.1 N; logit_scale ln(1/0.07) + 0.1 N. Exception: in "heads4" the q_proj/k_proj weights are
N(0, 0.15^2) so its attention is peaked (layer-0 vision weights 1e-4..0.79 against 1/17
uniform); with 0.05 the wrong 1-head split changed the embeddings by only 0.7% / 1.2%, now by
3.9% (image) / 10.5% (text). Tiny's layer-0 vision attention spans 0.016..0.16 (uniform 0.059);
its embeddings have |max| ~1.5-1.7, std ~0.53, hidden states |max| ~3-4.3.

* "tiny": text vocab 1000, width 128, MLP 256, 2 layers, 2 heads, context 77, bos 998,
  eos 999, pad 0; vision width 128, MLP 256, 2 layers, 2 heads, image 32, patch 8 (16 patches
  + CLS = 17 tokens); projection_dim 64. NB the MLP is 2x the width, not OpenAI's 4x.
* "heads4": text vocab 300, width 64, MLP 128, 1 layer, 4 heads, context 16, bos 298, eos 299,
  pad 0; vision width 64, MLP 128, 1 layer, 4 heads, image 16, patch 4; projection_dim 32.
  OpenAI's `build_model` would infer heads = 64 // 64 = 1, which is wrong for this model.

Files written (all little-endian, float32 unless stated):

* `tiny_hf/{config.json,model.safetensors}`, `heads4_hf/...`: `save_pretrained(...,
  safe_serialization=True)`. Keys (N = layer index), standard HF naming:
    vision_model.embeddings.patch_embedding.weight          [D,3,P,P]  (no bias)
    vision_model.embeddings.class_embedding                 [D]
    vision_model.embeddings.position_embedding.weight       [T,D]
    vision_model.pre_layrnorm.{weight,bias}                 (sic, HF's spelling)
    vision_model.encoder.layers.N.self_attn.{q,k,v,out}_proj.{weight,bias}   weight [out,in]
    vision_model.encoder.layers.N.layer_norm1.{weight,bias}
    vision_model.encoder.layers.N.mlp.fc1.{weight,bias}     [I,D]
    vision_model.encoder.layers.N.mlp.fc2.{weight,bias}     [D,I]
    vision_model.encoder.layers.N.layer_norm2.{weight,bias}
    vision_model.post_layernorm.{weight,bias}
    visual_projection.weight                                [E,D]  (no bias)
    text_model.embeddings.token_embedding.weight            [V,D]
    text_model.embeddings.position_embedding.weight         [C,D]
    text_model.encoder.layers.N.<same as vision>
    text_model.final_layer_norm.{weight,bias}
    text_projection.weight                                  [E,D]  (no bias)
    logit_scale                                             []  (0-d)
  The `position_ids` buffers are `persistent=False` in transformers 5 and are not in the file
  (the script asserts it).
* `tiny_openai.pth`, `heads4_openai.pth`: the same weights in OpenAI `clip/model.py` layout,
  `torch.save(state_dict)` (zip format), every tensor contiguous with its own storage:
    visual.conv1.weight, visual.class_embedding, visual.positional_embedding,
    visual.ln_pre.{weight,bias},
    visual.transformer.resblocks.N.attn.in_proj_weight  [3D,D] = cat(q,k,v) on dim 0
    visual.transformer.resblocks.N.attn.in_proj_bias    [3D]
    visual.transformer.resblocks.N.attn.out_proj.{weight,bias}
    visual.transformer.resblocks.N.ln_1.{weight,bias}   (= layer_norm1)
    visual.transformer.resblocks.N.mlp.c_fc.{weight,bias}   (= fc1)
    visual.transformer.resblocks.N.mlp.c_proj.{weight,bias} (= fc2)
    visual.transformer.resblocks.N.ln_2.{weight,bias}   (= layer_norm2)
    visual.ln_post.{weight,bias}, visual.proj [D,E] (= visual_projection.weight.T)
    token_embedding.weight, positional_embedding, transformer.resblocks.N.<as visual>,
    ln_final.{weight,bias}, text_projection [D,E] (= text_projection.weight.T), logit_scale []
  Key order is that of OpenAI's `CLIP.state_dict()`. No `input_resolution` /
  `context_length` / `vocab_size` entries (real JIT checkpoints may carry them).
* `tiny_openai_f16.safetensors`: the same keys, every tensor float16.
* `tiny_v2l_style.pth`: `{"state_dict": {...}, "args": argparse.Namespace(lr=1e-4,
  model="v2l", image_size=128)}`; the state dict holds every `visual.X` key renamed to
  `global_encoder.X` in float16, plus `encoder.conv_in.weight` [8,3,3,3] and `quant_conv.bias`
  [768] (random float32, unrelated to CLIP).
* `tiny_io.safetensors`, `heads4_io.safetensors`: inputs and reference outputs, computed with the
  model in float64 (`.double()`, sdpa attention: HF's eager attention
  does its softmax in float32 even in a float64 model) and stored as float32 (ids int64):
    pixel_values          [2,3,S,S] N(0,1)
    input_ids             rows [bos, random ids in 1..bos-1, eos, 0...]; tiny: 3 rows with
                          5, 20, 75 ids (the last fills all 77 positions); heads4: 2 rows with
                          3 and 14 ids (the last fills all 16)
    image_embeds          get_image_features (CLS -> post_layernorm -> visual_projection),
                          not normalised
    text_embeds           get_text_features (EOS token -> text_projection), not normalised
  tiny only:
    vision_hidden_states  [3,2,17,128]  HF `hidden_states`: [0] = after pre_layrnorm (the
                          encoder's input), [i] = output of encoder block i; the last one is
                          *before* post_layernorm (transformers 5 captures these with forward
                          hooks on CLIPEncoderLayer and does not tie the last to anything)
    vision_pooled         [2,128]   post_layernorm(last_hidden[:, 0])
    vision_patch_embeds   [2,16,64] post_layernorm(last_hidden[:, 1:]) @ visual_projection.weight.T
    text_hidden_states    [3,3,77,128]  [0] = token + position embeddings, [i] = after block i
                          (before final_layer_norm)
    text_last_hidden      [3,77,128]  final_layer_norm(text_hidden_states[-1]), i.e. HF's
                          `last_hidden_state` of the text model
    image_embeds_f16w, text_embeds_f16w  as image_embeds / text_embeds but with every weight
                          rounded to float16 and back first (still float64 compute): the
                          reference for `tiny_openai_f16.safetensors` and (vision) for
                          `tiny_v2l_style.pth`.

Text pooling (transformers 5.24 `CLIPTextModel.forward`): if `config.eos_token_id == 2` (legacy
configs from before PR #24773) it takes `input_ids.argmax(-1)` (the highest id = EOT, as OpenAI
does); otherwise the *first* position where `input_ids == eos_token_id`. With eos 999 / 299 the
second rule applies; both rules give the same positions here (tiny: 6, 21, 76; heads4: 4, 15),
which the script asserts. The text model uses a causal mask only; no attention mask is passed,
the zero padding after EOS cannot influence the EOS position.

Checks (asserted, nothing written): the layout conversion is proved by OpenAI's own
`clip/model.py`: `build_model(openai_sd)` (with `convert_weights` disabled so the weights stay
float32 exactly, and the MLP width patched to the checkpoint's, since OpenAI hard-codes 4x
width) then `.float()` agrees with HF in float32, and in float64 (OpenAI's fp16-friendly
LayerNorm subclass swapped for plain nn.LayerNorm). For heads4, `build_model`'s inferred 1 head
is shown to disagree, and the same model with its MultiheadAttention set to 4 heads agrees. HF
float32 vs float64 outputs, eager vs sdpa, and a hand-computed layer-by-layer forward of
the hidden states are also checked. "rel err" below = max |a - b| / max |b| over a tensor.
"""

import argparse
import contextlib
import importlib.util
import json
import math
import os

import numpy as np
import safetensors
import torch
import transformers
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import CLIPConfig, CLIPModel

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "crates", "v2l-clip", "tests", "fixtures", "model")

torch.manual_seed(0)
torch.use_deterministic_algorithms(True)
torch.set_num_threads(1)

SUMMARY = []


def log(msg):
    print(msg)
    SUMMARY.append(msg)


def rel_err(a, b):
    a = a.detach().double()
    b = b.detach().double()
    return ((a - b).abs().max() / b.abs().max()).item()


def check(name, a, b, tol):
    e = rel_err(a, b)
    log(f"  {name}: rel err {e:.3e} (tol {tol:.0e})")
    assert e < tol, f"{name}: {e} >= {tol}"
    return e


# --------------------------------------------------------------------------------------------
# OpenAI clip/model.py


def load_openai_clip_module():
    try:
        import clip.model as cm  # noqa: F401

        return cm
    except Exception:
        pass
    spec = importlib.util.find_spec("clip")  # locates the package without executing it
    path = os.path.join(spec.submodule_search_locations[0], "model.py")
    mspec = importlib.util.spec_from_file_location("openai_clip_model", path)
    cm = importlib.util.module_from_spec(mspec)
    mspec.loader.exec_module(cm)
    return cm


CM = load_openai_clip_module()


@contextlib.contextmanager
def openai_patches(mlp_width, plain_layernorm=False, keep_f32=True):
    """Keep build_model's weights float32, use the checkpoint's MLP width (OpenAI hard-codes 4x),
    optionally make LayerNorm run in the input dtype (for float64)."""
    orig_convert = CM.convert_weights
    orig_init = CM.ResidualAttentionBlock.__init__
    orig_ln = CM.LayerNorm.forward

    def init(self, d_model, n_head, attn_mask=None):
        orig_init(self, d_model, n_head, attn_mask)
        hidden = mlp_width[d_model]
        self.mlp.c_fc = nn.Linear(d_model, hidden)
        self.mlp.c_proj = nn.Linear(hidden, d_model)

    if keep_f32:
        CM.convert_weights = lambda model: None
    CM.ResidualAttentionBlock.__init__ = init
    if plain_layernorm:
        CM.LayerNorm.forward = nn.LayerNorm.forward
    try:
        yield
    finally:
        CM.convert_weights = orig_convert
        CM.ResidualAttentionBlock.__init__ = orig_init
        CM.LayerNorm.forward = orig_ln


def set_mha_heads(model, heads):
    for m in model.modules():
        if isinstance(m, nn.MultiheadAttention):
            m.num_heads = heads
            m.head_dim = m.embed_dim // heads


def openai_reference(osd, mlp_width, pixel_values, input_ids, dtype, heads=None):
    with openai_patches(mlp_width, plain_layernorm=dtype == torch.float64):
        model = CM.build_model({k: v.clone() for k, v in osd.items()}).float()
        if heads is not None:
            set_mha_heads(model, heads)
        model = model.to(dtype).eval()
        with torch.no_grad():
            return (
                model.encode_image(pixel_values.to(dtype)),
                model.encode_text(input_ids),
                model,
            )


# --------------------------------------------------------------------------------------------
# model construction


def make_model(text, vision, projection_dim, seed, qk_std):
    cfg = CLIPConfig(
        text_config=dict(text, projection_dim=projection_dim, hidden_act="quick_gelu", layer_norm_eps=1e-5),
        vision_config=dict(vision, projection_dim=projection_dim, hidden_act="quick_gelu", layer_norm_eps=1e-5,
                           num_channels=3),
        projection_dim=projection_dim,
    )
    model = CLIPModel(cfg).eval()
    g = torch.Generator().manual_seed(seed)

    def n(shape, std):
        return torch.randn(shape, generator=g, dtype=torch.float64).to(torch.float32) * std

    done = set()
    with torch.no_grad():
        for mname, mod in model.named_modules():
            for pname, p in mod.named_parameters(recurse=False):
                full = f"{mname}.{pname}" if mname else pname
                if isinstance(mod, nn.LayerNorm):
                    p.copy_((1.0 if pname == "weight" else 0.0) + n(p.shape, 0.1))
                elif isinstance(mod, nn.Embedding) or pname == "class_embedding":
                    p.copy_(n(p.shape, 0.5))
                elif full == "logit_scale":
                    p.copy_(math.log(1 / 0.07) + n(p.shape, 0.1))
                elif isinstance(mod, nn.Linear) and pname == "weight" and mname.endswith(("q_proj", "k_proj")):
                    p.copy_(n(p.shape, qk_std))
                elif isinstance(mod, (nn.Linear, nn.Conv2d)):
                    p.copy_(n(p.shape, 0.05))
                else:
                    raise AssertionError(f"unhandled parameter {full}")
                done.add(full)
    assert done == {k for k, _ in model.named_parameters()}
    return model


def hf_params(model):
    """The parameters only (no buffers), as float32 contiguous tensors."""
    return {k: v.detach().clone().contiguous() for k, v in model.named_parameters()}


def hf_to_openai(sd, n_vis, n_txt, order):
    o = {}

    def blocks(src, dst, n):
        for i in range(n):
            s, d = f"{src}.{i}.", f"{dst}.{i}."
            o[d + "attn.in_proj_weight"] = torch.cat([sd[s + f"self_attn.{x}_proj.weight"] for x in "qkv"], 0)
            o[d + "attn.in_proj_bias"] = torch.cat([sd[s + f"self_attn.{x}_proj.bias"] for x in "qkv"], 0)
            for w in ("weight", "bias"):
                o[d + f"attn.out_proj.{w}"] = sd[s + f"self_attn.out_proj.{w}"]
                o[d + f"ln_1.{w}"] = sd[s + f"layer_norm1.{w}"]
                o[d + f"mlp.c_fc.{w}"] = sd[s + f"mlp.fc1.{w}"]
                o[d + f"mlp.c_proj.{w}"] = sd[s + f"mlp.fc2.{w}"]
                o[d + f"ln_2.{w}"] = sd[s + f"layer_norm2.{w}"]

    v = "vision_model."
    o["visual.conv1.weight"] = sd[v + "embeddings.patch_embedding.weight"]
    o["visual.class_embedding"] = sd[v + "embeddings.class_embedding"]
    o["visual.positional_embedding"] = sd[v + "embeddings.position_embedding.weight"]
    for w in ("weight", "bias"):
        o[f"visual.ln_pre.{w}"] = sd[v + f"pre_layrnorm.{w}"]
        o[f"visual.ln_post.{w}"] = sd[v + f"post_layernorm.{w}"]
        o[f"ln_final.{w}"] = sd[f"text_model.final_layer_norm.{w}"]
    blocks(v + "encoder.layers", "visual.transformer.resblocks", n_vis)
    o["visual.proj"] = sd["visual_projection.weight"].t()
    o["token_embedding.weight"] = sd["text_model.embeddings.token_embedding.weight"]
    o["positional_embedding"] = sd["text_model.embeddings.position_embedding.weight"]
    blocks("text_model.encoder.layers", "transformer.resblocks", n_txt)
    o["text_projection"] = sd["text_projection.weight"].t()
    o["logit_scale"] = sd["logit_scale"]
    assert set(o) == set(order), (set(o) ^ set(order))
    return {k: o[k].detach().clone().contiguous() for k in order}


def openai_key_order(mlp_width, osd_like_shapes):
    """Key order of OpenAI's CLIP.state_dict() for a model of these shapes."""
    with openai_patches(mlp_width):
        m = CM.build_model({k: v.clone() for k, v in osd_like_shapes.items()})
    return list(m.state_dict().keys())


def make_inputs(seed, batch, image_size, rows, bos, eos, context):
    g = torch.Generator().manual_seed(seed)
    pix = torch.randn((batch, 3, image_size, image_size), generator=g, dtype=torch.float64).to(torch.float32)
    ids = torch.zeros((len(rows), context), dtype=torch.int64)
    for r, n in enumerate(rows):
        assert n + 2 <= context
        ids[r, 0] = bos
        ids[r, 1:1 + n] = torch.randint(1, bos, (n,), generator=g, dtype=torch.int64)
        ids[r, 1 + n] = eos
    return pix, ids


def rounded_f16(model):
    m = CLIPModel(model.config).eval()
    res = m.load_state_dict({k: v.to(torch.float16).to(torch.float32) for k, v in model.state_dict().items()
                             if v.is_floating_point()}, strict=False)
    assert all("position_ids" in k for k in res.missing_keys) and not res.unexpected_keys, res
    return m


def hf_forward(model, pix, ids, dtype, attn="sdpa"):
    model = model.to(dtype)
    model.set_attn_implementation(attn)
    with torch.no_grad():
        vis = model.get_image_features(pixel_values=pix.to(dtype), output_hidden_states=True)
        txt = model.get_text_features(input_ids=ids, output_hidden_states=True)
    model.to(torch.float32)
    return vis, txt


def file_size(path):
    if os.path.isdir(path):
        return sum(os.path.getsize(os.path.join(path, f)) for f in os.listdir(path))
    return os.path.getsize(path)


def attention_stats(model, pix, ids):
    """Max / min attention weights of the first layer, to check the patterns are not uniform."""
    model.set_attn_implementation("eager")
    with torch.no_grad():
        v = model.vision_model(pixel_values=pix, output_attentions=True).attentions[0]
        t = model.text_model(input_ids=ids, output_attentions=True).attentions[0]
    return v, t


# --------------------------------------------------------------------------------------------


def build(name, text, vision, proj_dim, seed, rows, full, qk_std):
    log(f"== {name}")
    model = make_model(text, vision, proj_dim, seed, qk_std)
    cfg = model.config
    nv, nt = cfg.vision_config.num_hidden_layers, cfg.text_config.num_hidden_layers
    D = cfg.vision_config.hidden_size
    heads = cfg.vision_config.num_attention_heads
    assert cfg.text_config.num_attention_heads == heads
    mlp_width = {D: cfg.vision_config.intermediate_size}
    assert cfg.text_config.hidden_size == D and cfg.text_config.intermediate_size == mlp_width[D]

    pix, ids = make_inputs(seed + 1, 2, cfg.vision_config.image_size, rows,
                           cfg.text_config.bos_token_id, cfg.text_config.eos_token_id,
                           cfg.text_config.max_position_embeddings)
    bos, eos = cfg.text_config.bos_token_id, cfg.text_config.eos_token_id
    assert ids.max() == eos and (ids[:, 1:] != bos).all()

    # ---- HF checkpoint
    hf_dir = os.path.join(OUT, f"{name}_hf")
    model.save_pretrained(hf_dir, safe_serialization=True)
    saved = load_file(os.path.join(hf_dir, "model.safetensors"))
    params = hf_params(model)
    assert set(saved) == set(params), set(saved) ^ set(params)
    assert not any("position_ids" in k for k in saved)
    assert "text_model.embeddings.position_ids" in dict(model.named_buffers())
    for k, v in saved.items():
        assert v.dtype == torch.float32 and torch.equal(v, params[k]), k
    with safetensors.safe_open(os.path.join(hf_dir, "model.safetensors"), "pt") as f:
        log(f"  {name}_hf/model.safetensors metadata: {f.metadata()}")
    with open(os.path.join(hf_dir, "config.json")) as f:
        cj = json.load(f)
    log(f"  config.json dtype: {cj.get('dtype', cj.get('torch_dtype'))}, transformers_version "
        f"{cj.get('transformers_version')}")
    reloaded = CLIPModel.from_pretrained(hf_dir).eval()
    for k, v in reloaded.named_parameters():
        assert torch.equal(v, params[k]), k

    # ---- OpenAI layout
    order = openai_key_order(mlp_width, hf_to_openai(params, nv, nt, _all_openai_keys(nv, nt)))
    osd = hf_to_openai(params, nv, nt, order)
    for k, v in osd.items():
        assert v.dtype == torch.float32 and v.is_contiguous() and v.storage_offset() == 0, k
    torch.save(osd, os.path.join(OUT, f"{name}_openai.pth"))
    back = torch.load(os.path.join(OUT, f"{name}_openai.pth"), weights_only=True)
    assert list(back) == order and all(torch.equal(back[k], osd[k]) for k in order)
    assert osd["visual.proj"].shape == (D, proj_dim) and osd["text_projection"].shape == (D, proj_dim)

    # ---- HF references, float64 eager
    vis64, txt64 = hf_forward(model, pix, ids, torch.float64)
    vis32, txt32 = hf_forward(model, pix, ids, torch.float32)
    img64, tx64 = vis64.pooler_output, txt64.pooler_output
    log(f"  image_embeds |max| {img64.abs().max():.3f} std {img64.std():.3f}; "
        f"text_embeds |max| {tx64.abs().max():.3f} std {tx64.std():.3f}")
    errs = {}
    errs["hf f32 vs f64 image_embeds"] = check("HF f32 vs f64 image_embeds", vis32.pooler_output, img64, 1e-5)
    errs["hf f32 vs f64 text_embeds"] = check("HF f32 vs f64 text_embeds", txt32.pooler_output, tx64, 1e-5)
    # HF's eager attention computes its softmax in float32 even for a float64 model, so it is only
    # ~1e-8 accurate; sdpa (used for every reference) stays in float64 (OpenAI's code agrees to 1e-12)
    vs, ts = hf_forward(model, pix, ids, torch.float64, attn="eager")
    check("HF eager (f32 softmax) vs sdpa (f64) image_embeds", vs.pooler_output, img64, 1e-6)
    check("HF eager (f32 softmax) vs sdpa (f64) text_embeds", ts.pooler_output, tx64, 1e-6)

    # pooling rule
    first_eos = (ids == eos).int().argmax(-1)
    legacy = ids.int().argmax(-1)
    assert torch.equal(first_eos, legacy)
    assert torch.equal(first_eos, torch.tensor([r + 1 for r in rows]))
    log(f"  text pooling positions (first eos == argmax): {first_eos.tolist()}")

    # manual layer-by-layer check of the hidden states and pooling (float64)
    m64 = model.to(torch.float64)
    m64.set_attn_implementation("sdpa")
    with torch.no_grad():
        vm, tm = m64.vision_model, m64.text_model
        h = vm.pre_layrnorm(vm.embeddings(pix.double()))
        assert len(vis64.hidden_states) == nv + 1
        assert torch.equal(vis64.hidden_states[0], h)
        for i, layer in enumerate(vm.encoder.layers):
            h = layer(h, None)
            assert torch.allclose(vis64.hidden_states[i + 1], h, rtol=0, atol=1e-12), i
        assert torch.equal(vis64.last_hidden_state, vis64.hidden_states[-1])
        pooled = vm.post_layernorm(h[:, 0])
        assert torch.allclose(m64.visual_projection(pooled), img64, rtol=0, atol=1e-12)
        patch_embeds = vm.post_layernorm(h[:, 1:]) @ m64.visual_projection.weight.T

        L = ids.shape[1]
        causal = torch.full((L, L), float("-inf"), dtype=torch.float64).triu(1)[None, None]
        t = tm.embeddings(input_ids=ids)
        assert len(txt64.hidden_states) == nt + 1
        assert torch.equal(txt64.hidden_states[0], t)
        for i, layer in enumerate(tm.encoder.layers):
            t = layer(t, causal)
            assert torch.allclose(txt64.hidden_states[i + 1], t, rtol=0, atol=1e-12), i
        tl = tm.final_layer_norm(t)
        assert torch.allclose(txt64.last_hidden_state, tl, rtol=0, atol=1e-12)
        assert not torch.allclose(txt64.hidden_states[-1], txt64.last_hidden_state)
        tpool = m64.text_projection(tl[torch.arange(len(rows)), first_eos])
        assert torch.allclose(tpool, tx64, rtol=0, atol=1e-12)
    model.to(torch.float32)
    log("  hidden_states: [0] = encoder input (vision: after pre_layrnorm; text: embeddings), [i] = after "
        "block i, last != post-LN (verified by hand)")

    va, ta = attention_stats(model, pix, ids)
    log(f"  layer-0 attention weights: vision min {va.min():.4f} max {va.max():.4f} (uniform 1/{va.shape[-1]}="
        f"{1 / va.shape[-1]:.4f}); text last query row: max {ta[..., -1, :].max():.4f} min "
        f"{ta[..., -1, :].min():.4f} (uniform 1/{ta.shape[-1]}={1 / ta.shape[-1]:.4f})")
    log(f"  vision hidden |max| per index {[round(x.abs().max().item(), 2) for x in vis64.hidden_states]}, "
        f"text hidden |max| {[round(x.abs().max().item(), 2) for x in txt64.hidden_states]}")

    # ---- OpenAI cross-check
    o_img, o_txt, _ = openai_reference(osd, mlp_width, pix, ids, torch.float32,
                                       heads=None if D // 64 == heads else heads)
    errs["openai f32 image"] = check("OpenAI f32 vs HF f64 image_embeds", o_img, img64, 2e-5)
    errs["openai f32 text"] = check("OpenAI f32 vs HF f64 text_embeds", o_txt, tx64, 2e-5)
    o_img, o_txt, om = openai_reference(osd, mlp_width, pix, ids, torch.float64,
                                        heads=None if D // 64 == heads else heads)
    errs["openai f64 image"] = check("OpenAI f64 vs HF f64 image_embeds", o_img, img64, 1e-12)
    errs["openai f64 text"] = check("OpenAI f64 vs HF f64 text_embeds", o_txt, tx64, 1e-12)
    assert om.visual.transformer.resblocks[0].attn.num_heads == heads
    if D // 64 != heads:
        w_img, w_txt, wm = openai_reference(osd, mlp_width, pix, ids, torch.float64)
        assert wm.visual.transformer.resblocks[0].attn.num_heads == D // 64
        ei, et = rel_err(w_img, img64), rel_err(w_txt, tx64)
        log(f"  OpenAI build_model as is (heads {D // 64}) vs HF: rel err image {ei:.3f}, text {et:.3f} "
            f"(must be large)")
        assert ei > 0.02 and et > 0.02

    io = {"pixel_values": pix, "input_ids": ids, "image_embeds": img64.float(), "text_embeds": tx64.float()}
    if full:
        io["vision_hidden_states"] = torch.stack(vis64.hidden_states).float()
        io["vision_pooled"] = pooled.float()
        io["vision_patch_embeds"] = patch_embeds.float()
        io["text_hidden_states"] = torch.stack(txt64.hidden_states).float()
        io["text_last_hidden"] = txt64.last_hidden_state.float()

        # ---- float16 variants
        f16w = rounded_f16(model)
        v16, t16 = hf_forward(f16w, pix, ids, torch.float64)
        io["image_embeds_f16w"] = v16.pooler_output.float()
        io["text_embeds_f16w"] = t16.pooler_output.float()
        log(f"  f16-rounded weights vs f32 weights: rel diff image {rel_err(v16.pooler_output, img64):.2e}, "
            f"text {rel_err(t16.pooler_output, tx64):.2e}")
        o16 = {k: v.to(torch.float16) for k, v in osd.items()}
        save_file(o16, os.path.join(OUT, f"{name}_openai_f16.safetensors"))
        # the f16 OpenAI file through OpenAI's code (f64) must reproduce the f16w references
        o_img, o_txt, _ = openai_reference({k: v.float() for k, v in load_file(
            os.path.join(OUT, f"{name}_openai_f16.safetensors")).items()}, mlp_width, pix, ids, torch.float64)
        check("OpenAI(f16 file, f64) vs image_embeds_f16w", o_img, v16.pooler_output, 1e-12)
        check("OpenAI(f16 file, f64) vs text_embeds_f16w", o_txt, t16.pooler_output, 1e-12)
        # and the genuine build_model (fp16 convert_weights, fp16 compute is CPU-unfriendly): build
        # it literally, then .float(), and compare to the f16w reference loosely
        with openai_patches(mlp_width, keep_f32=False):
            genuine = CM.build_model({k: v.clone() for k, v in osd.items()})  # converts to fp16
        assert genuine.visual.conv1.weight.dtype == torch.float16
        genuine = genuine.float().eval()
        with torch.no_grad():
            gi, gt = genuine.encode_image(pix), genuine.encode_text(ids)
        log(f"  genuine build_model (fp16 convert_weights, then .float()) vs image_embeds_f16w: "
            f"{rel_err(gi, v16.pooler_output):.2e}, text {rel_err(gt, t16.pooler_output):.2e} "
            f"(convert_weights leaves LayerNorm/embeddings f32)")
        assert rel_err(gi, v16.pooler_output) < 1e-2 and rel_err(gt, t16.pooler_output) < 1e-2

        # ---- V2L-style checkpoint
        g = torch.Generator().manual_seed(seed + 2)
        sd = {"encoder.conv_in.weight": torch.randn((8, 3, 3, 3), generator=g)}
        for k, v in osd.items():
            if k.startswith("visual."):
                sd["global_encoder." + k[len("visual."):]] = v.to(torch.float16).clone()
        sd["quant_conv.bias"] = torch.randn((768,), generator=g)
        ckpt = {"state_dict": sd, "args": argparse.Namespace(lr=1e-4, model="v2l", image_size=128)}
        torch.save(ckpt, os.path.join(OUT, f"{name}_v2l_style.pth"))
        back = torch.load(os.path.join(OUT, f"{name}_v2l_style.pth"), weights_only=False)
        assert list(back["state_dict"]) == list(sd) and vars(back["args"]) == dict(lr=1e-4, model="v2l",
                                                                                 image_size=128)
        log(f"  {name}_v2l_style.pth: {len(sd)} tensors, {sum(1 for k in sd if k.startswith('global_encoder.'))}"
            " global_encoder.* (f16)")

    io = {k: v.detach().contiguous() for k, v in io.items()}
    for k, v in io.items():
        assert v.dtype == (torch.int64 if k == "input_ids" else torch.float32), k
    save_file(io, os.path.join(OUT, f"{name}_io.safetensors"))
    log(f"  {name}_io.safetensors: " + ", ".join(f"{k} {list(v.shape)}" for k, v in io.items()))
    return errs


def _all_openai_keys(nv, nt):
    """Every OpenAI key (unordered), used to get the canonical order from OpenAI's module."""
    keys = []
    for pre, n in (("visual.transformer.resblocks", nv), ("transformer.resblocks", nt)):
        for i in range(n):
            keys += [f"{pre}.{i}.attn.in_proj_weight", f"{pre}.{i}.attn.in_proj_bias"]
            for w in ("weight", "bias"):
                keys += [f"{pre}.{i}.{m}.{w}" for m in ("attn.out_proj", "ln_1", "mlp.c_fc", "mlp.c_proj", "ln_2")]
    keys += ["visual.conv1.weight", "visual.class_embedding", "visual.positional_embedding", "visual.proj",
             "token_embedding.weight", "positional_embedding", "text_projection", "logit_scale"]
    for w in ("weight", "bias"):
        keys += [f"visual.ln_pre.{w}", f"visual.ln_post.{w}", f"ln_final.{w}"]
    return keys


def main():
    os.makedirs(OUT, exist_ok=True)
    log(f"torch {torch.__version__}, transformers {transformers.__version__}, safetensors "
        f"{safetensors.__version__}, numpy {np.__version__}, clip/model.py from {CM.__file__}")
    errs = {}
    errs["tiny"] = build(
        "tiny",
        text=dict(vocab_size=1000, hidden_size=128, intermediate_size=256, num_hidden_layers=2,
                  num_attention_heads=2, max_position_embeddings=77, bos_token_id=998, eos_token_id=999,
                  pad_token_id=0),
        vision=dict(hidden_size=128, intermediate_size=256, num_hidden_layers=2, num_attention_heads=2,
                    image_size=32, patch_size=8),
        proj_dim=64, seed=1234, rows=[5, 20, 75], full=True, qk_std=0.05)
    errs["heads4"] = build(
        "heads4",
        text=dict(vocab_size=300, hidden_size=64, intermediate_size=128, num_hidden_layers=1,
                  num_attention_heads=4, max_position_embeddings=16, bos_token_id=298, eos_token_id=299,
                  pad_token_id=0),
        vision=dict(hidden_size=64, intermediate_size=128, num_hidden_layers=1, num_attention_heads=4,
                    image_size=16, patch_size=4),
        proj_dim=32, seed=4321, rows=[3, 14], full=False, qk_std=0.15)

    print("\n== files")
    total = 0
    for f in sorted(os.listdir(OUT)):
        s = file_size(os.path.join(OUT, f))
        total += s
        print(f"  {f}: {s} bytes")
    print(f"  total: {total} bytes ({total / 2**20:.2f} MiB)")
    assert total <= 9 * 2**20, total


if __name__ == "__main__":
    main()
