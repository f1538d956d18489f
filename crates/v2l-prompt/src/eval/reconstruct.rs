//! Reconstruction runs (encode + decode) and their scores.

use super::*;

/// Reconstruct `images` (encode + decode), logging PSNR (Y) and SSIM per
/// image and the local ids, and return the table with codebook usage
/// ("effective tokens": distinct local ids over all images).
///
/// # Errors
/// Model errors.
pub fn run_reconstruct<B: Backend>(
    v2l: &V2lTokenizer<B>,
    images: &[(String, DynamicImage)],
    log: &mut JsonlLog,
    progress: OnProgress<'_>,
) -> Result<Table> {
    let n = v2l.image_size()?;
    let prep = v2l_model::preprocess::TokenizerPreprocess::new(n as u32);
    for (i, (id, img)) in images.iter().enumerate() {
        let key = format!("reconstruct/{n}/{id}");
        if !log.is_done(&key) {
            let clean = prep
                .resize_crop(&img.to_rgb8())
                .map_err(|e| PromptError::InvalidInput(e.to_string()))?;
            let t = v2l.encode_images(std::slice::from_ref(img))?;
            let rec = v2l
                .decode_to_images(&t)?
                .into_iter()
                .next()
                .ok_or_else(|| PromptError::InvalidInput("nothing decoded".into()))?;
            let (psnr, ssim) = psnr_ssim(&clean, &rec)?;
            let record = ReconstructRecord {
                size: n,
                image: id.clone(),
                psnr_y: psnr,
                ssim,
                local_ids: t.local_ids[0].clone(),
                grid: t.grid,
            };
            log.append_record(&key, &record)?;
        }
        progress(i + 1, images.len());
    }
    let records: Vec<ReconstructRecord> = log
        .records_of::<ReconstructRecord>()?
        .into_iter()
        .filter(|r| r.size == n)
        .collect();
    let ids: Vec<u32> = records.iter().flat_map(|r| r.local_ids.clone()).collect();
    let usage = v2l_metrics::usage::codebook_usage(ids, v2l.config().n_local)?;
    let stat = |f: fn(&ReconstructRecord) -> f64| mean_count(records.iter().map(f));
    let cell =
        |f: fn(&ReconstructRecord) -> f64| stat(f).map_or("–".into(), |(m, _)| format!("{m:.3}"));
    let count = records.len();
    Ok(Table {
        title: format!("Reconstruction at {n}×{n}"),
        columns: [
            "setting",
            "PSNR-Y ↑",
            "SSIM ↑",
            "effective tokens",
            "images",
        ]
        .map(String::from)
        .to_vec(),
        rows: vec![vec![
            format!("{n} px"),
            cell(|r| r.psnr_y),
            cell(|r| r.ssim),
            usage.used.to_string(),
            count.to_string(),
        ]],
        notes: vec![format!("log: {}", log.path().display())],
    })
}
