//! `GET /api/v2/audit`: the tenant's trail, filtered by actor, action, resource and date, readable only with
//! `tenant#view_audit`.

use crate::blackbox::support::{audit_items, id_of, member, read, request_id};
use crate::blackbox::{CheckResult, Framework, field};
use avb_core::Role;
use serde_json::{Value, json};

const AUDIT: &str = "/api/v2/audit";

/// The entry of `entries` written by request `rid`.
fn by_request<'a>(entries: &'a [Value], rid: &str) -> Option<&'a Value> {
    entries.iter().find(|e| field(e, "/request_id") == rid)
}

/// An RFC 3339 UTC time (`…:05Z`, `…:05.25Z`, `…:05.123456789Z`) as text that sorts in time order.
fn sortable(timestamp: &str) -> String {
    let plain = timestamp.trim_end_matches('Z');
    let (seconds, fraction) = plain.split_once('.').unwrap_or((plain, ""));
    format!("{seconds}.{fraction:0<9}")
}

/// `Err` unless every entry has `value` at `pointer`.
fn all_have(entries: &[Value], pointer: &str, value: &str, what: &str) -> CheckResult {
    ensure!(
        entries.iter().all(|e| field(e, pointer) == value),
        "{what}: every entry should have {pointer} = {value}: {entries:?}"
    );
    Ok(())
}

/// Writes by the admin and by an API key show up with their actor, action, resource and request id, and each
/// filter (actor, action, resource type and id, from inclusive, to exclusive, pages) narrows exactly; bad
/// filters are `validation_error`.
pub async fn audit_queries_filter(fw: Framework) -> CheckResult {
    let s = fw.start().await?;
    let token = &s.admin_token;
    let admin_id = id_of(&read(&s, token, "/api/v2/users/me").await?)?;
    let keys = read(&s, token, "/api/v2/api-keys").await?;
    let key_id = field(&keys, "/items/0/id")
        .as_str()
        .unwrap_or_default()
        .to_owned();

    let rid_create = request_id("audit-create");
    let project = s
        .post("/api/v2/projects")
        .bearer(token)
        .header("x-request-id", &rid_create)
        .json(&json!({ "name": "Audited" }))
        .send()
        .await?;
    project.expect(201)?;
    let project = id_of(&project.json())?;
    let rid_key = request_id("audit-key");
    s.patch(&format!("/api/v2/projects/{project}"))
        .bearer(&s.api_key)
        .header("x-request-id", &rid_key)
        .json(&json!({ "description": "changed by a key" }))
        .send()
        .await?
        .expect(200)?;
    let rid_settings = request_id("audit-settings");
    s.patch("/api/v2/tenants/me/settings")
        .bearer(token)
        .header("x-request-id", &rid_settings)
        .json(&json!({ "require_mfa": true }))
        .send()
        .await?
        .expect(200)?;

    let everything = audit_items(&s, token, "limit=100").await?;
    all_have(
        &everything,
        "/tenant_id",
        &s.tenant_id,
        "only the caller's tenant",
    )?;
    let created = by_request(&everything, &rid_create)
        .ok_or_else(|| format!("the project creation is audited: {everything:?}"))?;
    ensure!(
        field(created, "/action") == "create"
            && field(created, "/resource_type") == "project"
            && field(created, "/resource_id") == project.as_str()
            && field(created, "/actor_id") == admin_id.as_str()
            && field(created, "/actor_email") == "admin@demo.local"
            && field(created, "/new_values/name") == "Audited",
        "the creation entry: {created}"
    );
    let by_key = by_request(&everything, &rid_key)
        .ok_or_else(|| format!("the key's change is audited: {everything:?}"))?;
    ensure!(
        field(by_key, "/action") == "update" && field(by_key, "/actor_id") == key_id.as_str(),
        "the key's entry names the key as actor: {by_key}"
    );
    let stamps: Vec<String> = everything
        .iter()
        .filter_map(|e| field(e, "/timestamp").as_str().map(sortable))
        .collect();
    ensure!(
        stamps.windows(2).all(|w| w.first() >= w.get(1)),
        "newest first: {stamps:?}"
    );

    let mine = audit_items(&s, token, &format!("actor_id={admin_id}&limit=100")).await?;
    all_have(&mine, "/actor_id", &admin_id, "actor_id filter")?;
    ensure!(
        by_request(&mine, &rid_create).is_some()
            && by_request(&mine, &rid_settings).is_some()
            && by_request(&mine, &rid_key).is_none(),
        "actor_id filter: {mine:?}"
    );
    let keyed = audit_items(&s, token, &format!("actor={key_id}&limit=100")).await?;
    all_have(&keyed, "/actor_id", &key_id, "actor filter")?;
    ensure!(by_request(&keyed, &rid_key).is_some(), "actor filter: {keyed:?}");
    let updates = audit_items(&s, token, "action=update&limit=100").await?;
    all_have(&updates, "/action", "update", "action filter")?;
    ensure!(
        by_request(&updates, &rid_key).is_some() && by_request(&updates, &rid_create).is_none(),
        "action filter: {updates:?}"
    );
    let settings = audit_items(&s, token, "action=settings_change").await?;
    ensure!(
        settings.len() == 1 && by_request(&settings, &rid_settings).is_some(),
        "settings_change: {settings:?}"
    );
    let projects = audit_items(&s, token, "resource_type=project&limit=100").await?;
    all_have(&projects, "/resource_type", "project", "resource_type filter")?;
    ensure!(projects.len() == 2, "two project entries: {projects:?}");
    let one = audit_items(&s, token, &format!("resource_id={project}")).await?;
    all_have(&one, "/resource_id", &project, "resource_id filter")?;
    ensure!(one.len() == 2, "resource_id filter: {one:?}");

    let at = field(by_key, "/timestamp").as_str().unwrap_or_default();
    let since = audit_items(&s, token, &format!("from={at}&limit=100")).await?;
    ensure!(
        by_request(&since, &rid_key).is_some() && by_request(&since, &rid_create).is_none(),
        "from is inclusive and drops earlier entries: {since:?}"
    );
    let before = audit_items(&s, token, &format!("to={at}&limit=100")).await?;
    ensure!(
        by_request(&before, &rid_key).is_none() && by_request(&before, &rid_create).is_some(),
        "to is exclusive and keeps earlier entries: {before:?}"
    );
    let future = audit_items(&s, token, "from=2999-01-01T00:00:00Z").await?;
    ensure!(future.is_empty(), "nothing in the future: {future:?}");
    let page = read(&s, token, &format!("{AUDIT}?limit=1&offset=1")).await?;
    ensure!(
        field(&page, "/items").as_array().map(Vec::len) == Some(1)
            && field(&page, "/total").as_u64() == Some(everything.len() as u64)
            && field(&page, "/items/0") == everything.get(1).unwrap_or(&Value::Null),
        "pages of the same trail: {page}"
    );

    for bad in [
        "action=explode",
        "actor_id=not-a-uuid",
        "from=yesterday",
        "from=2030-01-01T00:00:00Z&to=2020-01-01T00:00:00Z",
        &format!("resource_type={}", "r".repeat(51)),
        "limit=1000",
    ] {
        s.get(&format!("{AUDIT}?{bad}"))
            .bearer(token)
            .send()
            .await?
            .expect_error(400, "validation_error")?;
    }
    Ok(())
}

/// Roles without `view_audit` (developer, viewer) and API keys are refused with `permission_denied`; another
/// tenant's admin never sees the demo tenant's entries.
pub async fn audit_needs_view_audit_and_stays_in_its_tenant(fw: Framework) -> CheckResult {
    let s = fw.start().await?;
    let project = s
        .post("/api/v2/projects")
        .bearer(&s.admin_token)
        .json(&json!({ "name": "Private" }))
        .send()
        .await?;
    project.expect(201)?;
    let project = id_of(&project.json())?;
    let (_, developer) = member(&s, "dev@demo.local", &[Role::Developer]).await?;
    let (_, viewer) = member(&s, "viewer@demo.local", &[Role::Viewer]).await?;
    for credential in [&developer, &viewer, &s.api_key] {
        let reply = s.get(AUDIT).bearer(credential).send().await?;
        reply.expect_error(403, "permission_denied")?;
        ensure!(
            !String::from_utf8_lossy(&reply.body).contains(&project),
            "a refusal carries no entries: {}",
            reply.shown()
        );
    }
    let theirs = audit_items(&s, &s.other.admin_token, &format!("resource_id={project}")).await?;
    ensure!(
        theirs.is_empty(),
        "the other tenant sees no demo entry: {theirs:?}"
    );
    let all_theirs = audit_items(&s, &s.other.admin_token, "limit=100").await?;
    all_have(
        &all_theirs,
        "/tenant_id",
        &s.other.tenant_id,
        "the other tenant's trail",
    )?;
    // Naming the demo tenant by header does not help.
    s.get(AUDIT)
        .bearer(&s.other.admin_token)
        .header("x-tenant-id", &s.tenant_id)
        .send()
        .await?
        .expect_error(403, "permission_denied")?;
    let ours = audit_items(&s, &s.admin_token, &format!("resource_id={project}")).await?;
    ensure!(ours.len() == 1, "the admin sees the entry: {ours:?}");
    Ok(())
}
