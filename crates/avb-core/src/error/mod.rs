//! Errors: the stable code table, the wire envelope and the core error enum shared by every port.

mod codes;

pub use codes::ErrorCode;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::borrow::Cow;

/// Implemented by every crate's error enum: how it is answered on the wire.
///
/// Implementations match every variant without a `_` arm, so adding a variant forces a decision about its code.
pub trait HasCode {
    /// The stable code.
    fn code(&self) -> ErrorCode;

    /// Machine-readable details for the envelope (`{}` when there are none).
    fn details(&self) -> Value {
        Value::Object(Map::new())
    }

    /// The message shown to clients. 5xx errors show the code's generic message, never internals.
    fn public_message(&self) -> String
    where
        Self: std::fmt::Display,
    {
        let code = self.code();
        if code.status() >= 500 {
            code.default_message().to_owned()
        } else {
            self.to_string()
        }
    }

    /// The `{"error","message","details"}` envelope for this error.
    fn to_body(&self) -> ErrorBody
    where
        Self: std::fmt::Display,
    {
        ErrorBody {
            error: self.code(),
            message: self.public_message(),
            details: self.details(),
        }
    }
}

/// The wire envelope of every error response: `{"error": code, "message": "...", "details": {...}}` (spec §13.1).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Stable code.
    pub error: ErrorCode,
    /// Human-readable message.
    pub message: String,
    /// Structured details; an empty object when there are none.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub details: Value,
}

/// One field's validation failure.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    /// Field path (`"slug"`, `"settings.primary_color"`).
    pub field: String,
    /// Short machine code (`"pattern"`, `"length"`, `"range"`, `"required"`, `"format"`, `"unique"`).
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub code: Cow<'static, str>,
    /// Human-readable reason.
    pub message: String,
}

/// A set of validation failures; rendered as `details.fields` in the envelope.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldErrors(pub Vec<FieldError>);

impl FieldErrors {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a failure.
    pub fn push(&mut self, field: impl Into<String>, code: &'static str, message: impl Into<String>) {
        self.0.push(FieldError {
            field: field.into(),
            code: Cow::Borrowed(code),
            message: message.into(),
        });
    }

    /// A set with one failure.
    pub fn single(field: impl Into<String>, code: &'static str, message: impl Into<String>) -> Self {
        let mut errors = Self::new();
        errors.push(field, code, message);
        errors
    }

    /// True when nothing failed.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok(())` when empty, else `Err(self)`; ends a validation function.
    pub fn into_result(self) -> Result<(), FieldErrors> {
        if self.is_empty() { Ok(()) } else { Err(self) }
    }

    /// `{"fields": [{field, code, message}, …]}`.
    pub fn to_details(&self) -> Value {
        serde_json::json!({ "fields": self.0 })
    }
}

impl std::fmt::Display for FieldErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut first = true;
        for e in &self.0 {
            if !first {
                f.write_str("; ")?;
            }
            first = false;
            write!(f, "{}: {}", e.field, e.message)?;
        }
        Ok(())
    }
}

/// Boxed error source kept for logs (never sent to clients).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Errors of the core ports and of storage adapters.
///
/// Adapters keep their driver errors private and map them here: a unique violation becomes [`Error::Conflict`],
/// a missing row [`Error::NotFound`], a pool or IO failure [`Error::Unavailable`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Input failed validation.
    #[error("validation failed: {0}")]
    Invalid(FieldErrors),
    /// No such record visible to the caller (another tenant's records are invisible, not forbidden).
    #[error("{resource} not found")]
    NotFound {
        /// Resource type (`"tenant"`, `"project"`).
        resource: &'static str,
        /// The id that was asked for.
        id: String,
    },
    /// A uniqueness rule was broken.
    #[error("{resource} already exists: {reason}")]
    Conflict {
        /// Resource type.
        resource: &'static str,
        /// What collided (`"slug 'acme' is already taken"`).
        reason: String,
    },
    /// An optimistic version check failed: someone else changed the record first.
    #[error("{resource} {id} was modified concurrently (expected version {expected}, found {actual})")]
    VersionConflict {
        /// Resource type.
        resource: &'static str,
        /// Record id.
        id: String,
        /// Version the caller read.
        expected: u64,
        /// Version currently stored.
        actual: u64,
    },
    /// The operation needs a tenant scope and the context has none (and is not a cross-tenant principal).
    #[error("tenant context is required for this operation")]
    TenantRequired,
    /// The caller's deadline passed.
    #[error("deadline exceeded")]
    DeadlineExceeded,
    /// A backend could not be reached or failed transiently; safe to retry.
    #[error("{backend} unavailable")]
    Unavailable {
        /// Which backend (`"postgres"`, `"redis"`).
        backend: &'static str,
        /// The cause, for logs.
        #[source]
        source: BoxError,
    },
    /// A bug or an impossible state; logged, answered with a generic 500.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// Shorthand for [`Error::NotFound`].
    pub fn not_found(resource: &'static str, id: impl ToString) -> Self {
        Self::NotFound {
            resource,
            id: id.to_string(),
        }
    }

    /// Shorthand for [`Error::Conflict`].
    pub fn conflict(resource: &'static str, reason: impl Into<String>) -> Self {
        Self::Conflict {
            resource,
            reason: reason.into(),
        }
    }

    /// Shorthand for a single-field [`Error::Invalid`].
    pub fn invalid(field: impl Into<String>, code: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid(FieldErrors::single(field, code, message))
    }

    /// Shorthand for [`Error::Unavailable`].
    pub fn unavailable(backend: &'static str, source: impl Into<BoxError>) -> Self {
        Self::Unavailable {
            backend,
            source: source.into(),
        }
    }

    /// True for errors that a retry may cure.
    pub fn is_temporary(&self) -> bool {
        matches!(self, Self::Unavailable { .. } | Self::DeadlineExceeded)
    }
}

impl HasCode for Error {
    fn code(&self) -> ErrorCode {
        match self {
            Self::Invalid(_) => ErrorCode::ValidationError,
            Self::NotFound { .. } => ErrorCode::NotFound,
            Self::Conflict { .. } | Self::VersionConflict { .. } => ErrorCode::Conflict,
            Self::TenantRequired => ErrorCode::TenantRequired,
            Self::DeadlineExceeded => ErrorCode::Timeout,
            Self::Unavailable { .. } => ErrorCode::ServiceUnavailable,
            Self::Internal(_) => ErrorCode::InternalError,
        }
    }

    fn details(&self) -> Value {
        match self {
            Self::Invalid(fields) => fields.to_details(),
            Self::NotFound { resource, id } => serde_json::json!({ "resource": resource, "id": id }),
            Self::Conflict { resource, .. } => serde_json::json!({ "resource": resource }),
            Self::VersionConflict {
                resource,
                id,
                expected,
                actual,
            } => serde_json::json!({
                "resource": resource, "id": id, "expected_version": expected, "current_version": actual
            }),
            Self::Unavailable { backend, .. } => serde_json::json!({ "dependency": backend }),
            Self::TenantRequired | Self::DeadlineExceeded | Self::Internal(_) => Value::Object(Map::new()),
        }
    }
}

impl From<FieldErrors> for Error {
    fn from(errors: FieldErrors) -> Self {
        Self::Invalid(errors)
    }
}

/// Result with the core [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_of_a_validation_error() {
        let err = Error::invalid("slug", "pattern", "must be lowercase");
        let body = serde_json::to_value(err.to_body()).unwrap();
        assert_eq!(
            body,
            serde_json::json!({
                "error": "validation_error",
                "message": "validation failed: slug: must be lowercase",
                "details": {"fields": [{"field": "slug", "code": "pattern", "message": "must be lowercase"}]}
            })
        );
    }

    #[test]
    fn five_hundreds_hide_their_cause() {
        let err = Error::unavailable("postgres", "connection refused at 10.0.0.3:5432");
        let body = err.to_body();
        assert_eq!(body.error, ErrorCode::ServiceUnavailable);
        assert!(!body.message.contains("10.0.0.3"));
        let err = Error::Internal("secret state".into());
        assert!(!err.to_body().message.contains("secret"));
    }
}
