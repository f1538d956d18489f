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

pub use v2l::backend::CpuBackend;

/// `--device`, parsed once into the library's [`DeviceKind`] (an unknown or
/// not-compiled device is a usage error, exit 2).
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct DeviceArgs {
    /// cpu, cuda, cuda:N, wgpu or wgpu:N.
    #[arg(long, default_value = "cpu")]
    pub device: DeviceKind,
}

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
