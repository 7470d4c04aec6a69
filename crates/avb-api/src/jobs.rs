//! Background jobs the app itself handles (spec §11): permission-graph bootstrap and retries, and expired-session
//! cleanup. Jobs of kinds without a handler here (billing sync, e-mail) stay queued for the worker that owns
//! them; nothing is acknowledged that was not done.

use crate::app::App;
use crate::permissions::{APPLY_JOB, GraphChange};
use avb_core::jobs::{Job, kinds};
use avb_core::{Ctx, RequestId, TenantId, UserId};
use std::time::Duration;

/// Kinds this runner handles.
pub const HANDLED: &[&str] = &[
    kinds::PERMISSIONS_BOOTSTRAP_TENANT,
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
