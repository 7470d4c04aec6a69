//! A unit of work: a private copy of the tables plus the audit entries and jobs it will publish on commit.

use super::state::{State, Stored, Tables, visible};
use super::{MemoryStore, Shared, before_deadline};
use async_trait::async_trait;
use avb_core::audit::{AuditEntry, NewAuditEntry};
use avb_core::jobs::{Job, NewJob};
use avb_core::{AuditId, Clock, Ctx, Error, IdGen, JobId, Page, PageRequest, Result, StorageScope, TenantId};
use avb_tenancy::model::{
    ApiKey, Notification, Persona, Project, Session, SessionEvent, Tenant, TenantSettings, Theme, User,
    VoiceConfig, WakeWord,
};
use avb_tenancy::store::{Access, Filter, Record, Repo, UnitOfWork};
use std::sync::Arc;
use tokio::sync::OwnedMutexGuard;

pub(super) struct MemoryUnit {
    ctx: Ctx,
    scope: StorageScope,
    access: Access,
    shared: Arc<Shared>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGen>,
    tables: Tables,
    audit: Vec<AuditEntry>,
    jobs: Vec<Job>,
    /// Chains this unit appended to; held until it ends so no other writer can fork them.
    chain_guards: Vec<(Option<TenantId>, OwnedMutexGuard<()>)>,
    /// `Some` for read-write units: released (by drop) when the unit ends.
    _writer: Option<OwnedMutexGuard<()>>,
}

impl std::fmt::Debug for MemoryUnit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryUnit")
            .field("request_id", self.ctx.request_id())
            .field("scope", &self.scope)
            .field("access", &self.access)
            .field("pending_audit", &self.audit.len())
            .field("pending_jobs", &self.jobs.len())
            .finish_non_exhaustive()
    }
}

impl MemoryUnit {
    pub(super) fn new(
        store: &MemoryStore,
        ctx: Ctx,
        scope: StorageScope,
        access: Access,
        writer: Option<OwnedMutexGuard<()>>,
        base: &State,
    ) -> Self {
        Self {
            ctx,
            scope,
            access,
            shared: Arc::clone(&store.shared),
            clock: Arc::clone(&store.clock),
            ids: Arc::clone(&store.ids),
            tables: base.tables.clone(),
            audit: Vec::new(),
            jobs: Vec::new(),
            chain_guards: Vec::new(),
            _writer: writer,
        }
    }

    fn writable(&self) -> Result<()> {
        match self.access {
            Access::ReadWrite => Ok(()),
            Access::ReadOnly => Err(Error::Internal(
                "write attempted in a read-only unit of work".into(),
            )),
        }
    }

    /// The visible row `id`, or `not_found` (another tenant's row is indistinguishable from a missing one).
    /// Borrowed, so that callers that only read it (version checks, deletes) do not copy the record.
    fn visible_row<R: Stored>(&self, id: R::Id) -> Result<&R> {
        R::table(&self.tables)
            .rows
            .get(&id)
            .map(Arc::as_ref)
            .filter(|row| visible(self.scope, row.tenant_id()))
            .ok_or_else(|| Error::not_found(R::RESOURCE, id))
    }

    fn matches<'a, R: Stored>(&'a self, filter: &'a R::Filter) -> Box<dyn Iterator<Item = &'a R> + 'a> {
        let table = R::table(&self.tables);
        let keep = move |row: &&R| visible(self.scope, row.tenant_id()) && filter.matches(row);
        match filter.unique_prefix() {
            // Only the rows whose key of that rule starts with the prefix (a session's events, not everyone's).
            Some((name, prefix)) => Box::new(
                table
                    .with_unique_prefix(name, prefix)
                    .filter_map(|id| table.rows.get(id))
                    .map(Arc::as_ref)
                    .filter(keep),
            ),
            None => Box::new(table.rows.values().map(Arc::as_ref).filter(keep)),
        }
    }

    fn check_unique<R: Stored>(&self, record: &R) -> Result<()> {
        match R::table(&self.tables).collision(record) {
            Some(key) => Err(Error::conflict(
                R::RESOURCE,
                format!("{} is already taken", key.name),
            )),
            None => Ok(()),
        }
    }
}

#[async_trait]
impl<R: Stored> Repo<R> for MemoryUnit {
    async fn get(&mut self, id: R::Id) -> Result<R> {
        self.visible_row(id).cloned()
    }

    async fn lock(&mut self, id: R::Id) -> Result<R> {
        // Read-write units are already serialised by the writer lock, so holding the row needs nothing more; a
        // read-only unit may not lock (it must never block writers; Postgres refuses FOR UPDATE there too).
        self.writable()?;
        self.visible_row(id).cloned()
    }

    async fn insert(&mut self, mut record: R) -> Result<R> {
        self.writable()?;
        let owner = record.tenant_id();
        if !visible(self.scope, owner) {
            return Err(match owner {
                Some(tenant) => Error::not_found(Tenant::RESOURCE, tenant),
                None => Error::not_found(R::RESOURCE, record.id()),
            });
        }
        if R::table(&self.tables).rows.contains_key(&record.id()) {
            return Err(Error::conflict(
                R::RESOURCE,
                format!("id {} is already taken", record.id()),
            ));
        }
        self.check_unique(&record)?;
        self.tables.check_references(&record)?;
        record.set_version(1);
        R::table_mut(&mut self.tables).put(record.clone());
        Ok(record)
    }

    async fn update(&mut self, mut record: R) -> Result<R> {
        self.writable()?;
        let stored: &R = self.visible_row(record.id())?;
        let (stored_tenant, stored_version) = (stored.tenant_id(), stored.version());
        if record.tenant_id() != stored_tenant {
            return Err(Error::invalid(
                "tenant_id",
                "immutable",
                "the tenant of a record cannot change",
            ));
        }
        if record.version() != stored_version {
            return Err(Error::VersionConflict {
                resource: R::RESOURCE,
                id: record.id().to_string(),
                expected: record.version(),
                actual: stored_version,
            });
        }
        self.check_unique(&record)?;
        self.tables.check_references(&record)?;
        record.set_version(stored_version.saturating_add(1));
        R::table_mut(&mut self.tables).put(record.clone());
        Ok(record)
    }

    async fn delete(&mut self, id: R::Id) -> Result<()> {
        self.writable()?;
        let uuid = self.visible_row::<R>(id)?.uuid();
        // Work on a copy so a refused delete leaves this unit exactly as it was.
        let mut next = self.tables.clone();
        R::table_mut(&mut next).take(&id);
        next.cascade(R::RESOURCE, uuid);
        if let Some(referrer) = next.referrer(R::RESOURCE, uuid) {
            return Err(Error::conflict(
                R::RESOURCE,
                format!("still referenced by a {referrer}"),
            ));
        }
        self.tables = next;
        Ok(())
    }

    async fn list(&mut self, filter: &R::Filter, page: PageRequest) -> Result<Page<R>> {
        // Sorted by reference; only the rows of the requested page are copied out.
        let mut rows: Vec<&R> = self.matches(filter).collect();
        rows.sort_by(|a, b| R::listing_order(a, b));
        Ok(page.slice(&rows).map(R::clone))
    }

    async fn count(&mut self, filter: &R::Filter) -> Result<u64> {
        Ok(self.matches::<R>(filter).count() as u64)
    }
}

#[async_trait]
impl UnitOfWork for MemoryUnit {
    fn tenants(&mut self) -> &mut dyn Repo<Tenant> {
        self
    }
    fn tenant_settings(&mut self) -> &mut dyn Repo<TenantSettings> {
        self
    }
    fn users(&mut self) -> &mut dyn Repo<User> {
        self
    }
    fn projects(&mut self) -> &mut dyn Repo<Project> {
        self
    }
    fn api_keys(&mut self) -> &mut dyn Repo<ApiKey> {
        self
    }
    fn sessions(&mut self) -> &mut dyn Repo<Session> {
        self
    }
    fn session_events(&mut self) -> &mut dyn Repo<SessionEvent> {
        self
    }
    fn voice_configs(&mut self) -> &mut dyn Repo<VoiceConfig> {
        self
    }
    fn personas(&mut self) -> &mut dyn Repo<Persona> {
        self
    }
    fn wake_words(&mut self) -> &mut dyn Repo<WakeWord> {
        self
    }
    fn themes(&mut self) -> &mut dyn Repo<Theme> {
        self
    }
    fn notifications(&mut self) -> &mut dyn Repo<Notification> {
        self
    }

    async fn append_audit(&mut self, entry: NewAuditEntry) -> Result<AuditEntry> {
        self.writable()?;
        let chain = entry.tenant_id.or(self.ctx.tenant());
        if !visible(self.scope, chain) {
            return Err(Error::not_found(
                Tenant::RESOURCE,
                chain.map(|t| t.to_string()).unwrap_or_default(),
            ));
        }
        if !self.chain_guards.iter().any(|(held, _)| *held == chain) {
            let lock = self.shared.chain_lock(chain);
            let guard = before_deadline(&self.ctx, lock.lock_owned()).await?;
            self.chain_guards.push((chain, guard));
        }
        // With the chain lock held, the committed head cannot move until this unit ends.
        let head = match self.audit.iter().rev().find(|e| e.tenant_id == chain) {
            Some(last) => Some((last.sequence, last.hash.clone())),
            None => self.shared.snapshot().audit.head(chain),
        };
        let sealed = AuditEntry::seal(
            entry,
            &self.ctx,
            AuditId::generate(self.ids.as_ref()),
            self.clock.now(),
            head.as_ref().map(|(seq, hash)| (*seq, hash.as_str())),
        );
        self.audit.push(sealed.clone());
        Ok(sealed)
    }

    async fn enqueue_job(&mut self, job: NewJob) -> Result<JobId> {
        self.writable()?;
        let job = super::jobs::new_job(job, self.scope, self.ids.as_ref(), self.clock.now())?;
        let id = job.id;
        self.jobs.push(job);
        Ok(id)
    }

    async fn commit(self: Box<Self>) -> Result<()> {
        if self.access == Access::ReadOnly {
            return Ok(());
        }
        let MemoryUnit {
            shared,
            tables,
            audit,
            jobs,
            chain_guards,
            _writer,
            ..
        } = *self;
        // The writer lock guarantees nobody else changed the tables since `begin`; audit and jobs may have
        // grown meanwhile (sink appends, workers), so those are merged rather than replaced.
        shared.modify(move |state| {
            state.tables = tables;
            for entry in audit {
                state.audit.push(entry);
            }
            for job in jobs {
                state.jobs.insert(job.id, job);
            }
            Ok(())
        })?;
        drop(chain_guards);
        Ok(())
    }

    async fn rollback(self: Box<Self>) -> Result<()> {
        // Dropping discards the private copy and releases the locks.
        Ok(())
    }
}
