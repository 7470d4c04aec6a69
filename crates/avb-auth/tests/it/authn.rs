//! Authentication building blocks over the in-memory store: API-key validation with its hot cache and batched
//! usage, ephemeral client secrets, and the authenticator that maps verified tokens to users.

use avb_auth::adapters::local_authz::LocalAuthorizer;
use avb_auth::adapters::static_jwt::{DevTokenRequest, StaticJwtBuilder};
use avb_auth::api_keys::{ApiKeyAuthenticator, UsageBatcher};
use avb_auth::authenticator::Authenticator;
use avb_auth::authorizer::{
    Authorizer, Consistency, ObjectRef, RelationshipFilter, SubjectFilter, SubjectRef,
};
use avb_auth::credentials::Credential;
use avb_auth::ephemeral::ClientSecrets;
use avb_core::{
    Clock, Ctx, ErrorCode, HasCode, ManualClock, Principal, RequestId, Role, SequentialIds, TenantId,
    UserPrincipal,
};
use avb_storage_memory::{MemoryEphemeralTokens, MemoryRelationshipStore, MemoryStore};
use avb_tenancy::TenancyDeps;
use avb_tenancy::api_key::{ApiKeyService, CreateApiKeyRequest};
use avb_tenancy::tenant::{CreateTenantRequest, TenantCreated, TenantService};
use avb_tenancy::user::UserService;
use chrono::{DateTime, Duration};
use std::sync::Arc;

struct World {
    clock: Arc<ManualClock>,
    deps: TenancyDeps,
    created: TenantCreated,
}

impl World {
    async fn new() -> Self {
        let clock = Arc::new(ManualClock::new(
            DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
        ));
        let store = MemoryStore::new().with_clock(clock.clone());
        let deps = TenancyDeps::new(Arc::new(store))
            .with_clock(clock.clone())
            .with_ids(Arc::new(SequentialIds::default()));
        let system = Ctx::system(RequestId::generate(&SequentialIds::default()), "test", None);
        let created = TenantService::new(deps.clone())
            .create(
                &system,
                CreateTenantRequest::new("Acme", "acme", "admin@acme.test", "Ada Admin"),
            )
            .await
            .unwrap();
        Self { clock, deps, created }
    }

    fn tenant(&self) -> TenantId {
        self.created.tenant.id
    }

    fn admin_ctx(&self) -> Ctx {
        Ctx::new(
            RequestId::generate(&SequentialIds::default()),
            Principal::User(UserPrincipal {
                user_id: self.created.admin.id,
                tenant_id: Some(self.tenant()),
                email: self.created.admin.email.clone(),
                roles: self.created.admin.roles.clone(),
                external_id: None,
            }),
        )
        .with_tenant(Some(self.tenant()))
    }

    async fn key(&self, expires_in: Option<Duration>) -> (avb_tenancy::model::ApiKey, String) {
        let request = CreateApiKeyRequest {
            name: "k".into(),
            scopes: vec!["realtime".into()],
            expires_at: expires_in.map(|d| self.clock.now() + d),
            ..Default::default()
        };
        let made = ApiKeyService::new(self.deps.clone())
            .create(&self.admin_ctx(), request)
            .await
            .unwrap();
        (made.record, made.secret.expose().to_owned())
    }

    fn authenticator(&self) -> ApiKeyAuthenticator {
        let service = ApiKeyService::new(self.deps.clone());
        ApiKeyAuthenticator::new(service.clone(), self.clock.clone(), UsageBatcher::new(service))
    }
}

fn anonymous() -> Ctx {
    Ctx::new(
        RequestId::generate(&SequentialIds::default()),
        Principal::Anonymous,
    )
}

#[tokio::test]
async fn a_valid_key_authenticates_as_its_tenant_and_scopes() {
    let world = World::new().await;
    let (record, secret) = world.key(None).await;
    let principal = world
        .authenticator()
        .authenticate(&anonymous(), &secret, None)
        .await
        .unwrap();
    assert_eq!(principal.key_id, record.id);
    assert_eq!(principal.tenant_id, world.tenant());
    assert!(principal.scopes.contains(&avb_core::ApiKeyScope::Realtime));
}

#[tokio::test]
async fn tampered_and_unknown_keys_are_refused_alike() {
    let world = World::new().await;
    let (_, secret) = world.key(None).await;
    let auth = world.authenticator();
    let mut tampered = secret.clone().into_bytes();
    let last = tampered.len() - 1;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    for bad in [tampered.as_str(), "avb_notakey", "avb_", &format!("{secret}x")] {
        let err = auth.authenticate(&anonymous(), bad, None).await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::AuthenticationFailed, "{bad}");
        assert_eq!(err.to_string(), "authentication failed: invalid API key");
    }
}

#[tokio::test]
async fn revocation_is_seen_at_once_after_invalidation_even_when_cached() {
    let world = World::new().await;
    let (record, secret) = world.key(None).await;
    let auth = world.authenticator();
    auth.authenticate(&anonymous(), &secret, None).await.unwrap();
    ApiKeyService::new(world.deps.clone())
        .revoke(&world.admin_ctx(), record.id)
        .await
        .unwrap();
    auth.invalidate(record.id);
    let err = auth.authenticate(&anonymous(), &secret, None).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::AuthenticationFailed);
}

#[tokio::test]
async fn expiry_is_checked_on_every_cache_hit() {
    let world = World::new().await;
    let (_, secret) = world.key(Some(Duration::seconds(60))).await;
    let auth = world.authenticator();
    auth.authenticate(&anonymous(), &secret, None).await.unwrap();
    world.clock.advance(Duration::seconds(61));
    let err = auth.authenticate(&anonymous(), &secret, None).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::AuthenticationFailed);
}

#[tokio::test]
async fn usage_is_batched_and_flushed_without_loss() {
    let world = World::new().await;
    let (record, secret) = world.key(None).await;
    let auth = world.authenticator();
    let ip = "10.1.2.3".parse().unwrap();
    for _ in 0..25 {
        auth.authenticate(&anonymous(), &secret, Some(ip)).await.unwrap();
    }
    assert_eq!(auth.usage().pending(), 25);
    let service = ApiKeyService::new(world.deps.clone());
    let before = service.get(&world.admin_ctx(), record.id).await.unwrap();
    assert_eq!(before.usage_count, 0, "no synchronous write per request");
    auth.usage()
        .flush(RequestId::generate(&SequentialIds::default()))
        .await
        .unwrap();
    assert_eq!(auth.usage().pending(), 0);
    let after = service.get(&world.admin_ctx(), record.id).await.unwrap();
    assert_eq!(after.usage_count, 25);
    assert_eq!(after.last_used_ip, Some(ip));
}

#[tokio::test]
async fn client_secrets_are_bounded_bound_to_the_tenant_and_expire() {
    let world = World::new().await;
    let secrets = ClientSecrets::new(Arc::new(MemoryEphemeralTokens::new()), world.clock.clone());
    let ctx = world.admin_ctx();
    for ttl in [9, 7201] {
        let err = secrets
            .mint(&ctx, serde_json::json!({}), Some(ttl))
            .await
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::ValidationError, "ttl {ttl}");
    }
    let err = secrets
        .mint(&anonymous(), serde_json::json!({}), None)
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::TenantRequired);
    let minted = secrets
        .mint(&ctx, serde_json::json!({"voice": "alloy"}), Some(60))
        .await
        .unwrap();
    assert!(minted.value.starts_with("ek_"));
    assert!(
        !format!("{minted:?}").contains(&minted.value),
        "Debug never shows the secret"
    );
    let grant = secrets.resolve(&anonymous(), &minted.value).await.unwrap();
    assert_eq!(grant.tenant_id, world.tenant());
    assert_eq!(grant.session_config["voice"], "alloy");
    world.clock.advance(Duration::seconds(61));
    let err = secrets.resolve(&anonymous(), &minted.value).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::AuthenticationFailed);
    let err = secrets.resolve(&anonymous(), "ek_unknown").await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::AuthenticationFailed);
}

#[tokio::test]
async fn jwt_users_are_mapped_once_and_deactivated_users_are_refused() {
    let world = World::new().await;
    let identity = StaticJwtBuilder::hs256(b"0123456789abcdef0123456789abcdef".to_vec())
        .clock(world.clock.clone())
        .build()
        .unwrap();
    let service = ApiKeyService::new(world.deps.clone());
    let users = UserService::new(world.deps.clone());
    let authenticator = Authenticator::new(
        Some(Arc::new(identity.clone())),
        users.clone(),
        Arc::new(ApiKeyAuthenticator::new(
            service.clone(),
            world.clock.clone(),
            UsageBatcher::new(service),
        )),
        ClientSecrets::new(Arc::new(MemoryEphemeralTokens::new()), world.clock.clone()),
    );
    let token = identity
        .mint(&DevTokenRequest {
            subject: "kc-ada".into(),
            email: "admin@acme.test".into(),
            first_name: "Ada".into(),
            last_name: "Admin".into(),
            roles: vec![Role::Admin],
            tenant_id: Some(world.tenant()),
            ttl_secs: 300,
        })
        .unwrap();
    let authenticated = authenticator
        .authenticate(&anonymous(), Some(&Credential::Jwt(token.clone())))
        .await
        .unwrap();
    let Principal::User(user) = authenticated.principal else {
        panic!("a user principal")
    };
    assert_eq!(
        user.user_id, world.created.admin.id,
        "linked to the existing user by e-mail"
    );
    assert_eq!(user.tenant_id, Some(world.tenant()));

    // Deactivate the user directly (the tenant needs another admin first: the service keeps one).
    let system = Ctx::system(
        RequestId::generate(&SequentialIds::default()),
        "test",
        Some(world.tenant()),
    );
    let other: avb_tenancy::user::InviteUserRequest =
        serde_json::from_value(serde_json::json!({"email": "second@acme.test", "roles": ["admin"]})).unwrap();
    users.invite(&system, other).await.unwrap();
    users.deactivate(&system, world.created.admin.id).await.unwrap();
    authenticator.invalidate_user("kc-ada");
    let err = authenticator
        .authenticate(&anonymous(), Some(&Credential::Jwt(token)))
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::AuthenticationFailed);
    let err = authenticator
        .authenticate(&anonymous(), Some(&Credential::Jwt("not.a.jwt".into())))
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidToken);
}

/// The tenant relations of `user` in `authz`, sorted.
async fn tenant_relations(authz: &LocalAuthorizer, tenant: TenantId, user: avb_core::UserId) -> Vec<String> {
    let filter = RelationshipFilter::resource(&ObjectRef::from(tenant))
        .with_subject(SubjectFilter::exact(&SubjectRef::user(user)));
    let mut relations: Vec<String> = authz
        .read_relationships(&anonymous(), &filter, &Consistency::FullyConsistent)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.relation)
        .collect();
    relations.sort();
    relations
}

#[tokio::test]
async fn users_created_at_sign_in_get_their_tenant_roles_in_the_graph_once() {
    let world = World::new().await;
    let identity = StaticJwtBuilder::hs256(b"0123456789abcdef0123456789abcdef".to_vec())
        .clock(world.clock.clone())
        .build()
        .unwrap();
    let authz = Arc::new(LocalAuthorizer::new(Arc::new(MemoryRelationshipStore::new())).unwrap());
    let service = ApiKeyService::new(world.deps.clone());
    let authenticator = Authenticator::new(
        Some(Arc::new(identity.clone())),
        UserService::new(world.deps.clone()),
        Arc::new(ApiKeyAuthenticator::new(
            service.clone(),
            world.clock.clone(),
            UsageBatcher::new(service),
        )),
        ClientSecrets::new(Arc::new(MemoryEphemeralTokens::new()), world.clock.clone()),
    )
    .with_authorizer(authz.clone());
    let mint = |subject: &str, email: &str, roles: Vec<Role>, tenant: Option<TenantId>| {
        identity
            .mint(&DevTokenRequest {
                subject: subject.into(),
                email: email.into(),
                first_name: "New".into(),
                last_name: "Comer".into(),
                roles,
                tenant_id: tenant,
                ttl_secs: 300,
            })
            .unwrap()
    };
    let sign_in = |token: String| {
        let authenticator = &authenticator;
        async move {
            match authenticator
                .authenticate(&anonymous(), Some(&Credential::Jwt(token)))
                .await
                .unwrap()
                .principal
            {
                Principal::User(user) => user,
                other => panic!("a user principal, got {other:?}"),
            }
        }
    };

    // A new developer (who is also a platform sysadmin): the tenant role is in the graph when the principal is
    // handed out; sysadmin stays a token role, never a tenant relation.
    let token = mint(
        "kc-dev",
        "dev@acme.test",
        vec![Role::Developer, Role::Sysadmin],
        Some(world.tenant()),
    );
    let dev = sign_in(token.clone()).await;
    assert_eq!(dev.roles, [Role::Sysadmin, Role::Developer].into());
    assert_eq!(
        tenant_relations(&authz, world.tenant(), dev.user_id).await,
        ["developer"]
    );

    // Later sign-ins, cached or not, write nothing: remove the relation and it stays removed.
    let filter = RelationshipFilter::resource(&ObjectRef::from(world.tenant()))
        .with_subject(SubjectFilter::exact(&SubjectRef::user(dev.user_id)));
    authz.delete_relationships(&anonymous(), &filter).await.unwrap();
    assert_eq!(sign_in(token.clone()).await.user_id, dev.user_id);
    authenticator.invalidate_user("kc-dev");
    assert_eq!(sign_in(token).await.user_id, dev.user_id);
    assert!(
        tenant_relations(&authz, world.tenant(), dev.user_id)
            .await
            .is_empty()
    );

    // The existing admin, linked by e-mail at first sign-in, is not written here (the tenant bootstrap is).
    let admin = sign_in(mint(
        "kc-ada",
        "admin@acme.test",
        vec![Role::Admin],
        Some(world.tenant()),
    ))
    .await;
    assert_eq!(admin.user_id, world.created.admin.id);
    assert!(
        tenant_relations(&authz, world.tenant(), admin.user_id)
            .await
            .is_empty()
    );

    // A user without a tenant gets no relationship anywhere.
    let nomad = sign_in(mint("kc-nomad", "nomad@x.test", vec![Role::Developer], None)).await;
    assert_eq!(nomad.tenant_id, None);
    let anywhere = RelationshipFilter::resource_type("tenant")
        .with_subject(SubjectFilter::exact(&SubjectRef::user(nomad.user_id)));
    assert!(
        authz
            .read_relationships(&anonymous(), &anywhere, &Consistency::FullyConsistent)
            .await
            .unwrap()
            .is_empty()
    );
}
