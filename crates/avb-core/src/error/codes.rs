//! The single table of stable error codes (spec §13.2 plus what later crates need).
//!
//! Each code's snake_case name is the wire `error` field of the envelope and never changes once shipped; the
//! HTTP status is a plain `u16` so that no HTTP crate leaks into the core (actix-web and axum disagree on `http`).

use serde::{Deserialize, Serialize};

macro_rules! codes {
    ($( $(#[$doc:meta])* $variant:ident => $status:literal, $name:literal, $message:literal; )*) => {
        /// A stable, documented error code. The wire name is [`ErrorCode::as_str`].
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        #[non_exhaustive]
        pub enum ErrorCode {
            $( $(#[$doc])* $variant, )*
        }

        impl ErrorCode {
            /// Every code, in table order (for docs, OpenAPI and snapshot tests).
            pub const ALL: &'static [ErrorCode] = &[ $( ErrorCode::$variant, )* ];

            /// The HTTP status this code is answered with.
            pub const fn status(self) -> u16 {
                match self { $( ErrorCode::$variant => $status, )* }
            }

            /// The wire name (`"tenant_not_found"`).
            pub const fn as_str(self) -> &'static str {
                match self { $( ErrorCode::$variant => $name, )* }
            }

            /// The message used when an error carries none of its own (spec §13.2 `default_message`).
            pub const fn default_message(self) -> &'static str {
                match self { $( ErrorCode::$variant => $message, )* }
            }

            /// Parses a wire name back into a code.
            pub fn from_wire(name: &str) -> Option<Self> {
                match name { $( $name => Some(ErrorCode::$variant), )* _ => None }
            }
        }
    };
}

codes! {
    /// The request was malformed or a field failed validation.
    ValidationError => 400, "validation_error", "Validation failed";
    /// The resource does not exist, or exists in another tenant (existence is never leaked).
    NotFound => 404, "not_found", "Resource not found";
    /// A uniqueness rule or an optimistic version check failed.
    Conflict => 409, "conflict", "Resource conflict";
    /// Too many requests for the caller's rate-limit tier.
    RateLimitExceeded => 429, "rate_limit_exceeded", "Too many requests";
    /// No credentials, or credentials that do not authenticate.
    AuthenticationFailed => 401, "authentication_failed", "Authentication required";
    /// The token was valid once but has expired.
    TokenExpired => 401, "token_expired", "Authentication token has expired";
    /// The token is malformed, badly signed or not meant for us.
    InvalidToken => 401, "invalid_token", "Invalid authentication token";
    /// The caller is known but may not do this.
    PermissionDenied => 403, "permission_denied", "You do not have permission to perform this action";
    /// The API key lacks the scope this operation needs.
    InsufficientScope => 403, "insufficient_scope", "API key lacks required scope for this operation";
    /// Generic tenant error (spec `TenantError`).
    TenantError => 400, "tenant_error", "Tenant error";
    /// The tenant does not exist or was deleted.
    TenantNotFound => 404, "tenant_not_found", "Tenant not found";
    /// The tenant is suspended.
    TenantSuspended => 403, "tenant_suspended", "Tenant account is suspended";
    /// The operation needs a tenant and none could be resolved.
    TenantRequired => 400, "tenant_required", "Tenant context is required for this operation";
    /// Creating this would exceed one of the tenant's limits.
    TenantLimitExceeded => 403, "tenant_limit_exceeded", "Tenant limit exceeded";
    /// The request body exceeds the size limit.
    PayloadTooLarge => 413, "payload_too_large", "Request body is too large";
    /// The route exists but not for this method.
    MethodNotAllowed => 405, "method_not_allowed", "Method not allowed";
    /// The request did not complete within its deadline.
    Timeout => 504, "timeout", "The request timed out";
    /// A dependency (database, cache, authorizer) is unavailable; retrying later may succeed.
    ServiceUnavailable => 503, "service_unavailable", "Service temporarily unavailable";
    /// An unexpected failure; details are logged with the request id, never sent.
    InternalError => 500, "internal_error", "An error occurred";
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_round_trip_and_match_serde() {
        for code in ErrorCode::ALL {
            assert_eq!(ErrorCode::from_wire(code.as_str()), Some(*code));
            let json = serde_json::to_value(code).unwrap();
            assert_eq!(json, serde_json::Value::String(code.as_str().to_owned()));
        }
    }

    #[test]
    fn spec_statuses_are_kept() {
        let expected = [
            ("validation_error", 400),
            ("not_found", 404),
            ("conflict", 409),
            ("rate_limit_exceeded", 429),
            ("authentication_failed", 401),
            ("token_expired", 401),
            ("invalid_token", 401),
            ("permission_denied", 403),
            ("insufficient_scope", 403),
            ("tenant_not_found", 404),
            ("tenant_suspended", 403),
            ("tenant_required", 400),
            ("tenant_limit_exceeded", 403),
            ("internal_error", 500),
        ];
        for (name, status) in expected {
            let code = ErrorCode::from_wire(name).unwrap();
            assert_eq!(code.status(), status, "{name}");
        }
    }
}
