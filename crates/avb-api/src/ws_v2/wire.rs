//! The frames every `/ws/v2` consumer shares (spec §8.4 `BaseConsumer`): the envelope of server messages,
//! `error`, `pong`, `connection.established`, and the parsing of client messages.

use super::Consumer;
use crate::app::App;
use crate::realtime::ClientFrame;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::mpsc;

/// Error codes of `error` messages that are this protocol's own (the others are [`avb_core::ErrorCode`] wire
/// names, or the session engine's codes on `/ws/v2/sessions/{id}`).
pub(crate) mod codes {
    /// A `type` no handler exists for (spec `unknown_message_type`).
    pub const UNKNOWN_MESSAGE_TYPE: &str = "unknown_message_type";
    /// A text frame that is not a JSON object with a string `type`.
    pub const INVALID_MESSAGE: &str = "invalid_message";
    /// `audio.chunk` without usable audio (spec `invalid_audio`).
    pub const INVALID_AUDIO: &str = "invalid_audio";
    /// A binary frame: audio travels base64-encoded inside JSON.
    pub const INVALID_FRAME: &str = "invalid_frame";
    /// No client message for the idle timeout.
    pub const IDLE_TIMEOUT: &str = "idle_timeout";
    /// The connection reached its maximum duration.
    pub const SESSION_EXPIRED: &str = "session_expired";
}

/// Sends server messages to the socket, stamped and counted.
#[derive(Debug, Clone)]
pub(crate) struct Outbox {
    tx: mpsc::Sender<String>,
    app: App,
    sent: Arc<AtomicU64>,
}

impl Outbox {
    pub(crate) fn new(app: &App, tx: mpsc::Sender<String>) -> Self {
        Self {
            tx,
            app: app.clone(),
            sent: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Messages sent so far (all clones).
    pub(crate) fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    fn now(&self) -> String {
        stamp(self.app.inner().clock.now())
    }

    /// Sends one message; `false` once the socket is gone (the caller stops).
    pub(crate) async fn send(&self, message: &Value) -> bool {
        let ok = self.tx.send(message.to_string()).await.is_ok();
        if ok {
            self.sent.fetch_add(1, Ordering::Relaxed);
        }
        ok
    }

    /// `{"type": "connection.established", "timestamp"}`: the first message of every accepted connection.
    pub(crate) async fn established(&self) -> bool {
        self.send(&json!({ "type": "connection.established", "timestamp": self.now() }))
            .await
    }

    /// `{"type": "pong"}`, exactly as the spec answers `ping`.
    pub(crate) async fn pong(&self) -> bool {
        self.send(&json!({ "type": "pong" })).await
    }

    /// `{"type", "data", "timestamp"}` (spec `send_event`), stamped now.
    pub(crate) async fn event(&self, kind: &str, data: Value) -> bool {
        let timestamp = self.now();
        self.send(&json!({ "type": kind, "data": data, "timestamp": timestamp }))
            .await
    }

    /// `{"type", "data", "timestamp"}` with the time the event happened (bus events keep their publish time).
    pub(crate) async fn event_at(&self, kind: &str, data: Value, at: DateTime<Utc>) -> bool {
        self.send(&json!({ "type": kind, "data": data, "timestamp": stamp(at) }))
            .await
    }

    /// `{"type": "error", "error": {code, message}, "timestamp"}` (spec `send_error`).
    pub(crate) async fn error(&self, code: &str, message: impl Into<String>) -> bool {
        let message: String = message.into();
        self.send(&error_message(code, &message, self.now())).await
    }
}

/// The spec's `error` message.
pub(crate) fn error_message(code: &str, message: &str, timestamp: String) -> Value {
    json!({
        "type": "error",
        "error": { "code": code, "message": message },
        "timestamp": timestamp,
    })
}

/// RFC 3339 in UTC with microseconds (the spec's `datetime.utcnow().isoformat()`, with its zone made explicit).
pub(crate) fn stamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// A client frame, parsed.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Inbound {
    /// A JSON object with a string `type` (the other fields in `body`).
    Message {
        /// `type`.
        kind: String,
        /// Every field, `type` included.
        body: Map<String, Value>,
    },
    /// A text frame that is not such an object; the reason is sent back as `invalid_message`.
    Invalid(String),
    /// A binary frame of this many bytes.
    Binary(usize),
}

impl Inbound {
    pub(crate) fn parse(frame: ClientFrame) -> Self {
        let text = match frame {
            ClientFrame::Text(text) => text,
            ClientFrame::Binary(len) => return Self::Binary(len),
        };
        let body = match serde_json::from_str::<Value>(&text) {
            Ok(Value::Object(body)) => body,
            Ok(_) => return Self::Invalid("a message must be a JSON object".into()),
            Err(err) => return Self::Invalid(format!("not JSON: {err}")),
        };
        match body.get("type").and_then(Value::as_str) {
            Some(kind) => Self::Message {
                kind: kind.to_owned(),
                body,
            },
            None => Self::Invalid("a message needs a string \"type\"".into()),
        }
    }
}

/// The answer to a frame that is not a message, or `None` for a message.
pub(crate) async fn refuse_non_message(out: &Outbox, inbound: &Inbound) -> bool {
    match inbound {
        Inbound::Message { .. } => true,
        Inbound::Invalid(reason) => out.error(codes::INVALID_MESSAGE, reason.as_str()).await,
        Inbound::Binary(len) => {
            out.error(
                codes::INVALID_FRAME,
                format!(
                    "binary frames are not part of the protocol ({len} bytes ignored); send JSON text frames"
                ),
            )
            .await
        }
    }
}

/// `unknown_message_type` (spec: `Unknown type: <type>`).
pub(crate) async fn unknown_type(out: &Outbox, kind: &str) -> bool {
    out.error(codes::UNKNOWN_MESSAGE_TYPE, format!("Unknown type: {kind}"))
        .await
}

/// Connection gauge and message counters of one consumer (`avb_websocket_connections`,
/// `avb_websocket_messages_total`, labelled by `consumer_type` as in the spec's metrics).
#[derive(Debug)]
pub(crate) struct Meter {
    app: App,
    consumer: Consumer,
}

impl Meter {
    /// Counts the connection as open until [`Meter::close`].
    pub(crate) fn open(app: &App, consumer: Consumer) -> Self {
        app.inner()
            .metrics
            .gauge_add("avb_websocket_connections", &label(consumer), 1.0);
        Self {
            app: app.clone(),
            consumer,
        }
    }

    /// Records the messages each way and the connection as closed.
    pub(crate) fn close(self, received: u64, sent: u64) {
        let metrics = &self.app.inner().metrics;
        metrics.gauge_add("avb_websocket_connections", &label(self.consumer), -1.0);
        for (direction, by) in [("in", received), ("out", sent)] {
            if by > 0 {
                let mut labels = label(self.consumer).to_vec();
                labels.push(("direction", direction.to_owned()));
                metrics.count("avb_websocket_messages_total", &labels, by);
            }
        }
    }
}

fn label(consumer: Consumer) -> [(&'static str, String); 1] {
    [("consumer_type", consumer.as_str().to_owned())]
}

/// A string field, if present and a string.
pub(crate) fn str_field<'a>(body: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    body.get(name).and_then(Value::as_str)
}

/// The `config` object of a `session.update` (absent or `null` is empty, as the spec's `content.get("config",
/// {})`); anything else is refused with the reason.
pub(crate) fn config_field(body: &Map<String, Value>) -> Result<Map<String, Value>, String> {
    match body.get("config") {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(config)) => Ok(config.clone()),
        Some(_) => Err("\"config\" must be an object".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_parse_into_messages_or_reasons() {
        let parsed = Inbound::parse(ClientFrame::Text(r#"{"type":"ping","x":1}"#.into()));
        let Inbound::Message { kind, body } = parsed else {
            panic!("expected a message");
        };
        assert_eq!(kind, "ping");
        assert_eq!(body.get("x"), Some(&json!(1)));
        for bad in ["{not json", "[1]", r#"{"type": 5}"#, "{}"] {
            assert!(
                matches!(Inbound::parse(ClientFrame::Text(bad.into())), Inbound::Invalid(_)),
                "{bad}"
            );
        }
        assert_eq!(Inbound::parse(ClientFrame::Binary(3)), Inbound::Binary(3));
    }

    #[test]
    fn config_defaults_to_empty_and_must_be_an_object() {
        let body = |v: Value| v.as_object().cloned().unwrap_or_default();
        assert_eq!(
            config_field(&body(json!({"type": "session.update"}))),
            Ok(Map::new())
        );
        assert_eq!(config_field(&body(json!({"config": null}))), Ok(Map::new()));
        assert!(config_field(&body(json!({"config": [1]}))).is_err());
        let config = config_field(&body(json!({"config": {"voice": "alloy"}}))).unwrap_or_default();
        assert_eq!(config.get("voice"), Some(&json!("alloy")));
    }

    #[test]
    fn timestamps_are_rfc3339_utc() {
        let at = DateTime::parse_from_rfc3339("2025-01-02T03:04:05.5Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default();
        assert_eq!(stamp(at), "2025-01-02T03:04:05.500000Z");
    }
}
