//! Test fixtures: a store on the real Redis under a fresh key prefix, removed again (SCAN + UNLINK, never KEYS)
//! when the last adapter holding the prefix is dropped.

use async_trait::async_trait;
use avb_core::cache::{Cache, CacheKey, Compute};
use avb_core::events::{BusEvent, EventBus, Group, Subscription};
use avb_core::jobs::{Job, JobQueue, JobState, NewJob};
use avb_core::rate_limit::{RateLimitDecision, RateLimitPolicy, RateLimiter};
use avb_core::{Ctx, JobId, RequestId, Result, UuidV7Ids};
use avb_storage_redis::{RedisStore, RedisStoreBuilder};
use std::sync::Arc;
use std::time::Duration;

/// The Redis every test talks to: `REDIS_URL` when set, else the local one. A missing Redis fails the tests.
pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".to_owned())
}

/// Nothing listens on port 1: connections are refused at once.
pub const UNREACHABLE: &str = "redis://127.0.0.1:1/0";

pub fn system_ctx() -> Ctx {
    Ctx::system(RequestId::generate(&UuidV7Ids), "it", None)
}

/// A unique key prefix, deleted when dropped.
#[derive(Debug)]
pub struct Prefix(pub String);

impl Prefix {
    pub fn fresh() -> Self {
        Self(format!("avbtest:{}", uuid::Uuid::new_v4()))
    }
}

impl Drop for Prefix {
    fn drop(&mut self) {
        // Synchronous on purpose: the test's runtime may already be shutting down.
        if let Err(err) = remove_prefix(&self.0) {
            eprintln!("could not clean up redis prefix {}: {err}", self.0);
        }
    }
}

fn remove_prefix(prefix: &str) -> redis::RedisResult<()> {
    let client = redis::Client::open(redis_url())?;
    let mut conn = client.get_connection_with_timeout(Duration::from_secs(2))?;
    let pattern = format!(
        "{}:*",
        prefix.replace('*', "\\*").replace('?', "\\?").replace('[', "\\[")
    );
    let mut cursor: u64 = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(1000)
            .query(&mut conn)?;
        if !keys.is_empty() {
            let _: i64 = redis::cmd("UNLINK").arg(&keys).query(&mut conn)?;
        }
        if next == 0 {
            return Ok(());
        }
        cursor = next;
    }
}

/// Keys left under a prefix (SCAN), for assertions.
pub async fn keys_under(prefix: &str) -> Vec<String> {
    let mut conn = raw().await;
    let mut cursor: u64 = 0;
    let mut out = Vec::new();
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{prefix}:*"))
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut conn)
            .await
            .unwrap();
        out.extend(keys);
        if next == 0 {
            out.sort();
            out.dedup();
            return out;
        }
        cursor = next;
    }
}

/// A plain connection for poking at Redis directly.
pub async fn raw() -> redis::aio::MultiplexedConnection {
    redis::Client::open(redis_url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .expect("redis must be running on REDIS_URL or 127.0.0.1:6379")
}

/// A store under `prefix` (each call is a separate connection: a separate "replica").
pub async fn store_at(prefix: &Prefix) -> RedisStore {
    RedisStoreBuilder::new()
        .with_url(redis_url())
        .with_key_prefix(&prefix.0)
        .build()
        .await
        .expect("redis must be running on REDIS_URL or 127.0.0.1:6379")
}

/// A fresh prefix and a store on it.
pub async fn fresh_store() -> (RedisStore, Arc<Prefix>) {
    let prefix = Arc::new(Prefix::fresh());
    (store_at(&prefix).await, prefix)
}

/// A store whose Redis refuses connections, built lazily (as a server that starts during an outage).
pub async fn unreachable_store() -> RedisStore {
    RedisStoreBuilder::new()
        .with_url(UNREACHABLE)
        .with_reconnect_attempts(1)
        .with_connect_timeout(Duration::from_millis(200))
        .with_command_timeout(Duration::from_millis(500))
        .connect_lazily(true)
        .build()
        .await
        .unwrap()
}

/// An adapter that keeps its key prefix alive, so the keys are removed when the conformance check drops it.
#[derive(Debug)]
pub struct Scoped<T> {
    pub inner: T,
    pub _prefix: Arc<Prefix>,
}

#[async_trait]
impl<T: Cache> Cache for Scoped<T> {
    async fn get(&self, ctx: &Ctx, key: &CacheKey) -> Result<Option<Vec<u8>>> {
        self.inner.get(ctx, key).await
    }
    async fn set(&self, ctx: &Ctx, key: &CacheKey, value: Vec<u8>, ttl: Duration) -> Result<()> {
        self.inner.set(ctx, key, value, ttl).await
    }
    async fn delete(&self, ctx: &Ctx, key: &CacheKey) -> Result<bool> {
        self.inner.delete(ctx, key).await
    }
    async fn delete_prefix(&self, ctx: &Ctx, prefix: &CacheKey) -> Result<u64> {
        self.inner.delete_prefix(ctx, prefix).await
    }
    async fn get_or_set(
        &self,
        ctx: &Ctx,
        key: &CacheKey,
        ttl: Duration,
        compute: Compute<'_>,
    ) -> Result<Vec<u8>> {
        self.inner.get_or_set(ctx, key, ttl, compute).await
    }
}

#[async_trait]
impl<T: RateLimiter> RateLimiter for Scoped<T> {
    async fn check(&self, ctx: &Ctx, key: &str, policy: RateLimitPolicy) -> Result<RateLimitDecision> {
        self.inner.check(ctx, key, policy).await
    }
}

#[async_trait]
impl<T: EventBus> EventBus for Scoped<T> {
    async fn publish(&self, ctx: &Ctx, group: Group, event: BusEvent) -> Result<()> {
        self.inner.publish(ctx, group, event).await
    }
    async fn subscribe(&self, ctx: &Ctx, groups: &[Group]) -> Result<Box<dyn Subscription>> {
        self.inner.subscribe(ctx, groups).await
    }
}

#[async_trait]
impl<T: JobQueue> JobQueue for Scoped<T> {
    async fn enqueue(&self, ctx: &Ctx, job: NewJob) -> Result<JobId> {
        self.inner.enqueue(ctx, job).await
    }
    async fn reserve(&self, ctx: &Ctx, kinds: &[&str], lease: Duration) -> Result<Option<Job>> {
        self.inner.reserve(ctx, kinds, lease).await
    }
    async fn ack(&self, ctx: &Ctx, id: JobId) -> Result<()> {
        self.inner.ack(ctx, id).await
    }
    async fn fail(&self, ctx: &Ctx, id: JobId, error: &str, retry_in: Duration) -> Result<JobState> {
        self.inner.fail(ctx, id, error, retry_in).await
    }
    async fn get(&self, ctx: &Ctx, id: JobId) -> Result<Job> {
        self.inner.get(ctx, id).await
    }
}
