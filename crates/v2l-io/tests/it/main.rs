//! Integration tests of v2l-io (one test binary per crate).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod default_assets;
mod fuzz_regressions;
mod readers;
