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
