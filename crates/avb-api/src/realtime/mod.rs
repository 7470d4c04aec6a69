//! Realtime voice over WebSocket, framework-free: the OpenAI-Realtime-compatible `/v1/realtime` endpoint
//! (reference `openai-realtime-events.md` §11) as two calls an adapter makes around its upgrade.
//!
//! 1. [`App::realtime_accept`](crate::App::realtime_accept) runs before the upgrade: dialect and subprotocol
//!    negotiation, credentials (`Authorization: Bearer` API key / `ek_` client secret / JWT, `X-API-Key`,
//!    `?api_key=`/`?token=`, the `openai-insecure-api-key.<key>` subprotocol), tenant, rate limit, the
//!    `realtime` scope or `tenant#operate`, the tenant's concurrent-session cap and monthly session quota, and
//!    the stored [`Session`](avb_tenancy::model::Session) record. A refusal is an HTTP response (401, 403, 429,
//!    503 …) with an OpenAI-style JSON error body, so clients see it before any socket exists.
//! 2. [`RealtimeConnection::run`] runs after it: the adapter pumps text frames in and out through two channels
//!    and closes the socket with the returned [`CloseFrame`]. The session engine
//!    ([`avb_voice::realtime::engine::RealtimeSession`]) does the protocol; this layer adds what the product
//!    needs around it — session status (`created → active → completed`), the transcript, responses, tool calls
//!    and errors stored as session events in order, usage metered on the record when the session ends, idle
//!    timeout and maximum duration, and the `avb_websocket_*` / `avb_*session*` metrics.
//!
//! The REST side (`POST /v1/realtime/client_secrets`, `POST /v1/realtime/sessions`) lives in
//! [`ops::realtime`](crate::ops::realtime) and goes through the normal pipeline.

pub(crate) mod connect;
mod connection;
mod recorder;

pub use avb_voice::realtime::TextFrame;
pub use connect::{RealtimeAccept, RealtimeRequest};
pub use connection::{ClientFrame, CloseFrame, FrameSource, RealtimeConnection, SESSION_TERMINATED_EVENT};

use crate::error::ApiError;
use avb_core::ErrorCode;
use serde_json::json;
use std::time::Duration;

/// Limits of realtime connections.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RealtimeConfig {
    /// A connection with no client frame for this long is closed (default 10 min).
    pub idle_timeout: Duration,
    /// Longest session (default 60 min, as OpenAI's service).
    pub max_duration: Duration,
    /// Sessions a tenant may have open at once (`created` or `active`, across replicas); `None` = no cap.
    pub max_open_sessions_per_tenant: Option<u32>,
    /// Frames buffered towards a slow client before the session waits for it (backpressure, not loss): the
    /// capacity of the channel an adapter creates between a connection and its socket writer.
    pub outbound_buffer: usize,
    /// Model reported when the client names none.
    pub default_model: String,
}

impl Default for RealtimeConfig {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(600),
            max_duration: Duration::from_secs(3600),
            max_open_sessions_per_tenant: Some(100),
            outbound_buffer: 256,
            default_model: "gpt-realtime".to_owned(),
        }
    }
}

/// Whether `path` is a realtime WebSocket endpoint: `/v1/realtime` or any path ending in `/realtime` (the SDKs
/// append `/realtime` to whatever base URL the user gives, so tenants can route by prefix).
pub fn is_realtime_path(path: &str) -> bool {
    path == "/realtime" || path.ends_with("/realtime")
}

/// The OpenAI-style error body of the `/v1/realtime*` endpoints: `{"error": {type, code, message, param,
/// details}}`. `code` is our stable [`ErrorCode`] (`authentication_failed`, `insufficient_scope`, …); `type` is
/// `invalid_request_error` for 4xx and `server_error` for 5xx, as the SDKs expect.
pub fn openai_error_body(err: &ApiError, debug: bool) -> serde_json::Value {
    let status = err.status();
    let mut details = err.details.clone();
    if status >= 500
        && debug
        && let Some(cause) = &err.cause
    {
        details = json!({ "debug": cause });
    }
    json!({
        "error": {
            "type": if status >= 500 { "server_error" } else { "invalid_request_error" },
            "code": err.code.as_str(),
            "message": err.message,
            "param": serde_json::Value::Null,
            "details": details,
        }
    })
}

/// `service_unavailable` for a server without speech engines.
pub(crate) fn no_speech() -> ApiError {
    ApiError::with_message(
        ErrorCode::ServiceUnavailable,
        "realtime voice is not configured on this server",
    )
}

/// The query string of a WebSocket upgrade (here and on `/ws/v2`) as `T`; a malformed one is `validation_error`,
/// worded alike on both protocols.
pub(crate) fn upgrade_query<T: serde::de::DeserializeOwned>(raw: &str) -> Result<T, ApiError> {
    serde_urlencoded::from_str(raw)
        .map_err(|e| ApiError::with_message(ErrorCode::ValidationError, format!("invalid query string: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn realtime_paths_are_recognised_with_any_prefix() {
        assert!(is_realtime_path("/v1/realtime"));
        assert!(is_realtime_path("/tenant/abc/v1/realtime"));
        assert!(is_realtime_path("/realtime"));
        assert!(!is_realtime_path("/v1/realtime/client_secrets"));
        assert!(!is_realtime_path("/v1/realtimex"));
        assert!(!is_realtime_path("/api/v2/sessions"));
    }

    #[test]
    fn errors_have_the_openai_shape_with_our_code() {
        let body = openai_error_body(&ApiError::new(ErrorCode::AuthenticationFailed), false);
        assert_eq!(body["error"]["type"], "invalid_request_error");
        assert_eq!(body["error"]["code"], "authentication_failed");
        assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
        let body = openai_error_body(&no_speech(), false);
        assert_eq!(body["error"]["type"], "server_error");
    }
}
