//! Cache port (spec §10.1): tenant-scoped keys with TTLs.

use crate::ctx::Ctx;
use crate::error::Result;
use crate::ids::TenantId;
use async_trait::async_trait;
use futures::future::BoxFuture;
use std::time::Duration;

/// A cache key. Tenant keys are `t:{tenant}:{parts…}`, platform keys `g:{parts…}`, so one tenant's entries can be
/// invalidated by prefix without touching another's.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CacheKey(String);

impl CacheKey {
    /// A key inside `tenant`'s namespace.
    pub fn tenant(tenant: TenantId, parts: &[&str]) -> Self {
        let mut key = format!("t:{tenant}");
        for p in parts {
            key.push(':');
            key.push_str(p);
        }
        Self(key)
    }

    /// A platform-level key.
    pub fn global(parts: &[&str]) -> Self {
        let mut key = String::from("g");
        for p in parts {
            key.push(':');
            key.push_str(p);
        }
        Self(key)
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True when this key starts with `prefix` (prefix invalidation).
    pub fn starts_with(&self, prefix: &CacheKey) -> bool {
        self.0.starts_with(&prefix.0)
    }
}

/// Computes a value on a cache miss.
pub type Compute<'a> = BoxFuture<'a, Result<Vec<u8>>>;

/// A byte cache with TTLs.
///
/// # Contract
/// - `get` after `set` returns the value until its TTL passes, then `None`.
/// - `delete` returns whether a live entry was removed.
/// - `delete_prefix(p)` removes every key starting with `p` and no other, returning how many were removed.
/// - `get_or_set` runs `compute` at most once per key among concurrent callers of the same cache (the others
///   wait and receive its value); a failed computation stores nothing and is returned to every waiter that
///   depended on it as an error of its own.
#[async_trait]
pub trait Cache: Send + Sync + std::fmt::Debug + 'static {
    /// Reads a live entry.
    async fn get(&self, ctx: &Ctx, key: &CacheKey) -> Result<Option<Vec<u8>>>;
    /// Writes an entry with a TTL.
    async fn set(&self, ctx: &Ctx, key: &CacheKey, value: Vec<u8>, ttl: Duration) -> Result<()>;
    /// Removes an entry.
    async fn delete(&self, ctx: &Ctx, key: &CacheKey) -> Result<bool>;
    /// Removes every entry whose key starts with `prefix`.
    async fn delete_prefix(&self, ctx: &Ctx, prefix: &CacheKey) -> Result<u64>;
    /// Returns the cached value or computes, stores and returns it, computing once under concurrency.
    async fn get_or_set(
        &self,
        ctx: &Ctx,
        key: &CacheKey,
        ttl: Duration,
        compute: Compute<'_>,
    ) -> Result<Vec<u8>>;
}
