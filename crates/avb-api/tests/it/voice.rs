//! `/api/v2/voice/…`: configuration, personas, wake words.

use crate::support::World;
use serde_json::json;

#[tokio::test]
async fn the_voice_configuration_is_read_by_members_and_changed_by_developers() {
    let w = World::new().await;
    let defaults = w.get(&w.a.viewer.token, "/api/v2/voice/config").await;
    defaults.expect(200);
    assert_eq!(defaults.body["version"], 0);
    assert_eq!(defaults.str("tts_voice"), "am_onyx");

    let saved = w
        .patch(
            &w.a.developer.token,
            "/api/v2/voice/config",
            json!({ "tts_speed": 1.5, "language": "fr" }),
        )
        .await;
    saved.expect(200);
    assert_eq!(saved.body["version"], 1);
    w.assert_audited(&saved, "voice_config").await;
    // Now an object of the graph, read through voice_config#view.
    let read = w.get(&w.a.viewer.token, "/api/v2/voice/config").await;
    read.expect(200);
    assert_eq!(read.str("language"), "fr");
    let again = w
        .patch(
            &w.a.developer.token,
            "/api/v2/voice/config",
            json!({ "temperature": 0.5 }),
        )
        .await;
    again.expect(200);
    assert_eq!(again.body["version"], 2);
    w.assert_audited(&again, "voice_config").await;
}

#[tokio::test]
async fn invalid_or_unauthorised_configuration_changes_change_nothing() {
    let w = World::new().await;
    let refused = w
        .patch(
            &w.a.developer.token,
            "/api/v2/voice/config",
            json!({ "tts_speed": 10.0 }),
        )
        .await;
    refused.expect_error(400, "validation_error");
    w.assert_not_audited(&refused).await;
    let denied = w
        .patch(
            &w.a.viewer.token,
            "/api/v2/voice/config",
            json!({ "tts_speed": 1.2 }),
        )
        .await;
    denied.expect_error(403, "permission_denied");
    w.assert_not_audited(&denied).await;
    assert_eq!(
        w.get(&w.a.viewer.token, "/api/v2/voice/config").await.body["version"],
        0
    );
    // Each tenant has its own configuration.
    w.patch(
        &w.a.developer.token,
        "/api/v2/voice/config",
        json!({ "language": "de" }),
    )
    .await
    .expect(200);
    assert_eq!(
        w.get(&w.b.viewer.token, "/api/v2/voice/config")
            .await
            .str("language"),
        "en"
    );
}

#[tokio::test]
async fn personas_have_a_full_lifecycle() {
    let w = World::new().await;
    let created = w
        .post(
            &w.a.developer.token,
            "/api/v2/voice/personas",
            json!({ "name": "Concierge", "instructions": "Be kind." }),
        )
        .await;
    created.expect(201);
    w.assert_audited(&created, "persona").await;
    let id = created.str("id");
    assert_eq!(created.str("owner_id"), w.a.developer.id.to_string());
    w.get(&w.a.viewer.token, &format!("/api/v2/voice/personas/{id}"))
        .await
        .expect(200);
    assert_eq!(
        w.total(&w.a.viewer.token, "/api/v2/voice/personas?is_active=true")
            .await,
        1
    );
    let changed = w
        .patch(
            &w.a.developer.token,
            &format!("/api/v2/voice/personas/{id}"),
            json!({ "temperature": 0.2 }),
        )
        .await;
    changed.expect(200);
    w.assert_audited(&changed, "persona").await;
    let deleted = w
        .delete(&w.a.developer.token, &format!("/api/v2/voice/personas/{id}"))
        .await;
    deleted.expect(204);
    w.assert_audited(&deleted, "persona").await;
    w.get(&w.a.viewer.token, &format!("/api/v2/voice/personas/{id}"))
        .await
        .expect_error(404, "not_found");
}

#[tokio::test]
async fn persona_validation_and_permissions() {
    let w = World::new().await;
    let refused = w
        .post(
            &w.a.developer.token,
            "/api/v2/voice/personas",
            json!({ "name": "", "temperature": 5.0 }),
        )
        .await;
    refused.expect_error(400, "validation_error");
    w.assert_not_audited(&refused).await;
    assert_eq!(w.total(&w.a.viewer.token, "/api/v2/voice/personas").await, 0);

    let denied = w
        .post(
            &w.a.viewer.token,
            "/api/v2/voice/personas",
            json!({ "name": "Mine" }),
        )
        .await;
    denied.expect_error(403, "permission_denied");
    w.assert_not_audited(&denied).await;
    let id = w
        .post(
            &w.a.admin.token,
            "/api/v2/voice/personas",
            json!({ "name": "Admin's" }),
        )
        .await
        .str("id");
    w.patch(
        &w.a.viewer.token,
        &format!("/api/v2/voice/personas/{id}"),
        json!({ "name": "x" }),
    )
    .await
    .expect_error(403, "permission_denied");
    // persona#delete = owner + tenant->administrate.
    w.delete(&w.a.developer.token, &format!("/api/v2/voice/personas/{id}"))
        .await
        .expect_error(403, "permission_denied");
    let bad = w
        .patch(
            &w.a.admin.token,
            &format!("/api/v2/voice/personas/{id}"),
            json!({ "language": "??" }),
        )
        .await;
    bad.expect_error(400, "validation_error");
    w.assert_not_audited(&bad).await;

    for resp in [
        w.get(&w.b.admin.token, &format!("/api/v2/voice/personas/{id}"))
            .await,
        w.patch(
            &w.b.admin.token,
            &format!("/api/v2/voice/personas/{id}"),
            json!({ "name": "x" }),
        )
        .await,
        w.delete(&w.b.admin.token, &format!("/api/v2/voice/personas/{id}"))
            .await,
    ] {
        resp.expect_error(404, "not_found");
        assert!(!resp.body.to_string().contains("Admin's"));
    }
    assert_eq!(w.total(&w.b.admin.token, "/api/v2/voice/personas").await, 0);
}

#[tokio::test]
async fn wake_words_have_a_full_lifecycle() {
    let w = World::new().await;
    let created = w
        .post(
            &w.a.developer.token,
            "/api/v2/voice/wake-words",
            json!({ "phrase": "hey  box " }),
        )
        .await;
    created.expect(201);
    assert_eq!(created.str("phrase"), "hey box");
    w.assert_audited(&created, "wake_word").await;
    let id = created.str("id");
    w.get(&w.a.viewer.token, &format!("/api/v2/voice/wake-words/{id}"))
        .await
        .expect(200);
    assert_eq!(w.total(&w.a.viewer.token, "/api/v2/voice/wake-words").await, 1);
    let changed = w
        .patch(
            &w.a.developer.token,
            &format!("/api/v2/voice/wake-words/{id}"),
            json!({ "sensitivity": 0.9 }),
        )
        .await;
    changed.expect(200);
    w.assert_audited(&changed, "wake_word").await;
    let deleted = w
        .delete(&w.a.developer.token, &format!("/api/v2/voice/wake-words/{id}"))
        .await;
    deleted.expect(204);
    w.assert_audited(&deleted, "wake_word").await;
    assert_eq!(w.total(&w.a.viewer.token, "/api/v2/voice/wake-words").await, 0);
}

#[tokio::test]
async fn wake_word_validation_permissions_and_isolation() {
    let w = World::new().await;
    let refused = w
        .post(
            &w.a.developer.token,
            "/api/v2/voice/wake-words",
            json!({ "phrase": "x1" }),
        )
        .await;
    refused.expect_error(400, "validation_error");
    w.assert_not_audited(&refused).await;
    let denied = w
        .post(
            &w.a.viewer.token,
            "/api/v2/voice/wake-words",
            json!({ "phrase": "hello" }),
        )
        .await;
    denied.expect_error(403, "permission_denied");
    w.assert_not_audited(&denied).await;
    assert_eq!(w.total(&w.a.viewer.token, "/api/v2/voice/wake-words").await, 0);

    let id = w
        .post(
            &w.a.developer.token,
            "/api/v2/voice/wake-words",
            json!({ "phrase": "hello" }),
        )
        .await
        .str("id");
    w.patch(
        &w.a.viewer.token,
        &format!("/api/v2/voice/wake-words/{id}"),
        json!({ "is_active": false }),
    )
    .await
    .expect_error(403, "permission_denied");
    w.delete(&w.a.viewer.token, &format!("/api/v2/voice/wake-words/{id}"))
        .await
        .expect_error(403, "permission_denied");
    w.post(
        &w.a.developer.token,
        "/api/v2/voice/wake-words",
        json!({ "phrase": "HELLO" }),
    )
    .await
    .expect_error(409, "conflict");
    for resp in [
        w.get(&w.b.admin.token, &format!("/api/v2/voice/wake-words/{id}"))
            .await,
        w.patch(
            &w.b.admin.token,
            &format!("/api/v2/voice/wake-words/{id}"),
            json!({ "is_active": false }),
        )
        .await,
        w.delete(&w.b.admin.token, &format!("/api/v2/voice/wake-words/{id}"))
            .await,
    ] {
        resp.expect_error(404, "not_found");
        assert!(!resp.body.to_string().contains("hello"));
    }
}
