//! The `gpu` group (`tests/gpu/`) compiled for burn's CUDA backend: the
//! device check's binary (`scripts/device_check.sh`; `--features cuda`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../gpu/bench.rs"]
mod bench;
#[path = "../gpu/common.rs"]
mod common;
#[path = "../gpu/models.rs"]
mod models;
#[path = "../gpu/quant.rs"]
mod quant;
#[path = "../gpu/train.rs"]
mod train;
