//! Keycloak admin REST API adapter of [`KeycloakAdmin`] (spec §6.1): user and tenant-group sync.
//!
//! Authenticates as a service account: a client-credentials grant at `/realms/{realm}/protocol/openid-connect/token`,
//! the token cached until shortly before it expires (single-flight; a 401 from the admin API drops it and retries
//! once with a fresh one). Calls go to `/admin/realms/{realm}/…`: `GET`/`POST users`, `GET`/`POST groups`,
//! `PUT`/`DELETE users/{id}/groups/{groupId}`. The service account needs the `realm-management` roles
//! `manage-users` and `query-groups`.

use crate::keycloak_admin::{KeycloakAdmin, KeycloakGroupId, KeycloakUser, KeycloakUserId, NewKeycloakUser};
use crate::{Error, Result};
use async_trait::async_trait;
use avb_core::Ctx;
use reqwest::{Method, StatusCode, Url};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Configuration of [`KeycloakAdminClient`] (env: `KEYCLOAK_URL`, `KEYCLOAK_REALM`, `KEYCLOAK_ADMIN_CLIENT_ID`,
/// `KEYCLOAK_ADMIN_CLIENT_SECRET`). The secret never appears in `Debug` output.
#[derive(Clone)]
#[non_exhaustive]
pub struct KeycloakAdminConfig {
    /// Server base URL (`http://127.0.0.1:8080`), without `/realms` or `/admin`.
    pub base_url: String,
    /// Realm of the users and groups (the service-account client lives there too).
    pub realm: String,
    /// Confidential client with a service account.
    pub client_id: String,
    /// That client's secret.
    pub client_secret: String,
    /// Timeout of one HTTP request (default 5 s; a nearer `Ctx` deadline wins).
    pub http_timeout: Duration,
    /// A cached token is replaced when it has less than this left (default 30 s, at most half its lifetime).
    pub token_refresh_margin: Duration,
}

impl std::fmt::Debug for KeycloakAdminConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeycloakAdminConfig")
            .field("base_url", &self.base_url)
            .field("realm", &self.realm)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("http_timeout", &self.http_timeout)
            .field("token_refresh_margin", &self.token_refresh_margin)
            .finish()
    }
}

impl KeycloakAdminConfig {
    /// A configuration with the defaults above.
    pub fn new(
        base_url: impl Into<String>,
        realm: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
    ) -> Self {
        Self {
            base_url: base_url.into(),
            realm: realm.into(),
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            http_timeout: Duration::from_secs(5),
            token_refresh_margin: Duration::from_secs(30),
        }
    }

    /// Reads `KEYCLOAK_URL`, `KEYCLOAK_REALM`, `KEYCLOAK_ADMIN_CLIENT_ID` and `KEYCLOAK_ADMIN_CLIENT_SECRET`.
    pub fn from_env() -> Result<Self> {
        let required = |name: &str| {
            std::env::var(name)
                .ok()
                .filter(|v| !v.is_empty())
                .ok_or_else(|| Error::Config(format!("{name} is not set")))
        };
        Ok(Self::new(
            required("KEYCLOAK_URL")?,
            required("KEYCLOAK_REALM")?,
            required("KEYCLOAK_ADMIN_CLIENT_ID")?,
            required("KEYCLOAK_ADMIN_CLIENT_SECRET")?,
        ))
    }

    /// Sets the HTTP timeout.
    #[must_use]
    pub fn http_timeout(mut self, timeout: Duration) -> Self {
        self.http_timeout = timeout;
        self
    }

    /// Sets the token refresh margin.
    #[must_use]
    pub fn token_refresh_margin(mut self, margin: Duration) -> Self {
        self.token_refresh_margin = margin;
        self
    }
}

/// The admin REST API client.
#[derive(Debug, Clone)]
pub struct KeycloakAdminClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: KeycloakAdminConfig,
    token_url: Url,
    admin_base: Url,
    http: reqwest::Client,
    token: tokio::sync::Mutex<Option<CachedToken>>,
}

struct CachedToken {
    value: String,
    refresh_at: Instant,
}

impl std::fmt::Debug for CachedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedToken")
            .field("value", &"<redacted>")
            .field("refresh_at", &self.refresh_at)
            .finish()
    }
}

#[derive(serde::Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct UserRepresentation {
    id: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    first_name: Option<String>,
    #[serde(default)]
    last_name: Option<String>,
    #[serde(default)]
    enabled: bool,
    #[serde(default)]
    attributes: Option<BTreeMap<String, Vec<String>>>,
}

#[derive(serde::Deserialize)]
struct GroupRepresentation {
    id: String,
    #[serde(default)]
    name: String,
}

/// What a request is about, for error messages and `not_found`.
#[derive(Clone, Copy)]
enum Subject<'a> {
    User(&'a str),
    Group(&'a str),
    Membership(&'a str, &'a str),
}

fn unavailable(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Error {
    Error::Core(avb_core::Error::unavailable("keycloak", e))
}

/// `application/x-www-form-urlencoded` encoding of `pairs` (reqwest's `form` feature is not enabled here).
fn form_body(pairs: &[(&str, &str)]) -> String {
    let mut scratch = Url::parse("http://form.invalid/").ok();
    scratch
        .as_mut()
        .map(|url| {
            url.query_pairs_mut().extend_pairs(pairs);
            url.query().unwrap_or_default().to_owned()
        })
        .unwrap_or_default()
}

fn parse_url(url: &str, what: &str) -> Result<Url> {
    Url::parse(url).map_err(|e| Error::Config(format!("Keycloak {what} URL {url}: {e}")))
}

impl KeycloakAdminClient {
    /// Builds the client; the first call fetches a token.
    pub fn new(config: KeycloakAdminConfig) -> Result<Self> {
        if config.client_id.is_empty() || config.client_secret.is_empty() || config.realm.is_empty() {
            return Err(Error::Config(
                "Keycloak admin realm, client id and secret must be set".into(),
            ));
        }
        let base = config.base_url.trim_end_matches('/');
        let mut token_url = parse_url(base, "base")?;
        let mut admin_base = token_url.clone();
        {
            let mut segments = token_url
                .path_segments_mut()
                .map_err(|()| Error::Config(format!("Keycloak base URL {base} cannot be a base")))?;
            segments.pop_if_empty().extend([
                "realms",
                config.realm.as_str(),
                "protocol",
                "openid-connect",
                "token",
            ]);
        }
        {
            let mut segments = admin_base
                .path_segments_mut()
                .map_err(|()| Error::Config(format!("Keycloak base URL {base} cannot be a base")))?;
            segments
                .pop_if_empty()
                .extend(["admin", "realms", config.realm.as_str()]);
        }
        let http = reqwest::Client::builder()
            .timeout(config.http_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Error::Config(format!("http client: {e}")))?;
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                token_url,
                admin_base,
                http,
                token: tokio::sync::Mutex::new(None),
            }),
        })
    }

    /// The configuration (secret redacted in `Debug`).
    pub fn config(&self) -> &KeycloakAdminConfig {
        &self.inner.config
    }

    /// `/admin/realms/{realm}/` followed by the given (percent-encoded) segments.
    fn admin_url(&self, segments: &[&str]) -> Result<Url> {
        let mut url = self.inner.admin_base.clone();
        url.path_segments_mut()
            .map_err(|()| Error::Config("Keycloak base URL cannot be a base".into()))?
            .extend(segments);
        Ok(url)
    }

    fn timeout(&self, ctx: &Ctx) -> Result<Duration> {
        let configured = self.inner.config.http_timeout;
        Ok(ctx.remaining()?.map_or(configured, |left| left.min(configured)))
    }

    /// A valid service-account token: the cached one, or a new one (single-flight through the mutex).
    async fn token(&self, ctx: &Ctx, force_new: bool) -> Result<String> {
        let mut cached = self.inner.token.lock().await;
        if !force_new
            && let Some(token) = cached.as_ref()
            && Instant::now() < token.refresh_at
        {
            return Ok(token.value.clone());
        }
        *cached = None;
        let config = &self.inner.config;
        let response = self
            .inner
            .http
            .post(self.inner.token_url.clone())
            .timeout(self.timeout(ctx)?)
            .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(form_body(&[
                ("grant_type", "client_credentials"),
                ("client_id", config.client_id.as_str()),
                ("client_secret", config.client_secret.as_str()),
            ]))
            .send()
            .await
            .map_err(unavailable)?;
        let status = response.status();
        if status == StatusCode::BAD_REQUEST
            || status == StatusCode::UNAUTHORIZED
            || status == StatusCode::FORBIDDEN
        {
            return Err(Error::Config(format!(
                "Keycloak rejected the admin client credentials of `{}` ({status})",
                config.client_id
            )));
        }
        if !status.is_success() {
            return Err(unavailable(format!("token endpoint answered {status}")));
        }
        let body: TokenResponse = response.json().await.map_err(unavailable)?;
        // Keycloak's default lifetime is 300 s; assume 60 s when the answer does not say.
        let lifetime = Duration::from_secs(body.expires_in.unwrap_or(60));
        let margin = config.token_refresh_margin.min(lifetime / 2);
        *cached = Some(CachedToken {
            value: body.access_token.clone(),
            refresh_at: Instant::now() + lifetime.saturating_sub(margin),
        });
        Ok(body.access_token)
    }

    /// Sends an admin request with the service-account token; on 401 gets a new token and tries once more.
    /// Non-success statuses become errors (see the port's contract).
    async fn send(
        &self,
        ctx: &Ctx,
        method: Method,
        url: Url,
        body: Option<&Value>,
        subject: Subject<'_>,
    ) -> Result<reqwest::Response> {
        let mut force_new = false;
        loop {
            let token = self.token(ctx, force_new).await?;
            let mut request = self
                .inner
                .http
                .request(method.clone(), url.clone())
                .timeout(self.timeout(ctx)?)
                .bearer_auth(token)
                .header(reqwest::header::ACCEPT, "application/json");
            if let Some(body) = body {
                request = request.json(body);
            }
            let response = request.send().await.map_err(unavailable)?;
            let status = response.status();
            if status.is_success() {
                return Ok(response);
            }
            if status == StatusCode::UNAUTHORIZED && !force_new {
                force_new = true;
                continue;
            }
            let message = error_message(response).await;
            return Err(map_status(status, &method, subject, message));
        }
    }

    async fn find_group(&self, ctx: &Ctx, name: &str) -> Result<Option<KeycloakGroupId>> {
        let mut url = self.admin_url(&["groups"])?;
        url.query_pairs_mut()
            .append_pair("search", name)
            .append_pair("exact", "true")
            .append_pair("briefRepresentation", "true");
        let response = self
            .send(ctx, Method::GET, url, None, Subject::Group(name))
            .await?;
        let groups: Vec<GroupRepresentation> = response.json().await.map_err(unavailable)?;
        // A search also returns top-level groups for matching subgroups: compare names ourselves.
        Ok(groups
            .into_iter()
            .find(|g| g.name == name)
            .map(|g| KeycloakGroupId(g.id)))
    }

    async fn membership(
        &self,
        ctx: &Ctx,
        method: Method,
        user: &KeycloakUserId,
        group: &KeycloakGroupId,
    ) -> Result<()> {
        let url = self.admin_url(&["users", &user.0, "groups", &group.0])?;
        self.send(ctx, method, url, None, Subject::Membership(&user.0, &group.0))
            .await?;
        Ok(())
    }
}

async fn error_message(response: reqwest::Response) -> String {
    let text = response.text().await.unwrap_or_default();
    let parsed: Option<Value> = serde_json::from_str(&text).ok();
    parsed
        .as_ref()
        .and_then(|v| v.get("errorMessage").or_else(|| v.get("error")))
        .and_then(Value::as_str)
        .map_or_else(|| text.chars().take(200).collect(), str::to_owned)
}

fn map_status(status: StatusCode, method: &Method, subject: Subject<'_>, message: String) -> Error {
    match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Error::Config(format!(
            "Keycloak admin API refused {method} ({status}): the service account lacks credentials or admin roles"
        )),
        StatusCode::NOT_FOUND => {
            let (resource_type, id) = match subject {
                Subject::User(id) => ("keycloak_user", id.to_owned()),
                Subject::Group(id) => ("keycloak_group", id.to_owned()),
                Subject::Membership(user, group) => ("keycloak_group_membership", format!("{user}/{group}")),
            };
            Error::NotFound {
                resource_type: resource_type.to_owned(),
                id,
            }
        }
        StatusCode::CONFLICT => {
            let resource = match subject {
                Subject::User(_) => "keycloak_user",
                Subject::Group(_) => "keycloak_group",
                Subject::Membership(..) => "keycloak_group_membership",
            };
            Error::Core(avb_core::Error::conflict(resource, message))
        }
        s if s.is_server_error() => unavailable(format!("Keycloak answered {status}: {message}")),
        _ => Error::InvalidRequest(format!("Keycloak rejected {method} ({status}): {message}")),
    }
}

/// The id at the end of a `Location` header (`…/users/{id}`).
fn id_from_location(response: &reqwest::Response) -> Result<String> {
    response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|location| location.trim_end_matches('/').rsplit('/').next())
        .filter(|id| !id.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| unavailable("Keycloak answered 201 without a usable Location header"))
}

#[async_trait]
impl KeycloakAdmin for KeycloakAdminClient {
    async fn find_user_by_email(&self, ctx: &Ctx, email: &str) -> Result<Option<KeycloakUser>> {
        let mut url = self.admin_url(&["users"])?;
        url.query_pairs_mut()
            .append_pair("email", email)
            .append_pair("exact", "true");
        let response = self
            .send(ctx, Method::GET, url, None, Subject::User(email))
            .await?;
        let users: Vec<UserRepresentation> = response.json().await.map_err(unavailable)?;
        // `exact` is honoured by current Keycloak; compare anyway so a substring match can never be taken.
        Ok(users
            .into_iter()
            .find(|u| u.email.as_deref().is_some_and(|e| e.eq_ignore_ascii_case(email)))
            .map(|u| KeycloakUser {
                id: KeycloakUserId(u.id),
                username: u.username,
                email: u.email,
                first_name: u.first_name,
                last_name: u.last_name,
                enabled: u.enabled,
                attributes: u.attributes.unwrap_or_default(),
            }))
    }

    async fn create_user(&self, ctx: &Ctx, user: &NewKeycloakUser) -> Result<KeycloakUserId> {
        let mut body = json!({
            "username": user.email.to_lowercase(),
            "email": user.email,
            "enabled": user.enabled,
            "attributes": user.attributes,
        });
        if let Some(map) = body.as_object_mut() {
            if let Some(first) = &user.first_name {
                map.insert("firstName".into(), Value::from(first.as_str()));
            }
            if let Some(last) = &user.last_name {
                map.insert("lastName".into(), Value::from(last.as_str()));
            }
        }
        let url = self.admin_url(&["users"])?;
        let response = self
            .send(ctx, Method::POST, url, Some(&body), Subject::User(&user.email))
            .await?;
        id_from_location(&response).map(KeycloakUserId)
    }

    async fn create_group(&self, ctx: &Ctx, name: &str) -> Result<KeycloakGroupId> {
        if let Some(id) = self.find_group(ctx, name).await? {
            return Ok(id);
        }
        let url = self.admin_url(&["groups"])?;
        let body = json!({ "name": name });
        match self
            .send(ctx, Method::POST, url, Some(&body), Subject::Group(name))
            .await
        {
            Ok(response) => id_from_location(&response).map(KeycloakGroupId),
            // Created concurrently between our lookup and our POST: take the winner's id.
            Err(Error::Core(avb_core::Error::Conflict { .. })) => self
                .find_group(ctx, name)
                .await?
                .ok_or_else(|| unavailable(format!("group {name} reported as existing but not found"))),
            Err(other) => Err(other),
        }
    }

    async fn add_user_to_group(
        &self,
        ctx: &Ctx,
        user: &KeycloakUserId,
        group: &KeycloakGroupId,
    ) -> Result<()> {
        self.membership(ctx, Method::PUT, user, group).await
    }

    async fn remove_user_from_group(
        &self,
        ctx: &Ctx,
        user: &KeycloakUserId,
        group: &KeycloakGroupId,
    ) -> Result<()> {
        self.membership(ctx, Method::DELETE, user, group).await
    }
}
