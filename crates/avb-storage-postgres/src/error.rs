//! Driver errors mapped inward, once: callers of this crate only ever see [`avb_core::Error`].
//!
//! - unique violation → `Conflict` (the rule named after the constraint, never the driver message);
//! - foreign-key violation → `NotFound` of the referenced row on insert/update, `Conflict` on delete;
//! - pool timeouts, IO, TLS, lost connections, server shutdown, serialization failures and deadlocks →
//!   `Unavailable` (retryable, HTTP 503), with the cause kept as the error source for logs only;
//! - statement timeout or a cancelled statement → `DeadlineExceeded`;
//! - anything else (a bug, a decode failure) → `Internal` with a fixed message; the cause goes to the log.

use avb_core::Error;
use sqlx::error::DatabaseError;

pub(crate) const BACKEND: &str = "postgres";

/// SQLSTATE codes we act on.
pub(crate) mod state {
    pub(crate) const UNIQUE_VIOLATION: &str = "23505";
    pub(crate) const FOREIGN_KEY_VIOLATION: &str = "23503";
    pub(crate) const QUERY_CANCELED: &str = "57014";
    pub(crate) const LOCK_NOT_AVAILABLE: &str = "55P03";
    pub(crate) const SERIALIZATION_FAILURE: &str = "40001";
    pub(crate) const DEADLOCK_DETECTED: &str = "40P01";
    pub(crate) const READ_ONLY_TRANSACTION: &str = "25006";
    pub(crate) const INSUFFICIENT_PRIVILEGE: &str = "42501";
}

/// The SQLSTATE and constraint of a database error, if `err` is one.
pub(crate) fn database_error(err: &sqlx::Error) -> Option<(String, Option<String>)> {
    match err {
        sqlx::Error::Database(db) => Some((
            db.code().map(|c| c.into_owned()).unwrap_or_default(),
            db.constraint().map(str::to_owned),
        )),
        _ => None,
    }
}

fn unavailable(err: sqlx::Error) -> Error {
    tracing::warn!(error = %err, "postgres unavailable");
    Error::unavailable(BACKEND, err)
}

fn internal(err: &sqlx::Error, what: &'static str) -> Error {
    tracing::error!(error = %err, "postgres: {what}");
    Error::Internal(format!("postgres: {what}"))
}

/// The generic mapping, for statements whose constraint violations the caller did not anticipate.
pub(crate) fn map(err: sqlx::Error) -> Error {
    match &err {
        sqlx::Error::Database(db) => map_database(db.as_ref(), &err),
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::BeginFailed => unavailable(err),
        sqlx::Error::RowNotFound => Error::not_found("record", ""),
        sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::Decode(_)
        | sqlx::Error::ColumnNotFound(_)
        | sqlx::Error::ColumnIndexOutOfBounds { .. }
        | sqlx::Error::TypeNotFound { .. } => internal(&err, "stored data could not be decoded"),
        sqlx::Error::Encode(_) => internal(&err, "a value could not be encoded"),
        sqlx::Error::Migrate(_) => internal(&err, "migration failed"),
        sqlx::Error::Configuration(_) => internal(&err, "invalid connection configuration"),
        _ => internal(&err, "unexpected driver error"),
    }
}

fn map_database(db: &dyn DatabaseError, err: &sqlx::Error) -> Error {
    let code = db.code().unwrap_or_default();
    match code.as_ref() {
        state::UNIQUE_VIOLATION => {
            Error::conflict("record", format!("{} is already taken", rule_of(db.constraint())))
        }
        state::FOREIGN_KEY_VIOLATION => Error::not_found("record", ""),
        state::QUERY_CANCELED | state::LOCK_NOT_AVAILABLE => Error::DeadlineExceeded,
        state::READ_ONLY_TRANSACTION => Error::Internal("write attempted in a read-only unit of work".into()),
        state::INSUFFICIENT_PRIVILEGE => internal(err, "refused by row-level security or privileges"),
        state::SERIALIZATION_FAILURE | state::DEADLOCK_DETECTED => {
            tracing::warn!(error = %err, "postgres: transaction aborted, retry");
            Error::unavailable(BACKEND, format!("transaction aborted ({code}), retry"))
        }
        // Class 08: connection exception; 53: insufficient resources; 57P0x: shutdown / cannot connect now.
        c if c.starts_with("08") || c.starts_with("53") || c.starts_with("57P") => {
            tracing::warn!(error = %err, "postgres unavailable");
            Error::unavailable(BACKEND, format!("server refused the request ({code})"))
        }
        _ => internal(err, "statement failed"),
    }
}

/// The uniqueness rule a constraint enforces, named like the records' `UniqueKey`s.
pub(crate) fn rule_of(constraint: Option<&str>) -> &'static str {
    match constraint.unwrap_or_default() {
        "tenants_slug_key" => "slug",
        "users_email_key" => "email",
        "users_keycloak_id_key" => "keycloak_id",
        "projects_tenant_name_key" => "tenant_project_name",
        "api_keys_key_hash_key" => "key_hash",
        "session_events_session_sequence_key" => "session_sequence",
        "voice_configs_tenant_key" => "voice_config_tenant",
        "personas_tenant_name_key" => "tenant_persona_name",
        "wake_words_tenant_phrase_key" => "tenant_wake_word",
        "themes_tenant_name_key" => "tenant_theme_name",
        "relationships_live_key" => "relationship",
        "audit_logs_chain_key" => "audit_sequence",
        c if c.ends_with("_pkey") => "id",
        _ => "a unique value",
    }
}

/// For a foreign-key constraint: `(referencing resource, referenced resource)`.
pub(crate) fn reference_of(constraint: Option<&str>) -> Option<(&'static str, &'static str)> {
    Some(match constraint? {
        "tenant_settings_tenant_fk" => ("tenant_settings", "tenant"),
        "users_tenant_fk" => ("user", "tenant"),
        "projects_tenant_fk" => ("project", "tenant"),
        "api_keys_tenant_fk" => ("api_key", "tenant"),
        "api_keys_project_fk" => ("api_key", "project"),
        "sessions_tenant_fk" => ("session", "tenant"),
        "sessions_project_fk" => ("session", "project"),
        "sessions_api_key_fk" => ("session", "api_key"),
        "session_events_session_fk" => ("session_event", "session"),
        "voice_configs_tenant_fk" => ("voice_config", "tenant"),
        "personas_tenant_fk" => ("persona", "tenant"),
        "wake_words_tenant_fk" => ("wake_word", "tenant"),
        "themes_tenant_fk" => ("theme", "tenant"),
        "notifications_user_fk" => ("notification", "user"),
        _ => return None,
    })
}

/// Wraps a decode failure of one column so it reads like sqlx's own.
pub(crate) fn decode_error(column: &str, message: impl Into<String>) -> sqlx::Error {
    sqlx::Error::ColumnDecode {
        index: column.to_owned(),
        source: message.into().into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use avb_core::HasCode;

    #[test]
    fn pool_and_io_failures_are_unavailable_and_hide_their_cause() {
        let err = map(sqlx::Error::PoolTimedOut);
        assert!(matches!(
            err,
            Error::Unavailable {
                backend: "postgres",
                ..
            }
        ));
        assert_eq!(err.to_body().error, avb_core::ErrorCode::ServiceUnavailable);
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "10.1.2.3:5432 refused");
        let body = map(sqlx::Error::Io(io)).to_body();
        assert!(!body.message.contains("10.1.2.3"));
    }

    #[test]
    fn decode_failures_are_internal_with_a_fixed_message() {
        let err = map(decode_error("status", "unknown status `zzz`"));
        match err {
            Error::Internal(message) => assert!(!message.contains("zzz")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn constraints_name_their_rules() {
        assert_eq!(rule_of(Some("tenants_slug_key")), "slug");
        assert_eq!(rule_of(Some("projects_pkey")), "id");
        assert_eq!(
            reference_of(Some("api_keys_project_fk")),
            Some(("api_key", "project"))
        );
        assert_eq!(reference_of(Some("nope")), None);
    }
}
