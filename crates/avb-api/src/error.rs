//! The one place errors become HTTP: a status (`u16`) and the `{"error","message","details"}` envelope.

use avb_core::{ErrorBody, ErrorCode, HasCode};
use serde_json::{Map, Value};

/// An error on its way to the client.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// Stable code.
    pub code: ErrorCode,
    /// Message (generic for 5xx).
    pub message: String,
    /// Details object.
    pub details: Value,
    /// Seconds a client should wait (429, 503).
    pub retry_after: Option<u64>,
    /// The full cause, for the log line only.
    pub cause: Option<String>,
}

impl ApiError {
    /// An error with a code's default message.
    pub fn new(code: ErrorCode) -> Self {
        Self {
            code,
            message: code.default_message().to_owned(),
            details: Value::Object(Map::new()),
            retry_after: None,
            cause: None,
        }
    }

    /// An error with a message.
    pub fn with_message(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            ..Self::new(code)
        }
    }

    /// Sets details.
    #[must_use]
    pub fn details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }

    /// From any crate error that has a code. 5xx errors keep their cause for the log but show the generic
    /// message.
    pub fn from_error<E: HasCode + std::fmt::Display>(err: &E) -> Self {
        let code = err.code();
        let body = err.to_body();
        Self {
            code,
            message: body.message,
            details: body.details,
            retry_after: None,
            cause: (code.status() >= 500).then(|| err.to_string()),
        }
    }

    /// HTTP status.
    pub fn status(&self) -> u16 {
        self.code.status()
    }

    /// The wire envelope.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: self.code,
            message: self.message.clone(),
            details: self.details.clone(),
        }
    }

    /// The wire envelope, moving message and details out instead of copying them.
    pub fn into_body(self) -> ErrorBody {
        ErrorBody {
            error: self.code,
            message: self.message,
            details: self.details,
        }
    }
}

impl From<avb_core::Error> for ApiError {
    fn from(err: avb_core::Error) -> Self {
        Self::from_error(&err)
    }
}

impl From<avb_tenancy::Error> for ApiError {
    fn from(err: avb_tenancy::Error) -> Self {
        Self::from_error(&err)
    }
}

impl From<avb_auth::Error> for ApiError {
    fn from(err: avb_auth::Error) -> Self {
        Self::from_error(&err)
    }
}

impl From<avb_core::FieldErrors> for ApiError {
    fn from(err: avb_core::FieldErrors) -> Self {
        Self::from_error(&avb_core::Error::Invalid(err))
    }
}
