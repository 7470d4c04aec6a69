//! `/ws/v2/events` (spec §8.5 `EventConsumer`): what is published to the caller's tenant group and, for users,
//! their user group, as `{"type": <event type>, "data", "timestamp"}` (`notification`, `session.updated`,
//! `settings.changed`, `theme.changed`, `billing.alert`, …).
//!
//! The subscription is made before the upgrade is answered, so an event published once the client has seen
//! `connection.established` is delivered. It goes through the [`EventBus`](avb_core::events::EventBus) port, so
//! with the Redis bus an event published on any replica arrives. API keys get the tenant group only: a key's
//! creator's personal notifications are not the key's to read.
//!
//! A subscriber that falls behind is told how many events it missed (`events.lagged {missed}`) instead of
//! holding the bus back. Client messages other than `ping` are answered with `unknown_message_type`.

use super::wire::{Inbound, Meter, Outbox, refuse_non_message, unknown_type};
use super::{CloseFrame, Consumer, FrameSource, normal_close};
use crate::app::App;
use avb_core::events::{Delivery, Subscription};
use serde_json::json;
use tokio::sync::mpsc;

/// An accepted event stream.
#[derive(Debug)]
pub(crate) struct EventsConsumer {
    app: App,
    subscription: Box<dyn Subscription>,
}

impl EventsConsumer {
    pub(crate) fn new(app: App, subscription: Box<dyn Subscription>) -> Self {
        Self { app, subscription }
    }

    pub(crate) async fn run<S: FrameSource>(
        self,
        mut incoming: S,
        outgoing: mpsc::Sender<String>,
    ) -> CloseFrame {
        let Self {
            app,
            mut subscription,
        } = self;
        let meter = Meter::open(&app, Consumer::Events);
        let out = Outbox::new(&app, outgoing);
        let mut received = 0u64;
        let mut open = out.established().await;
        let close = loop {
            if !open {
                break normal_close();
            }
            tokio::select! {
                biased;
                frame = incoming.next_frame() => {
                    let Some(frame) = frame else { break normal_close() };
                    received += 1;
                    let inbound = Inbound::parse(frame);
                    open = match &inbound {
                        Inbound::Message { kind, .. } if kind == "ping" => out.pong().await,
                        Inbound::Message { kind, .. } => unknown_type(&out, kind).await,
                        _ => refuse_non_message(&out, &inbound).await,
                    };
                }
                delivery = subscription.next() => match delivery {
                    Some(Delivery::Event { event, .. }) => {
                        open = out.event_at(&event.kind, event.data, event.timestamp).await;
                    }
                    Some(Delivery::Lagged { missed }) => {
                        open = out.event("events.lagged", json!({ "missed": missed })).await;
                    }
                    None => {
                        out.error("service_unavailable", "the event bus closed; reconnect").await;
                        break CloseFrame { code: 1012, reason: "event bus closed".into() };
                    }
                },
            }
        };
        meter.close(received, out.sent());
        close
    }
}
