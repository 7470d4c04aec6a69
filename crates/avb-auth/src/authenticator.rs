//! One neutral call from credentials to a [`Principal`]: what every HTTP and WebSocket adapter uses, so both
//! frameworks authenticate identically. An invalid credential is an error, never anonymous.
//!
//! # Users created at sign-in
//! A bearer token of an unknown subject creates its user from the token's claims (roles from the token,
//! `viewer` when there are none). Tenant roles are relations of the permission graph, so a user created in a
//! tenant needs its relationships before its first request is authorized. Two writes see to that:
//! - the user insert enqueues a `permissions.sync_user` job in the same unit of work
//!   ([`UserService::sign_in_from_identity`]): the durable record, which the app's job runner writes until the
//!   authorizer accepts it;
//! - with an authorizer ([`Authenticator::with_authorizer`]), the authenticator writes the same relationships
//!   right after creating the user, before it returns the principal — so the request that created the user is
//!   already authorized by its roles. A failure there is logged, not fatal: the job retries it.
//!
//! Both happen once per created user; every later request of the user is served from the user cache or finds
//! the stored user and writes nothing. (Of two simultaneous first requests of one identity, the one that finds
//! the user its twin just created may be authorized a moment before the twin's write lands.)

use crate::api_keys::ApiKeyAuthenticator;
use crate::authorizer::{Authorizer, bootstrap};
use crate::credentials::Credential;
use crate::ephemeral::{ClientSecretGrant, ClientSecrets};
use crate::identity::{IdentityProvider, VerifiedToken};
use crate::{Error, Result};
use avb_core::{Ctx, Principal, Role, UserPrincipal};
use avb_tenancy::user::{IdentityClaims, TenantJoin, UserService};
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
    authorizer: Option<Arc<dyn Authorizer>>,
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
            authorizer: None,
            user_cache: RwLock::new(HashMap::new()),
        }
    }

    /// Writes the tenant-role relationships of users created at sign-in to `authorizer` as soon as they are
    /// created, so their first request is authorized by their roles (see the module documentation). Without it
    /// only the `permissions.sync_user` job writes them, whenever the job runner gets to it.
    #[must_use]
    pub fn with_authorizer(mut self, authorizer: Arc<dyn Authorizer>) -> Self {
        self.authorizer = Some(authorizer);
        self
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
        let signed_in = self
            .users
            .sign_in_from_identity(&system, claims)
            .await
            .map_err(Error::from_tenancy)?;
        if let Some(joined) = &signed_in.joined {
            self.grant_tenant_roles(&system, joined).await;
        }
        let user = signed_in.user;
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

    /// Writes the relationships of a user who just joined a tenant. Best effort: the `permissions.sync_user` job
    /// enqueued with the user is the durable record and retries a failed write.
    async fn grant_tenant_roles(&self, ctx: &Ctx, joined: &TenantJoin) {
        let Some(authorizer) = &self.authorizer else {
            return;
        };
        let updates = bootstrap::user_joined_tenant(joined.tenant_id, joined.user_id, &joined.roles);
        if updates.is_empty() {
            return;
        }
        if let Err(err) = authorizer.write_relationships(ctx, &updates).await {
            tracing::warn!(
                request_id = %ctx.request_id(),
                user = %joined.user_id,
                tenant = %joined.tenant_id,
                error = %err,
                "could not write a new user's role relationships; the queued job retries"
            );
        }
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
