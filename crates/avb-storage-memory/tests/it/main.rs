//! One test binary for the memory adapters: every shared conformance suite, run against them.

mod bus;
mod cache;
mod rate_limit;
