//! [`JobQueue`] on the `jobs` table: reservation by `FOR UPDATE SKIP LOCKED`, leases, attempts, retry and
//! dead jobs. Times come from the store's [`avb_core::Clock`], so every replica must keep its clock in sync.

use crate::error;
use crate::sql::get_u32;
use crate::store::{PgStore, Scope, finish};
use crate::tenancy::{outside_scope, visible};
use async_trait::async_trait;
use avb_core::jobs::{Job, JobQueue, JobState, NewJob};
use avb_core::{Ctx, Error, IdGen, JobId, Result, StorageScope, TenantId};
use avb_tenancy::store::Access;
use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};
use std::time::Duration;
use uuid::Uuid;

/// A `Queued` job from `new`, refused when its tenant is outside `scope` (platform jobs need the all-tenants
/// scope, like platform rows) or when it allows no attempt.
pub(crate) fn new_job(new: NewJob, scope: StorageScope, ids: &dyn IdGen, now: DateTime<Utc>) -> Result<Job> {
    if !visible(scope, new.tenant_id) {
        return Err(outside_scope("job", new.tenant_id, ""));
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
        run_at: crate::sql::micros(new.run_at.unwrap_or(now)),
        lease_until: None,
        last_error: None,
        created_at: crate::sql::micros(now),
    })
}

/// Stores a new job in the caller's transaction.
pub(crate) async fn insert(conn: &mut PgConnection, job: &Job) -> Result<JobId> {
    sqlx::query(
        "INSERT INTO jobs (id, kind, tenant_id, payload, state, attempts, max_attempts, run_at, lease_until, \
         last_error, created_at) VALUES ($1, $2, $3, $4, 'queued', 0, $5, $6, NULL, NULL, $7)",
    )
    .bind(job.id.0)
    .bind(job.kind.clone())
    .bind(job.tenant_id.map(|t| t.0))
    .bind(sqlx::types::Json(job.payload.clone()))
    .bind(i64::from(job.max_attempts))
    .bind(job.run_at)
    .bind(job.created_at)
    .execute(conn)
    .await
    .map_err(error::map)?;
    Ok(job.id)
}

fn state_of(name: &str) -> Option<JobState> {
    Some(match name {
        "queued" => JobState::Queued,
        "running" => JobState::Running,
        "done" => JobState::Done,
        "failed" => JobState::Failed,
        _ => return None,
    })
}

fn decode(row: &PgRow) -> std::result::Result<Job, sqlx::Error> {
    let tenant: Option<Uuid> = row.try_get("tenant_id")?;
    Ok(Job {
        id: JobId(row.try_get("id")?),
        kind: row.try_get("kind")?,
        tenant_id: tenant.map(TenantId),
        payload: crate::sql::get_json(row, "payload")?,
        state: crate::sql::get_enum(row, "state", state_of)?,
        attempts: get_u32(row, "attempts")?,
        max_attempts: get_u32(row, "max_attempts")?,
        run_at: row.try_get("run_at")?,
        lease_until: row.try_get("lease_until")?,
        last_error: row.try_get("last_error")?,
        created_at: row.try_get("created_at")?,
    })
}

fn later(now: DateTime<Utc>, by: Duration, field: &'static str) -> Result<DateTime<Utc>> {
    chrono::Duration::from_std(by)
        .ok()
        .and_then(|d| now.checked_add_signed(d))
        .map(crate::sql::micros)
        .ok_or_else(|| Error::invalid(field, "range", "is too long"))
}

fn not_running(id: JobId, state: JobState) -> Error {
    Error::conflict("job", format!("job {id} is not running (it is {state:?})"))
}

impl PgStore {
    /// The job `id` locked for update, as visible in the transaction's scope.
    async fn locked_job(conn: &mut PgConnection, id: JobId) -> Result<Job> {
        let row = sqlx::query("SELECT * FROM jobs WHERE id = $1 FOR UPDATE")
            .bind(id.0)
            .fetch_optional(conn)
            .await
            .map_err(error::map)?
            .ok_or_else(|| Error::not_found("job", id))?;
        decode(&row).map_err(error::map)
    }
}

#[async_trait]
impl JobQueue for PgStore {
    async fn enqueue(&self, ctx: &Ctx, job: NewJob) -> Result<JobId> {
        let scope = ctx.storage_scope()?;
        let job = new_job(job, scope, self.ids.as_ref(), self.clock.now())?;
        let mut tx = self
            .begin_tx(ctx, Scope::Storage(scope), Access::ReadWrite)
            .await?;
        let id = insert(&mut tx, &job).await;
        finish(tx, id).await
    }

    async fn reserve(&self, ctx: &Ctx, kinds: &[&str], lease: Duration) -> Result<Option<Job>> {
        let scope = ctx.storage_scope()?;
        if kinds.is_empty() {
            return Ok(None);
        }
        // Both times are conservative: eligibility is judged as of the call (so a lease about to run out is not
        // taken early), while the new lease starts as late as possible (so the worker gets all of it).
        let now = crate::sql::micros(self.clock.now());
        let kinds: Vec<String> = kinds.iter().map(|k| (*k).to_owned()).collect();
        let mut tx = self
            .begin_tx(ctx, Scope::Storage(scope), Access::ReadWrite)
            .await?;
        let lease_until = match later(self.clock.now(), lease, "lease") {
            Ok(until) => until,
            Err(err) => return finish(tx, Err(err)).await,
        };
        // Running jobs whose last attempt's lease ran out have no attempt left to hand out: they are dead.
        // Then the oldest runnable job (queued and due, or running with an expired lease) that no other worker
        // holds is taken; SKIP LOCKED makes concurrent workers pass over each other's picks.
        let row = sqlx::query(
            "WITH dead AS (
                UPDATE jobs SET state = 'failed', lease_until = NULL,
                       last_error = coalesce(last_error, 'lease expired on the last attempt')
                 WHERE kind = ANY($1) AND state = 'running' AND lease_until <= $2 AND attempts >= max_attempts
             ), next AS (
                SELECT id FROM jobs
                 WHERE kind = ANY($1)
                   AND ((state = 'queued' AND run_at <= $2)
                        OR (state = 'running' AND lease_until <= $2 AND attempts < max_attempts))
                 ORDER BY CASE WHEN state = 'queued' THEN run_at ELSE lease_until END, id
                 LIMIT 1
                 FOR UPDATE SKIP LOCKED
             )
             UPDATE jobs SET state = 'running', attempts = jobs.attempts + 1, lease_until = $3
               FROM next WHERE jobs.id = next.id
             RETURNING jobs.*",
        )
        .bind(kinds)
        .bind(now)
        .bind(lease_until)
        .fetch_optional(&mut *tx)
        .await
        .map_err(error::map);
        let row = finish(tx, row).await?;
        row.as_ref().map(decode).transpose().map_err(error::map)
    }

    async fn ack(&self, ctx: &Ctx, id: JobId) -> Result<()> {
        let scope = ctx.storage_scope()?;
        let mut tx = self
            .begin_tx(ctx, Scope::Storage(scope), Access::ReadWrite)
            .await?;
        let done = async {
            let job = Self::locked_job(&mut tx, id).await?;
            if job.state != JobState::Running {
                return Err(not_running(id, job.state));
            }
            sqlx::query("UPDATE jobs SET state = 'done', lease_until = NULL WHERE id = $1")
                .bind(id.0)
                .execute(&mut *tx)
                .await
                .map_err(error::map)?;
            Ok(())
        }
        .await;
        finish(tx, done).await
    }

    async fn fail(&self, ctx: &Ctx, id: JobId, message: &str, retry_in: Duration) -> Result<JobState> {
        let scope = ctx.storage_scope()?;
        let mut tx = self
            .begin_tx(ctx, Scope::Storage(scope), Access::ReadWrite)
            .await?;
        let failed = async {
            let job = Self::locked_job(&mut tx, id).await?;
            if job.state != JobState::Running {
                return Err(not_running(id, job.state));
            }
            // The retry delay counts from when the failure is recorded.
            let now = self.clock.now();
            let (next, run_at) = if job.attempts >= job.max_attempts {
                (JobState::Failed, job.run_at)
            } else {
                (JobState::Queued, later(now, retry_in, "retry_in")?)
            };
            let state = match next {
                JobState::Failed => "failed",
                _ => "queued",
            };
            sqlx::query(
                "UPDATE jobs SET state = $2, run_at = $3, lease_until = NULL, last_error = $4 WHERE id = $1",
            )
            .bind(id.0)
            .bind(state)
            .bind(run_at)
            .bind(message.to_owned())
            .execute(&mut *tx)
            .await
            .map_err(error::map)?;
            Ok(next)
        }
        .await;
        finish(tx, failed).await
    }

    async fn get(&self, ctx: &Ctx, id: JobId) -> Result<Job> {
        let scope = ctx.storage_scope()?;
        let mut tx = self
            .begin_tx(ctx, Scope::Storage(scope), Access::ReadOnly)
            .await?;
        let row = sqlx::query("SELECT * FROM jobs WHERE id = $1")
            .bind(id.0)
            .fetch_optional(&mut *tx)
            .await
            .map_err(error::map);
        let row = finish(tx, row)
            .await?
            .ok_or_else(|| Error::not_found("job", id))?;
        decode(&row).map_err(error::map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_outside_the_scope_or_without_attempts_are_refused() {
        let ids = avb_core::SequentialIds::default();
        let t = TenantId(Uuid::from_u128(1));
        let now = DateTime::from_timestamp(1_700_000_000, 123_456_789).unwrap_or_default();
        let job = new_job(
            NewJob::new("k", Some(t), serde_json::json!({})),
            StorageScope::Tenant(t),
            &ids,
            now,
        )
        .unwrap();
        assert_eq!(
            job.run_at.timestamp_subsec_nanos(),
            123_456_000,
            "stored precision"
        );
        let other = StorageScope::Tenant(TenantId(Uuid::from_u128(2)));
        assert!(new_job(NewJob::new("k", Some(t), serde_json::json!({})), other, &ids, now).is_err());
        assert!(new_job(NewJob::new("k", None, serde_json::json!({})), other, &ids, now).is_err());
        let mut none = NewJob::new("k", None, serde_json::json!({}));
        none.max_attempts = 0;
        assert!(new_job(none, StorageScope::AllTenants, &ids, now).is_err());
        assert_eq!(state_of("running"), Some(JobState::Running));
        assert_eq!(state_of("zzz"), None);
    }
}
