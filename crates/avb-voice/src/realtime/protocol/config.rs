//! Session configuration (reference §7): the dialect-neutral effective config, partial updates from
//! `session.update` / `transcription_session.update`, and their merge.
//!
//! Context-free rules (types, enums, ranges) are checked while decoding, where the dialect's field paths are
//! known; [`SessionConfig::apply`] adds the rules that depend on the session (type fixed, voice fixed once audio
//! was produced, tracing fixed once on, `tool_choice` naming a defined tool) and is all-or-nothing.

use super::dialect::Dialect;
use super::error::ProtocolError;
use serde_json::{Map, Value};

/// The default voice (both dialects).
pub const DEFAULT_VOICE: &str = "alloy";
/// The default sampling temperature (beta; advised for audio models).
pub const DEFAULT_TEMPERATURE: f64 = 0.8;
/// Beta's allowed temperature range.
pub const TEMPERATURE_RANGE: std::ops::RangeInclusive<f64> = 0.6..=1.2;
/// Allowed speech speed.
pub const SPEED_RANGE: std::ops::RangeInclusive<f64> = 0.25..=1.5;
/// Allowed per-response output token cap (besides `"inf"`).
pub const MAX_OUTPUT_TOKENS_RANGE: std::ops::RangeInclusive<u32> = 1..=4096;
/// Allowed GA `idle_timeout_ms`.
pub const IDLE_TIMEOUT_MS_RANGE: std::ops::RangeInclusive<u32> = 5_000..=30_000;

/// What a session does. Fixed for the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SessionKind {
    /// A voice/text conversation with responses (GA `type: "realtime"`).
    #[default]
    Realtime,
    /// Input transcription only (GA `type: "transcription"`, beta `transcription_session.*`).
    Transcription,
}

/// What responses contain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum OutputModalities {
    /// Text only (beta `["text"]`, GA `["text"]`).
    Text,
    /// Speech with its transcript (beta `["text","audio"]`, GA `["audio"]`).
    #[default]
    Audio,
}

impl OutputModalities {
    /// Whether responses carry audio.
    pub const fn audio(self) -> bool {
        matches!(self, Self::Audio)
    }
}

/// Audio encodings the protocol allows (reference §7.2). Mono throughout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum AudioFormat {
    /// 16-bit signed little-endian PCM at 24 kHz (beta `pcm16`, GA `{type:"audio/pcm", rate:24000}`).
    #[default]
    Pcm16,
    /// G.711 µ-law, 8 kHz (beta `g711_ulaw`, GA `{type:"audio/pcmu"}`).
    G711Ulaw,
    /// G.711 A-law, 8 kHz (beta `g711_alaw`, GA `{type:"audio/pcma"}`).
    G711Alaw,
}

impl AudioFormat {
    /// Samples per second.
    pub const fn sample_rate(self) -> u32 {
        match self {
            Self::Pcm16 => 24_000,
            Self::G711Ulaw | Self::G711Alaw => 8_000,
        }
    }

    /// The beta token.
    pub const fn beta_name(self) -> &'static str {
        match self {
            Self::Pcm16 => "pcm16",
            Self::G711Ulaw => "g711_ulaw",
            Self::G711Alaw => "g711_alaw",
        }
    }

    /// The GA `type` of the format object.
    pub const fn ga_type(self) -> &'static str {
        match self {
            Self::Pcm16 => "audio/pcm",
            Self::G711Ulaw => "audio/pcmu",
            Self::G711Alaw => "audio/pcma",
        }
    }
}

/// The voice responses are spoken in.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Voice {
    /// A named voice (`alloy`, `ash`, `marin`, … or any other name the speech engine knows).
    Named(String),
    /// A custom voice by id (GA `{id}`; beta has only names and gets the id as the name).
    Custom {
        /// The custom voice id.
        id: String,
    },
}

impl Voice {
    /// The name or id.
    pub fn id(&self) -> &str {
        match self {
            Self::Named(name) => name,
            Self::Custom { id } => id,
        }
    }
}

impl Default for Voice {
    fn default() -> Self {
        Self::Named(DEFAULT_VOICE.to_owned())
    }
}

/// Latency/accuracy trade-off of GA input transcription.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum TranscriptionDelay {
    Minimal,
    Low,
    Medium,
    High,
    Xhigh,
}

/// Input-audio transcription settings (beta `input_audio_transcription`, GA `audio.input.transcription`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TranscriptionConfig {
    /// Transcription model name.
    pub model: Option<String>,
    /// ISO-639-1 language hint.
    pub language: Option<String>,
    /// GA: several language hints.
    pub languages: Vec<String>,
    /// Free-text prompt or keyword list.
    pub prompt: Option<String>,
    /// GA: keywords to favour.
    pub keywords: Vec<String>,
    /// GA: latency trade-off.
    pub delay: Option<TranscriptionDelay>,
}

/// Microphone kind for noise reduction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NoiseReductionKind {
    /// Headsets, close-talking microphones.
    NearField,
    /// Laptop or room microphones.
    FarField,
}

/// Input noise reduction (beta `input_audio_noise_reduction`, GA `audio.input.noise_reduction`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NoiseReduction {
    /// `type`.
    pub kind: Option<NoiseReductionKind>,
    /// GA: strength, 0..=1.
    pub strength: Option<f64>,
}

/// How eagerly semantic VAD ends a turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[allow(missing_docs)]
pub enum Eagerness {
    Low,
    Medium,
    High,
    /// Same as `Medium`.
    #[default]
    Auto,
}

/// Server VAD settings (reference §7.3).
#[derive(Debug, Clone, PartialEq)]
pub struct ServerVad {
    /// Activation threshold, 0..=1 (default 0.5).
    pub threshold: f64,
    /// Audio kept before detected speech, ms (default 300).
    pub prefix_padding_ms: u32,
    /// Silence that ends a turn, ms (default 500).
    pub silence_duration_ms: u32,
    /// GA: after the response audio and this much silence, `input_audio_buffer.timeout_triggered` (5000..=30000).
    pub idle_timeout_ms: Option<u32>,
    /// Answer automatically when speech stops (default true).
    pub create_response: bool,
    /// Cancel the in-flight default-conversation response when speech starts (default true).
    pub interrupt_response: bool,
}

impl Default for ServerVad {
    fn default() -> Self {
        Self {
            threshold: 0.5,
            prefix_padding_ms: 300,
            silence_duration_ms: 500,
            idle_timeout_ms: None,
            create_response: true,
            interrupt_response: true,
        }
    }
}

/// Semantic VAD settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SemanticVad {
    /// How soon a turn ends.
    pub eagerness: Eagerness,
    /// Answer automatically when the turn ends (default true).
    pub create_response: bool,
    /// Cancel the in-flight response when speech starts (default true).
    pub interrupt_response: bool,
}

impl Default for SemanticVad {
    fn default() -> Self {
        Self {
            eagerness: Eagerness::Auto,
            create_response: true,
            interrupt_response: true,
        }
    }
}

/// Turn detection; the config holds `None` for push-to-talk (`turn_detection: null`).
#[derive(Debug, Clone, PartialEq)]
pub enum TurnDetection {
    /// Volume-based VAD.
    ServerVad(ServerVad),
    /// Turn-end model on top of VAD.
    SemanticVad(SemanticVad),
}

impl TurnDetection {
    /// Whether the server answers on its own at the end of a turn.
    pub const fn create_response(&self) -> bool {
        match self {
            Self::ServerVad(v) => v.create_response,
            Self::SemanticVad(v) => v.create_response,
        }
    }

    /// Whether speech cancels an in-flight response.
    pub const fn interrupt_response(&self) -> bool {
        match self {
            Self::ServerVad(v) => v.interrupt_response,
            Self::SemanticVad(v) => v.interrupt_response,
        }
    }
}

impl Default for TurnDetection {
    fn default() -> Self {
        Self::ServerVad(ServerVad::default())
    }
}

/// A function the model may call.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionTool {
    /// `^[A-Za-z0-9_-]{1,64}$`.
    pub name: String,
    /// When and how to call it.
    pub description: Option<String>,
    /// JSON Schema of the arguments (an object).
    pub parameters: Option<Value>,
}

/// How the model picks tools.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ToolChoice {
    /// The model decides.
    #[default]
    Auto,
    /// No tool calls.
    None,
    /// At least one tool call.
    Required,
    /// This function.
    Function {
        /// The function's name (must be one of the tools).
        name: String,
    },
}

/// Output token cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MaxOutputTokens {
    /// `"inf"`: the model's maximum.
    #[default]
    Inf,
    /// 1..=4096.
    Limit(u32),
}

/// Tracing configuration; the config holds `None` when tracing is off.
#[derive(Debug, Clone, PartialEq)]
pub enum Tracing {
    /// `"auto"`.
    Auto,
    /// Named workflow and grouping.
    Custom {
        /// `workflow_name`.
        workflow_name: Option<String>,
        /// `group_id`.
        group_id: Option<String>,
        /// `metadata` (any JSON object).
        metadata: Option<Value>,
    },
}

/// GA context truncation.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Truncation {
    /// `"auto"`.
    #[default]
    Auto,
    /// `"disabled"`.
    Disabled,
    /// `{type:"retention_ratio", retention_ratio, token_limits?{post_instructions?}}`.
    RetentionRatio {
        /// 0..=1.
        retention_ratio: f64,
        /// `token_limits.post_instructions`.
        post_instructions_token_limit: Option<u64>,
    },
}

/// Extra outputs a client can ask for (`include`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Include {
    /// `item.input_audio_transcription.logprobs`.
    InputAudioTranscriptionLogprobs,
}

impl Include {
    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::InputAudioTranscriptionLogprobs => "item.input_audio_transcription.logprobs",
        }
    }
}

/// GA stored-prompt reference.
#[derive(Debug, Clone, PartialEq)]
pub struct Prompt {
    /// Prompt id.
    pub id: String,
    /// Prompt version.
    pub version: Option<String>,
    /// Template variables.
    pub variables: Option<Map<String, Value>>,
}

/// GA reasoning effort.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum ReasoningEffort {
    Minimal,
    Low,
    Medium,
    High,
    Xhigh,
}

/// The effective configuration of a session: what `session.created` and every `session.updated` report in
/// full. Fields that exist in one dialect only are kept for both and simply not shown in the other.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionConfig {
    /// Conversation or transcription; fixed.
    pub kind: SessionKind,
    /// The model from the connect URL; fixed.
    pub model: String,
    /// System prompt; `""` when none.
    pub instructions: String,
    /// Beta `modalities`, GA `output_modalities`.
    pub output_modalities: OutputModalities,
    /// Beta `voice`, GA `audio.output.voice`; fixed once audio was produced.
    pub voice: Voice,
    /// Speech speed, 0.25..=1.5.
    pub speed: f64,
    /// Beta `input_audio_format`, GA `audio.input.format`.
    pub input_format: AudioFormat,
    /// Beta `output_audio_format`, GA `audio.output.format`.
    pub output_format: AudioFormat,
    /// `None` = no input transcription.
    pub input_transcription: Option<TranscriptionConfig>,
    /// `None` = off.
    pub noise_reduction: Option<NoiseReduction>,
    /// `None` = push-to-talk.
    pub turn_detection: Option<TurnDetection>,
    /// Function tools.
    pub tools: Vec<FunctionTool>,
    /// Tool choice.
    pub tool_choice: ToolChoice,
    /// GA `parallel_tool_calls` (not shown when unset).
    pub parallel_tool_calls: Option<bool>,
    /// Beta sampling temperature, 0.6..=1.2.
    pub temperature: f64,
    /// Beta `max_response_output_tokens`, GA `max_output_tokens`.
    pub max_output_tokens: MaxOutputTokens,
    /// `None` = tracing off; fixed once on.
    pub tracing: Option<Tracing>,
    /// GA truncation.
    pub truncation: Truncation,
    /// Extra outputs.
    pub include: Vec<Include>,
    /// GA stored prompt.
    pub prompt: Option<Prompt>,
    /// GA reasoning.
    pub reasoning: Option<ReasoningEffort>,
}

impl SessionConfig {
    /// The defaults a new session starts with (what `session.created` reports unless the server configures
    /// otherwise): audio out, voice `alloy`, pcm16 both ways, server VAD (0.5 / 300 ms / 500 ms, create and
    /// interrupt), no tools, `tool_choice: auto`, temperature 0.8, `"inf"` tokens. A transcription session starts
    /// with transcription on.
    pub fn new(kind: SessionKind, model: impl Into<String>) -> Self {
        Self {
            kind,
            model: model.into(),
            instructions: String::new(),
            output_modalities: match kind {
                SessionKind::Realtime => OutputModalities::Audio,
                SessionKind::Transcription => OutputModalities::Text,
            },
            voice: Voice::default(),
            speed: 1.0,
            input_format: AudioFormat::Pcm16,
            output_format: AudioFormat::Pcm16,
            input_transcription: match kind {
                SessionKind::Realtime => None,
                SessionKind::Transcription => Some(TranscriptionConfig::default()),
            },
            noise_reduction: None,
            turn_detection: Some(TurnDetection::default()),
            tools: Vec::new(),
            tool_choice: ToolChoice::Auto,
            parallel_tool_calls: None,
            temperature: DEFAULT_TEMPERATURE,
            max_output_tokens: MaxOutputTokens::Inf,
            tracing: None,
            truncation: Truncation::Auto,
            include: Vec::new(),
            prompt: None,
            reasoning: None,
        }
    }

    /// Merges a partial update: only fields present in `update` change (`Some(None)` clears a nullable one).
    ///
    /// # Contract
    /// - All-or-nothing: on `Err` the config is unchanged.
    /// - The session type is fixed ([`ConfigField::Kind`]); the model is fixed for the connection, so a `model` in
    ///   the update is ignored.
    /// - With `locks.voice` (audio already produced) a different voice is refused ([`ConfigField::Voice`]).
    /// - Once tracing is on, a different tracing value is refused ([`ConfigField::Tracing`]).
    /// - A `tool_choice` naming a function must name one of the resulting tools ([`ConfigField::ToolChoice`]).
    pub fn apply(&mut self, update: SessionUpdate, locks: UpdateLocks) -> Result<(), ConfigError> {
        if let Some(kind) = update.kind
            && kind != self.kind
        {
            return Err(ConfigError::new(
                ConfigField::Kind,
                "The session type cannot be changed.",
            ));
        }
        let mut next = self.clone();
        if let Some(voice) = update.voice {
            if locks.voice && voice != self.voice {
                return Err(ConfigError::new(
                    ConfigField::Voice,
                    "The voice cannot be changed once the session has produced audio.",
                ));
            }
            next.voice = voice;
        }
        if let Some(tracing) = update.tracing {
            if self.tracing.is_some() && tracing != self.tracing {
                return Err(ConfigError::new(
                    ConfigField::Tracing,
                    "Tracing cannot be changed once it is enabled for the session.",
                ));
            }
            next.tracing = tracing;
        }
        set(&mut next.instructions, update.instructions);
        set(&mut next.output_modalities, update.output_modalities);
        set(&mut next.speed, update.speed);
        set(&mut next.input_format, update.input_format);
        set(&mut next.output_format, update.output_format);
        set(&mut next.input_transcription, update.input_transcription);
        set(&mut next.noise_reduction, update.noise_reduction);
        set(&mut next.turn_detection, update.turn_detection);
        set(&mut next.tools, update.tools);
        set(&mut next.tool_choice, update.tool_choice);
        if update.parallel_tool_calls.is_some() {
            next.parallel_tool_calls = update.parallel_tool_calls;
        }
        set(&mut next.temperature, update.temperature);
        set(&mut next.max_output_tokens, update.max_output_tokens);
        set(&mut next.truncation, update.truncation);
        set(&mut next.include, update.include);
        set(&mut next.prompt, update.prompt);
        set(&mut next.reasoning, update.reasoning.map(Some));
        if let ToolChoice::Function { name } = &next.tool_choice
            && !next.tools.iter().any(|t| t.name == *name)
        {
            return Err(ConfigError::new(
                ConfigField::ToolChoice,
                format!("Tool choice names the function '{name}', which is not among the session's tools."),
            ));
        }
        *self = next;
        Ok(())
    }
}

fn set<T>(slot: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *slot = v;
    }
}

/// A partial session configuration: what one `session.update` (or beta `transcription_session.update`) asked
/// for. `None` = leave as is; for nullable fields `Some(None)` = turn off.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SessionUpdate {
    /// The session type the update is for. Decoded updates always carry it: GA's `session.type`; beta
    /// `Realtime` for `session.update`, `Transcription` for `transcription_session.update`.
    pub kind: Option<SessionKind>,
    /// `model` as sent (ignored by [`SessionConfig::apply`]).
    pub model: Option<String>,
    /// `instructions` (`""` clears).
    pub instructions: Option<String>,
    /// Modalities.
    pub output_modalities: Option<OutputModalities>,
    /// Voice.
    pub voice: Option<Voice>,
    /// Speed.
    pub speed: Option<f64>,
    /// Input format.
    pub input_format: Option<AudioFormat>,
    /// Output format.
    pub output_format: Option<AudioFormat>,
    /// Transcription (`Some(None)` turns it off).
    pub input_transcription: Option<Option<TranscriptionConfig>>,
    /// Noise reduction (`Some(None)` turns it off).
    pub noise_reduction: Option<Option<NoiseReduction>>,
    /// Turn detection (`Some(None)` = push-to-talk). Replaces the whole object; absent sub-fields take defaults.
    pub turn_detection: Option<Option<TurnDetection>>,
    /// Tools (`[]` clears).
    pub tools: Option<Vec<FunctionTool>>,
    /// Tool choice.
    pub tool_choice: Option<ToolChoice>,
    /// GA parallel tool calls.
    pub parallel_tool_calls: Option<bool>,
    /// Beta temperature.
    pub temperature: Option<f64>,
    /// Token cap.
    pub max_output_tokens: Option<MaxOutputTokens>,
    /// Tracing (`Some(None)` turns it off).
    pub tracing: Option<Option<Tracing>>,
    /// GA truncation.
    pub truncation: Option<Truncation>,
    /// Include list.
    pub include: Option<Vec<Include>>,
    /// GA prompt (`Some(None)` clears).
    pub prompt: Option<Option<Prompt>>,
    /// GA reasoning effort.
    pub reasoning: Option<ReasoningEffort>,
}

/// Session state that freezes parts of the config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UpdateLocks {
    /// The session has produced audio, so the voice is fixed.
    pub voice: bool,
}

/// The config field a session-dependent rule refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConfigField {
    /// The session type.
    Kind,
    /// The voice.
    Voice,
    /// Tracing.
    Tracing,
    /// The tool choice.
    ToolChoice,
}

impl ConfigField {
    /// The `param` path in the dialect's shape.
    pub const fn param(self, dialect: Dialect) -> &'static str {
        match (self, dialect) {
            (Self::Kind, Dialect::Ga) => "session.type",
            (Self::Kind, Dialect::Beta) => "type",
            (Self::Voice, Dialect::Ga) => "session.audio.output.voice",
            (Self::Voice, Dialect::Beta) => "session.voice",
            (Self::Tracing, _) => "session.tracing",
            (Self::ToolChoice, _) => "session.tool_choice",
        }
    }
}

/// A session update refused by [`SessionConfig::apply`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ConfigError {
    /// The field at fault.
    pub field: ConfigField,
    /// Why.
    pub message: String,
}

impl ConfigError {
    /// A refusal.
    pub fn new(field: ConfigField, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }

    /// The `invalid_value` protocol error naming the field in the dialect's shape and the client event.
    pub fn into_protocol_error(self, dialect: Dialect, event_id: Option<String>) -> ProtocolError {
        ProtocolError::invalid_value(self.field.param(dialect), self.message).with_event_id(event_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tool(name: &str) -> FunctionTool {
        FunctionTool {
            name: name.into(),
            description: None,
            parameters: None,
        }
    }

    #[test]
    fn apply_changes_only_present_fields_and_clears_nullables() {
        let mut c = SessionConfig::new(SessionKind::Realtime, "m");
        let before = c.clone();
        c.apply(
            SessionUpdate {
                instructions: Some("be brief".into()),
                turn_detection: Some(None),
                ..SessionUpdate::default()
            },
            UpdateLocks::default(),
        )
        .unwrap();
        assert_eq!(c.instructions, "be brief");
        assert_eq!(c.turn_detection, None);
        assert_eq!(c.voice, before.voice);
        assert_eq!(c.output_format, before.output_format);
    }

    #[test]
    fn model_in_update_is_ignored() {
        let mut c = SessionConfig::new(SessionKind::Realtime, "m");
        c.apply(
            SessionUpdate {
                model: Some("other".into()),
                ..Default::default()
            },
            UpdateLocks::default(),
        )
        .unwrap();
        assert_eq!(c.model, "m");
    }

    #[test]
    fn locked_voice_and_kind_change_are_refused_without_partial_effect() {
        let mut c = SessionConfig::new(SessionKind::Realtime, "m");
        let before = c.clone();
        let err = c
            .apply(
                SessionUpdate {
                    instructions: Some("x".into()),
                    voice: Some(Voice::Named("ash".into())),
                    ..Default::default()
                },
                UpdateLocks { voice: true },
            )
            .unwrap_err();
        assert_eq!(err.field, ConfigField::Voice);
        assert_eq!(c, before);
        // The same voice is fine even when locked.
        c.apply(
            SessionUpdate {
                voice: Some(Voice::default()),
                ..Default::default()
            },
            UpdateLocks { voice: true },
        )
        .unwrap();
        let err = c
            .apply(
                SessionUpdate {
                    kind: Some(SessionKind::Transcription),
                    ..Default::default()
                },
                UpdateLocks::default(),
            )
            .unwrap_err();
        assert_eq!(err.field, ConfigField::Kind);
        assert_eq!(
            err.clone().into_protocol_error(Dialect::Ga, None).param(),
            Some("session.type")
        );
    }

    #[test]
    fn tracing_is_fixed_once_on() {
        let mut c = SessionConfig::new(SessionKind::Realtime, "m");
        c.apply(
            SessionUpdate {
                tracing: Some(Some(Tracing::Auto)),
                ..Default::default()
            },
            UpdateLocks::default(),
        )
        .unwrap();
        let err = c
            .apply(
                SessionUpdate {
                    tracing: Some(None),
                    ..Default::default()
                },
                UpdateLocks::default(),
            )
            .unwrap_err();
        assert_eq!(err.field, ConfigField::Tracing);
    }

    #[test]
    fn tool_choice_must_name_a_defined_tool() {
        let mut c = SessionConfig::new(SessionKind::Realtime, "m");
        let choose = ToolChoice::Function {
            name: "lookup".into(),
        };
        let err = c
            .apply(
                SessionUpdate {
                    tool_choice: Some(choose.clone()),
                    ..Default::default()
                },
                UpdateLocks::default(),
            )
            .unwrap_err();
        assert_eq!(err.field, ConfigField::ToolChoice);
        c.apply(
            SessionUpdate {
                tools: Some(vec![tool("lookup")]),
                tool_choice: Some(choose),
                ..Default::default()
            },
            UpdateLocks::default(),
        )
        .unwrap();
        // Removing the tool while it is still chosen is refused.
        let err = c
            .apply(
                SessionUpdate {
                    tools: Some(vec![]),
                    ..Default::default()
                },
                UpdateLocks::default(),
            )
            .unwrap_err();
        assert_eq!(err.field, ConfigField::ToolChoice);
        assert_eq!(
            err.into_protocol_error(Dialect::Beta, Some("e1".into()))
                .event_id(),
            Some("e1")
        );
    }
}
