//! The timing decorator over the memory store: every call is reported under its own name with its outcome,
//! results and errors pass through unchanged, and the wrapped store still meets the whole storage contract.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use avb_core::audit::{AuditAction, AuditReader, NewAuditEntry};
use avb_core::jobs::{JobQueue, NewJob};
use avb_core::{
    Ctx, ErrorCode, HasCode, PageRequest, Principal, RequestId, Role, TenantId, UserId, UserPrincipal,
    UuidV7Ids,
};
use avb_storage_memory::MemoryStore;
use avb_tenancy::model::{Tenant, TenantStatus, TenantTier};
use avb_tenancy::observed::{ObservedStore, StoreObserver};
use avb_tenancy::store::{Access, TenancyStore, TenantFilter};
use chrono::{DateTime, Utc};
use serde_json::{Map, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use uuid::Uuid;

/// Remembers every observation in order.
#[derive(Debug, Default)]
struct Recorder(Mutex<Vec<(&'static str, Duration, bool)>>);

impl StoreObserver for Recorder {
    fn observe(&self, operation: &'static str, elapsed: Duration, ok: bool) {
        self.0.lock().unwrap().push((operation, elapsed, ok));
    }
}

impl Recorder {
    /// Operation names and outcomes so far, clearing the record.
    fn take(&self) -> Vec<(&'static str, bool)> {
        std::mem::take(&mut *self.0.lock().unwrap())
            .into_iter()
            .map(|(op, _, ok)| (op, ok))
            .collect()
    }
}

struct Setup {
    bare: MemoryStore,
    observed: ObservedStore,
    recorder: Arc<Recorder>,
}

fn setup() -> Setup {
    let bare = MemoryStore::new();
    let recorder = Arc::new(Recorder::default());
    let observed = ObservedStore::new(Arc::new(bare.clone()), recorder.clone());
    Setup {
        bare,
        observed,
        recorder,
    }
}

fn admin() -> Ctx {
    Ctx::system(RequestId::generate(&UuidV7Ids), "test", None)
}

fn at() -> DateTime<Utc> {
    DateTime::from_timestamp(1_760_000_000, 0).unwrap()
}

fn tenant(slug: &str) -> Tenant {
    Tenant {
        id: TenantId(Uuid::now_v7()),
        name: format!("{slug} Inc"),
        slug: slug.into(),
        tier: TenantTier::Free,
        status: TenantStatus::Active,
        billing_id: String::new(),
        keycloak_group_id: String::new(),
        settings: Map::new(),
        limits: TenantTier::Free.limits(),
        created_at: at(),
        updated_at: at(),
        activated_at: Some(at()),
        suspended_at: None,
        deleted_at: None,
        version: 0,
    }
}

/// A user without tenant who may not act across tenants: no storage scope.
fn tenantless() -> Ctx {
    let user = UserPrincipal {
        user_id: UserId(Uuid::now_v7()),
        tenant_id: None,
        email: "lost@example.com".into(),
        roles: [Role::Admin].into(),
        external_id: None,
    };
    Ctx::new(RequestId::generate(&UuidV7Ids), Principal::User(user))
}

async fn bare_get(bare: &MemoryStore, id: TenantId) -> avb_core::Result<Tenant> {
    let mut uow = bare.begin(&admin(), Access::ReadOnly).await?;
    uow.tenants().get(id).await
}

#[tokio::test]
async fn observed_unit_of_work_reports_each_call_in_order() {
    let s = setup();
    let ctx = admin();
    let all = TenantFilter::default();
    let page = PageRequest::new(Some(10), None).unwrap();

    let mut uow = s.observed.begin(&ctx, Access::ReadWrite).await.unwrap();
    let a = uow.tenants().insert(tenant("alpha")).await.unwrap();
    assert_eq!(a.version, 1);
    assert_eq!(uow.tenants().get(a.id).await.unwrap(), a);
    assert_eq!(uow.tenants().lock(a.id).await.unwrap(), a);
    let mut renamed = a.clone();
    renamed.name = "Alpha Renamed".into();
    let a2 = uow.tenants().update(renamed).await.unwrap();
    assert_eq!(a2.version, 2);
    let b = uow.tenants().insert(tenant("beta")).await.unwrap();
    uow.tenants().delete(b.id).await.unwrap();
    let listed = uow.tenants().list(&all, page).await.unwrap();
    assert_eq!(listed.items, vec![a2.clone()]);
    assert_eq!(uow.tenants().count(&all).await.unwrap(), 1);
    let entry = uow
        .append_audit(NewAuditEntry::new(AuditAction::Create, "tenant", a.id))
        .await
        .unwrap();
    let job = uow
        .enqueue_job(NewJob::new("test.job", None, json!({ "tenant": a.id })))
        .await
        .unwrap();
    uow.commit().await.unwrap();

    assert_eq!(
        s.recorder.take(),
        vec![
            ("begin", true),
            ("tenants.insert", true),
            ("tenants.get", true),
            ("tenants.lock", true),
            ("tenants.update", true),
            ("tenants.insert", true),
            ("tenants.delete", true),
            ("tenants.list", true),
            ("tenants.count", true),
            ("append_audit", true),
            ("enqueue_job", true),
            ("commit", true),
        ]
    );

    // What went through the wrapper is what the bare store holds.
    assert_eq!(bare_get(&s.bare, a.id).await.unwrap(), a2);
    assert_eq!(
        bare_get(&s.bare, b.id).await.unwrap_err().code(),
        ErrorCode::NotFound
    );
    let chain = s.bare.chain(&ctx, None).await.unwrap();
    assert!(chain.iter().any(|e| e.id == entry.id));
    assert_eq!(s.bare.get(&ctx, job).await.unwrap().kind, "test.job");
    assert!(s.recorder.take().is_empty(), "the bare store is not observed");
}

#[tokio::test]
async fn observed_failures_report_not_ok_and_pass_the_error_through() {
    let s = setup();
    let missing = TenantId(Uuid::now_v7());

    let mut uow = s.observed.begin(&admin(), Access::ReadWrite).await.unwrap();
    let wrapped = uow.tenants().get(missing).await.unwrap_err();
    let bare = bare_get(&s.bare, missing).await.unwrap_err();
    assert_eq!(wrapped.code(), ErrorCode::NotFound);
    assert_eq!(wrapped.code(), bare.code());
    assert_eq!(wrapped.details(), bare.details());

    // A failed write leaves the wrapped unit usable; a duplicate slug is a conflict, as in the bare store.
    uow.tenants().insert(tenant("gamma")).await.unwrap();
    let dup = uow.tenants().insert(tenant("gamma")).await.unwrap_err();
    assert_eq!(dup.code(), ErrorCode::Conflict);
    uow.commit().await.unwrap();

    // A context without a tenant scope cannot begin, with the same code either way.
    let tenantless = tenantless();
    let wrapped = s.observed.begin(&tenantless, Access::ReadOnly).await.unwrap_err();
    let bare = s.bare.begin(&tenantless, Access::ReadOnly).await.unwrap_err();
    assert_eq!(wrapped.code(), ErrorCode::TenantRequired);
    assert_eq!(wrapped.code(), bare.code());

    assert_eq!(
        s.recorder.take(),
        vec![
            ("begin", true),
            ("tenants.get", false),
            ("tenants.insert", true),
            ("tenants.insert", false),
            ("commit", true),
            ("begin", false),
        ]
    );
}

#[tokio::test]
async fn observed_rollback_and_drop_discard_writes() {
    let s = setup();

    let mut uow = s.observed.begin(&admin(), Access::ReadWrite).await.unwrap();
    let rolled = uow.tenants().insert(tenant("delta")).await.unwrap();
    uow.rollback().await.unwrap();

    let mut uow = s.observed.begin(&admin(), Access::ReadWrite).await.unwrap();
    let dropped = uow.tenants().insert(tenant("epsilon")).await.unwrap();
    drop(uow);

    assert_eq!(
        bare_get(&s.bare, rolled.id).await.unwrap_err().code(),
        ErrorCode::NotFound
    );
    assert_eq!(
        bare_get(&s.bare, dropped.id).await.unwrap_err().code(),
        ErrorCode::NotFound
    );
    assert_eq!(
        s.recorder.take(),
        vec![
            ("begin", true),
            ("tenants.insert", true),
            ("rollback", true),
            ("begin", true),
            ("tenants.insert", true),
        ]
    );

    // The dropped writer released the store: a new writer through the wrapper can begin and commit.
    let uow = s.observed.begin(&admin(), Access::ReadWrite).await.unwrap();
    uow.commit().await.unwrap();
    assert_eq!(s.recorder.take(), vec![("begin", true), ("commit", true)]);
}

#[tokio::test]
async fn observed_accessors_report_their_own_table() {
    let s = setup();
    let mut uow = s.observed.begin(&admin(), Access::ReadOnly).await.unwrap();
    uow.tenants().count(&Default::default()).await.unwrap();
    uow.tenant_settings().count(&Default::default()).await.unwrap();
    uow.users().count(&Default::default()).await.unwrap();
    uow.projects().count(&Default::default()).await.unwrap();
    uow.api_keys().count(&Default::default()).await.unwrap();
    uow.sessions().count(&Default::default()).await.unwrap();
    uow.session_events().count(&Default::default()).await.unwrap();
    uow.voice_configs().count(&Default::default()).await.unwrap();
    uow.personas().count(&Default::default()).await.unwrap();
    uow.wake_words().count(&Default::default()).await.unwrap();
    uow.themes().count(&Default::default()).await.unwrap();
    uow.notifications().count(&Default::default()).await.unwrap();
    uow.rollback().await.unwrap();

    let names: Vec<_> = s.recorder.take().into_iter().map(|(op, _)| op).collect();
    assert_eq!(
        names,
        vec![
            "begin",
            "tenants.count",
            "tenant_settings.count",
            "users.count",
            "projects.count",
            "api_keys.count",
            "sessions.count",
            "session_events.count",
            "voice_configs.count",
            "personas.count",
            "wake_words.count",
            "themes.count",
            "notifications.count",
            "rollback",
        ]
    );
}

#[tokio::test]
async fn observed_cancelled_calls_report_not_ok_with_their_time() {
    let s = setup();
    // An open writer makes the next read-write `begin` wait; the timeout drops it unfinished.
    let writer = s.bare.begin(&admin(), Access::ReadWrite).await.unwrap();
    let waited = Duration::from_millis(50);
    let cancelled = tokio::time::timeout(waited, s.observed.begin(&admin(), Access::ReadWrite)).await;
    assert!(cancelled.is_err(), "begin should wait for the open writer");
    drop(writer);

    let seen = std::mem::take(&mut *s.recorder.0.lock().unwrap());
    assert_eq!(seen.len(), 1, "{seen:?}");
    let (op, elapsed, ok) = seen[0];
    assert_eq!((op, ok), ("begin", false));
    assert!(elapsed >= waited, "elapsed {elapsed:?}");
}

#[test]
fn observed_store_debug_names_the_wrapper() {
    let s = setup();
    let shown = format!("{:?}", s.observed);
    assert!(shown.starts_with("ObservedStore"), "{shown}");
    assert!(shown.contains("Recorder"), "{shown}");
}

/// The whole storage contract, run through the wrapper over the memory store.
#[cfg(feature = "conformance")]
mod conformance {
    use super::Recorder;
    use avb_storage_memory::MemoryStore;
    use avb_tenancy::conformance::StoreUnderTest;
    use avb_tenancy::observed::ObservedStore;
    use std::sync::Arc;

    async fn subject() -> StoreUnderTest {
        let memory = Arc::new(MemoryStore::new());
        let mut subject = StoreUnderTest::from(Arc::clone(&memory));
        subject.store = Arc::new(ObservedStore::new(memory, Arc::new(Recorder::default())));
        subject
    }

    avb_tenancy::tenancy_store_conformance!(subject());
}
