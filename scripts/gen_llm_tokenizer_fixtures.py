#!/usr/bin/env python3
"""Generates the LLM tokenizer fixtures of `crates/v2l-llm` (module `v2l_llm::tokenizer`).

Run by hand (never in CI), from the workspace root, after `v2l assets fetch llama2-vocab
smollm2-135m`:

    python3 -m venv /tmp/venv-fix
    /tmp/venv-fix/bin/pip install torch transformers gguf
    /tmp/venv-fix/bin/python scripts/gen_llm_tokenizer_fixtures.py

(Last run: CPython 3.11, transformers 5.24.0, tokenizers 0.23.3, gguf 0.19.0, node 20. Node runs
`scripts/gen_llama2_tokenizer_reference.mjs`, the package's own JavaScript tokenizer.)

Writes to `crates/v2l-llm/tests/fixtures/tokenizer/`:

* `llama2.json`: for hand-written and seeded-random strings, the ids of llama-tokenizer-js's own
  `encode` (BOS + the text with a preceding space) and its `decode`; the ids and decodes of an HF
  `tokenizers` pipeline laid out as LLaMA-2's `tokenizer.json` (normalizer Prepend("▁") +
  Replace(" ", "▁"), BPE with byte fallback over the package's vocabulary and merges, decoder
  Replace / ByteFallback / Fuse / Strip); and `decode([id])` of transformers' `LlamaTokenizer` built
  from the same vocabulary and merges, for a few thousand ids.
* `llama_gguf.json`: the same strings through a SentencePiece ("llama") GGUF built from the
  package's vocabulary with synthetic scores (the rule is `synthetic_llama_scores` below; the Rust
  test builds the identical file in memory), as tokenized by transformers'
  `AutoTokenizer.from_pretrained(..., gguf_file=...)`, and by the LLaMA-2 pipeline above over
  the merges transformers derives from those scores.
* `smollm2.json`: the strings (plus ChatML ones) through the SmolLM2-135M-Instruct GGUF as loaded by
  transformers' `AutoTokenizer.from_pretrained(..., gguf_file=...)`; the same tokenizer with
  SmolLM2's `Digits(individual_digits=True)` pre-tokenizer step restored (what llama.cpp's
  "smollm" pre-tokenizer and SmolLM2's own `tokenizer.json` do, and what the Rust side
  implements; transformers' GGUF converter has no entry for "smollm" and drops it); decodes; and
  `decode([id])` for a few thousand ids, including every id whose bytes are not valid UTF-8 alone.
"""

import hashlib
import json
import os
import random
import re
import base64
import struct
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "crates", "v2l-llm", "tests", "fixtures", "tokenizer")
MJS = os.path.join(ROOT, "scripts", "gen_llama2_tokenizer_reference.mjs")
ASSETS = os.path.join(os.environ.get("V2L_HOME", os.path.expanduser("~/.cache/v2l")), "assets")
LLAMA_JS = os.path.join(ASSETS, "llama2-vocab", "llama-tokenizer.js")
SMOL_GGUF = os.path.join(ASSETS, "smollm2-135m", "SmolLM2-135M-Instruct.Q4_1.gguf")
LLAMA_JS_SHA256 = "34a7b9f7579d40486444590c37cba6564ef40c3dd98ecdfc2f7c886ae72c898d"
SMOL_GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"

HAND = [
    # ASCII
    "", "Hello world", "hello world", "HELLO WORLD", "Hello, world!", "Hello world.",
    "The quick brown fox jumps over the lazy dog.", "grabbed", " grabbed", "           grabbed",
    "a", "A", "I", "x y z", "abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
    "supercalifragilisticexpialidocious", "antidisestablishmentarianism",
    # whitespace runs, leading / trailing, newlines, tabs
    " ", "  ", "   ", "        ", "\n", " \n", "\n ", "\n\n", "\n\n\n", "\n \n", "\r\n", "\t", " \t ",
    "\ttabs\t\t\t\tout here", " leading space", "  two leading spaces", "   three leading",
    "trailing space ", "trailing spaces   ", "  both sides  ", "multiple   spaces   inside",
    "line one\nline two\r\nline three\rfour", "para one\n\npara two", "indented\n    code\n\tand tab",
    "ax\n####\nboo", "ends with newline\n", "\nstarts with newline",
    # accents, scripts, RTL
    "café naïve résumé façade", "Crème brûlée à la française", "e\u0301 (e + combining acute)",
    "Ñandú, pingüino, Straße, ÆØÅ æøå, ĳ, œ", "Ελληνικά κείμενα", "Русский текст, ёжик",
    "中文分词测试", "我爱北京天安门", "日本語のテキスト、カタカナ、ひらがな", "한국어 텍스트", "镇", "一个",
    "ภาษาไทย", "हिन्दी पाठ", "مرحبا بالعالم", "שלום עולם", "mixed עברית and English",
    "العربية 123 English", "\u202eRLO override\u202c",
    # emoji
    "🦙", "🦙Ꙋ", "Ꙋ🦙", "emoji 😀😃😄 in text", "👍🏽 thumbs", "👨\u200d👩\u200d👧\u200d👦 family",
    "🇫🇷🇯🇵 flags", "❤️ red heart", "☃ snowman ★ star", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 math",
    # digits and numbers
    "0", "7", "42", "123", "1234", "12345678901234567890", "3.14159", "-2.5e-10", "1,000,000",
    "$19.99", "50%", "2024-11-26", "v2.1.0", "x86_64", "in 2024", "in  2024", "a  12", "  7",
    "1 2  3   4", "² ³ ½ ¼ Ⅻ ① ٣٤٥ १२३ １２３", "x²+y²=z²", "Ⅳ", " ①", "\t42",
    # contractions, punctuation, code
    "I'm", "don't", "they'll", "we've", "she'd", "it's", "IT'S", "You're", "O'Neil's", "'s",
    "!!!???...", "---===+++", "(parentheses) [brackets] {braces} <angles>", "@user #hashtag",
    "a/b\\c|d", "\"quoted\" and 'single'", "“curly” ‘quotes’ — dash – en … ellipsis",
    "https://example.com/path?query=1&x=y#frag", "user@example.com",
    "def f(x):\n    return x ** 2\n", "fn main() {\n\tprintln!(\"hi\");\n}\n",
    "<html><body>Hi</body></html>", "SELECT * FROM t WHERE a = 'b';",
    # unusual whitespace and control characters
    "\u00a0nbsp\u00a0", "ideographic\u3000space", "line\u2028separator", "para\u2029separator",
    "vertical\x0btab", "form\x0cfeed", "next\x85line", "zero\u200bwidth", "\x00nul\x7fdel",
    "soft\u00adhyphen", "\ufeffBOM", "en\u2002space em\u2003space thin\u2009space",
    # long text
    "The llama (/ˈlɑːmə/; 🦙Spanish pronunciation: [ˈʎama]) (Lama glama) is a domesticated South "
    "American camelid, widely used as a meat and pack animal by Andean cultures since the "
    "pre-Columbian era. Llamas are social animals and live with others as a herd.",
    # vocabulary look-alikes and special-token text
    "▁", "▁▁x", "Ġ", "Ċ", "<0x0A>", "<unk>", "<s>", "</s>", "a<s>b", "Hello </s> world",
]

SMOL_EXTRA = [
    "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face"
    "<|im_end|>\n<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n",
    "<|im_start|><|im_end|>", "<|im_start|>user\nHi<|im_end|>", "text<|endoftext|>more",
    "<|im_start|", "< |im_start|>", "<|im_end|>\n", " <|im_start|> spaced ", "<repo_name>x<file_sep>y",
    "<|endoftext|><|endoftext|>",
]

POOL = (
    list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
    + list(" " * 12 + "\n" * 4 + "\t" * 2)
    + list(".,;:!?'\"()[]{}<>-_=+*/\\|@#$%^&~`")
    + list("éèêëàâäçñöüßøåæœ")
    + list("中文字日本語한국어ภาษา")
    + list("αβγδжзий")
    + list("مرحباשלום")
    + ["😀", "🦙", "👍🏽", "🇫🇷", "❤️", "𝔘"]
    + list("\u00a0\u3000\u2028\u200b\x85\x0b\x0c")
    + list("²½Ⅻ①٣１")
    + ["the", " the", "ing", " and", "tion", "  ", "\n\n", "▁", "Ġ"]
)


def random_strings(n, seed):
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        k = rng.randint(1, 40)
        out.append("".join(rng.choice(POOL) for _ in range(k)))
    return out


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_json(name, obj):
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, name)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {path} ({os.path.getsize(path)} bytes)")


# ----------------------------------------------------------------------------------- LLaMA-2

def read_llama_js():
    src = open(LLAMA_JS, encoding="utf-8").read()
    vocab_b64 = re.search(r'const llama_vocab_base64 = "([^"]*)"', src).group(1)
    merges_b64 = re.search(r'const llama_merges_binary = "([^"]*)"', src).group(1)
    vocab = base64.b64decode(vocab_b64).decode("utf-8").split("\n")
    raw = base64.b64decode(merges_b64)
    ids = struct.unpack("<%dH" % (len(raw) // 2), raw)
    merges = [(vocab[ids[i]], vocab[ids[i + 1]]) for i in range(0, len(ids), 2)]
    return vocab, merges


def llama2_pipeline(vocab, merges, add_space_prefix=True):
    """HF `tokenizers` laid out as LLaMA-2's `tokenizer.json`."""
    from tokenizers import AddedToken, Tokenizer, decoders, normalizers, processors
    from tokenizers.models import BPE

    tok = Tokenizer(BPE({t: i for i, t in enumerate(vocab)}, merges, unk_token="<unk>",
                        fuse_unk=True, byte_fallback=True))
    norm = [normalizers.Replace(" ", "\u2581")]
    if add_space_prefix:
        norm.insert(0, normalizers.Prepend("\u2581"))
    tok.normalizer = normalizers.Sequence(norm)
    dec = [decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse()]
    if add_space_prefix:
        dec.append(decoders.Strip(" ", 1, 0))
    tok.decoder = decoders.Sequence(dec)
    tok.add_special_tokens([AddedToken(t, normalized=False, special=True)
                            for t in ("<unk>", "<s>", "</s>")])
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s>:1 $B:1", special_tokens=[("<s>", 1)])
    return tok


def llama2_fixture(strings, vocab, merges):
    with tempfile.TemporaryDirectory() as tmp:
        sp = os.path.join(tmp, "strings.json")
        op = os.path.join(tmp, "js.json")
        with open(sp, "w", encoding="utf-8") as f:
            json.dump(strings, f, ensure_ascii=False)
        subprocess.run(["node", MJS, LLAMA_JS, sp, op], check=True, stdout=subprocess.DEVNULL)
        js = json.load(open(op, encoding="utf-8"))
    hf = llama2_pipeline(vocab, merges)
    cases = []
    differ = []
    for c in js["cases"]:
        text = c["text"]
        ids = hf.encode(text).ids
        case = {
            "text": text,
            "js_ids": c["ids"],
            "js_decoded": c["decoded"],
            "hf_ids": ids,
            "hf_decoded": hf.decode(ids, skip_special_tokens=False),
            "hf_decoded_skip": hf.decode(ids, skip_special_tokens=True),
        }
        if ids != c["ids"]:
            differ.append(text)
        cases.append(case)
    print(f"llama2: {len(cases)} strings; HF pipeline != JS on {len(differ)}: {differ!r}")

    from transformers import LlamaTokenizer

    tf = LlamaTokenizer(vocab={t: i for i, t in enumerate(vocab)}, merges=merges)
    rng = random.Random(7)
    ids = sorted(set(range(0, 400)) | set(rng.sample(range(400, len(vocab)), 2600))
                 | {259, 29871, 29889, 30010, 31999})
    single = [[i, tf.decode([i])] for i in ids]
    for i, s in single:
        assert s == hf.decode([i], skip_special_tokens=False), (i, s)
    write_json("llama2.json", {
        "source": {"package": js["package"], "sha256": js["sha256"], "node": js["node"]},
        "hf_differs_from_js": differ,
        "cases": cases,
        "decode_single": single,
    })


# ------------------------------------------------------------------- LLaMA-2 as a "llama" GGUF

def synthetic_llama_scores(vocab, merges):
    """Token types and scores for the synthetic SentencePiece GGUF (the Rust test mirrors this).

    Types: 0 `<unk>` UNKNOWN (2), 1-2 CONTROL (3), 3-258 BYTE (6), the rest NORMAL (1).
    Scores: 0 for non-normal tokens; for a normal token, minus the index of the first merge of
    the package's list that produces it, or -(1_000_000 + id) when no merge does.
    """
    first = {}
    for k, (a, b) in enumerate(merges):
        first.setdefault(a + b, k)
    types, scores = [], []
    for i, t in enumerate(vocab):
        if i == 0:
            types.append(2)
        elif i < 3:
            types.append(3)
        elif i < 259:
            types.append(6)
        else:
            types.append(1)
        scores.append(0.0 if i < 259 else -float(first.get(t, 1_000_000 + i)))
    return types, scores


def llama_gguf_fixture(strings, vocab, merges):
    import gguf
    from transformers import AutoTokenizer
    from transformers.integrations.gguf.gguf_tokenizer_mapping import get_merges

    types, scores = synthetic_llama_scores(vocab, merges)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "llama2-vocab.gguf")
        w = gguf.GGUFWriter(path, "llama")
        w.add_context_length(4096)
        w.add_embedding_length(64)
        w.add_block_count(1)
        w.add_feed_forward_length(128)
        w.add_head_count(4)
        w.add_head_count_kv(4)
        w.add_layer_norm_rms_eps(1e-5)
        w.add_vocab_size(len(vocab))
        w.add_tokenizer_model("llama")
        w.add_tokenizer_pre("default")
        w.add_token_list(vocab)
        w.add_token_scores(scores)
        w.add_token_types(types)
        w.add_bos_token_id(1)
        w.add_eos_token_id(2)
        w.add_unk_token_id(0)
        w.add_add_bos_token(True)
        w.add_add_eos_token(False)
        w.add_bool("tokenizer.ggml.add_space_prefix", True)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        tf = AutoTokenizer.from_pretrained(tmp, gguf_file="llama2-vocab.gguf")
        derived = get_merges({"tokens": vocab, "scores": scores})
    ref = llama2_pipeline(vocab, derived)
    cases, differ = [], []
    for text in strings:
        ids = ref.encode(text).ids
        tids = tf.encode(text)
        cases.append({
            "text": text,
            "ref_ids": ids,
            "transformers_ids": tids,
            "transformers_ids_no_special": tf.encode(text, add_special_tokens=False),
        })
        if tids != ids:
            differ.append(text)
    print(f"llama gguf: {len(derived)} derived merges; transformers != reference on "
          f"{len(differ)}: {differ!r}")
    write_json("llama_gguf.json", {
        "rule": synthetic_llama_scores.__doc__.strip(),
        "n_derived_merges": len(derived),
        "transformers_differs": differ,
        "cases": cases,
    })


# ----------------------------------------------------------------------------------- SmolLM2

def smollm2_fixture(strings):
    from tokenizers import Tokenizer, pre_tokenizers
    from transformers import AutoTokenizer

    with tempfile.TemporaryDirectory() as tmp:
        os.symlink(SMOL_GGUF, os.path.join(tmp, "smollm2.gguf"))
        tf = AutoTokenizer.from_pretrained(tmp, gguf_file="smollm2.gguf")
    fixed = Tokenizer.from_str(tf.backend_tokenizer.to_str())
    fixed.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])
    cases, differ = [], []
    for text in strings:
        tids = tf.encode(text, add_special_tokens=False)
        ids = fixed.encode(text, add_special_tokens=False).ids
        cases.append({
            "text": text,
            "ids": ids,
            "transformers_ids": tids,
            "transformers_ids_add_special": tf.encode(text, add_special_tokens=True),
            "decoded": tf.decode(ids),
            "decoded_skip": tf.decode(ids, skip_special_tokens=True),
        })
        if tids != ids:
            differ.append(text)
    print(f"smollm2: {len(cases)} strings; transformers (no Digits step) differs on "
          f"{len(differ)}: {differ!r}")

    n = len(tf)
    singles = {i: tf.decode([i]) for i in range(n)}
    invalid = [i for i, s in singles.items() if "\ufffd" in s]
    rng = random.Random(11)
    ids = set(range(0, 300)) | set(invalid) | set(rng.sample(range(300, n), 2500)) | {n - 1}
    print(f"smollm2: {n} ids, {len(invalid)} decode to U+FFFD alone; {len(ids)} in the fixture")
    write_json("smollm2.json", {
        "source": {"file": os.path.basename(SMOL_GGUF), "sha256": SMOL_GGUF_SHA256},
        "vocab_size": n,
        "bos": tf.bos_token, "eos": tf.eos_token,
        "bos_id": tf.bos_token_id, "eos_id": tf.eos_token_id,
        "transformers_differs": differ,
        "cases": cases,
        "decode_single": [[i, singles[i]] for i in sorted(ids)],
        "n_invalid_utf8_singles": len(invalid),
    })


def main():
    for path, digest in ((LLAMA_JS, LLAMA_JS_SHA256), (SMOL_GGUF, SMOL_GGUF_SHA256)):
        if sha256(path) != digest:
            sys.exit(f"{path}: sha256 mismatch")
    strings = HAND + random_strings(200, 20261126)
    vocab, merges = read_llama_js()
    assert len(vocab) == 32000 and len(merges) == 61249
    llama2_fixture(strings, vocab, merges)
    llama_gguf_fixture(strings, vocab, merges)
    smollm2_fixture(strings + SMOL_EXTRA)


if __name__ == "__main__":
    main()
