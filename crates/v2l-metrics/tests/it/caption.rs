//! Captioning (BLEU, CIDEr-D) and VQA metrics against pycocoevalcap 1.2 and a
//! transcription of the official VQA evaluation
//! (`scripts/gen_caption_metric_fixtures.py`), plus closed-form cases.

use std::path::PathBuf;

use v2l_metrics::caption::{bleu, cider_d, tokenize_caption, CaptionSet, Tokenization};
use v2l_metrics::vqa::{normalize_answer, vqa_accuracy, vqa_corpus_accuracy};
use v2l_metrics::MetricsError;

fn reference() -> serde_json::Value {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/caption/reference.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn strings(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

/// The fixture writes pycocoevalcap's values as decimal strings (Python's
/// `repr`), parsed exactly here; serde_json's default number parser may be
/// off by one ulp.
fn exact(v: &serde_json::Value) -> f64 {
    v.as_str().unwrap().parse().unwrap()
}

fn floats(v: &serde_json::Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(exact).collect()
}

/// Agreement with pycocoevalcap. BLEU and CIDEr-D follow its operations in
/// its order (numpy's pairwise sums included), so nearly every value is
/// bit-identical (69 of 70 on glibc). The exception: pycocoevalcap squares
/// tf-idf weights with numpy's scalar `pow(w, 2)`, which is not always
/// correctly rounded (one weight here is 1 ulp off `w * w`), giving a 4.4e-16
/// difference in one per-image CIDEr-D. Other platforms' libm (`ln`, `pow`,
/// `exp`) may add a few ulp more, hence 1e-12 and not equality.
const TOL: f64 = 1e-12;

#[test]
fn bleu_and_cider_d_match_pycocoevalcap() {
    let r = reference();
    let mut worst: f64 = 0.0;
    let (mut identical, mut total) = (0usize, 0usize);
    let mut tally = |d: f64| {
        total += 1;
        identical += usize::from(d == 0.0);
    };
    for corpus in r["corpora"].as_array().unwrap() {
        let name = corpus["name"].as_str().unwrap();
        let cands = strings(&corpus["candidates"]);
        let refs: Vec<Vec<String>> = corpus["references"]
            .as_array()
            .unwrap()
            .iter()
            .map(strings)
            .collect();
        let set = CaptionSet::new(&cands, &refs, Tokenization::PreTokenized).unwrap();
        assert_eq!(set.num_images(), cands.len());

        let b = set.bleu();
        let want = floats(&corpus["bleu"]);
        assert_eq!(want.len(), 4);
        for (k, (got, w)) in b.bleu.iter().zip(&want).enumerate() {
            let d = (got - w).abs();
            tally(d);
            worst = worst.max(d);
            assert!(d < TOL, "{name} BLEU-{}: {got} vs {w}", k + 1);
        }
        for (i, per) in corpus["bleu_per_image"]
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
        {
            for (k, w) in floats(per).into_iter().enumerate() {
                let d = (b.per_image[i][k] - w).abs();
                tally(d);
                worst = worst.max(d);
                assert!(
                    d < TOL,
                    "{name} image {i} BLEU-{}: {} vs {w}",
                    k + 1,
                    b.per_image[i][k]
                );
            }
        }

        let c = set.cider_d();
        let want = exact(&corpus["cider"]);
        let d = (c.score - want).abs();
        tally(d);
        worst = worst.max(d);
        assert!(d < TOL, "{name} CIDEr-D: {} vs {want}", c.score);
        for (i, w) in floats(&corpus["cider_per_image"]).into_iter().enumerate() {
            let d = (c.per_image[i] - w).abs();
            tally(d);
            if d != 0.0 {
                println!("{name} image {i} CIDEr-D differs by {d:e}");
            }
            worst = worst.max(d);
            assert!(
                d < TOL,
                "{name} image {i} CIDEr-D: {} vs {w}",
                c.per_image[i]
            );
        }
        println!(
            "{name}: BLEU {:?} CIDEr-D {:.12} (pycocoevalcap {want:.12})",
            b.bleu, c.score
        );
    }
    println!("largest difference from pycocoevalcap: {worst:e}; {identical} of {total} values bit-identical");
}

#[test]
fn raw_captions_tokenised_like_the_fixture_score_the_same() {
    // Capitalised, with punctuation: the PTB path must give the fixture's tokens.
    let r = reference();
    let corpus = &r["corpora"][0];
    let cands = strings(&corpus["candidates"]);
    let refs: Vec<Vec<String>> = corpus["references"]
        .as_array()
        .unwrap()
        .iter()
        .map(strings)
        .collect();
    let raw = |s: &String| {
        let mut c = s.chars();
        match c.next() {
            Some(f) => format!("{}{}.", f.to_uppercase(), c.as_str().replacen(' ', ", ", 1)),
            None => "...".to_string(),
        }
    };
    let raw_cands: Vec<String> = cands.iter().map(raw).collect();
    let raw_refs: Vec<Vec<String>> = refs.iter().map(|rs| rs.iter().map(raw).collect()).collect();
    for (r, t) in raw_cands.iter().zip(&cands) {
        assert_eq!(tokenize_caption(r).join(" "), *t, "{r}");
    }
    let want = bleu(&cands, &refs, Tokenization::PreTokenized).unwrap();
    assert_eq!(
        bleu(&raw_cands, &raw_refs, Tokenization::Ptb).unwrap(),
        want
    );
    let want = cider_d(&cands, &refs, Tokenization::PreTokenized).unwrap();
    assert_eq!(
        cider_d(&raw_cands, &raw_refs, Tokenization::Ptb).unwrap(),
        want
    );
}

#[test]
fn bleu_closed_form() {
    // Identical 4-word caption: matches = guesses = [4, 3, 2, 1]. The
    // smoothing makes the length ratio (4 + 1e-15) / (4 + 1e-9) < 1, so
    // pycocoevalcap applies a (tiny) brevity penalty even here.
    let b = bleu(&["a b c d"], &[["a b c d"]], Tokenization::PreTokenized).unwrap();
    let (tiny, small) = (1e-15f64, 1e-9f64);
    let penalty = (1.0 - (4.0 + small) / (4.0 + tiny)).exp();
    let mut p = 1.0;
    for (k, g) in [4.0, 3.0, 2.0, 1.0].into_iter().enumerate() {
        p *= (g + tiny) / (g + small);
        let want = f64::powf(p, 1.0 / (k + 1) as f64) * penalty;
        assert!(
            (b.bleu[k] - want).abs() < 1e-15,
            "{k}: {} vs {want}",
            b.bleu[k]
        );
        assert!(b.bleu[k] < 1.0 && b.bleu[k] > 1.0 - 1e-9);
    }
    assert_eq!((b.hypothesis_length, b.reference_length), (4, 4));
    // Half-length candidate: BLEU-1 is about exp(1 − 4/2) = e^-1.
    let b = bleu(&["a b"], &[["a b c d"]], Tokenization::PreTokenized).unwrap();
    assert!((b.bleu[0] - (-1.0f64).exp()).abs() < 1e-8, "{}", b.bleu[0]);
    // "closest" picks the reference nearest in length, the shorter on a tie:
    // 3 words vs references of 2 and 4 words → 2 (no brevity penalty).
    let b = bleu(
        &["x y z"],
        &[["x y", "x y z w"]],
        Tokenization::PreTokenized,
    )
    .unwrap();
    assert_eq!(b.reference_length, 2);
    // No shared word: BLEU-1 is (0 + 1e-15) / (n + 1e-9), about 0.
    let b = bleu(&["p q"], &[["r s"]], Tokenization::PreTokenized).unwrap();
    assert!(b.bleu[0] < 1e-15);
}

#[test]
fn cider_d_closed_form() {
    // One image: idf = log(1) − log(df) = 0 everywhere, so CIDEr-D is 0.
    let c = cider_d(
        &["a dog runs fast"],
        &[["a dog runs fast"]],
        Tokenization::PreTokenized,
    )
    .unwrap();
    assert_eq!(c.score, 0.0);
    // Two images whose references share no n-gram; every weight is tf·ln 2.
    // Image 0, "a a" vs "a b": unigram cosine = (ln2 · ln2) / (2 ln2 · √2 ln2)
    // = 1 / (2√2) after clipping 2 ln2 to ln2; bigram "a a" is absent; no
    // 3-, 4-grams; equal bigram counts, so no length penalty:
    // 10 · (1/(2√2)) / 4.
    // Image 1, identical 2-word caption: cosine 1 for n = 1, 2: 10 · 2 / 4 = 5.
    let c = cider_d(
        &["a a", "c d"],
        &[["a b"], ["c d"]],
        Tokenization::PreTokenized,
    )
    .unwrap();
    let want0 = 10.0 / (2.0 * 2f64.sqrt()) / 4.0;
    assert!((c.per_image[0] - want0).abs() < 1e-14, "{:?}", c.per_image);
    assert!((c.per_image[1] - 5.0).abs() < 1e-14, "{:?}", c.per_image);
    assert!((c.score - (want0 + 5.0) / 2.0).abs() < 1e-14);
    // Length penalty: a 4-word candidate against a 10-word reference that
    // contains it differs by 6 bigrams → factor e^(−36/72) on each order.
    let c = cider_d(
        &["p q r s", "z"],
        &[vec!["p q r s t u v w x y"], vec!["z"]],
        Tokenization::PreTokenized,
    )
    .unwrap();
    assert!(c.per_image[0] > 0.0 && c.per_image[0] < 10.0 * (-0.5f64).exp());
}

#[test]
fn caption_errors_are_typed() {
    let e = bleu(&["a", "b"], &[["a"]], Tokenization::PreTokenized).unwrap_err();
    assert!(matches!(e, MetricsError::ShapeMismatch { .. }), "{e}");
    let refs: Vec<Vec<String>> = vec![vec!["a".into()], vec![]];
    let e = cider_d(&["a", "b"], &refs, Tokenization::PreTokenized).unwrap_err();
    assert!(
        matches!(&e, MetricsError::Undefined(m) if m.contains("image 1")),
        "{e}"
    );
    let none: [&str; 0] = [];
    let no_refs: [[&str; 1]; 0] = [];
    let e = CaptionSet::new(&none, &no_refs, Tokenization::Ptb).unwrap_err();
    assert!(matches!(e, MetricsError::Undefined(_)), "{e}");
}

#[test]
fn ptb_tokenisation() {
    let t = |s: &str| tokenize_caption(s);
    // Lower-cased, punctuation removed, clitics split.
    assert_eq!(
        t("A dog's bone, on the grass."),
        ["a", "dog", "'s", "bone", "on", "the", "grass"]
    );
    assert_eq!(t("The dogs' toys!"), ["the", "dogs", "toys"]);
    assert_eq!(t("the dog 's bone"), ["the", "dog", "'s", "bone"]);
    // Documented deviations from CoreNLP: it keeps "'90s" and splits "4:45pm".
    assert_eq!(t("the '90s at 4:45pm"), ["the", "90s", "at", "4:45pm"]);
    assert_eq!(
        t("A man -- wearing a T-shirt; he cannot swim…"),
        ["a", "man", "wearing", "a", "t-shirt", "he", "can", "not", "swim"]
    );
    assert_eq!(
        t("They're at the U.S. border"),
        ["they", "'re", "at", "the", "u.s.", "border"]
    );
    assert_eq!(
        t("“Hello” said Mr. Smith"),
        ["hello", "said", "mr.", "smith"]
    );
    assert_eq!(t("two\u{a0}cats\u{1f}here"), ["two", "cats", "here"]);
    assert!(t(" ... !!? ").len() == 1 && t(". , ; : -").is_empty());
    // CoreNLP's PTBTokenizerTest gold outputs, lower-cased, with the
    // PTB_PUNCTUATION tokens removed by hand.
    assert_eq!(t("This is a sentence."), ["this", "is", "a", "sentence"]);
    assert_eq!(
        t("Gimme a phone, I'm gonna call."),
        ["gim", "me", "a", "phone", "i", "'m", "gon", "na", "call"]
    );
    assert_eq!(
        t("\"John & Mary's dog,\" Jane thought (to herself)."),
        ["john", "&", "mary", "'s", "dog", "jane", "thought", "-lrb-", "to", "herself", "-rrb-"]
    );
    assert_eq!(
        t("I can't believe they wanna keep 40% of that."),
        ["i", "ca", "n't", "believe", "they", "wan", "na", "keep", "40", "%", "of", "that"]
    );
    assert_eq!(
        t("I wasn’t really ... well, what I mean...see . . . what I'm saying"),
        [
            "i", "was", "n't", "really", "well", "what", "i", "mean", "see", "what", "i", "'m",
            "saying"
        ]
    );
    assert_eq!(
        t("You can get a B.S. or a Ph.D"),
        ["you", "can", "get", "a", "b.s.", "or", "a", "ph.d"]
    );
    assert_eq!(
        t("Kenneth liked Windows 3.1, Windows 3.x, and Mesa A.B as I remember things."),
        [
            "kenneth", "liked", "windows", "3.1", "windows", "3.x", "and", "mesa", "a.b", "as",
            "i", "remember", "things"
        ]
    );
    assert_eq!(
        t("You `paid' $170,000?!"),
        ["you", "paid", "$", "170,000", "?!"]
    );
    assert_eq!(t("I lived in O’Malley."), ["i", "lived", "in", "o'malley"]);
    assert_eq!(
        t("Oesophageal acid exposure (% time <pH 4)"),
        [
            "oesophageal",
            "acid",
            "exposure",
            "-lrb-",
            "%",
            "time",
            "<",
            "ph",
            "4",
            "-rrb-"
        ]
    );
    assert_eq!(
        t("tiotropium/olodaterol 5/2 μg (p = 0.008) [51]."),
        [
            "tiotropium/olodaterol",
            "5/2",
            "μg",
            "-lrb-",
            "p",
            "=",
            "0.008",
            "-rrb-",
            "-lsb-",
            "51",
            "-rsb-"
        ]
    );
    assert_eq!(t("I dunno."), ["i", "du", "n", "no"]);
}

#[test]
fn vqa_matches_the_official_rules() {
    let r = reference();
    for case in r["vqa"].as_array().unwrap() {
        let pred = case["prediction"].as_str().unwrap();
        let answers = strings(&case["answers"]);
        let want = case["accuracy"].as_f64().unwrap();
        let got = vqa_accuracy(pred, &answers).unwrap();
        assert!(
            (got - want).abs() < 1e-15,
            "{pred:?} {answers:?}: {got} vs {want}"
        );
    }
    for case in r["normalize"].as_array().unwrap() {
        let input = case["input"].as_str().unwrap();
        assert_eq!(
            normalize_answer(input),
            case["normalized"].as_str().unwrap(),
            "{input:?}"
        );
    }
    let preds: Vec<String> = r["vqa"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["prediction"].as_str().unwrap().to_string())
        .collect();
    let answers: Vec<Vec<String>> = r["vqa"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| strings(&c["answers"]))
        .collect();
    let acc = vqa_corpus_accuracy(&preds, &answers).unwrap();
    assert_eq!(acc.per_question.len(), preds.len());
    let want = r["vqa_corpus_mean"].as_f64().unwrap();
    assert!((acc.mean - want).abs() < 1e-15, "{} vs {want}", acc.mean);
}

#[test]
fn vqa_closed_form_and_errors() {
    // m of 10 humans give the predicted answer, the others a different one
    // each. Leaving out a matching human leaves m − 1 matches, any other m.
    for m in 0..=10usize {
        let answers: Vec<String> = (0..10)
            .map(|i| {
                if i < m {
                    "2".to_string()
                } else {
                    format!("other{i}")
                }
            })
            .collect();
        let want = (m as f64 * ((m as f64 - 1.0) / 3.0).min(1.0)
            + (10 - m) as f64 * (m as f64 / 3.0).min(1.0))
            / 10.0;
        let got = vqa_accuracy("Two", &answers).unwrap();
        assert!((got - want).abs() < 1e-15, "m = {m}: {got} vs {want}");
    }
    // The familiar values: 1, 2, 3, ≥ 4 matches → 0.3, 0.6, 0.9, 1.0.
    let acc = |m: usize| {
        let answers: Vec<String> = (0..10)
            .map(|i| {
                if i < m {
                    "yes".to_string()
                } else {
                    "no".to_string()
                }
            })
            .collect();
        vqa_accuracy("yes", &answers).unwrap()
    };
    for (m, want) in [(1, 0.3), (2, 0.6), (3, 0.9), (4, 1.0), (10, 1.0)] {
        assert!((acc(m) - want).abs() < 1e-15, "{m}: {}", acc(m));
    }
    let none: [&str; 0] = [];
    assert!(matches!(
        vqa_accuracy("yes", &none),
        Err(MetricsError::Undefined(_))
    ));
    let e = vqa_corpus_accuracy(&["yes"], &[["yes"], ["no"]]).unwrap_err();
    assert!(matches!(e, MetricsError::ShapeMismatch { .. }), "{e}");
    let no_answers: [[&str; 1]; 0] = [];
    assert!(matches!(
        vqa_corpus_accuracy(&none, &no_answers),
        Err(MetricsError::Undefined(_))
    ));
    let e = vqa_corpus_accuracy(&["yes", "no"], &[vec!["yes"], vec![]]).unwrap_err();
    assert!(
        matches!(&e, MetricsError::Undefined(m) if m.contains("question 1")),
        "{e}"
    );
}
