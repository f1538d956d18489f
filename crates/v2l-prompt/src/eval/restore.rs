//! Restoration runs, image scores and the restoration table.

use super::*;

fn to_metric_image(im: &RgbImage) -> Result<v2l_metrics::Image> {
    let (w, h) = im.dimensions();
    Ok(v2l_metrics::Image::from_hwc_u8(
        im.as_raw(),
        h as usize,
        w as usize,
        3,
    )?)
}

/// The file stem of an image's restoration panels (`<dir>/<task>/<stem>.png`
/// as [`Restorer::evaluate`] writes them): the id with every character other than
/// ASCII letters, digits, `-` and `_` replaced by `_`.
pub fn panel_file_stem(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// PSNR (Y channel, as the reference's pyiqa setting) and SSIM of `b`
/// against `a`.
///
/// # Errors
/// Images of different sizes.
pub fn psnr_ssim(a: &RgbImage, b: &RgbImage) -> Result<(f64, f64)> {
    let (x, y) = (to_metric_image(a)?, to_metric_image(b)?);
    Ok((
        v2l_metrics::psnr::psnr(&x, &y, v2l_metrics::psnr::PsnrChannels::Y)?,
        v2l_metrics::ssim::ssim(&x, &y)?,
    ))
}

impl<B: Backend> Restorer<'_, B> {
    /// Run restorations of `images` for each task, logging one line per
    /// (task, image): PSNR (Y) and SSIM of the restored decode against the
    /// clean input, of the clean decode (the tokenizer's own ceiling), and LPIPS
    /// when a network is given. `save_dir` receives `task/<id>.png` panels
    /// (clean | corrupted | clean decode | restored) and the clean inputs and
    /// restored decodes alone under `task/clean/` and `task/restored/` (for
    /// `v2l fid`).
    ///
    /// # Errors
    /// As [`Restorer::restore`]; I/O errors writing images.
    pub fn evaluate(
        &self,
        images: &[(String, DynamicImage)],
        tasks: &[Task],
        lpips: Option<&v2l_metrics::lpips::Lpips<B>>,
        save_dir: Option<&Path>,
        run: Run<'_>,
    ) -> Result<()> {
        let restorer = self;
        let Run { log, progress } = run;
        let total = images.len() * tasks.len();
        let mut done = 0;
        for &task in tasks {
            for (i, (id, img)) in images.iter().enumerate() {
                done += 1;
                let key = format!("restore/{}/{id}", task.name());
                if log.is_done(&key) {
                    progress(done, total);
                    continue;
                }
                let others: Vec<DynamicImage> = images
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != i)
                    .take(restorer.options.rates.len())
                    .map(|(_, (_, im))| im.clone())
                    .collect();
                let r = restorer.restore(img, &others, task)?;
                let (psnr, ssim) = psnr_ssim(&r.clean_image, &r.restored_decode)?;
                let (psnr_c, ssim_c) = psnr_ssim(&r.clean_image, &r.clean_decode)?;
                let lp = match lpips {
                    Some(net) => net
                        .distance_images(
                            std::slice::from_ref(&r.clean_image),
                            std::slice::from_ref(&r.restored_decode),
                        )
                        .map_err(|e| PromptError::InvalidInput(format!("LPIPS: {e}")))?
                        .first()
                        .map(|&v| f64::from(v)),
                    None => None,
                };
                if let Some(dir) = save_dir {
                    let d = dir.join(task.name());
                    std::fs::create_dir_all(&d).map_err(write_io(&d))?;
                    let (w, h) = r.clean_image.dimensions();
                    let mut panel = RgbImage::new(4 * w, h);
                    for (p, im) in [
                        &r.clean_image,
                        &r.corrupted_image,
                        &r.clean_decode,
                        &r.restored_decode,
                    ]
                    .iter()
                    .enumerate()
                    {
                        image::imageops::replace(&mut panel, *im, i64::from(p as u32 * w), 0);
                    }
                    let safe = panel_file_stem(id);
                    let save = |im: &RgbImage, p: PathBuf| -> Result<()> {
                        if let Some(parent) = p.parent() {
                            std::fs::create_dir_all(parent).map_err(write_io(parent))?;
                        }
                        let mut png = Vec::new();
                        im.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
                            .map_err(|e| {
                                PromptError::InvalidInput(format!("{}: {e}", p.display()))
                            })?;
                        write_atomic(&p, &png)
                    };
                    save(&panel, d.join(format!("{safe}.png")))?;
                    save(&r.clean_image, d.join("clean").join(format!("{safe}.png")))?;
                    save(
                        &r.restored_decode,
                        d.join("restored").join(format!("{safe}.png")),
                    )?;
                }
                let changed = r
                    .restored
                    .iter()
                    .zip(&r.clean)
                    .filter(|(a, b)| a != b)
                    .count();
                let record = RestoreRecord {
                    task: task.name().to_string(),
                    image: id.clone(),
                    psnr_y: psnr,
                    ssim,
                    lpips: lp,
                    clean_decode_psnr_y: psnr_c,
                    clean_decode_ssim: ssim_c,
                    calls: r.calls.len(),
                    tokens_differing_from_clean: changed,
                    mode: restorer.options.mode,
                    seed: restorer.options.seed,
                };
                log.append_record(&key, &record)?;
                progress(done, total);
            }
        }
        Ok(())
    }
}

/// Mean of a numeric field over the log's records matching `filter`.
pub fn mean_of(
    log: &JsonlLog,
    field: &str,
    filter: impl Fn(&Value) -> bool,
) -> Option<(f64, usize)> {
    mean_count(
        log.records()
            .filter(|r| filter(r))
            .filter_map(|r| r[field].as_f64()),
    )
}

/// The restoration table: rows tasks, columns PSNR (Y) and SSIM of the
/// restored decode, and of the clean decode for reference.
pub fn restore_table(log: &JsonlLog, tasks: &[Task], mut notes: Vec<String>) -> Table {
    let records = log.records_of::<RestoreRecord>().unwrap_or_else(|e| {
        notes.push(format!("records left out: {e}"));
        Vec::new()
    });
    let rows = tasks
        .iter()
        .map(|t| {
            let of_task = || records.iter().filter(|r| r.task == t.name());
            let f = |field: fn(&RestoreRecord) -> f64| {
                mean_count(of_task().map(field))
                    .map_or("–".to_string(), |(m, _)| format!("{m:.3}"))
            };
            vec![
                t.name().to_string(),
                f(|r| r.psnr_y),
                f(|r| r.ssim),
                f(|r| r.clean_decode_psnr_y),
                f(|r| r.clean_decode_ssim),
                of_task().count().to_string(),
            ]
        })
        .collect();
    Table {
        title: "Restoration by a frozen LLM".into(),
        columns: [
            "task",
            "PSNR-Y ↑",
            "SSIM ↑",
            "clean decode PSNR-Y",
            "clean decode SSIM",
            "images",
        ]
        .map(String::from)
        .to_vec(),
        rows,
        notes,
    }
}
