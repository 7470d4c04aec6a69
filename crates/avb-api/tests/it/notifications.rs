//! `/api/v2/notifications…`: the caller's own inbox and preferences.

use crate::support::{Member, World};
use avb_core::{Ctx, RequestId, TenantId};
use avb_tenancy::notification::NotifyRequest;
use serde_json::json;

async fn notify(w: &World, tenant: TenantId, to: &Member, category: &str, title: &str) -> String {
    let ctx = Ctx::system(
        RequestId::generate(w.app.inner().ids.as_ref()),
        "test",
        Some(tenant),
    );
    let req = NotifyRequest {
        user_id: Some(to.id),
        category: category.into(),
        title: title.into(),
        body: String::new(),
        data: json!({}),
    };
    w.app
        .inner()
        .notifications
        .notify(&ctx, req)
        .await
        .unwrap()
        .unwrap()
        .id
        .to_string()
}

#[tokio::test]
async fn users_list_and_mark_their_notifications() {
    let w = World::new().await;
    let first = notify(&w, w.a.id, &w.a.viewer, "system", "Welcome").await;
    notify(&w, w.a.id, &w.a.viewer, "billing", "Invoice").await;
    notify(&w, w.a.id, &w.a.viewer, "billing", "Receipt").await;
    notify(&w, w.a.id, &w.a.developer, "system", "Not yours").await;
    let token = &w.a.viewer.token;
    assert_eq!(w.total(token, "/api/v2/notifications").await, 3);
    assert_eq!(w.total(token, "/api/v2/notifications?category=billing").await, 2);

    let read = w
        .post(token, &format!("/api/v2/notifications/{first}/read"), json!({}))
        .await;
    read.expect(200);
    assert!(read.body["read_at"].is_string());
    w.assert_audited(&read, "notification").await;
    assert_eq!(w.total(token, "/api/v2/notifications?unread=true").await, 2);

    let all = w.post(token, "/api/v2/notifications/read-all", json!({})).await;
    all.expect(200);
    assert_eq!(all.body["marked"], 2);
    w.assert_audited(&all, "notification").await;
    assert_eq!(w.total(token, "/api/v2/notifications?unread_only=true").await, 0);
    assert_eq!(
        w.total(&w.a.developer.token, "/api/v2/notifications?unread=true")
            .await,
        1
    );
}

#[tokio::test]
async fn users_change_their_preferences() {
    let w = World::new().await;
    let token = &w.a.viewer.token;
    let prefs = w.get(token, "/api/v2/notifications/preferences").await;
    prefs.expect(200);
    assert_eq!(prefs.body["email_notifications"], true);
    let changed = w
        .put(
            token,
            "/api/v2/notifications/preferences",
            json!({ "email_notifications": false, "muted_categories": ["billing"] }),
        )
        .await;
    changed.expect(200);
    assert_eq!(changed.body["muted_categories"], json!(["billing"]));
    w.assert_audited(&changed, "user").await;
    // A muted category is no longer delivered.
    let ctx = Ctx::system(
        RequestId::generate(w.app.inner().ids.as_ref()),
        "test",
        Some(w.a.id),
    );
    let muted = NotifyRequest {
        user_id: Some(w.a.viewer.id),
        category: "billing".into(),
        title: "Invoice".into(),
        body: String::new(),
        data: json!({}),
    };
    assert!(
        w.app
            .inner()
            .notifications
            .notify(&ctx, muted)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn invalid_preferences_change_nothing() {
    let w = World::new().await;
    let token = &w.a.viewer.token;
    let refused = w
        .put(
            token,
            "/api/v2/notifications/preferences",
            json!({ "muted_categories": ["Bad Category!"] }),
        )
        .await;
    refused.expect_error(400, "validation_error");
    w.assert_not_audited(&refused).await;
    let prefs = w.get(token, "/api/v2/notifications/preferences").await;
    assert_eq!(prefs.body["muted_categories"], json!([]));
    w.get(token, "/api/v2/notifications?category=Bad!")
        .await
        .expect_error(400, "validation_error");
}

#[tokio::test]
async fn nobody_touches_someone_elses_notifications() {
    let w = World::new().await;
    let id = notify(&w, w.a.id, &w.a.viewer, "system", "Private note").await;
    for token in [&w.a.admin.token, &w.b.admin.token] {
        let resp = w
            .post(token, &format!("/api/v2/notifications/{id}/read"), json!({}))
            .await;
        resp.expect_error(404, "not_found");
        assert!(!resp.body.to_string().contains("Private note"));
        w.assert_not_audited(&resp).await;
    }
    assert_eq!(
        w.total(&w.a.viewer.token, "/api/v2/notifications?unread=true")
            .await,
        1
    );
    // API keys have no inbox.
    let (_, key) = w.api_key(&w.a.admin.token, &["admin"]).await;
    let denied = w.post(&key, "/api/v2/notifications/read-all", json!({})).await;
    denied.expect_error(403, "permission_denied");
    w.assert_not_audited(&denied).await;
    w.get(&key, "/api/v2/notifications")
        .await
        .expect_error(403, "permission_denied");
}
