//! Before the upgrade: who is calling, for which tenant, may they open a session, and the session record.

use super::connection::RealtimeConnection;
use super::{no_speech, openai_error_body, upgrade_query};
use crate::admission::{Admitted, Caller, Policy, Seen};
use crate::app::App;
use crate::error::ApiError;
use crate::http::{ApiResponse, Headers};
use crate::permissions::{self, GraphChange};
use crate::pipeline::{SECURITY_HEADERS, request_id_for};
use avb_auth::authorizer::guard::{self, GuardedResource};
use avb_auth::credentials::CredentialSources;
use avb_auth::ephemeral::ClientSecretGrant;
use avb_core::{ApiKeyScope, Ctx, ErrorCode, Principal, RequestId};
use avb_tenancy::session::CreateSessionRequest;
use avb_voice::realtime::protocol::{
    Dialect, Handshake, SessionConfig, SessionKind, UpdateLocks, decode_session,
};
use serde_json::{Value, json};
use std::net::IpAddr;

/// The upgrade request, as the adapter saw it.
#[derive(Debug, Clone, Default)]
pub struct RealtimeRequest {
    /// Path (any prefix ending in `/realtime`).
    pub path: String,
    /// Raw query string (`model=…&intent=…`), without `?`.
    pub query: String,
    /// Request headers.
    pub headers: Headers,
    /// The peer's address.
    pub peer: Option<IpAddr>,
}

/// An accepted upgrade: answer `101` selecting `subprotocol` (when `Some`), then [`RealtimeConnection::run`].
#[derive(Debug)]
pub struct RealtimeAccept {
    /// The subprotocol to select (`realtime` when the client offered it; never the key-bearing entry).
    pub subprotocol: Option<&'static str>,
    /// Headers to add to the `101` answer (`x-request-id`).
    pub headers: Vec<(String, String)>,
    /// The session to run.
    pub connection: RealtimeConnection,
}

/// The query parameters the SDKs send (unknown ones are kept by the client and ignored here).
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct ConnectQuery {
    model: Option<String>,
    intent: Option<String>,
    token: Option<String>,
    api_key: Option<String>,
}

/// How a client secret's bound configuration is stored in its grant: the dialect it was written in and the
/// session object as the client sent it (validated at mint time).
pub(crate) fn bound_config(dialect: Dialect, session: &Value) -> Value {
    json!({ "dialect": dialect.as_str(), "session": session })
}

impl App {
    /// Decides a realtime upgrade (see the [module docs](crate::realtime)). `Err` is the complete HTTP answer to
    /// send instead of `101` (OpenAI-style error body, `x-request-id`, security headers, `retry-after` on 429).
    pub async fn realtime_accept(&self, req: RealtimeRequest) -> Result<RealtimeAccept, ApiResponse> {
        let inner = self.inner();
        let request_id = request_id_for(&req.headers, inner.ids.as_ref());
        match self.accept_inner(&req, &request_id).await {
            Ok(connection) => {
                let protocols: Vec<&str> = header_values(&req.headers, "sec-websocket-protocol");
                let beta: Vec<&str> = header_values(&req.headers, "openai-beta");
                let handshake = Handshake::negotiate(beta, protocols);
                tracing::info!(
                    request_id = %request_id,
                    path = %req.path,
                    session = %connection.session_id(),
                    tenant = %connection.tenant_id(),
                    dialect = connection.dialect().as_str(),
                    "realtime_connected"
                );
                Ok(RealtimeAccept {
                    subprotocol: handshake.subprotocol(),
                    headers: vec![("x-request-id".to_owned(), request_id.as_str().to_owned())],
                    connection,
                })
            }
            Err(err) => {
                let status = err.status();
                inner.metrics.http_request("GET", "realtime_connect", status, 0.0);
                tracing::warn!(request_id = %request_id, path = %req.path, status, code = err.code.as_str(), "realtime_refused");
                let mut response = ApiResponse::json(status, &openai_error_body(&err, inner.config.debug));
                response.set_header("x-request-id", request_id.as_str());
                for (name, value) in SECURITY_HEADERS {
                    response.set_header(name, *value);
                }
                if let Some(secs) = err.retry_after {
                    response.set_header("retry-after", secs.to_string());
                }
                Err(response)
            }
        }
    }

    async fn accept_inner(
        &self,
        req: &RealtimeRequest,
        request_id: &RequestId,
    ) -> Result<RealtimeConnection, ApiError> {
        let inner = self.inner();
        let ports = inner.speech.clone().ok_or_else(no_speech)?;
        let handshake = Handshake::negotiate(
            header_values(&req.headers, "openai-beta"),
            header_values(&req.headers, "sec-websocket-protocol"),
        );
        let dialect = handshake.dialect();
        let query: ConnectQuery = upgrade_query(&req.query)?;
        // Credentials: a realtime client must present one, from wherever the OpenAI SDKs put it.
        let sources = CredentialSources {
            authorization: req.headers.get("authorization"),
            x_api_key: req
                .headers
                .get("x-api-key")
                .or_else(|| req.headers.get("api-key")),
            query_token: query.token.as_deref(),
            query_api_key: query.api_key.as_deref(),
            websocket_protocols: req.headers.get("sec-websocket-protocol"),
        };
        let caller = Caller::new(&req.path, &req.headers, req.peer, sources);
        let Admitted {
            ctx,
            client_secret: grant,
            ..
        } = self
            .admit(request_id, &caller, &Policy::REALTIME, &mut Seen::default())
            .await?;
        require_realtime_access(self, &ctx).await?;

        let kind = match query.intent.as_deref() {
            Some("transcription") => SessionKind::Transcription,
            _ => SessionKind::Realtime,
        };
        let model = query
            .model
            .filter(|m| !m.trim().is_empty())
            .map(|m| m.chars().take(200).collect::<String>())
            .unwrap_or_else(|| inner.config.realtime.default_model.clone());
        let config = effective_config(kind, &model, grant.as_deref())?;

        let record = inner
            .sessions
            .create(
                &ctx,
                CreateSessionRequest {
                    project_id: None,
                    config: Some(json!({
                        "protocol": "openai-realtime",
                        "dialect": dialect.as_str(),
                        "model": model,
                        "kind": match kind {
                            SessionKind::Realtime => "realtime",
                            SessionKind::Transcription => "transcription",
                        },
                        "client_secret": grant.is_some(),
                    })),
                    max_open_sessions: inner.config.realtime.max_open_sessions_per_tenant,
                },
            )
            .await?;
        permissions::apply(
            self,
            &ctx,
            GraphChange::SessionCreated {
                session: record.id,
                tenant: record.tenant_id,
                project: record.project_id,
                api_key: record.api_key_id,
            },
        )
        .await;
        // The session lives far longer than a request: its context has no deadline (each storage call gets
        // its own, see `RealtimeConnection`).
        let session_ctx = ctx.clone().with_deadline(None);
        Ok(RealtimeConnection::new(
            self.clone(),
            session_ctx,
            record,
            dialect,
            config,
            ports,
        ))
    }
}

/// Opening a session needs the `realtime` scope for API keys (spec §9.2) and `tenant#operate` for users (the
/// same rule as `POST /api/v2/sessions`).
pub(crate) async fn require_realtime_access(app: &App, ctx: &Ctx) -> Result<(), ApiError> {
    match ctx.principal() {
        Principal::ApiKey(_) => guard::require_scope(ctx, ApiKeyScope::Realtime)?,
        Principal::User(_) | Principal::System { .. } | Principal::Anonymous => {
            let resource = GuardedResource::current_tenant(ctx)?;
            guard::require_permission(app.inner().authorizer.as_ref(), ctx, &resource, "operate").await?;
        }
    }
    Ok(())
}

/// The configuration a new session starts with: the defaults for its kind and model, then the configuration
/// bound to the client secret it was opened with (if any).
fn effective_config(
    kind: SessionKind,
    model: &str,
    grant: Option<&ClientSecretGrant>,
) -> Result<SessionConfig, ApiError> {
    let mut config = SessionConfig::new(kind, model);
    let Some(bound) = grant.map(|g| &g.session_config) else {
        return Ok(config);
    };
    let dialect = match bound.get("dialect").and_then(Value::as_str) {
        Some("beta") => Dialect::Beta,
        _ => Dialect::Ga,
    };
    let session = bound.get("session").cloned().unwrap_or_else(|| json!({}));
    if session.as_object().is_some_and(|m| m.is_empty()) {
        return Ok(config);
    }
    let update = decode_session(dialect, kind, session).map_err(|e| {
        ApiError::with_message(
            ErrorCode::ValidationError,
            format!(
                "the client secret's session configuration no longer applies: {}",
                e.message()
            ),
        )
    })?;
    config
        .apply(update, UpdateLocks::default())
        .map_err(|e| ApiError::with_message(ErrorCode::ValidationError, e.to_string()))?;
    Ok(config)
}

fn header_values<'a>(headers: &'a Headers, name: &str) -> Vec<&'a str> {
    headers
        .iter()
        .filter(|(n, _)| *n == name)
        .map(|(_, v)| v)
        .collect()
}
