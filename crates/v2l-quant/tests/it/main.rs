//! Integration tests of v2l-quant (one binary: burn's generic code is
//! compiled once).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod kernels;
mod tensor;
