//! Inference precision: run a frozen model in f16 the way the reference
//! runs CLIP and LLaMA-2, with the numerically fragile steps in f32.
//!
//! The reference code runs its CLIP tower and LLaMA-2 in fp16 on CUDA:
//! weights and activations are fp16, but OpenAI's CLIP `LayerNorm` casts its
//! input to fp32 and back, Meta's LLaMA `RMSNorm` and rotary embedding
//! compute in fp32, the attention softmax runs in fp32, and the LLM's logits
//! are returned as fp32. [`Precision::F16`] reproduces that split:
//!
//! - [`to_precision`] casts every float parameter of a loaded module (a
//!   weight stored in fp16 comes back bit-exact; an f32 weight is rounded as
//!   PyTorch's `.half()` rounds it);
//! - the models cast their inputs to their weights' dtype and return f32
//!   outputs, so callers never see f16 tensors;
//! - [`layer_norm`] and [`rms_norm`] compute in f32 whatever the input's
//!   dtype.
//!
//! [`Precision::F32`] leaves every computation exactly as it was (the
//! helpers call burn's own layers on f32 input).

use std::fmt;
use std::str::FromStr;

use burn::module::{Module, ModuleMapper, Param};
use burn::nn::{LayerNorm, RmsNorm};
use burn::tensor::backend::Backend;
use burn::tensor::{DType, FloatDType, Tensor};

/// The float precision a frozen model runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Precision {
    /// Everything in f32 (the default).
    #[default]
    F32,
    /// Weights and activations in f16; norms, rotary embeddings and the
    /// attention softmax in f32; outputs returned as f32 (as the reference
    /// runs CLIP and LLaMA-2).
    F16,
}

impl Precision {
    /// burn's float dtype for this precision.
    pub fn float_dtype(self) -> FloatDType {
        match self {
            Precision::F32 => FloatDType::F32,
            Precision::F16 => FloatDType::F16,
        }
    }

    /// burn's dtype for this precision.
    pub fn dtype(self) -> DType {
        self.float_dtype().into()
    }

    /// The name used on the command line and in logs (`f32`, `f16`).
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::F16 => "f16",
        }
    }

    /// Check that backend `B` computes in this precision on `device`.
    ///
    /// # Errors
    /// [`PrecisionError::Unsupported`] when the backend (burn's NdArray) or
    /// the device (a wgpu adapter without f16) lacks it.
    pub fn check<B: Backend>(self, device: &B::Device) -> Result<(), PrecisionError> {
        if B::supports_dtype(device, self.dtype()) {
            Ok(())
        } else {
            Err(PrecisionError::Unsupported {
                precision: self,
                device: format!("{device:?}"),
                backend: B::name(device),
            })
        }
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Precision {
    type Err = PrecisionError;

    /// `f32` / `fp32` / `float32` or `f16` / `fp16` / `float16` / `half`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "f32" | "fp32" | "float32" => Ok(Precision::F32),
            "f16" | "fp16" | "float16" | "half" => Ok(Precision::F16),
            _ => Err(PrecisionError::Unknown(s.to_string())),
        }
    }
}

/// Why a precision cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrecisionError {
    /// Not one of `f32`, `f16`.
    #[error("unknown precision {0:?}: expected f32 or f16")]
    Unknown(String),
    /// The backend or device cannot compute in this precision.
    #[error("{backend} on {device} does not compute in {precision}")]
    Unsupported {
        /// The precision asked for.
        precision: Precision,
        /// The device, as burn prints it.
        device: String,
        /// The backend's name.
        backend: String,
    },
}

/// Casts every float parameter to one dtype.
struct CastParams(FloatDType);

impl<B: Backend> ModuleMapper<B> for CastParams {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let dtype = self.0;
        param.map(|t| to_dtype(t, dtype.into()))
    }
}

/// `module` with every float parameter in `precision` (a no-op for
/// parameters already in it).
pub fn to_precision<B: Backend, M: Module<B>>(module: M, precision: Precision) -> M {
    module.map(&mut CastParams(precision.float_dtype()))
}

/// `x` in `dtype` (returned as it is when it already is; only float dtypes
/// are meaningful).
pub fn to_dtype<B: Backend, const D: usize>(x: Tensor<B, D>, dtype: DType) -> Tensor<B, D> {
    if x.dtype() == dtype {
        return x;
    }
    let float = match dtype {
        DType::F64 => FloatDType::F64,
        DType::F16 => FloatDType::F16,
        DType::BF16 => FloatDType::BF16,
        _ => FloatDType::F32,
    };
    x.cast(float)
}

/// `x` as f32.
pub fn to_f32<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    to_dtype(x, DType::F32)
}

/// PyTorch `LayerNorm` computed in f32 and returned in `x`'s dtype, as
/// OpenAI CLIP's fp16-safe `LayerNorm` does (an f16 variance of large
/// activations would overflow). The norm's own parameters are used in f32
/// (CLIP keeps them in fp32; ones held in f16 are widened exactly). On f32
/// input with f32 parameters this is `ln.forward(x)`.
pub fn layer_norm<B: Backend, const D: usize>(ln: &LayerNorm<B>, x: Tensor<B, D>) -> Tensor<B, D> {
    let dtype = x.dtype();
    let params_f32 = ln.gamma.val().dtype() == DType::F32;
    match (dtype == DType::F32, params_f32) {
        (true, true) => ln.forward(x),
        (_, true) => to_dtype(ln.forward(to_f32(x)), dtype),
        (_, false) => {
            let ln = to_precision(ln.clone(), Precision::F32);
            to_dtype(ln.forward(to_f32(x)), dtype)
        }
    }
}

/// LLaMA's `RMSNorm`: `x · rsqrt(mean x² + ε)` in f32, cast back to `x`'s
/// dtype, then scaled by the weight in that dtype (Meta's
/// `_norm(x.float()).type_as(x) * weight`). On f32 input this is
/// `norm.forward(x)`.
pub fn rms_norm<B: Backend, const D: usize>(norm: &RmsNorm<B>, x: Tensor<B, D>) -> Tensor<B, D> {
    let dtype = x.dtype();
    if dtype == DType::F32 {
        return norm.forward(x);
    }
    let x = to_f32(x);
    let rms = (x.clone().square().mean_dim(D - 1) + norm.epsilon).sqrt();
    let y = to_dtype(x / rms, dtype);
    y * to_dtype(norm.gamma.val(), dtype).unsqueeze()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use burn::backend::{Flex, NdArray};
    use burn::nn::LayerNormConfig;
    use burn::tensor::TensorData;

    type F = Flex;

    fn f16_row(values: &[f32]) -> Tensor<F, 2> {
        let t = Tensor::<F, 2>::from_data(
            TensorData::new(values.to_vec(), [1, values.len()]),
            &Default::default(),
        );
        to_dtype(t, DType::F16)
    }

    fn host(t: Tensor<F, 2>) -> Vec<f32> {
        to_f32(t).into_data().to_vec::<f32>().unwrap()
    }

    /// Activations of 300: x² = 90,000 overflows f16 (max 65,504), so a norm
    /// computed in f16 would give 0 or NaN. Closed forms: RMS of
    /// [300, −300, 300, −300] is 300, so the output is ±1 · γ; the LayerNorm
    /// of [300, 100, −100, −300] (mean 0, variance 50,000) is ±1.342, ±0.447.
    #[test]
    fn norms_of_large_f16_activations_are_computed_in_f32() {
        let device = Default::default();
        let rms = RmsNorm::<F> {
            gamma: Param::from_tensor(to_dtype(
                Tensor::<F, 1>::from_floats([2.0, 2.0, 2.0, 2.0], &device),
                DType::F16,
            )),
            epsilon: 1e-5,
        };
        let y = rms_norm(&rms, f16_row(&[300.0, -300.0, 300.0, -300.0]));
        assert_eq!(y.dtype(), DType::F16);
        for (got, want) in host(y).iter().zip([2.0, -2.0, 2.0, -2.0]) {
            assert!((got - want).abs() < 2e-3, "{got} vs {want}");
        }

        let ln = to_precision(
            LayerNormConfig::new(4)
                .with_epsilon(1e-5)
                .init::<F>(&device),
            Precision::F16,
        );
        let y = layer_norm(&ln, f16_row(&[300.0, 100.0, -100.0, -300.0]));
        assert_eq!(y.dtype(), DType::F16);
        let s = 50_000f32.sqrt();
        for (got, want) in host(y)
            .iter()
            .zip([300.0 / s, 100.0 / s, -100.0 / s, -300.0 / s])
        {
            assert!((got - want).abs() < 2e-3, "{got} vs {want}");
        }
    }

    #[test]
    fn to_precision_casts_every_float_parameter_and_f32_is_a_no_op() {
        let device = Default::default();
        let ln = LayerNormConfig::new(3).init::<F>(&device);
        let half = to_precision(ln.clone(), Precision::F16);
        assert_eq!(half.gamma.val().dtype(), DType::F16);
        assert_eq!(
            half.beta.as_ref().map(|b| b.val().dtype()),
            Some(DType::F16)
        );
        let back = to_precision(half, Precision::F32);
        assert_eq!(back.gamma.val().dtype(), DType::F32);
        // 1/3 is not an f16 value: the round trip rounds it as `.half()` does.
        let x = Tensor::<F, 1>::from_floats([1.0 / 3.0], &device);
        let r = to_f32(to_dtype(x, DType::F16))
            .into_data()
            .to_vec::<f32>()
            .unwrap();
        assert_eq!(r, vec![0.333_251_95]);
        // f32 → f32 leaves NdArray (which has no f16) untouched.
        let nd = LayerNormConfig::new(3).init::<NdArray>(&Default::default());
        assert_eq!(
            to_precision(nd, Precision::F32).gamma.val().dtype(),
            DType::F32
        );
    }

    #[test]
    fn precision_names_parse_and_print() {
        assert_eq!("fp16".parse::<Precision>(), Ok(Precision::F16));
        assert_eq!("F32".parse::<Precision>(), Ok(Precision::F32));
        assert!(matches!(
            "bf16".parse::<Precision>(),
            Err(PrecisionError::Unknown(_))
        ));
        assert_eq!(Precision::F16.to_string(), "f16");
    }
}
