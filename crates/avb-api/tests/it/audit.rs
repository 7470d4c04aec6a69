//! `GET /api/v2/audit`.

use crate::support::World;
use serde_json::json;

#[tokio::test]
async fn administrators_query_their_tenants_trail_with_filters() {
    let w = World::new().await;
    let created = w
        .post(
            &w.a.developer.token,
            "/api/v2/projects",
            json!({ "name": "audited" }),
        )
        .await;
    let project = created.str("id");
    let trail = w.get(&w.a.admin.token, "/api/v2/audit").await;
    trail.expect(200);
    let items = trail.body["items"].as_array().unwrap();
    assert!(!items.is_empty());
    assert!(
        items
            .iter()
            .all(|e| e["tenant_id"] == w.a.id.to_string().as_str()),
        "tenant A only"
    );

    let about = w
        .get(
            &w.a.admin.token,
            &format!("/api/v2/audit?resource_type=project&resource_id={project}&action=create"),
        )
        .await;
    about.expect(200);
    assert_eq!(about.body["total"], 1);
    let entry = &about.body["items"][0];
    assert_eq!(entry["request_id"], created.request_id.as_str());
    assert_eq!(entry["actor_id"], w.a.developer.id.to_string().as_str());
    let by_actor = w
        .get(
            &w.a.admin.token,
            &format!("/api/v2/audit?actor={}&resource_type=project", w.a.developer.id),
        )
        .await;
    assert_eq!(by_actor.body["total"], 1);
    let later = w
        .get(&w.a.admin.token, "/api/v2/audit?from=2999-01-01T00:00:00Z")
        .await;
    assert_eq!(later.body["total"], 0);
}

#[tokio::test]
async fn invalid_audit_queries_are_refused() {
    let w = World::new().await;
    w.get(&w.a.admin.token, "/api/v2/audit?action=steal")
        .await
        .expect_error(400, "validation_error");
    w.get(
        &w.a.admin.token,
        "/api/v2/audit?from=2030-01-01T00:00:00Z&to=2020-01-01T00:00:00Z",
    )
    .await
    .expect_error(400, "validation_error");
    w.get(&w.a.admin.token, "/api/v2/audit?actor_id=not-a-uuid")
        .await
        .expect_error(400, "validation_error");
}

#[tokio::test]
async fn only_administrators_view_the_audit_trail() {
    let w = World::new().await;
    for token in [&w.a.viewer.token, &w.a.developer.token] {
        w.get(token, "/api/v2/audit")
            .await
            .expect_error(403, "permission_denied");
    }
    let (_, key) = w.api_key(&w.a.admin.token, &["admin"]).await;
    w.get(&key, "/api/v2/audit")
        .await
        .expect_error(403, "permission_denied");
}

#[tokio::test]
async fn a_tenant_never_sees_another_tenants_entries() {
    let w = World::new().await;
    let project = w.project(&w.a.admin.token).await;
    let peek = w
        .get(&w.b.admin.token, &format!("/api/v2/audit?resource_id={project}"))
        .await;
    peek.expect(200);
    assert_eq!(peek.body["total"], 0);
    let all = w.get(&w.b.admin.token, "/api/v2/audit?limit=100").await;
    let items = all.body["items"].as_array().unwrap();
    assert!(
        items
            .iter()
            .all(|e| e["tenant_id"] == w.b.id.to_string().as_str())
    );
}
