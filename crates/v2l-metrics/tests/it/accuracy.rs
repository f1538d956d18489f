//! Accuracy helpers on hand-computed cases.

use v2l_metrics::accuracy::{is_correct, label_accuracy, text_accuracy, Accuracy, MatchRule};

#[test]
fn exact_prefix_and_normalized_rules() {
    use MatchRule::*;
    // Official: a plain prefix test, case- and underscore-sensitive.
    assert!(is_correct(
        "golden_retriever</s>",
        "golden_retriever",
        ExactPrefix
    ));
    assert!(is_correct("tabbycat", "tabby", ExactPrefix));
    assert!(!is_correct(
        " golden_retriever",
        "golden_retriever",
        ExactPrefix
    ));
    assert!(!is_correct(
        "Golden_retriever",
        "golden_retriever",
        ExactPrefix
    ));
    // Normalised: case, separators and spacing ignored, word boundary kept.
    assert!(is_correct(
        " Golden Retriever, a dog",
        "golden_retriever",
        Normalized
    ));
    assert!(is_correct("tabby cat", "tabby", Normalized));
    assert!(!is_correct("tabbycat", "tabby", Normalized));
    assert!(!is_correct("anything", "", Normalized));
    let acc = text_accuracy(&["dog", "cat!", "car"], &["dog", "cat", "bus"], ExactPrefix).unwrap();
    assert_eq!((acc.correct, acc.total), (2, 3));
    assert!((acc.value() - 2.0 / 3.0).abs() < 1e-15);
    assert!(text_accuracy(&["a"], &["a", "b"], ExactPrefix).is_err());
}

#[test]
fn label_accuracy_and_wilson_interval() {
    let a = label_accuracy(&[1, 2, 3, 4], &[1, 2, 0, 4]).unwrap();
    assert_eq!(
        a,
        Accuracy {
            correct: 3,
            total: 4
        }
    );
    assert!(label_accuracy(&[1], &[1, 2]).is_err());
    // Wilson 95 % for 8/10: (0.4902, 0.9433) (closed form, z = 1.96).
    let (lo, hi) = Accuracy {
        correct: 8,
        total: 10,
    }
    .wilson_interval(1.96)
    .unwrap();
    assert!(
        (lo - 0.490_16).abs() < 1e-4 && (hi - 0.943_32).abs() < 1e-4,
        "{lo} {hi}"
    );
    assert!(Accuracy::default().value().is_nan());
    assert!(Accuracy::default().wilson_interval(1.96).is_none());
}
