//! CLIP filtering: vote counts on a constructed case, selection rules, and
//! the resumable voting job on the tiny random CLIP.

use std::cell::RefCell;

use image::{DynamicImage, RgbImage};
use v2l_clip::Clip;
use v2l_codebook::filter::{self, filter_codebook, ImageSet, Selection, VoteOptions, Votes};
use v2l_codebook::{Codebook, CodebookError};

use crate::common::{tiny_clip_path, B};

fn candidates() -> Codebook {
    #[rustfmt::skip]
    let rows = vec![
        1.0, 0.0, 0.0, 0.0, // r0
        0.0, 1.0, 0.0, 0.0, // r1
        0.0, 0.0, 1.0, 0.0, // r2
        0.0, 0.0, 0.0, 1.0, // r3
        2.0, 0.0, 0.0, 0.0, // r4: not unit length, wins on dot product
        0.5, 0.5, 0.0, 0.0, // r5
        -1.0, 0.0, 0.0, 0.0, // r6
    ];
    Codebook::new(rows, 7, 4)
        .unwrap()
        .with_strings((0..7).map(|i| format!("w{i}")).collect())
        .unwrap()
        .with_token_ids((0..7).map(|i| vec![i]).collect())
        .unwrap()
}

#[test]
fn votes_on_a_constructed_case() {
    let cb = candidates();
    let prepared = filter::prepare(&cb).unwrap();
    let mut votes = Votes::new(7, 2);
    #[rustfmt::skip]
    let images = [
        1.0, 0.0, 0.0, 0.0, // dots: r4 2, r0 1           -> r4, r0
        0.0, 1.0, 0.0, 0.0, // r1 1, r5 .5                -> r1, r5
        0.6, 0.8, 0.0, 0.0, // r4 1.2, r1 .8, r5 .7       -> r4, r1
        0.0, 0.0, 0.0, 1.0, // r3 1, then a tie at 0      -> r3, r0
    ];
    votes.add(&prepared, &images).unwrap();
    assert_eq!(votes.counts, vec![2, 2, 0, 1, 2, 1, 0]);
    assert_eq!(votes.images, 4);
    // Strictly more than the threshold.
    assert_eq!(votes.select(Selection::Threshold(1)), vec![0, 1, 4]);
    assert_eq!(votes.select(Selection::Threshold(2)), Vec::<usize>::new());
    // Top-N: by count, ties to the lower index, returned in row order.
    assert_eq!(votes.select(Selection::TopN(4)), vec![0, 1, 3, 4]);
    assert_eq!(votes.select(Selection::TopN(5)), vec![0, 1, 3, 4, 5]);

    let kept = filter_codebook(&cb, &votes, Selection::Threshold(1)).unwrap();
    assert_eq!(kept.rows(), 3);
    assert_eq!(kept.strings().unwrap(), ["w0", "w1", "w4"]);
    assert_eq!(kept.votes().unwrap(), [2, 2, 2]);
    assert_eq!(kept.token_ids().unwrap()[2], vec![4]);
    assert_eq!(kept.row(2).unwrap(), [2.0, 0.0, 0.0, 0.0]);
    assert_eq!(kept.provenance["images"], 4);

    // Saved and loaded with its votes.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("global.safetensors");
    kept.save(&path, v2l_codebook::Precision::Auto).unwrap();
    assert_eq!(Codebook::load(&path).unwrap(), kept);

    // A selection that keeps nothing is an error naming the counts.
    let e = filter_codebook(&cb, &votes, Selection::Threshold(100)).unwrap_err();
    assert!(e.to_string().contains("largest count is 2"), "{e}");
    // A width mismatch is an error, not a panic.
    assert!(votes.add(&prepared, &[1.0, 0.0, 0.0]).is_err());
}

/// Synthetic colour images; loading image `fail_at` fails.
struct Synthetic {
    n: usize,
    fail_at: Option<usize>,
    loaded: RefCell<Vec<usize>>,
}

fn synthetic_image(i: usize) -> DynamicImage {
    let img = RgbImage::from_fn(40, 36, |x, y| {
        let v = |k: usize| ((x as usize * (k + 1) + y as usize * (i + 2) + 37 * i * k) % 256) as u8;
        image::Rgb([v(0), v(1), v(2)])
    });
    DynamicImage::ImageRgb8(img)
}

impl ImageSet for Synthetic {
    fn len(&self) -> usize {
        self.n
    }
    fn load(&self, range: std::ops::Range<usize>) -> v2l_codebook::Result<Vec<DynamicImage>> {
        range
            .map(|i| {
                if Some(i) == self.fail_at {
                    return Err(CodebookError::InvalidInput(format!("image {i} unreadable")));
                }
                self.loaded.borrow_mut().push(i);
                Ok(synthetic_image(i))
            })
            .collect()
    }
    fn id(&self) -> String {
        format!("synthetic:{}", self.n)
    }
}

#[test]
fn voting_job_matches_brute_force_and_resumes() {
    let device = Default::default();
    let clip = v2l_vl::ClipVl {
        clip: Clip::<B>::load(tiny_clip_path(), &device).unwrap(),
        tokenizer: None,
        device,
    };
    // 40 random candidate rows of width 64 (the tiny CLIP's output width).
    let mut state = 12345u64;
    let mut rnd = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 33) as f64 / (1u64 << 31) as f64 - 1.0) as f32
    };
    let rows: Vec<f32> = (0..40 * 64).map(|_| rnd()).collect();
    let cb = Codebook::new(rows.clone(), 40, 64).unwrap();

    // Brute force in f64 from CLIP's embeddings.
    let n = 7;
    let imgs: Vec<DynamicImage> = (0..n).map(synthetic_image).collect();
    let emb = clip
        .clip
        .encode_images(&imgs, 4)
        .unwrap()
        .into_data()
        .to_vec::<f32>()
        .unwrap();
    let mut expected = vec![0u64; 40];
    for e in emb.chunks(64) {
        let norm = e.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>().sqrt();
        let mut dots: Vec<(usize, f64)> = rows
            .chunks(64)
            .enumerate()
            .map(|(j, r)| {
                (
                    j,
                    r.iter()
                        .zip(e)
                        .map(|(&a, &b)| f64::from(a) * f64::from(b) / norm)
                        .sum(),
                )
            })
            .collect();
        dots.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        for &(j, _) in &dots[..5] {
            expected[j] += 1;
        }
    }

    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("votes");
    // First run fails at image 4: chunks [0, 2) and [2, 4) are kept.
    let failing = Synthetic {
        n,
        fail_at: Some(4),
        loaded: RefCell::new(Vec::new()),
    };
    let mut reports = Vec::new();
    let err = filter::vote(
        &clip,
        &cb,
        &failing,
        VoteOptions {
            top: 5,
            chunk_images: 2,
        },
        &work,
        "tiny",
        &mut |p| reports.push((p.done, p.total)),
    );
    assert!(err.is_err());
    assert_eq!(reports.last(), Some(&(4, 7)));
    // The second run loads only the images not yet counted.
    let working = Synthetic {
        n,
        fail_at: None,
        loaded: RefCell::new(Vec::new()),
    };
    let votes = filter::vote(
        &clip,
        &cb,
        &working,
        VoteOptions {
            top: 5,
            chunk_images: 2,
        },
        &work,
        "tiny",
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(*working.loaded.borrow(), vec![4, 5, 6]);
    assert_eq!(votes.images, 7);
    assert_eq!(votes.counts.iter().sum::<u64>(), 35);
    assert_eq!(votes.counts, expected);
    // Another CLIP id in the same folder is refused.
    let e = filter::vote(
        &clip,
        &cb,
        &working,
        VoteOptions {
            top: 5,
            chunk_images: 2,
        },
        &work,
        "other",
        &mut |_| {},
    )
    .unwrap_err();
    assert!(
        matches!(e, CodebookError::JobMismatch { ref what, .. } if what == "clip"),
        "{e}"
    );
}
