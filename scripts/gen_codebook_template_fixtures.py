#!/usr/bin/env python3
"""Generates the 80-template text-embedding fixtures of `crates/v2l-codebook` (vocabulary entries
embedded with CLIP's ImageNet prompt ensemble).

Run by hand (never in CI), from the workspace root, on CPU:

    python3 -m venv /tmp/venv-fix
    /tmp/venv-fix/bin/pip install numpy torch transformers safetensors ftfy regex
    /tmp/venv-fix/bin/pip install --no-deps open_clip_torch==3.3.0
    /tmp/venv-fix/bin/python scripts/gen_codebook_template_fixtures.py

Last run: CPython 3.11.7, torch 2.15.0 (CPU), transformers 5.24.0, open_clip_torch 3.3.0,
safetensors 0.8.0, numpy 2.4.6, ftfy 6.3.1, regex 2026.11.19. Nothing is random; a rerun
rewrites the same files (the safetensors bytes may differ only if a library changes its
serialisation). It needs the tiny CLIP of `crates/v2l-clip/tests/fixtures/model/`
(`scripts/gen_clip_model_fixtures.py`).

The rule this is the reference for: the text embedding of a vocabulary entry is, over CLIP's 80
ImageNet zero-shot templates, the mean of the L2-normalised text features of
`template.format(entry)`; the mean is NOT renormalised (the faithful variant, its norm is < 1);
the renormalised variant divides it by its norm.

Writes to `crates/v2l-codebook/tests/fixtures/templates/`:

* `templates.json`: the 80 templates, in order, as strings with one `{}` each
  (`'a bad photo of a {}.'`, ...), recovered from the lambdas of
  `open_clip.zero_shot_metadata.OPENAI_IMAGENET_TEMPLATES` by calling each with `"{}"`. Python's
  `str.format` inserts the entry verbatim (asserted equal to calling the lambda with the entry).
* `entries.json`: the 13 entry strings (`ENTRIES` below; entry 0 is "dog"). They include "" (what
  SentencePiece control tokens decode to), " ⁇ " (SentencePiece's unk surface; U+2047), an
  html entity ("rock &amp; roll": both ftfy and CLIP's `html.unescape` turn it into "&"), upper
  case and a doubled space ("it's  A DOG!": lower-casing, whitespace collapse, the `'s`
  contraction rule), a digit, a non-ASCII letter ("café", precomposed U+00E9).
* `tiny_bpe.txt`: a CLIP BPE merges file, UTF-8, no trailing newline: the header line
  `#version: tiny-v2l` then exactly 486 merges, one per line, `left right`, written in CLIP's
  byte-to-unicode alphabet with `</w>` ending the last symbol of a word (OpenAI
  `simple_tokenizer.py` conventions). Vocabulary = the 256 byte characters, the same 256 with
  `</w>`, the 486 merge results, `<|startoftext|>` = 998, `<|endoftext|>` = 999: 1000 tokens,
  the text vocabulary of the tiny CLIP (vocab 1000, bos 998, eos 999, context 77). No trailing
  newline because OpenAI's reader splits the file on "\\n" and keeps lines 1..48894: a final
  empty line would become an empty merge `()` and a 1001st token, shifting sot/eot to 999/1000
  (asserted with open_clip's reader; v2l-clip's `from_bpe_text` ignores a final newline).
  The merges are learned by `learn_bpe` below (greedy: at each step the most frequent adjacent
  pair of symbols, counted over word frequencies; ties -> the smallest (left, right) by Python
  string order; a pair whose concatenation is already a token is skipped, so all 1000 tokens
  are distinct; each merge is applied left to right, non-overlapping, to every word). Corpus,
  in two phases: (1) the words of all 80 x 13 formatted prompts (CLIP-cleaned, lower-cased,
  split by CLIP's pre-tokeniser); this corpus is exhausted after 207 merges (every one of its
  words is then a single token); (2) the same words plus those of the 1000
  `open_clip.zero_shot_metadata.IMAGENET_CLASSNAMES`, until 486 merges.
* `expected.safetensors` (float32 unless stated; computed in float64 and rounded once):
    mean                [13, 64]  mean over the 80 templates of the L2-normalised text features
    mean_renormalised   [13, 64]  mean / ||mean||
    per_template_first  [80, 64]  the 80 L2-normalised text features of entry 0 ("dog")
    ids_first           [80, 77]  int64, the token ids of entry 0's 80 prompts
* `meta.json`: versions, the template count, special ids, per-entry token counts (min/max over
  the 80 prompts, without sot/eot), the norms of the `mean` rows, and the float32-vs-float64
  relative errors.

Tokenisation (`ClipBpe` below, OpenAI's SimpleTokenizer algorithm over `tiny_bpe.txt`): clean =
`ftfy.fix_text` (ftfy 6.3.1 installed; for every prompt here the cleaned text is the same with
and without it, asserted), `html.unescape` twice, strip, collapse whitespace runs to one space,
strip, `lower()`; split with CLIP's regex
`<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+`
(IGNORECASE); map each piece's UTF-8 bytes to the byte alphabet, append `</w>` to the last
symbol, apply merges by rank (lowest rank first, every occurrence); ids = [998] + ids + [999],
zero-padded to 77. Asserted: `open_clip.tokenizer.SimpleTokenizer(bpe_path=<gzip of
tiny_bpe.txt>)` gives 1000 tokens with sot 998 / eot 999 (it names them `<start_of_text>` /
`<end_of_text>`; OpenAI names them `<|startoftext|>` / `<|endoftext|>`, the ids are the same),
the same byte alphabet, and the same padded ids for every prompt; no prompt exceeds 77 tokens
(the longest has 14 with sot/eot).

Text tower: `CLIPModel.from_pretrained(crates/v2l-clip/tests/fixtures/model/tiny_hf)` (its text
weights are asserted bit-equal to `tiny_openai.pth`). Text features = CLIP `encode_text`:
`text_model(ids).last_hidden_state` (after final_layer_norm) at position `ids.argmax(-1)` (the
EOT, the largest id), times `text_projection.weight.T`. transformers 5.24 pools at the first
position equal to `eos_token_id` (999) instead; for these ids both positions agree (asserted)
and `get_text_features(ids).pooler_output` equals the argmax pooling bit for bit (asserted).
The reference is computed with the float32 weights as stored, cast to float64 (`.double()`),
with SDPA attention: transformers' eager attention does its softmax in float32 even in a
float64 model (~1e-8, printed), SDPA stays in float64. The float32 model (as loaded) is run too;
the printed "rel err" = max |a - b| / max |b| over a tensor is the float32 noise floor a Rust
float32 implementation can expect. The script also reproduces `tiny_io.safetensors`'s
`text_embeds` from its `input_ids` with the same pooling (rel err ~1e-8).

Last run: f32 vs f64 rel err mean 1.24e-07, mean_renormalised 1.37e-07, per_template_first
4.75e-07; eager (f32 softmax) vs SDPA, both float64: mean 4.7e-09, per_template_first 2.4e-08;
`tiny_io` text_embeds reproduced to 3.4e-08; mean row norms 0.756..0.807; the longest prompt
has 14 ids with sot/eot. Every word of the prompts is a single token of the learned vocabulary
(e.g. "doghouse" -> [540] `doghouse</w>`, " \u2047 " -> [555] `âģĩ</w>`, "café" -> [538]
`cafÃ©</w>`, "rock &amp; roll" -> [550, 261, 551]); `meta.json` lists every entry's ids.
"""

import gzip
import html
import json
import os
import tempfile
from importlib.metadata import version

import regex
import torch
from safetensors.torch import load_file, save_file
from transformers import CLIPModel

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "crates", "v2l-codebook", "tests", "fixtures", "templates")
MODEL = os.path.join(ROOT, "crates", "v2l-clip", "tests", "fixtures", "model")

N_TEMPLATES = 80
N_MERGES = 486
VOCAB = 1000
SOT, EOT = 998, 999
CONTEXT = 77
HEADER = "#version: tiny-v2l"

ENTRIES = [
    "dog", "doghouse", "dog house", "", " \u2047 ", "New York", "caf\u00e9", "ing", "3", "a photo of",
    "hello world", "it's  A DOG!", "rock &amp; roll",
]

torch.use_deterministic_algorithms(True)
torch.set_num_threads(1)

try:
    import ftfy
except ImportError:  # the entries are chosen so that ftfy changes nothing (asserted when present)
    ftfy = None

# CLIP's pre-tokeniser (OpenAI simple_tokenizer.py); the special-token alternatives never match
# here (the entries contain no "<|").
PAT = regex.compile(
    r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""",
    regex.IGNORECASE,
)


def rel_err(a, b):
    a, b = a.detach().double(), b.detach().double()
    return ((a - b).abs().max() / b.abs().max()).item()


def byte_alphabet():
    """byte -> character: printable Latin-1 bytes map to themselves, the other 68 bytes (in
    increasing order) to U+0100, U+0101, ..."""
    keep = [b for b in range(256) if 0x21 <= b <= 0x7E or 0xA1 <= b <= 0xAC or 0xAE <= b <= 0xFF]
    table = {b: chr(b) for b in keep}
    extra = 0x100
    for b in range(256):
        if b not in table:
            table[b] = chr(extra)
            extra += 1
    # id order: the kept bytes first, then the remapped ones (OpenAI's `bytes_to_unicode` order)
    return dict([(b, table[b]) for b in keep] + [(b, table[b]) for b in range(256) if b not in keep])


BYTE_CHAR = byte_alphabet()


def clean(text, use_ftfy=True):
    if use_ftfy and ftfy is not None:
        text = ftfy.fix_text(text)
    text = html.unescape(html.unescape(text)).strip()
    return " ".join(text.split()).strip().lower()


def word_symbols(piece):
    s = [BYTE_CHAR[b] for b in piece.encode("utf-8")]
    s[-1] += "</w>"
    return s


def apply_merge(symbols, pair):
    out, i = [], 0
    while i < len(symbols):
        if i + 1 < len(symbols) and symbols[i] == pair[0] and symbols[i + 1] == pair[1]:
            out.append(pair[0] + pair[1])
            i += 2
        else:
            out.append(symbols[i])
            i += 1
    return tuple(out)


def word_counts(texts):
    counts = {}
    for t in texts:
        for piece in PAT.findall(clean(t)):
            w = tuple(word_symbols(piece))
            counts[w] = counts.get(w, 0) + 1
    return counts


def learn_bpe(phases, n_merges):
    """Greedy BPE over word counts; see the module docstring. `phases` is a list of text lists;
    phase k+1 adds its words once phase k's corpus has no mergeable pair left."""
    tokens = set(BYTE_CHAR.values()) | {c + "</w>" for c in BYTE_CHAR.values()}
    merges, words, exhausted_at = [], {}, []
    for texts in phases:
        for w, c in word_counts(texts).items():
            for m in merges:  # bring the new words up to date
                w = apply_merge(w, m)
            words[w] = words.get(w, 0) + c
        while len(merges) < n_merges:
            pairs = {}
            for w, c in words.items():
                for p in zip(w, w[1:]):
                    pairs[p] = pairs.get(p, 0) + c
            cands = [(-c, p) for p, c in pairs.items() if p[0] + p[1] not in tokens]
            if not cands:
                break
            best = min(cands)[1]
            merges.append(best)
            tokens.add(best[0] + best[1])
            new = {}
            for w, c in words.items():
                w = apply_merge(w, best)
                new[w] = new.get(w, 0) + c
            words = new
        exhausted_at.append(len(merges))
    return merges, exhausted_at, words


class ClipBpe:
    """OpenAI's SimpleTokenizer algorithm over a merges list (written independently)."""

    def __init__(self, merges):
        chars = list(BYTE_CHAR.values())
        vocab = chars + [c + "</w>" for c in chars] + [a + b for a, b in merges]
        vocab += ["<|startoftext|>", "<|endoftext|>"]
        self.vocab = vocab
        self.encoder = {t: i for i, t in enumerate(vocab)}
        self.ranks = {m: r for r, m in enumerate(merges)}
        self.sot = self.encoder["<|startoftext|>"]
        self.eot = self.encoder["<|endoftext|>"]

    def bpe(self, piece):
        w = tuple(word_symbols(piece))
        while len(w) > 1:
            ranked = [(self.ranks[p], p) for p in zip(w, w[1:]) if p in self.ranks]
            if not ranked:
                break
            w = apply_merge(w, min(ranked)[1])
        return [self.encoder[s] for s in w]

    def encode(self, text):
        ids = []
        for piece in PAT.findall(clean(text)):
            ids += self.bpe(piece)
        return ids

    def tokenize(self, text):
        ids = [self.sot] + self.encode(text) + [self.eot]
        assert len(ids) <= CONTEXT, (text, len(ids))
        return ids + [0] * (CONTEXT - len(ids))


def templates():
    from open_clip.zero_shot_metadata import OPENAI_IMAGENET_TEMPLATES

    fns = list(OPENAI_IMAGENET_TEMPLATES)
    assert len(fns) == N_TEMPLATES, len(fns)
    strs = [f("{}") for f in fns]
    for s, f in zip(strs, fns):
        assert s.count("{}") == 1 and s.count("{") == 1 and s.count("}") == 1, s
        for e in ENTRIES + ["{}", "{0}", "x}{y"]:
            assert s.format(e) == f(e), (s, e)
    assert strs[0] == "a bad photo of a {}." and len(set(strs)) == N_TEMPLATES
    return strs


def check_open_clip(merges, tok, prompts, tmp):
    from open_clip.tokenizer import SimpleTokenizer, bytes_to_unicode

    assert bytes_to_unicode() == BYTE_CHAR and list(bytes_to_unicode()) == list(BYTE_CHAR)
    text = HEADER + "\n" + "\n".join(f"{a} {b}" for a, b in merges)
    gz = os.path.join(tmp, "tiny_bpe.txt.gz")
    with gzip.open(gz, "wb") as f:
        f.write(text.encode("utf-8"))
    oc = SimpleTokenizer(bpe_path=gz)
    assert oc.vocab_size == VOCAB and len(oc.encoder) == VOCAB, oc.vocab_size
    assert (oc.sot_token_id, oc.eot_token_id) == (SOT, EOT), (oc.sot_token_id, oc.eot_token_id)
    assert [oc.decoder[i] for i in range(SOT)] == tok.vocab[:SOT]
    got = oc(prompts, context_length=CONTEXT)
    want = torch.tensor([tok.tokenize(p) for p in prompts])
    assert torch.equal(got, want)
    # the same file with a trailing newline: OpenAI's reader takes the empty line as a merge
    with gzip.open(gz, "wb") as f:
        f.write((text + "\n").encode("utf-8"))
    oc2 = SimpleTokenizer(bpe_path=gz)
    assert oc2.vocab_size == VOCAB + 1 and oc2.sot_token_id == SOT + 1, oc2.vocab_size
    print(f"open_clip SimpleTokenizer agrees on {len(prompts)} prompts (vocab {oc.vocab_size}, "
          f"sot {oc.sot_token_id}, eot {oc.eot_token_id}); with a trailing newline: vocab "
          f"{oc2.vocab_size}, sot {oc2.sot_token_id}")


def load_model():
    model = CLIPModel.from_pretrained(os.path.join(MODEL, "tiny_hf")).eval()
    tc = model.config.text_config
    assert (tc.vocab_size, tc.bos_token_id, tc.eos_token_id, tc.max_position_embeddings) == (
        VOCAB, SOT, EOT, CONTEXT), tc
    osd = torch.load(os.path.join(MODEL, "tiny_openai.pth"), weights_only=True)
    p = dict(model.named_parameters())
    tm = "text_model."
    pairs = [("token_embedding.weight", tm + "embeddings.token_embedding.weight"),
             ("positional_embedding", tm + "embeddings.position_embedding.weight"),
             ("ln_final.weight", tm + "final_layer_norm.weight"),
             ("ln_final.bias", tm + "final_layer_norm.bias")]
    for k, hk in pairs:
        assert torch.equal(osd[k], p[hk]), k
    assert torch.equal(osd["text_projection"], p["text_projection.weight"].T)
    for i in range(tc.num_hidden_layers):
        s = f"{tm}encoder.layers.{i}."
        w = torch.cat([p[s + f"self_attn.{x}_proj.weight"] for x in "qkv"])
        assert torch.equal(osd[f"transformer.resblocks.{i}.attn.in_proj_weight"], w), i
        assert torch.equal(osd[f"transformer.resblocks.{i}.mlp.c_fc.weight"], p[s + "mlp.fc1.weight"]), i
    return model


def text_features(model, ids):
    """CLIP encode_text: projected final-LN state at the argmax (EOT) position; also checks HF's
    own pooling (first eos_token_id position) gives the same."""
    with torch.no_grad():
        out = model.text_model(input_ids=ids)
        pos = ids.argmax(-1)
        first_eos = (ids == model.config.text_config.eos_token_id).int().argmax(-1)
        assert torch.equal(pos, first_eos)
        feats = model.text_projection(out.last_hidden_state[torch.arange(len(ids)), pos])
        hf = model.get_text_features(input_ids=ids).pooler_output
    assert torch.equal(feats, hf)
    return feats


def embed(model, tok, tmpl, dtype, attn="sdpa"):
    model = model.to(dtype)
    model.set_attn_implementation(attn)
    means, per_first, ids_first = [], None, None
    for k, e in enumerate(ENTRIES):
        ids = torch.tensor([tok.tokenize(t.format(e)) for t in tmpl])
        f = text_features(model, ids)
        f = f / f.norm(dim=-1, keepdim=True)
        means.append(f.mean(0))
        if k == 0:
            per_first, ids_first = f, ids
    mean = torch.stack(means)
    return mean, mean / mean.norm(dim=-1, keepdim=True), per_first, ids_first


def main():
    os.makedirs(OUT, exist_ok=True)
    versions = {k: version(k) for k in ("torch", "transformers", "open_clip_torch", "safetensors",
                                        "numpy", "regex")}
    versions["ftfy"] = version("ftfy") if ftfy is not None else None
    print(versions)
    if ftfy is None:
        print("NOTE: ftfy is not installed; cleaning skips ftfy.fix_text")

    tmpl = templates()
    prompts = [t.format(e) for e in ENTRIES for t in tmpl]
    for p in prompts:
        assert clean(p, use_ftfy=True) == clean(p, use_ftfy=False), p

    from open_clip.zero_shot_metadata import IMAGENET_CLASSNAMES

    assert len(IMAGENET_CLASSNAMES) == 1000
    merges, exhausted_at, _ = learn_bpe([prompts, list(IMAGENET_CLASSNAMES)], N_MERGES)
    assert len(merges) == N_MERGES, len(merges)
    print(f"BPE: phase 1 (prompts) exhausted after {exhausted_at[0]} merges; phase 2 (+ImageNet "
          f"class names) stopped at {exhausted_at[1]}")
    tok = ClipBpe(merges)
    assert len(tok.vocab) == VOCAB and len(tok.encoder) == VOCAB, len(tok.encoder)
    assert (tok.sot, tok.eot) == (SOT, EOT)
    for a, b in merges:
        assert " " not in a + b and "\n" not in a + b
    assert all(len(tok.bpe(piece)) == 1 for p in prompts for piece in PAT.findall(clean(p)))

    lengths = {e: [len(tok.encode(t.format(e))) for t in tmpl] for e in ENTRIES}
    longest = max(max(v) for v in lengths.values()) + 2
    assert longest <= CONTEXT
    print(f"longest prompt: {longest} ids with sot/eot (context {CONTEXT})")
    for e in ENTRIES:
        print(f"  {e!r}: {tok.encode(e)} -> {[tok.vocab[i] for i in tok.encode(e)]}")

    with tempfile.TemporaryDirectory() as tmp:
        check_open_clip(merges, tok, prompts, tmp)

    model = load_model()
    # the model and pooling reproduce the CLIP model fixture's own reference
    io = load_file(os.path.join(MODEL, "tiny_io.safetensors"))
    m64 = model.to(torch.float64)
    m64.set_attn_implementation("sdpa")
    e_io = rel_err(text_features(m64, io["input_ids"]), io["text_embeds"])
    print(f"tiny_io text_embeds reproduced: rel err {e_io:.2e}")
    assert e_io < 1e-6

    mean, mean_rn, per_first, ids_first = embed(model, tok, tmpl, torch.float64)
    mean_e, _, per_e, _ = embed(model, tok, tmpl, torch.float64, attn="eager")
    mean32, mean_rn32, per32, ids32 = embed(model, tok, tmpl, torch.float32)
    assert torch.equal(ids32, ids_first)
    errs = {
        "mean": rel_err(mean32, mean),
        "mean_renormalised": rel_err(mean_rn32, mean_rn),
        "per_template_first": rel_err(per32, per_first),
    }
    eager = {"mean": rel_err(mean_e, mean), "per_template_first": rel_err(per_e, per_first)}
    print("f32 vs f64 rel err: " + ", ".join(f"{k} {v:.2e}" for k, v in errs.items()))
    print("eager (f32 softmax) vs sdpa, both f64, rel err: "
          + ", ".join(f"{k} {v:.2e}" for k, v in eager.items()))
    assert max(errs.values()) < 1e-5 and max(eager.values()) < 1e-6

    norms = mean.norm(dim=-1)
    assert ((norms > 0) & (norms < 1)).all(), norms
    assert torch.allclose(mean_rn.norm(dim=-1), torch.ones(len(ENTRIES), dtype=torch.float64))
    assert torch.allclose(per_first.norm(dim=-1), torch.ones(N_TEMPLATES, dtype=torch.float64))
    assert torch.allclose(per_first.mean(0), mean[0], rtol=0, atol=1e-15)
    print(f"mean row norms: {[round(x, 4) for x in norms.tolist()]}")

    with open(os.path.join(OUT, "templates.json"), "w", encoding="utf-8") as f:
        json.dump(tmpl, f, ensure_ascii=False, indent=1)
        f.write("\n")
    with open(os.path.join(OUT, "entries.json"), "w", encoding="utf-8") as f:
        json.dump(ENTRIES, f, ensure_ascii=False, indent=1)
        f.write("\n")
    bpe_text = HEADER + "\n" + "\n".join(f"{a} {b}" for a, b in merges)
    with open(os.path.join(OUT, "tiny_bpe.txt"), "w", encoding="utf-8", newline="") as f:
        f.write(bpe_text)
    tensors = {
        "mean": mean.float().contiguous(),
        "mean_renormalised": mean_rn.float().contiguous(),
        "per_template_first": per_first.float().contiguous(),
        "ids_first": ids_first.to(torch.int64).contiguous(),
    }
    save_file(tensors, os.path.join(OUT, "expected.safetensors"),
              metadata={"generator": "scripts/gen_codebook_template_fixtures.py"})
    meta = {
        "generator": "scripts/gen_codebook_template_fixtures.py",
        "versions": versions,
        "model": "crates/v2l-clip/tests/fixtures/model/tiny_hf",
        "n_templates": N_TEMPLATES,
        "n_entries": len(ENTRIES),
        "n_merges": N_MERGES,
        "vocab_size": VOCAB,
        "sot_id": SOT,
        "eot_id": EOT,
        "context_length": CONTEXT,
        "bpe_phase1_merges": exhausted_at[0],
        "longest_prompt_ids_with_sot_eot": longest,
        "entry_tokens": [{"entry": e, "ids": tok.encode(e), "prompt_len_min": min(lengths[e]),
                          "prompt_len_max": max(lengths[e])} for e in ENTRIES],
        "mean_norms": norms.tolist(),
        "rel_err_f32_vs_f64": errs,
        "rel_err_eager_vs_sdpa_f64": eager,
        "rel_err_tiny_io_text_embeds": e_io,
        "compute": "float64 (.double() of the stored f32 weights), sdpa attention; stored as f32",
    }
    with open(os.path.join(OUT, "meta.json"), "w", encoding="utf-8") as f:
        json.dump(meta, f, ensure_ascii=False, indent=1)
        f.write("\n")

    back = load_file(os.path.join(OUT, "expected.safetensors"))
    assert all(torch.equal(back[k], v) for k, v in tensors.items())
    assert open(os.path.join(OUT, "tiny_bpe.txt"), encoding="utf-8").read().split("\n")[1:] == [
        f"{a} {b}" for a, b in merges]
    total = 0
    for name in sorted(os.listdir(OUT)):
        s = os.path.getsize(os.path.join(OUT, name))
        total += s
        print(f"  {name}: {s} bytes")
    print(f"  total: {total} bytes")
    assert total < 300 * 1024


if __name__ == "__main__":
    main()
