//! Errors of the auth crate, each with its stable code.
//!
//! Authorization fails closed: every error an [`crate::authorizer::Authorizer`] returns is a denial for the
//! caller, never an allow. Evaluation failures (cycles, depth) answer `permission_denied` with a message that
//! names no object, so a denial never describes the relationship graph to the caller.

use crate::zed::SchemaError;
use avb_core::{ApiKeyScope, ErrorCode, FieldErrors, HasCode};
use serde_json::{Map, Value, json};

/// Auth errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Schema text was rejected (position inside).
    #[error(transparent)]
    Schema(#[from] SchemaError),
    /// A malformed request: bad object id, wildcard where none is allowed, empty filter, duplicate update.
    #[error("invalid authorization request: {0}")]
    InvalidRequest(String),
    /// The request names an object type the schema does not define.
    #[error("object definition `{0}` not found")]
    UnknownDefinition(String),
    /// The request names a relation or permission the type does not define.
    #[error("relation/permission `{relation}` not found under definition `{definition}`")]
    UnknownRelation {
        /// The object type.
        definition: String,
        /// The missing relation or permission.
        relation: String,
    },
    /// A relationship may not be written this way (to a permission, or with a subject type the relation does
    /// not accept).
    #[error("invalid relationship {relationship}: {reason}")]
    InvalidRelationship {
        /// The relationship, as `type:id#relation@subject`.
        relationship: String,
        /// Why.
        reason: String,
    },
    /// A `Create` update found the relationship already stored; nothing of the batch was written.
    #[error("relationship already exists: {0}")]
    AlreadyExists(String),
    /// A schema change would orphan stored relationships; the old schema stays.
    #[error("schema change rejected: {0}")]
    SchemaInUse(String),
    /// A consistency token that this authorizer did not issue, or cannot serve yet.
    #[error("invalid consistency token: {0}")]
    InvalidZedToken(String),
    /// Evaluation went deeper than the configured limit (SpiceDB's `max depth exceeded`).
    #[error("permission check could not be completed: the relationship graph is too deep")]
    MaxDepthExceeded {
        /// The limit.
        max_depth: u32,
    },
    /// Evaluation met a cycle in the relationship data and no other path decided the answer.
    #[error("permission check could not be completed: the relationship graph is cyclic")]
    CycleDetected {
        /// Where the cycle was met (`type:id#relation`), for logs only.
        at: String,
    },
    /// Evaluation needed more steps than its budget (pathological data).
    #[error("permission check could not be completed: evaluation budget exhausted")]
    EvaluationBudgetExceeded {
        /// The budget, in dispatched sub-problems.
        budget: u64,
    },
    /// The caller lacks the permission.
    #[error("permission `{permission}` on {resource_type} denied")]
    PermissionDenied {
        /// Object type of the resource.
        resource_type: String,
        /// The permission that was required.
        permission: String,
    },
    /// The resource is invisible to the caller (another tenant's resources are not found, never forbidden).
    #[error("{resource_type} not found")]
    NotFound {
        /// Object type.
        resource_type: String,
        /// The id that was asked for.
        id: String,
    },
    /// The caller's role does not allow this.
    #[error("role `{required}` required")]
    RoleRequired {
        /// The role.
        required: avb_core::Role,
    },
    /// The API key lacks the scope this operation needs.
    #[error("API key lacks the `{}` scope", required.as_str())]
    InsufficientScope {
        /// The scope.
        required: ApiKeyScope,
    },
    /// No credentials, or credentials that do not authenticate (never a silent fall-back to anonymous).
    #[error("authentication failed: {0}")]
    AuthenticationFailed(String),
    /// The token is malformed, badly signed or not meant for us.
    #[error("invalid token: {0}")]
    InvalidToken(String),
    /// The token was valid once but has expired.
    #[error("token expired")]
    TokenExpired,
    /// Input failed validation.
    #[error("validation failed: {0}")]
    Invalid(FieldErrors),
    /// The operation needs a tenant and none was resolved.
    #[error("tenant context is required for this operation")]
    TenantRequired,
    /// An adapter is misconfigured (missing setting, unusable key); logged, answered with a generic 500.
    #[error("auth configuration error: {0}")]
    Config(String),
    /// A tenancy service failed; carries that error's own code.
    #[error(transparent)]
    Tenancy(avb_tenancy::Error),
    /// Storage, backend or context failure (deadline, unavailable store).
    #[error(transparent)]
    Core(#[from] avb_core::Error),
}

impl Error {
    /// True for errors that a retry may cure.
    pub fn is_temporary(&self) -> bool {
        matches!(self, Self::Core(core) if core.is_temporary())
    }

    /// Wraps a tenancy error, unwrapping storage failures so their code and retryability are kept.
    pub fn from_tenancy(err: avb_tenancy::Error) -> Self {
        match err {
            avb_tenancy::Error::Store(core) => Self::Core(core),
            avb_tenancy::Error::TenantRequired => Self::TenantRequired,
            other => Self::Tenancy(other),
        }
    }
}

impl HasCode for Error {
    fn code(&self) -> ErrorCode {
        match self {
            Self::Schema(_)
            | Self::InvalidRequest(_)
            | Self::UnknownDefinition(_)
            | Self::UnknownRelation { .. }
            | Self::InvalidRelationship { .. }
            | Self::InvalidZedToken(_)
            | Self::Invalid(_) => ErrorCode::ValidationError,
            Self::AlreadyExists(_) | Self::SchemaInUse(_) => ErrorCode::Conflict,
            Self::MaxDepthExceeded { .. }
            | Self::CycleDetected { .. }
            | Self::EvaluationBudgetExceeded { .. }
            | Self::PermissionDenied { .. }
            | Self::RoleRequired { .. } => ErrorCode::PermissionDenied,
            Self::NotFound { .. } => ErrorCode::NotFound,
            Self::InsufficientScope { .. } => ErrorCode::InsufficientScope,
            Self::AuthenticationFailed(_) => ErrorCode::AuthenticationFailed,
            Self::InvalidToken(_) => ErrorCode::InvalidToken,
            Self::TokenExpired => ErrorCode::TokenExpired,
            Self::TenantRequired => ErrorCode::TenantRequired,
            Self::Config(_) => ErrorCode::InternalError,
            Self::Tenancy(err) => err.code(),
            Self::Core(core) => core.code(),
        }
    }

    fn details(&self) -> Value {
        match self {
            Self::Schema(e) => json!({ "line": e.position.line, "column": e.position.column }),
            Self::UnknownRelation { definition, relation } => {
                json!({ "definition": definition, "relation": relation })
            }
            Self::PermissionDenied {
                resource_type,
                permission,
            } => {
                json!({ "resource_type": resource_type, "permission": permission })
            }
            Self::NotFound { resource_type, id } => json!({ "resource": resource_type, "id": id }),
            Self::RoleRequired { required } => json!({ "required_role": required.as_str() }),
            Self::InsufficientScope { required } => json!({ "required_scope": required.as_str() }),
            Self::Invalid(fields) => fields.to_details(),
            Self::Tenancy(err) => err.details(),
            Self::Core(core) => core.details(),
            Self::InvalidRequest(_)
            | Self::UnknownDefinition(_)
            | Self::InvalidRelationship { .. }
            | Self::AlreadyExists(_)
            | Self::SchemaInUse(_)
            | Self::InvalidZedToken(_)
            | Self::MaxDepthExceeded { .. }
            | Self::CycleDetected { .. }
            | Self::EvaluationBudgetExceeded { .. }
            | Self::AuthenticationFailed(_)
            | Self::InvalidToken(_)
            | Self::TokenExpired
            | Self::TenantRequired
            | Self::Config(_) => Value::Object(Map::new()),
        }
    }
}

/// Result with the auth [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evaluation_failures_are_denials_that_name_no_object() {
        let err = Error::CycleDetected {
            at: "group:secret-team#member".into(),
        };
        let body = err.to_body();
        assert_eq!(body.error, ErrorCode::PermissionDenied);
        assert!(!body.message.contains("secret-team"));
    }

    #[test]
    fn store_errors_keep_their_code() {
        let err = Error::from(avb_core::Error::unavailable("postgres", "down"));
        assert_eq!(err.code(), ErrorCode::ServiceUnavailable);
        assert!(err.is_temporary());
    }
}
