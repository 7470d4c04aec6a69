//! The Lago adapter against the validating Lago mock: the provider suite, the syncs end to end, duplicates,
//! back-off on 429 and 5xx, timeouts, webhook keys, and proof that the mock's validation bites.
//!
//! Every test ends by asserting the mock saw no request that violates Lago's OpenAPI document.

use super::support::{World, system};
use async_trait::async_trait;
use avb_billing::adapters::lago::{LagoBilling, LagoConfig};
use avb_billing::model::{
    BatchOutcome, BillingCustomer, CurrentUsage, InvoicePage, PlanAssignment, Subscription, UsageEvent,
    metrics, subscription_id,
};
use avb_billing::provider::BillingProvider;
use avb_billing::retry::{RetryPolicy, RetryingBillingProvider};
use avb_billing::store::{BillingStore, OutboxState};
use avb_billing::sync::BillingSync;
use avb_billing::webhook::{WebhookHeaders, WebhookVerifier};
use avb_billing::{Error, Result};
use avb_core::Ctx;
use avb_storage_memory::MemoryBillingStore;
use avb_testkit::mocks::lago::{LagoMock, start_lago_mock};
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The adapter and its mock; dropping it fails the test if any request violated the document.
#[derive(Debug)]
struct Mocked {
    lago: LagoBilling,
    mock: LagoMock,
}

impl Drop for Mocked {
    fn drop(&mut self) {
        let invalid = self.mock.invalid_requests();
        if !invalid.is_empty() && !std::thread::panicking() {
            panic!("requests the Lago document refuses: {invalid:#?}");
        }
    }
}

#[async_trait]
impl BillingProvider for Mocked {
    async fn upsert_customer(&self, ctx: &Ctx, customer: &BillingCustomer) -> Result<()> {
        self.lago.upsert_customer(ctx, customer).await
    }
    async fn assign_plan(&self, ctx: &Ctx, assignment: &PlanAssignment) -> Result<Subscription> {
        self.lago.assign_plan(ctx, assignment).await
    }
    async fn send_events(&self, ctx: &Ctx, events: &[UsageEvent]) -> Result<BatchOutcome> {
        self.lago.send_events(ctx, events).await
    }
    async fn current_usage(&self, ctx: &Ctx, customer: &str, subscription: &str) -> Result<CurrentUsage> {
        self.lago.current_usage(ctx, customer, subscription).await
    }
    async fn list_invoices(
        &self,
        ctx: &Ctx,
        customer: &str,
        page: u32,
        per_page: u32,
    ) -> Result<InvoicePage> {
        self.lago.list_invoices(ctx, customer, page, per_page).await
    }
}

async fn mocked() -> Arc<Mocked> {
    let mock = start_lago_mock().await.unwrap();
    let config = LagoConfig::new(&mock.api_url, &mock.api_key).http_timeout(Duration::from_secs(2));
    Arc::new(Mocked {
        lago: LagoBilling::new(config).unwrap(),
        mock,
    })
}

mod provider_suite {
    avb_billing::billing_provider_conformance!(async { super::mocked().await });
}

fn fast_retries() -> RetryPolicy {
    RetryPolicy::default().delays(Duration::from_millis(10), Duration::from_millis(50))
}

fn event(sub: &str, id: &str, tokens: u64) -> UsageEvent {
    let mut properties = Map::new();
    properties.insert("tokens".into(), json!(tokens));
    UsageEvent {
        transaction_id: id.into(),
        external_subscription_id: sub.into(),
        code: metrics::INPUT_TOKENS.into(),
        timestamp: 1_750_000_000,
        properties,
    }
}

#[tokio::test]
async fn tenant_and_usage_sync_end_to_end_through_lago() {
    let m = mocked().await;
    let mut w = World::new();
    let store = MemoryBillingStore::new();
    w.sync = BillingSync::new(
        Arc::new(RetryingBillingProvider::new(m.clone(), fast_retries())),
        Arc::new(store.clone()) as Arc<dyn BillingStore>,
        w.tenancy.clone(),
    );
    let t = w.tenant().await;
    let synced = w.sync.sync_tenant(&system(), t.id).await.unwrap();
    assert_eq!(synced.billing_id, t.id.to_string());
    let customer = &m.mock.customers()[&t.id.to_string()];
    assert_eq!(customer["name"], json!(t.name));
    assert!(customer["metadata"].as_array().unwrap().contains(&json!({
        "key": "tier", "value": "free", "display_in_invoice": false
    })));
    assert_eq!(
        m.mock.subscriptions()[&subscription_id(t.id)]["plan_code"],
        json!("plan_free")
    );

    let s = w.session(t.id, 0, Some((120, 11, 22, 1.5))).await;
    w.advance(900);
    let report = w.sync.sync_usage(&system()).await.unwrap();
    assert_eq!(report.events_accepted, 4);
    let events = m.mock.events();
    let tokens = &events[&format!("{}:{}:{}", t.id, s.id, metrics::OUTPUT_TOKENS)];
    assert_eq!(tokens["timestamp"], json!(super::support::at(120).timestamp()));
    assert_eq!(tokens["properties"], json!({ "tokens": 22 }));
    assert_eq!(tokens["external_subscription_id"], json!(subscription_id(t.id)));

    let usage = m
        .current_usage(&system(), &t.id.to_string(), &subscription_id(t.id))
        .await
        .unwrap();
    let audio = usage
        .charges
        .iter()
        .find(|c| c.metric_code == metrics::AUDIO_SECONDS)
        .unwrap();
    assert_eq!(audio.units.parse::<f64>().unwrap(), 1.5);
}

#[tokio::test]
async fn a_resent_batch_is_duplicates_and_a_mixed_one_sends_the_rest() {
    let m = mocked().await;
    let (cust, sub) = ("c-dup", "s-dup");
    m.upsert_customer(
        &system(),
        &BillingCustomer {
            external_id: cust.into(),
            name: "Dup".into(),
            email: None,
            metadata: Default::default(),
        },
    )
    .await
    .unwrap();
    m.assign_plan(
        &system(),
        &PlanAssignment {
            external_customer_id: cust.into(),
            external_id: sub.into(),
            plan_code: "plan_free".into(),
        },
    )
    .await
    .unwrap();
    let first = vec![event(sub, "a", 1), event(sub, "b", 2)];
    m.send_events(&system(), &first).await.unwrap();
    let mixed = vec![event(sub, "a", 1), event(sub, "c", 3), event(sub, "b", 2)];
    let outcome = m.send_events(&system(), &mixed).await.unwrap();
    assert_eq!(outcome.accepted, vec!["c".to_owned()]);
    assert_eq!(outcome.duplicates, vec!["a".to_owned(), "b".to_owned()]);
    let batches: Vec<usize> = m
        .mock
        .requests()
        .iter()
        .filter(|r| r.operation_id.as_deref() == Some("createBatchEvents"))
        .map(|r| r.body.as_ref().unwrap()["events"].as_array().unwrap().len())
        .collect();
    assert_eq!(
        batches,
        vec![2, 3, 1],
        "the 422 rolled back the batch; the rest was sent again"
    );
    assert_eq!(m.mock.events().len(), 3, "each event stored once");
}

#[tokio::test]
async fn rate_limits_wait_for_the_reset_then_succeed() {
    let m = mocked().await;
    let retrying = RetryingBillingProvider::new(m.clone(), fast_retries());
    m.mock.rate_limit_next(1);
    let start = Instant::now();
    retrying
        .upsert_customer(
            &system(),
            &BillingCustomer {
                external_id: "c-429".into(),
                name: "Throttled".into(),
                email: None,
                metadata: Default::default(),
            },
        )
        .await
        .unwrap();
    assert!(
        start.elapsed() >= Duration::from_secs(1),
        "X-RateLimit-Reset honoured"
    );
    let statuses: Vec<u16> = m.mock.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![429, 200]);
    // Without the decorator the adapter reports the wait it was asked for.
    m.mock.rate_limit_next(3);
    let err = m
        .assign_plan(
            &system(),
            &PlanAssignment {
                external_customer_id: "c-429".into(),
                external_id: "s-429".into(),
                plan_code: "plan_free".into(),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.retry_after(), Some(Duration::from_secs(3)));
}

#[tokio::test]
async fn server_errors_and_timeouts_are_retried_client_errors_are_not() {
    let m = mocked().await;
    let retrying = RetryingBillingProvider::new(m.clone(), fast_retries());
    let customer = BillingCustomer {
        external_id: "c-5xx".into(),
        name: "Flaky".into(),
        email: None,
        metadata: Default::default(),
    };
    m.mock.fail_next(502);
    m.mock.fail_next(503);
    retrying.upsert_customer(&system(), &customer).await.unwrap();
    assert_eq!(m.mock.requests().len(), 3);

    m.mock.delay_next(Duration::from_secs(3));
    let err = m.upsert_customer(&system(), &customer).await.unwrap_err();
    assert!(err.is_temporary(), "a timeout is temporary: {err:?}");

    let before = m.mock.requests().len();
    let err = retrying
        .assign_plan(
            &system(),
            &PlanAssignment {
                external_customer_id: "c-5xx".into(),
                external_id: "s-5xx".into(),
                plan_code: "plan_gold".into(),
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::NotFound { resource, id } if resource == "plan" && id == "plan_gold"),
        "{err:?}"
    );
    m.mock.fail_next(400);
    assert!(matches!(
        retrying.upsert_customer(&system(), &customer).await,
        Err(Error::Rejected { status: 400, .. })
    ));
    assert_eq!(m.mock.requests().len(), before + 2, "no retry of a 4xx");
}

#[tokio::test]
async fn a_wrong_key_is_unauthorized() {
    let mock = start_lago_mock().await.unwrap();
    let lago = LagoBilling::new(LagoConfig::new(&mock.api_url, "wrong-key")).unwrap();
    let err = lago.list_invoices(&system(), "c", 1, 20).await.unwrap_err();
    assert!(matches!(err, Error::Unauthorized), "{err:?}");
}

#[tokio::test]
async fn invoices_are_paged_from_lago() {
    let m = mocked().await;
    for n in 1..=3 {
        m.mock.add_invoice("c-inv", json!({
            "number": format!("INV-{n}"), "status": "finalized", "payment_status": "succeeded",
            "currency": "USD", "total_amount_cents": n * 100, "issuing_date": "2026-01-01", "file_url": null,
        }));
    }
    let page = m.list_invoices(&system(), "c-inv", 1, 2).await.unwrap();
    assert_eq!(page.total_count, 3);
    assert_eq!(page.next_page, Some(2));
    assert_eq!(page.invoices[0].number, "INV-3", "newest first");
    let last = m.list_invoices(&system(), "c-inv", 2, 2).await.unwrap();
    assert_eq!(last.invoices.len(), 1);
    assert_eq!(last.next_page, None);
}

#[tokio::test]
async fn webhook_keys_come_from_lago_and_are_fetched_again_after_rotation() {
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    let m = mocked().await;
    m.mock
        .set_webhook_public_key(include_bytes!("../fixtures/webhook_rsa_public.pem"));
    let verifier = WebhookVerifier::jwt(&m.mock.api_url, Arc::new(m.lago.clone()))
        .with_min_refetch_interval(std::time::Duration::ZERO);
    let body = br#"{"webhook_type":"invoice.created","object_type":"invoice"}"#;
    let sign = |private: &[u8]| {
        let claims = json!({ "data": std::str::from_utf8(body).unwrap(), "iss": m.mock.api_url });
        jsonwebtoken::encode(
            &Header::new(Algorithm::RS256),
            &claims,
            &EncodingKey::from_rsa_pem(private).unwrap(),
        )
        .unwrap()
    };
    let headers = |token: String| WebhookHeaders {
        signature: Some(token),
        algorithm: Some("jwt".into()),
        unique_key: Some("k".into()),
    };
    let first = sign(include_bytes!("../fixtures/webhook_rsa_private.pem"));
    verifier.verify(&system(), &headers(first), body).await.unwrap();
    m.mock
        .set_webhook_public_key(include_bytes!("../fixtures/other_rsa_public.pem"));
    let rotated = sign(include_bytes!("../fixtures/other_rsa_private.pem"));
    verifier.verify(&system(), &headers(rotated), body).await.unwrap();
    let fetches = m
        .mock
        .requests()
        .iter()
        .filter(|r| r.operation_id.as_deref() == Some("fetchJsonPublicKey"))
        .count();
    assert_eq!(fetches, 2);
}

#[tokio::test]
async fn the_mock_refuses_requests_that_break_the_document() {
    let mock = start_lago_mock().await.unwrap();
    let http = reqwest::Client::new();
    let url = format!("{}/api/v1/events/batch", mock.api_url);
    let no_transaction_id =
        json!({ "events": [{ "external_subscription_id": "s", "code": "c", "timestamp": 1 }] });
    let response = http
        .post(&url)
        .bearer_auth(&mock.api_key)
        .json(&no_transaction_id)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 422);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], json!("validation_errors"));
    let invalid = mock.invalid_requests();
    assert_eq!(invalid.len(), 1);
    assert!(
        invalid[0].violations.iter().any(|v| v.contains("transaction_id")),
        "{invalid:?}"
    );
    assert!(mock.events().is_empty(), "an invalid batch stores nothing");

    let too_many: Vec<Value> = (0..101)
        .map(|i| json!({ "transaction_id": format!("t{i}"), "external_subscription_id": "s", "code": "c", "timestamp": 1 }))
        .collect();
    let response = http
        .post(&url)
        .bearer_auth(&mock.api_key)
        .json(&json!({ "events": too_many }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status().as_u16(),
        422,
        "the batch limit of 100 is enforced"
    );
    let wrong_path = http
        .get(format!("{}/api/v1/customerz", mock.api_url))
        .bearer_auth(&mock.api_key)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_path.status().as_u16(), 404);
    assert_eq!(mock.invalid_requests().len(), 3);
}

#[tokio::test]
async fn an_adapter_request_the_mock_refuses_fails_the_test() {
    // A customer id with a slash is percent-encoded into one path segment; a hand-built path would not be.
    let m = mocked().await;
    let err = m.current_usage(&system(), "a/b", "s").await.unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    assert!(
        m.mock.invalid_requests().is_empty(),
        "the encoded id matched the template"
    );
    // The guard itself: a violation recorded by the mock panics when the pair is dropped.
    let guard = mocked().await;
    let http = reqwest::Client::new();
    http.post(format!("{}/api/v1/customers", guard.mock.api_url))
        .bearer_auth(&guard.mock.api_key)
        .json(&json!({ "customer": { "name": "no external id" } }))
        .send()
        .await
        .unwrap();
    let dropped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(guard)));
    assert!(dropped.is_err(), "a refused request must fail the test");
}

#[tokio::test]
async fn a_batch_refused_once_stays_pending_and_the_next_run_sends_it() {
    let m = mocked().await;
    let w = World::new();
    let store = MemoryBillingStore::new();
    let sync = BillingSync::new(m.clone(), Arc::new(store.clone()), w.tenancy.clone());
    let t = w.tenant().await;
    w.session(t.id, 0, Some((10, 1, 0, 0.0))).await;
    w.advance(900);
    m.mock.fail_next(400);
    assert!(sync.sync_usage(&system()).await.is_err());
    let pending = store.pending_usage(&system(), 100).await.unwrap();
    assert_eq!(pending.len(), 2);
    assert!(
        pending
            .iter()
            .all(|e| e.state == OutboxState::Pending && e.attempts == 1)
    );
    sync.sync_usage(&system()).await.unwrap();
    assert!(store.pending_usage(&system(), 100).await.unwrap().is_empty());
    assert_eq!(m.mock.events().len(), 2);
}
