//! Background jobs the app itself handles (spec §11): permission-graph bootstrap and retries (including the
//! relationships of users created at sign-in, `permissions.sync_user`), expired-session cleanup, and — when the
//! app has billing — the tenant sync (`billing.sync_tenant`, enqueued by the tenant service when a tenant is
//! created or its tier changes) and the usage sync (`billing.sync_usage`, run every
//! [`SYNC_INTERVAL`] by [`JobRunner::spawn`], and on demand as a job). Jobs of
//! kinds without a handler here (e-mail; billing when billing is off) stay queued for the worker that owns them;
//! nothing is acknowledged that was not done.
//!
//! Every job, and every periodic usage sync (as kind `billing.sync_usage`), is counted in `avb_celery_tasks_total` and timed in
//! `avb_celery_task_duration_seconds` (the spec's Celery names, kept for its dashboards); every
//! [`AGGREGATE_INTERVAL`] the runner recounts tenants by tier and status for `avb_tenants_total` (the spec's
//! `aggregate-metrics` beat task).

use crate::app::App;
use crate::permissions::{APPLY_JOB, GraphChange};
use avb_auth::authorizer::bootstrap;
use avb_billing::sync::{SYNC_INTERVAL, SYNC_USAGE_JOB, UsageSyncReport};
use avb_core::jobs::{Job, kinds};
use avb_core::{Ctx, RequestId, TenantId, UserId};
use avb_tenancy::model::{TenantStatus, TenantTier};
use avb_tenancy::store::TenantFilter;
use avb_tenancy::user::TenantJoin;
use std::time::Duration;
use tokio::time::Instant;

/// How often [`JobRunner::spawn`] recounts tenants for `avb_tenants_total` (the spec's `aggregate-metrics`
/// schedule).
pub const AGGREGATE_INTERVAL: Duration = Duration::from_secs(300);

/// Kinds this runner always handles.
pub const HANDLED: &[&str] = &[
    kinds::PERMISSIONS_BOOTSTRAP_TENANT,
    kinds::PERMISSIONS_SYNC_USER,
    APPLY_JOB,
    kinds::CLEANUP_SESSIONS,
];

/// Kinds this runner handles when the app has billing.
pub const BILLING_HANDLED: &[&str] = &[kinds::BILLING_SYNC_TENANT, SYNC_USAGE_JOB];

/// How long a reserved job may run before another worker may take it.
const LEASE: Duration = Duration::from_secs(60);

/// Runs the app's own jobs.
#[derive(Debug, Clone)]
pub struct JobRunner {
    app: App,
}

#[derive(serde::Deserialize)]
struct SyncTenant {
    tenant_id: TenantId,
}

#[derive(serde::Deserialize)]
struct BootstrapTenant {
    tenant_id: TenantId,
    admin_user_id: UserId,
}

impl JobRunner {
    /// A runner for `app`.
    pub fn new(app: App) -> Self {
        Self { app }
    }

    /// The kinds this runner reserves: [`HANDLED`], plus [`BILLING_HANDLED`] when the app has billing.
    pub fn kinds(&self) -> Vec<&'static str> {
        let mut kinds = HANDLED.to_vec();
        if self.app.inner().billing.is_some() {
            kinds.extend_from_slice(BILLING_HANDLED);
        }
        kinds
    }

    /// Runs every runnable job of the handled kinds; returns how many ran (successfully or not).
    pub async fn run_until_idle(&self) -> usize {
        let kinds = self.kinds();
        let mut ran = 0;
        loop {
            let ctx = self.system_ctx(None);
            let job = match self.app.inner().jobs.reserve(&ctx, &kinds, LEASE).await {
                Ok(Some(job)) => job,
                Ok(None) => return ran,
                Err(err) => {
                    tracing::warn!(error = %err, "job queue unavailable");
                    return ran;
                }
            };
            ran += 1;
            let started = Instant::now();
            let outcome = self.run(&job).await;
            self.app.inner().metrics.job_finished(
                &job.kind,
                outcome.is_ok(),
                started.elapsed().as_secs_f64(),
            );
            let ctx = self.system_ctx(job.tenant_id);
            let result = match outcome {
                Ok(()) => self.app.inner().jobs.ack(&ctx, job.id).await.map(|_| ()),
                Err(reason) => {
                    tracing::warn!(job = %job.id, kind = %job.kind, %reason, "job failed");
                    let backoff = Duration::from_secs(2u64.saturating_pow(job.attempts.min(10)));
                    self.app
                        .inner()
                        .jobs
                        .fail(&ctx, job.id, &reason, backoff)
                        .await
                        .map(|_| ())
                }
            };
            if let Err(err) = result {
                tracing::warn!(job = %job.id, error = %err, "could not settle job");
            }
        }
    }

    /// One usage sync (spec `sync_usage_to_lago`): ended sessions into the outbox, the outbox to the provider.
    /// `Ok(None)` when the app has no billing.
    ///
    /// # Errors
    /// The sync's error (the provider or the store failed); pending usage stays in the outbox for the next run.
    pub async fn sync_usage(&self) -> Result<Option<UsageSyncReport>, avb_billing::Error> {
        let Some(billing) = &self.app.inner().billing else {
            return Ok(None);
        };
        let report = billing.sync.sync_usage(&self.system_ctx(None)).await?;
        tracing::info!(
            sessions = report.sessions_scanned,
            recorded = report.events_recorded,
            accepted = report.events_accepted,
            duplicates = report.events_duplicate,
            rejected = report.events_rejected,
            "billing usage synced"
        );
        Ok(Some(report))
    }

    /// Recounts tenants by tier and status into `avb_tenants_total` (every combination, zeros included, so a
    /// series that drops to none reads 0 rather than its last value).
    ///
    /// # Errors
    /// The store's error; the gauges keep their previous values.
    pub async fn aggregate_metrics(&self) -> Result<(), avb_tenancy::Error> {
        let ctx = self.system_ctx(None);
        let counts = self
            .app
            .inner()
            .deps
            .read(&ctx, |uow| {
                Box::pin(async move {
                    let mut counts = Vec::with_capacity(TenantTier::ALL.len() * TenantStatus::ALL.len());
                    for &tier in TenantTier::ALL {
                        for &status in TenantStatus::ALL {
                            let filter = TenantFilter {
                                tier: Some(tier),
                                status: Some(status),
                                ..Default::default()
                            };
                            counts.push((tier, status, uow.tenants().count(&filter).await?));
                        }
                    }
                    Ok(counts)
                })
            })
            .await?;
        for (tier, status, count) in counts {
            self.app
                .inner()
                .metrics
                .tenants(tier.as_str(), status.as_str(), count);
        }
        Ok(())
    }

    /// Polls the queue every `interval`, recounts tenants every [`AGGREGATE_INTERVAL`], and runs the usage sync every
    /// [`SYNC_INTERVAL`] when the app has billing (every replica does; runs
    /// that overlap send the same events, which the provider reports as duplicates), until the task is aborted.
    pub fn spawn(self, interval: Duration) -> tokio::task::JoinHandle<()> {
        self.spawn_with_sync_interval(interval, SYNC_INTERVAL)
    }

    /// [`JobRunner::spawn`] with another usage-sync period (tests, operators).
    pub fn spawn_with_sync_interval(
        self,
        interval: Duration,
        sync_interval: Duration,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut sync = tokio::time::interval(sync_interval);
            sync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut aggregate = tokio::time::interval(AGGREGATE_INTERVAL);
            aggregate.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = aggregate.tick() => {
                        if let Err(err) = self.aggregate_metrics().await {
                            tracing::warn!(error = %err, "tenant totals not recounted");
                        }
                    }
                    _ = tick.tick() => {
                        self.run_until_idle().await;
                    }
                    _ = sync.tick(), if self.app.inner().billing.is_some() => {
                        // Counted here, not in `sync_usage`: run as a job, the job loop counts it already.
                        let started = Instant::now();
                        let synced = self.sync_usage().await;
                        self.app.inner().metrics.job_finished(
                            SYNC_USAGE_JOB,
                            synced.is_ok(),
                            started.elapsed().as_secs_f64(),
                        );
                        if let Err(err) = synced {
                            tracing::warn!(error = %err, "billing usage sync failed; pending usage kept for the next run");
                        }
                    }
                }
            }
        })
    }

    fn system_ctx(&self, tenant: Option<TenantId>) -> Ctx {
        Ctx::system(RequestId::generate(self.app.inner().ids.as_ref()), "jobs", tenant)
    }

    /// `permissions.sync_user`: the relationships of a user who joined a tenant at sign-in (the authenticator
    /// writes them at once; this is the durable retry). Writes the user's *current* roles, not the payload's: a
    /// role an admin took away meanwhile (whose removal the users API wrote itself) is not granted back, and a
    /// user deactivated or gone meanwhile gets nothing. `Touch` writes make a repeated run harmless.
    async fn sync_user(&self, ctx: &Ctx, joined: &TenantJoin) -> Result<(), String> {
        let scoped = Ctx::system(ctx.request_id().clone(), "jobs", Some(joined.tenant_id));
        let user = match self.app.inner().users.get(&scoped, joined.user_id).await {
            Ok(user) => user,
            Err(avb_tenancy::Error::NotFound { .. }) => return Ok(()),
            Err(err) => return Err(err.to_string()),
        };
        if !user.is_active || user.tenant_id != Some(joined.tenant_id) {
            return Ok(());
        }
        let updates = bootstrap::user_joined_tenant(joined.tenant_id, user.id, &user.roles);
        if updates.is_empty() {
            return Ok(());
        }
        self.app
            .inner()
            .authorizer
            .write_relationships(&scoped, &updates)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    async fn run(&self, job: &Job) -> Result<(), String> {
        let ctx = self.system_ctx(job.tenant_id);
        match job.kind.as_str() {
            kinds::PERMISSIONS_BOOTSTRAP_TENANT => {
                let args: BootstrapTenant =
                    serde_json::from_value(job.payload.clone()).map_err(|e| e.to_string())?;
                GraphChange::TenantCreated {
                    tenant: args.tenant_id,
                    admin: args.admin_user_id,
                }
                .write(&self.app, &ctx)
                .await
                .map_err(|e| e.to_string())
            }
            kinds::PERMISSIONS_SYNC_USER => {
                let joined: TenantJoin =
                    serde_json::from_value(job.payload.clone()).map_err(|e| e.to_string())?;
                self.sync_user(&ctx, &joined).await
            }
            APPLY_JOB => {
                let change: GraphChange =
                    serde_json::from_value(job.payload.clone()).map_err(|e| e.to_string())?;
                change.write(&self.app, &ctx).await.map_err(|e| e.to_string())
            }
            kinds::BILLING_SYNC_TENANT => {
                let billing = self
                    .app
                    .inner()
                    .billing
                    .as_ref()
                    .ok_or_else(|| "billing is off".to_owned())?;
                let args: SyncTenant =
                    serde_json::from_value(job.payload.clone()).map_err(|e| e.to_string())?;
                let ctx = self.system_ctx(Some(args.tenant_id));
                billing
                    .sync
                    .sync_tenant(&ctx, args.tenant_id)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }
            SYNC_USAGE_JOB => self.sync_usage().await.map(|_| ()).map_err(|e| e.to_string()),
            kinds::CLEANUP_SESSIONS => crate::ops::sessions::cleanup(&self.app, &ctx)
                .await
                .map(|_| ())
                .map_err(|e| e.message),
            other => Err(format!("no handler for job kind {other}")),
        }
    }
}
