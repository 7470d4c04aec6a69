//! The usage sync (sessions → outbox → provider) and the tenant sync.

use super::support::{World, at, system};
use avb_billing::Error;
use avb_billing::model::{metrics, subscription_id};
use avb_billing::store::{BillingStore, OutboxState};
use avb_billing::sync::SESSIONS_CURSOR;
use avb_tenancy::model::TenantTier;
use serde_json::json;
use std::collections::BTreeMap;

#[tokio::test]
async fn ended_sessions_become_events_with_deterministic_ids_and_timestamps() {
    let w = World::new();
    let t = w.tenant().await;
    let s = w.session(t.id, 0, Some((90, 10, 20, 3.5))).await;
    w.advance(600);
    let report = w.sync.sync_usage(&system()).await.unwrap();
    assert_eq!(report.events_recorded, 4);
    assert_eq!(report.events_accepted, 4);
    let events: BTreeMap<String, _> = w
        .memory
        .events()
        .into_iter()
        .map(|e| (e.transaction_id.clone(), e))
        .collect();
    let id = |metric: &str| format!("{}:{}:{metric}", t.id, s.id);
    assert_eq!(events.len(), 4);
    let tokens = &events[&id(metrics::INPUT_TOKENS)];
    assert_eq!(
        tokens.timestamp,
        at(90).timestamp(),
        "the session's end is the usage time"
    );
    assert_eq!(tokens.external_subscription_id, subscription_id(t.id));
    assert_eq!(json!(tokens.properties), json!({ "tokens": 10 }));
    assert_eq!(
        json!(events[&id(metrics::OUTPUT_TOKENS)].properties),
        json!({ "tokens": 20 })
    );
    assert_eq!(
        json!(events[&id(metrics::AUDIO_SECONDS)].properties),
        json!({ "seconds": "3.500" })
    );
    assert_eq!(
        json!(events[&id(metrics::SESSIONS)].properties),
        json!({ "status": "completed" })
    );
    let entry = w
        .store
        .usage_entry(&system(), &id(metrics::SESSIONS))
        .await
        .unwrap();
    assert_eq!(entry.state, OutboxState::Sent);
}

#[tokio::test]
async fn a_second_run_records_and_sends_nothing_new() {
    let w = World::new();
    let t = w.tenant().await;
    w.session(t.id, 0, Some((30, 1, 1, 0.0))).await;
    w.advance(600);
    w.sync.sync_usage(&system()).await.unwrap();
    let calls = w.provider.calls().len();
    w.advance(900);
    let report = w.sync.sync_usage(&system()).await.unwrap();
    assert_eq!((report.events_recorded, report.events_accepted), (0, 0));
    assert_eq!(w.provider.calls().len(), calls, "nothing pending, nothing sent");
    assert_eq!(w.memory.events().len(), 3);
}

#[tokio::test]
async fn open_sessions_hold_the_cursor_and_are_billed_once_they_end() {
    let w = World::new();
    let t = w.tenant().await;
    let open = w.session(t.id, 100, None).await;
    w.session(t.id, 200, Some((260, 0, 0, 0.0))).await;
    w.advance(3600);
    w.sync.sync_usage(&system()).await.unwrap();
    let cursor = w.store.cursor(&system(), SESSIONS_CURSOR).await.unwrap().unwrap();
    assert!(
        cursor <= at(100),
        "the open session keeps the cursor at its creation: {cursor}"
    );
    assert_eq!(w.memory.events().len(), 1, "only the ended session is billed");
    w.end(open, 3700, 42).await;
    w.advance(900);
    w.sync.sync_usage(&system()).await.unwrap();
    let tokens = format!("{}:{}:{}", t.id, open_id(&w).await, metrics::INPUT_TOKENS);
    assert!(w.memory.events().iter().any(|e| e.transaction_id == tokens));
    let cursor = w.store.cursor(&system(), SESSIONS_CURSOR).await.unwrap().unwrap();
    assert!(
        cursor > at(100),
        "with nothing open the cursor moves on: {cursor}"
    );
}

async fn open_id(w: &World) -> String {
    // The only session with input tokens is the one that was open.
    w.memory
        .events()
        .iter()
        .find(|e| e.code == metrics::INPUT_TOKENS)
        .map(|e| e.transaction_id.split(':').nth(1).unwrap().to_owned())
        .unwrap()
}

#[tokio::test]
async fn a_failed_flush_keeps_events_pending_and_the_next_run_sends_each_once() {
    let w = World::new();
    let t = w.tenant().await;
    w.session(t.id, 0, Some((10, 5, 5, 1.0))).await;
    w.advance(600);
    w.provider.fail_with(Error::Unavailable("502 Bad Gateway".into()));
    let err = w.sync.sync_usage(&system()).await.unwrap_err();
    assert!(err.is_temporary());
    assert!(w.memory.events().is_empty());
    let pending = w.store.pending_usage(&system(), 100).await.unwrap();
    assert_eq!(pending.len(), 4, "nothing accepted is lost");
    assert!(pending.iter().all(|e| e.attempts == 1 && e.last_error.is_some()));
    w.advance(900);
    let report = w.sync.sync_usage(&system()).await.unwrap();
    assert_eq!(report.events_accepted, 4);
    assert_eq!(w.memory.events().len(), 4);
    assert!(w.store.pending_usage(&system(), 100).await.unwrap().is_empty());
}

#[tokio::test]
async fn events_already_at_the_provider_count_as_sent() {
    let w = World::new();
    let t = w.tenant().await;
    w.session(t.id, 0, Some((10, 5, 0, 0.0))).await;
    w.advance(600);
    w.sync
        .collect_usage(&system(), &mut Default::default())
        .await
        .unwrap();
    // Another replica (or a crashed run) already delivered these events.
    let events: Vec<_> = w
        .store
        .pending_usage(&system(), 100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event)
        .collect();
    avb_billing::provider::BillingProvider::send_events(&w.memory, &system(), &events)
        .await
        .unwrap();
    let report = w.sync.sync_usage(&system()).await.unwrap();
    assert_eq!((report.events_accepted, report.events_duplicate), (0, 2));
    assert!(w.store.pending_usage(&system(), 100).await.unwrap().is_empty());
}

#[tokio::test]
async fn many_events_are_flushed_in_batches_of_at_most_100() {
    let w = World::new();
    let t = w.tenant().await;
    for i in 0..70 {
        w.session(t.id, i, Some((i + 5, 1, 1, 0.0))).await;
    }
    w.advance(3600);
    let report = w.sync.sync_usage(&system()).await.unwrap();
    assert_eq!(report.sessions_scanned, 70);
    assert_eq!(report.events_accepted, 210);
    let sizes = w.provider.calls();
    assert_eq!(sizes, vec![100, 100, 10]);
}

#[tokio::test]
async fn sessions_of_every_tenant_are_billed_to_their_own_subscription() {
    let w = World::new();
    let (a, b) = (w.tenant().await, w.tenant().await);
    w.session(a.id, 0, Some((5, 0, 0, 0.0))).await;
    w.session(b.id, 0, Some((5, 0, 0, 0.0))).await;
    w.advance(600);
    w.sync.sync_usage(&system()).await.unwrap();
    let subs: Vec<String> = w
        .memory
        .events()
        .into_iter()
        .map(|e| e.external_subscription_id)
        .collect();
    assert!(subs.contains(&subscription_id(a.id)) && subs.contains(&subscription_id(b.id)));
}

#[tokio::test]
async fn tenant_sync_creates_the_customer_and_plan_and_links_billing_id() {
    let w = World::new();
    let mut t = w.tenant().await;
    t.tier = TenantTier::Pro;
    let t = w.update_tenant(t).await;
    let synced = w.sync.sync_tenant(&system().scoped_to(t.id), t.id).await.unwrap();
    assert_eq!(synced.billing_id, t.id.to_string());
    assert_eq!(w.get_tenant(t.id).await.billing_id, t.id.to_string());
    let customer = w.memory.customer(&t.id.to_string()).unwrap();
    assert_eq!(customer.name, t.name);
    assert_eq!(customer.metadata["tier"], "pro");
    assert_eq!(customer.metadata["slug"], t.slug);
    let sub = w.memory.subscription(&subscription_id(t.id)).unwrap();
    assert_eq!(sub.plan_code, "plan_pro");

    // A tier change moves the same subscription to the new plan.
    let mut changed = w.get_tenant(t.id).await;
    changed.tier = TenantTier::Enterprise;
    w.update_tenant(changed).await;
    w.sync.sync_tenant(&system(), t.id).await.unwrap();
    let sub = w.memory.subscription(&subscription_id(t.id)).unwrap();
    assert_eq!(sub.plan_code, "plan_enterprise");
}

#[tokio::test]
async fn a_failed_tenant_sync_leaves_billing_id_empty() {
    let w = World::new();
    let t = w.tenant().await;
    w.provider.fail_with(Error::Unavailable("timeout".into()));
    assert!(w.sync.sync_tenant(&system(), t.id).await.is_err());
    assert_eq!(w.get_tenant(t.id).await.billing_id, "");
    w.sync.sync_tenant(&system(), t.id).await.unwrap();
    assert_eq!(w.get_tenant(t.id).await.billing_id, t.id.to_string());
}
