//! The session engine's observer: turns the server events worth keeping into session events (spec §9.3
//! `SessionEvent`: transcript, response, tool_call, tool_result, error, system) and tallies usage.
//!
//! The observer runs inline on the session task, so it only copies the few fields it keeps into an unbounded
//! channel (events arrive at conversation speed, a handful per turn; audio deltas are counted, never copied).
//! A writer task appends them in order; [`Recorder::finish`] waits until every accepted event is stored, so the
//! transcript is complete before the session record is closed.

use crate::app::App;
use avb_core::{Ctx, SessionId};
use avb_tenancy::model::SessionEventType;
use avb_tenancy::session::AppendEventRequest;
use avb_voice::realtime::engine::SessionObserver;
use avb_voice::realtime::protocol::{
    AudioFormat, ContentPart, Dialect, ItemKind, Role, ServerEvent, response_value,
};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Usage counted while the session ran.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    pub input_tokens: AtomicU64,
    pub output_tokens: AtomicU64,
    /// Output audio, in bytes of the output format at the time it was sent.
    pub output_audio_ms_x1000: AtomicU64,
    pub responses: AtomicU64,
    pub transcripts: AtomicU64,
    pub errors: AtomicU64,
    /// Server events sent (`avb_websocket_messages_total{direction="out"}`, flushed every 100).
    pub events_out: AtomicU64,
}

/// The observer handed to the engine.
#[derive(Debug)]
pub(crate) struct Observer {
    app: App,
    /// The connection's `consumer_type` label, for the sent-message count.
    label: [(&'static str, String); 1],
    dialect: Dialect,
    tx: mpsc::UnboundedSender<AppendEventRequest>,
    tally: Arc<Tally>,
    state: Mutex<ObserverState>,
}

#[derive(Debug, Default)]
struct ObserverState {
    output_format: Option<AudioFormat>,
    response_started: HashMap<String, Instant>,
}

/// The writer side: owns the task that appends events.
#[derive(Debug)]
pub(crate) struct Recorder {
    writer: JoinHandle<u64>,
    tally: Arc<Tally>,
}

impl Recorder {
    /// An observer for the engine and the recorder that stores what it sees for `session`.
    /// `label` is the connection's `consumer_type` metric label (sent events are counted under it).
    pub(crate) fn start(
        app: App,
        ctx: Ctx,
        session: SessionId,
        dialect: Dialect,
        label: [(&'static str, String); 1],
    ) -> (Arc<Observer>, Self) {
        let (tx, mut rx) = mpsc::unbounded_channel::<AppendEventRequest>();
        let tally = Arc::new(Tally::default());
        let timeout = app.inner().config.request_timeout;
        let observer_app = app.clone();
        let writer = tokio::spawn(async move {
            let mut stored = 0u64;
            while let Some(event) = rx.recv().await {
                let kind = event.event_type;
                let op = ctx.clone().with_timeout(timeout);
                match app.inner().sessions.append_event(&op, session, event).await {
                    Ok(_) => stored += 1,
                    Err(err) => {
                        tracing::warn!(%session, event_type = kind.as_str(), error = %err, "session event not stored");
                    }
                }
            }
            stored
        });
        let observer = Arc::new(Observer {
            app: observer_app,
            label,
            dialect,
            tx,
            tally: tally.clone(),
            state: Mutex::new(ObserverState::default()),
        });
        (observer, Self { writer, tally })
    }

    /// The usage counted so far.
    pub(crate) fn tally(&self) -> &Arc<Tally> {
        &self.tally
    }

    /// Waits until every event sent before the observer was dropped is stored; returns how many were.
    /// The engine (and with it the observer) must be gone, or this waits for it.
    pub(crate) async fn finish(self) -> u64 {
        self.writer.await.unwrap_or(0)
    }
}

impl Observer {
    fn record(&self, event_type: SessionEventType, content: Value, duration: Option<Duration>) {
        let duration_ms = duration.map(|d| u32::try_from(d.as_millis()).unwrap_or(u32::MAX));
        // The receiver lives until every observer is dropped; a send can only fail after `finish`.
        let _ = self.tx.send(AppendEventRequest {
            event_type,
            content,
            duration_ms,
        });
    }

    fn state(&self) -> std::sync::MutexGuard<'_, ObserverState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl SessionObserver for Observer {
    fn observe(&self, event: &ServerEvent) {
        let sent = self.tally.events_out.fetch_add(1, Ordering::Relaxed) + 1;
        if sent.is_multiple_of(100) {
            super::connection::flush_count(&self.app, &self.label, "out", 100);
        }
        match event {
            ServerEvent::ResponseAudioDelta { audio, .. } => {
                let format = self.state().output_format.unwrap_or(AudioFormat::Pcm16);
                let bytes = audio.len() as u64;
                // µs of audio: bytes / (bytes per ms) × 1000, kept as an integer sum.
                let per_ms = bytes_per_ms(format);
                self.tally
                    .output_audio_ms_x1000
                    .fetch_add(bytes.saturating_mul(1000) / per_ms, Ordering::Relaxed);
            }
            ServerEvent::SessionCreated { session } | ServerEvent::SessionUpdated { session } => {
                self.state().output_format = Some(session.config.output_format);
                let name = if matches!(event, ServerEvent::SessionCreated { .. }) {
                    "session.created"
                } else {
                    "session.updated"
                };
                let config = avb_voice::realtime::protocol::session_value(self.dialect, session);
                self.record(
                    SessionEventType::System,
                    json!({ "event": name, "session": config }),
                    None,
                );
            }
            ServerEvent::InputAudioTranscriptionCompleted {
                item_id, transcript, ..
            } => {
                self.tally.transcripts.fetch_add(1, Ordering::Relaxed);
                self.record(
                    SessionEventType::Transcript,
                    json!({ "role": "user", "source": "audio", "item_id": item_id, "text": transcript }),
                    None,
                );
            }
            ServerEvent::InputAudioTranscriptionFailed { item_id, error, .. } => {
                self.record(
                    SessionEventType::Error,
                    json!({ "event": "transcription.failed", "item_id": item_id, "code": error.code, "message": error.message }),
                    None,
                );
            }
            ServerEvent::ConversationItemAdded { item, .. } => match &item.kind {
                ItemKind::Message {
                    role: Role::User | Role::System,
                    content,
                } => {
                    let text: Vec<&str> = content
                        .iter()
                        .filter_map(|part| match part {
                            ContentPart::InputText { text } => Some(text.as_str()),
                            _ => None,
                        })
                        .collect();
                    if !text.is_empty() {
                        self.tally.transcripts.fetch_add(1, Ordering::Relaxed);
                        let role = match &item.kind {
                            ItemKind::Message { role, .. } => role.as_str(),
                            _ => "user",
                        };
                        self.record(
                            SessionEventType::Transcript,
                            json!({ "role": role, "source": "text", "item_id": item.id, "text": text.join("") }),
                            None,
                        );
                    }
                }
                ItemKind::FunctionCallOutput { call_id, output } => self.record(
                    SessionEventType::ToolResult,
                    json!({ "item_id": item.id, "call_id": call_id, "output": output }),
                    None,
                ),
                ItemKind::Message { .. } | ItemKind::FunctionCall { .. } => {}
            },
            ServerEvent::ConversationItemTruncated {
                item_id,
                content_index,
                audio_end_ms,
            } => self.record(
                SessionEventType::System,
                json!({ "event": "conversation.item.truncated", "item_id": item_id, "content_index": content_index, "audio_end_ms": audio_end_ms }),
                None,
            ),
            ServerEvent::ConversationItemDeleted { item_id } => self.record(
                SessionEventType::System,
                json!({ "event": "conversation.item.deleted", "item_id": item_id }),
                None,
            ),
            ServerEvent::ResponseCreated { response } => {
                self.state()
                    .response_started
                    .insert(response.id.clone(), Instant::now());
            }
            ServerEvent::ResponseDone { response } => {
                let took = self
                    .state()
                    .response_started
                    .remove(&response.id)
                    .map(|at| at.elapsed());
                self.tally.responses.fetch_add(1, Ordering::Relaxed);
                if let Some(usage) = &response.usage {
                    self.tally
                        .input_tokens
                        .fetch_add(usage.input_tokens, Ordering::Relaxed);
                    self.tally
                        .output_tokens
                        .fetch_add(usage.output_tokens, Ordering::Relaxed);
                }
                for item in &response.output {
                    if let ItemKind::FunctionCall {
                        call_id,
                        name,
                        arguments,
                    } = &item.kind
                    {
                        self.record(
                            SessionEventType::ToolCall,
                            json!({ "response_id": response.id, "item_id": item.id, "call_id": call_id, "name": name, "arguments": arguments }),
                            None,
                        );
                    }
                }
                let text: String = response
                    .output
                    .iter()
                    .filter_map(|item| match &item.kind {
                        ItemKind::Message { content, .. } => Some(content),
                        _ => None,
                    })
                    .flatten()
                    .filter_map(|part| match part {
                        ContentPart::Text { text } => Some(text.as_str()),
                        ContentPart::Audio { transcript, .. } => transcript.as_deref(),
                        _ => None,
                    })
                    .collect();
                let mut value = response_value(self.dialect, response);
                if let Some(map) = value.as_object_mut() {
                    map.insert("text".into(), json!(text));
                    // The items are already summarised; keep the stored event small.
                    if let Some(Value::Array(items)) = map.get("output") {
                        let ids: Vec<Value> = items.iter().filter_map(|i| i.get("id").cloned()).collect();
                        map.insert("output".into(), Value::Array(ids));
                    }
                }
                self.record(SessionEventType::Response, value, took);
            }
            ServerEvent::Error { error } => {
                self.tally.errors.fetch_add(1, Ordering::Relaxed);
                self.record(
                    SessionEventType::Error,
                    json!({ "type": error.kind, "code": error.code, "message": error.message, "param": error.param, "event_id": error.event_id }),
                    None,
                );
            }
            // Deltas, lifecycle and read events (`conversation.item.retrieved`) add nothing the events above do
            // not already keep.
            _ => {}
        }
    }
}

/// Bytes per millisecond of audio in `format`.
fn bytes_per_ms(format: AudioFormat) -> u64 {
    // pcm16 is 2 bytes per sample; G.711 1 byte per sample.
    let rate = u64::from(format.sample_rate());
    let width = if format == AudioFormat::Pcm16 { 2 } else { 1 };
    (rate * width / 1000).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audio_byte_rates() {
        assert_eq!(bytes_per_ms(AudioFormat::Pcm16), 48);
        assert_eq!(bytes_per_ms(AudioFormat::G711Ulaw), 8);
    }
}
