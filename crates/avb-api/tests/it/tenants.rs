//! `/api/v2/tenants/me…`.

use crate::support::World;
use serde_json::json;

#[tokio::test]
async fn members_read_their_tenant_settings_usage_and_limits() {
    let w = World::new().await;
    let me = w.get(&w.a.viewer.token, "/api/v2/tenants/me").await;
    me.expect(200);
    assert_eq!(me.str("id"), w.a.id.to_string());
    w.get(&w.a.viewer.token, "/api/v2/tenants/me/settings")
        .await
        .expect(200);
    let usage = w.get(&w.a.viewer.token, "/api/v2/tenants/me/usage").await;
    usage.expect(200);
    assert_eq!(usage.body["users"]["current"], 3);
    let limits = w.get(&w.a.viewer.token, "/api/v2/tenants/me/limits").await;
    limits.expect(200);
    assert_eq!(limits.body["max_projects"], 20, "pro tier");
}

#[tokio::test]
async fn admins_change_settings_and_the_change_is_audited() {
    let w = World::new().await;
    let changed = w
        .patch(
            &w.a.admin.token,
            "/api/v2/tenants/me/settings",
            json!({ "primary_color": "#112233" }),
        )
        .await;
    changed.expect(200);
    assert_eq!(changed.str("primary_color"), "#112233");
    w.assert_audited(&changed, "tenant_settings").await;
}

#[tokio::test]
async fn invalid_settings_are_refused_and_change_nothing() {
    let w = World::new().await;
    let refused = w
        .patch(
            &w.a.admin.token,
            "/api/v2/tenants/me/settings",
            json!({ "primary_color": "red" }),
        )
        .await;
    refused.expect_error(400, "validation_error");
    w.assert_not_audited(&refused).await;
    let settings = w.get(&w.a.admin.token, "/api/v2/tenants/me/settings").await;
    assert_eq!(settings.str("primary_color"), "#6366f1");
}

#[tokio::test]
async fn viewers_cannot_change_settings() {
    let w = World::new().await;
    let refused = w
        .patch(
            &w.a.viewer.token,
            "/api/v2/tenants/me/settings",
            json!({ "primary_color": "#112233" }),
        )
        .await;
    refused.expect_error(403, "permission_denied");
    w.assert_not_audited(&refused).await;
}

#[tokio::test]
async fn a_member_cannot_hop_to_another_tenant_by_header() {
    let w = World::new().await;
    let req = avb_api::ApiRequest::new(avb_api::Method::Get, "/api/v2/tenants/me")
        .header("authorization", format!("Bearer {}", w.b.admin.token))
        .header("x-tenant-id", w.a.id.to_string());
    let resp = w.app.handle(req).await;
    assert_eq!(resp.status, 403);
    let body = String::from_utf8_lossy(&resp.body);
    assert!(!body.contains(&w.a.slug), "no data of tenant A: {body}");
}
