//! Behaviour of [`MemoryStore`] beyond the shared contracts: shared clones, the clock and id ports, and the
//! choices the contracts leave to the adapter.
#![cfg(test)]

use avb_core::audit::{AuditAction, AuditReader, AuditSink, NewAuditEntry};
use avb_core::jobs::{JobQueue, JobState, NewJob};
use avb_core::{Ctx, Error, IdGen, ManualClock, RequestId, SequentialIds, UuidV7Ids};
use avb_storage_memory::MemoryStore;
use avb_tenancy::conformance::fixtures;
use avb_tenancy::store::{Access, TenancyStore};
use chrono::{DateTime, TimeDelta};
use std::sync::Arc;
use std::time::Duration;

fn system() -> Ctx {
    Ctx::system(RequestId::generate(&UuidV7Ids), "memory-test", None)
}

fn start() -> DateTime<chrono::Utc> {
    DateTime::from_timestamp(1_700_000_000, 0).unwrap()
}

#[tokio::test]
async fn clones_share_one_state() {
    let store = MemoryStore::new();
    let other = store.clone().with_ids(Arc::new(SequentialIds::default()));
    let mut uow = store.begin(&system(), Access::ReadWrite).await.unwrap();
    let tenant = uow.tenants().insert(fixtures::tenant()).await.unwrap();
    uow.commit().await.unwrap();

    let mut read = other.begin(&system(), Access::ReadOnly).await.unwrap();
    assert_eq!(read.tenants().get(tenant.id).await.unwrap(), tenant);
    let job = other
        .enqueue(&system(), NewJob::new("k", None, serde_json::json!({})))
        .await
        .unwrap();
    assert_eq!(store.get(&system(), job).await.unwrap().id, job);
}

#[tokio::test]
async fn audit_entries_and_jobs_take_time_and_ids_from_the_ports() {
    let clock = Arc::new(ManualClock::new(start()));
    let store = MemoryStore::new()
        .with_clock(clock.clone())
        .with_ids(Arc::new(SequentialIds::default()));
    let entry = store
        .record(&system(), NewAuditEntry::new(AuditAction::Login, "user", "u"))
        .await
        .unwrap();
    assert_eq!(entry.timestamp, start());
    assert_eq!(entry.id.0, SequentialIds::default().new_uuid());

    clock.advance(TimeDelta::minutes(5));
    let mut uow = store.begin(&system(), Access::ReadWrite).await.unwrap();
    let id = uow
        .enqueue_job(NewJob::new("k", None, serde_json::json!({})))
        .await
        .unwrap();
    let in_unit = uow
        .append_audit(NewAuditEntry::new(AuditAction::Create, "tenant", "t"))
        .await
        .unwrap();
    uow.commit().await.unwrap();
    let job = store.get(&system(), id).await.unwrap();
    assert_eq!(
        (job.created_at, job.run_at),
        (start() + TimeDelta::minutes(5), start() + TimeDelta::minutes(5))
    );
    assert_eq!(in_unit.timestamp, start() + TimeDelta::minutes(5));
    assert_eq!(store.chain(&system(), None).await.unwrap(), vec![entry, in_unit]);
}

#[tokio::test]
async fn a_lease_that_expires_on_the_last_attempt_fails_the_job() {
    let clock = Arc::new(ManualClock::new(start()));
    let store = MemoryStore::new().with_clock(clock.clone());
    let mut new = NewJob::new("once", None, serde_json::json!({}));
    new.max_attempts = 1;
    let id = store.enqueue(&system(), new).await.unwrap();
    let job = store
        .reserve(&system(), &["once"], Duration::from_secs(10))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(job.lease_until, Some(start() + TimeDelta::seconds(10)));

    clock.advance(TimeDelta::seconds(11));
    assert!(
        store
            .reserve(&system(), &["once"], Duration::from_secs(10))
            .await
            .unwrap()
            .is_none()
    );
    let dead = store.get(&system(), id).await.unwrap();
    assert_eq!(dead.state, JobState::Failed);
    assert_eq!(dead.attempts, 1);
}

#[tokio::test]
async fn a_writer_waiting_past_its_deadline_gives_up() {
    let store = MemoryStore::new();
    let holder = store.begin(&system(), Access::ReadWrite).await.unwrap();
    let impatient = system().with_timeout(Duration::from_millis(50));
    let waited = store.begin(&impatient, Access::ReadWrite).await;
    assert!(matches!(waited, Err(Error::DeadlineExceeded)), "{waited:?}");
    drop(holder);
    store
        .begin(&impatient.with_timeout(Duration::from_secs(5)), Access::ReadWrite)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_sink_append_waits_for_the_unit_holding_its_chain() {
    let store = MemoryStore::new();
    let tenant = avb_core::TenantId(uuid::Uuid::now_v7());
    let scoped = Ctx::system(RequestId::generate(&UuidV7Ids), "memory-test", Some(tenant));
    let mut uow = store.begin(&scoped, Access::ReadWrite).await.unwrap();
    let first = uow
        .append_audit(NewAuditEntry::new(AuditAction::Update, "project", 1))
        .await
        .unwrap();

    let sink = store.clone();
    let ctx = scoped.clone();
    let append = tokio::spawn(async move {
        sink.record(&ctx, NewAuditEntry::new(AuditAction::Login, "user", 2))
            .await
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        !append.is_finished(),
        "the sink appended while a unit held the chain"
    );
    uow.commit().await.unwrap();
    let second = append.await.unwrap().unwrap();
    assert_eq!(
        (second.sequence, second.prev_hash.as_str()),
        (2, first.hash.as_str())
    );
}
