//! `--device` dispatch shared by the commands that run a burn model.

use crate::error::{err, CliError};
use v2l::backend::DeviceKind;
use v2l::burn::tensor::backend::Backend;

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

/// Parse `--device` and run `job` on the matching backend.
pub fn dispatch<J: OnDevice>(device: &str, cpu: CpuBackend, job: J) -> Result<(), CliError> {
    let kind: DeviceKind = device.parse().map_err(err)?;
    match (kind, cpu) {
        (DeviceKind::Cpu, CpuBackend::NdArray) => job.run::<v2l::backend::Cpu>(Default::default()),
        (DeviceKind::Cpu, CpuBackend::Flex) => job.run::<v2l::backend::CpuFlex>(Default::default()),
        #[cfg(feature = "cuda")]
        (DeviceKind::Cuda(i), _) => {
            job.run::<v2l::backend::Cuda>(v2l::burn::backend::cuda::CudaDevice::new(i))
        }
        #[cfg(feature = "wgpu")]
        (DeviceKind::Wgpu, _) => job.run::<v2l::backend::Wgpu>(Default::default()),
        #[allow(unreachable_patterns)]
        (other, _) => Err(CliError::usage(format!(
            "device {other} is not compiled into this build"
        ))),
    }
}
