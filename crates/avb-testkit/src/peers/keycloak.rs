//! A real OpenID provider (npm `oidc-provider` 9.x) in Keycloak 24's realm layout, served by
//! `peers/keycloak/server.mjs` on 127.0.0.1.
//!
//! Install once with `scripts/install-peers.sh keycloak` (needs Node 20+). Each [`start_keycloak`] call starts a
//! fresh provider in its own process (new RSA keys, realm `avb`, the default clients and user below), ready in
//! about a second; dropping the [`KeycloakPeer`] kills it.
//!
//! Issuer `http://127.0.0.1:PORT/realms/avb` (byte-exact), discovery, JWKS (an `RSA-OAEP` `enc` key plus the
//! active and passive RS256 keys), token endpoint (`password` and `client_credentials`) and realm info are
//! Keycloak's. The stand-in adds a test-only control API under `/_test/`, wrapped by the async methods here:
//! users, token lifetime and audience, key rotation and retirement, minting tokens with arbitrary overrides (the
//! JWT attack catalogue's raw material) and a counter of JWKS fetches.

use super::{PeerError, peers_dir, repo_root, spawn_until_ready};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

const PEER: &str = "keycloak";
const READY_TIMEOUT: Duration = Duration::from_secs(30);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The realm every peer serves.
pub const DEFAULT_REALM: &str = "avb";
/// Confidential client with a service account (`client_credentials`) and direct access grants (`password`).
pub const API_CLIENT_ID: &str = "avb-api";
/// [`API_CLIENT_ID`]'s secret.
pub const API_CLIENT_SECRET: &str = "avb-api-secret";
/// Public client (direct access grants only, no secret).
pub const PUBLIC_CLIENT_ID: &str = "avb-web";
/// The user every peer starts with.
pub const DEFAULT_USERNAME: &str = "alice";
/// [`DEFAULT_USERNAME`]'s password.
pub const DEFAULT_PASSWORD: &str = "alice-password";
/// [`DEFAULT_USERNAME`]'s Keycloak user id (`sub`).
pub const DEFAULT_USER_ID: &str = "5f1f7b55-7a1c-4d2e-9a4b-3d0c9e1a0a01";
/// [`DEFAULT_USERNAME`]'s `tenant_id` attribute.
pub const DEFAULT_TENANT_ID: &str = "0b9a6f3e-1c2d-4e5f-8a9b-0c1d2e3f4a5b";

/// A failed call to a running peer.
#[derive(Debug, thiserror::Error)]
pub enum KeycloakError {
    /// The request could not be sent or its body read.
    #[error("request to the keycloak peer failed: {0}")]
    Http(#[from] reqwest::Error),
    /// The peer answered with a non-success status (the body is Keycloak's / the control API's error JSON).
    #[error("keycloak peer answered {status}: {body}")]
    Status {
        /// HTTP status code.
        status: u16,
        /// Response body (JSON when the peer sent JSON, else the text as a JSON string).
        body: Value,
    },
    /// A response or token did not have the expected shape.
    #[error("unexpected keycloak peer data: {0}")]
    Decode(String),
}

/// A running Keycloak stand-in. The process is killed when this is dropped.
pub struct KeycloakPeer {
    /// `http://127.0.0.1:PORT`.
    pub base_url: String,
    /// The realm the helper methods act on ([`DEFAULT_REALM`]).
    pub realm: String,
    /// The chosen port.
    pub port: u16,
    /// From spawn to the ready line.
    pub started_in: Duration,
    http: reqwest::Client,
    child: Child,
}

impl fmt::Debug for KeycloakPeer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeycloakPeer")
            .field("base_url", &self.base_url)
            .field("realm", &self.realm)
            .field("pid", &self.child.id())
            .finish()
    }
}

/// A user to create or update through the control API (matched by `id`, else by `username`). `None` fields keep
/// their current value on update.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct TestUser {
    /// Keycloak user id (the token's `sub`); a random UUID when absent on creation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Login name (Keycloak lower-cases it).
    pub username: String,
    /// Password for the `password` grant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// `email` claim.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// `given_name` claim.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    /// `family_name` claim.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    /// `email_verified` claim (default true).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
    /// A disabled user cannot log in (default true).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Added to `realm_access.roles` after Keycloak's defaults.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub realm_roles: Vec<String>,
    /// `resource_access.<client>.roles`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub client_roles: BTreeMap<String, Vec<String>>,
    /// The `tenant_id` claim (a user attribute mapped into the token).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
}

impl TestUser {
    /// A user with a username and password and nothing else set.
    pub fn new(username: &str, password: &str) -> Self {
        Self {
            username: username.to_owned(),
            password: Some(password.to_owned()),
            ..Self::default()
        }
    }
}

/// A token endpoint answer (Keycloak's fields).
#[derive(Debug, Clone, Deserialize)]
pub struct TokenResponse {
    /// The access token (a Keycloak-shaped RS256 JWT).
    pub access_token: String,
    /// Seconds until `exp`.
    pub expires_in: u64,
    /// `Bearer`.
    pub token_type: String,
    /// Granted scopes.
    #[serde(default)]
    pub scope: Option<String>,
    /// The user session id (`password` grant only; equals the token's `sid`).
    #[serde(default)]
    pub session_state: Option<String>,
    /// The whole answer.
    #[serde(skip)]
    pub raw: Value,
}

/// The realm's keys as the control API reports them.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct KeySet {
    /// The key new tokens are signed with.
    pub active_kid: String,
    /// Older signing keys still published in the JWKS (newest first).
    pub passive_kids: Vec<String>,
    /// Keys removed from the JWKS (their private halves remain, so tests can mint with them).
    pub retired_kids: Vec<String>,
    /// The `use: "enc"` RSA-OAEP key.
    pub enc_kid: String,
    /// The active key as base64 SPKI DER (what `GET /realms/<realm>` shows as `public_key`).
    pub public_key: String,
}

/// A token minted by the control API, with the header and payload it was built from.
#[derive(Debug, Clone, Deserialize)]
pub struct MintedToken {
    /// The compact JWT.
    pub token: String,
    /// Its header.
    pub header: Value,
    /// Its payload.
    pub payload: Value,
    /// The kid of the key that signed it (`None` for `alg: none` and HMAC-less tokens).
    pub signed_with: Option<String>,
}

/// Decodes a compact JWT's header and payload without verifying anything (base64url JSON).
pub fn decode_unverified(token: &str) -> Result<(Value, Value), KeycloakError> {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(_signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(KeycloakError::Decode("a compact JWT has three parts".into()));
    };
    let decode = |part: &str| -> Result<Value, KeycloakError> {
        let bytes = URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|e| KeycloakError::Decode(format!("base64url: {e}")))?;
        serde_json::from_slice(&bytes).map_err(|e| KeycloakError::Decode(format!("JSON: {e}")))
    };
    Ok((decode(header)?, decode(payload)?))
}

/// Paths the launcher needs, checked before anything is spawned.
#[derive(Debug)]
struct Installation {
    node: PathBuf,
    server: PathBuf,
    node_modules: PathBuf,
}

fn installation() -> Result<Installation, PeerError> {
    let node_modules = peers_dir().join("keycloak/node_modules");
    let server = repo_root().join("peers/keycloak/server.mjs");
    for path in [node_modules.join("oidc-provider/package.json"), server.clone()] {
        if !path.is_file() {
            return Err(not_installed(&path));
        }
    }
    let node = match std::env::var_os("AVB_NODE") {
        Some(node) => PathBuf::from(node),
        None => find_in_path("node").ok_or_else(|| PeerError::NotInstalled {
            peer: PEER,
            hint: "`node` (Node.js 20+) is not on PATH; install it or set AVB_NODE".into(),
        })?,
    };
    Ok(Installation {
        node,
        server,
        node_modules,
    })
}

fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

fn not_installed(missing: &Path) -> PeerError {
    PeerError::NotInstalled {
        peer: PEER,
        hint: format!(
            "{} is missing; run scripts/install-peers.sh keycloak",
            missing.display()
        ),
    }
}

fn start_error(reason: String) -> PeerError {
    PeerError::Start { peer: PEER, reason }
}

/// Starts a fresh Keycloak stand-in (realm [`DEFAULT_REALM`]) on 127.0.0.1 and waits for its ready line.
///
/// Fails with [`PeerError::NotInstalled`] when `scripts/install-peers.sh keycloak` has not been run or `node` is
/// missing, and with [`PeerError::Skipped`] when `AVB_SKIP_PEERS` is set.
pub async fn start_keycloak() -> Result<KeycloakPeer, PeerError> {
    super::check_not_skipped()?;
    let install = installation()?;
    let mut cmd = Command::new(&install.node);
    cmd.arg(&install.server)
        .arg("--port")
        .arg("0")
        .arg("--realm")
        .arg(DEFAULT_REALM)
        .env("AVB_KEYCLOAK_NODE_MODULES", &install.node_modules)
        .env_remove("AVB_KEYCLOAK_CONFIG");
    let began = Instant::now();
    let (child, ready) = spawn_until_ready(PEER, cmd, READY_TIMEOUT).await?;
    let started_in = began.elapsed();
    let port = ready
        .get("port")
        .and_then(Value::as_u64)
        .and_then(|p| u16::try_from(p).ok())
        .filter(|p| *p != 0)
        .ok_or_else(|| start_error(format!("ready line without a port: {ready}")))?;
    let base_url = ready
        .get("base_url")
        .and_then(Value::as_str)
        .map_or_else(|| format!("http://127.0.0.1:{port}"), str::to_owned);
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(REQUEST_TIMEOUT)
        .build()
        .map_err(|e| start_error(format!("HTTP client: {e}")))?;
    Ok(KeycloakPeer {
        base_url,
        realm: DEFAULT_REALM.to_owned(),
        port,
        started_in,
        http,
        child,
    })
}

impl KeycloakPeer {
    /// `http://127.0.0.1:PORT/realms/<realm>`, exactly as it appears in `iss`.
    pub fn issuer(&self) -> String {
        format!("{}/realms/{}", self.base_url, self.realm)
    }

    /// `GET /realms/<realm>` (realm info with `public_key`).
    pub fn realm_url(&self) -> String {
        self.issuer()
    }

    /// The discovery document's URL.
    pub fn discovery_url(&self) -> String {
        format!("{}/.well-known/openid-configuration", self.issuer())
    }

    /// The JWKS URL (`…/protocol/openid-connect/certs`).
    pub fn jwks_url(&self) -> String {
        format!("{}/protocol/openid-connect/certs", self.issuer())
    }

    /// The token endpoint (`…/protocol/openid-connect/token`).
    pub fn token_url(&self) -> String {
        format!("{}/protocol/openid-connect/token", self.issuer())
    }

    /// The process id (for tests that kill the peer to observe an unreachable provider).
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Kills the process now and waits for it to exit.
    pub async fn stop(&mut self) -> Result<(), PeerError> {
        self.child
            .kill()
            .await
            .map_err(|e| start_error(format!("kill: {e}")))
    }

    /// `GET` a URL and parse its JSON body (any non-2xx status is an error).
    pub async fn get_json(&self, url: &str) -> Result<Value, KeycloakError> {
        json_body(self.http.get(url).send().await?).await
    }

    /// Creates or updates a user; returns the stored user (with its `id`, without the password).
    pub async fn create_user(&self, user: &TestUser) -> Result<Value, KeycloakError> {
        self.control_post(
            "users",
            &serde_json::to_value(user).map_err(|e| KeycloakError::Decode(e.to_string()))?,
        )
        .await
    }

    /// Logs a user in with the `password` grant (direct access grant). A `client_secret` of `None` is a public
    /// client. Bad credentials come back as [`KeycloakError::Status`] 401 `invalid_grant`, as from Keycloak.
    pub async fn password_token(
        &self,
        client_id: &str,
        client_secret: Option<&str>,
        username: &str,
        password: &str,
    ) -> Result<TokenResponse, KeycloakError> {
        let mut form = vec![
            ("grant_type", "password"),
            ("client_id", client_id),
            ("username", username),
            ("password", password),
            ("scope", "openid"),
        ];
        if let Some(secret) = client_secret {
            form.push(("client_secret", secret));
        }
        self.token_request(&form).await
    }

    /// A service-account token with the `client_credentials` grant (client authenticated with HTTP Basic).
    pub async fn client_credentials_token(
        &self,
        client_id: &str,
        client_secret: &str,
    ) -> Result<TokenResponse, KeycloakError> {
        let response = self
            .http
            .post(self.token_url())
            .basic_auth(client_id, Some(client_secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await?;
        token_response(json_body(response).await?)
    }

    async fn token_request(&self, form: &[(&str, &str)]) -> Result<TokenResponse, KeycloakError> {
        token_response(json_body(self.http.post(self.token_url()).form(form).send().await?).await?)
    }

    /// Sets realm settings: `access_token_lifespan` (seconds), `audience` (string or array), `jwks_delay_ms`
    /// (slows JWKS answers, to overlap concurrent fetches), `extra_jwks_keys` (appended to the JWKS verbatim).
    pub async fn configure(&self, settings: Value) -> Result<Value, KeycloakError> {
        self.control_post("config", &settings).await
    }

    /// The realm's keys.
    pub async fn keys(&self) -> Result<KeySet, KeycloakError> {
        let value = json_body(self.http.get(self.control_url("keys")).send().await?).await?;
        key_set(value)
    }

    /// Makes a new active signing key; the previous one stays published as passive until [`Self::retire_key`].
    pub async fn rotate_keys(&self) -> Result<KeySet, KeycloakError> {
        key_set(self.control_post("rotate-key", &json!({})).await?)
    }

    /// Removes a passive key from the JWKS (`None`: every passive key). The active key cannot be retired.
    pub async fn retire_key(&self, kid: Option<&str>) -> Result<KeySet, KeycloakError> {
        let body = kid.map_or_else(|| json!({}), |kid| json!({ "kid": kid }));
        key_set(self.control_post("retire-key", &body).await?)
    }

    /// Mints a token: a realistic Keycloak token for a user (or a service account) with overrides applied and
    /// signed as asked. Fields of `overrides` (all optional): `username`, `client_id`, `service_account`,
    /// `scope`, `claims` (merged; `null` removes), `exp_in`/`nbf_in`/`iat_in` (seconds from now), `header`
    /// (merged; `null` removes), `alg` (RS256/384/512, PS256/384/512, HS256/384/512, `none`), `kid` (header kid,
    /// `null` removes), `sign_kid` (sign with that active/passive/retired/enc key), `sign_with: "foreign"` (a key
    /// never published), `hs_secret` (default: the active public key's PEM, the RSA/HMAC confusion attack).
    pub async fn mint_token(&self, overrides: Value) -> Result<MintedToken, KeycloakError> {
        let value = self.control_post("mint", &overrides).await?;
        serde_json::from_value(value).map_err(|e| KeycloakError::Decode(format!("minted token: {e}")))
    }

    /// How many times the JWKS was fetched since start or the last [`Self::reset_jwks_fetch_count`].
    pub async fn jwks_fetch_count(&self) -> Result<u64, KeycloakError> {
        let value = json_body(self.http.get(self.control_url("jwks-fetches")).send().await?).await?;
        value
            .get("count")
            .and_then(Value::as_u64)
            .ok_or_else(|| KeycloakError::Decode(format!("count: {value}")))
    }

    /// Sets the JWKS fetch counter to 0.
    pub async fn reset_jwks_fetch_count(&self) -> Result<(), KeycloakError> {
        self.control_post("jwks-fetches/reset", &json!({}))
            .await
            .map(drop)
    }

    fn control_url(&self, route: &str) -> String {
        format!("{}/_test/{route}?realm={}", self.base_url, self.realm)
    }

    async fn control_post(&self, route: &str, body: &Value) -> Result<Value, KeycloakError> {
        json_body(self.http.post(self.control_url(route)).json(body).send().await?).await
    }
}

async fn json_body(response: reqwest::Response) -> Result<Value, KeycloakError> {
    let status = response.status();
    let text = response.text().await?;
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    if status.is_success() {
        Ok(body)
    } else {
        Err(KeycloakError::Status {
            status: status.as_u16(),
            body,
        })
    }
}

fn token_response(value: Value) -> Result<TokenResponse, KeycloakError> {
    let mut token: TokenResponse = serde_json::from_value(value.clone())
        .map_err(|e| KeycloakError::Decode(format!("token response: {e}: {value}")))?;
    token.raw = value;
    Ok(token)
}

fn key_set(value: Value) -> Result<KeySet, KeycloakError> {
    serde_json::from_value(value).map_err(|e| KeycloakError::Decode(format!("key set: {e}")))
}
