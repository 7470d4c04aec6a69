//! One test binary for avb-billing: the shared conformance suites against the in-memory adapters and against
//! the Lago adapter talking to the validating Lago mock, the usage and tenant sync, the retry decorator and
//! webhook verification.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod conformance;
mod lago;
mod retry;
mod support;
mod sync;
mod webhook;
