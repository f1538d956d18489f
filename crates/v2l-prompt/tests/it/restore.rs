//! Restoration: prediction masks, the noise schedule, the autoregressive
//! write-back order (with a scripted generator), context checks.

use rand::rngs::StdRng;
use rand::SeedableRng;
use v2l_prompt::restore::{
    noisy_examples, prediction_mask, restore_ids, rot90_ccw, Generator, RestoreOptions,
    SequenceLayout, Task, NOISE_RATES,
};
use v2l_prompt::PromptError;

use crate::common::llama2;

#[test]
fn masks_match_the_reference() {
    let count = |t| prediction_mask(t, [16, 16]).iter().filter(|&&m| m).count();
    assert_eq!(count(Task::Inpainting), 64);
    assert_eq!(count(Task::Outpainting), 128);
    for t in [Task::Deblur, Task::Rotation, Task::Shift] {
        assert_eq!(count(t), 256);
    }
    let m = prediction_mask(Task::Inpainting, [16, 16]);
    // rows 4..11 × cols 4..11 (pred_mask[4:12, 4:12]).
    assert!(m[4 * 16 + 4] && m[11 * 16 + 11] && !m[3 * 16 + 4] && !m[4 * 16 + 12]);
    let o = prediction_mask(Task::Outpainting, [16, 16]);
    assert!(!o[7 * 16 + 15] && o[8 * 16]);
}

#[test]
fn noise_schedule_gives_the_reference_counts() {
    // k = 21, 16×16, LLaMA-2: n = int(r · 277) among positions 21..276.
    let clean: Vec<u32> = (0..277).map(|i| 40_000 + i).collect(); // out of the draw range
    let corrupt: Vec<u32> = (0..277).map(|i| 50_000 + i).collect();
    let mut rng = StdRng::seed_from_u64(3);
    let ex = noisy_examples(&[(&clean, &corrupt)], 21, &NOISE_RATES, 32_000, &mut rng).unwrap();
    assert_eq!(ex.len(), 10);
    let changed: Vec<usize> = ex
        .iter()
        .map(|(a, _)| a.iter().zip(&clean).filter(|(x, y)| x != y).count())
        .collect();
    assert_eq!(changed, [138, 130, 121, 113, 105, 96, 88, 80, 72, 63]);
    for (a, b) in &ex {
        // Globals untouched; the same random ids in both copies; ids < 32000.
        assert_eq!(&a[..21], &clean[..21]);
        for p in 21..277 {
            assert_eq!(a[p] != clean[p], b[p] != corrupt[p]);
            if a[p] != clean[p] {
                assert_eq!(a[p], b[p]);
                assert!(a[p] < 32_000);
            }
        }
    }
    // Seeded: the same seed gives the same examples.
    let mut rng2 = StdRng::seed_from_u64(3);
    assert_eq!(
        ex,
        noisy_examples(&[(&clean, &corrupt)], 21, &NOISE_RATES, 32_000, &mut rng2).unwrap()
    );
    assert!(noisy_examples(
        &[(&clean, &corrupt[..5])],
        21,
        &NOISE_RATES,
        32_000,
        &mut rng2
    )
    .is_err());
}

/// Writes `1000 + call index` twice and records the prompts.
struct Scripted {
    prompts: Vec<Vec<u32>>,
    context: Option<usize>,
}

impl Generator for Scripted {
    fn generate(&mut self, prompt: &[u32], n: usize) -> v2l_prompt::Result<Vec<u32>> {
        let id = 1000 + self.prompts.len() as u32;
        self.prompts.push(prompt.to_vec());
        Ok(vec![id; n])
    }
    fn context(&self) -> Option<usize> {
        self.context
    }
}

#[test]
fn write_back_is_autoregressive_in_raster_order() {
    let Some(tok) = llama2() else { return };
    let k = 21;
    let clean: Vec<u32> = (0..277).map(|i| 100 + i).collect();
    let mut rng = StdRng::seed_from_u64(0);
    let examples = noisy_examples(&[(&clean, &clean)], k, &NOISE_RATES, 32_000, &mut rng).unwrap();
    let mut g = Scripted {
        prompts: Vec::new(),
        context: None,
    };
    let opts = RestoreOptions::default();
    let (out, calls) = restore_ids(
        &tok,
        &mut g,
        Task::Inpainting,
        &clean,
        &examples,
        SequenceLayout { k, grid: [16, 16] },
        &opts,
    )
    .unwrap();
    // 8 rows × 4 calls of 2 tokens, in raster order.
    let starts: Vec<usize> = calls.iter().map(|c| c.start).collect();
    let want: Vec<usize> = (4..12)
        .flat_map(|r| (0..4).map(move |j| k + r * 16 + 4 + 2 * j))
        .collect();
    assert_eq!(starts, want);
    for (i, c) in calls.iter().enumerate() {
        assert_eq!(out[c.start..c.start + 2], [1000 + i as u32; 2]);
    }
    // Outside the hole nothing changed.
    let mask = prediction_mask(Task::Inpainting, [16, 16]);
    for p in 0..256 {
        if !mask[p] {
            assert_eq!(out[k + p], clean[k + p]);
        }
    }
    // The query of call 1 ends with the 16 tokens before its start, which
    // include call 0's answer (autoregressive), then " >\nOutput: ".
    let tail = tok
        .encode(" >\nOutput: ", v2l_llm::tokenizer::AddSpecial::Neither)
        .unwrap();
    let p1 = &g.prompts[1];
    let q = &p1[p1.len() - tail.len() - 16..p1.len() - tail.len()];
    let mut expect = clean[calls[1].start - 16..calls[1].start].to_vec();
    expect[14] = 1000;
    expect[15] = 1000;
    assert_eq!(q, expect.as_slice());

    // Deblur-style: inputs are the corrupted tokens at the same positions.
    let corrupt: Vec<u32> = (0..277).map(|i| 3000 + i).collect();
    let mut g = Scripted {
        prompts: Vec::new(),
        context: None,
    };
    let (out, calls) = restore_ids(
        &tok,
        &mut g,
        Task::Deblur,
        &corrupt,
        &examples,
        SequenceLayout { k, grid: [16, 16] },
        &opts,
    )
    .unwrap();
    assert_eq!(calls.len(), 128);
    assert_eq!(calls[0].start, 21);
    assert_eq!(out[21..23], [1000, 1000]);
    assert_eq!(out[275..277], [1127, 1127]);
    let p0 = &g.prompts[0];
    assert_eq!(
        p0[p0.len() - tail.len() - 2..p0.len() - tail.len()],
        [3021, 3022]
    );

    // A prompt past the context window fails before generating.
    let mut g = Scripted {
        prompts: Vec::new(),
        context: Some(100),
    };
    let e = restore_ids(
        &tok,
        &mut g,
        Task::Deblur,
        &corrupt,
        &examples,
        SequenceLayout { k, grid: [16, 16] },
        &opts,
    )
    .unwrap_err();
    assert!(
        matches!(e, PromptError::ContextOverflow { context: 100, .. }),
        "{e}"
    );
    assert!(g.prompts.is_empty());
}

#[test]
fn rotation_is_numpy_rot90() {
    // np.rot90 of a 2×2 HWC image [[a, b], [c, d]] is [[b, d], [a, c]].
    let x = [1.0, 2.0, 3.0, 4.0];
    assert_eq!(rot90_ccw(&x, 1, 2), [2.0, 4.0, 1.0, 3.0]);
}

#[test]
fn corruptions_match_cv2_and_numpy() {
    use v2l_assets::readers::tensors::{SafetensorsFile, TensorSource};
    use v2l_prompt::restore::gaussian_blur;
    let f = SafetensorsFile::open(crate::common::fixture("corruptions.safetensors")).unwrap();
    let x = f.read_f32("input").unwrap().1;
    for k in [5, 7, 9, 11] {
        let want = f.read_f32(&format!("blur_{k}")).unwrap().1;
        let got = gaussian_blur(&x, 3, 20, 20, k);
        let err = got
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(err < 2e-6, "kernel {k}: {err}");
    }
    assert_eq!(rot90_ccw(&x, 3, 20), f.read_f32("rot90").unwrap().1);
}
