//! Integration tests of v2l-prompt.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod e2e;
mod episodes;
mod eval;
mod fewshot;
mod prompts;
mod restore;
