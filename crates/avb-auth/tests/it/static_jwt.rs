//! The static-key JWT identity: minted dev tokens verify, and the same attack catalogue as Keycloak is rejected.

use avb_auth::adapters::static_jwt::{DevTokenRequest, StaticJwtBuilder};
use avb_auth::identity::IdentityProvider;
use avb_core::{Ctx, ErrorCode, HasCode, ManualClock, Principal, RequestId, Role, SequentialIds, TenantId};
use chrono::{DateTime, Duration};
use std::sync::Arc;

fn ctx() -> Ctx {
    Ctx::new(
        RequestId::generate(&SequentialIds::default()),
        Principal::Anonymous,
    )
}

fn request(ttl: i64) -> DevTokenRequest {
    DevTokenRequest {
        subject: "dev-user".into(),
        email: "Dev@Example.test".into(),
        first_name: "Dev".into(),
        last_name: "User".into(),
        roles: vec![Role::Admin],
        tenant_id: Some(TenantId(uuid::Uuid::from_u128(7))),
        ttl_secs: ttl,
    }
}

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

#[tokio::test]
async fn minted_tokens_verify_and_map_claims() {
    let identity = StaticJwtBuilder::hs256(SECRET).build().unwrap();
    let token = identity.mint(&request(300)).unwrap();
    let verified = identity.verify(&ctx(), &token).await.unwrap();
    assert_eq!(verified.subject, "dev-user");
    assert_eq!(verified.email, "dev@example.test");
    assert_eq!(verified.roles, [Role::Admin].into_iter().collect());
    assert_eq!(verified.tenant_id, Some(TenantId(uuid::Uuid::from_u128(7))));
}

#[tokio::test]
async fn expiry_follows_the_clock_port() {
    let clock = Arc::new(ManualClock::new(
        DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
    ));
    let identity = StaticJwtBuilder::hs256(SECRET)
        .clock(clock.clone())
        .build()
        .unwrap();
    let token = identity.mint(&request(60)).unwrap();
    clock.advance(Duration::seconds(65));
    assert!(
        identity.verify(&ctx(), &token).await.is_ok(),
        "within 10 s leeway"
    );
    clock.advance(Duration::seconds(10));
    assert_eq!(
        identity.verify(&ctx(), &token).await.unwrap_err().code(),
        ErrorCode::TokenExpired
    );
}

#[tokio::test]
async fn other_keys_issuers_and_audiences_are_rejected() {
    let identity = StaticJwtBuilder::hs256(SECRET).build().unwrap();
    let other_key = StaticJwtBuilder::hs256(b"ffffffffffffffffffffffffffffffff".to_vec())
        .build()
        .unwrap();
    let other_iss = StaticJwtBuilder::hs256(SECRET)
        .issuer("someone-else")
        .build()
        .unwrap();
    let other_aud = StaticJwtBuilder::hs256(SECRET)
        .audience("other-api")
        .build()
        .unwrap();
    for minter in [other_key, other_iss, other_aud] {
        let token = minter.mint(&request(300)).unwrap();
        assert_eq!(
            identity.verify(&ctx(), &token).await.unwrap_err().code(),
            ErrorCode::InvalidToken
        );
    }
}

#[tokio::test]
async fn alg_none_and_garbage_are_rejected() {
    use base64::Engine as _;
    let identity = StaticJwtBuilder::hs256(SECRET).build().unwrap();
    let token = identity.mint(&request(300)).unwrap();
    let payload = token.split('.').nth(1).unwrap();
    let header = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
    for bad in [
        format!("{header}.{payload}."),
        "not-a-jwt".to_owned(),
        String::new(),
        "a.b.c".to_owned(),
    ] {
        assert_eq!(
            identity.verify(&ctx(), &bad).await.unwrap_err().code(),
            ErrorCode::InvalidToken,
            "{bad}"
        );
    }
}

#[test]
fn short_secrets_are_refused() {
    assert!(StaticJwtBuilder::hs256(b"short".to_vec()).build().is_err());
}
