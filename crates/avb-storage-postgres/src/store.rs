//! [`PgStore`]: the pool, the embedded migrations, health, and the scoped transactions every port runs in.

use crate::config::{PgConfig, millis_text};
use crate::error::{self, BACKEND};
use crate::tenancy::PgUnit;
use async_trait::async_trait;
use avb_core::{Clock, Ctx, Error, IdGen, Result, StorageScope, TenantId};
use avb_tenancy::store::{Access, TenancyStore, UnitOfWork};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{Postgres, Transaction};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// The embedded, versioned migrations (`migrations/` of this crate).
pub(crate) fn migrator() -> sqlx::migrate::Migrator {
    sqlx::migrate!("./migrations")
}

/// What the row-level security settings of one transaction allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// A [`StorageScope`] from the context.
    Storage(StorageScope),
    /// A context without any tenant appending to the platform audit chain (anonymous failed logins).
    PlatformAudit,
    /// No tenant data at all (the relationship store, which is not tenant-scoped).
    Nothing,
}

/// Transaction isolation of a scoped transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Isolation {
    /// Each statement sees every commit made before it started (units of work: lock-then-count is safe).
    ReadCommitted,
    /// Every statement sees one snapshot (multi-statement reads that must agree).
    Snapshot,
}

/// PostgreSQL storage for the tenancy records, the audit trail, the job queue and the relationship tuples.
///
/// Implements [`TenancyStore`], [`avb_core::audit::AuditSink`], [`avb_core::audit::AuditReader`],
/// [`avb_core::jobs::JobQueue`] and [`avb_auth::authorizer::RelationshipStore`] over one pool. Every call runs
/// in a transaction that first switches to the application role and sets the tenant scope for row-level
/// security from the [`Ctx`], so the database itself hides other tenants' rows. Cloning shares the pool.
#[derive(Clone)]
pub struct PgStore {
    pub(crate) pool: PgPool,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) ids: Arc<dyn IdGen>,
    settings: Arc<Settings>,
}

#[derive(Debug)]
struct Settings {
    app_role: Option<String>,
    statement_timeout: Duration,
    connect_timeout: Duration,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("connections", &self.pool.size())
            .field("idle", &self.pool.num_idle())
            .field("app_role", &self.settings.app_role)
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

/// A pooled connection idle at least this long is checked with a round trip before use (see `connect`).
const CHECK_IF_IDLE_FOR: Duration = Duration::from_secs(1);

impl PgStore {
    /// A builder with the spec's defaults.
    pub fn builder() -> crate::PgStoreBuilder {
        crate::PgStoreBuilder::new()
    }

    pub(crate) async fn connect(
        config: PgConfig,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdGen>,
        lazy: bool,
    ) -> Result<Self> {
        let options = config.connect_options()?;
        let health_checks = config.test_before_acquire;
        let pool = PgPoolOptions::new()
            .max_connections(config.max_connections)
            .min_connections(config.min_connections)
            .max_lifetime(config.max_lifetime)
            .idle_timeout(config.idle_timeout)
            .acquire_timeout(config.acquire_timeout)
            // The pool already pings every connection when it is released (and drops it if broken), so a
            // connection handed out again at once is known good: only one that sat idle (through a possible
            // database restart) is checked first. This saves a round trip per unit of work under load.
            .test_before_acquire(false)
            .before_acquire(move |conn, meta| {
                Box::pin(async move {
                    if health_checks && meta.idle_for >= CHECK_IF_IDLE_FOR {
                        sqlx::Connection::ping(conn).await?;
                    }
                    Ok(true)
                })
            })
            .connect_lazy_with(options);
        let store = Self {
            pool,
            clock,
            ids,
            settings: Arc::new(Settings {
                app_role: config.app_role,
                statement_timeout: config.statement_timeout,
                connect_timeout: config.connect_timeout,
            }),
        };
        if !lazy {
            store.ping().await?;
        }
        Ok(store)
    }

    /// This handle with another clock (audit timestamps, job schedules and leases); the pool stays shared.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// This handle with another id generator (audit entries and jobs); the pool stays shared.
    #[must_use]
    pub fn with_ids(mut self, ids: Arc<dyn IdGen>) -> Self {
        self.ids = ids;
        self
    }

    /// Applies the embedded migrations that are not applied yet (versioned and idempotent: running it again
    /// changes nothing; concurrent runs serialise on an advisory lock). The connecting role needs to own the
    /// schema and be allowed to create (or already have) the `avb_app` role.
    ///
    /// # Errors
    /// `service_unavailable` when the server cannot be reached, `internal_error` when a migration fails or the
    /// database holds migrations this build does not know.
    pub async fn migrate(&self) -> Result<()> {
        migrator().run(&self.pool).await.map_err(|err| match err {
            sqlx::migrate::MigrateError::Execute(inner) => error::map(inner),
            other => {
                tracing::error!(error = %other, "postgres: migration failed");
                Error::Internal("postgres: migration failed".into())
            }
        })
    }

    /// The versions of the embedded migrations, oldest first.
    pub fn migration_versions() -> Vec<i64> {
        migrator().iter().map(|m| m.version).collect()
    }

    /// Checks that a connection can run a statement within the connect timeout (`/health/ready`).
    ///
    /// # Errors
    /// `service_unavailable` when it cannot.
    pub async fn ping(&self) -> Result<()> {
        let check = sqlx::query("SELECT 1").execute(&self.pool);
        match tokio::time::timeout(self.settings.connect_timeout, check).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(err)) => Err(error::map(err)),
            Err(_) => Err(Error::unavailable(
                BACKEND,
                "no connection within the connect timeout",
            )),
        }
    }

    /// Closes the pool: waits for checked-out connections to come back and closes them all.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// A transaction scoped like a unit of work of `ctx`, for hand-written SQL (reports, maintenance): it runs
    /// as the application role with the context's tenant settings, so row-level security applies to every
    /// statement, whatever its `WHERE` says. Dropping it rolls back.
    ///
    /// # Errors
    /// `tenant_required` for a context without storage scope; `service_unavailable` when no connection is
    /// available; `deadline_exceeded` past the context's deadline.
    pub async fn scoped_transaction(
        &self,
        ctx: &Ctx,
        access: Access,
    ) -> Result<Transaction<'static, Postgres>> {
        self.begin_tx(ctx, Scope::Storage(ctx.storage_scope()?), access)
            .await
    }

    /// Opens a transaction with the role switch and the row-level security settings for `scope`, in one round
    /// trip. The context's deadline bounds the wait for a connection and shortens the statement timeout.
    pub(crate) async fn begin_tx(
        &self,
        ctx: &Ctx,
        scope: Scope,
        access: Access,
    ) -> Result<Transaction<'static, Postgres>> {
        self.begin_tx_with(ctx, scope, access, Isolation::ReadCommitted)
            .await
    }

    /// [`PgStore::begin_tx`] with a chosen isolation level.
    pub(crate) async fn begin_tx_with(
        &self,
        ctx: &Ctx,
        scope: Scope,
        access: Access,
        isolation: Isolation,
    ) -> Result<Transaction<'static, Postgres>> {
        let remaining = ctx.remaining()?;
        let timeout = remaining.map_or(self.settings.statement_timeout, |left| {
            left.min(self.settings.statement_timeout)
        });
        if scope == Scope::Storage(StorageScope::AllTenants) {
            // The explicit cross-tenant bypass: logged, so every use can be traced to a request and actor.
            tracing::debug!(
                request_id = %ctx.request_id(),
                actor = ?ctx.principal().actor_id(),
                actor_type = ctx.principal().actor_type(),
                "postgres: all-tenants scope"
            );
        }
        let statement = begin_statement(
            self.settings.app_role.as_deref(),
            scope,
            access,
            isolation,
            timeout,
        );
        let begin = self.pool.begin_with(sqlx::AssertSqlSafe(statement));
        before_deadline(remaining, begin).await?.map_err(error::map)
    }
}

/// Ends a one-shot transaction: commits on success; on failure rolls back at once (rather than leaving the
/// rollback to the connection's return to the pool), so its row locks never outlive the call — a worker's
/// `SKIP LOCKED` must not skip a job that a failed call merely looked at.
pub(crate) async fn finish<T>(tx: Transaction<'static, Postgres>, result: Result<T>) -> Result<T> {
    match result {
        Ok(value) => {
            tx.commit().await.map_err(error::map)?;
            Ok(value)
        }
        Err(err) => {
            if let Err(rollback) = tx.rollback().await {
                tracing::warn!(error = %rollback, "postgres: rollback failed");
            }
            Err(err)
        }
    }
}

/// Waits for `future` until `remaining` runs out (`None`: unbounded).
pub(crate) async fn before_deadline<F: Future>(remaining: Option<Duration>, future: F) -> Result<F::Output> {
    match remaining {
        None => Ok(future.await),
        Some(left) => tokio::time::timeout(left, future)
            .await
            .map_err(|_| Error::DeadlineExceeded),
    }
}

/// `BEGIN …; SELECT set_config(…), …`. Every interpolated value is a validated identifier, a UUID, a fixed
/// word or an integer, so nothing user-supplied reaches the SQL text.
fn begin_statement(
    role: Option<&str>,
    scope: Scope,
    access: Access,
    isolation: Isolation,
    timeout: Duration,
) -> String {
    let (tenant, all_tenants, platform_audit): (Option<TenantId>, bool, bool) = match scope {
        Scope::Storage(StorageScope::Tenant(t)) => (Some(t), false, false),
        Scope::Storage(StorageScope::AllTenants) => (None, true, false),
        Scope::PlatformAudit => (None, false, true),
        Scope::Nothing => (None, false, false),
    };
    let mode = match access {
        Access::ReadOnly => "READ ONLY",
        Access::ReadWrite => "READ WRITE",
    };
    let level = match isolation {
        Isolation::ReadCommitted => "READ COMMITTED",
        Isolation::Snapshot => "REPEATABLE READ",
    };
    let on = |flag: bool| if flag { "on" } else { "off" };
    let mut sql = format!("BEGIN ISOLATION LEVEL {level} {mode}; SELECT ");
    if let Some(role) = role {
        sql.push_str(&format!("set_config('role', '{role}', true), "));
    }
    sql.push_str(&format!(
        "set_config('avb.tenant_id', '{}', true), set_config('avb.all_tenants', '{}', true), \
         set_config('avb.platform_audit', '{}', true), set_config('statement_timeout', '{}', true)",
        tenant.map(|t| t.to_string()).unwrap_or_default(),
        on(all_tenants),
        on(platform_audit),
        millis_text(timeout),
    ));
    sql
}

#[async_trait]
impl TenancyStore for PgStore {
    async fn begin(&self, ctx: &Ctx, access: Access) -> Result<Box<dyn UnitOfWork>> {
        let scope = ctx.storage_scope()?;
        let tx = self.begin_tx(ctx, Scope::Storage(scope), access).await?;
        Ok(Box::new(PgUnit::new(self, ctx.clone(), scope, access, tx)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_begin_statement_sets_role_scope_and_timeout() {
        let t = TenantId(uuid::Uuid::nil());
        let sql = begin_statement(
            Some("avb_app"),
            Scope::Storage(StorageScope::Tenant(t)),
            Access::ReadOnly,
            Isolation::ReadCommitted,
            Duration::from_millis(1500),
        );
        assert!(
            sql.starts_with("BEGIN ISOLATION LEVEL READ COMMITTED READ ONLY;"),
            "{sql}"
        );
        assert!(sql.contains("set_config('role', 'avb_app', true)"), "{sql}");
        assert!(
            sql.contains(&format!("set_config('avb.tenant_id', '{t}', true)")),
            "{sql}"
        );
        assert!(
            sql.contains("set_config('avb.all_tenants', 'off', true)"),
            "{sql}"
        );
        assert!(
            sql.contains("set_config('statement_timeout', '1500', true)"),
            "{sql}"
        );

        let sql = begin_statement(
            None,
            Scope::Storage(StorageScope::AllTenants),
            Access::ReadWrite,
            Isolation::Snapshot,
            Duration::from_secs(30),
        );
        assert!(
            !sql.contains("'role'") && sql.contains("'avb.all_tenants', 'on'"),
            "{sql}"
        );
        assert!(sql.contains("set_config('avb.tenant_id', '', true)"), "{sql}");
        assert!(
            sql.starts_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ WRITE;"),
            "{sql}"
        );
    }
}
