//! [`JobQueue`] over the store's shared state: jobs enqueued by a unit of work join the queue at its commit.

use super::MemoryStore;
use super::state::visible;
use async_trait::async_trait;
use avb_core::jobs::{Job, JobQueue, JobState, NewJob};
use avb_core::{Ctx, Error, IdGen, JobId, Result, StorageScope};
use chrono::{DateTime, Utc};
use std::time::Duration;

/// A `Queued` job from `new`, refused when its tenant is outside `scope` (platform jobs need the all-tenants
/// scope, like platform rows).
pub(super) fn new_job(new: NewJob, scope: StorageScope, ids: &dyn IdGen, now: DateTime<Utc>) -> Result<Job> {
    if !visible(scope, new.tenant_id) {
        return Err(Error::not_found(
            "tenant",
            new.tenant_id.map(|t| t.to_string()).unwrap_or_default(),
        ));
    }
    if new.max_attempts == 0 {
        return Err(Error::invalid("max_attempts", "range", "must be at least 1"));
    }
    Ok(Job {
        id: JobId::generate(ids),
        kind: new.kind,
        tenant_id: new.tenant_id,
        payload: new.payload,
        state: JobState::Queued,
        attempts: 0,
        max_attempts: new.max_attempts,
        run_at: new.run_at.unwrap_or(now),
        lease_until: None,
        last_error: None,
        created_at: now,
    })
}

fn lease_end(now: DateTime<Utc>, lease: Duration) -> Result<DateTime<Utc>> {
    chrono::Duration::from_std(lease)
        .ok()
        .and_then(|d| now.checked_add_signed(d))
        .ok_or_else(|| Error::invalid("lease", "range", "is too long"))
}

/// When `job` may run next, if it may run at `now`: queued and due, or running with an expired lease.
fn ready_at(job: &Job, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    match job.state {
        JobState::Queued => Some(job.run_at).filter(|at| *at <= now),
        JobState::Running => job.lease_until.filter(|until| *until <= now),
        JobState::Done | JobState::Failed => None,
    }
}

/// A job the caller may see: in scope, else `not_found`.
fn visible_job(job: Option<&Job>, scope: StorageScope, id: JobId) -> Result<Job> {
    job.filter(|j| visible(scope, j.tenant_id))
        .cloned()
        .ok_or_else(|| Error::not_found("job", id))
}

fn not_running(id: JobId, state: JobState) -> Error {
    Error::conflict("job", format!("job {id} is not running (it is {state:?})"))
}

#[async_trait]
impl JobQueue for MemoryStore {
    async fn enqueue(&self, ctx: &Ctx, job: NewJob) -> Result<JobId> {
        let job = new_job(job, ctx.storage_scope()?, self.ids.as_ref(), self.clock.now())?;
        let id = job.id;
        self.shared.modify(|state| {
            state.jobs.insert(id, job);
            Ok(id)
        })
    }

    async fn reserve(&self, ctx: &Ctx, kinds: &[&str], lease: Duration) -> Result<Option<Job>> {
        let scope = ctx.storage_scope()?;
        let now = self.clock.now();
        let lease_until = lease_end(now, lease)?;
        self.shared.modify(|state| {
            let mut candidates: Vec<(DateTime<Utc>, JobId)> = state
                .jobs
                .values()
                .filter(|j| visible(scope, j.tenant_id) && kinds.contains(&j.kind.as_str()))
                .filter_map(|j| ready_at(j, now).map(|at| (at, j.id)))
                .collect();
            candidates.sort();
            for (_, id) in candidates {
                let Some(mut job) = state.jobs.get(&id).cloned() else {
                    continue;
                };
                if job.attempts >= job.max_attempts {
                    // Its last attempt's lease ran out: no attempt is left to hand out.
                    job.state = JobState::Failed;
                    job.lease_until = None;
                    job.last_error
                        .get_or_insert_with(|| "lease expired on the last attempt".into());
                    state.jobs.insert(id, job);
                    continue;
                }
                job.state = JobState::Running;
                job.attempts = job.attempts.saturating_add(1);
                job.lease_until = Some(lease_until);
                state.jobs.insert(id, job.clone());
                return Ok(Some(job));
            }
            Ok(None)
        })
    }

    async fn ack(&self, ctx: &Ctx, id: JobId) -> Result<()> {
        let scope = ctx.storage_scope()?;
        self.shared.modify(|state| {
            let mut job = visible_job(state.jobs.get(&id), scope, id)?;
            if job.state != JobState::Running {
                return Err(not_running(id, job.state));
            }
            job.state = JobState::Done;
            job.lease_until = None;
            state.jobs.insert(id, job);
            Ok(())
        })
    }

    async fn fail(&self, ctx: &Ctx, id: JobId, error: &str, retry_in: Duration) -> Result<JobState> {
        let scope = ctx.storage_scope()?;
        let now = self.clock.now();
        self.shared.modify(|state| {
            let mut job = visible_job(state.jobs.get(&id), scope, id)?;
            if job.state != JobState::Running {
                return Err(not_running(id, job.state));
            }
            job.last_error = Some(error.to_owned());
            job.lease_until = None;
            if job.attempts >= job.max_attempts {
                job.state = JobState::Failed;
            } else {
                job.state = JobState::Queued;
                job.run_at = lease_end(now, retry_in)?;
            }
            let next = job.state;
            state.jobs.insert(id, job);
            Ok(next)
        })
    }

    async fn get(&self, ctx: &Ctx, id: JobId) -> Result<Job> {
        let scope = ctx.storage_scope()?;
        visible_job(self.shared.snapshot().jobs.get(&id), scope, id)
    }
}
