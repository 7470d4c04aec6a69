//! Neutral events into the frames of one dialect (reference §3, §5, §6, §7). Names and shapes come from the
//! dialect alone: a GA connection never sees a beta name or field, and the reverse.

use super::config::{
    AudioFormat, Eagerness, FunctionTool, MaxOutputTokens, NoiseReduction, NoiseReductionKind,
    OutputModalities, Prompt, ReasoningEffort, SessionConfig, SessionKind, SessionUpdate, ToolChoice,
    Tracing, TranscriptionConfig, TranscriptionDelay, Truncation, TurnDetection, Voice,
};
use super::decode::BASE64;
use super::dialect::Dialect;
use super::error::ErrorObject;
use super::event::{ClientEvent, ClientEventKind, OutputRef, PartRef, ServerEvent, SessionObject};
use super::ids::IdKind;
use super::item::{AudioBytes, ContentPart, Item, ItemInput, ItemKind};
use super::response::{
    ConversationMode, LogProb, Metadata, RateLimit, Response, ResponseInput, ResponseParams,
    TranscriptionUsage, Usage,
};
use avb_core::IdGen;
use base64::Engine as _;
use serde_json::{Map, Value, json};

/// Encodes a server event for a connection of `dialect`, with a fresh `event_…` id from `ids`.
///
/// `None` when the dialect has no such event ([`ServerEvent::type_name`]): the engine emits neutral events and
/// GA-only ones (`conversation.item.done`, `…timeout_triggered`, MCP events…) are simply not sent to beta
/// clients.
pub fn encode_server(dialect: Dialect, ids: &dyn IdGen, event: &ServerEvent) -> Option<String> {
    event.type_name(dialect)?;
    encode_server_with_id(dialect, &IdKind::Event.generate(ids), event)
}

/// [`encode_server`] with a given `event_id` (ignored by `input_audio_buffer.dtmf_event_received`, which has
/// none).
pub fn encode_server_with_id(dialect: Dialect, event_id: &str, event: &ServerEvent) -> Option<String> {
    if let ServerEvent::ResponseAudioDelta { at, audio } = event {
        return Some(encode_audio_delta(event.type_name(dialect)?, event_id, at, audio));
    }
    // Straight into a byte buffer: `Value::to_string` goes through `fmt::Write`, byte run by byte run.
    encode_server_value(dialect, event_id, event).and_then(|v| serde_json::to_string(&v).ok())
}

/// An audio delta written straight into its frame: the audio is base64-encoded into the output (no `delta`
/// string, no JSON tree holding a copy of it, no escape scan over text that cannot need escaping). Audio
/// deltas are nearly all of a speaking session's output. The keys come in the order the general path gives
/// them (serde_json's map is sorted), so both produce the same bytes — a test holds them to it.
fn encode_audio_delta(type_name: &str, event_id: &str, at: &PartRef, audio: &AudioBytes) -> String {
    use std::fmt::Write as _;
    let ids = event_id.len() + at.item_id.len() + at.response_id.len() + type_name.len();
    let mut out = String::with_capacity(audio.len().div_ceil(3) * 4 + ids + 128);
    let _ = write!(out, "{{\"content_index\":{},\"delta\":\"", at.content_index);
    audio.append_base64(&mut out);
    out.push_str("\",\"event_id\":");
    push_json_str(&mut out, event_id);
    out.push_str(",\"item_id\":");
    push_json_str(&mut out, &at.item_id);
    let _ = write!(out, ",\"output_index\":{},\"response_id\":", at.output_index);
    push_json_str(&mut out, &at.response_id);
    out.push_str(",\"type\":");
    push_json_str(&mut out, type_name);
    out.push('}');
    out
}

/// Appends `text` as a JSON string: as is when it holds only characters that never need escaping (ids),
/// through serde_json otherwise.
fn push_json_str(out: &mut String, text: &str) {
    if text
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
    {
        out.push('"');
        out.push_str(text);
        out.push('"');
    } else if let Ok(quoted) = serde_json::to_string(text) {
        out.push_str(&quoted);
    }
}

/// The JSON object of [`encode_server_with_id`].
pub fn encode_server_value(dialect: Dialect, event_id: &str, event: &ServerEvent) -> Option<Value> {
    let event_type = event.type_name(dialect)?;
    let mut out = Map::new();
    out.insert("type".into(), event_type.into());
    if !matches!(event, ServerEvent::InputAudioBufferDtmfEventReceived { .. }) {
        out.insert("event_id".into(), event_id.into());
    }
    let d = dialect;
    let fields: Vec<(&str, Value)> = match event {
        ServerEvent::SessionCreated { session } | ServerEvent::SessionUpdated { session } => {
            vec![("session", session_value(d, session))]
        }
        ServerEvent::ConversationCreated { conversation_id } => {
            vec![(
                "conversation",
                json!({"id": conversation_id, "object": "realtime.conversation"}),
            )]
        }
        ServerEvent::ConversationItemAdded {
            previous_item_id,
            item,
        }
        | ServerEvent::ConversationItemCreated {
            previous_item_id,
            item,
        }
        | ServerEvent::ConversationItemDone {
            previous_item_id,
            item,
        } => {
            vec![
                ("previous_item_id", json!(previous_item_id)),
                ("item", item_value(d, item)),
            ]
        }
        ServerEvent::ConversationItemRetrieved { item } => vec![("item", item_value(d, item))],
        ServerEvent::ConversationItemDeleted { item_id } => vec![("item_id", json!(item_id))],
        ServerEvent::ConversationItemTruncated {
            item_id,
            content_index,
            audio_end_ms,
        } => vec![
            ("item_id", json!(item_id)),
            ("content_index", json!(content_index)),
            ("audio_end_ms", json!(audio_end_ms)),
        ],
        ServerEvent::InputAudioTranscriptionDelta {
            item_id,
            content_index,
            delta,
            logprobs,
        } => {
            let mut f = vec![
                ("item_id", json!(item_id)),
                ("content_index", json!(content_index)),
                ("delta", json!(delta)),
            ];
            if let Some(lp) = logprobs {
                f.push(("logprobs", logprobs_value(lp)));
            }
            f
        }
        ServerEvent::InputAudioTranscriptionCompleted {
            item_id,
            content_index,
            transcript,
            usage,
            logprobs,
        } => {
            let mut f = vec![
                ("item_id", json!(item_id)),
                ("content_index", json!(content_index)),
                ("transcript", json!(transcript)),
                ("usage", transcription_usage_value(usage)),
            ];
            if let Some(lp) = logprobs {
                f.push(("logprobs", logprobs_value(lp)));
            }
            f
        }
        ServerEvent::InputAudioTranscriptionFailed {
            item_id,
            content_index,
            error,
        } => vec![
            ("item_id", json!(item_id)),
            ("content_index", json!(content_index)),
            ("error", error_value(error, false)),
        ],
        ServerEvent::InputAudioTranscriptionSegment {
            id,
            item_id,
            content_index,
            text,
            speaker,
            start,
            end,
        } => vec![
            ("id", json!(id)),
            ("item_id", json!(item_id)),
            ("content_index", json!(content_index)),
            ("text", json!(text)),
            ("speaker", json!(speaker)),
            ("start", json!(start)),
            ("end", json!(end)),
        ],
        ServerEvent::InputAudioBufferCommitted {
            previous_item_id,
            item_id,
        } => {
            vec![
                ("previous_item_id", json!(previous_item_id)),
                ("item_id", json!(item_id)),
            ]
        }
        ServerEvent::InputAudioBufferCleared => vec![],
        ServerEvent::InputAudioBufferSpeechStarted {
            item_id,
            audio_start_ms,
        } => {
            vec![
                ("item_id", json!(item_id)),
                ("audio_start_ms", json!(audio_start_ms)),
            ]
        }
        ServerEvent::InputAudioBufferSpeechStopped {
            item_id,
            audio_end_ms,
        } => {
            vec![("item_id", json!(item_id)), ("audio_end_ms", json!(audio_end_ms))]
        }
        ServerEvent::InputAudioBufferTimeoutTriggered {
            item_id,
            audio_start_ms,
            audio_end_ms,
        } => vec![
            ("item_id", json!(item_id)),
            ("audio_start_ms", json!(audio_start_ms)),
            ("audio_end_ms", json!(audio_end_ms)),
        ],
        ServerEvent::InputAudioBufferDtmfEventReceived { event, received_at } => {
            vec![("event", json!(event)), ("received_at", json!(received_at))]
        }
        ServerEvent::OutputAudioBufferStarted { response_id }
        | ServerEvent::OutputAudioBufferStopped { response_id }
        | ServerEvent::OutputAudioBufferCleared { response_id } => vec![("response_id", json!(response_id))],
        ServerEvent::ResponseCreated { response } | ServerEvent::ResponseDone { response } => {
            vec![("response", response_value(d, response))]
        }
        ServerEvent::ResponseOutputItemAdded {
            response_id,
            output_index,
            item,
        }
        | ServerEvent::ResponseOutputItemDone {
            response_id,
            output_index,
            item,
        } => vec![
            ("response_id", json!(response_id)),
            ("output_index", json!(output_index)),
            ("item", item_value(d, item)),
        ],
        ServerEvent::ResponseContentPartAdded { at, part }
        | ServerEvent::ResponseContentPartDone { at, part } => {
            with_part_ref(at, [("part", event_part_value(d, part))])
        }
        ServerEvent::ResponseTextDelta { at, delta }
        | ServerEvent::ResponseAudioTranscriptDelta { at, delta } => {
            with_part_ref(at, [("delta", json!(delta))])
        }
        ServerEvent::ResponseAudioDelta { at, audio } => {
            with_part_ref(at, [("delta", json!(audio.to_base64()))])
        }
        ServerEvent::ResponseTextDone { at, text } => with_part_ref(at, [("text", json!(text))]),
        ServerEvent::ResponseAudioDone { at } => with_part_ref(at, []),
        ServerEvent::ResponseAudioTranscriptDone { at, transcript } => {
            with_part_ref(at, [("transcript", json!(transcript))])
        }
        ServerEvent::ResponseFunctionCallArgumentsDelta { at, call_id, delta } => {
            with_output_ref(at, [("call_id", json!(call_id)), ("delta", json!(delta))])
        }
        ServerEvent::ResponseFunctionCallArgumentsDone {
            at,
            call_id,
            name,
            arguments,
        } => {
            let mut f = with_output_ref(at, [("call_id", json!(call_id)), ("arguments", json!(arguments))]);
            if d == Dialect::Ga {
                f.push(("name", json!(name)));
            }
            f
        }
        ServerEvent::ResponseMcpCallArgumentsDelta {
            at,
            delta,
            obfuscation,
        } => {
            let mut f = with_output_ref(at, [("delta", json!(delta))]);
            if let Some(o) = obfuscation {
                f.push(("obfuscation", json!(o)));
            }
            f
        }
        ServerEvent::ResponseMcpCallArgumentsDone { at, arguments } => {
            with_output_ref(at, [("arguments", json!(arguments))])
        }
        ServerEvent::ResponseMcpCallInProgress {
            item_id,
            output_index,
        }
        | ServerEvent::ResponseMcpCallCompleted {
            item_id,
            output_index,
        }
        | ServerEvent::ResponseMcpCallFailed {
            item_id,
            output_index,
        } => {
            vec![("item_id", json!(item_id)), ("output_index", json!(output_index))]
        }
        ServerEvent::McpListToolsInProgress { item_id }
        | ServerEvent::McpListToolsCompleted { item_id }
        | ServerEvent::McpListToolsFailed { item_id } => vec![("item_id", json!(item_id))],
        ServerEvent::RateLimitsUpdated { rate_limits } => {
            vec![(
                "rate_limits",
                Value::Array(rate_limits.iter().map(rate_limit_value).collect()),
            )]
        }
        ServerEvent::Error { error } => vec![("error", error_value(error, true))],
    };
    out.extend(fields.into_iter().map(|(k, v)| (k.to_owned(), v)));
    Some(Value::Object(out))
}

fn with_part_ref<const N: usize>(
    at: &PartRef,
    extra: [(&'static str, Value); N],
) -> Vec<(&'static str, Value)> {
    let mut f = vec![
        ("response_id", json!(at.response_id)),
        ("item_id", json!(at.item_id)),
        ("output_index", json!(at.output_index)),
        ("content_index", json!(at.content_index)),
    ];
    f.extend(extra);
    f
}

fn with_output_ref<const N: usize>(
    at: &OutputRef,
    extra: [(&'static str, Value); N],
) -> Vec<(&'static str, Value)> {
    let mut f = vec![
        ("response_id", json!(at.response_id)),
        ("item_id", json!(at.item_id)),
        ("output_index", json!(at.output_index)),
    ];
    f.extend(extra);
    f
}

// ---------------------------------------------------------------------------------------------------------------
// Sessions

/// A session object in the dialect's shape with the full effective config (`session.created`,
/// `session.updated`, and the REST `client_secrets` / `sessions` answers).
pub fn session_value(dialect: Dialect, session: &SessionObject) -> Value {
    let c = &session.config;
    let mut m = Map::new();
    let transcription = c.kind == SessionKind::Transcription;
    match dialect {
        Dialect::Ga => {
            m.insert(
                "type".into(),
                json!(if transcription {
                    "transcription"
                } else {
                    "realtime"
                }),
            );
            m.insert("object".into(), json!(session_object_name(c.kind)));
            m.insert("id".into(), json!(session.id));
            if let Some(at) = session.expires_at {
                m.insert("expires_at".into(), json!(at));
            }
            let input = json!({
                "format": ga_format_value(c.input_format),
                "transcription": c.input_transcription.as_ref().map(|t| transcription_value(Dialect::Ga, t)),
                "noise_reduction": c.noise_reduction.as_ref().map(|n| noise_reduction_value(Dialect::Ga, n)),
                "turn_detection": c.turn_detection.as_ref().map(|t| turn_detection_value(Dialect::Ga, t)),
            });
            m.insert("include".into(), include_value(c));
            if transcription {
                m.insert("audio".into(), json!({ "input": input }));
                return Value::Object(m);
            }
            m.insert(
                "audio".into(),
                json!({
                    "input": input,
                    "output": {
                        "format": ga_format_value(c.output_format),
                        "voice": voice_value(Dialect::Ga, &c.voice),
                        "speed": c.speed,
                    },
                }),
            );
            m.insert("model".into(), json!(c.model));
            m.insert(
                "output_modalities".into(),
                modalities_value(Dialect::Ga, c.output_modalities),
            );
            m.insert("instructions".into(), json!(c.instructions));
            m.insert("tools".into(), tools_value(&c.tools));
            m.insert("tool_choice".into(), tool_choice_value(&c.tool_choice));
            if let Some(p) = c.parallel_tool_calls {
                m.insert("parallel_tool_calls".into(), json!(p));
            }
            m.insert("max_output_tokens".into(), max_tokens_value(c.max_output_tokens));
            m.insert(
                "tracing".into(),
                c.tracing.as_ref().map_or(Value::Null, tracing_value),
            );
            m.insert("truncation".into(), truncation_value(&c.truncation));
            m.insert(
                "prompt".into(),
                c.prompt.as_ref().map_or(Value::Null, prompt_value),
            );
            if let Some(effort) = c.reasoning {
                m.insert("reasoning".into(), json!({ "effort": effort_name(effort) }));
            }
        }
        Dialect::Beta => {
            m.insert("id".into(), json!(session.id));
            m.insert("object".into(), json!(session_object_name(c.kind)));
            if let Some(at) = session.expires_at {
                m.insert("expires_at".into(), json!(at));
            }
            m.insert("input_audio_format".into(), json!(c.input_format.beta_name()));
            m.insert(
                "input_audio_transcription".into(),
                json!(
                    c.input_transcription
                        .as_ref()
                        .map(|t| transcription_value(Dialect::Beta, t))
                ),
            );
            m.insert(
                "input_audio_noise_reduction".into(),
                json!(
                    c.noise_reduction
                        .as_ref()
                        .map(|n| noise_reduction_value(Dialect::Beta, n))
                ),
            );
            m.insert(
                "turn_detection".into(),
                json!(
                    c.turn_detection
                        .as_ref()
                        .map(|t| turn_detection_value(Dialect::Beta, t))
                ),
            );
            if transcription {
                m.insert("modalities".into(), json!(["text"]));
                m.insert("include".into(), include_value(c));
                return Value::Object(m);
            }
            m.insert("model".into(), json!(c.model));
            m.insert(
                "modalities".into(),
                modalities_value(Dialect::Beta, c.output_modalities),
            );
            m.insert("instructions".into(), json!(c.instructions));
            m.insert("voice".into(), voice_value(Dialect::Beta, &c.voice));
            m.insert("speed".into(), json!(c.speed));
            m.insert("output_audio_format".into(), json!(c.output_format.beta_name()));
            m.insert("tools".into(), tools_value(&c.tools));
            m.insert("tool_choice".into(), tool_choice_value(&c.tool_choice));
            m.insert("temperature".into(), json!(c.temperature));
            m.insert(
                "max_response_output_tokens".into(),
                max_tokens_value(c.max_output_tokens),
            );
            m.insert(
                "tracing".into(),
                c.tracing.as_ref().map_or(Value::Null, tracing_value),
            );
        }
    }
    Value::Object(m)
}

const fn session_object_name(kind: SessionKind) -> &'static str {
    match kind {
        SessionKind::Realtime => "realtime.session",
        SessionKind::Transcription => "realtime.transcription_session",
    }
}

fn include_value(c: &SessionConfig) -> Value {
    if c.include.is_empty() {
        Value::Null
    } else {
        Value::Array(c.include.iter().map(|i| json!(i.as_str())).collect())
    }
}

fn modalities_value(dialect: Dialect, m: OutputModalities) -> Value {
    match (dialect, m) {
        (_, OutputModalities::Text) => json!(["text"]),
        (Dialect::Ga, OutputModalities::Audio) => json!(["audio"]),
        (Dialect::Beta, OutputModalities::Audio) => json!(["text", "audio"]),
    }
}

fn format_value(dialect: Dialect, f: AudioFormat) -> Value {
    match dialect {
        Dialect::Ga => ga_format_value(f),
        Dialect::Beta => json!(f.beta_name()),
    }
}

fn ga_format_value(f: AudioFormat) -> Value {
    match f {
        AudioFormat::Pcm16 => json!({"type": f.ga_type(), "rate": f.sample_rate()}),
        AudioFormat::G711Ulaw | AudioFormat::G711Alaw => json!({"type": f.ga_type()}),
    }
}

fn voice_value(dialect: Dialect, v: &Voice) -> Value {
    match (dialect, v) {
        (Dialect::Ga, Voice::Custom { id }) => json!({ "id": id }),
        _ => json!(v.id()),
    }
}

fn transcription_value(dialect: Dialect, t: &TranscriptionConfig) -> Value {
    let mut m = Map::new();
    put_opt(&mut m, "model", t.model.as_ref());
    put_opt(&mut m, "language", t.language.as_ref());
    put_opt(&mut m, "prompt", t.prompt.as_ref());
    if dialect == Dialect::Ga {
        if !t.languages.is_empty() {
            m.insert("languages".into(), json!(t.languages));
        }
        if !t.keywords.is_empty() {
            m.insert("keywords".into(), json!(t.keywords));
        }
        if let Some(delay) = t.delay {
            m.insert("delay".into(), json!(delay_name(delay)));
        }
    }
    Value::Object(m)
}

const fn delay_name(d: TranscriptionDelay) -> &'static str {
    match d {
        TranscriptionDelay::Minimal => "minimal",
        TranscriptionDelay::Low => "low",
        TranscriptionDelay::Medium => "medium",
        TranscriptionDelay::High => "high",
        TranscriptionDelay::Xhigh => "xhigh",
    }
}

fn noise_reduction_value(dialect: Dialect, n: &NoiseReduction) -> Value {
    let mut m = Map::new();
    if let Some(kind) = n.kind {
        let name = match kind {
            NoiseReductionKind::NearField => "near_field",
            NoiseReductionKind::FarField => "far_field",
        };
        m.insert("type".into(), json!(name));
    }
    if let (Dialect::Ga, Some(strength)) = (dialect, n.strength) {
        m.insert("strength".into(), json!(strength));
    }
    Value::Object(m)
}

fn turn_detection_value(dialect: Dialect, t: &TurnDetection) -> Value {
    match t {
        TurnDetection::ServerVad(v) => {
            let mut m = json!({
                "type": "server_vad",
                "threshold": v.threshold,
                "prefix_padding_ms": v.prefix_padding_ms,
                "silence_duration_ms": v.silence_duration_ms,
                "create_response": v.create_response,
                "interrupt_response": v.interrupt_response,
            });
            if let (Dialect::Ga, Value::Object(map)) = (dialect, &mut m) {
                map.insert("idle_timeout_ms".into(), json!(v.idle_timeout_ms));
            }
            m
        }
        TurnDetection::SemanticVad(v) => json!({
            "type": "semantic_vad",
            "eagerness": match v.eagerness {
                Eagerness::Low => "low",
                Eagerness::Medium => "medium",
                Eagerness::High => "high",
                Eagerness::Auto => "auto",
            },
            "create_response": v.create_response,
            "interrupt_response": v.interrupt_response,
        }),
    }
}

fn tools_value(tools: &[FunctionTool]) -> Value {
    Value::Array(
        tools
            .iter()
            .map(|t| {
                let mut m = Map::new();
                m.insert("type".into(), json!("function"));
                m.insert("name".into(), json!(t.name));
                put_opt(&mut m, "description", t.description.as_ref());
                if let Some(p) = &t.parameters {
                    m.insert("parameters".into(), p.clone());
                }
                Value::Object(m)
            })
            .collect(),
    )
}

fn tool_choice_value(c: &ToolChoice) -> Value {
    match c {
        ToolChoice::Auto => json!("auto"),
        ToolChoice::None => json!("none"),
        ToolChoice::Required => json!("required"),
        ToolChoice::Function { name } => json!({"type": "function", "name": name}),
    }
}

fn max_tokens_value(m: MaxOutputTokens) -> Value {
    match m {
        MaxOutputTokens::Inf => json!("inf"),
        MaxOutputTokens::Limit(n) => json!(n),
    }
}

fn tracing_value(t: &Tracing) -> Value {
    match t {
        Tracing::Auto => json!("auto"),
        Tracing::Custom {
            workflow_name,
            group_id,
            metadata,
        } => {
            let mut m = Map::new();
            put_opt(&mut m, "workflow_name", workflow_name.as_ref());
            put_opt(&mut m, "group_id", group_id.as_ref());
            if let Some(meta) = metadata {
                m.insert("metadata".into(), meta.clone());
            }
            Value::Object(m)
        }
    }
}

fn truncation_value(t: &Truncation) -> Value {
    match t {
        Truncation::Auto => json!("auto"),
        Truncation::Disabled => json!("disabled"),
        Truncation::RetentionRatio {
            retention_ratio,
            post_instructions_token_limit,
        } => {
            let mut m = json!({"type": "retention_ratio", "retention_ratio": retention_ratio});
            if let (Some(limit), Value::Object(map)) = (post_instructions_token_limit, &mut m) {
                map.insert("token_limits".into(), json!({ "post_instructions": limit }));
            }
            m
        }
    }
}

fn prompt_value(p: &Prompt) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), json!(p.id));
    put_opt(&mut m, "version", p.version.as_ref());
    if let Some(vars) = &p.variables {
        m.insert("variables".into(), Value::Object(vars.clone()));
    }
    Value::Object(m)
}

const fn effort_name(e: ReasoningEffort) -> &'static str {
    match e {
        ReasoningEffort::Minimal => "minimal",
        ReasoningEffort::Low => "low",
        ReasoningEffort::Medium => "medium",
        ReasoningEffort::High => "high",
        ReasoningEffort::Xhigh => "xhigh",
    }
}

fn put_opt(m: &mut Map<String, Value>, key: &str, value: Option<&String>) {
    if let Some(v) = value {
        m.insert(key.to_owned(), json!(v));
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Items, responses and small payloads

/// An item in the dialect's shape.
pub fn item_value(dialect: Dialect, item: &Item) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), json!(item.id));
    m.insert("object".into(), json!("realtime.item"));
    m.insert("status".into(), json!(item.status.as_str()));
    item_kind_fields(dialect, &item.kind, &mut m);
    Value::Object(m)
}

fn item_kind_fields(dialect: Dialect, kind: &ItemKind, m: &mut Map<String, Value>) {
    match kind {
        ItemKind::Message { role, content } => {
            m.insert("type".into(), json!("message"));
            m.insert("role".into(), json!(role.as_str()));
            m.insert(
                "content".into(),
                Value::Array(content.iter().map(|p| part_value(dialect, p)).collect()),
            );
        }
        ItemKind::FunctionCall {
            call_id,
            name,
            arguments,
        } => {
            m.insert("type".into(), json!("function_call"));
            put_opt(m, "call_id", call_id.as_ref());
            m.insert("name".into(), json!(name));
            m.insert("arguments".into(), json!(arguments));
        }
        ItemKind::FunctionCallOutput { call_id, output } => {
            m.insert("type".into(), json!("function_call_output"));
            m.insert("call_id".into(), json!(call_id));
            m.insert("output".into(), json!(output));
        }
    }
}

/// A content part of an item.
fn part_value(dialect: Dialect, part: &ContentPart) -> Value {
    let ga = dialect == Dialect::Ga;
    match part {
        ContentPart::InputText { text } => json!({"type": "input_text", "text": text}),
        ContentPart::Text { text } => json!({"type": if ga { "output_text" } else { "text" }, "text": text}),
        ContentPart::InputAudio { audio, transcript } => {
            audio_part("input_audio", audio.as_ref(), transcript.as_ref())
        }
        ContentPart::Audio { audio, transcript } => audio_part(
            if ga { "output_audio" } else { "audio" },
            audio.as_ref(),
            transcript.as_ref(),
        ),
        ContentPart::InputImage { image_url, detail } => {
            json!({"type": "input_image", "image_url": image_url, "detail": detail.as_str()})
        }
        ContentPart::ItemReference { id } => json!({"type": "item_reference", "id": id}),
    }
}

fn audio_part(kind: &str, audio: Option<&AudioBytes>, transcript: Option<&String>) -> Value {
    let mut m = Map::new();
    m.insert("type".into(), json!(kind));
    put_opt(&mut m, "audio", audio.map(AudioBytes::to_base64).as_ref());
    m.insert("transcript".into(), json!(transcript));
    Value::Object(m)
}

/// The `part` of `response.content_part.*`: `text` / `audio` in both dialects (the SDK types of both say so).
fn event_part_value(dialect: Dialect, part: &ContentPart) -> Value {
    match part {
        ContentPart::Text { text } => json!({"type": "text", "text": text}),
        ContentPart::Audio { audio, transcript } => {
            let mut m = Map::new();
            m.insert("type".into(), json!("audio"));
            put_opt(
                &mut m,
                "audio",
                audio.as_ref().map(AudioBytes::to_base64).as_ref(),
            );
            m.insert(
                "transcript".into(),
                json!(transcript.as_deref().unwrap_or_default()),
            );
            Value::Object(m)
        }
        other => part_value(dialect, other),
    }
}

/// A response object in the dialect's shape.
pub fn response_value(dialect: Dialect, r: &Response) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), json!(r.id));
    m.insert("object".into(), json!("realtime.response"));
    m.insert("status".into(), json!(r.status.as_str()));
    m.insert(
        "status_details".into(),
        r.status_details.as_ref().map_or(Value::Null, |d| {
            let mut sd = Map::new();
            sd.insert("type".into(), json!(r.status.as_str()));
            if let Some(reason) = d.reason {
                sd.insert("reason".into(), json!(reason.as_str()));
            }
            if let Some(e) = &d.error {
                sd.insert("error".into(), json!({"type": e.kind, "code": e.code}));
            }
            Value::Object(sd)
        }),
    );
    m.insert(
        "output".into(),
        Value::Array(r.output.iter().map(|i| item_value(dialect, i)).collect()),
    );
    m.insert("conversation_id".into(), json!(r.conversation_id));
    m.insert(
        "metadata".into(),
        r.metadata.as_ref().map_or(Value::Null, metadata_value),
    );
    m.insert(
        "usage".into(),
        r.usage.as_ref().map_or(Value::Null, |u| usage_value(dialect, u)),
    );
    m.insert("max_output_tokens".into(), max_tokens_value(r.max_output_tokens));
    match dialect {
        Dialect::Ga => {
            m.insert(
                "output_modalities".into(),
                modalities_value(dialect, r.output_modalities),
            );
            m.insert(
                "audio".into(),
                json!({"output": {"format": ga_format_value(r.output_format), "voice": voice_value(dialect, &r.voice)}}),
            );
        }
        Dialect::Beta => {
            m.insert(
                "modalities".into(),
                modalities_value(dialect, r.output_modalities),
            );
            m.insert("voice".into(), voice_value(dialect, &r.voice));
            m.insert("output_audio_format".into(), json!(r.output_format.beta_name()));
            m.insert("temperature".into(), json!(r.temperature));
        }
    }
    Value::Object(m)
}

fn metadata_value(meta: &Metadata) -> Value {
    Value::Object(meta.iter().map(|(k, v)| (k.clone(), json!(v))).collect())
}

fn usage_value(dialect: Dialect, u: &Usage) -> Value {
    let i = &u.input_token_details;
    let mut input = json!({
        "text_tokens": i.text_tokens,
        "audio_tokens": i.audio_tokens,
        "cached_tokens": i.cached_tokens,
    });
    if let (Dialect::Ga, Value::Object(map)) = (dialect, &mut input) {
        map.insert("image_tokens".into(), json!(i.image_tokens));
        let c = &i.cached_tokens_details;
        map.insert(
            "cached_tokens_details".into(),
            json!({"text_tokens": c.text_tokens, "audio_tokens": c.audio_tokens, "image_tokens": c.image_tokens}),
        );
    }
    json!({
        "total_tokens": u.total_tokens,
        "input_tokens": u.input_tokens,
        "output_tokens": u.output_tokens,
        "input_token_details": input,
        "output_token_details": {
            "text_tokens": u.output_token_details.text_tokens,
            "audio_tokens": u.output_token_details.audio_tokens,
        },
    })
}

fn transcription_usage_value(u: &TranscriptionUsage) -> Value {
    match u {
        TranscriptionUsage::Tokens {
            input_tokens,
            output_tokens,
            total_tokens,
            input_token_details,
        } => {
            let mut v = json!({
                "type": "tokens",
                "input_tokens": input_tokens,
                "output_tokens": output_tokens,
                "total_tokens": total_tokens,
            });
            if let (Some(d), Value::Object(map)) = (input_token_details, &mut v) {
                map.insert(
                    "input_token_details".into(),
                    json!({"text_tokens": d.text_tokens, "audio_tokens": d.audio_tokens}),
                );
            }
            v
        }
        TranscriptionUsage::Duration { seconds } => json!({"type": "duration", "seconds": seconds}),
    }
}

fn logprobs_value(lp: &[LogProb]) -> Value {
    Value::Array(
        lp.iter()
            .map(|l| json!({"token": l.token, "logprob": l.logprob, "bytes": l.bytes}))
            .collect(),
    )
}

fn rate_limit_value(r: &RateLimit) -> Value {
    json!({"name": r.name.as_str(), "limit": r.limit, "remaining": r.remaining, "reset_seconds": r.reset_seconds})
}

fn error_value(e: &ErrorObject, with_event_id: bool) -> Value {
    let mut v = json!({"type": e.kind, "code": e.code, "message": e.message, "param": e.param});
    if let (true, Value::Object(map)) = (with_event_id, &mut v) {
        map.insert("event_id".into(), json!(e.event_id));
    }
    v
}

// ---------------------------------------------------------------------------------------------------------------
// Client events (for Rust clients of the protocol, and round-trip tests of the decoder)

/// Encodes a client event as a client of `dialect` would send it. Fields the dialect cannot express are left
/// out (e.g. beta has no `truncation`, GA no `temperature`); a GA `session.update` without a kind says
/// `type: "realtime"`.
pub fn encode_client(dialect: Dialect, event: &ClientEvent) -> String {
    encode_client_value(dialect, event).to_string()
}

/// The JSON object of [`encode_client`].
pub fn encode_client_value(dialect: Dialect, event: &ClientEvent) -> Value {
    let mut m = Map::new();
    m.insert(
        "type".into(),
        json!(event.kind.type_name(dialect).unwrap_or("session.update")),
    );
    if let Some(id) = &event.event_id {
        m.insert("event_id".into(), json!(id));
    }
    match &event.kind {
        ClientEventKind::SessionUpdate(u) => {
            m.insert("session".into(), session_update_value(dialect, u));
        }
        ClientEventKind::InputAudioBufferAppend { audio } => {
            m.insert("audio".into(), json!(BASE64.encode(audio)));
        }
        ClientEventKind::InputAudioBufferCommit
        | ClientEventKind::InputAudioBufferClear
        | ClientEventKind::OutputAudioBufferClear => {}
        ClientEventKind::ConversationItemCreate { position, item } => {
            if let Some(prev) = position.previous_item_id() {
                m.insert("previous_item_id".into(), json!(prev));
            }
            m.insert("item".into(), item_input_value(dialect, item));
        }
        ClientEventKind::ConversationItemRetrieve { item_id }
        | ClientEventKind::ConversationItemDelete { item_id } => {
            m.insert("item_id".into(), json!(item_id));
        }
        ClientEventKind::ConversationItemTruncate {
            item_id,
            content_index,
            audio_end_ms,
        } => {
            m.insert("item_id".into(), json!(item_id));
            m.insert("content_index".into(), json!(content_index));
            m.insert("audio_end_ms".into(), json!(audio_end_ms));
        }
        ClientEventKind::ResponseCreate(params) => {
            m.insert("response".into(), response_params_value(dialect, params));
        }
        ClientEventKind::ResponseCancel { response_id } => {
            put_opt(&mut m, "response_id", response_id.as_ref());
        }
    }
    Value::Object(m)
}

fn nullable<T>(
    m: &mut Map<String, Value>,
    key: &str,
    value: Option<&Option<T>>,
    f: impl FnOnce(&T) -> Value,
) {
    if let Some(inner) = value {
        m.insert(key.to_owned(), inner.as_ref().map_or(Value::Null, f));
    }
}

fn session_update_value(dialect: Dialect, u: &SessionUpdate) -> Value {
    let mut m = Map::new();
    let transcription = u.kind == Some(SessionKind::Transcription);
    let d = dialect;
    match dialect {
        Dialect::Beta => {
            if let Some(f) = u.input_format {
                m.insert("input_audio_format".into(), json!(f.beta_name()));
            }
            nullable(
                &mut m,
                "input_audio_transcription",
                u.input_transcription.as_ref(),
                |t| transcription_value(d, t),
            );
            nullable(
                &mut m,
                "input_audio_noise_reduction",
                u.noise_reduction.as_ref(),
                |n| noise_reduction_value(d, n),
            );
            nullable(&mut m, "turn_detection", u.turn_detection.as_ref(), |t| {
                turn_detection_value(d, t)
            });
            if transcription {
                if let Some(include) = &u.include {
                    m.insert(
                        "include".into(),
                        json!(include.iter().map(|i| i.as_str()).collect::<Vec<_>>()),
                    );
                }
                return Value::Object(m);
            }
            put_opt(&mut m, "model", u.model.as_ref());
            put_opt(&mut m, "instructions", u.instructions.as_ref());
            if let Some(x) = u.output_modalities {
                m.insert("modalities".into(), modalities_value(d, x));
            }
            if let Some(v) = &u.voice {
                m.insert("voice".into(), voice_value(d, v));
            }
            if let Some(s) = u.speed {
                m.insert("speed".into(), json!(s));
            }
            if let Some(f) = u.output_format {
                m.insert("output_audio_format".into(), json!(f.beta_name()));
            }
            if let Some(t) = &u.tools {
                m.insert("tools".into(), tools_value(t));
            }
            if let Some(c) = &u.tool_choice {
                m.insert("tool_choice".into(), tool_choice_value(c));
            }
            if let Some(t) = u.temperature {
                m.insert("temperature".into(), json!(t));
            }
            if let Some(x) = u.max_output_tokens {
                m.insert("max_response_output_tokens".into(), max_tokens_value(x));
            }
            nullable(&mut m, "tracing", u.tracing.as_ref(), tracing_value);
        }
        Dialect::Ga => {
            m.insert(
                "type".into(),
                json!(if transcription {
                    "transcription"
                } else {
                    "realtime"
                }),
            );
            let mut input = Map::new();
            if let Some(f) = u.input_format {
                input.insert("format".into(), ga_format_value(f));
            }
            nullable(&mut input, "transcription", u.input_transcription.as_ref(), |t| {
                transcription_value(d, t)
            });
            nullable(&mut input, "noise_reduction", u.noise_reduction.as_ref(), |n| {
                noise_reduction_value(d, n)
            });
            nullable(&mut input, "turn_detection", u.turn_detection.as_ref(), |t| {
                turn_detection_value(d, t)
            });
            let mut output = Map::new();
            if !transcription {
                if let Some(f) = u.output_format {
                    output.insert("format".into(), ga_format_value(f));
                }
                if let Some(v) = &u.voice {
                    output.insert("voice".into(), voice_value(d, v));
                }
                if let Some(s) = u.speed {
                    output.insert("speed".into(), json!(s));
                }
            }
            let mut audio = Map::new();
            if !input.is_empty() {
                audio.insert("input".into(), Value::Object(input));
            }
            if !output.is_empty() {
                audio.insert("output".into(), Value::Object(output));
            }
            if !audio.is_empty() {
                m.insert("audio".into(), Value::Object(audio));
            }
            if let Some(include) = &u.include {
                m.insert(
                    "include".into(),
                    json!(include.iter().map(|i| i.as_str()).collect::<Vec<_>>()),
                );
            }
            if transcription {
                return Value::Object(m);
            }
            put_opt(&mut m, "model", u.model.as_ref());
            put_opt(&mut m, "instructions", u.instructions.as_ref());
            if let Some(x) = u.output_modalities {
                m.insert("output_modalities".into(), modalities_value(d, x));
            }
            if let Some(t) = &u.tools {
                m.insert("tools".into(), tools_value(t));
            }
            if let Some(c) = &u.tool_choice {
                m.insert("tool_choice".into(), tool_choice_value(c));
            }
            if let Some(p) = u.parallel_tool_calls {
                m.insert("parallel_tool_calls".into(), json!(p));
            }
            if let Some(x) = u.max_output_tokens {
                m.insert("max_output_tokens".into(), max_tokens_value(x));
            }
            nullable(&mut m, "tracing", u.tracing.as_ref(), tracing_value);
            if let Some(t) = &u.truncation {
                m.insert("truncation".into(), truncation_value(t));
            }
            nullable(&mut m, "prompt", u.prompt.as_ref(), prompt_value);
            if let Some(e) = u.reasoning {
                m.insert("reasoning".into(), json!({ "effort": effort_name(e) }));
            }
        }
    }
    Value::Object(m)
}

fn item_input_value(dialect: Dialect, item: &ItemInput) -> Value {
    let mut m = Map::new();
    put_opt(&mut m, "id", item.id.as_ref());
    if let Some(status) = item.status {
        m.insert("status".into(), json!(status.as_str()));
    }
    item_kind_fields(dialect, &item.kind, &mut m);
    Value::Object(m)
}

fn response_params_value(dialect: Dialect, p: &ResponseParams) -> Value {
    let mut m = Map::new();
    if p.conversation == ConversationMode::None {
        m.insert("conversation".into(), json!("none"));
    }
    if let Some(input) = &p.input {
        m.insert(
            "input".into(),
            Value::Array(
                input
                    .iter()
                    .map(|entry| match entry {
                        ResponseInput::Item(item) => item_input_value(dialect, item),
                        ResponseInput::Reference { id } => json!({"type": "item_reference", "id": id}),
                    })
                    .collect(),
            ),
        );
    }
    put_opt(&mut m, "instructions", p.instructions.as_ref());
    if let Some(t) = &p.tools {
        m.insert("tools".into(), tools_value(t));
    }
    if let Some(c) = &p.tool_choice {
        m.insert("tool_choice".into(), tool_choice_value(c));
    }
    if let Some(meta) = &p.metadata {
        m.insert("metadata".into(), metadata_value(meta));
    }
    match dialect {
        Dialect::Beta => {
            if let Some(x) = p.output_modalities {
                m.insert("modalities".into(), modalities_value(dialect, x));
            }
            if let Some(v) = &p.voice {
                m.insert("voice".into(), voice_value(dialect, v));
            }
            if let Some(f) = p.output_format {
                m.insert("output_audio_format".into(), format_value(dialect, f));
            }
            if let Some(t) = p.temperature {
                m.insert("temperature".into(), json!(t));
            }
            if let Some(x) = p.max_output_tokens {
                m.insert("max_response_output_tokens".into(), max_tokens_value(x));
            }
        }
        Dialect::Ga => {
            if let Some(x) = p.output_modalities {
                m.insert("output_modalities".into(), modalities_value(dialect, x));
            }
            let mut output = Map::new();
            if let Some(f) = p.output_format {
                output.insert("format".into(), format_value(dialect, f));
            }
            if let Some(v) = &p.voice {
                output.insert("voice".into(), voice_value(dialect, v));
            }
            if !output.is_empty() {
                m.insert("audio".into(), json!({ "output": output }));
            }
            if let Some(x) = p.max_output_tokens {
                m.insert("max_output_tokens".into(), max_tokens_value(x));
            }
            if let Some(b) = p.parallel_tool_calls {
                m.insert("parallel_tool_calls".into(), json!(b));
            }
            if let Some(e) = p.reasoning {
                m.insert("reasoning".into(), json!({ "effort": effort_name(e) }));
            }
            if let Some(pr) = &p.prompt {
                m.insert("prompt".into(), prompt_value(pr));
            }
        }
    }
    Value::Object(m)
}
