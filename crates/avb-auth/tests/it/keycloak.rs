//! The Keycloak identity adapter against a real OpenID provider serving Keycloak's realm layout and token shape
//! (`peers/keycloak`, started per test): the happy path, key rotation, and the JWT attack catalogue of issue 3 —
//! each attack rejected with its stable code.

use avb_auth::adapters::keycloak::{KeycloakIdentity, KeycloakIdentityBuilder};
use avb_auth::identity::IdentityProvider;
use avb_core::{Ctx, ErrorCode, HasCode, Principal, RequestId, Role, SequentialIds};
use avb_testkit::peers::keycloak::{self, KeycloakPeer, start_keycloak};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

fn ctx() -> Ctx {
    Ctx::new(
        RequestId::generate(&SequentialIds::default()),
        Principal::Anonymous,
    )
}

async fn peer() -> KeycloakPeer {
    start_keycloak()
        .await
        .expect("Keycloak stand-in (run scripts/install-peers.sh)")
}

fn identity(peer: &KeycloakPeer) -> KeycloakIdentityBuilder {
    KeycloakIdentityBuilder::new(&peer.base_url, &peer.realm, keycloak::API_CLIENT_ID)
}

async fn code_of(identity: &KeycloakIdentity, token: &str) -> ErrorCode {
    identity
        .verify(&ctx(), token)
        .await
        .expect_err("token must be rejected")
        .code()
}

async fn mint(peer: &KeycloakPeer, overrides: serde_json::Value) -> String {
    peer.mint_token(overrides).await.expect("mint").token
}

#[tokio::test]
async fn password_grant_token_is_verified_and_mapped() {
    let peer = peer().await;
    let identity = identity(&peer).build().unwrap();
    let token = peer
        .password_token(
            keycloak::API_CLIENT_ID,
            Some(keycloak::API_CLIENT_SECRET),
            keycloak::DEFAULT_USERNAME,
            keycloak::DEFAULT_PASSWORD,
        )
        .await
        .unwrap();
    let verified = identity.verify(&ctx(), &token.access_token).await.unwrap();
    assert_eq!(verified.subject, keycloak::DEFAULT_USER_ID);
    assert_eq!(
        verified.tenant_id.unwrap().to_string(),
        keycloak::DEFAULT_TENANT_ID
    );
    assert_eq!(verified.issuer, peer.issuer());
    assert!(!verified.email.is_empty());
    // Keycloak's own roles (offline_access, uma_authorization, default-roles-…) are dropped, ours are kept.
    assert!(verified.roles.iter().all(|r| Role::ALL.contains(r)));
}

#[tokio::test]
async fn roles_come_from_realm_and_our_client_only() {
    let peer = peer().await;
    let identity = identity(&peer).build().unwrap();
    let token = mint(
        &peer,
        json!({ "claims": {
            "realm_access": { "roles": ["admin", "offline_access"] },
            "resource_access": { "avb-api": { "roles": ["billing"] }, "other-client": { "roles": ["sysadmin"] } }
        }}),
    )
    .await;
    let verified = identity.verify(&ctx(), &token).await.unwrap();
    assert_eq!(verified.roles, [Role::Admin, Role::Billing].into_iter().collect());
}

#[tokio::test]
async fn alg_none_is_rejected() {
    let peer = peer().await;
    let identity = identity(&peer).build().unwrap();
    let keys = peer.keys().await.unwrap();
    let token = mint(&peer, json!({ "alg": "none", "kid": keys.active_kid })).await;
    assert_eq!(code_of(&identity, &token).await, ErrorCode::InvalidToken);
}

#[tokio::test]
async fn hs256_signed_with_the_public_key_is_rejected() {
    let peer = peer().await;
    let identity = identity(&peer).build().unwrap();
    // The classic key-confusion attack: HMAC keyed with the RSA public key PEM, with the real kid.
    let token = mint(&peer, json!({ "alg": "HS256" })).await;
    assert_eq!(code_of(&identity, &token).await, ErrorCode::InvalidToken);
}

#[tokio::test]
async fn expiry_is_enforced_with_leeway() {
    let peer = peer().await;
    let identity = identity(&peer).leeway(Duration::from_secs(10)).build().unwrap();
    let within = mint(&peer, json!({ "exp_in": -5, "iat_in": -60 })).await;
    assert!(
        identity.verify(&ctx(), &within).await.is_ok(),
        "expired 5 s ago is within the 10 s leeway"
    );
    let beyond = mint(&peer, json!({ "exp_in": -60, "iat_in": -120 })).await;
    assert_eq!(code_of(&identity, &beyond).await, ErrorCode::TokenExpired);
}

#[tokio::test]
async fn not_before_in_the_future_is_rejected() {
    let peer = peer().await;
    let identity = identity(&peer).build().unwrap();
    let token = mint(&peer, json!({ "nbf_in": 120 })).await;
    assert_eq!(code_of(&identity, &token).await, ErrorCode::InvalidToken);
}

#[tokio::test]
async fn wrong_issuer_is_rejected() {
    let peer = peer().await;
    let identity = identity(&peer).build().unwrap();
    // `localhost` instead of `127.0.0.1`: issuer comparison is byte-exact.
    let iss = peer.issuer().replace("127.0.0.1", "localhost");
    let token = mint(&peer, json!({ "claims": { "iss": iss } })).await;
    assert_eq!(code_of(&identity, &token).await, ErrorCode::InvalidToken);
}

#[tokio::test]
async fn wrong_or_missing_audience_is_rejected() {
    let peer = peer().await;
    let identity = identity(&peer).build().unwrap();
    let wrong = mint(&peer, json!({ "claims": { "aud": ["account", "someone-else"] } })).await;
    assert_eq!(code_of(&identity, &wrong).await, ErrorCode::InvalidToken);
    let missing = mint(&peer, json!({ "claims": { "aud": null } })).await;
    assert_eq!(code_of(&identity, &missing).await, ErrorCode::InvalidToken);
    let as_string = mint(&peer, json!({ "claims": { "aud": "avb-api" } })).await;
    assert!(
        identity.verify(&ctx(), &as_string).await.is_ok(),
        "aud as a single string is valid"
    );
}

#[tokio::test]
async fn tampered_truncated_and_oversized_tokens_are_rejected() {
    let peer = peer().await;
    let identity = identity(&peer).build().unwrap();
    let token = mint(&peer, json!({})).await;
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let (_, mut payload) = keycloak::decode_unverified(&token).unwrap();
    payload["realm_access"] = json!({ "roles": ["sysadmin"] });
    use base64::Engine as _;
    parts[1] = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(payload.to_string());
    assert_eq!(
        code_of(&identity, &parts.join(".")).await,
        ErrorCode::InvalidToken
    );
    assert_eq!(
        code_of(&identity, &token[..token.len() - 10]).await,
        ErrorCode::InvalidToken
    );
    assert_eq!(
        code_of(&identity, token.split('.').next().unwrap()).await,
        ErrorCode::InvalidToken
    );
    let before = peer.jwks_fetch_count().await.unwrap();
    let huge = format!("{token}{}", "A".repeat(17 * 1024));
    assert_eq!(code_of(&identity, &huge).await, ErrorCode::InvalidToken);
    assert_eq!(
        peer.jwks_fetch_count().await.unwrap(),
        before,
        "oversized tokens are refused before any fetch"
    );
}

#[tokio::test]
async fn foreign_key_and_encryption_key_signatures_are_rejected() {
    let peer = peer().await;
    let identity = identity(&peer).build().unwrap();
    let foreign = mint(&peer, json!({ "sign_with": "foreign" })).await;
    assert_eq!(code_of(&identity, &foreign).await, ErrorCode::InvalidToken);
    let keys = peer.keys().await.unwrap();
    let enc = mint(&peer, json!({ "sign_kid": keys.enc_kid })).await;
    assert_eq!(code_of(&identity, &enc).await, ErrorCode::InvalidToken);
}

#[tokio::test]
async fn unknown_kid_refetches_once_single_flight_then_rejects() {
    let peer = peer().await;
    let identity = Arc::new(
        identity(&peer)
            .min_refresh_interval(Duration::from_secs(60))
            .build()
            .unwrap(),
    );
    // Warm the cache.
    let good = mint(&peer, json!({})).await;
    identity.verify(&ctx(), &good).await.unwrap();
    peer.reset_jwks_fetch_count().await.unwrap();
    let forged = mint(
        &peer,
        json!({ "kid": "forged-kid-not-in-the-jwks-aaaaaaaaaaaaaaaaaaa" }),
    )
    .await;
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let identity = identity.clone();
        let forged = forged.clone();
        tasks.push(tokio::spawn(async move {
            identity.verify(&ctx(), &forged).await.map_err(|e| e.code())
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap_err(), ErrorCode::InvalidToken);
    }
    assert_eq!(
        peer.jwks_fetch_count().await.unwrap(),
        1,
        "20 concurrent unknown kids cause one refetch"
    );
    // Within the minimum interval, more forged kids cause no fetch at all.
    assert_eq!(code_of(&identity, &forged).await, ErrorCode::InvalidToken);
    assert_eq!(peer.jwks_fetch_count().await.unwrap(), 1);
}

#[tokio::test]
async fn rotated_keys_verify_without_restart_and_retired_keys_stop() {
    let peer = peer().await;
    let identity = identity(&peer)
        .min_refresh_interval(Duration::from_millis(0))
        .max_key_age(Duration::from_millis(300))
        .build()
        .unwrap();
    let old = mint(&peer, json!({})).await;
    identity.verify(&ctx(), &old).await.unwrap();
    let keys = peer.rotate_keys().await.unwrap();
    let new = mint(&peer, json!({})).await;
    identity
        .verify(&ctx(), &new)
        .await
        .expect("a token from the rotated key verifies (unknown kid → refetch)");
    identity
        .verify(&ctx(), &old)
        .await
        .expect("the passive key still verifies");
    let retired = keys.passive_kids.first().cloned().unwrap();
    peer.retire_key(Some(&retired)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        code_of(&identity, &old).await,
        ErrorCode::InvalidToken,
        "a retired key stops verifying"
    );
    identity.verify(&ctx(), &new).await.unwrap();
}

#[tokio::test]
async fn unreachable_provider_fails_closed_with_service_unavailable() {
    let identity = KeycloakIdentityBuilder::new("http://127.0.0.1:1", "avb", "avb-api")
        .build()
        .unwrap();
    let peer = peer().await;
    let token = mint(&peer, json!({})).await;
    assert_eq!(code_of(&identity, &token).await, ErrorCode::ServiceUnavailable);
}

#[test]
fn symmetric_algorithms_cannot_be_configured() {
    let builder = KeycloakIdentityBuilder::new("http://127.0.0.1:1", "avb", "avb-api");
    assert!(builder.algorithms(vec![jsonwebtoken::Algorithm::HS256]).is_err());
}
