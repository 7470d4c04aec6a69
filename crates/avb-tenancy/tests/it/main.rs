//! One test binary for the tenancy services, run against the in-memory store with a manual clock and
//! sequential ids: every operation's happy path, every refusal's stable code (and that it changed nothing),
//! quotas, tenant resolution, and property tests for slugs and tenant isolation.
// Test helpers outside `#[test]` functions (fixtures, models, property strategies) may fail loudly too; clippy's
// `allow-*-in-tests` settings only cover the test functions themselves.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod api_keys;
mod audit;
mod common;
mod notifications;
mod observed;
mod project;
mod props;
mod resolve;
mod sessions;
mod tenant;
mod themes;
mod user;
mod voice;
