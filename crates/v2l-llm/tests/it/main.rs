//! Integration tests of v2l-llm (one binary).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod fuzz_regressions;
mod gguf;
mod model;
mod precision;
mod smollm2;
mod tokenizer;
