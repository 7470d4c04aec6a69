//! After the upgrade: one accepted session, run to its end.

use super::recorder::Recorder;
use crate::app::App;
use avb_core::events::{Delivery, Group, Subscription};
use avb_core::rate_limit::RateLimitPolicy;
use avb_core::{Ctx, SessionId, TenantId};
use avb_tenancy::model::{Session, SessionStatus};
use avb_tenancy::session::{FinishSessionRequest, SessionOutcome, SessionUsage};
use avb_voice::realtime::TextFrame;
use avb_voice::realtime::engine::{
    ClientInput, ClientSource, RealtimeSession, ResponseGate, SessionPorts, SessionSummary,
};
use avb_voice::realtime::protocol::{Dialect, ErrorObject, ServerEvent, SessionConfig, encode_server};
use avb_voice::realtime::protocol::{RateLimit, RateLimitName};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::time::Sleep;

/// Bus event that ends a live session (published by `POST /api/v2/sessions/{id}/terminate`, on any replica).
pub const SESSION_TERMINATED_EVENT: &str = "session.terminated";

/// How the adapter should close the socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseFrame {
    /// WebSocket close code: 1000 normal (also idle timeout and maximum duration, after an `error` event saying
    /// so: a client must not retry those), 1008 policy (terminated by an operator), 1011 server failure.
    pub code: u16,
    /// Short reason.
    pub reason: String,
}

/// A frame from the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientFrame {
    /// A text frame: one JSON event (shared with the transport's read buffer, see [`TextFrame`]).
    Text(TextFrame),
    /// A binary frame (not part of the protocol: answered with an `error` event, the session stays open).
    Binary(usize),
}

/// Where a connection's client frames come from: a channel fed by the adapter's socket reader, or the socket
/// itself — then the session's own task reads the socket, which saves a task wake-up and a channel hop per
/// 20 ms audio frame.
///
/// # Contract
/// - `next_frame` yields frames in arrival order, and `None` once the client closed or the socket failed.
/// - It is cancel-safe: the session polls it inside `select!` and drops the future when something else wakes
///   first, so dropping it must lose no frame.
pub trait FrameSource: Send {
    /// The next frame, or `None` at the end.
    fn next_frame(&mut self) -> impl std::future::Future<Output = Option<ClientFrame>> + Send;
}

impl FrameSource for mpsc::Receiver<ClientFrame> {
    async fn next_frame(&mut self) -> Option<ClientFrame> {
        self.recv().await
    }
}

/// Why the inbound side stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    ClientClosed,
    Idle,
    Expired,
    Terminated,
    EngineStopped,
}

/// An accepted realtime session (see [`App::realtime_accept`]).
#[derive(Debug)]
pub struct RealtimeConnection {
    app: App,
    ctx: Ctx,
    record: Session,
    dialect: Dialect,
    config: SessionConfig,
    ports: SessionPorts,
    /// `consumer_type` of its WebSocket metrics: `realtime` on `/v1/realtime`, `session` when `/ws/v2/sessions/{id}`
    /// drives it.
    consumer_type: &'static str,
}

impl RealtimeConnection {
    pub(crate) fn new(
        app: App,
        ctx: Ctx,
        record: Session,
        dialect: Dialect,
        config: SessionConfig,
        ports: SessionPorts,
    ) -> Self {
        Self {
            app,
            ctx,
            record,
            dialect,
            config,
            ports,
            consumer_type: "realtime",
        }
    }

    /// Counts this connection under another `consumer_type` (see the field).
    pub(crate) fn with_consumer_type(mut self, consumer_type: &'static str) -> Self {
        self.consumer_type = consumer_type;
        self
    }

    /// The stored session's id (also the protocol `session.id`, as `sess_<uuid without dashes>`).
    pub fn session_id(&self) -> SessionId {
        self.record.id
    }

    /// The tenant.
    pub fn tenant_id(&self) -> TenantId {
        self.record.tenant_id
    }

    /// The protocol dialect chosen at the handshake.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Runs the session until the client closes `incoming`, the session idles out or reaches its maximum
    /// duration, an operator terminates it, or `outgoing` is closed. Server frames (JSON text) go to
    /// `outgoing`; a full channel makes the session wait (backpressure, never loss). When this returns, the
    /// transcript and usage are stored and the session record is closed; send the [`CloseFrame`] and drop the
    /// socket.
    pub async fn run<S: FrameSource>(self, incoming: S, outgoing: mpsc::Sender<String>) -> CloseFrame {
        let Self {
            app,
            ctx,
            record,
            dialect,
            config,
            ports,
            consumer_type,
        } = self;
        let inner = app.inner();
        let settings = inner.config.realtime.clone();
        let timeout = inner.config.request_timeout;
        let op = || ctx.clone().with_timeout(timeout);
        let started = Instant::now();
        let tenant_label = [("tenant_id", record.tenant_id.to_string())];
        let kind_label = [("consumer_type", consumer_type.to_owned())];

        if let Err(err) = inner.sessions.start(&op(), record.id).await {
            tracing::warn!(session = %record.id, error = %err, "realtime session could not start");
            send_error(
                &outgoing,
                dialect,
                &app,
                ErrorObject::server_error("the session could not be started"),
            )
            .await;
            return CloseFrame {
                code: 1011,
                reason: "session could not start".into(),
            };
        }
        inner
            .metrics
            .gauge_add("avb_websocket_connections", &kind_label, 1.0);
        inner.metrics.gauge_add("avb_active_sessions", &tenant_label, 1.0);
        announce(&app, &op(), &record, "session.started", serde_json::json!({})).await;

        // Operators end sessions through the REST API, possibly on another replica: listen on the session group.
        let group = Group::Session {
            tenant: record.tenant_id,
            session: record.id,
        };
        let watch = match inner.events.subscribe(&op(), &[group]).await {
            Ok(sub) => Some(sub),
            Err(err) => {
                tracing::warn!(session = %record.id, error = %err, "session group not watched");
                None
            }
        };

        let (observer, recorder) =
            Recorder::start(app.clone(), ctx.clone(), record.id, dialect, kind_label.clone());
        let tally = recorder.tally().clone();
        // The engine writes to the adapter's channel itself (its frames are counted by the observer): a
        // forwarding step here would be one more channel hop per frame, and one more empty channel polled
        // every time the task wakes for a client frame.
        let engine = RealtimeSession::new(
            dialect,
            config,
            ports,
            inner.ids.clone(),
            ctx.clone(),
            outgoing.clone(),
        )
        .with_session_id(format!("sess_{}", record.id.as_uuid().simple()))
        .with_observer(observer);
        let engine = match crate::pipeline::rate_key(&ctx, ctx.client().ip, &inner.config.rate_limits) {
            Some((key, policy)) => engine.with_response_gate(Arc::new(RateGate {
                app: app.clone(),
                ctx: ctx.clone(),
                key,
                policy,
            })),
            None => engine,
        };

        // Client frames are read by the engine's own task (no forwarding task, no second channel per frame).
        let inbound = Inbound {
            incoming,
            terminated: Box::pin(watch_termination(watch)),
            expiry: Box::pin(tokio::time::sleep(settings.max_duration)),
            idle_timer: Box::pin(tokio::time::sleep(settings.idle_timeout)),
            idle: settings.idle_timeout,
            count: 0,
            app: app.clone(),
            label: kind_label.clone(),
            ending: None,
        };
        // When the engine is done its observer goes with it, which lets the recorder finish.
        let (summary, inbound) = engine.run_source(inbound).await;
        flush_count(&app, &kind_label, "in", inbound.count % 100);
        flush_count(
            &app,
            &kind_label,
            "out",
            tally.events_out.load(Ordering::Relaxed) % 100,
        );
        let ending = inbound.ending.unwrap_or(Ending::EngineStopped);
        let summary: SessionSummary = summary;
        let stored = recorder.finish().await;

        let close = match ending {
            Ending::ClientClosed | Ending::EngineStopped => CloseFrame {
                code: 1000,
                reason: String::new(),
            },
            Ending::Idle => CloseFrame {
                code: 1000,
                reason: "idle timeout".into(),
            },
            Ending::Expired => CloseFrame {
                code: 1000,
                reason: "session expired".into(),
            },
            Ending::Terminated => CloseFrame {
                code: 1008,
                reason: "session terminated".into(),
            },
        };
        let notice = match ending {
            Ending::Idle => Some(ErrorObject::invalid_request(
                "idle_timeout",
                format!(
                    "no client event for {} s; the session was closed",
                    settings.idle_timeout.as_secs()
                ),
            )),
            Ending::Expired => Some(ErrorObject::invalid_request(
                "session_expired",
                format!(
                    "Your session hit the maximum duration of {} minutes.",
                    settings.max_duration.as_secs() / 60
                ),
            )),
            Ending::Terminated => Some(ErrorObject::invalid_request(
                "session_terminated",
                "the session was terminated by an operator",
            )),
            Ending::ClientClosed | Ending::EngineStopped => None,
        };
        if let Some(error) = notice {
            send_error(&outgoing, dialect, &app, error).await;
        }

        let output_ms = tally.output_audio_ms_x1000.load(Ordering::Relaxed) / 1000;
        let usage = SessionUsage {
            input_tokens: tally.input_tokens.load(Ordering::Relaxed),
            output_tokens: tally.output_tokens.load(Ordering::Relaxed),
            audio_seconds: (summary.input_audio_ms + output_ms) as f64 / 1000.0,
        };
        let status = if ending == Ending::Terminated {
            SessionStatus::Terminated
        } else {
            match inner
                .sessions
                .finish(
                    &op(),
                    record.id,
                    FinishSessionRequest {
                        outcome: SessionOutcome::Completed,
                        usage,
                    },
                )
                .await
            {
                Ok(done) => done.status,
                Err(err) => {
                    // Terminated meanwhile (REST) or storage down: the cleanup job ends it later.
                    tracing::warn!(session = %record.id, error = %err, "realtime session not closed");
                    SessionStatus::Error
                }
            }
        };
        let seconds = started.elapsed().as_secs_f64();
        inner
            .metrics
            .gauge_add("avb_websocket_connections", &kind_label, -1.0);
        inner
            .metrics
            .gauge_add("avb_active_sessions", &tenant_label, -1.0);
        inner.metrics.count(
            "avb_sessions_total",
            &[
                ("tenant_id", record.tenant_id.to_string()),
                ("status", status.as_str().to_owned()),
            ],
            1,
        );
        inner
            .metrics
            .observe("avb_session_duration_seconds", &tenant_label, seconds);
        announce(
            &app,
            &op(),
            &record,
            "session.ended",
            serde_json::json!({ "status": status.as_str(), "duration_seconds": seconds }),
        )
        .await;
        tracing::info!(
            session = %record.id,
            tenant = %record.tenant_id,
            seconds,
            events_stored = stored,
            input_tokens = usage.input_tokens,
            output_tokens = usage.output_tokens,
            audio_seconds = usage.audio_seconds,
            close_code = close.code,
            "realtime_closed"
        );
        close
    }
}

/// Counts every response of a live session as one request against the caller's rate limit (the same key and
/// tier as the REST API: a session cannot be used to get around it) and reports the budget to the client as
/// `rate_limits.updated`.
#[derive(Debug)]
struct RateGate {
    app: App,
    ctx: Ctx,
    key: String,
    policy: RateLimitPolicy,
}

#[async_trait::async_trait]
impl ResponseGate for RateGate {
    async fn admit(&self) -> Result<Vec<RateLimit>, ErrorObject> {
        let inner = self.app.inner();
        let op = self.ctx.clone().with_timeout(inner.config.request_timeout);
        match inner.rate_limiter.check(&op, &self.key, self.policy).await {
            Ok(decision) if decision.allowed => Ok(vec![RateLimit {
                name: RateLimitName::Requests,
                limit: u64::from(decision.limit),
                remaining: u64::from(decision.remaining),
                reset_seconds: decision.reset_after.as_secs_f64(),
            }]),
            Ok(decision) => {
                let wait = decision.retry_after.unwrap_or(decision.reset_after);
                Err(ErrorObject::invalid_request(
                    "rate_limit_exceeded",
                    format!(
                        "Too many requests. Please try again in {} s.",
                        wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
                    ),
                ))
            }
            // The limiter already applied its fail-open/closed policy; an error here means "closed".
            Err(err) => {
                tracing::warn!(error = %err, "rate limiter unavailable for a realtime response");
                Err(ErrorObject::server_error(
                    "Rate limits are unavailable; try again shortly.",
                ))
            }
        }
    }
}

/// Tells the tenant group (dashboards on `/ws/v2/events`, any replica) that a session started or ended.
async fn announce(app: &App, ctx: &Ctx, record: &Session, kind: &str, extra: serde_json::Value) {
    let mut data = serde_json::json!({
        "session_id": record.id,
        "project_id": record.project_id,
        "api_key_id": record.api_key_id,
    });
    if let (Some(map), serde_json::Value::Object(extra)) = (data.as_object_mut(), extra) {
        map.extend(extra);
    }
    let event = avb_core::events::BusEvent {
        kind: kind.to_owned(),
        data,
        timestamp: app.inner().clock.now(),
    };
    let group = Group::Tenant {
        tenant: record.tenant_id,
    };
    if let Err(err) = app.inner().events.publish(ctx, group, event).await {
        tracing::warn!(session = %record.id, error = %err, "session event not broadcast");
    }
}

/// The client side of a live session as the engine reads it ([`ClientSource`]): text frames go to the engine,
/// binary frames are refused with an `error` event, and the input ends when the client closes, the session idles
/// out (no frame for the idle timeout), reaches its maximum duration, or an operator terminates it.
struct Inbound<S> {
    incoming: S,
    /// Resolves when an operator terminates the session (see [`watch_termination`]).
    terminated: Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
    /// One timer each for the whole session, re-armed per frame (not two new ones per 20 ms frame).
    expiry: Pin<Box<Sleep>>,
    idle_timer: Pin<Box<Sleep>>,
    idle: Duration,
    /// Frames received (metrics are flushed every 100).
    count: u64,
    app: App,
    label: [(&'static str, String); 1],
    /// Why the input ended, once it has.
    ending: Option<Ending>,
}

impl<S: FrameSource> ClientSource for Inbound<S> {
    // Cancel-safe: every branch of the `select!` is, and the bookkeeping after it does not await.
    async fn next(&mut self) -> Option<ClientInput> {
        if self.ending.is_some() {
            return None;
        }
        let frame = tokio::select! {
            biased;
            () = self.expiry.as_mut() => Err(Ending::Expired),
            () = self.terminated.as_mut() => Err(Ending::Terminated),
            () = self.idle_timer.as_mut() => Err(Ending::Idle),
            frame = self.incoming.next_frame() => frame.ok_or(Ending::ClientClosed),
        };
        let frame = match frame {
            Ok(frame) => frame,
            Err(ending) => {
                self.ending = Some(ending);
                return None;
            }
        };
        self.idle_timer
            .as_mut()
            .reset(tokio::time::Instant::now() + self.idle);
        self.count += 1;
        if self.count.is_multiple_of(100) {
            flush_count(&self.app, &self.label, "in", 100);
        }
        Some(match frame {
            ClientFrame::Text(text) => ClientInput::Text(text),
            ClientFrame::Binary(len) => ClientInput::Refused(ErrorObject::invalid_request(
                "invalid_frame",
                format!(
                    "binary frames are not part of the protocol ({len} bytes ignored); send JSON text frames"
                ),
            )),
        })
    }
}

/// Resolves when an operator terminates the session; never if there is no subscription.
///
/// The subscription is read by a task of its own that fires a oneshot: the session polls its input on every
/// 20 ms frame, and polling a subscription directly each time (a set of bus streams) was 3–4 % of the server's
/// CPU with a thousand streaming sessions, where polling a pending oneshot is a flag check. The task ends with
/// the returned future.
fn watch_termination(watch: Option<Box<dyn Subscription>>) -> impl std::future::Future<Output = ()> + Send {
    let (fired, fire) = tokio::sync::oneshot::channel::<()>();
    let watcher = watch.map(|sub| {
        AbortOnDrop(tokio::spawn(async move {
            terminated(sub).await;
            let _ = fired.send(());
        }))
    });
    async move {
        let _watcher = watcher;
        // `Err`: the watcher is gone without firing (no subscription): wait forever.
        if fire.await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Aborts the task when dropped (the session's termination watcher must not outlive the session).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Resolves when the session group says the session was terminated (never once the subscription has ended).
async fn terminated(mut sub: Box<dyn Subscription>) {
    while let Some(delivery) = sub.next().await {
        if matches!(&delivery, Delivery::Event { event, .. } if event.kind == SESSION_TERMINATED_EVENT) {
            return;
        }
    }
    std::future::pending().await
}

async fn send_error(out: &mpsc::Sender<String>, dialect: Dialect, app: &App, error: ErrorObject) {
    if let Some(frame) = encode_server(dialect, app.inner().ids.as_ref(), &ServerEvent::Error { error }) {
        let _ = out.send(frame).await;
    }
}

pub(super) fn flush_count(app: &App, label: &[(&'static str, String)], direction: &str, by: u64) {
    if by == 0 {
        return;
    }
    let mut labels = label.to_vec();
    labels.push(("direction", direction.to_owned()));
    app.inner()
        .metrics
        .count("avb_websocket_messages_total", &labels, by);
}
