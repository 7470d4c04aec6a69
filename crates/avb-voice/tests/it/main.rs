//! One test binary for avb-voice: audio codecs and framing, resampling, VAD and turn detection, the scripted
//! adapters and the shared conformance suites.
// Test helpers outside `#[test]` functions may fail loudly too; clippy's `allow-*-in-tests` only covers tests.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod audio;
#[cfg(feature = "conformance")]
mod conformance;
mod error;
mod metered;
mod realtime_engine;
mod realtime_fuzz;
mod realtime_gate;
mod realtime_protocol;
mod realtime_roundtrip;
mod realtime_session_fuzz;
mod realtime_strategies;
mod scripted;
mod vad;
