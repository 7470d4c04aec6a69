//! Proptest strategies for realtime protocol values, restricted to what one dialect can express (so that
//! encode → decode must give the value back). Floats come from decimal grids so JSON carries them exactly.

use avb_voice::realtime::protocol::{
    AudioBytes, AudioFormat, ClientEvent, ClientEventKind, ContentPart, ConversationMode, Dialect, Eagerness,
    FunctionTool, ImageDetail, Include, ItemInput, ItemKind, ItemPosition, ItemStatus, MaxOutputTokens,
    Metadata, NoiseReduction, NoiseReductionKind, OutputModalities, Prompt, ReasoningEffort, ResponseInput,
    ResponseParams, Role, SemanticVad, ServerVad, SessionConfig, SessionKind, SessionUpdate, ToolChoice,
    Tracing, TranscriptionConfig, TranscriptionDelay, Truncation, TurnDetection, Voice,
};
use proptest::collection::{btree_map, vec};
use proptest::option;
use proptest::prelude::*;
use serde_json::{Map, Value, json};

pub fn text() -> impl Strategy<Value = String> {
    prop_oneof!["[ -~]{0,16}", "\\PC{0,6}"]
}

pub fn ident() -> BoxedStrategy<String> {
    "[a-z][a-z0-9_]{0,10}".boxed()
}

fn function_name() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_-]{1,24}"
}

/// `lo..=hi` in steps of `1/scale`, exactly representable after a JSON round trip.
fn grid(lo: u32, hi: u32, scale: u32) -> impl Strategy<Value = f64> {
    (lo..=hi).prop_map(move |n| f64::from(n) / f64::from(scale))
}

fn audio_bytes() -> impl Strategy<Value = AudioBytes> {
    vec(any::<u8>(), 0..48).prop_map(AudioBytes::from)
}

/// Small JSON objects (integers, strings, booleans, nesting) for opaque fields like tool parameters.
pub fn json_object() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        text().prop_map(Value::String),
    ];
    let tree = leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(Value::Array),
            btree_map(ident(), inner, 0..4).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    });
    btree_map(ident(), tree, 0..4).prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>()))
}

fn audio_format() -> impl Strategy<Value = AudioFormat> {
    prop_oneof![
        Just(AudioFormat::Pcm16),
        Just(AudioFormat::G711Ulaw),
        Just(AudioFormat::G711Alaw)
    ]
}

fn voice(d: Dialect) -> BoxedStrategy<Voice> {
    match d {
        Dialect::Beta => ident().prop_map(Voice::Named).boxed(),
        Dialect::Ga => prop_oneof![
            ident().prop_map(Voice::Named),
            ident().prop_map(|id| Voice::Custom { id }),
        ]
        .boxed(),
    }
}

fn modalities() -> impl Strategy<Value = OutputModalities> {
    prop_oneof![Just(OutputModalities::Text), Just(OutputModalities::Audio)]
}

fn transcription(d: Dialect) -> BoxedStrategy<TranscriptionConfig> {
    let base = (option::of(ident()), option::of(ident()), option::of(text()));
    match d {
        Dialect::Beta => base
            .prop_map(|(model, language, prompt)| TranscriptionConfig {
                model,
                language,
                prompt,
                ..TranscriptionConfig::default()
            })
            .boxed(),
        Dialect::Ga => (
            base,
            vec(ident(), 0..3),
            vec(text(), 0..3),
            option::of(prop_oneof![
                Just(TranscriptionDelay::Minimal),
                Just(TranscriptionDelay::Low),
                Just(TranscriptionDelay::Medium),
                Just(TranscriptionDelay::High),
                Just(TranscriptionDelay::Xhigh),
            ]),
        )
            .prop_map(
                |((model, language, prompt), languages, keywords, delay)| TranscriptionConfig {
                    model,
                    language,
                    languages,
                    prompt,
                    keywords,
                    delay,
                },
            )
            .boxed(),
    }
}

fn noise(d: Dialect) -> BoxedStrategy<NoiseReduction> {
    let kind = option::of(prop_oneof![
        Just(NoiseReductionKind::NearField),
        Just(NoiseReductionKind::FarField)
    ]);
    match d {
        Dialect::Beta => kind
            .prop_map(|kind| NoiseReduction { kind, strength: None })
            .boxed(),
        Dialect::Ga => (kind, option::of(grid(0, 100, 100)))
            .prop_map(|(kind, strength)| NoiseReduction { kind, strength })
            .boxed(),
    }
}

fn turn_detection(d: Dialect) -> BoxedStrategy<TurnDetection> {
    let idle = match d {
        Dialect::Ga => option::of(5_000u32..=30_000).boxed(),
        Dialect::Beta => Just(None).boxed(),
    };
    let server = (
        grid(0, 100, 100),
        0u32..5_000,
        0u32..5_000,
        idle,
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(
                threshold,
                prefix_padding_ms,
                silence_duration_ms,
                idle_timeout_ms,
                create_response,
                interrupt_response,
            )| {
                TurnDetection::ServerVad(ServerVad {
                    threshold,
                    prefix_padding_ms,
                    silence_duration_ms,
                    idle_timeout_ms,
                    create_response,
                    interrupt_response,
                })
            },
        );
    let eagerness = prop_oneof![
        Just(Eagerness::Low),
        Just(Eagerness::Medium),
        Just(Eagerness::High),
        Just(Eagerness::Auto)
    ];
    let semantic = (eagerness, any::<bool>(), any::<bool>()).prop_map(
        |(eagerness, create_response, interrupt_response)| {
            TurnDetection::SemanticVad(SemanticVad {
                eagerness,
                create_response,
                interrupt_response,
            })
        },
    );
    prop_oneof![server, semantic].boxed()
}

fn tools() -> impl Strategy<Value = Vec<FunctionTool>> {
    vec(
        (function_name(), option::of(text()), option::of(json_object())).prop_map(
            |(name, description, parameters)| FunctionTool {
                name,
                description,
                parameters,
            },
        ),
        0..3,
    )
}

/// A tool choice that names one of `tools` when it names a function.
fn tool_choice_for(tools: &[FunctionTool]) -> BoxedStrategy<ToolChoice> {
    let modes = prop_oneof![
        Just(ToolChoice::Auto),
        Just(ToolChoice::None),
        Just(ToolChoice::Required)
    ];
    if tools.is_empty() {
        modes.boxed()
    } else {
        let names: Vec<String> = tools.iter().map(|t| t.name.clone()).collect();
        prop_oneof![
            modes,
            proptest::sample::select(names).prop_map(|name| ToolChoice::Function { name })
        ]
        .boxed()
    }
}

fn tool_choice() -> impl Strategy<Value = ToolChoice> {
    prop_oneof![
        Just(ToolChoice::Auto),
        Just(ToolChoice::None),
        Just(ToolChoice::Required),
        function_name().prop_map(|name| ToolChoice::Function { name }),
    ]
}

fn max_tokens() -> impl Strategy<Value = MaxOutputTokens> {
    prop_oneof![
        Just(MaxOutputTokens::Inf),
        (1u32..=4096).prop_map(MaxOutputTokens::Limit)
    ]
}

fn tracing() -> impl Strategy<Value = Tracing> {
    prop_oneof![
        Just(Tracing::Auto),
        (option::of(text()), option::of(ident()), option::of(json_object())).prop_map(
            |(workflow_name, group_id, metadata)| Tracing::Custom {
                workflow_name,
                group_id,
                metadata
            }
        ),
    ]
}

fn truncation() -> impl Strategy<Value = Truncation> {
    prop_oneof![
        Just(Truncation::Auto),
        Just(Truncation::Disabled),
        (grid(0, 100, 100), option::of(0u64..100_000)).prop_map(
            |(retention_ratio, post_instructions_token_limit)| {
                Truncation::RetentionRatio {
                    retention_ratio,
                    post_instructions_token_limit,
                }
            }
        ),
    ]
}

fn include() -> impl Strategy<Value = Vec<Include>> {
    vec(Just(Include::InputAudioTranscriptionLogprobs), 0..2)
}

fn prompt() -> impl Strategy<Value = Prompt> {
    (ident(), option::of(ident()), option::of(json_object())).prop_map(|(id, version, vars)| Prompt {
        id,
        version,
        variables: vars.and_then(|v| v.as_object().cloned()),
    })
}

fn effort() -> impl Strategy<Value = ReasoningEffort> {
    prop_oneof![
        Just(ReasoningEffort::Minimal),
        Just(ReasoningEffort::Low),
        Just(ReasoningEffort::Medium),
        Just(ReasoningEffort::High),
        Just(ReasoningEffort::Xhigh),
    ]
}

/// `Option<Option<T>>` for nullable update fields: absent, `null`, or a value.
fn patch<T: std::fmt::Debug + Clone + 'static>(s: BoxedStrategy<T>) -> BoxedStrategy<Option<Option<T>>> {
    option::of(option::of(s)).boxed()
}

/// The input-side fields shared by realtime and transcription updates.
fn input_side(d: Dialect) -> impl Strategy<Value = SessionUpdate> {
    (
        option::of(audio_format()),
        patch(transcription(d)),
        patch(noise(d)),
        patch(turn_detection(d)),
    )
        .prop_map(
            |(input_format, input_transcription, noise_reduction, turn_detection)| SessionUpdate {
                input_format,
                input_transcription,
                noise_reduction,
                turn_detection,
                ..SessionUpdate::default()
            },
        )
}

/// A session update a client of `d` can send.
pub fn session_update(d: Dialect) -> BoxedStrategy<SessionUpdate> {
    let common = (
        input_side(d),
        option::of(ident()),
        option::of(text()),
        option::of(modalities()),
        option::of(voice(d)),
        option::of(grid(25, 150, 100)),
        option::of(audio_format()),
        option::of(tools()),
        option::of(tool_choice()),
        option::of(max_tokens()),
        patch(tracing().boxed()),
    )
        .prop_map(
            |(
                base,
                model,
                instructions,
                output_modalities,
                voice,
                speed,
                output_format,
                tools,
                tool_choice,
                max,
                tracing,
            )| {
                SessionUpdate {
                    model,
                    instructions,
                    output_modalities,
                    voice,
                    speed,
                    output_format,
                    tools,
                    tool_choice,
                    max_output_tokens: max,
                    tracing,
                    ..base
                }
            },
        );
    match d {
        Dialect::Beta => {
            let realtime =
                (common, option::of(grid(60, 120, 100))).prop_map(|(u, temperature)| SessionUpdate {
                    kind: Some(SessionKind::Realtime),
                    temperature,
                    ..u
                });
            let transcription =
                (input_side(d), option::of(include())).prop_map(|(u, include)| SessionUpdate {
                    kind: Some(SessionKind::Transcription),
                    include,
                    ..u
                });
            prop_oneof![realtime, transcription].boxed()
        }
        Dialect::Ga => {
            let realtime = (
                common,
                option::of(any::<bool>()),
                option::of(truncation()),
                option::of(include()),
                patch(prompt().boxed()),
                option::of(effort()),
            )
                .prop_map(
                    |(u, parallel_tool_calls, truncation, include, prompt, reasoning)| SessionUpdate {
                        kind: Some(SessionKind::Realtime),
                        parallel_tool_calls,
                        truncation,
                        include,
                        prompt,
                        reasoning,
                        ..u
                    },
                );
            let transcription =
                (input_side(d), option::of(include())).prop_map(|(u, include)| SessionUpdate {
                    kind: Some(SessionKind::Transcription),
                    include,
                    ..u
                });
            prop_oneof![realtime, transcription].boxed()
        }
    }
}

/// A full effective config of `kind` whose every field `d` can show.
pub fn session_config(d: Dialect, kind: SessionKind) -> BoxedStrategy<SessionConfig> {
    let input = (
        audio_format(),
        option::of(transcription(d)),
        option::of(noise(d)),
        option::of(turn_detection(d)),
        include(),
    );
    if kind == SessionKind::Transcription {
        return (ident(), input)
            .prop_map(
                move |(
                    model,
                    (input_format, input_transcription, noise_reduction, turn_detection, include),
                )| {
                    SessionConfig {
                        input_format,
                        input_transcription,
                        noise_reduction,
                        turn_detection,
                        include: if d == Dialect::Ga || kind == SessionKind::Transcription {
                            include
                        } else {
                            vec![]
                        },
                        ..SessionConfig::new(kind, model)
                    }
                },
            )
            .boxed();
    }
    let ga = d == Dialect::Ga;
    let extras = (
        grid(60, 120, 100),
        option::of(any::<bool>()),
        truncation(),
        option::of(prompt()),
        option::of(effort()),
    );
    (
        ident(),
        input,
        (
            text(),
            modalities(),
            voice(d),
            grid(25, 150, 100),
            audio_format(),
            max_tokens(),
            option::of(tracing()),
        ),
        tools(),
        extras,
    )
        .prop_flat_map(move |(model, input, out, tools, extras)| {
            let choice = tool_choice_for(&tools);
            (Just((model, input, out, tools, extras)), choice)
        })
        .prop_map(move |((model, input, out, tools, extras), tool_choice)| {
            let (input_format, input_transcription, noise_reduction, turn_detection, include) = input;
            let (instructions, output_modalities, voice, speed, output_format, max_output_tokens, tracing) =
                out;
            let (temperature, parallel_tool_calls, truncation, prompt, reasoning) = extras;
            let defaults = SessionConfig::new(SessionKind::Realtime, model.clone());
            SessionConfig {
                kind: SessionKind::Realtime,
                model,
                instructions,
                output_modalities,
                voice,
                speed,
                input_format,
                output_format,
                input_transcription,
                noise_reduction,
                turn_detection,
                tools,
                tool_choice,
                parallel_tool_calls: if ga { parallel_tool_calls } else { None },
                temperature: if ga { defaults.temperature } else { temperature },
                max_output_tokens,
                tracing,
                truncation: if ga { truncation } else { defaults.truncation },
                include: if ga { include } else { vec![] },
                prompt: if ga { prompt } else { None },
                reasoning: if ga { reasoning } else { None },
            }
        })
        .boxed()
}

fn content_part(d: Dialect, role: Role) -> BoxedStrategy<ContentPart> {
    let input_text = text().prop_map(|text| ContentPart::InputText { text });
    match role {
        Role::System => input_text.boxed(),
        Role::Assistant => prop_oneof![
            text().prop_map(|text| ContentPart::Text { text }),
            (option::of(audio_bytes()), option::of(text()))
                .prop_map(|(audio, transcript)| ContentPart::Audio { audio, transcript }),
        ]
        .boxed(),
        Role::User => {
            let audio = (option::of(audio_bytes()), option::of(text()))
                .prop_map(|(audio, transcript)| ContentPart::InputAudio { audio, transcript });
            match d {
                Dialect::Ga => prop_oneof![
                    input_text,
                    audio,
                    (
                        "data:image/png;base64,[A-Za-z0-9]{0,12}",
                        prop_oneof![
                            Just(ImageDetail::Auto),
                            Just(ImageDetail::Low),
                            Just(ImageDetail::High)
                        ]
                    )
                        .prop_map(|(image_url, detail)| ContentPart::InputImage { image_url, detail }),
                ]
                .boxed(),
                Dialect::Beta => prop_oneof![
                    input_text,
                    audio,
                    ident().prop_map(|id| ContentPart::ItemReference { id })
                ]
                .boxed(),
            }
        }
    }
}

pub fn item_input(d: Dialect) -> BoxedStrategy<ItemInput> {
    let status = option::of(prop_oneof![
        Just(ItemStatus::Completed),
        Just(ItemStatus::Incomplete),
        Just(ItemStatus::InProgress)
    ]);
    let message =
        prop_oneof![Just(Role::User), Just(Role::Assistant), Just(Role::System)].prop_flat_map(move |role| {
            vec(content_part(d, role), 0..3).prop_map(move |content| ItemKind::Message { role, content })
        });
    let call =
        (option::of(ident()), text(), text()).prop_map(|(call_id, name, arguments)| ItemKind::FunctionCall {
            call_id,
            name,
            arguments,
        });
    let output =
        (ident(), text()).prop_map(|(call_id, output)| ItemKind::FunctionCallOutput { call_id, output });
    (option::of(ident()), status, prop_oneof![message, call, output])
        .prop_map(|(id, status, kind)| ItemInput { id, status, kind })
        .boxed()
}

fn metadata() -> impl Strategy<Value = Metadata> {
    btree_map("[a-z0-9_]{1,20}", text(), 0..5)
}

pub fn response_params(d: Dialect) -> BoxedStrategy<ResponseParams> {
    let input = option::of(vec(
        prop_oneof![
            item_input(d).prop_map(ResponseInput::Item),
            ident().prop_map(|id| ResponseInput::Reference { id })
        ],
        0..3,
    ));
    let common = (
        prop_oneof![Just(ConversationMode::Auto), Just(ConversationMode::None)],
        input,
        option::of(text()),
        option::of(modalities()),
        option::of(voice(d)),
        option::of(audio_format()),
        option::of(tools()),
        option::of(tool_choice()),
        option::of(max_tokens()),
        option::of(metadata()),
    )
        .prop_map(
            |(
                conversation,
                input,
                instructions,
                output_modalities,
                voice,
                output_format,
                tools,
                tool_choice,
                max,
                metadata,
            )| {
                ResponseParams {
                    conversation,
                    input,
                    instructions,
                    output_modalities,
                    voice,
                    output_format,
                    tools,
                    tool_choice,
                    max_output_tokens: max,
                    metadata,
                    ..ResponseParams::default()
                }
            },
        );
    match d {
        Dialect::Beta => (common, option::of(grid(60, 120, 100)))
            .prop_map(|(p, temperature)| ResponseParams { temperature, ..p })
            .boxed(),
        Dialect::Ga => (
            common,
            option::of(any::<bool>()),
            option::of(effort()),
            option::of(prompt()),
        )
            .prop_map(|(p, parallel_tool_calls, reasoning, prompt)| ResponseParams {
                parallel_tool_calls,
                reasoning,
                prompt,
                ..p
            })
            .boxed(),
    }
}

fn position() -> impl Strategy<Value = ItemPosition> {
    prop_oneof![
        Just(ItemPosition::End),
        Just(ItemPosition::Root),
        ident().prop_map(ItemPosition::After)
    ]
}

/// Any client event a client of `d` can send.
pub fn client_event(d: Dialect) -> BoxedStrategy<ClientEvent> {
    let kind = prop_oneof![
        session_update(d).prop_map(|u| ClientEventKind::SessionUpdate(Box::new(u))),
        vec(any::<u8>(), 0..64).prop_map(|audio| ClientEventKind::InputAudioBufferAppend { audio }),
        Just(ClientEventKind::InputAudioBufferCommit),
        Just(ClientEventKind::InputAudioBufferClear),
        Just(ClientEventKind::OutputAudioBufferClear),
        (position(), item_input(d))
            .prop_map(|(position, item)| ClientEventKind::ConversationItemCreate { position, item }),
        ident().prop_map(|item_id| ClientEventKind::ConversationItemRetrieve { item_id }),
        (ident(), any::<u32>(), any::<u64>()).prop_map(|(item_id, content_index, audio_end_ms)| {
            ClientEventKind::ConversationItemTruncate {
                item_id,
                content_index,
                audio_end_ms,
            }
        }),
        ident().prop_map(|item_id| ClientEventKind::ConversationItemDelete { item_id }),
        response_params(d).prop_map(|p| ClientEventKind::ResponseCreate(Box::new(p))),
        option::of(ident()).prop_map(|response_id| ClientEventKind::ResponseCancel { response_id }),
    ];
    (option::of("evt_[A-Za-z0-9]{1,20}"), kind)
        .prop_map(|(event_id, kind)| ClientEvent { event_id, kind })
        .boxed()
}

pub fn dialect() -> impl Strategy<Value = Dialect> {
    prop_oneof![Just(Dialect::Ga), Just(Dialect::Beta)]
}
