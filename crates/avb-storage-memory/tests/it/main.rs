//! One test binary for the memory adapters: every shared conformance suite, run against them, plus the
//! memory-specific properties.

mod audit;
mod billing;
mod bus;
mod cache;
mod isolation;
mod jobs;
mod memory_store;
mod rate_limit;
mod relationships;
mod tenancy;
