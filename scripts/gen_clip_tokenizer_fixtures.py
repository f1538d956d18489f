#!/usr/bin/env python3
"""Generates the CLIP BPE tokenizer fixtures of `crates/v2l-clip` with the reference tokenizer.

Run by hand (never in CI), from the workspace root, after `v2l assets fetch clip-bpe
llama2-vocab smollm2-135m`:

    python3 -m venv /tmp/venv-fix
    /tmp/venv-fix/bin/pip install torch torchvision ftfy==6.3.1 regex gguf packaging tqdm
    /tmp/venv-fix/bin/pip install --no-deps openai-clip==1.0.1 open_clip_torch==3.3.0
    /tmp/venv-fix/bin/python scripts/gen_clip_tokenizer_fixtures.py

(Last run: CPython 3.11.7, ftfy 6.3.1, regex 2026.11.19, torch 2.15.0, gguf 0.19.0. Without
torch / torchvision the script loads `clip/simple_tokenizer.py` by path and applies
`clip.tokenize`'s padding and truncation rule itself.)

Writes

* `crates/v2l-clip/tests/fixtures/tokenizer/reference.json.gz`: hand-written, generated and
  seeded-random strings with OpenAI's `simple_tokenizer` ids, the cleaned text, `clip.tokenize`
  rows (context lengths 77 / 16 / 5, with and without truncation), `decode` outputs, vocabulary
  samples, and the per-code-point tables the Rust side must agree with (`str.lower`, `str.isspace`,
  the `regex` module's `\\p{L}` / `\\p{N}`).
* `crates/v2l-clip/tests/fixtures/tokenizer/vocab_pieces.json.gz`: every LLaMA-2 and SmolLM2
  vocabulary piece, decoded the way the LLM tokenizers decode one id, with its CLIP ids.
* `crates/v2l-clip/src/text_clean/html_entities.rs`: Python's `html.entities.html5` table as a
  sorted Rust slice.

Strings whose reference result depends on ftfy's mojibake repair (`fix_encoding`, which the Rust
side does not implement) also carry the result with `fix_text(..., fix_encoding=False)`
(`clean_noenc` / `ids_noenc`); the Rust tests compare against those and count the deviations.
"""

import base64
import gzip
import hashlib
import html
import html.entities
import importlib.util
import json
import os
import random
import re
import sys
import types
import unicodedata

import ftfy
import ftfy.chardata
import regex

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "crates", "v2l-clip", "tests", "fixtures", "tokenizer")
ENTITIES_RS = os.path.join(ROOT, "crates", "v2l-clip", "src", "text_clean", "html_entities.rs")
ASSETS = os.path.join(os.environ.get("V2L_HOME", os.path.expanduser("~/.cache/v2l")), "assets")
BPE = os.path.join(ASSETS, "clip-bpe", "bpe_simple_vocab_16e6.txt.gz")
LLAMA_JS = os.path.join(ASSETS, "llama2-vocab", "llama-tokenizer.js")
SMOL_GGUF = os.path.join(ASSETS, "smollm2-135m", "SmolLM2-135M-Instruct.Q4_1.gguf")

# The 80 prompt templates of OpenAI's ImageNet zero-shot notebook.
IMAGENET_TEMPLATES = [
    "a bad photo of a {}.",
    "a photo of many {}.",
    "a sculpture of a {}.",
    "a photo of the hard to see {}.",
    "a low resolution photo of the {}.",
    "a rendering of a {}.",
    "graffiti of a {}.",
    "a bad photo of the {}.",
    "a cropped photo of the {}.",
    "a tattoo of a {}.",
    "the embroidered {}.",
    "a photo of a hard to see {}.",
    "a bright photo of a {}.",
    "a photo of a clean {}.",
    "a photo of a dirty {}.",
    "a dark photo of the {}.",
    "a drawing of a {}.",
    "a photo of my {}.",
    "the plastic {}.",
    "a photo of the cool {}.",
    "a close-up photo of a {}.",
    "a black and white photo of the {}.",
    "a painting of the {}.",
    "a painting of a {}.",
    "a pixelated photo of the {}.",
    "a sculpture of the {}.",
    "a bright photo of the {}.",
    "a cropped photo of a {}.",
    "a plastic {}.",
    "a photo of the dirty {}.",
    "a jpeg corrupted photo of a {}.",
    "a blurry photo of the {}.",
    "a photo of the {}.",
    "a good photo of the {}.",
    "a rendering of the {}.",
    "a {} in a video game.",
    "a photo of one {}.",
    "a doodle of a {}.",
    "a close-up photo of the {}.",
    "a photo of a {}.",
    "the origami {}.",
    "the {} in a video game.",
    "a sketch of a {}.",
    "a doodle of the {}.",
    "a origami {}.",
    "a low resolution photo of a {}.",
    "the toy {}.",
    "a rendition of the {}.",
    "a photo of the clean {}.",
    "a photo of a large {}.",
    "a rendition of a {}.",
    "a photo of a nice {}.",
    "a photo of a weird {}.",
    "a blurry photo of a {}.",
    "a cartoon {}.",
    "art of a {}.",
    "a sketch of the {}.",
    "a embroidered {}.",
    "a pixelated photo of a {}.",
    "itap of the {}.",
    "a jpeg corrupted photo of the {}.",
    "a good photo of a {}.",
    "a plushie {}.",
    "a photo of the nice {}.",
    "a photo of the small {}.",
    "a photo of the weird {}.",
    "the cartoon {}.",
    "art of the {}.",
    "a drawing of the {}.",
    "a photo of the large {}.",
    "a black and white photo of a {}.",
    "the plushie {}.",
    "a dark photo of a {}.",
    "itap of a {}.",
    "graffiti of the {}.",
    "a toy {}.",
    "itap of my {}.",
    "a photo of a cool {}.",
    "a photo of a small {}.",
    "a tattoo of the {}.",
]


def load_reference():
    """OpenAI's `clip` package (tokenize) and its `simple_tokenizer` module."""
    site = os.path.dirname(os.path.dirname(os.path.abspath(ftfy.__file__)))
    try:
        # `clip/clip.py` imports `packaging` through setuptools' `pkg_resources`.
        import packaging.version

        shim = types.ModuleType("pkg_resources")
        shim.packaging = packaging
        sys.modules.setdefault("pkg_resources", shim)
        import clip  # noqa: F401
        import clip.simple_tokenizer as st

        return clip.tokenize, st
    except Exception as err:  # the package __init__ needs torch/torchvision
        print(f"note: `import clip` failed ({err}); loading simple_tokenizer.py by path")
        path = os.path.join(site, "clip", "simple_tokenizer.py")
        spec = importlib.util.spec_from_file_location("clip_simple_tokenizer", path)
        st = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(st)
        return None, st


def file_sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def llama_pieces():
    js = open(LLAMA_JS, encoding="utf-8").read()
    m = re.search(r'const llama_vocab_base64 = "([^"]+)"', js)
    return base64.b64decode(m.group(1)).decode("utf-8").split("\n")


def llama_decode_one(piece):
    """What a SentencePiece decoder makes of a single id: byte pieces become their byte
    (lossy UTF-8), '▁' becomes a space and the leading space of the text is dropped."""
    m = re.fullmatch(r"<0x([0-9A-F]{2})>", piece)
    if m:
        return bytes([int(m.group(1), 16)]).decode("utf-8", errors="replace")
    text = piece.replace("\u2581", " ")
    return text[1:] if text.startswith(" ") else text


def smol_pieces():
    from gguf import GGUFReader

    field = GGUFReader(SMOL_GGUF).fields["tokenizer.ggml.tokens"]
    return [bytes(field.parts[i]).decode("utf-8") for i in field.data]


def gpt2_decode_one(piece, byte_decoder):
    """GPT-2 byte-level decoding of one piece ('Ġdog' -> ' dog'); special tokens stay as is."""
    if all(c in byte_decoder for c in piece):
        return bytes(byte_decoder[c] for c in piece).decode("utf-8", errors="replace")
    return piece


def ranges(pred):
    """Sorted [start, end] (inclusive) code point ranges where pred(chr(cp)) holds."""
    out = []
    for cp in range(0x110000):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        if pred(chr(cp)):
            if out and out[-1][1] == cp - 1:
                out[-1][1] = cp
            else:
                out.append([cp, cp])
    return out


def rust_str(s):
    out = []
    for c in s:
        if c in '"\\':
            out.append("\\" + c)
        elif 0x20 <= ord(c) < 0x7F:
            out.append(c)
        else:
            out.append("\\u{%x}" % ord(c))
    return '"' + "".join(out) + '"'


def write_entities_rs():
    html5 = sorted(html.entities.html5.items(), key=lambda kv: kv[0].encode())
    lines = [
        "// @generated by scripts/gen_clip_tokenizer_fixtures.py; do not edit.",
        f"// Python {sys.version.split()[0]} `html.entities.html5`, sorted by name (byte order) for",
        "// binary search. ftfy's extra upper-case names are derived from it at run time.",
        "",
        "/// HTML5 named character references (`html.entities.html5`): name without the",
        "/// leading `&`, with its `;` where the standard has one, and the replacement text.",
        "pub(super) static HTML5: &[(&str, &str)] = &[",
    ]
    lines += [f"    ({rust_str(k)}, {rust_str(v)})," for k, v in html5]
    lines += ["];", ""]
    os.makedirs(os.path.dirname(ENTITIES_RS), exist_ok=True)
    with open(ENTITIES_RS, "w", encoding="ascii") as f:
        f.write("\n".join(lines))
    print(f"wrote {ENTITIES_RS}: {len(html5)} entities")


ASCII_CASES = [
    "",
    " ",
    "   \t \n  ",
    "\t\n\r\x0b\x0c",
    "a photo of a dog.",
    "A Photo Of A DOG!",
    "Hello, World!!",
    "1234567",
    "3.14159 and 2,718 and -42",
    "it's we'll they're I've I'm you'd don't",
    "IT'S WE'LL THEY'RE",
    "'s 's's ''s x's",
    "rock'n'roll o'clock",
    "<|startoftext|>",
    "<|endoftext|>",
    "<|startoftext|>hello<|endoftext|>",
    "<|STARTOFTEXT|> shouting <|EndOfText|>",
    "<|startoftext",
    "< | startoftext | >",
    "tabs\tand\nnewlines\r\nand\rreturns",
    "multiple     spaces   between    words",
    "  leading and trailing  ",
    "supercalifragilisticexpialidocious",
    "pneumonoultramicroscopicsilicovolcanoconiosis" * 3,
    "a" * 300,
    "ab" * 200,
    "x" * 1000,
    "!!!???...,,,;;;:::",
    "#hashtag @mention $100 50% 3^2 a&b a & b",
    "email: someone@example.com, url: https://example.org/path?q=1&r=2",
    "snake_case camelCase kebab-case PascalCase",
    "C++ and C# and F# and .NET",
    "~`!@#$%^&*()_+-={}[]|\\:\";'<>?,./",
    "quote\"inside\" and 'single'",
    "don''t can't won't shan't y'all",
    "the year 2024 and 1999s 80s",
    "0 00 000 0000",
    "a\x00b\x01c\x7fd",
    "\x1b[31mred\x1b[0m text",
    "\x1b[1;32;40mbold green\x1b[m",
    "\x1b[",
    "\x1b[\u0663m arabic-indic digit in an escape \x1b[x",
    "a - b -- c --- d",
    "end.",
    ".",
    "'",
    "&",
    "<",
]

UNICODE_CASES = [
    "café naïve résumé",
    "cafe\u0301 nai\u0308ve",
    "Ångström Å Å",
    "ñ n\u0303 N\u0303",
    "Straße STRASSE ß ẞ",
    "İstanbul ıi İI",
    "ΟΔΥΣΣΕΥΣ Σ ΣΑ ΑΣ. ΑΣ",
    "ſ long s, it'ſ ﬅ",
    "<|ſtartoftext|> <|ſtartoftext|",
    "ǅ ǈ ǋ ǲ Ǳ",
    "日本語のテキスト",
    "中文文本测试",
    "한국어 텍스트 ᄒ\u1161\u11ab",
    "Привет, мир!",
    "Γειά σου Κόσμε",
    "مرحبا بالعالم",
    "שלום עולם",
    "नमस्ते दुनिया",
    "สวัสดีชาวโลก",
    "emoji 😀😃😄 🐶🐱",
    "👍🏽 👋🏿 skin tones",
    "👨‍👩‍👧‍👦 family zwj",
    "🏳️‍🌈 flag 🇺🇸 🇩🇪",
    "🏴\U000e0067\U000e0062\U000e0077\U000e006c\U000e0073\U000e007f wales",
    "“curly double” ‘curly single’ ‛odd‛ ‟odd‟ ʼmodifier",
    "it’s we’ll",
    "ﬁne ﬂower ﬀ ﬃ ﬄ ﬆ Ĳssel ĳs ŉ",
    "ＡＢＣ ａｂｃ １２３ ！？",
    "ｶﾀｶﾅ ﾊﾝｶｸ",
    "full\u3000width\u3000space",
    "line\u2028separator\u2029paragraph",
    "next\x85line",
    "c1 \x80 \x81 \x8d \x91quoted\x92 \x96 \x9f",
    "\u206adeprecated\u206f \ufeffbom \ufffcobj \ufff9ann\ufffb",
    "zero\u200bwidth\u200cjoin\u200dx\u200e\u200f",
    "nbsp\u00a0here and\u202fthere",
    "½ ¼ ¾ ² ³ ¹",
    "Ⅻ ⅻ ① ⑩ ㊿",
    "٣٤٥ ۱۲۳ ३४५",
    "x\u0345y ᾳ α\u0345",
    "a\u0301\u0302\u0303 stacked",
    "\u0301 leading combining",
    "®©™ §¶ °±µ",
    "€100 £50 ¥1000 ₿",
    "→ ← ↑ ↓ ⇒ ∀ ∃ ∈ ≤ ≥",
    "Ｕﾀｰﾝ",
    "\uffe3 fullwidth macron \uffe5",
    "¡Hola! ¿Qué tal?",
    "Ü Ö Ä ü ö ä",
    "Ǆ ǅ ǆ",
    "K Kelvin Å Angstrom",
    "\ud7a3 \uac00 \u3131",
]

HTML_CASES = [
    "&amp;",
    "&lt;b&gt;bold&lt;/b&gt;",
    "&#39;quoted&#39;",
    "&#x27;hex&#X27;",
    "caf&eacute; &Eacute;",
    "&EACUTE; &NTILDE; &nTILDE; &SZLIG;",
    "&amp;amp; double",
    "&amp;amp;amp; triple",
    "&amp;lt;tag&amp;gt;",
    "&nbsp;non&nbsp;breaking",
    "&copy 2024 &copy; &COPY;",
    "&notit; &notin; &not",
    "&ampfoo &amp;foo",
    "&hellip; &mdash; &ndash; &ldquo;q&rdquo; &lsquo;q&rsquo;",
    "&#0; &#1; &#8; &#9; &#10; &#13; &#128; &#x80; &#x9F; &#159;",
    "&#55296; &#xD800; &#1114111; &#1114112; &#x110000; &#99999999999999999999;",
    "&#xFFFE; &#xFDD0; &#x10FFFF; &#65; &#065 &#x41 &#x4g",
    "&#59; &#x3B; semicolon",
    "&; &#; &#x; & amp; &am",
    "&NotEqualTilde; &Jscr; &HilbertSpace; &fjlig;",
    "<p>html &amp; tags</p>",
    "a < b &amp; c",
    "first line &amp;\nsecond < line &amp;\nthird &amp;",
    "first &amp; line\nsecond &amp;",
    "&lt;script&gt;alert(1)&lt;/script&gt;",
    "AT&amp;T AT&T",
    "&#x1F600; &#128512;",
    "&#x301;e &#769;",
    "e&#x301; composed?",
    "&Aacute&Aacute; &aacuteX",
    "&" + "a" * 40 + ";",
    "&zwj; &zwnj; &shy;",
    "&lt;|startoftext|&gt;",
]

MOJIBAKE_CASES = [
    "cafÃ©",
    "The Mona Lisa doesnÃ¢â‚¬â„¢t have eyebrows.",
    "â€œquotedâ€\x9d",
    "Ã\xa0 la mode",
    "sÃ³ isso",
    "uÌˆber",
    "\x93windows quotes\x94",
]


def fuzz_cases(rng, n):
    pool = (
        list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
        + [" ", " ", " ", "  ", "\t", "\n", "\r", "\r\n", "\x0b", "\x0c", "\x00", "\x07", "\x1f"]
        + list(".,;:!?'\"-_()[]{}<>/\\|@#$%^*+=~`")
        + ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'ſ", "'LL"]
        + ["&amp;", "&lt;", "&gt;", "&quot;", "&#39;", "&#x27;", "&eacute;", "&EACUTE;"]
        + ["&amp;amp;", "&nbsp;", "&copy", "&not", "&#0;", "&#128;", "&#x9F;", "&#1;", "&#13;"]
        + ["&#55296;", "&#x110000;", "&;", "&#;", "&", "&#59;", "&hellip;", "&ldquo;"]
        + ["\x1b[31m", "\x1b[0m", "\x1b[1;2m", "\x1b["]
        + ["é", "e\u0301", "ñ", "ß", "İ", "Σ", "σ", "ς", "ſ", "ﬁ", "ﬅ", "Ĳ", "ǅ"]
        + ["Ａ", "ｚ", "５", "！", "ｶ", "ﾞ", "\u3000", "\uffe3"]
        + ["“", "”", "‘", "’", "ʼ", "‛", "‟", "\u2028", "\u2029", "\x85"]
        + ["\x80", "\x81", "\x8d", "\x91", "\x9d", "\x9f", "\u206a", "\ufeff", "\ufffc"]
        + ["\u200b", "\u200d", "\u00a0", "\u202f", "\u0301", "\u0308", "\u0345"]
        + ["😀", "👍🏽", "👨‍👩‍👧", "🇺🇸", "日本", "中文", "한", "ᄒ\u1161", "Привет"]
        + ["مرحبا", "שלום", "नमस्ते", "ไทย", "Ω", "Å", "K", "½", "²", "Ⅻ", "①", "٣"]
        + ["<|startoftext|>", "<|endoftext|>", "café", "naïve"]
    )
    out = []
    for _ in range(n):
        k = rng.randint(1, 14)
        out.append("".join(rng.choice(pool) for _ in range(k)))
    return out


def main():
    tokenize, st = load_reference()
    assert file_sha256(BPE) == "924691ac288e54409236115652ad4aa250f48203de50a9e4722a6ecd48d6804a"
    packaged = os.path.join(os.path.dirname(st.__file__), "bpe_simple_vocab_16e6.txt.gz")
    assert file_sha256(packaged) == file_sha256(BPE), "clip's packaged BPE file differs"
    tok = st.SimpleTokenizer(BPE)
    sot, eot = tok.encoder["<|startoftext|>"], tok.encoder["<|endoftext|>"]

    try:
        import open_clip.zero_shot_metadata as zsm

        ref = [t("{}") for t in zsm.OPENAI_IMAGENET_TEMPLATES]
        assert ref == IMAGENET_TEMPLATES, "template list differs from open_clip's"
    except ImportError:
        pass
    assert len(IMAGENET_TEMPLATES) == 80

    def clean(text, fix_encoding=True):
        text = ftfy.fix_text(text, fix_encoding=fix_encoding)
        text = html.unescape(html.unescape(text)).strip()
        return st.whitespace_clean(text).lower()

    def bpe_ids(cleaned):
        ids = []
        for token in regex.findall(tok.pat, cleaned):
            token = "".join(tok.byte_encoder[b] for b in token.encode("utf-8"))
            ids.extend(tok.encoder[t] for t in tok.bpe(token).split(" "))
        return ids

    def encode_case(text, group):
        ids = tok.encode(text)
        cleaned = clean(text)
        assert bpe_ids(cleaned) == ids
        case = {"group": group, "text": text, "clean": cleaned, "ids": ids}
        noenc = clean(text, fix_encoding=False)
        if noenc != cleaned:
            case["clean_noenc"] = noenc
            case["ids_noenc"] = bpe_ids(noenc)
        return case

    rng = random.Random(20240611)
    encode = []
    for t in ASCII_CASES:
        encode.append(encode_case(t, "ascii"))
    for t in UNICODE_CASES:
        encode.append(encode_case(t, "unicode"))
    for t in HTML_CASES:
        encode.append(encode_case(t, "html"))
    for t in MOJIBAKE_CASES:
        encode.append(encode_case(t, "mojibake"))
    for t in fuzz_cases(rng, 1500):
        encode.append(encode_case(t, "fuzz"))

    # Vocabulary pieces of the two LLMs, filled into the 80 templates.
    llama = llama_pieces()
    smol = smol_pieces()
    byte_decoder = tok.byte_decoder
    llama_ids = rng.sample(range(3, len(llama)), 16) + [3 + 0x0A, 3 + 0xE4, 29871, 30010]
    smol_ids = rng.sample(range(17, len(smol)), 16)
    smol_ids += [i for i, p in enumerate(smol) if p in ("Ġdog", "ĊĊ", "âĢĻ", "ĠâĢľ")]
    llama_fill = [llama_decode_one(llama[i]) for i in llama_ids[:15]]
    llama_fill += [llama[i] for i in llama_ids[15:]]  # raw, with '▁' / '<0x..>'
    smol_fill = [gpt2_decode_one(smol[i], byte_decoder) for i in smol_ids[:15]]
    smol_fill += [smol[i] for i in smol_ids[15:]]  # raw, with 'Ġ'
    for group, fill in (("template-llama2", llama_fill), ("template-smollm2", smol_fill)):
        for piece in fill:
            for template in IMAGENET_TEMPLATES:
                encode.append(encode_case(template.format(piece), group))

    # clip.tokenize rows.
    long_text = " ".join(f"word{i}" for i in range(60))
    tokenize_texts = [
        "",
        "a photo of a dog.",
        "it's a 1234567 test",
        long_text,
        "x" * 400,
        "a " * 75,
        "a " * 76,
        "a " * 77,
        "<|endoftext|> " * 80,
        IMAGENET_TEMPLATES[0].format("golden retriever"),
    ]
    tokenize_rows = []
    for text in tokenize_texts:
        for ctx in (77, 16, 5):
            for truncate in (False, True):
                case = {"text": text, "context_length": ctx, "truncate": truncate}
                n = len(tok.encode(text)) + 2
                try:
                    if tokenize is not None:
                        row = tokenize([text], context_length=ctx, truncate=truncate)[0].tolist()
                    else:
                        tokens = [sot] + tok.encode(text) + [eot]
                        if len(tokens) > ctx:
                            if not truncate:
                                raise RuntimeError("too long")
                            tokens = tokens[:ctx]
                            tokens[-1] = eot
                        row = tokens + [0] * (ctx - len(tokens))
                    case["row"] = row
                except RuntimeError:
                    case["error"] = True
                    case["tokens"] = n
                tokenize_rows.append(case)

    # decode.
    decode = []
    for case in encode[:: max(1, len(encode) // 300)]:
        decode.append({"ids": case["ids"], "text": tok.decode(case["ids"])})
    for _ in range(200):
        ids = [rng.randrange(0, 512) for _ in range(rng.randint(1, 12))]
        decode.append({"ids": ids, "text": tok.decode(ids)})
    for _ in range(200):
        ids = [rng.randrange(0, len(tok.encoder)) for _ in range(rng.randint(1, 12))]
        decode.append({"ids": ids, "text": tok.decode(ids)})
    decode.append({"ids": [], "text": tok.decode([])})
    decode.append({"ids": [sot, 320, eot], "text": tok.decode([sot, 320, eot])})

    # clean_text of single characters and of every entity name.
    chars = []
    for lo, hi in [(0, 0x2FF), (0x2000, 0x206F), (0x2100, 0x218F), (0x3000, 0x303F),
                   (0xFB00, 0xFB4F), (0xFE00, 0xFFFF), (0x1F3FB, 0x1F3FF)]:
        for cp in range(lo, hi + 1):
            c = chr(cp)
            chars.append([cp, clean(c, fix_encoding=False), clean("x" + c + "y", False)])
    entities = []
    names = sorted(set(html.entities.html5) | {k[1:] for k in ftfy.chardata.HTML_ENTITIES})
    for name in names:
        t = "&" + name
        entities.append([t, clean(t, False), clean("<" + t + "x", False)])

    vocab = [[i, tok.decoder[i]] for i in list(range(0, 600)) + list(range(600, 49408, 97))]
    vocab += [[i, tok.decoder[i]] for i in range(49398, 49408)]

    unicode_tables = {
        "unidata_version": unicodedata.unidata_version,
        "regex_version": regex.__version__,
        "lower": [[cp, chr(cp).lower()] for cp in range(0x110000)
                  if not 0xD800 <= cp <= 0xDFFF and chr(cp).lower() != chr(cp)],
        "isspace": [cp for cp in range(0x110000) if chr(cp).isspace()],
        "regex_L": ranges(lambda c: regex.match(r"[\p{L}]", c) is not None),
        "regex_N": ranges(lambda c: regex.match(r"[\p{N}]", c) is not None),
        "regex_s": ranges(lambda c: regex.match(r"\s", c) is not None),
        "unassigned": ranges(lambda c: unicodedata.category(c) == "Cn"),
    }

    reference = {
        "meta": {
            "python": sys.version.split()[0],
            "ftfy": ftfy.__version__,
            "regex": regex.__version__,
            "unidata_version": unicodedata.unidata_version,
            "bpe_sha256": file_sha256(BPE),
            "vocab_size": len(tok.encoder),
            "sot": sot,
            "eot": eot,
        },
        "vocab": vocab,
        "encode": encode,
        "tokenize": tokenize_rows,
        "decode": decode,
        "chars": chars,
        "entities": entities,
        "unicode": unicode_tables,
    }

    pieces = {}
    for name, words in (
        ("llama2", [llama_decode_one(p) for p in llama]),
        ("smollm2", [gpt2_decode_one(p, byte_decoder) for p in smol]),
    ):
        texts, ids, noenc = [], [], []
        for w in words:
            texts.append(w)
            ids.append(tok.encode(w))
            if clean(w, False) != clean(w):
                noenc.append([len(texts) - 1, bpe_ids(clean(w, False))])
        pieces[name] = {"texts": texts, "ids": ids, "ids_noenc": noenc}

    os.makedirs(OUT, exist_ok=True)
    for fname, obj in (("reference.json.gz", reference), ("vocab_pieces.json.gz", pieces)):
        path = os.path.join(OUT, fname)
        data = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        with open(path, "wb") as f:
            f.write(gzip.compress(data, 9, mtime=0))
        print(f"wrote {path}: {os.path.getsize(path)} bytes ({len(data)} uncompressed)")
    n_noenc = sum("ids_noenc" in c for c in encode)
    print(f"{len(encode)} encode cases ({n_noenc} depend on fix_encoding), "
          f"{len(tokenize_rows)} tokenize rows, {len(decode)} decode cases")
    write_entities_rs()


if __name__ == "__main__":
    main()
