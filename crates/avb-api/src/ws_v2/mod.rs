//! The spec's own WebSocket protocol (§8, `/ws/v2/*`), framework-free, as two calls an adapter makes around its
//! upgrade — the same shape as [`realtime`](crate::realtime), over the same session engine.
//!
//! 1. [`App::ws_v2_accept`](crate::App::ws_v2_accept) runs before the upgrade: which consumer the path names,
//!    credentials (`?token=` / `?api_key=` as the spec's `WebSocketAuthMiddleware`, or the `Authorization` /
//!    `X-API-Key` headers), tenant, rate limit and the consumer's permission.
//! 2. [`WsV2Connection::run`] runs after it: the adapter pumps text frames in and out and closes the socket with
//!    the returned [`CloseFrame`].
//!
//! # Consumers
//! - `/ws/v2/sessions/{id}` (spec §8.6): drives a stored session (`POST /api/v2/sessions`, status `created`) on
//!   the realtime engine, with the record, transcript and usage kept exactly as on `/v1/realtime` (mapping
//!   below).
//! - `/ws/v2/events` (spec §8.5): the caller's tenant group and (users) user group of the event bus.
//! - `/ws/v2/stt/transcription`, `/ws/v2/tts/stream`: streams over the speech-to-text and text-to-speech ports.
//! - `/ws/v2/admin/monitoring` (platform sysadmins): the app's metrics as periodic JSON snapshots
//!   ([`monitoring`]). It is the one consumer without a tenant (the spec exempts `/ws/v2/admin/` from tenant
//!   resolution); anyone but a sysadmin user is refused with 4003.
//!
//! # Messages
//! Server messages are `{"type", "data", "timestamp"}` (spec `send_event`); errors are
//! `{"type": "error", "error": {"code", "message"}, "timestamp"}` (spec `send_error`); `ping` is answered with
//! `{"type": "pong"}`, on every consumer. The first message of an accepted connection is
//! `{"type": "connection.established", "timestamp"}`. An unknown `type` is answered with `unknown_message_type`
//! and the connection stays open.
//!
//! # Refusals are close codes, after the upgrade
//! The spec signals refusals with close codes: 4001 authentication, 4002 tenant, 4003 forbidden, 4004 not found.
//! A close code only exists on an open socket — a handshake refused with an HTTP status shows a browser nothing
//! but a failed connection (Django Channels' close-before-accept has exactly that flaw). So a refused connection
//! is still upgraded; it then sends one `error` message carrying the stable error code (`tenant_suspended`,
//! `insufficient_scope`, …) and closes with the code [`close_code`] gives, the same error code as the reason.
//! Other refusals follow the spec's pattern of 4000 + (HTTP status − 400): 4000 validation, 4009 conflict, 4029
//! rate limited; an unavailable dependency is 1013 (try again later), a server failure 1011. Only a path that
//! names no consumer is answered before the upgrade (HTTP 404 with the usual error envelope).
//!
//! Checks run in this order, so that nothing about a tenant's sessions leaks to an unauthenticated caller:
//! credentials (4001), tenant (4002), rate limit (4029), the session record (4004 — also for a session of another
//! tenant: existence never leaks, where the spec's consumer answered 4003), permission (4003).

mod accept;
mod events;
pub mod monitoring;
mod session;
mod stt;
mod tts;
mod wire;

pub use crate::realtime::{ClientFrame, CloseFrame, FrameSource};
pub use accept::{WsV2Accept, WsV2Request};

use crate::app::App;
use crate::error::ApiError;
use avb_core::ErrorCode;
use tokio::sync::mpsc;

/// Whether `path` belongs to this protocol (adapters route its upgrades to
/// [`App::ws_v2_accept`](crate::App::ws_v2_accept)).
pub fn is_ws_v2_path(path: &str) -> bool {
    path.starts_with("/ws/v2/")
}

/// The consumers (spec §8.2 routing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Consumer {
    /// `/ws/v2/sessions/{id}`.
    Session,
    /// `/ws/v2/events`.
    Events,
    /// `/ws/v2/stt/transcription`.
    Transcription,
    /// `/ws/v2/tts/stream`.
    Tts,
    /// `/ws/v2/admin/monitoring`.
    Monitoring,
}

impl Consumer {
    /// The `consumer_type` metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Consumer::Session => "session",
            Consumer::Events => "events",
            Consumer::Transcription => "transcription",
            Consumer::Tts => "tts",
            Consumer::Monitoring => "admin_monitoring",
        }
    }
}

/// The route a path names, with the raw session id for `/ws/v2/sessions/{id}` (a trailing `/` is accepted, as
/// the spec's `/?$`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    Session(String),
    Events,
    Transcription,
    Tts,
    Monitoring,
}

impl Route {
    pub(crate) fn parse(path: &str) -> Option<Self> {
        let rest = path.strip_prefix("/ws/v2/")?;
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        match rest {
            "events" => Some(Self::Events),
            "stt/transcription" => Some(Self::Transcription),
            "tts/stream" => Some(Self::Tts),
            "admin/monitoring" => Some(Self::Monitoring),
            _ => {
                let id = rest.strip_prefix("sessions/")?;
                (!id.is_empty() && !id.contains('/')).then(|| Self::Session(id.to_owned()))
            }
        }
    }

    pub(crate) fn consumer(&self) -> Consumer {
        match self {
            Self::Session(_) => Consumer::Session,
            Self::Events => Consumer::Events,
            Self::Transcription => Consumer::Transcription,
            Self::Tts => Consumer::Tts,
            Self::Monitoring => Consumer::Monitoring,
        }
    }
}

/// The close code a refusal with `code` ends the connection with (see the [module docs](self)).
pub fn close_code(code: ErrorCode) -> u16 {
    match code {
        ErrorCode::AuthenticationFailed | ErrorCode::TokenExpired | ErrorCode::InvalidToken => 4001,
        ErrorCode::TenantError
        | ErrorCode::TenantNotFound
        | ErrorCode::TenantSuspended
        | ErrorCode::TenantRequired => 4002,
        ErrorCode::ServiceUnavailable | ErrorCode::Timeout => 1013,
        other => match other.status() {
            status @ 400..=499 => 4000 + (status - 400),
            _ => 1011,
        },
    }
}

/// An accepted upgrade, to run once the socket is open (see [`App::ws_v2_accept`](crate::App::ws_v2_accept)).
#[derive(Debug)]
pub struct WsV2Connection {
    app: App,
    consumer: Consumer,
    state: State,
}

#[derive(Debug)]
enum State {
    Refused(ApiError),
    Session(Box<session::SessionConsumer>),
    Events(events::EventsConsumer),
    Transcription(stt::SttConsumer),
    Tts(tts::TtsConsumer),
    Monitoring(monitoring::MonitoringConsumer),
}

impl WsV2Connection {
    /// Which consumer the path named.
    pub fn consumer(&self) -> Consumer {
        self.consumer
    }

    /// The error this connection was refused with (it then only sends that error and closes), or `None`.
    pub fn refusal(&self) -> Option<&ApiError> {
        match &self.state {
            State::Refused(err) => Some(err),
            _ => None,
        }
    }

    /// Runs the consumer until it ends (the client closes, `session.end`, an idle timeout, a refusal …). Server
    /// frames (JSON text) go to `outgoing`; a full channel makes the consumer wait (backpressure, never loss).
    /// When this returns, send the [`CloseFrame`] and drop the socket.
    pub async fn run<S: FrameSource>(self, incoming: S, outgoing: mpsc::Sender<String>) -> CloseFrame {
        match self.state {
            State::Refused(err) => {
                let out = wire::Outbox::new(&self.app, outgoing);
                out.error(err.code.as_str(), err.message.as_str()).await;
                CloseFrame {
                    code: close_code(err.code),
                    reason: err.code.as_str().to_owned(),
                }
            }
            State::Session(consumer) => consumer.run(incoming, outgoing).await,
            State::Events(consumer) => consumer.run(incoming, outgoing).await,
            State::Transcription(consumer) => consumer.run(incoming, outgoing).await,
            State::Tts(consumer) => consumer.run(incoming, outgoing).await,
            State::Monitoring(consumer) => consumer.run(incoming, outgoing).await,
        }
    }
}

/// Idle and maximum-duration limits of the speech streams (those of realtime sessions), as deadlines.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    idle: std::time::Duration,
    expires: tokio::time::Instant,
}

impl Limits {
    pub(crate) fn of(app: &App) -> Self {
        let settings = &app.inner().config.realtime;
        Self {
            idle: settings.idle_timeout,
            expires: tokio::time::Instant::now() + settings.max_duration,
        }
    }

    /// When the connection idles out if no client message arrives from now on.
    pub(crate) fn idle_from_now(&self) -> tokio::time::Instant {
        (tokio::time::Instant::now() + self.idle).min(self.expires)
    }

    /// The `error` to send and the close frame for a connection that reached a limit at `now`.
    pub(crate) fn ending(&self, now: tokio::time::Instant) -> (&'static str, String, CloseFrame) {
        if now >= self.expires {
            (
                wire::codes::SESSION_EXPIRED,
                "the connection reached its maximum duration".to_owned(),
                CloseFrame {
                    code: 1000,
                    reason: "session expired".into(),
                },
            )
        } else {
            (
                wire::codes::IDLE_TIMEOUT,
                format!(
                    "no client message for {} s; the connection was closed",
                    self.idle.as_secs()
                ),
                CloseFrame {
                    code: 1000,
                    reason: "idle timeout".into(),
                },
            )
        }
    }
}

/// The normal close.
pub(crate) fn normal_close() -> CloseFrame {
    CloseFrame {
        code: 1000,
        reason: String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Adapters run connections on spawned tasks (axum's `on_upgrade` requires `Send`).
    #[allow(dead_code)]
    fn run_is_send(
        connection: WsV2Connection,
        incoming: mpsc::Receiver<ClientFrame>,
        outgoing: mpsc::Sender<String>,
    ) {
        fn send<T: Send>(_: T) {}
        send(connection.run(incoming, outgoing));
    }

    #[test]
    fn paths_name_their_consumer() {
        assert_eq!(Route::parse("/ws/v2/events"), Some(Route::Events));
        assert_eq!(Route::parse("/ws/v2/events/"), Some(Route::Events));
        assert_eq!(
            Route::parse("/ws/v2/stt/transcription"),
            Some(Route::Transcription)
        );
        assert_eq!(Route::parse("/ws/v2/tts/stream/"), Some(Route::Tts));
        assert_eq!(Route::parse("/ws/v2/admin/monitoring/"), Some(Route::Monitoring));
        assert_eq!(
            Route::parse("/ws/v2/sessions/0b6c-ab"),
            Some(Route::Session("0b6c-ab".into()))
        );
        assert_eq!(
            Route::parse("/ws/v2/sessions/abc/"),
            Some(Route::Session("abc".into()))
        );
        for none in [
            "/ws/v2/sessions/",
            "/ws/v2/sessions/a/b",
            "/ws/v2/nope",
            "/ws/v2/",
            "/api/v2/events",
            "/ws/v2/models/download",
            "/ws/v2/admin/",
            "/ws/v2/admin/monitoring/x",
        ] {
            assert_eq!(Route::parse(none), None, "{none}");
        }
        assert!(is_ws_v2_path("/ws/v2/events"));
        assert!(!is_ws_v2_path("/v1/realtime"));
    }

    #[test]
    fn refusals_map_to_the_spec_close_codes() {
        assert_eq!(close_code(ErrorCode::AuthenticationFailed), 4001);
        assert_eq!(close_code(ErrorCode::TokenExpired), 4001);
        assert_eq!(close_code(ErrorCode::InvalidToken), 4001);
        assert_eq!(close_code(ErrorCode::TenantSuspended), 4002);
        assert_eq!(close_code(ErrorCode::TenantNotFound), 4002);
        assert_eq!(close_code(ErrorCode::TenantRequired), 4002);
        assert_eq!(close_code(ErrorCode::PermissionDenied), 4003);
        assert_eq!(close_code(ErrorCode::InsufficientScope), 4003);
        assert_eq!(close_code(ErrorCode::NotFound), 4004);
        assert_eq!(close_code(ErrorCode::ValidationError), 4000);
        assert_eq!(close_code(ErrorCode::Conflict), 4009);
        assert_eq!(close_code(ErrorCode::RateLimitExceeded), 4029);
        assert_eq!(close_code(ErrorCode::ServiceUnavailable), 1013);
        assert_eq!(close_code(ErrorCode::InternalError), 1011);
        // Every code maps into the application range or a standard server code, never a reserved one.
        for code in ErrorCode::ALL {
            let close = close_code(*code);
            assert!(
                (4000..5000).contains(&close) || [1011, 1013].contains(&close),
                "{code}"
            );
        }
    }
}
