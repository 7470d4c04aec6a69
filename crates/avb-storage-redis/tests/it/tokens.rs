//! [`RedisEphemeralTokens`] against the real Redis: TTL, revocation, isolation by hash, and minting on one
//! replica while resolving on another.

use crate::common::{fresh_store, keys_under, raw, store_at, unreachable_store};
use avb_auth::ephemeral::{ClientSecretGrant, ClientSecrets, EphemeralTokenStore, secret_hash};
use avb_core::{
    ApiKeyId, ApiKeyPrincipal, Ctx, ErrorCode, HasCode, Principal, RateLimitTier, RequestId, SystemClock,
    TenantId, UuidV7Ids,
};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

fn key_ctx(tenant: TenantId) -> Ctx {
    let principal = Principal::ApiKey(ApiKeyPrincipal {
        key_id: ApiKeyId(uuid::Uuid::new_v4()),
        tenant_id: tenant,
        project_id: None,
        scopes: BTreeSet::new(),
        tier: RateLimitTier::Standard,
        created_by: None,
    });
    Ctx::new(RequestId::generate(&UuidV7Ids), principal).with_tenant(Some(tenant))
}

fn grant(tenant: TenantId, ctx: &Ctx) -> ClientSecretGrant {
    ClientSecretGrant {
        tenant_id: tenant,
        minted_by: ctx.principal().clone(),
        session_config: serde_json::json!({ "voice": "alloy" }),
        expires_at: chrono::DateTime::UNIX_EPOCH,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_lives_until_its_ttl_then_reads_as_absent() {
    let (store, prefix) = fresh_store().await;
    let tokens = store.ephemeral_tokens();
    let tenant = TenantId(uuid::Uuid::new_v4());
    let ctx = key_ctx(tenant);
    let hash = secret_hash("ek_short");
    tokens
        .put(&ctx, &hash, grant(tenant, &ctx), Duration::from_millis(300))
        .await
        .unwrap();
    assert_eq!(tokens.get(&ctx, &hash).await.unwrap(), Some(grant(tenant, &ctx)));
    let key = format!("{}:ek:{hash}", prefix.0);
    assert_eq!(
        keys_under(&prefix.0).await,
        vec![key.clone()],
        "stored under the hash only"
    );
    let pttl: i64 = redis::cmd("PTTL")
        .arg(&key)
        .query_async(&mut raw().await)
        .await
        .unwrap();
    assert!((1..=300).contains(&pttl), "{pttl}");

    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(tokens.get(&ctx, &hash).await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_removes_only_that_grant() {
    let (store, _prefix) = fresh_store().await;
    let tokens = store.ephemeral_tokens();
    let (a, b) = (TenantId(uuid::Uuid::new_v4()), TenantId(uuid::Uuid::new_v4()));
    let (ctx_a, ctx_b) = (key_ctx(a), key_ctx(b));
    let (hash_a, hash_b) = (secret_hash("ek_a"), secret_hash("ek_b"));
    tokens
        .put(&ctx_a, &hash_a, grant(a, &ctx_a), Duration::from_secs(60))
        .await
        .unwrap();
    tokens
        .put(&ctx_b, &hash_b, grant(b, &ctx_b), Duration::from_secs(60))
        .await
        .unwrap();

    tokens.revoke(&ctx_a, &hash_a).await.unwrap();
    assert_eq!(tokens.get(&ctx_a, &hash_a).await.unwrap(), None);
    assert_eq!(
        tokens.get(&ctx_b, &hash_b).await.unwrap(),
        Some(grant(b, &ctx_b)),
        "the other tenant's grant stays"
    );
    tokens.revoke(&ctx_a, &hash_a).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_minted_on_one_replica_resolves_on_another_and_never_reaches_redis() {
    let (first, prefix) = fresh_store().await;
    let second = store_at(&prefix).await;
    let minting = ClientSecrets::new(Arc::new(first.ephemeral_tokens()), Arc::new(SystemClock));
    let resolving = ClientSecrets::new(Arc::new(second.ephemeral_tokens()), Arc::new(SystemClock));
    let tenant = TenantId(uuid::Uuid::new_v4());
    let ctx = key_ctx(tenant);

    let minted = minting
        .mint(&ctx, serde_json::json!({ "model": "x" }), Some(60))
        .await
        .unwrap();
    let resolved = resolving.resolve(&ctx, &minted.value).await.unwrap();
    assert_eq!(resolved.tenant_id, tenant);

    let mut conn = raw().await;
    for key in keys_under(&prefix.0).await {
        let stored: Vec<u8> = redis::cmd("GET").arg(&key).query_async(&mut conn).await.unwrap();
        let secret_part = minted.value.trim_start_matches("ek_");
        assert!(!key.contains(secret_part), "the key holds only the hash");
        assert!(
            !String::from_utf8_lossy(&stored).contains(secret_part),
            "the value holds no secret"
        );
    }
    assert!(resolving.resolve(&ctx, "ek_forged").await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_redis_is_service_unavailable() {
    let tokens = unreachable_store().await.ephemeral_tokens();
    let tenant = TenantId(uuid::Uuid::new_v4());
    let got = tokens.get(&key_ctx(tenant), &secret_hash("ek_x")).await;
    let err = got.unwrap_err();
    assert_eq!(err.code(), ErrorCode::ServiceUnavailable, "{err:?}");
}
