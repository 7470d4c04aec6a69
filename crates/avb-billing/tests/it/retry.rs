//! The retry decorator: temporary errors are retried with back-off, a 429 waits as asked, refusals are not.

use super::support::{Scripted, system};
use avb_billing::Error;
use avb_billing::adapters::memory::MemoryBilling;
use avb_billing::model::BillingCustomer;
use avb_billing::provider::BillingProvider;
use avb_billing::retry::{RetryPolicy, RetryingBillingProvider};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

fn customer() -> BillingCustomer {
    BillingCustomer {
        external_id: "c1".into(),
        name: "C".into(),
        email: None,
        metadata: Default::default(),
    }
}

fn setup(policy: RetryPolicy) -> (Arc<Scripted>, RetryingBillingProvider) {
    let scripted = Scripted::new(Arc::new(MemoryBilling::new()));
    let retrying = RetryingBillingProvider::new(scripted.clone(), policy);
    (scripted, retrying)
}

#[tokio::test(start_paused = true)]
async fn temporary_failures_are_retried_with_growing_backoff() {
    let policy = RetryPolicy::default().delays(Duration::from_millis(100), Duration::from_secs(5));
    let (scripted, retrying) = setup(policy);
    scripted.fail_with(Error::Unavailable("503".into()));
    scripted.fail_with(Error::Unavailable("timeout".into()));
    let start = Instant::now();
    retrying.upsert_customer(&system(), &customer()).await.unwrap();
    assert_eq!(scripted.calls().len(), 3);
    let waited = start.elapsed();
    // Equal jitter: at least half of 100 ms + 200 ms, at most the full sum.
    assert!(
        waited >= Duration::from_millis(150) && waited <= Duration::from_millis(300),
        "{waited:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn attempts_are_limited() {
    let (scripted, retrying) = setup(RetryPolicy::default().max_attempts(3));
    for _ in 0..5 {
        scripted.fail_with(Error::Unavailable("503".into()));
    }
    let err = retrying
        .upsert_customer(&system(), &customer())
        .await
        .unwrap_err();
    assert!(err.is_temporary());
    assert_eq!(scripted.calls().len(), 3);
}

#[tokio::test(start_paused = true)]
async fn refusals_are_not_retried() {
    let (scripted, retrying) = setup(RetryPolicy::default());
    scripted.fail_with(Error::Rejected {
        status: 400,
        code: "bad_request".into(),
        message: "Bad request".into(),
        details: serde_json::Value::Null,
    });
    assert!(retrying.upsert_customer(&system(), &customer()).await.is_err());
    scripted.fail_with(Error::Unauthorized);
    assert!(retrying.upsert_customer(&system(), &customer()).await.is_err());
    assert_eq!(scripted.calls().len(), 2, "one call each, no retry");
}

#[tokio::test(start_paused = true)]
async fn throttling_waits_as_long_as_the_provider_asked() {
    let (scripted, retrying) = setup(RetryPolicy::default());
    scripted.fail_with(Error::RateLimited {
        retry_after: Some(Duration::from_secs(7)),
    });
    let start = Instant::now();
    retrying.upsert_customer(&system(), &customer()).await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_secs(7));
    assert_eq!(scripted.calls().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn throttling_longer_than_allowed_is_returned_at_once() {
    let (scripted, retrying) = setup(RetryPolicy::default().max_rate_limit_wait(Duration::from_secs(5)));
    scripted.fail_with(Error::RateLimited {
        retry_after: Some(Duration::from_secs(3600)),
    });
    let err = retrying
        .upsert_customer(&system(), &customer())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::RateLimited { .. }));
    assert_eq!(scripted.calls().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn no_retry_past_the_context_deadline() {
    let (scripted, retrying) = setup(RetryPolicy::default());
    scripted.fail_with(Error::RateLimited {
        retry_after: Some(Duration::from_secs(10)),
    });
    let ctx = system().with_timeout(Duration::from_secs(2));
    assert!(retrying.upsert_customer(&ctx, &customer()).await.is_err());
    assert_eq!(scripted.calls().len(), 1);
}
