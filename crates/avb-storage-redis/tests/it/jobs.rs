//! The shared job-queue suite against [`RedisJobQueue`], plus the Streams mechanics: a stalled job is reclaimed
//! by another replica through the consumer group, settled jobs leave the stream and expire.

use crate::common::{Scoped, fresh_store, keys_under, raw, store_at, system_ctx};
use avb_core::jobs::{JobQueue, JobState, NewJob};
use redis::Value;
use std::sync::Arc;
use std::time::Duration;

avb_core::job_queue_conformance!(async {
    let (store, prefix) = fresh_store().await;
    Arc::new(Scoped {
        inner: store.job_queue(),
        _prefix: prefix,
    })
});

fn kind() -> String {
    format!("it.{}", uuid::Uuid::new_v4())
}

/// `XPENDING key workers - + 10` as (entry id, consumer, deliveries).
async fn pending(stream: &str) -> Vec<(String, String, i64)> {
    let rows: Vec<(String, String, i64, i64)> = redis::cmd("XPENDING")
        .arg(stream)
        .arg("workers")
        .arg("-")
        .arg("+")
        .arg(10)
        .query_async(&mut raw().await)
        .await
        .unwrap();
    rows.into_iter()
        .map(|(id, consumer, _idle, n)| (id, consumer, n))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_job_is_reclaimed_by_another_replica_after_its_lease() {
    let (first, prefix) = fresh_store().await;
    let second = store_at(&prefix).await;
    let (crashed, survivor) = (
        first.job_queue().with_consumer_name("replica-a"),
        second.job_queue().with_consumer_name("replica-b"),
    );
    let ctx = system_ctx();
    let kind = kind();
    let id = crashed
        .enqueue(&ctx, NewJob::new(&kind, None, serde_json::json!({"x": 1})))
        .await
        .unwrap();

    let taken = crashed
        .reserve(&ctx, &[&kind], Duration::from_millis(300))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(taken.id, id);
    let stream = survivor.stream_key(&kind);
    let held = pending(&stream).await;
    assert_eq!(held.len(), 1);
    assert_eq!(
        (held[0].1.as_str(), held[0].2),
        ("replica-a", 1),
        "replica A holds it in the group"
    );

    // Replica A dies without ack. While the lease runs, nobody else gets the job.
    assert!(
        survivor
            .reserve(&ctx, &[&kind], Duration::from_secs(30))
            .await
            .unwrap()
            .is_none()
    );
    tokio::time::sleep(Duration::from_millis(400)).await;

    let reclaimed = survivor
        .reserve(&ctx, &[&kind], Duration::from_secs(30))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (reclaimed.id, reclaimed.attempts, reclaimed.state),
        (id, 2, JobState::Running)
    );
    let now_held = pending(&stream).await;
    assert_eq!(now_held.len(), 1);
    assert_eq!(now_held[0].0, held[0].0, "the same stream entry, claimed");
    assert_eq!(
        (now_held[0].1.as_str(), now_held[0].2),
        ("replica-b", 2),
        "B holds it, delivered twice"
    );

    survivor.ack(&ctx, id).await.unwrap();
    assert!(pending(&stream).await.is_empty(), "acknowledged: nothing pending");
    let length: i64 = redis::cmd("XLEN")
        .arg(&stream)
        .query_async(&mut raw().await)
        .await
        .unwrap();
    assert_eq!(length, 0, "settled entries are deleted from the stream");
    assert!(
        matches!(crashed.ack(&ctx, id).await, Err(avb_core::Error::Conflict { .. })),
        "A's late ack"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_jobs_wait_in_the_schedule_and_settled_ones_expire() {
    let (store, prefix) = fresh_store().await;
    let queue = store.job_queue().with_retention(Duration::from_millis(300));
    let ctx = system_ctx();
    let kind = kind();
    let id = queue
        .enqueue(&ctx, NewJob::new(&kind, None, serde_json::json!({})))
        .await
        .unwrap();
    let keys = keys_under(&prefix.0).await;
    assert!(
        keys.contains(&format!("{}:jobs:due:{kind}", prefix.0)),
        "{keys:?}"
    );
    assert!(
        keys.contains(&format!("{}:jobs:due-of:platform:{kind}", prefix.0)),
        "{keys:?}"
    );

    queue
        .reserve(&ctx, &[&kind], Duration::from_secs(30))
        .await
        .unwrap()
        .unwrap();
    queue.ack(&ctx, id).await.unwrap();
    assert_eq!(queue.get(&ctx, id).await.unwrap().state, JobState::Done);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        matches!(queue.get(&ctx, id).await, Err(avb_core::Error::NotFound { .. })),
        "done jobs expire after the retention"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_lease_on_the_last_attempt_marks_the_job_failed() {
    let (store, _prefix) = fresh_store().await;
    let queue = store.job_queue();
    let ctx = system_ctx();
    let kind = kind();
    let mut new = NewJob::new(&kind, None, serde_json::json!({}));
    new.max_attempts = 1;
    let id = queue.enqueue(&ctx, new).await.unwrap();
    queue
        .reserve(&ctx, &[&kind], Duration::from_millis(100))
        .await
        .unwrap()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    assert!(
        queue
            .reserve(&ctx, &[&kind], Duration::from_secs(30))
            .await
            .unwrap()
            .is_none()
    );
    let dead = queue.get(&ctx, id).await.unwrap();
    assert_eq!(dead.state, JobState::Failed);
    assert_eq!(
        dead.last_error.as_deref(),
        Some("lease expired on the last attempt")
    );
    assert!(pending(&queue.stream_key(&kind)).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_is_the_delivery_log() {
    let (store, _prefix) = fresh_store().await;
    let queue = store.job_queue();
    let ctx = system_ctx();
    let kind = kind();
    let id = queue
        .enqueue(&ctx, NewJob::new(&kind, None, serde_json::json!({})))
        .await
        .unwrap();
    queue
        .reserve(&ctx, &[&kind], Duration::from_secs(30))
        .await
        .unwrap()
        .unwrap();
    let entries: Vec<Value> = redis::cmd("XRANGE")
        .arg(queue.stream_key(&kind))
        .arg("-")
        .arg("+")
        .query_async(&mut raw().await)
        .await
        .unwrap();
    assert_eq!(entries.len(), 1);
    let rendered = format!("{entries:?}");
    assert!(
        rendered.contains(&id.to_string()),
        "the entry names the job: {rendered}"
    );
    let held = pending(&queue.stream_key(&kind)).await;
    assert_eq!(held[0].1, queue.consumer_name());
}
