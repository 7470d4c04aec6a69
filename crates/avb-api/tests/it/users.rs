//! `/api/v2/users…`.

use crate::support::World;
use serde_json::json;

#[tokio::test]
async fn users_read_and_change_their_own_profile() {
    let w = World::new().await;
    let me = w.get(&w.a.developer.token, "/api/v2/users/me").await;
    me.expect(200);
    assert_eq!(me.str("email"), w.a.developer.email);
    let changed = w
        .patch(
            &w.a.developer.token,
            "/api/v2/users/me",
            json!({ "timezone": "Europe/Paris" }),
        )
        .await;
    changed.expect(200);
    assert_eq!(changed.body["profile"]["timezone"], "Europe/Paris");
    w.assert_audited(&changed, "user").await;
    let refused = w
        .patch(
            &w.a.developer.token,
            "/api/v2/users/me",
            json!({ "avatar_url": "ftp://x" }),
        )
        .await;
    refused.expect_error(400, "validation_error");
    w.assert_not_audited(&refused).await;
    let me = w.get(&w.a.developer.token, "/api/v2/users/me").await;
    assert_eq!(me.body["profile"]["avatar_url"], "");
}

#[tokio::test]
async fn members_list_and_read_users_of_their_tenant() {
    let w = World::new().await;
    let list = w.get(&w.a.viewer.token, "/api/v2/users").await;
    list.expect(200);
    assert_eq!(list.body["total"], 3);
    let admins = w.get(&w.a.viewer.token, "/api/v2/users?role=admin").await;
    assert_eq!(admins.body["total"], 1);
    let got = w
        .get(&w.a.viewer.token, &format!("/api/v2/users/{}", w.a.developer.id))
        .await;
    got.expect(200);
    assert_eq!(got.str("email"), w.a.developer.email);
}

#[tokio::test]
async fn admins_invite_users_who_can_act_with_their_role() {
    let w = World::new().await;
    let invited = w
        .post(
            &w.a.admin.token,
            "/api/v2/users",
            json!({ "email": "new@alpha.test", "roles": ["developer"] }),
        )
        .await;
    invited.expect(201);
    w.assert_audited(&invited, "user").await;
    let token = crate::support::mint(
        &w.jwt,
        "new-sub",
        "new@alpha.test",
        vec![avb_core::Role::Developer],
        Some(w.a.id),
    );
    w.post(
        &token,
        "/api/v2/projects",
        json!({ "name": "by the new developer" }),
    )
    .await
    .expect(201);
}

#[tokio::test]
async fn invalid_invitations_change_nothing() {
    let w = World::new().await;
    let refused = w
        .post(
            &w.a.admin.token,
            "/api/v2/users",
            json!({ "email": "not-an-email", "roles": ["wizard"] }),
        )
        .await;
    refused.expect_error(400, "validation_error");
    w.assert_not_audited(&refused).await;
    assert_eq!(w.total(&w.a.admin.token, "/api/v2/users").await, 3);
    let taken = w
        .post(
            &w.a.admin.token,
            "/api/v2/users",
            json!({ "email": w.b.viewer.email, "roles": ["viewer"] }),
        )
        .await;
    taken.expect_error(409, "conflict");
}

#[tokio::test]
async fn only_administrators_invite_change_roles_and_deactivate() {
    let w = World::new().await;
    for token in [&w.a.viewer.token, &w.a.developer.token] {
        let refused = w
            .post(
                token,
                "/api/v2/users",
                json!({ "email": "x@alpha.test", "roles": ["viewer"] }),
            )
            .await;
        refused.expect_error(403, "permission_denied");
        w.assert_not_audited(&refused).await;
        w.put(
            token,
            &format!("/api/v2/users/{}/roles", w.a.viewer.id),
            json!({ "roles": ["admin"] }),
        )
        .await
        .expect_error(403, "permission_denied");
        w.post(
            token,
            &format!("/api/v2/users/{}/deactivate", w.a.admin.id),
            json!({}),
        )
        .await
        .expect_error(403, "permission_denied");
    }
    assert_eq!(w.total(&w.a.admin.token, "/api/v2/users").await, 3);
}

#[tokio::test]
async fn role_changes_take_effect_in_the_permission_graph() {
    let w = World::new().await;
    w.post(&w.a.viewer.token, "/api/v2/projects", json!({ "name": "p" }))
        .await
        .expect_error(403, "permission_denied");
    let changed = w
        .put(
            &w.a.admin.token,
            &format!("/api/v2/users/{}/roles", w.a.viewer.id),
            json!({ "roles": ["developer"] }),
        )
        .await;
    changed.expect(200);
    assert_eq!(changed.body["roles"], json!(["developer"]));
    w.assert_audited(&changed, "user").await;
    w.post(&w.a.viewer.token, "/api/v2/projects", json!({ "name": "p" }))
        .await
        .expect(201);
    let back = w
        .put(
            &w.a.admin.token,
            &format!("/api/v2/users/{}/roles", w.a.viewer.id),
            json!({ "roles": ["viewer"] }),
        )
        .await;
    back.expect(200);
    w.post(&w.a.viewer.token, "/api/v2/projects", json!({ "name": "q" }))
        .await
        .expect_error(403, "permission_denied");
    w.put(
        &w.a.admin.token,
        &format!("/api/v2/users/{}/roles", w.a.viewer.id),
        json!({ "roles": [] }),
    )
    .await
    .expect_error(400, "validation_error");
}

#[tokio::test]
async fn deactivated_users_are_locked_out_until_reactivated() {
    let w = World::new().await;
    w.get(&w.a.developer.token, "/api/v2/users/me").await.expect(200);
    let off = w
        .post(
            &w.a.admin.token,
            &format!("/api/v2/users/{}/deactivate", w.a.developer.id),
            json!({}),
        )
        .await;
    off.expect(200);
    w.assert_audited(&off, "user").await;
    w.get(&w.a.developer.token, "/api/v2/users/me")
        .await
        .expect_error(401, "authentication_failed");
    let on = w
        .post(
            &w.a.admin.token,
            &format!("/api/v2/users/{}/reactivate", w.a.developer.id),
            json!({}),
        )
        .await;
    on.expect(200);
    w.assert_audited(&on, "user").await;
    w.post(
        &w.a.developer.token,
        "/api/v2/projects",
        json!({ "name": "back" }),
    )
    .await
    .expect(201);
    let myself = w
        .post(
            &w.a.admin.token,
            &format!("/api/v2/users/{}/deactivate", w.a.admin.id),
            json!({}),
        )
        .await;
    myself.expect_error(409, "conflict");
}

#[tokio::test]
async fn other_tenants_users_are_not_found() {
    let w = World::new().await;
    let target = w.a.viewer.id;
    for resp in [
        w.get(&w.b.admin.token, &format!("/api/v2/users/{target}")).await,
        w.put(
            &w.b.admin.token,
            &format!("/api/v2/users/{target}/roles"),
            json!({ "roles": ["admin"] }),
        )
        .await,
        w.post(
            &w.b.admin.token,
            &format!("/api/v2/users/{target}/deactivate"),
            json!({}),
        )
        .await,
        w.post(
            &w.b.admin.token,
            &format!("/api/v2/users/{target}/reactivate"),
            json!({}),
        )
        .await,
    ] {
        resp.expect_error(404, "not_found");
        assert!(
            !resp.body.to_string().contains(&w.a.viewer.email),
            "no data leaks: {}",
            resp.body
        );
        w.assert_not_audited(&resp).await;
    }
    let listed = w.get(&w.b.admin.token, "/api/v2/users").await;
    assert!(!listed.body.to_string().contains(&w.a.viewer.email));
}
