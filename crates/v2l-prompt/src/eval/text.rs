//! Captioning and VQA runs.

use super::*;

/// One captioned image of a caption set (`[{"image": …, "captions": […]}]`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub struct CaptionItem {
    /// Image path (relative to the set's folder).
    pub image: String,
    /// Reference captions.
    pub captions: Vec<String>,
}

/// One VQA question (`[{"image", "question", "answers": [10 answers]}]`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub struct VqaItem {
    /// Image path.
    pub image: String,
    /// The question.
    pub question: String,
    /// Human answers (10 in VQA v2).
    pub answers: Vec<String>,
}

/// Settings of the caption and VQA runners.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextTaskEval {
    /// In-context examples (the first items of the set; not scored).
    pub shots: usize,
    /// Global tokens per image.
    pub k: usize,
    /// Most tokens generated per answer.
    pub max_tokens: usize,
}

/// An image's global words (all k of the tokenizer, nearest first).
///
/// # Errors
/// A tokenizer without global strings; model errors.
pub fn global_words<B: Backend>(
    v2l: &V2lTokenizer<B>,
    image: &DynamicImage,
) -> Result<Vec<String>> {
    let t = v2l.encode_images(std::slice::from_ref(image))?;
    t.global_words
        .and_then(|w| w.into_iter().next())
        .ok_or_else(|| {
            PromptError::InvalidInput(
                "the tokenizer has no global strings (pass the global vocabulary)".into(),
            )
        })
}

fn words_of<B: Backend>(
    v2l: &V2lTokenizer<B>,
    load: &dyn Fn(&str) -> Result<DynamicImage>,
    path: &str,
    k: usize,
) -> Result<String> {
    let w = global_words(v2l, &load(path)?)?;
    Ok(visual_text(&w[..k.min(w.len())]))
}

/// A full CLIP (both towers) and its tokenizer, for CLIP scores.
pub type ClipScorer<'a, B> = (&'a v2l_clip::Clip<B>, &'a v2l_clip::ClipTokenizer);

impl<B: Backend> Session<'_, B> {
    /// Few-shot captioning over a caption set: the first `shots` items are the
    /// examples (with their first caption), every later item is captioned and
    /// logged. Returns the table with BLEU-4 and CIDEr-D (pycocoevalcap
    /// conventions, captions PTB-tokenised) over the logged items, and the CLIP
    /// score of the generated captions when a CLIP is given
    /// (`100 · max(cos, 0)` averaged, as torchmetrics).
    ///
    /// # Errors
    /// Fewer items than `shots + 1`; model, image and metric errors.
    pub fn caption(
        &self,
        load: &dyn Fn(&str) -> Result<DynamicImage>,
        items: &[CaptionItem],
        settings: TextTaskEval,
        clip: Option<ClipScorer<'_, B>>,
        run: Run<'_>,
    ) -> Result<Table> {
        let (v2l, llm, tok) = (self.tokenizer, self.llm, self.llm_tokenizer);
        let Run { log, progress } = run;
        use crate::caption::{caption_prompt, generate_answer, CaptionExample};
        if items.len() <= settings.shots || items.iter().any(|i| i.captions.is_empty()) {
            return Err(PromptError::InvalidInput(format!(
                "a caption set needs more than {} items, each with a caption",
                settings.shots
            )));
        }
        let mut examples = Vec::new();
        for it in &items[..settings.shots] {
            examples.push(CaptionExample {
                visual: words_of(v2l, load, &it.image, settings.k)?,
                caption: it.captions[0].clone(),
            });
        }
        let queries = &items[settings.shots..];
        for (i, it) in queries.iter().enumerate() {
            let key = format!("caption/k{}/{}", settings.k, it.image);
            if !log.is_done(&key) {
                let vis = words_of(v2l, load, &it.image, settings.k)?;
                let prompt = caption_prompt(tok, &examples, &vis)?;
                let caption = generate_answer(llm, tok, &prompt, settings.max_tokens)?;
                let clip_score = match clip {
                    Some((c, ct)) => {
                        let img = load(&it.image)?;
                        let iv = c.encode_images(std::slice::from_ref(&img), 1)?;
                        let tv = c.encode_texts(
                            ct,
                            std::slice::from_ref(&caption),
                            v2l_clip::Truncation::Truncate,
                            1,
                        )?;
                        let host = |t: burn::tensor::Tensor<B, 2>| -> Result<Vec<Vec<f32>>> {
                            let v = t.into_data().to_vec::<f32>().map_err(|e| {
                                PromptError::InvalidInput(format!("reading CLIP embeddings: {e:?}"))
                            })?;
                            Ok(vec![v])
                        };
                        Some(v2l_metrics::clip_score::clip_score(&host(iv)?, &host(tv)?)?)
                    }
                    None => None,
                };
                let record = CaptionRecord {
                    k: settings.k,
                    image: it.image.clone(),
                    caption,
                    references: it.captions.clone(),
                    prompt_tokens: prompt.len(),
                    clip_score,
                };
                log.append_record(&key, &record)?;
            }
            progress(i + 1, queries.len());
        }
        let recs: Vec<CaptionRecord> = log
            .records_of::<CaptionRecord>()?
            .into_iter()
            .filter(|r| r.k == settings.k)
            .collect();
        let cands: Vec<String> = recs.iter().map(|r| r.caption.clone()).collect();
        let refs: Vec<Vec<String>> = recs.iter().map(|r| r.references.clone()).collect();
        use v2l_metrics::caption::{bleu, cider_d, Tokenization};
        let b = bleu(&cands, &refs, Tokenization::Ptb)?;
        let c = cider_d(&cands, &refs, Tokenization::Ptb)?;
        let cs = mean_count(recs.iter().filter_map(|r| r.clip_score))
            .map_or("–".to_string(), |(m, _)| format!("{m:.2}"));
        Ok(Table {
            title: "Few-shot captioning".into(),
            columns: ["setting", "BLEU-4 ↑", "CIDEr-D ↑", "CLIP score ↑", "images"]
                .map(String::from)
                .to_vec(),
            rows: vec![vec![
                format!("{}-shot, k = {}", settings.shots, settings.k),
                format!("{:.2}", 100.0 * b.bleu[3]),
                format!("{:.2}", 100.0 * c.score),
                cs,
                cands.len().to_string(),
            ]],
            notes: vec![
            "prompts are v2l-rs's design (the reference has no captioning code); see docs/tasks.md"
                .into(),
            "BLEU-4 and CIDEr-D as pycocoevalcap computes them on PTB-style tokens, ×100".into(),
            format!("log: {}", log.path().display()),
        ],
        })
    }
}

impl<B: Backend> Session<'_, B> {
    /// Few-shot VQA over a question set: the first `shots` items are examples
    /// (with their first answer), the rest are answered and scored with the
    /// standard VQA accuracy (answer normalisation, min(#humans/3, 1) averaged
    /// over the 10 leave-one-out subsets).
    ///
    /// # Errors
    /// Fewer items than `shots + 1`; model, image and metric errors.
    pub fn vqa(
        &self,
        load: &dyn Fn(&str) -> Result<DynamicImage>,
        items: &[VqaItem],
        settings: TextTaskEval,
        run: Run<'_>,
    ) -> Result<Table> {
        let (v2l, llm, tok) = (self.tokenizer, self.llm, self.llm_tokenizer);
        let Run { log, progress } = run;
        use crate::caption::{generate_answer, vqa_prompt, VqaExample};
        if items.len() <= settings.shots || items.iter().any(|i| i.answers.is_empty()) {
            return Err(PromptError::InvalidInput(format!(
                "a VQA set needs more than {} items, each with answers",
                settings.shots
            )));
        }
        let mut examples = Vec::new();
        for it in &items[..settings.shots] {
            examples.push(VqaExample {
                visual: words_of(v2l, load, &it.image, settings.k)?,
                question: it.question.clone(),
                answer: it.answers[0].clone(),
            });
        }
        let queries = &items[settings.shots..];
        for (i, it) in queries.iter().enumerate() {
            let key = format!("vqa/k{}/{}/{}", settings.k, it.image, it.question);
            if !log.is_done(&key) {
                let vis = words_of(v2l, load, &it.image, settings.k)?;
                let prompt = vqa_prompt(tok, &examples, &vis, &it.question)?;
                let answer = generate_answer(llm, tok, &prompt, settings.max_tokens)?;
                let acc = v2l_metrics::vqa::vqa_accuracy(&answer, &it.answers)?;
                let record = VqaRecord {
                    k: settings.k,
                    image: it.image.clone(),
                    question: it.question.clone(),
                    answer,
                    answers: it.answers.clone(),
                    accuracy: acc,
                };
                log.append_record(&key, &record)?;
            }
            progress(i + 1, queries.len());
        }
        let (mean, n) = mean_count(
            log.records_of::<VqaRecord>()?
                .into_iter()
                .filter(|r| r.k == settings.k)
                .map(|r| r.accuracy),
        )
        .unwrap_or((f64::NAN, 0));
        Ok(Table {
            title: "Few-shot VQA".into(),
            columns: ["setting", "VQA accuracy ↑", "questions"]
                .map(String::from)
                .to_vec(),
            rows: vec![vec![
                format!("{}-shot, k = {}", settings.shots, settings.k),
                format!("{:.2}", 100.0 * mean),
                n.to_string(),
            ]],
            notes: vec![
                "prompts are v2l-rs's design (the reference has no VQA code); see docs/tasks.md"
                    .into(),
                format!("log: {}", log.path().display()),
            ],
        })
    }
}
