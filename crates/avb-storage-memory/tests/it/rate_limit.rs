//! The shared rate-limiter suite against [`MemoryRateLimiter`], on its manual clock so window checks jump
//! minutes and hours instead of sleeping through them.

use avb_core::conformance::rate_limit::RateLimiterFixture;
use avb_storage_memory::MemoryRateLimiter;

avb_core::rate_limiter_conformance!(async {
    let (limiter, advance) = MemoryRateLimiter::with_manual_clock();
    RateLimiterFixture::new(limiter).with_advance(advance)
});

/// The monotonic-clock configuration the server runs with, on the checks that need no time travel.
mod monotonic_clock {
    use super::*;

    avb_core::rate_limiter_conformance!(
        async { RateLimiterFixture::new(MemoryRateLimiter::new()) },
        without_time_travel =
            "the server's monotonic clock cannot be moved; the manual-clock run covers windows"
    );
}
