//! Integration tests of v2l-clip (one binary).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod golden;
mod precision;
mod preprocess;
mod tokenizer;
mod towers;
