//! [`MemoryBillingStore`]: the billing sync's outbox, cursors and webhook claims in memory.

use async_trait::async_trait;
use avb_billing::model::{RejectedEvent, UsageEvent};
use avb_billing::store::{BillingStore, OutboxEntry, OutboxState, TenantUsage};
use avb_billing::{Error, Result};
use avb_core::{Ctx, StorageScope};
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

#[derive(Debug, Default)]
struct State {
    /// transaction id → (insertion sequence, entry)
    entries: BTreeMap<String, (u64, OutboxEntry)>,
    /// pending entries by insertion sequence
    pending: BTreeMap<u64, String>,
    next_seq: u64,
    cursors: BTreeMap<String, DateTime<Utc>>,
    webhooks: BTreeSet<String>,
}

/// The in-memory [`BillingStore`]. Cloning shares the state.
#[derive(Debug, Clone, Default)]
pub struct MemoryBillingStore {
    state: Arc<Mutex<State>>,
}

impl MemoryBillingStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn scope(ctx: &Ctx) -> Result<StorageScope> {
    Ok(ctx.storage_scope()?)
}

fn settle(state: &mut State, scope: &StorageScope, id: &str, apply: impl FnOnce(&mut OutboxEntry)) {
    if let Some((seq, entry)) = state.entries.get_mut(id)
        && scope.allows(entry.tenant_id)
        && entry.state == OutboxState::Pending
    {
        apply(entry);
        if entry.state != OutboxState::Pending {
            state.pending.remove(seq);
        }
    }
}

#[async_trait]
impl BillingStore for MemoryBillingStore {
    async fn record_usage(&self, ctx: &Ctx, usage: &[TenantUsage], at: DateTime<Utc>) -> Result<u64> {
        let scope = scope(ctx)?;
        if let Some(other) = usage.iter().find(|u| !scope.allows(u.tenant_id)) {
            return Err(avb_core::Error::not_found("tenant", other.tenant_id).into());
        }
        let mut state = self.state();
        let mut added = 0;
        for TenantUsage { tenant_id, event } in usage {
            if state.entries.contains_key(&event.transaction_id) {
                continue;
            }
            let seq = state.next_seq;
            state.next_seq += 1;
            let entry = OutboxEntry {
                tenant_id: *tenant_id,
                event: UsageEvent::clone(event),
                state: OutboxState::Pending,
                attempts: 0,
                last_error: None,
                recorded_at: at,
                settled_at: None,
            };
            state.entries.insert(event.transaction_id.clone(), (seq, entry));
            state.pending.insert(seq, event.transaction_id.clone());
            added += 1;
        }
        Ok(added)
    }

    async fn pending_usage(&self, ctx: &Ctx, limit: u32) -> Result<Vec<OutboxEntry>> {
        let scope = scope(ctx)?;
        let state = self.state();
        Ok(state
            .pending
            .values()
            .filter_map(|id| state.entries.get(id).map(|(_, e)| e))
            .filter(|e| scope.allows(e.tenant_id))
            .take(limit as usize)
            .cloned()
            .collect())
    }

    async fn mark_sent(&self, ctx: &Ctx, transaction_ids: &[String], at: DateTime<Utc>) -> Result<()> {
        let scope = scope(ctx)?;
        let mut state = self.state();
        for id in transaction_ids {
            settle(&mut state, &scope, id, |e| {
                e.state = OutboxState::Sent;
                e.settled_at = Some(at);
            });
        }
        Ok(())
    }

    async fn mark_rejected(&self, ctx: &Ctx, rejected: &[RejectedEvent], at: DateTime<Utc>) -> Result<()> {
        let scope = scope(ctx)?;
        let mut state = self.state();
        for r in rejected {
            settle(&mut state, &scope, &r.transaction_id, |e| {
                e.state = OutboxState::Rejected;
                e.settled_at = Some(at);
                e.last_error = Some(r.reason.clone());
            });
        }
        Ok(())
    }

    async fn mark_failed(&self, ctx: &Ctx, transaction_ids: &[String], error: &str) -> Result<()> {
        let scope = scope(ctx)?;
        let mut state = self.state();
        for id in transaction_ids {
            settle(&mut state, &scope, id, |e| {
                e.attempts = e.attempts.saturating_add(1);
                e.last_error = Some(error.to_owned());
            });
        }
        Ok(())
    }

    async fn usage_entry(&self, ctx: &Ctx, transaction_id: &str) -> Result<OutboxEntry> {
        let scope = scope(ctx)?;
        self.state()
            .entries
            .get(transaction_id)
            .map(|(_, e)| e)
            .filter(|e| scope.allows(e.tenant_id))
            .cloned()
            .ok_or_else(|| Error::from(avb_core::Error::not_found("usage_event", transaction_id)))
    }

    async fn cursor(&self, _ctx: &Ctx, name: &str) -> Result<Option<DateTime<Utc>>> {
        Ok(self.state().cursors.get(name).copied())
    }

    async fn set_cursor(&self, _ctx: &Ctx, name: &str, value: DateTime<Utc>) -> Result<()> {
        self.state().cursors.insert(name.to_owned(), value);
        Ok(())
    }

    async fn claim_webhook(&self, _ctx: &Ctx, key: &str, _at: DateTime<Utc>) -> Result<bool> {
        Ok(self.state().webhooks.insert(key.to_owned()))
    }

    async fn release_webhook(&self, _ctx: &Ctx, key: &str) -> Result<()> {
        self.state().webhooks.remove(key);
        Ok(())
    }
}
