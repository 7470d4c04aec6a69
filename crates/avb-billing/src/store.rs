//! What the sync must remember durably: the usage outbox, its cursor over ended sessions, and the webhook keys
//! already handled.

use crate::Result;
use crate::model::{RejectedEvent, UsageEvent};
use async_trait::async_trait;
use avb_core::{Ctx, TenantId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Where an outbox entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutboxState {
    /// Not yet acknowledged by the provider; the next flush sends it.
    Pending,
    /// The provider has it (accepted, or already had it).
    Sent,
    /// The provider refused it for good; kept with the reason for an operator, never resent.
    Rejected,
}

impl OutboxState {
    /// Wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Sent => "sent",
            Self::Rejected => "rejected",
        }
    }

    /// Parses a wire name.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "pending" => Some(Self::Pending),
            "sent" => Some(Self::Sent),
            "rejected" => Some(Self::Rejected),
            _ => None,
        }
    }
}

/// A usage event to record for a tenant.
#[derive(Debug, Clone, PartialEq)]
pub struct TenantUsage {
    /// The tenant billed.
    pub tenant_id: TenantId,
    /// The event.
    pub event: UsageEvent,
}

/// A stored outbox entry.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxEntry {
    /// The tenant billed.
    pub tenant_id: TenantId,
    /// The event, as it will be sent.
    pub event: UsageEvent,
    /// State.
    pub state: OutboxState,
    /// Failed flush attempts so far.
    pub attempts: u32,
    /// The last failure or the rejection reason.
    pub last_error: Option<String>,
    /// When it was recorded.
    pub recorded_at: DateTime<Utc>,
    /// When it left `pending`.
    pub settled_at: Option<DateTime<Utc>>,
}

/// Durable state of the billing sync.
///
/// # Contract
/// - `record_usage` adds each event as `Pending`, unless an entry with its transaction id already exists in any
///   state, which is left unchanged (recording is idempotent, so a collector may see a session twice). It
///   returns how many were added. Every entry's tenant must be visible in the context's scope
///   (`tenant_required`/`not_found` otherwise, and nothing is written).
/// - `pending_usage` returns at most `limit` `Pending` entries visible in the context's scope, oldest recorded
///   first (insertion order).
/// - `mark_sent` and `mark_rejected` settle `Pending` entries (`settled_at` = `at`; a rejection keeps its
///   reason in `last_error`); settled entries never come back from `pending_usage`. Settling an entry already
///   settled, or an unknown id, changes nothing.
/// - `mark_failed` counts a failed attempt on `Pending` entries (`attempts` + 1, `last_error`); they stay
///   pending.
/// - `usage_entry` reads one entry in the scope, `not_found` otherwise.
/// - `cursor` returns what `set_cursor` last stored under the name (`None` before).
/// - `claim_webhook` returns `true` for the first claim of a key and `false` while it stays claimed, even under
///   concurrent claims; `release_webhook` forgets a claim so the key can be claimed again.
#[async_trait]
pub trait BillingStore: Send + Sync + std::fmt::Debug + 'static {
    /// Adds events to the outbox (idempotent on transaction id).
    async fn record_usage(&self, ctx: &Ctx, usage: &[TenantUsage], at: DateTime<Utc>) -> Result<u64>;
    /// The oldest pending entries.
    async fn pending_usage(&self, ctx: &Ctx, limit: u32) -> Result<Vec<OutboxEntry>>;
    /// Settles entries the provider has.
    async fn mark_sent(&self, ctx: &Ctx, transaction_ids: &[String], at: DateTime<Utc>) -> Result<()>;
    /// Settles entries the provider refused for good.
    async fn mark_rejected(&self, ctx: &Ctx, rejected: &[RejectedEvent], at: DateTime<Utc>) -> Result<()>;
    /// Counts a failed attempt on pending entries.
    async fn mark_failed(&self, ctx: &Ctx, transaction_ids: &[String], error: &str) -> Result<()>;
    /// Reads one entry.
    async fn usage_entry(&self, ctx: &Ctx, transaction_id: &str) -> Result<OutboxEntry>;
    /// Reads a named cursor.
    async fn cursor(&self, ctx: &Ctx, name: &str) -> Result<Option<DateTime<Utc>>>;
    /// Stores a named cursor.
    async fn set_cursor(&self, ctx: &Ctx, name: &str, value: DateTime<Utc>) -> Result<()>;
    /// Claims a webhook delivery key; `false` when it was already claimed (a duplicate delivery).
    async fn claim_webhook(&self, ctx: &Ctx, key: &str, at: DateTime<Utc>) -> Result<bool>;
    /// Releases a claim (its handling failed, so the provider's retry must be handled).
    async fn release_webhook(&self, ctx: &Ctx, key: &str) -> Result<()>;
}
