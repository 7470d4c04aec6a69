//! [`RedisCache`]: the cache port (spec §10.1) on Redis strings with server-side TTLs.

use crate::link::{Link, escape_glob};
use async_trait::async_trait;
use avb_core::cache::{Cache, CacheKey, Compute};
use avb_core::{Ctx, Error, Result};
use redis::Script;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// Keys examined per `SCAN` step of a prefix delete (a hint to Redis, not a bound on matches).
const SCAN_COUNT: usize = 500;
/// How long a get-or-set lock lives without renewal: a crashed holder blocks others at most this long.
const DEFAULT_LOCK_TTL: Duration = Duration::from_secs(5);
/// How long a caller waits for another process's computation before giving up with `unavailable`.
const DEFAULT_MAX_WAIT: Duration = Duration::from_secs(10);
/// First and longest pause between two looks at a lock held by another process.
const POLL_START: Duration = Duration::from_millis(5);
const POLL_MAX: Duration = Duration::from_millis(100);
/// How long the "this computation failed" marker outlives the lock, so every waiter polling it sees it.
const FAIL_MARKER_TTL: Duration = Duration::from_secs(60);

/// Stores the computed value and releases the lock in one step, so no waiter can see the lock gone and the
/// value absent. KEYS: entry, lock. ARGV: value, ttl ms, token.
const STORE_AND_RELEASE: &str = r#"
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
if redis.call('GET', KEYS[2]) == ARGV[3] then redis.call('DEL', KEYS[2]) end
return 1
"#;

/// Releases the lock and leaves a marker that the computation failed. KEYS: lock, marker. ARGV: token, ms.
const FAIL_AND_RELEASE: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
redis.call('SET', KEYS[2], '1', 'PX', ARGV[2])
return 1
"#;

/// Releases the lock if it is still ours. KEYS: lock. ARGV: token.
const RELEASE: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"#;

/// Extends the lock while its holder is still computing. KEYS: lock. ARGV: token, ttl ms.
const RENEW: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"#;

/// A byte cache in Redis: entries under `{prefix}:{cache key}` (so `avb:t:{tenant}:…`), TTLs kept by Redis.
///
/// - `set` is `SET … PX`; a zero TTL stores nothing and removes the entry (like the memory cache).
/// - `delete_prefix` walks `SCAN MATCH` with the prefix's glob metacharacters escaped and removes matches with
///   `UNLINK` in batches; it never uses `KEYS`, which blocks Redis for the whole keyspace. Its count is what
///   `UNLINK` reports, so an entry returned twice by `SCAN` or expired meanwhile is not counted.
/// - `get_or_set` computes once across every process sharing the Redis: within a process, concurrent callers
///   of a key share one flight; across processes, the flight that wins `SET NX PX` on `{prefix}:lock:{key}`
///   computes (renewing the lock every third of its TTL while it works), and the others poll (5 ms doubling to
///   100 ms) until the value appears. If the holder fails, it leaves a marker and the waiters fail too; if its
///   lock expires without value or marker (a crashed process), a waiter takes over. Waits end after
///   `max_wait` (default 10 s) or the caller's deadline.
/// - When Redis is unreachable, `get`/`set`/`delete` fail with `service_unavailable`, while `get_or_set`
///   degrades to computing without storing (still once per process): a cache outage must not take down reads
///   that can be answered from the source of truth.
///
/// Cloning shares the connection and the in-process flights.
#[derive(Clone)]
pub struct RedisCache {
    inner: Arc<Inner>,
    lock_ttl: Duration,
    max_wait: Duration,
}

struct Inner {
    link: Link,
    flights: Mutex<HashMap<String, Flight>>,
    next_flight: AtomicU64,
    store_and_release: Script,
    fail_and_release: Script,
    release: Script,
    renew: Script,
}

/// The outcome of an in-process flight: `None` while running or when abandoned (the leader was cancelled).
type Outcome = Option<std::result::Result<Vec<u8>, Arc<Error>>>;

struct Flight {
    id: u64,
    outcome: watch::Receiver<Outcome>,
}

enum Role {
    Lead(watch::Sender<Outcome>, u64),
    Follow(watch::Receiver<Outcome>),
}

/// What waiting on another process's lock ended with.
enum Waited {
    Value(Vec<u8>),
    HolderFailed,
    LockGone,
}

impl std::fmt::Debug for RedisCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisCache")
            .field("prefix", &self.inner.link.prefix())
            .field("lock_ttl", &self.lock_ttl)
            .field("max_wait", &self.max_wait)
            .field("computing", &self.flights().len())
            .finish()
    }
}

fn millis(d: Duration) -> u64 {
    // Redis rejects PX 0; a sub-millisecond TTL rounds up to the shortest one it can keep.
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// The leader's error, rebuilt for each follower ("an error of its own").
fn replicate(err: &Error) -> Error {
    match err {
        Error::Invalid(fields) => Error::Invalid(fields.clone()),
        Error::NotFound { resource, id } => Error::NotFound {
            resource,
            id: id.clone(),
        },
        Error::Conflict { resource, reason } => Error::Conflict {
            resource,
            reason: reason.clone(),
        },
        Error::VersionConflict {
            resource,
            id,
            expected,
            actual,
        } => Error::VersionConflict {
            resource,
            id: id.clone(),
            expected: *expected,
            actual: *actual,
        },
        Error::TenantRequired => Error::TenantRequired,
        Error::DeadlineExceeded => Error::DeadlineExceeded,
        Error::Unavailable { backend, source } => Error::unavailable(backend, source.to_string()),
        Error::Internal(message) => Error::Internal(message.clone()),
        other => Error::Internal(other.to_string()),
    }
}

/// Clears the in-process flight when the leader finishes or is cancelled; a cancelled leader leaves the outcome
/// `None`, which sends its followers back to try for themselves.
struct FlightGuard<'a> {
    cache: &'a RedisCache,
    key: &'a str,
    id: u64,
}

impl Drop for FlightGuard<'_> {
    fn drop(&mut self) {
        let mut flights = self.cache.flights();
        if flights.get(self.key).is_some_and(|f| f.id == self.id) {
            flights.remove(self.key);
        }
    }
}

impl RedisCache {
    pub(crate) fn new(link: Link) -> Self {
        Self {
            inner: Arc::new(Inner {
                link,
                flights: Mutex::new(HashMap::new()),
                next_flight: AtomicU64::new(0),
                store_and_release: Script::new(STORE_AND_RELEASE),
                fail_and_release: Script::new(FAIL_AND_RELEASE),
                release: Script::new(RELEASE),
                renew: Script::new(RENEW),
            }),
            lock_ttl: DEFAULT_LOCK_TTL,
            max_wait: DEFAULT_MAX_WAIT,
        }
    }

    /// Sets the get-or-set lock TTL (default 5 s, at least 30 ms) and the longest wait for a computation running
    /// elsewhere (default 10 s). Clones made earlier keep their values but share the in-process flights.
    #[must_use]
    pub fn with_waits(mut self, lock_ttl: Duration, max_wait: Duration) -> Self {
        self.lock_ttl = lock_ttl.max(Duration::from_millis(30));
        self.max_wait = max_wait;
        self
    }

    fn flights(&self) -> MutexGuard<'_, HashMap<String, Flight>> {
        // Single inserts and removes: the map is consistent even after a panic elsewhere.
        self.inner.flights.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn entry_key(&self, key: &CacheKey) -> String {
        self.inner.link.key(key.as_str())
    }

    fn lock_key(&self, key: &CacheKey) -> String {
        self.inner.link.key(&format!("lock:{}", key.as_str()))
    }

    fn fail_key(&self, token: &str) -> String {
        self.inner.link.key(&format!("lockfail:{token}"))
    }

    fn join(&self, entry: &str) -> Role {
        let mut flights = self.flights();
        if let Some(flight) = flights.get(entry) {
            return Role::Follow(flight.outcome.clone());
        }
        let id = self.inner.next_flight.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = watch::channel(None);
        flights.insert(entry.to_owned(), Flight { id, outcome: rx });
        Role::Lead(tx, id)
    }

    /// Runs `compute` once across processes (see the type's docs); the caller is the in-process leader.
    async fn lead(&self, ctx: &Ctx, key: &CacheKey, ttl: Duration, compute: Compute<'_>) -> Result<Vec<u8>> {
        let link = &self.inner.link;
        let entry = self.entry_key(key);
        let lock = self.lock_key(key);
        let give_up_at = Instant::now() + self.max_wait;
        loop {
            match link
                .query::<Option<Vec<u8>>>(ctx, redis::cmd("GET").arg(&entry))
                .await
            {
                Ok(Some(value)) => return Ok(value),
                Ok(None) => {}
                Err(err) if err.is_temporary() && !matches!(err, Error::DeadlineExceeded) => {
                    return degraded(err, compute).await;
                }
                Err(err) => return Err(err),
            }
            let token = uuid::Uuid::new_v4().to_string();
            let acquired = link
                .query::<Option<String>>(
                    ctx,
                    redis::cmd("SET")
                        .arg(&lock)
                        .arg(&token)
                        .arg("NX")
                        .arg("PX")
                        .arg(millis(self.lock_ttl)),
                )
                .await;
            match acquired {
                Ok(Some(_)) => return self.compute_holding(ctx, key, ttl, &token, compute).await,
                Ok(None) => {}
                Err(err) if err.is_temporary() && !matches!(err, Error::DeadlineExceeded) => {
                    return degraded(err, compute).await;
                }
                Err(err) => return Err(err),
            }
            let holder: Option<String> = link.query(ctx, redis::cmd("GET").arg(&lock)).await?;
            let Some(holder) = holder else {
                // Released between our SET NX and GET: look for the value again at once.
                continue;
            };
            match self.await_holder(ctx, &entry, &lock, &holder, give_up_at).await? {
                Waited::Value(value) => return Ok(value),
                Waited::HolderFailed => {
                    return Err(Error::unavailable(
                        "cache",
                        "the concurrent computation of this entry failed in another process",
                    ));
                }
                Waited::LockGone => {}
            }
        }
    }

    /// Computes while holding the lock, renewing it, then stores and releases (or marks the failure).
    async fn compute_holding(
        &self,
        ctx: &Ctx,
        key: &CacheKey,
        ttl: Duration,
        token: &str,
        mut compute: Compute<'_>,
    ) -> Result<Vec<u8>> {
        let link = &self.inner.link;
        let entry = self.entry_key(key);
        let lock = self.lock_key(key);
        // Another process may have stored the value and released between our GET and SET NX.
        if let Ok(Some(value)) = link
            .query::<Option<Vec<u8>>>(ctx, redis::cmd("GET").arg(&entry))
            .await
        {
            let _ = link
                .script::<i64>(ctx, self.inner.release.key(&lock).arg(token))
                .await;
            return Ok(value);
        }

        let renew_every = self.lock_ttl / 3;
        let outcome = loop {
            tokio::select! {
                outcome = &mut compute => break outcome,
                () = tokio::time::sleep(renew_every) => {
                    let renewed = link
                        .script::<i64>(ctx, self.inner.renew.key(&lock).arg(token).arg(millis(self.lock_ttl)))
                        .await;
                    if let Err(err) = renewed {
                        tracing::warn!(error = %err, "could not renew a cache computation lock");
                    }
                }
            }
        };

        match outcome {
            Ok(value) => {
                if ttl.is_zero() {
                    let _ = link
                        .script::<i64>(ctx, self.inner.release.key(&lock).arg(token))
                        .await;
                    return Ok(value);
                }
                let stored = link
                    .script::<i64>(
                        ctx,
                        self.inner
                            .store_and_release
                            .key(&entry)
                            .key(&lock)
                            .arg(value.as_slice())
                            .arg(millis(ttl))
                            .arg(token),
                    )
                    .await;
                if let Err(err) = stored {
                    // The value is good; only caching it failed. Waiters in other processes will take over
                    // once the lock expires.
                    tracing::warn!(error = %err, "could not store a computed cache entry");
                }
                Ok(value)
            }
            Err(err) => {
                let marked = link
                    .script::<i64>(
                        ctx,
                        self.inner
                            .fail_and_release
                            .key(&lock)
                            .key(self.fail_key(token))
                            .arg(token)
                            .arg(millis(FAIL_MARKER_TTL)),
                    )
                    .await;
                if let Err(mark_err) = marked {
                    tracing::warn!(error = %mark_err, "could not record a failed cache computation");
                }
                Err(err)
            }
        }
    }

    /// Polls until the holder's value appears, its failure marker appears, or its lock is gone.
    async fn await_holder(
        &self,
        ctx: &Ctx,
        entry: &str,
        lock: &str,
        holder: &str,
        give_up_at: Instant,
    ) -> Result<Waited> {
        let link = &self.inner.link;
        let fail_key = self.fail_key(holder);
        let mut pause = POLL_START;
        loop {
            if let Some(left) = ctx.remaining()? {
                tokio::time::sleep(pause.min(left)).await;
            } else {
                tokio::time::sleep(pause).await;
            }
            pause = (pause * 2).min(POLL_MAX);
            let mut pipe = redis::pipe();
            pipe.cmd("GET")
                .arg(entry)
                .cmd("GET")
                .arg(lock)
                .cmd("EXISTS")
                .arg(&fail_key);
            let (value, current, failed): (Option<Vec<u8>>, Option<String>, bool) =
                link.pipe(ctx, &pipe).await?;
            if let Some(value) = value {
                return Ok(Waited::Value(value));
            }
            if failed {
                return Ok(Waited::HolderFailed);
            }
            if current.as_deref() != Some(holder) {
                return Ok(Waited::LockGone);
            }
            if Instant::now() >= give_up_at {
                return Err(Error::unavailable(
                    "cache",
                    format!(
                        "waited {:?} for a concurrent computation of this entry",
                        self.max_wait
                    ),
                ));
            }
        }
    }
}

/// Redis is unreachable: compute without caching, so reads keep working through a cache outage.
async fn degraded(cause: Error, compute: Compute<'_>) -> Result<Vec<u8>> {
    tracing::warn!(error = %cause, "cache unavailable; computing without caching");
    compute.await
}

#[async_trait]
impl Cache for RedisCache {
    async fn get(&self, ctx: &Ctx, key: &CacheKey) -> Result<Option<Vec<u8>>> {
        self.inner
            .link
            .query(ctx, redis::cmd("GET").arg(self.entry_key(key)))
            .await
    }

    async fn set(&self, ctx: &Ctx, key: &CacheKey, value: Vec<u8>, ttl: Duration) -> Result<()> {
        let entry = self.entry_key(key);
        if ttl.is_zero() {
            return self.inner.link.query(ctx, redis::cmd("UNLINK").arg(entry)).await;
        }
        self.inner
            .link
            .query(
                ctx,
                redis::cmd("SET").arg(entry).arg(value).arg("PX").arg(millis(ttl)),
            )
            .await
    }

    async fn delete(&self, ctx: &Ctx, key: &CacheKey) -> Result<bool> {
        let removed: u64 = self
            .inner
            .link
            .query(ctx, redis::cmd("UNLINK").arg(self.entry_key(key)))
            .await?;
        Ok(removed > 0)
    }

    async fn delete_prefix(&self, ctx: &Ctx, prefix: &CacheKey) -> Result<u64> {
        let pattern = format!("{}*", escape_glob(&self.entry_key(prefix)));
        let mut cursor: u64 = 0;
        let mut removed: u64 = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = self
                .inner
                .link
                .query(
                    ctx,
                    redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg(&pattern)
                        .arg("COUNT")
                        .arg(SCAN_COUNT),
                )
                .await?;
            if !keys.is_empty() {
                let n: u64 = self
                    .inner
                    .link
                    .query(ctx, redis::cmd("UNLINK").arg(&keys))
                    .await?;
                removed += n;
            }
            if next == 0 {
                return Ok(removed);
            }
            cursor = next;
        }
    }

    async fn get_or_set(
        &self,
        ctx: &Ctx,
        key: &CacheKey,
        ttl: Duration,
        compute: Compute<'_>,
    ) -> Result<Vec<u8>> {
        let entry = self.entry_key(key);
        loop {
            match self.join(&entry) {
                Role::Follow(mut outcome) => {
                    let bound = match ctx.remaining()? {
                        Some(left) if left < self.max_wait => left,
                        _ => self.max_wait,
                    };
                    let finished = tokio::time::timeout(bound, async {
                        outcome.wait_for(Option::is_some).await.map(|o| o.clone())
                    })
                    .await;
                    match finished {
                        Ok(Ok(Some(Ok(value)))) => return Ok(value),
                        Ok(Ok(Some(Err(err)))) => return Err(replicate(&err)),
                        // The leader was cancelled (its sender dropped without an outcome): try again.
                        Ok(Ok(None) | Err(_)) => continue,
                        Err(_) => {
                            ctx.remaining()?;
                            return Err(Error::unavailable(
                                "cache",
                                format!("waited {bound:?} for a concurrent computation of this entry"),
                            ));
                        }
                    }
                }
                Role::Lead(tx, id) => {
                    let _guard = FlightGuard {
                        cache: self,
                        key: &entry,
                        id,
                    };
                    let result = self.lead(ctx, key, ttl, compute).await;
                    let shared = match &result {
                        Ok(value) => Ok(value.clone()),
                        Err(err) => Err(Arc::new(replicate(err))),
                    };
                    let _ = tx.send(Some(shared));
                    return result;
                }
            }
        }
    }
}
