//! Integration tests of v2l-model (one binary: burn's generic code is
//! compiled once).

mod bundle;
mod common;
mod errors;
mod golden;
mod levels;
mod preprocess;
mod tokenizer;
mod train;
