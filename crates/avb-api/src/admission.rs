//! Admission: who is calling, for which tenant, and may they call now. Credential → principal → tenant → rate
//! limit are the steps every entry point runs before its own checks: the REST [pipeline](crate::pipeline), the
//! `/v1/realtime` upgrade ([`realtime`](crate::realtime)) and the `/ws/v2/*` upgrades ([`ws_v2`](crate::ws_v2)).
//!
//! One function, so that the three cannot drift apart where it matters for security: a bad credential is an
//! error (never anonymous) and is counted against the caller's IP first, so guessing keys is rate limited on
//! every entry point; a client secret acts for its own tenant only; limits are keyed and tiered alike (spec
//! §10.2). Entry points differ only in their [`Policy`] and [`CredentialSources`]; route, scope and permission
//! checks come after admission and stay with each entry point.

use crate::app::App;
use crate::error::ApiError;
use crate::http::Headers;
use crate::pipeline::{IpKey, KeyText, client_ip, rate_limit_key, rate_limited};
use avb_auth::authenticator::Authenticated;
use avb_auth::credentials::{self, Credential, CredentialSources};
use avb_auth::ephemeral::ClientSecretGrant;
use avb_core::rate_limit::RateLimitDecision;
use avb_core::{ClientInfo, Ctx, ErrorCode, Principal, RequestId, TenantId, UserId};
use avb_tenancy::model::Tenant;
use avb_tenancy::resolve::ResolveInput;
use std::net::IpAddr;
use std::sync::Arc;

/// How an entry point admits callers: the few ways the REST API and the two WebSocket protocols differ.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Policy {
    /// `Some(message)`: an `ek_` client secret is refused (`authentication_failed`, with this message) before it
    /// is looked up; `None`: it is accepted (only `/v1/realtime` opens sessions with one).
    pub client_secret_refused: Option<&'static str>,
    /// `Some(message)`: a request without any credential is refused with this message; `None`: it proceeds as
    /// [`Principal::Anonymous`] (REST, where public routes exist).
    pub credential_required: Option<&'static str>,
    /// Whether a request that resolves to no tenant is refused (`tenant_required`) right after resolution, before
    /// it is counted: a socket is always for one tenant. REST leaves that to each route's access rule.
    pub tenant_required: bool,
    /// Whether the unmetered paths ([`RATE_LIMIT_EXEMPT`](crate::routes::RATE_LIMIT_EXEMPT): `/health`,
    /// `/metrics`) skip the rate limiter. Only REST serves them; the sockets count every upgrade.
    pub exempt_paths: bool,
}

impl Policy {
    /// REST: without a credential as anonymous (public routes exist); never with a client secret (those open
    /// realtime sessions and nothing else); with or without a tenant (each route's
    /// [`Access`](crate::routes::Access) decides, after the rate limit); `/health` and `/metrics` uncounted
    /// (probes must not be throttled).
    pub(crate) const REST: Policy = Policy {
        client_secret_refused: Some("client secrets are only accepted by the realtime endpoints"),
        credential_required: None,
        tenant_required: false,
        exempt_paths: true,
    };

    /// `/v1/realtime`: only with a credential, client secrets included (how browsers connect), for one tenant (a
    /// session belongs to one).
    pub(crate) const REALTIME: Policy = Policy {
        client_secret_refused: None,
        credential_required: Some(
            "a realtime connection needs an API key or client secret (Authorization: Bearer …)",
        ),
        tenant_required: true,
        exempt_paths: false,
    };

    /// `/ws/v2/*`: only with a credential (spec §8.3) other than a client secret (those belong to the OpenAI
    /// protocol), for one tenant (every consumer serves one).
    pub(crate) const WS_V2: Policy = Policy {
        client_secret_refused: Some("client secrets are only accepted by /v1/realtime"),
        credential_required: Some(
            "a /ws/v2 connection needs ?token=<JWT>, ?api_key=<key> or an Authorization header",
        ),
        tenant_required: true,
        exempt_paths: false,
    };

    /// `/ws/v2/admin/…`: as [`Policy::WS_V2`], but for the platform rather than a tenant (the path is exempt from
    /// tenant resolution; the consumer admits sysadmins only).
    pub(crate) const WS_V2_ADMIN: Policy = Policy {
        tenant_required: false,
        ..Policy::WS_V2
    };
}

/// The request as admission reads it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Caller<'a> {
    /// Path (tenant resolution exempts some; REST exempts some from rate limiting).
    path: &'a str,
    /// Request headers (`X-Forwarded-For`, `User-Agent`, `X-Tenant-ID`, `Host`).
    headers: &'a Headers,
    /// The peer's address.
    peer: Option<IpAddr>,
    /// Where this entry point looks for a credential.
    sources: CredentialSources<'a>,
}

impl<'a> Caller<'a> {
    /// A request to `path` from `peer` with `headers`, presenting its credential in `sources`.
    pub(crate) fn new(
        path: &'a str,
        headers: &'a Headers,
        peer: Option<IpAddr>,
        sources: CredentialSources<'a>,
    ) -> Self {
        Self {
            path,
            headers,
            peer,
            sources,
        }
    }
}

/// What admission established about a caller, also when it then refused: REST reports it on every answer
/// (`x-ratelimit-*` headers, the tenant and user of the log line).
#[derive(Debug, Default)]
pub(crate) struct Seen {
    /// The last rate-limit decision taken (by IP after a bad credential, else by key, user or IP).
    pub rate: Option<RateLimitDecision>,
    /// The authenticated user (API keys and anonymous callers have none).
    pub user: Option<UserId>,
    /// The resolved tenant.
    pub tenant: Option<TenantId>,
}

/// An admitted caller.
#[derive(Debug)]
pub(crate) struct Admitted {
    /// Principal, client, tenant and a deadline `request_timeout` from the start of admission.
    pub ctx: Ctx,
    /// The tenant record `ctx.tenant()` names (`None` only where the policy allows no tenant).
    pub tenant: Option<Arc<Tenant>>,
    /// The grant of the client secret the caller presented, if it presented one. Boxed: only `/v1/realtime`
    /// accepts client secrets, and the REST request future, which the adapters allocate for every request, should
    /// not carry room for one.
    pub client_secret: Option<Box<ClientSecretGrant>>,
}

impl App {
    /// Admits `caller` under `policy`, in this order: credential (a bad one is counted against the IP before it
    /// is refused), tenant, the client secret's tenant, rate limit. `seen` records what was established on the
    /// way.
    pub(crate) async fn admit(
        &self,
        request_id: &RequestId,
        caller: &Caller<'_>,
        policy: &Policy,
        seen: &mut Seen,
    ) -> Result<Admitted, ApiError> {
        let inner = self.inner();
        let ip = client_ip(caller.headers, caller.peer, inner.config.trust_forwarded_for);
        let client = ClientInfo {
            ip,
            user_agent: caller
                .headers
                .get("user-agent")
                .map(|ua| ua.chars().take(500).collect()),
        };
        let base = Ctx::new(request_id.clone(), Principal::Anonymous)
            .with_client(client.clone())
            .with_timeout(inner.config.request_timeout);
        let metered = !(policy.exempt_paths && crate::pipeline::exempt(caller.path));

        let authenticated = match credentials::extract(&caller.sources) {
            Ok(credential) => match refusal(credential.as_ref(), policy) {
                Some(message) => Err(avb_auth::Error::AuthenticationFailed(message.into())),
                None => inner.authenticator.authenticate(&base, credential.as_ref()).await,
            },
            Err(err) => Err(err),
        };
        let (principal, client_secret) = match authenticated {
            Ok(Authenticated {
                principal,
                client_secret,
            }) => (principal, client_secret.map(Box::new)),
            Err(err) => {
                if metered {
                    let key = KeyText::format(format_args!("ip:{}", IpKey(ip)));
                    // A limiter that fails must not turn a 401 into a 5xx: the refusal stands either way.
                    if let Ok(decision) = inner
                        .rate_limiter
                        .check(&base, key.as_str(), inner.config.rate_limits.anonymous)
                        .await
                    {
                        seen.rate = Some(decision);
                        if !decision.allowed {
                            return Err(rate_limited(decision));
                        }
                    }
                }
                return Err(err.into());
            }
        };
        seen.user = principal.user_id();
        if let Principal::ApiKey(key) = &principal {
            inner.metrics.api_key_used(key.tenant_id, key.key_id);
        }

        // Tenant resolution (spec §5.2).
        let tenant = inner
            .resolver
            .resolve_shared(ResolveInput {
                path: caller.path,
                principal: &principal,
                header_tenant: caller.headers.get("x-tenant-id"),
                host: caller.headers.get("host"),
            })
            .await?;
        seen.tenant = tenant.as_ref().map(|t| t.id);
        if policy.tenant_required && tenant.is_none() {
            return Err(ApiError::new(ErrorCode::TenantRequired));
        }
        // A client secret is minted for one tenant; a header or host naming another must not stretch it.
        if let Some(grant) = &client_secret
            && seen.tenant != Some(grant.tenant_id)
        {
            return Err(ApiError::with_message(
                ErrorCode::PermissionDenied,
                "this client secret belongs to another tenant",
            ));
        }
        let ctx = Ctx::new(request_id.clone(), principal)
            .with_client(client)
            .with_deadline(base.deadline())
            .with_tenant(seen.tenant);

        // Rate limiting (spec §10.2): by API key, user or IP, with the caller's tier.
        if metered && let Some((key, limit)) = rate_limit_key(&ctx, ip, &inner.config.rate_limits) {
            let decision = inner.rate_limiter.check(&ctx, key.as_str(), limit).await?;
            seen.rate = Some(decision);
            if !decision.allowed {
                return Err(rate_limited(decision));
            }
        }
        Ok(Admitted {
            ctx,
            tenant,
            client_secret,
        })
    }
}

/// The message `policy` refuses `credential` with before it is looked up, if it does.
fn refusal(credential: Option<&Credential>, policy: &Policy) -> Option<&'static str> {
    match credential {
        Some(Credential::ClientSecret(_)) => policy.client_secret_refused,
        Some(_) => None,
        None => policy.credential_required,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_entry_point_refuses_exactly_what_it_refused_before_sharing_admission() {
        let secret = Credential::ClientSecret("ek_x".into());
        let key = Credential::ApiKey("avb_x".into());
        let jwt = Credential::Jwt("e30.e30.sig".into());
        for policy in [Policy::REST, Policy::REALTIME, Policy::WS_V2] {
            assert_eq!(refusal(Some(&key), &policy), None);
            assert_eq!(refusal(Some(&jwt), &policy), None);
        }
        assert_eq!(
            refusal(Some(&secret), &Policy::REST),
            Some("client secrets are only accepted by the realtime endpoints")
        );
        assert_eq!(refusal(None, &Policy::REST), None);
        assert_eq!(refusal(Some(&secret), &Policy::REALTIME), None);
        assert_eq!(
            refusal(None, &Policy::REALTIME),
            Some("a realtime connection needs an API key or client secret (Authorization: Bearer …)")
        );
        assert_eq!(
            refusal(Some(&secret), &Policy::WS_V2),
            Some("client secrets are only accepted by /v1/realtime")
        );
        assert_eq!(
            refusal(None, &Policy::WS_V2),
            Some("a /ws/v2 connection needs ?token=<JWT>, ?api_key=<key> or an Authorization header")
        );
        const {
            assert!(!Policy::REST.tenant_required && Policy::REST.exempt_paths);
            assert!(Policy::REALTIME.tenant_required && !Policy::REALTIME.exempt_paths);
            assert!(Policy::WS_V2.tenant_required && !Policy::WS_V2.exempt_paths);
        }
    }
}
