//! Audit trail (spec §9.4): who did what to which resource, when, from where; hash-chained per tenant.
//!
//! Business writes record their audit entry inside the same unit of work as the change (see `avb-tenancy`'s
//! `UnitOfWork`), so a committed change is never missing from the trail. [`AuditSink`] is for events that are
//! not a write (logins, denied attempts, API calls).

use crate::ctx::Ctx;
use crate::error::Result;
use crate::ids::{AuditId, RequestId, TenantId};
use crate::page::{Page, PageRequest};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::net::IpAddr;

/// What kind of action was audited (spec §9.4 `Action`).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditAction {
    /// A resource was created.
    Create,
    /// A resource was changed.
    Update,
    /// A resource was deleted (or soft-deleted).
    Delete,
    /// A user logged in.
    Login,
    /// A user logged out.
    Logout,
    /// An API call worth recording.
    ApiCall,
    /// Roles or relationships changed.
    PermissionChange,
    /// Settings changed.
    SettingsChange,
    /// A billing event.
    BillingEvent,
}

impl AuditAction {
    /// Wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            AuditAction::Create => "create",
            AuditAction::Update => "update",
            AuditAction::Delete => "delete",
            AuditAction::Login => "login",
            AuditAction::Logout => "logout",
            AuditAction::ApiCall => "api_call",
            AuditAction::PermissionChange => "permission_change",
            AuditAction::SettingsChange => "settings_change",
            AuditAction::BillingEvent => "billing_event",
        }
    }
}

/// What the caller says about an action; who/where/when are filled from the [`Ctx`] by [`AuditEntry::seal`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewAuditEntry {
    /// The action.
    pub action: AuditAction,
    /// Resource type (`"tenant"`, `"api_key"`).
    pub resource_type: String,
    /// Resource id (may be empty).
    pub resource_id: String,
    /// Free text.
    pub description: String,
    /// Values before the change.
    pub old_values: Option<Value>,
    /// Values after the change.
    pub new_values: Option<Value>,
    /// Anything else.
    pub metadata: Value,
    /// The tenant the entry belongs to; defaults to the context's tenant.
    pub tenant_id: Option<TenantId>,
}

impl NewAuditEntry {
    /// An entry for `action` on `resource_type`/`resource_id`.
    pub fn new(action: AuditAction, resource_type: &str, resource_id: impl ToString) -> Self {
        Self {
            action,
            resource_type: resource_type.to_owned(),
            resource_id: resource_id.to_string(),
            description: String::new(),
            old_values: None,
            new_values: None,
            metadata: Value::Object(Default::default()),
            tenant_id: None,
        }
    }

    /// Sets the description.
    #[must_use]
    pub fn description(mut self, text: impl Into<String>) -> Self {
        self.description = text.into();
        self
    }

    /// Sets old and new values.
    #[must_use]
    pub fn values(mut self, old: Option<Value>, new: Option<Value>) -> Self {
        self.old_values = old;
        self.new_values = new;
        self
    }

    /// Sets metadata.
    #[must_use]
    pub fn metadata(mut self, metadata: Value) -> Self {
        self.metadata = metadata;
        self
    }

    /// Sets the tenant explicitly (admin actions on a tenant from a cross-tenant context).
    #[must_use]
    pub fn tenant(mut self, tenant: TenantId) -> Self {
        self.tenant_id = Some(tenant);
        self
    }
}

/// A stored audit entry (spec §9.4 fields plus its place in the tenant's hash chain).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Id.
    pub id: AuditId,
    /// When.
    pub timestamp: DateTime<Utc>,
    /// Actor id (user id or API-key id).
    pub actor_id: Option<uuid::Uuid>,
    /// Actor e-mail.
    pub actor_email: String,
    /// `user`, `api_key` or `system`.
    pub actor_type: String,
    /// Tenant (`None` for platform-level entries).
    pub tenant_id: Option<TenantId>,
    /// Client IP.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub ip_address: Option<IpAddr>,
    /// Client user agent (≤ 500 chars).
    pub user_agent: String,
    /// Action.
    pub action: AuditAction,
    /// Resource type.
    pub resource_type: String,
    /// Resource id.
    pub resource_id: String,
    /// Description.
    pub description: String,
    /// Values before.
    pub old_values: Option<Value>,
    /// Values after.
    pub new_values: Option<Value>,
    /// Metadata.
    pub metadata: Value,
    /// Request id.
    pub request_id: String,
    /// Position in the tenant's chain, from 1.
    pub sequence: u64,
    /// Hash of the previous entry of the chain ([`GENESIS_HASH`] for the first).
    pub prev_hash: String,
    /// SHA-256 over this entry's content and `prev_hash`.
    pub hash: String,
}

/// `prev_hash` of the first entry of every chain.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

impl AuditEntry {
    /// Completes `new` with actor, client and request from `ctx`, and links it after `prev` (the chain's last
    /// entry: `(sequence, hash)`, or `None` for the first).
    pub fn seal(
        new: NewAuditEntry,
        ctx: &Ctx,
        id: AuditId,
        timestamp: DateTime<Utc>,
        prev: Option<(u64, &str)>,
    ) -> Self {
        let principal = ctx.principal();
        let user_agent: String = ctx
            .client()
            .user_agent
            .as_deref()
            .unwrap_or_default()
            .chars()
            .take(500)
            .collect();
        let (sequence, prev_hash) = match prev {
            Some((seq, hash)) => (seq.saturating_add(1), hash.to_owned()),
            None => (1, GENESIS_HASH.to_owned()),
        };
        let mut entry = AuditEntry {
            id,
            timestamp,
            actor_id: principal.actor_id(),
            actor_email: principal.actor_email().to_owned(),
            actor_type: principal.actor_type().to_owned(),
            tenant_id: new.tenant_id.or(ctx.tenant()),
            ip_address: ctx.client().ip,
            user_agent,
            action: new.action,
            resource_type: new.resource_type,
            resource_id: new.resource_id,
            description: new.description,
            old_values: new.old_values,
            new_values: new.new_values,
            metadata: new.metadata,
            request_id: ctx.request_id().as_str().to_owned(),
            sequence,
            prev_hash,
            hash: String::new(),
        };
        entry.hash = entry.compute_hash();
        entry
    }

    /// The hash this entry should carry, from its content and `prev_hash`.
    pub fn compute_hash(&self) -> String {
        let content = serde_json::json!([
            self.id,
            self.timestamp
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            self.actor_id,
            self.actor_email,
            self.actor_type,
            self.tenant_id,
            self.ip_address,
            self.user_agent,
            self.action,
            self.resource_type,
            self.resource_id,
            self.description,
            self.old_values,
            self.new_values,
            self.metadata,
            self.request_id,
            self.sequence,
            self.prev_hash,
        ]);
        let mut hasher = Sha256::new();
        hasher.update(content.to_string().as_bytes());
        hex::encode(hasher.finalize())
    }
}

/// Where a hash chain is broken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("audit chain broken at sequence {sequence}: {reason}")]
pub struct ChainBreak {
    /// Sequence number of the first bad entry.
    pub sequence: u64,
    /// What is wrong.
    pub reason: &'static str,
}

/// Checks one tenant's chain, given its entries in ascending sequence order from the first.
pub fn verify_chain(entries: &[AuditEntry]) -> std::result::Result<(), ChainBreak> {
    let mut prev_hash = GENESIS_HASH;
    for (index, entry) in entries.iter().enumerate() {
        let expected_seq = index as u64 + 1;
        if entry.sequence != expected_seq {
            return Err(ChainBreak {
                sequence: entry.sequence,
                reason: "sequence gap or reorder",
            });
        }
        if entry.prev_hash != prev_hash {
            return Err(ChainBreak {
                sequence: entry.sequence,
                reason: "prev_hash does not match",
            });
        }
        if entry.compute_hash() != entry.hash {
            return Err(ChainBreak {
                sequence: entry.sequence,
                reason: "content does not match its hash",
            });
        }
        prev_hash = &entry.hash;
    }
    Ok(())
}

/// Filters for audit queries (spec §7 audit route: actor, action, resource, date range).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AuditFilter {
    /// Only this actor.
    pub actor_id: Option<uuid::Uuid>,
    /// Only this action.
    pub action: Option<AuditAction>,
    /// Only this resource type.
    pub resource_type: Option<String>,
    /// Only this resource id.
    pub resource_id: Option<String>,
    /// At or after.
    pub from: Option<DateTime<Utc>>,
    /// Before.
    pub to: Option<DateTime<Utc>>,
    /// Only this request.
    pub request_id: Option<RequestId>,
}

impl AuditFilter {
    /// True when `entry` passes every set filter (used by in-memory adapters).
    pub fn matches(&self, entry: &AuditEntry) -> bool {
        self.actor_id.is_none_or(|a| entry.actor_id == Some(a))
            && self.action.is_none_or(|a| entry.action == a)
            && self
                .resource_type
                .as_deref()
                .is_none_or(|r| entry.resource_type == r)
            && self.resource_id.as_deref().is_none_or(|r| entry.resource_id == r)
            && self.from.is_none_or(|f| entry.timestamp >= f)
            && self.to.is_none_or(|t| entry.timestamp < t)
            && self
                .request_id
                .as_ref()
                .is_none_or(|r| entry.request_id == r.as_str())
    }
}

/// Records audit entries that are not part of a business write (logins, denials, API calls).
///
/// # Contract
/// - `record` fills actor, client, request id and tenant from `ctx` and appends at the end of the tenant's chain
///   (sequence +1, `prev_hash` = the previous entry's hash); concurrent appends never fork a chain.
/// - Entries are immutable once recorded.
#[async_trait]
pub trait AuditSink: Send + Sync + std::fmt::Debug + 'static {
    /// Appends one entry.
    async fn record(&self, ctx: &Ctx, entry: NewAuditEntry) -> Result<AuditEntry>;
}

/// Reads the audit trail.
///
/// # Contract
/// - `query` returns only entries of the context's storage scope, newest first (timestamp, then sequence), with
///   the total count of matches.
/// - `chain` returns a tenant's whole chain in ascending sequence order, which [`verify_chain`] accepts unless
///   the store was tampered with.
#[async_trait]
pub trait AuditReader: Send + Sync + std::fmt::Debug + 'static {
    /// Filtered, paginated entries.
    async fn query(&self, ctx: &Ctx, filter: &AuditFilter, page: PageRequest) -> Result<Page<AuditEntry>>;
    /// One chain (`tenant = None` for platform-level entries).
    async fn chain(&self, ctx: &Ctx, tenant: Option<TenantId>) -> Result<Vec<AuditEntry>>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Principal, SequentialIds};

    #[test]
    fn a_chain_verifies_and_tampering_is_detected() {
        let ids = SequentialIds::default();
        let ctx = Ctx::new(RequestId::generate(&ids), Principal::system("t"));
        let t0 = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let mut chain: Vec<AuditEntry> = Vec::new();
        for i in 0..3 {
            let prev = chain.last().map(|e| (e.sequence, e.hash.as_str()));
            let e = AuditEntry::seal(
                NewAuditEntry::new(AuditAction::Create, "project", i),
                &ctx,
                AuditId::generate(&ids),
                t0,
                prev,
            );
            chain.push(e);
        }
        assert_eq!(verify_chain(&chain), Ok(()));
        chain[1].description = "edited".into();
        assert_eq!(verify_chain(&chain).unwrap_err().sequence, 2);
    }
}
