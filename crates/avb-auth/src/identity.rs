//! Identity providers: turn a bearer token into verified claims (spec §6.1).
//!
//! A provider only verifies and maps; turning the claims into one of our users (upsert without a write on every
//! request) is the [`crate::authenticator::Authenticator`]'s job, so every provider shares that logic.

use crate::Result;
use async_trait::async_trait;
use avb_core::{Ctx, Role, TenantId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// What a verified token says about its bearer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifiedToken {
    /// `sub`.
    pub subject: String,
    /// `email` (may be empty for service accounts).
    pub email: String,
    /// `given_name`.
    pub first_name: String,
    /// `family_name`.
    pub last_name: String,
    /// `preferred_username`.
    pub username: String,
    /// Our roles found in `realm_access.roles` and `resource_access.<client>.roles` (unknown names dropped).
    pub roles: BTreeSet<Role>,
    /// `tenant_id` claim.
    pub tenant_id: Option<TenantId>,
    /// `exp`.
    pub expires_at: DateTime<Utc>,
    /// `iss`.
    pub issuer: String,
}

/// Verifies bearer tokens.
///
/// # Contract
/// - `verify` accepts only a token whose signature, algorithm, issuer, audience and time claims are valid, and
///   returns its mapped claims; anything else is an error, never a partial identity:
///   expired beyond the leeway → `token_expired`; every other defect (malformed, bad signature, `alg: none`,
///   algorithm not allowed, wrong `iss`/`aud`, `nbf` in the future, unknown key, oversized) → `invalid_token`.
/// - A provider that cannot reach its key source answers `service_unavailable`, never an allow.
#[async_trait]
pub trait IdentityProvider: Send + Sync + std::fmt::Debug + 'static {
    /// Verifies `token` and maps its claims.
    async fn verify(&self, ctx: &Ctx, token: &str) -> Result<VerifiedToken>;
}

/// Largest token accepted; longer ones are refused before any parsing (a cheap DoS guard).
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// Maps role names from a token to our roles, ignoring names we do not know.
pub fn map_roles<'a>(names: impl IntoIterator<Item = &'a str>) -> BTreeSet<Role> {
    names.into_iter().filter_map(Role::parse).collect()
}
