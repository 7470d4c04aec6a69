//! `/metrics` exports the spec's series (§12.3) from what the app actually did: API-key use, background jobs,
//! tenant totals, the tenant cache, storage operations.

use crate::support::World;
use avb_api::jobs::JobRunner;

/// The value of the first sample of `name` whose labels include every `label="value"` pair in `labels`.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find(|line| {
            let (series, _) = line.rsplit_once(' ').unwrap_or((line, ""));
            let series_name = series.split('{').next().unwrap_or(series);
            series_name == name
                && labels
                    .iter()
                    .all(|(k, v)| series.contains(&format!("{k}=\"{v}\"")))
        })
        .and_then(|line| line.rsplit_once(' '))
        .map(|(_, value)| value.parse().expect("sample value"))
}

async fn scrape(w: &World) -> String {
    let resp = w.get("", "/metrics").await;
    resp.expect(200);
    resp.body.as_str().expect("text").to_owned()
}

#[tokio::test]
async fn api_key_requests_are_counted_per_key() {
    let w = World::new().await;
    let (key_id, secret) = w.api_key(&w.a.admin.token, &["realtime"]).await;
    let (other_id, other) = w.api_key(&w.a.admin.token, &["realtime"]).await;
    for _ in 0..3 {
        w.get(&secret, "/api/v2/projects").await.expect(200);
    }
    w.get(&other, "/api/v2/projects").await.expect(200);
    // A refused key is not "used".
    w.get("avb_not-a-real-key", "/api/v2/projects").await.expect(401);

    let text = scrape(&w).await;
    let tenant = w.a.id.to_string();
    assert_eq!(
        sample(
            &text,
            "avb_api_key_usage_total",
            &[("tenant_id", &tenant), ("key_id", &key_id)]
        ),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "avb_api_key_usage_total",
            &[("tenant_id", &tenant), ("key_id", &other_id)]
        ),
        Some(1.0)
    );
}

#[tokio::test]
async fn jobs_are_counted_and_timed_by_kind_and_outcome() {
    let w = World::new().await;
    // Creating two tenants enqueued their permission bootstrap and billing sync jobs.
    let ran = JobRunner::new(w.api.app.clone()).run_until_idle().await;
    assert!(ran >= 2, "jobs ran: {ran}");

    let text = scrape(&w).await;
    let bootstrapped = sample(
        &text,
        "avb_celery_tasks_total",
        &[("task", "permissions.bootstrap_tenant"), ("status", "success")],
    );
    assert_eq!(bootstrapped, Some(2.0), "{text}");
    assert_eq!(
        sample(
            &text,
            "avb_celery_task_duration_seconds_count",
            &[("task", "permissions.bootstrap_tenant")]
        ),
        Some(2.0)
    );
    // The spec's buckets for task durations (0.1 s … 300 s).
    assert!(
        text.contains(
            "avb_celery_task_duration_seconds_bucket{task=\"permissions.bootstrap_tenant\",le=\"300\"}"
        ),
        "{text}"
    );
}

#[tokio::test]
async fn a_usage_sync_run_as_a_job_is_counted_once() {
    let w = World::new().await;
    let runner = JobRunner::new(w.api.app.clone());
    runner.run_until_idle().await;
    let ctx = avb_core::Ctx::system(avb_core::RequestId::generate(&avb_core::UuidV7Ids), "test", None);
    w.api
        .app
        .inner()
        .jobs
        .enqueue(
            &ctx,
            avb_core::jobs::NewJob::new(avb_billing::sync::SYNC_USAGE_JOB, None, serde_json::json!({})),
        )
        .await
        .expect("enqueue");
    assert_eq!(runner.run_until_idle().await, 1);
    let text = scrape(&w).await;
    assert_eq!(
        sample(
            &text,
            "avb_celery_tasks_total",
            &[("task", "billing.sync_usage"), ("status", "success")]
        ),
        Some(1.0),
        "{text}"
    );
}

#[tokio::test]
async fn tenant_totals_are_recounted_by_tier_and_status() {
    let w = World::new().await;
    let runner = JobRunner::new(w.api.app.clone());
    runner.aggregate_metrics().await.expect("recount");
    let text = scrape(&w).await;
    let count = |tier, status| sample(&text, "avb_tenants_total", &[("tier", tier), ("status", status)]);
    assert_eq!(count("pro", "active"), Some(2.0), "{text}");
    // Every combination is exported, so a series that empties reads 0.
    assert_eq!(count("free", "suspended"), Some(0.0));

    w.post(
        &w.sysadmin,
        &format!("/api/v2/admin/tenants/{}/suspend", w.b.id),
        serde_json::json!({ "reason": "unpaid" }),
    )
    .await
    .expect(200);
    runner.aggregate_metrics().await.expect("recount");
    let text = scrape(&w).await;
    let count = |tier, status| sample(&text, "avb_tenants_total", &[("tier", tier), ("status", status)]);
    assert_eq!(count("pro", "active"), Some(1.0), "{text}");
    assert_eq!(count("pro", "suspended"), Some(1.0));
}

#[tokio::test]
async fn tenant_cache_hits_and_misses_are_exported() {
    let w = World::new().await;
    let before = scrape(&w).await;
    let hits_before = sample(&before, "avb_cache_hits_total", &[("cache", "tenant")]).expect("hits");
    let misses_before = sample(&before, "avb_cache_misses_total", &[("cache", "tenant")]).expect("misses");
    // Back-to-back requests of one tenant: the first may read the store, the rest are served from memory.
    for _ in 0..5 {
        w.get(&w.a.admin.token, "/api/v2/projects").await.expect(200);
    }
    let after = scrape(&w).await;
    let hits = sample(&after, "avb_cache_hits_total", &[("cache", "tenant")]).expect("hits");
    let misses = sample(&after, "avb_cache_misses_total", &[("cache", "tenant")]).expect("misses");
    assert!(hits >= hits_before + 4.0, "hits {hits_before} → {hits}");
    assert!(misses <= misses_before + 1.0, "misses {misses_before} → {misses}");
}
