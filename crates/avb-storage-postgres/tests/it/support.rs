//! The test database: every test gets a fresh schema in the PostgreSQL at `AVB_TEST_POSTGRES_URL` (default
//! `postgres://$PGUSER@127.0.0.1:5432/test`, `PGUSER` falling back to `USER`, then `postgres`), with the
//! embedded migrations applied, and drops it when the test's store is dropped. A missing PostgreSQL fails the
//! test; nothing is skipped.
// Marks the helpers as test code for clippy's allow-*-in-tests settings.
#![cfg(test)]

use async_trait::async_trait;
use avb_auth::authorizer::{
    RelationshipFilter, RelationshipSnapshot, RelationshipStore, RelationshipUpdate, Revision,
};
use avb_billing::model::RejectedEvent;
use avb_billing::store::{BillingStore, OutboxEntry, TenantUsage};
use avb_core::audit::{AuditEntry, AuditFilter, AuditReader, AuditSink, NewAuditEntry};
use avb_core::jobs::{Job, JobQueue, JobState, NewJob};
use avb_core::{Ctx, JobId, Page, PageRequest, Result, TenantId};
use avb_storage_postgres::{PgStore, PgStoreBuilder};
use avb_tenancy::store::{Access, TenancyStore, UnitOfWork};
use chrono::{DateTime, Utc};
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};
use std::ops::Deref;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

/// Where the tests' PostgreSQL is.
pub fn admin_url() -> String {
    std::env::var("AVB_TEST_POSTGRES_URL").unwrap_or_else(|_| {
        let user = ["PGUSER", "USER"]
            .into_iter()
            .find_map(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
            .unwrap_or_else(|| "postgres".to_owned());
        format!("postgres://{user}@127.0.0.1:5432/test")
    })
}

/// A superuser-ish connection for setup, teardown and raw checks.
pub async fn admin() -> PgConnection {
    match PgConnection::connect(&admin_url()).await {
        Ok(conn) => conn,
        Err(err) => panic!(
            "PostgreSQL is required for these tests (AVB_TEST_POSTGRES_URL={}): {err}",
            admin_url()
        ),
    }
}

/// A fresh schema name, carrying this process's id so leftovers of a killed run can be recognised.
fn schema_name() -> String {
    format!("avb_it_{}_{}", std::process::id(), uuid::Uuid::new_v4().simple())
}

/// Drops schemas that test processes no longer running left behind (a run that was killed cannot drop its
/// own). Runs once per process, before its first schema.
async fn sweep_leftovers() {
    static SWEPT: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    SWEPT
        .get_or_init(|| async {
            let mut conn = admin().await;
            let schemas: Vec<String> = sqlx::query_scalar(
                "SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'avb\\_it\\_%'",
            )
            .fetch_all(&mut conn)
            .await
            .unwrap_or_default();
            for schema in schemas {
                let pid = schema.split('_').nth(2).and_then(|p| p.parse::<u32>().ok());
                let alive = pid.is_some_and(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists());
                if !alive {
                    let drop = format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE");
                    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(drop)).execute(&mut conn).await;
                }
            }
            let _ = conn.close().await;
        })
        .await;
}

/// Drops its schema (and ends the connections of its test) when dropped.
#[derive(Debug)]
pub struct SchemaGuard {
    pub name: String,
}

impl Drop for SchemaGuard {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs inside the test's runtime, which may be shutting down: clean up on a thread of our own.
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build();
            let Ok(runtime) = runtime else { return };
            runtime.block_on(async move {
                let Ok(mut conn) = PgConnection::connect(&admin_url()).await else {
                    return;
                };
                // Units a test dropped may still hold locks until their connection is returned; end them.
                let _ = sqlx::query(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                     WHERE application_name = $1 AND pid <> pg_backend_pid()",
                )
                .bind(&name)
                .execute(&mut conn)
                .await;
                let drop = format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE");
                if let Err(err) = sqlx::raw_sql(sqlx::AssertSqlSafe(drop)).execute(&mut conn).await {
                    eprintln!("could not drop test schema {name}: {err}");
                }
                let _ = conn.close().await;
            });
        });
        let _ = cleanup.join();
    }
}

/// A migrated [`PgStore`] in a schema of its own, dropped with it.
#[derive(Debug)]
pub struct TestStore {
    pub store: PgStore,
    /// Dropped after the store: removes the schema.
    pub schema: SchemaGuard,
}

impl Deref for TestStore {
    type Target = PgStore;
    fn deref(&self) -> &PgStore {
        &self.store
    }
}

/// Creates a schema, builds a store on it (8 connections) and migrates it.
pub async fn store() -> Arc<TestStore> {
    store_with(|builder| builder).await
}

/// [`store`] with builder changes.
pub async fn store_with(edit: impl FnOnce(PgStoreBuilder) -> PgStoreBuilder) -> Arc<TestStore> {
    sweep_leftovers().await;
    let name = schema_name();
    let mut conn = admin().await;
    let create = format!("CREATE SCHEMA \"{name}\"");
    sqlx::raw_sql(sqlx::AssertSqlSafe(create))
        .execute(&mut conn)
        .await
        .expect("create test schema");
    let _ = conn.close().await;
    let schema = SchemaGuard { name: name.clone() };
    let mut builder = PgStoreBuilder::new()
        .with_url(admin_url())
        .with_schema(name.clone())
        .with_max_connections(8)
        .with_acquire_timeout(Duration::from_secs(20));
    builder = edit(builder);
    let mut config = builder.config().clone();
    config.application_name = name;
    let store = PgStoreBuilder::from_config(config)
        .build()
        .await
        .expect("connect");
    // The embedded migrations, as `PgStore::migrate` applies them, but without its database-wide advisory
    // lock: every test has a schema of its own, so their migrations may run side by side (`store::migrate_*`
    // checks the locked path).
    let mut migrator = sqlx::migrate!("./migrations");
    migrator.set_locking(false);
    let options = PgConnectOptions::from_str(&admin_url())
        .expect("test database URL")
        .options([("search_path", schema.name.as_str())]);
    let mut conn = PgConnection::connect_with(&options)
        .await
        .expect("connect to migrate");
    migrator.run(&mut conn).await.expect("migrate");
    let _ = conn.close().await;
    Arc::new(TestStore { store, schema })
}

// The ports, forwarded to the inner store, so the shared suites can run against a `TestStore`.

#[async_trait]
impl TenancyStore for TestStore {
    async fn begin(&self, ctx: &Ctx, access: Access) -> Result<Box<dyn UnitOfWork>> {
        self.store.begin(ctx, access).await
    }
}

#[async_trait]
impl AuditSink for TestStore {
    async fn record(&self, ctx: &Ctx, entry: NewAuditEntry) -> Result<AuditEntry> {
        self.store.record(ctx, entry).await
    }
}

#[async_trait]
impl AuditReader for TestStore {
    async fn query(&self, ctx: &Ctx, filter: &AuditFilter, page: PageRequest) -> Result<Page<AuditEntry>> {
        self.store.query(ctx, filter, page).await
    }
    async fn chain(&self, ctx: &Ctx, tenant: Option<TenantId>) -> Result<Vec<AuditEntry>> {
        self.store.chain(ctx, tenant).await
    }
}

#[async_trait]
impl JobQueue for TestStore {
    async fn enqueue(&self, ctx: &Ctx, job: NewJob) -> Result<JobId> {
        self.store.enqueue(ctx, job).await
    }
    async fn reserve(&self, ctx: &Ctx, kinds: &[&str], lease: Duration) -> Result<Option<Job>> {
        self.store.reserve(ctx, kinds, lease).await
    }
    async fn ack(&self, ctx: &Ctx, id: JobId) -> Result<()> {
        self.store.ack(ctx, id).await
    }
    async fn fail(&self, ctx: &Ctx, id: JobId, error: &str, retry_in: Duration) -> Result<JobState> {
        self.store.fail(ctx, id, error, retry_in).await
    }
    async fn get(&self, ctx: &Ctx, id: JobId) -> Result<Job> {
        JobQueue::get(&self.store, ctx, id).await
    }
}

#[async_trait]
impl RelationshipStore for TestStore {
    async fn write(&self, ctx: &Ctx, updates: &[RelationshipUpdate]) -> Result<Revision> {
        self.store.write(ctx, updates).await
    }
    async fn delete(&self, ctx: &Ctx, filter: &RelationshipFilter) -> Result<Revision> {
        RelationshipStore::delete(&self.store, ctx, filter).await
    }
    async fn snapshot(&self, ctx: &Ctx) -> Result<Arc<dyn RelationshipSnapshot>> {
        self.store.snapshot(ctx).await
    }
}

#[async_trait]
impl BillingStore for TestStore {
    async fn record_usage(
        &self,
        ctx: &Ctx,
        usage: &[TenantUsage],
        at: DateTime<Utc>,
    ) -> avb_billing::Result<u64> {
        self.store.record_usage(ctx, usage, at).await
    }
    async fn pending_usage(&self, ctx: &Ctx, limit: u32) -> avb_billing::Result<Vec<OutboxEntry>> {
        self.store.pending_usage(ctx, limit).await
    }
    async fn mark_sent(&self, ctx: &Ctx, ids: &[String], at: DateTime<Utc>) -> avb_billing::Result<()> {
        self.store.mark_sent(ctx, ids, at).await
    }
    async fn mark_rejected(
        &self,
        ctx: &Ctx,
        rejected: &[RejectedEvent],
        at: DateTime<Utc>,
    ) -> avb_billing::Result<()> {
        self.store.mark_rejected(ctx, rejected, at).await
    }
    async fn mark_failed(&self, ctx: &Ctx, ids: &[String], error: &str) -> avb_billing::Result<()> {
        self.store.mark_failed(ctx, ids, error).await
    }
    async fn usage_entry(&self, ctx: &Ctx, transaction_id: &str) -> avb_billing::Result<OutboxEntry> {
        self.store.usage_entry(ctx, transaction_id).await
    }
    async fn cursor(&self, ctx: &Ctx, name: &str) -> avb_billing::Result<Option<DateTime<Utc>>> {
        self.store.cursor(ctx, name).await
    }
    async fn set_cursor(&self, ctx: &Ctx, name: &str, value: DateTime<Utc>) -> avb_billing::Result<()> {
        self.store.set_cursor(ctx, name, value).await
    }
    async fn claim_webhook(&self, ctx: &Ctx, key: &str, at: DateTime<Utc>) -> avb_billing::Result<bool> {
        self.store.claim_webhook(ctx, key, at).await
    }
    async fn release_webhook(&self, ctx: &Ctx, key: &str) -> avb_billing::Result<()> {
        self.store.release_webhook(ctx, key).await
    }
}
