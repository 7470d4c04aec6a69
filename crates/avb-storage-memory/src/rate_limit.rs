//! In-memory [`RateLimiter`] (spec §10.2, `RATE_LIMIT_CONFIG` of §4) on `governor`'s keyed GCRA limiters.

use async_trait::async_trait;
use avb_core::rate_limit::{RateLimitDecision, RateLimitPolicy, RateLimiter};
use avb_core::{Ctx, Error, Result};
use governor::clock::Clock;
use governor::middleware::StateInformationMiddleware;
use governor::nanos::Nanos;
use governor::state::StateStore;
use governor::state::keyed::ShrinkableKeyedStateStore;
use governor::{NotUntil, Quota};
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// Stale keys are dropped after this many checks of a policy, so idle callers do not accumulate.
const HOUSEKEEPING_EVERY: u64 = 1024;

/// Process-local rate limits: per key, a per-minute and a per-hour GCRA window (governor's token bucket).
///
/// Each window lets a fresh key burst up to its limit and then refills evenly: `per_minute` requests refill over
/// a minute, `per_hour` over an hour. A request is allowed only if both windows have room, and only an allowed
/// request is counted, in both windows.
///
/// Counters live per policy, so a caller whose tier changes starts the new tier's windows afresh. Keys whose
/// windows have refilled completely are dropped every 1024 checks of a policy, so memory follows the callers
/// active within the last hour. Cloning shares the counters.
#[derive(Clone)]
pub struct MemoryRateLimiter {
    inner: Arc<Inner>,
}

struct Inner {
    clock: WindowClock,
    policies: Mutex<HashMap<RateLimitPolicy, Arc<PolicyWindows>>>,
}

/// The time source of the windows: the monotonic clock, or a hand-moved one for tests.
#[derive(Debug, Clone)]
enum WindowClock {
    /// tokio's clock, so tests on paused tokio time can drive it too.
    Monotonic {
        origin: tokio::time::Instant,
    },
    Manual(Arc<AtomicU64>),
}

impl Clock for WindowClock {
    type Instant = Nanos;

    fn now(&self) -> Nanos {
        match self {
            Self::Monotonic { origin } => {
                Nanos::new(u64::try_from(origin.elapsed().as_nanos()).unwrap_or(u64::MAX))
            }
            Self::Manual(now) => Nanos::new(now.load(Ordering::Acquire)),
        }
    }
}

/// governor's limiter over a state store this adapter can read and restore (see [`PolicyWindows::check`]).
type Limiter = governor::RateLimiter<String, TatStore, WindowClock, StateInformationMiddleware>;

/// Per key, the window's theoretical arrival time (GCRA's whole state), relative to the limiter's start.
#[derive(Debug, Clone, Default)]
struct TatStore(Arc<Mutex<HashMap<String, Nanos>>>);

impl TatStore {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Nanos>> {
        // A single insert or remove per critical section: the map is consistent even after a panic.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn get(&self, key: &str) -> Option<Nanos> {
        self.lock().get(key).copied()
    }

    fn restore(&self, key: &str, previous: Option<Nanos>) {
        let mut map = self.lock();
        match previous {
            Some(tat) => {
                map.insert(key.to_owned(), tat);
            }
            None => {
                map.remove(key);
            }
        }
    }
}

impl StateStore for TatStore {
    type Key = String;

    fn measure_and_replace<T, F, E>(&self, key: &String, f: F) -> std::result::Result<T, E>
    where
        F: Fn(Option<Nanos>) -> std::result::Result<(T, Nanos), E>,
    {
        let mut map = self.lock();
        let (outcome, tat) = f(map.get(key).copied())?;
        match map.get_mut(key) {
            Some(slot) => *slot = tat,
            None => {
                map.insert(key.clone(), tat);
            }
        }
        Ok(outcome)
    }
}

impl ShrinkableKeyedStateStore<String> for TatStore {
    fn retain_recent(&self, drop_below: Nanos) {
        self.lock().retain(|_, tat| *tat > drop_below);
    }

    fn shrink_to_fit(&self) {
        self.lock().shrink_to_fit();
    }

    fn len(&self) -> usize {
        self.lock().len()
    }

    fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }
}

/// One window (minute or hour) of one policy.
struct Window {
    limiter: Limiter,
    /// A handle on the limiter's state, for rollback and `reset_after`.
    tats: TatStore,
    /// The limiter's start: the stored arrival times count from here.
    start: Nanos,
}

impl Window {
    fn new(quota: Quota, clock: &WindowClock) -> Self {
        let tats = TatStore::default();
        // governor reads its own start on the next line; with the monotonic clock it is later than this reading
        // by the nanoseconds between the two calls, which `reset_after` may under-report by.
        let start = clock.now();
        let limiter: Limiter = governor::RateLimiter::new(quota, tats.clone(), clock.clone());
        Self { limiter, tats, start }
    }

    /// Time until this key's window is full again (0 for an unknown key).
    fn until_full(&self, key: &str, now: Nanos) -> Duration {
        self.tats.get(key).map_or(Duration::ZERO, |tat| {
            (self.start + tat).saturating_sub(now).into()
        })
    }
}

/// The two windows of one policy.
struct PolicyWindows {
    policy: RateLimitPolicy,
    minute: Window,
    hour: Window,
    /// Serialises checks of this policy (see [`PolicyWindows::check`]); counts checks for housekeeping.
    gate: Mutex<u64>,
}

impl PolicyWindows {
    fn new(policy: RateLimitPolicy, clock: &WindowClock) -> Result<Self> {
        let per_minute = NonZeroU32::new(policy.per_minute).ok_or_else(|| {
            Error::invalid(
                "per_minute",
                "range",
                "a rate limit must allow at least 1 request",
            )
        })?;
        let per_hour = NonZeroU32::new(policy.per_hour).ok_or_else(|| {
            Error::invalid("per_hour", "range", "a rate limit must allow at least 1 request")
        })?;
        Ok(Self {
            policy,
            minute: Window::new(Quota::per_minute(per_minute), clock),
            hour: Window::new(Quota::per_hour(per_hour), clock),
            gate: Mutex::new(0),
        })
    }

    /// Counts one request in both windows, or in neither.
    ///
    /// governor can only test-and-update a window, and either order of two updates can count a denied request:
    /// checking the minute first charges the minute window for a request the hour window then refuses, and the
    /// other order charges the hour window for a minute refusal. So both windows are checked, and when either
    /// refuses, the window that accepted is put back to the state read just before. The gate makes read, both
    /// updates and the restore one step for this policy, which makes this exact: no check of the key can observe
    /// or interleave with the half-counted state.
    fn check(&self, key: &str, clock: &WindowClock) -> RateLimitDecision {
        let mut checks = self.gate.lock().unwrap_or_else(PoisonError::into_inner);
        *checks += 1;
        if *checks >= HOUSEKEEPING_EVERY {
            *checks = 0;
            for window in [&self.minute, &self.hour] {
                window.limiter.retain_recent();
                window.limiter.shrink_to_fit();
            }
        }

        let key = key.to_owned();
        let before_minute = self.minute.tats.get(&key);
        let before_hour = self.hour.tats.get(&key);
        let minute = self.minute.limiter.check_key(&key);
        let hour = self.hour.limiter.check_key(&key);
        let now = clock.now();
        let wait = |denial: &NotUntil<Nanos>| denial.wait_time_from(now);

        let (remaining, retry_after) = match (minute, hour) {
            (Ok(minute), Ok(hour)) => (
                minute
                    .remaining_burst_capacity()
                    .min(hour.remaining_burst_capacity()),
                None,
            ),
            (Err(minute), Ok(_)) => {
                self.hour.tats.restore(&key, before_hour);
                (0, Some(wait(&minute)))
            }
            (Ok(_), Err(hour)) => {
                self.minute.tats.restore(&key, before_minute);
                (0, Some(wait(&hour)))
            }
            (Err(minute), Err(hour)) => (0, Some(wait(&minute).max(wait(&hour)))),
        };
        RateLimitDecision {
            allowed: retry_after.is_none(),
            limit: self.policy.per_minute,
            remaining,
            reset_after: self.minute.until_full(&key, now),
            retry_after,
        }
    }

    fn tracked_keys(&self) -> usize {
        self.minute.tats.len().max(self.hour.tats.len())
    }
}

impl MemoryRateLimiter {
    /// A limiter on the monotonic clock.
    pub fn new() -> Self {
        Self::with_clock(WindowClock::Monotonic {
            origin: tokio::time::Instant::now(),
        })
    }

    /// A limiter whose clock stands still until the returned function moves it forward: for tests of window
    /// resets that should not sleep for a minute or an hour.
    pub fn with_manual_clock() -> (Self, impl Fn(Duration) + Send + Sync + Clone + 'static) {
        let now = Arc::new(AtomicU64::new(0));
        let limiter = Self::with_clock(WindowClock::Manual(now.clone()));
        let advance = move |by: Duration| {
            let by = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
            // Saturates instead of wrapping: a clock 584 years on is as good as the end of time.
            let _ = now.fetch_update(Ordering::AcqRel, Ordering::Acquire, |t| {
                Some(t.saturating_add(by))
            });
        };
        (limiter, advance)
    }

    fn with_clock(clock: WindowClock) -> Self {
        Self {
            inner: Arc::new(Inner {
                clock,
                policies: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Number of keys with state under any policy (for metrics; shrinks at housekeeping).
    pub fn tracked_keys(&self) -> usize {
        self.policies()
            .values()
            .map(|windows| windows.tracked_keys())
            .sum()
    }

    fn policies(&self) -> MutexGuard<'_, HashMap<RateLimitPolicy, Arc<PolicyWindows>>> {
        // Only inserts happen under this lock: a poisoned map is still consistent.
        self.inner.policies.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn windows(&self, policy: RateLimitPolicy) -> Result<Arc<PolicyWindows>> {
        let mut policies = self.policies();
        if let Some(windows) = policies.get(&policy) {
            return Ok(windows.clone());
        }
        let windows = Arc::new(PolicyWindows::new(policy, &self.inner.clock)?);
        policies.insert(policy, windows.clone());
        Ok(windows)
    }
}

impl Default for MemoryRateLimiter {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for MemoryRateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let manual = matches!(self.inner.clock, WindowClock::Manual(_));
        f.debug_struct("MemoryRateLimiter")
            .field("policies", &self.policies().len())
            .field("manual_clock", &manual)
            .finish()
    }
}

#[async_trait]
impl RateLimiter for MemoryRateLimiter {
    async fn check(&self, _ctx: &Ctx, key: &str, policy: RateLimitPolicy) -> Result<RateLimitDecision> {
        Ok(self.windows(policy)?.check(key, &self.inner.clock))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use avb_core::{RequestId, SequentialIds};

    const MINUTE: Duration = Duration::from_secs(60);

    fn ctx() -> Ctx {
        Ctx::system(RequestId::generate(&SequentialIds::default()), "test", None)
    }

    fn minute_tat(limiter: &MemoryRateLimiter, policy: RateLimitPolicy, key: &str) -> Option<Nanos> {
        limiter
            .policies()
            .get(&policy)
            .and_then(|w| w.minute.tats.get(key))
    }

    fn hour_tat(limiter: &MemoryRateLimiter, policy: RateLimitPolicy, key: &str) -> Option<Nanos> {
        limiter.policies().get(&policy).and_then(|w| w.hour.tats.get(key))
    }

    #[tokio::test]
    async fn an_hour_denial_leaves_the_minute_window_exactly_as_it_was() {
        let (limiter, advance) = MemoryRateLimiter::with_manual_clock();
        let policy = RateLimitPolicy {
            per_minute: 5,
            per_hour: 7,
        };
        for _ in 0..5 {
            assert!(limiter.check(&ctx(), "k", policy).await.unwrap().allowed);
        }
        advance(MINUTE);
        for _ in 0..2 {
            assert!(limiter.check(&ctx(), "k", policy).await.unwrap().allowed);
        }
        let before = (minute_tat(&limiter, policy, "k"), hour_tat(&limiter, policy, "k"));
        for _ in 0..10 {
            assert!(!limiter.check(&ctx(), "k", policy).await.unwrap().allowed);
        }
        assert_eq!(
            (minute_tat(&limiter, policy, "k"), hour_tat(&limiter, policy, "k")),
            before
        );
    }

    #[tokio::test]
    async fn a_minute_denial_of_a_new_key_leaves_no_hour_state() {
        let (limiter, _advance) = MemoryRateLimiter::with_manual_clock();
        let policy = RateLimitPolicy {
            per_minute: 1,
            per_hour: 100,
        };
        assert!(limiter.check(&ctx(), "k", policy).await.unwrap().allowed);
        let hour_before = hour_tat(&limiter, policy, "k");
        assert!(!limiter.check(&ctx(), "k", policy).await.unwrap().allowed);
        assert_eq!(hour_tat(&limiter, policy, "k"), hour_before);
    }

    #[tokio::test]
    async fn decisions_report_gcra_timings() {
        let (limiter, advance) = MemoryRateLimiter::with_manual_clock();
        let policy = RateLimitPolicy {
            per_minute: 6,
            per_hour: 100,
        };
        let first = limiter.check(&ctx(), "k", policy).await.unwrap();
        // One of six used: the bucket is full again after one refill interval (10 s).
        assert_eq!(first.reset_after, Duration::from_secs(10));
        for _ in 1..6 {
            limiter.check(&ctx(), "k", policy).await.unwrap();
        }
        let denied = limiter.check(&ctx(), "k", policy).await.unwrap();
        assert_eq!(
            denied.retry_after,
            Some(Duration::from_secs(10)),
            "one request refills every 10 s"
        );
        assert_eq!(denied.reset_after, MINUTE);
        advance(Duration::from_secs(4));
        let later = limiter.check(&ctx(), "k", policy).await.unwrap();
        assert_eq!(later.retry_after, Some(Duration::from_secs(6)));
    }

    #[tokio::test]
    async fn a_policy_allowing_nothing_is_rejected() {
        let limiter = MemoryRateLimiter::new();
        for policy in [
            RateLimitPolicy {
                per_minute: 0,
                per_hour: 10,
            },
            RateLimitPolicy {
                per_minute: 10,
                per_hour: 0,
            },
        ] {
            let got = limiter.check(&ctx(), "k", policy).await;
            assert!(matches!(got, Err(Error::Invalid(_))), "got {got:?}");
        }
    }

    #[tokio::test]
    async fn policies_count_separately() {
        let (limiter, _advance) = MemoryRateLimiter::with_manual_clock();
        let strict = RateLimitPolicy {
            per_minute: 1,
            per_hour: 10,
        };
        assert!(limiter.check(&ctx(), "k", strict).await.unwrap().allowed);
        assert!(!limiter.check(&ctx(), "k", strict).await.unwrap().allowed);
        assert!(
            limiter
                .check(&ctx(), "k", RateLimitPolicy::ADMIN)
                .await
                .unwrap()
                .allowed
        );
    }

    #[tokio::test]
    async fn idle_keys_are_dropped_by_housekeeping() {
        let (limiter, advance) = MemoryRateLimiter::with_manual_clock();
        let policy = RateLimitPolicy::DEFAULT;
        for i in 0..3_000 {
            limiter.check(&ctx(), &format!("ip:{i}"), policy).await.unwrap();
        }
        assert_eq!(limiter.tracked_keys(), 3_000);

        advance(Duration::from_secs(2 * 3600));
        for _ in 0..HOUSEKEEPING_EVERY {
            limiter.check(&ctx(), "ip:busy", policy).await.unwrap();
            advance(Duration::from_secs(1));
        }
        assert_eq!(
            limiter.tracked_keys(),
            1,
            "only the key active within the hour is kept"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_monotonic_clock_follows_paused_tokio_time() {
        let limiter = MemoryRateLimiter::new();
        let policy = RateLimitPolicy {
            per_minute: 2,
            per_hour: 100,
        };
        for _ in 0..2 {
            assert!(limiter.check(&ctx(), "k", policy).await.unwrap().allowed);
        }
        let denied = limiter.check(&ctx(), "k", policy).await.unwrap();
        let retry = denied.retry_after.unwrap();
        tokio::time::advance(retry).await;
        assert!(limiter.check(&ctx(), "k", policy).await.unwrap().allowed);
    }

    #[tokio::test]
    async fn clones_share_counters() {
        let limiter = MemoryRateLimiter::new();
        let clone = limiter.clone();
        let policy = RateLimitPolicy {
            per_minute: 1,
            per_hour: 10,
        };
        assert!(limiter.check(&ctx(), "k", policy).await.unwrap().allowed);
        assert!(!clone.check(&ctx(), "k", policy).await.unwrap().allowed);
    }
}
