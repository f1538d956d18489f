//! Integration tests of v2l-assets (one test binary per crate).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod datasets;
mod fetch;
