//! Integration tests of v2l-llm (one binary).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod gguf;
mod model;
mod smollm2;
mod tokenizer;
