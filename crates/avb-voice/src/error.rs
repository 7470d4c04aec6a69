//! Errors of the voice crate: audio validation, limits, cancellation and speech/LLM providers.
//!
//! Adapters keep their engine errors private and map them onto these variants (style §2.3): a malformed frame is
//! [`Error::InvalidAudio`], a model server that cannot be reached is [`Error::Unavailable`], a deadline is
//! [`Error::Timeout`]. The realtime protocol maps them further onto OpenAI-style error types; the codes here are
//! the crate's own and stay stable.

use avb_core::error::BoxError;
use avb_core::{ErrorCode, HasCode};
use serde_json::{Map, Value};

/// Voice errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Audio bytes that cannot be decoded in the declared format (odd pcm16 length, bad base64, empty frame).
    #[error("invalid audio: {0}")]
    InvalidAudio(String),
    /// An audio format, sample rate or codec name that is not supported.
    #[error("unsupported audio format: {0}")]
    UnsupportedFormat(String),
    /// A configuration value out of range (a VAD threshold above 1, a speed of 0, an empty voice).
    #[error("invalid {field}: {reason}")]
    InvalidConfig {
        /// The offending field (`"threshold"`, `"speed"`).
        field: &'static str,
        /// Why it was refused.
        reason: String,
    },
    /// A call that the stream's state does not allow (pushing audio after `finish`).
    #[error("invalid state: {0}")]
    InvalidState(String),
    /// A size limit was exceeded (a base64 append above the per-append cap, the per-session input-buffer cap).
    #[error("{what} exceeds its limit of {limit} bytes ({actual} bytes)")]
    LimitExceeded {
        /// Which limit (`"input_audio_buffer"`, `"append"`).
        what: &'static str,
        /// The limit, in bytes.
        limit: usize,
        /// The size that was asked for, in bytes.
        actual: usize,
    },
    /// The operation was cancelled by its owner (barge-in, `response.cancel`, a dropped stream).
    ///
    /// The engine expects this and never sends it to a client; should it escape, it is answered as `conflict`:
    /// the request was superseded by a later one.
    #[error("cancelled")]
    Cancelled,
    /// A speech or language-model provider could not be reached or failed transiently; retrying may succeed.
    #[error("{provider} unavailable")]
    Unavailable {
        /// The provider (`"whisper"`, `"openai_compat"`).
        provider: &'static str,
        /// The cause, for logs.
        #[source]
        source: BoxError,
    },
    /// An operation did not finish in time.
    #[error("{operation} timed out")]
    Timeout {
        /// The operation (`"stt.finish"`, `"llm.stream"`).
        operation: &'static str,
    },
    /// A bug or an impossible state; logged, answered with a generic 500.
    #[error("internal error: {0}")]
    Internal(String),
    /// A core port failed.
    #[error(transparent)]
    Core(#[from] avb_core::Error),
}

impl Error {
    /// Shorthand for [`Error::InvalidAudio`].
    pub fn invalid_audio(reason: impl Into<String>) -> Self {
        Self::InvalidAudio(reason.into())
    }

    /// Shorthand for [`Error::InvalidConfig`].
    pub fn invalid_config(field: &'static str, reason: impl Into<String>) -> Self {
        Self::InvalidConfig {
            field,
            reason: reason.into(),
        }
    }

    /// Shorthand for [`Error::Unavailable`].
    pub fn unavailable(provider: &'static str, source: impl Into<BoxError>) -> Self {
        Self::Unavailable {
            provider,
            source: source.into(),
        }
    }

    /// [`Error::InvalidState`] for a call on a stream that was already finished.
    pub fn after_finish(call: &str) -> Self {
        Self::InvalidState(format!("{call} after finish"))
    }

    /// True for errors that a retry may cure.
    pub fn is_temporary(&self) -> bool {
        match self {
            Self::Unavailable { .. } | Self::Timeout { .. } => true,
            Self::Core(inner) => inner.is_temporary(),
            Self::InvalidAudio(_)
            | Self::UnsupportedFormat(_)
            | Self::InvalidConfig { .. }
            | Self::InvalidState(_)
            | Self::LimitExceeded { .. }
            | Self::Cancelled
            | Self::Internal(_) => false,
        }
    }
}

impl HasCode for Error {
    fn code(&self) -> ErrorCode {
        match self {
            Self::InvalidAudio(_) | Self::UnsupportedFormat(_) | Self::InvalidConfig { .. } => {
                ErrorCode::ValidationError
            }
            Self::InvalidState(_) | Self::Cancelled => ErrorCode::Conflict,
            Self::LimitExceeded { .. } => ErrorCode::PayloadTooLarge,
            Self::Unavailable { .. } => ErrorCode::ServiceUnavailable,
            Self::Timeout { .. } => ErrorCode::Timeout,
            Self::Internal(_) => ErrorCode::InternalError,
            Self::Core(inner) => inner.code(),
        }
    }

    fn details(&self) -> Value {
        match self {
            Self::InvalidConfig { field, .. } => serde_json::json!({ "field": field }),
            Self::LimitExceeded { what, limit, actual } => {
                serde_json::json!({ "limit": what, "max_bytes": limit, "actual_bytes": actual })
            }
            Self::Unavailable { provider, .. } => serde_json::json!({ "dependency": provider }),
            Self::Timeout { operation } => serde_json::json!({ "operation": operation }),
            Self::Core(inner) => inner.details(),
            Self::InvalidAudio(_)
            | Self::UnsupportedFormat(_)
            | Self::InvalidState(_)
            | Self::Cancelled
            | Self::Internal(_) => Value::Object(Map::new()),
        }
    }
}

/// Result with the voice [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
