//! `/api/v2/sessions…` (REST side).

use crate::support::{World, unknown_id};
use avb_core::{Ctx, RequestId, SessionId};
use avb_tenancy::model::SessionEventType;
use avb_tenancy::session::AppendEventRequest;
use serde_json::json;

async fn log_events(w: &World, tenant: avb_core::TenantId, session: &str, n: usize) {
    let ctx = Ctx::system(
        RequestId::generate(w.app.inner().ids.as_ref()),
        "voice",
        Some(tenant),
    );
    let id: SessionId = session.parse().unwrap();
    for i in 0..n {
        let kind = if i % 2 == 0 {
            SessionEventType::Transcript
        } else {
            SessionEventType::Response
        };
        let req = AppendEventRequest {
            event_type: kind,
            content: json!({ "text": format!("line {i}") }),
            duration_ms: None,
        };
        w.app.inner().sessions.append_event(&ctx, id, req).await.unwrap();
    }
}

#[tokio::test]
async fn sessions_are_opened_listed_read_and_terminated() {
    let w = World::new().await;
    let project = w.project(&w.a.developer.token).await;
    let opened = w
        .post(
            &w.a.developer.token,
            "/api/v2/sessions",
            json!({ "project_id": project, "config": { "voice": "x" } }),
        )
        .await;
    opened.expect(201);
    assert_eq!(opened.str("status"), "created");
    w.assert_audited(&opened, "session").await;
    let id = opened.str("id");

    let got = w.get(&w.a.viewer.token, &format!("/api/v2/sessions/{id}")).await;
    got.expect(200);
    assert_eq!(got.str("project_id"), project);
    assert_eq!(
        w.total(
            &w.a.viewer.token,
            &format!("/api/v2/sessions?status=created&project_id={project}")
        )
        .await,
        1
    );
    assert_eq!(
        w.total(&w.a.viewer.token, "/api/v2/sessions?status=completed")
            .await,
        0
    );
    assert_eq!(
        w.total(
            &w.a.viewer.token,
            "/api/v2/sessions?created_from=2000-01-01T00:00:00Z"
        )
        .await,
        1
    );
    assert_eq!(
        w.total(&w.a.viewer.token, "/api/v2/sessions?to=2000-01-01T00:00:00Z")
            .await,
        0
    );
    w.get(&w.a.viewer.token, "/api/v2/sessions?status=sleeping")
        .await
        .expect_error(400, "validation_error");
    w.get(
        &w.a.viewer.token,
        "/api/v2/sessions?from=2030-01-01T00:00:00Z&to=2020-01-01T00:00:00Z",
    )
    .await
    .expect_error(400, "validation_error");

    let ended = w
        .post(
            &w.a.developer.token,
            &format!("/api/v2/sessions/{id}/terminate"),
            json!({}),
        )
        .await;
    ended.expect(200);
    assert_eq!(ended.str("status"), "terminated");
    w.assert_audited(&ended, "session").await;
    let again = w
        .post(
            &w.a.developer.token,
            &format!("/api/v2/sessions/{id}/terminate"),
            json!({}),
        )
        .await;
    again.expect_error(409, "conflict");
    w.assert_not_audited(&again).await;
}

#[tokio::test]
async fn transcripts_page_by_sequence_and_type() {
    let w = World::new().await;
    let id = w
        .post(&w.a.developer.token, "/api/v2/sessions", json!({}))
        .await
        .str("id");
    log_events(&w, w.a.id, &id, 5).await;
    let all = w
        .get(&w.a.viewer.token, &format!("/api/v2/sessions/{id}/events"))
        .await;
    all.expect(200);
    assert_eq!(all.body["total"], 5);
    assert_eq!(all.body["items"][0]["sequence"], 1);
    let after = w
        .get(
            &w.a.viewer.token,
            &format!("/api/v2/sessions/{id}/events?after_sequence=3"),
        )
        .await;
    assert_eq!(after.body["total"], 2);
    assert_eq!(after.body["items"][0]["sequence"], 4);
    let replies = w
        .get(
            &w.a.viewer.token,
            &format!("/api/v2/sessions/{id}/events?type=response&limit=1"),
        )
        .await;
    assert_eq!(replies.body["total"], 2);
    assert_eq!(replies.body["items"].as_array().unwrap().len(), 1);
    w.get(
        &w.a.viewer.token,
        &format!("/api/v2/sessions/{id}/events?type=gossip"),
    )
    .await
    .expect_error(400, "validation_error");
}

#[tokio::test]
async fn invalid_sessions_are_refused_and_nothing_is_opened() {
    let w = World::new().await;
    let refused = w
        .post(
            &w.a.developer.token,
            "/api/v2/sessions",
            json!({ "config": "loud" }),
        )
        .await;
    refused.expect_error(400, "validation_error");
    w.assert_not_audited(&refused).await;
    let nowhere = w
        .post(
            &w.a.developer.token,
            "/api/v2/sessions",
            json!({ "project_id": unknown_id() }),
        )
        .await;
    nowhere.expect_error(404, "not_found");
    assert_eq!(w.total(&w.a.viewer.token, "/api/v2/sessions").await, 0);
}

#[tokio::test]
async fn viewers_neither_open_nor_terminate_sessions() {
    let w = World::new().await;
    let refused = w.post(&w.a.viewer.token, "/api/v2/sessions", json!({})).await;
    refused.expect_error(403, "permission_denied");
    w.assert_not_audited(&refused).await;
    let id = w
        .post(&w.a.developer.token, "/api/v2/sessions", json!({}))
        .await
        .str("id");
    let refused = w
        .post(
            &w.a.viewer.token,
            &format!("/api/v2/sessions/{id}/terminate"),
            json!({}),
        )
        .await;
    refused.expect_error(403, "permission_denied");
    w.assert_not_audited(&refused).await;
    assert_eq!(
        w.get(&w.a.viewer.token, &format!("/api/v2/sessions/{id}"))
            .await
            .str("status"),
        "created"
    );
}

#[tokio::test]
async fn api_keys_open_sessions_with_the_realtime_scope_only() {
    let w = World::new().await;
    let project = w.project(&w.a.admin.token).await;
    let other = w.project(&w.a.admin.token).await;
    let (key_id, realtime) = w.api_key(&w.a.admin.token, &["realtime"]).await;
    let opened = w.post(&realtime, "/api/v2/sessions", json!({})).await;
    opened.expect(201);
    assert_eq!(opened.str("api_key_id"), key_id);
    w.assert_audited(&opened, "session").await;
    let (_, admin_only) = w.api_key(&w.a.admin.token, &["admin"]).await;
    w.post(&admin_only, "/api/v2/sessions", json!({}))
        .await
        .expect_error(403, "insufficient_scope");

    let bound = w
        .post(
            &w.a.admin.token,
            "/api/v2/api-keys",
            json!({ "name": "b", "scopes": ["realtime"], "project_id": project }),
        )
        .await
        .str("key");
    let in_bound = w.post(&bound, "/api/v2/sessions", json!({})).await;
    in_bound.expect(201);
    assert_eq!(in_bound.str("project_id"), project);
    w.post(&bound, "/api/v2/sessions", json!({ "project_id": other }))
        .await
        .expect_error(403, "permission_denied");
}

#[tokio::test]
async fn other_tenants_sessions_are_not_found() {
    let w = World::new().await;
    let id = w
        .post(
            &w.a.developer.token,
            "/api/v2/sessions",
            json!({ "config": { "secret": "alpha-only" } }),
        )
        .await
        .str("id");
    log_events(&w, w.a.id, &id, 1).await;
    for resp in [
        w.get(&w.b.admin.token, &format!("/api/v2/sessions/{id}")).await,
        w.get(&w.b.admin.token, &format!("/api/v2/sessions/{id}/events"))
            .await,
        w.post(
            &w.b.admin.token,
            &format!("/api/v2/sessions/{id}/terminate"),
            json!({}),
        )
        .await,
    ] {
        resp.expect_error(404, "not_found");
        assert!(!resp.body.to_string().contains("alpha-only") && !resp.body.to_string().contains("line 0"));
        w.assert_not_audited(&resp).await;
    }
    assert_eq!(w.total(&w.b.admin.token, "/api/v2/sessions").await, 0);
}
