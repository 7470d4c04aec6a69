//! Background jobs the app itself handles (spec §11): permission-graph bootstrap and retries (including the
//! relationships of users created at sign-in, `permissions.sync_user`), and expired-session cleanup. Jobs of
//! kinds without a handler here (billing sync, e-mail) stay queued for the worker that owns them; nothing is
//! acknowledged that was not done.

use crate::app::App;
use crate::permissions::{APPLY_JOB, GraphChange};
use avb_auth::authorizer::bootstrap;
use avb_core::jobs::{Job, kinds};
use avb_core::{Ctx, RequestId, TenantId, UserId};
use avb_tenancy::user::TenantJoin;
use std::time::Duration;

/// Kinds this runner handles.
pub const HANDLED: &[&str] = &[
    kinds::PERMISSIONS_BOOTSTRAP_TENANT,
    kinds::PERMISSIONS_SYNC_USER,
    APPLY_JOB,
    kinds::CLEANUP_SESSIONS,
];

/// How long a reserved job may run before another worker may take it.
const LEASE: Duration = Duration::from_secs(60);

/// Runs the app's own jobs.
#[derive(Debug, Clone)]
pub struct JobRunner {
    app: App,
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

    /// Runs every runnable job of the handled kinds; returns how many ran (successfully or not).
    pub async fn run_until_idle(&self) -> usize {
        let mut ran = 0;
        loop {
            let ctx = self.system_ctx(None);
            let job = match self.app.inner().jobs.reserve(&ctx, HANDLED, LEASE).await {
                Ok(Some(job)) => job,
                Ok(None) => return ran,
                Err(err) => {
                    tracing::warn!(error = %err, "job queue unavailable");
                    return ran;
                }
            };
            ran += 1;
            let outcome = self.run(&job).await;
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

    /// Polls every `interval` until the task is aborted.
    pub fn spawn(self, interval: Duration) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                self.run_until_idle().await;
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
            kinds::CLEANUP_SESSIONS => crate::ops::sessions::cleanup(&self.app, &ctx)
                .await
                .map(|_| ())
                .map_err(|e| e.message),
            other => Err(format!("no handler for job kind {other}")),
        }
    }
}
