//! End to end with the real SmolLM2-135M-Instruct (slow real-weight test,
//! ~1–2 min in the fast profile; skipped when the SmolLM2 or Fashion-MNIST
//! assets are not cached):
//!
//! 1. a local codebook from SmolLM2's whole vocabulary (row i = token i) and
//!    a small global codebook (300 SmolLM2 token texts, CLIP-voted by 40
//!    Fashion-MNIST images, top 40 kept), both with the tiny random CLIP
//!    fixture — one template (`a photo of {}.`) instead of 80 to keep the
//!    test short;
//! 2. a tiny random V2L tokenizer on them (8×8 grid, k = 3) encodes
//!    Fashion-MNIST images;
//! 3. three 2-way 1-shot episodes (both decoders) and one inpainting run.

use burn::backend::Flex;
use v2l_clip::{Clip, ClipTokenizer, Truncation};
use v2l_codebook::filter::{self, filter_codebook, Selection};
use v2l_codebook::vocab::vocabulary_texts;
use v2l_codebook::{Codebook, TemplateEmbedder};
use v2l_llm::gguf::GgufFile;
use v2l_llm::tokenizer::LlmTokenizer;
use v2l_llm::Llama;
use v2l_model::image::DynamicImage;
use v2l_model::{ModelConfig, V2lModel, V2lTokenizer};
use v2l_prompt::episodes::{generate_episodes, ClassNames, Item};
use v2l_prompt::fewshot::{classify, Decoding, FewShotOptions, TextEpisode};
use v2l_prompt::prompt::{class_candidates, visual_text};
use v2l_prompt::restore::{prediction_mask, RestoreOptions, Restorer, Task};
use v2l_prompt::LabelledText;

type B = Flex;

fn root(rel: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(rel)
}

#[test]
fn smollm2_classifies_and_inpaints_fashion_mnist() {
    let Some(gguf) =
        v2l_assets::fetch::test_asset("smollm2-135m", "SmolLM2-135M-Instruct.Q4_1.gguf").unwrap()
    else {
        return;
    };
    if v2l_assets::fetch::test_asset("fashion-mnist", "t10k-images-idx3-ubyte.gz")
        .unwrap()
        .is_none()
    {
        return;
    }
    let device = Default::default();
    let tok = LlmTokenizer::from_gguf(&GgufFile::open(&gguf).unwrap()).unwrap();
    let llm = Llama::<B>::open(&gguf, &device).unwrap();
    let clip = Clip::<B>::load(
        root("v2l-clip/tests/fixtures/model/tiny_openai.pth"),
        &device,
    )
    .unwrap();
    let bpe =
        ClipTokenizer::from_bpe_file(root("v2l-codebook/tests/fixtures/templates/tiny_bpe.txt"))
            .unwrap();
    let embedder = TemplateEmbedder::new(&clip, &bpe)
        .unwrap()
        .with_templates(vec!["a photo of {}.".into()])
        .unwrap()
        .truncation(Truncation::Truncate);

    // 1. Codebooks.
    let texts = vocabulary_texts(&tok).unwrap();
    assert_eq!(texts.len(), 49_152);
    let local = Codebook::new(embedder.embed(&texts).unwrap(), texts.len(), 64).unwrap();
    // Row i is token i: the row of " dog" is the embedding of " dog" alone.
    let dog = tok.token_to_id("Ġdog").unwrap() as usize;
    let alone = embedder.embed(&[" dog"]).unwrap();
    let diff = local
        .row(dog)
        .unwrap()
        .iter()
        .zip(&alone)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(diff < 1e-5, "{diff}");

    let data = v2l_assets::datasets::fashion_mnist(v2l_assets::datasets::Split::Test).unwrap();
    let cand_texts: Vec<String> = texts[1000..1300].to_vec();
    let cands = Codebook::new(embedder.embed(&cand_texts).unwrap(), 300, 64)
        .unwrap()
        .with_strings(cand_texts)
        .unwrap();
    let images: Vec<DynamicImage> = (0..40)
        .map(|i| {
            let px = data.image(i).unwrap().to_vec();
            DynamicImage::ImageLuma8(image::GrayImage::from_raw(28, 28, px).unwrap())
        })
        .collect();
    let mut votes = filter::Votes::new(300, 5);
    let emb = v2l_clip::normalize(clip.encode_images(&images, 8).unwrap());
    votes
        .add(
            &filter::prepare(&cands).unwrap(),
            &emb.into_data().to_vec::<f32>().unwrap(),
        )
        .unwrap();
    assert_eq!(votes.counts.iter().sum::<u64>(), 200);
    let global = filter_codebook(&cands, &votes, Selection::TopN(40)).unwrap();
    assert_eq!(global.rows(), 40);

    // 2. A tiny random V2L tokenizer with the tiny CLIP's vision tower.
    let vision_cfg = clip.config().vision.clone().unwrap();
    let config: ModelConfig = serde_json::from_value(serde_json::json!({
        "image_size": 32,
        "ddconfig": { "double_z": false, "z_channels": 32, "resolution": 32, "in_channels": 3,
                      "out_ch": 3, "ch": 32, "ch_mult": [1, 2, 2], "num_res_blocks": 1,
                      "attn_resolutions": [], "dropout": 0.0 },
        "embed_dim": 64, "n_local": 49152, "n_global": 40, "k": 3,
        "clip_vision": vision_cfg,
    }))
    .unwrap();
    let mut model = V2lModel::<B>::random(&config, 11, &device).unwrap();
    model
        .replace_local_codebook(local.embeddings().to_vec())
        .unwrap();
    model
        .replace_global_codebook(global.embeddings().to_vec())
        .unwrap();
    model.vl = Clip::<B>::load(
        root("v2l-clip/tests/fixtures/model/tiny_openai.pth"),
        &device,
    )
    .unwrap()
    .into_towers()
    .0
    .map(v2l_vl::ImageTower::Clip);
    let v2l = V2lTokenizer::new(model, Some(global.strings().unwrap().to_vec()), &device).unwrap();
    let tokens = v2l.encode_images(&images[..12]).unwrap();
    assert_eq!(tokens.grid, [8, 8]);
    assert!(tokens.local_ids.iter().flatten().all(|&i| i < 49_152));
    let words = tokens.global_words.clone().unwrap();
    assert_eq!(words[0].len(), 3);

    // 3a. Three 2-way 1-shot episodes over the 12 encoded images.
    let names = ClassNames::builtin("fashion-mnist").unwrap();
    let items: Vec<Item> = (0..12)
        .map(|i| Item::parse(&format!("{}/{i}", data.labels[i])).unwrap())
        .collect();
    let episodes = generate_episodes(&items, 2, 1, 3, 5).unwrap();
    let text_of = |it: &Item| {
        let i: usize = it.path.split_once('/').unwrap().1.parse().unwrap();
        visual_text(&words[i])
    };
    for decoding in [Decoding::UnionMask, Decoding::Trie] {
        let opts = FewShotOptions {
            decoding,
            ..FewShotOptions::default()
        };
        let mut correct = 0;
        for ep in &episodes {
            let te = TextEpisode {
                support: ep
                    .support
                    .iter()
                    .map(|s| LabelledText {
                        visual: text_of(s),
                        label: names.name(&s.class).unwrap().into(),
                    })
                    .collect(),
                query_visual: text_of(&ep.query),
                target: names.name(&ep.query.class).unwrap().into(),
            };
            let p = classify(&llm, &tok, &te, &opts).unwrap();
            let cands = class_candidates(&tok, &te.classes()).unwrap();
            match decoding {
                Decoding::UnionMask => {
                    assert_eq!(p.tokens.len(), 16);
                    for (j, &t) in p.tokens.iter().enumerate() {
                        let row: Vec<u32> =
                            cands.iter().filter_map(|c| c.get(j).copied()).collect();
                        assert!(
                            if row.is_empty() {
                                t == 0
                            } else {
                                row.contains(&t)
                            },
                            "step {j}: {t}"
                        );
                    }
                }
                Decoding::Trie => assert!(cands.contains(&p.tokens), "{:?}", p.tokens),
                Decoding::Calibrated => unreachable!("not run here"),
            }
            // Hand-checked scoring: correct iff the text starts with the name.
            assert_eq!(p.correct, p.text.starts_with(&te.target));
            correct += usize::from(p.correct);
        }
        println!("{decoding:?}: {correct}/3 correct");
    }

    // 3b. One inpainting (8×8 grid: the 4×4 centre, 8 calls of 2 tokens).
    let restorer = Restorer {
        tokenizer: &v2l,
        llm: &llm,
        llm_tokenizer: &tok,
        options: RestoreOptions {
            seed: 1,
            ..RestoreOptions::default()
        },
    };
    let r = restorer.restore(&images[0], &[], Task::Inpainting).unwrap();
    assert_eq!(r.calls.len(), 8);
    let mask = prediction_mask(Task::Inpainting, [8, 8]);
    for (p, &hole) in mask.iter().enumerate() {
        if !hole {
            assert_eq!(
                r.restored[3 + p],
                r.clean[3 + p],
                "position {p} outside the hole changed"
            );
        }
    }
    assert!(r.restored.iter().all(|&i| (i as usize) < 49_152));
    assert_eq!(
        r.restored[..3],
        r.clean[..3],
        "faithful mode decodes the clean global tokens"
    );
    // PSNR of the restored decode against the clean decode, by hand.
    let (a, b) = (r.clean_decode.as_raw(), r.restored_decode.as_raw());
    let mse = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
        .sum::<f64>()
        / a.len() as f64;
    let to_img = |im: &image::RgbImage| {
        let (w, h) = im.dimensions();
        let mut chw = vec![0f32; 3 * (w * h) as usize];
        for (i, px) in im.pixels().enumerate() {
            for c in 0..3 {
                chw[c * (w * h) as usize + i] = f32::from(px.0[c]) / 255.0;
            }
        }
        v2l_metrics::Image::from_chw(chw, 3, h as usize, w as usize).unwrap()
    };
    // The harness: one logged inpainting with LPIPS and saved images.
    let lpips_w = v2l_assets::fetch::test_asset("lpips-backbones", "alexnet.ckpt").unwrap();
    let lpips = lpips_w.map(|w| {
        v2l_metrics::lpips::Lpips::<B>::load(v2l_metrics::lpips::LpipsNet::Alex, &w, &device)
            .unwrap()
    });
    let dir = tempfile::tempdir().unwrap();
    let mut log = v2l_prompt::eval::JsonlLog::open(dir.path().join("r.jsonl")).unwrap();
    let named = vec![("img0".to_string(), images[0].clone())];
    restorer
        .evaluate(
            &named,
            &[Task::Inpainting],
            lpips.as_ref(),
            Some(dir.path()),
            v2l_prompt::eval::Run {
                log: &mut log,
                progress: &mut |_, _| {},
            },
        )
        .unwrap();
    let rec = log.get("restore/inpainting/img0").unwrap();
    assert_eq!(rec["calls"], 8);
    // Same seed, same image: the logged run restores what `restore` did.
    assert_eq!(
        rec["tokens_differing_from_clean"].as_u64().unwrap() as usize,
        r.restored
            .iter()
            .zip(&r.clean)
            .filter(|(a, b)| a != b)
            .count()
    );
    assert_eq!(rec["lpips"].is_f64(), lpips.is_some());
    for sub in [
        "inpainting/img0.png",
        "inpainting/clean/img0.png",
        "inpainting/restored/img0.png",
    ] {
        assert!(dir.path().join(sub).is_file(), "{sub}");
    }
    let table = v2l_prompt::eval::restore_table(&log, &[Task::Inpainting], vec![]).to_markdown();
    assert!(table.contains("| inpainting |"), "{table}");

    // Honest mode (examples from other images; the corrupted image's own
    // global tokens) on a deblur: all 64 positions, 32 calls.
    let honest = Restorer {
        options: RestoreOptions {
            seed: 2,
            mode: v2l_prompt::ExampleMode::Honest,
            ..RestoreOptions::default()
        },
        ..restorer
    };
    assert!(
        honest.restore(&images[1], &[], Task::Deblur).is_err(),
        "honest mode needs other images"
    );
    let h = honest
        .restore(&images[1], &images[2..4], Task::Deblur)
        .unwrap();
    assert_eq!(h.calls.len(), 32);
    assert_eq!(h.restored[..3], h.corrupted[..3]);

    // Captioning and VQA stop at the example delimiter.
    use v2l_prompt::caption::{
        caption_prompt, generate_answer, vqa_prompt, CaptionExample, VqaExample,
    };
    let ex = vec![
        CaptionExample {
            visual: visual_text(&words[0]),
            caption: "a plain shirt".into(),
        },
        CaptionExample {
            visual: visual_text(&words[1]),
            caption: "a pair of trousers".into(),
        },
    ];
    let cap = generate_answer(
        &llm,
        &tok,
        &caption_prompt(&tok, &ex, &visual_text(&words[2])).unwrap(),
        12,
    )
    .unwrap();
    assert!(!cap.contains('\n') && !cap.contains("###"), "{cap:?}");
    let vq = vec![VqaExample {
        visual: visual_text(&words[0]),
        question: "What is it?".into(),
        answer: "a shirt".into(),
    }];
    let ans = generate_answer(
        &llm,
        &tok,
        &vqa_prompt(&tok, &vq, &visual_text(&words[2]), "What is it?").unwrap(),
        8,
    )
    .unwrap();
    assert!(!ans.contains('\n'), "{ans:?}");
    println!("caption: {cap:?}; answer: {ans:?}");

    let psnr = v2l_metrics::psnr::psnr(
        &to_img(&r.clean_decode),
        &to_img(&r.restored_decode),
        v2l_metrics::psnr::PsnrChannels::Rgb,
    )
    .unwrap();
    if mse > 0.0 {
        let want = 10.0 * (255.0f64 * 255.0 / mse).log10();
        assert!((psnr - want).abs() < 1e-3, "{psnr} vs {want}");
    }
}
