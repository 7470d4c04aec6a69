//! Authentication building blocks over the in-memory store: API-key validation with its hot cache and batched
//! usage, ephemeral client secrets, and the authenticator that maps verified tokens to users.

use avb_auth::adapters::static_jwt::{DevTokenRequest, StaticJwtBuilder};
use avb_auth::api_keys::{ApiKeyAuthenticator, UsageBatcher};
use avb_auth::authenticator::Authenticator;
use avb_auth::credentials::Credential;
use avb_auth::ephemeral::ClientSecrets;
use avb_core::{
    Clock, Ctx, ErrorCode, HasCode, ManualClock, Principal, RequestId, Role, SequentialIds, TenantId,
    UserPrincipal,
};
use avb_storage_memory::{MemoryEphemeralTokens, MemoryStore};
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
