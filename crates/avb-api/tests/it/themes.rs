//! `/api/v2/themes…`.

use crate::support::World;
use serde_json::{Value, json};

fn theme(name: &str) -> Value {
    json!({
        "name": name, "text_color": "#111111", "background_color": "#ffffff", "primary_color": "#6366f1",
        "variables": { "--radius": "4px" }
    })
}

#[tokio::test]
async fn themes_have_a_full_lifecycle() {
    let w = World::new().await;
    let created = w
        .post(&w.a.developer.token, "/api/v2/themes", theme("Daylight"))
        .await;
    created.expect(201);
    w.assert_audited(&created, "theme").await;
    let id = created.str("id");
    w.get(&w.a.viewer.token, &format!("/api/v2/themes/{id}"))
        .await
        .expect(200);
    assert_eq!(w.total(&w.a.viewer.token, "/api/v2/themes").await, 1);
    let changed = w
        .patch(
            &w.a.developer.token,
            &format!("/api/v2/themes/{id}"),
            json!({ "primary_color": "#000000" }),
        )
        .await;
    changed.expect(200);
    w.assert_audited(&changed, "theme").await;
    let deleted = w
        .delete(&w.a.developer.token, &format!("/api/v2/themes/{id}"))
        .await;
    deleted.expect(204);
    w.assert_audited(&deleted, "theme").await;
    w.get(&w.a.viewer.token, &format!("/api/v2/themes/{id}"))
        .await
        .expect_error(404, "not_found");
}

#[tokio::test]
async fn unreadable_or_unsafe_themes_are_refused() {
    let w = World::new().await;
    let mut low = theme("Fog");
    low["text_color"] = json!("#777777");
    low["background_color"] = json!("#888888");
    let refused = w.post(&w.a.developer.token, "/api/v2/themes", low).await;
    refused.expect_error(400, "validation_error");
    assert!(
        refused.body["details"].to_string().contains("contrast"),
        "{}",
        refused.body
    );
    w.assert_not_audited(&refused).await;
    for value in [
        "url(https://evil.test/x.png)",
        "expression(alert(1))",
        "javascript:alert(1)",
        "<script>",
    ] {
        let mut unsafe_css = theme("Evil");
        unsafe_css["variables"] = json!({ "--bg": value });
        let refused = w.post(&w.a.developer.token, "/api/v2/themes", unsafe_css).await;
        refused.expect_error(400, "validation_error");
        w.assert_not_audited(&refused).await;
    }
    assert_eq!(w.total(&w.a.developer.token, "/api/v2/themes").await, 0);

    let id = w
        .post(&w.a.developer.token, "/api/v2/themes", theme("Plain"))
        .await
        .str("id");
    let unreadable = w
        .patch(
            &w.a.developer.token,
            &format!("/api/v2/themes/{id}"),
            json!({ "background_color": "#222222" }),
        )
        .await;
    unreadable.expect_error(400, "validation_error");
    w.assert_not_audited(&unreadable).await;
    let kept = w.get(&w.a.developer.token, &format!("/api/v2/themes/{id}")).await;
    assert_eq!(kept.str("background_color"), "#ffffff");
}

#[tokio::test]
async fn viewers_cannot_write_themes() {
    let w = World::new().await;
    let denied = w.post(&w.a.viewer.token, "/api/v2/themes", theme("Mine")).await;
    denied.expect_error(403, "permission_denied");
    w.assert_not_audited(&denied).await;
    let id = w
        .post(&w.a.admin.token, "/api/v2/themes", theme("Admin's"))
        .await
        .str("id");
    let patch = w
        .patch(
            &w.a.viewer.token,
            &format!("/api/v2/themes/{id}"),
            json!({ "name": "x" }),
        )
        .await;
    patch.expect_error(403, "permission_denied");
    w.assert_not_audited(&patch).await;
    // theme#delete = owner + tenant->administrate.
    w.delete(&w.a.developer.token, &format!("/api/v2/themes/{id}"))
        .await
        .expect_error(403, "permission_denied");
    w.delete(&w.a.viewer.token, &format!("/api/v2/themes/{id}"))
        .await
        .expect_error(403, "permission_denied");
    assert_eq!(w.total(&w.a.admin.token, "/api/v2/themes").await, 1);
}

#[tokio::test]
async fn visibility_follows_is_public() {
    let w = World::new().await;
    let billing = w.invite(&w.a.admin.token, w.a.id, "alpha", "billing").await;
    let id = w
        .post(&w.a.developer.token, "/api/v2/themes", theme("Shared"))
        .await
        .str("id");
    w.get(&billing.token, &format!("/api/v2/themes/{id}"))
        .await
        .expect_error(403, "permission_denied");
    assert_eq!(w.total(&billing.token, "/api/v2/themes").await, 0);
    let public = w
        .patch(
            &w.a.developer.token,
            &format!("/api/v2/themes/{id}"),
            json!({ "is_public": true }),
        )
        .await;
    public.expect(200);
    w.get(&billing.token, &format!("/api/v2/themes/{id}"))
        .await
        .expect(200);
    assert_eq!(w.total(&billing.token, "/api/v2/themes?is_public=true").await, 1);
    w.patch(
        &w.a.developer.token,
        &format!("/api/v2/themes/{id}"),
        json!({ "is_public": false }),
    )
    .await
    .expect(200);
    w.get(&billing.token, &format!("/api/v2/themes/{id}"))
        .await
        .expect_error(403, "permission_denied");
}

#[tokio::test]
async fn other_tenants_themes_are_not_found_even_when_public() {
    let w = World::new().await;
    let mut shared = theme("Alpha public");
    shared["is_public"] = json!(true);
    let id = w
        .post(&w.a.developer.token, "/api/v2/themes", shared)
        .await
        .str("id");
    for resp in [
        w.get(&w.b.admin.token, &format!("/api/v2/themes/{id}")).await,
        w.patch(
            &w.b.admin.token,
            &format!("/api/v2/themes/{id}"),
            json!({ "name": "x" }),
        )
        .await,
        w.delete(&w.b.admin.token, &format!("/api/v2/themes/{id}")).await,
    ] {
        resp.expect_error(404, "not_found");
        assert!(!resp.body.to_string().contains("Alpha public"));
        w.assert_not_audited(&resp).await;
    }
    assert_eq!(w.total(&w.b.admin.token, "/api/v2/themes").await, 0);
}
