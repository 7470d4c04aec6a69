//! Tenant resolution (spec §5.2 `TenantMiddleware`), framework-free: which tenant a request acts for, and
//! whether that tenant may be used at all.
//!
//! # Rules, in order
//! 1. Exempt paths (`/health`, `/metrics`, `/api/v2/auth/`, `/api/v2/admin/`, `/ws/v2/admin/`, prefix match as in
//!    the spec) resolve to no tenant and check nothing. A path with a `.` or `..` segment is never exempt, so
//!    `/api/v2/admin/../projects` cannot borrow an exemption.
//! 2. The credential's tenant (the token's `tenant_id` claim, or the API key's tenant).
//! 3. The `X-Tenant-ID` header, which must be a UUID (`validation_error` otherwise). When the credential names a
//!    tenant and the header names another, the request is refused with `permission_denied` — users cannot hop
//!    tenants by header — unless the principal is a sysadmin user, for whom the header wins. An API key never
//!    switches tenants.
//! 4. The subdomain: the first label of `Host` (port removed) when the host has at least three labels and that
//!    label is not `www`, `api` or `admin`, looked up by slug. An unknown subdomain is ignored, as in the spec.
//!
//! Then the tenant must exist and be usable: `suspended` → `tenant_suspended`; `deleted` or unknown →
//! `tenant_not_found`; `pending` and `active` pass (a pending tenant's admins set it up before activation).
//! Without any tenant, an authenticated principal gets `tenant_required`, except cross-tenant principals
//! (sysadmins, the system), which may act without one; anonymous requests pass with no tenant.
//!
//! Nothing is cached here; a caching decorator can wrap [`TenantResolver`] later (status changes must then
//! invalidate it).

use crate::error::{Error, Result};
use crate::model::{Tenant, TenantStatus};
use crate::service::TenancyDeps;
use crate::store::TenantFilter;
use crate::validation;
use avb_core::{Ctx, FieldErrors, PageRequest, Principal, RequestId, Role, TenantId};

/// Paths that need no tenant (spec §5.2 `EXEMPT_PATHS`).
pub const EXEMPT_PATHS: &[&str] = &[
    "/health",
    "/metrics",
    "/api/v2/auth/",
    "/api/v2/admin/",
    "/ws/v2/admin/",
];

/// Subdomains that never name a tenant.
pub const RESERVED_SUBDOMAINS: &[&str] = &["www", "api", "admin"];

/// Name of the header field that may name the tenant.
pub const TENANT_HEADER: &str = "X-Tenant-ID";

/// What resolution looks at, taken from the request by the transport layer.
#[derive(Debug, Clone, Copy)]
pub struct ResolveInput<'a> {
    /// Request path, without the query string.
    pub path: &'a str,
    /// The authenticated caller (or [`Principal::Anonymous`]).
    pub principal: &'a Principal,
    /// The `X-Tenant-ID` header value, if present.
    pub header_tenant: Option<&'a str>,
    /// The `Host` header value (may include a port), if present.
    pub host: Option<&'a str>,
}

/// Resolves the tenant of a request (see the module docs for the rules).
#[derive(Debug, Clone)]
pub struct TenantResolver {
    deps: TenancyDeps,
}

impl TenantResolver {
    /// A resolver reading through `deps.store`.
    pub fn new(deps: TenancyDeps) -> Self {
        Self { deps }
    }

    /// The tenant the request acts for: `Ok(None)` when it acts for none (exempt path, anonymous caller,
    /// cross-tenant principal without one), `Ok(Some(tenant))` for a usable tenant, an error otherwise.
    ///
    /// Lookups run under an internal system context without a tenant (all-tenants scope): the tenant is what is
    /// being found out, so no narrower scope exists yet. Only the tenant row is read; nothing is written.
    pub async fn resolve(&self, input: ResolveInput<'_>) -> Result<Option<Tenant>> {
        if is_exempt(input.path) {
            return Ok(None);
        }
        let principal = input.principal;
        let header = parse_header(input.header_tenant)?;
        let claimed = principal.tenant_id();
        let chosen = match (claimed, header) {
            (Some(claim), Some(named)) if claim != named => {
                if is_sysadmin(principal) {
                    Some(named)
                } else {
                    return Err(Error::PermissionDenied(format!(
                        "the credential is bound to another tenant than {TENANT_HEADER} names"
                    )));
                }
            }
            (Some(claim), _) => Some(claim),
            (None, Some(named)) => Some(named),
            (None, None) => match input.host.and_then(subdomain) {
                Some(slug) => self.find_by_slug(slug).await?,
                None => None,
            },
        };
        let Some(id) = chosen else {
            return match principal {
                Principal::Anonymous => Ok(None),
                p if p.is_cross_tenant() => Ok(None),
                _ => Err(Error::TenantRequired),
            };
        };
        let ctx = self.system_ctx();
        let tenant = match self
            .deps
            .read(&ctx, move |uow| {
                Box::pin(async move { Ok(uow.tenants().get(id).await?) })
            })
            .await
        {
            Ok(t) => t,
            Err(Error::NotFound { .. }) => return Err(Error::TenantNotFound(id.to_string())),
            Err(other) => return Err(other),
        };
        match tenant.status {
            TenantStatus::Suspended => Err(Error::TenantSuspended(tenant.name)),
            TenantStatus::Deleted => Err(Error::TenantNotFound(id.to_string())),
            TenantStatus::Active | TenantStatus::Pending => Ok(Some(tenant)),
        }
    }

    /// The id of the tenant with this slug, if any (deleted ones included: the status check decides).
    async fn find_by_slug(&self, slug: String) -> Result<Option<TenantId>> {
        let filter = TenantFilter {
            slug: Some(slug),
            ..Default::default()
        };
        let ctx = self.system_ctx();
        let page = self
            .deps
            .read(&ctx, move |uow| {
                Box::pin(async move { Ok(uow.tenants().list(&filter, PageRequest::default()).await?) })
            })
            .await?;
        Ok(page.items.first().map(|t| t.id))
    }

    fn system_ctx(&self) -> Ctx {
        let request_id = RequestId::from_client("tenant-resolution")
            .unwrap_or_else(|| RequestId::generate(self.deps.ids.as_ref()));
        Ctx::system(request_id, "tenant-resolver", None)
    }
}

/// True when `path` needs no tenant (spec §5.2 prefix match, minus dot segments).
pub fn is_exempt(path: &str) -> bool {
    let has_dot_segment = path.split('/').any(|segment| segment == "." || segment == "..");
    !has_dot_segment && EXEMPT_PATHS.iter().any(|prefix| path.starts_with(prefix))
}

/// Sysadmin *users* may name any tenant by header; the system principal has no credential tenant to override.
fn is_sysadmin(principal: &Principal) -> bool {
    principal.has_role(Role::Sysadmin)
}

/// Parses the header: absent or blank is `None` (spec: `if tenant_id:`), anything else must be a UUID.
fn parse_header(value: Option<&str>) -> Result<Option<TenantId>> {
    let Some(value) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    uuid::Uuid::parse_str(value)
        .map(|u| Some(TenantId(u)))
        .map_err(|_| {
            Error::Invalid(FieldErrors::single(
                TENANT_HEADER,
                "format",
                "must be a tenant id (UUID)",
            ))
        })
}

/// The tenant slug a host names, if any: the first label (lower-cased: host names are case-insensitive) of a host
/// of three or more labels, not reserved, and shaped like a slug. IP literals name nothing.
pub fn subdomain(host: &str) -> Option<String> {
    if host.starts_with('[') {
        return None; // IPv6 literal
    }
    let name = host.rsplit_once(':').map_or(host, |(name, port)| {
        if port.bytes().all(|b| b.is_ascii_digit()) {
            name
        } else {
            host
        }
    });
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.parse::<std::net::Ipv4Addr>().is_ok() {
        return None;
    }
    let mut labels = name.split('.');
    let first = labels.next()?;
    if labels.count() < 2 {
        return None;
    }
    let first = first.to_ascii_lowercase();
    if RESERVED_SUBDOMAINS.contains(&first.as_str()) || !validation::is_slug(&first) {
        return None;
    }
    Some(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exempt_paths_match_by_prefix_but_not_through_dot_segments() {
        for path in [
            "/health",
            "/healthz",
            "/metrics",
            "/api/v2/auth/login",
            "/api/v2/admin/tenants",
            "/ws/v2/admin/x",
        ] {
            assert!(is_exempt(path), "{path}");
        }
        for path in [
            "/api/v2/projects",
            "/api/v2/auth",
            "/api/v2/admin/../projects",
            "/api/v2/admin/./x",
            "/",
            "",
        ] {
            assert!(!is_exempt(path), "{path}");
        }
    }

    #[test]
    fn subdomains_need_three_labels_and_skip_reserved_ones() {
        for host in [
            "acme.example.com",
            "acme.example.com:8443",
            "acme.example.com.",
            "ACME.Example.com",
        ] {
            assert_eq!(subdomain(host).as_deref(), Some("acme"), "{host}");
        }
        for host in [
            "example.com",
            "localhost",
            "localhost:8080",
            "www.example.com",
            "api.example.com",
            "admin.example.com",
            "WWW.example.com",
            "10.0.0.1",
            "10.0.0.1:80",
            "[::1]:8080",
            "a_b.example.com",
            "ab.example.com",
        ] {
            assert_eq!(subdomain(host), None, "{host}");
        }
    }

    #[test]
    fn header_must_be_a_uuid_when_present() {
        assert_eq!(parse_header(None).unwrap(), None);
        assert_eq!(parse_header(Some("  ")).unwrap(), None);
        let id = "67e55044-10b1-426f-9247-bb680e5fe0c8";
        assert_eq!(parse_header(Some(id)).unwrap().unwrap().to_string(), id);
        let err = parse_header(Some("acme")).unwrap_err();
        assert!(
            matches!(err, Error::Invalid(ref f) if f.0[0].field == TENANT_HEADER),
            "{err:?}"
        );
    }
}
