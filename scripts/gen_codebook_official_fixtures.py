#!/usr/bin/env python3
"""Official-format codebook files, small, for v2l-codebook's import tests.

Run by hand from the workspace root (never in CI):

    /tmp/venv-fix/bin/python scripts/gen_codebook_official_fixtures.py

torch 2.15.0, numpy 2.4.6. Writes `crates/v2l-codebook/tests/fixtures/official/`
in the layouts the reference's evaluation scripts load (spec §2.4):

* `local_codebook_embedding.pth`  `torch.save(tensor)`, float16 [40, 8]
  (the reference saves the CLIP fp16 output; the model calls `.float()`).
* `global_codebook_embedding.pth` `torch.save(tensor)`, float32 [12, 8].
* `global_vocabulary.npy`         `np.save` of a numpy object array of 12 str
  (needs `allow_pickle=True` to load), with an empty string, unicode, a
  glued bigram and a trigram as the reference's expansion writes them.
* `expected.json`                 the same values as plain lists (the f16
  tensor as its exact float values) and the strings.
"""
import json
import os

import numpy as np
import torch

OUT = "crates/v2l-codebook/tests/fixtures/official"
os.makedirs(OUT, exist_ok=True)
g = torch.Generator().manual_seed(20261126)
local = (torch.randn(40, 8, generator=g) * 0.3).to(torch.float16)
glob = torch.randn(12, 8, generator=g, dtype=torch.float32) * 0.2
words = ["dog", "doghouse", "", "café", "Straße", "photo of", "🦙", "a b c",
         "tabbycat", "ninja", "über", "trigramword"]
torch.save(local, os.path.join(OUT, "local_codebook_embedding.pth"))
torch.save(glob, os.path.join(OUT, "global_codebook_embedding.pth"))
np.save(os.path.join(OUT, "global_vocabulary.npy"), np.array(words, dtype=object), allow_pickle=True)
with open(os.path.join(OUT, "expected.json"), "w", encoding="utf-8") as f:
    json.dump({
        "local": {"shape": list(local.shape), "values": local.float().flatten().tolist()},
        "global": {"shape": list(glob.shape), "values": glob.flatten().tolist()},
        "strings": words,
        "versions": {"torch": torch.__version__, "numpy": np.__version__},
    }, f, ensure_ascii=False)
print("wrote", OUT)
