//! `/api/v2/admin/…`: sysadmins only.

use crate::support::{World, unknown_id};
use serde_json::json;

#[tokio::test]
async fn sysadmins_list_filter_and_page_tenants() {
    let w = World::new().await;
    let all = w.get(&w.sysadmin, "/api/v2/admin/tenants?limit=1").await;
    all.expect(200);
    assert_eq!(all.body["total"], 2);
    assert_eq!(all.body["limit"], 1);
    assert_eq!(all.body["offset"], 0);
    assert_eq!(all.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(all.body["items"][0]["user_count"], 3);
    let found = w
        .get(
            &w.sysadmin,
            "/api/v2/admin/tenants?search=alph&status=active&tier=pro",
        )
        .await;
    assert_eq!(found.body["total"], 1);
    assert_eq!(found.body["items"][0]["slug"], "alpha");
    w.get(&w.sysadmin, "/api/v2/admin/tenants?status=bogus")
        .await
        .expect_error(400, "validation_error");
}

#[tokio::test]
async fn tenant_lifecycle_is_audited_and_enforced() {
    let w = World::new().await;
    let id = w.a.id;
    let got = w.get(&w.sysadmin, &format!("/api/v2/admin/tenants/{id}")).await;
    got.expect(200);
    assert_eq!(got.str("status"), "active");

    let renamed = w
        .patch(
            &w.sysadmin,
            &format!("/api/v2/admin/tenants/{id}"),
            json!({ "name": "Alpha Corp" }),
        )
        .await;
    renamed.expect(200);
    assert_eq!(renamed.str("name"), "Alpha Corp");
    w.assert_audited(&renamed, "tenant").await;

    let suspended = w
        .post(
            &w.sysadmin,
            &format!("/api/v2/admin/tenants/{id}/suspend"),
            json!({ "reason": "unpaid" }),
        )
        .await;
    suspended.expect(200);
    assert_eq!(suspended.str("status"), "suspended");
    w.assert_audited(&suspended, "tenant").await;
    w.get(&w.a.viewer.token, "/api/v2/tenants/me")
        .await
        .expect_error(403, "tenant_suspended");

    let activated = w
        .post(
            &w.sysadmin,
            &format!("/api/v2/admin/tenants/{id}/activate"),
            json!({}),
        )
        .await;
    activated.expect(200);
    w.assert_audited(&activated, "tenant").await;
    w.get(&w.a.viewer.token, "/api/v2/tenants/me").await.expect(200);

    let deleted = w
        .delete(&w.sysadmin, &format!("/api/v2/admin/tenants/{id}"))
        .await;
    deleted.expect(200);
    assert_eq!(deleted.str("status"), "deleted");
    w.assert_audited(&deleted, "tenant").await;
    w.get(&w.a.viewer.token, "/api/v2/tenants/me")
        .await
        .expect_error(404, "tenant_not_found");
}

#[tokio::test]
async fn a_created_tenant_admin_can_act_at_once() {
    let w = World::new().await;
    let created = w
        .post(
            &w.sysadmin,
            "/api/v2/admin/tenants",
            json!({ "name": "Charlie", "slug": "charlie", "admin_email": "boss@charlie.test", "admin_name": "Boss" }),
        )
        .await;
    created.expect(201);
    w.assert_audited(&created, "tenant").await;
    let id: avb_core::TenantId = serde_json::from_value(created.body["tenant"]["id"].clone()).unwrap();
    let token = crate::support::mint(
        &w.jwt,
        "charlie-boss",
        "boss@charlie.test",
        vec![avb_core::Role::Admin],
        Some(id),
    );
    // Pending tenants may be set up by their admins before activation; the graph already knows the admin.
    w.post(&token, "/api/v2/projects", json!({ "name": "first" }))
        .await
        .expect(201);
}

#[tokio::test]
async fn invalid_tenants_are_refused_and_nothing_is_created() {
    let w = World::new().await;
    let refused = w
        .post(
            &w.sysadmin,
            "/api/v2/admin/tenants",
            json!({ "name": "X", "slug": "Bad Slug", "admin_email": "nope", "admin_name": "A" }),
        )
        .await;
    refused.expect_error(400, "validation_error");
    for field in ["name", "slug", "admin_email", "admin_name"] {
        assert!(
            refused.body["details"].to_string().contains(field),
            "{field} reported: {}",
            refused.body
        );
    }
    w.assert_not_audited(&refused).await;
    assert_eq!(w.total(&w.sysadmin, "/api/v2/admin/tenants").await, 2);
    let taken = w
        .post(
            &w.sysadmin,
            "/api/v2/admin/tenants",
            json!({ "name": "Again", "slug": "alpha", "admin_email": "x@again.test", "admin_name": "Again" }),
        )
        .await;
    taken.expect_error(409, "conflict");
    w.post(
        &w.sysadmin,
        &format!("/api/v2/admin/tenants/{}/suspend", w.a.id),
        json!({}),
    )
    .await
    .expect_error(400, "validation_error");
}

#[tokio::test]
async fn tenant_admins_are_not_sysadmins() {
    let w = World::new().await;
    w.get(&w.a.admin.token, "/api/v2/admin/tenants")
        .await
        .expect_error(403, "permission_denied");
    let refused = w
        .post(
            &w.a.admin.token,
            "/api/v2/admin/tenants",
            json!({ "name": "Mine", "slug": "mine", "admin_email": "me@mine.test", "admin_name": "Me" }),
        )
        .await;
    refused.expect_error(403, "permission_denied");
    w.assert_not_audited(&refused).await;
    w.post(
        &w.a.admin.token,
        &format!("/api/v2/admin/users/{}/deactivate", w.b.viewer.id),
        json!({}),
    )
    .await
    .expect_error(403, "permission_denied");
    w.get(&w.sysadmin, &format!("/api/v2/admin/tenants/{}", unknown_id()))
        .await
        .expect_error(404, "not_found");
}

#[tokio::test]
async fn sysadmins_list_get_and_deactivate_users_across_tenants() {
    let w = World::new().await;
    assert!(w.total(&w.sysadmin, "/api/v2/admin/users").await >= 6);
    let in_b = w
        .get(
            &w.sysadmin,
            &format!("/api/v2/admin/users?tenant_id={}&role=viewer", w.b.id),
        )
        .await;
    in_b.expect(200);
    assert_eq!(in_b.body["total"], 1);
    assert_eq!(in_b.body["items"][0]["email"], w.b.viewer.email.as_str());
    w.get(&w.sysadmin, "/api/v2/admin/users?role=emperor")
        .await
        .expect_error(400, "validation_error");

    let got = w
        .get(&w.sysadmin, &format!("/api/v2/admin/users/{}", w.b.developer.id))
        .await;
    got.expect(200);
    assert_eq!(got.str("email"), w.b.developer.email);

    w.get(&w.b.developer.token, "/api/v2/projects").await.expect(200);
    let off = w
        .post(
            &w.sysadmin,
            &format!("/api/v2/admin/users/{}/deactivate", w.b.developer.id),
            json!({}),
        )
        .await;
    off.expect(200);
    assert_eq!(off.body["is_active"], false);
    w.assert_audited(&off, "user").await;
    w.get(&w.b.developer.token, "/api/v2/projects")
        .await
        .expect_error(401, "authentication_failed");
    // The last admin of a tenant cannot be deactivated; nothing changes.
    let last = w
        .post(
            &w.sysadmin,
            &format!("/api/v2/admin/users/{}/deactivate", w.b.admin.id),
            json!({}),
        )
        .await;
    last.expect_error(409, "conflict");
    w.assert_not_audited(&last).await;
}
