//! Integration tests of v2l-metrics (one binary).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod accuracy;
mod caption;
mod clip_score;
mod fid_stats;
mod inception;
mod lpips;
mod reference;
