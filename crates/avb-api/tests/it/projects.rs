//! `/api/v2/projects…`.

use crate::support::World;
use serde_json::json;

#[tokio::test]
async fn developers_create_read_change_and_delete_projects() {
    let w = World::new().await;
    let created = w
        .post(
            &w.a.developer.token,
            "/api/v2/projects",
            json!({ "name": "Support bot", "description": "d" }),
        )
        .await;
    created.expect(201);
    w.assert_audited(&created, "project").await;
    let id = created.str("id");
    let got = w.get(&w.a.viewer.token, &format!("/api/v2/projects/{id}")).await;
    got.expect(200);
    assert_eq!(got.str("name"), "Support bot");
    let listed = w.get(&w.a.viewer.token, "/api/v2/projects?search=support").await;
    assert_eq!(listed.body["total"], 1);
    assert_eq!(listed.body["items"][0]["id"], id.as_str());

    let renamed = w
        .patch(
            &w.a.developer.token,
            &format!("/api/v2/projects/{id}"),
            json!({ "name": "Sales bot" }),
        )
        .await;
    renamed.expect(200);
    assert_eq!(renamed.str("name"), "Sales bot");
    w.assert_audited(&renamed, "project").await;

    let deleted = w
        .delete(&w.a.developer.token, &format!("/api/v2/projects/{id}"))
        .await;
    deleted.expect(204);
    w.assert_audited(&deleted, "project").await;
    w.get(&w.a.viewer.token, &format!("/api/v2/projects/{id}"))
        .await
        .expect_error(404, "not_found");
}

#[tokio::test]
async fn invalid_projects_are_refused_and_nothing_changes() {
    let w = World::new().await;
    let refused = w
        .post(&w.a.developer.token, "/api/v2/projects", json!({ "name": "" }))
        .await;
    refused.expect_error(400, "validation_error");
    assert!(refused.body["details"].to_string().contains("name"));
    w.assert_not_audited(&refused).await;
    assert_eq!(w.total(&w.a.developer.token, "/api/v2/projects").await, 0);

    let id = w.project(&w.a.developer.token).await;
    let bad = w
        .patch(
            &w.a.developer.token,
            &format!("/api/v2/projects/{id}"),
            json!({ "settings": [1] }),
        )
        .await;
    bad.expect_error(400, "validation_error");
    w.assert_not_audited(&bad).await;
    let malformed = w
        .call(
            &w.a.developer.token,
            avb_api::Method::Post,
            "/api/v2/projects",
            None,
        )
        .await;
    malformed.expect_error(400, "validation_error");
    assert_eq!(w.total(&w.a.developer.token, "/api/v2/projects").await, 1);
}

#[tokio::test]
async fn viewers_cannot_write_projects_and_only_owners_or_admins_delete() {
    let w = World::new().await;
    let refused = w
        .post(&w.a.viewer.token, "/api/v2/projects", json!({ "name": "mine" }))
        .await;
    refused.expect_error(403, "permission_denied");
    w.assert_not_audited(&refused).await;

    let by_admin = w.project(&w.a.admin.token).await;
    let patch = w
        .patch(
            &w.a.viewer.token,
            &format!("/api/v2/projects/{by_admin}"),
            json!({ "name": "x" }),
        )
        .await;
    patch.expect_error(403, "permission_denied");
    w.assert_not_audited(&patch).await;
    w.delete(&w.a.viewer.token, &format!("/api/v2/projects/{by_admin}"))
        .await
        .expect_error(403, "permission_denied");
    // project#delete = owner + tenant->administrate: a developer may change it but not delete it.
    w.patch(
        &w.a.developer.token,
        &format!("/api/v2/projects/{by_admin}"),
        json!({ "description": "x" }),
    )
    .await
    .expect(200);
    w.delete(&w.a.developer.token, &format!("/api/v2/projects/{by_admin}"))
        .await
        .expect_error(403, "permission_denied");
    assert_eq!(w.total(&w.a.admin.token, "/api/v2/projects").await, 1);
}

#[tokio::test]
async fn other_tenants_projects_are_not_found_and_never_shown() {
    let w = World::new().await;
    let created = w
        .post(
            &w.a.admin.token,
            "/api/v2/projects",
            json!({ "name": "alpha-secret" }),
        )
        .await;
    let id = created.str("id");
    for resp in [
        w.get(&w.b.admin.token, &format!("/api/v2/projects/{id}")).await,
        w.patch(
            &w.b.admin.token,
            &format!("/api/v2/projects/{id}"),
            json!({ "name": "stolen" }),
        )
        .await,
        w.delete(&w.b.admin.token, &format!("/api/v2/projects/{id}"))
            .await,
    ] {
        resp.expect_error(404, "not_found");
        assert!(
            !resp.body.to_string().contains("alpha-secret"),
            "no data leaks: {}",
            resp.body
        );
        w.assert_not_audited(&resp).await;
    }
    let listed = w.get(&w.b.admin.token, "/api/v2/projects").await;
    assert_eq!(listed.body["total"], 0);
    w.get(&w.a.viewer.token, &format!("/api/v2/projects/{id}"))
        .await
        .expect(200);
}

#[tokio::test]
async fn lists_show_only_projects_the_caller_may_view() {
    let w = World::new().await;
    let first = w.project(&w.a.admin.token).await;
    let second = w.project(&w.a.admin.token).await;
    // A billing-only member holds no view permission on the tenant's projects.
    let billing = w.invite(&w.a.admin.token, w.a.id, "alpha", "billing").await;
    let listed = w.get(&billing.token, "/api/v2/projects").await;
    listed.expect(200);
    assert_eq!(listed.body["total"], 0);
    w.get(&billing.token, &format!("/api/v2/projects/{first}"))
        .await
        .expect_error(403, "permission_denied");

    // A key bound to one project sees only that one.
    let key = w
        .post(
            &w.a.admin.token,
            "/api/v2/api-keys",
            json!({ "name": "bound", "scopes": ["admin"], "project_id": second }),
        )
        .await;
    key.expect(201);
    let secret = key.str("key");
    let listed = w.get(&secret, "/api/v2/projects").await;
    listed.expect(200);
    assert_eq!(listed.body["total"], 1);
    assert_eq!(listed.body["items"][0]["id"], second.as_str());
    w.get(&secret, &format!("/api/v2/projects/{first}"))
        .await
        .expect_error(403, "permission_denied");

    // Paging counts visible projects only.
    let page = w
        .get(&w.a.viewer.token, "/api/v2/projects?limit=1&offset=1")
        .await;
    assert_eq!(page.body["total"], 2);
    assert_eq!(page.body["items"].as_array().unwrap().len(), 1);
    w.get(&w.a.viewer.token, "/api/v2/projects?limit=0")
        .await
        .expect_error(400, "validation_error");
}

#[tokio::test]
async fn deleting_a_project_disables_its_keys_at_once() {
    let w = World::new().await;
    let project = w.project(&w.a.admin.token).await;
    let key = w
        .post(
            &w.a.admin.token,
            "/api/v2/api-keys",
            json!({ "name": "bound", "scopes": ["admin"], "project_id": project }),
        )
        .await;
    let secret = key.str("key");
    w.get(&secret, "/api/v2/projects").await.expect(200);
    w.delete(&w.a.admin.token, &format!("/api/v2/projects/{project}"))
        .await
        .expect(204);
    w.get(&secret, "/api/v2/projects").await.expect(401);
}
