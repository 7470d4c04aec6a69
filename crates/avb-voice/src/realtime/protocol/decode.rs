//! Client frames into [`ClientEvent`]s, per dialect (reference §4, §6, §7, §8).
//!
//! The frame is parsed once into a JSON tree and then read field by field with the dialect's field paths at
//! hand, so every error names the exact `param` (`session.audio.input.turn_detection.threshold`). Unknown fields
//! are ignored at every level, like the SDKs do; unknown event types, wrong types and out-of-range values are
//! [`ProtocolError`]s. `serde_json`'s depth limit (128) bounds nesting, and nothing here indexes or panics.

use super::config::{
    AudioFormat, Eagerness, FunctionTool, IDLE_TIMEOUT_MS_RANGE, Include, MAX_OUTPUT_TOKENS_RANGE,
    MaxOutputTokens, NoiseReduction, NoiseReductionKind, OutputModalities, Prompt, ReasoningEffort,
    SPEED_RANGE, SemanticVad, ServerVad, SessionKind, SessionUpdate, TEMPERATURE_RANGE, ToolChoice, Tracing,
    TranscriptionConfig, TranscriptionDelay, Truncation, TurnDetection, Voice,
};
use super::dialect::Dialect;
use super::error::{ProtocolError, ProtocolErrorCode, describe};
use super::event::{ClientEvent, ClientEventKind, ItemPosition, ROOT_ITEM_ID};
use super::item::{AudioBytes, ContentPart, ImageDetail, ItemInput, ItemKind, ItemStatus, Role};
use super::response::{
    ConversationMode, METADATA_MAX_KEY_CHARS, METADATA_MAX_PAIRS, METADATA_MAX_VALUE_CHARS, Metadata,
    ResponseInput, ResponseParams,
};
use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde_json::{Map, Value};
use std::ops::RangeInclusive;

type Result<T, E = ProtocolError> = std::result::Result<T, E>;

/// Longest accepted client `event_id`, in characters (the GA types' `maxLength`).
pub const MAX_EVENT_ID_CHARS: usize = 512;

/// Standard base64, padding optional (clients differ), trailing bits tolerated.
pub(crate) const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// Decodes one client text frame in the connection's dialect.
///
/// # Contract
/// - Never panics, whatever `text` holds; size is not limited here (the WebSocket layer bounds frames; appends
///   of ≥ 15 MiB of base64 are accepted).
/// - Malformed JSON is [`ProtocolErrorCode::InvalidJson`]; a non-object, or an over-long `event_id`, is
///   [`ProtocolErrorCode::InvalidEvent`]; a `type` the dialect lacks (e.g. `transcription_session.update` on
///   GA) is [`ProtocolErrorCode::UnknownEvent`]; absent, mistyped or out-of-range fields are
///   `missing_required_parameter` / `invalid_type` / `invalid_value` with `param` set.
/// - Errors carry the event's `event_id` whenever the frame had a readable one.
/// - Unknown fields are ignored; `null` counts as absent except where it means "turn off"
///   (`turn_detection`, transcription, noise reduction, tracing, prompt).
pub fn decode_client(dialect: Dialect, text: &str) -> Result<ClientEvent> {
    match decode_append(text) {
        Some(event) => Ok(event),
        None => decode_tree(dialect, text),
    }
}

/// The event a streaming client sends fifty times a second (`input_audio_buffer.append`, the same in both
/// dialects), read straight into its fields: the audio string is borrowed from the frame and base64-decoded
/// once, instead of being copied into a JSON tree first (the tree costs about as much as the rest of the
/// frame's handling). Anything unexpected — another type, a missing or mistyped field, a duplicate key, an
/// over-long `event_id`, bad base64 — returns `None`, and [`decode_tree`] then gives the answer, errors
/// included; so for every frame this accepts, the tree reading yields the same event (a test checks it).
fn decode_append(text: &str) -> Option<ClientEvent> {
    #[derive(serde::Deserialize)]
    struct Append<'a> {
        #[serde(rename = "type", borrow)]
        kind: std::borrow::Cow<'a, str>,
        #[serde(default, borrow)]
        event_id: Option<std::borrow::Cow<'a, str>>,
        #[serde(borrow)]
        audio: std::borrow::Cow<'a, str>,
    }
    let frame: Append<'_> = serde_json::from_str(text).ok()?;
    if frame.kind != "input_audio_buffer.append" {
        return None;
    }
    let event_id = match frame.event_id {
        Some(id) if id.chars().count() <= MAX_EVENT_ID_CHARS => Some(id.into_owned()),
        Some(_) => return None,
        None => None,
    };
    let audio = BASE64.decode(frame.audio.as_bytes()).ok()?;
    Some(ClientEvent {
        event_id,
        kind: ClientEventKind::InputAudioBufferAppend { audio },
    })
}

/// [`decode_client`] for every event: the frame as a JSON tree, read field by field.
fn decode_tree(dialect: Dialect, text: &str) -> Result<ClientEvent> {
    let value: Value = serde_json::from_str(text).map_err(|e| ProtocolError::invalid_json(&e))?;
    let map = match value {
        Value::Object(map) => map,
        other => {
            return Err(ProtocolError::new(
                ProtocolErrorCode::InvalidEvent,
                format!("A client event must be a JSON object, not {}.", describe(&other)),
            ));
        }
    };
    let mut fields = Fields::new(map, String::new());
    let event_id = match fields.present("event_id") {
        None => None,
        Some(Value::String(id)) if id.chars().count() <= MAX_EVENT_ID_CHARS => Some(id),
        Some(Value::String(_)) => {
            return Err(ProtocolError::new(
                ProtocolErrorCode::InvalidEvent,
                format!("The event_id is longer than {MAX_EVENT_ID_CHARS} characters."),
            )
            .with_param("event_id"));
        }
        Some(other) => return Err(ProtocolError::invalid_type("event_id", "a string", &other)),
    };
    let kind = fields
        .req_string("type")
        .and_then(|event_type| decode_kind(dialect, &event_type, fields))
        .map_err(|e| e.with_event_id(event_id.clone()))?;
    Ok(ClientEvent { event_id, kind })
}

/// Decodes a session configuration met outside a `session.update`: the bodies of the REST calls that mint client
/// secrets (GA `POST /v1/realtime/client_secrets` → its `session` object with `type`; beta
/// `POST /v1/realtime/sessions` and `/transcription_sessions` → the body itself, whose shape `beta_kind` names).
/// Same rules and error paths (`session.…`) as [`decode_client`]; unknown fields such as `client_secret` are
/// ignored.
pub fn decode_session(dialect: Dialect, beta_kind: SessionKind, session: Value) -> Result<SessionUpdate> {
    let fields = object(session, "session")?;
    match (dialect, beta_kind) {
        (Dialect::Ga, _) => ga_session(fields),
        (Dialect::Beta, SessionKind::Realtime) => beta_session(fields),
        (Dialect::Beta, SessionKind::Transcription) => beta_transcription_session(fields),
    }
}

fn decode_kind(dialect: Dialect, event_type: &str, mut f: Fields) -> Result<ClientEventKind> {
    Ok(match event_type {
        "session.update" => {
            let session = f.req_object("session")?;
            ClientEventKind::SessionUpdate(Box::new(match dialect {
                Dialect::Ga => ga_session(session)?,
                Dialect::Beta => beta_session(session)?,
            }))
        }
        "transcription_session.update" if dialect == Dialect::Beta => {
            ClientEventKind::SessionUpdate(Box::new(beta_transcription_session(f.req_object("session")?)?))
        }
        "input_audio_buffer.append" => {
            let audio = f.req_string("audio")?;
            ClientEventKind::InputAudioBufferAppend {
                audio: decode_base64(&audio, "audio")?,
            }
        }
        "input_audio_buffer.commit" => ClientEventKind::InputAudioBufferCommit,
        "input_audio_buffer.clear" => ClientEventKind::InputAudioBufferClear,
        "output_audio_buffer.clear" => ClientEventKind::OutputAudioBufferClear,
        "conversation.item.create" => {
            let position = match f.string("previous_item_id")? {
                None => ItemPosition::End,
                Some(id) if id == ROOT_ITEM_ID => ItemPosition::Root,
                Some(id) => ItemPosition::After(id),
            };
            let item = item_input(dialect, f.req_object("item")?)?;
            ClientEventKind::ConversationItemCreate { position, item }
        }
        "conversation.item.retrieve" => ClientEventKind::ConversationItemRetrieve {
            item_id: f.req_string("item_id")?,
        },
        "conversation.item.truncate" => ClientEventKind::ConversationItemTruncate {
            item_id: f.req_string("item_id")?,
            content_index: f.req_u32("content_index")?,
            audio_end_ms: f.req_uint("audio_end_ms")?,
        },
        "conversation.item.delete" => ClientEventKind::ConversationItemDelete {
            item_id: f.req_string("item_id")?,
        },
        "response.create" => ClientEventKind::ResponseCreate(Box::new(match f.object("response")? {
            None => ResponseParams::default(),
            Some(r) => response_params(dialect, r)?,
        })),
        "response.cancel" => ClientEventKind::ResponseCancel {
            response_id: f.string("response_id")?,
        },
        other => return Err(ProtocolError::unknown_event(other)),
    })
}

// ---------------------------------------------------------------------------------------------------------------
// Sessions

fn beta_session(mut s: Fields) -> Result<SessionUpdate> {
    Ok(SessionUpdate {
        kind: Some(SessionKind::Realtime),
        model: s.string("model")?,
        instructions: s.string("instructions")?,
        output_modalities: s.with("modalities", modalities)?,
        voice: s.with("voice", |v, p| voice(v, p, Dialect::Beta))?,
        speed: s.number_in("speed", SPEED_RANGE)?,
        input_format: s.with("input_audio_format", beta_format)?,
        output_format: s.with("output_audio_format", beta_format)?,
        input_transcription: s.nullable("input_audio_transcription", |t| transcription(t, Dialect::Beta))?,
        noise_reduction: s.nullable("input_audio_noise_reduction", |n| {
            noise_reduction(n, Dialect::Beta)
        })?,
        turn_detection: s.nullable("turn_detection", |t| turn_detection(t, Dialect::Beta))?,
        tools: s.with("tools", tools)?,
        tool_choice: s.with("tool_choice", tool_choice)?,
        parallel_tool_calls: None,
        temperature: s.number_in("temperature", TEMPERATURE_RANGE)?,
        max_output_tokens: s.with("max_response_output_tokens", max_tokens)?,
        tracing: s.nullable_value("tracing", tracing)?,
        truncation: None,
        include: None,
        prompt: None,
        reasoning: None,
    })
}

fn beta_transcription_session(mut s: Fields) -> Result<SessionUpdate> {
    Ok(SessionUpdate {
        kind: Some(SessionKind::Transcription),
        input_format: s.with("input_audio_format", beta_format)?,
        input_transcription: s.nullable("input_audio_transcription", |t| transcription(t, Dialect::Beta))?,
        noise_reduction: s.nullable("input_audio_noise_reduction", |n| {
            noise_reduction(n, Dialect::Beta)
        })?,
        turn_detection: s.nullable("turn_detection", |t| turn_detection(t, Dialect::Beta))?,
        include: s.with("include", include)?,
        ..SessionUpdate::default()
    })
}

fn ga_session(mut s: Fields) -> Result<SessionUpdate> {
    let kind_name = s.req_string("type")?;
    let kind = pick(
        &kind_name,
        &s.path_of("type"),
        &[
            ("realtime", SessionKind::Realtime),
            ("transcription", SessionKind::Transcription),
        ],
    )?;
    let realtime = kind == SessionKind::Realtime;
    let mut u = SessionUpdate {
        kind: Some(kind),
        ..SessionUpdate::default()
    };
    if let Some(mut audio) = s.object("audio")? {
        if let Some(mut input) = audio.object("input")? {
            u.input_format = input.with("format", ga_format)?;
            u.input_transcription = input.nullable("transcription", |t| transcription(t, Dialect::Ga))?;
            u.noise_reduction = input.nullable("noise_reduction", |n| noise_reduction(n, Dialect::Ga))?;
            u.turn_detection = input.nullable("turn_detection", |t| turn_detection(t, Dialect::Ga))?;
        }
        if realtime && let Some(mut output) = audio.object("output")? {
            u.output_format = output.with("format", ga_format)?;
            u.voice = output.with("voice", |v, p| voice(v, p, Dialect::Ga))?;
            u.speed = output.number_in("speed", SPEED_RANGE)?;
        }
    }
    u.include = s.with("include", include)?;
    if realtime {
        u.model = s.string("model")?;
        u.instructions = s.string("instructions")?;
        u.output_modalities = s.with("output_modalities", modalities)?;
        u.tools = s.with("tools", tools)?;
        u.tool_choice = s.with("tool_choice", tool_choice)?;
        u.parallel_tool_calls = s.bool("parallel_tool_calls")?;
        u.max_output_tokens = s.with("max_output_tokens", max_tokens)?;
        u.tracing = s.nullable_value("tracing", tracing)?;
        u.truncation = s.with("truncation", truncation)?;
        u.prompt = s.nullable("prompt", prompt)?;
        u.reasoning = s.object("reasoning")?.map(reasoning).transpose()?.flatten();
    }
    Ok(u)
}

fn modalities(value: Value, path: &str) -> Result<OutputModalities> {
    let items = array(value, path)?;
    if items.is_empty() {
        return Err(ProtocolError::invalid_value(
            path,
            format!("'{path}' must name at least one modality."),
        ));
    }
    let mut audio = false;
    for (i, item) in items.into_iter().enumerate() {
        let item_path = index(path, i);
        let name = string(item, &item_path)?;
        audio |= pick(&name, &item_path, &[("text", false), ("audio", true)])?;
    }
    Ok(if audio {
        OutputModalities::Audio
    } else {
        OutputModalities::Text
    })
}

fn voice(value: Value, path: &str, dialect: Dialect) -> Result<Voice> {
    match value {
        Value::String(name) if !name.trim().is_empty() => Ok(Voice::Named(name)),
        Value::String(_) => Err(ProtocolError::invalid_value(
            path,
            format!("'{path}' must not be empty."),
        )),
        Value::Object(map) if dialect == Dialect::Ga => {
            let mut f = Fields::new(map, path.to_owned());
            Ok(Voice::Custom {
                id: f.req_string("id")?,
            })
        }
        other => Err(ProtocolError::invalid_type(
            path,
            if dialect == Dialect::Ga {
                "a string or an object"
            } else {
                "a string"
            },
            &other,
        )),
    }
}

const BETA_FORMATS: &[(&str, AudioFormat)] = &[
    ("pcm16", AudioFormat::Pcm16),
    ("g711_ulaw", AudioFormat::G711Ulaw),
    ("g711_alaw", AudioFormat::G711Alaw),
];

fn beta_format(value: Value, path: &str) -> Result<AudioFormat> {
    let name = string(value, path)?;
    pick(&name, path, BETA_FORMATS)
}

fn ga_format(value: Value, path: &str) -> Result<AudioFormat> {
    let mut f = object(value, path)?;
    let type_path = f.path_of("type");
    let format = pick(
        &f.req_string("type")?,
        &type_path,
        &[
            ("audio/pcm", AudioFormat::Pcm16),
            ("audio/pcmu", AudioFormat::G711Ulaw),
            ("audio/pcma", AudioFormat::G711Alaw),
        ],
    )?;
    if format == AudioFormat::Pcm16
        && let Some(rate) = f.uint("rate")?
        && rate != u64::from(AudioFormat::Pcm16.sample_rate())
    {
        return Err(ProtocolError::invalid_value(
            f.path_of("rate"),
            format!("Invalid value: {rate}. Supported values are: 24000."),
        ));
    }
    Ok(format)
}

fn transcription(mut t: Fields, dialect: Dialect) -> Result<TranscriptionConfig> {
    let mut c = TranscriptionConfig {
        model: t.string("model")?,
        language: t.string("language")?,
        prompt: t.string("prompt")?,
        ..TranscriptionConfig::default()
    };
    if dialect == Dialect::Ga {
        c.languages = t.with("languages", strings)?.unwrap_or_default();
        c.keywords = t.with("keywords", strings)?.unwrap_or_default();
        c.delay = t.enumerated(
            "delay",
            &[
                ("minimal", TranscriptionDelay::Minimal),
                ("low", TranscriptionDelay::Low),
                ("medium", TranscriptionDelay::Medium),
                ("high", TranscriptionDelay::High),
                ("xhigh", TranscriptionDelay::Xhigh),
            ],
        )?;
    }
    Ok(c)
}

fn noise_reduction(mut n: Fields, dialect: Dialect) -> Result<NoiseReduction> {
    Ok(NoiseReduction {
        kind: n.enumerated(
            "type",
            &[
                ("near_field", NoiseReductionKind::NearField),
                ("far_field", NoiseReductionKind::FarField),
            ],
        )?,
        strength: if dialect == Dialect::Ga {
            n.number_in("strength", 0.0..=1.0)?
        } else {
            None
        },
    })
}

fn turn_detection(mut t: Fields, dialect: Dialect) -> Result<TurnDetection> {
    const KINDS: &[(&str, bool)] = &[("server_vad", false), ("semantic_vad", true)];
    let semantic = match (t.string("type")?, dialect) {
        (Some(kind), _) => pick(&kind, &t.path_of("type"), KINDS)?,
        (None, Dialect::Beta) => false,
        (None, Dialect::Ga) => return Err(ProtocolError::missing(t.path_of("type"))),
    };
    if semantic {
        let d = SemanticVad::default();
        return Ok(TurnDetection::SemanticVad(SemanticVad {
            eagerness: t
                .enumerated(
                    "eagerness",
                    &[
                        ("low", Eagerness::Low),
                        ("medium", Eagerness::Medium),
                        ("high", Eagerness::High),
                        ("auto", Eagerness::Auto),
                    ],
                )?
                .unwrap_or(d.eagerness),
            create_response: t.bool("create_response")?.unwrap_or(d.create_response),
            interrupt_response: t.bool("interrupt_response")?.unwrap_or(d.interrupt_response),
        }));
    }
    let d = ServerVad::default();
    Ok(TurnDetection::ServerVad(ServerVad {
        threshold: t.number_in("threshold", 0.0..=1.0)?.unwrap_or(d.threshold),
        prefix_padding_ms: t.u32("prefix_padding_ms")?.unwrap_or(d.prefix_padding_ms),
        silence_duration_ms: t.u32("silence_duration_ms")?.unwrap_or(d.silence_duration_ms),
        idle_timeout_ms: match dialect {
            Dialect::Ga => t.u32_in("idle_timeout_ms", IDLE_TIMEOUT_MS_RANGE)?,
            Dialect::Beta => None,
        },
        create_response: t.bool("create_response")?.unwrap_or(d.create_response),
        interrupt_response: t.bool("interrupt_response")?.unwrap_or(d.interrupt_response),
    }))
}

fn tools(value: Value, path: &str) -> Result<Vec<FunctionTool>> {
    array(value, path)?
        .into_iter()
        .enumerate()
        .map(|(i, tool)| {
            let mut t = object(tool, &index(path, i))?;
            if let Some(kind) = t.string("type")? {
                pick(&kind, &t.path_of("type"), &[("function", ())])?;
            }
            let name = t.req_string("name")?;
            if !valid_function_name(&name) {
                return Err(ProtocolError::invalid_value(
                    t.path_of("name"),
                    format!(
                        "Invalid function name {}: use 1 to 64 letters, digits, '_' or '-'.",
                        super::error::quote(&name)
                    ),
                ));
            }
            let parameters = match t.present("parameters") {
                None => None,
                Some(schema @ Value::Object(_)) => Some(schema),
                Some(other) => {
                    return Err(ProtocolError::invalid_type(
                        t.path_of("parameters"),
                        "an object",
                        &other,
                    ));
                }
            };
            Ok(FunctionTool {
                name,
                description: t.string("description")?,
                parameters,
            })
        })
        .collect()
}

/// OpenAI's rule for function names: `^[a-zA-Z0-9_-]{1,64}$`.
pub(crate) fn valid_function_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn tool_choice(value: Value, path: &str) -> Result<ToolChoice> {
    match value {
        Value::String(mode) => pick(
            &mode,
            path,
            &[
                ("auto", ToolChoice::Auto),
                ("none", ToolChoice::None),
                ("required", ToolChoice::Required),
            ],
        ),
        Value::Object(map) => {
            let mut f = Fields::new(map, path.to_owned());
            let type_path = f.path_of("type");
            pick(&f.req_string("type")?, &type_path, &[("function", ())])?;
            Ok(ToolChoice::Function {
                name: f.req_string("name")?,
            })
        }
        other => Err(ProtocolError::invalid_type(path, "a string or an object", &other)),
    }
}

fn max_tokens(value: Value, path: &str) -> Result<MaxOutputTokens> {
    match value {
        Value::String(s) => pick(&s, path, &[("inf", MaxOutputTokens::Inf)]),
        number @ Value::Number(_) => {
            let n = uint(&number, path)?;
            match u32::try_from(n) {
                Ok(n) if MAX_OUTPUT_TOKENS_RANGE.contains(&n) => Ok(MaxOutputTokens::Limit(n)),
                _ => Err(ProtocolError::invalid_value(
                    path,
                    format!("Invalid value: {n}. '{path}' must be between 1 and 4096, or 'inf'."),
                )),
            }
        }
        other => Err(ProtocolError::invalid_type(path, "an integer or 'inf'", &other)),
    }
}

fn tracing(value: Value, path: &str) -> Result<Tracing> {
    match value {
        Value::String(s) => pick(&s, path, &[("auto", Tracing::Auto)]),
        Value::Object(map) => {
            let mut f = Fields::new(map, path.to_owned());
            Ok(Tracing::Custom {
                workflow_name: f.string("workflow_name")?,
                group_id: f.string("group_id")?,
                metadata: match f.present("metadata") {
                    None => None,
                    Some(m @ Value::Object(_)) => Some(m),
                    Some(other) => {
                        return Err(ProtocolError::invalid_type(
                            f.path_of("metadata"),
                            "an object",
                            &other,
                        ));
                    }
                },
            })
        }
        other => Err(ProtocolError::invalid_type(path, "'auto' or an object", &other)),
    }
}

fn truncation(value: Value, path: &str) -> Result<Truncation> {
    match value {
        Value::String(s) => pick(
            &s,
            path,
            &[("auto", Truncation::Auto), ("disabled", Truncation::Disabled)],
        ),
        Value::Object(map) => {
            let mut f = Fields::new(map, path.to_owned());
            let type_path = f.path_of("type");
            pick(&f.req_string("type")?, &type_path, &[("retention_ratio", ())])?;
            let retention_ratio = f
                .number_in("retention_ratio", 0.0..=1.0)?
                .ok_or_else(|| ProtocolError::missing(f.path_of("retention_ratio")))?;
            let post_instructions_token_limit = match f.object("token_limits")? {
                Some(mut limits) => limits.uint("post_instructions")?,
                None => None,
            };
            Ok(Truncation::RetentionRatio {
                retention_ratio,
                post_instructions_token_limit,
            })
        }
        other => Err(ProtocolError::invalid_type(path, "a string or an object", &other)),
    }
}

fn include(value: Value, path: &str) -> Result<Vec<Include>> {
    array(value, path)?
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            let item_path = index(path, i);
            let name = string(v, &item_path)?;
            pick(
                &name,
                &item_path,
                &[(
                    Include::InputAudioTranscriptionLogprobs.as_str(),
                    Include::InputAudioTranscriptionLogprobs,
                )],
            )
        })
        .collect()
}

fn prompt(mut p: Fields) -> Result<Prompt> {
    Ok(Prompt {
        id: p.req_string("id")?,
        version: p.string("version")?,
        variables: match p.present("variables") {
            None => None,
            Some(Value::Object(vars)) => Some(vars),
            Some(other) => {
                return Err(ProtocolError::invalid_type(
                    p.path_of("variables"),
                    "an object",
                    &other,
                ));
            }
        },
    })
}

fn reasoning(mut r: Fields) -> Result<Option<ReasoningEffort>> {
    r.enumerated(
        "effort",
        &[
            ("minimal", ReasoningEffort::Minimal),
            ("low", ReasoningEffort::Low),
            ("medium", ReasoningEffort::Medium),
            ("high", ReasoningEffort::High),
            ("xhigh", ReasoningEffort::Xhigh),
        ],
    )
}

// ---------------------------------------------------------------------------------------------------------------
// Items

const ROLES: &[(&str, Role)] = &[
    ("user", Role::User),
    ("assistant", Role::Assistant),
    ("system", Role::System),
];
const STATUSES: &[(&str, ItemStatus)] = &[
    ("completed", ItemStatus::Completed),
    ("incomplete", ItemStatus::Incomplete),
    ("in_progress", ItemStatus::InProgress),
];

fn item_input(dialect: Dialect, mut f: Fields) -> Result<ItemInput> {
    let id = f.string("id")?;
    let status = f.enumerated("status", STATUSES)?;
    let type_path = f.path_of("type");
    let item_type = f.req_string("type")?;
    let kind = match item_type.as_str() {
        "message" => {
            let role_path = f.path_of("role");
            let role = pick(&f.req_string("role")?, &role_path, ROLES)?;
            let content = match (f.with("content", array)?, dialect) {
                (Some(parts), _) => {
                    let content_path = f.path_of("content");
                    parts
                        .into_iter()
                        .enumerate()
                        .map(|(i, part)| content_part(dialect, role, object(part, &index(&content_path, i))?))
                        .collect::<Result<Vec<_>>>()?
                }
                (None, Dialect::Beta) => Vec::new(),
                (None, Dialect::Ga) => return Err(ProtocolError::missing(f.path_of("content"))),
            };
            ItemKind::Message { role, content }
        }
        "function_call" => ItemKind::FunctionCall {
            call_id: f.string("call_id")?,
            name: f.req_string("name")?,
            arguments: match dialect {
                Dialect::Ga => f.req_string("arguments")?,
                Dialect::Beta => f.string("arguments")?.unwrap_or_default(),
            },
        },
        "function_call_output" => ItemKind::FunctionCallOutput {
            call_id: f.req_string("call_id")?,
            output: f.req_string("output")?,
        },
        other => {
            return Err(ProtocolError::unsupported(
                type_path,
                other,
                &["message", "function_call", "function_call_output"],
            ));
        }
    };
    Ok(ItemInput { id, status, kind })
}

/// Which content part types a role may carry, per dialect (GA types; beta uses `text`/`audio` for the assistant).
fn allowed_parts(dialect: Dialect, role: Role) -> &'static [&'static str] {
    match (dialect, role) {
        (_, Role::System) => &["input_text"],
        (Dialect::Ga, Role::User) => &["input_text", "input_audio", "input_image"],
        (Dialect::Ga, Role::Assistant) => &["output_text", "output_audio"],
        (Dialect::Beta, Role::User) => &["input_text", "input_audio", "item_reference"],
        (Dialect::Beta, Role::Assistant) => &["text", "audio"],
    }
}

fn content_part(dialect: Dialect, role: Role, mut p: Fields) -> Result<ContentPart> {
    let type_path = p.path_of("type");
    let part_type = p.req_string("type")?;
    let allowed = allowed_parts(dialect, role);
    if !allowed.contains(&part_type.as_str()) {
        return Err(ProtocolError::unsupported(type_path, &part_type, allowed));
    }
    Ok(match part_type.as_str() {
        "input_text" => ContentPart::InputText {
            text: p.string("text")?.unwrap_or_default(),
        },
        "output_text" | "text" => ContentPart::Text {
            text: p.string("text")?.unwrap_or_default(),
        },
        "input_audio" => ContentPart::InputAudio {
            audio: p.audio("audio")?,
            transcript: p.string("transcript")?,
        },
        "output_audio" | "audio" => ContentPart::Audio {
            audio: p.audio("audio")?,
            transcript: p.string("transcript")?,
        },
        "input_image" => ContentPart::InputImage {
            image_url: p.req_string("image_url")?,
            detail: p
                .enumerated(
                    "detail",
                    &[
                        ("auto", ImageDetail::Auto),
                        ("low", ImageDetail::Low),
                        ("high", ImageDetail::High),
                    ],
                )?
                .unwrap_or_default(),
        },
        _ => ContentPart::ItemReference {
            id: p.req_string("id")?,
        },
    })
}

// ---------------------------------------------------------------------------------------------------------------
// Responses

fn response_params(dialect: Dialect, mut r: Fields) -> Result<ResponseParams> {
    let mut params = ResponseParams {
        conversation: r
            .enumerated(
                "conversation",
                &[("auto", ConversationMode::Auto), ("none", ConversationMode::None)],
            )?
            .unwrap_or_default(),
        input: r.with("input", |v, p| response_input(dialect, v, p))?,
        instructions: r.string("instructions")?,
        tools: r.with("tools", tools)?,
        tool_choice: r.with("tool_choice", tool_choice)?,
        metadata: r.with("metadata", metadata)?,
        ..ResponseParams::default()
    };
    match dialect {
        Dialect::Beta => {
            params.output_modalities = r.with("modalities", modalities)?;
            params.voice = r.with("voice", |v, p| voice(v, p, Dialect::Beta))?;
            params.output_format = r.with("output_audio_format", beta_format)?;
            params.temperature = r.number_in("temperature", TEMPERATURE_RANGE)?;
            // The SDK types say `max_response_output_tokens`; the OpenAPI document says `max_output_tokens`.
            params.max_output_tokens = match r.with("max_response_output_tokens", max_tokens)? {
                Some(cap) => Some(cap),
                None => r.with("max_output_tokens", max_tokens)?,
            };
        }
        Dialect::Ga => {
            params.output_modalities = r.with("output_modalities", modalities)?;
            if let Some(mut audio) = r.object("audio")?
                && let Some(mut output) = audio.object("output")?
            {
                params.output_format = output.with("format", ga_format)?;
                params.voice = output.with("voice", |v, p| voice(v, p, Dialect::Ga))?;
            }
            params.max_output_tokens = r.with("max_output_tokens", max_tokens)?;
            params.parallel_tool_calls = r.bool("parallel_tool_calls")?;
            params.reasoning = r.object("reasoning")?.map(reasoning).transpose()?.flatten();
            params.prompt = r.object("prompt")?.map(prompt).transpose()?;
        }
    }
    Ok(params)
}

fn response_input(dialect: Dialect, value: Value, path: &str) -> Result<Vec<ResponseInput>> {
    array(value, path)?
        .into_iter()
        .enumerate()
        .map(|(i, entry)| {
            let mut f = object(entry, &index(path, i))?;
            if f.map.get("type").and_then(Value::as_str) == Some("item_reference") {
                Ok(ResponseInput::Reference {
                    id: f.req_string("id")?,
                })
            } else {
                item_input(dialect, f).map(ResponseInput::Item)
            }
        })
        .collect()
}

fn metadata(value: Value, path: &str) -> Result<Metadata> {
    let f = object(value, path)?;
    if f.map.len() > METADATA_MAX_PAIRS {
        return Err(ProtocolError::invalid_value(
            path,
            format!("'{path}' may hold at most {METADATA_MAX_PAIRS} pairs."),
        ));
    }
    let mut out = Metadata::new();
    for (key, value) in f.map {
        let key_path = join(path, &key);
        if key.chars().count() > METADATA_MAX_KEY_CHARS {
            return Err(ProtocolError::invalid_value(
                key_path,
                format!("Metadata keys may be at most {METADATA_MAX_KEY_CHARS} characters."),
            ));
        }
        let value = string(value, &key_path)?;
        if value.chars().count() > METADATA_MAX_VALUE_CHARS {
            return Err(ProtocolError::invalid_value(
                key_path,
                format!("Metadata values may be at most {METADATA_MAX_VALUE_CHARS} characters."),
            ));
        }
        out.insert(key, value);
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------------------------
// Field reading with paths

/// The fields of one JSON object, taken out one by one, with the object's path for error messages.
struct Fields {
    map: Map<String, Value>,
    path: String,
}

impl Fields {
    fn new(map: Map<String, Value>, path: String) -> Self {
        Self { map, path }
    }

    fn path_of(&self, key: &str) -> String {
        join(&self.path, key)
    }

    /// The value, `null` counting as absent.
    fn present(&mut self, key: &str) -> Option<Value> {
        match self.map.remove(key) {
            None | Some(Value::Null) => None,
            some => some,
        }
    }

    /// Applies `read` to a present, non-null value.
    fn with<T>(&mut self, key: &str, read: impl FnOnce(Value, &str) -> Result<T>) -> Result<Option<T>> {
        match self.present(key) {
            None => Ok(None),
            Some(value) => read(value, &self.path_of(key)).map(Some),
        }
    }

    /// Absent → `None`; `null` → `Some(None)` ("turn off"); an object → `Some(Some(read(object)))`.
    fn nullable<T>(
        &mut self,
        key: &str,
        read: impl FnOnce(Fields) -> Result<T>,
    ) -> Result<Option<Option<T>>> {
        self.nullable_value(key, |value, path| read(object(value, path)?))
    }

    /// Like [`Fields::nullable`] for values that need not be objects.
    fn nullable_value<T>(
        &mut self,
        key: &str,
        read: impl FnOnce(Value, &str) -> Result<T>,
    ) -> Result<Option<Option<T>>> {
        match self.map.remove(key) {
            None => Ok(None),
            Some(Value::Null) => Ok(Some(None)),
            Some(value) => read(value, &self.path_of(key)).map(|v| Some(Some(v))),
        }
    }

    fn string(&mut self, key: &str) -> Result<Option<String>> {
        self.with(key, string)
    }

    fn req_string(&mut self, key: &str) -> Result<String> {
        self.string(key)?
            .ok_or_else(|| ProtocolError::missing(self.path_of(key)))
    }

    /// Base64 audio, decoded.
    fn audio(&mut self, key: &str) -> Result<Option<AudioBytes>> {
        self.with(key, |value, path| {
            Ok(AudioBytes::from(decode_base64(&string(value, path)?, path)?))
        })
    }

    fn bool(&mut self, key: &str) -> Result<Option<bool>> {
        self.with(key, |value, path| match value {
            Value::Bool(b) => Ok(b),
            other => Err(ProtocolError::invalid_type(path, "a boolean", &other)),
        })
    }

    fn number_in(&mut self, key: &str, range: RangeInclusive<f64>) -> Result<Option<f64>> {
        self.with(key, |value, path| match value.as_f64() {
            Some(x) if range.contains(&x) => Ok(x),
            Some(x) => Err(ProtocolError::invalid_value(
                path,
                format!(
                    "Invalid value: {x}. '{path}' must be between {} and {}.",
                    range.start(),
                    range.end()
                ),
            )),
            None => Err(ProtocolError::invalid_type(path, "a number", &value)),
        })
    }

    fn uint(&mut self, key: &str) -> Result<Option<u64>> {
        self.with(key, |value, path| uint(&value, path))
    }

    fn req_uint(&mut self, key: &str) -> Result<u64> {
        self.uint(key)?
            .ok_or_else(|| ProtocolError::missing(self.path_of(key)))
    }

    fn u32(&mut self, key: &str) -> Result<Option<u32>> {
        self.u32_in(key, 0..=u32::MAX)
    }

    fn req_u32(&mut self, key: &str) -> Result<u32> {
        self.u32(key)?
            .ok_or_else(|| ProtocolError::missing(self.path_of(key)))
    }

    fn u32_in(&mut self, key: &str, range: RangeInclusive<u32>) -> Result<Option<u32>> {
        self.with(key, |value, path| {
            let n = uint(&value, path)?;
            match u32::try_from(n) {
                Ok(n) if range.contains(&n) => Ok(n),
                _ => Err(ProtocolError::invalid_value(
                    path,
                    format!(
                        "Invalid value: {n}. '{path}' must be between {} and {}.",
                        range.start(),
                        range.end()
                    ),
                )),
            }
        })
    }

    fn object(&mut self, key: &str) -> Result<Option<Fields>> {
        self.with(key, object)
    }

    fn req_object(&mut self, key: &str) -> Result<Fields> {
        self.object(key)?
            .ok_or_else(|| ProtocolError::missing(self.path_of(key)))
    }

    fn enumerated<T: Clone>(&mut self, key: &str, table: &[(&str, T)]) -> Result<Option<T>> {
        self.with(key, |value, path| {
            let name = string(value, path)?;
            pick(&name, path, table)
        })
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

fn string(value: Value, path: &str) -> Result<String> {
    match value {
        Value::String(s) => Ok(s),
        other => Err(ProtocolError::invalid_type(path, "a string", &other)),
    }
}

fn strings(value: Value, path: &str) -> Result<Vec<String>> {
    array(value, path)?
        .into_iter()
        .enumerate()
        .map(|(i, v)| string(v, &index(path, i)))
        .collect()
}

fn object(value: Value, path: &str) -> Result<Fields> {
    match value {
        Value::Object(map) => Ok(Fields::new(map, path.to_owned())),
        other => Err(ProtocolError::invalid_type(path, "an object", &other)),
    }
}

fn array(value: Value, path: &str) -> Result<Vec<Value>> {
    match value {
        Value::Array(items) => Ok(items),
        other => Err(ProtocolError::invalid_type(path, "an array", &other)),
    }
}

/// A non-negative integer; whole floats (`1.0`) are accepted since some clients compute milliseconds as floats.
fn uint(value: &Value, path: &str) -> Result<u64> {
    let Value::Number(n) = value else {
        return Err(ProtocolError::invalid_type(path, "an integer", value));
    };
    if let Some(u) = n.as_u64() {
        return Ok(u);
    }
    if n.is_i64() {
        return Err(ProtocolError::invalid_value(
            path,
            format!("Invalid value: {n}. '{path}' must not be negative."),
        ));
    }
    match n.as_f64() {
        // 2^64 as f64; whole values below it convert exactly.
        Some(x) if x.fract() == 0.0 && (0.0..18_446_744_073_709_551_616.0).contains(&x) => Ok(x as u64),
        Some(x) if x < 0.0 => Err(ProtocolError::invalid_value(
            path,
            format!("Invalid value: {n}. '{path}' must not be negative."),
        )),
        _ => Err(ProtocolError::invalid_type(path, "an integer", value)),
    }
}

fn pick<T: Clone>(value: &str, path: &str, table: &[(&str, T)]) -> Result<T> {
    table
        .iter()
        .find(|(name, _)| *name == value)
        .map(|(_, t)| t.clone())
        .ok_or_else(|| {
            let names: Vec<&str> = table.iter().map(|&(name, _)| name).collect();
            ProtocolError::unsupported(path, value, &names)
        })
}

fn decode_base64(encoded: &str, path: &str) -> Result<Vec<u8>> {
    BASE64
        .decode(encoded)
        .map_err(|e| ProtocolError::invalid_value(path, format!("'{path}' is not valid base64: {e}.")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_streaming_append_takes_the_direct_path() {
        let frame = r#"{"type":"input_audio_buffer.append","event_id":"e1","audio":"AAAB"}"#;
        let direct = decode_append(frame).expect("the direct path reads a plain append");
        assert_eq!(direct.event_id.as_deref(), Some("e1"));
        assert_eq!(
            direct.kind,
            ClientEventKind::InputAudioBufferAppend { audio: vec![0, 0, 1] }
        );
        assert_eq!(decode_tree(Dialect::Ga, frame).unwrap(), direct);
        // What the direct path leaves to the tree: errors are the tree's, with their params.
        for refused in [
            r#"{"type":"input_audio_buffer.append","audio":"!!"}"#,
            r#"{"type":"input_audio_buffer.append","audio":null}"#,
            r#"{"type":"input_audio_buffer.append","type":"input_audio_buffer.commit","audio":"AA"}"#,
            r#"{"type":"input_audio_buffer.commit","audio":"AA"}"#,
        ] {
            assert!(decode_append(refused).is_none(), "{refused}");
        }
    }

    mod direct_append {
        use super::*;
        use proptest::prelude::*;

        /// One `"key": value` member, drawn from values the two paths could disagree on.
        fn member() -> impl Strategy<Value = String> {
            let long_id = format!("\"{}\"", "i".repeat(MAX_EVENT_ID_CHARS));
            let too_long_id = format!("\"{}\"", "é".repeat(MAX_EVENT_ID_CHARS + 1));
            prop_oneof![
                prop::sample::select(vec![
                    r#""input_audio_buffer.append""#,
                    r#""input_audio_buffer.app\u0065nd""#,
                    r#""input_audio_buffer.commit""#,
                    r#""session.update""#,
                    "null",
                    "5",
                ])
                .prop_map(|v| format!(r#""type":{v}"#)),
                prop::sample::select(vec![
                    r#""evt_1""#.to_owned(),
                    r#""\u00e9\n""#.to_owned(),
                    "null".to_owned(),
                    "7".to_owned(),
                    "[]".to_owned(),
                    long_id,
                    too_long_id,
                ])
                .prop_map(|v| format!(r#""event_id":{v}"#)),
                prop_oneof![
                    prop::sample::select(vec![
                        r#""AAAA""#,
                        r#""AAA""#,
                        r#""AA==""#,
                        r#""A""#,
                        r#""!!""#,
                        r#""""#,
                        r#""A\/B+""#,
                        r#""AA\u003d\u003d""#,
                        "null",
                        "[1]",
                        "{}",
                        "12",
                    ])
                    .prop_map(str::to_owned),
                    prop::collection::vec(any::<u8>(), 0..64)
                        .prop_map(|bytes| format!("\"{}\"", BASE64.encode(bytes))),
                ]
                .prop_map(|v| format!(r#""audio":{v}"#)),
                prop::sample::select(vec![
                    r#""x":{}"#,
                    r#""x":[1,{"a":null}]"#,
                    r#""y":"z""#,
                    r#""n":-1.5e3"#,
                    r#""t":true"#,
                    r#""audio_end_ms":3"#,
                    r#""item":{"type":"message"}"#,
                ])
                .prop_map(str::to_owned),
            ]
        }

        proptest! {
            /// Whatever the direct path accepts, the tree reads as the same event, in both dialects.
            #[test]
            fn agrees_with_the_tree(members in prop::collection::vec(member(), 0..7), spaced in any::<bool>()) {
                let sep = if spaced { " , " } else { "," };
                let frame = format!("{{{}}}", members.join(sep));
                if let Some(direct) = decode_append(&frame) {
                    for dialect in [Dialect::Ga, Dialect::Beta] {
                        prop_assert_eq!(decode_tree(dialect, &frame), Ok(direct.clone()), "{}", frame);
                    }
                }
            }
        }
    }

    #[test]
    fn uint_accepts_whole_floats_and_rejects_the_rest() {
        assert_eq!(uint(&serde_json::json!(5), "p").unwrap(), 5);
        assert_eq!(uint(&serde_json::json!(5.0), "p").unwrap(), 5);
        assert_eq!(
            uint(&serde_json::json!(-1), "p").unwrap_err().code(),
            ProtocolErrorCode::InvalidValue
        );
        assert_eq!(
            uint(&serde_json::json!(-1.5), "p").unwrap_err().code(),
            ProtocolErrorCode::InvalidValue
        );
        assert_eq!(
            uint(&serde_json::json!(1.5), "p").unwrap_err().code(),
            ProtocolErrorCode::InvalidType
        );
        assert_eq!(
            uint(&serde_json::json!(1e300), "p").unwrap_err().code(),
            ProtocolErrorCode::InvalidType
        );
        assert_eq!(
            uint(&serde_json::json!("1"), "p").unwrap_err().code(),
            ProtocolErrorCode::InvalidType
        );
    }

    #[test]
    fn function_names_follow_openai_rules() {
        assert!(valid_function_name("get_weather-2"));
        assert!(!valid_function_name(""));
        assert!(!valid_function_name("has space"));
        assert!(!valid_function_name(&"x".repeat(65)));
    }

    #[test]
    fn base64_padding_is_optional() {
        assert_eq!(decode_base64("AAE=", "a").unwrap(), vec![0, 1]);
        assert_eq!(decode_base64("AAE", "a").unwrap(), vec![0, 1]);
        assert!(decode_base64("A*E=", "a").is_err());
    }
}
