#!/usr/bin/env python3
"""Generates `crates/v2l-metrics/tests/fixtures/caption/reference.json` (captioning and VQA metrics).

Run by hand (never in CI), from the workspace root:

    python3 -m venv /tmp/venv-fix
    /tmp/venv-fix/bin/pip install pycocoevalcap numpy
    /tmp/venv-fix/bin/python scripts/gen_caption_metric_fixtures.py

Captioning: pycocoevalcap's `Bleu(4)` and `Cider()` scorers, fed captions that are already tokenised
(lower case, no punctuation, space separated), so no Java/PTBTokenizer is involved. The set is made
up: 9 images with 3-5 references each and candidates covering an exact copy of a reference, no shared
word, repeated words, a one-word and an empty candidate, short and long candidates (brevity penalty),
and a tie in BLEU's "closest" reference length. Two corpora are scored: the full set and its first
three images, since CIDEr-D's document frequencies (and so every per-image score) depend on the set.

VQA: accuracies of hand-made (prediction, human answers) cases by a transcription, written here, of
the answer normalisation and accuracy rule of the official VQA evaluation (GT-Vision-Lab/VQA,
`PythonEvaluationTools/vqaEvaluation/vqaEval.py`): the prediction is always normalised
(punctuation, then digits/articles/contractions), the human answers get the punctuation step only and
only when they are not all identical, and the accuracy is min(1, matches / 3) averaged over the
leave-one-out subsets. Several cases are checked by hand in comments below.
"""

import importlib.metadata
import json
import os
import re

import numpy as np
from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "crates", "v2l-metrics", "tests", "fixtures", "caption")

# (candidate, references), all pre-tokenised.
IMAGES = [
    # 0: candidate identical to the first reference.
    ("a man riding a wave on top of a surfboard", [
        "a man riding a wave on top of a surfboard",
        "a surfer rides a large wave in the ocean",
        "a person on a surfboard riding a wave",
        "surfer in a wetsuit riding a big wave",
    ]),
    # 1: partial overlap, medium length.
    ("a cat sitting on a wooden table", [
        "a black cat laying on top of a table",
        "a cat is sitting on the kitchen table",
        "an orange cat rests on a wooden desk",
    ]),
    # 2: no word in common with any reference.
    ("purple elephants juggle quietly", [
        "two dogs playing with a frisbee in the park",
        "a dog jumps to catch a frisbee",
        "dogs run across the green grass",
        "a brown dog and a white dog play outside",
        "two dogs chase a flying disc",
    ]),
    # 3: repeated words (clipping of counts).
    ("a a a dog dog dog on the the beach", [
        "a dog running on the beach",
        "a dog plays in the sand at the beach",
        "the dog is walking along the shore",
    ]),
    # 4: short candidate (brevity penalty) with high precision.
    ("a red bus", [
        "a red double decker bus driving down a street",
        "a red bus parked next to a sidewalk",
        "a large red bus on a city street",
        "the bus is red and has two floors",
    ]),
    # 5: long candidate, longer than every reference.
    ("a group of people standing around a table with plates of food and glasses of wine "
     "in a bright restaurant", [
        "people sitting at a table eating food",
        "a group of friends having dinner together",
        "several people around a dinner table",
    ]),
    # 6: one-word candidate (CIDEr's length counts bigrams: 0 for one word).
    ("giraffe", [
        "a giraffe standing next to a tree",
        "a tall giraffe eating leaves",
        "giraffe",
    ]),
    # 7: tie in BLEU's closest reference length: candidate has 9 words, references 8 and 10.
    ("a kitchen with a stove and a white refrigerator", [
        "a kitchen with a stove and a sink",
        "a small kitchen with white appliances and dark wooden cabinets",
        "a clean kitchen with a stove a sink and cabinets",
    ]),
    # 8: empty candidate (a caption that was all punctuation).
    ("", [
        "a plate of food with broccoli and rice",
        "a white plate topped with rice and vegetables",
        "broccoli and rice on a plate",
    ]),
]


def score_corpus(name, images):
    gts = {i: refs for i, (_, refs) in enumerate(images)}
    res = {i: [cand] for i, (cand, _) in enumerate(images)}
    bleu, bleu_per = Bleu(4).compute_score(gts, res, verbose=0)
    cider, cider_per = Cider().compute_score(gts, res)
    return {
        "name": name,
        "candidates": [c for c, _ in images],
        "references": [refs for _, refs in images],
        "bleu": [exact(b) for b in bleu],
        # pycocoevalcap returns per-order lists; store per image [b1, b2, b3, b4].
        "bleu_per_image": [[exact(bleu_per[k][i]) for k in range(4)] for i in range(len(images))],
        "cider": exact(cider),
        "cider_per_image": [exact(s) for s in cider_per],
    }


def exact(x):
    """A float as its shortest round-trip decimal string: serde_json's default number parser
    may be off by one ulp, Rust's `str::parse::<f64>` is exact."""
    return repr(float(x))


# ---------------------------------------------------------------------------------------------
# VQA: a transcription of the official normalisation (GT-Vision-Lab/VQA vqaEval.py).
# ---------------------------------------------------------------------------------------------

CONTRACTIONS = {
    "aint": "ain't", "arent": "aren't", "cant": "can't", "couldve": "could've",
    "couldnt": "couldn't", "couldn'tve": "couldn't've", "couldnt've": "couldn't've",
    "didnt": "didn't", "doesnt": "doesn't", "dont": "don't", "hadnt": "hadn't",
    "hadnt've": "hadn't've", "hadn'tve": "hadn't've", "hasnt": "hasn't", "havent": "haven't",
    "hed": "he'd", "hed've": "he'd've", "he'dve": "he'd've", "hes": "he's", "howd": "how'd",
    "howll": "how'll", "hows": "how's", "Id've": "I'd've", "I'dve": "I'd've", "Im": "I'm",
    "Ive": "I've", "isnt": "isn't", "itd": "it'd", "itd've": "it'd've", "it'dve": "it'd've",
    "itll": "it'll", "let's": "let's", "maam": "ma'am", "mightnt": "mightn't",
    "mightnt've": "mightn't've", "mightn'tve": "mightn't've", "mightve": "might've",
    "mustnt": "mustn't", "mustve": "must've", "neednt": "needn't", "notve": "not've",
    "oclock": "o'clock", "oughtnt": "oughtn't", "ow's'at": "'ow's'at", "'ows'at": "'ow's'at",
    "'ow'sat": "'ow's'at", "shant": "shan't", "shed've": "she'd've", "she'dve": "she'd've",
    "she's": "she's", "shouldve": "should've", "shouldnt": "shouldn't",
    "shouldnt've": "shouldn't've", "shouldn'tve": "shouldn't've", "somebody'd": "somebodyd",
    "somebodyd've": "somebody'd've", "somebody'dve": "somebody'd've",
    "somebodyll": "somebody'll", "somebodys": "somebody's", "someoned": "someone'd",
    "someoned've": "someone'd've", "someone'dve": "someone'd've", "someonell": "someone'll",
    "someones": "someone's", "somethingd": "something'd", "somethingd've": "something'd've",
    "something'dve": "something'd've", "somethingll": "something'll", "thats": "that's",
    "thered": "there'd", "thered've": "there'd've", "there'dve": "there'd've",
    "therere": "there're", "theres": "there's", "theyd": "they'd", "theyd've": "they'd've",
    "they'dve": "they'd've", "theyll": "they'll", "theyre": "they're", "theyve": "they've",
    "twas": "'twas", "wasnt": "wasn't", "wed've": "we'd've", "we'dve": "we'd've",
    "weve": "we've", "werent": "weren't", "whatll": "what'll", "whatre": "what're",
    "whats": "what's", "whatve": "what've", "whens": "when's", "whered": "where'd",
    "wheres": "where's", "whereve": "where've", "whod": "who'd", "whod've": "who'd've",
    "who'dve": "who'd've", "wholl": "who'll", "whos": "who's", "whove": "who've",
    "whyll": "why'll", "whyre": "why're", "whys": "why's", "wont": "won't",
    "wouldve": "would've", "wouldnt": "wouldn't", "wouldnt've": "wouldn't've",
    "wouldn'tve": "wouldn't've", "yall": "y'all", "yall'll": "y'all'll", "y'allll": "y'all'll",
    "yall'd've": "y'all'd've", "y'alld've": "y'all'd've", "y'all'dve": "y'all'd've",
    "youd": "you'd", "youd've": "you'd've", "you'dve": "you'd've", "youll": "you'll",
    "youre": "you're", "youve": "you've",
}
DIGITS = {"none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4",
          "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10"}
ARTICLES = {"a", "an", "the"}
# The official pattern, with its `(?!<=\d)`: a negative lookahead (not a lookbehind), so it
# removes every '.' that is not followed by a digit.
PERIOD_STRIP = re.compile(r"(?!<=\d)(\.)(?!\d)")
COMMA_STRIP = re.compile(r"(\d)(\,)(\d)")
PUNCT = [";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@",
         "`", ",", "?", "!"]


def process_punctuation(text):
    out = text
    for p in PUNCT:
        if (p + " " in text or " " + p in text) or COMMA_STRIP.search(text) is not None:
            out = out.replace(p, "")
        else:
            out = out.replace(p, " ")
    # As the official call: `re.UNICODE` (32) lands in `sub`'s count argument, so at most 32
    # periods are removed.
    return PERIOD_STRIP.sub("", out, count=re.UNICODE)


def process_digit_article(text):
    words = [DIGITS.get(w, w) for w in text.lower().split()]
    words = [w for w in words if w not in ARTICLES]
    return " ".join(CONTRACTIONS.get(w, w) for w in words)


def normalize_answer(text):
    text = text.replace("\n", " ").replace("\t", " ").strip()
    return process_digit_article(process_punctuation(text))


def vqa_accuracy(pred, answers):
    res = normalize_answer(pred)
    gts = list(answers)
    if len(set(gts)) > 1:
        gts = [process_punctuation(a) for a in gts]
    accs = []
    for i in range(len(gts)):
        matches = sum(1 for j, a in enumerate(gts) if j != i and a == res)
        accs.append(min(1, matches / 3))
    return sum(accs) / len(accs)


def ten(*groups):
    """Ten answers from (answer, count) pairs."""
    out = [a for a, n in groups for _ in range(n)]
    assert len(out) == 10, out
    return out


VQA_CASES = [
    # By hand: 3 of 10 humans say "2". Leaving out one of those 3 leaves 2 matches (2/3); leaving
    # out any of the other 7 leaves 3 (1). (3 * 2/3 + 7 * 1) / 10 = 0.9.
    ("two", ten(("2", 3), ("3", 4), ("4", 3))),
    # By hand: 4 matches: every subset keeps at least 3, so 1.0.
    ("Two.", ten(("2", 4), ("3", 6))),
    # By hand: 1 match: leaving it out gives 0, the other 9 subsets give 1/3: 9/30 = 0.3.
    ("the dog", ten(("dog", 1), ("cat", 9))),
    # By hand: 2 matches: 2 subsets with 1 (1/3), 8 with 2 (2/3): (2/3 + 16/3) / 10 = 0.6.
    ("dont know", ten(("don't know", 2), ("no", 8))),
    # By hand: "t-shirt" → '-' not next to a space → replaced by a space: "t shirt"; the humans
    # disagree, so their answers get the punctuation step too: 5 × "t shirt" → 1.0.
    ("t-shirt", ten(("t-shirt", 5), ("shirt", 5))),
    ("1,000", ten(("1000", 6), ("100", 4))),
    ("3.5", ten(("3.5", 2), ("3", 8))),
    ("Yes.", ten(("yes", 7), ("no", 3))),
    # All humans agree, so their answers are compared raw: the normalised "yes" matches "yes".
    ("Yes", ten(("yes", 10))),
    # By hand: all humans agree on the raw "Yes", which is not normalised; the prediction becomes
    # "yes" and matches nothing: 0.0 (a quirk of the official script).
    ("yes", ten(("Yes", 10))),
    # Same quirk: the prediction becomes "t shirt", the unanimous raw answers stay "t-shirt": 0.0.
    ("t-shirt", ten(("t-shirt", 10))),
    # Human answers never get the digit step: "two" ≠ the prediction's "2".
    ("two", ten(("two", 5), ("2", 1), ("3", 4))),
    ("none", ten(("0", 4), ("1", 6))),
    ("a man on the phone", ten(("man on phone", 3), ("man", 7))),
    ("yes , sir", ten(("yes sir", 4), ("no", 6))),
    ("10:30", ten(("10:30", 3), ("10", 7))),
    ("man's hat", ten(("man's hat", 1), ("hat", 9))),
    ("Red!", ten(("red", 9), ("blue", 1))),
    ("isnt", ten(("isn't", 3), ("is", 7))),
    # Fewer than 10 answers (the rule is the same): 2 of 5 match: (2 * 1/3 + 3 * 2/3) / 5 = 8/15.
    ("blue", ["blue", "blue", "green", "red", "navy"]),
]

NORMALIZE_CASES = [
    "Two", "the dog.", "dont", "t-shirt", "1,000", "3.5", "10:30", "yes , sir", "a,b", "(left)",
    "left / right", "  padded\tanswer\n", "Im here", "he's", "an apple", "none of them",
    "e.g. this", "a" + "." * 40 + "b", "what?!", "x.5", "a_b", "@home", "one two three ten",
    "dr. who", "3 . 5",
]


def main():
    os.makedirs(OUT, exist_ok=True)
    corpora = [score_corpus("all", IMAGES), score_corpus("first3", IMAGES[:3])]
    vqa = [{"prediction": p, "answers": a, "accuracy": vqa_accuracy(p, a)} for p, a in VQA_CASES]
    # Hand-checked values above.
    hand = {0: 0.9, 1: 1.0, 2: 0.3, 3: 0.6, 4: 1.0, 9: 0.0, 10: 0.0, 19: 8 / 15}
    for i, want in hand.items():
        assert abs(vqa[i]["accuracy"] - want) < 1e-15, (i, vqa[i], want)
    expected = {
        "tools": {
            "pycocoevalcap": importlib.metadata.version("pycocoevalcap"),
            "numpy": np.__version__,
            "vqa_eval": "transcription of GT-Vision-Lab/VQA vqaEval.py (this script)",
        },
        "corpora": corpora,
        "vqa": vqa,
        "vqa_corpus_mean": sum(c["accuracy"] for c in vqa) / len(vqa),
        "normalize": [{"input": s, "normalized": normalize_answer(s)} for s in NORMALIZE_CASES],
    }
    with open(os.path.join(OUT, "reference.json"), "w") as fh:
        json.dump(expected, fh, indent=1, ensure_ascii=False)
        fh.write("\n")
    print(json.dumps(expected, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
