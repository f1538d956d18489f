"""Reference CLIP score (torchmetrics semantics) on the tiny CLIP fixture.

Runs torchmetrics' own `CLIPScore` metric with the tiny random HF CLIP model of
`crates/v2l-clip/tests/fixtures/model/tiny_hf` and a stand-in processor that
hands torchmetrics the fixture's preprocessed `pixel_values` and token ids
(`tiny_io.safetensors`), so the number is torchmetrics' computation
(normalise, 100·cos per pair, mean, clamp at 0) on that model's embeddings.
Writes crates/v2l-metrics/tests/fixtures/clip_score/reference.json.

Run by hand (never in CI):
    /tmp/venv-fix/bin/python scripts/gen_clip_score_fixtures.py
Versions: torch 2.15.0, transformers 5.24.0, torchmetrics 1.9.0.
"""

import json
import os

import torch
from safetensors.torch import load_file
from torchmetrics.multimodal.clip_score import CLIPScore
from transformers import CLIPModel

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = os.path.join(ROOT, "crates", "v2l-clip", "tests", "fixtures", "model")
OUT = os.path.join(ROOT, "crates", "v2l-metrics", "tests", "fixtures", "clip_score")


class FixtureProcessor:
    """Returns the fixture's tensors instead of preprocessing/tokenising."""

    def __init__(self, pixel_values, input_ids):
        self.pixel_values = pixel_values
        self.input_ids = input_ids

    def __call__(self, text=None, images=None, **_):
        if images is not None:
            return {"pixel_values": self.pixel_values[: len(images)]}
        ids = self.input_ids[: len(text)]
        return {"input_ids": ids, "attention_mask": (ids != 0).long()}


class Features(torch.nn.Module):
    """transformers 5 returns output objects from get_*_features; torchmetrics
    wants the projected tensor (`pooler_output`)."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.config = model.config

    def get_image_features(self, pixel_values):
        out = self.model.get_image_features(pixel_values=pixel_values)
        return out if torch.is_tensor(out) else out.pooler_output

    def get_text_features(self, input_ids, attention_mask=None):
        out = self.model.get_text_features(input_ids=input_ids, attention_mask=attention_mask)
        return out if torch.is_tensor(out) else out.pooler_output


def main():
    io = load_file(os.path.join(MODEL, "tiny_io.safetensors"))
    model = CLIPModel.from_pretrained(os.path.join(MODEL, "tiny_hf")).eval()
    wrapped = Features(model)
    cases = {}
    with torch.no_grad():
        for name, (img_rows, txt_rows) in {"pairs_01": ([0, 1], [0, 1]), "pairs_10": ([0, 1], [1, 2])}.items():
            proc = FixtureProcessor(io["pixel_values"][img_rows], io["input_ids"][txt_rows])
            metric = CLIPScore(model_name_or_path=lambda: (wrapped, proc))
            images = [torch.zeros(3, 32, 32, dtype=torch.uint8) for _ in img_rows]
            texts = ["x"] * len(txt_rows)
            metric.update(images, texts)
            cases[name] = {
                "image_rows": img_rows,
                "text_rows": txt_rows,
                "clip_score": float(metric.compute()),
                "sum": float(metric.score),
                "n": int(metric.n_samples),
            }
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, "reference.json")
    with open(path, "w") as f:
        json.dump({"generator": "scripts/gen_clip_score_fixtures.py", "torchmetrics": "1.9.0", "cases": cases}, f, indent=1)
    print(json.dumps(cases, indent=1))


if __name__ == "__main__":
    main()
