//! Plumbing shared by the services: their dependencies and the unit-of-work runner.

use crate::Result;
use crate::store::{Access, TenancyStore, UnitOfWork};
use avb_core::{Clock, Ctx, IdGen, SystemClock, UuidV7Ids};
use futures_core_compat::BoxFuture;
use std::sync::Arc;

/// Re-export of the boxed-future type used by [`TenancyDeps::write`] closures.
pub mod futures_core_compat {
    /// A boxed, sendable future.
    pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;
}

/// What every tenancy service needs: the store and the clock/id ports. Cheap to clone.
#[derive(Debug, Clone)]
pub struct TenancyDeps {
    /// Storage.
    pub store: Arc<dyn TenancyStore>,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Ids.
    pub ids: Arc<dyn IdGen>,
}

impl TenancyDeps {
    /// Dependencies with the system clock and UUID v7 ids.
    pub fn new(store: Arc<dyn TenancyStore>) -> Self {
        Self {
            store,
            clock: Arc::new(SystemClock),
            ids: Arc::new(UuidV7Ids),
        }
    }

    /// Replaces the clock.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Replaces the id generator.
    #[must_use]
    pub fn with_ids(mut self, ids: Arc<dyn IdGen>) -> Self {
        self.ids = ids;
        self
    }

    /// Runs `work` in a read-write unit of work and commits it if `work` succeeds; on error nothing is written.
    pub async fn write<T, F>(&self, ctx: &Ctx, work: F) -> Result<T>
    where
        T: Send,
        F: for<'a> FnOnce(&'a mut dyn UnitOfWork) -> BoxFuture<'a, Result<T>> + Send,
    {
        let mut uow = self.store.begin(ctx, Access::ReadWrite).await?;
        match work(uow.as_mut()).await {
            Ok(value) => {
                uow.commit().await?;
                Ok(value)
            }
            Err(err) => {
                // Rollback failures are secondary to the error that caused them; dropping discards anyway.
                if let Err(rollback) = uow.rollback().await {
                    tracing::warn!(error = %rollback, "rollback failed");
                }
                Err(err)
            }
        }
    }

    /// Runs `work` in a read-only unit of work.
    pub async fn read<T, F>(&self, ctx: &Ctx, work: F) -> Result<T>
    where
        T: Send,
        F: for<'a> FnOnce(&'a mut dyn UnitOfWork) -> BoxFuture<'a, Result<T>> + Send,
    {
        let mut uow = self.store.begin(ctx, Access::ReadOnly).await?;
        let value = work(uow.as_mut()).await;
        if let Err(rollback) = uow.rollback().await {
            tracing::warn!(error = %rollback, "read-only rollback failed");
        }
        value
    }
}
