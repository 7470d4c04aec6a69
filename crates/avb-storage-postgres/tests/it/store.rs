//! Postgres-only: migrations, health, pool and session settings, deadlines, error mapping, the schema's
//! indexes, and queue behaviour the shared suite leaves to the adapter.
// Marks the helpers as test code for clippy's allow-*-in-tests settings.
#![cfg(test)]

use crate::support::{self, admin};
use avb_core::jobs::{JobQueue, JobState, NewJob};
use avb_core::{Ctx, Error, ErrorCode, HasCode, RequestId, UuidV7Ids};
use avb_storage_postgres::{PgStore, PgStoreBuilder};
use avb_tenancy::conformance::{admin as all_tenants, fixtures, member};
use avb_tenancy::store::{Access, TenancyStore};
use sqlx::Row;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_are_versioned_and_idempotent() {
    let store = support::store().await;
    // The production path (with its advisory lock), twice: nothing left to apply either time.
    store.migrate().await.unwrap();
    store.migrate().await.unwrap();
    let mut conn = admin().await;
    let sql = format!(
        "SELECT version, success FROM \"{}\"._sqlx_migrations ORDER BY version",
        store.schema.name
    );
    let applied: Vec<(i64, bool)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .fetch_all(&mut conn)
        .await
        .unwrap();
    let versions: Vec<i64> = applied.iter().map(|(v, _)| *v).collect();
    assert_eq!(versions, PgStore::migration_versions());
    assert_eq!(versions, vec![1, 2, 3, 4, 5, 6]);
    assert!(applied.iter().all(|(_, ok)| *ok));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_schema_has_the_spec_indexes_and_constraints() {
    let store = support::store().await;
    let mut conn = admin().await;
    let indexes: Vec<String> =
        sqlx::query_scalar("SELECT indexname::text FROM pg_indexes WHERE schemaname = $1")
            .bind(&store.schema.name)
            .fetch_all(&mut conn)
            .await
            .unwrap();
    for expected in [
        "tenants_slug_key",
        "tenants_status_idx",
        "tenants_tier_idx",
        "tenants_billing_id_idx",
        "users_email_key",
        "users_keycloak_id_key",
        "api_keys_key_prefix_idx",
        "api_keys_tenant_revoked_idx",
        "api_keys_key_hash_key",
        "sessions_tenant_status_idx",
        "sessions_tenant_created_idx",
        "sessions_project_idx",
        "sessions_api_key_idx",
        "session_events_session_sequence_key",
        "audit_logs_tenant_time_idx",
        "audit_logs_actor_time_idx",
        "audit_logs_resource_idx",
        "audit_logs_chain_key",
        "projects_tenant_name_key",
        "personas_tenant_name_key",
        "wake_words_tenant_phrase_key",
        "themes_tenant_name_key",
        "voice_configs_tenant_key",
        "jobs_queued_idx",
        "relationships_live_key",
    ] {
        assert!(indexes.iter().any(|i| i == expected), "missing index {expected}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_transaction_runs_as_the_app_role_with_the_configured_timeouts() {
    let store = support::store().await;
    let ctx = member(avb_core::TenantId(uuid::Uuid::now_v7()));
    let mut tx = store.scoped_transaction(&ctx, Access::ReadOnly).await.unwrap();
    let row = sqlx::query(
        "SELECT current_user::text AS who, current_setting('statement_timeout') AS timeout, \
                current_setting('avb.tenant_id') AS tenant, current_setting('avb.all_tenants') AS bypass, \
                current_setting('transaction_read_only') AS read_only",
    )
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    assert_eq!(row.get::<String, _>("who"), "avb_app");
    assert_eq!(row.get::<String, _>("timeout"), "30s");
    assert_eq!(row.get::<String, _>("tenant"), ctx.tenant().unwrap().to_string());
    assert_eq!(row.get::<String, _>("bypass"), "off");
    assert_eq!(row.get::<String, _>("read_only"), "on");
    drop(tx);

    // A context deadline shortens the statement timeout of its transactions.
    let short = ctx.clone().with_timeout(Duration::from_secs(2));
    let mut tx = store.scoped_transaction(&short, Access::ReadWrite).await.unwrap();
    let timeout: String = sqlx::query_scalar("SELECT current_setting('statement_timeout')")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert!(
        timeout.ends_with("ms") || timeout == "2s",
        "statement timeout {timeout}"
    );
    drop(tx);

    let mut tx = store
        .scoped_transaction(&all_tenants(), Access::ReadOnly)
        .await
        .unwrap();
    let bypass: String = sqlx::query_scalar("SELECT current_setting('avb.all_tenants')")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(bypass, "on");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_wait_past_the_deadline_is_deadline_exceeded() {
    let store = support::store().await;
    let mut uow = store.begin(&all_tenants(), Access::ReadWrite).await.unwrap();
    let tenant = uow.tenants().insert(fixtures::tenant()).await.unwrap();
    uow.commit().await.unwrap();

    let mut holder = store.begin(&member(tenant.id), Access::ReadWrite).await.unwrap();
    holder.tenants().lock(tenant.id).await.unwrap();
    let impatient = member(tenant.id).with_timeout(Duration::from_millis(500));
    let mut waiter = store.begin(&impatient, Access::ReadWrite).await.unwrap();
    let started = Instant::now();
    let err = waiter.tenants().lock(tenant.id).await.unwrap_err();
    assert!(matches!(err, Error::DeadlineExceeded), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "waited {:?}",
        started.elapsed()
    );
    drop(waiter);
    holder.rollback().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn driver_errors_are_mapped_to_codes_without_driver_text() {
    let store = support::store().await;
    let mut uow = store.begin(&all_tenants(), Access::ReadWrite).await.unwrap();
    let tenant = uow.tenants().insert(fixtures::tenant()).await.unwrap();
    let mut twin = fixtures::tenant();
    twin.slug = tenant.slug.clone();
    let err = uow.tenants().insert(twin).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Conflict);
    let body = err.to_body();
    assert!(body.message.contains("slug is already taken"), "{}", body.message);
    assert!(
        !body.message.contains("duplicate key") && !body.message.contains("tenants_"),
        "{}",
        body.message
    );

    let orphan = fixtures::project(avb_core::TenantId(uuid::Uuid::now_v7()), "Orphan", 1);
    match uow.projects().insert(orphan.clone()).await.unwrap_err() {
        Error::NotFound { resource, id } => {
            assert_eq!((resource, id), ("tenant", orphan.tenant_id.to_string()));
        }
        other => panic!("{other:?}"),
    }
    uow.commit().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_server_is_unavailable_not_a_hang() {
    // Port 1 on localhost refuses connections.
    let started = Instant::now();
    let err = PgStoreBuilder::new()
        .with_url("postgres://nobody@127.0.0.1:1/none")
        .with_connect_timeout(Duration::from_secs(2))
        .with_acquire_timeout(Duration::from_secs(2))
        .build()
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Unavailable {
                backend: "postgres",
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.to_body().error, ErrorCode::ServiceUnavailable);
    assert!(
        !err.to_body().message.contains("127.0.0.1"),
        "{}",
        err.to_body().message
    );

    let lazy = PgStoreBuilder::new()
        .with_url("postgres://nobody@127.0.0.1:1/none")
        .with_connect_timeout(Duration::from_secs(2))
        .with_acquire_timeout(Duration::from_secs(2))
        .connect_lazily(true)
        .build()
        .await
        .unwrap();
    assert!(matches!(lazy.ping().await, Err(Error::Unavailable { .. })));
    let ctx = Ctx::system(RequestId::generate(&UuidV7Ids), "test", None);
    assert!(matches!(
        lazy.begin(&ctx, Access::ReadOnly).await,
        Err(Error::Unavailable { .. })
    ));
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "took {:?}",
        started.elapsed()
    );

    let store = support::store().await;
    store.ping().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_whose_last_lease_expires_is_dead() {
    let store = support::store().await;
    let ctx = all_tenants();
    let kind = format!("pg.{}", uuid::Uuid::new_v4());
    let mut new = NewJob::new(&kind, None, serde_json::json!({}));
    new.max_attempts = 1;
    let id = store.enqueue(&ctx, new).await.unwrap();
    let first = store
        .reserve(&ctx, &[kind.as_str()], Duration::from_millis(100))
        .await
        .unwrap();
    assert_eq!(first.map(|j| j.attempts), Some(1));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        store
            .reserve(&ctx, &[kind.as_str()], Duration::from_secs(30))
            .await
            .unwrap()
            .is_none()
    );
    let dead = JobQueue::get(&store.store, &ctx, id).await.unwrap();
    assert_eq!(dead.state, JobState::Failed);
    assert_eq!(
        dead.last_error.as_deref(),
        Some("lease expired on the last attempt")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_ack_leaves_no_lock_behind() {
    // A refused call must end its transaction before returning: a lock left to the pool's asynchronous
    // rollback would make the next worker's SKIP LOCKED pass over the job.
    let store = support::store().await;
    let ctx = all_tenants();
    let kind = format!("pg.{}", uuid::Uuid::new_v4());
    for _ in 0..20 {
        let id = store
            .enqueue(&ctx, NewJob::new(&kind, None, serde_json::json!({})))
            .await
            .unwrap();
        assert!(matches!(store.ack(&ctx, id).await, Err(Error::Conflict { .. })));
        let reserved = store
            .reserve(&ctx, &[kind.as_str()], Duration::from_secs(30))
            .await
            .unwrap();
        assert_eq!(reserved.map(|j| j.id), Some(id));
        store.ack(&ctx, id).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pruning_relationship_history_keeps_every_newer_snapshot_intact() {
    use avb_auth::authorizer::{
        ObjectRef, Relationship, RelationshipFilter, RelationshipStore, RelationshipUpdate, SubjectRef,
    };
    let store = support::store().await;
    let ctx = all_tenants();
    let doc = ObjectRef::new("doc", uuid::Uuid::new_v4().to_string());
    let tuple = |user: &str| {
        Relationship::new(
            doc.clone(),
            "viewer",
            SubjectRef::new(ObjectRef::new("user", user)),
        )
    };
    store
        .write(
            &ctx,
            &[
                RelationshipUpdate::Touch(tuple("a")),
                RelationshipUpdate::Touch(tuple("b")),
            ],
        )
        .await
        .unwrap();
    let gone = store
        .write(&ctx, &[RelationshipUpdate::Delete(tuple("a"))])
        .await
        .unwrap();
    let snapshot = store.snapshot(&ctx).await.unwrap();
    assert_eq!(store.prune_relationship_history(&ctx, gone).await.unwrap(), 1);
    let seen = snapshot
        .read(&ctx, &RelationshipFilter::resource(&doc), None)
        .await
        .unwrap();
    assert_eq!(seen, vec![tuple("b")]);
}
