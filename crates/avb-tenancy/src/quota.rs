//! Tenant quotas (spec §5.1 limits): checked inside the unit of work that creates the resource, after locking the
//! tenant row, so concurrent creations cannot overshoot and a refusal writes nothing.

use crate::error::{Error, Result};
use crate::model::{Tenant, TenantStatus};
use crate::store::{ApiKeyFilter, ProjectFilter, SessionFilter, UnitOfWork, UserFilter};
use avb_core::TenantId;
use chrono::{DateTime, Datelike, TimeZone, Utc};

/// A limited resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quota {
    /// Active users (`max_users`).
    Users,
    /// Projects (`max_projects`).
    Projects,
    /// Non-revoked API keys (`max_api_keys`).
    ApiKeys,
    /// Sessions created this calendar month, UTC (`max_sessions_per_month`).
    SessionsPerMonth,
}

impl Quota {
    /// Name used in errors and usage reports.
    pub const fn name(self) -> &'static str {
        match self {
            Quota::Users => "users",
            Quota::Projects => "projects",
            Quota::ApiKeys => "api_keys",
            Quota::SessionsPerMonth => "sessions_per_month",
        }
    }

    /// The tenant's limit for this quota.
    pub fn limit(self, tenant: &Tenant) -> u64 {
        u64::from(match self {
            Quota::Users => tenant.limits.max_users,
            Quota::Projects => tenant.limits.max_projects,
            Quota::ApiKeys => tenant.limits.max_api_keys,
            Quota::SessionsPerMonth => tenant.limits.max_sessions_per_month,
        })
    }
}

/// Midnight UTC on the first day of `now`'s month.
pub fn month_start(now: DateTime<Utc>) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(now.year(), now.month(), 1, 0, 0, 0)
        .single()
        .unwrap_or(now)
}

/// Current usage of `quota` in the unit of work's tenant scope.
pub async fn usage(uow: &mut dyn UnitOfWork, quota: Quota, now: DateTime<Utc>) -> Result<u64> {
    Ok(match quota {
        Quota::Users => {
            uow.users()
                .count(&UserFilter {
                    is_active: Some(true),
                    ..Default::default()
                })
                .await?
        }
        Quota::Projects => uow.projects().count(&ProjectFilter::default()).await?,
        Quota::ApiKeys => {
            uow.api_keys()
                .count(&ApiKeyFilter {
                    revoked: Some(false),
                    ..Default::default()
                })
                .await?
        }
        Quota::SessionsPerMonth => {
            uow.sessions()
                .count(&SessionFilter {
                    created_from: Some(month_start(now)),
                    ..Default::default()
                })
                .await?
        }
    })
}

/// Locks `tenant`, checks it may create resources (not suspended, not deleted) and that one more `quota`
/// resource fits; returns the locked tenant. Call before inserting, in the same unit of work.
pub async fn reserve(
    uow: &mut dyn UnitOfWork,
    tenant: TenantId,
    quota: Quota,
    now: DateTime<Utc>,
) -> Result<Tenant> {
    let record = match uow.tenants().lock(tenant).await {
        Ok(t) => t,
        Err(avb_core::Error::NotFound { .. }) => return Err(Error::TenantNotFound(tenant.to_string())),
        Err(other) => return Err(other.into()),
    };
    match record.status {
        TenantStatus::Deleted => return Err(Error::TenantNotFound(tenant.to_string())),
        TenantStatus::Suspended => return Err(Error::TenantSuspended(record.name.clone())),
        TenantStatus::Active | TenantStatus::Pending => {}
    }
    let limit = quota.limit(&record);
    let current = usage(uow, quota, now).await?;
    if current >= limit {
        return Err(Error::LimitExceeded {
            resource: quota.name(),
            limit,
            current,
        });
    }
    Ok(record)
}
