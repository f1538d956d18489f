//! Seeded initialisation of parameters that are not read from a file
//! (training from scratch, benchmarks, tests).

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// How a parameter is initialised when it is not read from a file.
///
/// Values are generated in the parameter's *file* layout (PyTorch's
/// `[out, in]` for a linear weight) and then go through the same layout
/// conversion as values read from a file, so a seeded model is the same
/// whatever layout a layer keeps in memory.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Init {
    /// All ones (norm scales).
    Ones,
    /// All zeros (norm shifts).
    Zeros,
    /// `U(−b, b)`: PyTorch's default for conv and linear layers with
    /// `b = 1/√fan_in`.
    Uniform(f64),
    /// `N(0, σ²)` with the given σ.
    Normal(f64),
    /// `N(μ, σ²)`: `(μ, σ)` (taming's BatchNorm weights, N(1, 0.02)).
    NormalAround(f64, f64),
}

impl Init {
    /// PyTorch's `nn.Linear` / `nn.Conv2d` default for a layer with
    /// `fan_in` inputs per output: `U(−1/√fan_in, 1/√fan_in)` (weights and
    /// biases alike).
    pub fn torch_default(fan_in: usize) -> Self {
        Self::Uniform(1.0 / (fan_in.max(1) as f64).sqrt())
    }
}

/// The random stream behind [`Init`]: one `StdRng` drawn in parameter build
/// order, so a seed fixes every value.
#[derive(Debug)]
pub struct InitRng {
    rng: StdRng,
}

impl InitRng {
    /// A stream seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            rng: StdRng::seed_from_u64(seed),
        }
    }

    /// `n` values drawn from `init`.
    pub fn sample(&mut self, init: Init, n: usize) -> Vec<f32> {
        match init {
            Init::Ones => vec![1.0; n],
            Init::Zeros => vec![0.0; n],
            Init::Uniform(b) => (0..n)
                .map(|_| ((self.rng.random::<f64>() * 2.0 - 1.0) * b) as f32)
                .collect(),
            Init::NormalAround(m, s) => self
                .sample(Init::Normal(s), n)
                .into_iter()
                .map(|v| (f64::from(v) + m) as f32)
                .collect(),
            Init::Normal(s) => (0..n)
                .map(|_| {
                    // Box–Muller, one value per pair of uniforms.
                    let u1: f64 = self.rng.random::<f64>().max(f64::MIN_POSITIVE);
                    let u2: f64 = self.rng.random::<f64>();
                    ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos() * s) as f32
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_inits_and_bounds() {
        let mut r = InitRng::new(1);
        assert_eq!(r.sample(Init::Ones, 3), vec![1.0; 3]);
        assert_eq!(r.sample(Init::Zeros, 2), vec![0.0; 2]);
        let u = r.sample(Init::Uniform(0.25), 10_000);
        assert!(u.iter().all(|v| v.abs() <= 0.25));
        // Mean of U(-b, b) is 0 and its variance b²/3: 4σ bounds on 10k draws.
        let mean = u.iter().map(|&v| f64::from(v)).sum::<f64>() / 1e4;
        assert!(mean.abs() < 4.0 * (0.25f64.powi(2) / 3.0 / 1e4).sqrt());
        let n = r.sample(Init::Normal(2.0), 20_000);
        let var = n.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / 2e4;
        // Var of the sample variance of N(0, 4): 2·16/n.
        assert!((var - 4.0).abs() < 4.0 * (32.0f64 / 2e4).sqrt(), "{var}");
        // N(3, 0.5²): the sample mean within 4σ/√n of 3.
        let m = r.sample(Init::NormalAround(3.0, 0.5), 10_000);
        let mean = m.iter().map(|&v| f64::from(v)).sum::<f64>() / 1e4;
        assert!((mean - 3.0).abs() < 4.0 * 0.5 / 100.0, "{mean}");
    }

    #[test]
    fn torch_default_bound() {
        assert_eq!(Init::torch_default(16), Init::Uniform(0.25));
    }
}
