//! The `gpu` test group: our models and kernels executed on burn's wgpu
//! backend, checked against the same fixtures the CPU tests use (reference
//! outputs of the official code, OpenAI CLIP and Meta's LLaMA) and against
//! the same computation on the CPU.
//!
//! Built only with `--features wgpu`:
//! `cargo test --profile fast -p v2l --features wgpu --test gpu`; the same
//! modules on CUDA are the `gpu-cuda` target (`--features cuda`), run by the
//! device check (`scripts/device_check.sh`), which also runs the ignored
//! `bench_*` entries (`bench.rs`).
//! In CI it runs on Mesa's software Vulkan driver (lavapipe). A machine
//! without a Vulkan adapter prints `SKIP` with the reason, unless
//! `V2L_REQUIRE_GPU=1` (set in CI), where it fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod bench;
mod common;
mod models;
mod quant;
mod train;
