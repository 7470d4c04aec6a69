//! Fuzzing the client event parser (issue 6: "no panic on any input"): arbitrary text, arbitrary JSON, and valid
//! events mutated (subtrees replaced, keys dropped, deep nesting, huge numbers, wrong types, text cut or spliced).
//! Every outcome must be a value or a `ProtocolError`, and errors must name the event's `event_id` when it had a
//! readable one. Appends of 15 MiB must be accepted.

use crate::realtime_strategies::{client_event, dialect};
use avb_voice::realtime::protocol::{
    ClientEventKind, Dialect, ProtocolErrorCode, client_event_types, decode_client, encode_client_value,
    encode_server_value,
};
use base64::Engine as _;
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use serde_json::{Value, json};

const KEYS: &[&str] = &[
    "type",
    "event_id",
    "session",
    "audio",
    "input",
    "output",
    "format",
    "rate",
    "item",
    "content",
    "role",
    "text",
    "transcript",
    "item_id",
    "content_index",
    "audio_end_ms",
    "previous_item_id",
    "response",
    "response_id",
    "tools",
    "name",
    "parameters",
    "tool_choice",
    "turn_detection",
    "threshold",
    "voice",
    "id",
    "metadata",
    "modalities",
    "output_modalities",
    "max_output_tokens",
    "max_response_output_tokens",
    "temperature",
    "tracing",
    "truncation",
    "include",
    "prompt",
    "transcription",
    "noise_reduction",
    "call_id",
    "arguments",
];

const WORDS: &[&str] = &[
    "realtime",
    "transcription",
    "message",
    "function_call",
    "function_call_output",
    "item_reference",
    "user",
    "assistant",
    "system",
    "input_text",
    "input_audio",
    "output_text",
    "output_audio",
    "text",
    "audio",
    "server_vad",
    "semantic_vad",
    "audio/pcm",
    "audio/pcmu",
    "pcm16",
    "g711_ulaw",
    "inf",
    "auto",
    "none",
    "root",
    "function",
    "retention_ratio",
    "",
];

/// Awkward numbers: extremes of every JSON number representation.
fn nasty_number() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!(u64::MAX)),
        Just(json!(i64::MIN)),
        Just(json!(f64::MAX)),
        Just(json!(-f64::MAX)),
        Just(json!(f64::MIN_POSITIVE)),
        Just(json!(-0.0)),
        Just(json!(1e-300)),
        Just(json!(4_294_967_296u64)),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |x| x.is_finite())
            .prop_map(|x| json!(x)),
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::sample::select(KEYS).prop_map(str::to_owned),
        "[a-z_]{0,8}"
    ]
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        nasty_number(),
        proptest::sample::select(WORDS).prop_map(|w| json!(w)),
        proptest::sample::select(client_event_types(Dialect::Beta)).prop_map(|w| json!(w)),
        "\\PC{0,12}".prop_map(Value::String),
        "[A-Za-z0-9+/=]{0,16}".prop_map(Value::String),
    ]
}

fn arb_json() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(6, 64, 6, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(Value::Array),
            btree_map(key(), inner, 0..6).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// An object that looks like a client event: a known `type` and arbitrary other fields.
fn event_like() -> impl Strategy<Value = Value> {
    (
        proptest::sample::select(client_event_types(Dialect::Beta)),
        proptest::option::of(leaf()),
        btree_map(key(), arb_json(), 0..6),
    )
        .prop_map(|(t, event_id, fields)| {
            let mut m: serde_json::Map<String, Value> = fields.into_iter().collect();
            m.insert("type".into(), json!(t));
            if let Some(id) = event_id {
                m.insert("event_id".into(), id);
            }
            Value::Object(m)
        })
}

#[derive(Debug, Clone)]
enum Mutation {
    Replace(Value),
    Remove,
    Nest(usize),
    Stringify,
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        arb_json().prop_map(Mutation::Replace),
        nasty_number().prop_map(Mutation::Replace),
        Just(Mutation::Remove),
        (1usize..120).prop_map(Mutation::Nest),
        Just(Mutation::Stringify),
    ]
}

fn count_nodes(v: &Value) -> usize {
    1 + match v {
        Value::Array(items) => items.iter().map(count_nodes).sum(),
        Value::Object(map) => map.values().map(count_nodes).sum(),
        _ => 0,
    }
}

/// Applies `m` to the `target`-th node below the root (pre-order); returns whether it applied.
fn mutate_at(v: &mut Value, target: &mut usize, m: &Mutation) -> bool {
    let children: Vec<String> = match v {
        Value::Object(map) => map.keys().cloned().collect(),
        _ => Vec::new(),
    };
    match v {
        Value::Object(map) => {
            for k in children {
                if *target == 0 {
                    apply(map, &k, m);
                    return true;
                }
                *target -= 1;
                if let Some(child) = map.get_mut(&k)
                    && mutate_at(child, target, m)
                {
                    return true;
                }
            }
            false
        }
        Value::Array(items) => {
            for child in items.iter_mut() {
                if *target == 0 {
                    *child = replacement(child, m);
                    return true;
                }
                *target -= 1;
                if mutate_at(child, target, m) {
                    return true;
                }
            }
            false
        }
        _ => false,
    }
}

fn apply(map: &mut serde_json::Map<String, Value>, key: &str, m: &Mutation) {
    if matches!(m, Mutation::Remove) {
        map.remove(key);
    } else if let Some(slot) = map.get_mut(key) {
        *slot = replacement(slot, m);
    }
}

fn replacement(old: &Value, m: &Mutation) -> Value {
    match m {
        Mutation::Replace(v) => v.clone(),
        Mutation::Remove => Value::Null,
        Mutation::Nest(depth) => (0..*depth).fold(old.clone(), |acc, _| json!([acc])),
        Mutation::Stringify => json!(old.to_string()),
    }
}

/// The event's `event_id` as the decoder can read it, if any.
fn readable_event_id(v: &Value) -> Option<String> {
    match v.get("event_id") {
        Some(Value::String(id)) if id.chars().count() <= 512 => Some(id.clone()),
        _ => None,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn arbitrary_text_never_panics(d in dialect(), text in "\\PC{0,200}") {
        let _ = decode_client(d, &text);
    }

    #[test]
    fn arbitrary_json_never_panics(d in dialect(), v in arb_json()) {
        let _ = decode_client(d, &v.to_string());
    }

    #[test]
    fn event_shaped_json_never_panics_and_errors_name_the_event(d in dialect(), v in event_like()) {
        if let Err(e) = decode_client(d, &v.to_string()) {
            if e.code() != ProtocolErrorCode::InvalidEvent || e.param() != Some("event_id") {
                prop_assert_eq!(e.event_id().map(str::to_owned), readable_event_id(&v));
            }
            let frame = encode_server_value(d, "event_1", &e.into_event());
            prop_assert!(frame.is_some());
        }
    }

    #[test]
    fn mutated_valid_events_never_panic(
        d in dialect(),
        event in dialect().prop_flat_map(client_event),
        mutations in vec((any::<prop::sample::Index>(), mutation()), 1..4),
    ) {
        let mut v = encode_client_value(d, &event);
        for (index, m) in &mutations {
            let mut target = index.index(count_nodes(&v).max(1));
            mutate_at(&mut v, &mut target, m);
        }
        let text = v.to_string();
        match decode_client(d, &text) {
            Ok(decoded) => prop_assert_eq!(decoded.event_id, readable_event_id(&v)),
            Err(e) => {
                // Nesting past serde_json's depth limit is malformed JSON to the parser; the event id is unread.
                if e.code() != ProtocolErrorCode::InvalidJson
                    && !(e.code() == ProtocolErrorCode::InvalidEvent && e.param() == Some("event_id"))
                {
                    prop_assert_eq!(e.event_id().map(str::to_owned), readable_event_id(&v));
                }
            }
        }
    }

    #[test]
    fn cut_and_spliced_frames_never_panic(
        d in dialect(),
        event in client_event(Dialect::Ga),
        cut in any::<prop::sample::Index>(),
        splice in "\\PC{0,4}",
    ) {
        let text = encode_client_value(d, &event).to_string();
        let chars: Vec<char> = text.chars().collect();
        let at = cut.index(chars.len().max(1));
        let head: String = chars.iter().take(at).collect();
        let tail: String = chars.iter().skip(at).collect();
        let _ = decode_client(d, &head);
        let _ = decode_client(d, &format!("{head}{splice}{tail}"));
    }
}

#[test]
fn deep_nesting_is_refused_without_overflowing_the_stack() {
    for d in [Dialect::Ga, Dialect::Beta] {
        let deep = format!("{}{}", "[".repeat(200_000), "]".repeat(200_000));
        assert_eq!(
            decode_client(d, &deep).unwrap_err().code(),
            ProtocolErrorCode::InvalidJson
        );
        let deep_object = format!(
            r#"{{"type":"response.create","event_id":"e","response":{}1{}}}"#,
            r#"{"a":"#.repeat(100_000),
            "}".repeat(100_000)
        );
        assert_eq!(
            decode_client(d, &deep_object).unwrap_err().code(),
            ProtocolErrorCode::InvalidJson
        );
    }
    // Nesting within the parser's limit inside an opaque field is kept as is.
    let schema = (0..50).fold(
        json!({"type": "string"}),
        |acc, _| json!({"type": "object", "properties": {"x": acc}}),
    );
    let frame =
        json!({"type": "session.update", "session": {"tools": [{"name": "f", "parameters": schema}]}});
    let decoded = decode_client(Dialect::Beta, &frame.to_string()).unwrap();
    let ClientEventKind::SessionUpdate(u) = decoded.kind else {
        panic!()
    };
    assert_eq!(u.tools.unwrap()[0].parameters.as_ref(), Some(&schema));
}

#[test]
fn huge_numbers_are_errors_not_panics() {
    for (field, value) in [
        ("content_index", "1e400"),
        ("content_index", "18446744073709551616"),
        ("content_index", "4294967296"),
        ("audio_end_ms", "-9223372036854775808"),
        ("audio_end_ms", "1.7976931348623157e308"),
    ] {
        let frame = format!(
            r#"{{"type":"conversation.item.truncate","event_id":"e1","item_id":"i","content_index":0,"audio_end_ms":0,"{field}":{value}}}"#
        );
        // serde_json keeps the last duplicate key.
        let e = decode_client(Dialect::Ga, &frame).unwrap_err();
        assert!(
            matches!(
                e.code(),
                ProtocolErrorCode::InvalidJson
                    | ProtocolErrorCode::InvalidValue
                    | ProtocolErrorCode::InvalidType
            ),
            "{value}: {e:?}"
        );
    }
}

#[test]
fn appends_of_15_mib_are_accepted() {
    // 15 MiB of base64 text (the reference's per-event minimum), and a bit more.
    for bytes in [15 * 1024 * 1024 / 4 * 3, 12 * 1024 * 1024] {
        let audio: Vec<u8> = (0..bytes).map(|i| (i % 251) as u8).collect();
        let encoded = base64::engine::general_purpose::STANDARD.encode(&audio);
        assert!(encoded.len() >= 15 * 1024 * 1024);
        let frame = format!(r#"{{"type":"input_audio_buffer.append","event_id":"big","audio":"{encoded}"}}"#);
        for d in [Dialect::Ga, Dialect::Beta] {
            let event = decode_client(d, &frame).unwrap();
            match event.kind {
                ClientEventKind::InputAudioBufferAppend { audio: decoded } => assert!(decoded == audio),
                other => panic!("{other:?}"),
            }
        }
    }
}
