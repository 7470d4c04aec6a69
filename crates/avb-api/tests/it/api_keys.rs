//! `/api/v2/api-keys…`.

use crate::support::World;
use serde_json::json;

#[tokio::test]
async fn a_created_key_shows_its_secret_once_and_never_its_hash() {
    let w = World::new().await;
    let created = w
        .post(
            &w.a.developer.token,
            "/api/v2/api-keys",
            json!({ "name": "ci", "scopes": ["admin", "realtime"] }),
        )
        .await;
    created.expect(201);
    w.assert_audited(&created, "api_key").await;
    let secret = created.str("key");
    assert!(secret.starts_with("avb_"));
    assert_eq!(created.str("key_prefix"), secret[..12]);
    assert!(created.body.get("key_hash").is_none(), "{}", created.body);
    let id = created.str("id");

    let got = w
        .get(&w.a.developer.token, &format!("/api/v2/api-keys/{id}"))
        .await;
    got.expect(200);
    assert!(
        got.body.get("key").is_none() && got.body.get("key_hash").is_none(),
        "{}",
        got.body
    );
    let listed = w.get(&w.a.admin.token, "/api/v2/api-keys?revoked=false").await;
    assert_eq!(listed.body["total"], 1);
    assert!(!listed.body.to_string().contains("key_hash"));
    assert!(!listed.body.to_string().contains(&secret));
    // The audit trail does not hold the secret or its hash either.
    let audit = serde_json::to_string(&w.audit_of(&created).await).unwrap();
    assert!(!audit.contains(&secret) && !audit.contains("key_hash"));

    // The key works at once, as the tenant's developer-level principal.
    w.get(&secret, "/api/v2/projects").await.expect(200);
}

#[tokio::test]
async fn revoked_keys_stop_working_immediately() {
    let w = World::new().await;
    let (id, secret) = w.api_key(&w.a.developer.token, &["admin"]).await;
    w.get(&secret, "/api/v2/projects").await.expect(200);
    let revoked = w
        .post(
            &w.a.developer.token,
            &format!("/api/v2/api-keys/{id}/revoke"),
            json!({}),
        )
        .await;
    revoked.expect(200);
    assert!(revoked.body["revoked_at"].is_string());
    w.assert_audited(&revoked, "api_key").await;
    w.get(&secret, "/api/v2/projects").await.expect(401);
    w.post(
        &w.a.developer.token,
        &format!("/api/v2/api-keys/{id}/revoke"),
        json!({}),
    )
    .await
    .expect_error(409, "conflict");
}

#[tokio::test]
async fn rotation_replaces_the_secret() {
    let w = World::new().await;
    let (id, old) = w.api_key(&w.a.developer.token, &["admin"]).await;
    w.get(&old, "/api/v2/projects").await.expect(200);
    let rotated = w
        .post(
            &w.a.admin.token,
            &format!("/api/v2/api-keys/{id}/rotate"),
            json!({}),
        )
        .await;
    rotated.expect(200);
    w.assert_audited(&rotated, "api_key").await;
    let new = rotated.str("key");
    assert_ne!(new, old);
    assert_eq!(rotated.body["previous"]["id"], id.as_str());
    assert!(rotated.body["previous"]["revoked_at"].is_string());
    assert!(!rotated.body.to_string().contains("key_hash"));
    w.get(&old, "/api/v2/projects").await.expect(401);
    w.get(&new, "/api/v2/projects").await.expect(200);
    // The replacement has the old key's owner: the developer may revoke it.
    let new_id = rotated.str("id");
    w.post(
        &w.a.developer.token,
        &format!("/api/v2/api-keys/{new_id}/revoke"),
        json!({}),
    )
    .await
    .expect(200);

    let (id, _) = w.api_key(&w.a.developer.token, &["admin"]).await;
    let too_long = w
        .post(
            &w.a.developer.token,
            &format!("/api/v2/api-keys/{id}/rotate"),
            json!({ "grace_seconds": 99_999_999 }),
        )
        .await;
    too_long.expect_error(400, "validation_error");
    w.assert_not_audited(&too_long).await;
}

#[tokio::test]
async fn invalid_keys_are_refused_and_nothing_is_created() {
    let w = World::new().await;
    let refused = w
        .post(
            &w.a.developer.token,
            "/api/v2/api-keys",
            json!({ "name": "", "scopes": ["root"], "rate_limit_tier": "x" }),
        )
        .await;
    refused.expect_error(400, "validation_error");
    for field in ["name", "scopes", "rate_limit_tier"] {
        assert!(
            refused.body["details"].to_string().contains(field),
            "{field}: {}",
            refused.body
        );
    }
    w.assert_not_audited(&refused).await;
    let missing_project = w
        .post(
            &w.a.developer.token,
            "/api/v2/api-keys",
            json!({ "name": "k", "scopes": ["admin"], "project_id": crate::support::unknown_id() }),
        )
        .await;
    missing_project.expect_error(404, "not_found");
    assert_eq!(w.total(&w.a.admin.token, "/api/v2/api-keys").await, 0);
}

#[tokio::test]
async fn viewers_cannot_create_see_or_manage_others_keys() {
    let w = World::new().await;
    let refused = w
        .post(
            &w.a.viewer.token,
            "/api/v2/api-keys",
            json!({ "name": "v", "scopes": ["admin"] }),
        )
        .await;
    refused.expect_error(403, "permission_denied");
    w.assert_not_audited(&refused).await;
    let (id, secret) = w.api_key(&w.a.developer.token, &["admin"]).await;
    w.get(&w.a.viewer.token, &format!("/api/v2/api-keys/{id}"))
        .await
        .expect_error(403, "permission_denied");
    assert_eq!(w.total(&w.a.viewer.token, "/api/v2/api-keys").await, 0);
    for action in ["revoke", "rotate"] {
        let resp = w
            .post(
                &w.a.viewer.token,
                &format!("/api/v2/api-keys/{id}/{action}"),
                json!({}),
            )
            .await;
        resp.expect_error(403, "permission_denied");
        w.assert_not_audited(&resp).await;
    }
    w.get(&secret, "/api/v2/projects").await.expect(200);
}

#[tokio::test]
async fn a_key_cannot_mint_a_more_powerful_key() {
    let w = World::new().await;
    let (_, admin_key) = w.api_key(&w.a.admin.token, &["admin"]).await;
    let escalation = w
        .post(
            &admin_key,
            "/api/v2/api-keys",
            json!({ "name": "more", "scopes": ["billing"] }),
        )
        .await;
    escalation.expect_error(403, "permission_denied");
    w.assert_not_audited(&escalation).await;
    w.post(
        &admin_key,
        "/api/v2/api-keys",
        json!({ "name": "same", "scopes": ["admin"] }),
    )
    .await
    .expect(201);
    let (_, realtime_key) = w.api_key(&w.a.admin.token, &["realtime"]).await;
    w.post(
        &realtime_key,
        "/api/v2/api-keys",
        json!({ "name": "k", "scopes": ["realtime"] }),
    )
    .await
    .expect_error(403, "permission_denied");
}

#[tokio::test]
async fn other_tenants_keys_are_not_found() {
    let w = World::new().await;
    let (id, secret) = w.api_key(&w.a.admin.token, &["admin"]).await;
    for resp in [
        w.get(&w.b.admin.token, &format!("/api/v2/api-keys/{id}")).await,
        w.post(
            &w.b.admin.token,
            &format!("/api/v2/api-keys/{id}/revoke"),
            json!({}),
        )
        .await,
        w.post(
            &w.b.admin.token,
            &format!("/api/v2/api-keys/{id}/rotate"),
            json!({}),
        )
        .await,
    ] {
        resp.expect_error(404, "not_found");
        assert!(!resp.body.to_string().contains(&secret[..12]));
        w.assert_not_audited(&resp).await;
    }
    assert_eq!(w.total(&w.b.admin.token, "/api/v2/api-keys").await, 0);
    w.get(&secret, "/api/v2/projects").await.expect(200);
}
