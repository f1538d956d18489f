//! Accuracy helpers for the few-shot evaluations: the official exact-prefix
//! rule, a normalised variant, label accuracy, and counts kept with the
//! value (report `n` with every accuracy).

use crate::error::{MetricsError, Result};

/// How a generated text is compared with the target class name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MatchRule {
    /// The official rule: the generated text's first `len(target)`
    /// characters equal the target exactly (`generated.startswith(target)`).
    #[default]
    ExactPrefix,
    /// Our normalised variant: both sides lower-cased, `_` and `-` turned
    /// into spaces, runs of whitespace collapsed and leading/trailing
    /// whitespace removed; then the generated text must equal the target or
    /// continue it at a word boundary (the next character is not a letter or
    /// digit), so "tabby cat" matches "tabby" but "tabbycat" does not.
    Normalized,
}

/// Normalisation of [`MatchRule::Normalized`].
pub fn normalize_label(s: &str) -> String {
    s.to_lowercase()
        .replace(['_', '-'], " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether `generated` counts as the class `target` under `rule`.
pub fn is_correct(generated: &str, target: &str, rule: MatchRule) -> bool {
    match rule {
        MatchRule::ExactPrefix => generated.starts_with(target),
        MatchRule::Normalized => {
            let g = normalize_label(generated);
            let t = normalize_label(target);
            if t.is_empty() {
                return false;
            }
            match g.strip_prefix(&t) {
                Some(rest) => rest.chars().next().is_none_or(|c| !c.is_alphanumeric()),
                None => false,
            }
        }
    }
}

/// Correct out of total.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Accuracy {
    /// Correct answers.
    pub correct: usize,
    /// Answers scored.
    pub total: usize,
}

impl Accuracy {
    /// `correct / total` (NaN for no answers).
    pub fn value(&self) -> f64 {
        if self.total == 0 {
            f64::NAN
        } else {
            self.correct as f64 / self.total as f64
        }
    }

    /// The Wilson score interval at `z` standard deviations (1.96 for 95 %).
    pub fn wilson_interval(&self, z: f64) -> Option<(f64, f64)> {
        if self.total == 0 {
            return None;
        }
        let n = self.total as f64;
        let p = self.value();
        let z2 = z * z;
        let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
        let half = z * ((p * (1.0 - p) + z2 / (4.0 * n)) / n).sqrt() / (1.0 + z2 / n);
        Some((centre - half, centre + half))
    }

    /// Add one answer.
    pub fn push(&mut self, correct: bool) {
        self.total += 1;
        self.correct += usize::from(correct);
    }
}

/// Accuracy of generated texts against target names.
///
/// # Errors
/// Different numbers of outputs and targets.
pub fn text_accuracy<S: AsRef<str>, T: AsRef<str>>(
    generated: &[S],
    targets: &[T],
    rule: MatchRule,
) -> Result<Accuracy> {
    if generated.len() != targets.len() {
        return Err(MetricsError::ShapeMismatch {
            what: "generated texts vs targets",
            left: vec![generated.len()],
            right: vec![targets.len()],
        });
    }
    let mut a = Accuracy::default();
    for (g, t) in generated.iter().zip(targets) {
        a.push(is_correct(g.as_ref(), t.as_ref(), rule));
    }
    Ok(a)
}

/// Accuracy of predicted labels.
///
/// # Errors
/// Different lengths.
pub fn label_accuracy<L: PartialEq>(predicted: &[L], labels: &[L]) -> Result<Accuracy> {
    if predicted.len() != labels.len() {
        return Err(MetricsError::ShapeMismatch {
            what: "predictions vs labels",
            left: vec![predicted.len()],
            right: vec![labels.len()],
        });
    }
    Ok(Accuracy {
        correct: predicted.iter().zip(labels).filter(|(p, l)| p == l).count(),
        total: labels.len(),
    })
}
