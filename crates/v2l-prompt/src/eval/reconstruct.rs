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
            log.append(
                &key,
                json!({"task": "reconstruct", "size": n, "image": id, "psnr_y": psnr, "ssim": ssim,
                       "local_ids": t.local_ids[0], "grid": t.grid}),
            )?;
        }
        progress(i + 1, images.len());
    }
    let same = |r: &Value| r["task"] == "reconstruct" && r["size"] == n;
    let ids: Vec<u32> = log
        .records()
        .filter(|r| same(r))
        .flat_map(|r| {
            r["local_ids"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_u64())
                        .map(|x| x as u32)
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        })
        .collect();
    let usage = v2l_metrics::usage::codebook_usage(ids, v2l.config().n_local)?;
    let cell =
        |field: &str| mean_of(log, field, same).map_or("–".into(), |(m, _)| format!("{m:.3}"));
    let count = mean_of(log, "psnr_y", same).map_or(0, |(_, c)| c);
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
            cell("psnr_y"),
            cell("ssim"),
            usage.used.to_string(),
            count.to_string(),
        ]],
        notes: vec![format!("log: {}", log.path().display())],
    })
}
