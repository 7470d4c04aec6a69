//! Typed ids: a `TenantId` can never be passed where a `ProjectId` is expected.

use crate::clock::IdGen;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! typed_id {
    ($( $(#[$doc:meta])* $name:ident => $resource:literal; )*) => {$(
        $(#[$doc])*
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// The resource type name used in errors, audit records and permission objects.
            pub const RESOURCE: &'static str = $resource;

            /// A fresh id from the id generator port.
            pub fn generate(ids: &dyn IdGen) -> Self {
                Self(ids.new_uuid())
            }

            /// The raw UUID.
            pub const fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                std::fmt::Display::fmt(&self.0, f)
            }
        }

        impl std::str::FromStr for $name {
            type Err = crate::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s)
                    .map(Self)
                    .map_err(|_| crate::Error::invalid(concat!($resource, "_id"), "format", "must be a UUID"))
            }
        }

        impl From<Uuid> for $name {
            fn from(id: Uuid) -> Self {
                Self(id)
            }
        }
    )*};
}

typed_id! {
    /// A tenant (organisation).
    TenantId => "tenant";
    /// A user.
    UserId => "user";
    /// A project inside a tenant.
    ProjectId => "project";
    /// An API key record (not the secret).
    ApiKeyId => "api_key";
    /// A voice session.
    SessionId => "session";
    /// One event inside a session.
    SessionEventId => "session_event";
    /// An audit log entry.
    AuditId => "audit_log";
    /// A tenant's voice configuration.
    VoiceConfigId => "voice_config";
    /// An agent persona.
    PersonaId => "persona";
    /// A wake word.
    WakeWordId => "wake_word";
    /// A UI theme.
    ThemeId => "theme";
    /// A notification.
    NotificationId => "notification";
    /// A background job.
    JobId => "job";
}

/// The id of one request, accepted from `X-Request-ID` or generated; on every log line and audit record.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RequestId(std::sync::Arc<str>);

impl RequestId {
    /// Longest id accepted from a client; longer or odd ones are replaced by a generated one.
    pub const MAX_LEN: usize = 100;

    /// A new random id.
    pub fn generate(ids: &dyn IdGen) -> Self {
        Self(ids.new_uuid().to_string().into())
    }

    /// Accepts a client-supplied id when it is 1–100 printable ASCII characters without spaces.
    pub fn from_client(value: &str) -> Option<Self> {
        let ok =
            !value.is_empty() && value.len() <= Self::MAX_LEN && value.bytes().all(|b| b.is_ascii_graphic());
        ok.then(|| Self(value.into()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_ids_parse_and_display() {
        let id: TenantId = "67e55044-10b1-426f-9247-bb680e5fe0c8".parse().unwrap();
        assert_eq!(id.to_string(), "67e55044-10b1-426f-9247-bb680e5fe0c8");
        assert!("nope".parse::<ProjectId>().is_err());
    }

    #[test]
    fn client_request_ids_are_bounded() {
        assert!(RequestId::from_client("abc-123").is_some());
        assert!(RequestId::from_client("").is_none());
        assert!(RequestId::from_client("has space").is_none());
        assert!(RequestId::from_client(&"x".repeat(101)).is_none());
        assert!(RequestId::from_client("bad\nline").is_none());
    }
}
