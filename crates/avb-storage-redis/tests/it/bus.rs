//! The shared event-bus suite against [`RedisEventBus`], plus cross-replica delivery, tenant isolation on a
//! shared channel name, lag, unsubscribing and reconnecting after the server drops the connection.

use crate::common::{Scoped, fresh_store, raw, store_at};
use avb_core::events::{BusEvent, Delivery, EventBus, Group, Subscription};
use avb_core::{Ctx, RequestId, SessionId, TenantId, UserId, UuidV7Ids};
use avb_storage_redis::RedisEventBus;
use chrono::{DateTime, Utc};
use std::time::Duration;

avb_core::event_bus_conformance!(async {
    let (store, prefix) = fresh_store().await;
    Scoped {
        inner: store.event_bus().await.unwrap(),
        _prefix: prefix,
    }
});

const WAIT: Duration = Duration::from_secs(5);

fn ctx_of(tenant: TenantId) -> Ctx {
    Ctx::system(RequestId::generate(&UuidV7Ids), "it:bus", Some(tenant))
}

fn event(n: i64) -> BusEvent {
    BusEvent {
        kind: "notification".into(),
        data: serde_json::json!({ "n": n }),
        timestamp: DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::seconds(n),
    }
}

async fn next(sub: &mut Box<dyn Subscription>) -> Delivery {
    tokio::time::timeout(WAIT, sub.next())
        .await
        .expect("a delivery in time")
        .expect("the subscription is open")
}

async fn quiet(sub: &mut Box<dyn Subscription>) {
    if let Ok(got) = tokio::time::timeout(Duration::from_millis(200), sub.next()).await {
        panic!("expected nothing, got {got:?}");
    }
}

async fn numsub(channel: &str) -> i64 {
    let (_, n): (String, i64) = redis::cmd("PUBSUB")
        .arg("NUMSUB")
        .arg(channel)
        .query_async(&mut raw().await)
        .await
        .unwrap();
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_published_on_one_replica_reaches_subscribers_on_another() {
    let (first, prefix) = fresh_store().await;
    let second = store_at(&prefix).await;
    let (a, b) = (
        first.event_bus().await.unwrap(),
        second.event_bus().await.unwrap(),
    );
    let tenant = TenantId(uuid::Uuid::new_v4());
    let group = Group::Session {
        tenant,
        session: SessionId(uuid::Uuid::new_v4()),
    };
    let ctx = ctx_of(tenant);
    let mut on_a = a.subscribe(&ctx, &[group]).await.unwrap();
    let mut on_b = b.subscribe(&ctx, &[group]).await.unwrap();

    a.publish(&ctx, group, event(1)).await.unwrap();
    b.publish(&ctx, group, event(2)).await.unwrap();
    for sub in [&mut on_a, &mut on_b] {
        assert_eq!(
            next(sub).await,
            Delivery::Event {
                group,
                event: event(1)
            }
        );
        assert_eq!(
            next(sub).await,
            Delivery::Event {
                group,
                event: event(2)
            }
        );
    }
    let channel = format!("{}:group:{}", prefix.0, group.name());
    assert_eq!(
        numsub(&channel).await,
        2,
        "one connection per bus, on the spec's group name"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_group_sharing_a_channel_name_receives_nothing() {
    let (store, _prefix) = fresh_store().await;
    let bus = store.event_bus().await.unwrap();
    let (victim, attacker) = (TenantId(uuid::Uuid::new_v4()), TenantId(uuid::Uuid::new_v4()));
    let user = UserId(uuid::Uuid::new_v4());
    let real = Group::User { tenant: victim, user };
    // Same `user_{id}` channel, claimed under the attacker's own tenant (which its scope allows).
    let forged = Group::User {
        tenant: attacker,
        user,
    };
    let mut spy = bus.subscribe(&ctx_of(attacker), &[forged]).await.unwrap();
    let mut owner = bus.subscribe(&ctx_of(victim), &[real]).await.unwrap();

    bus.publish(&ctx_of(victim), real, event(1)).await.unwrap();
    assert_eq!(
        next(&mut owner).await,
        Delivery::Event {
            group: real,
            event: event(1)
        }
    );
    quiet(&mut spy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_subscriber_is_told_how_many_events_it_missed() {
    let (store, _prefix) = fresh_store().await;
    let bus = RedisEventBus::builder(&store).buffer(4).build().await.unwrap();
    let tenant = TenantId(uuid::Uuid::new_v4());
    let group = Group::Tenant { tenant };
    let ctx = ctx_of(tenant);
    let mut slow = bus.subscribe(&ctx, &[group]).await.unwrap();
    // Messages arrive on one connection in order: once the marker is through, all ten were dispatched.
    let marker_group = Group::User {
        tenant,
        user: UserId(uuid::Uuid::new_v4()),
    };
    let mut marker = bus.subscribe(&ctx, &[marker_group]).await.unwrap();

    for n in 0..10 {
        bus.publish(&ctx, group, event(n)).await.unwrap();
    }
    bus.publish(&ctx, marker_group, event(99)).await.unwrap();
    assert_eq!(
        next(&mut marker).await,
        Delivery::Event {
            group: marker_group,
            event: event(99)
        }
    );
    let mut seen = Vec::new();
    let mut missed = 0;
    while seen.len() + missed < 10 {
        match next(&mut slow).await {
            Delivery::Event { event, .. } => seen.push(event),
            Delivery::Lagged { missed: m } => missed += usize::try_from(m).unwrap(),
        }
    }
    assert_eq!(
        seen,
        (0..4).map(event).collect::<Vec<_>>(),
        "the buffered events, oldest first"
    );
    assert_eq!(missed, 6, "the rest is reported as missed");
    bus.publish(&ctx, group, event(11)).await.unwrap();
    assert_eq!(
        next(&mut slow).await,
        Delivery::Event {
            group,
            event: event(11)
        },
        "it catches up"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_subscription_of_a_group_unsubscribes_its_channel() {
    let (store, prefix) = fresh_store().await;
    let bus = store.event_bus().await.unwrap();
    let tenant = TenantId(uuid::Uuid::new_v4());
    let group = Group::Tenant { tenant };
    let channel = format!("{}:group:{}", prefix.0, group.name());
    let first = bus.subscribe(&ctx_of(tenant), &[group]).await.unwrap();
    let second = bus.subscribe(&ctx_of(tenant), &[group]).await.unwrap();
    assert_eq!(
        numsub(&channel).await,
        1,
        "one server subscription per bus and channel"
    );
    assert_eq!(bus.active_channels(), 1);

    drop(first);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(numsub(&channel).await, 1, "a local subscriber is left");
    drop(second);
    let deadline = tokio::time::Instant::now() + WAIT;
    while numsub(&channel).await != 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the channel was never unsubscribed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(bus.active_channels(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_resume_after_the_server_kills_the_pubsub_connection() {
    let (store, _prefix) = fresh_store().await;
    let bus = store.event_bus().await.unwrap();
    let tenant = TenantId(uuid::Uuid::new_v4());
    let ctx = ctx_of(tenant);
    let group = Group::Tenant { tenant };
    let mut sub = bus.subscribe(&ctx, &[group]).await.unwrap();
    bus.publish(&ctx, group, event(0)).await.unwrap();
    assert_eq!(
        next(&mut sub).await,
        Delivery::Event {
            group,
            event: event(0)
        }
    );

    // Only this bus's connection: other tests share the server. TYPE pubsub also proves it is counted as one.
    let before = bus.pubsub_connection_id().await.unwrap();
    let killed: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("ID")
        .arg(before)
        .arg("TYPE")
        .arg("pubsub")
        .query_async(&mut raw().await)
        .await
        .unwrap();
    assert_eq!(killed, 1, "the bus's pub/sub connection was killed");

    // Events published while the connection is down are lost (at-most-once), and the subscription is told so
    // (a lag of unknown size); keep publishing until the re-subscribed connection delivers again.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut n = 1;
    let mut told = false;
    let resumed_at = loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "events never flowed again"
        );
        bus.publish(&ctx, group, event(n)).await.unwrap();
        match tokio::time::timeout(Duration::from_millis(100), sub.next()).await {
            Ok(Some(Delivery::Event { event: got, .. })) => break got.timestamp,
            Ok(Some(Delivery::Lagged { missed: 0 })) if !told => told = true,
            Ok(other) => panic!("unexpected {other:?}"),
            Err(_) => n += 1,
        }
    };
    assert!(
        told,
        "the dropped connection was reported as a lag before events resumed"
    );
    assert!(resumed_at >= event(1).timestamp);
    let after = bus.pubsub_connection_id().await.unwrap();
    assert_ne!(before, after, "a new connection");

    // And it keeps flowing, in order.
    for m in 100..105 {
        bus.publish(&ctx, group, event(m)).await.unwrap();
    }
    let mut got = Vec::new();
    while got.len() < 5 {
        if let Delivery::Event { event: e, .. } = next(&mut sub).await
            && e.timestamp >= event(100).timestamp
        {
            got.push(e);
        }
    }
    assert_eq!(got, (100..105).map(event).collect::<Vec<_>>());
}

/// The race behind "no replay": an event already on its way to this bus's connection (the channel is busy with
/// other local subscribers) must not reach a subscription made after it was published.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_subscriber_on_a_busy_channel_never_sees_earlier_events() {
    let (store, _prefix) = fresh_store().await;
    let bus = store.event_bus().await.unwrap();
    let tenant = TenantId(uuid::Uuid::new_v4());
    let ctx = ctx_of(tenant);
    let group = Group::Tenant { tenant };
    let _early = bus.subscribe(&ctx, &[group]).await.unwrap();
    for round in 0..50 {
        bus.publish(&ctx, group, event(2 * round)).await.unwrap();
        let mut late = bus.subscribe(&ctx, &[group]).await.unwrap();
        bus.publish(&ctx, group, event(2 * round + 1)).await.unwrap();
        assert_eq!(
            next(&mut late).await,
            Delivery::Event {
                group,
                event: event(2 * round + 1)
            },
            "round {round}: the first delivery is the first event published after subscribe returned"
        );
    }
}
