//! Integration tests of v2l-model (one binary: burn's generic code is
//! compiled once).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod bundle;
mod common;
mod errors;
mod fuzz_regressions;
mod golden;
mod levels;
mod preprocess;
mod tokenizer;
mod train;
