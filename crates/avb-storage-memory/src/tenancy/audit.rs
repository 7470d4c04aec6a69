//! [`AuditSink`] and [`AuditReader`] over the store's shared state.

use super::state::visible;
use super::{MemoryStore, before_deadline};
use async_trait::async_trait;
use avb_core::audit::{AuditEntry, AuditFilter, AuditReader, AuditSink, NewAuditEntry};
use avb_core::{AuditId, Ctx, Error, Page, PageRequest, Result, StorageScope, TenantId};

/// Whether `ctx` may append to `chain`. A context without a storage scope (an anonymous failed login) may still
/// write to the platform chain, so that such events are recorded at all.
fn may_append(ctx: &Ctx, chain: Option<TenantId>) -> Result<()> {
    let allowed = match ctx.storage_scope() {
        Ok(scope) => visible(scope, chain),
        Err(Error::TenantRequired) if chain.is_none() => true,
        Err(err) => return Err(err),
    };
    if allowed {
        Ok(())
    } else {
        Err(Error::not_found(
            "tenant",
            chain.map(|t| t.to_string()).unwrap_or_default(),
        ))
    }
}

#[async_trait]
impl AuditSink for MemoryStore {
    async fn record(&self, ctx: &Ctx, entry: NewAuditEntry) -> Result<AuditEntry> {
        let chain = entry.tenant_id.or(ctx.tenant());
        may_append(ctx, chain)?;
        // Waits for any unit of work holding this chain, so its pending entries link first.
        let _chain = before_deadline(ctx, self.shared.chain_lock(chain).lock_owned()).await?;
        let id = AuditId::generate(self.ids.as_ref());
        let now = self.clock.now();
        self.shared.modify(|state| {
            let head = state.audit.head(chain);
            let sealed = AuditEntry::seal(
                entry,
                ctx,
                id,
                now,
                head.as_ref().map(|(seq, hash)| (*seq, hash.as_str())),
            );
            state.audit.push(sealed.clone());
            Ok(sealed)
        })
    }
}

#[async_trait]
impl AuditReader for MemoryStore {
    async fn query(&self, ctx: &Ctx, filter: &AuditFilter, page: PageRequest) -> Result<Page<AuditEntry>> {
        let scope: StorageScope = ctx.storage_scope()?;
        let state = self.shared.snapshot();
        let mut entries: Vec<AuditEntry> = state
            .audit
            .chains
            .iter()
            .filter(|(chain, _)| visible(scope, **chain))
            .flat_map(|(_, entries)| entries.iter().filter(|e| filter.matches(e)).cloned())
            .collect();
        entries.sort_by(|a, b| {
            b.timestamp
                .cmp(&a.timestamp)
                .then(b.sequence.cmp(&a.sequence))
                .then(b.id.cmp(&a.id))
        });
        Ok(page.slice(&entries))
    }

    async fn chain(&self, ctx: &Ctx, tenant: Option<TenantId>) -> Result<Vec<AuditEntry>> {
        let scope = ctx.storage_scope()?;
        if !visible(scope, tenant) {
            // Another tenant's chain is as absent as its rows.
            return Ok(Vec::new());
        }
        let state = self.shared.snapshot();
        Ok(state
            .audit
            .chains
            .get(&tenant)
            .map(|c| c.iter().cloned().collect())
            .unwrap_or_default())
    }
}
