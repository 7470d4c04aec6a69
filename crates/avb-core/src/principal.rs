//! Who is calling: a user, an API key, the system itself, or (explicitly) nobody.

use crate::ids::{ApiKeyId, ProjectId, TenantId, UserId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// A role, as granted in Keycloak realm/client roles and as tenant relations in the permission schema (§6.4).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Platform operator: may act across tenants (`/api/v2/admin/*`).
    Sysadmin,
    /// Tenant administrator.
    Admin,
    /// Builds projects, keys, voice configuration.
    Developer,
    /// Operates sessions.
    Operator,
    /// Read-only.
    Viewer,
    /// Manages billing.
    Billing,
}

impl Role {
    /// Every role, most powerful first.
    pub const ALL: [Role; 6] = [
        Role::Sysadmin,
        Role::Admin,
        Role::Developer,
        Role::Operator,
        Role::Viewer,
        Role::Billing,
    ];

    /// Wire / relation name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Sysadmin => "sysadmin",
            Role::Admin => "admin",
            Role::Developer => "developer",
            Role::Operator => "operator",
            Role::Viewer => "viewer",
            Role::Billing => "billing",
        }
    }

    /// Parses a role name; unknown names (Keycloak's `offline_access`, …) give `None`.
    pub fn parse(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == name)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an API key may be used for (spec §9.2: `realtime`, `billing`, `admin`).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApiKeyScope {
    /// Open realtime voice sessions.
    Realtime,
    /// Read and manage billing.
    Billing,
    /// Manage the tenant's resources through the REST API.
    Admin,
}

impl ApiKeyScope {
    /// Every scope.
    pub const ALL: [ApiKeyScope; 3] = [ApiKeyScope::Realtime, ApiKeyScope::Billing, ApiKeyScope::Admin];

    /// Wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            ApiKeyScope::Realtime => "realtime",
            ApiKeyScope::Billing => "billing",
            ApiKeyScope::Admin => "admin",
        }
    }

    /// Parses a wire name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

/// Rate-limit tier of an API key (spec §9.2).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RateLimitTier {
    /// The default API-key limits.
    #[default]
    Standard,
    /// Raised limits.
    Elevated,
    /// No rate limit.
    Unlimited,
}

impl RateLimitTier {
    /// Wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            RateLimitTier::Standard => "standard",
            RateLimitTier::Elevated => "elevated",
            RateLimitTier::Unlimited => "unlimited",
        }
    }

    /// Parses a wire name.
    pub fn parse(name: &str) -> Option<Self> {
        [
            RateLimitTier::Standard,
            RateLimitTier::Elevated,
            RateLimitTier::Unlimited,
        ]
        .into_iter()
        .find(|t| t.as_str() == name)
    }
}

/// An authenticated human.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserPrincipal {
    /// Our user id.
    pub user_id: UserId,
    /// The tenant the user belongs to (`None` for platform operators without one).
    pub tenant_id: Option<TenantId>,
    /// E-mail (for audit records).
    pub email: String,
    /// Roles granted by the identity provider.
    pub roles: BTreeSet<Role>,
    /// The identity provider's subject (`sub`), when there is one.
    pub external_id: Option<String>,
}

/// A caller authenticated by API key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyPrincipal {
    /// The key record.
    pub key_id: ApiKeyId,
    /// The key's tenant; a key never acts outside it.
    pub tenant_id: TenantId,
    /// Optional project binding.
    pub project_id: Option<ProjectId>,
    /// Granted scopes.
    pub scopes: BTreeSet<ApiKeyScope>,
    /// Rate-limit tier.
    pub tier: RateLimitTier,
    /// The user who created the key, for audit records.
    pub created_by: Option<UserId>,
}

/// The caller of an operation.
///
/// `Anonymous` is a deliberate value (health checks, public routes): an invalid credential is an error, never
/// a silent fall-back to `Anonymous`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Principal {
    /// No credentials were presented.
    Anonymous,
    /// A user.
    User(UserPrincipal),
    /// An API key.
    ApiKey(ApiKeyPrincipal),
    /// The platform itself (background jobs, migrations, bootstrap).
    System {
        /// What is acting (`"job:billing.sync_tenant"`).
        name: String,
    },
}

impl Principal {
    /// A system principal.
    pub fn system(name: impl Into<String>) -> Self {
        Principal::System { name: name.into() }
    }

    /// True for sysadmin users and the system: principals allowed to act across tenants.
    pub fn is_cross_tenant(&self) -> bool {
        match self {
            Principal::User(u) => u.roles.contains(&Role::Sysadmin),
            Principal::System { .. } => true,
            Principal::Anonymous | Principal::ApiKey(_) => false,
        }
    }

    /// The tenant the credential itself is bound to, if any.
    pub fn tenant_id(&self) -> Option<TenantId> {
        match self {
            Principal::User(u) => u.tenant_id,
            Principal::ApiKey(k) => Some(k.tenant_id),
            Principal::Anonymous | Principal::System { .. } => None,
        }
    }

    /// The user id behind the principal (the key's creator for API keys).
    pub fn user_id(&self) -> Option<UserId> {
        match self {
            Principal::User(u) => Some(u.user_id),
            Principal::ApiKey(k) => k.created_by,
            Principal::Anonymous | Principal::System { .. } => None,
        }
    }

    /// True when the principal has `role` (users only).
    pub fn has_role(&self, role: Role) -> bool {
        matches!(self, Principal::User(u) if u.roles.contains(&role))
    }

    /// Audit actor type (spec §9.4 `actor_type`): `user`, `api_key` or `system`.
    pub fn actor_type(&self) -> &'static str {
        match self {
            Principal::User(_) => "user",
            Principal::ApiKey(_) => "api_key",
            Principal::System { .. } | Principal::Anonymous => "system",
        }
    }

    /// Audit actor id: the user id, or the key id for API keys.
    pub fn actor_id(&self) -> Option<uuid::Uuid> {
        match self {
            Principal::User(u) => Some(u.user_id.0),
            Principal::ApiKey(k) => Some(k.key_id.0),
            Principal::Anonymous | Principal::System { .. } => None,
        }
    }

    /// Audit actor e-mail (empty when there is none).
    pub fn actor_email(&self) -> &str {
        match self {
            Principal::User(u) => &u.email,
            Principal::ApiKey(_) | Principal::Anonymous | Principal::System { .. } => "",
        }
    }
}
