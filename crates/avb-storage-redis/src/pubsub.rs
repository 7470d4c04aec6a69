//! [`RedisEventBus`]: the event-bus port (spec §8.5) on Redis pub/sub, so an event published on one replica
//! reaches the subscribers of every replica.

use crate::link::{Link, map_err};
use crate::store::RedisStore;
use async_trait::async_trait;
use avb_core::events::{BusEvent, Delivery, EventBus, Group, Subscription};
use avb_core::{Ctx, Error, Result};
use redis::aio::ConnectionManager;
use redis::{PushInfo, PushKind, Value};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;
use tokio::sync::mpsc::error::{TryRecvError, TrySendError};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// Deliveries buffered per subscription before it is told it lagged.
const DEFAULT_BUFFER: usize = 256;
/// How often the pub/sub connection is pinged: a ping on a dead connection starts a reconnect even after the
/// driver's own reconnect attempts ran out during a long outage.
const DEFAULT_KEEPALIVE: Duration = Duration::from_secs(2);

/// What travels on a channel: the group in full (with its tenant) and the event.
#[derive(Serialize, Deserialize)]
struct Envelope {
    group: Group,
    event: BusEvent,
}

/// Borrowing twin of [`Envelope`] for publishing without cloning the event.
#[derive(Serialize)]
struct EnvelopeRef<'a> {
    group: &'a Group,
    event: &'a BusEvent,
}

/// Publish/subscribe across replicas on Redis channels named `{prefix}:group:{group.name()}` (the spec's
/// `tenant_{id}`, `user_{id}`, `session_{id}`).
///
/// - `publish` is `PUBLISH` on the store's shared connection; the payload is JSON of the group and the event.
/// - Each bus holds one dedicated pub/sub connection (RESP3 pushes) for all its subscriptions: the first
///   local subscriber of a group `SUBSCRIBE`s its channel before `subscribe` returns, the last one to be dropped
///   `UNSUBSCRIBE`s it. Incoming messages fan out to local subscribers through bounded channels (256 by
///   default); a subscriber that falls behind loses the newest events and receives [`Delivery::Lagged`] with
///   their count, and never slows the connection or the other subscribers.
/// - Tenant isolation: both calls refuse groups outside `ctx.storage_scope()` with `not_found`, and a message
///   reaches only subscribers of the exact group it was published to, tenant included, so a forged group
///   that shares a channel name (another tenant's `user_{id}`) receives nothing.
/// - After a dropped connection or a Redis restart, the connection reconnects by itself (backoff up to 1 s)
///   and re-subscribes every channel; a keepalive ping restarts reconnecting after long outages. Every
///   subscription is told of the drop with [`Delivery::Lagged`] of unknown size (`missed: 0`).
///
/// Redis pub/sub is at-most-once: events published while this bus's connection is down are lost for its
/// subscribers (the contract promises delivery only to live subscriptions). Cloning shares the connection and
/// subscriptions; when the last clone is dropped, subscriptions end after their buffered deliveries.
#[derive(Clone)]
pub struct RedisEventBus {
    inner: Arc<BusInner>,
}

struct BusInner {
    publisher: Link,
    pubsub: ConnectionManager,
    registry: Arc<Registry>,
    /// Serialises (un)subscribing with registry changes, so a channel is subscribed on the server whenever it
    /// has local subscribers. Holds whether the barrier channel is subscribed yet.
    changes: tokio::sync::Mutex<bool>,
    buffer: usize,
    timeout: Duration,
    stop: CancellationToken,
}

impl Drop for BusInner {
    fn drop(&mut self) {
        self.stop.cancel();
        // Subscriptions end once their senders are gone, whatever the driver does with its push sender.
        self.registry.lock().clear();
    }
}

/// Local subscribers by channel, and the barriers waiting on this bus's private channel.
struct Registry {
    channels: Mutex<HashMap<String, Vec<Local>>>,
    next_id: AtomicU64,
    /// `{prefix}:bus:{uuid}`: only this bus listens here; a marker published to it comes back through the same
    /// ordered push path as every event.
    barrier_channel: String,
    barriers: Mutex<HashMap<u64, oneshot::Sender<()>>>,
}

/// One subscription's interest in one group.
struct Local {
    id: u64,
    group: Group,
    tx: mpsc::Sender<Delivery>,
    missed: Arc<AtomicU64>,
}

impl Registry {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Vec<Local>>> {
        // Every critical section leaves the map consistent, so a poisoned lock is still usable.
        self.channels.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Called by the connection's driver for every push frame: must not block.
    fn dispatch(&self, push: PushInfo) {
        if push.kind == PushKind::Disconnection {
            // Whatever is published until the driver has re-subscribed is lost: tell every subscription once,
            // with an unknown count, so one that keeps derived state (a cache) can drop it.
            let channels = self.lock();
            let mut told = std::collections::HashSet::new();
            for local in channels.values().flatten().filter(|l| told.insert(l.id)) {
                deliver_lag_unknown(local);
            }
            return;
        }
        if push.kind != PushKind::Message {
            return;
        }
        let mut data = push.data.into_iter();
        let (Some(Value::BulkString(channel)), Some(Value::BulkString(payload))) = (data.next(), data.next())
        else {
            return;
        };
        let Ok(channel) = String::from_utf8(channel) else {
            return;
        };
        if channel == self.barrier_channel {
            let marker = std::str::from_utf8(&payload)
                .ok()
                .and_then(|m| m.parse::<u64>().ok());
            let waiter = marker.and_then(|m| {
                self.barriers
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(&m)
            });
            if let Some(waiter) = waiter {
                let _ = waiter.send(());
            }
            return;
        }
        let channels = self.lock();
        let Some(locals) = channels.get(&channel) else {
            return;
        };
        let envelope: Envelope = match serde_json::from_slice(&payload) {
            Ok(envelope) => envelope,
            Err(err) => {
                tracing::warn!(%channel, error = %err, "ignoring a malformed event-bus message");
                return;
            }
        };
        for local in locals.iter().filter(|l| l.group == envelope.group) {
            deliver(
                local,
                Delivery::Event {
                    group: envelope.group,
                    event: envelope.event.clone(),
                },
            );
        }
    }
}

/// Hands one delivery to a subscriber without waiting: a full buffer drops it and counts it as missed, and the
/// count goes out as [`Delivery::Lagged`] in order, before the next delivery that fits.
fn deliver(local: &Local, delivery: Delivery) {
    let missed = local.missed.swap(0, Ordering::AcqRel);
    if missed > 0 {
        match local.tx.try_send(Delivery::Lagged { missed }) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                local.missed.fetch_add(missed + 1, Ordering::AcqRel);
                return;
            }
            Err(TrySendError::Closed(_)) => return,
        }
    }
    if let Err(TrySendError::Full(_)) = local.tx.try_send(delivery) {
        local.missed.fetch_add(1, Ordering::AcqRel);
    }
}

/// Reports a lag of unknown size (`missed: 0`), or the counted lag still pending; when the buffer is full the
/// subscriber learns of a lag anyway, from the count its next call reports.
fn deliver_lag_unknown(local: &Local) {
    let missed = local.missed.swap(0, Ordering::AcqRel);
    if let Err(TrySendError::Full(_)) = local.tx.try_send(Delivery::Lagged { missed }) {
        local.missed.fetch_add(missed.max(1), Ordering::AcqRel);
    }
}

/// Refuses groups the context may not see (another tenant's, or the platform group outside a system context) as
/// absent, like any other tenant's record.
fn ensure_visible(ctx: &Ctx, group: &Group) -> Result<()> {
    if group.visible_to(ctx)? {
        Ok(())
    } else {
        Err(Error::not_found("event_group", group.name()))
    }
}

/// Configures a [`RedisEventBus`].
#[derive(Debug, Clone)]
pub struct RedisEventBusBuilder {
    store: RedisStore,
    buffer: usize,
    keepalive: Duration,
}

impl RedisEventBusBuilder {
    /// Deliveries buffered per subscription before it lags (default 256, at least 1).
    #[must_use]
    pub fn buffer(mut self, buffer: usize) -> Self {
        self.buffer = buffer.max(1);
        self
    }

    /// Interval of the pub/sub connection's keepalive ping (default 2 s).
    #[must_use]
    pub fn keepalive(mut self, interval: Duration) -> Self {
        self.keepalive = interval.max(Duration::from_millis(10));
        self
    }

    /// Opens the bus's pub/sub connection (lazily when the store connects lazily).
    ///
    /// # Errors
    /// `service_unavailable` when the connection cannot be opened.
    pub async fn build(self) -> Result<RedisEventBus> {
        let registry = Arc::new(Registry {
            channels: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            barrier_channel: self.store.link().key(&format!("bus:{}", uuid::Uuid::new_v4())),
            barriers: Mutex::new(HashMap::new()),
        });
        let sink = Arc::clone(&registry);
        let pubsub = self
            .store
            .push_connection(move |push: PushInfo| {
                sink.dispatch(push);
                Ok::<(), std::convert::Infallible>(())
            })
            .await?;
        let stop = CancellationToken::new();
        let inner = Arc::new(BusInner {
            publisher: self.store.link().clone(),
            pubsub,
            registry,
            changes: tokio::sync::Mutex::new(false),
            buffer: self.buffer,
            timeout: self.store.config().command_timeout,
            stop: stop.clone(),
        });
        tokio::spawn(keepalive(Arc::downgrade(&inner), stop, self.keepalive));
        Ok(RedisEventBus { inner })
    }
}

/// Pings the pub/sub connection until the bus is dropped. The driver reconnects on its own after a drop; this
/// only matters once its reconnect attempts are used up (a Redis down for longer than they last), when the
/// next command is what starts a new round.
async fn keepalive(bus: Weak<BusInner>, stop: CancellationToken, every: Duration) {
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        let Some(inner) = bus.upgrade() else { return };
        let mut conn = inner.pubsub.clone();
        let timeout = inner.timeout;
        drop(inner);
        let _ = tokio::time::timeout(timeout, redis::cmd("PING").query_async::<Value>(&mut conn)).await;
    }
}

impl std::fmt::Debug for RedisEventBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisEventBus")
            .field("prefix", &self.inner.publisher.prefix())
            .field("buffer", &self.inner.buffer)
            .field("active_channels", &self.active_channels())
            .finish()
    }
}

impl RedisEventBus {
    /// A builder over `store`'s connection settings.
    pub fn builder(store: &RedisStore) -> RedisEventBusBuilder {
        RedisEventBusBuilder {
            store: store.clone(),
            buffer: DEFAULT_BUFFER,
            keepalive: DEFAULT_KEEPALIVE,
        }
    }

    pub(crate) async fn open(store: &RedisStore) -> Result<Self> {
        Self::builder(store).build().await
    }

    /// Number of channels this bus is subscribed to (groups with local subscribers).
    pub fn active_channels(&self) -> usize {
        self.inner.registry.lock().len()
    }

    /// The server-side id (`CLIENT ID`) of this bus's current pub/sub connection, for diagnostics with
    /// `CLIENT LIST` / `CLIENT KILL ID`; it changes after every reconnect.
    pub async fn pubsub_connection_id(&self) -> Result<i64> {
        let mut conn = self.inner.pubsub.clone();
        tokio::time::timeout(
            self.inner.timeout,
            redis::cmd("CLIENT").arg("ID").query_async(&mut conn),
        )
        .await
        .map_err(|_| Error::unavailable(crate::link::BACKEND, "CLIENT ID timed out"))?
        .map_err(map_err)
    }

    /// Waits until every message the server sent this bus's connection before now has been dispatched.
    ///
    /// A group that already has local subscribers is subscribed on the server, so an event published just
    /// before `subscribe` may still be on its way; registering the new subscription at once would replay it.
    /// A marker published to the bus's private channel travels behind that event (the server writes to one
    /// connection in order, and pushes are dispatched in order), so once the marker is back, the new
    /// subscription can be registered without seeing anything published before `subscribe` was called.
    async fn barrier(&self, ctx: &Ctx) -> Result<()> {
        let registry = &self.inner.registry;
        let marker = registry.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        registry
            .barriers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(marker, tx);
        let passed = self
            .inner
            .publisher
            .bounded(ctx, self.inner.timeout, async {
                let _: i64 = self
                    .inner
                    .publisher
                    .query(
                        ctx,
                        redis::cmd("PUBLISH").arg(&registry.barrier_channel).arg(marker),
                    )
                    .await?;
                rx.await
                    .map_err(|_| Error::unavailable(crate::link::BACKEND, "the pub/sub connection closed"))
            })
            .await;
        registry
            .barriers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&marker);
        passed
    }

    fn channel(&self, group: &Group) -> String {
        self.inner.publisher.key(&format!("group:{}", group.name()))
    }
}

#[async_trait]
impl EventBus for RedisEventBus {
    async fn publish(&self, ctx: &Ctx, group: Group, event: BusEvent) -> Result<()> {
        ensure_visible(ctx, &group)?;
        let payload = serde_json::to_vec(&EnvelopeRef {
            group: &group,
            event: &event,
        })
        .map_err(|e| Error::Internal(format!("event does not serialise: {e}")))?;
        let _receivers: i64 = self
            .inner
            .publisher
            .query(ctx, redis::cmd("PUBLISH").arg(self.channel(&group)).arg(payload))
            .await?;
        Ok(())
    }

    async fn subscribe(&self, ctx: &Ctx, groups: &[Group]) -> Result<Box<dyn Subscription>> {
        for group in groups {
            ensure_visible(ctx, group)?;
        }
        let mut unique: Vec<Group> = Vec::with_capacity(groups.len());
        for group in groups {
            if !unique.contains(group) {
                unique.push(*group);
            }
        }
        if unique.is_empty() {
            return Err(Error::invalid(
                "groups",
                "required",
                "subscribe to at least one group",
            ));
        }
        let channels: Vec<String> = unique.iter().map(|g| self.channel(g)).collect();

        let mut barrier_subscribed = self.inner.changes.lock().await;
        let (new, busy): (Vec<&String>, bool) = {
            let registry = self.inner.registry.lock();
            let mut new: Vec<&String> = channels.iter().filter(|c| !registry.contains_key(*c)).collect();
            new.dedup();
            let busy = new.len() < channels.len();
            (new, busy)
        };
        let mut to_subscribe: Vec<String> = new.into_iter().cloned().collect();
        if busy && !*barrier_subscribed {
            to_subscribe.push(self.inner.registry.barrier_channel.clone());
        }
        if !to_subscribe.is_empty() {
            let mut conn = self.inner.pubsub.clone();
            self.inner
                .publisher
                .bounded(ctx, self.inner.timeout, async move {
                    conn.subscribe(to_subscribe).await.map_err(map_err)
                })
                .await?;
            if busy {
                *barrier_subscribed = true;
            }
        }
        if busy {
            self.barrier(ctx).await?;
        }

        let (tx, rx) = mpsc::channel(self.inner.buffer);
        let missed = Arc::new(AtomicU64::new(0));
        let id = self.inner.registry.next_id.fetch_add(1, Ordering::Relaxed);
        {
            let mut registry = self.inner.registry.lock();
            for (group, channel) in unique.iter().zip(&channels) {
                registry.entry(channel.clone()).or_default().push(Local {
                    id,
                    group: *group,
                    tx: tx.clone(),
                    missed: Arc::clone(&missed),
                });
            }
        }
        Ok(Box::new(RedisSubscription {
            id,
            rx,
            missed,
            channels,
            bus: Arc::downgrade(&self.inner),
        }))
    }
}

/// A subscription of a [`RedisEventBus`]; dropping it unsubscribes.
struct RedisSubscription {
    id: u64,
    rx: mpsc::Receiver<Delivery>,
    missed: Arc<AtomicU64>,
    channels: Vec<String>,
    bus: Weak<BusInner>,
}

impl std::fmt::Debug for RedisSubscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSubscription")
            .field("channels", &self.channels)
            .field("buffered", &self.rx.len())
            .finish()
    }
}

#[async_trait]
impl Subscription for RedisSubscription {
    async fn next(&mut self) -> Option<Delivery> {
        match self.rx.try_recv() {
            Ok(delivery) => return Some(delivery),
            Err(TryRecvError::Empty) => {}
            Err(TryRecvError::Disconnected) => {
                let missed = self.missed.swap(0, Ordering::AcqRel);
                return (missed > 0).then_some(Delivery::Lagged { missed });
            }
        }
        // Drops counted while the buffer was full and not yet reported in line (no later delivery fitted).
        let missed = self.missed.swap(0, Ordering::AcqRel);
        if missed > 0 {
            return Some(Delivery::Lagged { missed });
        }
        self.rx.recv().await
    }
}

impl Drop for RedisSubscription {
    fn drop(&mut self) {
        let Some(bus) = self.bus.upgrade() else { return };
        let mut emptied = Vec::new();
        {
            let mut registry = bus.registry.lock();
            for channel in &self.channels {
                if let Some(locals) = registry.get_mut(channel) {
                    locals.retain(|l| l.id != self.id);
                    if locals.is_empty() {
                        registry.remove(channel);
                        emptied.push(channel.clone());
                    }
                }
            }
        }
        if emptied.is_empty() {
            return;
        }
        // UNSUBSCRIBE needs a round trip, which a destructor cannot wait for.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        runtime.spawn(async move {
            let _changing = bus.changes.lock().await;
            let gone: Vec<String> = {
                let registry = bus.registry.lock();
                emptied
                    .into_iter()
                    .filter(|c| !registry.contains_key(c))
                    .collect()
            };
            if gone.is_empty() {
                return;
            }
            let mut conn = bus.pubsub.clone();
            // A failure leaves an idle server-side subscription: its messages find no local subscriber and are
            // dropped, and the next subscriber of the group reuses it.
            let _ = tokio::time::timeout(bus.timeout, conn.unsubscribe(gone)).await;
        });
    }
}
