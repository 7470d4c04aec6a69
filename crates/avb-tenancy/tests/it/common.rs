//! The test world: one memory store, the services over it, contexts for each kind of caller, and a snapshot of
//! everything stored so a test can prove that a refused operation changed nothing.

use avb_core::audit::{AuditEntry, AuditFilter, AuditReader};
use avb_core::jobs::{Job, JobQueue, kinds};
use avb_core::{
    ApiKeyId, ApiKeyPrincipal, Ctx, HasCode, ManualClock, PageRequest, Principal, RateLimitTier, RequestId,
    Role, SequentialIds, TenantId, UserId, UserPrincipal,
};
use avb_storage_memory::MemoryStore;
use avb_tenancy::model::{Project, Tenant, TenantSettings, TenantTier, User};
use avb_tenancy::project::ProjectService;
use avb_tenancy::resolve::TenantResolver;
use avb_tenancy::store::{AllRecords, ProjectFilter, TenantFilter, UserFilter};
use avb_tenancy::tenant::{CreateTenantRequest, TenantCreated, TenantService, UpdateTenantRequest};
use avb_tenancy::user::UserService;
use avb_tenancy::{Error, TenancyDeps};
use chrono::{DateTime, Utc};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

/// Every job kind the services enqueue.
pub const JOB_KINDS: &[&str] = &[
    kinds::PERMISSIONS_BOOTSTRAP_TENANT,
    kinds::PERMISSIONS_SYNC_USER,
    kinds::BILLING_SYNC_TENANT,
    kinds::EMAIL_WELCOME,
    kinds::EMAIL_INVITE,
];

pub fn start() -> DateTime<Utc> {
    DateTime::from_timestamp(1_760_000_000, 0).unwrap()
}

pub struct World {
    pub store: MemoryStore,
    pub clock: Arc<ManualClock>,
    pub ids: Arc<SequentialIds>,
    pub deps: TenancyDeps,
    pub tenants: TenantService,
    pub users: UserService,
    pub projects: ProjectService,
    pub resolver: TenantResolver,
}

impl World {
    pub fn new() -> Self {
        let clock = Arc::new(ManualClock::new(start()));
        let ids = Arc::new(SequentialIds::default());
        let store = MemoryStore::new().with_clock(clock.clone()).with_ids(ids.clone());
        let deps = TenancyDeps::new(Arc::new(store.clone()))
            .with_clock(clock.clone())
            .with_ids(ids.clone());
        Self {
            tenants: TenantService::new(deps.clone()),
            users: UserService::new(deps.clone()),
            projects: ProjectService::new(deps.clone()),
            resolver: TenantResolver::new(deps.clone()),
            store,
            clock,
            ids,
            deps,
        }
    }

    fn rid(&self) -> RequestId {
        RequestId::generate(self.ids.as_ref())
    }

    /// The platform itself, all tenants.
    pub fn system(&self) -> Ctx {
        Ctx::system(self.rid(), "test", None)
    }

    /// A sysadmin user without a tenant (all-tenants scope).
    pub fn sysadmin(&self) -> Ctx {
        Ctx::new(self.rid(), self.sysadmin_principal(None))
    }

    pub fn sysadmin_principal(&self, tenant: Option<TenantId>) -> Principal {
        Principal::User(UserPrincipal {
            user_id: UserId::generate(self.ids.as_ref()),
            tenant_id: tenant,
            email: "root@platform.example".into(),
            roles: BTreeSet::from([Role::Sysadmin]),
            external_id: None,
        })
    }

    pub fn user_principal(&self, user: &User) -> Principal {
        Principal::User(UserPrincipal {
            user_id: user.id,
            tenant_id: user.tenant_id,
            email: user.email.clone(),
            roles: user.roles.clone(),
            external_id: user.keycloak_id.clone(),
        })
    }

    pub fn api_key_principal(&self, tenant: TenantId) -> Principal {
        Principal::ApiKey(ApiKeyPrincipal {
            key_id: ApiKeyId::generate(self.ids.as_ref()),
            tenant_id: tenant,
            project_id: None,
            scopes: BTreeSet::new(),
            tier: RateLimitTier::Standard,
            created_by: None,
        })
    }

    /// `user` acting in their own tenant, as tenant resolution would set it up.
    pub fn as_user(&self, user: &User) -> Ctx {
        Ctx::new(self.rid(), self.user_principal(user)).with_tenant(user.tenant_id)
    }

    /// The first admin of `created` acting in their tenant.
    pub fn admin(&self, created: &TenantCreated) -> Ctx {
        self.as_user(&created.admin)
    }

    /// Creates a tenant (slug `slug`, admin `admin@<slug>.example`) and activates it.
    pub async fn tenant(&self, slug: &str, tier: TenantTier) -> TenantCreated {
        let mut req = CreateTenantRequest::new(
            format!("{slug} Inc"),
            slug,
            format!("admin@{slug}.example"),
            "Ada Admin",
        );
        req.tier = Some(tier.as_str().to_owned());
        let mut created = self.tenants.create(&self.sysadmin(), req).await.unwrap();
        created.tenant = self
            .tenants
            .activate(&self.sysadmin(), created.tenant.id)
            .await
            .unwrap();
        created
    }

    pub async fn set_tier(&self, tenant: TenantId, tier: TenantTier) -> Tenant {
        let req = UpdateTenantRequest {
            tier: Some(tier.as_str().to_owned()),
            ..Default::default()
        };
        self.tenants.update(&self.sysadmin(), tenant, req).await.unwrap()
    }

    /// Every stored record and audit entry, read in the all-tenants scope.
    pub async fn snapshot(&self) -> Snapshot {
        let ctx = self.system();
        let page = PageRequest::new(Some(100), None).unwrap();
        let (tenants, users, projects, settings) = self
            .deps
            .read(&ctx, move |uow| {
                Box::pin(async move {
                    let tenants = uow.tenants().list(&TenantFilter::default(), page).await?;
                    let users = uow.users().list(&UserFilter::default(), page).await?;
                    let projects = uow.projects().list(&ProjectFilter::default(), page).await?;
                    let settings = uow.tenant_settings().list(&AllRecords, page).await?;
                    assert!(tenants.total <= 100 && users.total <= 100 && projects.total <= 100);
                    Ok((tenants.items, users.items, projects.items, settings.items))
                })
            })
            .await
            .unwrap();
        let audit = self.audit(&AuditFilter::default()).await;
        Snapshot {
            tenants,
            users,
            projects,
            settings,
            audit,
        }
    }

    /// Audit entries of every tenant matching `filter`, newest first.
    pub async fn audit(&self, filter: &AuditFilter) -> Vec<AuditEntry> {
        let mut all = Vec::new();
        let mut offset = 0;
        loop {
            let page = PageRequest::new(Some(100), Some(offset)).unwrap();
            let got = self.store.query(&self.system(), filter, page).await.unwrap();
            let n = got.items.len() as u64;
            all.extend(got.items);
            offset += n;
            if n == 0 || offset >= got.total {
                return all;
            }
        }
    }

    /// Reserves and acknowledges every runnable job, returning them oldest first.
    pub async fn drain_jobs(&self) -> Vec<Job> {
        let ctx = self.system();
        let mut jobs = Vec::new();
        while let Some(job) = self
            .store
            .reserve(&ctx, JOB_KINDS, Duration::from_secs(60))
            .await
            .unwrap()
        {
            self.store.ack(&ctx, job.id).await.unwrap();
            jobs.push(job);
        }
        jobs
    }

    /// Takes a snapshot after draining the job queue, for [`World::assert_unchanged`].
    pub async fn before(&self) -> Snapshot {
        self.drain_jobs().await;
        self.snapshot().await
    }

    /// Nothing was written since `before`: records, audit trail and job queue are as they were.
    pub async fn assert_unchanged(&self, before: &Snapshot) {
        let after = self.snapshot().await;
        assert_eq!(before.tenants, after.tenants, "tenants changed");
        assert_eq!(before.users, after.users, "users changed");
        assert_eq!(before.projects, after.projects, "projects changed");
        assert_eq!(before.settings, after.settings, "settings changed");
        assert_eq!(before.audit, after.audit, "audit trail changed");
        let jobs = self.drain_jobs().await;
        assert!(jobs.is_empty(), "jobs were enqueued: {jobs:?}");
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub tenants: Vec<Tenant>,
    pub users: Vec<User>,
    pub projects: Vec<Project>,
    pub settings: Vec<TenantSettings>,
    pub audit: Vec<AuditEntry>,
}

/// The stable wire code of a result's error.
pub fn code<T: std::fmt::Debug>(result: Result<T, Error>) -> &'static str {
    match result {
        Ok(value) => panic!("expected an error, got {value:?}"),
        Err(err) => err.code().as_str(),
    }
}

/// The fields named by a validation error.
pub fn invalid_fields<T: std::fmt::Debug>(result: Result<T, Error>) -> Vec<String> {
    match result {
        Err(Error::Invalid(fields)) => fields.0.into_iter().map(|f| f.field).collect(),
        other => panic!("expected a validation error, got {other:?}"),
    }
}
