//! The wgpu device (or the reason there is none), fixtures and comparisons.

use std::path::PathBuf;
use std::sync::OnceLock;

use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

/// The GPU backend under test (f32): wgpu, or CUDA in the `gpu-cuda` build.
#[cfg(not(feature = "cuda"))]
pub type G = burn::backend::Wgpu;
/// The GPU backend under test (f32): wgpu, or CUDA in the `gpu-cuda` build.
#[cfg(feature = "cuda")]
pub type G = burn::backend::Cuda;
/// Its device type.
pub type GpuDevice = burn::tensor::Device<G>;
/// Its name in benchmark lines.
#[cfg(not(feature = "cuda"))]
pub const BACKEND: &str = "wgpu";
/// Its name in benchmark lines.
#[cfg(feature = "cuda")]
pub const BACKEND: &str = "cuda";
/// The CPU backend the CLI uses.
pub type C = burn::backend::Flex;

/// The GPU device, initialised once; `None` (after printing `SKIP` and the
/// reason) when there is none and `V2L_REQUIRE_GPU` is not `1`.
pub fn gpu() -> Option<GpuDevice> {
    static DEVICE: OnceLock<Result<GpuDevice, String>> = OnceLock::new();
    match DEVICE.get_or_init(open_device) {
        Ok(device) => Some(device.clone()),
        Err(why) => {
            if std::env::var("V2L_REQUIRE_GPU").is_ok_and(|v| v == "1") {
                panic!("V2L_REQUIRE_GPU=1 but there is no {BACKEND} device: {why}");
            }
            eprintln!("SKIP: no {BACKEND} device ({why})");
            None
        }
    }
}

/// The message of a caught panic.
fn panic_text(panic: Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "device initialisation panicked".into())
}

/// CUDA device 0, after one round trip through it.
#[cfg(feature = "cuda")]
fn open_device() -> Result<GpuDevice, String> {
    std::panic::catch_unwind(|| {
        let device = burn::backend::cuda::CudaDevice::new(0);
        let _ = Tensor::<G, 1>::zeros([1], &device).into_data();
        device
    })
    .map_err(panic_text)
}

/// wgpu's default adapter through Vulkan, with its name printed.
#[cfg(not(feature = "cuda"))]
fn open_device() -> Result<GpuDevice, String> {
    use burn::backend::wgpu::{graphics::Vulkan, init_setup, WgpuDevice};
    let device = WgpuDevice::DefaultDevice;
    let setup = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        init_setup::<Vulkan>(&device, Default::default())
    }))
    .map_err(panic_text)?;
    let info = setup.adapter.get_info();
    eprintln!(
        "wgpu adapter: {} ({:?}, {:?}, driver {})",
        info.name, info.device_type, info.backend, info.driver_info
    );
    Ok(device)
}

/// A fixture of another crate of the workspace (`crate/tests/fixtures/rel`),
/// under `$V2L_REPO_ROOT/crates` when that is set (a binary carried to
/// another machine), else beside this crate.
pub fn fixture(krate: &str, rel: &str) -> PathBuf {
    let crates = match std::env::var_os("V2L_REPO_ROOT") {
        Some(root) => PathBuf::from(root).join("crates"),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".."),
    };
    crates.join(krate).join("tests/fixtures").join(rel)
}

/// A tensor's values on the host.
pub fn host<BK: Backend, const D: usize>(t: Tensor<BK, D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .to_vec::<f32>()
        .expect("f32 tensor data")
}

/// max |a − b| / max |b|.
pub fn rel_err(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len(), "lengths differ");
    let d = a
        .iter()
        .zip(b)
        .map(|(x, y)| f64::from((x - y).abs()))
        .fold(0.0, f64::max);
    let s = b.iter().map(|y| f64::from(y.abs())).fold(0.0, f64::max);
    d / s.max(1e-30)
}

/// Asserts `got` is within `tol` of `want` (max-norm, relative) and says
/// by how much.
pub fn assert_close(what: &str, got: &[f32], want: &[f32], tol: f64) {
    let e = rel_err(got, want);
    eprintln!("{what}: rel err {e:.3e}");
    assert!(e <= tol, "{what}: rel err {e:.3e} > {tol:.0e}");
}

/// Deterministic values in [-1, 1) (xorshift64*), the same on every machine.
pub fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s >> 12;
            s ^= s << 25;
            s ^= s >> 27;
            let r = s.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40;
            (r as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}
