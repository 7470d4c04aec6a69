//! `/api/v2/billing/*`: the tenant's current usage and invoices from the billing provider (the server's
//! in-memory one), readable only with `tenant#billing_access`; with `FF_BILLING` off, 503 `service_unavailable`.

use crate::blackbox::support::{id_of, member};
use crate::blackbox::{CheckResult, Framework, field};
use avb_api::jobs::JobRunner;
use avb_core::Role;
use serde_json::{Value, json};

const USAGE: &str = "/api/v2/billing/usage";
const INVOICES: &str = "/api/v2/billing/invoices";

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

/// With `FF_BILLING=false` the billing routes exist but answer 503 `service_unavailable` naming the feature.
pub async fn billing_off_answers_service_unavailable(fw: Framework) -> CheckResult {
    let s = fw.start_with(json!({ "ff_billing": false })).await?;
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
