//! 80-template CLIP text embeddings against the Python reference
//! (`scripts/gen_codebook_template_fixtures.py`: the tiny random CLIP of
//! v2l-clip's fixtures with a tiny BPE of 486 learned merges, float64), the
//! local codebook's row i = token id i, resuming, streaming writes and
//! over-long entries.

use std::path::Path;

use v2l_assets::readers::tensors::{SafetensorsFile, TensorSource};
use v2l_clip::{Clip, ClipTokenizer};
use v2l_codebook::vocab::vocabulary_texts;
use v2l_codebook::{Codebook, CodebookError, Precision, TemplateEmbedder, IMAGENET_TEMPLATES};
use v2l_llm::tokenizer::LlmTokenizer;

use crate::common::{fixture, rel_err, tiny_clip_path, B};

fn entries() -> Vec<String> {
    serde_json::from_str(&std::fs::read_to_string(fixture("templates/entries.json")).unwrap())
        .unwrap()
}

fn expected(key: &str) -> Vec<f32> {
    let f = SafetensorsFile::open(fixture("templates/expected.safetensors")).unwrap();
    f.read_f32(key).unwrap().1
}

fn tiny() -> (Clip<B>, ClipTokenizer) {
    let clip = Clip::<B>::load(tiny_clip_path(), &Default::default()).unwrap();
    let tok = ClipTokenizer::from_bpe_file(fixture("templates/tiny_bpe.txt")).unwrap();
    assert_eq!(
        (tok.vocab_size(), tok.sot_id(), tok.eot_id()),
        (1000, 998, 999)
    );
    (clip, tok)
}

#[test]
fn templates_are_clips_80() {
    let reference: Vec<String> = serde_json::from_str(
        &std::fs::read_to_string(fixture("templates/templates.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(reference, IMAGENET_TEMPLATES);
}

#[test]
fn template_average_matches_python() {
    let (clip, tok) = tiny();
    let entries = entries();
    // The prompts' token ids of entry 0 equal the reference tokenizer's.
    let ids_first = expected("ids_first");
    let prompts: Vec<String> = IMAGENET_TEMPLATES
        .iter()
        .map(|t| t.replace("{}", &entries[0]))
        .collect();
    let rows = tok
        .tokenize_batch(&prompts, 77, v2l_clip::Truncation::Error)
        .unwrap();
    let ours: Vec<f32> = rows.concat().iter().map(|&i| i as f32).collect();
    assert_eq!(ours, ids_first);

    let mean = expected("mean");
    let renorm = expected("mean_renormalised");
    // One entry per forward pass, and several: the same rows.
    for batch in [80, 640] {
        let e = TemplateEmbedder::new(&clip, &tok)
            .unwrap()
            .batch_prompts(batch);
        let got = e.embed(&entries).unwrap();
        let err = rel_err(&got, &mean);
        println!("batch {batch}: rel. error {err:.2e}");
        assert!(err <= 1e-4, "{err}");
        // Not renormalised: every row is shorter than 1.
        for row in got.chunks(64) {
            let n = row.iter().map(|v| v * v).sum::<f32>().sqrt();
            assert!(n < 0.999 && n > 0.1, "{n}");
        }
    }
    let e = TemplateEmbedder::new(&clip, &tok)
        .unwrap()
        .renormalize(true);
    let err = rel_err(&e.embed(&entries).unwrap(), &renorm);
    assert!(err <= 1e-4, "{err}");
}

/// A word-level tokenizer whose tokens are some of the fixture's entries.
fn word_tokenizer(dir: &Path) -> LlmTokenizer {
    let json = serde_json::json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": [],
        "normalizer": null,
        "pre_tokenizer": { "type": "WhitespaceSplit" },
        "post_processor": null,
        "decoder": null,
        "model": {
            "type": "WordLevel",
            "vocab": { "[UNK]": 0, "ing": 1, "dog": 2, "3": 3, "café": 4, "doghouse": 5, "zzz": 6 },
            "unk_token": "[UNK]"
        }
    });
    let path = dir.join("tokenizer.json");
    std::fs::write(&path, json.to_string()).unwrap();
    LlmTokenizer::from_file(&path).unwrap()
}

#[test]
fn local_codebook_row_i_is_token_i_and_resumes() {
    let (clip, tok) = tiny();
    let dir = tempfile::tempdir().unwrap();
    let llm_tok = word_tokenizer(dir.path());
    let texts = vocabulary_texts(&llm_tok).unwrap();
    assert_eq!(
        texts,
        ["[UNK]", "ing", "dog", "3", "café", "doghouse", "zzz"]
    );

    let embedder = TemplateEmbedder::new(&clip, &tok).unwrap();
    let work = dir.path().join("work");
    let mut last = None;
    let chunks = embedder
        .embed_chunked(&texts, &work, "tiny", 2, &mut |p| {
            last = Some((p.done, p.total))
        })
        .unwrap();
    assert_eq!(last, Some((7, 7)));
    let out = dir.path().join("local.safetensors");
    let ids: Vec<Vec<u32>> = (0..7).map(|i| vec![i]).collect();
    chunks
        .save(
            &out,
            Precision::F32,
            Some(texts.clone()),
            Some(ids.clone()),
            serde_json::json!({"kind": "local"}),
        )
        .unwrap();
    let cb = Codebook::load(&out).unwrap();
    assert_eq!((cb.rows(), cb.dim()), (7, 64));
    assert_eq!(cb.strings().unwrap(), texts);
    assert_eq!(cb.token_ids().unwrap(), ids);
    assert_eq!(cb.embeddings(), chunks.to_vec().unwrap());
    // Row i is the reference embedding of token i's text.
    let names = entries();
    let mean = expected("mean");
    for (id, text) in texts.iter().enumerate() {
        if let Some(k) = names.iter().position(|n| n == text) {
            let err = rel_err(cb.row(id).unwrap(), &mean[k * 64..(k + 1) * 64]);
            assert!(err <= 1e-4, "token {id} ({text}): {err}");
        }
    }
    // f16 storage rounds each value.
    let half = dir.path().join("half.safetensors");
    chunks
        .save(&half, Precision::F16, None, None, serde_json::Value::Null)
        .unwrap();
    let h = Codebook::load(&half).unwrap();
    let rounded: Vec<f32> = cb
        .embeddings()
        .iter()
        .map(|&v| half::f16::from_f32(v).to_f32())
        .collect();
    assert_eq!(h.embeddings(), rounded);

    // Resume: a finished chunk is not recomputed (its altered content
    // survives); a missing one is.
    let c1 = work.join("embeddings-000001.f32");
    std::fs::write(&c1, vec![0u8; 2 * 64 * 4]).unwrap();
    std::fs::remove_file(work.join("embeddings-000002.f32")).unwrap();
    let again = embedder
        .embed_chunked(&texts, &work, "tiny", 2, &mut |_| {})
        .unwrap()
        .to_vec()
        .unwrap();
    assert!(again[2 * 64..4 * 64].iter().all(|&v| v == 0.0));
    assert_eq!(again[4 * 64..6 * 64], cb.embeddings()[4 * 64..6 * 64]);
    // Different parameters in the same folder are refused.
    let e = TemplateEmbedder::new(&clip, &tok)
        .unwrap()
        .renormalize(true)
        .embed_chunked(&texts, &work, "tiny", 2, &mut |_| {})
        .unwrap_err();
    assert!(
        matches!(e, CodebookError::JobMismatch { ref what, .. } if what == "renormalize"),
        "{e}"
    );
}

#[test]
fn over_long_entries_are_named() {
    let (clip, tok) = tiny();
    let long = vec!["word"; 80].join(" ");
    let entries = vec!["dog".to_string(), long.clone(), "ing".into(), long];
    let embedder = TemplateEmbedder::new(&clip, &tok).unwrap();
    match embedder.check_lengths(&entries) {
        Err(CodebookError::EntryTooLong {
            count,
            index,
            tokens,
            context,
            ..
        }) => {
            assert_eq!((count, index, context), (2, 1, 77));
            assert!(tokens > 77);
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        embedder.embed(&entries),
        Err(CodebookError::EntryTooLong { index: 1, .. })
    ));
    // With truncation the entries embed.
    let cut = TemplateEmbedder::new(&clip, &tok)
        .unwrap()
        .truncation(v2l_clip::Truncation::Truncate);
    assert_eq!(cut.embed(&entries).unwrap().len(), 4 * 64);
    // An empty list and a bad template are errors.
    assert!(embedder.embed::<String>(&[]).is_err());
    assert!(TemplateEmbedder::new(&clip, &tok)
        .unwrap()
        .with_templates(vec!["no placeholder".into()])
        .is_err());
}
