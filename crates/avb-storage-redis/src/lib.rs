//! # avb-storage-redis
//!
//! Redis adapters for the AgentVoiceBox core ports, so any number of server replicas share one cache, one set
//! of rate-limit counters, one event bus and one job queue (spec §4 channel layers and caches, §8.5, §10, §11):
//!
//! - [`RedisCache`]: tenant-scoped keys (`{prefix}:t:{tenant}:…`), server-side TTLs, prefix invalidation by
//!   `SCAN`, and a get-or-set that computes once across processes.
//! - [`RedisRateLimiter`]: per-minute and per-hour limits in one atomic Lua script per check, on Redis's clock,
//!   with a per-caller-class [`FailurePolicy`] for when Redis is down.
//! - [`RedisEventBus`]: the spec's `tenant_…`/`user_…`/`session_…` groups on pub/sub channels, one dedicated
//!   connection per bus, re-subscribed after reconnects.
//! - [`RedisJobQueue`]: at-least-once jobs on Redis Streams with a consumer group, schedules and lease reclaim.
//! - [`RedisEphemeralTokens`]: realtime `ek_` client-secret grants, by hash, expiring with Redis TTLs.
//!
//! All adapters made from one [`RedisStore`] share a single multiplexed, self-reconnecting connection.
//! [`RedisStore::ping`] serves `/health/ready`. Driver errors never leave the crate: an unreachable or timed-out
//! Redis is `Error::Unavailable` (`service_unavailable`, HTTP 503), anything else `Error::Internal`.
//!
//! ```no_run
//! # async fn demo() -> avb_core::Result<()> {
//! use avb_storage_redis::RedisStoreBuilder;
//! let store = RedisStoreBuilder::from_env().build().await?; // REDIS_URL
//! let cache = store.cache();
//! let limiter = store.rate_limiter();
//! let bus = store.event_bus().await?;
//! let jobs = store.job_queue();
//! # let _ = (cache, limiter, bus, jobs);
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

mod cache;
mod config;
mod jobs;
mod link;
mod pubsub;
mod rate_limit;
mod store;
mod tokens;

pub use cache::RedisCache;
pub use config::{RedisConfig, RedisStoreBuilder};
pub use jobs::RedisJobQueue;
pub use pubsub::{RedisEventBus, RedisEventBusBuilder};
pub use rate_limit::{Checked, FailurePolicy, RedisRateLimiter, RedisRateLimiterBuilder};
pub use store::RedisStore;
pub use tokens::RedisEphemeralTokens;
