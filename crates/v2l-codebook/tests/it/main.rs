//! Integration tests of v2l-codebook.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod expansion;
mod filter;
mod official;
mod templates;
mod vocab;
