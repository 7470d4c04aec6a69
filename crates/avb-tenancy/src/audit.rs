//! Reading the audit trail (spec §9.4): filtered, tenant-scoped queries and hash-chain verification.
//!
//! Writes never go through here: every service appends its audit entry inside the unit of work of its change
//! (see [`crate::store::UnitOfWork::append_audit`]). This module also holds the snapshot helper those services use
//! to put old/new values into entries without secrets.

use crate::error::{Error, Result};
use avb_core::audit::{AuditAction, AuditEntry, AuditFilter, AuditReader, ChainBreak};
use avb_core::{Ctx, FieldErrors, Page, PageRequest, TenantId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;

/// Longest `resource_type` the spec stores (`max_length=50`).
const RESOURCE_TYPE_MAX: usize = 50;
/// Longest `resource_id` the spec stores (`max_length=255`).
const RESOURCE_ID_MAX: usize = 255;

/// Serialises `record` for an audit entry's old/new values, dropping `redact`ed top-level fields (hashes,
/// secrets). Spec §9.4 keeps old and new values; they must never let a reader recover a credential.
pub(crate) fn snapshot<T: Serialize>(record: &T, redact: &[&str]) -> Value {
    let mut value = serde_json::to_value(record).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut value {
        for field in redact {
            map.remove(*field);
        }
    }
    value
}

/// An audit query as a client sends it (REST `GET /audit?actor_id=…&action=…`). Wire names are validated, not
/// trusted, so a bad value is a `validation_error` listing every bad field.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct AuditQuery {
    /// Only entries by this actor (user id or API-key id).
    pub actor_id: Option<uuid::Uuid>,
    /// Only this action, by wire name (`create`, `settings_change`, …).
    pub action: Option<String>,
    /// Only this resource type (`api_key`, `session`, …).
    pub resource_type: Option<String>,
    /// Only this resource id.
    pub resource_id: Option<String>,
    /// At or after.
    pub from: Option<DateTime<Utc>>,
    /// Before.
    pub to: Option<DateTime<Utc>>,
}

impl AuditQuery {
    /// Validates every field and turns the query into the reader's filter.
    pub fn to_filter(&self) -> Result<AuditFilter> {
        let mut errors = FieldErrors::new();
        let action = match self.action.as_deref() {
            None => None,
            Some(name) => {
                let parsed = parse_action(name);
                if parsed.is_none() {
                    errors.push("action", "choice", format!("unknown audit action '{name}'"));
                }
                parsed
            }
        };
        if let Some(kind) = &self.resource_type {
            crate::validation::length(&mut errors, "resource_type", kind, 1, RESOURCE_TYPE_MAX);
        }
        if let Some(id) = &self.resource_id {
            crate::validation::length(&mut errors, "resource_id", id, 1, RESOURCE_ID_MAX);
        }
        if let (Some(from), Some(to)) = (self.from, self.to)
            && from >= to
        {
            errors.push("to", "range", "must be after 'from'");
        }
        errors.into_result()?;
        Ok(AuditFilter {
            actor_id: self.actor_id,
            action,
            resource_type: self.resource_type.clone(),
            resource_id: self.resource_id.clone(),
            from: self.from,
            to: self.to,
            request_id: None,
        })
    }
}

/// Parses an [`AuditAction`] wire name through its serde names, so the accepted set is exactly the one written.
pub fn parse_action(name: &str) -> Option<AuditAction> {
    serde_json::from_value(Value::String(name.to_owned())).ok()
}

/// The outcome of checking one tenant's hash chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainReport {
    /// The chain checked (`None`: platform-level entries).
    pub tenant_id: Option<TenantId>,
    /// Entries read.
    pub entries: u64,
    /// `Ok` when intact, else where it first breaks.
    pub result: std::result::Result<(), ChainBreak>,
}

impl ChainReport {
    /// True when no entry was altered, removed or reordered.
    pub fn is_intact(&self) -> bool {
        self.result.is_ok()
    }
}

/// Audit queries and chain verification over the [`AuditReader`] port.
///
/// Who may query (`tenant#view_audit`, spec §6.4) is decided by the API layer; this service enforces scoping: a
/// tenant context only ever sees its own tenant's entries, even if an adapter misbehaves.
#[derive(Debug, Clone)]
pub struct AuditService {
    reader: Arc<dyn AuditReader>,
}

impl AuditService {
    /// A service over `reader`.
    pub fn new(reader: Arc<dyn AuditReader>) -> Self {
        Self { reader }
    }

    /// Entries matching `query`, newest first, in the context's storage scope.
    ///
    /// Fails closed: if the adapter ever returns an entry of another tenant to a tenant-scoped context, the
    /// query is answered with an internal error instead of leaking it.
    pub async fn query(&self, ctx: &Ctx, query: AuditQuery, page: PageRequest) -> Result<Page<AuditEntry>> {
        let filter = query.to_filter()?;
        ctx.storage_scope()?;
        let found = self.reader.query(ctx, &filter, page).await?;
        if let Some(tenant) = ctx.tenant()
            && found.items.iter().any(|e| e.tenant_id != Some(tenant))
        {
            tracing::error!(%tenant, "audit reader returned entries outside the tenant scope");
            return Err(Error::Store(avb_core::Error::Internal(
                "audit reader ignored the tenant scope".into(),
            )));
        }
        Ok(found)
    }

    /// Verifies the hash chain of `tenant` (`None`: the platform-level chain). A tenant context may only verify
    /// its own chain; asking for another answers `not_found`, so other tenants' existence does not leak.
    pub async fn verify_chain(&self, ctx: &Ctx, tenant: Option<TenantId>) -> Result<ChainReport> {
        ctx.storage_scope()?;
        if let Some(own) = ctx.tenant()
            && tenant != Some(own)
        {
            return Err(Error::NotFound {
                resource: "tenant",
                id: tenant.map(|t| t.to_string()).unwrap_or_default(),
            });
        }
        let chain = self.reader.chain(ctx, tenant).await?;
        Ok(ChainReport {
            tenant_id: tenant,
            entries: chain.len() as u64,
            result: avb_core::audit::verify_chain(&chain),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use avb_core::HasCode;

    #[test]
    fn every_action_wire_name_parses_and_unknown_ones_do_not() {
        for action in [
            AuditAction::Create,
            AuditAction::Update,
            AuditAction::Delete,
            AuditAction::Login,
            AuditAction::Logout,
            AuditAction::ApiCall,
            AuditAction::PermissionChange,
            AuditAction::SettingsChange,
            AuditAction::BillingEvent,
        ] {
            assert_eq!(parse_action(action.as_str()), Some(action));
        }
        assert_eq!(parse_action("Create"), None);
        assert_eq!(parse_action("drop_table"), None);
    }

    #[test]
    fn a_query_reports_every_bad_field_at_once() {
        let t = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let query = AuditQuery {
            action: Some("explode".into()),
            resource_type: Some("x".repeat(51)),
            resource_id: Some(String::new()),
            from: Some(t),
            to: Some(t),
            ..Default::default()
        };
        let err = query.to_filter().unwrap_err();
        assert_eq!(err.code(), avb_core::ErrorCode::ValidationError);
        let Error::Invalid(fields) = err else {
            panic!("expected validation error")
        };
        let names: Vec<_> = fields.0.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(names, ["action", "resource_type", "resource_id", "to"]);
    }

    #[test]
    fn a_valid_query_becomes_the_same_filter() {
        let from = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let to = DateTime::from_timestamp(1_700_000_100, 0).unwrap();
        let actor = uuid::Uuid::from_u128(7);
        let query = AuditQuery {
            actor_id: Some(actor),
            action: Some("settings_change".into()),
            resource_type: Some("theme".into()),
            resource_id: Some("abc".into()),
            from: Some(from),
            to: Some(to),
        };
        let filter = query.to_filter().unwrap();
        assert_eq!(filter.actor_id, Some(actor));
        assert_eq!(filter.action, Some(AuditAction::SettingsChange));
        assert_eq!(filter.resource_type.as_deref(), Some("theme"));
        assert_eq!(filter.resource_id.as_deref(), Some("abc"));
        assert_eq!((filter.from, filter.to), (Some(from), Some(to)));
    }

    #[test]
    fn snapshots_drop_redacted_fields_only() {
        let value = serde_json::json!({"name": "k", "key_hash": "secret", "nested": {"key_hash": "kept"}});
        let snap = snapshot(&value, &["key_hash"]);
        assert_eq!(
            snap,
            serde_json::json!({"name": "k", "nested": {"key_hash": "kept"}})
        );
    }
}
