//! Episode files, class names and the episode generator.

use v2l_prompt::episodes::{generate_episodes, parse_csv, write_csv, ClassNames, Item, EFT_WNID};
use v2l_prompt::PromptError;

#[test]
fn csv_parses_the_reference_format_and_names_bad_lines() {
    let text = "n01/a.JPEG,n02/b.JPEG,n01/c.JPEG,n02/d.JPEG,n01/q.JPEG,\n\nn03/e.JPEG,n04/f.JPEG,n03/g.JPEG,n04/h.JPEG,n04/q.JPEG,\n";
    let eps = parse_csv(text, Some((2, 2)), "split.csv").unwrap();
    assert_eq!(eps.len(), 2);
    assert_eq!(eps[0].support.len(), 4);
    assert_eq!(eps[0].query.path, "n01/q.JPEG");
    assert_eq!(eps[0].query.class, "n01");
    assert_eq!(eps[1].classes(), ["n03", "n04"]);
    // Round trip through the writer (lines end with a comma).
    assert_eq!(parse_csv(&write_csv(&eps), Some((2, 2)), "x").unwrap(), eps);
    // The last field is dropped, as `split(",")[:-1]`: without the trailing
    // comma the query is lost and the count is wrong (line 1).
    let e = parse_csv("n01/a,n02/b,n01/c,n02/d,n01/q\n", Some((2, 2)), "f.csv").unwrap_err();
    assert!(matches!(e, PromptError::Episode { line: 1, .. }), "{e}");
    // A malformed entry, named with its line.
    let bad = "n01/a,n02/b,\nn01/a,nopath,n01/q,\n";
    match parse_csv(bad, None, "f.csv").unwrap_err() {
        PromptError::Episode {
            line,
            message,
            path,
        } => {
            assert_eq!((line, path.as_str()), (2, "f.csv"));
            assert!(message.contains("nopath"), "{message}");
        }
        other => panic!("{other}"),
    }
    // Wrong number of classes.
    let e = parse_csv("n01/a,n01/b,n01/c,n01/d,n01/q,\n", Some((2, 2)), "f").unwrap_err();
    assert!(e.to_string().contains("1 classes, expected 2"), "{e}");
    assert!(parse_csv("\n\n", None, "f").is_err());
}

#[test]
fn class_names_from_the_standard_formats() {
    let json = r#"{"0": ["n01440764", "tench"], "27": ["n01631663", "eft"], "12": ["n01532829", "house_finch"]}"#;
    let names = ClassNames::parse(json, "idx.json").unwrap();
    assert_eq!(names.name("n01532829").unwrap(), "house_finch");
    assert_eq!(names.name(EFT_WNID).unwrap(), "eft");
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("idx.json");
    std::fs::write(&p, json).unwrap();
    // The evaluation scripts' quirk: eft becomes two spaces.
    assert_eq!(
        ClassNames::read(&p, true).unwrap().name(EFT_WNID).unwrap(),
        "  "
    );
    assert_eq!(
        ClassNames::read(&p, false).unwrap().name(EFT_WNID).unwrap(),
        "eft"
    );
    let lines = ClassNames::parse("n01 great white shark\nn02 tench\n", "t").unwrap();
    assert_eq!(lines.name("n01").unwrap(), "great white shark");
    let flat = ClassNames::parse(r#"{"a": "apple"}"#, "t").unwrap();
    assert_eq!(flat.name("a").unwrap(), "apple");
    // An unknown class id is an error naming it.
    match names.name("n99") {
        Err(PromptError::UnknownClass { id, known }) => {
            assert_eq!((id.as_str(), known), ("n99", 3))
        }
        other => panic!("{other:?}"),
    }
    assert!(ClassNames::parse("{\"a\": 3}", "t").is_err());
    let fm = ClassNames::builtin("fashion-mnist").unwrap();
    assert_eq!(fm.name("9").unwrap(), "Ankle boot");
    assert_eq!(
        ClassNames::builtin("mnist").unwrap().name("3").unwrap(),
        "three"
    );
    assert!(ClassNames::builtin("cifar").is_err());
}

#[test]
fn generated_episodes_are_seeded_and_never_leak_the_query() {
    let items: Vec<Item> = (0..5)
        .flat_map(|c| (0..6).map(move |i| Item::parse(&format!("{c}/{i}")).unwrap()))
        .collect();
    let a = generate_episodes(&items, 3, 2, 50, 7).unwrap();
    assert_eq!(a, generate_episodes(&items, 3, 2, 50, 7).unwrap());
    assert_ne!(a, generate_episodes(&items, 3, 2, 50, 8).unwrap());
    for e in &a {
        assert_eq!(e.support.len(), 6);
        assert_eq!(e.classes().len(), 3);
        assert!(
            !e.support.contains(&e.query),
            "query in its own support set"
        );
        assert!(e.support.iter().any(|s| s.class == e.query.class));
        for c in e.classes() {
            assert_eq!(e.support.iter().filter(|s| s.class == c).count(), 2);
        }
    }
    // Too few images per class for K + 1.
    assert!(generate_episodes(&items, 3, 6, 1, 0).is_err());
    assert!(generate_episodes(&items, 6, 1, 1, 0).is_err());
    assert!(generate_episodes(&items, 0, 1, 1, 0).is_err());
}
