//! A codebook learned on real images and used to tokenise unseen ones — the
//! local quantiser's job in V2L, on a small scale.
//!
//! Fashion-MNIST (fetched into the asset cache by package name and verified)
//! is cut into 4×4 patches; k-means (Lloyd's algorithm, with
//! `v2l::quant::nearest` doing every assignment step) learns K = 256
//! codewords from 1,000 training images; 1,000 test images are then turned
//! into token ids and rebuilt from them, and the PSNR of the rebuild is
//! printed next to that of a random codebook.
//!
//! ```text
//! cargo run --release -p v2l-examples --example fashion_codebook
//! ```

use std::error::Error;

use rand::{rngs::StdRng, seq::index::sample, SeedableRng};
use v2l::assets::fetch;
use v2l::assets::readers::idx;
use v2l::quant::{nearest, Metric, PreparedCodebook};

const P: usize = 4; // patch side
const D: usize = P * P;
const K: usize = 256;

/// All non-overlapping P×P patches of 28×28 images, values in [0, 1].
fn patches(images: &[u8], n: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(n * 28 * 28);
    for img in images.chunks_exact(28 * 28).take(n) {
        for py in (0..28).step_by(P) {
            for px in (0..28).step_by(P) {
                for y in 0..P {
                    for x in 0..P {
                        out.push(f32::from(img[(py + y) * 28 + px + x]) / 255.0);
                    }
                }
            }
        }
    }
    out
}

/// PSNR (dB) of patches rebuilt from their codewords, pixels in [0, 1].
fn psnr(cb: &PreparedCodebook, x: &[f32]) -> Result<f64, Box<dyn Error>> {
    let ids = nearest(cb, x, D, Metric::SquaredL2)?;
    let mse: f64 = ids.scores.iter().map(|&s| f64::from(s)).sum::<f64>() / x.len() as f64;
    Ok(10.0 * (1.0 / mse).log10())
}

fn main() -> Result<(), Box<dyn Error>> {
    let asset = fetch::lookup("fashion-mnist")?;
    eprintln!("fetching/verifying {} ({}) …", asset.name, asset.spec());
    let paths = fetch::fetch(asset, &mut |_| {})?;
    let file = |name: &str| {
        paths
            .iter()
            .find(|p| p.ends_with(name))
            .cloned()
            .ok_or_else(|| format!("{name} missing from the asset"))
    };
    let train = idx::read(file("train-images-idx3-ubyte.gz")?)?;
    let test = idx::read(file("t10k-images-idx3-ubyte.gz")?)?;
    let (Some(train), Some(test)) = (train.as_u8(), test.as_u8()) else {
        return Err("Fashion-MNIST images are not u8".into());
    };
    let x_train = patches(train, 1000);
    let x_test = patches(test, 1000);
    let n_train = x_train.len() / D;
    println!(
        "{} training patches, {} test patches of {P}x{P}",
        n_train,
        x_test.len() / D
    );

    // Random codebook: K training patches drawn without replacement.
    let mut rng = StdRng::seed_from_u64(0);
    let mut centroids = Vec::with_capacity(K * D);
    for i in sample(&mut rng, n_train, K) {
        centroids.extend_from_slice(&x_train[i * D..(i + 1) * D]);
    }
    let random = PreparedCodebook::from_f32(centroids.clone(), D)?;
    println!(
        "random codebook:  test PSNR {:.2} dB",
        psnr(&random, &x_test)?
    );

    // Lloyd's k-means: assign with the fused kernel, then average.
    for iter in 0..15 {
        let cb = PreparedCodebook::from_f32(centroids.clone(), D)?;
        let hits = nearest(&cb, &x_train, D, Metric::SquaredL2)?;
        let mut sums = vec![0.0f64; K * D];
        let mut counts = vec![0usize; K];
        for (p, &j) in x_train.chunks_exact(D).zip(&hits.indices) {
            let j = j as usize;
            counts[j] += 1;
            for (s, &v) in sums[j * D..(j + 1) * D].iter_mut().zip(p) {
                *s += f64::from(v);
            }
        }
        for j in 0..K {
            if counts[j] > 0 {
                for d in 0..D {
                    centroids[j * D + d] = (sums[j * D + d] / counts[j] as f64) as f32;
                }
            }
        }
        if iter % 5 == 4 {
            let mse: f64 =
                hits.scores.iter().map(|&s| f64::from(s)).sum::<f64>() / x_train.len() as f64;
            let used = counts.iter().filter(|&&c| c > 0).count();
            println!(
                "k-means iter {:>2}: train MSE {mse:.5}, {used}/{K} codewords used",
                iter + 1
            );
        }
    }
    let learned = PreparedCodebook::from_f32(centroids, D)?;
    println!(
        "learned codebook: test PSNR {:.2} dB",
        psnr(&learned, &x_test)?
    );
    let first = nearest(&learned, &x_test[..49 * D], D, Metric::SquaredL2)?;
    println!(
        "token ids of the first test image (7x7 patches): {:?}",
        first.indices
    );
    Ok(())
}
