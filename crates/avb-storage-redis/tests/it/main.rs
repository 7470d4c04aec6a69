//! One test binary for the Redis adapters, against the real Redis at `REDIS_URL` (default 127.0.0.1:6379):
//! every shared conformance suite, each test under its own key prefix, plus the Redis-specific behaviour.
// Test helpers outside `#[test]` functions fail loudly on purpose.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod bus;
mod cache;
mod common;
mod jobs;
mod rate_limit;
mod store;
mod tokens;
