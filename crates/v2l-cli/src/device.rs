//! `--device` dispatch shared by the commands that run a burn model.

use crate::error::{err, CliError};
use v2l::backend::{DeviceKind, Precision};
use v2l::burn::tensor::backend::Backend;

/// `--precision`: the precision of the frozen CLIP tower and LLM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum PrecisionArg {
    /// Everything in f32.
    #[default]
    F32,
    /// CLIP and the LLM in f16 as the reference runs them (norms, rotary
    /// embeddings and attention softmax in f32); needs a backend with f16
    /// (on the CPU, burn's Flex).
    F16,
}

impl From<PrecisionArg> for Precision {
    fn from(p: PrecisionArg) -> Self {
        match p {
            PrecisionArg::F32 => Precision::F32,
            PrecisionArg::F16 => Precision::F16,
        }
    }
}

/// Which CPU backend a command prefers for `--device cpu`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CpuBackend {
    /// burn's NdArray (`v2l::backend::Cpu`).
    NdArray,
    /// burn's Flex (`v2l::backend::CpuFlex`), faster for LLM decoding.
    Flex,
}

/// A command body generic over the backend.
pub trait OnDevice {
    /// Run on backend `B` and `device`.
    fn run<B: Backend>(self, device: B::Device) -> Result<(), CliError>;
}

/// Parse `--device` and run `job` on the matching backend, checking that it
/// computes in `precision` (f16 on the CPU always uses Flex: NdArray has no
/// f16).
pub fn dispatch<J: OnDevice>(
    device: &str,
    cpu: CpuBackend,
    precision: Precision,
    job: J,
) -> Result<(), CliError> {
    let kind: DeviceKind = device.parse().map_err(err)?;
    let cpu = if precision == Precision::F32 {
        cpu
    } else {
        CpuBackend::Flex
    };
    match (kind, cpu) {
        (DeviceKind::Cpu, CpuBackend::NdArray) => {
            checked::<v2l::backend::Cpu, J>(Default::default(), precision, job)
        }
        (DeviceKind::Cpu, CpuBackend::Flex) => {
            checked::<v2l::backend::CpuFlex, J>(Default::default(), precision, job)
        }
        #[cfg(feature = "cuda")]
        (DeviceKind::Cuda(i), _) => checked::<v2l::backend::Cuda, J>(
            v2l::burn::backend::cuda::CudaDevice::new(i),
            precision,
            job,
        ),
        #[cfg(feature = "wgpu")]
        (DeviceKind::Wgpu, _) => {
            checked::<v2l::backend::Wgpu, J>(Default::default(), precision, job)
        }
        #[allow(unreachable_patterns)]
        (other, _) => Err(CliError::usage(format!(
            "device {other} is not compiled into this build"
        ))),
    }
}

fn checked<B: Backend, J: OnDevice>(
    device: B::Device,
    precision: Precision,
    job: J,
) -> Result<(), CliError> {
    precision.check::<B>(&device).map_err(err)?;
    job.run::<B>(device)
}
