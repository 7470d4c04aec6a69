//! Errors of the tenancy domain, each with its stable code.

use avb_core::{ErrorCode, FieldErrors, HasCode};
use serde_json::{Value, json};

/// Tenancy errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Input failed validation; nothing was changed.
    #[error("validation failed: {0}")]
    Invalid(FieldErrors),
    /// No such resource visible to the caller.
    #[error("{resource} not found")]
    NotFound {
        /// Resource type.
        resource: &'static str,
        /// Requested id.
        id: String,
    },
    /// The tenant does not exist or was deleted.
    #[error("tenant {0} not found")]
    TenantNotFound(String),
    /// The tenant is suspended.
    #[error("tenant {0} is suspended")]
    TenantSuspended(String),
    /// No tenant could be resolved for an operation that needs one.
    #[error("tenant context is required for this operation")]
    TenantRequired,
    /// Creating this would exceed a tenant limit.
    #[error("tenant limit exceeded: {resource} limit is {limit}")]
    LimitExceeded {
        /// Which limit (`users`, `projects`, `api_keys`, `sessions_per_month`).
        resource: &'static str,
        /// The limit.
        limit: u64,
        /// Current usage.
        current: u64,
    },
    /// A uniqueness rule or an optimistic version check failed.
    #[error("{0}")]
    Conflict(String),
    /// The record's state does not allow this transition (e.g. activating a deleted tenant).
    #[error("cannot {action} a {resource} that is {state}")]
    InvalidState {
        /// Resource type.
        resource: &'static str,
        /// Current state.
        state: String,
        /// Attempted action.
        action: &'static str,
    },
    /// The caller may not do this.
    #[error("{0}")]
    PermissionDenied(String),
    /// Storage failed; carries the storage error's own code.
    #[error(transparent)]
    Store(avb_core::Error),
}

impl From<avb_core::Error> for Error {
    fn from(err: avb_core::Error) -> Self {
        match err {
            avb_core::Error::Invalid(fields) => Error::Invalid(fields),
            avb_core::Error::NotFound { resource, id } => Error::NotFound { resource, id },
            avb_core::Error::TenantRequired => Error::TenantRequired,
            other => Error::Store(other),
        }
    }
}

impl From<FieldErrors> for Error {
    fn from(fields: FieldErrors) -> Self {
        Error::Invalid(fields)
    }
}

impl HasCode for Error {
    fn code(&self) -> ErrorCode {
        match self {
            Error::Invalid(_) => ErrorCode::ValidationError,
            Error::NotFound { .. } => ErrorCode::NotFound,
            Error::TenantNotFound(_) => ErrorCode::TenantNotFound,
            Error::TenantSuspended(_) => ErrorCode::TenantSuspended,
            Error::TenantRequired => ErrorCode::TenantRequired,
            Error::LimitExceeded { .. } => ErrorCode::TenantLimitExceeded,
            Error::Conflict(_) | Error::InvalidState { .. } => ErrorCode::Conflict,
            Error::PermissionDenied(_) => ErrorCode::PermissionDenied,
            Error::Store(inner) => inner.code(),
        }
    }

    fn details(&self) -> Value {
        match self {
            Error::Invalid(fields) => fields.to_details(),
            Error::NotFound { resource, id } => json!({ "resource": resource, "id": id }),
            Error::LimitExceeded {
                resource,
                limit,
                current,
            } => {
                json!({ "resource": resource, "limit": limit, "current": current })
            }
            Error::InvalidState {
                resource,
                state,
                action,
            } => {
                json!({ "resource": resource, "state": state, "action": action })
            }
            Error::Store(inner) => inner.details(),
            Error::TenantNotFound(_)
            | Error::TenantSuspended(_)
            | Error::TenantRequired
            | Error::Conflict(_)
            | Error::PermissionDenied(_) => json!({}),
        }
    }
}

/// Result with the tenancy [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
