//! Conformance checks for [`EventBus`] adapters: one check per point of the port's `# Contract`.
//!
//! Every check uses fresh random tenants, users and sessions (uuid v4), so the suite can run in parallel on a
//! shared Redis. "Nothing else arrives" is checked by waiting a short quiet period after a marker event.
// These are test assertions shipped as a library so adapter crates can run them: failing loudly is their job.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::events::{BusEvent, Delivery, EventBus, Group, Subscription};
use crate::{Ctx, Error, RequestId, SessionId, TenantId, UserId, UuidV7Ids};
use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::time::Duration;

/// How long a delivery that must arrive may take (generous: a loaded CI machine or a remote Redis).
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long to watch for a delivery that must not arrive.
const QUIET_PERIOD: Duration = Duration::from_millis(200);

fn random_tenant() -> TenantId {
    TenantId(uuid::Uuid::new_v4())
}

fn tenant_ctx(tenant: TenantId) -> Ctx {
    Ctx::system(RequestId::generate(&UuidV7Ids), "conformance:bus", Some(tenant))
}

fn user_group(tenant: TenantId) -> Group {
    Group::User {
        tenant,
        user: UserId(uuid::Uuid::new_v4()),
    }
}

fn session_group(tenant: TenantId) -> Group {
    Group::Session {
        tenant,
        session: SessionId(uuid::Uuid::new_v4()),
    }
}

fn event(kind: &str, n: i64) -> BusEvent {
    BusEvent {
        kind: kind.to_owned(),
        data: serde_json::json!({ "n": n }),
        timestamp: DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::seconds(n),
    }
}

/// The next delivery, which must be an event.
async fn next_event(sub: &mut Box<dyn Subscription>) -> (Group, BusEvent) {
    match tokio::time::timeout(DELIVERY_TIMEOUT, sub.next()).await {
        Ok(Some(Delivery::Event { group, event })) => (group, event),
        Ok(Some(Delivery::Lagged { missed })) => panic!("unexpected lag of {missed} events"),
        Ok(None) => panic!("the subscription ended"),
        Err(_) => panic!("no delivery within {DELIVERY_TIMEOUT:?}"),
    }
}

/// Nothing more arrives within the quiet period.
async fn assert_quiet(sub: &mut Box<dyn Subscription>) {
    if let Ok(delivery) = tokio::time::timeout(QUIET_PERIOD, sub.next()).await {
        panic!("expected no further delivery, got {delivery:?}");
    }
}

/// Every subscriber of a group receives every event published after it subscribed, exactly once and in
/// publish order.
pub async fn each_subscriber_receives_every_event_once_in_publish_order(bus: Arc<dyn EventBus>) {
    const EVENTS: i64 = 20;
    let tenant = random_tenant();
    let ctx = tenant_ctx(tenant);
    let group = Group::Tenant { tenant };
    let mut subs = Vec::new();
    for _ in 0..3 {
        subs.push(bus.subscribe(&ctx, &[group]).await.unwrap());
    }

    for n in 0..EVENTS {
        bus.publish(&ctx, group, event("notification", n)).await.unwrap();
    }
    for sub in &mut subs {
        for n in 0..EVENTS {
            let (got_group, got) = next_event(sub).await;
            assert_eq!(got_group, group);
            assert_eq!(got, event("notification", n), "events arrive in publish order");
        }
        assert_quiet(sub).await;
    }
}

/// A subscription never receives events of groups it did not subscribe to, including other groups of the same
/// tenant and the same kind of group of another tenant.
pub async fn subscription_receives_only_its_groups(bus: Arc<dyn EventBus>) {
    let (tenant, other_tenant) = (random_tenant(), random_tenant());
    let ctx = tenant_ctx(tenant);
    let other_ctx = tenant_ctx(other_tenant);
    let mine = user_group(tenant);
    let mut sub = bus.subscribe(&ctx, &[mine]).await.unwrap();

    bus.publish(&ctx, user_group(tenant), event("noise.other_user", 1))
        .await
        .unwrap();
    bus.publish(&ctx, Group::Tenant { tenant }, event("noise.tenant", 2))
        .await
        .unwrap();
    bus.publish(&ctx, session_group(tenant), event("noise.session", 3))
        .await
        .unwrap();
    bus.publish(
        &other_ctx,
        Group::Tenant { tenant: other_tenant },
        event("noise.other_tenant", 4),
    )
    .await
    .unwrap();
    bus.publish(&ctx, mine, event("marker", 5)).await.unwrap();

    let (group, got) = next_event(&mut sub).await;
    assert_eq!(
        (group, got),
        (mine, event("marker", 5)),
        "only the subscribed group's event arrives"
    );
    assert_quiet(&mut sub).await;
}

/// Subscribing to another tenant's group is refused with `not_found`, also when mixed with allowed groups.
pub async fn subscribing_to_another_tenants_group_is_refused(bus: Arc<dyn EventBus>) {
    let (tenant, other) = (random_tenant(), random_tenant());
    let ctx = tenant_ctx(tenant);
    for foreign in [
        Group::Tenant { tenant: other },
        user_group(other),
        session_group(other),
    ] {
        let refused = bus.subscribe(&ctx, &[foreign]).await;
        assert!(
            matches!(refused, Err(Error::NotFound { .. })),
            "{foreign:?} must be refused: {refused:?}"
        );
        let mixed = bus.subscribe(&ctx, &[Group::Tenant { tenant }, foreign]).await;
        assert!(
            matches!(mixed, Err(Error::NotFound { .. })),
            "a list with {foreign:?} must be refused"
        );
    }
}

/// Publishing to another tenant's group is refused with `not_found` and reaches nobody.
pub async fn publishing_to_another_tenants_group_is_refused(bus: Arc<dyn EventBus>) {
    let (tenant, other) = (random_tenant(), random_tenant());
    let target = Group::Tenant { tenant: other };
    let mut victim = bus.subscribe(&tenant_ctx(other), &[target]).await.unwrap();

    let refused = bus.publish(&tenant_ctx(tenant), target, event("forged", 1)).await;
    assert!(matches!(refused, Err(Error::NotFound { .. })), "got {refused:?}");
    assert_quiet(&mut victim).await;
}

/// A context without a tenant that may not act across tenants can neither publish nor subscribe.
pub async fn a_context_without_storage_scope_is_refused(bus: Arc<dyn EventBus>) {
    let group = Group::Tenant {
        tenant: random_tenant(),
    };
    let anonymous = Ctx::new(RequestId::generate(&UuidV7Ids), crate::Principal::Anonymous);
    assert!(bus.subscribe(&anonymous, &[group]).await.is_err());
    assert!(bus.publish(&anonymous, group, event("x", 1)).await.is_err());
}

/// Cross-tenant principals (system without a tenant) may publish to and subscribe to any tenant's groups.
pub async fn cross_tenant_context_may_use_any_tenants_groups(bus: Arc<dyn EventBus>) {
    let platform = Ctx::system(RequestId::generate(&UuidV7Ids), "conformance:bus", None);
    let group = user_group(random_tenant());
    let mut sub = bus.subscribe(&platform, &[group]).await.unwrap();
    bus.publish(&platform, group, event("billing.alert", 1))
        .await
        .unwrap();
    assert_eq!(next_event(&mut sub).await, (group, event("billing.alert", 1)));
}

/// The platform group carries events between system contexts without a tenant. Other replicas or tests may share
/// the group on a shared broker, so the check waits for its own event among any others.
pub async fn platform_group_reaches_system_subscribers(bus: Arc<dyn EventBus>) {
    let platform = Ctx::system(RequestId::generate(&UuidV7Ids), "conformance:bus", None);
    let mut sub = bus.subscribe(&platform, &[Group::Platform]).await.unwrap();
    let nonce = uuid::Uuid::new_v4().to_string();
    let mine = BusEvent {
        kind: "conformance.platform".to_owned(),
        data: serde_json::json!({ "nonce": nonce }),
        timestamp: DateTime::<Utc>::UNIX_EPOCH,
    };
    bus.publish(&platform, Group::Platform, mine.clone())
        .await
        .unwrap();
    loop {
        let (group, got) = next_event(&mut sub).await;
        assert_eq!(group, Group::Platform);
        if got == mine {
            break;
        }
    }
}

/// The platform group is refused (`not_found`) to tenant-scoped contexts, system ones included, and to
/// contexts without a storage scope; a refused publish reaches nobody.
pub async fn platform_group_is_refused_outside_system_contexts(bus: Arc<dyn EventBus>) {
    let platform = Ctx::system(RequestId::generate(&UuidV7Ids), "conformance:bus", None);
    let mut watcher = bus.subscribe(&platform, &[Group::Platform]).await.unwrap();
    let nonce = uuid::Uuid::new_v4().to_string();
    let forged = BusEvent {
        kind: "conformance.forged".to_owned(),
        data: serde_json::json!({ "nonce": nonce }),
        timestamp: DateTime::<Utc>::UNIX_EPOCH,
    };
    let anonymous = Ctx::new(RequestId::generate(&UuidV7Ids), crate::Principal::Anonymous);
    for ctx in [tenant_ctx(random_tenant()), anonymous] {
        let refused = bus.subscribe(&ctx, &[Group::Platform]).await;
        assert!(refused.is_err(), "{ctx:?} must not subscribe: {refused:?}");
        let refused = bus.publish(&ctx, Group::Platform, forged.clone()).await;
        assert!(refused.is_err(), "{ctx:?} must not publish: {refused:?}");
    }
    let scoped = tenant_ctx(random_tenant());
    assert!(matches!(
        bus.subscribe(&scoped, &[Group::Platform]).await,
        Err(Error::NotFound { .. })
    ));
    while let Ok(Some(delivery)) = tokio::time::timeout(QUIET_PERIOD, watcher.next()).await {
        if let Delivery::Event { event, .. } = delivery {
            assert_ne!(event, forged, "a refused publish was delivered");
        }
    }
}

/// Events published before `subscribe` returned are not replayed.
pub async fn events_published_before_subscribe_are_not_replayed(bus: Arc<dyn EventBus>) {
    let tenant = random_tenant();
    let ctx = tenant_ctx(tenant);
    let group = session_group(tenant);
    // A live subscriber keeps the group's channel in place, so "not replayed" is not an artefact of cleanup.
    let _early = bus.subscribe(&ctx, &[group]).await.unwrap();
    bus.publish(&ctx, group, event("before", 1)).await.unwrap();

    let mut late = bus.subscribe(&ctx, &[group]).await.unwrap();
    bus.publish(&ctx, group, event("after", 2)).await.unwrap();
    assert_eq!(next_event(&mut late).await, (group, event("after", 2)));
    assert_quiet(&mut late).await;
}

/// Publishing to a group nobody listens to succeeds and the event is dropped.
pub async fn publishing_without_subscribers_succeeds(bus: Arc<dyn EventBus>) {
    let tenant = random_tenant();
    let ctx = tenant_ctx(tenant);
    let group = Group::Tenant { tenant };
    bus.publish(&ctx, group, event("dropped", 1)).await.unwrap();

    let mut sub = bus.subscribe(&ctx, &[group]).await.unwrap();
    bus.publish(&ctx, group, event("kept", 2)).await.unwrap();
    assert_eq!(
        next_event(&mut sub).await,
        (group, event("kept", 2)),
        "the dropped event is not kept"
    );
}

/// One subscription receives the events of all its groups, each tagged with its group.
pub async fn one_subscription_receives_all_its_groups(bus: Arc<dyn EventBus>) {
    let tenant = random_tenant();
    let ctx = tenant_ctx(tenant);
    let (tenant_group, user) = (Group::Tenant { tenant }, user_group(tenant));
    let mut sub = bus.subscribe(&ctx, &[user, tenant_group]).await.unwrap();

    bus.publish(&ctx, tenant_group, event("theme.changed", 1))
        .await
        .unwrap();
    bus.publish(&ctx, user, event("notification", 2)).await.unwrap();
    let mut got = vec![next_event(&mut sub).await, next_event(&mut sub).await];
    // Order across groups is not part of the contract.
    got.sort_by_key(|(_, e)| e.timestamp);
    assert_eq!(
        got,
        vec![
            (tenant_group, event("theme.changed", 1)),
            (user, event("notification", 2))
        ]
    );
    assert_quiet(&mut sub).await;
}

/// Naming a group twice in one subscription still delivers each event once.
pub async fn duplicate_groups_in_one_subscription_deliver_once(bus: Arc<dyn EventBus>) {
    let tenant = random_tenant();
    let ctx = tenant_ctx(tenant);
    let group = Group::Tenant { tenant };
    let mut sub = bus.subscribe(&ctx, &[group, group]).await.unwrap();
    bus.publish(&ctx, group, event("once", 1)).await.unwrap();
    assert_eq!(next_event(&mut sub).await, (group, event("once", 1)));
    assert_quiet(&mut sub).await;
}

/// Dropping one subscription does not disturb the others of the same group, and the group can be subscribed
/// again afterwards.
pub async fn dropping_a_subscription_leaves_the_others_receiving(bus: Arc<dyn EventBus>) {
    let tenant = random_tenant();
    let ctx = tenant_ctx(tenant);
    let group = user_group(tenant);
    let mut stays = bus.subscribe(&ctx, &[group]).await.unwrap();
    let leaves = bus.subscribe(&ctx, &[group]).await.unwrap();
    drop(leaves);

    bus.publish(&ctx, group, event("after-drop", 1)).await.unwrap();
    assert_eq!(next_event(&mut stays).await, (group, event("after-drop", 1)));
    drop(stays);

    let mut again = bus.subscribe(&ctx, &[group]).await.unwrap();
    bus.publish(&ctx, group, event("resubscribed", 2)).await.unwrap();
    assert_eq!(next_event(&mut again).await, (group, event("resubscribed", 2)));
}

/// Turns every check of this module into its own `#[tokio::test]`, given an expression that evaluates to a
/// future of a fresh adapter (any `T: EventBus`). The expansion site needs `tokio` with `macros` and
/// `rt-multi-thread`.
///
/// ```text
/// avb_core::event_bus_conformance!(async { MemoryEventBus::new() });
/// ```
#[macro_export]
macro_rules! event_bus_conformance {
    ($factory:expr) => {
        $crate::event_bus_conformance!(@checks $factory;
            each_subscriber_receives_every_event_once_in_publish_order,
            subscription_receives_only_its_groups,
            subscribing_to_another_tenants_group_is_refused,
            publishing_to_another_tenants_group_is_refused,
            a_context_without_storage_scope_is_refused,
            cross_tenant_context_may_use_any_tenants_groups,
            events_published_before_subscribe_are_not_replayed,
            publishing_without_subscribers_succeeds,
            one_subscription_receives_all_its_groups,
            duplicate_groups_in_one_subscription_deliver_once,
            dropping_a_subscription_leaves_the_others_receiving,
            platform_group_reaches_system_subscribers,
            platform_group_is_refused_outside_system_contexts,
        );
    };
    (@checks $factory:expr; $($check:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let bus: ::std::sync::Arc<dyn $crate::events::EventBus> = ::std::sync::Arc::new(($factory).await);
                $crate::conformance::bus::$check(bus).await;
            }
        )+
    };
}
