//! `/ws/v2/admin/monitoring` (spec §8.2 `AdminMonitoringConsumer`, platform sysadmins only): the platform's live
//! numbers, pushed.
//!
//! After `connection.established` the consumer sends `monitoring.snapshot` at once and then every interval
//! (default [`DEFAULT_INTERVAL`]):
//!
//! ```json
//! {"type": "monitoring.snapshot", "timestamp": "…", "data": {
//!   "interval_ms": 5000,
//!   "summary": {"open_sessions": 3, "websocket_connections": {"realtime": 3, "admin_monitoring": 1}},
//!   "metrics": {"avb_active_sessions": [{"labels": {"tenant_id": "…"}, "value": 3.0}], …}}}
//! ```
//! `metrics` holds every counter and gauge of `/metrics` and each histogram's `_sum` and `_count`, read from the
//! app's own recorder ([`Metrics::snapshot`](crate::metrics::Metrics::snapshot)), so a dashboard and Prometheus
//! never disagree. The numbers are this replica's, like `/metrics`.
//!
//! Client messages: `ping` (→ `pong`); `monitoring.configure {"interval_ms"}` (between [`MIN_INTERVAL`] and
//! [`MAX_INTERVAL`]; → `monitoring.configured`, and the next snapshot one interval later); `monitoring.snapshot`
//! (one snapshot now). Anything else gets `unknown_message_type` or `validation_error`; the connection stays open.

use super::wire::{Inbound, Meter, Outbox, refuse_non_message, unknown_type};
use super::{CloseFrame, Consumer, FrameSource, normal_close};
use crate::app::App;
use crate::metrics::Sample;
use avb_core::ErrorCode;
use serde_json::{Map, Value, json};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};

/// Time between snapshots unless the client configures another.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);
/// Shortest interval a client may ask for.
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);
/// Longest interval a client may ask for.
pub const MAX_INTERVAL: Duration = Duration::from_secs(60);

/// An accepted monitoring connection.
#[derive(Debug)]
pub(crate) struct MonitoringConsumer {
    app: App,
}

impl MonitoringConsumer {
    pub(crate) fn new(app: App) -> Self {
        Self { app }
    }

    pub(crate) async fn run<S: FrameSource>(
        self,
        mut incoming: S,
        outgoing: mpsc::Sender<String>,
    ) -> CloseFrame {
        let app = self.app;
        let meter = Meter::open(&app, Consumer::Monitoring);
        let out = Outbox::new(&app, outgoing);
        let mut received = 0u64;
        let mut interval = DEFAULT_INTERVAL;
        let mut ticks = ticker(interval, Instant::now());
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
                        Inbound::Message { kind, .. } if kind == "monitoring.snapshot" => {
                            out.event("monitoring.snapshot", snapshot(&app, interval)).await
                        }
                        Inbound::Message { kind, body } if kind == "monitoring.configure" => {
                            match requested_interval(body) {
                                Ok(requested) => {
                                    interval = requested;
                                    ticks = ticker(interval, Instant::now() + interval);
                                    out.event("monitoring.configured", json!({ "interval_ms": millis(interval) }))
                                        .await
                                }
                                Err(reason) => out.error(ErrorCode::ValidationError.as_str(), reason).await,
                            }
                        }
                        Inbound::Message { kind, .. } => unknown_type(&out, kind).await,
                        _ => refuse_non_message(&out, &inbound).await,
                    };
                }
                _ = ticks.tick() => {
                    open = out.event("monitoring.snapshot", snapshot(&app, interval)).await;
                }
            }
        };
        meter.close(received, out.sent());
        close
    }
}

/// Ticks every `interval` from `start`; a slow client delays the next snapshot rather than receiving a burst.
fn ticker(interval: Duration, start: Instant) -> tokio::time::Interval {
    let mut ticks = tokio::time::interval_at(start, interval);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    ticks
}

fn millis(interval: Duration) -> u64 {
    u64::try_from(interval.as_millis()).unwrap_or(u64::MAX)
}

/// The `interval_ms` of a `monitoring.configure`, within bounds.
fn requested_interval(body: &Map<String, Value>) -> Result<Duration, String> {
    let bounds = format!(
        "\"interval_ms\" must be an integer from {} to {}",
        millis(MIN_INTERVAL),
        millis(MAX_INTERVAL)
    );
    let ms = body
        .get("interval_ms")
        .and_then(Value::as_u64)
        .ok_or_else(|| bounds.clone())?;
    let interval = Duration::from_millis(ms);
    if (MIN_INTERVAL..=MAX_INTERVAL).contains(&interval) {
        Ok(interval)
    } else {
        Err(bounds)
    }
}

/// The `data` of a snapshot: a summary and every sample grouped by series name.
fn snapshot(app: &App, interval: Duration) -> Value {
    let samples = app.inner().metrics.snapshot();
    let sum = |name: &str| -> f64 { samples.iter().filter(|s| s.name == name).map(|s| s.value).sum() };
    let mut connections = Map::new();
    for sample in samples.iter().filter(|s| s.name == "avb_websocket_connections") {
        if let Some(consumer) = sample.labels.get("consumer_type") {
            connections.insert(consumer.clone(), json!(sample.value));
        }
    }
    let mut metrics: Map<String, Value> = Map::new();
    for Sample { name, labels, value } in &samples {
        let entry = json!({ "labels": labels, "value": value });
        match metrics.get_mut(name) {
            Some(Value::Array(series)) => series.push(entry),
            _ => {
                metrics.insert(name.clone(), Value::Array(vec![entry]));
            }
        }
    }
    json!({
        "interval_ms": millis(interval),
        "summary": {
            "open_sessions": sum("avb_active_sessions"),
            "websocket_connections": connections,
        },
        "metrics": metrics,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn intervals_are_bounded() {
        let ask = |v: Value| requested_interval(json!({ "interval_ms": v }).as_object().unwrap());
        assert_eq!(ask(json!(2000)), Ok(Duration::from_secs(2)));
        assert_eq!(ask(json!(1000)), Ok(MIN_INTERVAL));
        assert_eq!(ask(json!(60_000)), Ok(MAX_INTERVAL));
        for bad in [
            json!(999),
            json!(60_001),
            json!(-5),
            json!("2000"),
            json!(1.5),
            Value::Null,
        ] {
            assert!(ask(bad.clone()).is_err(), "{bad}");
        }
        assert!(requested_interval(&Map::new()).is_err());
    }
}
