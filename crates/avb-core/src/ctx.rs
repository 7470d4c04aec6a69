//! The request context passed explicitly to every port call: no thread-locals, no globals.

use crate::error::{Error, Result};
use crate::ids::{RequestId, TenantId};
use crate::principal::Principal;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Where the request came from (for audit records and API-key usage).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientInfo {
    /// Client IP address.
    pub ip: Option<IpAddr>,
    /// `User-Agent`, truncated to 500 characters (spec §9.4).
    pub user_agent: Option<String>,
}

/// What data a storage adapter may touch on behalf of a [`Ctx`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageScope {
    /// Only rows of this tenant are visible; other tenants' rows behave as if absent.
    Tenant(TenantId),
    /// Every tenant (sysadmin and system principals without a tenant). Used only by audited admin operations.
    AllTenants,
}

/// Request context: who, for which tenant, under which request id, until when.
///
/// Cheap to clone; built once at the edge (HTTP, WebSocket, job runner) and passed by reference.
#[derive(Debug, Clone)]
pub struct Ctx {
    request_id: RequestId,
    principal: Principal,
    tenant: Option<TenantId>,
    deadline: Option<Instant>,
    client: ClientInfo,
}

impl Ctx {
    /// A context for `principal` with no tenant, deadline or client info.
    pub fn new(request_id: RequestId, principal: Principal) -> Self {
        Self {
            request_id,
            principal,
            tenant: None,
            deadline: None,
            client: ClientInfo::default(),
        }
    }

    /// A system context (jobs, bootstrap), optionally scoped to one tenant.
    pub fn system(request_id: RequestId, name: &str, tenant: Option<TenantId>) -> Self {
        Self::new(request_id, Principal::system(name)).with_tenant(tenant)
    }

    /// Sets the resolved tenant.
    #[must_use]
    pub fn with_tenant(mut self, tenant: Option<TenantId>) -> Self {
        self.tenant = tenant;
        self
    }

    /// Sets a deadline `timeout` from now.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.deadline = Instant::now().checked_add(timeout);
        self
    }

    /// Sets an absolute deadline.
    #[must_use]
    pub fn with_deadline(mut self, deadline: Option<Instant>) -> Self {
        self.deadline = deadline;
        self
    }

    /// Sets client info.
    #[must_use]
    pub fn with_client(mut self, client: ClientInfo) -> Self {
        self.client = client;
        self
    }

    /// The request id.
    pub fn request_id(&self) -> &RequestId {
        &self.request_id
    }

    /// The caller.
    pub fn principal(&self) -> &Principal {
        &self.principal
    }

    /// The resolved tenant, if any.
    pub fn tenant(&self) -> Option<TenantId> {
        self.tenant
    }

    /// The resolved tenant, or `tenant_required`.
    pub fn require_tenant(&self) -> Result<TenantId> {
        self.tenant.ok_or(Error::TenantRequired)
    }

    /// Client info.
    pub fn client(&self) -> &ClientInfo {
        &self.client
    }

    /// The deadline, if any.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Time left before the deadline (`None` = unbounded); `Err(DeadlineExceeded)` once it has passed.
    pub fn remaining(&self) -> Result<Option<Duration>> {
        match self.deadline {
            None => Ok(None),
            Some(d) => match d.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => Ok(Some(left)),
                _ => Err(Error::DeadlineExceeded),
            },
        }
    }

    /// What storage may touch for this context: the tenant when one is resolved; every tenant for
    /// cross-tenant principals without one; otherwise `tenant_required`.
    pub fn storage_scope(&self) -> Result<StorageScope> {
        match self.tenant {
            Some(t) => Ok(StorageScope::Tenant(t)),
            None if self.principal.is_cross_tenant() => Ok(StorageScope::AllTenants),
            None => Err(Error::TenantRequired),
        }
    }

    /// A copy of this context scoped to `tenant` (a sysadmin acting on one tenant, a job for one tenant).
    #[must_use]
    pub fn scoped_to(&self, tenant: TenantId) -> Self {
        self.clone().with_tenant(Some(tenant))
    }
}

impl StorageScope {
    /// True when a row of `tenant` is visible in this scope.
    pub fn allows(&self, tenant: TenantId) -> bool {
        match self {
            StorageScope::Tenant(t) => *t == tenant,
            StorageScope::AllTenants => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::principal::{Role, UserPrincipal};
    use crate::{SequentialIds, UserId};

    fn rid() -> RequestId {
        RequestId::generate(&SequentialIds::default())
    }

    #[test]
    fn plain_users_need_a_tenant_for_storage() {
        let user = Principal::User(UserPrincipal {
            user_id: UserId(uuid::Uuid::nil()),
            tenant_id: None,
            email: "a@b.c".into(),
            roles: [Role::Admin].into(),
            external_id: None,
        });
        let ctx = Ctx::new(rid(), user);
        assert!(matches!(ctx.storage_scope(), Err(Error::TenantRequired)));
        let t = TenantId(uuid::Uuid::max());
        assert_eq!(ctx.scoped_to(t).storage_scope().unwrap(), StorageScope::Tenant(t));
    }

    #[test]
    fn system_without_tenant_sees_all() {
        let ctx = Ctx::system(rid(), "test", None);
        assert_eq!(ctx.storage_scope().unwrap(), StorageScope::AllTenants);
    }

    #[test]
    fn deadlines_expire() {
        let ctx = Ctx::new(rid(), Principal::Anonymous).with_deadline(Some(Instant::now()));
        assert!(matches!(ctx.remaining(), Err(Error::DeadlineExceeded)));
        let ctx = Ctx::new(rid(), Principal::Anonymous).with_timeout(Duration::from_secs(60));
        assert!(ctx.remaining().unwrap().is_some());
    }
}
