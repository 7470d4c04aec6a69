//! Conformance suite for tenancy storage adapters: every point of the `# Contract` docs in [`crate::store`]
//! as a plain `pub async fn` check, and [`tenancy_store_conformance!`](crate::tenancy_store_conformance),
//! which turns each into its own `#[tokio::test]`:
//!
//! ```text
//! avb_tenancy::tenancy_store_conformance!(async { std::sync::Arc::new(MemoryStore::new()) });
//! ```
//!
//! The adapter under test is a [`StoreUnderTest`]: the unit-of-work store plus the audit and job ports over the
//! same data, because audit entries and jobs written in a unit of work must appear (or not) with it.
//!
//! Checks never assume an empty store: each creates its own random tenants, and global listings are checked
//! for "contains", so the suite can run in parallel against a shared database. Generic checks
//! ([`records`]) run once per record type through [`fixtures::Fixture`].

pub mod fixtures;
pub mod records;
pub mod rules;
pub mod units;

use crate::model::Tenant;
use crate::store::{Access, TenancyStore, UnitOfWork};
use avb_core::audit::{AuditReader, AuditSink};
use avb_core::jobs::JobQueue;
use avb_core::{
    Ctx, Page, PageRequest, Principal, RequestId, Role, TenantId, UserId, UserPrincipal, UuidV7Ids,
};
use fixtures::{Fixture, HasRepo};
use std::fmt::Display;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// The outcome of one check: `Err` describes the first broken contract point.
pub type CheckResult = Result<(), String>;

/// The ports of one storage adapter that the suite exercises; all must share the same data.
#[derive(Debug, Clone)]
pub struct StoreUnderTest {
    /// Units of work over the records.
    pub store: Arc<dyn TenancyStore>,
    /// Audit appends outside units of work.
    pub audit_sink: Arc<dyn AuditSink>,
    /// Audit reads (to see what units of work appended).
    pub audit: Arc<dyn AuditReader>,
    /// The queue that jobs enqueued by units of work join on commit.
    pub jobs: Arc<dyn JobQueue>,
}

impl<S: TenancyStore + AuditSink + AuditReader + JobQueue> From<Arc<S>> for StoreUnderTest {
    fn from(adapter: Arc<S>) -> Self {
        Self {
            store: Arc::clone(&adapter) as Arc<dyn TenancyStore>,
            audit_sink: Arc::clone(&adapter) as Arc<dyn AuditSink>,
            audit: Arc::clone(&adapter) as Arc<dyn AuditReader>,
            jobs: adapter,
        }
    }
}

/// Runs the whole suite against the adapter made by `$factory`, an expression whose `.await` yields something
/// `Into<StoreUnderTest>` (an `Arc` of a type implementing every port, or a [`StoreUnderTest`]). Generic checks
/// land in one module per record type (`users::crud_round_trip`), so invoke this in a module of its own.
/// The calling crate needs `tokio` (with `macros` and `rt-multi-thread`) as a dev-dependency.
#[macro_export]
macro_rules! tenancy_store_conformance {
    ($factory:expr) => {
        $crate::tenancy_store_conformance!(@records $factory;
            tenant_settings: $crate::model::TenantSettings,
            users: $crate::model::User,
            projects: $crate::model::Project,
            api_keys: $crate::model::ApiKey,
            sessions: $crate::model::Session,
            session_events: $crate::model::SessionEvent,
            voice_configs: $crate::model::VoiceConfig,
            personas: $crate::model::Persona,
            wake_words: $crate::model::WakeWord,
            themes: $crate::model::Theme,
            notifications: $crate::model::Notification,
        );
        $crate::tenancy_store_conformance!(@tests $factory;
            rules::begin_requires_a_tenant_scope,
            rules::tenants_round_trip_with_versions,
            rules::a_tenant_scope_sees_only_its_own_tenant,
            rules::platform_rows_are_visible_only_across_tenants,
            rules::unique_keys_hold_across_tenants,
            rules::per_tenant_names_may_repeat_in_other_tenants,
            rules::updates_keep_unique_keys_and_deletes_free_them,
            rules::references_must_exist_in_the_same_tenant,
            rules::updates_cannot_move_records_between_tenants,
            rules::deleting_a_project_removes_its_keys_and_detaches_its_sessions,
            rules::deleting_a_session_removes_its_events,
            rules::deleting_a_user_removes_their_notifications,
            rules::referenced_records_cannot_be_deleted,
            rules::filters_narrow_lists_and_counts,
            units::commit_publishes_records_audit_and_jobs_together,
            units::rollback_discards_records_audit_and_jobs,
            units::dropping_a_unit_discards_it,
            units::failed_writes_leave_the_unit_usable,
            units::read_only_units_refuse_writes_and_never_block_writers,
            units::concurrent_quota_reservations_never_overshoot,
            units::concurrent_updates_from_one_version_conflict,
            units::audit_in_units_extends_a_verified_chain,
            units::concurrent_audit_appends_never_fork_a_chain,
            units::tampering_with_a_stored_chain_is_detected,
            units::audit_outside_the_scope_is_refused,
            units::jobs_enqueued_in_a_unit_wait_for_commit,
        );
    };
    (@records $factory:expr; $($module:ident: $ty:ty),* $(,)?) => {
        $(
            mod $module {
                #[allow(unused_imports)]
                use super::*;
                $crate::tenancy_store_conformance!(@generic $factory; $ty;
                    crud_round_trip,
                    hidden_from_other_tenants,
                    refused_outside_the_scope,
                    rollback_discards_writes,
                    reads_see_own_writes,
                    read_only_units_refuse_writes,
                    listed_in_order_with_totals,
                );
            }
        )*
    };
    (@generic $factory:expr; $ty:ty; $($check:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let subject: $crate::conformance::StoreUnderTest = $factory.await.into();
                if let Err(failure) = $crate::conformance::records::$check::<$ty>(subject).await {
                    panic!("{}", failure);
                }
            }
        )*
    };
    (@tests $factory:expr; $($module:ident :: $check:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let subject: $crate::conformance::StoreUnderTest = $factory.await.into();
                if let Err(failure) = $crate::conformance::$module::$check(subject).await {
                    panic!("{}", failure);
                }
            }
        )*
    };
}

/// Adds the step that failed to an adapter error.
pub(crate) trait Step<T> {
    fn step(self, what: &str) -> Result<T, String>;
}

impl<T, E: Display> Step<T> for Result<T, E> {
    fn step(self, what: &str) -> Result<T, String> {
        self.map_err(|err| format!("{what}: {err}"))
    }
}

/// Fails the check with a message unless the condition holds.
macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}

/// Fails the check unless the result is an error matching the pattern.
macro_rules! ensure_err {
    ($result:expr, $pattern:pat, $($msg:tt)+) => {
        match $result {
            Err($pattern) => {}
            other => {
                return Err(format!("{}: expected {}, got {:?}", format!($($msg)+), stringify!($pattern), other));
            }
        }
    };
}

pub(crate) use {ensure, ensure_err};

/// A fresh request id, so audit entries of one check can be told apart.
fn request_id() -> RequestId {
    RequestId::generate(&UuidV7Ids)
}

/// The platform itself: every tenant is in scope.
pub fn admin() -> Ctx {
    Ctx::system(request_id(), "conformance", None)
}

/// An administrator of `tenant`: only that tenant is in scope.
pub fn member(tenant: TenantId) -> Ctx {
    let user = UserPrincipal {
        user_id: UserId(uuid::Uuid::now_v7()),
        tenant_id: Some(tenant),
        email: "member@example.com".into(),
        roles: [Role::Admin].into(),
        external_id: None,
    };
    Ctx::new(request_id(), Principal::User(user)).with_tenant(Some(tenant))
}

/// A user without tenant who may not act across tenants: has no storage scope at all.
pub fn tenantless() -> Ctx {
    let user = UserPrincipal {
        user_id: UserId(uuid::Uuid::now_v7()),
        tenant_id: None,
        email: "lost@example.com".into(),
        roles: [Role::Admin].into(),
        external_id: None,
    };
    Ctx::new(request_id(), Principal::User(user))
}

/// Fails instead of hanging when `future` does not finish in time (a lock the contract says must not block).
pub(crate) async fn within<F: Future>(seconds: u64, what: &str, future: F) -> Result<F::Output, String> {
    tokio::time::timeout(Duration::from_secs(seconds), future)
        .await
        .map_err(|_| format!("{what} did not finish within {seconds}s"))
}

pub(crate) async fn begin(
    s: &StoreUnderTest,
    ctx: &Ctx,
    access: Access,
) -> Result<Box<dyn UnitOfWork>, String> {
    within(10, "begin", s.store.begin(ctx, access))
        .await?
        .step("begin")
}

/// Commits a new tenant (with `edit` applied) through the all-tenants scope.
pub(crate) async fn create_tenant_with(
    s: &StoreUnderTest,
    edit: impl FnOnce(&mut Tenant),
) -> Result<Tenant, String> {
    let mut record = fixtures::tenant();
    edit(&mut record);
    let mut uow = begin(s, &admin(), Access::ReadWrite).await?;
    let tenant = uow.tenants().insert(record).await.step("insert tenant")?;
    uow.commit().await.step("commit tenant")?;
    Ok(tenant)
}

/// Commits a new free-tier tenant.
pub(crate) async fn create_tenant(s: &StoreUnderTest) -> Result<Tenant, String> {
    create_tenant_with(s, |_| {}).await
}

/// Prepares record `n` of `tenant` (with its parents) and commits it.
pub(crate) async fn prepare_and_insert<R: Fixture>(
    s: &StoreUnderTest,
    ctx: &Ctx,
    tenant: TenantId,
    n: u32,
) -> Result<R, String> {
    let mut uow = begin(s, ctx, Access::ReadWrite).await?;
    let record = R::prepare(uow.as_mut(), tenant, n).await.step("prepare")?;
    let stored = R::repo(uow.as_mut())
        .insert(record)
        .await
        .step(&format!("insert {}", R::RESOURCE))?;
    uow.commit().await.step("commit")?;
    Ok(stored)
}

/// Commits `record` in a unit of its own.
pub(crate) async fn insert<R: HasRepo>(s: &StoreUnderTest, ctx: &Ctx, record: R) -> avb_core::Result<R> {
    let mut uow = s.store.begin(ctx, Access::ReadWrite).await?;
    let stored = R::repo(uow.as_mut()).insert(record).await?;
    uow.commit().await?;
    Ok(stored)
}

/// Commits an update of `record` in a unit of its own.
pub(crate) async fn update<R: HasRepo>(s: &StoreUnderTest, ctx: &Ctx, record: R) -> avb_core::Result<R> {
    let mut uow = s.store.begin(ctx, Access::ReadWrite).await?;
    let stored = R::repo(uow.as_mut()).update(record).await?;
    uow.commit().await?;
    Ok(stored)
}

/// Commits a delete in a unit of its own.
pub(crate) async fn delete<R: HasRepo>(s: &StoreUnderTest, ctx: &Ctx, id: R::Id) -> avb_core::Result<()> {
    let mut uow = s.store.begin(ctx, Access::ReadWrite).await?;
    R::repo(uow.as_mut()).delete(id).await?;
    uow.commit().await
}

/// Reads one record in a read-only unit (which must not wait for open writers).
pub(crate) async fn get<R: HasRepo>(s: &StoreUnderTest, ctx: &Ctx, id: R::Id) -> avb_core::Result<R> {
    let read = async {
        let mut uow = s.store.begin(ctx, Access::ReadOnly).await?;
        R::repo(uow.as_mut()).get(id).await
    };
    within(10, "a read-only get", read)
        .await
        .map_err(avb_core::Error::Internal)?
}

/// Lists in a read-only unit.
pub(crate) async fn list<R: HasRepo>(
    s: &StoreUnderTest,
    ctx: &Ctx,
    filter: &R::Filter,
    page: PageRequest,
) -> avb_core::Result<Page<R>> {
    let mut uow = s.store.begin(ctx, Access::ReadOnly).await?;
    R::repo(uow.as_mut()).list(filter, page).await
}

/// Counts in a read-only unit.
pub(crate) async fn count<R: HasRepo>(
    s: &StoreUnderTest,
    ctx: &Ctx,
    filter: &R::Filter,
) -> avb_core::Result<u64> {
    let mut uow = s.store.begin(ctx, Access::ReadOnly).await?;
    R::repo(uow.as_mut()).count(filter).await
}

/// A page request the checks know to be valid.
pub(crate) fn page(limit: u32, offset: u64) -> Result<PageRequest, String> {
    PageRequest::new(Some(limit), Some(offset)).step("page request")
}

/// Ids of a list of records, for readable comparisons.
pub(crate) fn ids<R: crate::store::Record>(records: &[R]) -> Vec<R::Id> {
    records.iter().map(crate::store::Record::id).collect()
}
