//! Event bus (spec §8.5): events published to a group reach every live subscriber of that group.

use crate::ctx::Ctx;
use crate::error::Result;
use crate::ids::{SessionId, TenantId, UserId};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A delivery group. Names follow the spec's channel groups: `tenant_{id}`, `user_{id}`, `session_{id}`.
///
/// Every group carries its tenant so adapters can refuse cross-tenant subscriptions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Group {
    /// Everyone of a tenant.
    Tenant {
        /// The tenant.
        tenant: TenantId,
    },
    /// One user.
    User {
        /// The user's tenant.
        tenant: TenantId,
        /// The user.
        user: UserId,
    },
    /// Watchers of one voice session.
    Session {
        /// The session's tenant.
        tenant: TenantId,
        /// The session.
        session: SessionId,
    },
}

impl Group {
    /// The spec's group name (`tenant_<uuid>`).
    pub fn name(&self) -> String {
        match self {
            Group::Tenant { tenant } => format!("tenant_{tenant}"),
            Group::User { user, .. } => format!("user_{user}"),
            Group::Session { session, .. } => format!("session_{session}"),
        }
    }

    /// The tenant the group belongs to.
    pub fn tenant(&self) -> TenantId {
        match self {
            Group::Tenant { tenant } | Group::User { tenant, .. } | Group::Session { tenant, .. } => *tenant,
        }
    }
}

/// An event as published (`type` is the spec's event name: `notification`, `theme.changed`, …).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BusEvent {
    /// Event type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Payload.
    pub data: Value,
    /// When it was published.
    pub timestamp: DateTime<Utc>,
}

/// What a subscription yields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Delivery {
    /// An event of one of the subscribed groups.
    Event {
        /// The group it was published to.
        group: Group,
        /// The event.
        event: BusEvent,
    },
    /// The subscriber fell behind and `missed` events were dropped for it (bounded buffers: a slow
    /// subscriber never makes the publisher wait or the bus grow without bound).
    Lagged {
        /// How many were dropped.
        missed: u64,
    },
}

/// A live subscription; dropping it unsubscribes.
#[async_trait]
pub trait Subscription: Send + std::fmt::Debug {
    /// The next delivery; `None` once the bus is closed.
    async fn next(&mut self) -> Option<Delivery>;
}

/// Publish/subscribe across the process (memory) or across replicas (Redis).
///
/// # Contract
/// - An event published to a group after `subscribe` returned reaches that subscription exactly once, in publish
///   order per publisher and group; events published before it are not replayed.
/// - A subscription never receives events of groups it did not subscribe to.
/// - `publish` and `subscribe` refuse groups outside the context's storage scope with `not_found`.
/// - Publishing with no subscribers succeeds and is dropped.
#[async_trait]
pub trait EventBus: Send + Sync + std::fmt::Debug + 'static {
    /// Publishes `event` to `group`.
    async fn publish(&self, ctx: &Ctx, group: Group, event: BusEvent) -> Result<()>;
    /// Subscribes to every group in `groups`.
    async fn subscribe(&self, ctx: &Ctx, groups: &[Group]) -> Result<Box<dyn Subscription>>;
}
