//! Background jobs (spec §11): enqueued inside the unit of work of the change that needs them (outbox), run
//! at least once by workers with leases.

use crate::ctx::Ctx;
use crate::error::Result;
use crate::ids::{JobId, TenantId};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::time::Duration;

/// Well-known job kinds.
pub mod kinds {
    /// Write the new tenant's relationships to the authorizer.
    pub const PERMISSIONS_BOOTSTRAP_TENANT: &str = "permissions.bootstrap_tenant";
    /// Write a user's tenant-role relationships to the authorizer after the user joined a tenant at sign-in
    /// (created from identity-provider claims); payload `{tenant_id, user_id, roles}`.
    pub const PERMISSIONS_SYNC_USER: &str = "permissions.sync_user";
    /// Create or update the tenant's billing customer (spec `sync_tenant_to_billing`).
    pub const BILLING_SYNC_TENANT: &str = "billing.sync_tenant";
    /// Send the welcome e-mail to a tenant's first admin (spec `send_welcome_email`).
    pub const EMAIL_WELCOME: &str = "email.welcome";
    /// Send an invitation e-mail to an invited user.
    pub const EMAIL_INVITE: &str = "email.invite";
    /// Remove expired sessions (spec §11.3 `cleanup_expired_sessions`).
    pub const CLEANUP_SESSIONS: &str = "sessions.cleanup";
}

/// A job to enqueue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewJob {
    /// Job kind (see [`kinds`]).
    pub kind: String,
    /// Tenant the job works for.
    pub tenant_id: Option<TenantId>,
    /// Arguments.
    pub payload: Value,
    /// Not before this time (`None` = now).
    pub run_at: Option<DateTime<Utc>>,
    /// Attempts before the job is marked failed (dead).
    pub max_attempts: u32,
}

impl NewJob {
    /// A job of `kind` with `payload`, 5 attempts, runnable now.
    pub fn new(kind: &str, tenant_id: Option<TenantId>, payload: Value) -> Self {
        Self {
            kind: kind.to_owned(),
            tenant_id,
            payload,
            run_at: None,
            max_attempts: 5,
        }
    }
}

/// Job lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Waiting to run (or to be retried).
    Queued,
    /// Reserved by a worker whose lease has not expired.
    Running,
    /// Acknowledged.
    Done,
    /// Gave up after `max_attempts`.
    Failed,
}

/// A stored job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// Id.
    pub id: JobId,
    /// Kind.
    pub kind: String,
    /// Tenant.
    pub tenant_id: Option<TenantId>,
    /// Arguments.
    pub payload: Value,
    /// State.
    pub state: JobState,
    /// Attempts started so far (including the current one while running).
    pub attempts: u32,
    /// Attempt limit.
    pub max_attempts: u32,
    /// Earliest next run.
    pub run_at: DateTime<Utc>,
    /// When a running job's lease expires.
    pub lease_until: Option<DateTime<Utc>>,
    /// Last failure message.
    pub last_error: Option<String>,
    /// Enqueue time.
    pub created_at: DateTime<Utc>,
}

/// A durable, at-least-once job queue.
///
/// # Contract
/// - `enqueue` stores a `Queued` job runnable at `run_at` (default now).
/// - `reserve` hands a runnable job of one of `kinds` (oldest `run_at` first) to exactly one caller, marks it
///   `Running`, increments `attempts` and sets a lease; a job whose lease expired without `ack`/`fail` is
///   runnable again (at-least-once).
/// - `ack` marks a running job `Done`; `fail` requeues it after `retry_in`, or marks it `Failed` when
///   `attempts == max_attempts`. Both refuse a job that is not running with `conflict`.
/// - `get` sees any job in the context's storage scope.
#[async_trait]
pub trait JobQueue: Send + Sync + std::fmt::Debug + 'static {
    /// Stores a new job.
    async fn enqueue(&self, ctx: &Ctx, job: NewJob) -> Result<JobId>;
    /// Reserves the next runnable job of one of `kinds`.
    async fn reserve(&self, ctx: &Ctx, kinds: &[&str], lease: Duration) -> Result<Option<Job>>;
    /// Marks a reserved job done.
    async fn ack(&self, ctx: &Ctx, id: JobId) -> Result<()>;
    /// Records a failure; retries after `retry_in` unless attempts are exhausted.
    async fn fail(&self, ctx: &Ctx, id: JobId, error: &str, retry_in: Duration) -> Result<JobState>;
    /// Reads a job.
    async fn get(&self, ctx: &Ctx, id: JobId) -> Result<Job>;
}
