//! API-key authentication (spec §9.2): validate a presented `avb_…` key, fast.
//!
//! The store is asked only on a cache miss (lookup by the 12-character prefix, constant-time hash comparison in
//! `avb_tenancy::api_key`). Hot keys are served from a short-lived cache keyed by the SHA-256 of the presented
//! secret — a hit therefore proves the caller holds the exact secret — and validity (expiry, revocation time) is
//! re-checked against the clock on every hit. Revocation through this process invalidates the entry at once;
//! other replicas learn it through the event bus (`invalidate` is the hook), and at the latest when the TTL ends.
//!
//! Usage (`last_used_at`, IP, `usage_count`) is not written per request: [`UsageBatcher`] coalesces it per key
//! and flushes in one unit of work per interval, and [`UsageBatcher::flush`] at shutdown, so nothing is lost.

use crate::{Error, Result};
use avb_core::{ApiKeyId, ApiKeyPrincipal, Clock, Ctx, RequestId};
use avb_tenancy::api_key::{ApiKeyService, UsageRecord};
use avb_tenancy::model::ApiKey;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// How long a validated key is served from memory before the store is asked again.
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(30);
/// Upper bound on cached keys; beyond it the cache is cleared rather than grown (simple and bounded).
const MAX_CACHED: usize = 100_000;

#[derive(Debug, Clone)]
struct Cached {
    record: Arc<ApiKey>,
    principal: ApiKeyPrincipal,
    cached_at: Instant,
}

/// Validates API keys with a hot cache and batched usage recording.
#[derive(Debug)]
pub struct ApiKeyAuthenticator {
    service: ApiKeyService,
    clock: Arc<dyn Clock>,
    ttl: Duration,
    cache: RwLock<HashMap<[u8; 32], Cached>>,
    usage: Arc<UsageBatcher>,
}

impl ApiKeyAuthenticator {
    /// An authenticator over `service`, recording usage into `usage`.
    pub fn new(service: ApiKeyService, clock: Arc<dyn Clock>, usage: Arc<UsageBatcher>) -> Self {
        Self {
            service,
            clock,
            ttl: DEFAULT_CACHE_TTL,
            cache: RwLock::new(HashMap::new()),
            usage,
        }
    }

    /// Sets the cache TTL (zero disables caching).
    #[must_use]
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Validates `presented`; on success records one use from `ip` and returns the key's principal.
    ///
    /// Unknown, tampered, revoked and expired keys all answer `authentication_failed` with the same message, so a
    /// caller cannot tell which (the reason is logged).
    pub async fn authenticate(
        &self,
        ctx: &Ctx,
        presented: &str,
        ip: Option<IpAddr>,
    ) -> Result<ApiKeyPrincipal> {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let now = self.clock.now();
        let cached = self
            .cache
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&digest)
            .cloned();
        let (record, principal) = match cached {
            Some(hit) if hit.cached_at.elapsed() < self.ttl => (hit.record, hit.principal),
            _ => {
                let system = Ctx::system(ctx.request_id().clone(), "auth:api_key", None);
                let found = self
                    .service
                    .find_by_secret(&system, presented)
                    .await
                    .map_err(Error::from_tenancy)?;
                let Some(record) = found else {
                    tracing::info!(request_id = %ctx.request_id(), "api key not found");
                    return Err(Error::AuthenticationFailed("invalid API key".into()));
                };
                let principal = principal_of(&record);
                let record = Arc::new(record);
                if !self.ttl.is_zero() {
                    let mut cache = self
                        .cache
                        .write()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    if cache.len() >= MAX_CACHED {
                        cache.clear();
                    }
                    cache.insert(
                        digest,
                        Cached {
                            record: record.clone(),
                            principal: principal.clone(),
                            cached_at: Instant::now(),
                        },
                    );
                }
                (record, principal)
            }
        };
        if !record.is_valid(now) {
            tracing::info!(request_id = %ctx.request_id(), key_id = %record.id, "api key expired or revoked");
            return Err(Error::AuthenticationFailed("invalid API key".into()));
        }
        self.usage.record(record.id, now, ip);
        Ok(principal)
    }

    /// Drops a key from the cache (after revocation or rotation), so the next use consults the store.
    pub fn invalidate(&self, key: ApiKeyId) {
        self.cache
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retain(|_, c| c.record.id != key);
    }

    /// Drops every cached key (the invalidation feed had a gap, so any entry may be stale).
    pub fn clear(&self) {
        self.cache
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }

    /// The usage batcher (for shutdown flushing).
    pub fn usage(&self) -> &Arc<UsageBatcher> {
        &self.usage
    }
}

fn principal_of(record: &ApiKey) -> ApiKeyPrincipal {
    ApiKeyPrincipal {
        key_id: record.id,
        tenant_id: record.tenant_id,
        project_id: record.project_id,
        scopes: record.scopes.clone(),
        tier: record.rate_limit_tier,
        created_by: record.created_by,
    }
}

/// Coalesces API-key usage in memory and writes it in batches.
#[derive(Debug)]
pub struct UsageBatcher {
    service: ApiKeyService,
    pending: Mutex<HashMap<ApiKeyId, UsageRecord>>,
}

impl UsageBatcher {
    /// A batcher writing through `service`.
    pub fn new(service: ApiKeyService) -> Arc<Self> {
        Arc::new(Self {
            service,
            pending: Mutex::new(HashMap::new()),
        })
    }

    /// Notes one use (no I/O).
    pub fn record(&self, key: ApiKeyId, at: chrono::DateTime<chrono::Utc>, ip: Option<IpAddr>) {
        let mut pending = self
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = pending.entry(key).or_insert(UsageRecord {
            key_id: key,
            at,
            ip,
            count: 0,
        });
        if at >= entry.at {
            entry.at = at;
            entry.ip = ip;
        }
        entry.count = entry.count.saturating_add(1);
    }

    /// Uses noted but not yet written.
    pub fn pending(&self) -> u64 {
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
            .map(|r| r.count)
            .sum()
    }

    /// Writes everything noted so far in one unit of work. On failure the batch is merged back, so a later flush
    /// retries it: usage is never dropped because the store was briefly unavailable.
    pub async fn flush(&self, request_id: RequestId) -> Result<u64> {
        let batch: Vec<UsageRecord> = {
            let mut pending = self
                .pending
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            pending.drain().map(|(_, r)| r).collect()
        };
        if batch.is_empty() {
            return Ok(0);
        }
        let ctx = Ctx::system(request_id, "auth:api_key_usage", None);
        match self.service.record_usage(&ctx, batch.clone()).await {
            Ok(n) => Ok(n),
            Err(err) => {
                let mut pending = self
                    .pending
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                for r in batch {
                    let entry = pending.entry(r.key_id).or_insert(UsageRecord { count: 0, ..r });
                    if r.at >= entry.at {
                        entry.at = r.at;
                        entry.ip = r.ip;
                    }
                    entry.count = entry.count.saturating_add(r.count);
                }
                Err(Error::from_tenancy(err))
            }
        }
    }

    /// Flushes every `interval` until the returned task is aborted; abort it and call [`Self::flush`] once more
    /// at shutdown.
    pub fn spawn_flusher(
        self: &Arc<Self>,
        interval: Duration,
        ids: Arc<dyn avb_core::IdGen>,
    ) -> tokio::task::JoinHandle<()> {
        let me = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(err) = me.flush(RequestId::generate(ids.as_ref())).await {
                    tracing::warn!(error = %err, "api key usage flush failed; will retry");
                }
            }
        })
    }
}
