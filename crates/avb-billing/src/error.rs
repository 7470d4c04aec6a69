//! Errors of the billing crate, each with its stable code.
//!
//! The billing system is a dependency, not the caller's counterpart: a refusal by the provider is our fault or
//! our configuration's (`internal_error`), a throttled or unreachable provider is `service_unavailable`, and only
//! what the caller named and the provider does not know is `not_found`. [`Error::is_temporary`] tells the retry
//! decorator and the sync which failures a later attempt may cure.

use avb_core::{ErrorCode, FieldErrors, HasCode};
use serde_json::{Map, Value, json};
use std::time::Duration;

/// Billing errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Input failed validation before anything was sent.
    #[error("validation failed: {0}")]
    Invalid(FieldErrors),
    /// The provider does not know the named resource (Lago `customer_not_found`, `plan_not_found`, …).
    #[error("{resource} not found: {id}")]
    NotFound {
        /// Resource type (`"customer"`, `"plan"`, `"subscription"`).
        resource: String,
        /// The id that was asked for.
        id: String,
    },
    /// The provider refused the request for good (a 4xx other than 401/404/429); retrying cannot help.
    #[error("billing provider rejected the request ({status} {code}): {message}")]
    Rejected {
        /// HTTP status.
        status: u16,
        /// The provider's code (`validation_errors`, `bad_request`, …).
        code: String,
        /// The provider's message.
        message: String,
        /// The provider's `error_details`, kept raw (logged, never sent to clients).
        details: Value,
    },
    /// The provider refused our credentials: a configuration error.
    #[error("billing provider refused the API key")]
    Unauthorized,
    /// The provider throttled us; `retry_after` is its `X-RateLimit-Reset` when it sent one.
    #[error("billing provider rate limit reached")]
    RateLimited {
        /// How long the provider asked us to wait.
        retry_after: Option<Duration>,
    },
    /// The provider failed or could not be reached (5xx, timeout, connection); safe to retry.
    #[error("billing provider unavailable: {0}")]
    Unavailable(String),
    /// A webhook failed verification (bad or missing signature, wrong issuer, body mismatch).
    #[error("webhook verification failed: {0}")]
    WebhookRejected(String),
    /// An adapter is misconfigured (missing URL or key, unusable public key).
    #[error("billing configuration error: {0}")]
    Config(String),
    /// A tenancy service failed; carries that error's own code.
    #[error(transparent)]
    Tenancy(avb_tenancy::Error),
    /// Storage or context failure.
    #[error(transparent)]
    Core(#[from] avb_core::Error),
}

impl Error {
    /// True for errors a later attempt may cure (throttling, provider outage, unavailable storage).
    pub fn is_temporary(&self) -> bool {
        match self {
            Self::RateLimited { .. } | Self::Unavailable(_) => true,
            Self::Core(core) => core.is_temporary(),
            Self::Tenancy(avb_tenancy::Error::Store(core)) => core.is_temporary(),
            _ => false,
        }
    }

    /// How long the provider asked us to wait before the next attempt, when it said.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after } => *retry_after,
            _ => None,
        }
    }

    /// Wraps a tenancy error, unwrapping storage failures so their code and retryability are kept.
    pub fn from_tenancy(err: avb_tenancy::Error) -> Self {
        match err {
            avb_tenancy::Error::Store(core) => Self::Core(core),
            other => Self::Tenancy(other),
        }
    }
}

impl From<avb_tenancy::Error> for Error {
    fn from(err: avb_tenancy::Error) -> Self {
        Self::from_tenancy(err)
    }
}

impl From<FieldErrors> for Error {
    fn from(errors: FieldErrors) -> Self {
        Self::Invalid(errors)
    }
}

impl HasCode for Error {
    fn code(&self) -> ErrorCode {
        match self {
            Self::Invalid(_) => ErrorCode::ValidationError,
            Self::NotFound { .. } => ErrorCode::NotFound,
            Self::Rejected { .. } | Self::Unauthorized | Self::Config(_) => ErrorCode::InternalError,
            Self::RateLimited { .. } | Self::Unavailable(_) => ErrorCode::ServiceUnavailable,
            Self::WebhookRejected(_) => ErrorCode::AuthenticationFailed,
            Self::Tenancy(err) => err.code(),
            Self::Core(core) => core.code(),
        }
    }

    fn details(&self) -> Value {
        match self {
            Self::Invalid(fields) => fields.to_details(),
            Self::NotFound { resource, id } => json!({ "resource": resource, "id": id }),
            Self::Tenancy(err) => err.details(),
            Self::Core(core) => core.details(),
            Self::Rejected { .. }
            | Self::Unauthorized
            | Self::RateLimited { .. }
            | Self::Unavailable(_)
            | Self::WebhookRejected(_)
            | Self::Config(_) => Value::Object(Map::new()),
        }
    }
}

/// Result with the billing [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_refusals_are_internal_and_hide_their_details() {
        let err = Error::Rejected {
            status: 422,
            code: "validation_errors".into(),
            message: "Unprocessable entity".into(),
            details: json!({ "plan_code": ["value_is_mandatory"] }),
        };
        let body = err.to_body();
        assert_eq!(body.error, ErrorCode::InternalError);
        assert!(!body.message.contains("plan_code"));
        assert!(!err.is_temporary());
    }

    #[test]
    fn throttling_and_outages_are_temporary() {
        let throttled = Error::RateLimited {
            retry_after: Some(Duration::from_secs(2)),
        };
        assert!(throttled.is_temporary());
        assert_eq!(throttled.retry_after(), Some(Duration::from_secs(2)));
        assert_eq!(throttled.code(), ErrorCode::ServiceUnavailable);
        assert!(Error::Unavailable("502".into()).is_temporary());
        assert!(Error::from(avb_core::Error::unavailable("postgres", "down")).is_temporary());
        assert!(!Error::Unauthorized.is_temporary());
    }
}
