//! `/api/v2/api-keys…`: the secret is shown once, the key authenticates, revocation and rotation take effect on
//! the next request.

use crate::blackbox::support::{
    expect_audited, expect_hidden, expect_invalid, id_of, ids, member, read, request_id, total,
};
use crate::blackbox::{CheckResult, Framework, Target, field};
use avb_core::Role;
use serde_json::{Value, json};
use std::time::Duration;

const KEYS: &str = "/api/v2/api-keys";

/// Creates a key with `scopes` as `token` (201) and returns `(id, secret, answer)`.
async fn create_key(
    t: &Target,
    token: &str,
    name: &str,
    scopes: &[&str],
) -> Result<(String, String, Value), String> {
    let reply = t
        .post(KEYS)
        .bearer(token)
        .json(&json!({ "name": name, "scopes": scopes }))
        .send()
        .await?;
    reply.expect(201)?;
    let body = reply.json();
    let secret = field(&body, "/key")
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("a new key shows its secret as `key`: {body}"))?;
    Ok((id_of(&body)?, secret, body))
}

/// The status of `GET /api/v2/tenants/me` authenticated by `key`.
async fn key_status(t: &Target, key: &str) -> Result<u16, String> {
    Ok(t.get("/api/v2/tenants/me").api_key(key).send().await?.status)
}

/// What a refused call must not change about a key (usage counters move whenever the key is used).
async fn key_state(t: &Target, path: &str) -> Result<Value, String> {
    let key = read(t, &t.admin_token, path).await?;
    Ok(json!([
        field(&key, "/name"),
        field(&key, "/scopes"),
        field(&key, "/revoked_at"),
        field(&key, "/revoked_by"),
        field(&key, "/expires_at"),
        field(&key, "/key_prefix"),
    ]))
}

/// `Err` if any text of `reply` contains the secret or a `key_hash`.
fn expect_no_secret(what: &str, body: &str, secret: &str) -> CheckResult {
    ensure!(
        !body.contains(secret) && !body.contains("key_hash") && !body.contains("\"key\":"),
        "{what} must not show the secret or its hash: {body}"
    );
    Ok(())
}

/// Create (201, secret shown once as `key`, prefix matches, audited) → the key authenticates → list/get never
/// show the secret → revoke (audited) → the key is refused on the very next request; revoking twice is
/// `conflict`.
pub async fn api_key_lifecycle(fw: Framework) -> CheckResult {
    let s = fw.start().await?;
    let rid = request_id("key-create");
    let created = s
        .post(KEYS)
        .bearer(&s.admin_token)
        .header("x-request-id", &rid)
        .json(
            &json!({ "name": "ci", "description": "for CI", "scopes": ["admin", "realtime"],
                       "rate_limit_tier": "elevated" }),
        )
        .send()
        .await?;
    created.expect(201)?;
    let body = created.json();
    let id = id_of(&body)?;
    let secret = field(&body, "/key").as_str().unwrap_or_default().to_owned();
    ensure!(
        secret.starts_with("avb_")
            && secret.len() == 47
            && field(&body, "/key_prefix").as_str() == secret.get(..12)
            && field(&body, "/key_hash").is_null()
            && field(&body, "/scopes") == &json!(["realtime", "admin"])
            && field(&body, "/rate_limit_tier") == "elevated"
            && field(&body, "/revoked_at").is_null(),
        "created: {body}"
    );
    let entry = expect_audited(&s, &s.admin_token, "create", "api_key", &id, &rid).await?;
    expect_no_secret("the audit entry", &entry.to_string(), &secret)?;

    ensure!(key_status(&s, &secret).await? == 200, "the new key authenticates");
    let me = s.get("/api/v2/tenants/me").bearer(&secret).send().await?;
    me.expect(200)?;

    let path = format!("{KEYS}/{id}");
    let got = s.get(&path).bearer(&s.admin_token).send().await?;
    got.expect(200)?;
    expect_no_secret("get", &String::from_utf8_lossy(&got.body), &secret)?;
    ensure!(
        field(&got.json(), "/name") == "ci" && field(&got.json(), "/id") == id.as_str(),
        "get: {}",
        got.shown()
    );
    let listed = s.get(KEYS).bearer(&s.admin_token).send().await?;
    listed.expect(200)?;
    expect_no_secret("the list", &String::from_utf8_lossy(&listed.body), &secret)?;
    let page = listed.json();
    ensure!(
        field(&page, "/total") == 2 && ids(&page).contains(&id),
        "listed with the bootstrap key: {page}"
    );
    let usable = read(&s, &s.admin_token, &format!("{KEYS}?revoked=false")).await?;
    ensure!(field(&usable, "/total") == 2, "revoked=false: {usable}");

    let rid = request_id("key-revoke");
    let revoked = s
        .post(&format!("{path}/revoke"))
        .bearer(&s.admin_token)
        .header("x-request-id", &rid)
        .send()
        .await?;
    revoked.expect(200)?;
    ensure!(
        !field(&revoked.json(), "/revoked_at").is_null(),
        "revoked: {}",
        revoked.shown()
    );
    ensure!(
        key_status(&s, &secret).await? == 401,
        "a revoked key stops working at once"
    );
    s.get("/api/v2/tenants/me")
        .bearer(&secret)
        .send()
        .await?
        .expect_error(401, "authentication_failed")?;
    expect_audited(&s, &s.admin_token, "update", "api_key", &id, &rid).await?;
    let revoked_list = read(&s, &s.admin_token, &format!("{KEYS}?revoked=true")).await?;
    ensure!(ids(&revoked_list) == [id.clone()], "revoked=true: {revoked_list}");
    s.post(&format!("{path}/revoke"))
        .bearer(&s.admin_token)
        .send()
        .await?
        .expect_error(409, "conflict")?;
    ensure!(
        key_status(&s, &s.api_key).await? == 200,
        "other keys keep working"
    );
    Ok(())
}

/// Rotation without grace: the new key works, the old one is refused at once. With a one-second grace the old
/// key works until the grace ends, then is refused. Both rotations are audited; a grace beyond seven days is
/// `validation_error` and rotates nothing; a rotated key cannot be rotated again.
pub async fn rotating_an_api_key(fw: Framework) -> CheckResult {
    let s = fw.start().await?;
    let token = &s.admin_token;
    let (old_id, old_secret, _) = create_key(&s, token, "rotate-me", &["admin"]).await?;
    let rid = request_id("key-rotate");
    let rotated = s
        .post(&format!("{KEYS}/{old_id}/rotate"))
        .bearer(token)
        .header("x-request-id", &rid)
        .json(&json!({}))
        .send()
        .await?;
    rotated.expect(200)?;
    let body = rotated.json();
    let new_id = id_of(&body)?;
    let new_secret = field(&body, "/key").as_str().unwrap_or_default().to_owned();
    ensure!(
        new_id != old_id
            && new_secret.starts_with("avb_")
            && new_secret != old_secret
            && field(&body, "/name") == "rotate-me"
            && field(&body, "/previous/id") == old_id.as_str()
            && !field(&body, "/previous/revoked_at").is_null()
            && field(&body, "/previous/key").is_null(),
        "rotated: {body}"
    );
    ensure!(key_status(&s, &new_secret).await? == 200, "the new key works");
    ensure!(
        key_status(&s, &old_secret).await? == 401,
        "without grace the old key stops at once"
    );
    expect_audited(&s, token, "update", "api_key", &old_id, &rid).await?;
    expect_audited(&s, token, "create", "api_key", &new_id, &rid).await?;
    s.post(&format!("{KEYS}/{old_id}/rotate"))
        .bearer(token)
        .send()
        .await?
        .expect_error(409, "conflict")?;

    let (graced_id, graced_secret, _) = create_key(&s, token, "graceful", &["admin"]).await?;
    let before = key_state(&s, &format!("{KEYS}/{graced_id}")).await?;
    expect_invalid(
        &s.post(&format!("{KEYS}/{graced_id}/rotate"))
            .bearer(token)
            .json(&json!({ "grace_seconds": 604_801 }))
            .send()
            .await?,
        "grace_seconds",
    )?;
    ensure!(
        key_state(&s, &format!("{KEYS}/{graced_id}")).await? == before,
        "a refused rotation changed nothing"
    );
    let rotated = s
        .post(&format!("{KEYS}/{graced_id}/rotate"))
        .bearer(token)
        .json(&json!({ "grace_seconds": 1 }))
        .send()
        .await?;
    rotated.expect(200)?;
    let replacement = field(&rotated.json(), "/key")
        .as_str()
        .unwrap_or_default()
        .to_owned();
    ensure!(
        key_status(&s, &replacement).await? == 200,
        "the replacement works"
    );
    ensure!(
        key_status(&s, &graced_secret).await? == 200,
        "within the grace period the old key still works"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    ensure!(
        key_status(&s, &graced_secret).await? == 401,
        "after the grace period the old key is refused"
    );
    ensure!(
        key_status(&s, &replacement).await? == 200,
        "the replacement keeps working"
    );
    Ok(())
}

/// Invalid keys are `validation_error` naming the field and create nothing; a project of another tenant is
/// `not_found`.
pub async fn invalid_api_keys_change_nothing(fw: Framework) -> CheckResult {
    let s = fw.start().await?;
    let token = &s.admin_token;
    for (body, bad) in [
        (json!({ "name": "none", "scopes": [] }), "scopes"),
        (json!({ "name": "god", "scopes": ["god"] }), "scopes"),
        (json!({ "name": "", "scopes": ["admin"] }), "name"),
        (json!({ "name": "x".repeat(101), "scopes": ["admin"] }), "name"),
        (
            json!({ "name": "tier", "scopes": ["admin"], "rate_limit_tier": "infinite" }),
            "rate_limit_tier",
        ),
        (
            json!({ "name": "past", "scopes": ["admin"], "expires_at": "2001-01-01T00:00:00Z" }),
            "expires_at",
        ),
    ] {
        expect_invalid(&s.post(KEYS).bearer(token).json(&body).send().await?, bad)?;
    }
    let their_project = s
        .post("/api/v2/projects")
        .bearer(&s.other.admin_token)
        .json(&json!({ "name": "Theirs" }))
        .send()
        .await?;
    their_project.expect(201)?;
    let their_project = id_of(&their_project.json())?;
    s.post(KEYS)
        .bearer(token)
        .json(&json!({ "name": "bound", "scopes": ["admin"], "project_id": their_project }))
        .send()
        .await?
        .expect_error(404, "not_found")?;
    ensure!(
        total(&s, token, KEYS).await? == 1,
        "only the bootstrap key exists"
    );
    let usage = read(&s, token, "/api/v2/tenants/me/usage").await?;
    ensure!(
        field(&usage, "/api_keys/current") == 1,
        "no quota was used: {usage}"
    );

    // The free tier's five keys: the sixth is refused; revoking one frees the slot; rotation is never refused.
    let mut made = Vec::new();
    for i in 0..4 {
        made.push(create_key(&s, token, &format!("k{i}"), &["admin"]).await?.0);
    }
    s.post(KEYS)
        .bearer(token)
        .json(&json!({ "name": "sixth", "scopes": ["admin"] }))
        .send()
        .await?
        .expect_error(403, "tenant_limit_exceeded")?;
    ensure!(total(&s, token, KEYS).await? == 5, "the refused key was not made");
    let first = made.first().cloned().unwrap_or_default();
    s.post(&format!("{KEYS}/{first}/rotate"))
        .bearer(token)
        .json(&json!({ "grace_seconds": 60 }))
        .send()
        .await?
        .expect(200)?;
    let second = made.get(1).cloned().unwrap_or_default();
    s.post(&format!("{KEYS}/{second}/revoke"))
        .bearer(token)
        .send()
        .await?
        .expect(200)?;
    create_key(&s, token, "replacement", &["admin"]).await?;
    Ok(())
}

/// A viewer may neither create nor see keys; a developer sees but cannot revoke or rotate a key it does not
/// own; a key cannot mint a key with scopes it lacks; another tenant's admin gets `not_found` with no data,
/// and every refused call leaves the key working.
pub async fn api_keys_are_guarded_and_tenant_scoped(fw: Framework) -> CheckResult {
    let s = fw.start().await?;
    let (id, secret, _) = create_key(&s, &s.admin_token, "guarded", &["admin"]).await?;
    let path = format!("{KEYS}/{id}");
    let before = key_state(&s, &path).await?;
    let (_, viewer) = member(&s, "viewer@demo.local", &[Role::Viewer]).await?;
    let (_, developer) = member(&s, "developer@demo.local", &[Role::Developer]).await?;

    s.post(KEYS)
        .bearer(&viewer)
        .json(&json!({ "name": "nope", "scopes": ["admin"] }))
        .send()
        .await?
        .expect_error(403, "permission_denied")?;
    ensure!(total(&s, &viewer, KEYS).await? == 0, "a viewer sees no keys");
    s.get(&path)
        .bearer(&viewer)
        .send()
        .await?
        .expect_error(403, "permission_denied")?;
    ensure!(
        total(&s, &developer, KEYS).await? == 2,
        "a developer sees the tenant's keys"
    );
    for action in ["revoke", "rotate"] {
        for token in [&viewer, &developer] {
            s.post(&format!("{path}/{action}"))
                .bearer(token)
                .send()
                .await?
                .expect_error(403, "permission_denied")?;
        }
    }
    // A key with only the admin scope cannot create one with billing.
    s.post(KEYS)
        .bearer(&secret)
        .json(&json!({ "name": "escalate", "scopes": ["billing"] }))
        .send()
        .await?
        .expect_error(403, "permission_denied")?;

    let intruder = &s.other.admin_token;
    for (method, p) in [
        ("GET", path.clone()),
        ("POST", format!("{path}/revoke")),
        ("POST", format!("{path}/rotate")),
    ] {
        expect_hidden(
            &s.call(method, &p).bearer(intruder).send().await?,
            &["guarded", secret.get(..12).unwrap_or_default()],
        )?;
    }
    ensure!(
        total(&s, intruder, KEYS).await? == 0,
        "the other tenant lists no demo keys"
    );
    ensure!(
        key_state(&s, &path).await? == before,
        "refused calls changed nothing"
    );
    ensure!(key_status(&s, &secret).await? == 200, "the key still works");
    ensure!(total(&s, &s.admin_token, KEYS).await? == 2, "no key was made");
    Ok(())
}
