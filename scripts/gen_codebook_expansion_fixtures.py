#!/usr/bin/env python3
"""Generates the vocabulary-expansion fixture of `crates/v2l-codebook` (each codebook entry's
token grown by two greedy next tokens of SmolLM2-135M-Instruct, prompted "a photo of ...").

Run by hand (never in CI), from the workspace root, on CPU, after `v2l assets fetch
smollm2-135m`:

    python3 -m venv /tmp/venv-fix
    /tmp/venv-fix/bin/pip install torch==2.15.0 transformers==5.24.0 gguf==0.19.0 accelerate==1.15.0
    /tmp/venv-fix/bin/python scripts/gen_codebook_expansion_fixtures.py

Last run: CPython 3.11.7, torch 2.15.0 (CPU, 1 thread), transformers 5.24.0, tokenizers 0.23.3,
gguf 0.19.0, accelerate 1.15.0. No sampling, fixed seeds: a rerun rewrites the same file.

Model and tokenizer: `SmolLM2-135M-Instruct.Q4_1.gguf` from `$V2L_HOME/assets/smollm2-135m/`
(default `~/.cache/v2l`), sha256 asserted, loaded like `scripts/gen_llm_fixtures.py` does:
`AutoModelForCausalLM.from_pretrained(dir, gguf_file=..., dtype=torch.float32)` (gguf-py
dequantises the Q4_1 weights to float32), eager attention, and `AutoTokenizer.from_pretrained(dir,
gguf_file=...)`. Encoding uses that tokenizer's `tokenizers.Tokenizer` with SmolLM2's
`Digits(individual_digits=True)` pre-tokenizer step restored in front of
`ByteLevel(add_prefix_space=False, use_regex=True)` (as `smollm2_fixture` in
`scripts/gen_llm_tokenizer_fixtures.py`; transformers' GGUF converter drops it). Decoding uses
the same `Tokenizer` with `skip_special_tokens=False`; every decode is asserted equal to
transformers' `decode(..., skip_special_tokens=False)` (which does no space clean-up here).

Rules (the spec of the Rust implementation, implemented literally by `expand` below; also the
"rules" string of the output):

* 50 entry ids, sorted ascending, distinct: 0, 1, 2 (the special tokens <|endoftext|>,
  <|im_start|>, <|im_end|>); the single-token ids of " dog", " cat", " house", " red", "ing",
  " New", "3" (each asserted to encode to exactly one id); 5 ids whose `decode([id])` contains
  U+FFFD (byte-level tokens that are not valid UTF-8 alone: `FFFD_TOKENS` below, looked up by
  their token string); the rest drawn one at a time with `random.Random(7).randrange(3, 49152)`,
  skipping ids already chosen, until there are 50.
* text1 = decode([id]). strip1(s) removes exactly one leading U+0020 if present.
* prompt1 = "a photo of " + strip1(text1), encoded with the default special-token policy
  (`add_special_tokens=True`; SmolLM2 adds nothing: asserted equal to
  `add_special_tokens=False`). Special-token text in a prompt (e.g. "<|im_end|>") is matched
  as that special token, as the tokenizer does.
* n1 = argmax of the last-position logits of prompt1 (greedy; ties -> the lowest id).
* faithful: text2 = text1 + decode([n1]); corrected: text2 = decode([id, n1]).
* prompt2 = "a photo of " + strip1(text2), encoded the same way; n2 = greedy next token.
* faithful: text3 = text2 + decode([n2]); corrected: text3 = decode([id, n1, n2]).

Writes `crates/v2l-codebook/tests/fixtures/expansion/reference.json`: the source file name and
sha256, versions, the rules string, summary numbers, and per entry: id, token (the vocabulary
string), text1, and for each mode ("faithful", "corrected"): prompt1, prompt1_ids, n1, gap1
(top-1 minus top-2 float32 logit of that step), text2, prompt2, prompt2_ids, n2, gap2, text3,
plus per step the float64 argmax and whether it agrees. n1/gap1/prompt1 are the same in both
modes by construction (asserted).

Logits are those of the float32 model (the model's default dtype). They are recomputed with a
float64 copy (`.double()` made exact as in `gen_llm_fixtures.py`'s `make_exact_f64`: SDPA
attention, RMSNorm and RoPE in float64; transformers keeps those in float32 otherwise); the
output records whether the float64 argmax agrees at every step and the largest |f32 - f64| of
the last-position logits. Also recorded: for which prompts transformers' own GGUF tokenizer
(without the Digits step) would encode differently.

Options: `--threads N` (torch threads, default 1; the committed file was made with 1), `--scan`
(after writing the fixture, run both modes in float32 over every id whose decode contains a
non-ASCII character or U+FFFD, and print where they differ; ~3 minutes on 1 thread).

Last run: 92 distinct prompts; min gap 0.0052 (entry 5947 " rural", faithful = corrected, step 2:
prompt "a photo of rural life", n2 = " in"); the float64 argmax agrees at every step; max |f32 -
f64| of the last-position logits 9.7e-05; transformers' own GGUF tokenizer
encodes every prompt the same (SmolLM2's vocabulary has no multi-digit token: "a photo of 30" is
[81, 8003, 282, 216, 35, 32] either way). Faithful and corrected coincide on
all 50 entries (0 differ in text2, n2 or text3), and `--scan` found no difference either over
904 ids (314 with U+FFFD; 1056 distinct prompts). Why: the two modes differ only when a
concatenation of single decodes loses bytes, i.e. when n1 or n2 is a byte-level token that
completes (or continues) a partial UTF-8 sequence. A U+FFFD entry reaches the model as the
three bytes of U+FFFD (token 24211), never its raw partial bytes: the 314 such ids give only 4
distinct prompt1 ("a photo of " + U+FFFD (302 ids), + two U+FFFD (10), + "о" U+FFFD, + "י" U+FFFD),
whose n1 are 99 "s", 24211 (U+FFFD itself) and the lone lead bytes 156 (D1) and 162 (D7): lead
bytes after an incomplete sequence still decode to U+FFFD either way, and no n2 was the
continuation byte that would complete them. Nowhere in the scan did n1 or n2 complete a
sequence left open by the token before it. So this fixture pins both modes' shared behaviour,
not their difference. Special tokens: "a photo of <|endoftext|>" encodes as
[81, 8003, 282, 216, 0] (the space before the special token is its own token 216 "Ġ").
"""

import argparse
import copy
import hashlib
import json
import os
import random
import tempfile
from importlib.metadata import version

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "crates", "v2l-codebook", "tests", "fixtures", "expansion")
ASSETS = os.path.join(os.environ.get("V2L_HOME", os.path.expanduser("~/.cache/v2l")), "assets")
GGUF = os.path.join(ASSETS, "smollm2-135m", "SmolLM2-135M-Instruct.Q4_1.gguf")
GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"

N_ENTRIES = 50
SEED = 7
VOCAB = 49152
PREFIX = "a photo of "
WORDS = [" dog", " cat", " house", " red", "ing", " New", "3"]
# byte-level tokens that are not valid UTF-8 alone (vocabulary strings, GPT-2 byte alphabet):
# "âĢ" = E2 80 (start of "’", "—", ...), "ĠâĢ" = space + E2 80, "ðŁ" = F0 9F (emoji start),
# "ä¸" = E4 B8 (CJK start), "Ã" = C3 (a lone lead byte)
FFFD_TOKENS = ["\u00e2\u0122", "\u0120\u00e2\u0122", "\u00f0\u0141", "\u00e4\u00b8", "\u00c3"]

RULES = """\
entry ids: 0, 1, 2; the single-token ids of " dog", " cat", " house", " red", "ing", " New", "3"; \
5 ids whose decode([id]) contains U+FFFD; the rest drawn one at a time with \
random.Random(7).randrange(3, 49152), skipping ids already chosen, until 50; sorted ascending. \
decode = SmolLM2 byte-level BPE decode with skip_special_tokens=False; encode = SmolLM2 \
tokenizer (ByteLevel with the Digits(individual_digits=True) step), add_special_tokens=True, \
which adds nothing; special-token text in a prompt is matched as the special token. \
text1 = decode([id]); strip1(s) removes exactly one leading U+0020 if present. \
prompt1 = "a photo of " + strip1(text1); n1 = argmax of the last-position logits of prompt1 \
(float32 model, ties -> lowest id). faithful: text2 = text1 + decode([n1]); corrected: \
text2 = decode([id, n1]). prompt2 = "a photo of " + strip1(text2); n2 = greedy next token of \
prompt2. faithful: text3 = text2 + decode([n2]); corrected: text3 = decode([id, n1, n2]). \
gap = top-1 minus top-2 logit of that step (float32)."""

torch.manual_seed(0)
torch.set_num_threads(1)


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def strip1(s):
    return s[1:] if s.startswith(" ") else s


class Tok:
    def __init__(self):
        from tokenizers import Tokenizer, pre_tokenizers
        from transformers import AutoTokenizer

        with tempfile.TemporaryDirectory() as tmp:
            os.symlink(GGUF, os.path.join(tmp, "smollm2.gguf"))
            self.tf = AutoTokenizer.from_pretrained(tmp, gguf_file="smollm2.gguf")
        assert len(self.tf) == VOCAB
        fixed = Tokenizer.from_str(self.tf.backend_tokenizer.to_str())
        fixed.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
        ])
        self.tok = fixed
        self.transformers_differs = []

    def encode(self, text):
        ids = self.tok.encode(text, add_special_tokens=True).ids
        assert ids == self.tok.encode(text, add_special_tokens=False).ids, text
        tids = self.tf.encode(text)  # transformers' default: add_special_tokens=True
        assert tids == self.tf.encode(text, add_special_tokens=False), text
        if tids != ids and text not in self.transformers_differs:
            self.transformers_differs.append(text)
        return ids

    def decode(self, ids):
        s = self.tok.decode(ids, skip_special_tokens=False)
        assert s == self.tf.decode(ids, skip_special_tokens=False), ids
        return s

    def token(self, i):
        return self.tok.id_to_token(i)


def make_exact_f64(model):
    """`.double()` transformers Llama computing in float64 throughout (see module docstring)."""
    from transformers.models.llama.modeling_llama import LlamaRMSNorm

    model.config._attn_implementation = "sdpa"
    for mod in model.modules():
        if isinstance(mod, LlamaRMSNorm):
            def rms(x, mod=mod):
                return mod.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + mod.variance_epsilon))
            mod.forward = rms
    rot = model.model.rotary_emb
    assert rot.rope_type == "default" and rot.attention_scaling == 1.0
    c = model.config
    dim = getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads
    theta = c.rope_parameters["rope_theta"]
    inv = 1.0 / (theta ** (torch.arange(0, dim, 2, dtype=torch.float64)[: dim // 2] / dim))
    assert torch.allclose(inv, rot.inv_freq.double(), rtol=1e-6, atol=0)

    def rope(x, position_ids):
        f = position_ids[..., None].double() * inv.to(x.device)
        emb = torch.cat((f, f), dim=-1)
        return emb.cos().to(x.dtype), emb.sin().to(x.dtype)

    rot.forward = rope


class Greedy:
    def __init__(self):
        from transformers import AutoModelForCausalLM

        d, name = os.path.split(GGUF)
        self.m32 = AutoModelForCausalLM.from_pretrained(d, gguf_file=name, dtype=torch.float32).eval()
        self.m32.config._attn_implementation = "eager"
        assert type(self.m32).__name__ == "LlamaForCausalLM", type(self.m32)
        assert self.m32.config.vocab_size == VOCAB
        self.m64 = copy.deepcopy(self.m32).double().eval()
        make_exact_f64(self.m64)
        self.cache = {}
        self.max_abs = 0.0
        self.cache32 = {}

    def step32(self, ids):
        """float32 only (for --scan)."""
        key = tuple(ids)
        if key not in self.cache32:
            with torch.no_grad():
                l32 = self.m32(torch.tensor([ids])).logits[0, -1]
            t2 = torch.topk(l32, 2).values
            self.cache32[key] = {"n": int(torch.argmax(l32)), "gap": float(t2[0] - t2[1]),
                                 "n_f64": None, "gap_f64": None, "f64_agrees": None}
        return self.cache32[key]

    def step(self, ids):
        key = tuple(ids)
        if key not in self.cache:
            x = torch.tensor([ids])
            with torch.no_grad():
                l32 = self.m32(x).logits[0, -1]
                l64 = self.m64(x).logits[0, -1]
            assert l32.dtype == torch.float32 and l64.dtype == torch.float64
            n = int(torch.argmax(l32))  # first maximal index = lowest id on ties
            assert l32[n] == l32.max() and not (l32[:n] == l32[n]).any()
            t2 = torch.topk(l32, 2).values
            n64 = int(torch.argmax(l64))
            t64 = torch.topk(l64, 2).values
            self.max_abs = max(self.max_abs, (l32.double() - l64).abs().max().item())
            self.cache[key] = {"n": n, "gap": float(t2[0] - t2[1]), "n_f64": n64,
                               "gap_f64": float(t64[0] - t64[1]), "f64_agrees": n64 == n}
        return self.cache[key]


def choose_ids(tok):
    ids = {0, 1, 2}
    for w in WORDS:
        e = tok.encode(w)
        assert len(e) == 1, (w, e)
        assert tok.decode(e) == w
        ids.add(e[0])
    for t in FFFD_TOKENS:
        i = tok.tok.token_to_id(t)
        assert i is not None and i >= 3, t
        assert "\ufffd" in tok.decode([i]), (t, tok.decode([i]))
        ids.add(i)
    assert len(ids) == 3 + len(WORDS) + len(FFFD_TOKENS)
    rng = random.Random(SEED)
    while len(ids) < N_ENTRIES:
        ids.add(rng.randrange(3, VOCAB))
    return sorted(ids)


def expand(tok, step, i, mode):
    text1 = tok.decode([i])
    prompt1 = PREFIX + strip1(text1)
    p1 = tok.encode(prompt1)
    s1 = step(p1)
    n1 = s1["n"]
    text2 = text1 + tok.decode([n1]) if mode == "faithful" else tok.decode([i, n1])
    prompt2 = PREFIX + strip1(text2)
    p2 = tok.encode(prompt2)
    s2 = step(p2)
    n2 = s2["n"]
    text3 = text2 + tok.decode([n2]) if mode == "faithful" else tok.decode([i, n1, n2])
    return {
        "prompt1": prompt1, "prompt1_ids": p1, "n1": n1, "gap1": s1["gap"],
        "n1_f64": s1["n_f64"], "gap1_f64": s1["gap_f64"], "n1_f64_agrees": s1["f64_agrees"],
        "text2": text2,
        "prompt2": prompt2, "prompt2_ids": p2, "n2": n2, "gap2": s2["gap"],
        "n2_f64": s2["n_f64"], "gap2_f64": s2["gap_f64"], "n2_f64_agrees": s2["f64_agrees"],
        "text3": text3,
    }


def scan(tok, greedy):
    """--scan: both modes, float32 only, over every id whose decode contains U+FFFD or a
    non-ASCII character (no fixture written)."""
    ids = []
    for i in range(3, VOCAB):
        s = tok.decode([i])
        if any(ord(ch) > 127 for ch in s):
            ids.append(i)
    n_fffd = sum("\ufffd" in tok.decode([i]) for i in ids)
    differ = []
    for i in ids:
        f = expand(tok, greedy.step32, i, "faithful")
        c = expand(tok, greedy.step32, i, "corrected")
        if any(f[k] != c[k] for k in ("text2", "n2", "text3")):
            differ.append(i)
            print(f"  differs: {i} {tok.token(i)!r}: {f['text3']!r} / {c['text3']!r}")
    print(f"scan: {len(ids)} ids ({n_fffd} with U+FFFD), {len(greedy.cache32)} distinct prompts; "
          f"faithful != corrected on {len(differ)}: {differ}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scan", action="store_true", help="also scan every non-ASCII id (f32, slow)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    digest = sha256(GGUF)
    assert digest == GGUF_SHA256, f"{GGUF}: sha256 {digest}"
    versions = {k: version(k) for k in ("torch", "transformers", "tokenizers", "gguf", "accelerate")}
    print(versions)
    tok = Tok()
    assert tok.tf.bos_token_id == 1 and not getattr(tok.tf, "add_bos_token", False)
    ids = choose_ids(tok)
    assert len(ids) == N_ENTRIES == len(set(ids)) and ids == sorted(ids)
    n_fffd = sum("\ufffd" in tok.decode([i]) for i in ids)
    print(f"{len(ids)} entry ids ({n_fffd} decode to U+FFFD alone): {ids}")
    assert n_fffd >= 4

    greedy = Greedy()
    entries, min_gap, differ = [], None, {"text2": [], "n2": [], "text3": [], "any": []}
    for k, i in enumerate(ids):
        rec = {"id": i, "token": tok.token(i), "text1": tok.decode([i])}
        for mode in ("faithful", "corrected"):
            rec[mode] = expand(tok, greedy.step, i, mode)
            for step in (1, 2):
                g = rec[mode][f"gap{step}"]
                if min_gap is None or g < min_gap[0]:
                    min_gap = (g, i, mode, step)
        f, c = rec["faithful"], rec["corrected"]
        for key in ("prompt1", "prompt1_ids", "n1", "gap1"):
            assert f[key] == c[key], (i, key)
        diff = False
        for key in ("text2", "n2", "text3"):
            if f[key] != c[key]:
                differ[key].append(i)
                diff = True
        if diff:
            differ["any"].append(i)
        entries.append(rec)
        print(f"{i:6d} {rec['text1']!r:>20} -> n1 {f['n1']:6d} (gap {f['gap1']:.3f}) "
              f"faithful {f['text3']!r} / corrected {c['text3']!r}")

    all_agree = all(e[m][f"n{s}_f64_agrees"] for e in entries for m in ("faithful", "corrected")
                    for s in (1, 2))
    print(f"\nprompts evaluated: {len(greedy.cache)}; min gap {min_gap[0]:.4f} (entry {min_gap[1]}, "
          f"{min_gap[2]}, step {min_gap[3]}); f64 argmax agrees everywhere: {all_agree}; "
          f"max |f32 - f64| last logits {greedy.max_abs:.2e}")
    print(f"faithful vs corrected differ on {len(differ['any'])} of {len(ids)} entries: "
          f"text2 {len(differ['text2'])}, n2 {len(differ['n2'])}, text3 {len(differ['text3'])}: "
          f"{differ['any']}")
    print(f"transformers' GGUF tokenizer (no Digits step) encodes differently: "
          f"{tok.transformers_differs!r}")

    ref = {
        "generator": "scripts/gen_codebook_expansion_fixtures.py",
        "source": {"file": os.path.basename(GGUF), "sha256": GGUF_SHA256},
        "loaded_by": "transformers AutoModelForCausalLM/AutoTokenizer from_pretrained(gguf_file=), "
                     "weights dequantised to float32; eager attention; tokenizer with the "
                     "Digits(individual_digits=True) pre-tokenizer step restored",
        "versions": versions,
        "torch_threads": torch.get_num_threads(),
        "rules": RULES,
        "prefix": PREFIX,
        "n_entries": len(ids),
        "entry_ids": ids,
        "n_prompts_evaluated": len(greedy.cache),
        "min_gap": {"gap": min_gap[0], "id": min_gap[1], "mode": min_gap[2], "step": min_gap[3]},
        "f64_argmax_agrees_everywhere": all_agree,
        "max_abs_f32_minus_f64_last_logits": greedy.max_abs,
        "modes_differ": differ,
        "transformers_tokenizer_differs_on": tok.transformers_differs,
        "entries": entries,
    }
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, "reference.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(ref, f, ensure_ascii=False, indent=1)
        f.write("\n")
    back = json.load(open(path, encoding="utf-8"))
    assert back["entries"] == entries
    size = os.path.getsize(path)
    print(f"wrote {path} ({size} bytes)")
    assert size < 300 * 1024
    if args.scan:
        scan(tok, greedy)


if __name__ == "__main__":
    main()
