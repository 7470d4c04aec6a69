//! Webhook verification (HMAC and RS256 JWT with key refetch) and de-duplication.

use super::support::system;
use async_trait::async_trait;
use avb_billing::Error;
use avb_billing::store::BillingStore;
use avb_billing::webhook::{Received, WebhookHeaders, WebhookKeySource, WebhookReceiver, WebhookVerifier};
use avb_core::{Ctx, SystemClock};
use avb_storage_memory::MemoryBillingStore;
use base64::Engine as _;
use hmac::{KeyInit, Mac};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const PRIVATE: &[u8] = include_bytes!("../fixtures/webhook_rsa_private.pem");
const PUBLIC: &[u8] = include_bytes!("../fixtures/webhook_rsa_public.pem");
const OTHER_PRIVATE: &[u8] = include_bytes!("../fixtures/other_rsa_private.pem");
const OTHER_PUBLIC: &[u8] = include_bytes!("../fixtures/other_rsa_public.pem");
const ISSUER: &str = "https://lago.example.test";
const BODY: &[u8] =
    br#"{"webhook_type":"invoice.created","object_type":"invoice","invoice":{"lago_id":"i1"}}"#;

#[derive(Debug)]
struct Keys {
    pem: Mutex<Vec<u8>>,
    fetches: AtomicUsize,
}

impl Keys {
    fn new(pem: &[u8]) -> Arc<Self> {
        Arc::new(Self {
            pem: Mutex::new(pem.to_vec()),
            fetches: AtomicUsize::new(0),
        })
    }
}

#[async_trait]
impl WebhookKeySource for Keys {
    async fn public_key_pem(&self, _ctx: &Ctx) -> avb_billing::Result<Vec<u8>> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        Ok(self.pem.lock().unwrap().clone())
    }
}

fn hmac_signature(key: &[u8], body: &[u8]) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
    mac.update(body);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

fn jwt(private: &[u8], issuer: &str, data: &[u8]) -> String {
    let claims = json!({ "data": std::str::from_utf8(data).unwrap(), "iss": issuer });
    jsonwebtoken::encode(
        &Header::new(Algorithm::RS256),
        &claims,
        &EncodingKey::from_rsa_pem(private).unwrap(),
    )
    .unwrap()
}

fn headers(signature: String, algorithm: &str, key: &str) -> WebhookHeaders {
    WebhookHeaders {
        signature: Some(signature),
        algorithm: Some(algorithm.into()),
        unique_key: Some(key.into()),
    }
}

fn rejected(result: avb_billing::Result<()>) -> bool {
    matches!(result, Err(Error::WebhookRejected(_)))
}

#[tokio::test]
async fn hmac_signatures_verify_over_the_raw_body_only() {
    let v = WebhookVerifier::hmac(b"hmac-token".to_vec());
    let ctx = system();
    let good = headers(hmac_signature(b"hmac-token", BODY), "hmac", "k");
    v.verify(&ctx, &good, BODY).await.unwrap();
    let reserialised =
        serde_json::to_vec_pretty(&serde_json::from_slice::<serde_json::Value>(BODY).unwrap()).unwrap();
    assert!(
        rejected(v.verify(&ctx, &good, &reserialised).await),
        "same JSON, other bytes"
    );
    let wrong_key = headers(hmac_signature(b"other", BODY), "hmac", "k");
    assert!(rejected(v.verify(&ctx, &wrong_key, BODY).await));
    assert!(rejected(
        v.verify(&ctx, &headers("%%%".into(), "hmac", "k"), BODY).await
    ));
    let unsigned = WebhookHeaders {
        signature: None,
        ..good.clone()
    };
    assert!(rejected(v.verify(&ctx, &unsigned, BODY).await));
    let jwt_not_configured = headers(jwt(PRIVATE, ISSUER, BODY), "jwt", "k");
    assert!(rejected(v.verify(&ctx, &jwt_not_configured, BODY).await));
}

#[tokio::test]
async fn jwt_signatures_need_the_key_the_issuer_and_the_exact_body() {
    let keys = Keys::new(PUBLIC);
    let v = WebhookVerifier::jwt(ISSUER, keys.clone()).with_min_refetch_interval(Duration::ZERO);
    let ctx = system();
    let token = jwt(PRIVATE, ISSUER, BODY);
    let no_algorithm_header = WebhookHeaders {
        signature: Some(token.clone()),
        algorithm: None,
        unique_key: None,
    };
    v.verify(&ctx, &no_algorithm_header, BODY).await.unwrap();
    v.verify(&ctx, &headers(token.clone(), "jwt", "k"), BODY)
        .await
        .unwrap();
    assert_eq!(keys.fetches.load(Ordering::SeqCst), 1, "the key is cached");
    assert!(rejected(
        v.verify(&ctx, &headers(token.clone(), "jwt", "k"), b"{\"other\":1}")
            .await
    ));
    let wrong_issuer = jwt(PRIVATE, "https://evil.test", BODY);
    assert!(rejected(
        v.verify(&ctx, &headers(wrong_issuer, "jwt", "k"), BODY).await
    ));
    let forged = jwt(OTHER_PRIVATE, ISSUER, BODY);
    let before = keys.fetches.load(Ordering::SeqCst);
    assert!(rejected(v.verify(&ctx, &headers(forged, "jwt", "k"), BODY).await));
    assert_eq!(
        keys.fetches.load(Ordering::SeqCst),
        before + 1,
        "one refetch, not more"
    );
    // A token signed with the public key as an HMAC secret (algorithm confusion) is refused.
    let confused = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &json!({ "data": std::str::from_utf8(BODY).unwrap(), "iss": ISSUER }),
        &EncodingKey::from_secret(PUBLIC),
    )
    .unwrap();
    assert!(rejected(
        v.verify(&ctx, &headers(confused, "jwt", "k"), BODY).await
    ));
}

#[tokio::test]
async fn a_rotated_key_is_fetched_again_once() {
    let keys = Keys::new(PUBLIC);
    let v = WebhookVerifier::jwt(ISSUER, keys.clone()).with_min_refetch_interval(Duration::ZERO);
    let ctx = system();
    v.verify(&ctx, &headers(jwt(PRIVATE, ISSUER, BODY), "jwt", "k"), BODY)
        .await
        .unwrap();
    *keys.pem.lock().unwrap() = OTHER_PUBLIC.to_vec();
    v.verify(&ctx, &headers(jwt(OTHER_PRIVATE, ISSUER, BODY), "jwt", "k"), BODY)
        .await
        .unwrap();
    assert_eq!(keys.fetches.load(Ordering::SeqCst), 2);
    v.verify(&ctx, &headers(jwt(OTHER_PRIVATE, ISSUER, BODY), "jwt", "k"), BODY)
        .await
        .unwrap();
    assert_eq!(keys.fetches.load(Ordering::SeqCst), 2, "the new key is cached");
}

#[tokio::test]
async fn repeated_deliveries_are_duplicates_until_released() {
    let store: Arc<dyn BillingStore> = Arc::new(MemoryBillingStore::new());
    let receiver = WebhookReceiver::new(
        Arc::new(WebhookVerifier::hmac(b"t".to_vec())),
        store,
        Arc::new(SystemClock),
    );
    let ctx = system();
    let h = headers(hmac_signature(b"t", BODY), "hmac", "2f1c-unique");
    match receiver.receive(&ctx, &h, BODY).await.unwrap() {
        Received::New(hook) => {
            assert_eq!(hook.webhook_type, "invoice.created");
            assert_eq!(hook.object_type, "invoice");
            assert_eq!(hook.unique_key, "2f1c-unique");
        }
        other => panic!("first delivery must be new: {other:?}"),
    }
    assert_eq!(
        receiver.receive(&ctx, &h, BODY).await.unwrap(),
        Received::Duplicate("2f1c-unique".into())
    );
    receiver.release(&ctx, "2f1c-unique").await.unwrap();
    assert!(matches!(
        receiver.receive(&ctx, &h, BODY).await.unwrap(),
        Received::New(_)
    ));
    let forged = headers(hmac_signature(b"x", BODY), "hmac", "another");
    assert!(
        receiver.receive(&ctx, &forged, BODY).await.is_err(),
        "verification comes first"
    );
    let no_key = WebhookHeaders {
        unique_key: None,
        ..h
    };
    assert!(receiver.receive(&ctx, &no_key, BODY).await.is_err());
}

#[tokio::test]
async fn forged_signatures_cannot_make_us_fetch_the_key_more_than_once_a_minute() {
    let keys = Keys::new(PUBLIC);
    let v = WebhookVerifier::jwt(ISSUER, keys.clone());
    let ctx = system();
    v.verify(&ctx, &headers(jwt(PRIVATE, ISSUER, BODY), "jwt", "k"), BODY)
        .await
        .unwrap();
    for _ in 0..20 {
        let forged = jwt(OTHER_PRIVATE, ISSUER, BODY);
        assert!(rejected(v.verify(&ctx, &headers(forged, "jwt", "k"), BODY).await));
    }
    assert_eq!(
        keys.fetches.load(Ordering::SeqCst),
        1,
        "no refetch within the interval"
    );
    // Genuine deliveries still verify with the cached key.
    v.verify(&ctx, &headers(jwt(PRIVATE, ISSUER, BODY), "jwt", "k"), BODY)
        .await
        .unwrap();
}
