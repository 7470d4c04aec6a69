//! [`BillingSync`]: the scheduled usage sync (spec `sync-billing-usage`, every 15 minutes,
//! `sync_usage_to_lago`) and the tenant sync (spec `sync_tenant_to_billing`, on tenant creation and tier change).
//!
//! **Usage.** Ended sessions carry their usage (tokens, audio seconds) once they are final. A run first
//! *collects*: it lists the sessions created since the cursor, records the events of every final one in the
//! outbox (idempotent on the deterministic transaction id, so seeing a session twice is harmless), and moves the
//! cursor to the creation time of the oldest session still open — or to the run's start less
//! [`COLLECT_LAG`], so a session whose creation commits late is still seen. It then *flushes*: pending entries go
//! to the provider in batches of at most [`MAX_BATCH`]; an entry leaves `pending` only when the provider has it
//! (accepted or duplicate) or refused it for good (parked as `rejected`, with the reason). A flush that fails
//! counts the attempt on its entries and stops; they are resent by the next run. Nothing accepted is lost.
//!
//! Runs may overlap (two replicas): both may send the same entries, and the provider reports the second send as
//! duplicates, so the outcome is the same.

use crate::model::{BillingCustomer, MAX_BATCH, PlanAssignment, UsageEvent, customer_id};
use crate::provider::BillingProvider;
use crate::store::{BillingStore, TenantUsage};
use crate::{Error, Result};
use avb_core::audit::{AuditAction, NewAuditEntry};
use avb_core::{Ctx, PageRequest, TenantId};
use avb_tenancy::model::{Tenant, TenantStatus};
use avb_tenancy::service::TenancyDeps;
use avb_tenancy::store::SessionFilter;
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::json;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

/// Job kind of the usage sync.
pub const SYNC_USAGE_JOB: &str = "billing.sync_usage";
/// The spec's schedule name.
pub const SYNC_SCHEDULE: &str = "sync-billing-usage";
/// How often the usage sync runs (spec: `crontab(minute="*/15")`).
pub const SYNC_INTERVAL: Duration = Duration::from_secs(15 * 60);
/// Name of the cursor over sessions in the [`BillingStore`].
pub const SESSIONS_CURSOR: &str = "sessions";
/// How far behind the run's start the cursor stays at most, so sessions whose creation commits late are seen.
pub const COLLECT_LAG: Duration = Duration::from_secs(5 * 60);

/// Sessions listed per page while collecting.
const PAGE: u32 = 100;

/// What one usage sync did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UsageSyncReport {
    /// Sessions looked at.
    pub sessions_scanned: u64,
    /// Events newly recorded in the outbox.
    pub events_recorded: u64,
    /// Events the provider accepted.
    pub events_accepted: u64,
    /// Events the provider already had.
    pub events_duplicate: u64,
    /// Events the provider refused for good (parked).
    pub events_rejected: u64,
}

/// The billing sync.
#[derive(Debug, Clone)]
pub struct BillingSync {
    provider: Arc<dyn BillingProvider>,
    store: Arc<dyn BillingStore>,
    tenancy: TenancyDeps,
}

impl BillingSync {
    /// A sync over `provider` (wrap it in [`crate::retry::RetryingBillingProvider`] for production), `store`,
    /// and the tenancy storage, clock and ids of `tenancy`.
    pub fn new(
        provider: Arc<dyn BillingProvider>,
        store: Arc<dyn BillingStore>,
        tenancy: TenancyDeps,
    ) -> Self {
        Self {
            provider,
            store,
            tenancy,
        }
    }

    /// The provider.
    pub fn provider(&self) -> &Arc<dyn BillingProvider> {
        &self.provider
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn BillingStore> {
        &self.store
    }

    /// One run of the scheduled job: collect, then flush. `ctx` must see every tenant (a system context without
    /// tenant). The report of a run whose flush failed is lost with the error; the entries are not.
    pub async fn sync_usage(&self, ctx: &Ctx) -> Result<UsageSyncReport> {
        let mut report = UsageSyncReport::default();
        self.collect_usage(ctx, &mut report).await?;
        self.flush_usage(ctx, &mut report).await?;
        Ok(report)
    }

    /// Records the usage of sessions that ended since the cursor, and moves the cursor.
    pub async fn collect_usage(&self, ctx: &Ctx, report: &mut UsageSyncReport) -> Result<()> {
        let now = self.tenancy.clock.now();
        let from = self.store.cursor(ctx, SESSIONS_CURSOR).await?;
        let lag = TimeDelta::from_std(COLLECT_LAG).unwrap_or(TimeDelta::zero());
        let mut next_cursor = now - lag;
        let mut offset = 0u64;
        loop {
            let filter = SessionFilter {
                created_from: from,
                created_to: Some(now),
                ..SessionFilter::default()
            };
            let page = PageRequest::new(Some(PAGE), Some(offset))?;
            let sessions = self
                .tenancy
                .read(ctx, move |uow| {
                    Box::pin(async move { Ok(uow.sessions().list(&filter, page).await?) })
                })
                .await?
                .items;
            let listed = sessions.len();
            let mut usage = Vec::new();
            for session in &sessions {
                match UsageEvent::from_session(session) {
                    Some(events) => usage.extend(events.into_iter().map(|event| TenantUsage {
                        tenant_id: session.tenant_id,
                        event,
                    })),
                    None => next_cursor = next_cursor.min(session.created_at),
                }
            }
            if !usage.is_empty() {
                report.events_recorded += self.store.record_usage(ctx, &usage, now).await?;
            }
            report.sessions_scanned += listed as u64;
            if listed < PAGE as usize {
                break;
            }
            offset += u64::from(PAGE);
        }
        // Never move backwards: a cursor only grows, even if the clock is set back.
        let next_cursor = from.map_or(next_cursor, |f| next_cursor.max(f));
        self.store.set_cursor(ctx, SESSIONS_CURSOR, next_cursor).await
    }

    /// Sends every pending outbox entry, [`MAX_BATCH`] at a time.
    pub async fn flush_usage(&self, ctx: &Ctx, report: &mut UsageSyncReport) -> Result<()> {
        loop {
            let limit = u32::try_from(MAX_BATCH).unwrap_or(100);
            let entries = self.store.pending_usage(ctx, limit).await?;
            if entries.is_empty() {
                return Ok(());
            }
            let events: Vec<UsageEvent> = entries.iter().map(|e| e.event.clone()).collect();
            let ids: Vec<String> = events.iter().map(|e| e.transaction_id.clone()).collect();
            let outcome = match self.provider.send_events(ctx, &events).await {
                Ok(outcome) => outcome,
                Err(err) => {
                    tracing::warn!(error = %err, events = ids.len(), "billing: usage flush failed; entries stay pending");
                    self.store.mark_failed(ctx, &ids, &err.to_string()).await?;
                    return Err(err);
                }
            };
            let now = self.tenancy.clock.now();
            let sent: Vec<String> = outcome
                .accepted
                .iter()
                .chain(&outcome.duplicates)
                .cloned()
                .collect();
            self.store.mark_sent(ctx, &sent, now).await?;
            if !outcome.rejected.is_empty() {
                for rejected in &outcome.rejected {
                    tracing::error!(transaction_id = %rejected.transaction_id, reason = %rejected.reason, "billing: usage event rejected by the provider; parked");
                }
                self.store.mark_rejected(ctx, &outcome.rejected, now).await?;
            }
            report.events_accepted += outcome.accepted.len() as u64;
            report.events_duplicate += outcome.duplicates.len() as u64;
            report.events_rejected += outcome.rejected.len() as u64;
            let settled: BTreeSet<&str> = sent
                .iter()
                .map(String::as_str)
                .chain(outcome.rejected.iter().map(|r| r.transaction_id.as_str()))
                .collect();
            let unsettled: Vec<String> = ids
                .into_iter()
                .filter(|id| !settled.contains(id.as_str()))
                .collect();
            if !unsettled.is_empty() {
                // A provider that does not account for an event breaks its contract; stop rather than loop.
                let reason = "the provider did not report these events";
                self.store.mark_failed(ctx, &unsettled, reason).await?;
                return Err(Error::Unavailable(format!(
                    "{reason} ({} of the batch)",
                    unsettled.len()
                )));
            }
        }
    }

    /// Creates or updates the tenant's customer, puts it on its tier's plan, and sets the tenant's `billing_id`
    /// (audited) when it was not set yet. Deleted tenants are left alone. Repeating it is harmless.
    pub async fn sync_tenant(&self, ctx: &Ctx, tenant_id: TenantId) -> Result<Tenant> {
        let tenant = self
            .tenancy
            .read(ctx, move |uow| {
                Box::pin(async move { Ok(uow.tenants().get(tenant_id).await?) })
            })
            .await?;
        if tenant.status == TenantStatus::Deleted {
            return Ok(tenant);
        }
        self.provider
            .upsert_customer(ctx, &BillingCustomer::for_tenant(&tenant))
            .await?;
        self.provider
            .assign_plan(ctx, &PlanAssignment::for_tenant(&tenant))
            .await?;
        let billing_id = customer_id(tenant.id);
        if tenant.billing_id == billing_id {
            return Ok(tenant);
        }
        let now = self.tenancy.clock.now();
        let saved = self
            .tenancy
            .write(ctx, move |uow| {
                Box::pin(async move {
                    let mut current = uow.tenants().lock(tenant_id).await?;
                    if current.billing_id == billing_id {
                        return Ok(current);
                    }
                    let old = std::mem::replace(&mut current.billing_id, billing_id);
                    current.updated_at = now;
                    let saved = uow.tenants().update(current).await?;
                    uow.append_audit(
                        NewAuditEntry::new(AuditAction::Update, "tenant", saved.id)
                            .description("billing customer linked")
                            .values(
                                Some(json!({ "billing_id": old })),
                                Some(json!({ "billing_id": saved.billing_id })),
                            )
                            .tenant(saved.id),
                    )
                    .await?;
                    Ok(saved)
                })
            })
            .await?;
        tracing::info!(tenant_id = %saved.id, tier = %saved.tier, "tenant synced to billing");
        Ok(saved)
    }

    /// The earliest moment the cursor may point to after a run started at `now` (for tests and operators).
    pub fn cursor_bound(now: DateTime<Utc>) -> DateTime<Utc> {
        now - TimeDelta::from_std(COLLECT_LAG).unwrap_or(TimeDelta::zero())
    }
}
