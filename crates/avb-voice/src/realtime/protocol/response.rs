//! Responses (reference §5.4, §8): the response object, its status and usage, `response.create` overrides, and
//! the smaller payloads of server events (rate limits, transcription usage, log-probabilities).

use super::config::{
    AudioFormat, FunctionTool, MaxOutputTokens, OutputModalities, Prompt, ReasoningEffort, SessionConfig,
    ToolChoice, Voice,
};
use super::item::{Item, ItemInput};
use std::collections::BTreeMap;

/// Up to 16 string pairs (keys ≤ 64 chars, values ≤ 512 chars) attached to a response.
pub type Metadata = BTreeMap<String, String>;
/// Most metadata pairs.
pub const METADATA_MAX_PAIRS: usize = 16;
/// Longest metadata key, in characters.
pub const METADATA_MAX_KEY_CHARS: usize = 64;
/// Longest metadata value, in characters.
pub const METADATA_MAX_VALUE_CHARS: usize = 512;

/// Response lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ResponseStatus {
    /// Being produced (`response.created`).
    #[default]
    InProgress,
    /// Finished normally.
    Completed,
    /// Cancelled (client, or turn detection).
    Cancelled,
    /// Failed.
    Failed,
    /// Cut short (token cap, content filter).
    Incomplete,
}

impl ResponseStatus {
    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::InProgress => "in_progress",
            Self::Completed => "completed",
            Self::Cancelled => "cancelled",
            Self::Failed => "failed",
            Self::Incomplete => "incomplete",
        }
    }
}

/// Why a response ended the way it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatusReason {
    /// The caller started speaking (barge-in).
    TurnDetected,
    /// `response.cancel`.
    ClientCancelled,
    /// The token cap was reached.
    MaxOutputTokens,
    /// Filtered.
    ContentFilter,
}

impl StatusReason {
    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::TurnDetected => "turn_detected",
            Self::ClientCancelled => "client_cancelled",
            Self::MaxOutputTokens => "max_output_tokens",
            Self::ContentFilter => "content_filter",
        }
    }
}

/// The error behind a failed response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusError {
    /// `type`.
    pub kind: String,
    /// `code`.
    pub code: Option<String>,
}

/// `status_details`; its `type` is the response status and is written by the encoder.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StatusDetails {
    /// Why it ended.
    pub reason: Option<StatusReason>,
    /// What failed.
    pub error: Option<StatusError>,
}

/// Cached-token breakdown (GA only on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[allow(missing_docs)]
pub struct CachedTokenDetails {
    pub text_tokens: u64,
    pub audio_tokens: u64,
    pub image_tokens: u64,
}

/// Input-token breakdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[allow(missing_docs)]
pub struct InputTokenDetails {
    pub text_tokens: u64,
    pub audio_tokens: u64,
    pub cached_tokens: u64,
    /// GA only on the wire.
    pub image_tokens: u64,
    /// GA only on the wire.
    pub cached_tokens_details: CachedTokenDetails,
}

/// Output-token breakdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[allow(missing_docs)]
pub struct OutputTokenDetails {
    pub text_tokens: u64,
    pub audio_tokens: u64,
}

/// Token usage of one response (what billing meters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[allow(missing_docs)]
pub struct Usage {
    pub total_tokens: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub input_token_details: InputTokenDetails,
    pub output_token_details: OutputTokenDetails,
}

/// A response as `response.created` / `response.done` report it.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    /// `resp_…`.
    pub id: String,
    /// `conv_…` for the default conversation, `None` for out-of-band responses.
    pub conversation_id: Option<String>,
    /// Lifecycle.
    pub status: ResponseStatus,
    /// `status_details` (`None` → `null`).
    pub status_details: Option<StatusDetails>,
    /// Output items (without audio bytes in `response.done`).
    pub output: Vec<Item>,
    /// Client metadata.
    pub metadata: Option<Metadata>,
    /// Modalities in effect.
    pub output_modalities: OutputModalities,
    /// Voice in effect.
    pub voice: Voice,
    /// Output format in effect.
    pub output_format: AudioFormat,
    /// Temperature in effect (beta only on the wire).
    pub temperature: f64,
    /// Token cap in effect.
    pub max_output_tokens: MaxOutputTokens,
    /// Usage, once known.
    pub usage: Option<Usage>,
}

impl Response {
    /// A new in-progress response with no output, taking modalities, voice, format, temperature and cap from
    /// `config` and then from `params` where they override.
    pub fn start(
        id: impl Into<String>,
        conversation_id: Option<String>,
        config: &SessionConfig,
        params: &ResponseParams,
    ) -> Self {
        Self {
            id: id.into(),
            conversation_id,
            status: ResponseStatus::InProgress,
            status_details: None,
            output: Vec::new(),
            metadata: params.metadata.clone(),
            output_modalities: params.output_modalities.unwrap_or(config.output_modalities),
            voice: params.voice.clone().unwrap_or_else(|| config.voice.clone()),
            output_format: params.output_format.unwrap_or(config.output_format),
            temperature: params.temperature.unwrap_or(config.temperature),
            max_output_tokens: params.max_output_tokens.unwrap_or(config.max_output_tokens),
            usage: None,
        }
    }
}

/// Where a response writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ConversationMode {
    /// `"auto"`: the default conversation (one such response at a time).
    #[default]
    Auto,
    /// `"none"`: out-of-band, not written to history; may run in parallel.
    None,
}

/// One entry of `response.create.input`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponseInput {
    /// An inline item.
    Item(ItemInput),
    /// `{type:"item_reference", id}`: an existing conversation item.
    Reference {
        /// The referenced item.
        id: String,
    },
}

/// `response.create` overrides (reference §8). `None` = the session's value.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ResponseParams {
    /// `conversation`.
    pub conversation: ConversationMode,
    /// `input`: replaces the history as the prompt context (`Some(vec![])` = empty context).
    pub input: Option<Vec<ResponseInput>>,
    /// `instructions`.
    pub instructions: Option<String>,
    /// Beta `modalities`, GA `output_modalities`.
    pub output_modalities: Option<OutputModalities>,
    /// Beta `voice`, GA `audio.output.voice`.
    pub voice: Option<Voice>,
    /// Beta `output_audio_format`, GA `audio.output.format`.
    pub output_format: Option<AudioFormat>,
    /// `tools`.
    pub tools: Option<Vec<FunctionTool>>,
    /// `tool_choice`.
    pub tool_choice: Option<ToolChoice>,
    /// Beta `temperature`.
    pub temperature: Option<f64>,
    /// Beta `max_response_output_tokens`, GA `max_output_tokens`.
    pub max_output_tokens: Option<MaxOutputTokens>,
    /// `metadata`.
    pub metadata: Option<Metadata>,
    /// GA `parallel_tool_calls`.
    pub parallel_tool_calls: Option<bool>,
    /// GA `reasoning.effort`.
    pub reasoning: Option<ReasoningEffort>,
    /// GA `prompt`.
    pub prompt: Option<Prompt>,
}

/// Which limit a rate-limit entry describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RateLimitName {
    /// `requests`.
    Requests,
    /// `tokens`.
    Tokens,
}

impl RateLimitName {
    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Requests => "requests",
            Self::Tokens => "tokens",
        }
    }
}

/// One entry of `rate_limits.updated`.
#[derive(Debug, Clone, PartialEq)]
pub struct RateLimit {
    /// Which limit.
    pub name: RateLimitName,
    /// The limit.
    pub limit: u64,
    /// What is left.
    pub remaining: u64,
    /// Seconds until it resets.
    pub reset_seconds: f64,
}

/// Usage of one input transcription.
#[derive(Debug, Clone, PartialEq)]
pub enum TranscriptionUsage {
    /// Token-billed models.
    Tokens {
        /// Input tokens.
        input_tokens: u64,
        /// Output tokens.
        output_tokens: u64,
        /// Total tokens.
        total_tokens: u64,
        /// `{text_tokens, audio_tokens}` of the input.
        input_token_details: Option<TranscriptionTokenDetails>,
    },
    /// Duration-billed models.
    Duration {
        /// Seconds of audio.
        seconds: f64,
    },
}

/// Input-token breakdown of a transcription.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[allow(missing_docs)]
pub struct TranscriptionTokenDetails {
    pub text_tokens: u64,
    pub audio_tokens: u64,
}

/// A token's log-probability.
#[derive(Debug, Clone, PartialEq)]
pub struct LogProb {
    /// The token.
    pub token: String,
    /// Its log-probability.
    pub logprob: f64,
    /// Its UTF-8 bytes.
    pub bytes: Vec<u8>,
}
