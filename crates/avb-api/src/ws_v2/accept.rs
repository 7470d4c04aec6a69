//! Before the upgrade: which consumer, who is calling, for which tenant, and may they.

use super::events::EventsConsumer;
use super::monitoring::MonitoringConsumer;
use super::session::{SessionConsumer, ga_session};
use super::stt::SttConsumer;
use super::tts::TtsConsumer;
use super::{Consumer, Route, State, WsV2Connection};
use crate::admission::{Admitted, Caller, Policy, Seen};
use crate::app::App;
use crate::error::ApiError;
use crate::http::{ApiResponse, Headers};
use crate::pipeline::{SECURITY_HEADERS, request_id_for};
use crate::realtime::connect::require_realtime_access;
use crate::realtime::{RealtimeConnection, no_speech, upgrade_query};
use avb_auth::authorizer::guard;
use avb_auth::credentials::CredentialSources;
use avb_core::events::Group;
use avb_core::{ApiKeyScope, Ctx, ErrorCode, Principal, RequestId, Role, SessionId};
use avb_tenancy::model::{Session, SessionStatus};
use avb_voice::realtime::protocol::{Dialect, SessionConfig, SessionKind, UpdateLocks, decode_session};
use std::net::IpAddr;

/// The upgrade request, as the adapter saw it.
#[derive(Debug, Clone, Default)]
pub struct WsV2Request {
    /// Path (`/ws/v2/…`).
    pub path: String,
    /// Raw query string (`token=…`), without `?`.
    pub query: String,
    /// Request headers.
    pub headers: Headers,
    /// The peer's address.
    pub peer: Option<IpAddr>,
}

/// An upgrade to answer with `101` (adding `headers`), then [`WsV2Connection::run`] — also when the connection is
/// refused: it then sends the error and closes with the spec's close code (see the [module docs](super)).
#[derive(Debug)]
pub struct WsV2Accept {
    /// Headers to add to the `101` answer (`x-request-id`).
    pub headers: Vec<(String, String)>,
    /// What to run on the socket.
    pub connection: WsV2Connection,
}

/// The credentials a WebSocket client may put in the URL (spec §8.3); other parameters are ignored.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct ConnectQuery {
    token: Option<String>,
    api_key: Option<String>,
}

impl App {
    /// Decides a `/ws/v2` upgrade (see the [module docs](crate::ws_v2)). `Err` is the complete HTTP answer for a
    /// path that names no consumer (404); every other request is upgraded, refusals included, so that the client
    /// sees the close code.
    pub async fn ws_v2_accept(&self, req: WsV2Request) -> Result<WsV2Accept, ApiResponse> {
        let inner = self.inner();
        let request_id = request_id_for(&req.headers, inner.ids.as_ref());
        let Some(route) = Route::parse(&req.path) else {
            let err = ApiError::with_message(ErrorCode::NotFound, "no WebSocket endpoint at this path");
            inner.metrics.http_request("GET", "ws_v2_connect", 404, 0.0);
            let mut response = ApiResponse::json(404, &err.body());
            response.set_header("x-request-id", request_id.as_str());
            for (name, value) in SECURITY_HEADERS {
                response.set_header(name, *value);
            }
            return Err(response);
        };
        let consumer = route.consumer();
        let state = match self.ws_v2_decide(&req, &request_id, route).await {
            Ok(state) => {
                tracing::info!(request_id = %request_id, path = %req.path, consumer = consumer.as_str(), "ws_v2_connected");
                state
            }
            Err(err) => {
                let status = err.status();
                inner.metrics.http_request("GET", "ws_v2_connect", status, 0.0);
                tracing::warn!(
                    request_id = %request_id,
                    path = %req.path,
                    consumer = consumer.as_str(),
                    code = err.code.as_str(),
                    close_code = super::close_code(err.code),
                    "ws_v2_refused"
                );
                State::Refused(err)
            }
        };
        Ok(WsV2Accept {
            headers: vec![("x-request-id".to_owned(), request_id.as_str().to_owned())],
            connection: WsV2Connection {
                app: self.clone(),
                consumer,
                state,
            },
        })
    }

    async fn ws_v2_decide(
        &self,
        req: &WsV2Request,
        request_id: &RequestId,
        route: Route,
    ) -> Result<State, ApiError> {
        let inner = self.inner();
        let query: ConnectQuery = upgrade_query(&req.query)?;
        // Credentials (4001), tenant (4002) and rate limit (4029).
        let sources = CredentialSources {
            authorization: req.headers.get("authorization"),
            x_api_key: req.headers.get("x-api-key"),
            query_token: query.token.as_deref(),
            query_api_key: query.api_key.as_deref(),
            websocket_protocols: None,
        };
        let caller = Caller::new(&req.path, &req.headers, req.peer, sources);
        let policy = match route {
            Route::Monitoring => &Policy::WS_V2_ADMIN,
            _ => &Policy::WS_V2,
        };
        let Admitted { ctx, .. } = self
            .admit(request_id, &caller, policy, &mut Seen::default())
            .await?;
        // A connection lives far longer than a request: its own context has no deadline (each storage or engine
        // call sets its own).
        let long_ctx = ctx.clone().with_deadline(None);

        match route {
            Route::Monitoring => {
                let sysadmin =
                    matches!(ctx.principal(), Principal::User(user) if user.roles.contains(&Role::Sysadmin));
                if !sysadmin {
                    return Err(ApiError::with_message(
                        ErrorCode::PermissionDenied,
                        "platform monitoring is for sysadmins only",
                    ));
                }
                Ok(State::Monitoring(MonitoringConsumer::new(self.clone())))
            }
            Route::Events => {
                crate::ops::require_tenant_permission(self, &ctx, "view").await?;
                let tenant = ctx.require_tenant()?;
                let mut groups = vec![Group::Tenant { tenant }];
                if let Principal::User(user) = ctx.principal() {
                    groups.push(Group::User {
                        tenant,
                        user: user.user_id,
                    });
                }
                let subscription = inner.events.subscribe(&ctx, &groups).await?;
                Ok(State::Events(EventsConsumer::new(self.clone(), subscription)))
            }
            Route::Transcription => {
                require_realtime_access(self, &ctx).await?;
                let ports = inner.speech.clone().ok_or_else(no_speech)?;
                Ok(State::Transcription(SttConsumer::new(
                    self.clone(),
                    long_ctx,
                    ports.stt,
                )))
            }
            Route::Tts => {
                require_realtime_access(self, &ctx).await?;
                let ports = inner.speech.clone().ok_or_else(no_speech)?;
                Ok(State::Tts(TtsConsumer::new(self.clone(), long_ctx, ports.tts)))
            }
            Route::Session(raw_id) => {
                // An id that cannot exist is as unknown as one that does not (4004), decided after authentication.
                let id: SessionId = raw_id.parse().map_err(|_| session_not_found(&raw_id))?;
                let record = inner.sessions.get(&ctx, id).await?;
                authorize_session(self, &ctx, &record).await?;
                let ports = inner.speech.clone().ok_or_else(no_speech)?;
                if record.status != SessionStatus::Created {
                    return Err(ApiError::with_message(
                        ErrorCode::Conflict,
                        format!(
                            "the session is {}; only a created session can be connected to",
                            record.status.as_str()
                        ),
                    ));
                }
                let config = initial_config(&record, &inner.config.realtime.default_model)?;
                let connection = RealtimeConnection::new(
                    self.clone(),
                    long_ctx.clone(),
                    record.clone(),
                    Dialect::Ga,
                    config,
                    ports,
                )
                .with_consumer_type(Consumer::Session.as_str());
                Ok(State::Session(Box::new(SessionConsumer::new(
                    self.clone(),
                    long_ctx,
                    record,
                    connection,
                ))))
            }
        }
    }
}

/// Driving a session: API keys need the `realtime` scope (and, when bound to a project, the session's project);
/// users need `session#terminate` — the `tenant#operate` level at which operators run sessions, and a session
/// that can be driven can be ended.
async fn authorize_session(app: &App, ctx: &Ctx, record: &Session) -> Result<(), ApiError> {
    match ctx.principal() {
        Principal::ApiKey(key) => {
            guard::require_scope(ctx, ApiKeyScope::Realtime)?;
            if let Some(bound) = key.project_id
                && record.project_id != Some(bound)
            {
                return Err(ApiError::with_message(
                    ErrorCode::PermissionDenied,
                    "this API key is bound to another project",
                ));
            }
            Ok(())
        }
        Principal::User(_) | Principal::System { .. } | Principal::Anonymous => {
            crate::ops::require(app, ctx, record.id, record.tenant_id, "terminate").await
        }
    }
}

/// The engine configuration a stored session starts with: its `model` (else the server default) and the rest of
/// its stored `config`, as `session.update` would apply it, with input transcription on.
fn initial_config(record: &Session, default_model: &str) -> Result<SessionConfig, ApiError> {
    let stored = record.config.as_object().cloned().unwrap_or_default();
    let model = stored
        .get("model")
        .and_then(serde_json::Value::as_str)
        .filter(|m| !m.trim().is_empty())
        .map_or_else(|| default_model.to_owned(), |m| m.chars().take(200).collect());
    let invalid = |message: String| {
        ApiError::with_message(
            ErrorCode::ValidationError,
            format!("the session's stored configuration does not apply: {message}"),
        )
    };
    let session = ga_session(&stored, true).map_err(invalid)?;
    let update = decode_session(Dialect::Ga, SessionKind::Realtime, session)
        .map_err(|e| invalid(e.message().to_owned()))?;
    let mut config = SessionConfig::new(SessionKind::Realtime, model);
    config
        .apply(update, UpdateLocks::default())
        .map_err(|e| invalid(e.to_string()))?;
    Ok(config)
}

fn session_not_found(raw_id: &str) -> ApiError {
    ApiError::from(avb_core::Error::NotFound {
        resource: "session",
        id: raw_id.chars().take(64).collect(),
    })
}
