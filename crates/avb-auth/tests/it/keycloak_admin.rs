//! The Keycloak admin adapter against the validating mock (`avb_testkit::mocks::keycloak_admin`), which checks
//! every request against Keycloak's admin OpenAPI document: the tenant-group and user flow, status mapping, token
//! caching, and proof that the mock does reject malformed requests.

use avb_auth::adapters::keycloak_admin::{KeycloakAdminClient, KeycloakAdminConfig};
use avb_auth::keycloak_admin::{KeycloakAdmin, KeycloakGroupId, KeycloakUserId, NewKeycloakUser};
use avb_core::{Ctx, ErrorCode, HasCode, Principal, RequestId, SequentialIds};
use avb_testkit::mocks::keycloak_admin::{KeycloakAdminMock, start_keycloak_admin_mock};
use serde_json::{Value, json};
use std::time::Duration;

fn ctx() -> Ctx {
    Ctx::new(
        RequestId::generate(&SequentialIds::default()),
        Principal::Anonymous,
    )
}

fn client(mock: &KeycloakAdminMock) -> KeycloakAdminClient {
    KeycloakAdminClient::new(KeycloakAdminConfig::new(
        &mock.base_url,
        &mock.realm,
        &mock.client_id,
        &mock.client_secret,
    ))
    .unwrap()
}

fn assert_all_valid(mock: &KeycloakAdminMock) {
    let invalid = mock.invalid_requests();
    assert!(
        invalid.is_empty(),
        "requests violating the document: {invalid:#?}"
    );
}

fn operation_ids(mock: &KeycloakAdminMock) -> Vec<String> {
    mock.requests()
        .into_iter()
        .filter_map(|r| r.operation_id)
        .collect()
}

#[tokio::test]
async fn tenant_group_user_and_membership_flow_sends_only_valid_requests() {
    let mock = start_keycloak_admin_mock().await.unwrap();
    let admin = client(&mock);
    let ctx = ctx();
    let tenant = uuid::Uuid::new_v4();

    let group = admin
        .create_group(&ctx, &format!("tenant-{tenant}"))
        .await
        .unwrap();
    let again = admin
        .create_group(&ctx, &format!("tenant-{tenant}"))
        .await
        .unwrap();
    assert_eq!(group, again, "create_group is idempotent");
    assert_eq!(mock.groups().len(), 1);
    let posts = operation_ids(&mock).iter().filter(|o| *o == "postGroups").count();
    assert_eq!(posts, 1, "the second call found the group and created nothing");

    let new_user = NewKeycloakUser::new("Ada@Example.com", tenant)
        .names("Ada", "Lovelace")
        .attribute("locale", "en");
    let user_id = admin.create_user(&ctx, &new_user).await.unwrap();
    let stored = mock.users();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["id"], json!(user_id.0));
    assert_eq!(stored[0]["username"], json!("ada@example.com"));
    assert_eq!(stored[0]["attributes"]["tenant_id"], json!([tenant.to_string()]));

    let found = admin
        .find_user_by_email(&ctx, "ada@example.com")
        .await
        .unwrap()
        .expect("user found by e-mail");
    assert_eq!(found.id, user_id);
    assert_eq!(found.tenant_id(), Some(tenant.to_string().as_str()));
    assert_eq!(found.first_name.as_deref(), Some("Ada"));
    assert!(found.enabled);
    assert!(
        admin
            .find_user_by_email(&ctx, "ada@example")
            .await
            .unwrap()
            .is_none(),
        "a prefix of the address is not a match"
    );
    assert!(
        admin
            .find_user_by_email(&ctx, "nobody@example.com")
            .await
            .unwrap()
            .is_none()
    );

    admin.add_user_to_group(&ctx, &user_id, &group).await.unwrap();
    admin.add_user_to_group(&ctx, &user_id, &group).await.unwrap();
    assert_eq!(mock.members_of(&group.0), vec![user_id.0.clone()]);
    admin
        .remove_user_from_group(&ctx, &user_id, &group)
        .await
        .unwrap();
    assert!(mock.members_of(&group.0).is_empty());

    assert_all_valid(&mock);
    let ops = operation_ids(&mock);
    for expected in [
        "token",
        "getGroupsByRealm",
        "postGroups",
        "postUsers",
        "getUsersByRealm",
        "putUserGroup",
        "deleteUserGroup",
    ] {
        assert!(
            ops.iter().any(|o| o == expected),
            "{expected} not exercised: {ops:?}"
        );
    }
    assert_eq!(mock.tokens_issued(), 1, "the service-account token is cached");
}

#[tokio::test]
async fn duplicate_user_is_a_conflict() {
    let mock = start_keycloak_admin_mock().await.unwrap();
    let admin = client(&mock);
    let user = NewKeycloakUser::new("dup@example.com", "t1");
    admin.create_user(&ctx(), &user).await.unwrap();
    let err = admin.create_user(&ctx(), &user).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Conflict, "{err}");
    assert_eq!(mock.users().len(), 1);
    assert_all_valid(&mock);
}

#[tokio::test]
async fn unknown_user_or_group_is_not_found() {
    let mock = start_keycloak_admin_mock().await.unwrap();
    let admin = client(&mock);
    let user = admin
        .create_user(&ctx(), &NewKeycloakUser::new("m@example.com", "t1"))
        .await
        .unwrap();
    let missing_group = KeycloakGroupId(uuid::Uuid::new_v4().to_string());
    let err = admin
        .add_user_to_group(&ctx(), &user, &missing_group)
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::NotFound, "{err}");
    let group = admin.create_group(&ctx(), "tenant-x").await.unwrap();
    let missing_user = KeycloakUserId("no-such-user".into());
    let err = admin
        .remove_user_from_group(&ctx(), &missing_user, &group)
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::NotFound, "{err}");
    assert_all_valid(&mock);
}

#[tokio::test]
async fn rejected_client_credentials_are_a_configuration_error() {
    let mock = start_keycloak_admin_mock().await.unwrap();
    let admin = KeycloakAdminClient::new(KeycloakAdminConfig::new(
        &mock.base_url,
        &mock.realm,
        &mock.client_id,
        "wrong-secret",
    ))
    .unwrap();
    let err = admin.create_group(&ctx(), "tenant-y").await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::InternalError, "{err}");
    assert!(!err.is_temporary());
    assert!(
        !err.to_string().contains("wrong-secret"),
        "the secret never appears in errors"
    );
    assert_eq!(
        operation_ids(&mock),
        vec!["token".to_owned()],
        "no admin call without a token"
    );
}

#[tokio::test]
async fn forbidden_and_server_errors_are_mapped() {
    let mock = start_keycloak_admin_mock().await.unwrap();
    let admin = client(&mock);
    mock.fail_next(403);
    let err = admin
        .find_user_by_email(&ctx(), "a@example.com")
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        ErrorCode::InternalError,
        "403 is a configuration error: {err}"
    );

    mock.fail_next(503);
    let err = admin
        .find_user_by_email(&ctx(), "a@example.com")
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::ServiceUnavailable, "{err}");
    assert!(err.is_temporary());

    assert_all_valid(&mock);
}

#[tokio::test]
async fn unreachable_keycloak_is_service_unavailable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let admin = KeycloakAdminClient::new(KeycloakAdminConfig::new(
        format!("http://127.0.0.1:{port}"),
        "r",
        "c",
        "s",
    ))
    .unwrap();
    let err = admin.create_group(&ctx(), "g").await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::ServiceUnavailable, "{err}");
}

#[tokio::test]
async fn token_is_refreshed_before_expiry_and_after_revocation() {
    let mock = start_keycloak_admin_mock().await.unwrap();
    mock.set_token_lifetime(Duration::from_secs(2));
    let admin = client(&mock);
    admin.create_group(&ctx(), "a").await.unwrap();
    admin.create_group(&ctx(), "b").await.unwrap();
    assert_eq!(mock.tokens_issued(), 1);
    // Lifetime 2 s, margin capped at half of it: replaced after 1 s.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    admin.create_group(&ctx(), "c").await.unwrap();
    assert_eq!(mock.tokens_issued(), 2);

    mock.set_token_lifetime(Duration::from_secs(300));
    admin.create_group(&ctx(), "d").await.unwrap();
    mock.revoke_tokens();
    admin.create_group(&ctx(), "e").await.unwrap();
    assert!(mock.tokens_issued() >= 3, "a 401 fetches a new token and retries");
    assert_eq!(mock.groups().len(), 5);
    // The one 401 was the mock refusing the revoked token, which it records as a violation of `security`.
    let invalid = mock.invalid_requests();
    assert_eq!(invalid.len(), 1, "{invalid:#?}");
    assert_eq!(invalid[0].status, 401);
}

#[tokio::test]
async fn expired_deadline_fails_before_any_request() {
    let mock = start_keycloak_admin_mock().await.unwrap();
    let admin = client(&mock);
    let expired = ctx().with_deadline(Some(std::time::Instant::now()));
    let err = admin.create_group(&expired, "g").await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Timeout, "{err}");
    assert!(mock.requests().is_empty());
}

#[test]
fn debug_output_redacts_the_client_secret() {
    let config = KeycloakAdminConfig::new("http://127.0.0.1:1", "r", "c", "super-secret-value");
    let client = KeycloakAdminClient::new(config.clone()).unwrap();
    assert!(!format!("{config:?}").contains("super-secret-value"));
    assert!(!format!("{client:?}").contains("super-secret-value"));
}

/// Sends requests by hand, so that a validator that accepts everything would fail this test.
#[tokio::test]
async fn the_mock_flags_malformed_requests() {
    let mock = start_keycloak_admin_mock().await.unwrap();
    let http = reqwest::Client::new();
    let token: Value = http
        .post(format!(
            "{}/realms/{}/protocol/openid-connect/token",
            mock.base_url, mock.realm
        ))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "grant_type=client_credentials&client_id={}&client_secret={}",
            mock.client_id, mock.client_secret
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["access_token"].as_str().unwrap().to_owned();
    let admin = format!("{}/admin/realms/{}", mock.base_url, mock.realm);

    // Wrong types (`enabled` a string, an attribute value not a list) and a misspelt field.
    let response = http
        .post(format!("{admin}/users"))
        .bearer_auth(&token)
        .json(&json!({
            "username": "bad@example.com",
            "emial": "bad@example.com",
            "enabled": "yes",
            "attributes": { "tenant_id": "t1" },
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
    let body: Value = response.json().await.unwrap();
    let violations = body["violations"].to_string();
    assert!(violations.contains("/enabled"), "{violations}");
    assert!(violations.contains("/attributes/tenant_id"), "{violations}");
    assert!(violations.contains("emial"), "{violations}");
    assert!(mock.users().is_empty(), "an invalid request changes nothing");

    // Undeclared query parameter, and a boolean parameter that Keycloak cannot parse.
    let response = http
        .get(format!("{admin}/users?mail=a%40example.com&exact=yes"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
    let violations = response.text().await.unwrap();
    assert!(violations.contains("`mail`"), "{violations}");
    assert!(violations.contains("`exact`"), "{violations}");

    // A method the path does not have, a path the document does not have, a body where none is taken.
    let status = http
        .put(format!("{admin}/groups"))
        .bearer_auth(&token)
        .json(&json!({ "name": "x" }))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 405);
    let status = http
        .get(format!("{admin}/tenants"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 404);
    let status = http
        .put(format!("{admin}/users/u/groups/g"))
        .bearer_auth(&token)
        .json(&json!({ "member": true }))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 422);

    // Body that is not JSON, and a request without a token.
    let status = http
        .post(format!("{admin}/groups"))
        .bearer_auth(&token)
        .header("content-type", "text/plain")
        .body("tenant-z")
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 422);
    let status = http
        .post(format!("{admin}/groups"))
        .json(&json!({ "name": "tenant-z" }))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 401);

    let invalid = mock.invalid_requests();
    assert_eq!(invalid.len(), 7, "{invalid:#?}");
    assert!(mock.groups().is_empty());

    // And a well-formed request passes, so the validator is not rejecting everything.
    let response = http
        .post(format!("{admin}/groups"))
        .bearer_auth(&token)
        .json(&json!({ "name": "tenant-z", "attributes": { "tenant_id": ["t1"] } }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert!(response.headers().contains_key("location"));
    assert_eq!(mock.invalid_requests().len(), 7);
}
