//! Round-trip properties of the realtime protocol: what a client of one dialect sends decodes to the same
//! neutral event, and a `session.updated` fed back as `session.update` reproduces the effective config (clients
//! do that to restore sessions).

use crate::realtime_strategies::{client_event, dialect, session_config};
use avb_voice::realtime::protocol::{
    ClientEvent, ClientEventKind, Dialect, SessionKind, SessionObject, UpdateLocks, decode_client,
    encode_client, encode_client_value, session_value,
};
use proptest::prelude::*;
use serde_json::{Value, json};

/// Feeds a session object back as the dialect's session update and applies it to a fresh config.
fn reapply(d: Dialect, session: &SessionObject) -> avb_voice::realtime::protocol::SessionConfig {
    let kind = session.config.kind;
    let event_type = match (d, kind) {
        (Dialect::Beta, SessionKind::Transcription) => "transcription_session.update",
        _ => "session.update",
    };
    let frame = json!({"type": event_type, "session": session_value(d, session)}).to_string();
    let decoded = decode_client(d, &frame).unwrap_or_else(|e| panic!("{d}: {e:?} for {frame}"));
    let ClientEventKind::SessionUpdate(update) = decoded.kind else {
        panic!("not a session update")
    };
    let mut fresh = avb_voice::realtime::protocol::SessionConfig::new(kind, session.config.model.clone());
    fresh
        .apply(*update, UpdateLocks::default())
        .unwrap_or_else(|e| panic!("{d}: {e:?}"));
    fresh
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn ga_client_events_survive_encode_then_decode(event in client_event(Dialect::Ga)) {
        let frame = encode_client(Dialect::Ga, &event);
        prop_assert_eq!(decode_client(Dialect::Ga, &frame), Ok(event), "{}", frame);
    }

    #[test]
    fn beta_client_events_survive_encode_then_decode(event in client_event(Dialect::Beta)) {
        let frame = encode_client(Dialect::Beta, &event);
        prop_assert_eq!(decode_client(Dialect::Beta, &frame), Ok(event), "{}", frame);
    }

    #[test]
    fn session_objects_fed_back_reproduce_the_config(
        (d, kind, config) in (dialect(), prop_oneof![Just(SessionKind::Realtime), Just(SessionKind::Transcription)])
            .prop_flat_map(|(d, kind)| (Just(d), Just(kind), session_config(d, kind)))
    ) {
        let _ = kind;
        let session = SessionObject { id: "sess_1".into(), expires_at: Some(1), config };
        prop_assert_eq!(reapply(d, &session), session.config);
    }

    #[test]
    fn unknown_fields_anywhere_are_ignored(d in dialect(), event in dialect().prop_flat_map(client_event), seed in any::<u64>()) {
        // Events are generated for either dialect; only those the connection's dialect accepts are compared.
        let mut value = encode_client_value(d, &event);
        let before = decode_client(d, &value.to_string());
        sprinkle_unknown_fields(&mut value, seed, "");
        prop_assert_eq!(decode_client(d, &value.to_string()), before);
    }
}

/// Adds `x_unknown_*` keys to objects of the event, except inside maps whose keys are data (metadata, tool
/// parameters, prompt variables, tracing metadata).
fn sprinkle_unknown_fields(value: &mut Value, seed: u64, parent_key: &str) {
    const DATA_MAPS: [&str; 4] = ["metadata", "parameters", "variables", "properties"];
    match value {
        Value::Object(_) if DATA_MAPS.contains(&parent_key) => {}
        Value::Object(map) => {
            let keys: Vec<String> = map.keys().cloned().collect();
            for key in keys {
                if let Some(child) = map.get_mut(&key) {
                    sprinkle_unknown_fields(child, seed.rotate_left(7) ^ key.len() as u64, &key);
                }
            }
            map.insert(
                format!("x_unknown_{}", seed % 97),
                json!({"nested": [seed, "x", null]}),
            );
        }
        Value::Array(items) => {
            for item in items {
                sprinkle_unknown_fields(item, seed.wrapping_mul(31), parent_key);
            }
        }
        _ => {}
    }
}

#[test]
fn client_encoding_uses_the_dialects_names() {
    let event = ClientEvent {
        event_id: None,
        kind: ClientEventKind::SessionUpdate(Box::new(avb_voice::realtime::protocol::SessionUpdate {
            kind: Some(SessionKind::Transcription),
            ..Default::default()
        })),
    };
    assert_eq!(
        encode_client_value(Dialect::Beta, &event)["type"],
        "transcription_session.update"
    );
    assert_eq!(
        encode_client_value(Dialect::Ga, &event),
        json!({"type": "session.update", "session": {"type": "transcription"}})
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Audio deltas are written by a dedicated encoder (no JSON tree): it must give exactly the bytes of the
    /// general path, for ids that need escaping too, and the delta must decode to the audio.
    #[test]
    fn audio_delta_fast_encoder_matches_the_general_path(
        d in dialect(),
        event_id in prop_oneof!["event_[A-Za-z0-9]{1,24}", "\\PC{0,12}", "[\"\\\\/\u{0}-\u{1f}a-z]{0,8}"],
        response_id in prop_oneof!["resp_[A-Za-z0-9]{1,24}", "\\PC{0,12}"],
        item_id in prop_oneof!["item_[A-Za-z0-9._-]{1,24}", "\\PC{0,12}"],
        output_index in any::<u32>(),
        content_index in any::<u32>(),
        audio in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        use avb_voice::realtime::protocol::{AudioBytes, PartRef, ServerEvent, encode_server_value, encode_server_with_id};
        use base64::Engine as _;
        let event = ServerEvent::ResponseAudioDelta {
            at: PartRef { response_id, item_id, output_index, content_index },
            audio: AudioBytes::from(audio.clone()),
        };
        let fast = encode_server_with_id(d, &event_id, &event).expect("audio deltas exist in both dialects");
        let general = serde_json::to_string(&encode_server_value(d, &event_id, &event).expect("encodes"))
            .expect("serialises");
        prop_assert_eq!(&fast, &general);
        let parsed: Value = serde_json::from_str(&fast).expect("valid JSON");
        let delta = parsed["delta"].as_str().expect("delta is a string");
        prop_assert_eq!(base64::engine::general_purpose::STANDARD.decode(delta).expect("base64"), audio);
    }
}
