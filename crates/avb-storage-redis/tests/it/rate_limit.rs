//! The shared rate-limiter suite against [`RedisRateLimiter`], plus replicas sharing counts and the failure
//! policies against an unreachable Redis.

use crate::common::{Scoped, fresh_store, keys_under, raw, store_at, system_ctx, unreachable_store};
use avb_core::conformance::rate_limit::RateLimiterFixture;
use avb_core::rate_limit::{RateLimitPolicy, RateLimiter};
use avb_core::{Clock, Error, ManualClock, SystemClock};
use avb_storage_redis::FailurePolicy;
use std::sync::Arc;
use std::time::{Duration, Instant};

// Windows on a manual clock (passed to the script instead of Redis `TIME`), so the checks can jump minutes and
// hours.
avb_core::rate_limiter_conformance!(async {
    let (store, prefix) = fresh_store().await;
    let clock = Arc::new(ManualClock::new(SystemClock.now()));
    let limiter = store.rate_limiter_builder().window_clock(clock.clone()).build();
    RateLimiterFixture::new(Scoped {
        inner: limiter,
        _prefix: prefix,
    })
    .with_advance(move |by| clock.advance(chrono::Duration::from_std(by).unwrap()))
});

/// The production configuration: Redis's own clock.
mod server_clock {
    use super::*;

    avb_core::rate_limiter_conformance!(
        async {
            let (store, prefix) = fresh_store().await;
            RateLimiterFixture::new(Scoped {
                inner: store.rate_limiter(),
                _prefix: prefix,
            })
        },
        without_time_travel = "Redis TIME cannot be moved; the manual-clock run covers the windows"
    );
}

fn policy(per_minute: u32, per_hour: u32) -> RateLimitPolicy {
    RateLimitPolicy { per_minute, per_hour }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_count_against_one_limit() {
    let (first, prefix) = fresh_store().await;
    let second = store_at(&prefix).await;
    let (a, b) = (first.rate_limiter(), second.rate_limiter());
    let limit = policy(10, 100);
    let ctx = system_ctx();

    let mut tasks = Vec::new();
    for i in 0..30 {
        let limiter = if i % 2 == 0 { a.clone() } else { b.clone() };
        let ctx = ctx.clone();
        tasks.push(tokio::spawn(async move {
            limiter.check(&ctx, "api_key:shared", limit).await.unwrap()
        }));
    }
    let mut allowed = 0;
    for task in tasks {
        if task.await.unwrap().allowed {
            allowed += 1;
        }
    }
    assert_eq!(
        allowed, 10,
        "30 requests spread over two replicas share one per-minute limit"
    );
    let denied = b.check(&ctx, "api_key:shared", limit).await.unwrap();
    assert!(!denied.allowed && denied.retry_after.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_is_one_hash_per_key_that_expires_when_the_windows_refill() {
    let (store, prefix) = fresh_store().await;
    let limiter = store.rate_limiter();
    limiter
        .check(&system_ctx(), "ip:10.0.0.1", policy(60, 1000))
        .await
        .unwrap();
    let key = format!("{}:rl:60-1000:ip:10.0.0.1", prefix.0);
    assert_eq!(keys_under(&prefix.0).await, vec![key.clone()]);
    let pttl: i64 = redis::cmd("PTTL")
        .arg(&key)
        .query_async(&mut raw().await)
        .await
        .unwrap();
    // One request of 60/min refills in 1 s, one of 1000/h in 3.6 s: the key lives until both have.
    assert!((1..=3_700).contains(&pttl), "pttl {pttl} ms");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_is_exact_on_the_server_clock() {
    let (store, _prefix) = fresh_store().await;
    let limiter = store.rate_limiter();
    // 600/min: one request refills every 100 ms.
    let limit = policy(600, 100_000);
    let ctx = system_ctx();
    let mut denied = None;
    for _ in 0..700 {
        let decision = limiter.check(&ctx, "user:burst", limit).await.unwrap();
        if !decision.allowed {
            denied = Some(decision);
            break;
        }
    }
    let retry = denied.expect("the burst is limited").retry_after.unwrap();
    assert!(retry <= Duration::from_millis(100), "{retry:?}");
    tokio::time::sleep(retry + Duration::from_millis(5)).await;
    assert!(limiter.check(&ctx, "user:burst", limit).await.unwrap().allowed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_failure_policies_follow_the_caller_class() {
    let (store, _prefix) = fresh_store().await;
    let limiter = store.rate_limiter();
    assert_eq!(limiter.failure_policy_for("ip:192.0.2.1"), FailurePolicy::Open);
    assert_eq!(limiter.failure_policy_for("user:42"), FailurePolicy::Open);
    assert_eq!(limiter.failure_policy_for("api_key:k1"), FailurePolicy::Closed);
    assert_eq!(limiter.failure_policy_for("webhook:x"), FailurePolicy::Closed);

    let custom = store
        .rate_limiter_builder()
        .failure_policy("api_key:internal:", FailurePolicy::Open)
        .fallback_failure_policy(FailurePolicy::Open)
        .build();
    assert_eq!(
        custom.failure_policy_for("api_key:internal:7"),
        FailurePolicy::Open,
        "longest prefix wins"
    );
    assert_eq!(custom.failure_policy_for("api_key:k1"), FailurePolicy::Closed);
    assert_eq!(custom.failure_policy_for("webhook:x"), FailurePolicy::Open);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_redis_fails_open_for_anonymous_and_closed_for_api_keys_in_bounded_time() {
    let limiter = unreachable_store().await.rate_limiter();
    let limit = RateLimitPolicy::DEFAULT;
    let ctx = system_ctx();

    for _ in 0..3 {
        let started = Instant::now();
        let open = limiter
            .check_detailed(&ctx, "ip:198.51.100.7", limit)
            .await
            .unwrap();
        assert!(open.failed_open);
        assert!(open.decision.allowed && open.decision.retry_after.is_none());
        assert_eq!(open.decision.remaining, limit.per_minute, "nothing was counted");
        assert_eq!(open.decision.reset_after, Duration::ZERO);

        let closed = limiter.check(&ctx, "api_key:abc", limit).await;
        match closed {
            Err(err @ Error::Unavailable { .. }) => {
                assert_eq!(
                    avb_core::HasCode::code(&err),
                    avb_core::ErrorCode::ServiceUnavailable
                );
            }
            other => panic!("an API key must fail closed, got {other:?}"),
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "both answers came within the decision timeout, took {:?}",
            started.elapsed()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_redis_is_cut_off_by_the_decision_timeout() {
    // A listener that accepts and never answers: the worst kind of outage for a limiter.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        loop {
            let (socket, _) = listener.accept().await.unwrap();
            held.push(socket);
        }
    });
    let store = avb_storage_redis::RedisStoreBuilder::new()
        .with_url(format!("redis://{addr}/0"))
        .connect_lazily(true)
        .build()
        .await
        .unwrap();
    let limiter = store
        .rate_limiter_builder()
        .decision_timeout(Duration::from_millis(100))
        .build();
    let started = Instant::now();
    let open = limiter
        .check_detailed(&system_ctx(), "ip:1", RateLimitPolicy::DEFAULT)
        .await
        .unwrap();
    assert!(open.failed_open);
    let closed = limiter
        .check(&system_ctx(), "api_key:1", RateLimitPolicy::DEFAULT)
        .await;
    assert!(matches!(closed, Err(Error::Unavailable { .. })), "{closed:?}");
    assert!(
        started.elapsed() < Duration::from_millis(600),
        "took {:?}",
        started.elapsed()
    );
    hold.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policies_outside_the_supported_range_are_rejected() {
    let (store, _prefix) = fresh_store().await;
    let limiter = store.rate_limiter();
    for bad in [policy(0, 10), policy(10, 0), policy(10, 2_000_000)] {
        let got = limiter.check(&system_ctx(), "ip:1", bad).await;
        assert!(matches!(got, Err(Error::Invalid(_))), "{bad:?}: {got:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_checks_of_one_key_share_round_trips_and_decide_as_if_one_by_one() {
    let (store, _prefix) = fresh_store().await;
    // A frozen clock: one call per request and one call per batch must then decide exactly alike.
    let clock = Arc::new(ManualClock::new(SystemClock.now()));
    let limiter = store.rate_limiter_builder().window_clock(clock.clone()).build();
    let limit = policy(20, 1_000);
    let ctx = system_ctx();

    let mut one_by_one = Vec::new();
    for _ in 0..64 {
        let d = limiter.check(&ctx, "api_key:sequential", limit).await.unwrap();
        one_by_one.push((d.allowed, d.remaining, d.reset_after, d.retry_after));
    }
    let calls_before = limiter.round_trips();
    assert_eq!(calls_before, 64, "alone, every check is one call");

    let mut tasks = Vec::new();
    for _ in 0..64 {
        let (limiter, ctx) = (limiter.clone(), ctx.clone());
        tasks.push(tokio::spawn(async move {
            limiter.check(&ctx, "api_key:concurrent", limit).await.unwrap()
        }));
    }
    let mut together = Vec::new();
    for task in tasks {
        let d = task.await.unwrap();
        together.push((d.allowed, d.remaining, d.reset_after, d.retry_after));
    }
    let calls = limiter.round_trips() - calls_before;
    assert!(calls < 64, "64 concurrent checks took {calls} calls");
    // The same decisions, in whatever order the tasks finished.
    one_by_one.sort_by_key(|d| format!("{d:?}"));
    together.sort_by_key(|d| format!("{d:?}"));
    assert_eq!(together, one_by_one);
    assert_eq!(together.iter().filter(|d| d.0).count(), 20);
}
