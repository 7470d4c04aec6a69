//! Users created at their first sign-in from identity-provider claims (not invited): their token's roles hold
//! from the very first request, and the `permissions.sync_user` job alone brings the graph in step when the
//! authorizer was down at that moment.

use crate::support::{Api, World, mint};
use async_trait::async_trait;
use avb_api::jobs::JobRunner;
use avb_api::{App, AppConfig, RateLimits};
use avb_auth::adapters::local_authz::LocalAuthorizer;
use avb_auth::adapters::static_jwt::StaticJwtBuilder;
use avb_auth::authorizer::{
    Authorizer, BulkCheckResult, CheckRequest, CheckResult, Consistency, LookupResourcesRequest,
    LookupSubject, LookupSubjectsRequest, ObjectRef, Relationship, RelationshipFilter, RelationshipUpdate,
    SubjectFilter, SubjectRef, ZedToken,
};
use avb_core::jobs::kinds;
use avb_core::rate_limit::RateLimitPolicy;
use avb_core::{Clock, Ctx, ManualClock, PageRequest, RequestId, Role, SystemClock, TenantId, UserId};
use avb_storage_memory::{
    MemoryEphemeralTokens, MemoryEventBus, MemoryRateLimiter, MemoryRelationshipStore, MemoryStore,
};
use avb_tenancy::store::UserFilter;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

/// The relations `user` holds on `tenant`, sorted.
async fn tenant_relations(app: &App, tenant: TenantId, user: UserId) -> Vec<String> {
    let ctx = Ctx::system(RequestId::generate(app.inner().ids.as_ref()), "test", None);
    let filter = RelationshipFilter::resource(&ObjectRef::from(tenant))
        .with_subject(SubjectFilter::exact(&SubjectRef::user(user)));
    let mut relations: Vec<String> = app
        .inner()
        .authorizer
        .read_relationships(&ctx, &filter, &Consistency::FullyConsistent)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.relation)
        .collect();
    relations.sort();
    relations
}

async fn my_id(w: &Api, token: &str) -> UserId {
    let me = w.get(token, "/api/v2/users/me").await;
    me.expect(200);
    serde_json::from_value(me.body["id"].clone()).unwrap()
}

#[tokio::test]
async fn a_user_created_at_sign_in_acts_with_its_token_roles_on_the_very_first_request() {
    let w = World::new().await;
    let token = mint(
        &w.jwt,
        "kc-newcomer",
        "newcomer@alpha.test",
        vec![Role::Developer],
        Some(w.a.id),
    );
    // The first request ever made with this identity creates the user and must already be authorized.
    let created = w
        .post(&token, "/api/v2/projects", json!({ "name": "first thing I do" }))
        .await;
    created.expect(201);
    let me = w.get(&token, "/api/v2/users/me").await;
    me.expect(200);
    assert_eq!(me.body["roles"], json!(["developer"]));
    let id = my_id(&w, &token).await;
    assert_eq!(tenant_relations(&w.app, w.a.id, id).await, ["developer"]);
    // The new developer sees their project and can keep working with later requests.
    w.get(&token, &format!("/api/v2/projects/{}", created.str("id")))
        .await
        .expect(200);
    w.post(&token, "/api/v2/projects", json!({ "name": "second" }))
        .await
        .expect(201);
    // Roles from the token are exactly what the user gets: no more.
    w.post(
        &token,
        "/api/v2/users",
        json!({ "email": "friend@alpha.test", "roles": ["viewer"] }),
    )
    .await
    .expect_error(403, "permission_denied");
}

#[tokio::test]
async fn a_token_without_roles_makes_a_viewer_and_sysadmin_is_never_a_tenant_relation() {
    let w = World::new().await;
    let viewer = mint(&w.jwt, "kc-plain", "plain@alpha.test", vec![], Some(w.a.id));
    w.get(&viewer, "/api/v2/projects").await.expect(200);
    w.post(&viewer, "/api/v2/projects", json!({ "name": "nope" }))
        .await
        .expect_error(403, "permission_denied");
    let id = my_id(&w, &viewer).await;
    assert_eq!(tenant_relations(&w.app, w.a.id, id).await, ["viewer"]);

    // A platform sysadmin whose token names a tenant: the tenant roles become relations, sysadmin does not.
    let root = mint(
        &w.jwt,
        "kc-root2",
        "root2@alpha.test",
        vec![Role::Sysadmin, Role::Operator],
        Some(w.a.id),
    );
    let id = my_id(&w, &root).await;
    assert_eq!(tenant_relations(&w.app, w.a.id, id).await, ["operator"]);
}

#[tokio::test]
async fn a_user_without_a_tenant_gets_no_relationships() {
    let w = World::new().await;
    let token = mint(
        &w.jwt,
        "kc-nomad",
        "nomad@nowhere.test",
        vec![Role::Developer],
        None,
    );
    // Tenant routes answer `tenant_required`, but the request created the user.
    w.get(&token, "/api/v2/users/me")
        .await
        .expect_error(400, "tenant_required");
    let system = Ctx::system(RequestId::generate(w.app.inner().ids.as_ref()), "test", None);
    let filter = UserFilter {
        keycloak_id: Some("kc-nomad".into()),
        ..Default::default()
    };
    let found = w
        .app
        .inner()
        .users
        .list(&system, filter, PageRequest::default())
        .await
        .unwrap();
    assert_eq!(found.items.len(), 1);
    let id = found.items[0].id;
    assert_eq!(found.items[0].tenant_id, None);
    for tenant in [w.a.id, w.b.id] {
        assert!(tenant_relations(&w.app, tenant, id).await.is_empty());
    }
    // Nothing is owed either: no `permissions.sync_user` job was enqueued.
    assert_eq!(queued_sync_jobs(&w.app).await, 0);
}

/// Takes every queued `permissions.sync_user` job off the queue and counts them.
async fn queued_sync_jobs(app: &App) -> usize {
    let ctx = Ctx::system(RequestId::generate(app.inner().ids.as_ref()), "test", None);
    let mut n = 0;
    while app
        .inner()
        .jobs
        .reserve(&ctx, &[kinds::PERMISSIONS_SYNC_USER], Duration::from_secs(60))
        .await
        .unwrap()
        .is_some()
    {
        n += 1;
    }
    n
}

// ---------------------------------------------------------------------------------------------------------------
// The durable path: the authorizer is down when the user is created.
// ---------------------------------------------------------------------------------------------------------------

/// The local authorizer, whose writes fail while `down` is set; counts write calls.
#[derive(Debug)]
struct Flaky {
    inner: LocalAuthorizer,
    down: AtomicBool,
    writes: AtomicUsize,
}

impl Flaky {
    fn fail_if_down(&self) -> avb_auth::Result<()> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        if self.down.load(Ordering::SeqCst) {
            return Err(avb_auth::Error::Config("authorizer unavailable (test)".into()));
        }
        Ok(())
    }
}

#[async_trait]
impl Authorizer for Flaky {
    async fn check(
        &self,
        ctx: &Ctx,
        request: &CheckRequest,
        c: &Consistency,
    ) -> avb_auth::Result<CheckResult> {
        self.inner.check(ctx, request, c).await
    }
    async fn check_bulk(
        &self,
        ctx: &Ctx,
        requests: &[CheckRequest],
        c: &Consistency,
    ) -> avb_auth::Result<BulkCheckResult> {
        self.inner.check_bulk(ctx, requests, c).await
    }
    async fn write_relationships(
        &self,
        ctx: &Ctx,
        updates: &[RelationshipUpdate],
    ) -> avb_auth::Result<ZedToken> {
        self.fail_if_down()?;
        self.inner.write_relationships(ctx, updates).await
    }
    async fn delete_relationships(
        &self,
        ctx: &Ctx,
        filter: &RelationshipFilter,
    ) -> avb_auth::Result<ZedToken> {
        self.fail_if_down()?;
        self.inner.delete_relationships(ctx, filter).await
    }
    async fn lookup_resources(
        &self,
        ctx: &Ctx,
        request: &LookupResourcesRequest,
        c: &Consistency,
    ) -> avb_auth::Result<Vec<String>> {
        self.inner.lookup_resources(ctx, request, c).await
    }
    async fn lookup_subjects(
        &self,
        ctx: &Ctx,
        request: &LookupSubjectsRequest,
        c: &Consistency,
    ) -> avb_auth::Result<Vec<LookupSubject>> {
        self.inner.lookup_subjects(ctx, request, c).await
    }
    async fn read_relationships(
        &self,
        ctx: &Ctx,
        filter: &RelationshipFilter,
        c: &Consistency,
    ) -> avb_auth::Result<Vec<Relationship>> {
        self.inner.read_relationships(ctx, filter, c).await
    }
    async fn write_schema(&self, ctx: &Ctx, schema: &str) -> avb_auth::Result<ZedToken> {
        self.inner.write_schema(ctx, schema).await
    }
    async fn read_schema(&self, ctx: &Ctx) -> avb_auth::Result<String> {
        self.inner.read_schema(ctx).await
    }
}

#[tokio::test]
async fn the_sync_job_alone_grants_the_roles_once_the_authorizer_is_back() {
    let clock = Arc::new(ManualClock::new(SystemClock.now()));
    let store = MemoryStore::new().with_clock(clock.clone());
    let jwt = StaticJwtBuilder::hs256("integration-test-secret-of-at-least-32-bytes")
        .build()
        .unwrap();
    let authz = Arc::new(Flaky {
        inner: LocalAuthorizer::new(Arc::new(MemoryRelationshipStore::new())).unwrap(),
        down: AtomicBool::new(false),
        writes: AtomicUsize::new(0),
    });
    let lots = RateLimitPolicy {
        per_minute: 100_000,
        per_hour: 1_000_000,
    };
    let mut config = AppConfig::default();
    config.rate_limits = RateLimits {
        anonymous: lots,
        standard: lots,
        elevated: lots,
    };
    let app = App::builder()
        .storage(store.clone())
        .identity(Arc::new(jwt.clone()))
        .authorizer(authz.clone())
        .rate_limiter(Arc::new(MemoryRateLimiter::new()))
        .event_bus(Arc::new(MemoryEventBus::new()))
        .ephemeral_tokens(Arc::new(MemoryEphemeralTokens::new()))
        .clock(clock.clone())
        .config(config)
        .build()
        .unwrap();
    let w = Api::over(app.clone(), store.clone(), jwt.clone());
    let sysadmin = mint(&jwt, "root", "root@platform.test", vec![Role::Sysadmin], None);
    let org = w.org(&sysadmin, "alpha").await;
    let runner = JobRunner::new(app.clone());
    runner.run_until_idle().await;

    // The authorizer goes down; a new developer's first request creates them but cannot be granted anything.
    authz.down.store(true, Ordering::SeqCst);
    let token = mint(
        &jwt,
        "kc-late",
        "late@alpha.test",
        vec![Role::Developer],
        Some(org.id),
    );
    let writes_before = authz.writes.load(Ordering::SeqCst);
    w.post(&token, "/api/v2/projects", json!({ "name": "too early" }))
        .await
        .expect_error(403, "permission_denied");
    assert_eq!(
        authz.writes.load(Ordering::SeqCst),
        writes_before + 1,
        "the authenticator tried to write the new user's relationships once"
    );
    // Still down: the job (the only runnable one of the runner's kinds) fails and is kept for a retry.
    assert_eq!(runner.run_until_idle().await, 1);
    w.post(&token, "/api/v2/projects", json!({ "name": "still too early" }))
        .await
        .expect_error(403, "permission_denied");
    authz.down.store(false, Ordering::SeqCst);
    assert_eq!(
        runner.run_until_idle().await,
        0,
        "the retry waits for its back-off"
    );

    // Back up: the retry (after its back-off) writes the roles, once; later requests of the cached user write
    // nothing.
    clock.advance(chrono::Duration::seconds(5));
    assert_eq!(runner.run_until_idle().await, 1);
    assert_eq!(runner.run_until_idle().await, 0, "the job is done");
    let id = my_id(&w, &token).await;
    assert_eq!(tenant_relations(&app, org.id, id).await, ["developer"]);
    let writes_before = authz.writes.load(Ordering::SeqCst);
    w.get(&token, "/api/v2/users/me").await.expect(200);
    w.get(&token, "/api/v2/projects").await.expect(200);
    assert_eq!(
        authz.writes.load(Ordering::SeqCst),
        writes_before,
        "reads write nothing"
    );
    w.post(&token, "/api/v2/projects", json!({ "name": "now" }))
        .await
        .expect(201);
}

#[tokio::test]
async fn a_late_sync_job_grants_the_current_roles_and_nothing_to_a_deactivated_user() {
    let w = World::new().await;
    let runner = JobRunner::new(w.app.clone());
    runner.run_until_idle().await;
    let token = mint(
        &w.jwt,
        "kc-demoted",
        "demoted@alpha.test",
        vec![Role::Developer],
        Some(w.a.id),
    );
    let id = my_id(&w, &token).await;
    // An admin demotes the user before the job ran: the job must not grant `developer` back.
    w.put(
        &w.a.admin.token,
        &format!("/api/v2/users/{id}/roles"),
        json!({ "roles": ["viewer"] }),
    )
    .await
    .expect(200);
    assert_eq!(tenant_relations(&w.app, w.a.id, id).await, ["viewer"]);
    assert!(runner.run_until_idle().await >= 1);
    assert_eq!(tenant_relations(&w.app, w.a.id, id).await, ["viewer"]);

    // Created, then deactivated before the job ran: nothing is granted.
    let token = mint(
        &w.jwt,
        "kc-gone",
        "gone@alpha.test",
        vec![Role::Admin],
        Some(w.a.id),
    );
    let id = my_id(&w, &token).await;
    w.post(
        &w.a.admin.token,
        &format!("/api/v2/users/{id}/deactivate"),
        json!({}),
    )
    .await
    .expect(200);
    assert!(tenant_relations(&w.app, w.a.id, id).await.is_empty());
    assert!(runner.run_until_idle().await >= 1);
    assert!(tenant_relations(&w.app, w.a.id, id).await.is_empty());
    assert_eq!(runner.run_until_idle().await, 0, "both jobs are done");
}
