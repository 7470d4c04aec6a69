//! One neutral call from credentials to a [`Principal`]: what every HTTP and WebSocket adapter uses, so both
//! frameworks authenticate identically. An invalid credential is an error, never anonymous.

use crate::api_keys::ApiKeyAuthenticator;
use crate::credentials::Credential;
use crate::ephemeral::{ClientSecretGrant, ClientSecrets};
use crate::identity::{IdentityProvider, VerifiedToken};
use crate::{Error, Result};
use avb_core::{Ctx, Principal, Role, UserPrincipal};
use avb_tenancy::user::{IdentityClaims, UserService};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// How long a token's user mapping is reused before the user record is read again.
const USER_CACHE_TTL: Duration = Duration::from_secs(60);
const MAX_CACHED_USERS: usize = 100_000;

/// The result of authentication.
#[derive(Debug, Clone, PartialEq)]
pub struct Authenticated {
    /// Who.
    pub principal: Principal,
    /// For `ek_` secrets: the grant (tenant and bound session configuration).
    pub client_secret: Option<ClientSecretGrant>,
}

/// Authenticates credentials of every kind.
#[derive(Debug)]
pub struct Authenticator {
    identity: Option<Arc<dyn IdentityProvider>>,
    users: UserService,
    api_keys: Arc<ApiKeyAuthenticator>,
    client_secrets: ClientSecrets,
    user_cache: RwLock<HashMap<String, (VerifiedToken, UserPrincipal, Instant)>>,
}

impl Authenticator {
    /// Combines the providers. `identity` is `None` when JWTs are not accepted at all.
    pub fn new(
        identity: Option<Arc<dyn IdentityProvider>>,
        users: UserService,
        api_keys: Arc<ApiKeyAuthenticator>,
        client_secrets: ClientSecrets,
    ) -> Self {
        Self {
            identity,
            users,
            api_keys,
            client_secrets,
            user_cache: RwLock::new(HashMap::new()),
        }
    }

    /// The API-key authenticator (revocation hooks, usage flushing).
    pub fn api_keys(&self) -> &Arc<ApiKeyAuthenticator> {
        &self.api_keys
    }

    /// Client-secret minting.
    pub fn client_secrets(&self) -> &ClientSecrets {
        &self.client_secrets
    }

    /// Authenticates `credential` (`None` → anonymous). `ctx` carries the request id and client info.
    pub async fn authenticate(&self, ctx: &Ctx, credential: Option<&Credential>) -> Result<Authenticated> {
        let principal = match credential {
            None => Principal::Anonymous,
            Some(Credential::ApiKey(key)) => {
                Principal::ApiKey(self.api_keys.authenticate(ctx, key, ctx.client().ip).await?)
            }
            Some(Credential::ClientSecret(secret)) => {
                let grant = self.client_secrets.resolve(ctx, secret).await?;
                return Ok(Authenticated {
                    principal: grant.minted_by.clone(),
                    client_secret: Some(grant),
                });
            }
            Some(Credential::Jwt(token)) => {
                let identity = self.identity.as_ref().ok_or_else(|| {
                    Error::AuthenticationFailed("bearer tokens are not accepted here".into())
                })?;
                let verified = identity.verify(ctx, token).await?;
                Principal::User(self.user_for(ctx, verified).await?)
            }
        };
        Ok(Authenticated {
            principal,
            client_secret: None,
        })
    }

    /// Maps verified claims to our user, creating or updating the record only when the claims changed.
    async fn user_for(&self, ctx: &Ctx, token: VerifiedToken) -> Result<UserPrincipal> {
        let cached = self
            .user_cache
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&token.subject)
            .filter(|(seen, _, at)| at.elapsed() < USER_CACHE_TTL && same_claims(seen, &token))
            .map(|(_, principal, _)| principal.clone());
        if let Some(principal) = cached {
            return Ok(principal);
        }
        let system = Ctx::system(ctx.request_id().clone(), "auth:identity", None);
        let claims = IdentityClaims {
            keycloak_id: token.subject.clone(),
            email: token.email.clone(),
            first_name: token.first_name.clone(),
            last_name: token.last_name.clone(),
            tenant_id: token.tenant_id,
            roles: token
                .roles
                .iter()
                .copied()
                .filter(|r| *r != Role::Sysadmin)
                .collect(),
        };
        let user = self
            .users
            .upsert_from_identity(&system, claims)
            .await
            .map_err(Error::from_tenancy)?;
        if !user.is_active {
            return Err(Error::AuthenticationFailed("user is deactivated".into()));
        }
        // Tenant roles are ours (changed through the users API); platform sysadmin only ever comes from the IdP.
        let mut roles = user.roles.clone();
        if token.roles.contains(&Role::Sysadmin) {
            roles.insert(Role::Sysadmin);
        }
        let principal = UserPrincipal {
            user_id: user.id,
            tenant_id: user.tenant_id.or(token.tenant_id),
            email: user.email.clone(),
            roles,
            external_id: Some(token.subject.clone()),
        };
        let mut cache = self
            .user_cache
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if cache.len() >= MAX_CACHED_USERS {
            cache.clear();
        }
        cache.insert(token.subject.clone(), (token, principal.clone(), Instant::now()));
        Ok(principal)
    }

    /// Forgets a user's cached mapping (after role changes or deactivation).
    pub fn invalidate_user(&self, subject: &str) {
        self.user_cache
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(subject);
    }

    /// Forgets every cached user mapping.
    pub fn invalidate_all_users(&self) {
        self.user_cache
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }
}

fn same_claims(a: &VerifiedToken, b: &VerifiedToken) -> bool {
    a.email == b.email
        && a.first_name == b.first_name
        && a.last_name == b.last_name
        && a.roles == b.roles
        && a.tenant_id == b.tenant_id
}
