//! One test binary for avb-auth: the shared conformance suites run against the local engine and the memory
//! relationship store, the schema parser, engine semantics (cycles, depth, wildcards), the differential test
//! against a brute-force reference evaluator, and the guards.
// Test helpers outside `#[test]` functions (fixtures, reference evaluator, generators) may fail loudly too;
// clippy's `allow-*-in-tests` settings only cover the test functions themselves.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod authn;
mod conformance;
mod differential;
#[cfg(feature = "spicedb")]
mod differential_spicedb;
mod engine;
mod guard;
mod keycloak;
mod keycloak_admin;
mod spicedb;
mod static_jwt;
mod support;
mod sysadmin_guard;
mod zed;
