//! A unit of work is one SQL transaction (READ COMMITTED) that started by switching to the application role
//! and setting the tenant scope for row-level security.
//!
//! - Reads add an explicit tenant condition as well (so indexes apply); row-level security would hide other
//!   tenants' rows anyway.
//! - `lock` is `SELECT … FOR UPDATE`; a later statement of the same unit sees every commit made before the
//!   lock was granted, which makes lock-then-count quota checks safe.
//! - `update` is `UPDATE … WHERE id = $1 AND tenant = $2 AND version = $3`: concurrent writers from one
//!   version serialise on the row lock and all but the first find the version moved.
//! - Every write runs under a savepoint, so a failed write (unique or foreign-key violation) is rolled back
//!   alone and the unit stays usable, as the contract asks.

mod tables;

use crate::error::{self, database_error, reference_of, rule_of, state};
use crate::sql::{Sql, int};
use crate::store::PgStore;
use crate::{audit, jobs};
use async_trait::async_trait;
use avb_core::audit::{AuditEntry, NewAuditEntry};
use avb_core::jobs::NewJob;
use avb_core::{Clock, Ctx, Error, IdGen, JobId, Page, PageRequest, Result, StorageScope, TenantId};
use avb_tenancy::model::{
    ApiKey, Notification, Persona, Project, Session, SessionEvent, Tenant, TenantSettings, Theme, User,
    VoiceConfig, WakeWord,
};
use avb_tenancy::store::{Access, Record, Repo, UnitOfWork};
use sqlx::{Postgres, Row, Transaction};
use std::sync::Arc;
use tables::Table;
use uuid::Uuid;

/// True when a row owned by `owner` is visible in `scope`: platform rows (`None`) only across tenants.
pub(crate) fn visible(scope: StorageScope, owner: Option<TenantId>) -> bool {
    match owner {
        Some(tenant) => scope.allows(tenant),
        None => scope == StorageScope::AllTenants,
    }
}

/// `not_found` for a tenant (or platform-level resource) outside the scope.
pub(crate) fn outside_scope(resource: &'static str, owner: Option<TenantId>, id: impl ToString) -> Error {
    match owner {
        Some(tenant) => Error::not_found(Tenant::RESOURCE, tenant),
        None => Error::not_found(resource, id),
    }
}

const SAVEPOINT: &str = "SAVEPOINT avb_write";
const NEXT_SAVEPOINT: &str = "RELEASE SAVEPOINT avb_write; SAVEPOINT avb_write";
const UNDO: &str = "ROLLBACK TO SAVEPOINT avb_write";

pub(crate) struct PgUnit {
    tx: Transaction<'static, Postgres>,
    ctx: Ctx,
    scope: StorageScope,
    access: Access,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGen>,
    /// A write savepoint exists (released and re-taken before the next write).
    savepoint: bool,
}

impl std::fmt::Debug for PgUnit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgUnit")
            .field("request_id", self.ctx.request_id())
            .field("scope", &self.scope)
            .field("access", &self.access)
            .finish_non_exhaustive()
    }
}

impl PgUnit {
    pub(crate) fn new(
        store: &PgStore,
        ctx: Ctx,
        scope: StorageScope,
        access: Access,
        tx: Transaction<'static, Postgres>,
    ) -> Self {
        Self {
            tx,
            ctx,
            scope,
            access,
            clock: Arc::clone(&store.clock),
            ids: Arc::clone(&store.ids),
            savepoint: false,
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

    /// Appends the explicit tenant condition of a tenant scope.
    fn scope_filter<R: Table>(&self, sql: &mut Sql) -> Result<()> {
        if let StorageScope::Tenant(tenant) = self.scope {
            sql.push(" AND ").push(R::TENANT).push(" = ");
            sql.bind(tenant.0)?;
        }
        Ok(())
    }

    /// Marks the point a failing write rolls back to.
    async fn savepoint(&mut self) -> Result<()> {
        let sql = if self.savepoint { NEXT_SAVEPOINT } else { SAVEPOINT };
        sqlx::raw_sql(sql)
            .execute(&mut *self.tx)
            .await
            .map_err(error::map)?;
        self.savepoint = true;
        Ok(())
    }

    /// Undoes the current write after it failed, keeping the unit usable.
    async fn undo(&mut self) -> Result<()> {
        sqlx::raw_sql(UNDO)
            .execute(&mut *self.tx)
            .await
            .map(|_| ())
            .map_err(error::map)
    }

    /// Runs `result` (a write) so that a failure leaves nothing behind.
    async fn settle<T>(&mut self, result: Result<T>) -> Result<T> {
        if result.is_err() {
            self.undo().await?;
        }
        result
    }

    async fn select<R: Table>(&mut self, id: R::Id, lock: bool) -> Result<R> {
        let mut sql = Sql::new(&format!("SELECT * FROM {} WHERE {} = ", R::TABLE, R::KEY));
        sql.bind(R::key(id))?;
        self.scope_filter::<R>(&mut sql)?;
        if lock {
            sql.push(" FOR UPDATE");
        }
        let row = sql
            .query()
            .fetch_optional(&mut *self.tx)
            .await
            .map_err(error::map)?;
        match row {
            Some(row) => R::decode(&row).map_err(error::map),
            None => Err(Error::not_found(R::RESOURCE, id)),
        }
    }

    async fn try_insert<R: Table>(&mut self, record: &R) -> Result<R> {
        let mut sql = Sql::default();
        let columns = record.bind(&mut sql)?;
        let names: Vec<&str> = columns.iter().map(|(name, _)| *name).collect();
        let values: Vec<&str> = columns.iter().map(|(_, value)| value.as_str()).collect();
        sql.push(&format!(
            "INSERT INTO {} ({}, version) VALUES ({}, 1) RETURNING *",
            R::TABLE,
            names.join(", "),
            values.join(", ")
        ));
        let row = sql
            .query()
            .fetch_one(&mut *self.tx)
            .await
            .map_err(|err| write_error(err, record))?;
        R::decode(&row).map_err(error::map)
    }

    async fn try_update<R: Table>(&mut self, record: &R) -> Result<R> {
        let mut sql = Sql::default();
        let columns = record.bind(&mut sql)?;
        let tenant = sql.arg(record.tenant_id().map(|t| t.0))?;
        let version = sql.arg(int("version", record.version())?)?;
        let mut key = String::new();
        let mut assignments = Vec::with_capacity(columns.len());
        for (name, value) in &columns {
            if *name == R::KEY {
                key.clone_from(value);
            } else if *name != R::TENANT {
                assignments.push(format!("{name} = {value}"));
            }
        }
        sql.push(&format!(
            "UPDATE {table} SET {set}, version = version + 1 WHERE {key_col} = {key} \
             AND {tenant_col} IS NOT DISTINCT FROM {tenant} AND version = {version}",
            table = R::TABLE,
            set = assignments.join(", "),
            key_col = R::KEY,
            tenant_col = R::TENANT,
        ));
        self.scope_filter::<R>(&mut sql)?;
        sql.push(" RETURNING *");
        let row = sql
            .query()
            .fetch_optional(&mut *self.tx)
            .await
            .map_err(|err| write_error(err, record))?;
        match row {
            Some(row) => R::decode(&row).map_err(error::map),
            None => Err(self.why_not_updated(record).await),
        }
    }

    /// Why an `UPDATE … WHERE id, tenant, version` matched nothing: the row is not visible (`not_found`), its
    /// tenant differs (`validation_error`) or its version moved (`VersionConflict`).
    async fn why_not_updated<R: Table>(&mut self, record: &R) -> Error {
        let mut sql = Sql::new(&format!(
            "SELECT {} AS avb_tenant, version FROM {} WHERE {} = ",
            R::TENANT,
            R::TABLE,
            R::KEY
        ));
        let found = async {
            sql.bind(R::key(record.id()))?;
            self.scope_filter::<R>(&mut sql)?;
            sql.query()
                .fetch_optional(&mut *self.tx)
                .await
                .map_err(error::map)
        }
        .await;
        let row = match found {
            Ok(Some(row)) => row,
            Ok(None) => return Error::not_found(R::RESOURCE, record.id()),
            Err(err) => return err,
        };
        let stored = row
            .try_get::<Option<Uuid>, _>("avb_tenant")
            .and_then(|tenant| Ok((tenant, crate::sql::get_u64(&row, "version")?)));
        match stored {
            Err(err) => error::map(err),
            Ok((tenant, _)) if tenant != record.tenant_id().map(|t| t.0) => {
                Error::invalid("tenant_id", "immutable", "the tenant of a record cannot change")
            }
            Ok((_, actual)) if actual != record.version() => Error::VersionConflict {
                resource: R::RESOURCE,
                id: record.id().to_string(),
                expected: record.version(),
                actual,
            },
            Ok(_) => Error::Internal(format!("{} {} was not updated", R::RESOURCE, record.id())),
        }
    }

    async fn try_delete<R: Table>(&mut self, id: R::Id) -> Result<()> {
        let mut sql = Sql::new(&format!("DELETE FROM {} WHERE {} = ", R::TABLE, R::KEY));
        sql.bind(R::key(id))?;
        self.scope_filter::<R>(&mut sql)?;
        let done = sql
            .query()
            .execute(&mut *self.tx)
            .await
            .map_err(|err| match database_error(&err) {
                Some((code, constraint)) if code == state::FOREIGN_KEY_VIOLATION => {
                    let referrer = reference_of(constraint.as_deref()).map_or("record", |(from, _)| from);
                    Error::conflict(R::RESOURCE, format!("still referenced by a {referrer}"))
                }
                _ => error::map(err),
            })?;
        if done.rows_affected() == 0 {
            return Err(Error::not_found(R::RESOURCE, id));
        }
        Ok(())
    }

    async fn try_append(&mut self, chain: Option<TenantId>, entry: NewAuditEntry) -> Result<AuditEntry> {
        audit::append(
            &mut self.tx,
            &self.ctx,
            chain,
            entry,
            self.ids.as_ref(),
            self.clock.as_ref(),
        )
        .await
    }
}

/// Maps a failed insert or update of `record`: a unique violation names the rule, a foreign-key violation the
/// missing reference.
fn write_error<R: Record>(err: sqlx::Error, record: &R) -> Error {
    match database_error(&err) {
        Some((code, constraint)) if code == state::UNIQUE_VIOLATION => match rule_of(constraint.as_deref()) {
            "id" => Error::conflict(R::RESOURCE, format!("id {} is already taken", record.id())),
            rule => Error::conflict(R::RESOURCE, format!("{rule} is already taken")),
        },
        Some((code, constraint)) if code == state::FOREIGN_KEY_VIOLATION => {
            let missing = reference_of(constraint.as_deref()).map(|(_, to)| to);
            let reference = record
                .references()
                .into_iter()
                .find(|r| Some(r.resource) == missing);
            match reference {
                Some(r) => Error::not_found(r.resource, r.id),
                None => Error::not_found(missing.unwrap_or("record"), ""),
            }
        }
        _ => error::map(err),
    }
}

#[async_trait]
impl<R: Table> Repo<R> for PgUnit {
    async fn get(&mut self, id: R::Id) -> Result<R> {
        self.select(id, false).await
    }

    async fn lock(&mut self, id: R::Id) -> Result<R> {
        // A read-only unit must never block writers, so it may not lock (Postgres refuses FOR UPDATE there too).
        self.writable()?;
        self.select(id, true).await
    }

    async fn insert(&mut self, record: R) -> Result<R> {
        self.writable()?;
        let owner = record.tenant_id();
        if !visible(self.scope, owner) {
            return Err(outside_scope(R::RESOURCE, owner, record.id()));
        }
        self.savepoint().await?;
        let result = self.try_insert(&record).await;
        self.settle(result).await
    }

    async fn update(&mut self, record: R) -> Result<R> {
        self.writable()?;
        self.savepoint().await?;
        let result = self.try_update(&record).await;
        self.settle(result).await
    }

    async fn delete(&mut self, id: R::Id) -> Result<()> {
        self.writable()?;
        self.savepoint().await?;
        let result = self.try_delete::<R>(id).await;
        self.settle(result).await
    }

    async fn list(&mut self, filter: &R::Filter, page: PageRequest) -> Result<Page<R>> {
        let mut sql = Sql::new(&format!(
            "SELECT *, count(*) OVER () AS avb_total FROM {} WHERE TRUE",
            R::TABLE
        ));
        self.scope_filter::<R>(&mut sql)?;
        R::filter(filter, &mut sql)?;
        sql.push(&format!(" ORDER BY {} LIMIT ", R::ORDER));
        sql.bind(i64::from(page.limit()))?;
        sql.push(" OFFSET ");
        sql.bind(int("offset", page.offset())?)?;
        let rows = sql.query().fetch_all(&mut *self.tx).await.map_err(error::map)?;
        let total = match rows.first() {
            Some(row) => crate::sql::get_u64(row, "avb_total").map_err(error::map)?,
            // A page past the end carries no window count; count separately.
            None if page.offset() > 0 => Repo::<R>::count(self, filter).await?,
            None => 0,
        };
        let items = rows
            .iter()
            .map(R::decode)
            .collect::<std::result::Result<Vec<R>, _>>()
            .map_err(error::map)?;
        Ok(Page {
            items,
            total,
            limit: page.limit(),
            offset: page.offset(),
        })
    }

    async fn count(&mut self, filter: &R::Filter) -> Result<u64> {
        let mut sql = Sql::new(&format!("SELECT count(*) AS n FROM {} WHERE TRUE", R::TABLE));
        self.scope_filter::<R>(&mut sql)?;
        R::filter(filter, &mut sql)?;
        let row = sql.query().fetch_one(&mut *self.tx).await.map_err(error::map)?;
        crate::sql::get_u64(&row, "n").map_err(error::map)
    }
}

#[async_trait]
impl UnitOfWork for PgUnit {
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
            return Err(outside_scope("audit_chain", chain, ""));
        }
        self.savepoint().await?;
        let result = self.try_append(chain, entry).await;
        self.settle(result).await
    }

    async fn enqueue_job(&mut self, job: NewJob) -> Result<JobId> {
        self.writable()?;
        let job = jobs::new_job(job, self.scope, self.ids.as_ref(), self.clock.now())?;
        self.savepoint().await?;
        let result = jobs::insert(&mut self.tx, &job).await;
        self.settle(result).await
    }

    async fn commit(self: Box<Self>) -> Result<()> {
        self.tx.commit().await.map_err(error::map)
    }

    async fn rollback(self: Box<Self>) -> Result<()> {
        self.tx.rollback().await.map_err(error::map)
    }
}
