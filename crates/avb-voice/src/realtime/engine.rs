//! The per-connection realtime session engine (reference §4–§9, §11): one [`RealtimeSession`] per WebSocket,
//! framework-free. The transport feeds client text frames in; encoded server frames come out of a bounded
//! channel in the connection's dialect.
//!
//! # Ordering
//! - `session.created` is the first frame ([`RealtimeSession::start`]).
//! - Client events are handled one at a time, in arrival order. `input_audio_buffer.commit` runs speech-to-text
//!   before it returns, so the transcription events precede any response the client asks for afterwards.
//! - At most one response is in progress; a second `response.create` is refused with an `error`
//!   (`conversation_already_has_active_response`), so the events of two responses never interleave.
//!   `response.done` is always the last event of a response, also when it is cancelled or fails.
//! - After `response.cancel` no delta of the cancelled response is sent.
//!
//! # Backpressure
//! Frames go into a bounded [`mpsc::Sender`]. When it is full the session waits for room: it then reads neither
//! client frames nor model output, so a slow client slows its own session (the model stream is pulled, never
//! buffered without bound). When the receiver is gone the session ends.

use super::TextFrame;
use super::protocol::{AudioBytes, TurnDetection};
use super::protocol::{
    AudioFormat, ClientEvent, ClientEventKind, ContentPart, ErrorObject, IdKind, Item, ItemKind,
    ItemPosition, ItemStatus, MaxOutputTokens, OutputModalities, OutputRef, PartRef, RateLimit, Response,
    ResponseInput, ResponseParams, ResponseStatus, Role, ServerEvent, SessionConfig, SessionObject,
    StatusDetails, StatusError, StatusReason, ToolChoice, TranscriptionUsage, UpdateLocks, Usage,
    decode_client, encode_server,
};
use super::protocol::{
    ConversationMode, Dialect, InputTokenDetails, OutputTokenDetails, TranscriptionConfig,
};
use crate::audio::AudioFormat as SampleFormat;
use crate::deadline::Deadline;
use crate::llm::{
    ChatEvent, ChatMessage, ChatRequest, ChatStream, LanguageModel, TokenUsage, ToolCall,
    ToolChoice as LlmToolChoice, ToolSpec,
};
use crate::stt::{SpeechToText, SttConfig, SttEvent};
use crate::tts::{TextToSpeech, TtsChunk, TtsConfig, TtsStream};
use crate::vad::{TurnDetectionConfig, TurnDetector, TurnEvent, VoiceActivityDetector};
use avb_core::{Ctx, IdGen};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Largest input audio buffer kept before `commit` (15 MiB, as the reference service allows).
pub const MAX_INPUT_AUDIO_BYTES: usize = 15 * 1024 * 1024;

/// Shortest audio `input_audio_buffer.commit` accepts, in milliseconds.
pub const MIN_COMMIT_MS: u64 = 100;

/// The speech and language engines a session uses.
#[derive(Debug, Clone)]
pub struct SessionPorts {
    /// The language model that writes the replies.
    pub llm: Arc<dyn LanguageModel>,
    /// Speech-to-text for committed input audio.
    pub stt: Arc<dyn SpeechToText>,
    /// Text-to-speech for audio replies.
    pub tts: Arc<dyn TextToSpeech>,
    /// The frame detector behind `server_vad` / `semantic_vad` turn detection (each session takes a
    /// [`fresh`](VoiceActivityDetector::fresh) copy). Without it turn detection stays off (push-to-talk only).
    pub vad: Option<Arc<dyn VoiceActivityDetector>>,
}

/// Sees every server event of a session, in order, before it is encoded and sent: how the application layer
/// persists transcripts, responses and tool calls, and meters usage, without the engine knowing about storage.
///
/// Called inline on the session's task, so it must be cheap and must not block: copy what matters into a
/// channel and do the I/O elsewhere. Audio deltas pass through here too; an observer that keeps them should
/// count bytes, not clone.
pub trait SessionObserver: Send + Sync + std::fmt::Debug {
    /// One event, in emission order (including events the connection's dialect does not send).
    fn observe(&self, event: &ServerEvent);
}

/// Admits each response before it starts: how the application applies its rate limits to a live session and
/// reports them (`rate_limits.updated`, sent right after `response.created` as OpenAI's service does).
///
/// `Err` refuses the response: the session answers with that `error` event (naming the client's `event_id`)
/// and stays open; no `response.created` is sent.
#[async_trait::async_trait]
pub trait ResponseGate: Send + Sync + std::fmt::Debug {
    /// Called once per response (client `response.create` and server-VAD turns alike).
    async fn admit(&self) -> Result<Vec<RateLimit>, ErrorObject>;
}

/// What a finished session did, for metering (see [`RealtimeSession::run`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionSummary {
    /// Milliseconds of input audio appended over the whole session.
    pub input_audio_ms: u64,
    /// Whether the session ended because its output channel closed (the client went away mid-send).
    pub output_closed: bool,
}

/// The output item being produced.
#[derive(Debug)]
enum Open {
    Message {
        item_id: String,
        output_index: u32,
        text: String,
        /// The chunks sent so far, as synthesized (joined once when the item closes: growing one buffer
        /// chunk by chunk copied the reply's audio over and over).
        audio: Vec<AudioBytes>,
        tts: Option<Box<dyn TtsStream>>,
    },
    Call {
        item_id: String,
        output_index: u32,
        call_id: String,
        name: String,
        arguments: String,
    },
}

/// The response in progress.
#[derive(Debug)]
struct Active {
    response: Response,
    in_conversation: bool,
    stream: Box<dyn ChatStream>,
    cancel: CancellationToken,
    open: Option<Open>,
    /// Set once the model is done while speech is still being synthesized: how the response ends.
    finishing: Option<(ResponseStatus, Option<StatusReason>)>,
    /// When the response's first audio was sent, and how many ms of audio have been sent since (pacing).
    audio_clock: Option<(tokio::time::Instant, u64)>,
    /// How far output audio may run ahead of real time.
    lead: Duration,
    /// The pacing timer, kept across polls (see [`Deadline`]).
    pacer: Deadline,
}

/// The next speech chunk, not before `ready_at` (cancel-safe: a sleep, then the port's cancel-safe call).
async fn paced_chunk(
    tts: &mut Box<dyn TtsStream>,
    pacer: &mut Deadline,
    ready_at: Option<tokio::time::Instant>,
) -> crate::Result<Option<TtsChunk>> {
    if let Some(at) = ready_at {
        pacer.until(at).await;
    }
    tts.next_chunk().await
}

/// When the next speech chunk may be sent: `None` while the audio sent is less than `lead` ahead of the time
/// since the response's first audio (output is paced to real time plus `lead`, so a barge-in is not queued
/// behind seconds of audio, and "audio sent" stays close to "audio played" for server-side truncation).
fn active_speech_ready_at(
    audio_clock: &Option<(tokio::time::Instant, u64)>,
    lead: Duration,
) -> Option<tokio::time::Instant> {
    let (first, sent_ms) = (*audio_clock)?;
    let ahead = Duration::from_millis(sent_ms).checked_sub(lead)?;
    Some(first + ahead)
}

/// The next output of the response in progress: model deltas, interleaved with speech chunks as the TTS
/// produces them (model first when both are ready); once the model is done, the rest of the speech.
/// Cancel-safe (both port streams are). A TTS whose `next_chunk` restarts its wait when dropped (the tone TTS with
/// a chunk delay longer than the model's token interval) lags behind the text until the model is done; nothing is
/// lost.
async fn next_output(active: &mut Active) -> Wake {
    let Active {
        stream,
        open,
        finishing,
        audio_clock,
        lead,
        pacer,
        ..
    } = active;
    let ready_at = active_speech_ready_at(audio_clock, *lead);
    let tts = match open {
        Some(Open::Message { tts: Some(tts), .. }) => Some(tts),
        _ => None,
    };
    match (finishing.is_some(), tts) {
        (true, Some(tts)) => Wake::Speech(paced_chunk(tts, pacer, ready_at).await),
        (true, None) => Wake::Speech(Ok(None)),
        (false, Some(tts)) => tokio::select! {
            biased;
            event = stream.next_event() => Wake::Model(event),
            chunk = paced_chunk(tts, pacer, ready_at) => Wake::Speech(chunk),
        },
        (false, None) => Wake::Model(stream.next_event().await),
    }
}

/// One input from the client's side of the connection, as a transport hands it to the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientInput {
    /// A text frame: one JSON client event.
    Text(TextFrame),
    /// Something the transport refused (a binary frame, say): answered with this `error` event, which the
    /// observer sees like the engine's own errors; the session stays open.
    Refused(ErrorObject),
}

/// Where a session's client input comes from: a channel, or a transport's own source that also watches idle
/// time and operator termination — which saves a task and a channel hop per 20 ms audio frame.
///
/// # Contract
/// - `next` returns the next input in arrival order, or `None` when the client side has ended (the session
///   then cancels any response in progress and stops).
/// - `next` is cancel-safe: the session polls it in a `select!` next to the response in progress and drops the
///   future when the response wakes first, so dropping it must lose nothing.
pub trait ClientSource: Send {
    /// The next input, or `None` at the end.
    fn next(&mut self) -> impl Future<Output = Option<ClientInput>> + Send;
}

impl ClientSource for mpsc::Receiver<String> {
    async fn next(&mut self) -> Option<ClientInput> {
        self.recv().await.map(|text| ClientInput::Text(text.into()))
    }
}

/// What happened while waiting in [`RealtimeSession::run`].
enum Wake {
    Frame(Option<ClientInput>),
    Model(crate::Result<Option<ChatEvent>>),
    Speech(crate::Result<Option<TtsChunk>>),
}

/// One realtime connection's state machine.
#[derive(Debug)]
pub struct RealtimeSession {
    dialect: Dialect,
    ids: Arc<dyn IdGen>,
    ctx: Ctx,
    ports: SessionPorts,
    out: mpsc::Sender<String>,
    session_id: String,
    conversation_id: String,
    config: SessionConfig,
    items: Vec<Item>,
    input_audio: Vec<u8>,
    /// The last append's samples, decoded for the turn detector (kept: one allocation, not one per frame).
    decoded: Vec<i16>,
    /// Session ms (since the first appended byte) of the first byte in `input_audio`.
    buffer_start_ms: u64,
    /// Session ms of all input audio appended so far.
    input_ms: u64,
    turn: Option<TurnDetector>,
    /// The configured turn detector could not be created (logged once; retried after the next config change).
    turn_unavailable: bool,
    /// The user item announced by `speech_started`, committed at `speech_stopped`.
    speech_item: Option<String>,
    audio_produced: bool,
    active: Option<Active>,
    closed: bool,
    observer: Option<Arc<dyn SessionObserver>>,
    gate: Option<Arc<dyn ResponseGate>>,
    output_lead: Duration,
}

/// Most decoded samples kept for the next append (1 s at 24 kHz; 20 ms frames need 480).
const MAX_KEPT_DECODED_SAMPLES: usize = 24_000;

/// Most input-buffer capacity carried over from one turn to the next (10 s of 24 kHz pcm16).
const RETAINED_INPUT_CAPACITY: usize = 480_000;

/// How far a response's audio may run ahead of real time by default ([`RealtimeSession::with_output_lead`]):
/// enough for a client's jitter buffer, short enough that a barge-in's `speech_started` and the cancelled
/// `response.done` are not queued behind seconds of audio in the socket.
pub const DEFAULT_OUTPUT_LEAD: Duration = Duration::from_millis(1_000);

impl RealtimeSession {
    /// A session speaking `dialect` with the effective `config`, sending frames to `out`.
    pub fn new(
        dialect: Dialect,
        config: SessionConfig,
        ports: SessionPorts,
        ids: Arc<dyn IdGen>,
        ctx: Ctx,
        out: mpsc::Sender<String>,
    ) -> Self {
        let session_id = IdKind::Session.generate(ids.as_ref());
        let conversation_id = IdKind::Conversation.generate(ids.as_ref());
        Self {
            dialect,
            ids,
            ctx,
            ports,
            out,
            session_id,
            conversation_id,
            config,
            items: Vec::new(),
            input_audio: Vec::new(),
            decoded: Vec::new(),
            buffer_start_ms: 0,
            input_ms: 0,
            turn: None,
            turn_unavailable: false,
            speech_item: None,
            audio_produced: false,
            active: None,
            closed: false,
            observer: None,
            gate: None,
            output_lead: DEFAULT_OUTPUT_LEAD,
        }
    }

    /// Paces output audio to real time plus `lead` (default [`DEFAULT_OUTPUT_LEAD`]); `Duration::MAX` sends
    /// speech as fast as it is synthesised.
    #[must_use]
    pub fn with_output_lead(mut self, lead: Duration) -> Self {
        self.output_lead = lead;
        self
    }

    /// Uses `id` as the protocol session id (`session.created`'s `session.id`) instead of a generated `sess_…`,
    /// so a client can correlate the socket with the stored session record.
    #[must_use]
    pub fn with_session_id(mut self, id: impl Into<String>) -> Self {
        self.session_id = id.into();
        self
    }

    /// Reports every server event to `observer` (see [`SessionObserver`]).
    #[must_use]
    pub fn with_observer(mut self, observer: Arc<dyn SessionObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Admits every response through `gate` (rate limits; see [`ResponseGate`]).
    #[must_use]
    pub fn with_response_gate(mut self, gate: Arc<dyn ResponseGate>) -> Self {
        self.gate = Some(gate);
        self
    }

    /// What the session did so far.
    pub fn summary(&self) -> SessionSummary {
        SessionSummary {
            input_audio_ms: self.input_ms,
            output_closed: self.closed,
        }
    }

    /// Reconfigures or drops the turn detector after the config changed. A new detector is created only when
    /// audio arrives ([`Self::ensure_turn_detector`]): until then its timeline would not move, so creating it
    /// later is the same as creating it now, and a connected session that never streams (most of them, at any
    /// moment) does not hold the detector's ~27 KiB of state.
    fn sync_turn_detector(&mut self) {
        self.turn_unavailable = false;
        let Some(settings) = self.config.turn_detection.as_ref().map(turn_settings) else {
            self.turn = None;
            self.speech_item = None;
            return;
        };
        if let Some(turn) = self.turn.as_mut()
            && let Err(err) = turn.set_config(settings)
        {
            tracing::warn!(error = %err, "turn detection settings refused");
        }
    }

    /// Creates the turn detector the config asks for, if there is none yet (see [`Self::sync_turn_detector`]).
    fn ensure_turn_detector(&mut self) {
        if self.turn.is_some() || self.turn_unavailable {
            return;
        }
        let Some(settings) = self.config.turn_detection.as_ref().map(turn_settings) else {
            return;
        };
        let Some(vad) = &self.ports.vad else {
            return;
        };
        let rate = to_sample_format(self.config.input_format).sample_rate();
        match TurnDetector::new(settings, vad.fresh(), rate) {
            Ok(turn) => self.turn = Some(turn.with_origin_ms(self.input_ms)),
            Err(err) => {
                // Said once per configuration, not once per frame.
                self.turn_unavailable = true;
                tracing::warn!(error = %err, "turn detection unavailable");
            }
        }
    }

    /// The effective session configuration.
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// The conversation, in order.
    pub fn items(&self) -> &[Item] {
        &self.items
    }

    /// Whether a response is in progress.
    pub fn has_active_response(&self) -> bool {
        self.active.is_some()
    }

    /// Whether the output channel is gone (the session can do nothing more).
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Sends `session.created` with the full effective configuration. Call once, first.
    pub async fn start(&mut self) {
        let session = self.session_object();
        self.emit(ServerEvent::SessionCreated { session }).await;
    }

    /// Runs the session: [`start`](Self::start), then client frames from `incoming` and the output of the
    /// response in progress, until `incoming` ends or the output channel closes. A response still in progress
    /// when `incoming` ends is cancelled. Returns what the session did, for metering.
    pub async fn run(self, incoming: mpsc::Receiver<String>) -> SessionSummary {
        self.run_source(incoming).await.0
    }

    /// [`run`](Self::run) over any [`ClientSource`], which is handed back at the end (it may know why the input
    /// ended).
    pub async fn run_source<S: ClientSource>(mut self, mut source: S) -> (SessionSummary, S) {
        self.start().await;
        while !self.closed {
            let wake = match self.active.as_mut() {
                Some(active) => tokio::select! {
                    biased;
                    frame = source.next() => Wake::Frame(frame),
                    output = next_output(active) => output,
                },
                None => Wake::Frame(source.next().await),
            };
            match wake {
                Wake::Frame(Some(ClientInput::Text(frame))) => self.handle_client(&frame).await,
                Wake::Frame(Some(ClientInput::Refused(error))) => self.emit_error(error, None).await,
                Wake::Frame(None) => {
                    if let Some(active) = self.active.take() {
                        active.cancel.cancel();
                    }
                    break;
                }
                Wake::Model(event) => self.on_model(event).await,
                Wake::Speech(chunk) => self.on_speech(chunk).await,
            }
        }
        (self.summary(), source)
    }

    /// Drives the response in progress to its end without reading client frames (tests, batch use).
    pub async fn finish_response(&mut self) {
        while !self.closed {
            let Some(active) = self.active.as_mut() else {
                return;
            };
            match next_output(active).await {
                Wake::Model(event) => self.on_model(event).await,
                Wake::Speech(chunk) => self.on_speech(chunk).await,
                Wake::Frame(_) => {}
            }
        }
    }

    /// Handles one client text frame. Malformed or refused events are answered with an `error` event naming
    /// the client's `event_id`; the session stays usable.
    pub async fn handle_client(&mut self, frame: &str) {
        match decode_client(self.dialect, frame) {
            Ok(event) => self.handle_event(event).await,
            Err(err) => self.emit(err.into_event()).await,
        }
    }

    async fn handle_event(&mut self, event: ClientEvent) {
        let event_id = event.event_id;
        match event.kind {
            ClientEventKind::SessionUpdate(update) => {
                let locks = UpdateLocks {
                    voice: self.audio_produced,
                };
                let mut next = self.config.clone();
                match next.apply(*update, locks) {
                    Ok(()) => {
                        let format_changed = next.input_format != self.config.input_format;
                        self.config = next;
                        if format_changed {
                            self.turn = None;
                        }
                        self.sync_turn_detector();
                        let session = self.session_object();
                        self.emit(ServerEvent::SessionUpdated { session }).await;
                    }
                    Err(err) => {
                        let event = err.into_protocol_error(self.dialect, event_id).into_event();
                        self.emit(event).await;
                    }
                }
            }
            ClientEventKind::InputAudioBufferAppend { audio } => {
                if self.input_audio.len().saturating_add(audio.len()) > MAX_INPUT_AUDIO_BYTES {
                    let error = ErrorObject::invalid_request(
                        "input_audio_buffer_full",
                        "The input audio buffer is full: commit or clear it first.",
                    );
                    self.emit_error(error, event_id).await;
                } else {
                    self.append_audio(&audio).await;
                }
            }
            ClientEventKind::InputAudioBufferClear => {
                self.input_audio.clear();
                self.buffer_start_ms = self.input_ms;
                self.speech_item = None;
                if let Some(turn) = self.turn.as_mut() {
                    turn.reset();
                }
                self.emit(ServerEvent::InputAudioBufferCleared).await;
            }
            ClientEventKind::InputAudioBufferCommit => self.commit_audio(event_id).await,
            ClientEventKind::OutputAudioBufferClear => {
                let error = ErrorObject::invalid_request(
                    "unsupported_event",
                    "output_audio_buffer.clear is only available on WebRTC and SIP connections.",
                );
                self.emit_error(error, event_id).await;
            }
            ClientEventKind::ConversationItemCreate { position, item } => {
                let ids = Arc::clone(&self.ids);
                let item = item.into_item(|| IdKind::Item.generate(ids.as_ref()));
                self.create_item(position, item, event_id).await;
            }
            ClientEventKind::ConversationItemRetrieve { item_id } => match self.find(&item_id) {
                Some(index) => {
                    if let Some(item) = self.items.get(index).cloned() {
                        self.emit(ServerEvent::ConversationItemRetrieved { item }).await;
                    }
                }
                None => self.item_not_found(&item_id, "item_id", event_id).await,
            },
            ClientEventKind::ConversationItemDelete { item_id } => match self.find(&item_id) {
                Some(index) => {
                    self.items.remove(index);
                    self.emit(ServerEvent::ConversationItemDeleted { item_id }).await;
                }
                None => self.item_not_found(&item_id, "item_id", event_id).await,
            },
            ClientEventKind::ConversationItemTruncate {
                item_id,
                content_index,
                audio_end_ms,
            } => {
                self.truncate(item_id, content_index, audio_end_ms, event_id)
                    .await;
            }
            ClientEventKind::ResponseCreate(params) => self.create_response(*params, event_id).await,
            ClientEventKind::ResponseCancel { response_id } => {
                let matches = match (&self.active, &response_id) {
                    (None, _) => false,
                    (Some(_), None) => true,
                    (Some(active), Some(id)) => active.response.id == *id,
                };
                if matches {
                    self.end_active(
                        ResponseStatus::Cancelled,
                        Some(StatusReason::ClientCancelled),
                        None,
                    )
                    .await;
                } else {
                    let error = ErrorObject::invalid_request(
                        "response_cancel_not_active",
                        "Cancellation failed: no active response found.",
                    );
                    self.emit_error(error, event_id).await;
                }
            }
        }
    }

    // ---- conversation -------------------------------------------------------------------------------------

    fn find(&self, item_id: &str) -> Option<usize> {
        self.items.iter().position(|item| item.id == item_id)
    }

    fn previous_of(&self, index: usize) -> Option<String> {
        index
            .checked_sub(1)
            .and_then(|i| self.items.get(i))
            .map(|item| item.id.clone())
    }

    async fn item_not_found(&mut self, item_id: &str, param: &str, event_id: Option<String>) {
        let error = ErrorObject::invalid_request(
            "item_not_found",
            format!("Item with item_id '{item_id}' not found."),
        )
        .with_param(param);
        self.emit_error(error, event_id).await;
    }

    /// Inserts `item` at `position` and announces it (GA `added` + `done`, beta `created`).
    async fn create_item(&mut self, position: ItemPosition, item: Item, event_id: Option<String>) {
        if self.find(&item.id).is_some() {
            let error = ErrorObject::invalid_request(
                "item_id_in_use",
                format!("An item with id '{}' already exists.", item.id),
            )
            .with_param("item.id");
            self.emit_error(error, event_id).await;
            return;
        }
        let index = match &position {
            ItemPosition::End => self.items.len(),
            ItemPosition::Root => 0,
            ItemPosition::After(previous) => match self.find(previous) {
                Some(i) => i + 1,
                None => {
                    self.item_not_found(previous, "previous_item_id", event_id).await;
                    return;
                }
            },
        };
        // Announcements never carry audio bytes (as OpenAI's server does): a committed turn would otherwise be
        // echoed back in full (about 150 KB of base64 per 3 s turn at 24 kHz), doubling the session's traffic for
        // nothing the caller lacks. `conversation.item.retrieve` returns the stored audio on request.
        let announced = item.without_audio();
        self.items.insert(index, item);
        let previous_item_id = self.previous_of(index);
        self.emit(ServerEvent::ConversationItemAdded {
            previous_item_id: previous_item_id.clone(),
            item: announced.clone(),
        })
        .await;
        self.emit(ServerEvent::ConversationItemDone {
            previous_item_id,
            item: announced,
        })
        .await;
    }

    async fn truncate(
        &mut self,
        item_id: String,
        content_index: u32,
        audio_end_ms: u64,
        event_id: Option<String>,
    ) {
        let Some(index) = self.find(&item_id) else {
            self.item_not_found(&item_id, "item_id", event_id).await;
            return;
        };
        let format = to_sample_format(self.config.output_format);
        let outcome = self.items.get_mut(index).and_then(|item| match &mut item.kind {
            ItemKind::Message {
                role: Role::Assistant,
                content,
            } => content.get_mut(content_index as usize),
            _ => None,
        });
        let Some(ContentPart::Audio { audio, transcript }) = outcome else {
            let error = ErrorObject::invalid_request(
                "invalid_value",
                "Only the audio content part of an assistant message can be truncated.",
            )
            .with_param("content_index");
            self.emit_error(error, event_id).await;
            return;
        };
        let stored = audio.clone().unwrap_or_default();
        let samples = format.samples_in(stored.len()).unwrap_or(0) as u64;
        let total_ms = samples.saturating_mul(1000) / u64::from(format.sample_rate().max(1));
        if audio_end_ms > total_ms {
            let error = ErrorObject::invalid_request(
                "invalid_value",
                format!("audio_end_ms ({audio_end_ms}) is longer than the audio ({total_ms} ms)."),
            )
            .with_param("audio_end_ms");
            self.emit_error(error, event_id).await;
            return;
        }
        let keep_samples = audio_end_ms.saturating_mul(u64::from(format.sample_rate())) / 1000;
        let keep_bytes = usize::try_from(keep_samples)
            .unwrap_or(usize::MAX)
            .saturating_mul(stored.len())
            / usize::try_from(samples.max(1)).unwrap_or(1);
        *audio = Some(stored.prefix(keep_bytes));
        // Without word timings the heard transcript is the same share of the text as of the audio.
        if let Some(text) = transcript.as_mut()
            && total_ms > 0
        {
            let chars = text.chars().count() as u64;
            let keep = usize::try_from(chars.saturating_mul(audio_end_ms) / total_ms).unwrap_or(usize::MAX);
            *text = text.chars().take(keep).collect();
        }
        self.emit(ServerEvent::ConversationItemTruncated {
            item_id,
            content_index,
            audio_end_ms,
        })
        .await;
    }

    // ---- input audio --------------------------------------------------------------------------------------

    async fn commit_audio(&mut self, event_id: Option<String>) {
        let bytes = self.take_input(self.input_audio.len());
        self.buffer_start_ms = self.input_ms;
        let item_id = self
            .speech_item
            .take()
            .unwrap_or_else(|| IdKind::Item.generate(self.ids.as_ref()));
        if let Some(turn) = self.turn.as_mut() {
            turn.reset();
        }
        self.commit_bytes(bytes, item_id, event_id).await;
    }

    /// The first `len` bytes of the input buffer, removed from it. Copied out (exactly sized) rather than
    /// handing over the buffer: the buffer keeps its allocation for the next turn (up to
    /// [`RETAINED_INPUT_CAPACITY`]), so it is not grown again by doubling and copying, nor its fresh pages
    /// faulted in, turn after turn.
    fn take_input(&mut self, len: usize) -> AudioBytes {
        let len = len.min(self.input_audio.len());
        let taken = AudioBytes::from(self.input_audio.get(..len).unwrap_or_default());
        self.input_audio.drain(..len);
        if self.input_audio.capacity() > RETAINED_INPUT_CAPACITY {
            self.input_audio.shrink_to(RETAINED_INPUT_CAPACITY);
        }
        taken
    }

    /// Feeds appended audio to the buffer and, with turn detection on, acts on the turn boundaries it completes.
    async fn append_audio(&mut self, audio: &[u8]) {
        let format = to_sample_format(self.config.input_format);
        self.input_audio.extend_from_slice(audio);
        let mut samples = std::mem::take(&mut self.decoded);
        samples.clear();
        if format.decode_into(audio, &mut samples).is_err() {
            samples.clear();
        }
        let rate = u64::from(format.sample_rate().max(1));
        let mut events = Vec::new();
        self.ensure_turn_detector();
        let agent_speaking = self.output_is_audio();
        if let Some(turn) = self.turn.as_mut() {
            turn.set_agent_speaking(agent_speaking);
            if let Err(err) = turn.push(&samples, &mut events) {
                tracing::warn!(error = %err, "turn detection failed on appended audio");
            }
            self.input_ms = turn.input_ms();
        } else {
            self.input_ms = self
                .input_ms
                .saturating_add((samples.len() as u64).saturating_mul(1000) / rate);
        }
        // An unusually large append (up to 15 MiB) does not pin its size for the rest of the session.
        if samples.capacity() <= MAX_KEPT_DECODED_SAMPLES {
            self.decoded = samples;
        }
        for event in events {
            match event {
                TurnEvent::SpeechStarted { audio_start_ms } => self.speech_started(audio_start_ms).await,
                TurnEvent::SpeechStopped { audio_end_ms } => self.speech_stopped(audio_end_ms).await,
            }
        }
    }

    async fn speech_started(&mut self, audio_start_ms: u64) {
        // Audio before the turn (prefix padding excluded) is no longer needed.
        let cut = self.byte_offset(audio_start_ms);
        self.input_audio.drain(..cut.min(self.input_audio.len()));
        self.buffer_start_ms = self.buffer_start_ms.max(audio_start_ms);
        let item_id = IdKind::Item.generate(self.ids.as_ref());
        self.speech_item = Some(item_id.clone());
        self.emit(ServerEvent::InputAudioBufferSpeechStarted {
            item_id,
            audio_start_ms,
        })
        .await;
        // Barge-in: the caller talks over the reply.
        let (_, interrupt) = self.turn_flags();
        if interrupt && self.active.is_some() {
            self.end_active(ResponseStatus::Cancelled, Some(StatusReason::TurnDetected), None)
                .await;
        }
    }

    async fn speech_stopped(&mut self, audio_end_ms: u64) {
        let item_id = self
            .speech_item
            .take()
            .unwrap_or_else(|| IdKind::Item.generate(self.ids.as_ref()));
        self.emit(ServerEvent::InputAudioBufferSpeechStopped {
            item_id: item_id.clone(),
            audio_end_ms,
        })
        .await;
        let cut = self.byte_offset(audio_end_ms).min(self.input_audio.len());
        let bytes = self.take_input(cut);
        self.buffer_start_ms = audio_end_ms.max(self.buffer_start_ms);
        let committed = self.commit_bytes(bytes, item_id, None).await;
        if committed && self.turn_flags().0 && self.active.is_none() {
            self.create_response(ResponseParams::default(), None).await;
        }
    }

    /// `(create_response, interrupt_response)` of the turn detection in force.
    fn turn_flags(&self) -> (bool, bool) {
        match &self.config.turn_detection {
            Some(TurnDetection::ServerVad(v)) => (v.create_response, v.interrupt_response),
            Some(TurnDetection::SemanticVad(v)) => (v.create_response, v.interrupt_response),
            None => (false, false),
        }
    }

    /// The offset in `input_audio` of session millisecond `ms`.
    fn byte_offset(&self, ms: u64) -> usize {
        let format = to_sample_format(self.config.input_format);
        let samples = ms
            .saturating_sub(self.buffer_start_ms)
            .saturating_mul(u64::from(format.sample_rate()))
            / 1000;
        let bytes_per_sample = if matches!(format, SampleFormat::Pcm16 { .. }) {
            2
        } else {
            1
        };
        usize::try_from(samples.saturating_mul(bytes_per_sample)).unwrap_or(usize::MAX)
    }

    /// Commits `bytes` as the user audio item `item_id`: committed, item added, transcription. False when
    /// refused (too short, undecodable).
    async fn commit_bytes(&mut self, bytes: AudioBytes, item_id: String, event_id: Option<String>) -> bool {
        let format = to_sample_format(self.config.input_format);
        let samples = match format.decode(bytes.as_bytes()) {
            Ok(samples) => samples,
            Err(err) => {
                let error =
                    ErrorObject::invalid_request("invalid_value", format!("Invalid input audio: {err}."));
                self.emit_error(error, event_id).await;
                return false;
            }
        };
        let ms = (samples.len() as u64).saturating_mul(1000) / u64::from(format.sample_rate().max(1));
        if ms < MIN_COMMIT_MS {
            let error = ErrorObject::invalid_request(
                "input_audio_buffer_commit_empty",
                format!(
                    "Error committing input audio buffer: buffer too small. Expected at least {MIN_COMMIT_MS}ms of audio, but buffer only has {ms}ms of audio."
                ),
            );
            self.emit_error(error, event_id).await;
            return false;
        }
        let item = Item::message(
            item_id.clone(),
            Role::User,
            vec![ContentPart::InputAudio {
                audio: Some(bytes),
                transcript: None,
            }],
        );
        self.emit(ServerEvent::InputAudioBufferCommitted {
            previous_item_id: self.items.last().map(|i| i.id.clone()),
            item_id: item_id.clone(),
        })
        .await;
        self.create_item(ItemPosition::End, item, None).await;

        let transcript = transcribe(
            self.ports.stt.as_ref(),
            &self.ctx,
            self.config.input_transcription.as_ref(),
            &samples,
            format.sample_rate(),
        )
        .await;
        let announce = self.config.input_transcription.is_some();
        match transcript {
            Ok(text) => {
                if let Some(index) = self.find(&item_id)
                    && let Some(Item {
                        kind: ItemKind::Message { content, .. },
                        ..
                    }) = self.items.get_mut(index)
                    && let Some(ContentPart::InputAudio { transcript, .. }) = content.get_mut(0)
                {
                    *transcript = Some(text.clone());
                }
                if announce {
                    self.emit(ServerEvent::InputAudioTranscriptionCompleted {
                        item_id,
                        content_index: 0,
                        transcript: text,
                        usage: TranscriptionUsage::Duration {
                            seconds: ms as f64 / 1000.0,
                        },
                        logprobs: None,
                    })
                    .await;
                }
            }
            Err(err) => {
                tracing::warn!(error = %err, "input audio transcription failed");
                if announce {
                    self.emit(ServerEvent::InputAudioTranscriptionFailed {
                        item_id,
                        content_index: 0,
                        error: ErrorObject::server_error("Input audio transcription failed."),
                    })
                    .await;
                }
            }
        }
        true
    }

    // ---- responses ----------------------------------------------------------------------------------------

    async fn create_response(&mut self, params: ResponseParams, event_id: Option<String>) {
        if self.active.is_some() {
            let error = ErrorObject::invalid_request(
                "conversation_already_has_active_response",
                "Conversation already has an active response in progress.",
            );
            self.emit_error(error, event_id).await;
            return;
        }
        let in_conversation = params.conversation == ConversationMode::Auto;
        // The conversation is borrowed, not cloned: it holds every turn's audio, and copying it for each response
        // made latency and CPU grow with the length of the session (measured by `benches/realtime.rs`).
        let request = match self.context(&params) {
            Ok(context) => self.chat_request(&params, &context),
            Err(missing) => {
                self.item_not_found(&missing, "response.input", event_id).await;
                return;
            }
        };
        let limits = match &self.gate {
            Some(gate) => match gate.admit().await {
                Ok(limits) => limits,
                Err(error) => {
                    self.emit_error(error, event_id).await;
                    return;
                }
            },
            None => Vec::new(),
        };
        let response_id = IdKind::Response.generate(self.ids.as_ref());
        let conversation_id = in_conversation.then(|| self.conversation_id.clone());
        let response = Response::start(response_id, conversation_id, &self.config, &params);
        self.emit(ServerEvent::ResponseCreated {
            response: Box::new(response.clone()),
        })
        .await;
        if !limits.is_empty() {
            self.emit(ServerEvent::RateLimitsUpdated { rate_limits: limits })
                .await;
        }
        let cancel = CancellationToken::new();
        match self.ports.llm.stream(&self.ctx, request, cancel.clone()).await {
            Ok(stream) => {
                self.active = Some(Active {
                    response,
                    in_conversation,
                    stream,
                    cancel,
                    open: None,
                    finishing: None,
                    audio_clock: None,
                    lead: self.output_lead,
                    pacer: Deadline::default(),
                });
            }
            Err(err) => {
                tracing::warn!(error = %err, "language model refused the request");
                let mut response = response;
                response.status = ResponseStatus::Failed;
                response.status_details = Some(failure_details());
                self.emit(ServerEvent::ResponseDone {
                    response: Box::new(response),
                })
                .await;
            }
        }
    }

    /// The items the model sees: the conversation, or the response's own `input`.
    fn context(&self, params: &ResponseParams) -> Result<std::borrow::Cow<'_, [Item]>, String> {
        let Some(input) = &params.input else {
            return Ok(std::borrow::Cow::Borrowed(&self.items));
        };
        input
            .iter()
            .map(|entry| match entry {
                ResponseInput::Item(item) => Ok(item
                    .clone()
                    .into_item(|| IdKind::Item.generate(self.ids.as_ref()))),
                ResponseInput::Reference { id } => self
                    .find(id)
                    .and_then(|i| self.items.get(i).cloned())
                    .ok_or_else(|| id.clone()),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(std::borrow::Cow::Owned)
    }

    fn chat_request(&self, params: &ResponseParams, context: &[Item]) -> ChatRequest {
        let tools = params.tools.as_ref().unwrap_or(&self.config.tools);
        let choice = params.tool_choice.as_ref().unwrap_or(&self.config.tool_choice);
        let specs = tools
            .iter()
            .map(|tool| ToolSpec {
                name: tool.name.clone(),
                description: tool.description.clone(),
                parameters: tool
                    .parameters
                    .clone()
                    .unwrap_or_else(|| serde_json::json!({"type": "object", "properties": {}})),
            })
            .collect();
        let choice = match choice {
            ToolChoice::Auto => LlmToolChoice::Auto,
            ToolChoice::None => LlmToolChoice::None,
            ToolChoice::Required => LlmToolChoice::Required,
            ToolChoice::Function { name } => LlmToolChoice::Function { name: name.clone() },
        };
        let mut request = ChatRequest::new(chat_messages(context))
            .with_tools(specs, choice)
            .with_temperature(params.temperature.unwrap_or(self.config.temperature) as f32);
        let instructions = params.instructions.as_ref().unwrap_or(&self.config.instructions);
        if !instructions.is_empty() {
            request = request.with_instructions(instructions.clone());
        }
        if let MaxOutputTokens::Limit(max) = params.max_output_tokens.unwrap_or(self.config.max_output_tokens)
        {
            request = request.with_max_output_tokens(max);
        }
        request
    }

    async fn on_model(&mut self, event: crate::Result<Option<ChatEvent>>) {
        match event {
            Ok(Some(ChatEvent::TextDelta { delta })) => self.on_text(delta).await,
            Ok(Some(ChatEvent::ToolCallDelta {
                call_id,
                name,
                arguments_delta,
            })) => self.on_call(call_id, name, arguments_delta).await,
            Ok(Some(ChatEvent::Done { finish_reason, .. })) => {
                let (status, reason) = match finish_reason {
                    crate::llm::FinishReason::Length => {
                        (ResponseStatus::Incomplete, Some(StatusReason::MaxOutputTokens))
                    }
                    crate::llm::FinishReason::ContentFilter => {
                        (ResponseStatus::Incomplete, Some(StatusReason::ContentFilter))
                    }
                    _ => (ResponseStatus::Completed, None),
                };
                if self.speech_pending().await {
                    if let Some(active) = self.active.as_mut() {
                        active.finishing = Some((status, reason));
                    }
                } else {
                    self.end_active(status, reason, None).await;
                }
            }
            Ok(None) => self.end_active(ResponseStatus::Completed, None, None).await,
            Err(err) => {
                tracing::warn!(error = %err, "language model stream failed");
                self.end_active(ResponseStatus::Failed, None, Some(failure_details()))
                    .await;
            }
        }
    }

    /// Tells the open message's TTS that the text is complete; true when speech is still to come.
    async fn speech_pending(&mut self) -> bool {
        let Some(Some(Open::Message { tts, .. })) = self.active.as_mut().map(|a| a.open.as_mut()) else {
            return false;
        };
        let Some(stream) = tts.as_mut() else {
            return false;
        };
        match stream.finish().await {
            Ok(()) => true,
            Err(err) => {
                tracing::warn!(error = %err, "text-to-speech failed");
                *tts = None;
                false
            }
        }
    }

    /// One speech chunk of the open message (or the end of its speech).
    async fn on_speech(&mut self, chunk: crate::Result<Option<TtsChunk>>) {
        let Some(active) = self.active.as_mut() else {
            return;
        };
        let response_id = active.response.id.clone();
        let finishing = active.finishing;
        let Some(Open::Message {
            item_id,
            output_index,
            audio,
            tts,
            ..
        }) = active.open.as_mut()
        else {
            return;
        };
        match chunk {
            Ok(Some(chunk)) => {
                if chunk.audio.is_empty() {
                    return;
                }
                let sent = AudioBytes::from(chunk.audio);
                audio.push(sent.clone());
                let chunk_ms = chunk.end_ms.saturating_sub(chunk.start_ms);
                let clock = active
                    .audio_clock
                    .get_or_insert_with(|| (tokio::time::Instant::now(), 0));
                clock.1 = clock.1.saturating_add(chunk_ms);
                let at = PartRef {
                    response_id,
                    item_id: item_id.clone(),
                    output_index: *output_index,
                    content_index: 0,
                };
                self.audio_produced = true;
                self.emit(ServerEvent::ResponseAudioDelta { at, audio: sent })
                    .await;
                return;
            }
            Ok(None) => *tts = None,
            Err(err) => {
                tracing::warn!(error = %err, "text-to-speech failed");
                *tts = None;
            }
        }
        if let Some((status, reason)) = finishing {
            self.end_active(status, reason, None).await;
        }
    }

    fn active_ref(&self, output_index: u32, item_id: &str) -> Option<PartRef> {
        self.active.as_ref().map(|a| PartRef {
            response_id: a.response.id.clone(),
            item_id: item_id.to_owned(),
            output_index,
            content_index: 0,
        })
    }

    async fn on_text(&mut self, delta: String) {
        let needs_item = !matches!(
            self.active.as_ref().and_then(|a| a.open.as_ref()),
            Some(Open::Message { .. })
        );
        if needs_item {
            self.close_open(ItemStatus::Completed).await;
            self.open_message().await;
        }
        let audio_mode = self.output_is_audio();
        let Some(Some(Open::Message {
            item_id,
            output_index,
            text,
            tts,
            ..
        })) = self.active.as_mut().map(|a| a.open.as_mut())
        else {
            return;
        };
        text.push_str(&delta);
        let (item_id, output_index) = (item_id.clone(), *output_index);
        let pushed = match tts {
            Some(tts) => tts.push_text(&delta).await,
            None => Ok(()),
        };
        let Some(at) = self.active_ref(output_index, &item_id) else {
            return;
        };
        if audio_mode {
            self.emit(ServerEvent::ResponseAudioTranscriptDelta { at, delta })
                .await;
        } else {
            self.emit(ServerEvent::ResponseTextDelta { at, delta }).await;
        }
        if let Err(err) = pushed {
            tracing::warn!(error = %err, "text-to-speech failed");
            self.end_active(ResponseStatus::Failed, None, Some(failure_details()))
                .await;
        }
    }

    fn output_is_audio(&self) -> bool {
        self.active
            .as_ref()
            .is_some_and(|a| a.response.output_modalities == OutputModalities::Audio)
    }

    /// Adds an output item to the response (and the conversation) and announces it.
    async fn add_output(&mut self, item: Item) -> Option<u32> {
        let active = self.active.as_mut()?;
        let output_index = u32::try_from(active.response.output.len()).unwrap_or(u32::MAX);
        active.response.output.push(item.clone());
        let response_id = active.response.id.clone();
        let in_conversation = active.in_conversation;
        self.emit(ServerEvent::ResponseOutputItemAdded {
            response_id,
            output_index,
            item: item.clone(),
        })
        .await;
        if in_conversation {
            let previous_item_id = self.items.last().map(|i| i.id.clone());
            self.items.push(item.clone());
            self.emit(ServerEvent::ConversationItemAdded {
                previous_item_id,
                item,
            })
            .await;
        }
        Some(output_index)
    }

    async fn open_message(&mut self) {
        let audio_mode = self.output_is_audio();
        let item_id = IdKind::Item.generate(self.ids.as_ref());
        let part = if audio_mode {
            ContentPart::Audio {
                audio: None,
                transcript: Some(String::new()),
            }
        } else {
            ContentPart::Text { text: String::new() }
        };
        let item = Item {
            id: item_id.clone(),
            status: ItemStatus::InProgress,
            kind: ItemKind::Message {
                role: Role::Assistant,
                content: Vec::new(),
            },
        };
        let Some(output_index) = self.add_output(item).await else {
            return;
        };
        let mut tts = None;
        if audio_mode && let Some(active) = &self.active {
            let voice = active.response.voice.id().to_owned();
            let format = to_sample_format(active.response.output_format);
            let config = TtsConfig::new(voice, format).with_speed(self.config.speed as f32);
            match self.ports.tts.open(&self.ctx, config).await {
                Ok(stream) => tts = Some(stream),
                Err(err) => {
                    tracing::warn!(error = %err, "text-to-speech unavailable; sending the transcript only")
                }
            }
        }
        if let Some(active) = self.active.as_mut() {
            active.open = Some(Open::Message {
                item_id: item_id.clone(),
                output_index,
                text: String::new(),
                audio: Vec::new(),
                tts,
            });
        }
        if let Some(at) = self.active_ref(output_index, &item_id) {
            self.emit(ServerEvent::ResponseContentPartAdded { at, part })
                .await;
        }
    }

    async fn on_call(&mut self, call_id: String, name: String, delta: String) {
        let same = matches!(
            self.active.as_ref().and_then(|a| a.open.as_ref()),
            Some(Open::Call { call_id: open, .. }) if *open == call_id
        );
        if !same {
            self.close_open(ItemStatus::Completed).await;
            let item_id = IdKind::Item.generate(self.ids.as_ref());
            let item = Item {
                id: item_id.clone(),
                status: ItemStatus::InProgress,
                kind: ItemKind::FunctionCall {
                    call_id: Some(call_id.clone()),
                    name: name.clone(),
                    arguments: String::new(),
                },
            };
            let Some(output_index) = self.add_output(item).await else {
                return;
            };
            if let Some(active) = self.active.as_mut() {
                active.open = Some(Open::Call {
                    item_id,
                    output_index,
                    call_id: call_id.clone(),
                    name,
                    arguments: String::new(),
                });
            }
        }
        let Some(active) = self.active.as_mut() else {
            return;
        };
        let response_id = active.response.id.clone();
        if let Some(Open::Call {
            item_id,
            output_index,
            arguments,
            ..
        }) = active.open.as_mut()
        {
            arguments.push_str(&delta);
            let at = OutputRef {
                response_id,
                item_id: item_id.clone(),
                output_index: *output_index,
            };
            if !delta.is_empty() {
                self.emit(ServerEvent::ResponseFunctionCallArgumentsDelta { at, call_id, delta })
                    .await;
            }
        }
    }

    /// Finishes the open output item with `status` (for a completed item: its done events, audio included).
    async fn close_open(&mut self, status: ItemStatus) {
        let Some(active) = self.active.as_mut() else {
            return;
        };
        let Some(open) = active.open.take() else {
            return;
        };
        let response_id = active.response.id.clone();
        let audio_mode = active.response.output_modalities == OutputModalities::Audio;
        let completed = status == ItemStatus::Completed;
        let (item, output_index) = match open {
            Open::Message {
                item_id,
                output_index,
                text,
                mut audio,
                tts,
            } => {
                let at = PartRef {
                    response_id: response_id.clone(),
                    item_id: item_id.clone(),
                    output_index,
                    content_index: 0,
                };
                if let Some(mut tts) = tts {
                    if completed {
                        self.synthesize_rest(&mut tts, &at, &mut audio).await;
                    } else {
                        tts.cancel();
                    }
                }
                let part = if audio_mode {
                    ContentPart::Audio {
                        audio: (!audio.is_empty()).then(|| AudioBytes::concat(&audio)),
                        transcript: Some(text.clone()),
                    }
                } else {
                    ContentPart::Text { text: text.clone() }
                };
                if completed {
                    if audio_mode {
                        self.emit(ServerEvent::ResponseAudioDone { at: at.clone() }).await;
                        self.emit(ServerEvent::ResponseAudioTranscriptDone {
                            at: at.clone(),
                            transcript: text,
                        })
                        .await;
                    } else {
                        self.emit(ServerEvent::ResponseTextDone { at: at.clone(), text })
                            .await;
                    }
                    self.emit(ServerEvent::ResponseContentPartDone {
                        at,
                        part: part.without_audio(),
                    })
                    .await;
                }
                let item = Item {
                    id: item_id,
                    status,
                    kind: ItemKind::Message {
                        role: Role::Assistant,
                        content: vec![part],
                    },
                };
                (item, output_index)
            }
            Open::Call {
                item_id,
                output_index,
                call_id,
                name,
                arguments,
            } => {
                if completed {
                    let at = OutputRef {
                        response_id: response_id.clone(),
                        item_id: item_id.clone(),
                        output_index,
                    };
                    self.emit(ServerEvent::ResponseFunctionCallArgumentsDone {
                        at,
                        call_id: call_id.clone(),
                        name: name.clone(),
                        arguments: arguments.clone(),
                    })
                    .await;
                }
                let item = Item {
                    id: item_id,
                    status,
                    kind: ItemKind::FunctionCall {
                        call_id: Some(call_id),
                        name,
                        arguments,
                    },
                };
                (item, output_index)
            }
        };
        let mut in_conversation = false;
        if let Some(active) = self.active.as_mut() {
            in_conversation = active.in_conversation;
            if let Some(slot) = active.response.output.get_mut(output_index as usize) {
                *slot = item.clone();
            }
        }
        if in_conversation && let Some(index) = self.find(&item.id) {
            let previous_item_id = self.previous_of(index);
            if let Some(slot) = self.items.get_mut(index) {
                *slot = item.clone();
            }
            self.emit(ServerEvent::ConversationItemDone {
                previous_item_id,
                item: item.without_audio(),
            })
            .await;
        }
        self.emit(ServerEvent::ResponseOutputItemDone {
            response_id,
            output_index,
            item: item.without_audio(),
        })
        .await;
    }

    /// Flushes the speech of a finished message, one `audio.delta` per chunk.
    async fn synthesize_rest(
        &mut self,
        tts: &mut Box<dyn TtsStream>,
        at: &PartRef,
        audio: &mut Vec<AudioBytes>,
    ) {
        if let Err(err) = tts.finish().await {
            tracing::warn!(error = %err, "text-to-speech failed");
            return;
        }
        loop {
            match tts.next_chunk().await {
                Ok(Some(chunk)) => {
                    if chunk.audio.is_empty() {
                        continue;
                    }
                    self.audio_produced = true;
                    let sent = AudioBytes::from(chunk.audio);
                    audio.push(sent.clone());
                    self.emit(ServerEvent::ResponseAudioDelta {
                        at: at.clone(),
                        audio: sent,
                    })
                    .await;
                }
                Ok(None) => return,
                Err(err) => {
                    tracing::warn!(error = %err, "text-to-speech failed");
                    return;
                }
            }
        }
    }

    /// Ends the response in progress: closes its open item and sends `response.done` last.
    async fn end_active(
        &mut self,
        status: ResponseStatus,
        reason: Option<StatusReason>,
        details: Option<StatusDetails>,
    ) {
        if let Some(active) = &self.active
            && status != ResponseStatus::Completed
        {
            active.cancel.cancel();
        }
        let item_status = if status == ResponseStatus::Completed {
            ItemStatus::Completed
        } else {
            ItemStatus::Incomplete
        };
        self.close_open(item_status).await;
        let Some(active) = self.active.take() else {
            return;
        };
        let mut response = active.response;
        response.status = status;
        response.status_details = details.or_else(|| {
            reason.map(|reason| StatusDetails {
                reason: Some(reason),
                error: None,
            })
        });
        response.output = response.output.iter().map(Item::without_audio).collect();
        response.usage = Some(usage(
            active.stream.usage(),
            response.output_modalities == OutputModalities::Audio,
        ));
        self.emit(ServerEvent::ResponseDone {
            response: Box::new(response),
        })
        .await;
    }

    // ---- output -------------------------------------------------------------------------------------------

    fn session_object(&self) -> Box<SessionObject> {
        Box::new(SessionObject {
            id: self.session_id.clone(),
            expires_at: None,
            config: self.config.clone(),
        })
    }

    async fn emit_error(&mut self, error: ErrorObject, event_id: Option<String>) {
        self.emit(ServerEvent::Error {
            error: error.with_event_id(event_id),
        })
        .await;
    }

    /// Encodes and sends one event (waiting for room); events the dialect lacks are skipped.
    async fn emit(&mut self, event: ServerEvent) {
        if self.closed {
            return;
        }
        if let Some(observer) = &self.observer {
            observer.observe(&event);
        }
        let Some(frame) = encode_server(self.dialect, self.ids.as_ref(), &event) else {
            return;
        };
        if self.out.send(frame).await.is_err() {
            self.closed = true;
            if let Some(active) = &self.active {
                active.cancel.cancel();
            }
        }
    }
}

fn failure_details() -> StatusDetails {
    StatusDetails {
        reason: None,
        error: Some(StatusError {
            kind: "server_error".to_owned(),
            code: None,
        }),
    }
}

fn usage(tokens: TokenUsage, audio: bool) -> Usage {
    Usage {
        total_tokens: tokens.total(),
        input_tokens: tokens.input_tokens,
        output_tokens: tokens.output_tokens,
        input_token_details: InputTokenDetails {
            text_tokens: tokens.input_tokens,
            ..InputTokenDetails::default()
        },
        output_token_details: if audio {
            OutputTokenDetails {
                text_tokens: 0,
                audio_tokens: tokens.output_tokens,
            }
        } else {
            OutputTokenDetails {
                text_tokens: tokens.output_tokens,
                audio_tokens: 0,
            }
        },
    }
}

/// The sample format of a protocol audio format.
fn to_sample_format(format: AudioFormat) -> SampleFormat {
    match format {
        AudioFormat::Pcm16 => SampleFormat::PCM16_24K,
        AudioFormat::G711Ulaw => SampleFormat::G711Ulaw,
        AudioFormat::G711Alaw => SampleFormat::G711Alaw,
    }
}

/// The chat messages of conversation items (audio counts through its transcript).
fn chat_messages(items: &[Item]) -> Vec<ChatMessage> {
    let mut messages: Vec<ChatMessage> = Vec::new();
    for item in items {
        match &item.kind {
            ItemKind::Message { role, content } => {
                let text = content
                    .iter()
                    .filter_map(|part| match part {
                        ContentPart::InputText { text } | ContentPart::Text { text } => Some(text.as_str()),
                        ContentPart::InputAudio { transcript, .. }
                        | ContentPart::Audio { transcript, .. } => transcript.as_deref(),
                        ContentPart::InputImage { .. } | ContentPart::ItemReference { .. } => None,
                    })
                    .collect::<Vec<_>>()
                    .join(" ");
                messages.push(match role {
                    Role::User => ChatMessage::User { content: text },
                    Role::System => ChatMessage::System { content: text },
                    Role::Assistant => ChatMessage::Assistant {
                        content: text,
                        tool_calls: Vec::new(),
                    },
                });
            }
            ItemKind::FunctionCall {
                call_id,
                name,
                arguments,
            } => {
                let call = ToolCall {
                    call_id: call_id.clone().unwrap_or_else(|| item.id.clone()),
                    name: name.clone(),
                    arguments: arguments.clone(),
                };
                if let Some(ChatMessage::Assistant { tool_calls, .. }) = messages.last_mut() {
                    tool_calls.push(call);
                } else {
                    messages.push(ChatMessage::Assistant {
                        content: String::new(),
                        tool_calls: vec![call],
                    });
                }
            }
            ItemKind::FunctionCallOutput { call_id, output } => messages.push(ChatMessage::Tool {
                call_id: call_id.clone(),
                content: output.clone(),
            }),
        }
    }
    messages
}

/// Runs speech-to-text over committed audio; the finals joined.
async fn transcribe(
    stt: &dyn SpeechToText,
    ctx: &Ctx,
    settings: Option<&TranscriptionConfig>,
    samples: &[i16],
    sample_rate: u32,
) -> crate::Result<String> {
    let mut config = SttConfig::new(sample_rate);
    if let Some(t) = settings {
        config.language = t.language.clone();
        config.prompt = t.prompt.clone();
    }
    let mut stream = stt.open(ctx, config).await?;
    stream.push_audio(samples).await?;
    stream.finish().await?;
    let mut finals = Vec::new();
    while let Some(event) = stream.next_event().await? {
        if let SttEvent::Final(t) = event
            && !t.text.is_empty()
        {
            finals.push(t.text);
        }
    }
    Ok(finals.join(" "))
}

/// The detector settings of a turn-detection config (`semantic_vad` runs as server VAD with its defaults).
fn turn_settings(detection: &TurnDetection) -> TurnDetectionConfig {
    match detection {
        TurnDetection::ServerVad(v) => TurnDetectionConfig::default()
            .with_threshold(v.threshold as f32)
            .with_prefix_padding_ms(v.prefix_padding_ms)
            .with_silence_duration_ms(v.silence_duration_ms),
        TurnDetection::SemanticVad(_) => TurnDetectionConfig::default(),
    }
}
