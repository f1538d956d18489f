//! Backends: the burn backends compiled into this build, the device syntax
//! (`cpu | cuda[:N] | wgpu[:N]`, comma lists for several devices), the
//! [`Precision`] of the frozen CLIP and LLM, and dispatch of a generic job
//! onto the backend a device names.
//!
//! ```no_run
//! use v2l::backend::{run_on, CpuBackend, DeviceKind, OnDevice, Precision};
//! use v2l::burn::tensor::{backend::Backend, ElementConversion, Tensor};
//!
//! struct Sum;
//! impl OnDevice for Sum {
//!     type Output = f32;
//!     fn run<B: Backend>(self, device: B::Device) -> f32 {
//!         Tensor::<B, 1>::from_floats([1.0, 2.0], &device).sum().into_scalar().elem()
//!     }
//! }
//!
//! let device: DeviceKind = "cpu".parse()?;
//! let total = run_on(device, CpuBackend::Flex, Precision::F32, Sum)?;
//! assert_eq!(total, 3.0);
//! # Ok::<(), v2l::backend::DeviceError>(())
//! ```
//!
//! Dispatch is generic (one monomorphised copy of the job per compiled
//! backend) rather than burn 0.21's runtime dispatch backend: the models are
//! generic over `B` already, training wraps the chosen backend in `Autodiff`,
//! and every tensor operation then runs without a per-operation match on the
//! backend. The price is compile time, paid once per backend feature.
//!
//! f16 needs a backend with f16: Flex on the CPU (NdArray has none, so
//! [`run_on`] switches to Flex), CUDA, a wgpu adapter with `shader-f16`;
//! [`Precision::check`] says.

use std::fmt;
use std::str::FromStr;

use burn::tensor::backend::{AutodiffBackend, Backend};

pub use v2l_nn::precision::{Precision, PrecisionError};

/// The CPU backend used by default (burn's NdArray).
pub type Cpu = burn::backend::NdArray;
/// The CPU backend with autodiff, for training.
pub type CpuAutodiff = burn::backend::Autodiff<Cpu>;

/// burn's pure-Rust Flex CPU backend. Faster than [`Cpu`] (NdArray) for LLM
/// generation here (SmolLM2 decode 12–13 vs 4.5 tokens/s, docs/benchmarks.md),
/// and it computes in f16.
pub type CpuFlex = burn::backend::Flex;
/// NVIDIA GPUs through CUDA (feature `cuda`; the driver is loaded at run time).
#[cfg(feature = "cuda")]
pub type Cuda = burn::backend::Cuda;
/// GPUs through wgpu (feature `wgpu`: Vulkan, Metal, DX12).
#[cfg(feature = "wgpu")]
pub type Wgpu = burn::backend::Wgpu;

/// A device as written on the command line: `cpu`, `cuda`, `cuda:N`, `wgpu`
/// or `wgpu:N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DeviceKind {
    /// The CPU.
    #[default]
    Cpu,
    /// CUDA device with this ordinal (`cuda` is `cuda:0`).
    Cuda(usize),
    /// A wgpu adapter: `None` for wgpu's default (the most capable adapter,
    /// overridable with `CUBECL_WGPU_DEFAULT_DEVICE`), `Some(N)` for the N-th
    /// discrete GPU.
    Wgpu(Option<usize>),
}

impl DeviceKind {
    /// Whether this build was compiled with the backend for the device.
    pub fn is_compiled(self) -> bool {
        match self {
            DeviceKind::Cpu => true,
            DeviceKind::Cuda(_) => cfg!(feature = "cuda"),
            DeviceKind::Wgpu(_) => cfg!(feature = "wgpu"),
        }
    }

    /// The device's ordinal: `N` of `cuda:N` / `wgpu:N`; `None` for the CPU
    /// and for wgpu's default adapter.
    pub fn index(self) -> Option<usize> {
        match self {
            DeviceKind::Cpu | DeviceKind::Wgpu(None) => None,
            DeviceKind::Cuda(i) | DeviceKind::Wgpu(Some(i)) => Some(i),
        }
    }

    /// The Cargo feature that adds the device's backend (`None` for the CPU).
    pub fn feature(self) -> Option<&'static str> {
        match self {
            DeviceKind::Cpu => None,
            DeviceKind::Cuda(_) => Some("cuda"),
            DeviceKind::Wgpu(_) => Some("wgpu"),
        }
    }

    fn not_compiled(self) -> DeviceError {
        DeviceError::NotCompiled {
            device: self.to_string(),
            feature: self.feature().unwrap_or("default"),
        }
    }
}

impl fmt::Display for DeviceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceKind::Cpu => f.write_str("cpu"),
            DeviceKind::Cuda(i) => write!(f, "cuda:{i}"),
            DeviceKind::Wgpu(None) => f.write_str("wgpu"),
            DeviceKind::Wgpu(Some(i)) => write!(f, "wgpu:{i}"),
        }
    }
}

/// Why a device could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceError {
    /// Not `cpu`, `cuda[:N]` or `wgpu[:N]`.
    #[error("unknown device {0:?}: expected cpu, cuda, cuda:N, wgpu or wgpu:N")]
    Unknown(String),
    /// The backend was not compiled into this build.
    #[error("device {device} needs v2l built with the `{feature}` feature")]
    NotCompiled {
        /// The device asked for.
        device: String,
        /// The Cargo feature that adds it.
        feature: &'static str,
    },
    /// A device list that is empty or names a GPU twice.
    #[error("device list {0:?}: give one or more devices, comma-separated, each GPU once")]
    BadList(String),
    /// A device list that mixes backends (one run uses one backend).
    #[error("device list {0}: all devices must use one backend (cpu, cuda or wgpu)")]
    MixedBackends(String),
    /// The backend cannot compute in the precision asked for.
    #[error(transparent)]
    Precision(#[from] PrecisionError),
}

fn ordinal(s: &str, rest: Option<&str>) -> Result<Option<usize>, DeviceError> {
    match rest {
        None => Ok(None),
        Some(n) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => n
            .parse()
            .map(Some)
            .map_err(|_| DeviceError::Unknown(s.to_string())),
        Some(_) => Err(DeviceError::Unknown(s.to_string())),
    }
}

impl FromStr for DeviceKind {
    type Err = DeviceError;

    /// Parses `cpu`, `cuda`, `cuda:N`, `wgpu` or `wgpu:N` (case-insensitive)
    /// and checks that the backend is compiled in.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        let (name, rest) = match lower.split_once(':') {
            Some((n, r)) => (n, Some(r)),
            None => (lower.as_str(), None),
        };
        let kind = match name {
            "cpu" if rest.is_none() => DeviceKind::Cpu,
            "cuda" => DeviceKind::Cuda(ordinal(s, rest)?.unwrap_or(0)),
            "wgpu" => DeviceKind::Wgpu(ordinal(s, rest)?),
            _ => return Err(DeviceError::Unknown(s.to_string())),
        };
        if !kind.is_compiled() {
            return Err(kind.not_compiled());
        }
        Ok(kind)
    }
}

/// One or more devices, written as a comma list (`cuda:0,cuda:1`), for the
/// commands that spread work over several devices. A GPU may be named once;
/// `cpu` may repeat (`cpu,cpu`: two peers sharing the CPU, as data-parallel
/// tests use).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Devices(pub Vec<DeviceKind>);

impl Devices {
    /// The first device.
    pub fn first(&self) -> DeviceKind {
        self.0.first().copied().unwrap_or_default()
    }
}

impl FromStr for Devices {
    type Err = DeviceError;

    /// Parses a non-empty comma list of devices, each GPU at most once.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut out: Vec<DeviceKind> = Vec::new();
        for part in s.split(',') {
            if part.trim().is_empty() {
                return Err(DeviceError::BadList(s.to_string()));
            }
            let d: DeviceKind = part.parse()?;
            if d != DeviceKind::Cpu && out.contains(&d) {
                return Err(DeviceError::BadList(s.to_string()));
            }
            out.push(d);
        }
        Ok(Devices(out))
    }
}

impl fmt::Display for Devices {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

/// Which CPU backend a job prefers for [`DeviceKind::Cpu`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CpuBackend {
    /// burn's NdArray ([`Cpu`]).
    NdArray,
    /// burn's Flex ([`CpuFlex`]): faster for LLM decoding, and has f16.
    #[default]
    Flex,
}

/// A job generic over the backend, run by [`run_on`].
pub trait OnDevice {
    /// What the job returns.
    type Output;
    /// Run on backend `B` and `device`.
    fn run<B: Backend>(self, device: B::Device) -> Self::Output;
}

/// A job generic over an autodiff backend (training), run by
/// [`run_autodiff_on`].
pub trait OnAutodiffDevice {
    /// What the job returns.
    type Output;
    /// Run on autodiff backend `B` and `device`.
    fn run<B: AutodiffBackend>(self, device: B::Device) -> Self::Output;
}

#[cfg(feature = "cuda")]
fn cuda_device(i: usize) -> burn::backend::cuda::CudaDevice {
    burn::backend::cuda::CudaDevice::new(i)
}

#[cfg(feature = "wgpu")]
fn wgpu_device(i: Option<usize>) -> burn::backend::wgpu::WgpuDevice {
    match i {
        None => burn::backend::wgpu::WgpuDevice::DefaultDevice,
        Some(i) => burn::backend::wgpu::WgpuDevice::DiscreteGpu(i),
    }
}

fn checked<B: Backend, J: OnDevice>(
    device: B::Device,
    precision: Precision,
    job: J,
) -> Result<J::Output, DeviceError> {
    precision.check::<B>(&device)?;
    Ok(job.run::<B>(device))
}

/// Run `job` on the backend of `device`, after checking that it computes in
/// `precision` (on the CPU, f16 always runs on Flex).
///
/// # Errors
/// The device's backend is not compiled in; the backend or device has no
/// such precision.
pub fn run_on<J: OnDevice>(
    device: DeviceKind,
    cpu: CpuBackend,
    precision: Precision,
    job: J,
) -> Result<J::Output, DeviceError> {
    let cpu = if precision == Precision::F32 {
        cpu
    } else {
        CpuBackend::Flex
    };
    match (device, cpu) {
        (DeviceKind::Cpu, CpuBackend::NdArray) => {
            checked::<Cpu, J>(Default::default(), precision, job)
        }
        (DeviceKind::Cpu, CpuBackend::Flex) => {
            checked::<CpuFlex, J>(Default::default(), precision, job)
        }
        #[cfg(feature = "cuda")]
        (DeviceKind::Cuda(i), _) => checked::<Cuda, J>(cuda_device(i), precision, job),
        #[cfg(feature = "wgpu")]
        (DeviceKind::Wgpu(i), _) => checked::<Wgpu, J>(wgpu_device(i), precision, job),
        #[allow(unreachable_patterns)]
        (other, _) => Err(other.not_compiled()),
    }
}

/// Run a training `job` on `Autodiff` over the backend of `device` (Flex on
/// the CPU), in f32.
///
/// # Errors
/// The device's backend is not compiled in.
pub fn run_autodiff_on<J: OnAutodiffDevice>(
    device: DeviceKind,
    job: J,
) -> Result<J::Output, DeviceError> {
    /// A one-device job as a job over a list of one.
    struct One<J>(J);
    impl<J: OnAutodiffDevice> OnAutodiffDevices for One<J> {
        type Output = J::Output;
        fn run<B: AutodiffBackend>(self, devices: Vec<B::Device>) -> J::Output {
            let device = devices.into_iter().next().unwrap_or_default();
            self.0.run::<B>(device)
        }
    }
    run_autodiff_on_all(&Devices(vec![device]), One(job))
}

/// A training job over several devices of one backend, run by
/// [`run_autodiff_on_all`].
pub trait OnAutodiffDevices {
    /// What the job returns.
    type Output;
    /// Run on autodiff backend `B` and `devices` (one or more).
    fn run<B: AutodiffBackend>(self, devices: Vec<B::Device>) -> Self::Output;
}

/// Run a training `job` on `Autodiff` over the backend of `devices` (Flex on
/// the CPU), in f32; every device must use the same backend.
///
/// # Errors
/// A backend not compiled in; devices of different backends.
pub fn run_autodiff_on_all<J: OnAutodiffDevices>(
    devices: &Devices,
    job: J,
) -> Result<J::Output, DeviceError> {
    use burn::backend::Autodiff;
    let first = devices.first();
    let same = |d: &DeviceKind| std::mem::discriminant(d) == std::mem::discriminant(&first);
    if !devices.0.iter().all(same) {
        return Err(DeviceError::MixedBackends(devices.to_string()));
    }
    match first {
        DeviceKind::Cpu => {
            Ok(job.run::<Autodiff<CpuFlex>>(vec![Default::default(); devices.0.len()]))
        }
        #[cfg(feature = "cuda")]
        DeviceKind::Cuda(_) => {
            let list = devices
                .0
                .iter()
                .map(|d| cuda_device(d.index().unwrap_or(0)));
            Ok(job.run::<Autodiff<Cuda>>(list.collect()))
        }
        #[cfg(feature = "wgpu")]
        DeviceKind::Wgpu(_) => {
            let list = devices.0.iter().map(|d| wgpu_device(d.index()));
            Ok(job.run::<Autodiff<Wgpu>>(list.collect()))
        }
        #[allow(unreachable_patterns)]
        other => Err(other.not_compiled()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_device_names() {
        assert_eq!("cpu".parse::<DeviceKind>(), Ok(DeviceKind::Cpu));
        assert_eq!("CPU".parse::<DeviceKind>(), Ok(DeviceKind::Cpu));
        for bad in ["tpu", "cuda:x", "cuda:", "cpu:0", "wgpu:-1", "wgpu:1:2", ""] {
            assert!(
                matches!(bad.parse::<DeviceKind>(), Err(DeviceError::Unknown(_))),
                "{bad:?}"
            );
        }
        let cuda = "cuda:1".parse::<DeviceKind>();
        if cfg!(feature = "cuda") {
            assert_eq!(cuda, Ok(DeviceKind::Cuda(1)));
            assert_eq!("cuda".parse::<DeviceKind>(), Ok(DeviceKind::Cuda(0)));
        } else {
            assert_eq!(
                cuda,
                Err(DeviceError::NotCompiled {
                    device: "cuda:1".into(),
                    feature: "cuda"
                })
            );
        }
        let wgpu = "wgpu:2".parse::<DeviceKind>();
        if cfg!(feature = "wgpu") {
            assert_eq!(wgpu, Ok(DeviceKind::Wgpu(Some(2))));
            assert_eq!("wgpu".parse::<DeviceKind>(), Ok(DeviceKind::Wgpu(None)));
        } else {
            assert!(matches!(
                wgpu,
                Err(DeviceError::NotCompiled {
                    feature: "wgpu",
                    ..
                })
            ));
        }
    }

    #[test]
    fn device_names_print_as_they_parse() {
        for d in [
            DeviceKind::Cpu,
            DeviceKind::Cuda(3),
            DeviceKind::Wgpu(None),
            DeviceKind::Wgpu(Some(1)),
        ] {
            if d.is_compiled() {
                assert_eq!(d.to_string().parse::<DeviceKind>(), Ok(d));
            }
        }
    }

    #[test]
    fn device_ordinals() {
        assert_eq!(DeviceKind::Cpu.index(), None);
        assert_eq!(DeviceKind::Cuda(3).index(), Some(3));
        assert_eq!(DeviceKind::Wgpu(None).index(), None);
        assert_eq!(DeviceKind::Wgpu(Some(1)).index(), Some(1));
    }

    #[test]
    fn parses_device_lists() {
        assert_eq!("cpu".parse::<Devices>(), Ok(Devices(vec![DeviceKind::Cpu])));
        assert_eq!(
            "cpu,cpu".parse::<Devices>(),
            Ok(Devices(vec![DeviceKind::Cpu, DeviceKind::Cpu]))
        );
        for bad in ["", "cpu,", ",cpu"] {
            assert!(
                matches!(bad.parse::<Devices>(), Err(DeviceError::BadList(_))),
                "{bad:?}"
            );
        }
        assert!(matches!(
            "cpu,tpu".parse::<Devices>(),
            Err(DeviceError::Unknown(_))
        ));
        if cfg!(feature = "cuda") {
            assert!(matches!(
                "cuda:1,cuda:1".parse::<Devices>(),
                Err(DeviceError::BadList(_))
            ));
            let d: Devices = "cuda:0,cuda:1".parse().unwrap_or(Devices(vec![]));
            assert_eq!(d.0, vec![DeviceKind::Cuda(0), DeviceKind::Cuda(1)]);
            assert_eq!(d.to_string(), "cuda:0,cuda:1");
        }
    }

    struct BackendName;
    impl OnDevice for BackendName {
        type Output = String;
        fn run<B: Backend>(self, device: B::Device) -> String {
            B::name(&device)
        }
    }

    #[test]
    fn runs_on_the_chosen_cpu_backend_and_checks_precision() {
        let nd = run_on(
            DeviceKind::Cpu,
            CpuBackend::NdArray,
            Precision::F32,
            BackendName,
        );
        let flex = run_on(
            DeviceKind::Cpu,
            CpuBackend::Flex,
            Precision::F32,
            BackendName,
        );
        assert_ne!(nd, flex);
        assert_eq!(flex, Ok(<CpuFlex as Backend>::name(&Default::default())));
        // f16 on the CPU runs on Flex even when NdArray was preferred.
        let half = run_on(
            DeviceKind::Cpu,
            CpuBackend::NdArray,
            Precision::F16,
            BackendName,
        );
        assert_eq!(half, flex);
        if !cfg!(feature = "cuda") {
            assert!(matches!(
                run_on(
                    DeviceKind::Cuda(0),
                    CpuBackend::Flex,
                    Precision::F32,
                    BackendName
                ),
                Err(DeviceError::NotCompiled {
                    feature: "cuda",
                    ..
                })
            ));
        }
    }
}
