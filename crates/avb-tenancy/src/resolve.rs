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
//! # Caching
//! A resolver built [`TenantResolver::with_cache`] keeps tenant records (and slug → id lookups) in a short-lived,
//! bounded [`TenantCache`] (TTL [`DEFAULT_TENANT_TTL`] by default), so a request usually resolves its tenant without a database round trip. Every change
//! made through [`crate::tenant::TenantService`] drops the tenant from the cache it shares with the resolver at
//! once; other replicas learn of it from the application's invalidation broadcast, and at the latest when the TTL
//! ends. The status check runs on every request, cached record or not.

use crate::error::{Error, Result};
use crate::model::{Tenant, TenantStatus};
use crate::service::TenancyDeps;
use crate::store::TenantFilter;
use crate::validation;
use avb_core::{Ctx, FieldErrors, PageRequest, Principal, RequestId, Role, TenantId};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

/// How long a resolved tenant is served from memory before it is read again.
pub const DEFAULT_TENANT_TTL: Duration = Duration::from_secs(5);
/// Upper bound on cached tenants (and on cached slugs); beyond it the map is cleared rather than grown.
pub const DEFAULT_TENANT_CAPACITY: usize = 10_000;

/// Hit and miss totals of a [`TenantCache`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Lookups answered from memory.
    pub hits: u64,
    /// Lookups that found nothing fresh.
    pub misses: u64,
}

/// A short-lived, bounded in-process cache of tenant records by id and of tenant ids by slug.
///
/// Cloning shares the cache. A read that started before an invalidation never stores its (possibly stale)
/// result: every invalidation advances a generation, and [`TenantCache::insert`] only stores when the generation
/// is the one read before the lookup.
#[derive(Debug, Clone)]
pub struct TenantCache {
    inner: Arc<CacheInner>,
}

#[derive(Debug)]
struct CacheInner {
    ttl: Duration,
    capacity: usize,
    generation: AtomicU64,
    /// Lookups answered from memory (records and slugs).
    hits: AtomicU64,
    /// Lookups that had to read the store (absent or expired).
    misses: AtomicU64,
    tenants: RwLock<HashMap<TenantId, (Arc<Tenant>, Instant)>>,
    slugs: RwLock<HashMap<String, (TenantId, Instant)>>,
}

impl Default for TenantCache {
    fn default() -> Self {
        Self::new(DEFAULT_TENANT_TTL, DEFAULT_TENANT_CAPACITY)
    }
}

impl TenantCache {
    /// A cache keeping entries for `ttl` (zero disables it), at most `capacity` of each kind.
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            inner: Arc::new(CacheInner {
                ttl,
                capacity: capacity.max(1),
                generation: AtomicU64::new(0),
                hits: AtomicU64::new(0),
                misses: AtomicU64::new(0),
                tenants: RwLock::new(HashMap::new()),
                slugs: RwLock::new(HashMap::new()),
            }),
        }
    }

    /// A cache that keeps nothing.
    pub fn disabled() -> Self {
        Self::new(Duration::ZERO, 1)
    }

    /// The current generation, to pass to [`TenantCache::insert`] after a lookup.
    pub fn generation(&self) -> u64 {
        self.inner.generation.load(Ordering::Acquire)
    }

    /// The cached record of `id`, if fresh.
    pub fn get(&self, id: TenantId) -> Option<Arc<Tenant>> {
        let found = {
            let tenants = self.inner.tenants.read().unwrap_or_else(PoisonError::into_inner);
            tenants
                .get(&id)
                .filter(|(_, at)| at.elapsed() < self.inner.ttl)
                .map(|(tenant, _)| Arc::clone(tenant))
        };
        self.count(found.is_some());
        found
    }

    /// Counts one lookup (relaxed: the totals are statistics, read by the metrics exporter).
    fn count(&self, hit: bool) {
        let counter = if hit { &self.inner.hits } else { &self.inner.misses };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Lookups answered from the cache and lookups that missed since it was created (tenant records and slugs
    /// together; a disabled cache only misses): what `avb_cache_hits_total` / `avb_cache_misses_total` export.
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.inner.hits.load(Ordering::Relaxed),
            misses: self.inner.misses.load(Ordering::Relaxed),
        }
    }

    /// Stores `tenant`, read when the generation was `generation`, unless an invalidation happened since.
    pub fn insert(&self, generation: u64, tenant: Arc<Tenant>) {
        if self.inner.ttl.is_zero() {
            return;
        }
        let mut tenants = self.inner.tenants.write().unwrap_or_else(PoisonError::into_inner);
        // Checked under the write lock, which invalidations also take after advancing the generation.
        if self.generation() != generation {
            return;
        }
        if tenants.len() >= self.inner.capacity && !tenants.contains_key(&tenant.id) {
            tenants.clear();
        }
        tenants.insert(tenant.id, (tenant, Instant::now()));
    }

    /// The cached id of the tenant with `slug`, if fresh.
    pub fn slug(&self, slug: &str) -> Option<TenantId> {
        let found = {
            let slugs = self.inner.slugs.read().unwrap_or_else(PoisonError::into_inner);
            slugs
                .get(slug)
                .filter(|(_, at)| at.elapsed() < self.inner.ttl)
                .map(|(id, _)| *id)
        };
        self.count(found.is_some());
        found
    }

    /// Stores `slug → id`, looked up when the generation was `generation`, unless an invalidation happened since.
    pub fn insert_slug(&self, generation: u64, slug: String, id: TenantId) {
        if self.inner.ttl.is_zero() {
            return;
        }
        let mut slugs = self.inner.slugs.write().unwrap_or_else(PoisonError::into_inner);
        if self.generation() != generation {
            return;
        }
        if slugs.len() >= self.inner.capacity && !slugs.contains_key(&slug) {
            slugs.clear();
        }
        slugs.insert(slug, (id, Instant::now()));
    }

    /// Drops `id` and every slug pointing to it, so the next resolution reads the store.
    pub fn invalidate(&self, id: TenantId) {
        self.inner.generation.fetch_add(1, Ordering::AcqRel);
        self.inner
            .tenants
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id);
        self.inner
            .slugs
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|_, (t, _)| *t != id);
    }

    /// Drops everything (the invalidation feed was interrupted, so any entry may be stale).
    pub fn clear(&self) {
        self.inner.generation.fetch_add(1, Ordering::AcqRel);
        self.inner
            .tenants
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        self.inner
            .slugs
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// Number of cached tenant records (fresh or not yet evicted).
    pub fn len(&self) -> usize {
        self.inner
            .tenants
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// True when no tenant record is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

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
    cache: TenantCache,
}

impl TenantResolver {
    /// A resolver reading through `deps.store` on every request (no cache: see [`TenantResolver::with_cache`]).
    pub fn new(deps: TenancyDeps) -> Self {
        Self::with_cache(deps, TenantCache::disabled())
    }

    /// A resolver reading through `deps.store` and caching in `cache` (share it with the
    /// [`crate::tenant::TenantService`] that changes tenants, so its changes invalidate it).
    pub fn with_cache(deps: TenancyDeps, cache: TenantCache) -> Self {
        Self { deps, cache }
    }

    /// The resolver's cache (for invalidation).
    pub fn cache(&self) -> &TenantCache {
        &self.cache
    }

    /// The tenant the request acts for: `Ok(None)` when it acts for none (exempt path, anonymous caller,
    /// cross-tenant principal without one), `Ok(Some(tenant))` for a usable tenant, an error otherwise.
    ///
    /// Lookups run under an internal system context without a tenant (all-tenants scope): the tenant is what is
    /// being found out, so no narrower scope exists yet. Only the tenant row is read; nothing is written.
    pub async fn resolve(&self, input: ResolveInput<'_>) -> Result<Option<Tenant>> {
        Ok(self.resolve_shared(input).await?.map(Arc::unwrap_or_clone))
    }

    /// [`TenantResolver::resolve`], answering the cached record itself rather than a copy.
    pub async fn resolve_shared(&self, input: ResolveInput<'_>) -> Result<Option<Arc<Tenant>>> {
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
        let tenant = match self.cache.get(id) {
            Some(hit) => hit,
            None => {
                let generation = self.cache.generation();
                let ctx = self.system_ctx();
                let read = self
                    .deps
                    .read(&ctx, move |uow| {
                        Box::pin(async move { Ok(uow.tenants().get(id).await?) })
                    })
                    .await;
                let tenant = match read {
                    Ok(t) => Arc::new(t),
                    Err(Error::NotFound { .. }) => return Err(Error::TenantNotFound(id.to_string())),
                    Err(other) => return Err(other),
                };
                self.cache.insert(generation, Arc::clone(&tenant));
                tenant
            }
        };
        match tenant.status {
            TenantStatus::Suspended => Err(Error::TenantSuspended(tenant.name.clone())),
            TenantStatus::Deleted => Err(Error::TenantNotFound(id.to_string())),
            TenantStatus::Active | TenantStatus::Pending => Ok(Some(tenant)),
        }
    }

    /// The id of the tenant with this slug, if any (deleted ones included: the status check decides).
    async fn find_by_slug(&self, slug: String) -> Result<Option<TenantId>> {
        if let Some(id) = self.cache.slug(&slug) {
            return Ok(Some(id));
        }
        let generation = self.cache.generation();
        let key = slug.clone();
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
        let found = page.items.first().map(|t| t.id);
        if let Some(id) = found {
            self.cache.insert_slug(generation, key, id);
        }
        Ok(found)
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

    fn tenant(n: u128, slug: &str) -> Arc<Tenant> {
        let now = chrono::DateTime::<chrono::Utc>::UNIX_EPOCH;
        Arc::new(Tenant {
            id: TenantId(uuid::Uuid::from_u128(n)),
            name: format!("Tenant {n}"),
            slug: slug.to_owned(),
            tier: crate::model::TenantTier::Free,
            status: TenantStatus::Active,
            billing_id: String::new(),
            keycloak_group_id: String::new(),
            settings: serde_json::Map::new(),
            limits: crate::model::TenantTier::Free.limits(),
            created_at: now,
            updated_at: now,
            activated_at: Some(now),
            suspended_at: None,
            deleted_at: None,
            version: 1,
        })
    }

    #[tokio::test]
    async fn cached_tenants_expire_after_the_ttl() {
        let cache = TenantCache::new(Duration::from_millis(50), 10);
        let a = tenant(1, "alpha");
        cache.insert(cache.generation(), Arc::clone(&a));
        cache.insert_slug(cache.generation(), "alpha".into(), a.id);
        assert_eq!(cache.get(a.id).unwrap().id, a.id);
        assert_eq!(cache.slug("alpha"), Some(a.id));
        tokio::time::sleep(Duration::from_millis(80)).await;
        assert!(cache.get(a.id).is_none());
        assert_eq!(cache.slug("alpha"), None);
        // Two fresh lookups hit; the expired ones miss like absent ones.
        assert_eq!(cache.stats(), CacheStats { hits: 2, misses: 2 });
        assert!(cache.get(tenant(3, "charlie").id).is_none());
        assert_eq!(cache.stats(), CacheStats { hits: 2, misses: 3 });
    }

    #[test]
    fn a_disabled_cache_only_misses() {
        let cache = TenantCache::disabled();
        let a = tenant(1, "alpha");
        cache.insert(cache.generation(), Arc::clone(&a));
        assert!(cache.get(a.id).is_none());
        assert_eq!(cache.slug("alpha"), None);
        assert_eq!(cache.stats(), CacheStats { hits: 0, misses: 2 });
    }

    #[test]
    fn invalidation_drops_the_tenant_and_its_slugs_only() {
        let cache = TenantCache::new(Duration::from_secs(60), 10);
        let (a, b) = (tenant(1, "alpha"), tenant(2, "bravo"));
        for t in [&a, &b] {
            cache.insert(cache.generation(), Arc::clone(t));
            cache.insert_slug(cache.generation(), t.slug.clone(), t.id);
        }
        cache.invalidate(a.id);
        assert!(cache.get(a.id).is_none());
        assert_eq!(cache.slug("alpha"), None);
        assert_eq!(cache.get(b.id).unwrap().id, b.id);
        assert_eq!(cache.slug("bravo"), Some(b.id));
        cache.clear();
        assert!(cache.is_empty());
        assert_eq!(cache.slug("bravo"), None);
    }

    #[test]
    fn a_read_overtaken_by_an_invalidation_is_not_stored() {
        let cache = TenantCache::new(Duration::from_secs(60), 10);
        let a = tenant(1, "alpha");
        let before = cache.generation();
        cache.invalidate(a.id); // a change committed while the read was in flight
        cache.insert(before, Arc::clone(&a));
        cache.insert_slug(before, "alpha".into(), a.id);
        assert!(cache.get(a.id).is_none());
        assert_eq!(cache.slug("alpha"), None);
    }

    #[test]
    fn the_cache_stays_bounded_and_a_zero_ttl_keeps_nothing() {
        let cache = TenantCache::new(Duration::from_secs(60), 2);
        for n in 1..=5 {
            cache.insert(cache.generation(), tenant(n, "x"));
            assert!(cache.len() <= 2);
        }
        let off = TenantCache::disabled();
        off.insert(off.generation(), tenant(1, "alpha"));
        assert!(off.is_empty());
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
