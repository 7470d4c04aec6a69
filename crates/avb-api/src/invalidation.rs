//! Cross-replica cache invalidation (issue 5).
//!
//! Each replica keeps short-lived copies of tenant records (the resolver's [`avb_tenancy::resolve::TenantCache`])
//! and of validated API keys (the API-key authenticator's hot cache). A change made on one replica drops the
//! local copy at once ([`tenant_changed`], [`api_key_changed`]) and is broadcast on the platform group of the
//! event bus ([`Group::Platform`]); every replica runs one [`spawn`]ed listener that drops its copy when the
//! broadcast arrives.
//!
//! The bus is at-most-once, so the listener never trusts its caches across a gap in the feed: when the
//! subscription reports a lag (Redis reports a dropped connection that way) or ends, both caches are cleared,
//! and while the feed is not proven live again — a probe published by this listener has come back — they are
//! cleared every [`PROBE_INTERVAL`], then once more. A broadcast that cannot be published (broker down) is
//! logged; other replicas then drop the entry when its TTL ends.

use crate::app::App;
use avb_core::events::{BusEvent, Delivery, Group, Subscription};
use avb_core::{ApiKeyId, Ctx, RequestId, TenantId};
use serde_json::{Value, json};
use std::time::Duration;
use tokio::task::JoinHandle;

/// Event type of a tenant change (`{"tenant_id": …}`).
pub const TENANT_CHANGED: &str = "cache.tenant_changed";
/// Event type of an API-key revocation or rotation (`{"api_key_id": …}`).
pub const API_KEY_CHANGED: &str = "cache.api_key_changed";
/// Event type of the listener's liveness probe (`{"probe": …}`).
const PROBE: &str = "cache.probe";
/// How often caches are cleared and the probe resent while the feed is not proven live.
pub const PROBE_INTERVAL: Duration = Duration::from_millis(250);
/// Longest wait before subscribing again after a failed or ended subscription.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// After a committed change of `tenant`: drops it here and tells every replica.
pub async fn tenant_changed(app: &App, tenant: TenantId) {
    app.inner().resolver.cache().invalidate(tenant);
    broadcast(app, TENANT_CHANGED, json!({ "tenant_id": tenant })).await;
}

/// After a revocation or rotation of `key`: drops it from the authentication cache here and on every replica.
pub async fn api_key_changed(app: &App, key: ApiKeyId) {
    app.inner().authenticator.api_keys().invalidate(key);
    broadcast(app, API_KEY_CHANGED, json!({ "api_key_id": key })).await;
}

/// Drops every cached tenant and API key of this replica.
pub fn clear_caches(app: &App) {
    app.inner().resolver.cache().clear();
    app.inner().authenticator.api_keys().clear();
}

fn system_ctx(app: &App) -> Ctx {
    Ctx::system(
        RequestId::generate(app.inner().ids.as_ref()),
        "cache-invalidation",
        None,
    )
}

async fn broadcast(app: &App, kind: &str, data: Value) {
    let event = BusEvent {
        kind: kind.to_owned(),
        data,
        timestamp: app.inner().clock.now(),
    };
    let published = app
        .inner()
        .events
        .publish(&system_ctx(app), Group::Platform, event)
        .await;
    if let Err(err) = published {
        tracing::warn!(kind, error = %err, "cache invalidation not broadcast; other replicas drop the entry when its TTL ends");
    }
}

/// Starts this replica's listener (one per process, next to the job runner); abort the handle to stop it.
pub fn spawn(app: App) -> JoinHandle<()> {
    tokio::spawn(run(app))
}

/// Subscribes to the platform group and applies invalidations, resubscribing (caches cleared) whenever the
/// subscription fails or ends. Never returns.
pub async fn run(app: App) {
    let mut backoff = Duration::from_millis(50);
    loop {
        match app
            .inner()
            .events
            .subscribe(&system_ctx(&app), &[Group::Platform])
            .await
        {
            Ok(subscription) => {
                backoff = Duration::from_millis(50);
                // Changes made before the subscription existed were not heard.
                clear_caches(&app);
                follow(&app, subscription).await;
                tracing::warn!("cache invalidation feed ended; caches cleared, subscribing again");
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot subscribe to cache invalidations; caches cleared, retrying");
            }
        }
        clear_caches(&app);
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Applies deliveries until the subscription ends.
async fn follow(app: &App, mut subscription: Box<dyn Subscription>) {
    // While `Some`, the feed had a gap and this probe has not come back yet.
    let mut probe: Option<String> = None;
    let mut tick = tokio::time::interval(PROBE_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            delivery = subscription.next() => match delivery {
                None => return,
                Some(Delivery::Lagged { missed }) => {
                    tracing::warn!(missed, "cache invalidations may have been missed; caches cleared");
                    clear_caches(app);
                    let nonce = probe.get_or_insert_with(|| uuid::Uuid::new_v4().to_string()).clone();
                    broadcast(app, PROBE, json!({ "probe": nonce })).await;
                }
                Some(Delivery::Event { event, .. }) => {
                    if event.kind == PROBE {
                        if probe.is_some() && event.data.get("probe").and_then(Value::as_str) == probe.as_deref() {
                            probe = None;
                            clear_caches(app);
                            tracing::info!("cache invalidation feed live again");
                        }
                    } else {
                        apply(app, &event);
                    }
                }
            },
            _ = tick.tick(), if probe.is_some() => {
                clear_caches(app);
                if let Some(nonce) = probe.clone() {
                    broadcast(app, PROBE, json!({ "probe": nonce })).await;
                }
            }
        }
    }
}

/// Applies one invalidation event (unknown types are ignored: newer replicas may send more).
fn apply(app: &App, event: &BusEvent) {
    let id = |field: &str| {
        event
            .data
            .get(field)
            .and_then(Value::as_str)
            .and_then(|s| uuid::Uuid::parse_str(s).ok())
    };
    match event.kind.as_str() {
        TENANT_CHANGED => match id("tenant_id") {
            Some(id) => app.inner().resolver.cache().invalidate(TenantId(id)),
            None => clear_caches(app),
        },
        API_KEY_CHANGED => match id("api_key_id") {
            Some(id) => app.inner().authenticator.api_keys().invalidate(ApiKeyId(id)),
            None => clear_caches(app),
        },
        _ => {}
    }
}
