//! VQA accuracy as the official VQA evaluation computes it
//! (GT-Vision-Lab/VQA, `PythonEvaluationTools/vqaEvaluation/vqaEval.py`).
//!
//! For one question with human answers `a_1..a_n` (10 in VQA v2):
//! - the prediction is normalised with [`normalize_answer`]: newlines and
//!   tabs become spaces, the ends are trimmed, then [`process_punctuation`]
//!   and [`process_digit_article`];
//! - the human answers are compared raw when they are all identical, and
//!   after [`process_punctuation`] only (no digit/article step) otherwise;
//! - the accuracy is the mean over the `n` leave-one-out subsets of
//!   `min(1, #matching answers in the subset / 3)`: for 10 answers, 1, 2, 3
//!   and ≥ 4 matching humans give 0.3, 0.6, 0.9 and 1.0.
//!
//! The comparison is exact and case-sensitive. These quirks of the official
//! script are kept: a unanimous "Yes" does not match the prediction "yes",
//! and a human "two" never matches a prediction normalised to "2". VQA v2's
//! annotations are already normalised, so they rarely matter there. The
//! official script reports `100 ×` the mean, rounded to 2 decimals;
//! [`vqa_corpus_accuracy`] returns the unrounded fraction.
//!
//! Python's `\d` matches every Unicode decimal digit; here only ASCII digits
//! count as digits (this matters only for non-ASCII digits).

use crate::caption::is_py_space;
use crate::error::{MetricsError, Result};

/// The official punctuation list, in its order.
const PUNCT: [char; 21] = [
    ';', '/', '[', ']', '"', '{', '}', '(', ')', '=', '+', '\\', '_', '-', '>', '<', '@', '`', ',',
    '?', '!',
];

/// Number words mapped to digits (`manualMap`).
const DIGITS: [(&str, &str); 12] = [
    ("none", "0"),
    ("zero", "0"),
    ("one", "1"),
    ("two", "2"),
    ("three", "3"),
    ("four", "4"),
    ("five", "5"),
    ("six", "6"),
    ("seven", "7"),
    ("eight", "8"),
    ("nine", "9"),
    ("ten", "10"),
];

/// Removed words.
const ARTICLES: [&str; 3] = ["a", "an", "the"];

/// The official contractions table, entries as written there. The
/// capitalised keys ("Id've", "Im", "Ive", …) can never match, since words
/// are lower-cased first, and "somebody'd" maps to "somebodyd"; both as in
/// the official table.
const CONTRACTIONS: [(&str, &str); 120] = [
    ("aint", "ain't"),
    ("arent", "aren't"),
    ("cant", "can't"),
    ("couldve", "could've"),
    ("couldnt", "couldn't"),
    ("couldn'tve", "couldn't've"),
    ("couldnt've", "couldn't've"),
    ("didnt", "didn't"),
    ("doesnt", "doesn't"),
    ("dont", "don't"),
    ("hadnt", "hadn't"),
    ("hadnt've", "hadn't've"),
    ("hadn'tve", "hadn't've"),
    ("hasnt", "hasn't"),
    ("havent", "haven't"),
    ("hed", "he'd"),
    ("hed've", "he'd've"),
    ("he'dve", "he'd've"),
    ("hes", "he's"),
    ("howd", "how'd"),
    ("howll", "how'll"),
    ("hows", "how's"),
    ("Id've", "I'd've"),
    ("I'dve", "I'd've"),
    ("Im", "I'm"),
    ("Ive", "I've"),
    ("isnt", "isn't"),
    ("itd", "it'd"),
    ("itd've", "it'd've"),
    ("it'dve", "it'd've"),
    ("itll", "it'll"),
    ("let's", "let's"),
    ("maam", "ma'am"),
    ("mightnt", "mightn't"),
    ("mightnt've", "mightn't've"),
    ("mightn'tve", "mightn't've"),
    ("mightve", "might've"),
    ("mustnt", "mustn't"),
    ("mustve", "must've"),
    ("neednt", "needn't"),
    ("notve", "not've"),
    ("oclock", "o'clock"),
    ("oughtnt", "oughtn't"),
    ("ow's'at", "'ow's'at"),
    ("'ows'at", "'ow's'at"),
    ("'ow'sat", "'ow's'at"),
    ("shant", "shan't"),
    ("shed've", "she'd've"),
    ("she'dve", "she'd've"),
    ("she's", "she's"),
    ("shouldve", "should've"),
    ("shouldnt", "shouldn't"),
    ("shouldnt've", "shouldn't've"),
    ("shouldn'tve", "shouldn't've"),
    ("somebody'd", "somebodyd"),
    ("somebodyd've", "somebody'd've"),
    ("somebody'dve", "somebody'd've"),
    ("somebodyll", "somebody'll"),
    ("somebodys", "somebody's"),
    ("someoned", "someone'd"),
    ("someoned've", "someone'd've"),
    ("someone'dve", "someone'd've"),
    ("someonell", "someone'll"),
    ("someones", "someone's"),
    ("somethingd", "something'd"),
    ("somethingd've", "something'd've"),
    ("something'dve", "something'd've"),
    ("somethingll", "something'll"),
    ("thats", "that's"),
    ("thered", "there'd"),
    ("thered've", "there'd've"),
    ("there'dve", "there'd've"),
    ("therere", "there're"),
    ("theres", "there's"),
    ("theyd", "they'd"),
    ("theyd've", "they'd've"),
    ("they'dve", "they'd've"),
    ("theyll", "they'll"),
    ("theyre", "they're"),
    ("theyve", "they've"),
    ("twas", "'twas"),
    ("wasnt", "wasn't"),
    ("wed've", "we'd've"),
    ("we'dve", "we'd've"),
    ("weve", "we've"),
    ("werent", "weren't"),
    ("whatll", "what'll"),
    ("whatre", "what're"),
    ("whats", "what's"),
    ("whatve", "what've"),
    ("whens", "when's"),
    ("whered", "where'd"),
    ("wheres", "where's"),
    ("whereve", "where've"),
    ("whod", "who'd"),
    ("whod've", "who'd've"),
    ("who'dve", "who'd've"),
    ("wholl", "who'll"),
    ("whos", "who's"),
    ("whove", "who've"),
    ("whyll", "why'll"),
    ("whyre", "why're"),
    ("whys", "why's"),
    ("wont", "won't"),
    ("wouldve", "would've"),
    ("wouldnt", "wouldn't"),
    ("wouldnt've", "wouldn't've"),
    ("wouldn'tve", "wouldn't've"),
    ("yall", "y'all"),
    ("yall'll", "y'all'll"),
    ("y'allll", "y'all'll"),
    ("yall'd've", "y'all'd've"),
    ("y'alld've", "y'all'd've"),
    ("y'all'dve", "y'all'd've"),
    ("youd", "you'd"),
    ("youd've", "you'd've"),
    ("you'dve", "you'd've"),
    ("youll", "you'll"),
    ("youre", "you're"),
    ("youve", "you've"),
];

/// The official `processPunctuation`.
///
/// Each character of the punctuation list (`;` `/` `[` `]` `"` `{` `}` `(`
/// `)` `=` `+` `\` `_` `-` `>` `<` `@` `` ` `` `,` `?` `!`, in this order) is
/// deleted when it occurs next to a space anywhere in
/// the input, or when the input contains a digit-comma-digit sequence;
/// otherwise it is replaced by a space. Then every period not followed by a
/// digit is deleted, at most 32 of them: the official call passes
/// `re.UNICODE` (= 32) where `re.sub` takes its count.
pub fn process_punctuation(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let comma_between_digits = chars
        .windows(3)
        .any(|w| w[0].is_ascii_digit() && w[1] == ',' && w[2].is_ascii_digit());
    let mut out = text.to_string();
    for p in PUNCT {
        let near_space = text.contains(&format!("{p} ")) || text.contains(&format!(" {p}"));
        out = if near_space || comma_between_digits {
            out.replace(p, "")
        } else {
            out.replace(p, " ")
        };
    }
    let chars: Vec<char> = out.chars().collect();
    let mut stripped = String::with_capacity(out.len());
    let mut removed = 0;
    for (i, &c) in chars.iter().enumerate() {
        let next_is_digit = chars.get(i + 1).is_some_and(char::is_ascii_digit);
        if c == '.' && !next_is_digit && removed < 32 {
            removed += 1;
        } else {
            stripped.push(c);
        }
    }
    stripped
}

/// The official `processDigitArticle`: lower-case, split on whitespace, map
/// number words "none", "zero", "one" … "ten" to digits, drop the articles
/// "a", "an", "the", expand the contractions table ("dont" → "don't"), and
/// join with single spaces.
pub fn process_digit_article(text: &str) -> String {
    let lower = text.to_lowercase();
    let words: Vec<&str> = lower
        .split(is_py_space)
        .filter(|w| !w.is_empty())
        .map(|w| DIGITS.iter().find(|(k, _)| *k == w).map_or(w, |(_, v)| *v))
        .filter(|w| !ARTICLES.contains(w))
        .map(|w| {
            CONTRACTIONS
                .iter()
                .find(|(k, _)| *k == w)
                .map_or(w, |(_, v)| *v)
        })
        .collect();
    words.join(" ")
}

/// The normalisation the official evaluation applies to a predicted answer:
/// newlines and tabs to spaces, ends trimmed (Python's `strip()`), then
/// [`process_punctuation`] and [`process_digit_article`].
pub fn normalize_answer(text: &str) -> String {
    let text = text.replace(['\n', '\t'], " ");
    process_digit_article(&process_punctuation(text.trim_matches(is_py_space)))
}

/// VQA accuracy of one predicted answer against the human answers (10 in
/// VQA v2; any non-zero number is scored by the same leave-one-out rule).
///
/// # Errors
/// [`MetricsError::Undefined`] for no human answers.
pub fn vqa_accuracy<S: AsRef<str>>(prediction: &str, human_answers: &[S]) -> Result<f64> {
    let n = human_answers.len();
    if n == 0 {
        return Err(MetricsError::Undefined(
            "VQA accuracy with no human answers".into(),
        ));
    }
    let predicted = normalize_answer(prediction);
    let first = human_answers[0].as_ref();
    let unanimous = human_answers.iter().all(|a| a.as_ref() == first);
    let matches: Vec<bool> = human_answers
        .iter()
        .map(|a| {
            if unanimous {
                a.as_ref() == predicted
            } else {
                process_punctuation(a.as_ref()) == predicted
            }
        })
        .collect();
    let total = matches.iter().filter(|&&m| m).count();
    let mut sum = 0.0f64;
    for &m in &matches {
        // Matches among the other n − 1 answers.
        let others = total - usize::from(m);
        sum += (others as f64 / 3.0).min(1.0);
    }
    Ok(sum / n as f64)
}

/// Per-question VQA accuracies and their mean.
#[derive(Debug, Clone, PartialEq)]
pub struct VqaAccuracy {
    /// Accuracy of each question, in [0, 1].
    pub per_question: Vec<f64>,
    /// Mean over questions, in [0, 1] (the official script reports 100 × this,
    /// rounded to 2 decimals).
    pub mean: f64,
}

/// VQA accuracy of `predictions[i]` against `human_answers[i]`, and the mean.
///
/// # Errors
/// [`MetricsError::ShapeMismatch`] when the slices differ in length;
/// [`MetricsError::Undefined`] for no questions or a question without human
/// answers.
pub fn vqa_corpus_accuracy<P, R, S>(predictions: &[P], human_answers: &[R]) -> Result<VqaAccuracy>
where
    P: AsRef<str>,
    R: AsRef<[S]>,
    S: AsRef<str>,
{
    crate::check_paired(
        "VQA predictions vs human answer lists",
        predictions.len(),
        human_answers.len(),
        "VQA accuracy of no questions",
    )?;
    let per_question = predictions
        .iter()
        .zip(human_answers)
        .enumerate()
        .map(|(i, (p, a))| {
            vqa_accuracy(p.as_ref(), a.as_ref()).map_err(|_| {
                MetricsError::Undefined(format!("VQA question {i} has no human answers"))
            })
        })
        .collect::<Result<Vec<f64>>>()?;
    // Summed in order, as the official `sum(accQA) / len(accQA)`.
    let mean = per_question.iter().fold(0.0, |acc, x| acc + x) / per_question.len() as f64;
    Ok(VqaAccuracy { per_question, mean })
}
