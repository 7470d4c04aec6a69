//! A timing decorator over the storage ports: [`ObservedStore`] wraps any [`TenancyStore`] (memory, Postgres, an
//! integrator's) and reports the duration of every call to a [`StoreObserver`], which is how the application
//! exports `avb_db_query_duration_seconds{operation}` without the stores knowing about metrics.
//!
//! Operation names are static: `"begin"`, `"<table>.<method>"` (`"tenants.get"`, `"session_events.list"`),
//! `"append_audit"`, `"enqueue_job"`, `"commit"` and `"rollback"`. Results and errors pass through unchanged, and
//! the wrapped unit of work keeps the port contract: dropping it drops (rolls back) the inner one.

use crate::model::*;
use crate::store::{Access, Record, Repo, TenancyStore, UnitOfWork};
use async_trait::async_trait;
use avb_core::audit::{AuditEntry, NewAuditEntry};
use avb_core::jobs::NewJob;
use avb_core::{Ctx, JobId, Page, PageRequest, Result};
use std::fmt::{self, Debug};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Receives the duration of every storage operation (how the application exports `avb_db_query_duration_seconds`
/// without the stores knowing about metrics). Called inline on the caller's task: keep it cheap and
/// non-blocking.
pub trait StoreObserver: Send + Sync + Debug + 'static {
    /// One finished call: `ok` is false when it failed or was cancelled before finishing (a dropped future, e.g.
    /// a timeout), so slow abandoned calls still show up.
    fn observe(&self, operation: &'static str, elapsed: Duration, ok: bool);
}

/// A [`TenancyStore`] that times every call of the store, its units of work and their repositories.
#[derive(Clone)]
pub struct ObservedStore {
    inner: Arc<dyn TenancyStore>,
    observer: Arc<dyn StoreObserver>,
}

impl ObservedStore {
    /// Wraps `inner`, reporting to `observer`.
    pub fn new(inner: Arc<dyn TenancyStore>, observer: Arc<dyn StoreObserver>) -> Self {
        Self { inner, observer }
    }
}

impl Debug for ObservedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObservedStore")
            .field("inner", &self.inner)
            .field("observer", &self.observer)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl TenancyStore for ObservedStore {
    async fn begin(&self, ctx: &Ctx, access: Access) -> Result<Box<dyn UnitOfWork>> {
        let inner = timed(self.observer.as_ref(), "begin", self.inner.begin(ctx, access)).await?;
        Ok(Box::new(ObservedUnitOfWork {
            inner,
            observer: Arc::clone(&self.observer),
        }))
    }
}

/// Reports a call that never finished (its future was dropped) as failed when dropped unfinished.
struct Timing<'a> {
    observer: &'a dyn StoreObserver,
    operation: &'static str,
    started: Instant,
    finished: bool,
}

impl Timing<'_> {
    fn finish(mut self, ok: bool) {
        self.finished = true;
        self.observer.observe(self.operation, self.started.elapsed(), ok);
    }
}

impl Drop for Timing<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.observer
                .observe(self.operation, self.started.elapsed(), false);
        }
    }
}

/// Awaits `call` and reports how long it took and whether it succeeded.
async fn timed<T>(
    observer: &dyn StoreObserver,
    operation: &'static str,
    call: impl Future<Output = Result<T>>,
) -> Result<T> {
    let timing = Timing {
        observer,
        operation,
        started: Instant::now(),
        finished: false,
    };
    let result = call.await;
    timing.finish(result.is_ok());
    result
}

/// The unit of work [`ObservedStore::begin`] returns. It is itself the repository of every record type, so the
/// accessors return `self` and each repository call knows its table name statically.
struct ObservedUnitOfWork {
    inner: Box<dyn UnitOfWork>,
    observer: Arc<dyn StoreObserver>,
}

impl Debug for ObservedUnitOfWork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObservedUnitOfWork")
            .field("inner", &self.inner)
            .field("observer", &self.observer)
            .finish_non_exhaustive()
    }
}

/// Implements `Repo<$ty>` for [`ObservedUnitOfWork`] (via the inner unit of work's `$table` accessor, named
/// `"$table.<method>"`) for each table, and [`UnitOfWork`] with `$table` accessors returning `self`.
macro_rules! observed_unit_of_work {
    ($($table:ident: $ty:ty),* $(,)?) => {
        $(
            #[async_trait]
            impl Repo<$ty> for ObservedUnitOfWork {
                async fn get(&mut self, id: <$ty as Record>::Id) -> Result<$ty> {
                    let op = concat!(stringify!($table), ".get");
                    timed(self.observer.as_ref(), op, self.inner.$table().get(id)).await
                }

                async fn lock(&mut self, id: <$ty as Record>::Id) -> Result<$ty> {
                    let op = concat!(stringify!($table), ".lock");
                    timed(self.observer.as_ref(), op, self.inner.$table().lock(id)).await
                }

                async fn insert(&mut self, record: $ty) -> Result<$ty> {
                    let op = concat!(stringify!($table), ".insert");
                    timed(self.observer.as_ref(), op, self.inner.$table().insert(record)).await
                }

                async fn update(&mut self, record: $ty) -> Result<$ty> {
                    let op = concat!(stringify!($table), ".update");
                    timed(self.observer.as_ref(), op, self.inner.$table().update(record)).await
                }

                async fn delete(&mut self, id: <$ty as Record>::Id) -> Result<()> {
                    let op = concat!(stringify!($table), ".delete");
                    timed(self.observer.as_ref(), op, self.inner.$table().delete(id)).await
                }

                async fn list(&mut self, filter: &<$ty as Record>::Filter, page: PageRequest) -> Result<Page<$ty>> {
                    let op = concat!(stringify!($table), ".list");
                    timed(self.observer.as_ref(), op, self.inner.$table().list(filter, page)).await
                }

                async fn count(&mut self, filter: &<$ty as Record>::Filter) -> Result<u64> {
                    let op = concat!(stringify!($table), ".count");
                    timed(self.observer.as_ref(), op, self.inner.$table().count(filter)).await
                }
            }
        )*

        #[async_trait]
        impl UnitOfWork for ObservedUnitOfWork {
            $(
                fn $table(&mut self) -> &mut dyn Repo<$ty> {
                    self
                }
            )*

            async fn append_audit(&mut self, entry: NewAuditEntry) -> Result<AuditEntry> {
                timed(self.observer.as_ref(), "append_audit", self.inner.append_audit(entry)).await
            }

            async fn enqueue_job(&mut self, job: NewJob) -> Result<JobId> {
                timed(self.observer.as_ref(), "enqueue_job", self.inner.enqueue_job(job)).await
            }

            async fn commit(self: Box<Self>) -> Result<()> {
                let Self { inner, observer } = *self;
                timed(observer.as_ref(), "commit", inner.commit()).await
            }

            async fn rollback(self: Box<Self>) -> Result<()> {
                let Self { inner, observer } = *self;
                timed(observer.as_ref(), "rollback", inner.rollback()).await
            }
        }
    };
}

observed_unit_of_work!(
    tenants: Tenant,
    tenant_settings: TenantSettings,
    users: User,
    projects: Project,
    api_keys: ApiKey,
    sessions: Session,
    session_events: SessionEvent,
    voice_configs: VoiceConfig,
    personas: Persona,
    wake_words: WakeWord,
    themes: Theme,
    notifications: Notification,
);
