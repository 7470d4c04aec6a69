//! `/api/v2/billing/*`: the tenant's current usage and invoices from the billing provider (the server's
//! in-memory one), readable only with `tenant#billing_access`; Lago's webhooks, verified by their HMAC signature
//! (`LAGO_WEBHOOK_SECRET`) over the raw body and handled once per `X-Lago-Unique-Key`; with `FF_BILLING` off,
//! 503 `service_unavailable`.

use crate::blackbox::lago_signature::lago_hmac_signature;
use crate::blackbox::support::{audit_items, id_of, member};
use crate::blackbox::{CheckResult, Framework, Reply, Target, field};
use avb_api::jobs::JobRunner;
use avb_core::Role;
use serde_json::{Value, json};

const USAGE: &str = "/api/v2/billing/usage";
const INVOICES: &str = "/api/v2/billing/invoices";
const WEBHOOK: &str = "/api/v2/billing/webhooks/lago";
/// The `LAGO_WEBHOOK_SECRET` the webhook checks start the server with.
const WEBHOOK_SECRET: &str = "blackbox-lago-hmac-signature-token";

/// An `invoice.created` delivery about `tenant_id`, spaced as it arrived (the signature covers these bytes).
fn invoice_created(tenant_id: &str) -> Vec<u8> {
    format!(
        "{{\"webhook_type\": \"invoice.created\",  \"object_type\":\"invoice\",\n \"invoice\": \
         {{\"lago_id\": \"inv-bb-1\", \"customer\": {{\"external_id\": \"{tenant_id}\"}}}}}}"
    )
    .into_bytes()
}

/// Posts `body` to the webhook route as Lago does (no user credential), HMAC-signed with `signature`.
async fn deliver(s: &Target, unique_key: &str, signature: &str, body: &[u8]) -> Result<Reply, String> {
    s.post(WEBHOOK)
        .header("X-Lago-Signature", signature)
        .header("X-Lago-Signature-Algorithm", "hmac")
        .header("X-Lago-Unique-Key", unique_key)
        .raw("application/json", body.to_vec())
        .send()
        .await
}

/// Events counted for `metric` in a usage body (0 when the metric is absent).
fn events_of(usage: &Value, metric: &str) -> u64 {
    field(usage, "/charges")
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| field(c, "/metric_code") == metric)
        .and_then(|c| field(c, "/events_count").as_u64())
        .unwrap_or(0)
}

/// The admin and the API key (scope `billing`) read usage and invoices; an ended session shows up in the usage
/// once the usage sync ran; bad paging is `validation_error`.
pub async fn billing_usage_and_invoices_of_the_tenant(fw: Framework) -> CheckResult {
    let s = fw.start().await?;
    let before = s.get(USAGE).bearer(&s.admin_token).send().await?;
    before.expect(200)?;
    let before = before.json();
    ensure!(
        field(&before, "/currency").is_string() && field(&before, "/charges").is_array(),
        "a usage body: {before}"
    );
    let sessions_before = events_of(&before, "avb_sessions");

    let session = s
        .post("/api/v2/sessions")
        .bearer(&s.admin_token)
        .json(&json!({}))
        .send()
        .await?;
    session.expect(201)?;
    let session = id_of(&session.json())?;
    s.post(&format!("/api/v2/sessions/{session}/terminate"))
        .bearer(&s.admin_token)
        .json(&json!({}))
        .send()
        .await?
        .expect(200)?;
    // The 15-minute schedule, run now.
    JobRunner::new(s.app().clone())
        .sync_usage()
        .await
        .map_err(|e| format!("usage sync: {e}"))?
        .ok_or("billing is on by default")?;

    let after = s.get(USAGE).api_key(&s.api_key).send().await?;
    after.expect(200)?;
    let after = after.json();
    ensure!(
        events_of(&after, "avb_sessions") == sessions_before + 1,
        "the ended session is billed once: before {before}, after {after}"
    );

    let invoices = s.get(INVOICES).bearer(&s.admin_token).send().await?;
    invoices.expect(200)?;
    let invoices = invoices.json();
    ensure!(
        field(&invoices, "/items").as_array().is_some_and(Vec::is_empty)
            && field(&invoices, "/total") == 0
            && field(&invoices, "/page") == 1
            && field(&invoices, "/next_page").is_null(),
        "no invoices yet: {invoices}"
    );
    for bad in ["page=0", "per_page=0", "per_page=101", "page=first"] {
        s.get(&format!("{INVOICES}?{bad}"))
            .bearer(&s.admin_token)
            .send()
            .await?
            .expect_error(400, "validation_error")?;
    }
    Ok(())
}

/// Developers lack `billing_access` (403 `permission_denied`; viewers too, checked in avb-api's tests — the demo
/// tenant's tier allows three users); another tenant's admin cannot read the demo tenant's billing by naming
/// it; the spec's `billing` role can.
pub async fn billing_needs_billing_access(fw: Framework) -> CheckResult {
    let s = fw.start().await?;
    let (_, developer) = member(&s, "dev@demo.local", &[Role::Developer]).await?;
    for path in [USAGE, INVOICES] {
        s.get(path)
            .bearer(&developer)
            .send()
            .await?
            .expect_error(403, "permission_denied")?;
    }
    s.get(USAGE)
        .bearer(&s.other.admin_token)
        .header("x-tenant-id", &s.tenant_id)
        .send()
        .await?
        .expect_error(403, "permission_denied")?;
    let (_, billing) = member(&s, "billing@demo.local", &[Role::Billing]).await?;
    s.get(INVOICES).bearer(&billing).send().await?.expect(200)?;
    Ok(())
}

/// With `FF_BILLING=false` the billing routes exist but answer 503 `service_unavailable` naming the feature — the
/// webhook route too, even for a delivery correctly signed with the configured secret.
pub async fn billing_off_answers_service_unavailable(fw: Framework) -> CheckResult {
    let s = fw
        .start_with(json!({ "ff_billing": false, "lago_webhook_secret": WEBHOOK_SECRET }))
        .await?;
    let body = invoice_created(&s.tenant_id);
    let signature = lago_hmac_signature(WEBHOOK_SECRET, &body);
    let reply = deliver(&s, &uuid::Uuid::new_v4().to_string(), &signature, &body).await?;
    reply.expect_error(503, "service_unavailable")?;
    ensure!(
        field(&reply.json(), "/details/feature") == "billing",
        "names the feature: {}",
        reply.shown()
    );
    for path in [USAGE, INVOICES] {
        let reply = s.get(path).bearer(&s.admin_token).send().await?;
        reply.expect_error(503, "service_unavailable")?;
        ensure!(
            field(&reply.json(), "/details/feature") == "billing",
            "names the feature: {}",
            reply.shown()
        );
    }
    Ok(())
}

/// With `LAGO_WEBHOOK_SECRET` (memory billing): a delivery HMAC-signed over its raw bytes is 200 `processed` and
/// writes one `billing_event` in the tenant's audit trail; the same `X-Lago-Unique-Key` again is 200
/// `duplicate` with no second entry; a signature over the re-serialised JSON, a wrong one, or none is the 401
/// envelope and records nothing.
pub async fn lago_webhooks_are_verified_and_handled_once(fw: Framework) -> CheckResult {
    let s = fw
        .start_with(json!({ "lago_webhook_secret": WEBHOOK_SECRET }))
        .await?;
    let body = invoice_created(&s.tenant_id);
    let key = uuid::Uuid::new_v4().to_string();
    let audit_query = format!("resource_type=billing_webhook&resource_id={key}&limit=100");

    let parsed: Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
    let reserialised = serde_json::to_vec(&parsed).map_err(|e| e.to_string())?;
    for signature in [
        lago_hmac_signature(WEBHOOK_SECRET, &reserialised),
        lago_hmac_signature("not-the-secret", &body),
        "bm90IGEgc2lnbmF0dXJl".to_owned(),
    ] {
        deliver(&s, &key, &signature, &body)
            .await?
            .expect_error(401, "authentication_failed")?;
    }
    s.post(WEBHOOK)
        .header("X-Lago-Unique-Key", &key)
        .raw("application/json", body.clone())
        .send()
        .await?
        .expect_error(401, "authentication_failed")?;
    ensure!(
        audit_items(&s, &s.admin_token, &audit_query).await?.is_empty(),
        "refused deliveries record nothing"
    );

    let signature = lago_hmac_signature(WEBHOOK_SECRET, &body);
    let first = deliver(&s, &key, &signature, &body).await?;
    first.expect(200)?;
    ensure!(
        first.json() == json!({ "status": "processed" }),
        "a first delivery is processed: {}",
        first.shown()
    );
    let entries = audit_items(&s, &s.admin_token, &audit_query).await?;
    ensure!(
        entries.len() == 1 && entries.iter().all(|e| field(e, "/action") == "billing_event"),
        "one billing_event in the tenant's trail: {entries:?}"
    );

    let again = deliver(&s, &key, &signature, &body).await?;
    again.expect(200)?;
    ensure!(
        again.json() == json!({ "status": "duplicate" }),
        "a repeat is acknowledged as a duplicate: {}",
        again.shown()
    );
    let entries = audit_items(&s, &s.admin_token, &audit_query).await?;
    ensure!(entries.len() == 1, "a repeat has no side effect: {entries:?}");
    Ok(())
}

/// Memory billing without `LAGO_WEBHOOK_SECRET` verifies nothing, so it accepts nothing: every delivery, however
/// signed, is the 401 envelope (never a 5xx, never a 200).
pub async fn lago_webhooks_are_refused_without_a_secret(fw: Framework) -> CheckResult {
    let s = fw.start().await?;
    let body = invoice_created(&s.tenant_id);
    let key = uuid::Uuid::new_v4().to_string();
    for signature in [
        lago_hmac_signature("", &body),
        lago_hmac_signature(WEBHOOK_SECRET, &body),
    ] {
        deliver(&s, &key, &signature, &body)
            .await?
            .expect_error(401, "authentication_failed")?;
    }
    // A JWT-signed delivery (Lago's default algorithm) has no key to verify it with either.
    s.post(WEBHOOK)
        .header("X-Lago-Signature", "eyJhbGciOiJSUzI1NiJ9.e30.c2lnbmF0dXJl")
        .header("X-Lago-Unique-Key", &key)
        .raw("application/json", body)
        .send()
        .await?
        .expect_error(401, "authentication_failed")?;
    Ok(())
}
