//! Conformance checks for [`Cache`] adapters: one check per point of the port's `# Contract`.
//!
//! Every check writes under a fresh random tenant (uuid v4), so the suite can run in parallel against a shared
//! Redis that already holds other data. TTL checks sleep on the real clock for a fraction of a second, so they hold
//! for a server-side TTL as well as for an in-process one.
// These are test assertions shipped as a library so adapter crates can run them: failing loudly is their job.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::cache::{Cache, CacheKey, Compute};
use crate::{Ctx, Error, RequestId, TenantId, UuidV7Ids};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::time::Instant;

/// Long enough that no check outlives it.
const LONG_TTL: Duration = Duration::from_secs(3600);
/// Short enough that a check can wait for it to pass.
const SHORT_TTL: Duration = Duration::from_millis(300);

fn random_tenant() -> TenantId {
    TenantId(uuid::Uuid::new_v4())
}

fn ctx_for(tenant: TenantId) -> Ctx {
    Ctx::system(RequestId::generate(&UuidV7Ids), "conformance:cache", Some(tenant))
}

fn compute_counting(calls: Arc<AtomicUsize>, delay: Duration, value: &'static [u8]) -> Compute<'static> {
    Box::pin(async move {
        calls.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(delay).await;
        Ok(value.to_vec())
    })
}

/// `get` after `set` returns the value until its TTL passes, then `None`.
pub async fn set_value_is_returned_until_ttl_passes(cache: Arc<dyn Cache>) {
    let tenant = random_tenant();
    let ctx = ctx_for(tenant);
    let short = CacheKey::tenant(tenant, &["short"]);
    let long = CacheKey::tenant(tenant, &["long"]);

    let written = Instant::now();
    cache.set(&ctx, &short, b"s".to_vec(), SHORT_TTL).await.unwrap();
    cache.set(&ctx, &long, b"l".to_vec(), LONG_TTL).await.unwrap();
    let read = cache.get(&ctx, &short).await.unwrap();
    // Only a reader that is provably inside the TTL must see the value (a stalled test machine is not a bug).
    if written.elapsed() < SHORT_TTL {
        assert_eq!(read, Some(b"s".to_vec()), "a fresh entry must be readable");
    }

    tokio::time::sleep(SHORT_TTL * 2).await;
    assert_eq!(
        cache.get(&ctx, &short).await.unwrap(),
        None,
        "an entry past its TTL must read as absent"
    );
    assert_eq!(
        cache.get(&ctx, &long).await.unwrap(),
        Some(b"l".to_vec()),
        "a live entry must survive"
    );
}

/// A second `set` replaces both the value and the TTL.
pub async fn set_overwrites_value_and_ttl(cache: Arc<dyn Cache>) {
    let tenant = random_tenant();
    let ctx = ctx_for(tenant);
    let key = CacheKey::tenant(tenant, &["overwrite"]);

    cache.set(&ctx, &key, b"first".to_vec(), SHORT_TTL).await.unwrap();
    cache.set(&ctx, &key, b"second".to_vec(), LONG_TTL).await.unwrap();
    assert_eq!(cache.get(&ctx, &key).await.unwrap(), Some(b"second".to_vec()));
    tokio::time::sleep(SHORT_TTL * 2).await;
    assert_eq!(
        cache.get(&ctx, &key).await.unwrap(),
        Some(b"second".to_vec()),
        "the second set's longer TTL must replace the first one's"
    );
}

/// Keys never written read as absent, and deleting them removes nothing.
pub async fn missing_keys_read_as_absent(cache: Arc<dyn Cache>) {
    let tenant = random_tenant();
    let ctx = ctx_for(tenant);
    let key = CacheKey::tenant(tenant, &["never", "written"]);

    assert_eq!(cache.get(&ctx, &key).await.unwrap(), None);
    assert!(!cache.delete(&ctx, &key).await.unwrap());
    assert_eq!(
        cache
            .delete_prefix(&ctx, &CacheKey::tenant(tenant, &[]))
            .await
            .unwrap(),
        0
    );
}

/// `delete` returns whether a live entry was removed: true once, then false; false for an expired entry.
pub async fn delete_reports_whether_a_live_entry_was_removed(cache: Arc<dyn Cache>) {
    let tenant = random_tenant();
    let ctx = ctx_for(tenant);
    let live = CacheKey::tenant(tenant, &["live"]);
    let expiring = CacheKey::tenant(tenant, &["expiring"]);

    cache.set(&ctx, &live, b"v".to_vec(), LONG_TTL).await.unwrap();
    cache
        .set(&ctx, &expiring, b"v".to_vec(), SHORT_TTL)
        .await
        .unwrap();
    assert!(
        cache.delete(&ctx, &live).await.unwrap(),
        "deleting a live entry reports true"
    );
    assert_eq!(
        cache.get(&ctx, &live).await.unwrap(),
        None,
        "a deleted entry is gone"
    );
    assert!(
        !cache.delete(&ctx, &live).await.unwrap(),
        "deleting it again reports false"
    );

    tokio::time::sleep(SHORT_TTL * 2).await;
    assert!(
        !cache.delete(&ctx, &expiring).await.unwrap(),
        "an expired entry is not live"
    );
}

/// `delete_prefix(p)` removes every key starting with `p` and no other, and counts what it removed.
pub async fn delete_prefix_removes_exactly_the_matching_keys(cache: Arc<dyn Cache>) {
    let tenant = random_tenant();
    let ctx = ctx_for(tenant);
    let matching = [
        CacheKey::tenant(tenant, &["authz", "user", "1"]),
        CacheKey::tenant(tenant, &["authz", "user", "2"]),
        CacheKey::tenant(tenant, &["authz", "key", "3"]),
    ];
    let others = [
        CacheKey::tenant(tenant, &["theme"]),
        CacheKey::tenant(tenant, &["auth"]),
    ];
    for key in matching.iter().chain(&others) {
        cache
            .set(&ctx, key, key.as_str().as_bytes().to_vec(), LONG_TTL)
            .await
            .unwrap();
    }

    let removed = cache
        .delete_prefix(&ctx, &CacheKey::tenant(tenant, &["authz"]))
        .await
        .unwrap();
    assert_eq!(removed, 3, "every key under the prefix is counted once");
    for key in &matching {
        assert_eq!(
            cache.get(&ctx, key).await.unwrap(),
            None,
            "{} must be removed",
            key.as_str()
        );
    }
    for key in &others {
        assert_eq!(
            cache.get(&ctx, key).await.unwrap(),
            Some(key.as_str().as_bytes().to_vec()),
            "{} does not start with the prefix and must survive",
            key.as_str()
        );
    }
    let again = cache
        .delete_prefix(&ctx, &CacheKey::tenant(tenant, &["authz"]))
        .await
        .unwrap();
    assert_eq!(again, 0, "a second prefix delete finds nothing");
}

/// Invalidating a whole tenant by prefix leaves other tenants' and platform keys untouched.
pub async fn tenant_prefix_delete_leaves_other_tenants_untouched(cache: Arc<dyn Cache>) {
    let (a, b) = (random_tenant(), random_tenant());
    let (ctx_a, ctx_b) = (ctx_for(a), ctx_for(b));
    let a_keys = [
        CacheKey::tenant(a, &["settings"]),
        CacheKey::tenant(a, &["authz", "x"]),
    ];
    let b_keys = [
        CacheKey::tenant(b, &["settings"]),
        CacheKey::tenant(b, &["authz", "x"]),
    ];
    // A platform key that mentions tenant A's id must not be mistaken for one of A's keys.
    let global = CacheKey::global(&["tenant-status", &a.to_string()]);
    for key in &a_keys {
        cache.set(&ctx_a, key, b"a".to_vec(), LONG_TTL).await.unwrap();
    }
    for key in &b_keys {
        cache.set(&ctx_b, key, b"b".to_vec(), LONG_TTL).await.unwrap();
    }
    cache.set(&ctx_a, &global, b"g".to_vec(), LONG_TTL).await.unwrap();

    let removed = cache
        .delete_prefix(&ctx_a, &CacheKey::tenant(a, &[]))
        .await
        .unwrap();
    assert_eq!(removed, 2);
    for key in &a_keys {
        assert_eq!(cache.get(&ctx_a, key).await.unwrap(), None);
    }
    for key in &b_keys {
        assert_eq!(
            cache.get(&ctx_b, key).await.unwrap(),
            Some(b"b".to_vec()),
            "tenant B's keys must survive"
        );
    }
    assert_eq!(
        cache.get(&ctx_a, &global).await.unwrap(),
        Some(b"g".to_vec()),
        "platform keys must survive"
    );
}

/// `get_or_set` runs `compute` once among 50 concurrent callers; every caller receives its value.
pub async fn get_or_set_computes_once_under_concurrent_callers(cache: Arc<dyn Cache>) {
    const CALLERS: usize = 50;
    let tenant = random_tenant();
    let ctx = ctx_for(tenant);
    let key = CacheKey::tenant(tenant, &["single-flight"]);
    let calls = Arc::new(AtomicUsize::new(0));
    let start = Arc::new(tokio::sync::Barrier::new(CALLERS));

    let mut tasks = Vec::with_capacity(CALLERS);
    for _ in 0..CALLERS {
        let (cache, ctx, key, calls, start) = (
            cache.clone(),
            ctx.clone(),
            key.clone(),
            calls.clone(),
            start.clone(),
        );
        tasks.push(tokio::spawn(async move {
            start.wait().await;
            let compute = compute_counting(calls, Duration::from_millis(200), b"computed");
            cache.get_or_set(&ctx, &key, LONG_TTL, compute).await
        }));
    }
    for task in tasks {
        assert_eq!(
            task.await.unwrap().unwrap(),
            b"computed".to_vec(),
            "every caller receives the value"
        );
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1, "compute must run exactly once");
    assert_eq!(
        cache.get(&ctx, &key).await.unwrap(),
        Some(b"computed".to_vec()),
        "the value is stored"
    );
}

/// A live entry is returned without running `compute`.
pub async fn get_or_set_returns_a_live_entry_without_computing(cache: Arc<dyn Cache>) {
    let tenant = random_tenant();
    let ctx = ctx_for(tenant);
    let key = CacheKey::tenant(tenant, &["present"]);
    cache.set(&ctx, &key, b"stored".to_vec(), LONG_TTL).await.unwrap();

    let calls = Arc::new(AtomicUsize::new(0));
    let got = cache
        .get_or_set(
            &ctx,
            &key,
            LONG_TTL,
            compute_counting(calls.clone(), Duration::ZERO, b"fresh"),
        )
        .await
        .unwrap();
    assert_eq!(got, b"stored".to_vec());
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

/// A computed value is stored with the given TTL and recomputed once that passes.
pub async fn get_or_set_value_expires_with_its_ttl(cache: Arc<dyn Cache>) {
    let tenant = random_tenant();
    let ctx = ctx_for(tenant);
    let key = CacheKey::tenant(tenant, &["computed-ttl"]);
    let calls = Arc::new(AtomicUsize::new(0));

    let first = cache
        .get_or_set(
            &ctx,
            &key,
            SHORT_TTL,
            compute_counting(calls.clone(), Duration::ZERO, b"one"),
        )
        .await
        .unwrap();
    assert_eq!(first, b"one".to_vec());
    tokio::time::sleep(SHORT_TTL * 2).await;
    assert_eq!(
        cache.get(&ctx, &key).await.unwrap(),
        None,
        "the computed entry expires with its TTL"
    );
    let second = cache
        .get_or_set(
            &ctx,
            &key,
            LONG_TTL,
            compute_counting(calls.clone(), Duration::ZERO, b"two"),
        )
        .await
        .unwrap();
    assert_eq!(second, b"two".to_vec(), "an expired entry is recomputed");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

/// A failed computation stores nothing, reaches every waiter as an error, and a later call computes again.
pub async fn failed_get_or_set_stores_nothing_and_fails_every_waiter(cache: Arc<dyn Cache>) {
    const CALLERS: usize = 10;
    let tenant = random_tenant();
    let ctx = ctx_for(tenant);
    let key = CacheKey::tenant(tenant, &["failing"]);
    let calls = Arc::new(AtomicUsize::new(0));
    let start = Arc::new(tokio::sync::Barrier::new(CALLERS));

    let mut tasks = Vec::with_capacity(CALLERS);
    for _ in 0..CALLERS {
        let (cache, ctx, key, calls, start) = (
            cache.clone(),
            ctx.clone(),
            key.clone(),
            calls.clone(),
            start.clone(),
        );
        tasks.push(tokio::spawn(async move {
            start.wait().await;
            let compute: Compute<'static> = Box::pin(async move {
                calls.fetch_add(1, Ordering::SeqCst);
                // Long enough that every caller has joined the flight before it fails.
                tokio::time::sleep(Duration::from_millis(500)).await;
                Err(Error::not_found("voice_config", "conformance"))
            });
            cache.get_or_set(&ctx, &key, LONG_TTL, compute).await
        }));
    }
    for task in tasks {
        let outcome = task.await.unwrap();
        assert!(
            outcome.is_err(),
            "every caller that waited on the failed computation gets an error"
        );
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "waiters must not run their own compute"
    );
    assert_eq!(
        cache.get(&ctx, &key).await.unwrap(),
        None,
        "a failed computation stores nothing"
    );

    let retried = cache
        .get_or_set(
            &ctx,
            &key,
            LONG_TTL,
            compute_counting(calls.clone(), Duration::ZERO, b"ok"),
        )
        .await
        .unwrap();
    assert_eq!(retried, b"ok".to_vec(), "a later call computes again");
}

/// Single flight is per key: a computation of one key does not hold up another key's.
pub async fn get_or_set_of_different_keys_runs_concurrently(cache: Arc<dyn Cache>) {
    let tenant = random_tenant();
    let ctx = ctx_for(tenant);
    let (key_a, key_b) = (CacheKey::tenant(tenant, &["a"]), CacheKey::tenant(tenant, &["b"]));
    let (b_started_tx, b_started_rx) = tokio::sync::oneshot::channel::<()>();

    // A's computation can only finish once B's has started: a cache that serialised all computations would
    // deadlock here and hit the timeout.
    let compute_a: Compute<'_> = Box::pin(async move {
        b_started_rx
            .await
            .map_err(|_| Error::Internal("b never started".into()))?;
        Ok(b"a".to_vec())
    });
    let compute_b: Compute<'_> = Box::pin(async move {
        let _ = b_started_tx.send(());
        Ok(b"b".to_vec())
    });
    let both = async {
        tokio::join!(
            cache.get_or_set(&ctx, &key_a, LONG_TTL, compute_a),
            cache.get_or_set(&ctx, &key_b, LONG_TTL, compute_b),
        )
    };
    let (a, b) = tokio::time::timeout(Duration::from_secs(5), both)
        .await
        .expect("computations of different keys must not wait for each other");
    assert_eq!(a.unwrap(), b"a".to_vec());
    assert_eq!(b.unwrap(), b"b".to_vec());
}

/// Turns every check of this module into its own `#[tokio::test]`, given an expression that evaluates to a
/// future of a fresh adapter (any `T: Cache`). The expansion site needs `tokio` with `macros` and
/// `rt-multi-thread`.
///
/// ```text
/// avb_core::cache_conformance!(async { MemoryCache::new() });
/// ```
#[macro_export]
macro_rules! cache_conformance {
    ($factory:expr) => {
        $crate::cache_conformance!(@checks $factory;
            set_value_is_returned_until_ttl_passes,
            set_overwrites_value_and_ttl,
            missing_keys_read_as_absent,
            delete_reports_whether_a_live_entry_was_removed,
            delete_prefix_removes_exactly_the_matching_keys,
            tenant_prefix_delete_leaves_other_tenants_untouched,
            get_or_set_computes_once_under_concurrent_callers,
            get_or_set_returns_a_live_entry_without_computing,
            get_or_set_value_expires_with_its_ttl,
            failed_get_or_set_stores_nothing_and_fails_every_waiter,
            get_or_set_of_different_keys_runs_concurrently,
        );
    };
    (@checks $factory:expr; $($check:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let cache: ::std::sync::Arc<dyn $crate::cache::Cache> = ::std::sync::Arc::new(($factory).await);
                $crate::conformance::cache::$check(cache).await;
            }
        )+
    };
}
