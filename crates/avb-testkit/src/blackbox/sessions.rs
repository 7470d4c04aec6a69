//! `/api/v2/sessions…` (REST side): opening, listing with filters, events with pagination, termination.

use crate::blackbox::support::{
    audit_count, expect_audited, expect_hidden, expect_invalid, id_of, ids, member, read, request_id, total,
    upgrade,
};
use crate::blackbox::{CheckResult, Framework, Server, Target, field};
use avb_core::{Ctx, RequestId, Role, SessionId, TenantId};
use avb_tenancy::model::SessionEventType;
use avb_tenancy::session::AppendEventRequest;
use serde_json::{Value, json};

const SESSIONS: &str = "/api/v2/sessions";

/// Opens a session as `credential` with `body` (201): the session.
async fn open(t: &Target, credential: &str, body: &Value) -> Result<Value, String> {
    let reply = t.post(SESSIONS).bearer(credential).json(body).send().await?;
    reply.expect(201)?;
    Ok(reply.json())
}

/// Appends events to a session in-process: only the realtime engine logs them, there is no REST route.
async fn seed_events(s: &Server, session: &str, kinds: &[SessionEventType]) -> CheckResult {
    let inner = s.app().inner();
    let tenant: TenantId = s.tenant_id.parse().map_err(|e| format!("{e}"))?;
    let session: SessionId = session.parse().map_err(|e| format!("{e}"))?;
    let ctx = Ctx::system(RequestId::generate(inner.ids.as_ref()), "blackbox", Some(tenant));
    for (i, kind) in kinds.iter().enumerate() {
        let event = AppendEventRequest {
            event_type: *kind,
            content: json!({ "n": i }),
            duration_ms: None,
        };
        inner
            .sessions
            .append_event(&ctx, session, event)
            .await
            .map_err(|e| format!("seeding event {i}: {e}"))?;
    }
    Ok(())
}

/// The `sequence` numbers of an events page.
fn sequences(page: &Value) -> Vec<u64> {
    field(page, "/items")
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|e| field(e, "/sequence").as_u64())
                .collect()
        })
        .unwrap_or_default()
}

/// Open (by a user and by an API key, audited) → list with status, project, key and date filters → get →
/// events paged in sequence order with `after_sequence` and `type` → terminate (audited; twice is `conflict`).
pub async fn session_rest_round_trip(fw: Framework) -> CheckResult {
    let s = fw.start().await?;
    let token = &s.admin_token;
    let project = s
        .post("/api/v2/projects")
        .bearer(token)
        .json(&json!({ "name": "Voice" }))
        .send()
        .await?;
    project.expect(201)?;
    let project = id_of(&project.json())?;

    let rid = request_id("session");
    let first = s
        .post(SESSIONS)
        .bearer(token)
        .header("x-request-id", &rid)
        .header("user-agent", "blackbox/1")
        .json(&json!({ "project_id": project, "config": { "voice": "am_onyx" } }))
        .send()
        .await?;
    first.expect(201)?;
    let first = first.json();
    let first_id = id_of(&first)?;
    ensure!(
        field(&first, "/status") == "created"
            && field(&first, "/project_id") == project.as_str()
            && field(&first, "/tenant_id") == s.tenant_id.as_str()
            && field(&first, "/config/voice") == "am_onyx"
            && field(&first, "/user_agent") == "blackbox/1"
            && !field(&first, "/user_id").is_null(),
        "opened by a user: {first}"
    );
    expect_audited(&s, token, "create", "session", &first_id, &rid).await?;
    let second = open(&s, &s.api_key, &json!({})).await?;
    let second_id = id_of(&second)?;
    ensure!(
        !field(&second, "/api_key_id").is_null() && field(&second, "/project_id").is_null(),
        "opened by an API key: {second}"
    );
    let key_id = field(&second, "/api_key_id")
        .as_str()
        .unwrap_or_default()
        .to_owned();

    let all = read(&s, token, SESSIONS).await?;
    ensure!(
        field(&all, "/total") == 2 && ids(&all) == [second_id.clone(), first_id.clone()],
        "newest first: {all}"
    );
    for (query, expected) in [
        (
            "status=created".to_owned(),
            vec![second_id.clone(), first_id.clone()],
        ),
        ("status=active".to_owned(), vec![]),
        (format!("project_id={project}"), vec![first_id.clone()]),
        (format!("api_key_id={key_id}"), vec![second_id.clone()]),
        ("created_from=2999-01-01T00:00:00Z".to_owned(), vec![]),
        ("created_to=2000-01-01T00:00:00Z".to_owned(), vec![]),
        (
            "from=2000-01-01T00:00:00Z&to=2999-01-01T00:00:00Z".to_owned(),
            vec![second_id.clone(), first_id.clone()],
        ),
    ] {
        let page = read(&s, token, &format!("{SESSIONS}?{query}")).await?;
        ensure!(
            ids(&page) == expected,
            "{query}: expected {expected:?}, got {page}"
        );
    }
    // `created_to` is exclusive, `created_from` inclusive.
    let created_at = field(&first, "/created_at").as_str().unwrap_or_default();
    let up_to = read(&s, token, &format!("{SESSIONS}?created_to={created_at}")).await?;
    ensure!(
        !ids(&up_to).contains(&first_id),
        "created_to excludes its instant: {up_to}"
    );
    let since = read(&s, token, &format!("{SESSIONS}?created_from={created_at}")).await?;
    ensure!(
        ids(&since).contains(&first_id),
        "created_from includes its instant: {since}"
    );
    let paged = read(&s, token, &format!("{SESSIONS}?limit=1&offset=1")).await?;
    ensure!(
        ids(&paged) == [first_id.clone()] && field(&paged, "/total") == 2,
        "pagination: {paged}"
    );
    let got = read(&s, token, &format!("{SESSIONS}/{first_id}")).await?;
    ensure!(got == first, "get answers the session: {got}");

    use SessionEventType::{Response, Transcript};
    seed_events(
        &s,
        &second_id,
        &[Transcript, Response, Transcript, Response, Transcript],
    )
    .await?;
    let events = format!("{SESSIONS}/{second_id}/events");
    let page = read(&s, token, &format!("{events}?limit=2")).await?;
    ensure!(
        sequences(&page) == [1, 2] && field(&page, "/total") == 5 && field(&page, "/limit") == 2,
        "first page: {page}"
    );
    let page = read(&s, token, &format!("{events}?limit=2&offset=2")).await?;
    ensure!(sequences(&page) == [3, 4], "second page: {page}");
    let page = read(&s, token, &format!("{events}?after_sequence=3")).await?;
    ensure!(
        sequences(&page) == [4, 5] && field(&page, "/total") == 2,
        "after_sequence: {page}"
    );
    let page = read(&s, token, &format!("{events}?type=response")).await?;
    ensure!(sequences(&page) == [2, 4], "type filter: {page}");
    let none = read(&s, token, &format!("{SESSIONS}/{first_id}/events")).await?;
    ensure!(field(&none, "/total") == 0, "events are per session: {none}");

    let rid = request_id("terminate");
    let ended = s
        .post(&format!("{SESSIONS}/{first_id}/terminate"))
        .bearer(token)
        .header("x-request-id", &rid)
        .send()
        .await?;
    ended.expect(200)?;
    let ended = ended.json();
    ensure!(
        field(&ended, "/status") == "terminated" && !field(&ended, "/ended_at").is_null(),
        "terminated: {ended}"
    );
    expect_audited(&s, token, "update", "session", &first_id, &rid).await?;
    s.post(&format!("{SESSIONS}/{first_id}/terminate"))
        .bearer(token)
        .send()
        .await?
        .expect_error(409, "conflict")?;
    let terminated = read(&s, token, &format!("{SESSIONS}?status=terminated")).await?;
    ensure!(
        ids(&terminated) == [first_id.clone()],
        "status filter: {terminated}"
    );
    let usage = read(&s, token, "/api/v2/tenants/me/usage").await?;
    ensure!(
        field(&usage, "/sessions_this_month/current") == 2,
        "sessions count against the monthly quota: {usage}"
    );
    Ok(())
}

/// Bad configurations, filters and pages are `validation_error`; an unknown project is `not_found`; nothing is
/// opened, counted or audited.
pub async fn invalid_sessions_change_nothing(fw: Framework) -> CheckResult {
    let s = fw.start().await?;
    let token = &s.admin_token;
    for body in [json!({ "config": "loud" }), json!({ "config": [1, 2] })] {
        expect_invalid(
            &s.post(SESSIONS).bearer(token).json(&body).send().await?,
            "config",
        )?;
    }
    expect_invalid(
        &s.post(SESSIONS)
            .bearer(token)
            .json(&json!({ "config": { "blob": "x".repeat(70_000) } }))
            .send()
            .await?,
        "config",
    )?;
    s.post(SESSIONS)
        .bearer(token)
        .json(&json!({ "project_id": "00000000-0000-4000-8000-000000000000" }))
        .send()
        .await?
        .expect_error(404, "not_found")?;
    for query in [
        "status=sleeping",
        "limit=0",
        "offset=-1",
        "project_id=not-a-uuid",
        "created_from=yesterday",
        "created_from=2030-01-01T00:00:00Z&created_to=2020-01-01T00:00:00Z",
    ] {
        s.get(&format!("{SESSIONS}?{query}"))
            .bearer(token)
            .send()
            .await?
            .expect_error(400, "validation_error")?;
    }
    ensure!(total(&s, token, SESSIONS).await? == 0, "nothing was opened");
    let usage = read(&s, token, "/api/v2/tenants/me/usage").await?;
    ensure!(
        field(&usage, "/sessions_this_month/current") == 0,
        "nothing was counted: {usage}"
    );
    ensure!(
        audit_count(&s, token, "session").await? == 0,
        "nothing was audited"
    );
    let opened = open(&s, token, &json!({})).await?;
    let id = id_of(&opened)?;
    s.get(&format!("{SESSIONS}/{id}/events?type=shout"))
        .bearer(token)
        .send()
        .await?
        .expect_error(400, "validation_error")?;
    // Past the monthly quota (set to 2 by the sysadmin) a session is refused and not counted.
    s.patch(&format!("/api/v2/admin/tenants/{}", s.tenant_id))
        .bearer(&s.sysadmin_token)
        .json(&json!({ "max_sessions_per_month": 2 }))
        .send()
        .await?
        .expect(200)?;
    open(&s, token, &json!({})).await?;
    s.post(SESSIONS)
        .bearer(token)
        .json(&json!({}))
        .send()
        .await?
        .expect_error(403, "tenant_limit_exceeded")?;
    ensure!(
        total(&s, token, SESSIONS).await? == 2,
        "the refused session was not opened"
    );
    let usage = read(&s, token, "/api/v2/tenants/me/usage").await?;
    ensure!(
        field(&usage, "/sessions_this_month") == &json!({ "current": 2, "limit": 2 }),
        "the refused session was not counted: {usage}"
    );
    Ok(())
}

/// A viewer lists and reads sessions but may neither open nor terminate one; an API key needs the `realtime`
/// scope; another tenant's admin gets `not_found` with no data, and the session is untouched.
pub async fn sessions_are_guarded_and_tenant_scoped(fw: Framework) -> CheckResult {
    let s = fw.start().await?;
    let token = &s.admin_token;
    let session = open(&s, token, &json!({ "config": { "secret_word": "pineapple" } })).await?;
    let id = id_of(&session)?;
    let path = format!("{SESSIONS}/{id}");
    let (_, viewer) = member(&s, "viewer@demo.local", &[Role::Viewer]).await?;
    s.post(SESSIONS)
        .bearer(&viewer)
        .json(&json!({}))
        .send()
        .await?
        .expect_error(403, "permission_denied")?;
    ensure!(
        total(&s, &viewer, SESSIONS).await? == 1,
        "a viewer lists sessions"
    );
    read(&s, &viewer, &path).await?;
    read(&s, &viewer, &format!("{path}/events")).await?;
    s.post(&format!("{path}/terminate"))
        .bearer(&viewer)
        .send()
        .await?
        .expect_error(403, "permission_denied")?;

    let billing = s
        .post("/api/v2/api-keys")
        .bearer(token)
        .json(&json!({ "name": "billing only", "scopes": ["billing"] }))
        .send()
        .await?;
    billing.expect(201)?;
    let billing = field(&billing.json(), "/key")
        .as_str()
        .unwrap_or_default()
        .to_owned();
    s.post(SESSIONS)
        .bearer(&billing)
        .json(&json!({}))
        .send()
        .await?
        .expect_error(403, "insufficient_scope")?;

    // A key bound to a project opens sessions only there (and in it by default).
    upgrade(&s).await?;
    let mut projects = Vec::new();
    for name in ["Bound", "Elsewhere"] {
        let made = s
            .post("/api/v2/projects")
            .bearer(token)
            .json(&json!({ "name": name }))
            .send()
            .await?;
        made.expect(201)?;
        projects.push(id_of(&made.json())?);
    }
    let (bound, elsewhere) = match projects.as_slice() {
        [a, b] => (a.clone(), b.clone()),
        _ => return Err("two projects".into()),
    };
    let key = s
        .post("/api/v2/api-keys")
        .bearer(token)
        .json(&json!({ "name": "bound", "scopes": ["realtime"], "project_id": bound }))
        .send()
        .await?;
    key.expect(201)?;
    let key = field(&key.json(), "/key").as_str().unwrap_or_default().to_owned();
    s.post(SESSIONS)
        .bearer(&key)
        .json(&json!({ "project_id": elsewhere }))
        .send()
        .await?
        .expect_error(403, "permission_denied")?;
    let in_bound = open(&s, &key, &json!({})).await?;
    ensure!(
        field(&in_bound, "/project_id") == bound.as_str(),
        "a bound key opens in its project: {in_bound}"
    );
    let in_bound_id = id_of(&in_bound)?;
    s.post(&format!("{SESSIONS}/{in_bound_id}/terminate"))
        .bearer(token)
        .send()
        .await?
        .expect(200)?;

    let intruder = &s.other.admin_token;
    for (method, p) in [
        ("GET", path.clone()),
        ("GET", format!("{path}/events")),
        ("POST", format!("{path}/terminate")),
    ] {
        expect_hidden(
            &s.call(method, &p).bearer(intruder).send().await?,
            &["pineapple", "secret_word"],
        )?;
    }
    ensure!(
        total(&s, intruder, SESSIONS).await? == 0,
        "the other tenant lists nothing"
    );
    let after = read(&s, token, &path).await?;
    ensure!(after == session, "refused calls changed nothing: {after}");
    ensure!(
        total(&s, token, SESSIONS).await? == 2,
        "refused opens made nothing"
    );
    Ok(())
}
