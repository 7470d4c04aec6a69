//! Protocol errors: bad client input becomes an `error` server event and the session stays open (reference §11
//! items 9–10).

use super::event::ServerEvent;
use serde_json::Value;
use std::fmt;

/// The `error.type` for problems with what the client sent.
pub const INVALID_REQUEST_ERROR: &str = "invalid_request_error";
/// The `error.type` for failures on the server's side.
pub const SERVER_ERROR: &str = "server_error";

/// Longest excerpt of a client value quoted back in an error message.
const QUOTE_CHARS: usize = 64;

/// Stable `error.code` values for client events the server could not accept. A shipped code is never renamed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProtocolErrorCode {
    /// `invalid_json`: the frame is not JSON.
    InvalidJson,
    /// `invalid_event`: JSON, but not an event object (not an object, no `type`, over-long `event_id`).
    InvalidEvent,
    /// `unknown_event`: the `type` is not a client event of the connection's dialect.
    UnknownEvent,
    /// `missing_required_parameter`: a required field is absent; `param` names it.
    MissingRequiredParameter,
    /// `invalid_type`: a field has the wrong JSON type; `param` names it.
    InvalidType,
    /// `invalid_value`: a field has a value outside its enum or range, or one the session state forbids.
    InvalidValue,
}

impl ProtocolErrorCode {
    /// The wire `code`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::InvalidJson => "invalid_json",
            Self::InvalidEvent => "invalid_event",
            Self::UnknownEvent => "unknown_event",
            Self::MissingRequiredParameter => "missing_required_parameter",
            Self::InvalidType => "invalid_type",
            Self::InvalidValue => "invalid_value",
        }
    }
}

impl fmt::Display for ProtocolErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A client event the server cannot accept. Always an `invalid_request_error`; turn it into the `error` server
/// event with [`ProtocolError::into_event`] and keep the session open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ProtocolError {
    code: ProtocolErrorCode,
    message: String,
    param: Option<String>,
    event_id: Option<String>,
}

impl ProtocolError {
    /// An error with a code and a human-readable message.
    pub fn new(code: ProtocolErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            param: None,
            event_id: None,
        }
    }

    /// The frame is not JSON.
    pub(crate) fn invalid_json(err: &serde_json::Error) -> Self {
        Self::new(
            ProtocolErrorCode::InvalidJson,
            format!("The server could not parse the event as JSON: {err}."),
        )
    }

    /// The `type` is not a client event of this dialect.
    pub(crate) fn unknown_event(event_type: &str) -> Self {
        Self::new(
            ProtocolErrorCode::UnknownEvent,
            format!("Unknown event type: {}.", quote(event_type)),
        )
        .with_param("type")
    }

    /// A required field is missing.
    pub(crate) fn missing(param: impl Into<String>) -> Self {
        let param = param.into();
        Self::new(
            ProtocolErrorCode::MissingRequiredParameter,
            format!("Missing required parameter: '{param}'."),
        )
        .with_param(param)
    }

    /// A field has the wrong JSON type.
    pub(crate) fn invalid_type(param: impl Into<String>, expected: &str, got: &Value) -> Self {
        let param = param.into();
        Self::new(
            ProtocolErrorCode::InvalidType,
            format!(
                "Invalid type for '{param}': expected {expected}, but got {} instead.",
                describe(got)
            ),
        )
        .with_param(param)
    }

    /// A field has a value outside its range or enum.
    pub(crate) fn invalid_value(param: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(ProtocolErrorCode::InvalidValue, message).with_param(param)
    }

    /// A string outside an enum: lists what is supported.
    pub(crate) fn unsupported(param: impl Into<String>, got: &str, supported: &[&str]) -> Self {
        let list = supported
            .iter()
            .map(|s| format!("'{s}'"))
            .collect::<Vec<_>>()
            .join(", ");
        Self::invalid_value(
            param,
            format!("Invalid value: {}. Supported values are: {list}.", quote(got)),
        )
    }

    /// Names the field at fault.
    #[must_use]
    pub fn with_param(mut self, param: impl Into<String>) -> Self {
        self.param = Some(param.into());
        self
    }

    /// Names the client event at fault (its `event_id`, when it had one).
    #[must_use]
    pub fn with_event_id(mut self, event_id: Option<String>) -> Self {
        self.event_id = event_id;
        self
    }

    /// The stable code.
    pub const fn code(&self) -> ProtocolErrorCode {
        self.code
    }

    /// The message for the client.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The offending field, in the dialect's path syntax (`session.audio.input.turn_detection.threshold`).
    pub fn param(&self) -> Option<&str> {
        self.param.as_deref()
    }

    /// The `event_id` of the offending client event.
    pub fn event_id(&self) -> Option<&str> {
        self.event_id.as_deref()
    }

    /// The wire error object.
    pub fn to_error_object(&self) -> ErrorObject {
        ErrorObject {
            kind: INVALID_REQUEST_ERROR.to_owned(),
            code: Some(self.code.as_str().to_owned()),
            message: self.message.clone(),
            param: self.param.clone(),
            event_id: self.event_id.clone(),
        }
    }

    /// The `error` server event that answers the offending client event.
    pub fn into_event(self) -> ServerEvent {
        ServerEvent::Error {
            error: self.to_error_object(),
        }
    }
}

/// The `error` object of an `error` server event (and of `…input_audio_transcription.failed`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorObject {
    /// `type`: [`INVALID_REQUEST_ERROR`], [`SERVER_ERROR`], …
    pub kind: String,
    /// `code`: a stable snake_case code.
    pub code: Option<String>,
    /// `message`: human-readable.
    pub message: String,
    /// `param`: the field at fault.
    pub param: Option<String>,
    /// `event_id`: the client event that caused the error.
    pub event_id: Option<String>,
}

impl ErrorObject {
    /// An `invalid_request_error` with a code, for rules the engine enforces (empty buffer commit, unknown item…).
    pub fn invalid_request(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            kind: INVALID_REQUEST_ERROR.to_owned(),
            code: Some(code.into()),
            message: message.into(),
            param: None,
            event_id: None,
        }
    }

    /// A `server_error` (the details belong in the log, not here).
    pub fn server_error(message: impl Into<String>) -> Self {
        Self {
            kind: SERVER_ERROR.to_owned(),
            code: None,
            message: message.into(),
            param: None,
            event_id: None,
        }
    }

    /// Names the field at fault.
    #[must_use]
    pub fn with_param(mut self, param: impl Into<String>) -> Self {
        self.param = Some(param.into());
        self
    }

    /// Names the client event at fault.
    #[must_use]
    pub fn with_event_id(mut self, event_id: Option<String>) -> Self {
        self.event_id = event_id;
        self
    }
}

/// `'value'`, cut to a bounded length so a huge client string is never echoed whole.
pub(crate) fn quote(value: &str) -> String {
    let mut chars = value.chars();
    let head: String = chars.by_ref().take(QUOTE_CHARS).collect();
    if chars.next().is_some() {
        format!("'{head}…'")
    } else {
        format!("'{head}'")
    }
}

/// The JSON type of a value, as an error message names it.
pub(crate) fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "an integer",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_are_bounded() {
        let long = "x".repeat(10_000);
        let q = quote(&long);
        assert!(q.chars().count() < 70, "{q}");
        assert_eq!(quote("ab"), "'ab'");
    }

    #[test]
    fn error_object_carries_code_param_and_event_id() {
        let e = ProtocolError::missing("item.content").with_event_id(Some("evt_1".into()));
        let o = e.to_error_object();
        assert_eq!(o.kind, "invalid_request_error");
        assert_eq!(o.code.as_deref(), Some("missing_required_parameter"));
        assert_eq!(o.param.as_deref(), Some("item.content"));
        assert_eq!(o.event_id.as_deref(), Some("evt_1"));
    }
}
