//! `/api/v2/users…`: the caller's profile and the tenant's members — invitations, roles (which take effect on
//! the member's next request), deactivation.

use crate::blackbox::support::{
    expect_audited, expect_hidden, expect_invalid, id_of, ids, member, read, request_id, total, upgrade,
};
use crate::blackbox::{CheckResult, Framework, Target, field};
use avb_core::Role;
use serde_json::{Value, json};

const USERS: &str = "/api/v2/users";

/// `POST /api/v2/projects` with `token`: the status.
async fn try_create_project(t: &Target, token: &str, name: &str) -> Result<u16, String> {
    Ok(t.post("/api/v2/projects")
        .bearer(token)
        .json(&json!({ "name": name }))
        .send()
        .await?
        .status)
}

/// Me (read and patched, audited) → invite (201, audited) → get → list with filters.
pub async fn profile_and_members_round_trip(fw: Framework) -> CheckResult {
    let s = fw.start().await?;
    let token = &s.admin_token;
    let me = read(&s, token, "/api/v2/users/me").await?;
    let my_id = id_of(&me)?;
    ensure!(
        field(&me, "/email") == "admin@demo.local" && field(&me, "/tenant_id") == s.tenant_id.as_str(),
        "me: {me}"
    );
    let rid = request_id("me");
    let patched = s
        .patch("/api/v2/users/me")
        .bearer(token)
        .header("x-request-id", &rid)
        .json(&json!({ "timezone": "Europe/Paris", "locale": "fr", "preferences": { "density": "compact" } }))
        .send()
        .await?;
    patched.expect(200)?;
    let patched = patched.json();
    ensure!(
        field(&patched, "/profile/timezone") == "Europe/Paris"
            && field(&patched, "/profile/locale") == "fr"
            && field(&patched, "/preferences/density") == "compact"
            && field(&patched, "/email") == "admin@demo.local",
        "patched me: {patched}"
    );
    ensure!(
        read(&s, token, "/api/v2/users/me").await? == patched,
        "a re-read shows the change"
    );
    expect_audited(&s, token, "update", "user", &my_id, &rid).await?;

    let rid = request_id("invite");
    let invited = s
        .post(USERS)
        .bearer(token)
        .header("x-request-id", &rid)
        .json(&json!({ "email": "New.Person@Demo.Local", "first_name": "New", "roles": ["operator"] }))
        .send()
        .await?;
    invited.expect(201)?;
    let invited = invited.json();
    let id = id_of(&invited)?;
    ensure!(
        field(&invited, "/email") == "new.person@demo.local"
            && field(&invited, "/roles") == &json!(["operator"])
            && field(&invited, "/tenant_id") == s.tenant_id.as_str()
            && field(&invited, "/is_active") == true,
        "invited: {invited}"
    );
    expect_audited(&s, token, "create", "user", &id, &rid).await?;
    let got = read(&s, token, &format!("{USERS}/{id}")).await?;
    ensure!(got == invited, "get answers the invitation: {got} vs {invited}");

    let all = read(&s, token, USERS).await?;
    ensure!(
        field(&all, "/total") == 2 && ids(&all).contains(&id) && ids(&all).contains(&my_id),
        "list: {all}"
    );
    let operators = read(&s, token, &format!("{USERS}?role=operator")).await?;
    ensure!(ids(&operators) == [id.clone()], "role filter: {operators}");
    let searched = read(&s, token, &format!("{USERS}?search=new.person")).await?;
    ensure!(ids(&searched) == [id.clone()], "search: {searched}");
    let inactive = read(&s, token, &format!("{USERS}?is_active=false")).await?;
    ensure!(
        field(&inactive, "/total") == 0,
        "no inactive users yet: {inactive}"
    );
    let paged = read(&s, token, &format!("{USERS}?limit=1&offset=1")).await?;
    ensure!(
        field(&paged, "/total") == 2 && ids(&paged).len() == 1,
        "pagination: {paged}"
    );
    // An invited e-mail cannot be invited again.
    s.post(USERS)
        .bearer(token)
        .json(&json!({ "email": "new.person@demo.local", "roles": ["viewer"] }))
        .send()
        .await?
        .expect_error(409, "conflict")?;
    Ok(())
}

/// A viewer cannot create a project; made a developer (audited as `permission_change`), the same token can at
/// once; made a viewer again, it cannot; deactivated (audited), the token stops working; reactivated, it works.
pub async fn a_role_change_takes_effect_at_once(fw: Framework) -> CheckResult {
    let s = fw.start().await?;
    upgrade(&s).await?;
    let (id, token) = member(&s, "promoted@demo.local", &[Role::Viewer]).await?;
    ensure!(
        try_create_project(&s, &token, "Viewer's").await? == 403,
        "a viewer cannot create projects"
    );
    read(&s, &token, "/api/v2/projects").await?;
    let roles_path = format!("{USERS}/{id}/roles");

    let rid = request_id("roles");
    let changed = s
        .put(&roles_path)
        .bearer(&s.admin_token)
        .header("x-request-id", &rid)
        .json(&json!({ "roles": ["developer"] }))
        .send()
        .await?;
    changed.expect(200)?;
    ensure!(
        field(&changed.json(), "/roles") == &json!(["developer"]),
        "roles replaced: {}",
        changed.shown()
    );
    let entry = expect_audited(&s, &s.admin_token, "permission_change", "user", &id, &rid).await?;
    ensure!(
        field(&entry, "/old_values/roles") == &json!(["viewer"])
            && field(&entry, "/new_values/roles") == &json!(["developer"]),
        "the audit entry records both role sets: {entry}"
    );
    ensure!(
        try_create_project(&s, &token, "Developer's").await? == 201,
        "the developer role applies to the next request"
    );
    let me = read(&s, &token, "/api/v2/users/me").await?;
    ensure!(field(&me, "/roles") == &json!(["developer"]), "me shows it: {me}");

    s.put(&roles_path)
        .bearer(&s.admin_token)
        .json(&json!({ "roles": ["viewer"] }))
        .send()
        .await?
        .expect(200)?;
    ensure!(
        try_create_project(&s, &token, "Viewer again").await? == 403,
        "taking the role away applies at once"
    );

    let rid = request_id("deactivate");
    let deactivated = s
        .post(&format!("{USERS}/{id}/deactivate"))
        .bearer(&s.admin_token)
        .header("x-request-id", &rid)
        .send()
        .await?;
    deactivated.expect(200)?;
    ensure!(
        field(&deactivated.json(), "/is_active") == false,
        "deactivated: {}",
        deactivated.shown()
    );
    expect_audited(&s, &s.admin_token, "update", "user", &id, &rid).await?;
    s.get("/api/v2/users/me")
        .bearer(&token)
        .send()
        .await?
        .expect_error(401, "authentication_failed")?;
    let inactive = read(&s, &s.admin_token, &format!("{USERS}?is_active=false")).await?;
    ensure!(ids(&inactive) == [id.clone()], "listed as inactive: {inactive}");
    s.post(&format!("{USERS}/{id}/reactivate"))
        .bearer(&s.admin_token)
        .send()
        .await?
        .expect(200)?;
    read(&s, &token, "/api/v2/users/me").await?;
    ensure!(
        try_create_project(&s, &token, "Reactivated viewer").await? == 403,
        "reactivation restores the viewer role, not more"
    );
    Ok(())
}

/// Invalid invitations, profiles and role sets are `validation_error` naming the field and change nothing; the
/// last admin cannot lose the role or be deactivated, and nobody deactivates themself (`conflict`).
pub async fn invalid_user_changes_change_nothing(fw: Framework) -> CheckResult {
    let s = fw.start().await?;
    let token = &s.admin_token;
    for (body, bad) in [
        (json!({ "email": "not-an-email", "roles": ["viewer"] }), "email"),
        (json!({ "email": "a@demo.local", "roles": [] }), "roles"),
        (json!({ "email": "b@demo.local", "roles": ["wizard"] }), "roles"),
        (
            json!({ "email": "c@demo.local", "roles": ["viewer"], "first_name": "x".repeat(151) }),
            "first_name",
        ),
    ] {
        expect_invalid(&s.post(USERS).bearer(token).json(&body).send().await?, bad)?;
    }
    // Only a cross-tenant principal grants sysadmin.
    s.post(USERS)
        .bearer(token)
        .json(&json!({ "email": "root@demo.local", "roles": ["sysadmin"] }))
        .send()
        .await?
        .expect_error(403, "permission_denied")?;
    ensure!(
        total(&s, token, USERS).await? == 1,
        "no refused invitation made a user"
    );

    let me_before = read(&s, token, "/api/v2/users/me").await?;
    let my_id = id_of(&me_before)?;
    for (body, bad) in [
        (json!({ "locale": "x" }), "locale"),
        (json!({ "timezone": "" }), "timezone"),
        (json!({ "avatar_url": "javascript:alert(1)" }), "avatar_url"),
        (
            json!({ "first_name": "Kept", "muted_categories": ["Not A Category"] }),
            "muted_categories",
        ),
    ] {
        let reply = s
            .patch("/api/v2/users/me")
            .bearer(token)
            .json(&body)
            .send()
            .await?;
        expect_invalid(&reply, bad)?;
    }
    let me_after = read(&s, token, "/api/v2/users/me").await?;
    ensure!(
        me_after == me_before,
        "refused profile changes changed nothing: {me_after}"
    );

    let (id, _) = member(&s, "kept@demo.local", &[Role::Operator]).await?;
    let member_before = read(&s, token, &format!("{USERS}/{id}")).await?;
    for body in [
        json!({ "roles": [] }),
        json!({ "roles": ["operator", "overlord"] }),
        json!({}),
    ] {
        let reply = s
            .put(&format!("{USERS}/{id}/roles"))
            .bearer(token)
            .json(&body)
            .send()
            .await?;
        reply.expect_error(400, "validation_error")?;
    }
    ensure!(
        read(&s, token, &format!("{USERS}/{id}")).await? == member_before,
        "refused role changes changed nothing"
    );

    // The last admin keeps the role and stays active.
    s.put(&format!("{USERS}/{my_id}/roles"))
        .bearer(token)
        .json(&json!({ "roles": ["viewer"] }))
        .send()
        .await?
        .expect_error(409, "conflict")?;
    s.post(&format!("{USERS}/{my_id}/deactivate"))
        .bearer(token)
        .send()
        .await?
        .expect_error(409, "conflict")?;
    let me_after = read(&s, token, "/api/v2/users/me").await?;
    ensure!(
        field(&me_after, "/roles") == &json!(["admin"]) && field(&me_after, "/is_active") == true,
        "the last admin is unchanged: {me_after}"
    );

    // The free tier's three users: a fourth invitation is refused; a deactivated member frees the seat and
    // cannot come back while the tenant is full.
    let third = s
        .post(USERS)
        .bearer(token)
        .json(&json!({ "email": "third@demo.local", "roles": ["viewer"] }))
        .send()
        .await?;
    third.expect(201)?;
    let third = id_of(&third.json())?;
    let fourth = json!({ "email": "fourth@demo.local", "roles": ["viewer"] });
    s.post(USERS)
        .bearer(token)
        .json(&fourth)
        .send()
        .await?
        .expect_error(403, "tenant_limit_exceeded")?;
    ensure!(
        total(&s, token, USERS).await? == 3,
        "the refused invitation made nobody"
    );
    s.post(&format!("{USERS}/{third}/deactivate"))
        .bearer(token)
        .send()
        .await?
        .expect(200)?;
    s.post(USERS)
        .bearer(token)
        .json(&fourth)
        .send()
        .await?
        .expect(201)?;
    s.post(&format!("{USERS}/{third}/reactivate"))
        .bearer(token)
        .send()
        .await?
        .expect_error(403, "tenant_limit_exceeded")?;
    let still = read(&s, token, &format!("{USERS}/{third}")).await?;
    ensure!(
        field(&still, "/is_active") == false,
        "a refused reactivation changed nothing: {still}"
    );
    Ok(())
}

/// Members without `administrate` cannot invite, change roles or deactivate (`permission_denied`, nothing
/// changes) but can read members; an API key has no profile; another tenant's admin gets `not_found` with no
/// data for every member route, and never lists them.
pub async fn user_management_is_guarded_and_tenant_scoped(fw: Framework) -> CheckResult {
    let s = fw.start().await?;
    let (dev_id, developer) = member(&s, "dev@demo.local", &[Role::Developer]).await?;
    let (viewer_id, viewer) = member(&s, "view@demo.local", &[Role::Viewer]).await?;
    let viewer_before = read(&s, &s.admin_token, &format!("{USERS}/{viewer_id}")).await?;
    for token in [&developer, &viewer] {
        s.post(USERS)
            .bearer(token)
            .json(&json!({ "email": "sneaky@demo.local", "roles": ["admin"] }))
            .send()
            .await?
            .expect_error(403, "permission_denied")?;
        s.put(&format!("{USERS}/{viewer_id}/roles"))
            .bearer(token)
            .json(&json!({ "roles": ["admin"] }))
            .send()
            .await?
            .expect_error(403, "permission_denied")?;
        s.post(&format!("{USERS}/{viewer_id}/deactivate"))
            .bearer(token)
            .send()
            .await?
            .expect_error(403, "permission_denied")?;
        ensure!(
            total(&s, token, USERS).await? == 3,
            "members read the member list"
        );
    }
    read(&s, &viewer, &format!("{USERS}/{dev_id}")).await?;
    ensure!(
        read(&s, &s.admin_token, &format!("{USERS}/{viewer_id}")).await? == viewer_before,
        "denied changes changed nothing"
    );
    s.get("/api/v2/users/me")
        .bearer(&s.api_key)
        .send()
        .await?
        .expect_error(403, "permission_denied")?;

    let intruder = &s.other.admin_token;
    let secrets = ["view@demo.local", "Black"];
    let attempts: [(&str, String, Value); 4] = [
        ("GET", format!("{USERS}/{viewer_id}"), json!(null)),
        (
            "PUT",
            format!("{USERS}/{viewer_id}/roles"),
            json!({ "roles": ["admin"] }),
        ),
        ("POST", format!("{USERS}/{viewer_id}/deactivate"), json!(null)),
        ("POST", format!("{USERS}/{viewer_id}/reactivate"), json!(null)),
    ];
    for (method, path, body) in attempts {
        let mut call = s.call(method, &path).bearer(intruder);
        if !body.is_null() {
            call = call.json(&body);
        }
        expect_hidden(&call.send().await?, &secrets)?;
    }
    let theirs = read(&s, intruder, USERS).await?;
    ensure!(
        field(&theirs, "/total") == 1 && !theirs.to_string().contains("demo.local"),
        "the other tenant lists only its own admin: {theirs}"
    );
    ensure!(
        read(&s, &s.admin_token, &format!("{USERS}/{viewer_id}")).await? == viewer_before,
        "the intruder changed nothing"
    );
    Ok(())
}
