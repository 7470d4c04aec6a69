//! [`RedisStore`]: one shared connection and the factories of every Redis adapter.

use crate::cache::RedisCache;
use crate::config::RedisConfig;
use crate::jobs::RedisJobQueue;
use crate::link::{BACKEND, Link, map_err};
use crate::pubsub::RedisEventBus;
use crate::rate_limit::{RedisRateLimiter, RedisRateLimiterBuilder};
use crate::tokens::RedisEphemeralTokens;
use avb_core::{Clock, Error, Result};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{ConnectionInfo, IntoConnectionInfo, ProtocolVersion};
use std::sync::Arc;
use std::time::Duration;

/// Shortest wait between reconnect attempts.
const RECONNECT_MIN_DELAY: Duration = Duration::from_millis(50);
/// Longest wait between reconnect attempts: a restarted Redis is picked up within about a second.
const RECONNECT_MAX_DELAY: Duration = Duration::from_secs(1);

/// A connection to one Redis, shared by every adapter made from it.
///
/// All adapters (cache, rate limiter, job queue, token store) multiplex their commands over one
/// [`ConnectionManager`], which reconnects by itself after a drop; the event bus adds one dedicated pub/sub
/// connection per bus. Cloning shares the connection.
///
/// Keys live under the configured prefix (`avb:`):
///
/// | key or channel | owner |
/// | --- | --- |
/// | `avb:t:{tenant}:…`, `avb:g:…` | [`RedisCache`] entries (spec §10.1) |
/// | `avb:lock:…`, `avb:lockfail:{token}` | [`RedisCache`] get-or-set locks |
/// | `avb:rl:{per_minute}-{per_hour}:{key}` | [`RedisRateLimiter`] state (spec §10.2) |
/// | channel `avb:group:{name}` | [`RedisEventBus`] (spec §8.5 group names) |
/// | `avb:jobs:…` | [`RedisJobQueue`] |
/// | `avb:ek:{sha256}` | [`RedisEphemeralTokens`] |
///
/// Redis Cluster is not supported: scripts touch keys they derive from data (a job's hash), which standalone and
/// replicated (Sentinel) deployments allow and Cluster does not.
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<StoreInner>,
}

struct StoreInner {
    config: RedisConfig,
    info: ConnectionInfo,
    link: Link,
    clock: Arc<dyn Clock>,
    lazy: bool,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("config", &self.inner.config)
            .field("lazy", &self.inner.lazy)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// A builder; see [`RedisStoreBuilder`](crate::RedisStoreBuilder).
    pub fn builder() -> crate::RedisStoreBuilder {
        crate::RedisStoreBuilder::new()
    }

    pub(crate) async fn connect(config: RedisConfig, clock: Arc<dyn Clock>, lazy: bool) -> Result<Self> {
        // The driver's parse errors may quote the URL, password included: answer with a fixed message.
        let info = config
            .url
            .as_str()
            .into_connection_info()
            .map_err(|_| Error::invalid("url", "format", "not a valid redis:// or redis+unix:// URL"))?;
        let conn = connection_manager(&config, info.clone(), None, lazy).await?;
        let link = Link::new(conn, &config.key_prefix, config.command_timeout);
        Ok(Self {
            inner: Arc::new(StoreInner {
                config,
                info,
                link,
                clock,
                lazy,
            }),
        })
    }

    /// The configuration in force.
    pub fn config(&self) -> &RedisConfig {
        &self.inner.config
    }

    /// `PING` within the command timeout, for `/health/ready`: `Err(service_unavailable)` when Redis cannot
    /// answer.
    pub async fn ping(&self) -> Result<()> {
        let mut conn = self.inner.link.conn();
        let timeout = self.inner.config.command_timeout;
        let pong = tokio::time::timeout(timeout, async move {
            redis::cmd("PING").query_async::<String>(&mut conn).await
        })
        .await
        .map_err(|_| Error::unavailable(BACKEND, format!("PING did not answer within {timeout:?}")))?
        .map_err(map_err)?;
        if pong == "PONG" {
            Ok(())
        } else {
            Err(Error::Internal(format!("redis answered PING with {pong:?}")))
        }
    }

    /// The tenant-scoped cache (spec §10.1).
    pub fn cache(&self) -> RedisCache {
        RedisCache::new(self.inner.link.clone())
    }

    /// The rate limiter with the default failure policies (see [`RedisRateLimiterBuilder`]).
    pub fn rate_limiter(&self) -> RedisRateLimiter {
        self.rate_limiter_builder().build()
    }

    /// A rate limiter builder, to choose failure policies, the decision timeout or a window clock.
    pub fn rate_limiter_builder(&self) -> RedisRateLimiterBuilder {
        RedisRateLimiterBuilder::new(self.inner.link.clone())
    }

    /// An event bus with its own pub/sub connection (spec §8.5): events published on any replica reach the
    /// subscribers of every replica.
    ///
    /// # Errors
    /// `service_unavailable` when the pub/sub connection cannot be opened (unless the store connects lazily).
    pub async fn event_bus(&self) -> Result<RedisEventBus> {
        RedisEventBus::open(self).await
    }

    /// The job queue on Redis Streams.
    pub fn job_queue(&self) -> RedisJobQueue {
        RedisJobQueue::new(self.inner.link.clone(), self.inner.clock.clone())
    }

    /// The store of realtime client-secret grants.
    pub fn ephemeral_tokens(&self) -> RedisEphemeralTokens {
        RedisEphemeralTokens::new(self.inner.link.clone())
    }

    pub(crate) fn link(&self) -> &Link {
        &self.inner.link
    }

    /// A RESP3 connection manager of its own (pub/sub pushes need RESP3 on a multiplexed connection), with
    /// `push` receiving every push frame and subscriptions replayed after each reconnect.
    pub(crate) async fn push_connection(
        &self,
        push: impl redis::aio::AsyncPushSender,
    ) -> Result<ConnectionManager> {
        let redis = self
            .inner
            .info
            .redis_settings()
            .clone()
            .set_protocol(ProtocolVersion::RESP3);
        let info = self.inner.info.clone().set_redis_settings(redis);
        connection_manager(&self.inner.config, info, Some(Box::new(push)), self.inner.lazy).await
    }
}

type BoxedPush = Box<dyn redis::aio::AsyncPushSender>;

async fn connection_manager(
    config: &RedisConfig,
    info: ConnectionInfo,
    push: Option<BoxedPush>,
    lazy: bool,
) -> Result<ConnectionManager> {
    let client =
        redis::Client::open(info).map_err(|_| Error::invalid("url", "format", "not a usable Redis URL"))?;
    let mut manager_config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(config.connect_timeout))
        .set_response_timeout(Some(config.command_timeout))
        .set_number_of_retries(config.reconnect_attempts)
        .set_min_delay(RECONNECT_MIN_DELAY)
        .set_max_delay(RECONNECT_MAX_DELAY);
    if let Some(push) = push {
        manager_config = manager_config
            .set_push_sender(PushForward(push))
            .set_automatic_resubscription();
    }
    if lazy {
        ConnectionManager::new_lazy_with_config(client, manager_config).map_err(map_err)
    } else {
        ConnectionManager::new_with_config(client, manager_config)
            .await
            .map_err(map_err)
    }
}

/// Adapts a boxed push sender to the driver's `impl AsyncPushSender` parameter.
struct PushForward(BoxedPush);

impl redis::aio::AsyncPushSender for PushForward {
    fn send(&self, info: redis::PushInfo) -> std::result::Result<(), redis::aio::SendError> {
        self.0.send(info)
    }
}
