//! Tests of the vision-language models.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod conse;
