//! Dialect-neutral client and server events (reference §4, §5). Names per dialect live here too, so the
//! decoder, the encoder and the tests share one table.

use super::config::{SessionConfig, SessionKind, SessionUpdate};
use super::dialect::Dialect;
use super::error::ErrorObject;
use super::item::{AudioBytes, ContentPart, Item, ItemInput};
use super::response::{LogProb, RateLimit, Response, ResponseParams, TranscriptionUsage};

/// A decoded client event.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientEvent {
    /// The client's `event_id`, echoed in `error.event_id` when this event fails.
    pub event_id: Option<String>,
    /// What the client asked for.
    pub kind: ClientEventKind,
}

/// What a client event asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientEventKind {
    /// `session.update` (and beta `transcription_session.update`, with `kind: Some(Transcription)`).
    SessionUpdate(Box<SessionUpdate>),
    /// `input_audio_buffer.append`: raw bytes in the session's input format (base64 already decoded).
    InputAudioBufferAppend {
        /// The audio bytes.
        audio: Vec<u8>,
    },
    /// `input_audio_buffer.commit`.
    InputAudioBufferCommit,
    /// `input_audio_buffer.clear`.
    InputAudioBufferClear,
    /// `output_audio_buffer.clear` (WebRTC/SIP only).
    OutputAudioBufferClear,
    /// `conversation.item.create`.
    ConversationItemCreate {
        /// Where to insert it.
        position: ItemPosition,
        /// The item.
        item: ItemInput,
    },
    /// `conversation.item.retrieve`.
    ConversationItemRetrieve {
        /// The item.
        item_id: String,
    },
    /// `conversation.item.truncate`.
    ConversationItemTruncate {
        /// The assistant item.
        item_id: String,
        /// Its audio content part.
        content_index: u32,
        /// Audio heard so far, in ms; later audio and its transcript are dropped.
        audio_end_ms: u64,
    },
    /// `conversation.item.delete`.
    ConversationItemDelete {
        /// The item.
        item_id: String,
    },
    /// `response.create`.
    ResponseCreate(Box<ResponseParams>),
    /// `response.cancel`.
    ResponseCancel {
        /// Which response (default: the one in progress).
        response_id: Option<String>,
    },
}

/// Where `conversation.item.create` inserts (`previous_item_id`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ItemPosition {
    /// No `previous_item_id`: append.
    #[default]
    End,
    /// `previous_item_id: "root"`: first.
    Root,
    /// After this item (an unknown id is an error, the item is not added).
    After(String),
}

impl ItemPosition {
    /// The `previous_item_id` that selects this position.
    pub fn previous_item_id(&self) -> Option<&str> {
        match self {
            Self::End => None,
            Self::Root => Some(ROOT_ITEM_ID),
            Self::After(id) => Some(id),
        }
    }
}

/// The `previous_item_id` that inserts at the start.
pub const ROOT_ITEM_ID: &str = "root";

impl ClientEventKind {
    /// The `type` of this event in `dialect`; `None` when the dialect has no such event.
    pub fn type_name(&self, dialect: Dialect) -> Option<&'static str> {
        Some(match self {
            Self::SessionUpdate(u) => match (dialect, u.kind) {
                (Dialect::Beta, Some(SessionKind::Transcription)) => "transcription_session.update",
                _ => "session.update",
            },
            Self::InputAudioBufferAppend { .. } => "input_audio_buffer.append",
            Self::InputAudioBufferCommit => "input_audio_buffer.commit",
            Self::InputAudioBufferClear => "input_audio_buffer.clear",
            Self::OutputAudioBufferClear => "output_audio_buffer.clear",
            Self::ConversationItemCreate { .. } => "conversation.item.create",
            Self::ConversationItemRetrieve { .. } => "conversation.item.retrieve",
            Self::ConversationItemTruncate { .. } => "conversation.item.truncate",
            Self::ConversationItemDelete { .. } => "conversation.item.delete",
            Self::ResponseCreate(_) => "response.create",
            Self::ResponseCancel { .. } => "response.cancel",
        })
    }
}

/// Every client event `type` of a dialect (GA 11, beta 12).
pub fn client_event_types(dialect: Dialect) -> &'static [&'static str] {
    const GA: &[&str] = &[
        "session.update",
        "input_audio_buffer.append",
        "input_audio_buffer.commit",
        "input_audio_buffer.clear",
        "output_audio_buffer.clear",
        "conversation.item.create",
        "conversation.item.retrieve",
        "conversation.item.truncate",
        "conversation.item.delete",
        "response.create",
        "response.cancel",
    ];
    const BETA: &[&str] = &[
        "session.update",
        "transcription_session.update",
        "input_audio_buffer.append",
        "input_audio_buffer.commit",
        "input_audio_buffer.clear",
        "output_audio_buffer.clear",
        "conversation.item.create",
        "conversation.item.retrieve",
        "conversation.item.truncate",
        "conversation.item.delete",
        "response.create",
        "response.cancel",
    ];
    match dialect {
        Dialect::Ga => GA,
        Dialect::Beta => BETA,
    }
}

/// A session as `session.created` / `session.updated` report it.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionObject {
    /// `sess_…`.
    pub id: String,
    /// When the session expires (Unix seconds), if it does.
    pub expires_at: Option<i64>,
    /// The full effective configuration.
    pub config: SessionConfig,
}

/// The position of a content part inside a response (the `R` fields of reference §5.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartRef {
    /// `response_id`.
    pub response_id: String,
    /// `item_id`.
    pub item_id: String,
    /// `output_index`: the item's place in `response.output`.
    pub output_index: u32,
    /// `content_index`: the part's place in the item's `content`.
    pub content_index: u32,
}

/// An output item of a response, for function-call and MCP events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputRef {
    /// `response_id`.
    pub response_id: String,
    /// `item_id`.
    pub item_id: String,
    /// `output_index`.
    pub output_index: u32,
}

/// A server event. [`encode_server`](super::encode_server) writes it in the connection's dialect; events that
/// one dialect lacks (see [`ServerEvent::type_name`]) are not sent on such connections.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerEvent {
    /// `session.created` (beta transcription session: `transcription_session.created`).
    SessionCreated {
        /// The session with its full config.
        session: Box<SessionObject>,
    },
    /// `session.updated` (beta transcription session: `transcription_session.updated`).
    SessionUpdated {
        /// The session with its full config.
        session: Box<SessionObject>,
    },
    /// `conversation.created`.
    ConversationCreated {
        /// `conv_…`.
        conversation_id: String,
    },
    /// An item entered the conversation: GA `conversation.item.added`, beta `conversation.item.created`.
    ConversationItemAdded {
        /// The item before it (`null` at the start).
        previous_item_id: Option<String>,
        /// The item.
        item: Item,
    },
    /// `conversation.item.created` in both dialects (GA keeps it in its union; the GA flow uses added/done).
    ConversationItemCreated {
        /// The item before it.
        previous_item_id: Option<String>,
        /// The item.
        item: Item,
    },
    /// GA `conversation.item.done`: the item is final (audio bytes omitted). Not sent in beta.
    ConversationItemDone {
        /// The item before it.
        previous_item_id: Option<String>,
        /// The final item.
        item: Item,
    },
    /// `conversation.item.retrieved`.
    ConversationItemRetrieved {
        /// The item, audio included.
        item: Item,
    },
    /// `conversation.item.deleted`.
    ConversationItemDeleted {
        /// The item.
        item_id: String,
    },
    /// `conversation.item.truncated`.
    ConversationItemTruncated {
        /// The item.
        item_id: String,
        /// The audio part.
        content_index: u32,
        /// Where it was cut, in ms.
        audio_end_ms: u64,
    },
    /// `conversation.item.input_audio_transcription.delta`.
    InputAudioTranscriptionDelta {
        /// The user item.
        item_id: String,
        /// Its audio part.
        content_index: u32,
        /// New text.
        delta: String,
        /// Log-probabilities, when `include` asked for them.
        logprobs: Option<Vec<LogProb>>,
    },
    /// `conversation.item.input_audio_transcription.completed`.
    InputAudioTranscriptionCompleted {
        /// The user item.
        item_id: String,
        /// Its audio part.
        content_index: u32,
        /// The whole transcript.
        transcript: String,
        /// Usage.
        usage: TranscriptionUsage,
        /// Log-probabilities, when asked for.
        logprobs: Option<Vec<LogProb>>,
    },
    /// `conversation.item.input_audio_transcription.failed`.
    InputAudioTranscriptionFailed {
        /// The user item.
        item_id: String,
        /// Its audio part.
        content_index: u32,
        /// What went wrong.
        error: ErrorObject,
    },
    /// GA `conversation.item.input_audio_transcription.segment` (diarized segment).
    InputAudioTranscriptionSegment {
        /// Segment id.
        id: String,
        /// The user item.
        item_id: String,
        /// Its audio part.
        content_index: u32,
        /// Segment text.
        text: String,
        /// Speaker label.
        speaker: String,
        /// Start, seconds.
        start: f64,
        /// End, seconds.
        end: f64,
    },
    /// `input_audio_buffer.committed`.
    InputAudioBufferCommitted {
        /// The item before the new user item.
        previous_item_id: Option<String>,
        /// The user item the buffer becomes.
        item_id: String,
    },
    /// `input_audio_buffer.cleared`.
    InputAudioBufferCleared,
    /// `input_audio_buffer.speech_started`.
    InputAudioBufferSpeechStarted {
        /// The user item to be.
        item_id: String,
        /// ms since the session's first appended byte, prefix padding included.
        audio_start_ms: u64,
    },
    /// `input_audio_buffer.speech_stopped`.
    InputAudioBufferSpeechStopped {
        /// The user item to be.
        item_id: String,
        /// ms since the session's first appended byte.
        audio_end_ms: u64,
    },
    /// GA `input_audio_buffer.timeout_triggered`.
    InputAudioBufferTimeoutTriggered {
        /// The (empty) user item.
        item_id: String,
        /// Start of the idle span, ms.
        audio_start_ms: u64,
        /// End of the idle span, ms.
        audio_end_ms: u64,
    },
    /// GA `input_audio_buffer.dtmf_event_received` (SIP; carries no `event_id`).
    InputAudioBufferDtmfEventReceived {
        /// The key, `0-9*#A-D`.
        event: String,
        /// Unix seconds.
        received_at: i64,
    },
    /// `output_audio_buffer.started` (WebRTC/SIP).
    OutputAudioBufferStarted {
        /// The response.
        response_id: String,
    },
    /// `output_audio_buffer.stopped` (WebRTC/SIP).
    OutputAudioBufferStopped {
        /// The response.
        response_id: String,
    },
    /// `output_audio_buffer.cleared` (WebRTC/SIP).
    OutputAudioBufferCleared {
        /// The response.
        response_id: String,
    },
    /// `response.created`.
    ResponseCreated {
        /// In progress, no output.
        response: Box<Response>,
    },
    /// `response.done`: the last event of a response, also when cancelled or failed.
    ResponseDone {
        /// Final status, all output items (no audio bytes), usage.
        response: Box<Response>,
    },
    /// `response.output_item.added`.
    ResponseOutputItemAdded {
        /// The response.
        response_id: String,
        /// Place in `output`.
        output_index: u32,
        /// The item (in progress).
        item: Item,
    },
    /// `response.output_item.done`.
    ResponseOutputItemDone {
        /// The response.
        response_id: String,
        /// Place in `output`.
        output_index: u32,
        /// The final item.
        item: Item,
    },
    /// `response.content_part.added` (`part.type` is `text` or `audio` in both dialects).
    ResponseContentPartAdded {
        /// Where.
        at: PartRef,
        /// The part (empty so far).
        part: ContentPart,
    },
    /// `response.content_part.done`.
    ResponseContentPartDone {
        /// Where.
        at: PartRef,
        /// The final part.
        part: ContentPart,
    },
    /// GA `response.output_text.delta`, beta `response.text.delta`.
    ResponseTextDelta {
        /// Where.
        at: PartRef,
        /// New text.
        delta: String,
    },
    /// GA `response.output_text.done`, beta `response.text.done`.
    ResponseTextDone {
        /// Where.
        at: PartRef,
        /// The whole text.
        text: String,
    },
    /// GA `response.output_audio.delta`, beta `response.audio.delta`.
    ResponseAudioDelta {
        /// Where.
        at: PartRef,
        /// Audio in the output format, sent as the base64 `delta` (encoded straight into the event's JSON).
        audio: AudioBytes,
    },
    /// GA `response.output_audio.done`, beta `response.audio.done`.
    ResponseAudioDone {
        /// Where.
        at: PartRef,
    },
    /// GA `response.output_audio_transcript.delta`, beta `response.audio_transcript.delta`.
    ResponseAudioTranscriptDelta {
        /// Where.
        at: PartRef,
        /// New transcript text.
        delta: String,
    },
    /// GA `response.output_audio_transcript.done`, beta `response.audio_transcript.done`.
    ResponseAudioTranscriptDone {
        /// Where.
        at: PartRef,
        /// The whole transcript.
        transcript: String,
    },
    /// `response.function_call_arguments.delta`.
    ResponseFunctionCallArgumentsDelta {
        /// Where.
        at: OutputRef,
        /// The call.
        call_id: String,
        /// New argument text.
        delta: String,
    },
    /// `response.function_call_arguments.done` (GA also carries `name`).
    ResponseFunctionCallArgumentsDone {
        /// Where.
        at: OutputRef,
        /// The call.
        call_id: String,
        /// The function (GA only on the wire).
        name: String,
        /// The whole arguments JSON string.
        arguments: String,
    },
    /// GA `response.mcp_call_arguments.delta`.
    ResponseMcpCallArgumentsDelta {
        /// Where.
        at: OutputRef,
        /// New argument text.
        delta: String,
        /// Padding against length side channels.
        obfuscation: Option<String>,
    },
    /// GA `response.mcp_call_arguments.done`.
    ResponseMcpCallArgumentsDone {
        /// Where.
        at: OutputRef,
        /// The whole arguments.
        arguments: String,
    },
    /// GA `response.mcp_call.in_progress`.
    ResponseMcpCallInProgress {
        /// The MCP call item.
        item_id: String,
        /// Place in `output`.
        output_index: u32,
    },
    /// GA `response.mcp_call.completed`.
    ResponseMcpCallCompleted {
        /// The MCP call item.
        item_id: String,
        /// Place in `output`.
        output_index: u32,
    },
    /// GA `response.mcp_call.failed`.
    ResponseMcpCallFailed {
        /// The MCP call item.
        item_id: String,
        /// Place in `output`.
        output_index: u32,
    },
    /// GA `mcp_list_tools.in_progress`.
    McpListToolsInProgress {
        /// The list-tools item.
        item_id: String,
    },
    /// GA `mcp_list_tools.completed`.
    McpListToolsCompleted {
        /// The list-tools item.
        item_id: String,
    },
    /// GA `mcp_list_tools.failed`.
    McpListToolsFailed {
        /// The list-tools item.
        item_id: String,
    },
    /// `rate_limits.updated` (sent as a response starts).
    RateLimitsUpdated {
        /// Current limits.
        rate_limits: Vec<RateLimit>,
    },
    /// `error`: the session stays open.
    Error {
        /// What went wrong, naming the client event when known.
        error: ErrorObject,
    },
}

impl ServerEvent {
    /// The `type` of this event in `dialect`; `None` when the dialect has no such event (it is then not sent).
    pub fn type_name(&self, dialect: Dialect) -> Option<&'static str> {
        let ga = dialect == Dialect::Ga;
        let beta_transcription = |s: &SessionObject| !ga && s.config.kind == SessionKind::Transcription;
        Some(match self {
            Self::SessionCreated { session } if beta_transcription(session) => {
                "transcription_session.created"
            }
            Self::SessionCreated { .. } => "session.created",
            Self::SessionUpdated { session } if beta_transcription(session) => {
                "transcription_session.updated"
            }
            Self::SessionUpdated { .. } => "session.updated",
            Self::ConversationCreated { .. } => "conversation.created",
            Self::ConversationItemAdded { .. } if ga => "conversation.item.added",
            Self::ConversationItemAdded { .. } | Self::ConversationItemCreated { .. } => {
                "conversation.item.created"
            }
            Self::ConversationItemDone { .. } if ga => "conversation.item.done",
            Self::ConversationItemRetrieved { .. } => "conversation.item.retrieved",
            Self::ConversationItemDeleted { .. } => "conversation.item.deleted",
            Self::ConversationItemTruncated { .. } => "conversation.item.truncated",
            Self::InputAudioTranscriptionDelta { .. } => "conversation.item.input_audio_transcription.delta",
            Self::InputAudioTranscriptionCompleted { .. } => {
                "conversation.item.input_audio_transcription.completed"
            }
            Self::InputAudioTranscriptionFailed { .. } => {
                "conversation.item.input_audio_transcription.failed"
            }
            Self::InputAudioTranscriptionSegment { .. } if ga => {
                "conversation.item.input_audio_transcription.segment"
            }
            Self::InputAudioBufferCommitted { .. } => "input_audio_buffer.committed",
            Self::InputAudioBufferCleared => "input_audio_buffer.cleared",
            Self::InputAudioBufferSpeechStarted { .. } => "input_audio_buffer.speech_started",
            Self::InputAudioBufferSpeechStopped { .. } => "input_audio_buffer.speech_stopped",
            Self::InputAudioBufferTimeoutTriggered { .. } if ga => "input_audio_buffer.timeout_triggered",
            Self::InputAudioBufferDtmfEventReceived { .. } if ga => "input_audio_buffer.dtmf_event_received",
            Self::OutputAudioBufferStarted { .. } => "output_audio_buffer.started",
            Self::OutputAudioBufferStopped { .. } => "output_audio_buffer.stopped",
            Self::OutputAudioBufferCleared { .. } => "output_audio_buffer.cleared",
            Self::ResponseCreated { .. } => "response.created",
            Self::ResponseDone { .. } => "response.done",
            Self::ResponseOutputItemAdded { .. } => "response.output_item.added",
            Self::ResponseOutputItemDone { .. } => "response.output_item.done",
            Self::ResponseContentPartAdded { .. } => "response.content_part.added",
            Self::ResponseContentPartDone { .. } => "response.content_part.done",
            Self::ResponseTextDelta { .. } if ga => "response.output_text.delta",
            Self::ResponseTextDelta { .. } => "response.text.delta",
            Self::ResponseTextDone { .. } if ga => "response.output_text.done",
            Self::ResponseTextDone { .. } => "response.text.done",
            Self::ResponseAudioDelta { .. } if ga => "response.output_audio.delta",
            Self::ResponseAudioDelta { .. } => "response.audio.delta",
            Self::ResponseAudioDone { .. } if ga => "response.output_audio.done",
            Self::ResponseAudioDone { .. } => "response.audio.done",
            Self::ResponseAudioTranscriptDelta { .. } if ga => "response.output_audio_transcript.delta",
            Self::ResponseAudioTranscriptDelta { .. } => "response.audio_transcript.delta",
            Self::ResponseAudioTranscriptDone { .. } if ga => "response.output_audio_transcript.done",
            Self::ResponseAudioTranscriptDone { .. } => "response.audio_transcript.done",
            Self::ResponseFunctionCallArgumentsDelta { .. } => "response.function_call_arguments.delta",
            Self::ResponseFunctionCallArgumentsDone { .. } => "response.function_call_arguments.done",
            Self::ResponseMcpCallArgumentsDelta { .. } if ga => "response.mcp_call_arguments.delta",
            Self::ResponseMcpCallArgumentsDone { .. } if ga => "response.mcp_call_arguments.done",
            Self::ResponseMcpCallInProgress { .. } if ga => "response.mcp_call.in_progress",
            Self::ResponseMcpCallCompleted { .. } if ga => "response.mcp_call.completed",
            Self::ResponseMcpCallFailed { .. } if ga => "response.mcp_call.failed",
            Self::McpListToolsInProgress { .. } if ga => "mcp_list_tools.in_progress",
            Self::McpListToolsCompleted { .. } if ga => "mcp_list_tools.completed",
            Self::McpListToolsFailed { .. } if ga => "mcp_list_tools.failed",
            Self::RateLimitsUpdated { .. } => "rate_limits.updated",
            Self::Error { .. } => "error",
            Self::ConversationItemDone { .. }
            | Self::InputAudioTranscriptionSegment { .. }
            | Self::InputAudioBufferTimeoutTriggered { .. }
            | Self::InputAudioBufferDtmfEventReceived { .. }
            | Self::ResponseMcpCallArgumentsDelta { .. }
            | Self::ResponseMcpCallArgumentsDone { .. }
            | Self::ResponseMcpCallInProgress { .. }
            | Self::ResponseMcpCallCompleted { .. }
            | Self::ResponseMcpCallFailed { .. }
            | Self::McpListToolsInProgress { .. }
            | Self::McpListToolsCompleted { .. }
            | Self::McpListToolsFailed { .. } => return None,
        })
    }
}
