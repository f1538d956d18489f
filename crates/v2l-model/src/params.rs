//! Where module parameters come from while a model is built: a state dict
//! (with every problem collected into one error) or a seeded initialiser.

use std::collections::BTreeSet;

use burn::module::{Param, ParamId};
use burn::tensor::{backend::Backend, Tensor, TensorData};
use rand::{rngs::StdRng, Rng, SeedableRng};
use v2l_assets::readers::tensors::TensorSource;

use crate::error::{ModelError, Result, ShapeProblem};

/// How a parameter is initialised when it is not read from a file
/// (PyTorch's defaults for the layer kinds the model uses).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Init {
    /// All ones (norm scales).
    Ones,
    /// All zeros (norm shifts).
    Zeros,
    /// U(−b, b) (PyTorch's conv/linear default: b = 1/√fan_in).
    Uniform(f64),
    /// N(0, σ²).
    Normal(f64),
}

/// A source of named parameters.
pub(crate) trait ParamSource {
    /// The values of `key` (row-major) with the expected `shape`. On a
    /// problem the source records it and returns zeros so that building can
    /// go on and report every problem at once.
    fn take(&mut self, key: &str, shape: &[usize], init: Init) -> Vec<f32>;

    /// Remember that the parameter `id` is named `key` (for saving).
    fn register(&mut self, _id: ParamId, _key: &str) {}
}

/// Wraps a source and records the name of every parameter built from it.
pub(crate) struct Named<'a> {
    inner: &'a mut dyn ParamSource,
    pub(crate) names: Vec<(ParamId, String)>,
}

impl<'a> Named<'a> {
    pub(crate) fn new(inner: &'a mut dyn ParamSource) -> Self {
        Self {
            inner,
            names: Vec::new(),
        }
    }
}

impl ParamSource for Named<'_> {
    fn take(&mut self, key: &str, shape: &[usize], init: Init) -> Vec<f32> {
        self.inner.take(key, shape, init)
    }

    fn register(&mut self, id: ParamId, key: &str) {
        self.names.push((id, key.to_string()));
    }
}

/// Reads parameters from a [`TensorSource`] under a prefix, recording what
/// was used, missing or mis-shaped.
pub(crate) struct StateDictSource<'a> {
    source: &'a dyn TensorSource,
    prefix: String,
    pub(crate) used: BTreeSet<String>,
    pub(crate) missing: Vec<String>,
    pub(crate) shapes: Vec<ShapeProblem>,
    pub(crate) read_error: Option<ModelError>,
}

impl<'a> StateDictSource<'a> {
    pub(crate) fn new(source: &'a dyn TensorSource, prefix: &str) -> Self {
        Self {
            source,
            prefix: prefix.to_string(),
            used: BTreeSet::new(),
            missing: Vec::new(),
            shapes: Vec::new(),
            read_error: None,
        }
    }

    /// Finish: one error listing every missing, unexpected (a key under
    /// `namespaces` that nothing read) and mis-shaped tensor.
    pub(crate) fn finish(self, namespaces: &[&str]) -> Result<()> {
        if let Some(e) = self.read_error {
            return Err(e);
        }
        let unexpected: Vec<String> = self
            .source
            .keys()
            .into_iter()
            .filter(|k| !self.used.contains(k))
            .filter(|k| {
                k.strip_prefix(&self.prefix)
                    .is_some_and(|rest| namespaces.iter().any(|n| rest.starts_with(n)))
            })
            .collect();
        if self.missing.is_empty() && unexpected.is_empty() && self.shapes.is_empty() {
            return Ok(());
        }
        Err(ModelError::Weights {
            file: self.source.describe().to_string(),
            missing: self.missing,
            unexpected,
            shapes: self.shapes,
        })
    }
}

impl ParamSource for StateDictSource<'_> {
    fn take(&mut self, key: &str, shape: &[usize], _init: Init) -> Vec<f32> {
        let full = format!("{}{}", self.prefix, key);
        let n: usize = shape.iter().product();
        let zeros = || vec![0.0; n];
        let Some(found) = self.source.shape(&full) else {
            self.missing.push(full);
            return zeros();
        };
        self.used.insert(full.clone());
        // A 0-d or squeezed shape is not accepted: the shapes must agree.
        if found != shape {
            self.shapes.push(ShapeProblem {
                key: full,
                expected: shape.to_vec(),
                found,
            });
            return zeros();
        }
        match self.source.read_f32(&full) {
            Ok((_, v)) => v,
            Err(e) => {
                if self.read_error.is_none() {
                    self.read_error = Some(e.into());
                }
                zeros()
            }
        }
    }
}

/// Seeded initialisation with PyTorch-like defaults.
pub(crate) struct RandomSource {
    rng: StdRng,
}

impl RandomSource {
    pub(crate) fn new(seed: u64) -> Self {
        Self {
            rng: StdRng::seed_from_u64(seed),
        }
    }
}

impl ParamSource for RandomSource {
    fn take(&mut self, _key: &str, shape: &[usize], init: Init) -> Vec<f32> {
        let n: usize = shape.iter().product();
        match init {
            Init::Ones => vec![1.0; n],
            Init::Zeros => vec![0.0; n],
            Init::Uniform(b) => (0..n)
                .map(|_| (self.rng.random::<f64>() * 2.0 - 1.0) * b)
                .map(|v| v as f32)
                .collect(),
            Init::Normal(s) => (0..n)
                .map(|_| {
                    // Box–Muller.
                    let u1: f64 = self.rng.random::<f64>().max(f64::MIN_POSITIVE);
                    let u2: f64 = self.rng.random::<f64>();
                    ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos() * s) as f32
                })
                .collect(),
        }
    }
}

/// A parameter tensor of rank `D` from `src`.
pub(crate) fn param<B: Backend, const D: usize>(
    src: &mut dyn ParamSource,
    key: &str,
    shape: [usize; D],
    init: Init,
    device: &B::Device,
) -> Param<Tensor<B, D>> {
    let values = src.take(key, &shape, init);
    let p = Param::from_tensor(Tensor::from_data(TensorData::new(values, shape), device));
    src.register(p.id, key);
    p
}

/// A frozen (no-gradient) parameter tensor of rank `D` from `src`.
pub(crate) fn frozen<B: Backend, const D: usize>(
    src: &mut dyn ParamSource,
    key: &str,
    shape: [usize; D],
    init: Init,
    device: &B::Device,
) -> Param<Tensor<B, D>> {
    param(src, key, shape, init, device).set_require_grad(false)
}
