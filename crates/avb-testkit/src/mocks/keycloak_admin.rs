//! A validating mock of Keycloak's admin REST API (users, groups, membership) and of the client-credentials
//! token endpoint, for testing the admin adapter where no Keycloak can run.
//!
//! Every request under `/admin/realms` is checked against Keycloak 23.0.7's admin OpenAPI document
//! (`specs/keycloak-admin-openapi.json`, Apache-2.0, see `specs/NOTICE`): method and path template, query
//! parameters, and the JSON body against the operation's schema. An invalid request is answered `422` with the list
//! of violations (an unknown path `404`, a wrong method `405`, a missing or unknown bearer token `401`); a valid
//! one from in-memory state as Keycloak would (`201` with `Location` on creation, `409` on a duplicate username,
//! e-mail or top-level group name, `204` for membership changes). Every request is recorded.
//!
//! Workarounds for the document (see `specs/NOTICE`): Keycloak declares every query parameter `type: string`, so
//! the boolean (`exact`, `briefRepresentation`, …) and integer (`first`, `max`) ones are checked as Keycloak
//! parses them; `attributes` values are lists of strings (`Map<String, List<String>>` in Keycloak) although the
//! document leaves the list items untyped; representations reject fields they do not list; creation answers
//! `201 Created` + `Location` as Keycloak does, although the document lists only `200`.

use super::openapi::{Matched, OpenApiValidator, SpecError};
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, Response, StatusCode, header};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// Keycloak 23.0.7's admin REST API document.
pub const KEYCLOAK_ADMIN_OPENAPI: &str = include_str!("../../specs/keycloak-admin-openapi.json");

/// Realm the mock serves.
pub const REALM: &str = "agentvoicebox";
/// The service-account client the mock accepts.
pub const ADMIN_CLIENT_ID: &str = "avb-admin";
/// Its secret.
pub const ADMIN_CLIENT_SECRET: &str = "avb-admin-secret";

/// Largest request body the mock reads.
const MAX_BODY: usize = 1024 * 1024;

/// One request the mock received.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// HTTP method.
    pub method: String,
    /// Path as sent (still percent-encoded).
    pub path: String,
    /// Raw query string.
    pub query: Option<String>,
    /// The body: JSON when it parses, else a string (empty body: `None`).
    pub body: Option<Value>,
    /// `operationId` of the matched operation (`token` for the token endpoint).
    pub operation_id: Option<String>,
    /// What was wrong with it against the document; empty when valid.
    pub violations: Vec<String>,
    /// The status the mock answered.
    pub status: u16,
}

impl RecordedRequest {
    /// True when the request matched the document.
    pub fn is_valid(&self) -> bool {
        self.violations.is_empty()
    }
}

/// Why the mock could not start.
#[derive(Debug, thiserror::Error)]
pub enum MockError {
    /// The document did not load.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// Binding or serving failed.
    #[error("mock server: {0}")]
    Io(#[from] std::io::Error),
}

#[derive(Debug, Default)]
struct State {
    requests: Vec<RecordedRequest>,
    tokens: BTreeSet<String>,
    tokens_issued: usize,
    token_lifetime_secs: u64,
    users: BTreeMap<String, Value>,
    groups: BTreeMap<String, Value>,
    /// group id → user ids
    members: BTreeMap<String, BTreeSet<String>>,
    next_id: u64,
    fail_next: Vec<u16>,
}

#[derive(Debug)]
struct Shared {
    validator: OpenApiValidator,
    base_url: String,
    state: Mutex<State>,
}

impl Shared {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A running mock; stops when dropped.
#[derive(Debug)]
pub struct KeycloakAdminMock {
    /// `http://127.0.0.1:PORT` (no `/realms`, no `/admin`).
    pub base_url: String,
    /// The realm ([`REALM`]).
    pub realm: String,
    /// The accepted service-account client ([`ADMIN_CLIENT_ID`]).
    pub client_id: String,
    /// Its secret ([`ADMIN_CLIENT_SECRET`]).
    pub client_secret: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for KeycloakAdminMock {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The validator for Keycloak's admin document with the workarounds described in the module docs.
pub fn keycloak_admin_validator() -> Result<OpenApiValidator, SpecError> {
    let boolean = json!({ "type": "boolean" });
    let integer = json!({ "type": "integer", "minimum": 0 });
    let mut overrides = HashMap::new();
    for name in [
        "briefRepresentation",
        "exact",
        "emailVerified",
        "enabled",
        "populateHierarchy",
        "userProfileMetadata",
    ] {
        overrides.insert(name.to_owned(), boolean.clone());
    }
    for name in ["first", "max"] {
        overrides.insert(name.to_owned(), integer.clone());
    }
    OpenApiValidator::from_json(KEYCLOAK_ADMIN_OPENAPI, overrides, |defs| {
        for representation in ["UserRepresentation", "GroupRepresentation"] {
            if let Some(values) = defs
                .get_mut(representation)
                .and_then(|r| r.pointer_mut("/properties/attributes/additionalProperties"))
                .and_then(Value::as_object_mut)
            {
                values.insert("items".into(), json!({ "type": "string" }));
            }
        }
    })
}

/// Starts the mock on 127.0.0.1 with a free port.
pub async fn start_keycloak_admin_mock() -> Result<KeycloakAdminMock, MockError> {
    let validator = keycloak_admin_validator()?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base_url = format!("http://{}", listener.local_addr()?);
    let shared = Arc::new(Shared {
        validator,
        base_url: base_url.clone(),
        state: Mutex::new(State {
            token_lifetime_secs: 300,
            ..State::default()
        }),
    });
    let handler_state = Arc::clone(&shared);
    let app = axum::Router::new().fallback(move |request: Request<Body>| {
        let shared = Arc::clone(&handler_state);
        async move { handle(&shared, request).await }
    });
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::warn!(error = %e, "keycloak admin mock stopped");
        }
    });
    Ok(KeycloakAdminMock {
        base_url,
        realm: REALM.into(),
        client_id: ADMIN_CLIENT_ID.into(),
        client_secret: ADMIN_CLIENT_SECRET.into(),
        shared,
        task,
    })
}

impl KeycloakAdminMock {
    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.state().requests.clone()
    }

    /// The requests that violated the document.
    pub fn invalid_requests(&self) -> Vec<RecordedRequest> {
        self.shared
            .state()
            .requests
            .iter()
            .filter(|r| !r.is_valid())
            .cloned()
            .collect()
    }

    /// How many tokens the token endpoint has issued.
    pub fn tokens_issued(&self) -> usize {
        self.shared.state().tokens_issued
    }

    /// Sets `expires_in` of tokens issued from now on.
    pub fn set_token_lifetime(&self, lifetime: Duration) {
        self.shared.state().token_lifetime_secs = lifetime.as_secs();
    }

    /// Invalidates every issued token (the admin API answers 401 to them from now on).
    pub fn revoke_tokens(&self) {
        self.shared.state().tokens.clear();
    }

    /// The next admin API request (after validation) is answered with `status` instead of being served.
    pub fn fail_next(&self, status: u16) {
        self.shared.state().fail_next.push(status);
    }

    /// The stored users (Keycloak's `UserRepresentation`s).
    pub fn users(&self) -> Vec<Value> {
        self.shared.state().users.values().cloned().collect()
    }

    /// The stored groups.
    pub fn groups(&self) -> Vec<Value> {
        self.shared.state().groups.values().cloned().collect()
    }

    /// User ids that are members of `group_id`.
    pub fn members_of(&self, group_id: &str) -> Vec<String> {
        self.shared
            .state()
            .members
            .get(group_id)
            .map(|m| m.iter().cloned().collect())
            .unwrap_or_default()
    }
}

fn json_response(status: StatusCode, body: &Value) -> Response<Body> {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
}

fn empty(status: StatusCode) -> Response<Body> {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = status;
    response
}

fn created(location: &str) -> Response<Body> {
    let mut response = empty(StatusCode::CREATED);
    if let Ok(value) = header::HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

async fn handle(shared: &Shared, request: Request<Body>) -> Response<Body> {
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_BODY).await.unwrap_or_default();
    let path = parts.uri.path().to_owned();
    let query = parts.uri.query().map(str::to_owned);
    let mut record = RecordedRequest {
        method: parts.method.as_str().to_owned(),
        path: path.clone(),
        query: query.clone(),
        body: (!bytes.is_empty()).then(|| {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        }),
        operation_id: None,
        violations: Vec::new(),
        status: 0,
    };
    let token_path = format!("/realms/{REALM}/protocol/openid-connect/token");
    let response = if path == token_path {
        record.operation_id = Some("token".into());
        token(
            shared,
            &parts.method,
            &parts.headers,
            &bytes,
            &mut record.violations,
        )
    } else if let Some(relative) = path.strip_prefix("/admin/realms") {
        admin(
            shared,
            &parts.method,
            &parts.headers,
            relative,
            query.as_deref(),
            &bytes,
            &mut record,
        )
    } else {
        record.violations.push(format!(
            "{path} is neither the token endpoint nor under /admin/realms"
        ));
        json_response(
            StatusCode::NOT_FOUND,
            &json!({ "error": "Unable to find matching target resource method" }),
        )
    };
    record.status = response.status().as_u16();
    shared.state().requests.push(record);
    response
}

fn token(
    shared: &Shared,
    method: &Method,
    headers: &HeaderMap,
    body: &[u8],
    violations: &mut Vec<String>,
) -> Response<Body> {
    if method != Method::POST {
        violations.push("the token endpoint takes POST".into());
        return json_response(
            StatusCode::METHOD_NOT_ALLOWED,
            &json!({ "error": "HTTP 405 Method Not Allowed" }),
        );
    }
    let form_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
    if !form_type {
        violations.push("token request must be application/x-www-form-urlencoded".into());
    }
    let form: HashMap<String, String> = form_urlencoded::parse(body).into_owned().collect();
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        violations.push("grant_type must be client_credentials".into());
    }
    if !violations.is_empty() {
        return json_response(
            StatusCode::BAD_REQUEST,
            &json!({ "error": "invalid_request", "error_description": violations.join("; ") }),
        );
    }
    if form.get("client_id").map(String::as_str) != Some(ADMIN_CLIENT_ID)
        || form.get("client_secret").map(String::as_str) != Some(ADMIN_CLIENT_SECRET)
    {
        return json_response(
            StatusCode::UNAUTHORIZED,
            &json!({ "error": "unauthorized_client", "error_description": "Invalid client or Invalid client credentials" }),
        );
    }
    let mut state = shared.state();
    state.tokens_issued += 1;
    let value = format!(
        "mock-admin-token-{}-{}",
        state.tokens_issued,
        uuid::Uuid::new_v4()
    );
    state.tokens.insert(value.clone());
    json_response(
        StatusCode::OK,
        &json!({
            "access_token": value,
            "expires_in": state.token_lifetime_secs,
            "refresh_expires_in": 0,
            "token_type": "Bearer",
            "not-before-policy": 0,
            "scope": "profile email",
        }),
    )
}

fn admin(
    shared: &Shared,
    method: &Method,
    headers: &HeaderMap,
    relative: &str,
    query: Option<&str>,
    body: &[u8],
    record: &mut RecordedRequest,
) -> Response<Body> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let authorized = bearer.is_some_and(|t| shared.state().tokens.contains(t));
    if !authorized {
        record
            .violations
            .push("missing or unknown bearer token (the document requires `access_token` security)".into());
        return json_response(
            StatusCode::UNAUTHORIZED,
            &json!({ "error": "HTTP 401 Unauthorized" }),
        );
    }
    let matched = match shared.validator.match_operation(method.as_str(), relative) {
        Ok(m) => m,
        Err(violation) => {
            let status = if violation.starts_with("method") {
                StatusCode::METHOD_NOT_ALLOWED
            } else {
                StatusCode::NOT_FOUND
            };
            record.violations.push(violation);
            return json_response(
                status,
                &json!({ "error": "Unable to find matching target resource method" }),
            );
        }
    };
    record.operation_id = Some(matched.operation.operation_id.clone());
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    record
        .violations
        .extend(shared.validator.validate_query(&matched.operation, query));
    record.violations.extend(
        shared
            .validator
            .validate_body(&matched.operation, content_type, body),
    );
    if !record.violations.is_empty() {
        return json_response(
            StatusCode::UNPROCESSABLE_ENTITY,
            &json!({
                "error": "request does not match the Keycloak admin OpenAPI document",
                "operationId": matched.operation.operation_id,
                "violations": record.violations,
            }),
        );
    }
    if matched.path_params.get("realm").map(String::as_str) != Some(REALM) {
        return json_response(StatusCode::NOT_FOUND, &json!({ "error": "Realm not found." }));
    }
    if let Some(status) = {
        let mut state = shared.state();
        (!state.fail_next.is_empty()).then(|| state.fail_next.remove(0))
    } {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return json_response(status, &json!({ "error": "injected failure" }));
    }
    let query: HashMap<String, String> = query
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    serve(shared, &matched, &query, body)
}

fn param<'a>(matched: &'a Matched, name: &str) -> &'a str {
    matched.path_params.get(name).map_or("", String::as_str)
}

fn flag(query: &HashMap<String, String>, name: &str) -> bool {
    query.get(name).is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

fn text<'a>(value: &'a Value, field: &str) -> Option<&'a str> {
    value.get(field).and_then(Value::as_str)
}

/// Answers a valid request from the in-memory state, as Keycloak would.
fn serve(shared: &Shared, matched: &Matched, query: &HashMap<String, String>, body: Value) -> Response<Body> {
    let mut state = shared.state();
    let admin_base = format!("{}/admin/realms/{REALM}", shared.base_url);
    match matched.operation.operation_id.as_str() {
        "getUsersByRealm" => {
            let exact = flag(query, "exact");
            let matches = |field: &str, user: &Value| {
                query.get(field).is_none_or(|wanted| {
                    let have = text(user, field).unwrap_or_default().to_lowercase();
                    let wanted = wanted.to_lowercase();
                    if exact {
                        have == wanted
                    } else {
                        have.contains(&wanted)
                    }
                })
            };
            let users = state
                .users
                .values()
                .filter(|u| {
                    ["email", "username", "firstName", "lastName"]
                        .iter()
                        .all(|f| matches(f, u))
                })
                .cloned()
                .collect::<Vec<_>>();
            json_response(StatusCode::OK, &Value::Array(users))
        }
        "getUserByRealmById" => match state.users.get(param(matched, "id")) {
            Some(user) => json_response(StatusCode::OK, user),
            None => json_response(StatusCode::NOT_FOUND, &json!({ "error": "User not found" })),
        },
        "postUsers" => {
            let Some(username) = text(&body, "username")
                .or_else(|| text(&body, "email"))
                .map(str::to_lowercase)
            else {
                return json_response(
                    StatusCode::BAD_REQUEST,
                    &json!({ "errorMessage": "error-user-attribute-required" }),
                );
            };
            let email = text(&body, "email").map(str::to_lowercase);
            if state
                .users
                .values()
                .any(|u| text(u, "username") == Some(username.as_str()))
            {
                return json_response(
                    StatusCode::CONFLICT,
                    &json!({ "errorMessage": "User exists with same username" }),
                );
            }
            if let Some(email) = &email
                && state
                    .users
                    .values()
                    .any(|u| text(u, "email") == Some(email.as_str()))
            {
                return json_response(
                    StatusCode::CONFLICT,
                    &json!({ "errorMessage": "User exists with same email" }),
                );
            }
            state.next_id += 1;
            let id = uuid::Uuid::new_v4().to_string();
            let mut user = body.as_object().cloned().unwrap_or_default();
            user.insert("id".into(), json!(id));
            user.insert("username".into(), json!(username));
            if let Some(email) = email {
                user.insert("email".into(), json!(email));
            }
            user.entry("enabled").or_insert(json!(false));
            user.insert("createdTimestamp".into(), json!(state.next_id));
            state.users.insert(id.clone(), Value::Object(user));
            created(&format!("{admin_base}/users/{id}"))
        }
        "getGroupsByRealm" => {
            let exact = flag(query, "exact");
            let groups = state
                .groups
                .values()
                .filter(|g| {
                    query.get("search").is_none_or(|wanted| {
                        let name = text(g, "name").unwrap_or_default();
                        if exact {
                            name == wanted
                        } else {
                            name.to_lowercase().contains(&wanted.to_lowercase())
                        }
                    })
                })
                .cloned()
                .collect::<Vec<_>>();
            json_response(StatusCode::OK, &Value::Array(groups))
        }
        "getGroup" => match state.groups.get(param(matched, "id")) {
            Some(group) => json_response(StatusCode::OK, group),
            None => json_response(
                StatusCode::NOT_FOUND,
                &json!({ "error": "Could not find group by id" }),
            ),
        },
        "postGroups" => {
            let Some(name) = text(&body, "name")
                .map(str::to_owned)
                .filter(|n| !n.trim().is_empty())
            else {
                return json_response(
                    StatusCode::BAD_REQUEST,
                    &json!({ "errorMessage": "Group name is missing" }),
                );
            };
            if state
                .groups
                .values()
                .any(|g| text(g, "name") == Some(name.as_str()))
            {
                return json_response(
                    StatusCode::CONFLICT,
                    &json!({ "errorMessage": format!("Top level group named '{name}' already exists.") }),
                );
            }
            let id = uuid::Uuid::new_v4().to_string();
            let mut group = Map::new();
            group.insert("id".into(), json!(id));
            group.insert("name".into(), json!(name));
            group.insert("path".into(), json!(format!("/{name}")));
            group.insert("subGroupCount".into(), json!(0));
            group.insert("subGroups".into(), json!([]));
            if let Some(attributes) = body.get("attributes") {
                group.insert("attributes".into(), attributes.clone());
            }
            state.groups.insert(id.clone(), Value::Object(group));
            created(&format!("{admin_base}/groups/{id}"))
        }
        "putUserGroup" | "deleteUserGroup" => {
            let user = param(matched, "id").to_owned();
            let group = param(matched, "groupId").to_owned();
            if !state.users.contains_key(&user) {
                return json_response(StatusCode::NOT_FOUND, &json!({ "error": "User not found" }));
            }
            if !state.groups.contains_key(&group) {
                return json_response(StatusCode::NOT_FOUND, &json!({ "error": "Group not found" }));
            }
            let members = state.members.entry(group).or_default();
            if matched.operation.operation_id == "putUserGroup" {
                members.insert(user);
            } else {
                members.remove(&user);
            }
            empty(StatusCode::NO_CONTENT)
        }
        "getUserGroups" => {
            let user = param(matched, "id");
            if !state.users.contains_key(user) {
                return json_response(StatusCode::NOT_FOUND, &json!({ "error": "User not found" }));
            }
            let groups = state
                .members
                .iter()
                .filter(|(_, members)| members.contains(user))
                .filter_map(|(group, _)| state.groups.get(group).cloned())
                .collect::<Vec<_>>();
            json_response(StatusCode::OK, &Value::Array(groups))
        }
        other => json_response(
            StatusCode::NOT_IMPLEMENTED,
            &json!({ "error": format!("the mock does not serve {other} (the request itself was valid)") }),
        ),
    }
}
