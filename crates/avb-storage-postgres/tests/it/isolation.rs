//! Postgres-only: tenant isolation and audit immutability hold in the database itself, not only in the
//! adapter's SQL. Raw statements here deliberately "forget" their tenant filters.
// Marks the helpers as test code for clippy's allow-*-in-tests settings.
#![cfg(test)]

use crate::support::{self, admin};
use avb_core::audit::{AuditAction, AuditReader, AuditSink, NewAuditEntry};
use avb_core::{Ctx, Principal, RequestId, TenantId, UuidV7Ids};
use avb_storage_postgres::PgStore;
use avb_tenancy::conformance::{admin as all_tenants, fixtures, member};
use avb_tenancy::model::Tenant;
use avb_tenancy::store::{Access, TenancyStore};
use sqlx::{Connection, Row};

/// Commits a tenant with one row in every tenant-scoped table (and a platform-level user and job).
async fn populated_tenant(store: &PgStore) -> Tenant {
    let mut uow = store.begin(&all_tenants(), Access::ReadWrite).await.unwrap();
    let tenant = uow.tenants().insert(fixtures::tenant()).await.unwrap();
    let t = tenant.id;
    uow.tenant_settings()
        .insert(avb_tenancy::model::TenantSettings::defaults(t, tenant.created_at))
        .await
        .unwrap();
    let user = uow.users().insert(fixtures::user(Some(t), 1)).await.unwrap();
    let project = uow.projects().insert(fixtures::project(t, "P", 1)).await.unwrap();
    let key = uow
        .api_keys()
        .insert(fixtures::api_key(t, Some(project.id), 1))
        .await
        .unwrap();
    let session = uow
        .sessions()
        .insert(fixtures::session(t, Some(project.id), Some(key.id), 1))
        .await
        .unwrap();
    uow.session_events()
        .insert(fixtures::session_event(t, session.id, 1))
        .await
        .unwrap();
    uow.voice_configs()
        .insert(fixtures::voice_config(t))
        .await
        .unwrap();
    uow.personas()
        .insert(fixtures::persona(t, "Ada", 1))
        .await
        .unwrap();
    uow.wake_words()
        .insert(fixtures::wake_word(t, "hey ada", 1))
        .await
        .unwrap();
    uow.themes().insert(fixtures::theme(t, "Dark", 1)).await.unwrap();
    uow.notifications()
        .insert(fixtures::notification(t, user.id, 1))
        .await
        .unwrap();
    uow.append_audit(NewAuditEntry::new(AuditAction::Create, "tenant", t).tenant(t))
        .await
        .unwrap();
    uow.enqueue_job(avb_core::jobs::NewJob::new(
        "isolation.test",
        Some(t),
        serde_json::json!({}),
    ))
    .await
    .unwrap();
    uow.users().insert(fixtures::user(None, 2)).await.unwrap();
    uow.enqueue_job(avb_core::jobs::NewJob::new(
        "isolation.test",
        None,
        serde_json::json!({}),
    ))
    .await
    .unwrap();
    uow.commit().await.unwrap();
    let usage = avb_billing::store::TenantUsage {
        tenant_id: t,
        event: avb_billing::model::UsageEvent {
            transaction_id: format!("{t}:isolation"),
            external_subscription_id: avb_billing::model::subscription_id(t),
            code: avb_billing::model::metrics::SESSIONS.to_owned(),
            timestamp: tenant.created_at.timestamp(),
            properties: serde_json::Map::new(),
        },
    };
    avb_billing::store::BillingStore::record_usage(store, &member(t), &[usage], tenant.created_at)
        .await
        .unwrap();
    tenant
}

/// Every table with a tenant column, and that column.
const TENANT_TABLES: &[(&str, &str)] = &[
    ("tenants", "id"),
    ("tenant_settings", "tenant_id"),
    ("users", "tenant_id"),
    ("projects", "tenant_id"),
    ("api_keys", "tenant_id"),
    ("sessions", "tenant_id"),
    ("session_events", "tenant_id"),
    ("voice_configs", "tenant_id"),
    ("personas", "tenant_id"),
    ("wake_words", "tenant_id"),
    ("themes", "tenant_id"),
    ("notifications", "tenant_id"),
    ("audit_logs", "tenant_id"),
    ("audit_chains", "tenant_id"),
    ("jobs", "tenant_id"),
    ("billing_usage_outbox", "tenant_id"),
];

async fn tenants_seen(tx: &mut sqlx::PgConnection, table: &str, column: &str) -> Vec<Option<uuid::Uuid>> {
    // No WHERE clause: whatever comes back is what row-level security lets through.
    let sql = format!("SELECT DISTINCT {column} AS t FROM {table}");
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_all(&mut *tx)
        .await
        .unwrap()
        .iter()
        .map(|row| row.get::<Option<uuid::Uuid>, _>("t"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_that_forgets_its_tenant_filter_sees_only_the_scoped_tenant() {
    let store = support::store().await;
    let a = populated_tenant(&store).await;
    let b = populated_tenant(&store).await;

    let mut tx = store
        .scoped_transaction(&member(a.id), Access::ReadWrite)
        .await
        .unwrap();
    for (table, column) in TENANT_TABLES {
        let seen = tenants_seen(&mut tx, table, column).await;
        assert_eq!(
            seen,
            vec![Some(a.id.0)],
            "{table} leaked rows of other tenants: {seen:?}"
        );
    }
    // Writes without a filter touch only the scoped tenant's rows, and rows of another tenant cannot be made.
    let updated = sqlx::query("UPDATE projects SET description = 'renamed by a'")
        .execute(&mut *tx)
        .await
        .unwrap();
    assert_eq!(updated.rows_affected(), 1);
    let deleted = sqlx::query("DELETE FROM notifications")
        .execute(&mut *tx)
        .await
        .unwrap();
    assert_eq!(deleted.rows_affected(), 1);
    tx.commit().await.unwrap();

    let mut tx = store
        .scoped_transaction(&member(a.id), Access::ReadWrite)
        .await
        .unwrap();
    let forged = sqlx::query(
        "INSERT INTO projects (id, tenant_id, name, description, settings, created_at, updated_at, version) \
         VALUES (gen_random_uuid(), $1, 'forged', '', '{}', now(), now(), 1)",
    )
    .bind(b.id.0)
    .execute(&mut *tx)
    .await;
    let err = forged.unwrap_err();
    assert!(err.to_string().contains("row-level security"), "{err}");
    drop(tx);

    let mut everyone = store
        .scoped_transaction(&all_tenants(), Access::ReadOnly)
        .await
        .unwrap();
    let descriptions: Vec<(uuid::Uuid, String)> =
        sqlx::query_as("SELECT tenant_id, description FROM projects WHERE tenant_id = ANY($1)")
            .bind(vec![a.id.0, b.id.0])
            .fetch_all(&mut *everyone)
            .await
            .unwrap();
    for (tenant, description) in descriptions {
        assert_eq!(
            description == "renamed by a",
            tenant == a.id.0,
            "{tenant}: {description}"
        );
    }
    let notes: i64 = sqlx::query_scalar("SELECT count(*) FROM notifications WHERE tenant_id = $1")
        .bind(b.id.0)
        .fetch_one(&mut *everyone)
        .await
        .unwrap();
    assert_eq!(notes, 1, "a deleted b's notification");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_all_tenants_bypass_is_explicit_and_platform_rows_need_it() {
    let store = support::store().await;
    let a = populated_tenant(&store).await;
    let b = populated_tenant(&store).await;

    let mut tx = store
        .scoped_transaction(&all_tenants(), Access::ReadOnly)
        .await
        .unwrap();
    let users = tenants_seen(&mut tx, "users", "tenant_id").await;
    for expected in [Some(a.id.0), Some(b.id.0), None] {
        assert!(
            users.contains(&expected),
            "the bypass misses {expected:?}: {users:?}"
        );
    }
    drop(tx);

    let mut tx = store
        .scoped_transaction(&member(a.id), Access::ReadOnly)
        .await
        .unwrap();
    for table in ["users", "jobs", "audit_logs"] {
        let seen = tenants_seen(&mut tx, table, "tenant_id").await;
        assert!(
            !seen.contains(&None),
            "a tenant scope sees platform rows of {table}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_sets_no_scope_sees_nothing() {
    let store = support::store().await;
    populated_tenant(&store).await;
    let mut conn = admin().await;
    let search_path = format!("SET search_path TO \"{}\"", store.schema.name);
    sqlx::raw_sql(sqlx::AssertSqlSafe(search_path))
        .execute(&mut conn)
        .await
        .unwrap();
    let mut tx = conn.begin().await.unwrap();
    sqlx::query("SET LOCAL ROLE avb_app")
        .execute(&mut *tx)
        .await
        .unwrap();
    for (table, column) in TENANT_TABLES {
        let seen = tenants_seen(&mut tx, table, column).await;
        assert!(seen.is_empty(), "{table} is visible without a scope: {seen:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_tenant_table_has_forced_row_level_security() {
    let store = support::store().await;
    let mut conn = admin().await;
    let rows = sqlx::query(
        "SELECT c.relname::text AS name, c.relrowsecurity AS enabled, c.relforcerowsecurity AS forced, \
                (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid) AS policies \
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
          WHERE n.nspname = $1 AND c.relkind = 'r' \
            AND (EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'tenant_id') \
                 OR c.relname = 'tenants')",
    )
    .bind(&store.schema.name)
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let names: Vec<String> = rows.iter().map(|r| r.get("name")).collect();
    assert_eq!(rows.len(), TENANT_TABLES.len(), "tenant tables: {names:?}");
    for row in rows {
        let name: String = row.get("name");
        assert!(
            row.get::<bool, _>("enabled") && row.get::<bool, _>("forced"),
            "{name}"
        );
        assert!(row.get::<i64, _>("policies") >= 1, "{name} has no policy");
    }
    let role =
        sqlx::query("SELECT rolsuper, rolbypassrls, rolcanlogin FROM pg_roles WHERE rolname = 'avb_app'")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert!(!role.get::<bool, _>("rolsuper") && !role.get::<bool, _>("rolbypassrls"));
    assert!(!role.get::<bool, _>("rolcanlogin"));
}

fn anonymous() -> Ctx {
    Ctx::new(RequestId::generate(&UuidV7Ids), Principal::Anonymous)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_rows_cannot_be_updated_or_deleted() {
    let store = support::store().await;
    let tenant = TenantId(uuid::Uuid::now_v7());
    let ctx = member(tenant);
    for n in 0..3 {
        store
            .record(&ctx, NewAuditEntry::new(AuditAction::Update, "project", n))
            .await
            .unwrap();
    }

    // The application role: no UPDATE, DELETE or TRUNCATE privilege at all.
    for statement in [
        "UPDATE audit_logs SET description = 'nothing happened'",
        "DELETE FROM audit_logs",
        "TRUNCATE audit_logs",
    ] {
        let mut tx = store.scoped_transaction(&ctx, Access::ReadWrite).await.unwrap();
        let err = sqlx::raw_sql(statement).execute(&mut *tx).await.unwrap_err();
        assert!(
            err.to_string().contains("permission denied"),
            "{statement}: {err}"
        );
    }
    // The owner (here a superuser, past every privilege check) is stopped by the trigger.
    let mut conn = admin().await;
    let search_path = format!("SET search_path TO \"{}\"", store.schema.name);
    sqlx::raw_sql(sqlx::AssertSqlSafe(search_path))
        .execute(&mut conn)
        .await
        .unwrap();
    for statement in [
        "UPDATE audit_logs SET description = 'nothing happened'",
        "DELETE FROM audit_logs",
        "TRUNCATE audit_logs",
    ] {
        let err = sqlx::raw_sql(statement).execute(&mut conn).await.unwrap_err();
        assert!(err.to_string().contains("append-only"), "{statement}: {err}");
    }
    assert_eq!(store.verify_audit_chain(&ctx, Some(tenant)).await.unwrap(), Ok(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampering_past_the_trigger_is_caught_by_verification() {
    let store = support::store().await;
    let tenant = TenantId(uuid::Uuid::now_v7());
    let ctx = member(tenant);
    for n in 0..3 {
        store
            .record(&ctx, NewAuditEntry::new(AuditAction::Update, "project", n))
            .await
            .unwrap();
    }
    let mut conn = admin().await;
    let setup = format!(
        "SET search_path TO \"{}\"; ALTER TABLE audit_logs DISABLE TRIGGER audit_logs_append_only",
        store.schema.name
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(setup))
        .execute(&mut conn)
        .await
        .unwrap();

    sqlx::query("UPDATE audit_logs SET description = 'edited' WHERE tenant_id = $1 AND sequence = 2")
        .bind(tenant.0)
        .execute(&mut conn)
        .await
        .unwrap();
    let broken = store
        .verify_audit_chain(&ctx, Some(tenant))
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(broken.sequence, 2, "{broken}");
    sqlx::query("UPDATE audit_logs SET description = '' WHERE tenant_id = $1 AND sequence = 2")
        .bind(tenant.0)
        .execute(&mut conn)
        .await
        .unwrap();
    assert_eq!(store.verify_audit_chain(&ctx, Some(tenant)).await.unwrap(), Ok(3));

    // Dropping the newest entry leaves a chain that links perfectly; the head row gives it away.
    sqlx::query("DELETE FROM audit_logs WHERE tenant_id = $1 AND sequence = 3")
        .bind(tenant.0)
        .execute(&mut conn)
        .await
        .unwrap();
    let broken = store
        .verify_audit_chain(&ctx, Some(tenant))
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(broken.sequence, 3, "{broken}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_contexts_record_only_on_the_platform_chain() {
    let store = support::store().await;
    let entry = store
        .record(
            &anonymous(),
            NewAuditEntry::new(AuditAction::Login, "user", "unknown@example.com"),
        )
        .await
        .unwrap();
    assert_eq!(entry.tenant_id, None);
    let chain = store.chain(&all_tenants(), None).await.unwrap();
    assert!(chain.iter().any(|e| e.id == entry.id));
    let with_tenant =
        NewAuditEntry::new(AuditAction::Login, "user", "x").tenant(TenantId(uuid::Uuid::now_v7()));
    assert!(matches!(
        store.record(&anonymous(), with_tenant).await,
        Err(avb_core::Error::TenantRequired)
    ));
    // Reading the platform chain still needs the cross-tenant scope.
    assert!(matches!(
        store.chain(&anonymous(), None).await,
        Err(avb_core::Error::TenantRequired)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_keys_hold_even_for_the_owner() {
    let store = support::store().await;
    let a = populated_tenant(&store).await;
    let b = populated_tenant(&store).await;
    let mut conn = admin().await;
    let search_path = format!("SET search_path TO \"{}\"", store.schema.name);
    sqlx::raw_sql(sqlx::AssertSqlSafe(search_path))
        .execute(&mut conn)
        .await
        .unwrap();
    // A key of tenant a pointing at a project of tenant b: refused by the composite foreign key.
    let project_b: uuid::Uuid = sqlx::query_scalar("SELECT id FROM projects WHERE tenant_id = $1")
        .bind(b.id.0)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    let err = sqlx::query("UPDATE api_keys SET project_id = $1 WHERE tenant_id = $2")
        .bind(project_b)
        .bind(a.id.0)
        .execute(&mut conn)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("api_keys_project_fk"), "{err}");
    conn.close().await.unwrap();
}
