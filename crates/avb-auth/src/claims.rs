//! The claim set we read from access tokens: Keycloak 24's shape (spec §6.1), which the static-JWT adapter also
//! mints so both providers map claims through one function.

use crate::identity::{VerifiedToken, map_roles};
use crate::{Error, Result};
use avb_core::TenantId;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `aud` is a string or an array of strings (RFC 7519 §4.1.3); Keycloak emits both.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    /// One audience.
    One(String),
    /// Several.
    Many(Vec<String>),
}

impl Audience {
    /// True when `wanted` is among the audiences.
    pub fn contains(&self, wanted: &str) -> bool {
        match self {
            Audience::One(a) => a == wanted,
            Audience::Many(all) => all.iter().any(|a| a == wanted),
        }
    }
}

/// `{"roles": [...]}` blocks of `realm_access` and `resource_access.<client>`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleBlock {
    /// Role names.
    #[serde(default)]
    pub roles: Vec<String>,
}

/// Access-token claims (Keycloak 24 layout). Unknown claims are ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// Subject.
    #[serde(default)]
    pub sub: String,
    /// Issuer.
    #[serde(default)]
    pub iss: String,
    /// Audience.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<Audience>,
    /// Expiry (seconds since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    /// Not before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// Issued at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    /// Token id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// Authorized party (client id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azp: Option<String>,
    /// Token type (`Bearer`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub typ: Option<String>,
    /// E-mail.
    #[serde(default)]
    pub email: String,
    /// Given name.
    #[serde(default)]
    pub given_name: String,
    /// Family name.
    #[serde(default)]
    pub family_name: String,
    /// Username.
    #[serde(default)]
    pub preferred_username: String,
    /// Realm roles.
    #[serde(default)]
    pub realm_access: RoleBlock,
    /// Client roles by client id.
    #[serde(default)]
    pub resource_access: BTreeMap<String, RoleBlock>,
    /// Our custom claim (a Keycloak user-attribute mapper).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
}

/// What a token's time claims must satisfy, with `leeway` seconds of tolerance for clock skew.
#[derive(Debug, Clone)]
pub struct TimeRules {
    /// Now.
    pub now: DateTime<Utc>,
    /// Allowed skew in seconds.
    pub leeway: i64,
    /// Longest lifetime we believe (`exp - iat`); Keycloak's default is 300 s, so 24 h is generous.
    pub max_lifetime: i64,
}

impl AccessClaims {
    /// Checks issuer, audience and time claims, then maps to a [`VerifiedToken`].
    ///
    /// `client_id` selects which `resource_access` entry contributes roles.
    pub fn verify(
        self,
        issuer: &str,
        audience: &str,
        client_id: &str,
        time: &TimeRules,
    ) -> Result<VerifiedToken> {
        if self.iss != issuer {
            return Err(Error::InvalidToken("issuer does not match".into()));
        }
        if !self.aud.as_ref().is_some_and(|a| a.contains(audience)) {
            return Err(Error::InvalidToken("audience does not match".into()));
        }
        let now = time.now.timestamp();
        let exp = self
            .exp
            .ok_or_else(|| Error::InvalidToken("missing exp".into()))?;
        if now > exp.saturating_add(time.leeway) {
            return Err(Error::TokenExpired);
        }
        if let Some(nbf) = self.nbf
            && nbf > now.saturating_add(time.leeway)
        {
            return Err(Error::InvalidToken("token not valid yet".into()));
        }
        if let Some(iat) = self.iat {
            if iat > now.saturating_add(time.leeway) {
                return Err(Error::InvalidToken("token issued in the future".into()));
            }
            if exp.saturating_sub(iat) > time.max_lifetime {
                return Err(Error::InvalidToken("token lifetime too long".into()));
            }
        }
        if self.sub.is_empty() {
            return Err(Error::InvalidToken("missing sub".into()));
        }
        let tenant_id = match self.tenant_id.as_deref() {
            None | Some("") => None,
            Some(raw) => Some(
                raw.parse::<TenantId>()
                    .map_err(|_| Error::InvalidToken("tenant_id is not a UUID".into()))?,
            ),
        };
        let client_roles = self
            .resource_access
            .get(client_id)
            .map(|b| b.roles.as_slice())
            .unwrap_or_default();
        let roles = map_roles(
            self.realm_access
                .roles
                .iter()
                .chain(client_roles)
                .map(String::as_str),
        );
        let expires_at =
            DateTime::from_timestamp(exp, 0).ok_or_else(|| Error::InvalidToken("bad exp".into()))?;
        Ok(VerifiedToken {
            subject: self.sub,
            email: self.email.to_lowercase(),
            first_name: self.given_name,
            last_name: self.family_name,
            username: self.preferred_username,
            roles,
            tenant_id,
            expires_at,
            issuer: self.iss,
        })
    }
}

/// A short, non-sensitive reason for a `jsonwebtoken` failure (for logs and `invalid_token` messages).
pub fn jwt_error_reason(err: &jsonwebtoken::errors::Error) -> String {
    use jsonwebtoken::errors::ErrorKind;
    match err.kind() {
        ErrorKind::InvalidToken => "malformed token".into(),
        ErrorKind::InvalidSignature => "bad signature".into(),
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => "algorithm not allowed".into(),
        ErrorKind::InvalidKeyFormat | ErrorKind::InvalidRsaKey(_) | ErrorKind::InvalidEcdsaKey => {
            "unusable key".into()
        }
        ErrorKind::Base64(_) | ErrorKind::Json(_) | ErrorKind::Utf8(_) => "malformed token".into(),
        ErrorKind::ExpiredSignature => "token expired".into(),
        ErrorKind::ImmatureSignature => "token not valid yet".into(),
        ErrorKind::InvalidIssuer => "issuer does not match".into(),
        ErrorKind::InvalidAudience => "audience does not match".into(),
        _ => "invalid token".into(),
    }
}
