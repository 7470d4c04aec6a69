//! Conformance checks for [`JobQueue`] adapters: one `pub async fn` per contract point, and
//! [`job_queue_conformance!`](crate::job_queue_conformance) to run them all as `#[tokio::test]`s.
//!
//! Every check enqueues jobs of its own random kind, so it ignores whatever else the queue holds. Time-based
//! checks use short real leases and delays (under a second), so the queue must run on the system clock.

use crate::jobs::{JobQueue, JobState, NewJob};
use crate::{Clock, Ctx, Error, JobId, RequestId, SystemClock, TenantId, UuidV7Ids};
use chrono::{DateTime, Utc};
use std::collections::BTreeSet;
use std::fmt::Display;
use std::sync::Arc;
use std::time::Duration;

/// The outcome of one check: `Err` describes the first broken contract point.
pub type CheckResult = Result<(), String>;

/// Adds the step that failed to an adapter error.
trait Step<T> {
    fn step(self, what: &str) -> Result<T, String>;
}

impl<T, E: Display> Step<T> for Result<T, E> {
    fn step(self, what: &str) -> Result<T, String> {
        self.map_err(|err| format!("{what}: {err}"))
    }
}

macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}

/// Runs every check of this module as its own `#[tokio::test]` against the queue made by `$factory`, an
/// expression whose `.await` yields an `Arc<dyn JobQueue>` (or an `Arc` of a concrete queue). The calling crate
/// needs `tokio` (with `macros` and `rt-multi-thread`) as a dev-dependency.
///
/// ```text
/// avb_core::job_queue_conformance!(async { std::sync::Arc::new(MemoryStore::new()) });
/// ```
#[macro_export]
macro_rules! job_queue_conformance {
    ($factory:expr) => {
        $crate::job_queue_conformance!(@tests $factory;
            enqueued_jobs_are_queued_and_readable,
            unknown_jobs_are_not_found,
            reserve_hands_a_job_to_exactly_one_worker,
            concurrent_workers_reserve_each_job_once,
            reserve_takes_the_oldest_run_at_first,
            jobs_wait_for_their_run_at,
            reserve_only_returns_the_requested_kinds,
            expired_leases_make_jobs_runnable_again,
            ack_marks_done_and_refuses_jobs_not_running,
            fail_retries_until_attempts_run_out,
            jobs_are_scoped_to_their_tenant,
        );
    };
    (@tests $factory:expr; $($check:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let queue: ::std::sync::Arc<dyn $crate::jobs::JobQueue> = $factory.await;
                if let Err(failure) = $crate::conformance::jobs::$check(queue).await {
                    panic!("{}", failure);
                }
            }
        )*
    };
}

fn system() -> Ctx {
    Ctx::system(RequestId::generate(&UuidV7Ids), "conformance", None)
}

fn scoped(tenant: TenantId) -> Ctx {
    Ctx::system(RequestId::generate(&UuidV7Ids), "conformance", Some(tenant))
}

fn random_tenant() -> TenantId {
    TenantId(uuid::Uuid::new_v4())
}

fn random_kind() -> String {
    format!("conformance.{}", uuid::Uuid::new_v4())
}

fn now() -> DateTime<Utc> {
    SystemClock.now()
}

fn job(kind: &str) -> NewJob {
    NewJob::new(kind, None, serde_json::json!({ "n": 1 }))
}

const LEASE: Duration = Duration::from_secs(30);
/// Tolerated clock difference between this process and a remote queue.
const SKEW: chrono::TimeDelta = chrono::TimeDelta::seconds(2);

/// `enqueue` stores a `Queued` job with no attempts, runnable now, and `get` returns it as enqueued.
pub async fn enqueued_jobs_are_queued_and_readable(queue: Arc<dyn JobQueue>) -> CheckResult {
    let ctx = system();
    let kind = random_kind();
    let tenant = random_tenant();
    let before = now();
    let mut new = NewJob::new(&kind, Some(tenant), serde_json::json!({ "tenant": tenant }));
    new.max_attempts = 3;
    let id = queue.enqueue(&ctx, new.clone()).await.step("enqueue")?;
    let stored = queue.get(&ctx, id).await.step("get")?;
    ensure!(stored.id == id, "get returned job {} for {id}", stored.id);
    ensure!(
        stored.state == JobState::Queued,
        "a new job is {:?}, not queued",
        stored.state
    );
    ensure!(stored.attempts == 0, "a new job has {} attempts", stored.attempts);
    ensure!(
        stored.max_attempts == 3,
        "max_attempts {} was not kept",
        stored.max_attempts
    );
    ensure!(
        stored.kind == kind && stored.tenant_id == Some(tenant),
        "kind or tenant changed: {stored:?}"
    );
    ensure!(
        stored.payload == new.payload,
        "payload changed: {}",
        stored.payload
    );
    ensure!(stored.lease_until.is_none(), "a queued job has a lease");
    ensure!(
        stored.run_at >= before - SKEW && stored.run_at <= now() + SKEW,
        "run_at {} of a job without run_at is not now",
        stored.run_at
    );
    Ok(())
}

/// `get`, `ack` and `fail` of an id that was never enqueued are `not_found`.
pub async fn unknown_jobs_are_not_found(queue: Arc<dyn JobQueue>) -> CheckResult {
    let ctx = system();
    let id = JobId(uuid::Uuid::new_v4());
    ensure!(
        matches!(queue.get(&ctx, id).await, Err(Error::NotFound { .. })),
        "get of an unknown job"
    );
    ensure!(
        matches!(queue.ack(&ctx, id).await, Err(Error::NotFound { .. })),
        "ack of an unknown job"
    );
    let failed = queue.fail(&ctx, id, "boom", Duration::ZERO).await;
    ensure!(
        matches!(failed, Err(Error::NotFound { .. })),
        "fail of an unknown job gave {failed:?}"
    );
    Ok(())
}

/// Of many concurrent `reserve` calls for one job, exactly one gets it, `Running`, with one attempt and a lease.
pub async fn reserve_hands_a_job_to_exactly_one_worker(queue: Arc<dyn JobQueue>) -> CheckResult {
    let kind = random_kind();
    let id = queue.enqueue(&system(), job(&kind)).await.step("enqueue")?;
    let workers = (0..8).map(|_| {
        let queue = Arc::clone(&queue);
        let kind = kind.clone();
        tokio::spawn(async move { queue.reserve(&system(), &[kind.as_str()], LEASE).await })
    });
    let mut winners = Vec::new();
    for worker in futures::future::join_all(workers).await {
        if let Some(job) = worker.step("worker task")?.step("reserve")? {
            winners.push(job);
        }
    }
    ensure!(
        winners.len() == 1,
        "{} workers reserved the same job",
        winners.len()
    );
    let reserved = winners.pop().ok_or("no worker reserved the job")?;
    ensure!(reserved.id == id, "reserved {} instead of {id}", reserved.id);
    ensure!(
        reserved.state == JobState::Running,
        "a reserved job is {:?}",
        reserved.state
    );
    ensure!(
        reserved.attempts == 1,
        "the first reservation counts {} attempts",
        reserved.attempts
    );
    ensure!(
        reserved.lease_until.is_some_and(|until| until > now() - SKEW),
        "no lease on {reserved:?}"
    );
    let stored = queue.get(&system(), id).await.step("get")?;
    ensure!(
        stored.state == JobState::Running && stored.attempts == 1,
        "stored job is {stored:?}"
    );
    Ok(())
}

/// Concurrent workers draining a queue see every job exactly once.
pub async fn concurrent_workers_reserve_each_job_once(queue: Arc<dyn JobQueue>) -> CheckResult {
    let kind = random_kind();
    let mut enqueued = BTreeSet::new();
    for _ in 0..20 {
        enqueued.insert(queue.enqueue(&system(), job(&kind)).await.step("enqueue")?);
    }
    let workers = (0..4).map(|_| {
        let queue = Arc::clone(&queue);
        let kind = kind.clone();
        tokio::spawn(async move {
            let mut seen = Vec::new();
            while let Some(job) = queue
                .reserve(&system(), &[kind.as_str()], LEASE)
                .await
                .step("reserve")?
            {
                queue.ack(&system(), job.id).await.step("ack")?;
                seen.push(job.id);
            }
            Ok::<_, String>(seen)
        })
    });
    let mut seen = Vec::new();
    for worker in futures::future::join_all(workers).await {
        seen.extend(worker.step("worker task")??);
    }
    let distinct: BTreeSet<JobId> = seen.iter().copied().collect();
    ensure!(
        distinct.len() == seen.len(),
        "{} reservations for {} jobs",
        seen.len(),
        distinct.len()
    );
    ensure!(
        distinct == enqueued,
        "workers saw {} of {} jobs",
        distinct.len(),
        enqueued.len()
    );
    Ok(())
}

/// Runnable jobs are handed out oldest `run_at` first.
pub async fn reserve_takes_the_oldest_run_at_first(queue: Arc<dyn JobQueue>) -> CheckResult {
    let kind = random_kind();
    let base = now();
    let mut ids = Vec::new();
    for age in [3, 1, 2] {
        let mut new = job(&kind);
        new.run_at = Some(base - chrono::TimeDelta::seconds(age));
        ids.push((age, queue.enqueue(&system(), new).await.step("enqueue")?));
    }
    ids.sort_by_key(|(age, _)| std::cmp::Reverse(*age));
    for (age, expected) in ids {
        let got = queue
            .reserve(&system(), &[kind.as_str()], LEASE)
            .await
            .step("reserve")?;
        let got = got.ok_or("a due job was not reserved")?;
        ensure!(
            got.id == expected,
            "expected the job due {age}s ago, got {}",
            got.id
        );
    }
    Ok(())
}

/// A job with a future `run_at` is not reserved before that time, and is afterwards.
pub async fn jobs_wait_for_their_run_at(queue: Arc<dyn JobQueue>) -> CheckResult {
    let kind = random_kind();
    let mut new = job(&kind);
    new.run_at = Some(now() + chrono::TimeDelta::milliseconds(400));
    let id = queue.enqueue(&system(), new).await.step("enqueue")?;
    let early = queue
        .reserve(&system(), &[kind.as_str()], LEASE)
        .await
        .step("early reserve")?;
    ensure!(early.is_none(), "a job was reserved before its run_at");
    tokio::time::sleep(Duration::from_millis(600)).await;
    let due = queue
        .reserve(&system(), &[kind.as_str()], LEASE)
        .await
        .step("reserve")?;
    ensure!(due.is_some_and(|j| j.id == id), "a due job was not reserved");
    Ok(())
}

/// `reserve` only considers the kinds it is given.
pub async fn reserve_only_returns_the_requested_kinds(queue: Arc<dyn JobQueue>) -> CheckResult {
    let wanted = random_kind();
    let other = random_kind();
    let id = queue.enqueue(&system(), job(&wanted)).await.step("enqueue")?;
    let none = queue
        .reserve(&system(), &[other.as_str()], LEASE)
        .await
        .step("reserve other kind")?;
    ensure!(
        none.is_none(),
        "reserve returned a job of a kind it did not ask for"
    );
    let none = queue
        .reserve(&system(), &[], LEASE)
        .await
        .step("reserve no kinds")?;
    ensure!(none.is_none(), "reserve with no kinds returned a job");
    let got = queue
        .reserve(&system(), &[other.as_str(), wanted.as_str()], LEASE)
        .await
        .step("reserve")?;
    ensure!(
        got.is_some_and(|j| j.id == id && j.kind == wanted),
        "the requested kind was not reserved"
    );
    Ok(())
}

/// A job whose lease expires without `ack`/`fail` is handed out again, with one more attempt.
pub async fn expired_leases_make_jobs_runnable_again(queue: Arc<dyn JobQueue>) -> CheckResult {
    let kind = random_kind();
    let id = queue.enqueue(&system(), job(&kind)).await.step("enqueue")?;
    let lease = Duration::from_millis(200);
    let first = queue
        .reserve(&system(), &[kind.as_str()], lease)
        .await
        .step("reserve")?;
    ensure!(first.is_some_and(|j| j.id == id), "the job was not reserved");
    let leased = queue
        .reserve(&system(), &[kind.as_str()], lease)
        .await
        .step("reserve while leased")?;
    ensure!(leased.is_none(), "a job was handed out again while its lease ran");
    tokio::time::sleep(Duration::from_millis(400)).await;
    let again = queue
        .reserve(&system(), &[kind.as_str()], LEASE)
        .await
        .step("reserve after expiry")?;
    let again = again.ok_or("a job with an expired lease was not runnable again")?;
    ensure!(again.id == id, "expected job {id}, got {}", again.id);
    ensure!(
        again.attempts == 2,
        "the second reservation counts {} attempts",
        again.attempts
    );
    ensure!(
        again.state == JobState::Running,
        "re-reserved job is {:?}",
        again.state
    );
    Ok(())
}

/// `ack` marks a running job `Done` for good; `ack` or `fail` of a job that is not running is a `conflict`.
pub async fn ack_marks_done_and_refuses_jobs_not_running(queue: Arc<dyn JobQueue>) -> CheckResult {
    let kind = random_kind();
    let id = queue.enqueue(&system(), job(&kind)).await.step("enqueue")?;
    let queued = queue.ack(&system(), id).await;
    ensure!(
        matches!(queued, Err(Error::Conflict { .. })),
        "ack of a queued job gave {queued:?}"
    );
    let _ = queue
        .reserve(&system(), &[kind.as_str()], LEASE)
        .await
        .step("reserve")?;
    queue.ack(&system(), id).await.step("ack")?;
    let done = queue.get(&system(), id).await.step("get")?;
    ensure!(
        done.state == JobState::Done,
        "an acknowledged job is {:?}",
        done.state
    );
    let twice = queue.ack(&system(), id).await;
    ensure!(
        matches!(twice, Err(Error::Conflict { .. })),
        "a second ack gave {twice:?}"
    );
    let failed = queue.fail(&system(), id, "late", Duration::ZERO).await;
    ensure!(
        matches!(failed, Err(Error::Conflict { .. })),
        "fail after ack gave {failed:?}"
    );
    let again = queue
        .reserve(&system(), &[kind.as_str()], LEASE)
        .await
        .step("reserve after ack")?;
    ensure!(again.is_none(), "a done job was reserved again");
    Ok(())
}

/// `fail` requeues after `retry_in` with the error kept, and marks the job `Failed` on its last attempt.
pub async fn fail_retries_until_attempts_run_out(queue: Arc<dyn JobQueue>) -> CheckResult {
    let kind = random_kind();
    let mut new = job(&kind);
    new.max_attempts = 2;
    let id = queue.enqueue(&system(), new).await.step("enqueue")?;
    let _ = queue
        .reserve(&system(), &[kind.as_str()], LEASE)
        .await
        .step("reserve")?;
    let state = queue
        .fail(&system(), id, "first failure", Duration::from_millis(300))
        .await
        .step("fail")?;
    ensure!(
        state == JobState::Queued,
        "a failure with attempts left gave {state:?}"
    );
    let stored = queue.get(&system(), id).await.step("get")?;
    ensure!(
        stored.state == JobState::Queued,
        "a retried job is stored as {:?}",
        stored.state
    );
    ensure!(
        stored.last_error.as_deref() == Some("first failure"),
        "last_error is {:?}",
        stored.last_error
    );
    let early = queue
        .reserve(&system(), &[kind.as_str()], LEASE)
        .await
        .step("early reserve")?;
    ensure!(early.is_none(), "a failed job was retried before retry_in passed");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let retry = queue
        .reserve(&system(), &[kind.as_str()], LEASE)
        .await
        .step("retry reserve")?;
    ensure!(
        retry.as_ref().is_some_and(|j| j.id == id && j.attempts == 2),
        "retry was {retry:?}"
    );
    let state = queue
        .fail(&system(), id, "second failure", Duration::ZERO)
        .await
        .step("last fail")?;
    ensure!(
        state == JobState::Failed,
        "failing the last attempt gave {state:?}"
    );
    let stored = queue.get(&system(), id).await.step("get failed")?;
    ensure!(
        stored.state == JobState::Failed,
        "a dead job is stored as {:?}",
        stored.state
    );
    let again = queue
        .reserve(&system(), &[kind.as_str()], LEASE)
        .await
        .step("reserve dead job")?;
    ensure!(again.is_none(), "a failed job was reserved again");
    Ok(())
}

/// A tenant-scoped context neither sees nor reserves nor settles another tenant's jobs (or platform jobs).
pub async fn jobs_are_scoped_to_their_tenant(queue: Arc<dyn JobQueue>) -> CheckResult {
    let (a, b) = (random_tenant(), random_tenant());
    let kind = random_kind();
    let of_a = queue
        .enqueue(&system(), NewJob::new(&kind, Some(a), serde_json::json!({})))
        .await
        .step("enqueue")?;
    let platform = queue
        .enqueue(&system(), job(&kind))
        .await
        .step("enqueue platform job")?;
    for id in [of_a, platform] {
        let seen = queue.get(&scoped(b), id).await;
        ensure!(
            matches!(seen, Err(Error::NotFound { .. })),
            "tenant b read job {id}: {seen:?}"
        );
    }
    let stolen = queue
        .reserve(&scoped(b), &[kind.as_str()], LEASE)
        .await
        .step("reserve as b")?;
    ensure!(stolen.is_none(), "tenant b reserved a job that is not its own");
    let enqueued = queue
        .enqueue(&scoped(b), NewJob::new(&kind, Some(a), serde_json::json!({})))
        .await;
    ensure!(
        matches!(enqueued, Err(Error::NotFound { .. })),
        "tenant b enqueued for tenant a: {enqueued:?}"
    );
    let mine = queue
        .reserve(&scoped(a), &[kind.as_str()], LEASE)
        .await
        .step("reserve as a")?;
    ensure!(
        mine.as_ref().is_some_and(|j| j.id == of_a),
        "tenant a could not reserve its job: {mine:?}"
    );
    let acked = queue.ack(&scoped(b), of_a).await;
    ensure!(
        matches!(acked, Err(Error::NotFound { .. })),
        "tenant b acknowledged a's job: {acked:?}"
    );
    queue.ack(&scoped(a), of_a).await.step("ack as a")?;
    Ok(())
}
