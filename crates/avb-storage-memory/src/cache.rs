//! In-memory [`Cache`] (spec §10.1): TTL entries, prefix invalidation, single-flight `get_or_set`, bounded size.

use async_trait::async_trait;
use avb_core::cache::{Cache, CacheKey, Compute};
use avb_core::{Ctx, Error, Result};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// Entry count a [`MemoryCache::new`] cache holds before it evicts.
const DEFAULT_MAX_ENTRIES: usize = 10_000;

/// A process-local byte cache.
///
/// Expiry is measured with [`tokio::time::Instant`], so tests can drive it with tokio's paused time. Memory is
/// bounded: once `max_entries` live entries are held, a write first drops expired entries and then the oldest
/// written ones.
///
/// `get_or_set` is single-flight per key: the first caller computes, concurrent callers of the same key wait for
/// it (other keys are not held up). If the computation fails, nothing is stored, the computing caller gets its
/// error and every waiter gets a copy of it (same variant and code, the source reduced to its message); waiters
/// do not retry on their own, so a failing backend sees one call per burst rather than one per caller. If the
/// computing caller is cancelled, one of the waiters takes over the computation.
///
/// Cloning shares the entries.
#[derive(Clone)]
pub struct MemoryCache {
    inner: Arc<Inner>,
}

struct Inner {
    max_entries: usize,
    state: Mutex<State>,
}

/// What a finished computation hands to its waiters.
type Outcome = Option<std::result::Result<Vec<u8>, Arc<Error>>>;

#[derive(Default)]
struct State {
    entries: BTreeMap<CacheKey, Entry>,
    /// Expiring entries by deadline, so expired ones are dropped without a scan.
    by_expiry: BTreeMap<(Instant, u64), CacheKey>,
    /// Every entry by write sequence, oldest first, for eviction.
    by_age: BTreeMap<u64, CacheKey>,
    next_seq: u64,
    flights: HashMap<CacheKey, Flight>,
}

struct Entry {
    value: Vec<u8>,
    /// `None` when the TTL is too large to represent: the entry never expires.
    expires_at: Option<Instant>,
    seq: u64,
}

/// A computation in progress for one key.
struct Flight {
    id: u64,
    outcome: watch::Receiver<Outcome>,
}

enum Role {
    Hit(Vec<u8>),
    Wait(watch::Receiver<Outcome>),
    Lead(watch::Sender<Outcome>, u64),
}

impl MemoryCache {
    /// A cache holding up to 10 000 entries.
    pub fn new() -> Self {
        Self::with_max_entries(DEFAULT_MAX_ENTRIES)
    }

    /// A cache holding up to `max_entries` entries (at least one).
    pub fn with_max_entries(max_entries: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                max_entries: max_entries.max(1),
                state: Mutex::new(State::default()),
            }),
        }
    }

    /// Number of entries held, including expired ones not yet dropped.
    pub fn len(&self) -> usize {
        self.inner.lock().entries.len()
    }

    /// True when no entry is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Default for MemoryCache {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for MemoryCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.inner.lock();
        f.debug_struct("MemoryCache")
            .field("entries", &state.entries.len())
            .field("max_entries", &self.inner.max_entries)
            .field("computing", &state.flights.len())
            .finish()
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves the maps consistent (every mutation completes or is not begun).
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl State {
    fn live(&mut self, key: &CacheKey, now: Instant) -> Option<Vec<u8>> {
        let expired = match self.entries.get(key) {
            None => return None,
            Some(entry) => entry.expires_at.is_some_and(|at| at <= now),
        };
        if expired {
            self.remove(key);
            return None;
        }
        self.entries.get(key).map(|entry| entry.value.clone())
    }

    /// Removes an entry; returns whether it was live.
    fn remove(&mut self, key: &CacheKey) -> Option<bool> {
        let entry = self.entries.remove(key)?;
        self.by_age.remove(&entry.seq);
        if let Some(at) = entry.expires_at {
            self.by_expiry.remove(&(at, entry.seq));
        }
        Some(entry.expires_at.is_none_or(|at| at > Instant::now()))
    }

    fn purge_expired(&mut self, now: Instant) {
        while let Some(entry) = self.by_expiry.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let key = entry.remove();
            self.remove(&key);
        }
    }

    fn insert(&mut self, key: &CacheKey, value: Vec<u8>, ttl: Duration, max_entries: usize) {
        let now = Instant::now();
        self.remove(key);
        self.purge_expired(now);
        if ttl.is_zero() {
            // Already expired: storing it would only cost an eviction.
            return;
        }
        while self.entries.len() >= max_entries {
            match self.by_age.first_key_value() {
                Some((_, oldest)) => {
                    let oldest = oldest.clone();
                    self.remove(&oldest);
                }
                None => break,
            }
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let expires_at = now.checked_add(ttl);
        if let Some(at) = expires_at {
            self.by_expiry.insert((at, seq), key.clone());
        }
        self.by_age.insert(seq, key.clone());
        self.entries.insert(
            key.clone(),
            Entry {
                value,
                expires_at,
                seq,
            },
        );
    }

    fn delete_prefix(&mut self, prefix: &CacheKey) -> u64 {
        // Keys sharing a prefix are contiguous in a BTreeMap ordered by the key text.
        let matching: Vec<CacheKey> = self
            .entries
            .range(prefix.clone()..)
            .take_while(|(key, _)| key.starts_with(prefix))
            .map(|(key, _)| key.clone())
            .collect();
        matching
            .iter()
            .filter(|key| self.remove(key) == Some(true))
            .count() as u64
    }
}

/// Removes the flight entry if its leader goes away without finishing (its future was dropped), so waiters see
/// the channel close and one of them takes over instead of waiting forever.
struct FlightGuard<'a> {
    inner: &'a Inner,
    key: &'a CacheKey,
    id: u64,
    armed: bool,
}

impl Drop for FlightGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            let mut state = self.inner.lock();
            if state.flights.get(self.key).is_some_and(|f| f.id == self.id) {
                state.flights.remove(self.key);
            }
        }
    }
}

/// A copy of `err` for a waiter: same variant and code; a boxed source is reduced to its message.
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

/// Waits for `fut`, bounded by the context's deadline.
async fn within_deadline<T>(ctx: &Ctx, fut: impl Future<Output = T>) -> Result<T> {
    match ctx.remaining()? {
        None => Ok(fut.await),
        Some(left) => tokio::time::timeout(left, fut)
            .await
            .map_err(|_| Error::DeadlineExceeded),
    }
}

#[async_trait]
impl Cache for MemoryCache {
    async fn get(&self, _ctx: &Ctx, key: &CacheKey) -> Result<Option<Vec<u8>>> {
        Ok(self.inner.lock().live(key, Instant::now()))
    }

    async fn set(&self, _ctx: &Ctx, key: &CacheKey, value: Vec<u8>, ttl: Duration) -> Result<()> {
        self.inner.lock().insert(key, value, ttl, self.inner.max_entries);
        Ok(())
    }

    async fn delete(&self, _ctx: &Ctx, key: &CacheKey) -> Result<bool> {
        Ok(self.inner.lock().remove(key).unwrap_or(false))
    }

    async fn delete_prefix(&self, _ctx: &Ctx, prefix: &CacheKey) -> Result<u64> {
        Ok(self.inner.lock().delete_prefix(prefix))
    }

    async fn get_or_set(
        &self,
        ctx: &Ctx,
        key: &CacheKey,
        ttl: Duration,
        compute: Compute<'_>,
    ) -> Result<Vec<u8>> {
        loop {
            let role = {
                let mut state = self.inner.lock();
                if let Some(value) = state.live(key, Instant::now()) {
                    Role::Hit(value)
                } else if let Some(flight) = state.flights.get(key) {
                    Role::Wait(flight.outcome.clone())
                } else {
                    let (tx, rx) = watch::channel(None);
                    let id = state.next_seq;
                    state.next_seq += 1;
                    state.flights.insert(key.clone(), Flight { id, outcome: rx });
                    Role::Lead(tx, id)
                }
            };
            match role {
                Role::Hit(value) => return Ok(value),
                Role::Wait(mut rx) => {
                    let outcome: Outcome = within_deadline(ctx, async {
                        // An error means the leader was dropped mid-computation: loop and take over.
                        rx.wait_for(Option::is_some)
                            .await
                            .map(|seen| seen.clone())
                            .unwrap_or(None)
                    })
                    .await?;
                    match outcome {
                        Some(Ok(value)) => return Ok(value),
                        Some(Err(err)) => return Err(replicate(&err)),
                        None => continue,
                    }
                }
                Role::Lead(tx, id) => {
                    let mut guard = FlightGuard {
                        inner: &self.inner,
                        key,
                        id,
                        armed: true,
                    };
                    let result = compute.await;
                    {
                        let mut state = self.inner.lock();
                        state.flights.remove(key);
                        if let Ok(value) = &result {
                            state.insert(key, value.clone(), ttl, self.inner.max_entries);
                        }
                    }
                    guard.armed = false;
                    let shared = match &result {
                        Ok(value) => Ok(value.clone()),
                        Err(err) => Err(Arc::new(replicate(err))),
                    };
                    // No receiver left is fine: every waiter gave up (deadline) or there were none.
                    let _ = tx.send(Some(shared));
                    return result;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use avb_core::{RequestId, SequentialIds, TenantId};
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn ctx() -> Ctx {
        Ctx::system(RequestId::generate(&SequentialIds::default()), "test", None)
    }

    fn key(name: &str) -> CacheKey {
        CacheKey::global(&[name])
    }

    #[tokio::test(start_paused = true)]
    async fn entries_expire_exactly_at_their_ttl_in_paused_time() {
        let cache = MemoryCache::new();
        cache
            .set(&ctx(), &key("k"), b"v".to_vec(), Duration::from_secs(300))
            .await
            .unwrap();
        tokio::time::advance(Duration::from_secs(299)).await;
        assert_eq!(cache.get(&ctx(), &key("k")).await.unwrap(), Some(b"v".to_vec()));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(cache.get(&ctx(), &key("k")).await.unwrap(), None);
        assert!(cache.is_empty(), "reading an expired entry drops it");
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_cache_evicts_expired_entries_before_live_ones() {
        let cache = MemoryCache::with_max_entries(3);
        cache
            .set(&ctx(), &key("old-live"), b"1".to_vec(), Duration::from_secs(600))
            .await
            .unwrap();
        cache
            .set(&ctx(), &key("short"), b"2".to_vec(), Duration::from_secs(10))
            .await
            .unwrap();
        cache
            .set(&ctx(), &key("young"), b"3".to_vec(), Duration::from_secs(600))
            .await
            .unwrap();
        tokio::time::advance(Duration::from_secs(11)).await;

        cache
            .set(&ctx(), &key("new"), b"4".to_vec(), Duration::from_secs(600))
            .await
            .unwrap();
        assert_eq!(cache.len(), 3);
        assert_eq!(
            cache.get(&ctx(), &key("old-live")).await.unwrap(),
            Some(b"1".to_vec())
        );
        assert_eq!(
            cache.get(&ctx(), &key("young")).await.unwrap(),
            Some(b"3".to_vec())
        );
        assert_eq!(cache.get(&ctx(), &key("new")).await.unwrap(), Some(b"4".to_vec()));
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_cache_of_live_entries_evicts_the_oldest_written() {
        let cache = MemoryCache::with_max_entries(2);
        cache
            .set(&ctx(), &key("a"), b"a".to_vec(), Duration::from_secs(600))
            .await
            .unwrap();
        cache
            .set(&ctx(), &key("b"), b"b".to_vec(), Duration::from_secs(600))
            .await
            .unwrap();
        // Rewriting `a` makes `b` the oldest write.
        cache
            .set(&ctx(), &key("a"), b"a2".to_vec(), Duration::from_secs(600))
            .await
            .unwrap();
        cache
            .set(&ctx(), &key("c"), b"c".to_vec(), Duration::from_secs(600))
            .await
            .unwrap();
        assert_eq!(cache.get(&ctx(), &key("b")).await.unwrap(), None);
        assert_eq!(cache.get(&ctx(), &key("a")).await.unwrap(), Some(b"a2".to_vec()));
        assert_eq!(cache.get(&ctx(), &key("c")).await.unwrap(), Some(b"c".to_vec()));
    }

    #[tokio::test]
    async fn many_writes_stay_within_the_entry_bound() {
        let cache = MemoryCache::with_max_entries(100);
        for i in 0..5_000 {
            let k = CacheKey::tenant(TenantId(uuid::Uuid::new_v4()), &[&i.to_string()]);
            cache
                .set(&ctx(), &k, vec![0; 16], Duration::from_secs(600))
                .await
                .unwrap();
        }
        assert_eq!(cache.len(), 100);
        let state = cache.inner.lock();
        assert_eq!(
            (state.by_age.len(), state.by_expiry.len()),
            (100, 100),
            "indexes shrink with the entries"
        );
    }

    #[tokio::test]
    async fn a_zero_ttl_write_removes_the_entry() {
        let cache = MemoryCache::new();
        cache
            .set(&ctx(), &key("k"), b"v".to_vec(), Duration::from_secs(60))
            .await
            .unwrap();
        cache
            .set(&ctx(), &key("k"), b"w".to_vec(), Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(cache.get(&ctx(), &key("k")).await.unwrap(), None);
        assert!(cache.is_empty());
    }

    #[tokio::test]
    async fn an_unrepresentable_ttl_never_expires() {
        let cache = MemoryCache::new();
        cache
            .set(&ctx(), &key("k"), b"v".to_vec(), Duration::MAX)
            .await
            .unwrap();
        assert_eq!(cache.get(&ctx(), &key("k")).await.unwrap(), Some(b"v".to_vec()));
    }

    #[tokio::test]
    async fn clones_share_entries() {
        let cache = MemoryCache::new();
        let clone = cache.clone();
        clone
            .set(&ctx(), &key("k"), b"v".to_vec(), Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(cache.get(&ctx(), &key("k")).await.unwrap(), Some(b"v".to_vec()));
    }

    #[tokio::test]
    async fn waiters_receive_a_copy_of_the_leaders_error() {
        let cache = MemoryCache::new();
        let (release_tx, release_rx) = tokio::sync::oneshot::channel::<()>();
        let leader = {
            let cache = cache.clone();
            tokio::spawn(async move {
                let compute: Compute<'static> = Box::pin(async move {
                    let _ = release_rx.await;
                    Err(Error::conflict("theme", "name taken"))
                });
                cache
                    .get_or_set(&ctx(), &key("k"), Duration::from_secs(60), compute)
                    .await
            })
        };
        while cache.inner.lock().flights.is_empty() {
            tokio::task::yield_now().await;
        }
        let waiter = {
            let cache = cache.clone();
            tokio::spawn(async move {
                let compute: Compute<'static> = Box::pin(async { Ok(b"never".to_vec()) });
                cache
                    .get_or_set(&ctx(), &key("k"), Duration::from_secs(60), compute)
                    .await
            })
        };
        tokio::task::yield_now().await;
        release_tx.send(()).unwrap();
        assert!(matches!(
            leader.await.unwrap(),
            Err(Error::Conflict {
                resource: "theme",
                ..
            })
        ));
        assert!(matches!(
            waiter.await.unwrap(),
            Err(Error::Conflict {
                resource: "theme",
                ..
            })
        ));
        assert!(cache.inner.lock().flights.is_empty());
    }

    #[tokio::test]
    async fn a_waiter_takes_over_when_the_leader_is_cancelled() {
        let cache = MemoryCache::new();
        let calls = Arc::new(AtomicUsize::new(0));
        let leader = {
            let (cache, calls) = (cache.clone(), calls.clone());
            tokio::spawn(async move {
                let compute: Compute<'static> = Box::pin(async move {
                    calls.fetch_add(1, Ordering::SeqCst);
                    std::future::pending::<()>().await;
                    Ok(b"never".to_vec())
                });
                cache
                    .get_or_set(&ctx(), &key("k"), Duration::from_secs(60), compute)
                    .await
            })
        };
        while calls.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        let waiter = {
            let (cache, calls) = (cache.clone(), calls.clone());
            tokio::spawn(async move {
                let compute: Compute<'static> = Box::pin(async move {
                    calls.fetch_add(1, Ordering::SeqCst);
                    Ok(b"from-waiter".to_vec())
                });
                cache
                    .get_or_set(&ctx(), &key("k"), Duration::from_secs(60), compute)
                    .await
            })
        };
        tokio::task::yield_now().await;
        leader.abort();
        assert_eq!(waiter.await.unwrap().unwrap(), b"from-waiter".to_vec());
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_waiter_gives_up_at_its_deadline() {
        let cache = MemoryCache::new();
        let leader = {
            let cache = cache.clone();
            tokio::spawn(async move {
                let compute: Compute<'static> = Box::pin(async {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    Ok(b"late".to_vec())
                });
                cache
                    .get_or_set(&ctx(), &key("k"), Duration::from_secs(60), compute)
                    .await
            })
        };
        while cache.inner.lock().flights.is_empty() {
            tokio::task::yield_now().await;
        }
        let impatient = ctx().with_timeout(Duration::from_millis(20));
        let compute: Compute<'static> = Box::pin(async { Ok(b"never".to_vec()) });
        let got = cache
            .get_or_set(&impatient, &key("k"), Duration::from_secs(60), compute)
            .await;
        assert!(matches!(got, Err(Error::DeadlineExceeded)), "got {got:?}");
        leader.abort();
    }
}
