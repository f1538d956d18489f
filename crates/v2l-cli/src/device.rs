//! `--device` dispatch shared by the commands that run a burn model.

use crate::args::PrecisionArg;
use crate::error::{err, CliError};
use v2l::backend::{DeviceKind, Precision};
use v2l::burn::tensor::backend::Backend;

impl From<PrecisionArg> for Precision {
    fn from(p: PrecisionArg) -> Self {
        match p {
            PrecisionArg::F32 => Precision::F32,
            PrecisionArg::F16 => Precision::F16,
        }
    }
}

pub use v2l::backend::CpuBackend;

/// A command body generic over the backend.
pub trait OnDevice {
    /// Run on backend `B` and `device`.
    fn run<B: Backend>(self, device: B::Device) -> Result<(), CliError>;
}

/// Adapts a command body to the library's [`v2l::backend::OnDevice`].
struct Job<J>(J);

impl<J: OnDevice> v2l::backend::OnDevice for Job<J> {
    type Output = Result<(), CliError>;
    fn run<B: Backend>(self, device: B::Device) -> Self::Output {
        self.0.run::<B>(device)
    }
}

/// Run `job` on the backend of `device` in `precision`
/// ([`v2l::backend::run_on`]).
pub fn dispatch<J: OnDevice>(
    device: DeviceKind,
    cpu: CpuBackend,
    precision: Precision,
    job: J,
) -> Result<(), CliError> {
    v2l::backend::run_on(device, cpu, precision, Job(job)).map_err(err)?
}

/// Run `job` on `device` in f32 (burn's Flex on the CPU): the commands
/// without `--precision`.
pub fn dispatch_f32<J: OnDevice>(device: DeviceKind, job: J) -> Result<(), CliError> {
    dispatch(device, CpuBackend::Flex, Precision::F32, job)
}
