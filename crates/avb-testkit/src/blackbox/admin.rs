//! `/api/v2/admin/…`: sysadmins managing tenants and users across the platform.

use crate::blackbox::support::{expect_audited, expect_invalid, id_of, ids, member, read, request_id, total};
use crate::blackbox::{CheckResult, Framework, Target, field};
use avb_core::Role;
use serde_json::{Value, json};

const TENANTS: &str = "/api/v2/admin/tenants";

/// Creates a tenant as the sysadmin (201) and returns the `{tenant, settings, admin}` answer.
async fn create_tenant(t: &Target, slug: &str, tier: &str, rid: &str) -> Result<Value, String> {
    let reply = t
        .post(TENANTS)
        .bearer(&t.sysadmin_token)
        .header("x-request-id", rid)
        .json(&json!({
            "name": format!("Tenant {slug}"),
            "slug": slug,
            "tier": tier,
            "admin_email": format!("admin@{slug}.test"),
            "admin_name": "First Admin",
            "send_welcome_email": false,
        }))
        .send()
        .await?;
    reply.expect(201)?;
    Ok(reply.json())
}

/// `POST {path}` as the sysadmin with a request id, expecting 200: the tenant.
/// True when two reads of one tenant are the same record, allowing for the one change a background job may make
/// between them: billing linking a tenant to its billing customer (`billing_id` set where it was empty, with
/// the version and update time that write brings). Any other difference is a change.
fn same_tenant(later: &Value, earlier: &Value) -> bool {
    if later == earlier {
        return true;
    }
    let unlinked = |v: &Value| v.get("billing_id").is_none_or(|id| id.is_null() || id == "");
    let linked = unlinked(earlier) && !unlinked(later);
    if !linked {
        return false;
    }
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(map) = v.as_object_mut() {
            for key in ["billing_id", "version", "updated_at"] {
                map.remove(key);
            }
        }
        v
    };
    strip(later) == strip(earlier)
}

/// Audit entries of a page made by requests, not by background jobs (the billing job may or may not have linked
/// the tenant to its billing customer yet, which it audits as the system).
fn requested_entries(page: &Value) -> usize {
    page.get("items").and_then(Value::as_array).map_or(0, |items| {
        items.iter().filter(|e| e["actor_type"] != "system").count()
    })
}

async fn sysadmin_post(t: &Target, path: &str, body: &Value, rid: &str) -> Result<Value, String> {
    let reply = t
        .post(path)
        .bearer(&t.sysadmin_token)
        .header("x-request-id", rid)
        .json(body)
        .send()
        .await?;
    reply.expect(200)?;
    Ok(reply.json())
}

/// Create (pending, with its first admin) → get → patch → suspend with a reason (its admin is then refused with
/// `tenant_suspended`) → activate (the admin works again) → delete (`tenant_not_found` for the admin); every
/// write is in the new tenant's audit trail with the request that made it.
pub async fn admin_tenant_lifecycle(fw: Framework) -> CheckResult {
    let s = fw.start().await?;
    let rid_create = request_id("tenant-create");
    let created = create_tenant(&s, "acme", "starter", &rid_create).await?;
    let tenant = field(&created, "/tenant");
    let id = id_of(tenant)?;
    ensure!(
        field(tenant, "/status") == "pending"
            && field(tenant, "/tier") == "starter"
            && field(tenant, "/limits/max_users") == 10,
        "a new tenant is pending with its tier's limits: {created}"
    );
    ensure!(
        field(&created, "/admin/email") == "admin@acme.test"
            && field(&created, "/admin/tenant_id") == id.as_str()
            && field(&created, "/settings/tenant_id") == id.as_str(),
        "the first admin and the settings belong to it: {created}"
    );
    let path = format!("{TENANTS}/{id}");
    let got = read(&s, &s.sysadmin_token, &path).await?;
    ensure!(
        same_tenant(&got, tenant),
        "get answers what create made: {got} vs {tenant}"
    );

    // Its first admin can sign in and act while the tenant is pending.
    let admin = s.token_for("admin@acme.test", Some(&id), &[Role::Admin])?;
    let mine = read(&s, &admin, "/api/v2/tenants/me").await?;
    ensure!(
        field(&mine, "/id") == id.as_str(),
        "the first admin acts in it: {mine}"
    );
    let key = s
        .post("/api/v2/api-keys")
        .bearer(&admin)
        .json(&json!({ "name": "acme key", "scopes": ["admin"] }))
        .send()
        .await?;
    key.expect(201)?;
    let key = field(&key.json(), "/key").as_str().unwrap_or_default().to_owned();

    let rid_patch = request_id("tenant-patch");
    let patched = s
        .patch(&path)
        .bearer(&s.sysadmin_token)
        .header("x-request-id", &rid_patch)
        .json(&json!({ "name": "Acme Renamed", "max_projects": 7, "settings": { "region": "eu" } }))
        .send()
        .await?;
    patched.expect(200)?;
    let patched = patched.json();
    ensure!(
        field(&patched, "/name") == "Acme Renamed"
            && field(&patched, "/limits/max_projects") == 7
            && field(&patched, "/settings/region") == "eu"
            && field(&patched, "/version").as_u64() > field(tenant, "/version").as_u64(),
        "patched: {patched}"
    );

    let rid_suspend = request_id("tenant-suspend");
    let suspended = sysadmin_post(
        &s,
        &format!("{path}/suspend"),
        &json!({ "reason": "unpaid invoices" }),
        &rid_suspend,
    )
    .await?;
    ensure!(
        field(&suspended, "/status") == "suspended"
            && field(&suspended, "/settings/suspension_reason") == "unpaid invoices"
            && !field(&suspended, "/suspended_at").is_null(),
        "suspended with its reason: {suspended}"
    );
    s.get("/api/v2/tenants/me")
        .bearer(&admin)
        .send()
        .await?
        .expect_error(403, "tenant_suspended")?;
    s.get("/api/v2/tenants/me")
        .api_key(&key)
        .send()
        .await?
        .expect_error(403, "tenant_suspended")?;
    // Suspending twice is an invalid state, and changes nothing.
    s.post(&format!("{path}/suspend"))
        .bearer(&s.sysadmin_token)
        .json(&json!({ "reason": "again" }))
        .send()
        .await?
        .expect_error(409, "conflict")?;

    let rid_activate = request_id("tenant-activate");
    let active = sysadmin_post(&s, &format!("{path}/activate"), &json!({}), &rid_activate).await?;
    ensure!(
        field(&active, "/status") == "active"
            && field(&active, "/settings/suspension_reason").is_null()
            && !field(&active, "/activated_at").is_null(),
        "activated, the reason removed: {active}"
    );
    read(&s, &admin, "/api/v2/tenants/me").await?;

    let listed = read(
        &s,
        &admin,
        &format!("/api/v2/audit?resource_type=tenant&resource_id={id}"),
    )
    .await?;
    ensure!(
        requested_entries(&listed) == 4,
        "create, patch, suspend and activate are audited: {listed}"
    );
    expect_audited(&s, &admin, "create", "tenant", &id, &rid_create).await?;
    expect_audited(&s, &admin, "update", "tenant", &id, &rid_patch).await?;
    let entry = expect_audited(&s, &admin, "update", "tenant", &id, &rid_suspend).await?;
    ensure!(
        field(&entry, "/metadata/reason") == "unpaid invoices",
        "the suspension's audit entry keeps the reason: {entry}"
    );
    expect_audited(&s, &admin, "update", "tenant", &id, &rid_activate).await?;
    // The sysadmin reads the same trail by naming the tenant.
    let by_sysadmin = s
        .get(&format!("/api/v2/audit?resource_type=tenant&resource_id={id}"))
        .bearer(&s.sysadmin_token)
        .header("x-tenant-id", &id)
        .send()
        .await?;
    by_sysadmin.expect(200)?;
    ensure!(
        requested_entries(&by_sysadmin.json()) == 4,
        "the sysadmin sees the tenant's trail: {}",
        by_sysadmin.shown()
    );

    // Deletion is soft: the sysadmin still reads the tenant, its members are refused. (Its audit entry is in
    // the deleted tenant's trail, which no HTTP caller can read any more.)
    let deleted = s.delete(&path).bearer(&s.sysadmin_token).send().await?;
    deleted.expect(200)?;
    ensure!(
        field(&deleted.json(), "/status") == "deleted",
        "deleted: {}",
        deleted.shown()
    );
    let got = read(&s, &s.sysadmin_token, &path).await?;
    ensure!(
        field(&got, "/status") == "deleted" && !field(&got, "/deleted_at").is_null(),
        "a deleted tenant stays readable by the sysadmin: {got}"
    );
    s.get("/api/v2/tenants/me")
        .bearer(&admin)
        .send()
        .await?
        .expect_error(404, "tenant_not_found")?;
    s.post(&format!("{path}/activate"))
        .bearer(&s.sysadmin_token)
        .send()
        .await?
        .expect_error(409, "conflict")?;
    Ok(())
}

/// The tenant list filters by status, tier and search with the total of all matches across pages; the user list
/// filters by tenant, e-mail and role; a user is read and deactivated (audited in the user's tenant, and their
/// token stops working).
pub async fn admin_lists_filter_and_paginate(fw: Framework) -> CheckResult {
    let s = fw.start().await?;
    let sys = &s.sysadmin_token;
    let pro = create_tenant(&s, "prolabs", "pro", &request_id("t")).await?;
    let pro_id = id_of(field(&pro, "/tenant"))?;
    let gone = create_tenant(&s, "gonecorp", "starter", &request_id("t")).await?;
    let gone_id = id_of(field(&gone, "/tenant"))?;
    sysadmin_post(
        &s,
        &format!("{TENANTS}/{gone_id}/suspend"),
        &json!({ "reason": "fraud review" }),
        &request_id("t"),
    )
    .await?;

    ensure!(
        total(&s, sys, TENANTS).await? == 4,
        "demo, other and the two new tenants"
    );
    let suspended = read(&s, sys, &format!("{TENANTS}?status=suspended")).await?;
    ensure!(
        ids(&suspended) == [gone_id.clone()] && field(&suspended, "/total") == 1,
        "status filter: {suspended}"
    );
    let pending = read(&s, sys, &format!("{TENANTS}?status=pending")).await?;
    ensure!(ids(&pending) == [pro_id.clone()], "status pending: {pending}");
    let by_tier = read(&s, sys, &format!("{TENANTS}?tier=pro")).await?;
    ensure!(ids(&by_tier) == [pro_id.clone()], "tier filter: {by_tier}");
    let searched = read(&s, sys, &format!("{TENANTS}?search=gonec")).await?;
    ensure!(ids(&searched) == [gone_id.clone()], "search by slug: {searched}");
    let first = read(&s, sys, &format!("{TENANTS}?limit=1")).await?;
    let second = read(&s, sys, &format!("{TENANTS}?limit=1&offset=1")).await?;
    ensure!(
        field(&first, "/total") == 4
            && field(&first, "/limit") == 1
            && field(&second, "/offset") == 1
            && ids(&first).len() == 1
            && ids(&second).len() == 1
            && ids(&first) != ids(&second),
        "pages of one carry the total of all matches: {first} / {second}"
    );
    let mut seen = Vec::new();
    for offset in 0..4 {
        seen.extend(ids(
            &read(&s, sys, &format!("{TENANTS}?limit=1&offset={offset}")).await?
        ));
    }
    seen.sort();
    seen.dedup();
    ensure!(seen.len() == 4, "paging visits every tenant once: {seen:?}");
    let demo_row = read(&s, sys, &format!("{TENANTS}?search=demo")).await?;
    ensure!(
        field(&demo_row, "/items/0/user_count") == 1 && field(&demo_row, "/items/0/slug") == "demo",
        "rows carry counts: {demo_row}"
    );
    for bad in ["status=sleeping", "tier=platinum", "limit=0", "limit=101"] {
        let reply = s.get(&format!("{TENANTS}?{bad}")).bearer(sys).send().await?;
        reply.expect_error(400, "validation_error")?;
    }

    // Users across tenants.
    let (viewer_id, viewer) = member(&s, "watcher@demo.local", &[Role::Viewer]).await?;
    let of_other = read(
        &s,
        sys,
        &format!("/api/v2/admin/users?tenant_id={}", s.other.tenant_id),
    )
    .await?;
    ensure!(
        field(&of_other, "/total") == 1 && field(&of_other, "/items/0/email") == "admin@other.local",
        "tenant filter: {of_other}"
    );
    let by_email = read(&s, sys, "/api/v2/admin/users?email=watcher@demo.local").await?;
    ensure!(ids(&by_email) == [viewer_id.clone()], "e-mail filter: {by_email}");
    let viewers = read(
        &s,
        sys,
        &format!("/api/v2/admin/users?role=viewer&tenant_id={}", s.tenant_id),
    )
    .await?;
    ensure!(ids(&viewers) == [viewer_id.clone()], "role filter: {viewers}");
    let everyone = total(&s, sys, "/api/v2/admin/users").await?;
    ensure!(
        everyone >= 5,
        "all tenants' users are listed (demo admin and viewer, other admin, two new admins): {everyone}"
    );
    s.get("/api/v2/admin/users?role=emperor")
        .bearer(sys)
        .send()
        .await?
        .expect_error(400, "validation_error")?;
    let user_path = format!("/api/v2/admin/users/{viewer_id}");
    let user = read(&s, sys, &user_path).await?;
    ensure!(
        field(&user, "/email") == "watcher@demo.local" && field(&user, "/is_active") == true,
        "get user: {user}"
    );
    let rid = request_id("admin-deactivate");
    let deactivated = sysadmin_post(&s, &format!("{user_path}/deactivate"), &json!({}), &rid).await?;
    ensure!(
        field(&deactivated, "/is_active") == false,
        "deactivated: {deactivated}"
    );
    s.get("/api/v2/users/me")
        .bearer(&viewer)
        .send()
        .await?
        .expect_error(401, "authentication_failed")?;
    expect_audited(&s, &s.admin_token, "update", "user", &viewer_id, &rid).await?;
    s.post(&format!("{user_path}/deactivate"))
        .bearer(sys)
        .send()
        .await?
        .expect_error(409, "conflict")?;
    Ok(())
}

/// Bad admin input is `validation_error` and changes nothing; tenant admins and API keys are refused every
/// admin route with `permission_denied` (and nothing changes); unknown ids are `not_found`.
pub async fn admin_routes_refuse_bad_input_and_non_sysadmins(fw: Framework) -> CheckResult {
    let s = fw.start().await?;
    let sys = &s.sysadmin_token;
    let demo_path = format!("{TENANTS}/{}", s.tenant_id);
    let demo_before = read(&s, sys, &demo_path).await?;

    for (body, bad) in [
        (
            json!({ "name": "Bad", "slug": "Bad Slug", "admin_email": "a@bad.test", "admin_name": "A B" }),
            "slug",
        ),
        (
            json!({ "name": "Bad", "slug": "badmail", "admin_email": "not-an-email", "admin_name": "A B" }),
            "admin_email",
        ),
        (
            json!({ "name": "Bad", "slug": "badtier", "tier": "platinum", "admin_email": "a@t.test",
                    "admin_name": "A B" }),
            "tier",
        ),
    ] {
        expect_invalid(&s.post(TENANTS).bearer(sys).json(&body).send().await?, bad)?;
    }
    // A taken slug is a conflict.
    s.post(TENANTS)
        .bearer(sys)
        .json(&json!({ "name": "Again", "slug": "demo", "admin_email": "x@again.test", "admin_name": "X Y" }))
        .send()
        .await?
        .expect_error(409, "conflict")?;
    ensure!(
        total(&s, sys, TENANTS).await? == 2,
        "refused creations made no tenant"
    );
    expect_invalid(
        &s.patch(&demo_path)
            .bearer(sys)
            .json(&json!({ "name": "Renamed", "max_users": 0 }))
            .send()
            .await?,
        "max_users",
    )?;
    expect_invalid(
        &s.post(&format!("{demo_path}/suspend"))
            .bearer(sys)
            .json(&json!({ "reason": "" }))
            .send()
            .await?,
        "reason",
    )?;
    ensure!(
        same_tenant(&read(&s, sys, &demo_path).await?, &demo_before),
        "refused changes left the demo tenant alone"
    );
    // A limit below what the tenant already uses is refused (a downgrade must wait until it shrinks).
    s.patch(&demo_path)
        .bearer(sys)
        .json(&json!({ "tier": "pro" }))
        .send()
        .await?
        .expect(200)?;
    for name in ["One", "Two"] {
        s.post("/api/v2/projects")
            .bearer(&s.admin_token)
            .json(&json!({ "name": name }))
            .send()
            .await?
            .expect(201)?;
    }
    let pro = read(&s, sys, &demo_path).await?;
    expect_invalid(
        &s.patch(&demo_path)
            .bearer(sys)
            .json(&json!({ "tier": "free" }))
            .send()
            .await?,
        "max_projects",
    )?;
    expect_invalid(
        &s.patch(&demo_path)
            .bearer(sys)
            .json(&json!({ "max_projects": 1 }))
            .send()
            .await?,
        "max_projects",
    )?;
    ensure!(
        same_tenant(&read(&s, sys, &demo_path).await?, &pro),
        "a refused downgrade changed nothing"
    );
    let demo_before = pro;

    // Tenant admins and API keys: every admin route is the sysadmin's.
    let (user_id, _) = member(&s, "someone@demo.local", &[Role::Viewer]).await?;
    for credential in [&s.admin_token, &s.api_key] {
        for (method, path, body) in [
            ("GET", TENANTS.to_owned(), json!(null)),
            (
                "POST",
                TENANTS.to_owned(),
                json!({ "name": "Mine", "slug": "mine", "admin_email": "m@mine.test", "admin_name": "M N" }),
            ),
            ("GET", demo_path.clone(), json!(null)),
            ("PATCH", demo_path.clone(), json!({ "max_users": 500 })),
            ("POST", format!("{demo_path}/suspend"), json!({ "reason": "no" })),
            ("POST", format!("{demo_path}/activate"), json!(null)),
            ("DELETE", demo_path.clone(), json!(null)),
            ("GET", "/api/v2/admin/users".to_owned(), json!(null)),
            ("GET", format!("/api/v2/admin/users/{user_id}"), json!(null)),
            (
                "POST",
                format!("/api/v2/admin/users/{user_id}/deactivate"),
                json!(null),
            ),
        ] {
            let mut call = s.call(method, &path).bearer(credential);
            if !body.is_null() {
                call = call.json(&body);
            }
            call.send().await?.expect_error(403, "permission_denied")?;
        }
    }
    ensure!(
        same_tenant(&read(&s, sys, &demo_path).await?, &demo_before),
        "denied calls left the demo tenant alone"
    );
    ensure!(
        total(&s, sys, TENANTS).await? == 2,
        "denied creation made no tenant"
    );
    let user = read(&s, sys, &format!("/api/v2/admin/users/{user_id}")).await?;
    ensure!(
        field(&user, "/is_active") == true,
        "denied deactivation changed nothing: {user}"
    );

    let nobody = "00000000-0000-4000-8000-000000000000";
    for path in [
        format!("{TENANTS}/{nobody}"),
        format!("/api/v2/admin/users/{nobody}"),
        format!("{TENANTS}/not-a-uuid"),
    ] {
        s.get(&path)
            .bearer(sys)
            .send()
            .await?
            .expect_error(404, "not_found")?;
    }
    Ok(())
}
