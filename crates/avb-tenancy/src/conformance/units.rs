//! Checks of the unit of work itself: atomic commit, rollback, read-only units, serialisable concurrency, and
//! the audit trail and job outbox written inside units.

use super::fixtures;
use super::{
    CheckResult, Step, StoreUnderTest, admin, begin, count, create_tenant, create_tenant_with, ensure,
    ensure_err, get, insert, member, within,
};
use crate::model::{ApiKey, Project};
use crate::quota::{Quota, reserve};
use crate::store::{Access, ProjectFilter};
use avb_core::audit::{AuditAction, AuditEntry, NewAuditEntry, verify_chain};
use avb_core::jobs::{JobState, NewJob};
use avb_core::{Clock, Ctx, Error as StoreError, ProjectId, SystemClock, TenantId};
use std::sync::Arc;
use std::time::Duration;

const LEASE: Duration = Duration::from_secs(30);

/// Keeps a unit open a moment between its reads and writes, as real work would, so that an adapter which
/// does not serialise units lets concurrent ones overlap and the race shows.
async fn think() {
    tokio::time::sleep(Duration::from_millis(20)).await;
}

fn random_kind() -> String {
    format!("conformance.{}", uuid::Uuid::new_v4())
}

fn audit(n: usize) -> NewAuditEntry {
    NewAuditEntry::new(AuditAction::Update, "project", n).description(format!("change {n}"))
}

async fn chain_of(s: &StoreUnderTest, tenant: TenantId) -> Result<Vec<AuditEntry>, String> {
    s.audit.chain(&admin(), Some(tenant)).await.step("read chain")
}

/// Appends `count` entries in one committed unit.
async fn append_committed(s: &StoreUnderTest, ctx: &Ctx, count: usize) -> Result<Vec<AuditEntry>, String> {
    let mut uow = begin(s, ctx, Access::ReadWrite).await?;
    let mut entries = Vec::new();
    for n in 0..count {
        entries.push(uow.append_audit(audit(n)).await.step("append audit")?);
    }
    uow.commit().await.step("commit audit")?;
    Ok(entries)
}

/// Nothing a unit writes (records, audit entries, jobs) is visible to others before `commit`; all of it is
/// afterwards.
pub async fn commit_publishes_records_audit_and_jobs_together(s: StoreUnderTest) -> CheckResult {
    let tenant = create_tenant(&s).await?;
    let (ctx, t) = (member(tenant.id), tenant.id);
    let kind = random_kind();
    let mut uow = begin(&s, &ctx, Access::ReadWrite).await?;
    let project = uow
        .projects()
        .insert(fixtures::project(t, "Atomic", 1))
        .await
        .step("insert")?;
    let entry = uow
        .append_audit(NewAuditEntry::new(AuditAction::Create, "project", project.id))
        .await;
    let entry = entry.step("append audit")?;
    let job = uow
        .enqueue_job(NewJob::new(&kind, Some(t), serde_json::json!({})))
        .await
        .step("enqueue")?;

    ensure_err!(
        get::<Project>(&s, &ctx, project.id).await,
        StoreError::NotFound { .. },
        "uncommitted project"
    );
    ensure!(
        chain_of(&s, t).await?.is_empty(),
        "an uncommitted audit entry is visible"
    );
    ensure_err!(
        s.jobs.get(&admin(), job).await,
        StoreError::NotFound { .. },
        "uncommitted job"
    );
    let early = s
        .jobs
        .reserve(&admin(), &[kind.as_str()], LEASE)
        .await
        .step("reserve before commit")?;
    ensure!(early.is_none(), "a worker reserved a job of an uncommitted unit");

    uow.commit().await.step("commit")?;
    let stored: Project = get(&s, &ctx, project.id).await.step("get committed project")?;
    ensure!(
        stored == project,
        "the committed project reads back as {stored:?}"
    );
    ensure!(
        chain_of(&s, t).await? == vec![entry],
        "the committed chain is not the appended entry"
    );
    let queued = s.jobs.get(&admin(), job).await.step("get committed job")?;
    ensure!(
        queued.state == JobState::Queued && queued.tenant_id == Some(t),
        "committed job is {queued:?}"
    );
    let reserved = s
        .jobs
        .reserve(&admin(), &[kind.as_str()], LEASE)
        .await
        .step("reserve after commit")?;
    ensure!(
        reserved.is_some_and(|j| j.id == job),
        "the committed job was not reservable"
    );
    Ok(())
}

async fn discarded_units_leave_nothing(s: &StoreUnderTest, roll_back: bool) -> CheckResult {
    let tenant = create_tenant(s).await?;
    let (ctx, t) = (member(tenant.id), tenant.id);
    let first = append_committed(s, &ctx, 1).await?;
    let kind = random_kind();

    let mut uow = begin(s, &ctx, Access::ReadWrite).await?;
    let project = uow
        .projects()
        .insert(fixtures::project(t, "Ghost", 1))
        .await
        .step("insert")?;
    uow.append_audit(audit(1)).await.step("append audit")?;
    let job = uow
        .enqueue_job(NewJob::new(&kind, Some(t), serde_json::json!({})))
        .await
        .step("enqueue")?;
    if roll_back {
        uow.rollback().await.step("rollback")?;
    } else {
        drop(uow);
    }

    ensure_err!(
        get::<Project>(s, &ctx, project.id).await,
        StoreError::NotFound { .. },
        "discarded project"
    );
    ensure!(
        chain_of(s, t).await? == first,
        "a discarded audit entry reached the chain"
    );
    ensure_err!(
        s.jobs.get(&admin(), job).await,
        StoreError::NotFound { .. },
        "discarded job"
    );
    let reserved = s
        .jobs
        .reserve(&admin(), &[kind.as_str()], LEASE)
        .await
        .step("reserve")?;
    ensure!(reserved.is_none(), "a discarded job was reserved");

    let next = append_committed(s, &ctx, 1).await?;
    ensure!(
        next.first().is_some_and(|e| e.sequence == 2),
        "the chain has a gap after a discarded append"
    );
    verify_chain(&chain_of(s, t).await?).step("verify after a discarded append")?;
    Ok(())
}

/// `rollback` discards the unit's records, audit entries and jobs; the audit chain continues without a gap.
pub async fn rollback_discards_records_audit_and_jobs(s: StoreUnderTest) -> CheckResult {
    discarded_units_leave_nothing(&s, true).await
}

/// Dropping a unit without commit discards it like `rollback`.
pub async fn dropping_a_unit_discards_it(s: StoreUnderTest) -> CheckResult {
    discarded_units_leave_nothing(&s, false).await
}

/// A write that fails (conflict, missing reference, stale version) changes nothing, and the unit can go on
/// writing and commit.
pub async fn failed_writes_leave_the_unit_usable(s: StoreUnderTest) -> CheckResult {
    let tenant = create_tenant(&s).await?;
    let (ctx, t) = (member(tenant.id), tenant.id);
    let taken = insert(&s, &ctx, fixtures::project(t, "Taken", 1))
        .await
        .step("insert Taken")?;

    let mut uow = begin(&s, &ctx, Access::ReadWrite).await?;
    let first = uow
        .projects()
        .insert(fixtures::project(t, "First", 2))
        .await
        .step("insert First")?;
    let dup = uow.projects().insert(fixtures::project(t, "taken", 3)).await;
    ensure_err!(dup, StoreError::Conflict { .. }, "a duplicate name");
    let orphan = uow
        .api_keys()
        .insert(fixtures::api_key(t, Some(ProjectId(uuid::Uuid::now_v7())), 1))
        .await;
    ensure_err!(orphan, StoreError::NotFound { .. }, "a key of an unknown project");
    let mut stale = taken.clone();
    stale.version = 7;
    ensure_err!(
        uow.projects().update(stale).await,
        StoreError::VersionConflict { .. },
        "a stale update"
    );
    let second = uow
        .projects()
        .insert(fixtures::project(t, "Second", 4))
        .await
        .step("insert after failures")?;
    let reread = uow.projects().get(first.id).await.step("get First")?;
    ensure!(reread == first, "a failed write changed an earlier write");
    uow.commit().await.step("commit")?;

    for project in [&taken, &first, &second] {
        let stored: Project = get(&s, &ctx, project.id).await.step("get")?;
        ensure!(
            stored == *project,
            "after commit {} reads back as {stored:?}",
            project.name
        );
    }
    let total = count::<Project>(&s, &ctx, &ProjectFilter::default())
        .await
        .step("count")?;
    ensure!(total == 3, "the tenant has {total} projects, expected 3");
    let keys = count::<ApiKey>(&s, &ctx, &Default::default())
        .await
        .step("count keys")?;
    ensure!(keys == 0, "a refused key was stored");
    Ok(())
}

/// A read-only unit refuses audit appends and jobs with `internal_error`, and an open one never keeps a
/// writer waiting.
pub async fn read_only_units_refuse_writes_and_never_block_writers(s: StoreUnderTest) -> CheckResult {
    let tenant = create_tenant(&s).await?;
    let (ctx, t) = (member(tenant.id), tenant.id);
    let mut ro = begin(&s, &ctx, Access::ReadOnly).await?;
    ensure_err!(
        ro.append_audit(audit(1)).await,
        StoreError::Internal(_),
        "read-only audit append"
    );
    let job = NewJob::new(&random_kind(), Some(t), serde_json::json!({}));
    ensure_err!(
        ro.enqueue_job(job).await,
        StoreError::Internal(_),
        "read-only enqueue"
    );
    let _ = ro
        .projects()
        .count(&ProjectFilter::default())
        .await
        .step("read-only count")?;

    let write = async {
        let mut uow = s.store.begin(&ctx, Access::ReadWrite).await?;
        let project = uow
            .projects()
            .insert(fixtures::project(t, "Unblocked", 1))
            .await?;
        uow.commit().await?;
        Ok::<_, StoreError>(project)
    };
    let project = within(5, "a write while a read-only unit is open", write)
        .await?
        .step("write")?;
    ro.rollback().await.step("end read-only unit")?;
    let stored: Project = get(&s, &ctx, project.id).await.step("get")?;
    ensure!(stored == project, "the write reads back as {stored:?}");
    ensure!(
        chain_of(&s, t).await?.is_empty(),
        "a refused audit append was stored"
    );
    Ok(())
}

/// `quota::reserve` (which locks the tenant) plus insert in concurrent units never overshoots: with a limit
/// of L, exactly L of N concurrent creations succeed and the rest get `LimitExceeded`.
pub async fn concurrent_quota_reservations_never_overshoot(s: StoreUnderTest) -> CheckResult {
    const LIMIT: u32 = 3;
    const ATTEMPTS: usize = 12;
    let tenant = create_tenant_with(&s, |t| t.limits.max_projects = LIMIT).await?;
    let t = tenant.id;
    let tasks = (0..ATTEMPTS).map(|n| {
        let store = Arc::clone(&s.store);
        tokio::spawn(async move {
            let mut uow = store.begin(&member(t), Access::ReadWrite).await?;
            reserve(uow.as_mut(), t, Quota::Projects, SystemClock.now()).await?;
            think().await;
            uow.projects()
                .insert(fixtures::project(t, &format!("Project {n}"), 1))
                .await?;
            uow.commit().await?;
            Ok::<_, crate::Error>(())
        })
    });
    let mut created = 0;
    for task in futures::future::join_all(tasks).await {
        match task.step("creation task")? {
            Ok(()) => created += 1,
            Err(crate::Error::LimitExceeded { limit, .. }) if limit == u64::from(LIMIT) => {}
            Err(other) => {
                return Err(format!(
                    "a creation failed with {other:?} instead of LimitExceeded"
                ));
            }
        }
    }
    ensure!(
        created == LIMIT,
        "{created} of {ATTEMPTS} concurrent creations passed a limit of {LIMIT}"
    );
    let total = count::<Project>(&s, &member(t), &ProjectFilter::default())
        .await
        .step("count")?;
    ensure!(
        total == u64::from(LIMIT),
        "the tenant holds {total} projects with a limit of {LIMIT}"
    );
    Ok(())
}

/// Of several concurrent updates made from the same version, exactly one wins; the others get
/// `VersionConflict` and the record ends at version 2 with the winner's content.
pub async fn concurrent_updates_from_one_version_conflict(s: StoreUnderTest) -> CheckResult {
    let tenant = create_tenant(&s).await?;
    let (ctx, t) = (member(tenant.id), tenant.id);
    let project = insert(&s, &ctx, fixtures::project(t, "Contended", 1))
        .await
        .step("insert")?;
    let tasks = (0..6).map(|n| {
        let store = Arc::clone(&s.store);
        let mut changed = project.clone();
        changed.description = format!("writer {n}");
        let ctx = ctx.clone();
        tokio::spawn(async move {
            let mut uow = store.begin(&ctx, Access::ReadWrite).await?;
            think().await;
            let stored = uow.projects().update(changed).await?;
            think().await;
            uow.commit().await?;
            Ok::<_, StoreError>(stored)
        })
    });
    let mut winners = Vec::new();
    for task in futures::future::join_all(tasks).await {
        match task.step("update task")? {
            Ok(stored) => winners.push(stored),
            Err(StoreError::VersionConflict {
                expected: 1,
                actual: 2,
                ..
            }) => {}
            Err(other) => return Err(format!("a concurrent update failed with {other:?}")),
        }
    }
    ensure!(
        winners.len() == 1,
        "{} concurrent updates from version 1 succeeded",
        winners.len()
    );
    let stored: Project = get(&s, &ctx, project.id).await.step("get")?;
    ensure!(
        winners.first() == Some(&stored) && stored.version == 2,
        "final record {stored:?}"
    );
    Ok(())
}

/// `append_audit` seals entries from the unit's context and links them at the end of the tenant's chain,
/// across units and together with sink appends; the chain verifies.
pub async fn audit_in_units_extends_a_verified_chain(s: StoreUnderTest) -> CheckResult {
    let tenant = create_tenant(&s).await?;
    let (ctx, t) = (member(tenant.id), tenant.id);
    let first = append_committed(&s, &ctx, 3).await?;
    for (n, entry) in first.iter().enumerate() {
        ensure!(
            entry.sequence == n as u64 + 1,
            "entry {n} has sequence {}",
            entry.sequence
        );
        ensure!(entry.tenant_id == Some(t), "entry tenant {:?}", entry.tenant_id);
        ensure!(
            entry.request_id == ctx.request_id().as_str(),
            "entry request id {}",
            entry.request_id
        );
        ensure!(
            entry.actor_id == ctx.principal().actor_id(),
            "entry actor {:?}",
            entry.actor_id
        );
        ensure!(
            entry.hash == entry.compute_hash(),
            "entry {n} carries a wrong hash"
        );
    }
    ensure!(
        chain_of(&s, t).await? == first,
        "the chain differs from the appended entries"
    );
    let later = append_committed(&s, &member(t), 1).await?;
    let sunk = s
        .audit_sink
        .record(&member(t), audit(9))
        .await
        .step("sink append")?;
    let chain = chain_of(&s, t).await?;
    ensure!(
        chain.len() == 5,
        "the chain holds {} entries, expected 5",
        chain.len()
    );
    ensure!(
        chain.get(3) == later.first() && chain.get(4) == Some(&sunk),
        "later appends are out of place"
    );
    verify_chain(&chain).step("verify")?;
    Ok(())
}

/// Concurrent units and sink appends on one tenant's chain never fork it.
pub async fn concurrent_audit_appends_never_fork_a_chain(s: StoreUnderTest) -> CheckResult {
    let tenant = create_tenant(&s).await?;
    let t = tenant.id;
    let units = (0..8).map(|_| {
        let store = Arc::clone(&s.store);
        tokio::spawn(async move {
            let mut uow = store.begin(&member(t), Access::ReadWrite).await?;
            uow.append_audit(audit(1)).await?;
            think().await;
            uow.append_audit(audit(2)).await?;
            uow.commit().await
        })
    });
    let sinks = (0..8).map(|n| {
        let sink = Arc::clone(&s.audit_sink);
        tokio::spawn(async move { sink.record(&member(t), audit(n)).await.map(|_| ()) })
    });
    let (units, sinks) =
        futures::future::join(futures::future::join_all(units), futures::future::join_all(sinks)).await;
    for task in units.into_iter().chain(sinks) {
        task.step("append task")?.step("append")?;
    }
    let chain = chain_of(&s, t).await?;
    ensure!(
        chain.len() == 24,
        "24 concurrent appends left {} entries",
        chain.len()
    );
    verify_chain(&chain).step("verify after concurrent appends")?;
    Ok(())
}

/// The hashes of a stored chain are real: editing an entry (or re-hashing the edit) breaks verification.
pub async fn tampering_with_a_stored_chain_is_detected(s: StoreUnderTest) -> CheckResult {
    let tenant = create_tenant(&s).await?;
    append_committed(&s, &member(tenant.id), 3).await?;
    let chain = chain_of(&s, tenant.id).await?;
    verify_chain(&chain).step("untouched chain")?;
    let mut edited = chain.clone();
    if let Some(entry) = edited.get_mut(1) {
        entry.resource_id = "someone else".into();
    }
    let broken = verify_chain(&edited);
    ensure!(
        broken.as_ref().is_err_and(|b| b.sequence == 2),
        "an edited entry went unnoticed: {broken:?}"
    );
    let mut rehashed = edited;
    if let Some(entry) = rehashed.get_mut(1) {
        entry.hash = entry.compute_hash();
    }
    let broken = verify_chain(&rehashed);
    ensure!(
        broken.as_ref().is_err_and(|b| b.sequence == 3),
        "a re-hashed edit went unnoticed: {broken:?}"
    );
    Ok(())
}

/// A unit cannot append to the chain of a tenant outside its scope, nor enqueue a job for it.
pub async fn audit_outside_the_scope_is_refused(s: StoreUnderTest) -> CheckResult {
    let (a, b) = (create_tenant(&s).await?, create_tenant(&s).await?);
    let mut uow = begin(&s, &member(a.id), Access::ReadWrite).await?;
    ensure_err!(
        uow.append_audit(audit(1).tenant(b.id)).await,
        StoreError::NotFound { .. },
        "append to b's chain"
    );
    let job = NewJob::new(&random_kind(), Some(b.id), serde_json::json!({}));
    ensure_err!(
        uow.enqueue_job(job).await,
        StoreError::NotFound { .. },
        "enqueue for tenant b"
    );
    uow.commit().await.step("commit")?;
    ensure!(
        chain_of(&s, b.id).await?.is_empty(),
        "a refused append reached b's chain"
    );
    Ok(())
}

/// A job enqueued in a unit is stored `Queued` with its kind, tenant and payload, and workers can reserve it
/// only after commit.
pub async fn jobs_enqueued_in_a_unit_wait_for_commit(s: StoreUnderTest) -> CheckResult {
    let tenant = create_tenant(&s).await?;
    let t = tenant.id;
    let kind = random_kind();
    let payload = serde_json::json!({ "tenant": t });
    let mut uow = begin(&s, &member(t), Access::ReadWrite).await?;
    let id = uow
        .enqueue_job(NewJob::new(&kind, Some(t), payload.clone()))
        .await
        .step("enqueue")?;
    let early = s
        .jobs
        .reserve(&admin(), &[kind.as_str()], LEASE)
        .await
        .step("reserve before commit")?;
    ensure!(early.is_none(), "a job was reserved before its unit committed");
    uow.commit().await.step("commit")?;
    let job = s.jobs.get(&member(t), id).await.step("get")?;
    ensure!(
        job.state == JobState::Queued && job.attempts == 0,
        "committed job is {job:?}"
    );
    ensure!(
        job.kind == kind && job.tenant_id == Some(t) && job.payload == payload,
        "job fields lost: {job:?}"
    );
    let reserved = s
        .jobs
        .reserve(&admin(), &[kind.as_str()], LEASE)
        .await
        .step("reserve")?;
    ensure!(
        reserved.is_some_and(|j| j.id == id),
        "the committed job was not reservable"
    );
    Ok(())
}
