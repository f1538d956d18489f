//! Few-shot classification runs and their table.

use super::*;

/// Few-shot evaluation settings.
#[derive(Debug, Clone)]
pub struct FewShotEval {
    /// N (ways).
    pub way: usize,
    /// K (shots).
    pub shot: usize,
    /// Global tokens per image to try (the reference: 5 and 21).
    pub ks: Vec<usize>,
    /// Prompt and decoding options.
    pub options: FewShotOptions,
}

impl<B: Backend> Session<'_, B> {
    /// Run few-shot classification over `episodes`, logging one line per
    /// (k, episode) and returning the accuracy per k. Images are encoded once
    /// (at the largest k; the first k global ids are the k nearest).
    ///
    /// # Errors
    /// Unknown classes; images that cannot be loaded; model and context errors.
    pub fn fewshot(
        &self,
        images: &dyn ImageSource,
        names: &ClassNames,
        episodes: &[Episode],
        settings: &FewShotEval,
        run: Run<'_>,
    ) -> Result<BTreeMap<usize, Accuracy>> {
        let (v2l, llm, tok) = (self.tokenizer, self.llm, self.llm_tokenizer);
        let Run { log, progress } = run;
        let max_k = settings.ks.iter().copied().max().unwrap_or(0);
        if max_k == 0 || max_k > v2l.config().k {
            return Err(PromptError::InvalidInput(format!(
                "global token counts {:?} must be in 1..={} (the tokenizer's k)",
                settings.ks,
                v2l.config().k
            )));
        }
        // Every class must have a name before any image is encoded.
        for ep in episodes {
            for it in ep.support.iter().chain(std::iter::once(&ep.query)) {
                names.name(&it.class)?;
            }
        }
        let mut words: HashMap<String, Vec<String>> = HashMap::new();
        let total = episodes.len() * settings.ks.len();
        let mut done = 0;
        for (e, ep) in episodes.iter().enumerate() {
            for &k in &settings.ks {
                let key = format!("{}way-{}shot/k{k}/{e}", settings.way, settings.shot);
                done += 1;
                if log.is_done(&key) {
                    progress(done, total);
                    continue;
                }
                let all: Vec<&Item> = ep
                    .support
                    .iter()
                    .chain(std::iter::once(&ep.query))
                    .collect();
                for it in &all {
                    if !words.contains_key(&it.path) {
                        let w = global_words(v2l, &images.load(it)?)?;
                        words.insert(it.path.clone(), w);
                    }
                }
                let vis = |it: &Item| visual_text(&words[&it.path][..k]);
                let te = TextEpisode {
                    support: ep
                        .support
                        .iter()
                        .map(|s| {
                            Ok(LabelledText {
                                visual: vis(s),
                                label: names.name(&s.class)?.to_string(),
                            })
                        })
                        .collect::<Result<Vec<_>>>()?,
                    query_visual: vis(&ep.query),
                    target: names.name(&ep.query.class)?.to_string(),
                };
                let p = classify(llm, tok, &te, &settings.options)?;
                let record = FewShotRecord {
                    way: settings.way,
                    shot: settings.shot,
                    k,
                    episode: e,
                    query: ep.query.path.clone(),
                    target: p.target,
                    prediction: p.text,
                    tokens: p.tokens,
                    correct: p.correct,
                    prompt_tokens: p.prompt_tokens,
                    scores: p.scores,
                };
                log.append_record(&key, &record)?;
                progress(done, total);
            }
        }
        let mut acc: BTreeMap<usize, Accuracy> = BTreeMap::new();
        for r in log.records_of::<FewShotRecord>()? {
            if r.way == settings.way && r.shot == settings.shot {
                acc.entry(r.k).or_default().push(r.correct);
            }
        }
        Ok(acc)
    }
}

/// The few-shot table: rows k, one column per N-way K-shot setting, cells
/// accuracy in % with the episode count.
pub fn fewshot_table(
    results: &BTreeMap<(usize, usize), BTreeMap<usize, Accuracy>>,
    notes: Vec<String>,
) -> Table {
    let settings: Vec<(usize, usize)> = results.keys().copied().collect();
    let ks: std::collections::BTreeSet<usize> =
        results.values().flat_map(|m| m.keys().copied()).collect();
    let mut columns = vec!["global tokens k".to_string()];
    columns.extend(settings.iter().map(|(n, k)| format!("{n}-way {k}-shot")));
    let rows = ks
        .iter()
        .map(|&k| {
            let mut row = vec![k.to_string()];
            for s in &settings {
                row.push(match results[s].get(&k) {
                    Some(a) if a.total > 0 => format!("{:.1} (n={})", 100.0 * a.value(), a.total),
                    _ => "–".into(),
                });
            }
            row
        })
        .collect();
    Table {
        title: "Few-shot classification accuracy (%)".into(),
        columns,
        rows,
        notes,
    }
}
