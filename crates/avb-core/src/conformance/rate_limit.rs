//! Conformance checks for [`RateLimiter`] adapters: one check per point of the port's `# Contract`.
//!
//! Every check counts under fresh random keys (uuid v4), so the suite can run in parallel on a shared Redis.
//! Window checks need to move the limiter's time by minutes or an hour; that is the explicit
//! [`RateLimiterFixture::with_advance`] capability. An adapter that cannot offer it runs
//! `rate_limiter_conformance!(factory, without_time_travel = "reason")`, which leaves those checks out and keeps
//! the reason in the adapter's test file.
// These are test assertions shipped as a library so adapter crates can run them: failing loudly is their job.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::rate_limit::{RateLimitDecision, RateLimitPolicy, RateLimiter};
use crate::{Ctx, RequestId, UuidV7Ids};
use std::sync::Arc;
use std::time::Duration;

const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);

/// Moves the limiter's notion of time forward.
pub type AdvanceTime = Arc<dyn Fn(Duration) + Send + Sync>;

/// What a rate-limiter factory hands to the checks: the adapter and its optional capabilities.
pub struct RateLimiterFixture {
    limiter: Arc<dyn RateLimiter>,
    advance: Option<AdvanceTime>,
}

impl std::fmt::Debug for RateLimiterFixture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiterFixture")
            .field("limiter", &self.limiter)
            .field("advance", &self.advance.is_some())
            .finish()
    }
}

impl RateLimiterFixture {
    /// A fixture without time travel.
    pub fn new(limiter: impl RateLimiter) -> Self {
        Self {
            limiter: Arc::new(limiter),
            advance: None,
        }
    }

    /// Adds the capability to move the limiter's clock forward by a duration, instantly.
    #[must_use]
    pub fn with_advance(mut self, advance: impl Fn(Duration) + Send + Sync + 'static) -> Self {
        self.advance = Some(Arc::new(advance));
        self
    }

    /// The adapter under test.
    pub fn limiter(&self) -> &Arc<dyn RateLimiter> {
        &self.limiter
    }

    fn advance(&self, by: Duration) {
        let advance = self.advance.as_ref().expect(
            "this check needs the time-travel capability; use `without_time_travel = \"reason\"` to leave it out",
        );
        advance(by);
    }
}

fn random_key() -> String {
    format!("conformance:{}", uuid::Uuid::new_v4())
}

fn ctx() -> Ctx {
    Ctx::system(RequestId::generate(&UuidV7Ids), "conformance:rate_limit", None)
}

async fn check(fx: &RateLimiterFixture, key: &str, policy: RateLimitPolicy) -> RateLimitDecision {
    fx.limiter.check(&ctx(), key, policy).await.unwrap()
}

/// Asserts the shape every denial must have and returns its `retry_after`.
fn assert_denied(decision: &RateLimitDecision, policy: RateLimitPolicy) -> Duration {
    assert!(!decision.allowed, "expected a denial, got {decision:?}");
    assert_eq!(decision.limit, policy.per_minute, "limit is the per-minute limit");
    assert_eq!(decision.remaining, 0, "remaining is 0 when denied");
    let retry = decision.retry_after.expect("a denial carries retry_after");
    assert!(
        !retry.is_zero() && retry <= HOUR,
        "retry_after must be in (0, 1h], got {retry:?}"
    );
    retry
}

fn assert_allowed(decision: &RateLimitDecision, policy: RateLimitPolicy) {
    assert!(decision.allowed, "expected an allowed request, got {decision:?}");
    assert_eq!(decision.limit, policy.per_minute, "limit is the per-minute limit");
    assert_eq!(
        decision.retry_after, None,
        "retry_after is set exactly when denied"
    );
}

/// A fresh key is allowed exactly `per_minute` requests in a burst; the next is denied with `retry_after`
/// of at most a minute (the hour window still has room).
pub async fn allows_exactly_per_minute_then_denies_with_retry_after(fx: &RateLimiterFixture) {
    let policy = RateLimitPolicy {
        per_minute: 5,
        per_hour: 100,
    };
    let key = random_key();
    for _ in 0..policy.per_minute {
        assert_allowed(&check(fx, &key, policy).await, policy);
    }
    for _ in 0..3 {
        let retry = assert_denied(&check(fx, &key, policy).await, policy);
        assert!(
            retry <= MINUTE,
            "only the minute window is exhausted, so retry_after <= 60s, got {retry:?}"
        );
    }
}

/// `remaining` counts down by one per allowed request to 0, and `reset_after` is within the minute.
pub async fn remaining_counts_down_to_zero(fx: &RateLimiterFixture) {
    let policy = RateLimitPolicy {
        per_minute: 10,
        per_hour: 1000,
    };
    let key = random_key();
    for used in 1..=policy.per_minute {
        let decision = check(fx, &key, policy).await;
        assert_allowed(&decision, policy);
        assert_eq!(
            decision.remaining,
            policy.per_minute - used,
            "after {used} requests"
        );
        assert!(
            !decision.reset_after.is_zero() && decision.reset_after <= MINUTE,
            "reset_after of an allowed request is within the minute, got {:?}",
            decision.reset_after
        );
    }
    assert_denied(&check(fx, &key, policy).await, policy);
}

/// `remaining` reports the tighter window: with fewer requests left in the hour than in the minute, it counts
/// the hour's.
pub async fn remaining_reports_the_tighter_window(fx: &RateLimiterFixture) {
    let policy = RateLimitPolicy {
        per_minute: 10,
        per_hour: 3,
    };
    let key = random_key();
    for left in (0..policy.per_hour).rev() {
        let decision = check(fx, &key, policy).await;
        assert_allowed(&decision, policy);
        assert_eq!(decision.remaining, left);
    }
    assert_denied(&check(fx, &key, policy).await, policy);
}

/// Traffic on one key never changes another key's decisions.
pub async fn keys_are_independent(fx: &RateLimiterFixture) {
    let policy = RateLimitPolicy {
        per_minute: 3,
        per_hour: 100,
    };
    let (busy, quiet) = (random_key(), random_key());
    for _ in 0..policy.per_minute {
        assert!(check(fx, &busy, policy).await.allowed);
    }
    assert_denied(&check(fx, &busy, policy).await, policy);

    let first = check(fx, &quiet, policy).await;
    assert_allowed(&first, policy);
    assert_eq!(
        first.remaining,
        policy.per_minute - 1,
        "the quiet key starts with its full budget"
    );
}

/// Concurrent checks of one key never allow more than `per_minute`, and deny none while budget remains.
pub async fn concurrent_checks_allow_exactly_the_limit(fx: &RateLimiterFixture) {
    const CALLERS: usize = 50;
    let policy = RateLimitPolicy {
        per_minute: 20,
        per_hour: 1000,
    };
    let key = random_key();
    let start = Arc::new(tokio::sync::Barrier::new(CALLERS));
    let mut tasks = Vec::with_capacity(CALLERS);
    for _ in 0..CALLERS {
        let (limiter, key, start) = (fx.limiter.clone(), key.clone(), start.clone());
        tasks.push(tokio::spawn(async move {
            start.wait().await;
            limiter.check(&ctx(), &key, policy).await.unwrap().allowed
        }));
    }
    let mut allowed = 0;
    for task in tasks {
        if task.await.unwrap() {
            allowed += 1;
        }
    }
    assert_eq!(
        allowed, policy.per_minute,
        "exactly per_minute of {CALLERS} concurrent requests pass"
    );
}

/// Denied requests are not counted: retrying after `retry_after` succeeds, and after a quiet minute the full
/// per-minute budget is back.
pub async fn minute_window_reopens_after_retry_after(fx: &RateLimiterFixture) {
    let policy = RateLimitPolicy {
        per_minute: 5,
        per_hour: 100,
    };
    let key = random_key();
    for _ in 0..policy.per_minute {
        assert!(check(fx, &key, policy).await.allowed);
    }
    let mut retry = Duration::ZERO;
    for _ in 0..10 {
        retry = assert_denied(&check(fx, &key, policy).await, policy);
    }
    fx.advance(retry);
    assert_allowed(&check(fx, &key, policy).await, policy);

    fx.advance(MINUTE);
    for _ in 0..policy.per_minute {
        assert_allowed(&check(fx, &key, policy).await, policy);
    }
    assert_denied(&check(fx, &key, policy).await, policy);
}

/// The hour window is enforced on its own: across minutes, at most `per_hour` requests pass, and the denial
/// waits for the hour window (longer than any minute window would need).
pub async fn hour_window_is_enforced_across_minutes(fx: &RateLimiterFixture) {
    let policy = RateLimitPolicy {
        per_minute: 5,
        per_hour: 7,
    };
    let key = random_key();
    for _ in 0..5 {
        assert!(check(fx, &key, policy).await.allowed);
    }
    fx.advance(MINUTE);
    for _ in 0..2 {
        assert_allowed(&check(fx, &key, policy).await, policy);
    }
    let retry = assert_denied(&check(fx, &key, policy).await, policy);
    assert!(retry > Duration::ZERO);

    fx.advance(retry);
    assert_allowed(&check(fx, &key, policy).await, policy);
}

/// Requests denied by the minute window do not use up the hour window.
pub async fn minute_denials_do_not_consume_hour_capacity(fx: &RateLimiterFixture) {
    let policy = RateLimitPolicy {
        per_minute: 5,
        per_hour: 7,
    };
    let key = random_key();
    for _ in 0..5 {
        assert!(check(fx, &key, policy).await.allowed);
    }
    for _ in 0..10 {
        assert_denied(&check(fx, &key, policy).await, policy);
    }
    fx.advance(MINUTE);
    for _ in 0..2 {
        assert_allowed(&check(fx, &key, policy).await, policy);
    }
    assert_denied(&check(fx, &key, policy).await, policy);
}

/// Requests denied by the hour window do not use up the minute window: just before the hour window reopens,
/// denied retries are hammered in; once it reopens, the minute window must still have room.
pub async fn hour_denials_do_not_consume_minute_capacity(fx: &RateLimiterFixture) {
    let policy = RateLimitPolicy {
        per_minute: 5,
        per_hour: 7,
    };
    let key = random_key();
    for _ in 0..5 {
        assert!(check(fx, &key, policy).await.allowed);
    }
    fx.advance(MINUTE);
    for _ in 0..2 {
        assert!(check(fx, &key, policy).await.allowed);
    }
    let retry = assert_denied(&check(fx, &key, policy).await, policy);

    // Land shortly before the hour window reopens: the minute window has room now (at least 3 of 5 left).
    let margin = (retry / 2).min(Duration::from_secs(1));
    fx.advance(retry - margin);
    for _ in 0..10 {
        assert_denied(&check(fx, &key, policy).await, policy);
    }
    fx.advance(margin);
    assert_allowed(&check(fx, &key, policy).await, policy);
}

/// Turns every check of this module into its own `#[tokio::test]`, given an expression that evaluates to a
/// future of a [`RateLimiterFixture`]. The expansion site needs `tokio` with `macros` and `rt-multi-thread`.
///
/// ```text
/// avb_core::rate_limiter_conformance!(async {
///     let (limiter, advance) = MemoryRateLimiter::with_manual_clock();
///     RateLimiterFixture::new(limiter).with_advance(advance)
/// });
/// // Without a way to move the adapter's clock, the window checks are left out, with the reason on record:
/// avb_core::rate_limiter_conformance!(async { RateLimiterFixture::new(RedisRateLimiter::connect().await) },
///     without_time_travel = "Redis evaluates windows with the server clock");
/// ```
#[macro_export]
macro_rules! rate_limiter_conformance {
    ($factory:expr) => {
        $crate::rate_limiter_conformance!(@untimed $factory);
        $crate::rate_limiter_conformance!(@checks $factory;
            minute_window_reopens_after_retry_after,
            hour_window_is_enforced_across_minutes,
            minute_denials_do_not_consume_hour_capacity,
            hour_denials_do_not_consume_minute_capacity,
        );
    };
    ($factory:expr, without_time_travel = $reason:literal) => {
        const _: &str = $reason;
        $crate::rate_limiter_conformance!(@untimed $factory);
    };
    (@untimed $factory:expr) => {
        $crate::rate_limiter_conformance!(@checks $factory;
            allows_exactly_per_minute_then_denies_with_retry_after,
            remaining_counts_down_to_zero,
            remaining_reports_the_tighter_window,
            keys_are_independent,
            concurrent_checks_allow_exactly_the_limit,
        );
    };
    (@checks $factory:expr; $($check:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let fixture: $crate::conformance::rate_limit::RateLimiterFixture = ($factory).await;
                $crate::conformance::rate_limit::$check(&fixture).await;
            }
        )+
    };
}
