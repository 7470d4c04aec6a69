//! The session engine under random event sequences (issue 6: "no panic on any input"): plausible and broken
//! client events in any order — config changes mid-response, appends of noise, commits of nothing, deletes of
//! unknown items, cancels without a response, garbage frames — must never panic, never interleave two
//! responses, always send well-formed events, and leave the session usable.

use avb_core::{Ctx, RequestId, SequentialIds, UuidV7Ids};
use avb_voice::adapters::earshot::EarshotVad;
use avb_voice::adapters::{ScriptedLlm, ScriptedReply, ScriptedStt, ToneTts};
use avb_voice::realtime::engine::{RealtimeSession, SessionPorts};
use avb_voice::realtime::protocol::{Dialect, SessionConfig, SessionKind};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use proptest::prelude::*;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

#[derive(Debug, Clone)]
enum Op {
    Update(Value),
    Append(Vec<u8>),
    AppendGarbage(String),
    Commit,
    Clear,
    UserText { previous: Target },
    ToolOutput { call: String },
    Delete(Target),
    Truncate(Target, u32, u64),
    Retrieve(Target),
    Respond(Value),
    Cancel,
    Raw(String),
    Pause(u64),
}

/// Which item an op names: one the session announced, or one it never heard of.
#[derive(Debug, Clone)]
enum Target {
    Known(usize),
    Unknown(String),
    Root,
}

fn target() -> impl Strategy<Value = Target> {
    prop_oneof![
        3 => (0usize..8).prop_map(Target::Known),
        1 => "[a-z_]{0,12}".prop_map(Target::Unknown),
        1 => Just(Target::Root),
    ]
}

fn update(dialect: Dialect) -> impl Strategy<Value = Value> {
    let ga = dialect == Dialect::Ga;
    prop_oneof![
        Just(if ga {
            json!({"type": "realtime", "output_modalities": ["text"]})
        } else {
            json!({"modalities": ["text"]})
        }),
        Just(if ga {
            json!({"type": "realtime", "output_modalities": ["audio"]})
        } else {
            json!({"modalities": ["text", "audio"]})
        }),
        Just(if ga {
            json!({"type": "realtime", "audio": {"input": {"turn_detection": null}}})
        } else {
            json!({"turn_detection": null})
        }),
        Just(if ga {
            json!({"type": "realtime", "audio": {"input": {"turn_detection": {"type": "server_vad", "silence_duration_ms": 200}}}})
        } else {
            json!({"turn_detection": {"type": "server_vad", "silence_duration_ms": 200}})
        }),
        Just(
            json!({"tools": [{"type": "function", "name": "lookup", "parameters": {"type": "object"}}], "tool_choice": "auto"})
        ),
        Just(json!({"tool_choice": "required"})),
        Just(json!({"tool_choice": {"type": "function", "name": "missing"}})),
        Just(json!({"voice": "ash"})),
        Just(json!({"instructions": "Be brief."})),
        Just(json!({"temperature": 99})),
        Just(json!({"type": "transcription"})),
        Just(json!("not an object")),
    ]
}

fn audio() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        // silence, a loud square wave, noise; odd lengths included
        (0usize..4000).prop_map(|n| vec![0u8; n]),
        (1usize..200).prop_map(|frames| {
            (0..frames * 240)
                .flat_map(|i| (if (i / 20) % 2 == 0 { 12_000i16 } else { -12_000 }).to_le_bytes())
                .collect()
        }),
        proptest::collection::vec(any::<u8>(), 0..3001),
    ]
}

fn response() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!({})),
        Just(json!({"output_modalities": ["text"], "modalities": ["text"]})),
        Just(json!({"conversation": "none", "metadata": {"k": "v"}})),
        Just(json!({"tool_choice": "required"})),
        Just(json!({"instructions": 5})),
        Just(
            json!({"input": [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "x"}]}]})
        ),
    ]
}

fn op(dialect: Dialect) -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => update(dialect).prop_map(Op::Update),
        3 => audio().prop_map(Op::Append),
        1 => "\\PC{0,40}".prop_map(Op::AppendGarbage),
        2 => Just(Op::Commit),
        1 => Just(Op::Clear),
        3 => target().prop_map(|previous| Op::UserText { previous }),
        1 => "[a-z0-9_]{0,10}".prop_map(|call| Op::ToolOutput { call }),
        1 => target().prop_map(Op::Delete),
        1 => (target(), 0u32..3, 0u64..5000).prop_map(|(t, i, ms)| Op::Truncate(t, i, ms)),
        1 => target().prop_map(Op::Retrieve),
        3 => response().prop_map(Op::Respond),
        2 => Just(Op::Cancel),
        1 => "\\PC{0,60}".prop_map(Op::Raw),
        2 => (0u64..30).prop_map(Op::Pause),
    ]
}

/// What the checker learned from the output so far.
#[derive(Default)]
struct Seen {
    items: Vec<String>,
    open_response: Option<String>,
    events: usize,
}

impl Seen {
    fn item(&self, target: &Target) -> Value {
        match target {
            Target::Known(i) if !self.items.is_empty() => json!(self.items[i % self.items.len()]),
            Target::Known(_) => json!("item_none"),
            Target::Unknown(id) => json!(id),
            Target::Root => Value::Null,
        }
    }

    /// Checks one server frame against the invariants; `Err` describes a violation.
    fn check(&mut self, frame: &str) -> Result<(), String> {
        self.events += 1;
        let event: Value =
            serde_json::from_str(frame).map_err(|e| format!("non-JSON frame {frame:?}: {e}"))?;
        let kind = event["type"]
            .as_str()
            .ok_or_else(|| format!("no type: {event}"))?
            .to_owned();
        if !event["event_id"]
            .as_str()
            .is_some_and(|id| id.starts_with("event_"))
        {
            return Err(format!("bad event_id: {event}"));
        }
        if let Some(id) = event.get("item").and_then(|i| i["id"].as_str())
            && !self.items.iter().any(|known| known == id)
        {
            self.items.push(id.to_owned());
        }
        if let Some(id) = event["item_id"].as_str()
            && !self.items.iter().any(|known| known == id)
        {
            self.items.push(id.to_owned());
        }
        let response_id = event["response_id"]
            .as_str()
            .or_else(|| event["response"]["id"].as_str())
            .map(str::to_owned);
        match kind.as_str() {
            "response.created" => {
                if let Some(open) = &self.open_response {
                    return Err(format!("response.created while {open} is open"));
                }
                self.open_response = response_id;
            }
            "response.done" => {
                if self.open_response != response_id {
                    return Err(format!(
                        "response.done for {response_id:?}, open {:?}",
                        self.open_response
                    ));
                }
                self.open_response = None;
            }
            other
                if other.starts_with("response.")
                    && response_id.is_some()
                    && response_id != self.open_response =>
            {
                return Err(format!(
                    "{other} of {response_id:?} while {:?} is open",
                    self.open_response
                ));
            }
            "error" if !event["error"]["message"].is_string() => {
                return Err(format!("error without message: {event}"));
            }
            _ => {}
        }
        Ok(())
    }
}

fn frame(op: &Op, seen: &Seen) -> Option<String> {
    let v = match op {
        Op::Update(session) => json!({"type": "session.update", "session": session}),
        Op::Append(bytes) => json!({"type": "input_audio_buffer.append", "audio": BASE64.encode(bytes)}),
        Op::AppendGarbage(text) => json!({"type": "input_audio_buffer.append", "audio": text}),
        Op::Commit => json!({"type": "input_audio_buffer.commit", "event_id": "c1"}),
        Op::Clear => json!({"type": "input_audio_buffer.clear"}),
        Op::UserText { previous } => json!({
            "type": "conversation.item.create",
            "previous_item_id": seen.item(previous),
            "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hello"}]}
        }),
        Op::ToolOutput { call } => json!({
            "type": "conversation.item.create",
            "item": {"type": "function_call_output", "call_id": call, "output": "{\"ok\":true}"}
        }),
        Op::Delete(t) => json!({"type": "conversation.item.delete", "item_id": seen.item(t)}),
        Op::Truncate(t, index, ms) => json!({
            "type": "conversation.item.truncate", "item_id": seen.item(t), "content_index": index, "audio_end_ms": ms
        }),
        Op::Retrieve(t) => json!({"type": "conversation.item.retrieve", "item_id": seen.item(t)}),
        Op::Respond(params) => json!({"type": "response.create", "response": params}),
        Op::Cancel => json!({"type": "response.cancel"}),
        Op::Raw(text) => return Some(text.clone()),
        Op::Pause(_) => return None,
    };
    Some(v.to_string())
}

async fn drive(dialect: Dialect, ops: Vec<Op>) -> Result<(), String> {
    let llm = ScriptedLlm::new([
        ScriptedReply::text("Sure, here you go."),
        ScriptedReply::tool_call("lookup", json!({"q": 1})),
    ])
    .cycling();
    let ports = SessionPorts {
        llm: Arc::new(llm),
        stt: Arc::new(ScriptedStt::new(["one", "two"]).cycling()),
        tts: Arc::new(ToneTts::default().with_ms_per_char(2)),
        vad: Some(Arc::new(EarshotVad::new())),
    };
    let (tx, incoming) = mpsc::channel(16);
    let (out, mut rx) = mpsc::channel(4096);
    let ctx = Ctx::system(RequestId::generate(&UuidV7Ids), "fuzz", None);
    let session = RealtimeSession::new(
        dialect,
        SessionConfig::new(SessionKind::Realtime, "gpt-realtime"),
        ports,
        Arc::new(SequentialIds::default()),
        ctx,
        out,
    );
    let task = tokio::spawn(session.run(incoming));
    let mut seen = Seen::default();
    for op in &ops {
        if let Op::Pause(ms) = op {
            tokio::time::sleep(Duration::from_millis(*ms)).await;
        } else if let Some(text) = frame(op, &seen) {
            tx.send(text)
                .await
                .map_err(|_| format!("session ended early, before {op:?}"))?;
        }
        tokio::task::yield_now().await;
        while let Ok(frame) = rx.try_recv() {
            seen.check(&frame)?;
        }
    }
    // Still usable: a text item is acknowledged.
    tx.send(
        json!({"type": "conversation.item.create", "event_id": "final",
               "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "still there?"}]}})
        .to_string(),
    )
    .await
    .map_err(|_| "session ended".to_owned())?;
    let added = if dialect == Dialect::Ga {
        "conversation.item.added"
    } else {
        "conversation.item.created"
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let frame = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .map_err(|_| "no answer to the final item within 10 s".to_owned())?
            .ok_or("session closed")?;
        seen.check(&frame)?;
        let event: Value = serde_json::from_str(&frame).map_err(|e| e.to_string())?;
        if event["type"] == added && event["item"]["content"][0]["text"] == "still there?" {
            break;
        }
    }
    drop(tx);
    match tokio::time::timeout(Duration::from_secs(10), task).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(join)) => Err(format!("session task failed: {join}")),
        Err(_) => Err("session did not end after its input closed".into()),
    }
}

fn dialect() -> impl Strategy<Value = Dialect> {
    prop_oneof![Just(Dialect::Ga), Just(Dialect::Beta)]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn random_event_sequences_never_panic_interleave_or_wedge_the_session(
        (d, ops) in dialect().prop_flat_map(|d| (Just(d), proptest::collection::vec(op(d), 1..30)))
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        if let Err(violation) = runtime.block_on(drive(d, ops)) {
            prop_assert!(false, "{}", violation);
        }
    }
}

/// The checker itself catches what it is meant to catch (otherwise the property above could not fail).
#[test]
fn the_checker_rejects_interleaving_bad_frames_and_unmatched_done() {
    let created = |id: &str| {
        json!({"type": "response.created", "event_id": "event_1", "response": {"id": id}}).to_string()
    };
    let done = |id: &str| {
        json!({"type": "response.done", "event_id": "event_2", "response": {"id": id}}).to_string()
    };
    let mut seen = Seen::default();
    seen.check(&created("resp_1")).unwrap();
    assert!(seen.check(&created("resp_2")).is_err());
    let mut seen = Seen::default();
    seen.check(&created("resp_1")).unwrap();
    let delta = json!({"type": "response.output_text.delta", "event_id": "event_3", "response_id": "resp_9"});
    assert!(seen.check(&delta.to_string()).is_err());
    assert!(seen.check(&done("resp_2")).is_err());
    assert!(Seen::default().check("{not json").is_err());
    assert!(Seen::default().check(&json!({"type": "x"}).to_string()).is_err());
    assert!(
        Seen::default()
            .check(&json!({"type": "error", "event_id": "event_1", "error": {}}).to_string())
            .is_err()
    );
}
