//! Event bus (spec §8.5): events published to a group reach every live subscriber of that group.

use crate::ctx::{Ctx, StorageScope};
use crate::error::Result;
use crate::ids::{SessionId, TenantId, UserId};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A delivery group. Names follow the spec's channel groups: `tenant_{id}`, `user_{id}`, `session_{id}`, plus
/// `platform` for the replicas themselves.
///
/// Every tenant's group carries its tenant so adapters can refuse cross-tenant subscriptions; [`Group::Platform`]
/// belongs to no tenant and is open only to system contexts ([`Group::visible_to`]).
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
    /// Every replica of the platform (cache invalidations and other internal signals): only system principals
    /// without a tenant may publish or subscribe.
    Platform,
}

impl Group {
    /// The spec's group name (`tenant_<uuid>`).
    pub fn name(&self) -> String {
        match self {
            Group::Tenant { tenant } => format!("tenant_{tenant}"),
            Group::User { user, .. } => format!("user_{user}"),
            Group::Session { session, .. } => format!("session_{session}"),
            Group::Platform => "platform".to_owned(),
        }
    }

    /// The tenant the group belongs to, `None` for [`Group::Platform`].
    pub fn owner(&self) -> Option<TenantId> {
        match self {
            Group::Tenant { tenant } | Group::User { tenant, .. } | Group::Session { tenant, .. } => {
                Some(*tenant)
            }
            Group::Platform => None,
        }
    }

    /// The tenant the group belongs to; the nil id for [`Group::Platform`], which belongs to none (prefer
    /// [`Group::owner`]; kept for callers building a tenant context for a tenant's group).
    pub fn tenant(&self) -> TenantId {
        self.owner().unwrap_or(TenantId(uuid::Uuid::nil()))
    }

    /// Whether a context may publish to or subscribe to this group: a tenant's group within the context's
    /// storage scope; [`Group::Platform`] only for a system principal without a tenant.
    ///
    /// # Errors
    /// `tenant_required` when the context has no storage scope.
    pub fn visible_to(&self, ctx: &Ctx) -> Result<bool> {
        let scope = ctx.storage_scope()?;
        Ok(match self.owner() {
            Some(tenant) => scope.allows(tenant),
            None => {
                scope == StorageScope::AllTenants
                    && matches!(ctx.principal(), crate::Principal::System { .. })
            }
        })
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
    /// subscriber never makes the publisher wait or the bus grow without bound). `missed` is 0 when the count is
    /// unknown: a bus across replicas lost its broker connection, and events published meanwhile may be lost.
    Lagged {
        /// How many were dropped (0: unknown).
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
/// - `publish` and `subscribe` refuse groups the context may not see ([`Group::visible_to`]) with `not_found`.
/// - Publishing with no subscribers succeeds and is dropped.
#[async_trait]
pub trait EventBus: Send + Sync + std::fmt::Debug + 'static {
    /// Publishes `event` to `group`.
    async fn publish(&self, ctx: &Ctx, group: Group, event: BusEvent) -> Result<()>;
    /// Subscribes to every group in `groups`.
    async fn subscribe(&self, ctx: &Ctx, groups: &[Group]) -> Result<Box<dyn Subscription>>;
}
