//! `/ws/v2/sessions/{id}` (spec §8.6 `SessionConsumer`): the spec's voice-session messages, translated onto the
//! realtime engine.
//!
//! The connection is a [`RealtimeConnection`] in the GA dialect with a translator on each side, so the session
//! record (`created → active → completed`), the stored events, usage metering, idle timeout, maximum duration
//! and operator termination are exactly those of `/v1/realtime`.
//!
//! | client message | engine event(s) |
//! |---|---|
//! | `ping` | answered `pong`; passed on as an empty `input_audio_buffer.append` (a no-op) so heartbeats count as activity for the idle timeout |
//! | `audio.chunk {audio}` | `input_audio_buffer.append` (base64 in the session's input format) |
//! | `audio.commit` (extension) | `input_audio_buffer.commit` — ends an utterance without asking for a reply |
//! | `session.update {config}` | `session.update` ([`ga_session`]: `instructions`, `voice`, `speed`, `modalities`, `turn_detection`, `language`, `input_format`/`output_format`, `max_output_tokens`) |
//! | `response.create {messages?, instructions?, modalities?}` | pending audio committed, one `conversation.item.create` per message, `response.create` |
//! | `session.end` | the engine's input closes; the record is completed |
//!
//! | engine event | server message |
//! |---|---|
//! | `session.created` | `session.state {session_id, status, created_at, started_at, config}` |
//! | `session.updated` | `session.updated {config}` |
//! | `…input_audio_transcription.delta` / `.completed` | `transcription.partial {item_id, delta, text}` / `transcription.final {item_id, text}` |
//! | `response.created` | `response.started {response_id}` |
//! | `response.output_text.delta`, `response.output_audio_transcript.delta` | `response.delta {response_id, item_id, delta}` |
//! | `response.output_audio.delta` | `audio.delta {response_id, item_id, audio}` |
//! | `response.done` | `response.done {response_id, status, status_details, text, usage}` |
//! | `error`, `…transcription.failed` | `error {code, message}` |
//! | (the session ended) | `session.ended {session_id, status, …usage}`, then the close |
//!
//! Other engine events (item bookkeeping, VAD boundaries, function calls) have no counterpart in the spec and
//! are not sent; tools are therefore not usable over this protocol.

use super::wire::{Inbound, Outbox, codes, config_field, refuse_non_message, str_field, unknown_type};
use super::{ClientFrame, CloseFrame, FrameSource};
use crate::app::App;
use crate::realtime::RealtimeConnection;
use avb_core::Ctx;
use avb_tenancy::model::Session;
use avb_voice::audio::AudioFormat;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// An accepted session connection.
#[derive(Debug)]
pub(crate) struct SessionConsumer {
    app: App,
    ctx: Ctx,
    record: Session,
    connection: RealtimeConnection,
}

impl SessionConsumer {
    pub(crate) fn new(app: App, ctx: Ctx, record: Session, connection: RealtimeConnection) -> Self {
        Self {
            app,
            ctx,
            record,
            connection,
        }
    }

    pub(crate) async fn run<S: FrameSource>(self, incoming: S, outgoing: mpsc::Sender<String>) -> CloseFrame {
        let Self {
            app,
            ctx,
            record,
            connection,
        } = self;
        let out = Outbox::new(&app, outgoing);
        out.established().await;

        let (to_engine, engine_in) = mpsc::channel::<ClientFrame>(32);
        let (engine_out, from_engine) = mpsc::channel::<String>(64);
        // Audio appended since the last commit: `response.create` commits it first, as the spec's client expects a
        // reply to what it just said.
        let pending_audio = Arc::new(AtomicBool::new(false));
        let stopped = CancellationToken::new();

        let session = {
            let stopped = stopped.clone();
            async move {
                let close = connection.run(engine_in, engine_out).await;
                stopped.cancel();
                close
            }
        };
        let inbound = forward_client(incoming, to_engine, out.clone(), pending_audio.clone(), stopped);
        let outbound = forward_engine(from_engine, out.clone(), pending_audio, &record);
        let (close, (), started) = tokio::join!(session, inbound, outbound);

        if started {
            let data = ended_data(&app, &ctx, &record, &close).await;
            out.event("session.ended", data).await;
        }
        close
    }
}

/// Client messages → engine events, until the client closes or ends the session, or the session ends.
async fn forward_client<S: FrameSource>(
    mut incoming: S,
    to_engine: mpsc::Sender<ClientFrame>,
    out: Outbox,
    pending_audio: Arc<AtomicBool>,
    stopped: CancellationToken,
) {
    loop {
        let frame = tokio::select! {
            biased;
            () = stopped.cancelled() => return,
            frame = incoming.next_frame() => frame,
        };
        let Some(frame) = frame else { return };
        let inbound = Inbound::parse(frame);
        let Inbound::Message { kind, body } = inbound else {
            if !refuse_non_message(&out, &inbound).await {
                return;
            }
            continue;
        };
        let events = match kind.as_str() {
            "ping" => {
                if !out.pong().await {
                    return;
                }
                vec![json!({ "type": "input_audio_buffer.append", "audio": "" })]
            }
            "session.end" => return,
            _ => match translate_client(&kind, &body, &pending_audio) {
                Ok(events) => events,
                Err(Refusal::Unknown) => {
                    if !unknown_type(&out, &kind).await {
                        return;
                    }
                    continue;
                }
                Err(Refusal::Invalid(code, message)) => {
                    if !out.error(code, message).await {
                        return;
                    }
                    continue;
                }
            },
        };
        for event in events {
            if to_engine
                .send(ClientFrame::Text(event.to_string().into()))
                .await
                .is_err()
            {
                return;
            }
        }
    }
}

/// Why a client message was not passed on.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Refusal {
    /// No such message type.
    Unknown,
    /// A known type with unusable fields: the `error` code and message.
    Invalid(&'static str, String),
}

/// The engine events (GA dialect) one client message stands for.
fn translate_client(
    kind: &str,
    body: &Map<String, Value>,
    pending_audio: &AtomicBool,
) -> Result<Vec<Value>, Refusal> {
    match kind {
        "audio.chunk" => {
            let audio = str_field(body, "audio")
                .filter(|a| !a.is_empty())
                .ok_or_else(|| Refusal::Invalid(codes::INVALID_AUDIO, "Audio data required".into()))?;
            pending_audio.store(true, Ordering::Relaxed);
            Ok(vec![
                json!({ "type": "input_audio_buffer.append", "audio": audio }),
            ])
        }
        "audio.commit" => {
            pending_audio.store(false, Ordering::Relaxed);
            Ok(vec![json!({ "type": "input_audio_buffer.commit" })])
        }
        "session.update" => {
            let config = config_field(body).map_err(|m| Refusal::Invalid(codes::INVALID_MESSAGE, m))?;
            let session =
                ga_session(&config, false).map_err(|m| Refusal::Invalid(codes::INVALID_MESSAGE, m))?;
            Ok(vec![json!({ "type": "session.update", "session": session })])
        }
        "response.create" => {
            let items = message_items(body.get("messages"))
                .map_err(|m| Refusal::Invalid(codes::INVALID_MESSAGE, m))?;
            let params = response_params(body).map_err(|m| Refusal::Invalid(codes::INVALID_MESSAGE, m))?;
            let mut events = Vec::with_capacity(items.len() + 2);
            if pending_audio.swap(false, Ordering::Relaxed) {
                events.push(json!({ "type": "input_audio_buffer.commit" }));
            }
            events.extend(
                items
                    .into_iter()
                    .map(|item| json!({ "type": "conversation.item.create", "item": item })),
            );
            events.push(json!({ "type": "response.create", "response": params }));
            Ok(events)
        }
        _ => Err(Refusal::Unknown),
    }
}

/// A GA `session` object from a spec session `config` (`initial`: the configuration the session starts with,
/// which also turns input transcription on so `transcription.final` is sent). Unknown keys are ignored, like
/// the engine ignores unknown fields; `model` is chosen when the session starts and cannot change.
pub(crate) fn ga_session(config: &Map<String, Value>, initial: bool) -> Result<Value, String> {
    let mut session = Map::new();
    session.insert("type".into(), json!("realtime"));
    let mut input = Map::new();
    let mut output = Map::new();
    if let Some(instructions) = config.get("instructions") {
        session.insert("instructions".into(), instructions.clone());
    }
    if let Some(modalities) = config
        .get("output_modalities")
        .or_else(|| config.get("modalities"))
    {
        session.insert("output_modalities".into(), modalities.clone());
    }
    if let Some(max) = config.get("max_output_tokens") {
        session.insert("max_output_tokens".into(), max.clone());
    }
    if let Some(voice) = config.get("voice") {
        output.insert("voice".into(), voice.clone());
    }
    if let Some(speed) = config.get("speed") {
        output.insert("speed".into(), speed.clone());
    }
    if let Some(format) = config.get("output_format") {
        output.insert("format".into(), ga_format(format, "output_format")?);
    }
    if let Some(format) = config.get("input_format") {
        input.insert("format".into(), ga_format(format, "input_format")?);
    }
    if let Some(turn_detection) = config.get("turn_detection") {
        input.insert("turn_detection".into(), turn_detection.clone());
    }
    let language = config.get("language");
    if initial || language.is_some() {
        let mut transcription = Map::new();
        if let Some(language) = language {
            transcription.insert("language".into(), language.clone());
        }
        input.insert("transcription".into(), Value::Object(transcription));
    }
    let mut audio = Map::new();
    if !input.is_empty() {
        audio.insert("input".into(), Value::Object(input));
    }
    if !output.is_empty() {
        audio.insert("output".into(), Value::Object(output));
    }
    if !audio.is_empty() {
        session.insert("audio".into(), Value::Object(audio));
    }
    Ok(Value::Object(session))
}

/// `"pcm16"`, `"g711_ulaw"`, `"g711_alaw"` (the spec-era names) as a GA format object.
fn ga_format(value: &Value, field: &str) -> Result<Value, String> {
    let name = value
        .as_str()
        .ok_or_else(|| format!("\"{field}\" must be one of pcm16, g711_ulaw, g711_alaw"))?;
    let format = AudioFormat::from_beta_name(name).map_err(|e| format!("\"{field}\": {e}"))?;
    let mut object = Map::new();
    object.insert("type".into(), json!(format.ga_type()));
    if let Some(rate) = format.ga_rate() {
        object.insert("rate".into(), json!(rate));
    }
    Ok(Value::Object(object))
}

/// The conversation items of `response.create`'s `messages` (`[{role, content}]`, chat style: `content` a string
/// or a list of strings / `{text}` parts; `role` `user` (default), `system` or `assistant`).
fn message_items(messages: Option<&Value>) -> Result<Vec<Value>, String> {
    let messages = match messages {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(messages)) => messages,
        Some(_) => return Err("\"messages\" must be a list".into()),
    };
    messages
        .iter()
        .enumerate()
        .map(|(i, message)| {
            let role = message.get("role").and_then(Value::as_str).unwrap_or("user");
            let part_type = match role {
                "user" | "system" => "input_text",
                "assistant" => "output_text",
                other => {
                    return Err(format!(
                        "messages[{i}].role {other:?} is not one of user, system, assistant"
                    ));
                }
            };
            let text = match message.get("content") {
                Some(Value::String(text)) => text.clone(),
                Some(Value::Array(parts)) => parts
                    .iter()
                    .map(|part| match part {
                        Value::String(text) => Some(text.as_str()),
                        other => other.get("text").and_then(Value::as_str),
                    })
                    .collect::<Option<Vec<&str>>>()
                    .map(|parts| parts.concat())
                    .ok_or_else(|| format!("messages[{i}].content parts must be strings or {{\"text\"}}"))?,
                _ => {
                    return Err(format!(
                        "messages[{i}].content must be a string or a list of parts"
                    ));
                }
            };
            Ok(json!({
                "type": "message",
                "role": role,
                "content": [{ "type": part_type, "text": text }],
            }))
        })
        .collect()
}

/// The GA `response` parameters of a spec `response.create` (`instructions`, `modalities`, `max_output_tokens`).
fn response_params(body: &Map<String, Value>) -> Result<Value, String> {
    let mut params = Map::new();
    if let Some(instructions) = body.get("instructions") {
        if !instructions.is_string() {
            return Err("\"instructions\" must be a string".into());
        }
        params.insert("instructions".into(), instructions.clone());
    }
    if let Some(modalities) = body.get("output_modalities").or_else(|| body.get("modalities")) {
        params.insert("output_modalities".into(), modalities.clone());
    }
    if let Some(max) = body.get("max_output_tokens") {
        params.insert("max_output_tokens".into(), max.clone());
    }
    Ok(Value::Object(params))
}

/// Engine frames → server messages, until the engine's output ends or the socket is gone. Returns whether the
/// session started (`session.created` came), i.e. whether `session.ended` is due.
async fn forward_engine(
    mut from_engine: mpsc::Receiver<String>,
    out: Outbox,
    pending_audio: Arc<AtomicBool>,
    record: &Session,
) -> bool {
    let mut translator = Translator::new(record);
    while let Some(frame) = from_engine.recv().await {
        let Ok(Value::Object(event)) = serde_json::from_str::<Value>(&frame) else {
            continue;
        };
        if matches!(
            str_field(&event, "type"),
            Some("input_audio_buffer.committed" | "input_audio_buffer.cleared")
        ) {
            pending_audio.store(false, Ordering::Relaxed);
        }
        let sent = match translator.translate(&event) {
            Outgoing::Event(kind, data) => out.event(kind, data).await,
            Outgoing::Error { code, message } => out.error(&code, message).await,
            Outgoing::Nothing => true,
        };
        if !sent {
            // The socket is gone: dropping the receiver ends the session like a client close.
            break;
        }
    }
    translator.started
}

/// What one engine event becomes.
#[derive(Debug, Clone, PartialEq)]
enum Outgoing {
    Event(&'static str, Value),
    Error { code: String, message: String },
    Nothing,
}

/// Translates engine events, keeping the little state the spec messages need.
#[derive(Debug)]
struct Translator {
    session_id: String,
    created_at: String,
    /// Transcription text so far, per user item (`transcription.partial` carries the whole hypothesis).
    partials: HashMap<String, String>,
    started: bool,
}

impl Translator {
    fn new(record: &Session) -> Self {
        Self {
            session_id: record.id.to_string(),
            created_at: super::wire::stamp(record.created_at),
            partials: HashMap::new(),
            started: false,
        }
    }

    fn translate(&mut self, event: &Map<String, Value>) -> Outgoing {
        let field = |name: &str| event.get(name).cloned().unwrap_or(Value::Null);
        match str_field(event, "type").unwrap_or_default() {
            "session.created" => {
                self.started = true;
                Outgoing::Event(
                    "session.state",
                    json!({
                        "session_id": self.session_id,
                        "status": "active",
                        "created_at": self.created_at,
                        "config": field("session"),
                    }),
                )
            }
            "session.updated" => Outgoing::Event("session.updated", json!({ "config": field("session") })),
            "conversation.item.input_audio_transcription.delta" => {
                let item_id = str_field(event, "item_id").unwrap_or_default().to_owned();
                let delta = str_field(event, "delta").unwrap_or_default();
                let text = self.partials.entry(item_id.clone()).or_default();
                text.push_str(delta);
                Outgoing::Event(
                    "transcription.partial",
                    json!({ "item_id": item_id, "delta": delta, "text": text }),
                )
            }
            "conversation.item.input_audio_transcription.completed" => {
                let item_id = str_field(event, "item_id").unwrap_or_default().to_owned();
                self.partials.remove(&item_id);
                Outgoing::Event(
                    "transcription.final",
                    json!({ "item_id": item_id, "text": field("transcript") }),
                )
            }
            "conversation.item.input_audio_transcription.failed" => {
                let item_id = str_field(event, "item_id").unwrap_or_default().to_owned();
                self.partials.remove(&item_id);
                engine_error(event.get("error"), "transcription_failed")
            }
            "response.created" => Outgoing::Event(
                "response.started",
                json!({ "response_id": event.get("response").and_then(|r| r.get("id")) }),
            ),
            "response.output_text.delta" | "response.output_audio_transcript.delta" => Outgoing::Event(
                "response.delta",
                json!({
                    "response_id": field("response_id"),
                    "item_id": field("item_id"),
                    "delta": field("delta"),
                }),
            ),
            "response.output_audio.delta" => Outgoing::Event(
                "audio.delta",
                json!({
                    "response_id": field("response_id"),
                    "item_id": field("item_id"),
                    "audio": field("delta"),
                }),
            ),
            "response.done" => {
                let response = event.get("response").cloned().unwrap_or(Value::Null);
                Outgoing::Event(
                    "response.done",
                    json!({
                        "response_id": response.get("id"),
                        "status": response.get("status"),
                        "status_details": response.get("status_details"),
                        "text": response_text(&response),
                        "usage": response.get("usage"),
                    }),
                )
            }
            "error" => engine_error(event.get("error"), "server_error"),
            _ => Outgoing::Nothing,
        }
    }
}

/// An engine `error` object as a spec error (its `code`, else its `type`, else `fallback`).
fn engine_error(error: Option<&Value>, fallback: &str) -> Outgoing {
    let text = |name: &str| error.and_then(|e| e.get(name)).and_then(Value::as_str);
    Outgoing::Error {
        code: text("code")
            .or_else(|| text("type"))
            .unwrap_or(fallback)
            .to_owned(),
        message: text("message").unwrap_or_default().to_owned(),
    }
}

/// The text (or spoken transcript) of a response's message items.
fn response_text(response: &Value) -> String {
    let Some(items) = response.get("output").and_then(Value::as_array) else {
        return String::new();
    };
    items
        .iter()
        .filter(|item| item.get("type").and_then(Value::as_str) == Some("message"))
        .filter_map(|item| item.get("content").and_then(Value::as_array))
        .flatten()
        .filter_map(|part| {
            part.get("text")
                .or_else(|| part.get("transcript"))
                .and_then(Value::as_str)
        })
        .collect()
}

/// `session.ended`'s data: the stored record as the session left it (status and usage), and why it ended.
async fn ended_data(app: &App, ctx: &Ctx, record: &Session, close: &CloseFrame) -> Value {
    let op = ctx.clone().with_timeout(app.inner().config.request_timeout);
    let reason = (!close.reason.is_empty()).then(|| close.reason.clone());
    match app.inner().sessions.get(&op, record.id).await {
        Ok(done) => json!({
            "session_id": done.id,
            "status": done.status.as_str(),
            "reason": reason,
            "started_at": done.started_at,
            "ended_at": done.ended_at,
            "duration_seconds": done.duration_seconds,
            "input_tokens": done.input_tokens,
            "output_tokens": done.output_tokens,
            "audio_duration_seconds": done.audio_duration_seconds,
        }),
        Err(err) => {
            tracing::warn!(session = %record.id, error = %err, "ended session not read back");
            json!({ "session_id": record.id, "status": Value::Null, "reason": reason })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn client_messages_become_engine_events() {
        let pending = AtomicBool::new(false);
        let events = translate_client("audio.chunk", &body(json!({"audio": "AAAA"})), &pending).unwrap();
        assert_eq!(
            events,
            [json!({"type": "input_audio_buffer.append", "audio": "AAAA"})]
        );
        assert!(pending.load(Ordering::Relaxed));

        // response.create commits the pending audio, then adds the messages, then asks for the reply.
        let events = translate_client(
            "response.create",
            &body(json!({"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": ["a", {"text": "b"}]}], "instructions": "Be brief."})),
            &pending,
        )
        .unwrap();
        let types: Vec<&str> = events.iter().filter_map(|e| e["type"].as_str()).collect();
        assert_eq!(
            types,
            [
                "input_audio_buffer.commit",
                "conversation.item.create",
                "conversation.item.create",
                "response.create"
            ]
        );
        assert_eq!(
            events[1]["item"]["content"][0],
            json!({"type": "input_text", "text": "Hi"})
        );
        assert_eq!(
            events[2]["item"]["content"][0],
            json!({"type": "output_text", "text": "ab"})
        );
        assert_eq!(events[3]["response"]["instructions"], "Be brief.");
        assert!(!pending.load(Ordering::Relaxed));

        // Without pending audio or messages, only the request.
        let events = translate_client("response.create", &body(json!({})), &pending).unwrap();
        assert_eq!(events, [json!({"type": "response.create", "response": {}})]);

        let events = translate_client(
            "session.update",
            &body(json!({"config": {"voice": "verse", "modalities": ["text"], "input_format": "g711_ulaw"}})),
            &pending,
        )
        .unwrap();
        assert_eq!(
            events[0]["session"],
            json!({"type": "realtime", "output_modalities": ["text"], "audio": {"input": {"format": {"type": "audio/pcmu"}}, "output": {"voice": "verse"}}})
        );
    }

    #[test]
    fn unusable_client_messages_are_refused_without_forwarding() {
        let pending = AtomicBool::new(false);
        for (kind, message, code) in [
            ("audio.chunk", json!({}), codes::INVALID_AUDIO),
            ("audio.chunk", json!({"audio": ""}), codes::INVALID_AUDIO),
            ("session.update", json!({"config": 3}), codes::INVALID_MESSAGE),
            (
                "session.update",
                json!({"config": {"input_format": "mp3"}}),
                codes::INVALID_MESSAGE,
            ),
            ("response.create", json!({"messages": {}}), codes::INVALID_MESSAGE),
            (
                "response.create",
                json!({"messages": [{"role": "robot", "content": "x"}]}),
                codes::INVALID_MESSAGE,
            ),
            (
                "response.create",
                json!({"messages": [{"content": 5}]}),
                codes::INVALID_MESSAGE,
            ),
            (
                "response.create",
                json!({"instructions": 5}),
                codes::INVALID_MESSAGE,
            ),
        ] {
            match translate_client(kind, &body(message.clone()), &pending) {
                Err(Refusal::Invalid(got, _)) => assert_eq!(got, code, "{kind} {message}"),
                other => panic!("{kind} {message}: {other:?}"),
            }
        }
        assert_eq!(
            translate_client("nope", &Map::new(), &pending),
            Err(Refusal::Unknown)
        );
        assert!(!pending.load(Ordering::Relaxed));
    }

    #[test]
    fn the_initial_configuration_turns_transcription_on() {
        let session = ga_session(&body(json!({"language": "en", "model": "x"})), true).unwrap();
        assert_eq!(
            session,
            json!({"type": "realtime", "audio": {"input": {"transcription": {"language": "en"}}}})
        );
        let session = ga_session(&Map::new(), false).unwrap();
        assert_eq!(session, json!({"type": "realtime"}));
    }

    fn translator() -> Translator {
        Translator {
            session_id: "s".into(),
            created_at: "t".into(),
            partials: HashMap::new(),
            started: false,
        }
    }

    #[test]
    fn engine_events_become_spec_messages() {
        let mut t = translator();
        let event = |v: Value| body(v);
        let Outgoing::Event(kind, data) =
            t.translate(&event(json!({"type": "session.created", "session": {"id": "x"}})))
        else {
            panic!("session.state expected");
        };
        assert_eq!(
            (kind, &data["status"], &data["config"]["id"]),
            ("session.state", &json!("active"), &json!("x"))
        );
        assert!(t.started);

        for delta in ["hel", "lo"] {
            t.translate(&event(json!({"type": "conversation.item.input_audio_transcription.delta", "item_id": "i", "delta": delta})));
        }
        assert_eq!(t.partials.get("i").map(String::as_str), Some("hello"));
        assert_eq!(
            t.translate(&event(json!({"type": "conversation.item.input_audio_transcription.completed", "item_id": "i", "transcript": "hello"}))),
            Outgoing::Event("transcription.final", json!({"item_id": "i", "text": "hello"}))
        );
        assert!(t.partials.is_empty());
        assert_eq!(
            t.translate(&event(
                json!({"type": "response.created", "response": {"id": "r"}})
            )),
            Outgoing::Event("response.started", json!({"response_id": "r"}))
        );
        assert_eq!(
            t.translate(&event(json!({"type": "response.output_audio_transcript.delta", "response_id": "r", "item_id": "m", "delta": "Hi"}))),
            Outgoing::Event("response.delta", json!({"response_id": "r", "item_id": "m", "delta": "Hi"}))
        );
        assert_eq!(
            t.translate(&event(json!({"type": "response.output_audio.delta", "response_id": "r", "item_id": "m", "delta": "AAAA"}))),
            Outgoing::Event("audio.delta", json!({"response_id": "r", "item_id": "m", "audio": "AAAA"}))
        );
        let Outgoing::Event("response.done", done) = t.translate(&event(json!({
            "type": "response.done",
            "response": {"id": "r", "status": "completed", "usage": {"output_tokens": 3},
                         "output": [{"type": "message", "content": [{"type": "output_audio", "transcript": "Hi there"}]},
                                    {"type": "function_call", "arguments": "{}"}]}
        }))) else {
            panic!("response.done expected");
        };
        assert_eq!(done["text"], "Hi there");
        assert_eq!(done["usage"]["output_tokens"], 3);
        assert_eq!(
            t.translate(&event(json!({"type": "error", "error": {"type": "invalid_request_error", "code": "invalid_value", "message": "bad"}}))),
            Outgoing::Error { code: "invalid_value".into(), message: "bad".into() }
        );
        assert_eq!(
            t.translate(&event(
                json!({"type": "error", "error": {"type": "server_error", "code": null, "message": "x"}})
            )),
            Outgoing::Error {
                code: "server_error".into(),
                message: "x".into()
            }
        );
        for ignored in [
            "conversation.item.added",
            "input_audio_buffer.committed",
            "rate_limits.updated",
            "response.function_call_arguments.done",
        ] {
            assert_eq!(
                t.translate(&event(json!({"type": ignored}))),
                Outgoing::Nothing,
                "{ignored}"
            );
        }
    }
}
