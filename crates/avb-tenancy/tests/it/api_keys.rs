//! API key records (spec §9.2) against the memory store: creation, quota, revocation, rotation with grace,
//! expiry, secret lookup and batched usage. Also holds [`world`], the fixture the other service tests share.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use avb_core::{ApiKeyScope, ErrorCode, HasCode, RateLimitTier};
use avb_tenancy::api_key::{
    ApiKeyService, CreateApiKeyRequest, RotateApiKeyRequest, UsageRecord, hash_key, verify_secret,
};
use avb_tenancy::model::{ApiKey, TenantStatus, TenantTier};
use avb_tenancy::store::ApiKeyFilter;
use chrono::TimeDelta;
use world::World;

/// A memory store with a manual clock and sequential ids, and shortcuts to seed tenants, users and projects
/// directly (so these tests do not depend on the tenant/user services).
pub(crate) mod world {
    use avb_core::audit::{AuditEntry, AuditFilter, AuditReader};
    use avb_core::{
        ApiKeyId, ApiKeyPrincipal, ApiKeyScope, ClientInfo, Clock, Ctx, IdGen, ManualClock, PageRequest,
        Principal, ProjectId, RateLimitTier, RequestId, Role, SequentialIds, TenantId, UserId, UserPrincipal,
    };
    use avb_storage_memory::MemoryStore;
    use avb_tenancy::TenancyDeps;
    use avb_tenancy::model::{Project, Tenant, TenantStatus, TenantTier, User, UserProfile};
    use avb_tenancy::store::Access;
    use chrono::{DateTime, Utc};
    use std::sync::Arc;

    /// 2025-03-15T12:00:00Z: mid-month, so month boundaries are reachable by moving the clock.
    pub(crate) const START: i64 = 1_742_040_000;

    pub(crate) struct World {
        pub store: MemoryStore,
        pub clock: Arc<ManualClock>,
        pub ids: Arc<SequentialIds>,
        pub deps: TenancyDeps,
    }

    impl World {
        pub(crate) fn new() -> Self {
            let clock = Arc::new(ManualClock::new(DateTime::from_timestamp(START, 0).unwrap()));
            let ids = Arc::new(SequentialIds::default());
            let store = MemoryStore::new()
                .with_clock(Arc::clone(&clock) as Arc<dyn Clock>)
                .with_ids(Arc::clone(&ids) as Arc<dyn IdGen>);
            let deps = TenancyDeps::new(Arc::new(store.clone()))
                .with_clock(Arc::clone(&clock) as Arc<dyn Clock>)
                .with_ids(Arc::clone(&ids) as Arc<dyn IdGen>);
            Self {
                store,
                clock,
                ids,
                deps,
            }
        }

        pub(crate) fn now(&self) -> DateTime<Utc> {
            self.clock.now()
        }

        pub(crate) fn advance(&self, by: chrono::TimeDelta) {
            self.clock.advance(by);
        }

        fn request_id(&self) -> RequestId {
            RequestId::generate(self.ids.as_ref())
        }

        /// The platform itself, across tenants.
        pub(crate) fn system(&self) -> Ctx {
            Ctx::system(self.request_id(), "test", None)
        }

        /// An admin user of `tenant`, calling from 203.0.113.7.
        pub(crate) fn user_ctx(&self, tenant: TenantId, user: UserId) -> Ctx {
            let principal = Principal::User(UserPrincipal {
                user_id: user,
                tenant_id: Some(tenant),
                email: format!("{user}@example.com"),
                roles: [Role::Admin].into(),
                external_id: None,
            });
            Ctx::new(self.request_id(), principal)
                .with_tenant(Some(tenant))
                .with_client(ClientInfo {
                    ip: Some("203.0.113.7".parse().unwrap()),
                    user_agent: Some("it-tests/1.0".into()),
                })
        }

        /// A caller authenticated by API key `key` of `tenant`.
        pub(crate) fn key_ctx(&self, tenant: TenantId, key: ApiKeyId, project: Option<ProjectId>) -> Ctx {
            let principal = Principal::ApiKey(ApiKeyPrincipal {
                key_id: key,
                tenant_id: tenant,
                project_id: project,
                scopes: [ApiKeyScope::Realtime].into(),
                tier: RateLimitTier::Standard,
                created_by: None,
            });
            Ctx::new(self.request_id(), principal).with_tenant(Some(tenant))
        }

        pub(crate) async fn tenant(&self, slug: &str, tier: TenantTier) -> TenantId {
            let now = self.now();
            let tenant = Tenant {
                id: TenantId::generate(self.ids.as_ref()),
                name: slug.to_uppercase(),
                slug: slug.into(),
                tier,
                status: TenantStatus::Active,
                billing_id: String::new(),
                keycloak_group_id: String::new(),
                settings: Default::default(),
                limits: tier.limits(),
                created_at: now,
                updated_at: now,
                activated_at: Some(now),
                suspended_at: None,
                deleted_at: None,
                version: 0,
            };
            let mut uow = self
                .deps
                .store
                .begin(&self.system(), Access::ReadWrite)
                .await
                .unwrap();
            let id = uow.tenants().insert(tenant).await.unwrap().id;
            uow.commit().await.unwrap();
            id
        }

        pub(crate) async fn edit_tenant(&self, id: TenantId, change: impl FnOnce(&mut Tenant)) {
            let mut uow = self
                .deps
                .store
                .begin(&self.system(), Access::ReadWrite)
                .await
                .unwrap();
            let mut tenant = uow.tenants().get(id).await.unwrap();
            change(&mut tenant);
            uow.tenants().update(tenant).await.unwrap();
            uow.commit().await.unwrap();
        }

        pub(crate) async fn user(&self, tenant: TenantId, email: &str) -> UserId {
            let now = self.now();
            let user = User {
                id: UserId::generate(self.ids.as_ref()),
                tenant_id: Some(tenant),
                keycloak_id: None,
                email: email.into(),
                first_name: String::new(),
                last_name: String::new(),
                roles: [Role::Admin].into(),
                is_active: true,
                is_staff: false,
                date_joined: now,
                last_login: None,
                preferences: Default::default(),
                profile: UserProfile::default(),
                created_at: now,
                updated_at: now,
                version: 0,
            };
            let mut uow = self
                .deps
                .store
                .begin(&self.system(), Access::ReadWrite)
                .await
                .unwrap();
            let id = uow.users().insert(user).await.unwrap().id;
            uow.commit().await.unwrap();
            id
        }

        pub(crate) async fn project(&self, tenant: TenantId, name: &str) -> ProjectId {
            let now = self.now();
            let project = Project {
                id: ProjectId::generate(self.ids.as_ref()),
                tenant_id: tenant,
                name: name.into(),
                description: String::new(),
                settings: Default::default(),
                created_by: None,
                created_at: now,
                updated_at: now,
                version: 0,
            };
            let mut uow = self
                .deps
                .store
                .begin(&self.system(), Access::ReadWrite)
                .await
                .unwrap();
            let id = uow.projects().insert(project).await.unwrap().id;
            uow.commit().await.unwrap();
            id
        }

        /// Every audit entry of every tenant, newest first.
        pub(crate) async fn audit(&self) -> Vec<AuditEntry> {
            let mut all = Vec::new();
            let mut offset = 0;
            loop {
                let page = PageRequest::new(Some(100), Some(offset)).unwrap();
                let found = self
                    .store
                    .query(&self.system(), &AuditFilter::default(), page)
                    .await
                    .unwrap();
                offset += found.items.len() as u64;
                let done = found.items.is_empty() || offset >= found.total;
                all.extend(found.items);
                if done {
                    return all;
                }
            }
        }

        /// Everything the store holds (first 100 of each table) plus the audit trail, to compare before and
        /// after a refused operation.
        pub(crate) async fn fingerprint(&self) -> String {
            let ctx = self.system();
            let mut uow = self.deps.store.begin(&ctx, Access::ReadOnly).await.unwrap();
            let p = PageRequest::new(Some(100), None).unwrap();
            let tables = [
                format!("{:?}", uow.tenants().list(&Default::default(), p).await.unwrap()),
                format!(
                    "{:?}",
                    uow.tenant_settings().list(&Default::default(), p).await.unwrap()
                ),
                format!("{:?}", uow.users().list(&Default::default(), p).await.unwrap()),
                format!("{:?}", uow.projects().list(&Default::default(), p).await.unwrap()),
                format!("{:?}", uow.api_keys().list(&Default::default(), p).await.unwrap()),
                format!("{:?}", uow.sessions().list(&Default::default(), p).await.unwrap()),
                format!(
                    "{:?}",
                    uow.session_events().list(&Default::default(), p).await.unwrap()
                ),
                format!(
                    "{:?}",
                    uow.voice_configs().list(&Default::default(), p).await.unwrap()
                ),
                format!("{:?}", uow.personas().list(&Default::default(), p).await.unwrap()),
                format!(
                    "{:?}",
                    uow.wake_words().list(&Default::default(), p).await.unwrap()
                ),
                format!("{:?}", uow.themes().list(&Default::default(), p).await.unwrap()),
                format!(
                    "{:?}",
                    uow.notifications().list(&Default::default(), p).await.unwrap()
                ),
            ];
            uow.rollback().await.unwrap();
            format!("{tables:?}\n{:?}", self.audit().await)
        }
    }
}

fn request(name: &str) -> CreateApiKeyRequest {
    CreateApiKeyRequest {
        name: name.into(),
        scopes: vec!["realtime".into()],
        ..Default::default()
    }
}

async fn setup() -> (World, ApiKeyService, avb_core::Ctx, avb_core::TenantId) {
    let world = World::new();
    let tenant = world.tenant("acme", TenantTier::Free).await;
    let user = world.user(tenant, "admin@acme.test").await;
    let ctx = world.user_ctx(tenant, user);
    let service = ApiKeyService::new(world.deps.clone());
    (world, service, ctx, tenant)
}

#[tokio::test]
async fn created_key_is_returned_once_and_only_its_prefix_and_hash_are_stored() {
    let (world, keys, ctx, tenant) = setup().await;
    let project = world.project(tenant, "voice-bot").await;
    let req = CreateApiKeyRequest {
        name: "Production".into(),
        description: "server to server".into(),
        scopes: vec!["realtime".into(), "admin".into()],
        rate_limit_tier: Some("elevated".into()),
        expires_at: Some(world.now() + TimeDelta::days(30)),
        project_id: Some(project),
    };
    let created = keys.create(&ctx, req).await.unwrap();
    let secret = created.secret.expose().to_owned();
    let record = &created.record;
    assert_eq!(record.key_prefix, secret[..12]);
    assert_eq!(record.key_hash, hash_key(&secret));
    assert_eq!(record.scopes, [ApiKeyScope::Realtime, ApiKeyScope::Admin].into());
    assert_eq!(record.rate_limit_tier, RateLimitTier::Elevated);
    assert_eq!(record.project_id, Some(project));
    assert_eq!(record.created_by, ctx.principal().user_id());
    assert_eq!(record.version, 1);
    assert_eq!(&keys.get(&ctx, record.id).await.unwrap(), record);

    let audit = world.audit().await;
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].resource_type, "api_key");
    assert_eq!(audit[0].resource_id, record.id.to_string());
    assert_eq!(audit[0].tenant_id, Some(tenant));
    let written = serde_json::to_string(&audit[0]).unwrap();
    assert!(
        !written.contains(&secret),
        "the secret leaked into the audit trail"
    );
    assert!(
        !written.contains(&record.key_hash),
        "the hash leaked into the audit trail"
    );
    assert!(written.contains(&record.key_prefix));
}

#[tokio::test]
async fn invalid_create_requests_are_refused_and_change_nothing() {
    let (world, keys, ctx, tenant) = setup().await;
    let other = world.tenant("other", TenantTier::Free).await;
    let foreign_project = world.project(other, "theirs").await;
    let cases: Vec<(CreateApiKeyRequest, ErrorCode)> = vec![
        (
            CreateApiKeyRequest {
                name: String::new(),
                ..request("x")
            },
            ErrorCode::ValidationError,
        ),
        (
            CreateApiKeyRequest {
                name: "x".repeat(101),
                ..request("x")
            },
            ErrorCode::ValidationError,
        ),
        (
            CreateApiKeyRequest {
                scopes: vec![],
                ..request("x")
            },
            ErrorCode::ValidationError,
        ),
        (
            CreateApiKeyRequest {
                scopes: vec!["superuser".into()],
                ..request("x")
            },
            ErrorCode::ValidationError,
        ),
        (
            CreateApiKeyRequest {
                rate_limit_tier: Some("max".into()),
                ..request("x")
            },
            ErrorCode::ValidationError,
        ),
        (
            CreateApiKeyRequest {
                expires_at: Some(world.now()),
                ..request("x")
            },
            ErrorCode::ValidationError,
        ),
        (
            CreateApiKeyRequest {
                expires_at: Some(world.now() + TimeDelta::days(6 * 366)),
                ..request("x")
            },
            ErrorCode::ValidationError,
        ),
        (
            CreateApiKeyRequest {
                project_id: Some(foreign_project),
                ..request("x")
            },
            ErrorCode::NotFound,
        ),
    ];
    let before = world.fingerprint().await;
    for (req, code) in cases {
        let err = keys.create(&ctx, req.clone()).await.unwrap_err();
        assert_eq!(err.code(), code, "{req:?}");
        assert_eq!(world.fingerprint().await, before, "{req:?} changed the store");
    }
    assert_eq!(
        keys.list(&ctx, ApiKeyFilter::default(), Default::default())
            .await
            .unwrap()
            .total,
        0
    );
    let _ = tenant;
}

#[tokio::test]
async fn the_key_quota_is_enforced_and_revoked_keys_free_a_slot() {
    let (world, keys, ctx, _) = setup().await;
    let mut made = Vec::new();
    for i in 0..5 {
        made.push(keys.create(&ctx, request(&format!("k{i}"))).await.unwrap().record);
    }
    let before = world.fingerprint().await;
    let err = keys.create(&ctx, request("one too many")).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::TenantLimitExceeded);
    assert_eq!(err.details()["limit"], 5);
    assert_eq!(world.fingerprint().await, before);

    keys.revoke(&ctx, made[0].id).await.unwrap();
    keys.create(&ctx, request("replacement")).await.unwrap();
    let err = keys.create(&ctx, request("again too many")).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::TenantLimitExceeded);
}

#[tokio::test]
async fn a_suspended_tenant_cannot_create_keys() {
    let (world, keys, ctx, tenant) = setup().await;
    world
        .edit_tenant(tenant, |t| t.status = TenantStatus::Suspended)
        .await;
    let before = world.fingerprint().await;
    let err = keys.create(&ctx, request("k")).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::TenantSuspended);
    assert_eq!(world.fingerprint().await, before);
}

#[tokio::test]
async fn revoking_records_who_and_when_and_twice_is_a_conflict() {
    let (world, keys, ctx, _) = setup().await;
    let key = keys.create(&ctx, request("k")).await.unwrap().record;
    world.advance(TimeDelta::minutes(5));
    let revoked = keys.revoke(&ctx, key.id).await.unwrap();
    assert_eq!(revoked.revoked_at, Some(world.now()));
    assert_eq!(revoked.revoked_by, ctx.principal().user_id());
    assert!(!revoked.is_valid(world.now()));

    let before = world.fingerprint().await;
    let err = keys.revoke(&ctx, key.id).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Conflict);
    assert_eq!(world.fingerprint().await, before);
    let audit = world.audit().await;
    assert_eq!(audit.len(), 2);
    assert_eq!(
        audit[0].new_values.as_ref().unwrap()["revoked_at"],
        serde_json::json!(revoked.revoked_at)
    );
}

#[tokio::test]
async fn a_secret_is_found_by_prefix_and_tampered_or_malformed_ones_are_not() {
    let (world, keys, ctx, _) = setup().await;
    let created = keys.create(&ctx, request("k")).await.unwrap();
    let secret = created.secret.expose().to_owned();
    let system = world.system();

    let found = keys.find_by_secret(&system, &secret).await.unwrap().unwrap();
    assert_eq!(found.id, created.record.id);
    assert!(verify_secret(&secret, &found));

    let mut tampered = secret.clone().into_bytes();
    let last = tampered.len() - 1;
    tampered[last] = if tampered[last] == b'x' { b'y' } else { b'x' };
    let tampered = String::from_utf8(tampered).unwrap();
    assert_eq!(keys.find_by_secret(&system, &tampered).await.unwrap(), None);
    assert_eq!(keys.find_by_secret(&system, &secret[..40]).await.unwrap(), None);
    assert_eq!(
        keys.find_by_secret(&system, "Bearer nonsense").await.unwrap(),
        None
    );
    assert_eq!(
        keys.find_by_secret(&system, &secret.replacen("avb_", "avc_", 1))
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn keys_sharing_a_prefix_are_told_apart_by_their_hash() {
    let (world, keys, ctx, tenant) = setup().await;
    let created = keys.create(&ctx, request("original")).await.unwrap();
    let secret = created.secret.expose().to_owned();
    // A second key whose first 12 characters are the same (a prefix collision), stored directly.
    let twin_secret = format!("{}{}", &secret[..12], "Z".repeat(secret.len() - 12));
    assert_ne!(twin_secret, secret);
    let twin = ApiKey {
        id: avb_core::ApiKeyId::generate(world.ids.as_ref()),
        name: "twin".into(),
        key_hash: hash_key(&twin_secret),
        version: 0,
        ..created.record.clone()
    };
    {
        use avb_tenancy::store::Access;
        let mut uow = world
            .deps
            .store
            .begin(&world.system(), Access::ReadWrite)
            .await
            .unwrap();
        uow.api_keys().insert(twin.clone()).await.unwrap();
        uow.commit().await.unwrap();
    }
    let system = world.system();
    let same_prefix = ApiKeyFilter {
        prefix: Some(secret[..12].to_owned()),
        ..Default::default()
    };
    assert_eq!(
        keys.list(&ctx, same_prefix, Default::default())
            .await
            .unwrap()
            .total,
        2
    );
    assert_eq!(
        keys.find_by_secret(&system, &secret).await.unwrap().unwrap().id,
        created.record.id
    );
    assert_eq!(
        keys.find_by_secret(&system, &twin_secret)
            .await
            .unwrap()
            .unwrap()
            .id,
        twin.id
    );
    let neither = format!("{}{}", &secret[..12], "Y".repeat(secret.len() - 12));
    assert_eq!(keys.find_by_secret(&system, &neither).await.unwrap(), None);
    let _ = tenant;
}

#[tokio::test]
async fn rotation_with_grace_keeps_the_old_key_valid_until_the_grace_ends() {
    let (world, keys, ctx, tenant) = setup().await;
    let project = world.project(tenant, "p").await;
    let req = CreateApiKeyRequest {
        scopes: vec!["realtime".into(), "billing".into()],
        rate_limit_tier: Some("unlimited".into()),
        project_id: Some(project),
        ..request("rotating")
    };
    let old = keys.create(&ctx, req).await.unwrap();
    let old_secret = old.secret.expose().to_owned();
    let rotated = keys
        .rotate(
            &ctx,
            old.record.id,
            RotateApiKeyRequest {
                grace_seconds: Some(3600),
            },
        )
        .await
        .unwrap();
    let new = &rotated.new.record;
    assert_ne!(rotated.new.secret.expose(), old_secret);
    assert_ne!(new.id, old.record.id);
    assert_eq!(
        (&new.name, &new.scopes, new.rate_limit_tier, new.project_id),
        (
            &old.record.name,
            &old.record.scopes,
            old.record.rate_limit_tier,
            old.record.project_id
        )
    );
    assert_eq!(rotated.old.revoked_at, Some(world.now() + TimeDelta::hours(1)));

    let system = world.system();
    let lookup = |secret: String| {
        let keys = keys.clone();
        let system = system.clone();
        async move { keys.find_by_secret(&system, &secret).await.unwrap().unwrap() }
    };
    assert!(lookup(old_secret.clone()).await.is_valid(world.now()));
    world.advance(TimeDelta::minutes(59));
    assert!(lookup(old_secret.clone()).await.is_valid(world.now()));
    world.advance(TimeDelta::minutes(2));
    assert!(!lookup(old_secret.clone()).await.is_valid(world.now()));
    assert!(
        lookup(rotated.new.secret.expose().to_owned())
            .await
            .is_valid(world.now())
    );

    let audit = world.audit().await;
    let rotation_entries: Vec<_> = audit.iter().filter(|e| e.description.contains("rotat")).collect();
    assert_eq!(rotation_entries.len(), 2);
}

#[tokio::test]
async fn rotation_is_refused_for_revoked_rotated_or_expired_keys_and_long_grace() {
    let (world, keys, ctx, _) = setup().await;
    let a = keys.create(&ctx, request("a")).await.unwrap().record;
    let before = world.fingerprint().await;
    let err = keys
        .rotate(
            &ctx,
            a.id,
            RotateApiKeyRequest {
                grace_seconds: Some(7 * 86_400 + 1),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::ValidationError);
    assert_eq!(world.fingerprint().await, before);

    keys.rotate(
        &ctx,
        a.id,
        RotateApiKeyRequest {
            grace_seconds: Some(60),
        },
    )
    .await
    .unwrap();
    let before = world.fingerprint().await;
    let err = keys
        .rotate(&ctx, a.id, RotateApiKeyRequest::default())
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        ErrorCode::Conflict,
        "a key whose revocation is scheduled was rotated twice"
    );
    assert_eq!(world.fingerprint().await, before);

    let b = keys.create(&ctx, request("b")).await.unwrap().record;
    keys.revoke(&ctx, b.id).await.unwrap();
    assert_eq!(
        keys.rotate(&ctx, b.id, RotateApiKeyRequest::default())
            .await
            .unwrap_err()
            .code(),
        ErrorCode::Conflict
    );

    let c = CreateApiKeyRequest {
        expires_at: Some(world.now() + TimeDelta::days(1)),
        ..request("c")
    };
    let c = keys.create(&ctx, c).await.unwrap().record;
    world.advance(TimeDelta::days(2));
    assert!(c.is_expired(world.now()));
    assert_eq!(
        keys.rotate(&ctx, c.id, RotateApiKeyRequest::default())
            .await
            .unwrap_err()
            .code(),
        ErrorCode::Conflict
    );
}

#[tokio::test]
async fn rotation_succeeds_at_the_quota_limit_without_raising_the_count() {
    let (world, keys, ctx, _) = setup().await;
    let mut made = Vec::new();
    for i in 0..5 {
        made.push(keys.create(&ctx, request(&format!("k{i}"))).await.unwrap().record);
    }
    let rotated = keys
        .rotate(
            &ctx,
            made[2].id,
            RotateApiKeyRequest {
                grace_seconds: Some(600),
            },
        )
        .await
        .unwrap();
    assert!(
        rotated.old.is_valid(world.now()),
        "the old key works during the grace period"
    );
    let counted = ApiKeyFilter {
        revoked: Some(false),
        ..Default::default()
    };
    assert_eq!(
        keys.list(&ctx, counted, Default::default()).await.unwrap().total,
        5
    );
    let err = keys.create(&ctx, request("extra")).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::TenantLimitExceeded);
}

#[tokio::test]
async fn expired_keys_are_found_but_not_valid() {
    let (world, keys, ctx, _) = setup().await;
    let req = CreateApiKeyRequest {
        expires_at: Some(world.now() + TimeDelta::hours(1)),
        ..request("short")
    };
    let created = keys.create(&ctx, req).await.unwrap();
    let system = world.system();
    let found = keys
        .find_by_secret(&system, created.secret.expose())
        .await
        .unwrap()
        .unwrap();
    assert!(found.is_valid(world.now()));
    world.advance(TimeDelta::hours(2));
    let found = keys
        .find_by_secret(&system, created.secret.expose())
        .await
        .unwrap()
        .unwrap();
    assert!(found.is_expired(world.now()));
    assert!(!found.is_valid(world.now()));
}

#[tokio::test]
async fn usage_batches_are_coalesced_and_never_move_last_use_back() {
    let (world, keys, ctx, _) = setup().await;
    let a = keys.create(&ctx, request("a")).await.unwrap().record;
    let b = keys.create(&ctx, request("b")).await.unwrap().record;
    let t = world.now();
    let ip1 = Some("198.51.100.1".parse().unwrap());
    let ip2 = Some("198.51.100.2".parse().unwrap());
    let unknown = avb_core::ApiKeyId(uuid::Uuid::from_u128(42));
    let audit_before = world.audit().await.len();
    let updated = keys
        .record_usage(
            &world.system(),
            vec![
                UsageRecord {
                    key_id: a.id,
                    at: t + TimeDelta::seconds(10),
                    ip: ip2,
                    count: 3,
                },
                UsageRecord {
                    key_id: a.id,
                    at: t + TimeDelta::seconds(5),
                    ip: ip1,
                    count: 4,
                },
                UsageRecord {
                    key_id: b.id,
                    at: t,
                    ip: ip1,
                    count: 1,
                },
                UsageRecord {
                    key_id: unknown,
                    at: t,
                    ip: ip1,
                    count: 9,
                },
            ],
        )
        .await
        .unwrap();
    assert_eq!(updated, 2);
    let a1 = keys.get(&ctx, a.id).await.unwrap();
    assert_eq!(
        (a1.usage_count, a1.last_used_at, a1.last_used_ip),
        (7, Some(t + TimeDelta::seconds(10)), ip2)
    );
    let b1 = keys.get(&ctx, b.id).await.unwrap();
    assert_eq!(
        (b1.usage_count, b1.last_used_at, b1.last_used_ip),
        (1, Some(t), ip1)
    );

    // A late batch with older observations adds its count but keeps the newer last use.
    keys.record_usage(
        &world.system(),
        vec![UsageRecord {
            key_id: a.id,
            at: t,
            ip: ip1,
            count: 1,
        }],
    )
    .await
    .unwrap();
    let a2 = keys.get(&ctx, a.id).await.unwrap();
    assert_eq!(
        (a2.usage_count, a2.last_used_at, a2.last_used_ip),
        (8, Some(t + TimeDelta::seconds(10)), ip2)
    );
    assert_eq!(keys.record_usage(&world.system(), vec![]).await.unwrap(), 0);
    assert_eq!(
        world.audit().await.len(),
        audit_before,
        "usage is metering and is not audited"
    );
}

#[tokio::test]
async fn keys_of_another_tenant_are_invisible() {
    let (world, keys, ctx, _) = setup().await;
    let key = keys.create(&ctx, request("mine")).await.unwrap().record;
    let other = world.tenant("other", TenantTier::Free).await;
    let intruder = world.user(other, "eve@other.test").await;
    let theirs = world.user_ctx(other, intruder);
    assert_eq!(
        keys.get(&theirs, key.id).await.unwrap_err().code(),
        ErrorCode::NotFound
    );
    assert_eq!(
        keys.list(&theirs, ApiKeyFilter::default(), Default::default())
            .await
            .unwrap()
            .total,
        0
    );
    let before = world.fingerprint().await;
    assert_eq!(
        keys.revoke(&theirs, key.id).await.unwrap_err().code(),
        ErrorCode::NotFound
    );
    assert_eq!(
        keys.rotate(&theirs, key.id, RotateApiKeyRequest::default())
            .await
            .unwrap_err()
            .code(),
        ErrorCode::NotFound
    );
    assert_eq!(world.fingerprint().await, before);
}
