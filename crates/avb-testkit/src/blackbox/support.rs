//! Helpers the resource checks share: ids out of bodies, members with a given role and their tokens, the
//! validation envelope naming a field, and the audit entry a write must leave.

use crate::blackbox::{Reply, Target, field};
use avb_core::Role;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicU64, Ordering};

/// The `id` of a record.
pub(crate) fn id_of(record: &Value) -> Result<String, String> {
    field(record, "/id")
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("record without an id: {record}"))
}

/// A request id unique in this process, sent as `X-Request-ID` with a write so its audit entry can be found.
pub(crate) fn request_id(what: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!("bb-{what}-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// `Err` unless the reply is 400 `validation_error` whose `details.fields` names `name` (exactly, or as the
/// prefix of a nested path such as `variables.--x` or `scopes[0]`).
pub(crate) fn expect_invalid(reply: &Reply, name: &str) -> Result<(), String> {
    reply.expect_error(400, "validation_error")?;
    let body = reply.json();
    let named = field(&body, "/details/fields").as_array().is_some_and(|fields| {
        fields.iter().any(|f| {
            field(f, "/field").as_str().is_some_and(|n| {
                n == name || n.starts_with(&format!("{name}.")) || n.starts_with(&format!("{name}["))
            })
        })
    });
    ensure!(
        named,
        "{}: the validation error should name {name:?}: {}",
        reply.what,
        reply.shown()
    );
    Ok(())
}

/// A member of the demo tenant invited by its admin with `roles`, signed in once: `(user id, token)`.
pub(crate) async fn member(t: &Target, email: &str, roles: &[Role]) -> Result<(String, String), String> {
    let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
    let invited = t
        .post("/api/v2/users")
        .bearer(&t.admin_token)
        .json(&json!({ "email": email, "first_name": "Black", "last_name": "Box", "roles": names }))
        .send()
        .await?;
    invited.expect(201)?;
    let id = id_of(&invited.json())?;
    let token = t.token_for(email, Some(&t.tenant_id), roles)?;
    let me = t.get("/api/v2/users/me").bearer(&token).send().await?;
    me.expect(200)?;
    ensure!(
        field(&me.json(), "/id") == id.as_str(),
        "the invited user's first sign-in links to the invitation: {}",
        me.shown()
    );
    Ok((id, token))
}

/// The audit entries (`items`) that `GET /api/v2/audit?{query}` answers `token`.
pub(crate) async fn audit_items(t: &Target, token: &str, query: &str) -> Result<Vec<Value>, String> {
    let reply = t
        .get(&format!("/api/v2/audit?{query}"))
        .bearer(token)
        .send()
        .await?;
    reply.expect(200)?;
    field(&reply.json(), "/items")
        .as_array()
        .cloned()
        .ok_or_else(|| format!("audit page without items: {}", reply.shown()))
}

/// `Err` unless the tenant's audit trail (read with `token`) has an entry for `resource_type`/`resource_id` with
/// `action`, written by the request `request_id`.
pub(crate) async fn expect_audited(
    t: &Target,
    token: &str,
    action: &str,
    resource_type: &str,
    resource_id: &str,
    request_id: &str,
) -> Result<Value, String> {
    let query = format!("resource_type={resource_type}&resource_id={resource_id}&limit=100");
    let entries = audit_items(t, token, &query).await?;
    entries
        .iter()
        .find(|e| field(e, "/request_id") == request_id && field(e, "/action") == action)
        .cloned()
        .ok_or_else(|| {
            format!(
                "no {action:?} audit entry for {resource_type} {resource_id} from request {request_id}; \
                 entries: {entries:?}"
            )
        })
}

/// How many audit entries of `resource_type` the tenant's trail holds (read with `token`).
pub(crate) async fn audit_count(t: &Target, token: &str, resource_type: &str) -> Result<u64, String> {
    let reply = t
        .get(&format!("/api/v2/audit?resource_type={resource_type}&limit=1"))
        .bearer(token)
        .send()
        .await?;
    reply.expect(200)?;
    field(&reply.json(), "/total")
        .as_u64()
        .ok_or_else(|| format!("audit page without a total: {}", reply.shown()))
}

/// `GET path` with `token`, expecting 200: the body.
pub(crate) async fn read(t: &Target, token: &str, path: &str) -> Result<Value, String> {
    let reply = t.get(path).bearer(token).send().await?;
    reply.expect(200)?;
    Ok(reply.json())
}

/// The `total` of a page at `path`.
pub(crate) async fn total(t: &Target, token: &str, path: &str) -> Result<u64, String> {
    let page = read(t, token, path).await?;
    field(&page, "/total")
        .as_u64()
        .ok_or_else(|| format!("{path}: no total in {page}"))
}

/// The ids of a page's `items`.
pub(crate) fn ids(page: &Value) -> Vec<String> {
    field(page, "/items")
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|i| field(i, "/id").as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// `Err` unless `reply` is `not_found` and its body carries nothing of `secret_bits` (names and contents of the
/// record; the id the caller sent may be echoed back).
pub(crate) fn expect_hidden(reply: &Reply, secret_bits: &[&str]) -> Result<(), String> {
    reply.expect_error(404, "not_found")?;
    let body = String::from_utf8_lossy(&reply.body);
    for bit in secret_bits {
        ensure!(
            !body.contains(bit),
            "{}: a not_found answer leaks {bit:?}: {body}",
            reply.what
        );
    }
    Ok(())
}

/// Raises the demo tenant to the `pro` tier (50 users, 20 projects, 100 keys) so a check can add members and
/// records beyond the free tier's limits.
pub(crate) async fn upgrade(t: &Target) -> Result<(), String> {
    t.patch(&format!("/api/v2/admin/tenants/{}", t.tenant_id))
        .bearer(&t.sysadmin_token)
        .json(&json!({ "tier": "pro" }))
        .send()
        .await?
        .expect(200)?;
    Ok(())
}
