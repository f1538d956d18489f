//! Backends: type aliases for the burn backends compiled into this build,
//! the `--device cpu|cuda|wgpu` choice and the [`Precision`] of the frozen
//! CLIP and LLM (f16 needs a backend with f16: Flex on the CPU, CUDA, a wgpu
//! adapter with `shader-f16`; [`Precision::check`] says).

use std::fmt;
use std::str::FromStr;

pub use v2l_nn::precision::{Precision, PrecisionError};

/// The CPU backend used by default (burn's NdArray).
pub type Cpu = burn::backend::NdArray;
/// The CPU backend with autodiff, for training.
pub type CpuAutodiff = burn::backend::Autodiff<Cpu>;

/// burn's pure-Rust Flex CPU backend. Faster than [`Cpu`] (NdArray) for LLM
/// generation here (SmolLM2 decode 12–13 vs 4.5 tokens/s, docs/benchmarks.md);
/// `v2l complete` uses it for `--device cpu`.
pub type CpuFlex = burn::backend::Flex;
/// NVIDIA GPUs through CUDA (feature `cuda`; the driver is loaded at run time).
#[cfg(feature = "cuda")]
pub type Cuda = burn::backend::Cuda;
/// GPUs through wgpu (feature `wgpu`: Vulkan, Metal, DX12).
#[cfg(feature = "wgpu")]
pub type Wgpu = burn::backend::Wgpu;

/// A device choice as given on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceKind {
    /// The CPU.
    #[default]
    Cpu,
    /// CUDA device with this ordinal (`cuda` or `cuda:N`).
    Cuda(usize),
    /// The default wgpu adapter.
    Wgpu,
}

impl DeviceKind {
    /// Whether this build was compiled with the backend for the device.
    pub fn is_compiled(self) -> bool {
        match self {
            DeviceKind::Cpu => true,
            DeviceKind::Cuda(_) => cfg!(feature = "cuda"),
            DeviceKind::Wgpu => cfg!(feature = "wgpu"),
        }
    }
}

impl fmt::Display for DeviceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceKind::Cpu => f.write_str("cpu"),
            DeviceKind::Cuda(i) => write!(f, "cuda:{i}"),
            DeviceKind::Wgpu => f.write_str("wgpu"),
        }
    }
}

/// Why a `--device` value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceError {
    /// Not one of `cpu`, `cuda`, `cuda:N`, `wgpu`.
    #[error("unknown device {0:?}: expected cpu, cuda, cuda:N or wgpu")]
    Unknown(String),
    /// The backend was not compiled into this build.
    #[error("device {device} needs v2l built with the `{feature}` feature")]
    NotCompiled {
        /// The device asked for.
        device: String,
        /// The Cargo feature that adds it.
        feature: &'static str,
    },
}

impl FromStr for DeviceKind {
    type Err = DeviceError;

    /// Parses `cpu`, `cuda`, `cuda:N` or `wgpu` and checks that the backend
    /// is compiled in.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let kind = match s.trim().to_ascii_lowercase().as_str() {
            "cpu" => DeviceKind::Cpu,
            "cuda" => DeviceKind::Cuda(0),
            "wgpu" => DeviceKind::Wgpu,
            other => match other.strip_prefix("cuda:").map(str::parse::<usize>) {
                Some(Ok(i)) => DeviceKind::Cuda(i),
                _ => return Err(DeviceError::Unknown(s.to_string())),
            },
        };
        if !kind.is_compiled() {
            return Err(DeviceError::NotCompiled {
                device: kind.to_string(),
                feature: match kind {
                    DeviceKind::Cuda(_) => "cuda",
                    _ => "wgpu",
                },
            });
        }
        Ok(kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_device_names() {
        assert_eq!("cpu".parse::<DeviceKind>(), Ok(DeviceKind::Cpu));
        assert_eq!("CPU".parse::<DeviceKind>(), Ok(DeviceKind::Cpu));
        assert!(matches!(
            "tpu".parse::<DeviceKind>(),
            Err(DeviceError::Unknown(_))
        ));
        assert!(matches!(
            "cuda:x".parse::<DeviceKind>(),
            Err(DeviceError::Unknown(_))
        ));
        let cuda = "cuda:1".parse::<DeviceKind>();
        if cfg!(feature = "cuda") {
            assert_eq!(cuda, Ok(DeviceKind::Cuda(1)));
        } else {
            assert_eq!(
                cuda,
                Err(DeviceError::NotCompiled {
                    device: "cuda:1".into(),
                    feature: "cuda"
                })
            );
        }
    }
}
