//! The Keycloak stand-in (npm `oidc-provider` in Keycloak 24's realm layout): discovery and byte-exact issuer,
//! JWKS with `sig` and `enc` keys, Keycloak-shaped tokens from the `password` and `client_credentials` grants
//! (signatures verified with `jsonwebtoken` against the published JWKS), key rotation with passive keys and
//! retirement, minted tokens with overrides (the attack catalogue's raw material), the JWKS fetch counter, and
//! startup time.

// Test helpers outside `#[test]` functions may unwrap and index too (the workspace rule exempts tests).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use avb_testkit::peers::keycloak::{
    API_CLIENT_ID, API_CLIENT_SECRET, DEFAULT_PASSWORD, DEFAULT_TENANT_ID, DEFAULT_USER_ID, DEFAULT_USERNAME,
    KeycloakError, KeycloakPeer, PUBLIC_CLIENT_ID, TestUser, decode_unverified, start_keycloak,
};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

async fn peer() -> KeycloakPeer {
    let peer = start_keycloak()
        .await
        .expect("start the keycloak peer (scripts/install-peers.sh keycloak)");
    eprintln!("keycloak peer {} ready in {:?}", peer.base_url, peer.started_in);
    peer
}

async fn jwks(peer: &KeycloakPeer) -> Vec<Value> {
    let set = peer.get_json(&peer.jwks_url()).await.unwrap();
    set["keys"].as_array().expect("JWKS has a keys array").clone()
}

fn kids(keys: &[Value]) -> BTreeSet<String> {
    keys.iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

fn rsa_key(keys: &[Value], kid: &str) -> DecodingKey {
    let jwk = keys
        .iter()
        .find(|k| k["kid"] == kid)
        .unwrap_or_else(|| panic!("kid {kid} not in the JWKS"));
    DecodingKey::from_rsa_components(jwk["n"].as_str().unwrap(), jwk["e"].as_str().unwrap()).unwrap()
}

fn validation(peer: &KeycloakPeer, alg: Algorithm, audience: &str) -> Validation {
    let mut v = Validation::new(alg);
    v.set_issuer(&[peer.issuer()]);
    v.set_audience(&[audience]);
    v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    v.leeway = 0;
    v
}

/// Verifies an RS256 token with the published key its header names.
async fn verify(peer: &KeycloakPeer, token: &str) -> Result<Value, jsonwebtoken::errors::Error> {
    let (header, _) = decode_unverified(token).unwrap();
    let key = rsa_key(&jwks(peer).await, header["kid"].as_str().unwrap());
    jsonwebtoken::decode::<Value>(token, &key, &validation(peer, Algorithm::RS256, "avb-api"))
        .map(|d| d.claims)
}

fn is_keycloak_kid(kid: &str) -> bool {
    kid.len() == 43
        && kid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn strings(value: &Value) -> BTreeSet<&str> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect()
}

fn claim_names(payload: &Value) -> BTreeSet<&str> {
    payload.as_object().unwrap().keys().map(String::as_str).collect()
}

#[tokio::test]
async fn discovery_realm_info_and_byte_exact_issuer() {
    let peer = peer().await;
    assert!(
        peer.started_in < Duration::from_secs(10),
        "startup took {:?}",
        peer.started_in
    );
    let issuer = format!("http://127.0.0.1:{}/realms/avb", peer.port);
    assert_eq!(peer.issuer(), issuer);

    let doc = peer.get_json(&peer.discovery_url()).await.unwrap();
    assert_eq!(doc["issuer"], issuer.as_str(), "issuer must match byte for byte");
    assert_eq!(doc["jwks_uri"], format!("{issuer}/protocol/openid-connect/certs"));
    assert_eq!(
        doc["token_endpoint"],
        format!("{issuer}/protocol/openid-connect/token")
    );
    assert_eq!(
        doc["authorization_endpoint"],
        format!("{issuer}/protocol/openid-connect/auth")
    );
    assert_eq!(
        doc["userinfo_endpoint"],
        format!("{issuer}/protocol/openid-connect/userinfo")
    );
    assert_eq!(
        doc["end_session_endpoint"],
        format!("{issuer}/protocol/openid-connect/logout")
    );
    let grants = strings(&doc["grant_types_supported"]);
    assert!(
        grants.contains("password") && grants.contains("client_credentials"),
        "{grants:?}"
    );

    let info = peer.get_json(&peer.realm_url()).await.unwrap();
    assert_eq!(info["realm"], "avb");
    assert_eq!(info["token-service"], format!("{issuer}/protocol/openid-connect"));
    let keys = peer.keys().await.unwrap();
    assert_eq!(info["public_key"], keys.public_key.as_str());
    // base64 SPKI DER of an RSA 2048 key: a SEQUENCE of 294 bytes.
    assert!(
        keys.public_key.starts_with("MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8A"),
        "{}",
        keys.public_key
    );

    let missing = peer
        .get_json(&format!(
            "{}/realms/nope/.well-known/openid-configuration",
            peer.base_url
        ))
        .await;
    assert!(
        matches!(missing, Err(KeycloakError::Status { status: 404, .. })),
        "{missing:?}"
    );
}

#[tokio::test]
async fn jwks_has_an_rs256_sig_key_and_an_rsa_oaep_enc_key() {
    let peer = peer().await;
    let keys = jwks(&peer).await;
    let expected = peer.keys().await.unwrap();
    assert_eq!(keys.len(), 2, "{keys:?}");
    let sig: Vec<_> = keys.iter().filter(|k| k["use"] == "sig").collect();
    let enc: Vec<_> = keys.iter().filter(|k| k["use"] == "enc").collect();
    assert_eq!((sig.len(), enc.len()), (1, 1), "{keys:?}");
    assert_eq!(sig[0]["kty"], "RSA");
    assert_eq!(sig[0]["alg"], "RS256");
    assert_eq!(sig[0]["kid"], expected.active_kid.as_str());
    assert_eq!(enc[0]["kty"], "RSA");
    assert_eq!(enc[0]["alg"], "RSA-OAEP");
    assert_eq!(enc[0]["kid"], expected.enc_kid.as_str());
    assert_ne!(expected.active_kid, expected.enc_kid);
    for key in &keys {
        assert!(
            is_keycloak_kid(key["kid"].as_str().unwrap()),
            "kid {}",
            key["kid"]
        );
        assert!(
            key.get("d").is_none() && key.get("p").is_none(),
            "private parts published: {key}"
        );
    }
    // The enc key is listed first, as Keycloak often does: an adapter that takes the first key is wrong.
    assert_eq!(keys[0]["use"], "enc");
}

#[tokio::test]
async fn password_grant_token_has_keycloak_24_claims() {
    let peer = peer().await;
    let mut user = TestUser::new("Bob", "bob-password");
    user.email = Some("bob@example.com".into());
    user.first_name = Some("Bob".into());
    user.last_name = Some("Builder".into());
    user.realm_roles = vec!["sysadmin".into()];
    user.client_roles
        .insert(API_CLIENT_ID.into(), vec!["tenant-admin".into()]);
    user.tenant_id = Some("7d2c6a0e-4b1f-4c8e-9f0a-1b2c3d4e5f60".into());
    let stored = peer.create_user(&user).await.unwrap();
    let id = stored["id"].as_str().unwrap().to_owned();
    assert_eq!(stored["username"], "bob", "Keycloak lower-cases usernames");
    assert!(stored.get("password").is_none());

    let started = Instant::now();
    let response = peer
        .password_token(API_CLIENT_ID, Some(API_CLIENT_SECRET), "bob", "bob-password")
        .await
        .unwrap();
    eprintln!("password grant answered in {:?}", started.elapsed());
    assert_eq!(response.token_type, "Bearer");
    assert_eq!(response.expires_in, 300);
    assert_eq!(response.raw["not-before-policy"], 0);

    let (header, payload) = decode_unverified(&response.access_token).unwrap();
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["typ"], "JWT");
    assert_eq!(header["kid"], peer.keys().await.unwrap().active_kid.as_str());
    assert!(is_keycloak_kid(header["kid"].as_str().unwrap()));

    let verified = verify(&peer, &response.access_token)
        .await
        .expect("signature verifies with the JWKS key");
    assert_eq!(verified, payload);

    let expected_claims: BTreeSet<&str> = [
        "exp",
        "iat",
        "jti",
        "iss",
        "aud",
        "sub",
        "typ",
        "azp",
        "session_state",
        "acr",
        "allowed-origins",
        "realm_access",
        "resource_access",
        "scope",
        "sid",
        "email_verified",
        "name",
        "preferred_username",
        "given_name",
        "family_name",
        "email",
        "tenant_id",
    ]
    .into();
    assert_eq!(claim_names(&payload), expected_claims);
    assert_eq!(payload["iss"], peer.issuer().as_str());
    assert_eq!(payload["aud"], json!(["avb-api", "account"]));
    assert_eq!(
        payload["exp"].as_i64().unwrap() - payload["iat"].as_i64().unwrap(),
        300
    );
    assert_eq!(payload["sub"], id.as_str());
    assert_eq!(payload["typ"], "Bearer");
    assert_eq!(payload["azp"], API_CLIENT_ID);
    assert_eq!(payload["acr"], "1");
    let session = response
        .session_state
        .as_deref()
        .expect("session_state in the response");
    assert_eq!(payload["session_state"], session);
    assert_eq!(payload["sid"], session);
    assert_eq!(
        strings(&payload["realm_access"]["roles"]),
        [
            "default-roles-avb",
            "offline_access",
            "uma_authorization",
            "sysadmin"
        ]
        .into()
    );
    assert_eq!(
        payload["resource_access"][API_CLIENT_ID]["roles"],
        json!(["tenant-admin"])
    );
    assert!(payload["resource_access"]["account"]["roles"].is_array());
    assert!(payload["allowed-origins"].is_array());
    assert_eq!(payload["scope"], "openid email profile");
    assert_eq!(payload["email_verified"], true);
    assert_eq!(payload["name"], "Bob Builder");
    assert_eq!(payload["preferred_username"], "bob");
    assert_eq!(payload["given_name"], "Bob");
    assert_eq!(payload["family_name"], "Builder");
    assert_eq!(payload["email"], "bob@example.com");
    assert_eq!(payload["tenant_id"], "7d2c6a0e-4b1f-4c8e-9f0a-1b2c3d4e5f60");
    assert_eq!(payload["jti"].as_str().unwrap().len(), 36, "a UUID");

    // Each login is a new session.
    let again = peer
        .password_token(PUBLIC_CLIENT_ID, None, "BOB", "bob-password")
        .await
        .unwrap();
    let (_, second) = decode_unverified(&again.access_token).unwrap();
    assert_ne!(second["sid"], payload["sid"]);
    assert_eq!(second["azp"], PUBLIC_CLIENT_ID);

    // The default user.
    let alice = peer
        .password_token(PUBLIC_CLIENT_ID, None, DEFAULT_USERNAME, DEFAULT_PASSWORD)
        .await
        .unwrap();
    let (_, alice) = decode_unverified(&alice.access_token).unwrap();
    assert_eq!(alice["sub"], DEFAULT_USER_ID);
    assert_eq!(alice["tenant_id"], DEFAULT_TENANT_ID);

    // Bad credentials, as Keycloak answers them.
    for (username, password) in [("bob", "wrong"), ("nobody", "bob-password")] {
        match peer
            .password_token(PUBLIC_CLIENT_ID, None, username, password)
            .await
        {
            Err(KeycloakError::Status { status: 401, body }) => {
                assert_eq!(body["error"], "invalid_grant");
                assert_eq!(body["error_description"], "Invalid user credentials");
            }
            other => panic!("expected 401 invalid_grant, got {other:?}"),
        }
    }
    // A disabled user cannot log in.
    peer.create_user(&TestUser {
        enabled: Some(false),
        ..TestUser::new("bob", "bob-password")
    })
    .await
    .unwrap();
    let disabled = peer
        .password_token(PUBLIC_CLIENT_ID, None, "bob", "bob-password")
        .await;
    assert!(
        matches!(disabled, Err(KeycloakError::Status { status: 401, .. })),
        "{disabled:?}"
    );
}

#[tokio::test]
async fn client_credentials_token_is_a_service_account_token() {
    let peer = peer().await;
    let response = peer
        .client_credentials_token(API_CLIENT_ID, API_CLIENT_SECRET)
        .await
        .unwrap();
    assert!(response.session_state.is_none());
    let payload = verify(&peer, &response.access_token)
        .await
        .expect("signature verifies");
    assert_eq!(payload["preferred_username"], "service-account-avb-api");
    assert_eq!(payload["client_id"], API_CLIENT_ID);
    assert_eq!(payload["azp"], API_CLIENT_ID);
    assert_eq!(payload["typ"], "Bearer");
    assert_eq!(payload["iss"], peer.issuer().as_str());
    assert!(
        payload.get("sid").is_none() && payload.get("session_state").is_none(),
        "{payload}"
    );
    assert!(strings(&payload["realm_access"]["roles"]).contains("default-roles-avb"));
    assert_eq!(
        payload["exp"].as_i64().unwrap() - payload["iat"].as_i64().unwrap(),
        300
    );
    let (header, _) = decode_unverified(&response.access_token).unwrap();
    assert_eq!(header["typ"], "JWT");

    let wrong = peer
        .client_credentials_token(API_CLIENT_ID, "not-the-secret")
        .await;
    assert!(
        matches!(wrong, Err(KeycloakError::Status { status: 401, .. })),
        "{wrong:?}"
    );
    let public = peer.client_credentials_token(PUBLIC_CLIENT_ID, "").await;
    assert!(
        matches!(
            public,
            Err(KeycloakError::Status {
                status: 400 | 401,
                ..
            })
        ),
        "{public:?}"
    );
}

#[tokio::test]
async fn rotation_publishes_the_new_key_and_keeps_the_old_one_until_retired() {
    let peer = peer().await;
    let before = peer.keys().await.unwrap();
    let old_token = peer
        .password_token(PUBLIC_CLIENT_ID, None, DEFAULT_USERNAME, DEFAULT_PASSWORD)
        .await
        .unwrap();

    let started = Instant::now();
    let rotated = peer.rotate_keys().await.unwrap();
    eprintln!("key rotation took {:?}", started.elapsed());
    assert_ne!(rotated.active_kid, before.active_kid);
    assert!(is_keycloak_kid(&rotated.active_kid));
    assert_eq!(rotated.passive_kids, vec![before.active_kid.clone()]);
    assert_eq!(rotated.enc_kid, before.enc_kid);
    assert_ne!(rotated.public_key, before.public_key);

    let published = kids(&jwks(&peer).await);
    assert_eq!(
        published,
        [
            rotated.active_kid.clone(),
            before.active_kid.clone(),
            before.enc_kid.clone()
        ]
        .into()
    );
    let info = peer.get_json(&peer.realm_url()).await.unwrap();
    assert_eq!(info["public_key"], rotated.public_key.as_str());

    // New tokens use the new key; the old token still verifies against the passive key.
    let new_token = peer
        .password_token(PUBLIC_CLIENT_ID, None, DEFAULT_USERNAME, DEFAULT_PASSWORD)
        .await
        .unwrap();
    let (header, _) = decode_unverified(&new_token.access_token).unwrap();
    assert_eq!(header["kid"], rotated.active_kid.as_str());
    verify(&peer, &new_token.access_token)
        .await
        .expect("new token verifies");
    verify(&peer, &old_token.access_token)
        .await
        .expect("old token verifies with the passive key");
    let service = peer
        .client_credentials_token(API_CLIENT_ID, API_CLIENT_SECRET)
        .await
        .unwrap();
    let (header, _) = decode_unverified(&service.access_token).unwrap();
    assert_eq!(header["kid"], rotated.active_kid.as_str());

    // The active key cannot be retired.
    let refused = peer.retire_key(Some(&rotated.active_kid)).await;
    assert!(
        matches!(refused, Err(KeycloakError::Status { status: 409, .. })),
        "{refused:?}"
    );

    let retired = peer.retire_key(Some(&before.active_kid)).await.unwrap();
    assert!(retired.passive_kids.is_empty());
    assert_eq!(retired.retired_kids, vec![before.active_kid.clone()]);
    let published = kids(&jwks(&peer).await);
    assert_eq!(
        published,
        [rotated.active_kid.clone(), before.enc_kid.clone()].into()
    );

    // Two rotations keep two passive keys, newest first; retiring without a kid drops them all.
    let second = peer.rotate_keys().await.unwrap();
    let third = peer.rotate_keys().await.unwrap();
    assert_eq!(
        third.passive_kids,
        vec![second.active_kid.clone(), rotated.active_kid.clone()]
    );
    assert_eq!(jwks(&peer).await.len(), 4);
    let all = peer.retire_key(None).await.unwrap();
    assert!(all.passive_kids.is_empty());
    assert_eq!(
        kids(&jwks(&peer).await),
        [third.active_kid, before.enc_kid].into()
    );
}

#[tokio::test]
async fn minted_tokens_carry_the_overrides_asked_for() {
    let peer = peer().await;
    let keys = peer.keys().await.unwrap();
    let published = jwks(&peer).await;

    // No overrides: a genuine token, claim for claim the shape of a password-grant token.
    let plain = peer.mint_token(json!({})).await.unwrap();
    assert_eq!(plain.signed_with.as_deref(), Some(keys.active_kid.as_str()));
    let verified = verify(&peer, &plain.token)
        .await
        .expect("a plain minted token verifies");
    assert_eq!(verified, plain.payload);
    let real = peer
        .password_token(PUBLIC_CLIENT_ID, None, DEFAULT_USERNAME, DEFAULT_PASSWORD)
        .await
        .unwrap();
    let (_, real) = decode_unverified(&real.access_token).unwrap();
    assert_eq!(claim_names(&plain.payload), claim_names(&real));

    // Times relative to the peer's clock.
    let times = peer
        .mint_token(json!({ "exp_in": -3600, "nbf_in": 600, "iat_in": -7200 }))
        .await
        .unwrap();
    let (_, payload) = decode_unverified(&times.token).unwrap();
    assert_eq!(payload, times.payload);
    let exp = payload["exp"].as_i64().unwrap();
    assert_eq!(payload["nbf"].as_i64().unwrap() - exp, 4200);
    assert_eq!(payload["iat"].as_i64().unwrap() - exp, -3600);
    let expired = verify(&peer, &times.token).await.unwrap_err();
    assert_eq!(*expired.kind(), jsonwebtoken::errors::ErrorKind::ExpiredSignature);

    // Claims replaced and removed; header kid replaced.
    let odd = peer
        .mint_token(json!({
            "username": DEFAULT_USERNAME,
            "claims": { "iss": "http://localhost/realms/avb", "aud": "someone-else", "email": null, "extra": [1, 2] },
            "kid": "unknown-kid",
        }))
        .await
        .unwrap();
    let (header, payload) = decode_unverified(&odd.token).unwrap();
    assert_eq!(
        header,
        json!({ "alg": "RS256", "typ": "JWT", "kid": "unknown-kid" })
    );
    assert_eq!(payload["iss"], "http://localhost/realms/avb");
    assert_eq!(payload["aud"], "someone-else");
    assert_eq!(payload["extra"], json!([1, 2]));
    assert!(payload.get("email").is_none());
    // Still signed by the active key: only the kid lies.
    let mut lenient = validation(&peer, Algorithm::RS256, "someone-else");
    lenient.set_issuer(&["http://localhost/realms/avb"]);
    jsonwebtoken::decode::<Value>(&odd.token, &rsa_key(&published, &keys.active_kid), &lenient)
        .expect("signed by the active key");

    // alg none: no kid, empty signature.
    let none = peer.mint_token(json!({ "alg": "none" })).await.unwrap();
    assert!(none.token.ends_with('.'), "{}", none.token);
    assert_eq!(none.header, json!({ "alg": "none", "typ": "JWT" }));
    assert!(none.signed_with.is_none());

    // HS256 keyed with the RSA public key's PEM (the confusion attack) verifies with exactly that secret.
    let hs = peer.mint_token(json!({ "alg": "HS256" })).await.unwrap();
    assert_eq!(hs.header["alg"], "HS256");
    let pem = spki_pem(&keys.public_key);
    jsonwebtoken::decode::<Value>(
        &hs.token,
        &DecodingKey::from_secret(pem.as_bytes()),
        &validation(&peer, Algorithm::HS256, "avb-api"),
    )
    .expect("HS256 over the public key PEM");

    // Signed by the enc key (its kid in the header): a real signature by a key that is not for signing.
    let by_enc = peer
        .mint_token(json!({ "sign_kid": keys.enc_kid }))
        .await
        .unwrap();
    assert_eq!(by_enc.header["kid"], keys.enc_kid.as_str());
    jsonwebtoken::decode::<Value>(
        &by_enc.token,
        &rsa_key(&published, &keys.enc_kid),
        &validation(&peer, Algorithm::RS256, "avb-api"),
    )
    .expect("signed by the enc key");

    // A foreign key under the active kid does not verify.
    let forged = peer.mint_token(json!({ "sign_with": "foreign" })).await.unwrap();
    assert_eq!(forged.header["kid"], keys.active_kid.as_str());
    assert_ne!(forged.signed_with.as_deref(), Some(keys.active_kid.as_str()));
    let err = verify(&peer, &forged.token).await.unwrap_err();
    assert_eq!(*err.kind(), jsonwebtoken::errors::ErrorKind::InvalidSignature);

    // A retired key can still sign (the "key retired from JWKS" case).
    let rotated = peer.rotate_keys().await.unwrap();
    peer.retire_key(None).await.unwrap();
    let stale = peer
        .mint_token(json!({ "sign_kid": keys.active_kid }))
        .await
        .unwrap();
    assert_eq!(stale.header["kid"], keys.active_kid.as_str());
    assert!(!kids(&jwks(&peer).await).contains(&keys.active_kid));
    assert_ne!(rotated.active_kid, keys.active_kid);

    // A service-account token, and other algorithms.
    let service = peer
        .mint_token(json!({ "service_account": true, "alg": "PS256" }))
        .await
        .unwrap();
    assert_eq!(service.payload["preferred_username"], "service-account-avb-api");
    assert_eq!(service.header["alg"], "PS256");

    // Unknown users and algorithms are refused.
    for bad in [
        json!({ "username": "nobody" }),
        json!({ "alg": "ES256" }),
        json!({ "sign_kid": "missing" }),
    ] {
        let refused = peer.mint_token(bad.clone()).await;
        assert!(
            matches!(refused, Err(KeycloakError::Status { status: 400, .. })),
            "{bad}: {refused:?}"
        );
    }
}

#[tokio::test]
async fn jwks_fetches_are_counted_and_realm_settings_apply() {
    let peer = peer().await;
    peer.reset_jwks_fetch_count().await.unwrap();
    assert_eq!(peer.jwks_fetch_count().await.unwrap(), 0);
    for _ in 0..3 {
        jwks(&peer).await;
    }
    // Other endpoints do not count.
    peer.get_json(&peer.discovery_url()).await.unwrap();
    assert_eq!(peer.jwks_fetch_count().await.unwrap(), 3);

    // A slow JWKS lets tests overlap concurrent fetches.
    peer.configure(json!({ "jwks_delay_ms": 300 })).await.unwrap();
    let started = Instant::now();
    let (a, b) = tokio::join!(jwks(&peer), jwks(&peer));
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(a, b);
    assert_eq!(peer.jwks_fetch_count().await.unwrap(), 5);

    // Extra JWKS entries are appended verbatim.
    let odd = json!({ "kty": "OKP", "crv": "X448", "kid": "odd", "x": "AAAA" });
    peer.configure(json!({ "jwks_delay_ms": 0, "extra_jwks_keys": [odd.clone()] }))
        .await
        .unwrap();
    assert_eq!(jwks(&peer).await.last(), Some(&odd));

    // Lifetime and audience.
    let settings = peer
        .configure(json!({ "access_token_lifespan": 60, "audience": "account" }))
        .await
        .unwrap();
    assert_eq!(settings["access_token_lifespan"], 60);
    let token = peer
        .password_token(PUBLIC_CLIENT_ID, None, DEFAULT_USERNAME, DEFAULT_PASSWORD)
        .await
        .unwrap();
    assert_eq!(token.expires_in, 60);
    let (_, payload) = decode_unverified(&token.access_token).unwrap();
    assert_eq!(payload["aud"], "account");
    assert_eq!(
        payload["exp"].as_i64().unwrap() - payload["iat"].as_i64().unwrap(),
        60
    );
    let service = peer
        .client_credentials_token(API_CLIENT_ID, API_CLIENT_SECRET)
        .await
        .unwrap();
    assert_eq!(service.expires_in, 60);

    let bad = peer.configure(json!({ "access_token_lifespan": 0 })).await;
    assert!(
        matches!(bad, Err(KeycloakError::Status { status: 400, .. })),
        "{bad:?}"
    );
}

/// The PEM text Node exports for an SPKI public key (64-character lines).
fn spki_pem(base64_der: &str) -> String {
    let mut pem = String::from("-----BEGIN PUBLIC KEY-----\n");
    for line in base64_der.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).unwrap());
        pem.push('\n');
    }
    pem.push_str("-----END PUBLIC KEY-----\n");
    pem
}
