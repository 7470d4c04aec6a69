//! The records the platform stores (spec §5.1, §9), with their fields and enumerations.
//!
//! Records are plain data. Timestamps and ids are set by services from the `Clock`/`IdGen` ports; `version` is
//! owned by the store (optimistic concurrency: an update must carry the version it read).

use avb_core::{
    ApiKeyId, ApiKeyScope, NotificationId, PersonaId, ProjectId, RateLimitTier, Role, SessionEventId,
    SessionId, TenantId, ThemeId, UserId, VoiceConfigId, WakeWordId,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

macro_rules! wire_enum {
    ($(#[$doc:meta])* $name:ident { $( $(#[$vdoc:meta])* $variant:ident => $wire:literal ),* $(,)? }) => {
        $(#[$doc])*
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $( $(#[$vdoc])* #[doc = concat!("`", $wire, "`")] $variant, )* }

        impl $name {
            /// Every value.
            pub const ALL: &'static [$name] = &[ $( $name::$variant, )* ];

            /// Wire name.
            pub const fn as_str(self) -> &'static str {
                match self { $( $name::$variant => $wire, )* }
            }

            /// Parses a wire name.
            pub fn parse(value: &str) -> Option<Self> {
                match value { $( $wire => Some($name::$variant), )* _ => None }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

wire_enum! {
    /// Subscription tier (spec §5.1).
    TenantTier { Free => "free", Starter => "starter", Pro => "pro", Enterprise => "enterprise" }
}

wire_enum! {
    /// Tenant lifecycle (spec §5.1). New tenants are `pending` until activated.
    TenantStatus { Active => "active", Suspended => "suspended", Pending => "pending", Deleted => "deleted" }
}

/// A tenant's quotas (spec §5.1 fields, §7.4 tier table).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TenantLimits {
    /// Users.
    pub max_users: u32,
    /// Projects.
    pub max_projects: u32,
    /// Non-revoked API keys.
    pub max_api_keys: u32,
    /// Sessions created per calendar month (UTC).
    pub max_sessions_per_month: u32,
}

impl TenantTier {
    /// The default limits of this tier (spec §7.4 `_get_tier_limits`).
    pub const fn limits(self) -> TenantLimits {
        match self {
            TenantTier::Free => TenantLimits {
                max_users: 3,
                max_projects: 1,
                max_api_keys: 5,
                max_sessions_per_month: 100,
            },
            TenantTier::Starter => TenantLimits {
                max_users: 10,
                max_projects: 5,
                max_api_keys: 20,
                max_sessions_per_month: 1000,
            },
            TenantTier::Pro => TenantLimits {
                max_users: 50,
                max_projects: 20,
                max_api_keys: 100,
                max_sessions_per_month: 10000,
            },
            TenantTier::Enterprise => TenantLimits {
                max_users: 500,
                max_projects: 100,
                max_api_keys: 500,
                max_sessions_per_month: 100_000,
            },
        }
    }
}

/// A tenant organisation (spec §5.1).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tenant {
    /// Id.
    pub id: TenantId,
    /// Display name, 2–255 characters.
    pub name: String,
    /// URL-safe identifier, unique: `^[a-z0-9][a-z0-9-]*[a-z0-9]$`, 3–100 characters.
    pub slug: String,
    /// Tier.
    pub tier: TenantTier,
    /// Status.
    pub status: TenantStatus,
    /// Billing (Lago) customer id; empty until synced.
    pub billing_id: String,
    /// Keycloak group id; empty until created.
    pub keycloak_group_id: String,
    /// Free-form settings JSON (`suspension_reason` lives here, spec §5.1).
    pub settings: Map<String, Value>,
    /// Quotas.
    pub limits: TenantLimits,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
    /// Activated.
    pub activated_at: Option<DateTime<Utc>>,
    /// Suspended.
    pub suspended_at: Option<DateTime<Utc>>,
    /// Soft-deleted.
    pub deleted_at: Option<DateTime<Utc>>,
    /// Optimistic version, owned by the store.
    pub version: u64,
}

wire_enum! {
    /// Default voice provider (spec §5.1 `TenantSettings.default_voice_provider`).
    VoiceProvider { Disabled => "disabled", Local => "local", AgentVoiceBox => "agentvoicebox" }
}

/// Extended tenant settings (spec §5.1 `TenantSettings`, §7.3 update rules).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantSettings {
    /// The tenant (one settings row per tenant).
    pub tenant_id: TenantId,
    /// Branding: logo URL (empty or http/https).
    pub logo_url: String,
    /// Branding: `#RRGGBB`.
    pub primary_color: String,
    /// Voice default.
    pub default_voice_provider: VoiceProvider,
    /// Voice default (≤ 50 chars).
    pub default_stt_model: String,
    /// Voice default (≤ 50 chars).
    pub default_tts_voice: String,
    /// Voice default (≤ 50 chars).
    pub default_llm_provider: String,
    /// Voice default (≤ 100 chars).
    pub default_llm_model: String,
    /// Notifications.
    pub email_notifications_enabled: bool,
    /// Notifications: webhook URL (empty or http/https).
    pub webhook_url: String,
    /// Security: CIDR ranges allowed to call the API (empty = any).
    pub allowed_ip_ranges: Vec<String>,
    /// Security.
    pub require_mfa: bool,
    /// Security: 5–1440.
    pub session_timeout_minutes: u32,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
    /// Optimistic version.
    pub version: u64,
}

impl TenantSettings {
    /// The spec's defaults for a new tenant.
    pub fn defaults(tenant_id: TenantId, now: DateTime<Utc>) -> Self {
        Self {
            tenant_id,
            logo_url: String::new(),
            primary_color: "#6366f1".into(),
            default_voice_provider: VoiceProvider::Local,
            default_stt_model: "base".into(),
            default_tts_voice: "am_onyx".into(),
            default_llm_provider: "groq".into(),
            default_llm_model: "llama-3.1-8b-instant".into(),
            email_notifications_enabled: true,
            webhook_url: String::new(),
            allowed_ip_ranges: Vec::new(),
            require_mfa: false,
            session_timeout_minutes: 60,
            updated_at: now,
            version: 0,
        }
    }
}

/// A user's profile (spec §9.1 `UserProfile`, stored with the user).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserProfile {
    /// Avatar URL (empty or http/https).
    pub avatar_url: String,
    /// IANA time zone name (≤ 50 chars).
    pub timezone: String,
    /// Locale (`en`, `en-US`; ≤ 10 chars).
    pub locale: String,
    /// Notification preference.
    pub email_notifications: bool,
    /// Notification preference.
    pub push_notifications: bool,
    /// Notification categories the user muted.
    pub muted_categories: BTreeSet<String>,
    /// Preferred theme.
    pub theme_id: Option<ThemeId>,
}

impl Default for UserProfile {
    fn default() -> Self {
        Self {
            avatar_url: String::new(),
            timezone: "UTC".into(),
            locale: "en".into(),
            email_notifications: true,
            push_notifications: true,
            muted_categories: BTreeSet::new(),
            theme_id: None,
        }
    }
}

/// A user (spec §9.1). E-mail is unique across the platform, stored lower-cased.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Id.
    pub id: UserId,
    /// Tenant (`None` for platform operators).
    pub tenant_id: Option<TenantId>,
    /// Keycloak subject, unique when set.
    pub keycloak_id: Option<String>,
    /// E-mail, unique, lower-case.
    pub email: String,
    /// ≤ 150 chars.
    pub first_name: String,
    /// ≤ 150 chars.
    pub last_name: String,
    /// Tenant roles (mirrored into the authorizer as tenant relations).
    pub roles: BTreeSet<Role>,
    /// Deactivated users cannot authenticate.
    pub is_active: bool,
    /// Staff flag (spec).
    pub is_staff: bool,
    /// Joined.
    pub date_joined: DateTime<Utc>,
    /// Last login.
    pub last_login: Option<DateTime<Utc>>,
    /// Free-form preferences JSON.
    pub preferences: Map<String, Value>,
    /// Profile.
    pub profile: UserProfile,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Changed.
    pub updated_at: DateTime<Utc>,
    /// Optimistic version.
    pub version: u64,
}

impl User {
    /// `first last`, or the e-mail when both are empty (spec `full_name`).
    pub fn full_name(&self) -> String {
        let name = format!("{} {}", self.first_name, self.last_name);
        let name = name.trim();
        if name.is_empty() {
            self.email.clone()
        } else {
            name.to_owned()
        }
    }
}

/// A project inside a tenant. Names are unique per tenant.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Project {
    /// Id.
    pub id: ProjectId,
    /// Tenant.
    pub tenant_id: TenantId,
    /// 1–255 chars, unique in the tenant (case-insensitive).
    pub name: String,
    /// ≤ 2000 chars.
    pub description: String,
    /// Free-form settings.
    pub settings: Map<String, Value>,
    /// Creator.
    pub created_by: Option<UserId>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Changed.
    pub updated_at: DateTime<Utc>,
    /// Optimistic version.
    pub version: u64,
}

/// An API key record (spec §9.2). The secret is never stored: only its 12-character prefix and SHA-256 hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKey {
    /// Id.
    pub id: ApiKeyId,
    /// Tenant.
    pub tenant_id: TenantId,
    /// 1–100 chars.
    pub name: String,
    /// ≤ 2000 chars.
    pub description: String,
    /// First 12 characters of the key (`avb_` + 8), indexed for lookup.
    pub key_prefix: String,
    /// Hex SHA-256 of the whole key.
    pub key_hash: String,
    /// Creator.
    pub created_by: Option<UserId>,
    /// Optional project binding.
    pub project_id: Option<ProjectId>,
    /// Scopes.
    pub scopes: BTreeSet<ApiKeyScope>,
    /// Rate-limit tier.
    pub rate_limit_tier: RateLimitTier,
    /// Expiry.
    pub expires_at: Option<DateTime<Utc>>,
    /// Revocation time.
    pub revoked_at: Option<DateTime<Utc>>,
    /// Who revoked it.
    pub revoked_by: Option<UserId>,
    /// Last use.
    pub last_used_at: Option<DateTime<Utc>>,
    /// Last client IP.
    pub last_used_ip: Option<IpAddr>,
    /// Uses recorded.
    pub usage_count: u64,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Changed.
    pub updated_at: DateTime<Utc>,
    /// Optimistic version.
    pub version: u64,
}

impl ApiKey {
    /// Expired at `now`.
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_some_and(|e| now > e)
    }

    /// Revoked (at any time up to now; a revocation scheduled for a rotation grace period counts once reached).
    pub fn is_revoked(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_some_and(|r| r <= now)
    }

    /// Usable at `now`.
    pub fn is_valid(&self, now: DateTime<Utc>) -> bool {
        !self.is_expired(now) && !self.is_revoked(now)
    }
}

wire_enum! {
    /// Voice session lifecycle (spec §9.3): `created → active → completed | error | terminated`.
    SessionStatus {
        Created => "created", Active => "active", Completed => "completed", Error => "error", Terminated => "terminated"
    }
}

impl SessionStatus {
    /// True for the end states.
    pub const fn is_final(self) -> bool {
        matches!(
            self,
            SessionStatus::Completed | SessionStatus::Error | SessionStatus::Terminated
        )
    }

    /// The allowed transitions: created→active, and any non-final state → completed/error/terminated
    /// (a session can fail or be terminated before it starts; completing requires having been active).
    pub const fn can_become(self, next: SessionStatus) -> bool {
        matches!(
            (self, next),
            (SessionStatus::Created, SessionStatus::Active)
                | (SessionStatus::Active, SessionStatus::Completed)
                | (
                    SessionStatus::Created | SessionStatus::Active,
                    SessionStatus::Error | SessionStatus::Terminated
                )
        )
    }
}

/// A voice session (spec §9.3).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    /// Id.
    pub id: SessionId,
    /// Tenant.
    pub tenant_id: TenantId,
    /// Project.
    pub project_id: Option<ProjectId>,
    /// API key that opened it.
    pub api_key_id: Option<ApiKeyId>,
    /// User that opened it.
    pub user_id: Option<UserId>,
    /// Status.
    pub status: SessionStatus,
    /// Session configuration (voice, model, …).
    pub config: Value,
    /// Went active.
    pub started_at: Option<DateTime<Utc>>,
    /// Ended.
    pub ended_at: Option<DateTime<Utc>>,
    /// Seconds between start and end.
    pub duration_seconds: Option<f64>,
    /// LLM input tokens.
    pub input_tokens: u64,
    /// LLM output tokens.
    pub output_tokens: u64,
    /// Seconds of audio processed.
    pub audio_duration_seconds: f64,
    /// Error code when status is `error`.
    pub error_code: String,
    /// Error message when status is `error`.
    pub error_message: String,
    /// Client IP.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub client_ip: Option<IpAddr>,
    /// Client user agent.
    pub user_agent: String,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Changed.
    pub updated_at: DateTime<Utc>,
    /// Optimistic version.
    pub version: u64,
}

wire_enum! {
    /// Kind of session event (spec §9.3 `SessionEvent.EventType`).
    SessionEventType {
        Transcript => "transcript", Response => "response", ToolCall => "tool_call", ToolResult => "tool_result",
        Error => "error", System => "system"
    }
}

/// One event of a session, in `sequence` order (1, 2, 3, … without gaps per session).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionEvent {
    /// Id.
    pub id: SessionEventId,
    /// Session.
    pub session_id: SessionId,
    /// Tenant (denormalised for isolation).
    pub tenant_id: TenantId,
    /// Kind.
    pub event_type: SessionEventType,
    /// Content.
    pub content: Value,
    /// When.
    pub timestamp: DateTime<Utc>,
    /// Duration, when the event spans time.
    pub duration_ms: Option<u32>,
    /// Position in the session, from 1; unique per session.
    pub sequence: u64,
    /// Optimistic version (events are append-only; always 1 once stored).
    pub version: u64,
}

/// A tenant's voice configuration (one per tenant): the defaults a realtime session starts from.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VoiceConfig {
    /// Id.
    pub id: VoiceConfigId,
    /// Tenant (unique: one per tenant).
    pub tenant_id: TenantId,
    /// Speech-to-text model (≤ 50 chars).
    pub stt_model: String,
    /// Voice (≤ 50 chars).
    pub tts_voice: String,
    /// Speaking rate, 0.25–4.0.
    pub tts_speed: f32,
    /// LLM provider (≤ 50 chars).
    pub llm_provider: String,
    /// LLM model (≤ 100 chars).
    pub llm_model: String,
    /// Default instructions (≤ 20,000 chars).
    pub instructions: String,
    /// BCP-47-like language tag (2–10 chars).
    pub language: String,
    /// Sampling temperature, 0.0–2.0.
    pub temperature: f32,
    /// Max output tokens per response, 1–16384.
    pub max_response_tokens: u32,
    /// Server VAD threshold, 0.0–1.0.
    pub vad_threshold: f32,
    /// Server VAD silence before end of turn, 100–5000 ms.
    pub silence_duration_ms: u32,
    /// Changed.
    pub updated_at: DateTime<Utc>,
    /// Optimistic version.
    pub version: u64,
}

/// An agent persona: instructions and a voice, used by sessions.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Persona {
    /// Id.
    pub id: PersonaId,
    /// Tenant.
    pub tenant_id: TenantId,
    /// 1–100 chars, unique in the tenant (case-insensitive).
    pub name: String,
    /// ≤ 2000 chars.
    pub description: String,
    /// System prompt (≤ 20,000 chars).
    pub instructions: String,
    /// Voice (≤ 50 chars).
    pub voice: String,
    /// Language tag.
    pub language: String,
    /// 0.0–2.0.
    pub temperature: f32,
    /// Owner.
    pub owner_id: Option<UserId>,
    /// Usable.
    pub is_active: bool,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Changed.
    pub updated_at: DateTime<Utc>,
    /// Optimistic version.
    pub version: u64,
}

/// A wake word that starts listening.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WakeWord {
    /// Id.
    pub id: WakeWordId,
    /// Tenant.
    pub tenant_id: TenantId,
    /// 2–50 chars, unique in the tenant (case-insensitive).
    pub phrase: String,
    /// Detection sensitivity 0.0–1.0.
    pub sensitivity: f32,
    /// Enabled.
    pub is_active: bool,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Changed.
    pub updated_at: DateTime<Utc>,
    /// Optimistic version.
    pub version: u64,
}

/// A UI theme (AgentSkin): colours and CSS variables, validated against injection and for contrast.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Theme {
    /// Id.
    pub id: ThemeId,
    /// Tenant.
    pub tenant_id: TenantId,
    /// 1–100 chars, unique in the tenant (case-insensitive).
    pub name: String,
    /// ≤ 2000 chars.
    pub description: String,
    /// Owner.
    pub owner_id: Option<UserId>,
    /// Visible to everyone (`theme#public@user:*`).
    pub is_public: bool,
    /// `#RRGGBB`.
    pub text_color: String,
    /// `#RRGGBB`; contrast with `text_color` ≥ 4.5:1 (WCAG AA).
    pub background_color: String,
    /// `#RRGGBB`.
    pub primary_color: String,
    /// CSS custom properties (`--name` → value); no `url(`, `expression(`, `javascript:` or markup.
    pub variables: BTreeMap<String, String>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Changed.
    pub updated_at: DateTime<Utc>,
    /// Optimistic version.
    pub version: u64,
}

/// A notification for one user.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// Id.
    pub id: NotificationId,
    /// Tenant.
    pub tenant_id: TenantId,
    /// Recipient.
    pub user_id: UserId,
    /// Category (`system`, `billing`, `session`, …; ≤ 50 chars).
    pub category: String,
    /// 1–200 chars.
    pub title: String,
    /// ≤ 5000 chars.
    pub body: String,
    /// Extra data.
    pub data: Value,
    /// Read time.
    pub read_at: Option<DateTime<Utc>>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Optimistic version.
    pub version: u64,
}
