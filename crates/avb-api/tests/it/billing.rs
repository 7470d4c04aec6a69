//! Billing: the tenant and usage sync jobs against the in-memory provider and store, `/api/v2/billing/usage`
//! and `/invoices` (permission `billing_access`, billing off → 503), and webhook verification and
//! de-duplication.

use crate::support::{Api, Org, mint};
use avb_api::jobs::JobRunner;
use avb_api::ops::billing::{receive_webhook, webhook_headers};
use avb_api::{App, AppConfig, RateLimits};
use avb_auth::adapters::local_authz::LocalAuthorizer;
use avb_auth::adapters::static_jwt::StaticJwtBuilder;
use avb_billing::adapters::memory::MemoryBilling;
use avb_billing::model::{Invoice, customer_id, metrics, subscription_id};
use avb_billing::webhook::WebhookVerifier;
use avb_core::audit::{AuditFilter, AuditReader};
use avb_core::jobs::NewJob;
use avb_core::rate_limit::RateLimitPolicy;
use avb_core::{Ctx, ErrorCode, PageRequest, RequestId, Role, UuidV7Ids};
use avb_storage_memory::{
    MemoryBillingStore, MemoryEphemeralTokens, MemoryEventBus, MemoryRateLimiter, MemoryRelationshipStore,
    MemoryStore,
};
use base64::Engine as _;
use hmac::{KeyInit, Mac};
use serde_json::json;
use std::sync::Arc;

const WEBHOOK_KEY: &str = "lago-hmac-signature-token";

struct Billed {
    api: Api,
    provider: MemoryBilling,
    sysadmin: String,
    a: Org,
    b: Org,
}

/// An app over memory adapters with billing on (memory provider and store, HMAC webhooks), and two tenants.
async fn billed() -> Billed {
    billed_if(true).await
}

/// [`billed`], or the same app without billing.
async fn billed_if(on: bool) -> Billed {
    let store = MemoryStore::new();
    let jwt = StaticJwtBuilder::hs256("billing-test-secret-of-at-least-32-bytes")
        .build()
        .unwrap();
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
    let provider = MemoryBilling::new();
    let mut builder = App::builder()
        .storage(store.clone())
        .identity(Arc::new(jwt.clone()))
        .authorizer(Arc::new(
            LocalAuthorizer::new(Arc::new(MemoryRelationshipStore::new())).unwrap(),
        ))
        .rate_limiter(Arc::new(MemoryRateLimiter::new()))
        .event_bus(Arc::new(MemoryEventBus::new()))
        .ephemeral_tokens(Arc::new(MemoryEphemeralTokens::new()))
        .config(config);
    if on {
        builder = builder
            .billing(Arc::new(provider.clone()), Arc::new(MemoryBillingStore::new()))
            .billing_webhooks(Arc::new(WebhookVerifier::hmac(WEBHOOK_KEY)));
    }
    let app = builder.build().unwrap();
    let api = Api::over(app, store, jwt);
    let sysadmin = mint(&api.jwt, "root", "root@platform.test", vec![Role::Sysadmin], None);
    let a = api.org(&sysadmin, "alpha").await;
    let b = api.org(&sysadmin, "bravo").await;
    Billed {
        api,
        provider,
        sysadmin,
        a,
        b,
    }
}

fn system() -> Ctx {
    Ctx::system(RequestId::generate(&UuidV7Ids), "test", None)
}

#[tokio::test]
async fn tenant_sync_jobs_create_the_customer_on_its_tier_plan_and_link_the_tenant() {
    let w = billed().await;
    let runner = JobRunner::new(w.api.app.clone());
    assert!(
        w.provider.customer(&customer_id(w.a.id)).is_none(),
        "not before the job ran"
    );
    runner.run_until_idle().await;
    let customer = w.provider.customer(&customer_id(w.a.id)).expect("customer");
    assert_eq!(customer.metadata["tier"], "pro");
    let sub = w
        .provider
        .subscription(&subscription_id(w.a.id))
        .expect("subscription");
    assert_eq!(sub.plan_code, "plan_pro");
    let tenant = w
        .api
        .get(&w.sysadmin, &format!("/api/v2/admin/tenants/{}", w.a.id))
        .await;
    tenant.expect(200);
    assert_eq!(tenant.str("billing_id"), w.a.id.to_string());

    // A tier change enqueues another sync, which changes the plan of the same subscription.
    w.api
        .patch(
            &w.sysadmin,
            &format!("/api/v2/admin/tenants/{}", w.a.id),
            json!({ "tier": "enterprise" }),
        )
        .await
        .expect(200);
    runner.run_until_idle().await;
    let sub = w
        .provider
        .subscription(&subscription_id(w.a.id))
        .expect("subscription");
    assert_eq!(sub.plan_code, "plan_enterprise");
}

#[tokio::test]
async fn a_usage_sync_job_sends_ended_sessions_to_the_provider() {
    let w = billed().await;
    let runner = JobRunner::new(w.api.app.clone());
    runner.run_until_idle().await;
    let session = w.api.post(&w.a.admin.token, "/api/v2/sessions", json!({})).await;
    session.expect(201);
    let id = session.str("id");
    let open = w.api.post(&w.a.admin.token, "/api/v2/sessions", json!({})).await;
    open.expect(201);
    w.api
        .post(
            &w.a.admin.token,
            &format!("/api/v2/sessions/{id}/terminate"),
            json!({}),
        )
        .await
        .expect(200);

    w.api
        .app
        .inner()
        .jobs
        .enqueue(
            &system(),
            NewJob::new(avb_billing::sync::SYNC_USAGE_JOB, None, json!({})),
        )
        .await
        .unwrap();
    assert_eq!(runner.run_until_idle().await, 1, "the usage sync job ran");
    let sent: Vec<String> = w
        .provider
        .events()
        .into_iter()
        .map(|e| e.transaction_id)
        .collect();
    assert_eq!(
        sent,
        vec![format!("{}:{id}:{}", w.a.id, metrics::SESSIONS)],
        "only the ended session is billed"
    );
    // The next run sends nothing new.
    let report = runner.sync_usage().await.unwrap().expect("billing is on");
    assert_eq!((report.events_recorded, report.events_accepted), (0, 0));

    // The tenant's admin sees it in the current usage; B has none.
    let usage = w.api.get(&w.a.admin.token, "/api/v2/billing/usage").await;
    usage.expect(200);
    let charges = usage.body["charges"].as_array().unwrap();
    let sessions = charges
        .iter()
        .find(|c| c["metric_code"] == metrics::SESSIONS)
        .expect("sessions charge");
    assert_eq!(
        (sessions["units"].as_str(), sessions["events_count"].as_u64()),
        (Some("1"), Some(1))
    );
    let other = w.api.get(&w.b.admin.token, "/api/v2/billing/usage").await;
    other.expect(200);
    assert!(
        other.body["charges"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["events_count"] == 0),
        "{}",
        other.body
    );
}

#[tokio::test]
async fn billing_routes_need_billing_access() {
    let w = billed().await;
    // No job ran: the first call links the tenant to its customer itself.
    w.api
        .get(&w.a.admin.token, "/api/v2/billing/usage")
        .await
        .expect(200);
    for token in [&w.a.developer.token, &w.a.viewer.token] {
        w.api
            .get(token, "/api/v2/billing/usage")
            .await
            .expect_error(403, "permission_denied");
        w.api
            .get(token, "/api/v2/billing/invoices")
            .await
            .expect_error(403, "permission_denied");
    }
    // The spec's `billing` role has it.
    let billing = w.api.invite(&w.a.admin.token, w.a.id, "alpha", "billing").await;
    w.api
        .get(&billing.token, "/api/v2/billing/invoices")
        .await
        .expect(200);
}

#[tokio::test]
async fn invoices_are_paged_newest_first() {
    let w = billed().await;
    JobRunner::new(w.api.app.clone()).run_until_idle().await;
    for n in 1..=3 {
        w.provider.add_invoice(
            &customer_id(w.a.id),
            Invoice {
                id: format!("inv-{n}"),
                number: format!("AVB-{n:03}"),
                status: "finalized".into(),
                payment_status: "pending".into(),
                currency: "USD".into(),
                total_amount_cents: 1000 * n,
                issuing_date: format!("2025-0{n}-01"),
                file_url: None,
            },
        );
    }
    let first = w
        .api
        .get(&w.a.admin.token, "/api/v2/billing/invoices?per_page=2")
        .await;
    first.expect(200);
    assert_eq!(first.body["items"].as_array().unwrap().len(), 2);
    assert_eq!(
        (first.body["page"].as_u64(), first.body["next_page"].as_u64()),
        (Some(1), Some(2))
    );
    assert_eq!(first.body["total"], 3);
    let last = w
        .api
        .get(&w.a.admin.token, "/api/v2/billing/invoices?page=2&per_page=2")
        .await;
    last.expect(200);
    assert_eq!(last.body["items"].as_array().unwrap().len(), 1);
    assert!(last.body["next_page"].is_null());
    // B sees none of A's invoices.
    let b = w.api.get(&w.b.admin.token, "/api/v2/billing/invoices").await;
    b.expect(200);
    assert_eq!(b.body["total"], 0);
    for bad in ["page=0", "per_page=0", "per_page=101", "page=x"] {
        w.api
            .get(&w.a.admin.token, &format!("/api/v2/billing/invoices?{bad}"))
            .await
            .expect_error(400, "validation_error");
    }
}

#[tokio::test]
async fn without_billing_the_routes_answer_service_unavailable_and_jobs_stay_queued() {
    let w = billed_if(false).await;
    let resp = w.api.get(&w.a.admin.token, "/api/v2/billing/usage").await;
    resp.expect_error(503, "service_unavailable");
    assert_eq!(resp.body["details"]["feature"], "billing");
    w.api
        .get(&w.a.admin.token, "/api/v2/billing/invoices")
        .await
        .expect_error(503, "service_unavailable");
    let ctx = system();
    let err = receive_webhook(&w.api.app, &ctx, &webhook_headers([]), b"{}")
        .await
        .unwrap_err();
    assert_eq!(err.status(), 503);
    let runner = JobRunner::new(w.api.app.clone());
    assert!(
        !runner
            .kinds()
            .contains(&avb_core::jobs::kinds::BILLING_SYNC_TENANT)
    );
    runner.run_until_idle().await;
    let left = w
        .api
        .app
        .inner()
        .jobs
        .reserve(
            &system(),
            &[avb_core::jobs::kinds::BILLING_SYNC_TENANT],
            std::time::Duration::from_secs(1),
        )
        .await
        .unwrap();
    assert!(left.is_some(), "the tenant sync job is kept for a billing worker");
}

fn sign(body: &[u8]) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(WEBHOOK_KEY.as_bytes()).unwrap();
    mac.update(body);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

#[tokio::test]
async fn webhooks_are_verified_over_the_raw_body_and_handled_once() {
    let w = billed().await;
    let app = &w.api.app;
    let ctx = system();
    // Whitespace and key order as Lago sent them: the signature covers these bytes, not re-serialised JSON.
    let body = format!(
        "{{\"webhook_type\": \"invoice.created\",  \"object_type\":\"invoice\", \
         \"invoice\": {{\"lago_id\": \"inv-1\", \"customer\": {{\"external_id\": \"{}\"}}}}}}",
        w.a.id
    );
    let signed = |signature: &str, key: &str| {
        webhook_headers([
            ("X-Lago-Signature", signature),
            ("x-lago-signature-algorithm", "hmac"),
            ("X-Lago-Unique-Key", key),
        ])
    };
    let key = uuid::Uuid::new_v4().to_string();
    let audited = || async {
        let filter = AuditFilter {
            resource_type: Some("billing_webhook".into()),
            ..AuditFilter::default()
        };
        let scoped = Ctx::system(RequestId::generate(&UuidV7Ids), "test", Some(w.a.id));
        w.api
            .store
            .query(&scoped, &filter, PageRequest::new(Some(100), None).unwrap())
            .await
            .unwrap()
            .items
    };

    // Bad signatures: 401 envelope, nothing claimed or recorded.
    let reserialised =
        serde_json::to_vec(&serde_json::from_str::<serde_json::Value>(&body).unwrap()).unwrap();
    for headers in [
        signed(&sign(&reserialised), &key),
        signed("bm90IGEgc2lnbmF0dXJl", &key),
        webhook_headers([("X-Lago-Unique-Key", key.as_str())]),
    ] {
        let err = receive_webhook(app, &ctx, &headers, body.as_bytes())
            .await
            .unwrap_err();
        assert_eq!(
            (err.code, err.status()),
            (ErrorCode::AuthenticationFailed, 401),
            "{err:?}"
        );
    }
    assert!(audited().await.is_empty());

    // First delivery: handled (one billing_event in the tenant's trail).
    let headers = signed(&sign(body.as_bytes()), &key);
    let first = receive_webhook(app, &ctx, &headers, body.as_bytes())
        .await
        .unwrap();
    assert_eq!(
        (first.status, first.body.clone()),
        (
            200,
            avb_api::input::ReplyBody::Json(json!({ "status": "processed" }))
        )
    );
    let entries = audited().await;
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].action, avb_core::audit::AuditAction::BillingEvent);
    assert_eq!(entries[0].resource_id, key);

    // A repeat: 200, nothing done.
    let again = receive_webhook(app, &ctx, &headers, body.as_bytes())
        .await
        .unwrap();
    assert_eq!(
        again.body,
        avb_api::input::ReplyBody::Json(json!({ "status": "duplicate" }))
    );
    assert_eq!(audited().await.len(), 1, "a duplicate has no side effect");
}

/// The mounted route: `POST /api/v2/billing/webhooks/lago` through the whole pipeline, with no credential. The
/// signature headers reach the handler (any case) and the body arrives byte for byte, so a signature over
/// Lago's own spacing verifies; a repeat is acknowledged without effect; a bad or missing signature is the 401
/// envelope; billing off is 503. Only this route is handed the request headers.
#[tokio::test]
async fn the_mounted_webhook_route_verifies_the_raw_body_and_handles_a_delivery_once() {
    const ROUTE: &str = "/api/v2/billing/webhooks/lago";
    let w = billed().await;
    let body = format!(
        "{{ \"webhook_type\":\"invoice.created\",\n \"object_type\": \"invoice\", \
         \"invoice\": {{\"external_customer_id\": \"{}\", \"lago_id\": \"inv-9\"}} }}",
        w.a.id
    );
    let key = uuid::Uuid::new_v4().to_string();
    let deliver = |signature: Option<String>, body: &[u8]| {
        let mut req = avb_api::ApiRequest::new(avb_api::Method::Post, ROUTE)
            .header("Content-Type", "application/json")
            .header("X-Lago-Unique-Key", &key)
            .header("X-Lago-Signature-Algorithm", "hmac");
        if let Some(signature) = signature {
            req = req.header("X-Lago-Signature", signature);
        }
        req.body = body.to_vec();
        w.api.app.handle(req)
    };
    let envelope =
        |raw: &avb_api::ApiResponse| -> serde_json::Value { serde_json::from_slice(&raw.body).unwrap() };
    let audited = || async {
        let filter = AuditFilter {
            resource_type: Some("billing_webhook".into()),
            ..AuditFilter::default()
        };
        let scoped = Ctx::system(RequestId::generate(&UuidV7Ids), "test", Some(w.a.id));
        w.api
            .store
            .query(&scoped, &filter, PageRequest::new(Some(100), None).unwrap())
            .await
            .unwrap()
            .items
    };

    let reserialised =
        serde_json::to_vec(&serde_json::from_str::<serde_json::Value>(&body).unwrap()).unwrap();
    for signature in [
        None,
        Some(sign(&reserialised)),
        Some("bm90IGEgc2lnbmF0dXJl".into()),
    ] {
        let raw = deliver(signature, body.as_bytes()).await;
        assert_eq!(raw.status, 401);
        let refused = envelope(&raw);
        assert_eq!(refused["error"], "authentication_failed", "{refused}");
        assert!(refused["message"].is_string() && refused.get("details").is_some());
    }
    assert!(audited().await.is_empty());

    let first = deliver(Some(sign(body.as_bytes())), body.as_bytes()).await;
    assert_eq!(
        (first.status, envelope(&first)),
        (200, json!({ "status": "processed" }))
    );
    assert_eq!(audited().await.len(), 1);
    let again = deliver(Some(sign(body.as_bytes())), body.as_bytes()).await;
    assert_eq!(
        (again.status, envelope(&again)),
        (200, json!({ "status": "duplicate" }))
    );
    assert_eq!(audited().await.len(), 1, "a repeat has no side effect");

    let headed: Vec<&str> = avb_api::routes::routes()
        .iter()
        .filter(|r| r.headers)
        .map(|r| r.operation)
        .collect();
    assert_eq!(headed, ["receive_lago_webhook"], "only webhooks copy the headers");

    let off = billed_if(false).await;
    let mut req = avb_api::ApiRequest::new(avb_api::Method::Post, ROUTE)
        .header("X-Lago-Signature", sign(body.as_bytes()))
        .header("X-Lago-Signature-Algorithm", "hmac");
    req.body = body.into_bytes();
    let raw = off.api.app.handle(req).await;
    assert_eq!(raw.status, 503);
    assert_eq!(envelope(&raw)["details"]["feature"], "billing");
}
