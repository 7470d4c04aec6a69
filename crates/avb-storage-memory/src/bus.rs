//! In-memory [`EventBus`] (spec §8.5): the channel-layer groups `tenant_…`, `user_…`, `session_…` of one process.

use async_trait::async_trait;
use avb_core::events::{BusEvent, Delivery, EventBus, Group, Subscription};
use avb_core::{Ctx, Error, Result};
use futures::StreamExt;
use futures::stream::{BoxStream, SelectAll};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use tokio::sync::broadcast;

/// Events buffered per group for its slowest subscriber before that subscriber is told it lagged.
const DEFAULT_BUFFER: usize = 256;

/// A process-local bus with one bounded tokio broadcast channel per group that has subscribers.
///
/// One channel per group, rather than one shared channel filtered by each subscriber, keeps tenants apart:
/// a subscriber is only woken for its own groups, and a burst on one tenant's group cannot push another
/// tenant's subscribers into lag. Channels exist only while their group has subscribers: publishing to a
/// group nobody listens to allocates nothing, and the last subscription of a group to be dropped removes its
/// channel, so memory follows live sessions, not every session ever seen.
///
/// A subscriber more than the buffer size behind loses the oldest events of that group and receives
/// [`Delivery::Lagged`] with their count instead; the publisher never waits. Cloning shares the groups; when
/// every clone is dropped, subscriptions end after their buffered events.
#[derive(Clone)]
pub struct MemoryEventBus {
    registry: Arc<Registry>,
}

struct Registry {
    buffer: usize,
    groups: Mutex<HashMap<Group, broadcast::Sender<Arc<BusEvent>>>>,
}

impl Registry {
    fn lock(&self) -> MutexGuard<'_, HashMap<Group, broadcast::Sender<Arc<BusEvent>>>> {
        // Every critical section leaves the map consistent, so a poisoned lock is still usable.
        self.groups.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl MemoryEventBus {
    /// A bus buffering 256 events per group.
    pub fn new() -> Self {
        Self::with_buffer(DEFAULT_BUFFER)
    }

    /// A bus buffering `buffer` events per group (at least one).
    pub fn with_buffer(buffer: usize) -> Self {
        Self {
            registry: Arc::new(Registry {
                buffer: buffer.max(1),
                groups: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Number of groups that currently have a channel (that is, subscribers).
    pub fn active_groups(&self) -> usize {
        self.registry.lock().len()
    }
}

impl Default for MemoryEventBus {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for MemoryEventBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryEventBus")
            .field("buffer", &self.registry.buffer)
            .field("active_groups", &self.active_groups())
            .finish()
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

fn group_stream(group: Group, rx: broadcast::Receiver<Arc<BusEvent>>) -> BoxStream<'static, Delivery> {
    futures::stream::unfold(rx, move |mut rx| async move {
        let delivery = match rx.recv().await {
            Ok(event) => Delivery::Event {
                group,
                event: Arc::unwrap_or_clone(event),
            },
            Err(broadcast::error::RecvError::Lagged(missed)) => Delivery::Lagged { missed },
            Err(broadcast::error::RecvError::Closed) => return None,
        };
        Some((delivery, rx))
    })
    .boxed()
}

#[async_trait]
impl EventBus for MemoryEventBus {
    async fn publish(&self, ctx: &Ctx, group: Group, event: BusEvent) -> Result<()> {
        ensure_visible(ctx, &group)?;
        if let Some(sender) = self.registry.lock().get(&group) {
            // Fails only when no receiver is left, which the contract says is a silent drop.
            let _ = sender.send(Arc::new(event));
        }
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

        let mut streams = SelectAll::new();
        {
            let mut map = self.registry.lock();
            for group in &unique {
                let sender = map
                    .entry(*group)
                    .or_insert_with(|| broadcast::channel(self.registry.buffer).0);
                streams.push(group_stream(*group, sender.subscribe()));
            }
        }
        Ok(Box::new(MemorySubscription {
            streams,
            groups: unique,
            registry: Arc::downgrade(&self.registry),
        }))
    }
}

/// A subscription to one or more groups; dropping it unsubscribes and frees channels nobody else uses.
struct MemorySubscription {
    /// One stream per group, polled fairly so a busy group cannot starve a quiet one.
    streams: SelectAll<BoxStream<'static, Delivery>>,
    groups: Vec<Group>,
    /// Weak, so live subscriptions do not keep a dropped bus's channels open.
    registry: Weak<Registry>,
}

impl std::fmt::Debug for MemorySubscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemorySubscription")
            .field("groups", &self.groups)
            .finish()
    }
}

#[async_trait]
impl Subscription for MemorySubscription {
    async fn next(&mut self) -> Option<Delivery> {
        self.streams.next().await
    }
}

impl Drop for MemorySubscription {
    fn drop(&mut self) {
        // Drop the receivers first, so the counts below no longer include this subscription.
        drop(std::mem::take(&mut self.streams));
        let Some(registry) = self.registry.upgrade() else {
            return;
        };
        let mut map = registry.lock();
        for group in &self.groups {
            // Subscribing happens under the same lock, so a count of zero cannot race with a new receiver.
            if map.get(group).is_some_and(|sender| sender.receiver_count() == 0) {
                map.remove(group);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use avb_core::{RequestId, SequentialIds, TenantId, UserId};
    use chrono::{DateTime, Utc};
    use std::time::Duration;

    fn tenant_ctx(tenant: TenantId) -> Ctx {
        Ctx::system(
            RequestId::generate(&SequentialIds::default()),
            "test",
            Some(tenant),
        )
    }

    fn event(n: i64) -> BusEvent {
        BusEvent {
            kind: "notification".into(),
            data: serde_json::json!({ "n": n }),
            timestamp: DateTime::<Utc>::UNIX_EPOCH,
        }
    }

    fn n_of(delivery: Option<Delivery>) -> i64 {
        match delivery {
            Some(Delivery::Event { event, .. }) => event.data["n"].as_i64().unwrap(),
            other => panic!("expected an event, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_slow_subscriber_is_told_how_many_events_it_missed() {
        let bus = MemoryEventBus::with_buffer(4);
        let tenant = TenantId(uuid::Uuid::new_v4());
        let ctx = tenant_ctx(tenant);
        let group = Group::Tenant { tenant };
        let mut slow = bus.subscribe(&ctx, &[group]).await.unwrap();
        let mut fast = bus.subscribe(&ctx, &[group]).await.unwrap();

        for n in 0..10 {
            bus.publish(&ctx, group, event(n)).await.unwrap();
            assert_eq!(
                n_of(fast.next().await),
                n,
                "a subscriber that keeps up sees everything"
            );
        }
        assert_eq!(slow.next().await, Some(Delivery::Lagged { missed: 6 }));
        for n in 6..10 {
            assert_eq!(
                n_of(slow.next().await),
                n,
                "after the lag notice come the newest buffered events"
            );
        }
    }

    #[tokio::test]
    async fn channels_exist_only_while_their_group_has_subscribers() {
        let bus = MemoryEventBus::new();
        let tenant = TenantId(uuid::Uuid::new_v4());
        let ctx = tenant_ctx(tenant);
        let shared = Group::Tenant { tenant };

        bus.publish(&ctx, shared, event(0)).await.unwrap();
        assert_eq!(
            bus.active_groups(),
            0,
            "publishing to an unwatched group allocates nothing"
        );

        let keeper = bus.subscribe(&ctx, &[shared]).await.unwrap();
        for _ in 0..1_000 {
            let user = Group::User {
                tenant,
                user: UserId(uuid::Uuid::new_v4()),
            };
            let session = bus.subscribe(&ctx, &[user, shared]).await.unwrap();
            drop(session);
        }
        assert_eq!(
            bus.active_groups(),
            1,
            "only the group still watched keeps a channel"
        );
        drop(keeper);
        assert_eq!(bus.active_groups(), 0);
    }

    #[tokio::test]
    async fn subscriptions_end_when_the_bus_is_dropped() {
        let bus = MemoryEventBus::new();
        let tenant = TenantId(uuid::Uuid::new_v4());
        let ctx = tenant_ctx(tenant);
        let group = Group::Tenant { tenant };
        let mut sub = bus.subscribe(&ctx, &[group]).await.unwrap();
        bus.publish(&ctx, group, event(1)).await.unwrap();
        drop(bus);

        assert_eq!(n_of(sub.next().await), 1, "buffered events are still delivered");
        let end = tokio::time::timeout(Duration::from_secs(1), sub.next())
            .await
            .unwrap();
        assert_eq!(end, None);
    }

    #[tokio::test]
    async fn subscribing_to_no_group_is_invalid() {
        let bus = MemoryEventBus::new();
        let got = bus
            .subscribe(&tenant_ctx(TenantId(uuid::Uuid::new_v4())), &[])
            .await;
        assert!(matches!(got, Err(Error::Invalid(_))), "got {got:?}");
    }

    #[tokio::test]
    async fn clones_share_groups() {
        let bus = MemoryEventBus::new();
        let clone = bus.clone();
        let tenant = TenantId(uuid::Uuid::new_v4());
        let ctx = tenant_ctx(tenant);
        let group = Group::Tenant { tenant };
        let mut sub = bus.subscribe(&ctx, &[group]).await.unwrap();
        clone.publish(&ctx, group, event(7)).await.unwrap();
        assert_eq!(n_of(sub.next().await), 7);
    }
}
