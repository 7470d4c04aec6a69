//! `/api/v2/tenants/me…`: the caller's own tenant, its settings, usage and limits.

use crate::blackbox::support::{audit_count, expect_audited, expect_invalid, member, read, request_id};
use crate::blackbox::{CheckResult, Framework, field};
use avb_core::Role;
use serde_json::json;

const SETTINGS: &str = "/api/v2/tenants/me/settings";

/// The tenant, its settings (changed by a patch, which is audited as `settings_change`), usage that follows a
/// new project, and limits equal to the tenant's.
pub async fn my_tenant_settings_usage_and_limits(fw: Framework) -> CheckResult {
    let s = fw.start().await?;
    let token = &s.admin_token;
    let tenant = read(&s, token, "/api/v2/tenants/me").await?;
    ensure!(
        field(&tenant, "/id") == s.tenant_id.as_str() && field(&tenant, "/slug") == "demo",
        "my tenant: {tenant}"
    );

    let before = read(&s, token, SETTINGS).await?;
    ensure!(
        field(&before, "/tenant_id") == s.tenant_id.as_str(),
        "settings of my tenant: {before}"
    );
    let rid = request_id("settings");
    let patched = s
        .patch(SETTINGS)
        .bearer(token)
        .header("x-request-id", &rid)
        .json(&json!({ "primary_color": "#123456", "session_timeout_minutes": 30, "require_mfa": true }))
        .send()
        .await?;
    patched.expect(200)?;
    patched.expect_header("x-request-id", &rid)?;
    let patched = patched.json();
    ensure!(
        field(&patched, "/primary_color") == "#123456"
            && field(&patched, "/session_timeout_minutes") == 30
            && field(&patched, "/require_mfa") == true,
        "the patch is applied: {patched}"
    );
    ensure!(
        field(&patched, "/default_llm_model") == field(&before, "/default_llm_model"),
        "fields not in the patch keep their value: {before} → {patched}"
    );
    let reread = read(&s, token, SETTINGS).await?;
    ensure!(
        reread == patched,
        "a re-read shows the change: {reread} vs {patched}"
    );
    let entry = expect_audited(
        &s,
        token,
        "settings_change",
        "tenant_settings",
        &s.tenant_id,
        &rid,
    )
    .await?;
    ensure!(
        field(&entry, "/new_values/primary_color") == "#123456",
        "the audit entry records the new value: {entry}"
    );

    let limits = read(&s, token, "/api/v2/tenants/me/limits").await?;
    ensure!(
        limits == *field(&tenant, "/limits"),
        "limits are the tenant's: {limits} vs {tenant}"
    );
    let usage = read(&s, token, "/api/v2/tenants/me/usage").await?;
    for (counter, limit, current) in [
        ("users", "max_users", 1),
        ("projects", "max_projects", 0),
        ("api_keys", "max_api_keys", 1),
        ("sessions_this_month", "max_sessions_per_month", 0),
    ] {
        ensure!(
            field(&usage, &format!("/{counter}/limit")) == field(&limits, &format!("/{limit}"))
                && field(&usage, &format!("/{counter}/current")) == current,
            "usage {counter}: expected {current} of {limit}: {usage} (limits {limits})"
        );
    }
    s.post("/api/v2/projects")
        .bearer(token)
        .json(&json!({ "name": "Counted" }))
        .send()
        .await?
        .expect(201)?;
    let usage = read(&s, token, "/api/v2/tenants/me/usage").await?;
    ensure!(
        field(&usage, "/projects/current") == 1,
        "a new project is counted: {usage}"
    );
    Ok(())
}

/// Bad settings answer `validation_error` naming the field, and neither the settings nor the audit trail change.
pub async fn invalid_tenant_settings_change_nothing(fw: Framework) -> CheckResult {
    let s = fw.start().await?;
    let token = &s.admin_token;
    let before = read(&s, token, SETTINGS).await?;
    for (body, bad) in [
        (json!({ "primary_color": "red" }), "primary_color"),
        (json!({ "session_timeout_minutes": 4 }), "session_timeout_minutes"),
        (json!({ "webhook_url": "ftp://example.com/hook" }), "webhook_url"),
        (
            json!({ "allowed_ip_ranges": ["10.0.0.1/8"] }),
            "allowed_ip_ranges",
        ),
        // A valid field next to an invalid one is not applied either.
        (
            json!({ "require_mfa": true, "default_stt_model": "" }),
            "default_stt_model",
        ),
    ] {
        let reply = s.patch(SETTINGS).bearer(token).json(&body).send().await?;
        expect_invalid(&reply, bad)?;
    }
    let after = read(&s, token, SETTINGS).await?;
    ensure!(
        after == before,
        "refused patches changed nothing: {before} → {after}"
    );
    ensure!(
        audit_count(&s, token, "tenant_settings").await? == 0,
        "refused patches wrote no audit entry"
    );
    // A stale version is a conflict, and changes nothing either.
    s.patch(SETTINGS)
        .bearer(token)
        .json(&json!({ "require_mfa": true, "expected_version": 99 }))
        .send()
        .await?
        .expect_error(409, "conflict")?;
    let after = read(&s, token, SETTINGS).await?;
    ensure!(
        after == before,
        "a stale patch changed nothing: {before} → {after}"
    );
    Ok(())
}

/// A viewer reads the settings but may not change them (nor may an API key, which acts as a developer); another
/// tenant's admin neither sees nor changes them, and naming the demo tenant by header is refused without data.
pub async fn tenant_settings_need_administrate_and_stay_in_their_tenant(fw: Framework) -> CheckResult {
    let s = fw.start().await?;
    let before = read(&s, &s.admin_token, SETTINGS).await?;
    let (_, viewer) = member(&s, "viewer@demo.local", &[Role::Viewer]).await?;
    ensure!(
        read(&s, &viewer, SETTINGS).await? == before,
        "a viewer reads the settings"
    );
    read(&s, &viewer, "/api/v2/tenants/me/usage").await?;
    read(&s, &viewer, "/api/v2/tenants/me/limits").await?;
    for credential in [&viewer, &s.api_key] {
        s.patch(SETTINGS)
            .bearer(credential)
            .json(&json!({ "primary_color": "#000000" }))
            .send()
            .await?
            .expect_error(403, "permission_denied")?;
    }

    let other = &s.other.admin_token;
    let theirs = read(&s, other, SETTINGS).await?;
    ensure!(
        field(&theirs, "/tenant_id") == s.other.tenant_id.as_str(),
        "the other admin reads its own settings: {theirs}"
    );
    s.patch(SETTINGS)
        .bearer(other)
        .json(&json!({ "primary_color": "#abcdef" }))
        .send()
        .await?
        .expect(200)?;
    let hop = s
        .get(SETTINGS)
        .bearer(other)
        .header("x-tenant-id", &s.tenant_id)
        .send()
        .await?;
    hop.expect_error(403, "permission_denied")?;
    ensure!(
        !String::from_utf8_lossy(&hop.body).contains(&s.tenant_id),
        "the refusal carries no data of the demo tenant: {}",
        hop.shown()
    );
    let after = read(&s, &s.admin_token, SETTINGS).await?;
    ensure!(
        after == before,
        "denied and foreign patches left the demo settings alone: {before} → {after}"
    );
    ensure!(
        audit_count(&s, &s.admin_token, "tenant_settings").await? == 0,
        "the other tenant's change is not in the demo tenant's audit trail"
    );
    Ok(())
}
