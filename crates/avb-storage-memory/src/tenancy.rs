//! [`MemoryStore`]: the tenancy store, audit trail and job queue in process memory.
//!
//! Committed data is an immutable [`State`] snapshot behind an `Arc`. Readers (read-only units of work, audit
//! queries, job lookups) clone the `Arc` and never wait. Read-write units of work take one writer lock for their
//! whole life, which makes them serialisable the way the contract asks, work on an O(1) copy of the tables, and
//! publish it on commit. Audit chains have their own locks so that an [`AuditSink`] append from outside a unit of
//! work waits only for units that appended to the same chain (as a Postgres chain-head row lock would).

mod audit;
mod jobs;
mod state;
mod unit;

use async_trait::async_trait;
use avb_core::{Clock, Ctx, Error, IdGen, Result, SystemClock, TenantId, UuidV7Ids};
use avb_tenancy::store::{Access, TenancyStore, UnitOfWork};
use state::State;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

#[cfg(doc)]
use avb_core::audit::AuditSink;

/// In-memory storage for the tenancy records, the audit trail and the job queue, with the semantics of the
/// Postgres adapter: tenant isolation, unique keys across tenants, references, optimistic versions, atomic and
/// serialisable units of work.
///
/// Implements [`TenancyStore`], [`avb_core::audit::AuditSink`], [`avb_core::audit::AuditReader`] and
/// [`avb_core::jobs::JobQueue`] over one shared state, so jobs and audit entries written in a unit of work appear
/// to workers and auditors exactly when it commits. Cloning shares that state; [`MemoryStore::with_clock`] and
/// [`MemoryStore::with_ids`] change only the handle they are called on.
#[derive(Clone)]
pub struct MemoryStore {
    shared: Arc<Shared>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGen>,
}

/// State shared by every clone.
struct Shared {
    /// The committed snapshot. Held only for pointer swaps and merges, never across `.await`.
    published: Mutex<Arc<State>>,
    /// Held by each read-write unit of work from `begin` to its end.
    writer: Arc<tokio::sync::Mutex<()>>,
    /// One lock per audit chain (`None` = platform chain); see the module docs.
    chains: Mutex<HashMap<Option<TenantId>, Arc<tokio::sync::Mutex<()>>>>,
}

impl Shared {
    fn published(&self) -> MutexGuard<'_, Arc<State>> {
        // A panic while holding this lock cannot leave a half-written state: only whole snapshots are stored.
        self.published.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn snapshot(&self) -> Arc<State> {
        Arc::clone(&self.published())
    }

    /// Applies `change` to a copy of the committed state and publishes it if `change` succeeds.
    fn modify<T>(&self, change: impl FnOnce(&mut State) -> Result<T>) -> Result<T> {
        let mut published = self.published();
        let mut next = State::clone(&published);
        let value = change(&mut next)?;
        *published = Arc::new(next);
        Ok(value)
    }

    fn chain_lock(&self, chain: Option<TenantId>) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.chains.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(locks.entry(chain).or_default())
    }
}

impl MemoryStore {
    /// An empty store with the system clock and UUID v7 ids.
    pub fn new() -> Self {
        Self {
            shared: Arc::new(Shared {
                published: Mutex::new(Arc::new(State::default())),
                writer: Arc::new(tokio::sync::Mutex::new(())),
                chains: Mutex::new(HashMap::new()),
            }),
            clock: Arc::new(SystemClock),
            ids: Arc::new(UuidV7Ids),
        }
    }

    /// This handle with another clock (audit timestamps, job scheduling and leases); the data stays shared.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// This handle with another id generator (audit and job ids); the data stays shared.
    #[must_use]
    pub fn with_ids(mut self, ids: Arc<dyn IdGen>) -> Self {
        self.ids = ids;
        self
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.shared.snapshot();
        f.debug_struct("MemoryStore")
            .field("tenants", &state.tables.tenants.rows.len())
            .field("users", &state.tables.users.rows.len())
            .field("jobs", &state.jobs.len())
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

/// Waits for `future` until the context's deadline, so a caller stuck behind a long unit of work gets
/// `deadline_exceeded` instead of hanging.
async fn before_deadline<F: Future>(ctx: &Ctx, future: F) -> Result<F::Output> {
    match ctx.remaining()? {
        None => Ok(future.await),
        Some(left) => tokio::time::timeout(left, future)
            .await
            .map_err(|_| Error::DeadlineExceeded),
    }
}

#[async_trait]
impl TenancyStore for MemoryStore {
    async fn begin(&self, ctx: &Ctx, access: Access) -> Result<Box<dyn UnitOfWork>> {
        let scope = ctx.storage_scope()?;
        let writer = match access {
            Access::ReadOnly => None,
            Access::ReadWrite => {
                Some(before_deadline(ctx, Arc::clone(&self.shared.writer).lock_owned()).await?)
            }
        };
        // Taken after the writer lock, so a read-write unit starts from the latest commit.
        let base = self.shared.snapshot();
        Ok(Box::new(unit::MemoryUnit::new(
            self,
            ctx.clone(),
            scope,
            access,
            writer,
            &base,
        )))
    }
}
