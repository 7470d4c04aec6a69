//! The realtime protocol by example: every client event of both dialects decoded from SDK-shaped JSON (reference
//! §4, §6–§8), every server event encoded and compared key by key with the dialect's expected JSON (§3, §5),
//! error events naming `param` and the client's `event_id`, and the handshake rules (§1, §3).

use avb_core::SequentialIds;
use avb_voice::realtime::protocol::{
    AudioBytes, AudioFormat, CachedTokenDetails, ClientEvent, ClientEventKind, ContentPart, ConversationMode,
    Dialect, Eagerness, ErrorObject, FunctionTool, Handshake, ImageDetail, Include, InputTokenDetails, Item,
    ItemInput, ItemKind, ItemPosition, ItemStatus, LogProb, MaxOutputTokens, NoiseReduction,
    NoiseReductionKind, OutputModalities, OutputRef, OutputTokenDetails, PartRef, ProtocolError,
    ProtocolErrorCode, RateLimit, RateLimitName, ReasoningEffort, Response, ResponseInput, ResponseParams,
    ResponseStatus, Role, SemanticVad, ServerEvent, ServerVad, SessionConfig, SessionKind, SessionObject,
    SessionUpdate, StatusDetails, StatusError, StatusReason, ToolChoice, Tracing, TranscriptionConfig,
    TranscriptionTokenDetails, TranscriptionUsage, Truncation, TurnDetection, UpdateLocks, Usage, Voice,
    client_event_types, decode_client, encode_server, encode_server_value,
};
use serde_json::{Value, json};
use std::collections::BTreeSet;

const GA: Dialect = Dialect::Ga;
const BETA: Dialect = Dialect::Beta;
const EVENT_ID: &str = "event_TEST";

fn decode(d: Dialect, v: Value) -> ClientEvent {
    decode_client(d, &v.to_string()).unwrap_or_else(|e| panic!("{d} rejected {v}: {e:?}"))
}

fn kind(d: Dialect, v: Value) -> ClientEventKind {
    decode(d, v).kind
}

fn reject(d: Dialect, v: Value) -> ProtocolError {
    decode_client(d, &v.to_string()).expect_err("must be rejected")
}

fn update(d: Dialect, v: Value) -> SessionUpdate {
    match kind(d, v) {
        ClientEventKind::SessionUpdate(u) => *u,
        other => panic!("not a session update: {other:?}"),
    }
}

fn response_create(d: Dialect, v: Value) -> ResponseParams {
    match kind(d, v) {
        ClientEventKind::ResponseCreate(p) => *p,
        other => panic!("not a response.create: {other:?}"),
    }
}

fn item_create(d: Dialect, v: Value) -> (ItemPosition, ItemInput) {
    match kind(d, v) {
        ClientEventKind::ConversationItemCreate { position, item } => (position, item),
        other => panic!("not an item create: {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Client events: session configuration

#[test]
fn ga_session_update_with_every_field_decodes_to_the_neutral_update() {
    let u = update(
        GA,
        json!({
            "type": "session.update",
            "event_id": "evt_1",
            "session": {
                "type": "realtime",
                "model": "gpt-realtime",
                "output_modalities": ["audio"],
                "instructions": "Be brief.",
                "audio": {
                    "input": {
                        "format": {"type": "audio/pcm", "rate": 24000},
                        "transcription": {"model": "whisper-1", "language": "en", "languages": ["en", "de"],
                                          "prompt": "names", "keywords": ["AgentVoiceBox"], "delay": "low"},
                        "noise_reduction": {"type": "near_field", "strength": 0.5},
                        "turn_detection": {"type": "server_vad", "threshold": 0.6, "prefix_padding_ms": 200,
                                           "silence_duration_ms": 400, "create_response": true,
                                           "interrupt_response": false, "idle_timeout_ms": 6000}
                    },
                    "output": {"format": {"type": "audio/pcmu"}, "voice": {"id": "voice_123"}, "speed": 1.1}
                },
                "include": ["item.input_audio_transcription.logprobs"],
                "tools": [{"type": "function", "name": "get_weather", "description": "Weather by city",
                           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}],
                "tool_choice": {"type": "function", "name": "get_weather"},
                "parallel_tool_calls": false,
                "max_output_tokens": 1024,
                "tracing": {"workflow_name": "support", "group_id": "g1", "metadata": {"k": "v"}},
                "truncation": {"type": "retention_ratio", "retention_ratio": 0.5, "token_limits": {"post_instructions": 1000}},
                "prompt": {"id": "pmpt_1", "version": "2", "variables": {"name": "Ada"}},
                "reasoning": {"effort": "low"},
                "some_future_field": {"ignored": true}
            }
        }),
    );
    assert_eq!(
        u,
        SessionUpdate {
            kind: Some(SessionKind::Realtime),
            model: Some("gpt-realtime".into()),
            instructions: Some("Be brief.".into()),
            output_modalities: Some(OutputModalities::Audio),
            voice: Some(Voice::Custom {
                id: "voice_123".into()
            }),
            speed: Some(1.1),
            input_format: Some(AudioFormat::Pcm16),
            output_format: Some(AudioFormat::G711Ulaw),
            input_transcription: Some(Some(TranscriptionConfig {
                model: Some("whisper-1".into()),
                language: Some("en".into()),
                languages: vec!["en".into(), "de".into()],
                prompt: Some("names".into()),
                keywords: vec!["AgentVoiceBox".into()],
                delay: Some(avb_voice::realtime::protocol::TranscriptionDelay::Low),
            })),
            noise_reduction: Some(Some(NoiseReduction {
                kind: Some(NoiseReductionKind::NearField),
                strength: Some(0.5)
            })),
            turn_detection: Some(Some(TurnDetection::ServerVad(ServerVad {
                threshold: 0.6,
                prefix_padding_ms: 200,
                silence_duration_ms: 400,
                idle_timeout_ms: Some(6000),
                create_response: true,
                interrupt_response: false,
            }))),
            tools: Some(vec![FunctionTool {
                name: "get_weather".into(),
                description: Some("Weather by city".into()),
                parameters: Some(json!({"type": "object", "properties": {"city": {"type": "string"}}})),
            }]),
            tool_choice: Some(ToolChoice::Function {
                name: "get_weather".into()
            }),
            parallel_tool_calls: Some(false),
            temperature: None,
            max_output_tokens: Some(MaxOutputTokens::Limit(1024)),
            tracing: Some(Some(Tracing::Custom {
                workflow_name: Some("support".into()),
                group_id: Some("g1".into()),
                metadata: Some(json!({"k": "v"})),
            })),
            truncation: Some(Truncation::RetentionRatio {
                retention_ratio: 0.5,
                post_instructions_token_limit: Some(1000)
            }),
            include: Some(vec![Include::InputAudioTranscriptionLogprobs]),
            prompt: Some(Some(avb_voice::realtime::protocol::Prompt {
                id: "pmpt_1".into(),
                version: Some("2".into()),
                variables: json!({"name": "Ada"}).as_object().cloned(),
            })),
            reasoning: Some(ReasoningEffort::Low),
        }
    );
}

#[test]
fn beta_session_update_uses_the_flat_shape() {
    let u = update(
        BETA,
        json!({
            "type": "session.update",
            "session": {
                "modalities": ["text", "audio"],
                "instructions": "",
                "voice": "ash",
                "input_audio_format": "g711_alaw",
                "output_audio_format": "pcm16",
                "input_audio_transcription": {"model": "whisper-1"},
                "input_audio_noise_reduction": null,
                "turn_detection": {"type": "semantic_vad", "eagerness": "high", "create_response": false},
                "tools": [{"name": "lookup", "parameters": {"type": "object"}}],
                "tool_choice": "required",
                "temperature": 0.7,
                "max_response_output_tokens": "inf",
                "speed": 0.9,
                "tracing": "auto",
                "client_secret": {"expires_after": {"anchor": "created_at", "seconds": 600}}
            }
        }),
    );
    assert_eq!(
        u,
        SessionUpdate {
            kind: Some(SessionKind::Realtime),
            instructions: Some(String::new()),
            output_modalities: Some(OutputModalities::Audio),
            voice: Some(Voice::Named("ash".into())),
            speed: Some(0.9),
            input_format: Some(AudioFormat::G711Alaw),
            output_format: Some(AudioFormat::Pcm16),
            input_transcription: Some(Some(TranscriptionConfig {
                model: Some("whisper-1".into()),
                ..Default::default()
            })),
            noise_reduction: Some(None),
            turn_detection: Some(Some(TurnDetection::SemanticVad(SemanticVad {
                eagerness: Eagerness::High,
                create_response: false,
                interrupt_response: true,
            }))),
            tools: Some(vec![FunctionTool {
                name: "lookup".into(),
                description: None,
                parameters: Some(json!({"type": "object"}))
            }]),
            tool_choice: Some(ToolChoice::Required),
            temperature: Some(0.7),
            max_output_tokens: Some(MaxOutputTokens::Inf),
            tracing: Some(Some(Tracing::Auto)),
            ..SessionUpdate::default()
        }
    );
}

#[test]
fn beta_turn_detection_without_type_is_server_vad_with_defaults() {
    let u = update(
        BETA,
        json!({"type": "session.update", "session": {"turn_detection": {"threshold": 0.9}}}),
    );
    assert_eq!(
        u.turn_detection,
        Some(Some(TurnDetection::ServerVad(ServerVad {
            threshold: 0.9,
            ..ServerVad::default()
        })))
    );
    // GA requires the discriminator.
    let e = reject(
        GA,
        json!({"type": "session.update", "session": {"type": "realtime", "audio": {"input": {"turn_detection": {"threshold": 0.9}}}}}),
    );
    assert_eq!(e.code(), ProtocolErrorCode::MissingRequiredParameter);
    assert_eq!(e.param(), Some("session.audio.input.turn_detection.type"));
}

#[test]
fn null_turn_detection_means_push_to_talk_in_both_dialects() {
    let ga = update(
        GA,
        json!({"type": "session.update", "session": {"type": "realtime", "audio": {"input": {"turn_detection": null}}}}),
    );
    let beta = update(
        BETA,
        json!({"type": "session.update", "session": {"turn_detection": null}}),
    );
    assert_eq!(ga.turn_detection, Some(None));
    assert_eq!(beta.turn_detection, Some(None));
    let mut config = SessionConfig::new(SessionKind::Realtime, "m");
    config.apply(beta, UpdateLocks::default()).unwrap();
    assert_eq!(config.turn_detection, None);
}

#[test]
fn transcription_sessions_in_both_dialects() {
    let beta = update(
        BETA,
        json!({
            "type": "transcription_session.update",
            "session": {
                "input_audio_format": "pcm16",
                "input_audio_transcription": {"model": "gpt-4o-transcribe", "language": "fr", "prompt": "x"},
                "turn_detection": {"type": "server_vad", "silence_duration_ms": 700},
                "input_audio_noise_reduction": {"type": "far_field"},
                "include": ["item.input_audio_transcription.logprobs"]
            }
        }),
    );
    assert_eq!(beta.kind, Some(SessionKind::Transcription));
    assert_eq!(beta.input_format, Some(AudioFormat::Pcm16));
    assert_eq!(beta.include, Some(vec![Include::InputAudioTranscriptionLogprobs]));
    assert_eq!(
        beta.turn_detection,
        Some(Some(TurnDetection::ServerVad(ServerVad {
            silence_duration_ms: 700,
            ..ServerVad::default()
        })))
    );
    let ga = update(
        GA,
        json!({
            "type": "session.update",
            "session": {"type": "transcription", "audio": {"input": {"format": {"type": "audio/pcma"},
                        "transcription": {"model": "gpt-4o-transcribe"}}}, "instructions": "ignored here"}
        }),
    );
    assert_eq!(ga.kind, Some(SessionKind::Transcription));
    assert_eq!(ga.input_format, Some(AudioFormat::G711Alaw));
    assert_eq!(ga.instructions, None);
    // GA has no transcription_session.update.
    let e = reject(
        GA,
        json!({"type": "transcription_session.update", "event_id": "e9", "session": {}}),
    );
    assert_eq!(
        (e.code(), e.event_id()),
        (ProtocolErrorCode::UnknownEvent, Some("e9"))
    );
}

#[test]
fn rest_session_bodies_decode_with_the_same_rules() {
    use avb_voice::realtime::protocol::decode_session;
    let ga = decode_session(
        GA,
        SessionKind::Realtime,
        json!({"type": "transcription", "audio": {"input": {"format": {"type": "audio/pcmu"}}}}),
    )
    .unwrap();
    assert_eq!(
        (ga.kind, ga.input_format),
        (Some(SessionKind::Transcription), Some(AudioFormat::G711Ulaw))
    );
    let beta = decode_session(
        BETA,
        SessionKind::Realtime,
        json!({"voice": "sage", "client_secret": {"expires_after": {"anchor": "created_at", "seconds": 60}}}),
    )
    .unwrap();
    assert_eq!(
        (beta.kind, beta.voice),
        (Some(SessionKind::Realtime), Some(Voice::Named("sage".into())))
    );
    let beta = decode_session(
        BETA,
        SessionKind::Transcription,
        json!({"input_audio_format": "g711_alaw"}),
    )
    .unwrap();
    assert_eq!(
        (beta.kind, beta.input_format),
        (Some(SessionKind::Transcription), Some(AudioFormat::G711Alaw))
    );
    let e = decode_session(BETA, SessionKind::Realtime, json!({"temperature": 9})).unwrap_err();
    assert_eq!(e.param(), Some("session.temperature"));
    let e = decode_session(GA, SessionKind::Realtime, json!([])).unwrap_err();
    assert_eq!(
        (e.code(), e.param()),
        (ProtocolErrorCode::InvalidType, Some("session"))
    );
}

#[test]
fn beta_session_update_on_a_transcription_session_is_refused() {
    let mut config = SessionConfig::new(SessionKind::Transcription, "gpt-4o-transcribe");
    let u = update(
        BETA,
        json!({"type": "session.update", "event_id": "e", "session": {"instructions": "x"}}),
    );
    let e = config
        .apply(u, UpdateLocks::default())
        .unwrap_err()
        .into_protocol_error(BETA, Some("e".into()));
    assert_eq!(
        (e.code(), e.param()),
        (ProtocolErrorCode::InvalidValue, Some("type"))
    );
    let u = update(
        BETA,
        json!({"type": "transcription_session.update", "session": {"input_audio_format": "g711_ulaw"}}),
    );
    config.apply(u, UpdateLocks::default()).unwrap();
    assert_eq!(config.input_format, AudioFormat::G711Ulaw);
}

#[test]
fn ga_session_update_requires_the_session_type() {
    let e = reject(
        GA,
        json!({"type": "session.update", "session": {"instructions": "hi"}}),
    );
    assert_eq!(e.code(), ProtocolErrorCode::MissingRequiredParameter);
    assert_eq!(e.param(), Some("session.type"));
    let e = reject(
        GA,
        json!({"type": "session.update", "session": {"type": "translation"}}),
    );
    assert_eq!(
        (e.code(), e.param()),
        (ProtocolErrorCode::InvalidValue, Some("session.type"))
    );
}

#[test]
fn out_of_range_values_name_the_dialects_param() {
    let cases: Vec<(Dialect, Value, &str)> = vec![
        (
            GA,
            json!({"type": "realtime", "audio": {"input": {"turn_detection": {"type": "server_vad", "threshold": 1.5}}}}),
            "session.audio.input.turn_detection.threshold",
        ),
        (
            BETA,
            json!({"turn_detection": {"type": "server_vad", "threshold": -0.1}}),
            "session.turn_detection.threshold",
        ),
        (
            GA,
            json!({"type": "realtime", "audio": {"input": {"turn_detection": {"type": "server_vad", "idle_timeout_ms": 1000}}}}),
            "session.audio.input.turn_detection.idle_timeout_ms",
        ),
        (BETA, json!({"temperature": 1.5}), "session.temperature"),
        (BETA, json!({"speed": 3}), "session.speed"),
        (
            GA,
            json!({"type": "realtime", "audio": {"output": {"speed": 0.1}}}),
            "session.audio.output.speed",
        ),
        (
            GA,
            json!({"type": "realtime", "max_output_tokens": 5000}),
            "session.max_output_tokens",
        ),
        (
            BETA,
            json!({"max_response_output_tokens": 0}),
            "session.max_response_output_tokens",
        ),
        (
            BETA,
            json!({"max_response_output_tokens": "lots"}),
            "session.max_response_output_tokens",
        ),
        (
            BETA,
            json!({"input_audio_format": "pcm8"}),
            "session.input_audio_format",
        ),
        (
            GA,
            json!({"type": "realtime", "audio": {"input": {"format": {"type": "audio/pcm", "rate": 16000}}}}),
            "session.audio.input.format.rate",
        ),
        (
            GA,
            json!({"type": "realtime", "audio": {"input": {"format": {"type": "audio/opus"}}}}),
            "session.audio.input.format.type",
        ),
        (
            GA,
            json!({"type": "realtime", "output_modalities": []}),
            "session.output_modalities",
        ),
        (
            BETA,
            json!({"modalities": ["text", "video"]}),
            "session.modalities[1]",
        ),
        (BETA, json!({"voice": ""}), "session.voice"),
        (BETA, json!({"tool_choice": "sometimes"}), "session.tool_choice"),
        (
            GA,
            json!({"type": "realtime", "tools": [{"type": "function", "name": "bad name"}]}),
            "session.tools[0].name",
        ),
        (
            GA,
            json!({"type": "realtime", "tools": [{"type": "mcp", "server_label": "x"}]}),
            "session.tools[0].type",
        ),
        (BETA, json!({"tracing": "manual"}), "session.tracing"),
        (
            GA,
            json!({"type": "realtime", "truncation": {"type": "retention_ratio", "retention_ratio": 2}}),
            "session.truncation.retention_ratio",
        ),
        (
            GA,
            json!({"type": "realtime", "include": ["everything"]}),
            "session.include[0]",
        ),
        (
            GA,
            json!({"type": "realtime", "reasoning": {"effort": "max"}}),
            "session.reasoning.effort",
        ),
    ];
    for (d, session, param) in cases {
        let e = reject(
            d,
            json!({"type": "session.update", "event_id": "evt_x", "session": session}),
        );
        assert_eq!(e.code(), ProtocolErrorCode::InvalidValue, "{session}: {e:?}");
        assert_eq!(e.param(), Some(param), "{session}");
        assert_eq!(e.event_id(), Some("evt_x"));
    }
}

#[test]
fn wrong_types_name_the_param() {
    let cases: Vec<(Dialect, Value, &str)> = vec![
        (
            BETA,
            json!({"type": "session.update", "session": {"instructions": 5}}),
            "session.instructions",
        ),
        (
            BETA,
            json!({"type": "session.update", "session": {"tools": {}}}),
            "session.tools",
        ),
        (
            BETA,
            json!({"type": "session.update", "session": {"tools": [{"name": "f", "parameters": "x"}]}}),
            "session.tools[0].parameters",
        ),
        (
            GA,
            json!({"type": "session.update", "session": {"type": "realtime", "audio": {"input": {"format": "pcm16"}}}}),
            "session.audio.input.format",
        ),
        (
            BETA,
            json!({"type": "session.update", "session": {"voice": {"id": "v"}}}),
            "session.voice",
        ),
        (
            GA,
            json!({"type": "session.update", "session": "realtime"}),
            "session",
        ),
        (
            GA,
            json!({"type": "input_audio_buffer.append", "audio": 123}),
            "audio",
        ),
        (
            GA,
            json!({"type": "conversation.item.truncate", "item_id": "i", "content_index": "0", "audio_end_ms": 1}),
            "content_index",
        ),
        (
            GA,
            json!({"type": "conversation.item.truncate", "item_id": "i", "content_index": 0, "audio_end_ms": 1.5}),
            "audio_end_ms",
        ),
        (
            GA,
            json!({"type": "conversation.item.create", "item": {"type": "message", "role": "user", "content": "hi"}}),
            "item.content",
        ),
        (
            BETA,
            json!({"type": "response.create", "response": {"metadata": {"k": 1}}}),
            "response.metadata.k",
        ),
    ];
    for (d, v, param) in cases {
        let e = reject(d, v.clone());
        assert_eq!(e.code(), ProtocolErrorCode::InvalidType, "{v}: {e:?}");
        assert_eq!(e.param(), Some(param), "{v}");
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Client events: audio buffers, items, responses

#[test]
fn buffer_events_decode_in_both_dialects() {
    for d in [GA, BETA] {
        assert_eq!(
            decode(
                d,
                json!({"type": "input_audio_buffer.append", "event_id": "a1", "audio": "AAECAw=="})
            ),
            ClientEvent {
                event_id: Some("a1".into()),
                kind: ClientEventKind::InputAudioBufferAppend {
                    audio: vec![0, 1, 2, 3]
                }
            }
        );
        assert_eq!(
            kind(d, json!({"type": "input_audio_buffer.commit"})),
            ClientEventKind::InputAudioBufferCommit
        );
        assert_eq!(
            kind(d, json!({"type": "input_audio_buffer.clear"})),
            ClientEventKind::InputAudioBufferClear
        );
        assert_eq!(
            kind(d, json!({"type": "output_audio_buffer.clear"})),
            ClientEventKind::OutputAudioBufferClear
        );
        let e = reject(
            d,
            json!({"type": "input_audio_buffer.append", "event_id": "a2", "audio": "not base64!"}),
        );
        assert_eq!(
            (e.code(), e.param(), e.event_id()),
            (ProtocolErrorCode::InvalidValue, Some("audio"), Some("a2"))
        );
        let e = reject(d, json!({"type": "input_audio_buffer.append"}));
        assert_eq!(
            (e.code(), e.param()),
            (ProtocolErrorCode::MissingRequiredParameter, Some("audio"))
        );
    }
}

#[test]
fn ga_items_decode_per_role_with_ga_content_types() {
    let (position, item) = item_create(
        GA,
        json!({"type": "conversation.item.create", "previous_item_id": "root", "item": {
        "type": "message", "role": "user", "content": [
            {"type": "input_text", "text": "What is the weather?"},
            {"type": "input_audio", "audio": "AAAA", "transcript": null},
            {"type": "input_image", "image_url": "data:image/png;base64,AAAA", "detail": "low"}
        ]}}),
    );
    assert_eq!(position, ItemPosition::Root);
    assert_eq!(
        item,
        ItemInput {
            id: None,
            status: None,
            kind: ItemKind::Message {
                role: Role::User,
                content: vec![
                    ContentPart::InputText {
                        text: "What is the weather?".into()
                    },
                    ContentPart::InputAudio {
                        audio: Some(AudioBytes::from(vec![0u8, 0, 0])),
                        transcript: None
                    },
                    ContentPart::InputImage {
                        image_url: "data:image/png;base64,AAAA".into(),
                        detail: ImageDetail::Low
                    },
                ],
            },
        }
    );
    let (position, item) = item_create(
        GA,
        json!({"type": "conversation.item.create", "previous_item_id": "item_7", "item": {
            "id": "item_mine", "type": "message", "role": "assistant", "status": "completed",
            "content": [{"type": "output_text", "text": "Sunny."}]}}),
    );
    assert_eq!(position, ItemPosition::After("item_7".into()));
    assert_eq!(item.id.as_deref(), Some("item_mine"));
    assert_eq!(item.status, Some(ItemStatus::Completed));
    assert_eq!(
        item.kind,
        ItemKind::Message {
            role: Role::Assistant,
            content: vec![ContentPart::Text {
                text: "Sunny.".into()
            }]
        }
    );
    let (_, item) = item_create(
        GA,
        json!({"type": "conversation.item.create", "item": {"type": "function_call_output", "call_id": "call_1", "output": "{\"temp\":21}"}}),
    );
    assert_eq!(
        item.kind,
        ItemKind::FunctionCallOutput {
            call_id: "call_1".into(),
            output: "{\"temp\":21}".into()
        }
    );
    let (position, item) = item_create(
        GA,
        json!({"type": "conversation.item.create", "item": {"type": "function_call", "name": "f", "arguments": "{}"}}),
    );
    assert_eq!(position, ItemPosition::End);
    assert_eq!(
        item.kind,
        ItemKind::FunctionCall {
            call_id: None,
            name: "f".into(),
            arguments: "{}".into()
        }
    );
}

#[test]
fn content_types_must_match_role_and_dialect() {
    // Beta names on GA, GA names on beta, and user content on the assistant are all refused.
    let cases = [
        (
            GA,
            json!({"type": "message", "role": "assistant", "content": [{"type": "text", "text": "x"}]}),
        ),
        (
            BETA,
            json!({"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "x"}]}),
        ),
        (
            GA,
            json!({"type": "message", "role": "assistant", "content": [{"type": "input_text", "text": "x"}]}),
        ),
        (
            GA,
            json!({"type": "message", "role": "system", "content": [{"type": "input_audio"}]}),
        ),
    ];
    for (d, item) in cases {
        let e = reject(
            d,
            json!({"type": "conversation.item.create", "event_id": "c1", "item": item}),
        );
        assert_eq!(e.code(), ProtocolErrorCode::InvalidValue, "{item}");
        assert_eq!(e.param(), Some("item.content[0].type"));
        assert_eq!(e.event_id(), Some("c1"));
    }
    let e = reject(
        GA,
        json!({"type": "conversation.item.create", "item": {"type": "mcp_call", "id": "x"}}),
    );
    assert_eq!(
        (e.code(), e.param()),
        (ProtocolErrorCode::InvalidValue, Some("item.type"))
    );
    let e = reject(
        GA,
        json!({"type": "conversation.item.create", "item": {"type": "message", "role": "user"}}),
    );
    assert_eq!(
        (e.code(), e.param()),
        (ProtocolErrorCode::MissingRequiredParameter, Some("item.content"))
    );
    let e = reject(
        GA,
        json!({"type": "conversation.item.create", "item": {"type": "function_call_output", "call_id": "c"}}),
    );
    assert_eq!(e.param(), Some("item.output"));
}

#[test]
fn beta_items_use_beta_content_types_and_loose_fields() {
    let (_, item) = item_create(
        BETA,
        json!({"type": "conversation.item.create", "item": {"type": "message", "role": "assistant", "content": [
            {"type": "text", "text": "Hello"}, {"type": "audio", "transcript": "Hello"}]}}),
    );
    assert_eq!(
        item.kind,
        ItemKind::Message {
            role: Role::Assistant,
            content: vec![
                ContentPart::Text { text: "Hello".into() },
                ContentPart::Audio {
                    audio: None,
                    transcript: Some("Hello".into())
                },
            ],
        }
    );
    // Beta types make content and arguments optional.
    let (_, item) = item_create(
        BETA,
        json!({"type": "conversation.item.create", "item": {"type": "message", "role": "system"}}),
    );
    assert_eq!(
        item.kind,
        ItemKind::Message {
            role: Role::System,
            content: vec![]
        }
    );
    let (_, item) = item_create(
        BETA,
        json!({"type": "conversation.item.create", "item": {"type": "function_call", "name": "f"}}),
    );
    assert_eq!(
        item.kind,
        ItemKind::FunctionCall {
            call_id: None,
            name: "f".into(),
            arguments: String::new()
        }
    );
}

#[test]
fn item_retrieve_truncate_delete_decode_in_both_dialects() {
    for d in [GA, BETA] {
        assert_eq!(
            kind(
                d,
                json!({"type": "conversation.item.retrieve", "item_id": "item_1"})
            ),
            ClientEventKind::ConversationItemRetrieve {
                item_id: "item_1".into()
            }
        );
        assert_eq!(
            kind(
                d,
                json!({"type": "conversation.item.truncate", "item_id": "item_2", "content_index": 0, "audio_end_ms": 1500})
            ),
            ClientEventKind::ConversationItemTruncate {
                item_id: "item_2".into(),
                content_index: 0,
                audio_end_ms: 1500
            }
        );
        // Python apps often compute milliseconds as floats; whole ones are accepted.
        assert_eq!(
            kind(
                d,
                json!({"type": "conversation.item.truncate", "item_id": "i", "content_index": 0, "audio_end_ms": 1500.0})
            ),
            ClientEventKind::ConversationItemTruncate {
                item_id: "i".into(),
                content_index: 0,
                audio_end_ms: 1500
            }
        );
        assert_eq!(
            kind(
                d,
                json!({"type": "conversation.item.delete", "item_id": "item_3"})
            ),
            ClientEventKind::ConversationItemDelete {
                item_id: "item_3".into()
            }
        );
        let e = reject(
            d,
            json!({"type": "conversation.item.truncate", "item_id": "i", "content_index": 0, "audio_end_ms": -5}),
        );
        assert_eq!(
            (e.code(), e.param()),
            (ProtocolErrorCode::InvalidValue, Some("audio_end_ms"))
        );
        let e = reject(d, json!({"type": "conversation.item.delete", "event_id": "d1"}));
        assert_eq!(
            (e.code(), e.param(), e.event_id()),
            (
                ProtocolErrorCode::MissingRequiredParameter,
                Some("item_id"),
                Some("d1")
            )
        );
    }
}

#[test]
fn response_create_and_cancel_decode_per_dialect() {
    for d in [GA, BETA] {
        assert_eq!(
            response_create(d, json!({"type": "response.create"})),
            ResponseParams::default()
        );
        assert_eq!(
            response_create(d, json!({"type": "response.create", "response": null})),
            ResponseParams::default()
        );
        assert_eq!(
            kind(d, json!({"type": "response.cancel"})),
            ClientEventKind::ResponseCancel { response_id: None }
        );
        assert_eq!(
            kind(d, json!({"type": "response.cancel", "response_id": "resp_1"})),
            ClientEventKind::ResponseCancel {
                response_id: Some("resp_1".into())
            }
        );
    }
    let ga = response_create(
        GA,
        json!({"type": "response.create", "response": {
            "conversation": "none",
            "output_modalities": ["text"],
            "instructions": "Summarise.",
            "audio": {"output": {"voice": "marin", "format": {"type": "audio/pcma"}}},
            "max_output_tokens": 200,
            "metadata": {"topic": "summary"},
            "tool_choice": "none",
            "parallel_tool_calls": true,
            "input": [{"type": "item_reference", "id": "item_1"},
                      {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Go"}]}]
        }}),
    );
    assert_eq!(
        ga,
        ResponseParams {
            conversation: ConversationMode::None,
            input: Some(vec![
                ResponseInput::Reference { id: "item_1".into() },
                ResponseInput::Item(ItemInput {
                    id: None,
                    status: None,
                    kind: ItemKind::Message {
                        role: Role::User,
                        content: vec![ContentPart::InputText { text: "Go".into() }]
                    },
                }),
            ]),
            instructions: Some("Summarise.".into()),
            output_modalities: Some(OutputModalities::Text),
            voice: Some(Voice::Named("marin".into())),
            output_format: Some(AudioFormat::G711Alaw),
            tool_choice: Some(ToolChoice::None),
            max_output_tokens: Some(MaxOutputTokens::Limit(200)),
            metadata: Some([("topic".to_owned(), "summary".to_owned())].into()),
            parallel_tool_calls: Some(true),
            ..ResponseParams::default()
        }
    );
    let beta = response_create(
        BETA,
        json!({"type": "response.create", "response": {
            "modalities": ["text", "audio"], "voice": "verse", "output_audio_format": "g711_ulaw",
            "temperature": 0.9, "max_response_output_tokens": "inf", "conversation": "auto"
        }}),
    );
    assert_eq!(
        beta,
        ResponseParams {
            output_modalities: Some(OutputModalities::Audio),
            voice: Some(Voice::Named("verse".into())),
            output_format: Some(AudioFormat::G711Ulaw),
            temperature: Some(0.9),
            max_output_tokens: Some(MaxOutputTokens::Inf),
            ..ResponseParams::default()
        }
    );
    // The OpenAPI document's spelling of the beta cap is accepted too.
    let beta = response_create(
        BETA,
        json!({"type": "response.create", "response": {"max_output_tokens": 10}}),
    );
    assert_eq!(beta.max_output_tokens, Some(MaxOutputTokens::Limit(10)));
    let e = reject(
        BETA,
        json!({"type": "response.create", "response": {"conversation": "conv_1"}}),
    );
    assert_eq!(e.param(), Some("response.conversation"));
    let too_many: serde_json::Map<String, Value> = (0..17).map(|i| (format!("k{i}"), json!("v"))).collect();
    let e = reject(
        GA,
        json!({"type": "response.create", "response": {"metadata": too_many}}),
    );
    assert_eq!(
        (e.code(), e.param()),
        (ProtocolErrorCode::InvalidValue, Some("response.metadata"))
    );
    let e = reject(
        GA,
        json!({"type": "response.create", "response": {"metadata": {"k": "v".repeat(513)}}}),
    );
    assert_eq!(e.param(), Some("response.metadata.k"));
}

#[test]
fn every_client_event_type_of_each_dialect_decodes() {
    let minimal = |t: &str, d: Dialect| -> Value {
        match t {
            "session.update" if d == GA => json!({"type": t, "session": {"type": "realtime"}}),
            "session.update" | "transcription_session.update" => json!({"type": t, "session": {}}),
            "input_audio_buffer.append" => json!({"type": t, "audio": ""}),
            "conversation.item.create" => {
                json!({"type": t, "item": {"type": "function_call_output", "call_id": "c", "output": "o"}})
            }
            "conversation.item.retrieve" | "conversation.item.delete" => json!({"type": t, "item_id": "i"}),
            "conversation.item.truncate" => {
                json!({"type": t, "item_id": "i", "content_index": 0, "audio_end_ms": 0})
            }
            _ => json!({"type": t}),
        }
    };
    assert_eq!(client_event_types(GA).len(), 11);
    assert_eq!(client_event_types(BETA).len(), 12);
    for d in [GA, BETA] {
        for t in client_event_types(d) {
            let event = decode(d, minimal(t, d));
            assert_eq!(event.kind.type_name(d), Some(*t), "{d} {t}");
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Errors

#[test]
fn bad_frames_become_invalid_request_errors_that_name_the_event() {
    let e = decode_client(GA, "{not json").unwrap_err();
    assert_eq!((e.code(), e.event_id()), (ProtocolErrorCode::InvalidJson, None));
    let e = decode_client(GA, "[1,2]").unwrap_err();
    assert_eq!(e.code(), ProtocolErrorCode::InvalidEvent);
    let e = decode_client(BETA, r#"{"event_id":"evt_42","type":"response.explode"}"#).unwrap_err();
    assert_eq!(
        (e.code(), e.param(), e.event_id()),
        (ProtocolErrorCode::UnknownEvent, Some("type"), Some("evt_42"))
    );
    let e = decode_client(GA, r#"{"event_id":"evt_43"}"#).unwrap_err();
    assert_eq!(
        (e.code(), e.param(), e.event_id()),
        (
            ProtocolErrorCode::MissingRequiredParameter,
            Some("type"),
            Some("evt_43")
        )
    );
    let e = decode_client(GA, r#"{"type":7}"#).unwrap_err();
    assert_eq!(
        (e.code(), e.param()),
        (ProtocolErrorCode::InvalidType, Some("type"))
    );
    let long_id = "e".repeat(513);
    let e = decode(
        GA,
        json!({"type": "input_audio_buffer.clear", "event_id": "e".repeat(512)}),
    );
    assert_eq!(e.event_id.map(|s| s.len()), Some(512));
    let e = reject(
        GA,
        json!({"type": "input_audio_buffer.clear", "event_id": long_id}),
    );
    assert_eq!(
        (e.code(), e.param(), e.event_id()),
        (ProtocolErrorCode::InvalidEvent, Some("event_id"), None)
    );
    // A huge unknown type is not echoed whole.
    let e = reject(GA, json!({"type": "x".repeat(100_000)}));
    assert!(e.message().len() < 200, "{}", e.message());
}

#[test]
fn protocol_errors_encode_as_error_events_in_both_dialects() {
    let e = reject(BETA, json!({"type": "nope", "event_id": "evt_7"}));
    for d in [GA, BETA] {
        let v = encode_server_value(d, EVENT_ID, &e.clone().into_event()).unwrap();
        assert_eq!(
            v,
            json!({
                "type": "error",
                "event_id": EVENT_ID,
                "error": {
                    "type": "invalid_request_error",
                    "code": "unknown_event",
                    "message": "Unknown event type: 'nope'.",
                    "param": "type",
                    "event_id": "evt_7"
                }
            })
        );
    }
    let v = encode_server_value(
        GA,
        EVENT_ID,
        &ServerEvent::Error {
            error: ErrorObject::server_error("Try again."),
        },
    )
    .unwrap();
    assert_eq!(
        v["error"],
        json!({"type": "server_error", "code": null, "message": "Try again.", "param": null, "event_id": null})
    );
}

#[test]
fn config_errors_map_to_dialect_params() {
    let mut c = SessionConfig::new(SessionKind::Realtime, "m");
    for (d, param) in [(GA, "session.audio.output.voice"), (BETA, "session.voice")] {
        let err = c
            .apply(
                SessionUpdate {
                    voice: Some(Voice::Named("ash".into())),
                    ..Default::default()
                },
                UpdateLocks { voice: true },
            )
            .unwrap_err();
        let e = err.into_protocol_error(d, Some("evt_v".into()));
        assert_eq!(
            (e.code(), e.param(), e.event_id()),
            (ProtocolErrorCode::InvalidValue, Some(param), Some("evt_v"))
        );
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Server events

fn part_ref() -> PartRef {
    PartRef {
        response_id: "resp_1".into(),
        item_id: "item_1".into(),
        output_index: 0,
        content_index: 1,
    }
}

fn output_ref() -> OutputRef {
    OutputRef {
        response_id: "resp_1".into(),
        item_id: "item_2".into(),
        output_index: 1,
    }
}

fn assistant_item() -> Item {
    Item {
        id: "item_1".into(),
        status: ItemStatus::InProgress,
        kind: ItemKind::Message {
            role: Role::Assistant,
            content: vec![
                ContentPart::Text { text: "Hi".into() },
                ContentPart::Audio {
                    audio: None,
                    transcript: Some("Hi there".into()),
                },
            ],
        },
    }
}

fn assistant_item_json(d: Dialect) -> Value {
    let (text, audio) = if d == GA {
        ("output_text", "output_audio")
    } else {
        ("text", "audio")
    };
    json!({"id": "item_1", "object": "realtime.item", "type": "message", "status": "in_progress", "role": "assistant",
           "content": [{"type": text, "text": "Hi"}, {"type": audio, "transcript": "Hi there"}]})
}

fn user_item() -> Item {
    Item::message(
        "item_0",
        Role::User,
        vec![
            ContentPart::InputAudio {
                audio: Some(AudioBytes::from(vec![0u8, 0, 0])),
                transcript: None,
            },
            ContentPart::InputText { text: "hey".into() },
        ],
    )
}

fn user_item_json() -> Value {
    json!({"id": "item_0", "object": "realtime.item", "type": "message", "status": "completed", "role": "user",
           "content": [{"type": "input_audio", "audio": "AAAA", "transcript": null}, {"type": "input_text", "text": "hey"}]})
}

fn response(status: ResponseStatus) -> Response {
    let mut config = SessionConfig::new(SessionKind::Realtime, "gpt-realtime");
    config.max_output_tokens = MaxOutputTokens::Limit(500);
    let mut r = Response::start(
        "resp_1",
        Some("conv_1".into()),
        &config,
        &ResponseParams::default(),
    );
    r.status = status;
    if status != ResponseStatus::InProgress {
        r.status_details = Some(StatusDetails {
            reason: Some(StatusReason::TurnDetected),
            error: Some(StatusError {
                kind: "server_error".into(),
                code: Some("boom".into()),
            }),
        });
        r.output = vec![assistant_item().without_audio()];
        r.usage = Some(Usage {
            total_tokens: 30,
            input_tokens: 10,
            output_tokens: 20,
            input_token_details: InputTokenDetails {
                text_tokens: 4,
                audio_tokens: 6,
                cached_tokens: 2,
                image_tokens: 0,
                cached_tokens_details: CachedTokenDetails {
                    text_tokens: 1,
                    audio_tokens: 1,
                    image_tokens: 0,
                },
            },
            output_token_details: OutputTokenDetails {
                text_tokens: 5,
                audio_tokens: 15,
            },
        });
        r.metadata = Some([("k".to_owned(), "v".to_owned())].into());
    }
    r
}

fn response_json(d: Dialect, status: ResponseStatus) -> Value {
    let done = status != ResponseStatus::InProgress;
    let mut v = json!({
        "id": "resp_1", "object": "realtime.response", "status": status.as_str(),
        "status_details": null, "output": [], "conversation_id": "conv_1", "metadata": null, "usage": null,
        "max_output_tokens": 500,
    });
    if done {
        v["status_details"] = json!({"type": status.as_str(), "reason": "turn_detected",
                                     "error": {"type": "server_error", "code": "boom"}});
        v["output"] = json!([assistant_item_json(d)]);
        v["metadata"] = json!({"k": "v"});
        let mut input = json!({"text_tokens": 4, "audio_tokens": 6, "cached_tokens": 2});
        if d == GA {
            input["image_tokens"] = json!(0);
            input["cached_tokens_details"] = json!({"text_tokens": 1, "audio_tokens": 1, "image_tokens": 0});
        }
        v["usage"] = json!({"total_tokens": 30, "input_tokens": 10, "output_tokens": 20, "input_token_details": input,
                            "output_token_details": {"text_tokens": 5, "audio_tokens": 15}});
    }
    if d == GA {
        v["output_modalities"] = json!(["audio"]);
        v["audio"] = json!({"output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "alloy"}});
    } else {
        v["modalities"] = json!(["text", "audio"]);
        v["voice"] = json!("alloy");
        v["output_audio_format"] = json!("pcm16");
        v["temperature"] = json!(0.8);
    }
    v
}

fn session(kind: SessionKind) -> SessionObject {
    let mut config = SessionConfig::new(kind, "gpt-realtime");
    if kind == SessionKind::Realtime {
        config.instructions = "Be kind.".into();
        config.tools = vec![FunctionTool {
            name: "f".into(),
            description: Some("d".into()),
            parameters: Some(json!({"type": "object"})),
        }];
        config.input_transcription = Some(TranscriptionConfig {
            model: Some("whisper-1".into()),
            ..Default::default()
        });
    }
    SessionObject {
        id: "sess_1".into(),
        expires_at: Some(1_700_000_000),
        config,
    }
}

fn session_json(d: Dialect, kind: SessionKind) -> Value {
    let vad = |ga: bool| {
        let mut v = json!({"type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300, "silence_duration_ms": 500,
                           "create_response": true, "interrupt_response": true});
        if ga {
            v["idle_timeout_ms"] = Value::Null;
        }
        v
    };
    match (d, kind) {
        (Dialect::Ga, SessionKind::Realtime) => json!({
            "type": "realtime", "object": "realtime.session", "id": "sess_1", "expires_at": 1_700_000_000,
            "model": "gpt-realtime", "output_modalities": ["audio"], "instructions": "Be kind.",
            "audio": {
                "input": {"format": {"type": "audio/pcm", "rate": 24000}, "transcription": {"model": "whisper-1"},
                          "noise_reduction": null, "turn_detection": vad(true)},
                "output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "alloy", "speed": 1.0}
            },
            "include": null,
            "tools": [{"type": "function", "name": "f", "description": "d", "parameters": {"type": "object"}}],
            "tool_choice": "auto", "max_output_tokens": "inf", "tracing": null, "truncation": "auto", "prompt": null
        }),
        (Dialect::Ga, SessionKind::Transcription) => json!({
            "type": "transcription", "object": "realtime.transcription_session", "id": "sess_1", "expires_at": 1_700_000_000,
            "audio": {"input": {"format": {"type": "audio/pcm", "rate": 24000}, "transcription": {},
                                "noise_reduction": null, "turn_detection": vad(true)}},
            "include": null
        }),
        (Dialect::Beta, SessionKind::Realtime) => json!({
            "id": "sess_1", "object": "realtime.session", "expires_at": 1_700_000_000, "model": "gpt-realtime",
            "modalities": ["text", "audio"], "instructions": "Be kind.", "voice": "alloy", "speed": 1.0,
            "input_audio_format": "pcm16", "output_audio_format": "pcm16",
            "input_audio_transcription": {"model": "whisper-1"}, "input_audio_noise_reduction": null,
            "turn_detection": vad(false),
            "tools": [{"type": "function", "name": "f", "description": "d", "parameters": {"type": "object"}}],
            "tool_choice": "auto", "temperature": 0.8, "max_response_output_tokens": "inf", "tracing": null
        }),
        (Dialect::Beta, SessionKind::Transcription) => json!({
            "id": "sess_1", "object": "realtime.transcription_session", "expires_at": 1_700_000_000,
            "modalities": ["text"], "input_audio_format": "pcm16", "input_audio_transcription": {},
            "input_audio_noise_reduction": null, "turn_detection": vad(false), "include": null
        }),
    }
}

/// (event, GA type, beta type, GA body, beta body); bodies exclude `type` and `event_id`.
type Fixture = (
    ServerEvent,
    Option<&'static str>,
    Option<&'static str>,
    Value,
    Value,
);

fn server_fixtures() -> Vec<Fixture> {
    let same = |v: Value| (v.clone(), v);
    let pr = json!({"response_id": "resp_1", "item_id": "item_1", "output_index": 0, "content_index": 1});
    let with = |base: &Value, extra: Value| {
        let mut v = base.clone();
        if let (Some(m), Some(e)) = (v.as_object_mut(), extra.as_object()) {
            m.extend(e.clone());
        }
        v
    };
    let or = json!({"response_id": "resp_1", "item_id": "item_2", "output_index": 1});
    let mut f: Vec<Fixture> = Vec::new();
    let mut push =
        |e: ServerEvent, ga: Option<&'static str>, beta: Option<&'static str>, bodies: (Value, Value)| {
            f.push((e, ga, beta, bodies.0, bodies.1));
        };
    for kind in [SessionKind::Realtime, SessionKind::Transcription] {
        let (created_beta, updated_beta) = if kind == SessionKind::Realtime {
            ("session.created", "session.updated")
        } else {
            ("transcription_session.created", "transcription_session.updated")
        };
        push(
            ServerEvent::SessionCreated {
                session: Box::new(session(kind)),
            },
            Some("session.created"),
            Some(created_beta),
            (
                json!({"session": session_json(GA, kind)}),
                json!({"session": session_json(BETA, kind)}),
            ),
        );
        push(
            ServerEvent::SessionUpdated {
                session: Box::new(session(kind)),
            },
            Some("session.updated"),
            Some(updated_beta),
            (
                json!({"session": session_json(GA, kind)}),
                json!({"session": session_json(BETA, kind)}),
            ),
        );
    }
    push(
        ServerEvent::ConversationCreated {
            conversation_id: "conv_1".into(),
        },
        Some("conversation.created"),
        Some("conversation.created"),
        same(json!({"conversation": {"id": "conv_1", "object": "realtime.conversation"}})),
    );
    push(
        ServerEvent::ConversationItemAdded {
            previous_item_id: None,
            item: user_item(),
        },
        Some("conversation.item.added"),
        Some("conversation.item.created"),
        same(json!({"previous_item_id": null, "item": user_item_json()})),
    );
    push(
        ServerEvent::ConversationItemCreated {
            previous_item_id: Some("item_0".into()),
            item: assistant_item(),
        },
        Some("conversation.item.created"),
        Some("conversation.item.created"),
        (
            json!({"previous_item_id": "item_0", "item": assistant_item_json(GA)}),
            json!({"previous_item_id": "item_0", "item": assistant_item_json(BETA)}),
        ),
    );
    push(
        ServerEvent::ConversationItemDone {
            previous_item_id: Some("item_0".into()),
            item: assistant_item(),
        },
        Some("conversation.item.done"),
        None,
        (
            json!({"previous_item_id": "item_0", "item": assistant_item_json(GA)}),
            Value::Null,
        ),
    );
    push(
        ServerEvent::ConversationItemRetrieved { item: user_item() },
        Some("conversation.item.retrieved"),
        Some("conversation.item.retrieved"),
        same(json!({"item": user_item_json()})),
    );
    push(
        ServerEvent::ConversationItemDeleted {
            item_id: "item_0".into(),
        },
        Some("conversation.item.deleted"),
        Some("conversation.item.deleted"),
        same(json!({"item_id": "item_0"})),
    );
    push(
        ServerEvent::ConversationItemTruncated {
            item_id: "item_1".into(),
            content_index: 1,
            audio_end_ms: 1200,
        },
        Some("conversation.item.truncated"),
        Some("conversation.item.truncated"),
        same(json!({"item_id": "item_1", "content_index": 1, "audio_end_ms": 1200})),
    );
    let logprobs = vec![LogProb {
        token: "hi".into(),
        logprob: -0.5,
        bytes: vec![104, 105],
    }];
    push(
        ServerEvent::InputAudioTranscriptionDelta {
            item_id: "item_0".into(),
            content_index: 0,
            delta: "he".into(),
            logprobs: Some(logprobs.clone()),
        },
        Some("conversation.item.input_audio_transcription.delta"),
        Some("conversation.item.input_audio_transcription.delta"),
        same(json!({"item_id": "item_0", "content_index": 0, "delta": "he",
                    "logprobs": [{"token": "hi", "logprob": -0.5, "bytes": [104, 105]}]})),
    );
    push(
        ServerEvent::InputAudioTranscriptionCompleted {
            item_id: "item_0".into(),
            content_index: 0,
            transcript: "hello".into(),
            usage: TranscriptionUsage::Tokens {
                input_tokens: 3,
                output_tokens: 2,
                total_tokens: 5,
                input_token_details: Some(TranscriptionTokenDetails {
                    text_tokens: 1,
                    audio_tokens: 2,
                }),
            },
            logprobs: None,
        },
        Some("conversation.item.input_audio_transcription.completed"),
        Some("conversation.item.input_audio_transcription.completed"),
        same(
            json!({"item_id": "item_0", "content_index": 0, "transcript": "hello",
                    "usage": {"type": "tokens", "input_tokens": 3, "output_tokens": 2, "total_tokens": 5,
                              "input_token_details": {"text_tokens": 1, "audio_tokens": 2}}}),
        ),
    );
    push(
        ServerEvent::InputAudioTranscriptionCompleted {
            item_id: "item_0".into(),
            content_index: 0,
            transcript: "hello".into(),
            usage: TranscriptionUsage::Duration { seconds: 1.5 },
            logprobs: None,
        },
        Some("conversation.item.input_audio_transcription.completed"),
        Some("conversation.item.input_audio_transcription.completed"),
        same(
            json!({"item_id": "item_0", "content_index": 0, "transcript": "hello",
                    "usage": {"type": "duration", "seconds": 1.5}}),
        ),
    );
    push(
        ServerEvent::InputAudioTranscriptionFailed {
            item_id: "item_0".into(),
            content_index: 0,
            error: ErrorObject::server_error("stt down"),
        },
        Some("conversation.item.input_audio_transcription.failed"),
        Some("conversation.item.input_audio_transcription.failed"),
        same(json!({"item_id": "item_0", "content_index": 0,
                    "error": {"type": "server_error", "code": null, "message": "stt down", "param": null}})),
    );
    push(
        ServerEvent::InputAudioTranscriptionSegment {
            id: "seg_1".into(),
            item_id: "item_0".into(),
            content_index: 0,
            text: "hi".into(),
            speaker: "A".into(),
            start: 0.5,
            end: 1.25,
        },
        Some("conversation.item.input_audio_transcription.segment"),
        None,
        (
            json!({"id": "seg_1", "item_id": "item_0", "content_index": 0, "text": "hi", "speaker": "A", "start": 0.5, "end": 1.25}),
            Value::Null,
        ),
    );
    push(
        ServerEvent::InputAudioBufferCommitted {
            previous_item_id: None,
            item_id: "item_0".into(),
        },
        Some("input_audio_buffer.committed"),
        Some("input_audio_buffer.committed"),
        same(json!({"previous_item_id": null, "item_id": "item_0"})),
    );
    push(
        ServerEvent::InputAudioBufferCleared,
        Some("input_audio_buffer.cleared"),
        Some("input_audio_buffer.cleared"),
        same(json!({})),
    );
    push(
        ServerEvent::InputAudioBufferSpeechStarted {
            item_id: "item_0".into(),
            audio_start_ms: 300,
        },
        Some("input_audio_buffer.speech_started"),
        Some("input_audio_buffer.speech_started"),
        same(json!({"item_id": "item_0", "audio_start_ms": 300})),
    );
    push(
        ServerEvent::InputAudioBufferSpeechStopped {
            item_id: "item_0".into(),
            audio_end_ms: 2100,
        },
        Some("input_audio_buffer.speech_stopped"),
        Some("input_audio_buffer.speech_stopped"),
        same(json!({"item_id": "item_0", "audio_end_ms": 2100})),
    );
    push(
        ServerEvent::InputAudioBufferTimeoutTriggered {
            item_id: "item_9".into(),
            audio_start_ms: 100,
            audio_end_ms: 6100,
        },
        Some("input_audio_buffer.timeout_triggered"),
        None,
        (
            json!({"item_id": "item_9", "audio_start_ms": 100, "audio_end_ms": 6100}),
            Value::Null,
        ),
    );
    for (e, name) in [
        (
            ServerEvent::OutputAudioBufferStarted {
                response_id: "resp_1".into(),
            },
            "output_audio_buffer.started",
        ),
        (
            ServerEvent::OutputAudioBufferStopped {
                response_id: "resp_1".into(),
            },
            "output_audio_buffer.stopped",
        ),
        (
            ServerEvent::OutputAudioBufferCleared {
                response_id: "resp_1".into(),
            },
            "output_audio_buffer.cleared",
        ),
    ] {
        push(e, Some(name), Some(name), same(json!({"response_id": "resp_1"})));
    }
    push(
        ServerEvent::ResponseCreated {
            response: Box::new(response(ResponseStatus::InProgress)),
        },
        Some("response.created"),
        Some("response.created"),
        (
            json!({"response": response_json(GA, ResponseStatus::InProgress)}),
            json!({"response": response_json(BETA, ResponseStatus::InProgress)}),
        ),
    );
    push(
        ServerEvent::ResponseDone {
            response: Box::new(response(ResponseStatus::Cancelled)),
        },
        Some("response.done"),
        Some("response.done"),
        (
            json!({"response": response_json(GA, ResponseStatus::Cancelled)}),
            json!({"response": response_json(BETA, ResponseStatus::Cancelled)}),
        ),
    );
    for (e, name) in [
        (
            ServerEvent::ResponseOutputItemAdded {
                response_id: "resp_1".into(),
                output_index: 0,
                item: assistant_item(),
            },
            "response.output_item.added",
        ),
        (
            ServerEvent::ResponseOutputItemDone {
                response_id: "resp_1".into(),
                output_index: 0,
                item: assistant_item(),
            },
            "response.output_item.done",
        ),
    ] {
        push(
            e,
            Some(name),
            Some(name),
            (
                json!({"response_id": "resp_1", "output_index": 0, "item": assistant_item_json(GA)}),
                json!({"response_id": "resp_1", "output_index": 0, "item": assistant_item_json(BETA)}),
            ),
        );
    }
    push(
        ServerEvent::ResponseContentPartAdded {
            at: part_ref(),
            part: ContentPart::Audio {
                audio: None,
                transcript: None,
            },
        },
        Some("response.content_part.added"),
        Some("response.content_part.added"),
        same(with(&pr, json!({"part": {"type": "audio", "transcript": ""}}))),
    );
    push(
        ServerEvent::ResponseContentPartDone {
            at: part_ref(),
            part: ContentPart::Text { text: "Hi".into() },
        },
        Some("response.content_part.done"),
        Some("response.content_part.done"),
        same(with(&pr, json!({"part": {"type": "text", "text": "Hi"}}))),
    );
    push(
        ServerEvent::ResponseTextDelta {
            at: part_ref(),
            delta: "H".into(),
        },
        Some("response.output_text.delta"),
        Some("response.text.delta"),
        same(with(&pr, json!({"delta": "H"}))),
    );
    push(
        ServerEvent::ResponseTextDone {
            at: part_ref(),
            text: "Hi".into(),
        },
        Some("response.output_text.done"),
        Some("response.text.done"),
        same(with(&pr, json!({"text": "Hi"}))),
    );
    push(
        ServerEvent::ResponseAudioDelta {
            at: part_ref(),
            audio: AudioBytes::from(vec![0u8, 0, 0]),
        },
        Some("response.output_audio.delta"),
        Some("response.audio.delta"),
        same(with(&pr, json!({"delta": "AAAA"}))),
    );
    push(
        ServerEvent::ResponseAudioDone { at: part_ref() },
        Some("response.output_audio.done"),
        Some("response.audio.done"),
        same(pr.clone()),
    );
    push(
        ServerEvent::ResponseAudioTranscriptDelta {
            at: part_ref(),
            delta: "Hi".into(),
        },
        Some("response.output_audio_transcript.delta"),
        Some("response.audio_transcript.delta"),
        same(with(&pr, json!({"delta": "Hi"}))),
    );
    push(
        ServerEvent::ResponseAudioTranscriptDone {
            at: part_ref(),
            transcript: "Hi there".into(),
        },
        Some("response.output_audio_transcript.done"),
        Some("response.audio_transcript.done"),
        same(with(&pr, json!({"transcript": "Hi there"}))),
    );
    push(
        ServerEvent::ResponseFunctionCallArgumentsDelta {
            at: output_ref(),
            call_id: "call_1".into(),
            delta: "{\"ci".into(),
        },
        Some("response.function_call_arguments.delta"),
        Some("response.function_call_arguments.delta"),
        same(with(&or, json!({"call_id": "call_1", "delta": "{\"ci"}))),
    );
    push(
        ServerEvent::ResponseFunctionCallArgumentsDone {
            at: output_ref(),
            call_id: "call_1".into(),
            name: "get_weather".into(),
            arguments: "{\"city\":\"Oslo\"}".into(),
        },
        Some("response.function_call_arguments.done"),
        Some("response.function_call_arguments.done"),
        (
            with(
                &or,
                json!({"call_id": "call_1", "name": "get_weather", "arguments": "{\"city\":\"Oslo\"}"}),
            ),
            with(
                &or,
                json!({"call_id": "call_1", "arguments": "{\"city\":\"Oslo\"}"}),
            ),
        ),
    );
    push(
        ServerEvent::ResponseMcpCallArgumentsDelta {
            at: output_ref(),
            delta: "{".into(),
            obfuscation: Some("xx".into()),
        },
        Some("response.mcp_call_arguments.delta"),
        None,
        (with(&or, json!({"delta": "{", "obfuscation": "xx"})), Value::Null),
    );
    push(
        ServerEvent::ResponseMcpCallArgumentsDone {
            at: output_ref(),
            arguments: "{}".into(),
        },
        Some("response.mcp_call_arguments.done"),
        None,
        (with(&or, json!({"arguments": "{}"})), Value::Null),
    );
    for (e, name) in [
        (
            ServerEvent::ResponseMcpCallInProgress {
                item_id: "item_2".into(),
                output_index: 1,
            },
            "response.mcp_call.in_progress",
        ),
        (
            ServerEvent::ResponseMcpCallCompleted {
                item_id: "item_2".into(),
                output_index: 1,
            },
            "response.mcp_call.completed",
        ),
        (
            ServerEvent::ResponseMcpCallFailed {
                item_id: "item_2".into(),
                output_index: 1,
            },
            "response.mcp_call.failed",
        ),
    ] {
        push(
            e,
            Some(name),
            None,
            (json!({"item_id": "item_2", "output_index": 1}), Value::Null),
        );
    }
    for (e, name) in [
        (
            ServerEvent::McpListToolsInProgress {
                item_id: "item_3".into(),
            },
            "mcp_list_tools.in_progress",
        ),
        (
            ServerEvent::McpListToolsCompleted {
                item_id: "item_3".into(),
            },
            "mcp_list_tools.completed",
        ),
        (
            ServerEvent::McpListToolsFailed {
                item_id: "item_3".into(),
            },
            "mcp_list_tools.failed",
        ),
    ] {
        push(e, Some(name), None, (json!({"item_id": "item_3"}), Value::Null));
    }
    push(
        ServerEvent::RateLimitsUpdated {
            rate_limits: vec![
                RateLimit {
                    name: RateLimitName::Requests,
                    limit: 100,
                    remaining: 99,
                    reset_seconds: 0.5,
                },
                RateLimit {
                    name: RateLimitName::Tokens,
                    limit: 10_000,
                    remaining: 9_000,
                    reset_seconds: 60.0,
                },
            ],
        },
        Some("rate_limits.updated"),
        Some("rate_limits.updated"),
        same(json!({"rate_limits": [
            {"name": "requests", "limit": 100, "remaining": 99, "reset_seconds": 0.5},
            {"name": "tokens", "limit": 10_000, "remaining": 9_000, "reset_seconds": 60.0}
        ]})),
    );
    push(
        ServerEvent::Error {
            error: ErrorObject::invalid_request("invalid_value", "bad")
                .with_param("item_id")
                .with_event_id(Some("evt_1".into())),
        },
        Some("error"),
        Some("error"),
        same(
            json!({"error": {"type": "invalid_request_error", "code": "invalid_value", "message": "bad",
                              "param": "item_id", "event_id": "evt_1"}}),
        ),
    );
    f
}

fn expected(event_type: &str, body: &Value) -> Value {
    let mut v = body.clone();
    if let Some(m) = v.as_object_mut() {
        m.insert("type".into(), json!(event_type));
        m.insert("event_id".into(), json!(EVENT_ID));
    }
    v
}

#[test]
fn every_server_event_encodes_to_the_dialects_exact_json() {
    for (event, ga_type, beta_type, ga_body, beta_body) in server_fixtures() {
        for (d, t, body) in [(GA, ga_type, &ga_body), (BETA, beta_type, &beta_body)] {
            assert_eq!(event.type_name(d), t, "{event:?}");
            let got = encode_server_value(d, EVENT_ID, &event);
            match t {
                None => assert_eq!(got, None, "{d} must not send {event:?}"),
                Some(t) => assert_eq!(got, Some(expected(t, body)), "{d} {t}"),
            }
        }
    }
}

#[test]
fn dtmf_event_has_no_event_id_and_is_ga_only() {
    let e = ServerEvent::InputAudioBufferDtmfEventReceived {
        event: "5".into(),
        received_at: 1_700_000_000,
    };
    assert_eq!(
        encode_server_value(GA, EVENT_ID, &e),
        Some(
            json!({"type": "input_audio_buffer.dtmf_event_received", "event": "5", "received_at": 1_700_000_000})
        )
    );
    assert_eq!(encode_server_value(BETA, EVENT_ID, &e), None);
}

#[test]
fn server_event_names_cover_both_sdk_unions_and_never_mix() {
    // The unions of the official SDKs (reference §0: GA 46 server events, beta 34).
    const GA_UNION: [&str; 46] = [
        "conversation.created",
        "conversation.item.added",
        "conversation.item.created",
        "conversation.item.deleted",
        "conversation.item.done",
        "conversation.item.input_audio_transcription.completed",
        "conversation.item.input_audio_transcription.delta",
        "conversation.item.input_audio_transcription.failed",
        "conversation.item.input_audio_transcription.segment",
        "conversation.item.retrieved",
        "conversation.item.truncated",
        "error",
        "input_audio_buffer.cleared",
        "input_audio_buffer.committed",
        "input_audio_buffer.dtmf_event_received",
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.timeout_triggered",
        "mcp_list_tools.completed",
        "mcp_list_tools.failed",
        "mcp_list_tools.in_progress",
        "output_audio_buffer.cleared",
        "output_audio_buffer.started",
        "output_audio_buffer.stopped",
        "rate_limits.updated",
        "response.content_part.added",
        "response.content_part.done",
        "response.created",
        "response.done",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.mcp_call.completed",
        "response.mcp_call.failed",
        "response.mcp_call.in_progress",
        "response.mcp_call_arguments.delta",
        "response.mcp_call_arguments.done",
        "response.output_audio.delta",
        "response.output_audio.done",
        "response.output_audio_transcript.delta",
        "response.output_audio_transcript.done",
        "response.output_item.added",
        "response.output_item.done",
        "response.output_text.delta",
        "response.output_text.done",
        "session.created",
        "session.updated",
    ];
    const BETA_UNION: [&str; 34] = [
        "conversation.created",
        "conversation.item.created",
        "conversation.item.deleted",
        "conversation.item.input_audio_transcription.completed",
        "conversation.item.input_audio_transcription.delta",
        "conversation.item.input_audio_transcription.failed",
        "conversation.item.retrieved",
        "conversation.item.truncated",
        "error",
        "input_audio_buffer.cleared",
        "input_audio_buffer.committed",
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "output_audio_buffer.cleared",
        "output_audio_buffer.started",
        "output_audio_buffer.stopped",
        "rate_limits.updated",
        "response.audio.delta",
        "response.audio.done",
        "response.audio_transcript.delta",
        "response.audio_transcript.done",
        "response.content_part.added",
        "response.content_part.done",
        "response.created",
        "response.done",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.added",
        "response.output_item.done",
        "response.text.delta",
        "response.text.done",
        "session.created",
        "session.updated",
        "transcription_session.updated",
    ];
    let mut events: Vec<ServerEvent> = server_fixtures().into_iter().map(|f| f.0).collect();
    events.push(ServerEvent::InputAudioBufferDtmfEventReceived {
        event: "1".into(),
        received_at: 0,
    });
    let names = |d: Dialect| {
        events
            .iter()
            .filter_map(|e| e.type_name(d))
            .collect::<BTreeSet<_>>()
    };
    assert_eq!(names(GA), GA_UNION.into_iter().collect());
    // Beta adds only `transcription_session.created`, which the OpenAPI document has and the SDK union lacks.
    let mut beta_expected: BTreeSet<&str> = BETA_UNION.into_iter().collect();
    beta_expected.insert("transcription_session.created");
    assert_eq!(names(BETA), beta_expected);
    // Renamed events: no beta-only name on GA and no GA-only name on beta.
    for name in names(GA) {
        assert!(
            !name.starts_with("response.audio") && !name.starts_with("response.text."),
            "{name}"
        );
    }
    for name in names(BETA) {
        assert!(
            !name.contains("output_audio.")
                && !name.contains("output_text")
                && !name.starts_with("conversation.item.added"),
            "{name}"
        );
    }
}

#[test]
fn encode_server_mints_event_ids_and_skips_events_the_dialect_lacks() {
    let ids = SequentialIds::default();
    let frame = encode_server(BETA, &ids, &ServerEvent::InputAudioBufferCleared).unwrap();
    let v: Value = serde_json::from_str(&frame).unwrap();
    let id = v["event_id"].as_str().unwrap();
    assert!(
        id.starts_with("event_") && id.len() == "event_".len() + 22,
        "{id}"
    );
    let other = encode_server(BETA, &ids, &ServerEvent::InputAudioBufferCleared).unwrap();
    assert_ne!(frame, other);
    let done = ServerEvent::ConversationItemDone {
        previous_item_id: None,
        item: user_item(),
    };
    assert_eq!(encode_server(BETA, &ids, &done), None);
}

#[test]
fn session_updated_reports_the_full_effective_config_after_a_partial_update() {
    let mut config = SessionConfig::new(SessionKind::Realtime, "gpt-realtime");
    let u = update(
        GA,
        json!({"type": "session.update", "session": {"type": "realtime", "instructions": "Short answers."}}),
    );
    config.apply(u, UpdateLocks::default()).unwrap();
    let obj = SessionObject {
        id: "sess_1".into(),
        expires_at: None,
        config,
    };
    let v = encode_server_value(
        GA,
        EVENT_ID,
        &ServerEvent::SessionUpdated {
            session: Box::new(obj),
        },
    )
    .unwrap();
    let s = &v["session"];
    assert_eq!(s["instructions"], "Short answers.");
    assert_eq!(s["audio"]["output"]["voice"], "alloy");
    assert_eq!(s["audio"]["input"]["turn_detection"]["type"], "server_vad");
    assert_eq!(s["output_modalities"], json!(["audio"]));
    assert!(s.get("expires_at").is_none());
    assert!(
        s.get("temperature").is_none() && s.get("modalities").is_none(),
        "no beta fields on GA: {s}"
    );
}

#[test]
fn response_start_takes_overrides_over_the_session() {
    let config = SessionConfig::new(SessionKind::Realtime, "m");
    let params = ResponseParams {
        output_modalities: Some(OutputModalities::Text),
        voice: Some(Voice::Named("ash".into())),
        max_output_tokens: Some(MaxOutputTokens::Limit(9)),
        ..ResponseParams::default()
    };
    let r = Response::start("resp_1", None, &config, &params);
    assert_eq!(r.output_modalities, OutputModalities::Text);
    assert_eq!(r.voice, Voice::Named("ash".into()));
    assert_eq!(r.output_format, AudioFormat::Pcm16);
    assert_eq!(r.max_output_tokens, MaxOutputTokens::Limit(9));
    assert_eq!(r.status, ResponseStatus::InProgress);
    let v = encode_server_value(
        GA,
        EVENT_ID,
        &ServerEvent::ResponseCreated {
            response: Box::new(r),
        },
    )
    .unwrap();
    assert_eq!(v["response"]["conversation_id"], Value::Null);
    assert_eq!(v["response"]["output_modalities"], json!(["text"]));
}

// ---------------------------------------------------------------------------------------------------------------
// Handshake

#[test]
fn dialect_and_subprotocol_follow_the_observed_sdk_handshakes() {
    // Python/Node GA: Authorization header, no marker, no subprotocols.
    let h = Handshake::negotiate([], []);
    assert_eq!((h.dialect(), h.subprotocol()), (GA, None));
    // Python/Node beta: OpenAI-Beta header.
    let h = Handshake::negotiate(["realtime=v1"], []);
    assert_eq!((h.dialect(), h.subprotocol()), (BETA, None));
    // Browser-style GA: realtime + key.
    let h = Handshake::negotiate([], ["realtime", "openai-insecure-api-key.sk-abc"]);
    assert_eq!(
        (h.dialect(), h.subprotocol(), h.api_key()),
        (GA, Some("realtime"), Some("sk-abc"))
    );
    // Browser-style beta: realtime + key + beta marker, all in one header value.
    let h = Handshake::negotiate(
        [],
        ["realtime, openai-insecure-api-key.ek_1, openai-beta.realtime-v1"],
    );
    assert_eq!(
        (h.dialect(), h.subprotocol(), h.api_key()),
        (BETA, Some("realtime"), Some("ek_1"))
    );
}
