//! The shared cache suite against [`RedisCache`], plus what only a shared Redis can show: glob-safe prefix
//! invalidation and single flight across processes.

use crate::common::{Scoped, fresh_store, keys_under, raw, store_at, unreachable_store};
use avb_core::cache::{Cache, CacheKey, Compute};
use avb_core::{Ctx, Error, RequestId, TenantId, UuidV7Ids};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

avb_core::cache_conformance!(async {
    let (store, prefix) = fresh_store().await;
    Scoped {
        inner: store.cache(),
        _prefix: prefix,
    }
});

const HOUR: Duration = Duration::from_secs(3600);

fn tenant_ctx() -> (TenantId, Ctx) {
    let tenant = TenantId(uuid::Uuid::new_v4());
    (
        tenant,
        Ctx::system(RequestId::generate(&UuidV7Ids), "it:cache", Some(tenant)),
    )
}

fn counting(
    calls: &Arc<AtomicUsize>,
    delay: Duration,
    outcome: std::result::Result<&'static [u8], ()>,
) -> Compute<'static> {
    let calls = calls.clone();
    Box::pin(async move {
        calls.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(delay).await;
        outcome
            .map(<[u8]>::to_vec)
            .map_err(|()| Error::not_found("voice_config", "it"))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_live_under_the_tenant_prefix_with_a_server_ttl() {
    let (store, prefix) = fresh_store().await;
    let cache = store.cache();
    let (tenant, ctx) = tenant_ctx();
    let key = CacheKey::tenant(tenant, &["settings"]);
    cache
        .set(&ctx, &key, b"v".to_vec(), Duration::from_secs(30))
        .await
        .unwrap();

    let redis_key = format!("{}:t:{tenant}:settings", prefix.0);
    assert_eq!(keys_under(&prefix.0).await, vec![redis_key.clone()]);
    let pttl: i64 = redis::cmd("PTTL")
        .arg(&redis_key)
        .query_async(&mut raw().await)
        .await
        .unwrap();
    assert!(
        (1..=30_000).contains(&pttl),
        "the TTL is kept by Redis, got {pttl} ms"
    );

    cache
        .set(&ctx, &key, b"gone".to_vec(), Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(
        cache.get(&ctx, &key).await.unwrap(),
        None,
        "a zero TTL stores nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_prefix_treats_glob_metacharacters_literally() {
    let (store, _prefix) = fresh_store().await;
    let cache = store.cache();
    let (tenant, ctx) = tenant_ctx();
    let key = |parts: &[&str]| CacheKey::tenant(tenant, parts);
    // Under the literal prefixes `a*`, `q?`, `[ab]` and `back\`.
    let doomed = [
        key(&["a*"]),
        key(&["a*", "x"]),
        key(&["q?", "1"]),
        key(&["[ab]", "1"]),
        key(&["back\\", "1"]),
    ];
    // What the same text would match as a glob, but does not start with it.
    let spared = [
        key(&["abc"]),
        key(&["a", "x"]),
        key(&["qx", "1"]),
        key(&["a", "1"]),
        key(&["b", "1"]),
        key(&["back", "1"]),
    ];
    for k in doomed.iter().chain(&spared) {
        cache.set(&ctx, k, b"v".to_vec(), HOUR).await.unwrap();
    }

    let mut removed = 0;
    for literal in ["a*", "q?", "[ab]", "back\\"] {
        removed += cache.delete_prefix(&ctx, &key(&[literal])).await.unwrap();
    }
    assert_eq!(removed, doomed.len() as u64);
    for k in &doomed {
        assert_eq!(
            cache.get(&ctx, k).await.unwrap(),
            None,
            "{} must be removed",
            k.as_str()
        );
    }
    for k in &spared {
        assert!(
            cache.get(&ctx, k).await.unwrap().is_some(),
            "{} only matches the prefix as a glob and must survive",
            k.as_str()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_prefix_walks_more_keys_than_one_scan_step() {
    let (store, _prefix) = fresh_store().await;
    let cache = store.cache();
    let (tenant, ctx) = tenant_ctx();
    for i in 0..1_200 {
        cache
            .set(
                &ctx,
                &CacheKey::tenant(tenant, &["bulk", &i.to_string()]),
                b"v".to_vec(),
                HOUR,
            )
            .await
            .unwrap();
    }
    cache
        .set(&ctx, &CacheKey::tenant(tenant, &["keep"]), b"v".to_vec(), HOUR)
        .await
        .unwrap();
    let removed = cache
        .delete_prefix(&ctx, &CacheKey::tenant(tenant, &["bulk"]))
        .await
        .unwrap();
    assert_eq!(removed, 1_200);
    assert!(
        cache
            .get(&ctx, &CacheKey::tenant(tenant, &["keep"]))
            .await
            .unwrap()
            .is_some()
    );
}

/// Two stores are two processes: each has its own connection and its own in-process flights.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_or_set_computes_once_across_processes() {
    let (first, prefix) = fresh_store().await;
    let second = store_at(&prefix).await;
    let caches = [first.cache(), second.cache()];
    let (tenant, ctx) = tenant_ctx();
    let key = CacheKey::tenant(tenant, &["shared"]);
    let calls = Arc::new(AtomicUsize::new(0));
    let start = Arc::new(tokio::sync::Barrier::new(20));

    let mut tasks = Vec::new();
    for i in 0..20 {
        let (cache, ctx, key, calls, start) = (
            caches[i % 2].clone(),
            ctx.clone(),
            key.clone(),
            calls.clone(),
            start.clone(),
        );
        tasks.push(tokio::spawn(async move {
            start.wait().await;
            let compute = counting(&calls, Duration::from_millis(300), Ok(b"computed"));
            cache.get_or_set(&ctx, &key, HOUR, compute).await
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap(), b"computed".to_vec());
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "one computation across both processes"
    );
    assert!(
        keys_under(&prefix.0).await.iter().all(|k| !k.contains(":lock:")),
        "the lock is released"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_computation_fails_the_waiters_of_other_processes() {
    let (first, prefix) = fresh_store().await;
    let second = store_at(&prefix).await;
    let (a, b) = (first.cache(), second.cache());
    let (tenant, ctx) = tenant_ctx();
    let key = CacheKey::tenant(tenant, &["failing"]);
    let calls = Arc::new(AtomicUsize::new(0));

    let leader = {
        let (a, ctx, key) = (a.clone(), ctx.clone(), key.clone());
        let compute = counting(&calls, Duration::from_millis(400), Err(()));
        tokio::spawn(async move { a.get_or_set(&ctx, &key, HOUR, compute).await })
    };
    // Let A take the lock before B asks.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let waiter = b
        .get_or_set(&ctx, &key, HOUR, counting(&calls, Duration::ZERO, Ok(b"late")))
        .await;
    assert!(
        matches!(leader.await.unwrap(), Err(Error::NotFound { .. })),
        "the leader gets its own error"
    );
    assert!(
        matches!(waiter, Err(Error::Unavailable { .. })),
        "the waiter fails too: {waiter:?}"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1, "the waiter did not compute");
    assert_eq!(b.get(&ctx, &key).await.unwrap(), None, "nothing was stored");

    let retried = b
        .get_or_set(&ctx, &key, HOUR, counting(&calls, Duration::ZERO, Ok(b"ok")))
        .await
        .unwrap();
    assert_eq!(retried, b"ok".to_vec(), "a later call computes again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_holders_lock_is_taken_over_once_it_expires() {
    let (store, prefix) = fresh_store().await;
    let cache = store
        .cache()
        .with_waits(Duration::from_millis(400), Duration::from_secs(5));
    let (tenant, ctx) = tenant_ctx();
    let key = CacheKey::tenant(tenant, &["orphaned"]);
    // A process that took the lock and died: nobody renews it.
    let lock = format!("{}:lock:{}", prefix.0, key.as_str());
    let _: () = redis::cmd("SET")
        .arg(&lock)
        .arg("dead-process")
        .arg("PX")
        .arg(400)
        .query_async(&mut raw().await)
        .await
        .unwrap();

    let calls = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let value = cache
        .get_or_set(
            &ctx,
            &key,
            HOUR,
            counting(&calls, Duration::ZERO, Ok(b"recovered")),
        )
        .await
        .unwrap();
    assert_eq!(value, b"recovered".to_vec());
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "the waiter respected the live lock first (took {:?})",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waits_for_another_process_are_bounded() {
    let (store, prefix) = fresh_store().await;
    let cache = store
        .cache()
        .with_waits(Duration::from_secs(5), Duration::from_millis(300));
    let (tenant, ctx) = tenant_ctx();
    let key = CacheKey::tenant(tenant, &["stuck"]);
    let lock = format!("{}:lock:{}", prefix.0, key.as_str());
    let _: () = redis::cmd("SET")
        .arg(&lock)
        .arg("slow-process")
        .arg("PX")
        .arg(10_000)
        .query_async(&mut raw().await)
        .await
        .unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let got = cache
        .get_or_set(&ctx, &key, HOUR, counting(&calls, Duration::ZERO, Ok(b"x")))
        .await;
    assert!(matches!(got, Err(Error::Unavailable { .. })), "{got:?}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "gave up after {:?}",
        started.elapsed()
    );
    assert_eq!(
        calls.load(Ordering::SeqCst),
        0,
        "a live lock is never computed around"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_redis_is_unavailable_but_get_or_set_still_computes() {
    let cache = unreachable_store().await.cache();
    let (tenant, ctx) = tenant_ctx();
    let key = CacheKey::tenant(tenant, &["x"]);
    let started = Instant::now();
    assert!(matches!(
        cache.get(&ctx, &key).await,
        Err(Error::Unavailable { .. })
    ));
    assert!(matches!(
        cache.set(&ctx, &key, b"v".to_vec(), HOUR).await,
        Err(Error::Unavailable { .. })
    ));
    assert!(matches!(
        cache.delete_prefix(&ctx, &key).await,
        Err(Error::Unavailable { .. })
    ));

    let calls = Arc::new(AtomicUsize::new(0));
    let value = cache
        .get_or_set(&ctx, &key, HOUR, counting(&calls, Duration::ZERO, Ok(b"fresh")))
        .await
        .unwrap();
    assert_eq!(value, b"fresh".to_vec(), "reads survive a cache outage");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
}
