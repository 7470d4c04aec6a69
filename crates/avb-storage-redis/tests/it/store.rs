//! Assembly, health and configuration against the real Redis and an unreachable one.

use crate::common::{UNREACHABLE, fresh_store, unreachable_store};
use avb_core::{Error, ErrorCode, HasCode};
use avb_storage_redis::{RedisConfig, RedisStoreBuilder};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_answers_when_redis_is_up() {
    let (store, _prefix) = fresh_store().await;
    store.ping().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn building_against_an_unreachable_redis_fails_fast_with_service_unavailable() {
    let started = Instant::now();
    let got = RedisStoreBuilder::new()
        .with_url(UNREACHABLE)
        .with_reconnect_attempts(2)
        .build()
        .await;
    match got {
        Err(err @ Error::Unavailable { .. }) => {
            assert_eq!(err.code(), ErrorCode::ServiceUnavailable);
            assert!(
                !err.public_message().contains("127.0.0.1"),
                "no internals on the wire"
            );
        }
        other => panic!("expected unavailable, got {other:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lazy_store_starts_during_an_outage_and_reports_not_ready() {
    let store = unreachable_store().await;
    let started = Instant::now();
    assert!(matches!(store.ping().await, Err(Error::Unavailable { .. })));
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_urls_are_validation_errors_that_do_not_echo_the_url() {
    let got = RedisStoreBuilder::new()
        .with_url("http://user:s3cret@host")
        .build()
        .await;
    match got {
        Err(err @ Error::Invalid(_)) => assert!(!format!("{err:?}").contains("s3cret"), "{err:?}"),
        other => panic!("expected a validation error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_debug_output_hides_the_password() {
    let mut config = RedisConfig::default();
    config.url = "redis://default:s3cret@127.0.0.1:1/0".into();
    let store = RedisStoreBuilder::from_config(config)
        .connect_lazily(true)
        .build()
        .await
        .unwrap();
    let shown = format!("{store:?}");
    assert!(!shown.contains("s3cret") && shown.contains("***"), "{shown}");
}
