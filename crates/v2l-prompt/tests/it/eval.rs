//! The harness's resumable log and tables.

use std::collections::BTreeMap;

use v2l_metrics::accuracy::Accuracy;
use v2l_prompt::eval::{fewshot_table, mean_of, setting_differences, ExistingLog, JsonlLog, Table};
use v2l_prompt::PromptError;

#[test]
fn log_resumes_and_drops_a_cut_line() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("run.jsonl");
    let mut log = JsonlLog::open(&p).unwrap();
    log.append("a", serde_json::json!({"task": "t", "x": 1.0}))
        .unwrap();
    log.append("b", serde_json::json!({"task": "t", "x": 3.0}))
        .unwrap();
    // An interruption in the middle of a line.
    let mut text = std::fs::read_to_string(&p).unwrap();
    text.push_str("{\"task\": \"t\", \"x\"");
    std::fs::write(&p, text).unwrap();
    let mut log = JsonlLog::open(&p).unwrap();
    assert_eq!(log.len(), 2);
    assert!(log.is_done("a") && log.is_done("b") && !log.is_done("c"));
    assert_eq!(mean_of(&log, "x", |r| r["task"] == "t"), Some((2.0, 2)));
    log.append("c", serde_json::json!({"task": "t", "x": 5.0}))
        .unwrap();
    let again = JsonlLog::open(&p).unwrap();
    assert_eq!(again.len(), 3);
    assert_eq!(std::fs::read_to_string(&p).unwrap().lines().count(), 3);
    // A corrupt complete line is an error naming it.
    std::fs::write(&p, "{\"key\": \"a\"}\nnot json\n{\"key\": \"b\"}\n").unwrap();
    let e = JsonlLog::open(&p).unwrap_err();
    assert!(e.to_string().contains("line 2"), "{e}");
}

#[test]
fn a_log_is_resumed_only_with_its_own_settings() {
    use serde_json::json;
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("run.jsonl");
    let settings = json!({"decoding": "Trie", "seed": 0, "llm": {"sha256": "ab"}});
    let mut log = JsonlLog::open_with_settings(&p, settings.clone(), ExistingLog::Resume).unwrap();
    log.append("a", json!({"x": 1})).unwrap();
    // The same settings resume (and the settings line is not a record).
    let log = JsonlLog::open_with_settings(&p, settings.clone(), ExistingLog::Resume).unwrap();
    assert_eq!((log.len(), log.settings()), (1, Some(&settings)));
    // Other settings are refused, naming each difference (nested keys
    // dotted), and the file is untouched.
    let before = std::fs::read_to_string(&p).unwrap();
    let other = json!({"decoding": "UnionMask", "seed": 0, "llm": {"sha256": "cd"}});
    match JsonlLog::open_with_settings(&p, other.clone(), ExistingLog::Resume) {
        Err(PromptError::SettingsChanged { differences, .. }) => assert_eq!(
            differences,
            [
                "decoding: \"Trie\" in the log, \"UnionMask\" now",
                "llm.sha256: \"ab\" in the log, \"cd\" now"
            ]
        ),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(std::fs::read_to_string(&p).unwrap(), before);
    // Replacing keeps the old log beside the new one.
    let log = JsonlLog::open_with_settings(&p, other, ExistingLog::Replace).unwrap();
    assert!(log.is_empty());
    assert_eq!(
        std::fs::read_to_string(dir.path().join("run.jsonl.old")).unwrap(),
        before
    );
    // A log with records but no settings line (older versions) is refused.
    let old = dir.path().join("old.jsonl");
    std::fs::write(&old, "{\"key\": \"a\"}\n").unwrap();
    assert!(matches!(
        JsonlLog::open_with_settings(&old, settings, ExistingLog::Resume),
        Err(PromptError::SettingsChanged { .. })
    ));
    assert!(setting_differences(&json!({"a": [1, 2]}), &json!({"a": [1, 2]})).is_empty());
    assert_eq!(
        setting_differences(&json!({"a": 1}), &json!({"b": 1})),
        ["a: 1 in the log, null now", "b: null in the log, 1 now"]
    );
}

#[test]
fn tables_render_as_markdown() {
    let mut r = BTreeMap::new();
    let acc = |c, t| Accuracy {
        correct: c,
        total: t,
    };
    r.insert((2, 1), BTreeMap::from([(5, acc(3, 4)), (21, acc(1, 4))]));
    r.insert((5, 1), BTreeMap::from([(5, acc(1, 2))]));
    let t = fewshot_table(&r, vec!["LLM: test".into()]);
    assert_eq!(
        t.to_markdown(),
        "### Few-shot classification accuracy (%)\n\n\
         | global tokens k | 2-way 1-shot | 5-way 1-shot |\n\
         |---|---|---|\n\
         | 5 | 75.0 (n=4) | 50.0 (n=2) |\n\
         | 21 | 25.0 (n=4) | – |\n\n\
         - LLM: test\n"
    );
    let empty = Table {
        title: "x".into(),
        columns: vec!["a".into()],
        ..Table::default()
    };
    assert_eq!(empty.to_markdown(), "### x\n\n| a |\n|---|\n");
}

/// Typed records against hand-written JSON lines: the fields a struct names
/// are read, `task` selects the type, extra fields are ignored, and a record
/// of the task that lacks a field is an error naming its key.
#[test]
fn typed_records_read_the_json_lines() {
    use v2l_prompt::eval::{FewShotRecord, RestoreRecord, VqaRecord};
    use v2l_prompt::restore::ExampleMode;
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("run.jsonl");
    std::fs::write(
        &p,
        concat!(
            r#"{"key":"e0","task":"fewshot","way":2,"shot":1,"k":5,"episode":0,"query":"q.png","#,
            r#""target":"cat","prediction":"cat","tokens":[7,8],"correct":true,"prompt_tokens":40,"#,
            r#""provenance":{"v2l":"x"}}"#,
            "\n",
            r#"{"key":"r0","task":"deblur","image":"a","psnr_y":20.5,"ssim":0.5,"lpips":null,"#,
            r#""clean_decode_psnr_y":25.0,"clean_decode_ssim":0.75,"calls":3,"#,
            r#""tokens_differing_from_clean":4,"mode":"honest","seed":9}"#,
            "\n",
            r#"{"key":"x","task":"something else","psnr_y":1.0}"#,
            "\n",
        ),
    )
    .unwrap();
    let log = JsonlLog::open(&p).unwrap();
    let fewshot = log.records_of::<FewShotRecord>().unwrap();
    assert_eq!(
        fewshot,
        vec![FewShotRecord {
            way: 2,
            shot: 1,
            k: 5,
            episode: 0,
            query: "q.png".into(),
            target: "cat".into(),
            prediction: "cat".into(),
            tokens: vec![7, 8],
            correct: true,
            prompt_tokens: 40,
            scores: vec![],
        }]
    );
    let restore = log.records_of::<RestoreRecord>().unwrap();
    assert_eq!(restore.len(), 1);
    assert_eq!(
        (
            restore[0].task.as_str(),
            restore[0].psnr_y,
            restore[0].lpips
        ),
        ("deblur", 20.5, None)
    );
    assert_eq!(restore[0].mode, ExampleMode::Honest);
    assert!(log.records_of::<VqaRecord>().unwrap().is_empty());

    // Written records read back, with `task` and `key` on the line.
    let mut log = JsonlLog::open(&p).unwrap();
    let vqa = VqaRecord {
        k: 3,
        image: "b.png".into(),
        question: "what?".into(),
        answer: "a dog".into(),
        answers: vec!["dog".into(); 10],
        accuracy: 1.0,
    };
    log.append_record("v0", &vqa).unwrap();
    let last = std::fs::read_to_string(&p).unwrap();
    let line: serde_json::Value = serde_json::from_str(last.lines().last().unwrap()).unwrap();
    assert_eq!(
        (line["task"].as_str(), line["key"].as_str()),
        (Some("vqa"), Some("v0"))
    );
    let again = JsonlLog::open(&p).unwrap();
    assert_eq!(again.records_of::<VqaRecord>().unwrap(), vec![vqa]);

    // A VQA record without `accuracy` is an error naming its key.
    std::fs::write(
        &p,
        r#"{"key":"bad","task":"vqa","k":1,"image":"i","question":"q","answer":"a","answers":[]}"#,
    )
    .unwrap();
    let e = JsonlLog::open(&p)
        .unwrap()
        .records_of::<VqaRecord>()
        .unwrap_err();
    assert!(
        e.to_string().contains("bad") && e.to_string().contains("accuracy"),
        "{e}"
    );
}
