//! The realtime session engine driven end to end with the scripted adapters: exact event sequences per dialect.

use avb_core::{Ctx, RequestId, SequentialIds, UuidV7Ids};
use avb_voice::adapters::{ScriptedLlm, ScriptedReply, ScriptedStt, ToneTts};
use avb_voice::llm::{ChatMessage, LanguageModel};
use avb_voice::realtime::engine::{DEFAULT_OUTPUT_LEAD, RealtimeSession, SessionPorts};
use avb_voice::realtime::protocol::{
    Dialect, FunctionTool, OutputModalities, SessionConfig, SessionKind, TranscriptionConfig,
};
use avb_voice::realtime::protocol::{ServerVad, TurnDetection};
use avb_voice::stt::SpeechToText;
use avb_voice::tts::TextToSpeech;
use avb_voice::vad::VoiceActivityDetector;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Speech = a 20 ms frame whose RMS is above 500: deterministic turn boundaries for tone/silence audio.
#[derive(Debug, Clone, Copy)]
struct EnergyVad;

impl VoiceActivityDetector for EnergyVad {
    fn sample_rate(&self) -> u32 {
        16_000
    }

    fn frame_samples(&self) -> usize {
        320
    }

    fn speech_probability(&mut self, frame: &[i16]) -> avb_voice::Result<f32> {
        let energy = frame.iter().map(|&s| f64::from(s) * f64::from(s)).sum::<f64>() / frame.len() as f64;
        Ok(if energy.sqrt() > 500.0 { 1.0 } else { 0.0 })
    }

    fn reset(&mut self) {}

    fn fresh(&self) -> Box<dyn VoiceActivityDetector> {
        Box::new(EnergyVad)
    }
}

struct Harness {
    tx: mpsc::Sender<String>,
    rx: mpsc::Receiver<String>,
}

impl Harness {
    fn start(dialect: Dialect, config: SessionConfig, llm: &ScriptedLlm, stt: ScriptedStt) -> Self {
        Self::start_with_tts(dialect, config, llm, stt, ToneTts::default())
    }

    fn start_with_tts(
        dialect: Dialect,
        config: SessionConfig,
        llm: &ScriptedLlm,
        stt: ScriptedStt,
        tts: ToneTts,
    ) -> Self {
        let llm: Arc<dyn LanguageModel> = Arc::new(llm.clone());
        let stt: Arc<dyn SpeechToText> = Arc::new(stt);
        let tts: Arc<dyn TextToSpeech> = Arc::new(tts);
        let (tx, incoming) = mpsc::channel(16);
        let (out, rx) = mpsc::channel(64);
        let ctx = Ctx::system(RequestId::generate(&UuidV7Ids), "test", None);
        let session = RealtimeSession::new(
            dialect,
            config,
            SessionPorts {
                llm,
                stt,
                tts,
                vad: Some(Arc::new(EnergyVad)),
            },
            Arc::new(SequentialIds::default()),
            ctx,
            out,
        );
        tokio::spawn(session.run(incoming));
        Self { tx, rx }
    }

    async fn send(&self, event: Value) {
        self.tx.send(event.to_string()).await.unwrap();
    }

    async fn send_raw(&self, frame: &str) {
        self.tx.send(frame.to_owned()).await.unwrap();
    }

    async fn next(&mut self) -> Value {
        let frame = tokio::time::timeout(Duration::from_secs(10), self.rx.recv())
            .await
            .expect("a server event in time")
            .expect("session still open");
        serde_json::from_str(&frame).unwrap()
    }

    /// Events up to and including the first of type `last`.
    async fn until(&mut self, last: &str) -> Vec<Value> {
        let mut events = Vec::new();
        loop {
            let event = self.next().await;
            let done = event["type"] == last;
            events.push(event);
            if done {
                return events;
            }
        }
    }

    /// Asserts nothing more arrives for a while.
    async fn quiet(&mut self) {
        let more = tokio::time::timeout(Duration::from_millis(300), self.rx.recv()).await;
        assert!(more.is_err(), "unexpected event: {more:?}");
    }
}

fn types(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["type"].as_str().unwrap()).collect()
}

/// Collapses each run of `*.delta` events into one `type*` (one or more) so sequences with a variable number of
/// deltas compare exactly; every other event stays as it is.
fn shape(events: &[Value]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for t in types(events) {
        let entry = if t.ends_with(".delta") {
            format!("{t}*")
        } else {
            t.to_owned()
        };
        if !(entry.ends_with('*') && out.last() == Some(&entry)) {
            out.push(entry);
        }
    }
    out
}

fn config(modalities: OutputModalities) -> SessionConfig {
    let mut config = SessionConfig::new(SessionKind::Realtime, "gpt-realtime");
    config.output_modalities = modalities;
    config.turn_detection = None;
    config
}

fn user_text(text: &str) -> Value {
    json!({"type": "conversation.item.create", "item": {"type": "message", "role": "user",
        "content": [{"type": "input_text", "text": text}]}})
}

async fn connected(h: &mut Harness) -> Value {
    let created = h.next().await;
    assert_eq!(created["type"], "session.created");
    created
}

#[tokio::test]
async fn session_created_first_with_the_effective_config() {
    let llm = ScriptedLlm::new([]);
    let mut h = Harness::start(
        Dialect::Ga,
        config(OutputModalities::Text),
        &llm,
        ScriptedStt::new([""; 0]),
    );
    let created = connected(&mut h).await;
    assert!(created["session"]["id"].as_str().unwrap().starts_with("sess_"));
    assert_eq!(created["session"]["output_modalities"], json!(["text"]));
    assert_eq!(
        created["session"]["audio"]["input"]["turn_detection"],
        Value::Null
    );
}

#[tokio::test]
async fn text_turn_ga_sequence() {
    let llm = ScriptedLlm::new([ScriptedReply::text("Hello there, friend.")]);
    let mut h = Harness::start(
        Dialect::Ga,
        config(OutputModalities::Text),
        &llm,
        ScriptedStt::new([""; 0]),
    );
    connected(&mut h).await;
    h.send(user_text("Hi")).await;
    let added = h.until("conversation.item.done").await;
    assert_eq!(
        types(&added),
        ["conversation.item.added", "conversation.item.done"]
    );
    assert_eq!(added[0]["previous_item_id"], Value::Null);

    h.send(json!({"type": "response.create"})).await;
    let events = h.until("response.done").await;
    assert_eq!(
        shape(&events),
        [
            "response.created",
            "response.output_item.added",
            "conversation.item.added",
            "response.content_part.added",
            "response.output_text.delta*",
            "response.output_text.done",
            "response.content_part.done",
            "conversation.item.done",
            "response.output_item.done",
            "response.done",
        ]
    );
    let deltas: String = events
        .iter()
        .filter(|e| e["type"] == "response.output_text.delta")
        .map(|e| e["delta"].as_str().unwrap())
        .collect();
    assert_eq!(deltas, "Hello there, friend.");
    let done = events.last().unwrap();
    assert_eq!(done["response"]["status"], "completed");
    assert_eq!(
        done["response"]["output"][0]["content"][0]["text"],
        "Hello there, friend."
    );
    assert!(done["response"]["usage"]["total_tokens"].as_u64().unwrap() > 0);
    // The assistant item follows the user item in the conversation.
    assert_eq!(events[2]["previous_item_id"], added[0]["item"]["id"]);
    // Every event of the response names it.
    let id = &events[0]["response"]["id"];
    assert!(
        events
            .iter()
            .filter(|e| e.get("response_id").is_some())
            .all(|e| e["response_id"] == *id)
    );
    h.quiet().await;
}

#[tokio::test]
async fn text_turn_beta_sequence() {
    let llm = ScriptedLlm::new([ScriptedReply::text("Hello there.")]);
    let mut h = Harness::start(
        Dialect::Beta,
        config(OutputModalities::Text),
        &llm,
        ScriptedStt::new([""; 0]),
    );
    connected(&mut h).await;
    h.send(user_text("Hi")).await;
    assert_eq!(h.next().await["type"], "conversation.item.created");
    h.send(json!({"type": "response.create"})).await;
    let events = h.until("response.done").await;
    assert_eq!(
        shape(&events),
        [
            "response.created",
            "response.output_item.added",
            "conversation.item.created",
            "response.content_part.added",
            "response.text.delta*",
            "response.text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.done",
        ]
    );
    assert_eq!(events.last().unwrap()["response"]["status"], "completed");
    h.quiet().await;
}

#[tokio::test]
async fn audio_turn_uses_the_tts_port_and_can_be_truncated() {
    let llm = ScriptedLlm::new([ScriptedReply::text("Hello there.")]);
    let mut h = Harness::start(
        Dialect::Ga,
        config(OutputModalities::Audio),
        &llm,
        ScriptedStt::new([""; 0]),
    );
    connected(&mut h).await;
    h.send(user_text("Hi")).await;
    h.until("conversation.item.done").await;
    h.send(json!({"type": "response.create"})).await;
    let events = h.until("response.done").await;
    assert_eq!(
        shape(&events),
        [
            "response.created",
            "response.output_item.added",
            "conversation.item.added",
            "response.content_part.added",
            "response.output_audio_transcript.delta*",
            "response.output_audio.delta*",
            "response.output_audio.done",
            "response.output_audio_transcript.done",
            "response.content_part.done",
            "conversation.item.done",
            "response.output_item.done",
            "response.done",
        ]
    );
    let audio: Vec<u8> = events
        .iter()
        .filter(|e| e["type"] == "response.output_audio.delta")
        .flat_map(|e| BASE64.decode(e["delta"].as_str().unwrap()).unwrap())
        .collect();
    assert!(
        audio.len() >= 4_800,
        "at least 100 ms of pcm16 audio, got {} bytes",
        audio.len()
    );
    assert_eq!(audio.len() % 2, 0);
    let transcript_done = events
        .iter()
        .find(|e| e["type"] == "response.output_audio_transcript.done")
        .unwrap();
    assert_eq!(transcript_done["transcript"], "Hello there.");
    let done = events.last().unwrap();
    let part = &done["response"]["output"][0]["content"][0];
    assert_eq!(part["type"], "output_audio");
    assert_eq!(part["transcript"], "Hello there.");
    assert!(
        part.get("audio").is_none_or(Value::is_null),
        "response.done carries no audio bytes"
    );

    let item_id = events[1]["item"]["id"].clone();
    h.send(json!({"type": "conversation.item.truncate", "item_id": item_id, "content_index": 0, "audio_end_ms": 100}))
        .await;
    let truncated = h.next().await;
    assert_eq!(truncated["type"], "conversation.item.truncated");
    assert_eq!(truncated["audio_end_ms"], 100);
    h.send(json!({"type": "conversation.item.retrieve", "event_id": "evt_r", "item_id": item_id}))
        .await;
    let retrieved = h.next().await;
    assert_eq!(retrieved["type"], "conversation.item.retrieved");
    let audio = BASE64
        .decode(retrieved["item"]["content"][0]["audio"].as_str().unwrap())
        .unwrap();
    assert_eq!(audio.len(), 4_800, "100 ms of 24 kHz pcm16 remain");
}

#[tokio::test]
async fn function_call_round_trip() {
    let llm = ScriptedLlm::new([
        ScriptedReply::tool_call("get_weather", json!({"city": "Paris"})),
        ScriptedReply::text("It is sunny in Paris."),
    ]);
    let mut cfg = config(OutputModalities::Text);
    cfg.tools = vec![FunctionTool {
        name: "get_weather".into(),
        description: Some("Weather by city".into()),
        parameters: Some(json!({"type": "object", "properties": {"city": {"type": "string"}}})),
    }];
    let mut h = Harness::start(Dialect::Ga, cfg, &llm, ScriptedStt::new([""; 0]));
    connected(&mut h).await;
    h.send(user_text("Weather in Paris?")).await;
    h.until("conversation.item.done").await;
    h.send(json!({"type": "response.create"})).await;
    let events = h.until("response.done").await;
    assert_eq!(
        shape(&events),
        [
            "response.created",
            "response.output_item.added",
            "conversation.item.added",
            "response.function_call_arguments.delta*",
            "response.function_call_arguments.done",
            "conversation.item.done",
            "response.output_item.done",
            "response.done",
        ]
    );
    let args_done = events
        .iter()
        .find(|e| e["type"] == "response.function_call_arguments.done")
        .unwrap();
    assert_eq!(args_done["name"], "get_weather");
    let arguments: Value = serde_json::from_str(args_done["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(arguments, json!({"city": "Paris"}));
    let call_id = args_done["call_id"].as_str().unwrap().to_owned();
    let item = &events.last().unwrap()["response"]["output"][0];
    assert_eq!(
        (item["type"].as_str(), item["call_id"].as_str()),
        (Some("function_call"), Some(call_id.as_str()))
    );

    h.send(
        json!({"type": "conversation.item.create", "item": {"type": "function_call_output",
        "call_id": call_id, "output": "{\"sky\":\"sunny\"}"}}),
    )
    .await;
    assert_eq!(
        types(&h.until("conversation.item.done").await),
        ["conversation.item.added", "conversation.item.done"]
    );
    h.send(json!({"type": "response.create"})).await;
    let follow_up = h.until("response.done").await;
    assert_eq!(follow_up.last().unwrap()["response"]["status"], "completed");
    assert!(
        follow_up
            .iter()
            .any(|e| e["type"] == "response.output_text.done" && e["text"] == "It is sunny in Paris.")
    );

    let requests = llm.requests();
    assert_eq!(requests.len(), 2);
    let messages = &requests[1].messages;
    assert!(matches!(&messages[1], ChatMessage::Assistant { tool_calls, .. }
        if tool_calls.len() == 1 && tool_calls[0].call_id == call_id && tool_calls[0].name == "get_weather"));
    assert_eq!(
        messages[2],
        ChatMessage::Tool {
            call_id,
            content: "{\"sky\":\"sunny\"}".into()
        }
    );
}

#[tokio::test]
async fn response_cancel_mid_stream_ends_cancelled_without_further_deltas() {
    let long = (1..=40).map(|i| format!("w{i}")).collect::<Vec<_>>().join(" ");
    let llm = ScriptedLlm::new([ScriptedReply::text(long)]).with_token_delay(Duration::from_millis(20));
    let mut h = Harness::start(
        Dialect::Ga,
        config(OutputModalities::Text),
        &llm,
        ScriptedStt::new([""; 0]),
    );
    connected(&mut h).await;
    h.send(user_text("Talk a lot")).await;
    h.until("conversation.item.done").await;
    h.send(json!({"type": "response.create"})).await;
    let mut events = h.until("response.output_text.delta").await;
    h.send(json!({"type": "response.cancel", "event_id": "evt_c"}))
        .await;
    events.extend(h.until("response.done").await);
    let deltas = events
        .iter()
        .filter(|e| e["type"] == "response.output_text.delta")
        .count();
    assert!(deltas < 40, "the reply was cut ({deltas} deltas)");
    let last_delta = events
        .iter()
        .rposition(|e| e["type"] == "response.output_text.delta")
        .unwrap();
    assert_eq!(
        types(&events[last_delta + 1..]),
        [
            "conversation.item.done",
            "response.output_item.done",
            "response.done"
        ]
    );
    let done = events.last().unwrap();
    assert_eq!(done["response"]["status"], "cancelled");
    assert_eq!(done["response"]["status_details"]["reason"], "client_cancelled");
    assert_eq!(done["response"]["output"][0]["status"], "incomplete");
    h.quiet().await;

    // Nothing left to cancel: an error naming the event, and the session still answers.
    h.send(json!({"type": "response.cancel", "event_id": "evt_c2"}))
        .await;
    let error = h.next().await;
    assert_eq!(error["type"], "error");
    assert_eq!(error["error"]["code"], "response_cancel_not_active");
    assert_eq!(error["error"]["event_id"], "evt_c2");
}

#[tokio::test]
async fn push_to_talk_transcribes_before_the_response() {
    let llm = ScriptedLlm::new([ScriptedReply::text("It is noon.")]);
    let mut cfg = config(OutputModalities::Text);
    cfg.input_transcription = Some(TranscriptionConfig::default());
    let mut h = Harness::start(Dialect::Ga, cfg, &llm, ScriptedStt::new(["what time is it"]));
    connected(&mut h).await;
    // 500 ms of a 440 Hz tone, pcm16 24 kHz, in five appends.
    let samples: Vec<i16> = (0..12_000)
        .map(|n| ((n as f32 * 440.0 * std::f32::consts::TAU / 24_000.0).sin() * 8_000.0) as i16)
        .collect();
    for chunk in samples.chunks(2_400) {
        let bytes: Vec<u8> = chunk.iter().flat_map(|s| s.to_le_bytes()).collect();
        h.send(json!({"type": "input_audio_buffer.append", "audio": BASE64.encode(bytes)}))
            .await;
    }
    h.send(json!({"type": "input_audio_buffer.commit"})).await;
    h.send(json!({"type": "response.create"})).await;
    let events = h.until("response.done").await;
    let t = types(&events);
    assert_eq!(
        t[..5],
        [
            "input_audio_buffer.committed",
            "conversation.item.added",
            "conversation.item.done",
            "conversation.item.input_audio_transcription.completed",
            "response.created",
        ]
    );
    assert_eq!(events[0]["item_id"], events[1]["item"]["id"]);
    assert_eq!(events[3]["item_id"], events[0]["item_id"]);
    assert_eq!(events[3]["transcript"], "what time is it");
    assert_eq!(events.last().unwrap()["response"]["status"], "completed");
    let request = &llm.requests()[0];
    assert_eq!(
        request.messages,
        [ChatMessage::User {
            content: "what time is it".into()
        }]
    );

    // An empty buffer cannot be committed.
    h.send(json!({"type": "input_audio_buffer.commit", "event_id": "evt_e"}))
        .await;
    let error = h.next().await;
    assert_eq!(error["error"]["code"], "input_audio_buffer_commit_empty");
    assert_eq!(error["error"]["event_id"], "evt_e");
}

#[tokio::test]
async fn item_ordering_retrieve_and_delete() {
    let llm = ScriptedLlm::new([]);
    let mut h = Harness::start(
        Dialect::Ga,
        config(OutputModalities::Text),
        &llm,
        ScriptedStt::new([""; 0]),
    );
    connected(&mut h).await;
    let create = |id: &str, previous: Option<&str>| {
        let mut event = json!({"type": "conversation.item.create", "item": {"id": id, "type": "message",
            "role": "user", "content": [{"type": "input_text", "text": id}]}});
        if let Some(previous) = previous {
            event["previous_item_id"] = json!(previous);
        }
        event
    };
    h.send(create("a", None)).await;
    h.send(create("b", None)).await;
    h.send(create("c", Some("a"))).await;
    h.send(create("d", Some("root"))).await;
    let mut previous = Vec::new();
    for _ in 0..4 {
        let added = h.until("conversation.item.done").await;
        previous.push((
            added[0]["item"]["id"].clone(),
            added[0]["previous_item_id"].clone(),
        ));
    }
    assert_eq!(
        previous,
        [
            (json!("a"), Value::Null),
            (json!("b"), json!("a")),
            (json!("c"), json!("a")),
            (json!("d"), Value::Null),
        ]
    );
    h.send(
        json!({"type": "conversation.item.create", "event_id": "evt_x", "previous_item_id": "zzz",
        "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "x"}]}}),
    )
    .await;
    let error = h.next().await;
    assert_eq!(
        (error["type"].as_str(), error["error"]["event_id"].as_str()),
        (Some("error"), Some("evt_x"))
    );
    assert_eq!(error["error"]["param"], "previous_item_id");

    h.send(json!({"type": "conversation.item.delete", "item_id": "c"}))
        .await;
    let deleted = h.next().await;
    assert_eq!(
        (deleted["type"].as_str(), deleted["item_id"].as_str()),
        (Some("conversation.item.deleted"), Some("c"))
    );
    h.send(json!({"type": "conversation.item.retrieve", "event_id": "evt_gone", "item_id": "c"}))
        .await;
    let error = h.next().await;
    assert_eq!(error["error"]["event_id"], "evt_gone");
    h.send(json!({"type": "conversation.item.retrieve", "item_id": "b"}))
        .await;
    let retrieved = h.next().await;
    assert_eq!(retrieved["type"], "conversation.item.retrieved");
    assert_eq!(retrieved["item"]["content"][0]["text"], "b");
}

#[tokio::test]
async fn bad_input_is_answered_with_errors_and_the_session_stays_usable() {
    let llm = ScriptedLlm::new([ScriptedReply::text("Still here.")]);
    let mut h = Harness::start(
        Dialect::Beta,
        config(OutputModalities::Text),
        &llm,
        ScriptedStt::new([""; 0]),
    );
    connected(&mut h).await;
    h.send_raw("{not json").await;
    let error = h.next().await;
    assert_eq!(error["type"], "error");
    assert_eq!(error["error"]["code"], "invalid_json");

    h.send(json!({"type": "no.such.event", "event_id": "evt_1"}))
        .await;
    let error = h.next().await;
    assert_eq!(error["error"]["code"], "unknown_event");
    assert_eq!(error["error"]["event_id"], "evt_1");

    h.send(json!({"type": "session.update", "event_id": "evt_2", "session": {"temperature": 9.0}}))
        .await;
    let error = h.next().await;
    assert_eq!(error["type"], "error");
    assert_eq!(error["error"]["event_id"], "evt_2");
    assert_eq!(error["error"]["param"], "session.temperature");

    h.send(json!({"type": "session.update", "event_id": "evt_3", "session": {"instructions": "Be brief."}}))
        .await;
    let updated = h.next().await;
    assert_eq!(updated["type"], "session.updated");
    assert_eq!(updated["session"]["instructions"], "Be brief.");
    assert_eq!(updated["session"]["modalities"], json!(["text"]));

    h.send(user_text("Hi")).await;
    h.until("conversation.item.created").await;
    h.send(json!({"type": "response.create"})).await;
    let events = h.until("response.done").await;
    assert_eq!(events.last().unwrap()["response"]["status"], "completed");
    assert_eq!(llm.requests()[0].instructions.as_deref(), Some("Be brief."));
}

#[tokio::test]
async fn a_second_response_create_is_refused_while_one_runs() {
    let llm = ScriptedLlm::new([ScriptedReply::text("one two three four five six")])
        .with_token_delay(Duration::from_millis(20));
    let mut h = Harness::start(
        Dialect::Ga,
        config(OutputModalities::Text),
        &llm,
        ScriptedStt::new([""; 0]),
    );
    connected(&mut h).await;
    h.send(json!({"type": "response.create"})).await;
    h.send(json!({"type": "response.create", "event_id": "evt_2nd"}))
        .await;
    let events = h.until("response.done").await;
    let errors: Vec<&Value> = events.iter().filter(|e| e["type"] == "error").collect();
    assert_eq!(errors.len(), 1);
    assert_eq!(
        errors[0]["error"]["code"],
        "conversation_already_has_active_response"
    );
    assert_eq!(errors[0]["error"]["event_id"], "evt_2nd");
    assert_eq!(
        events.iter().filter(|e| e["type"] == "response.created").count(),
        1
    );
    assert_eq!(events.last().unwrap()["response"]["status"], "completed");
    h.quiet().await;
}

/// `ms` of a 440 Hz tone, pcm16 at 24 kHz.
fn tone(ms: usize) -> Vec<i16> {
    (0..ms * 24)
        .map(|n| ((n as f32 * 440.0 * std::f32::consts::TAU / 24_000.0).sin() * 8_000.0) as i16)
        .collect()
}

/// Appends `samples` in 100 ms frames.
async fn append(h: &Harness, samples: &[i16]) {
    for chunk in samples.chunks(2_400) {
        let bytes: Vec<u8> = chunk.iter().flat_map(|s| s.to_le_bytes()).collect();
        h.send(json!({"type": "input_audio_buffer.append", "audio": BASE64.encode(bytes)}))
            .await;
    }
}

fn server_vad_config() -> SessionConfig {
    let mut cfg = config(OutputModalities::Text);
    cfg.input_transcription = Some(TranscriptionConfig::default());
    cfg.turn_detection = Some(TurnDetection::ServerVad(ServerVad::default()));
    cfg
}

#[tokio::test]
async fn server_vad_commits_the_turn_and_answers_it() {
    let llm = ScriptedLlm::new([ScriptedReply::text("Hello!")]);
    let mut h = Harness::start(
        Dialect::Ga,
        server_vad_config(),
        &llm,
        ScriptedStt::new(["hi there"]),
    );
    connected(&mut h).await;
    let mut audio = vec![0i16; 24 * 400];
    audio.extend(tone(800));
    audio.extend(vec![0i16; 24 * 1_000]);
    append(&h, &audio).await;
    let events = h.until("response.done").await;
    let t = types(&events);
    assert_eq!(
        t[..7],
        [
            "input_audio_buffer.speech_started",
            "input_audio_buffer.speech_stopped",
            "input_audio_buffer.committed",
            "conversation.item.added",
            "conversation.item.done",
            "conversation.item.input_audio_transcription.completed",
            "response.created",
        ]
    );
    let item_id = &events[0]["item_id"];
    assert!(
        events[1..4]
            .iter()
            .all(|e| e["item_id"] == *item_id || e["item"]["id"] == *item_id)
    );
    // The turn starts at the tone minus the 300 ms prefix padding and ends after 500 ms of silence.
    let start = events[0]["audio_start_ms"].as_u64().unwrap();
    let end = events[1]["audio_end_ms"].as_u64().unwrap();
    assert!((80..=120).contains(&start), "audio_start_ms {start}");
    assert!((1_650..=1_800).contains(&end), "audio_end_ms {end}");
    assert_eq!(events[5]["transcript"], "hi there");
    assert_eq!(events.last().unwrap()["response"]["status"], "completed");
    assert_eq!(
        llm.requests()[0].messages,
        [ChatMessage::User {
            content: "hi there".into()
        }]
    );
    h.quiet().await;
}

#[tokio::test]
async fn barge_in_cancels_the_response_with_turn_detected() {
    let long = (1..=60).map(|i| format!("w{i}")).collect::<Vec<_>>().join(" ");
    let llm = ScriptedLlm::new([ScriptedReply::text(long), ScriptedReply::text("Yes?")])
        .with_token_delay(Duration::from_millis(20));
    let mut h = Harness::start(Dialect::Ga, server_vad_config(), &llm, ScriptedStt::new(["wait"]));
    connected(&mut h).await;
    h.send(user_text("Tell me a story")).await;
    h.until("conversation.item.done").await;
    h.send(json!({"type": "response.create"})).await;
    h.until("response.output_text.delta").await;
    append(&h, &tone(300)).await;
    let events = h.until("response.done").await;
    let started = events
        .iter()
        .position(|e| e["type"] == "input_audio_buffer.speech_started")
        .expect("speech_started");
    assert!(
        events[started + 1..]
            .iter()
            .all(|e| e["type"] != "response.output_text.delta"),
        "no delta after the barge-in"
    );
    let done = events.last().unwrap();
    assert_eq!(done["response"]["status"], "cancelled");
    assert_eq!(done["response"]["status_details"]["reason"], "turn_detected");
    // The caller's turn then completes and is answered.
    append(&h, &vec![0i16; 24 * 800]).await;
    let next = h.until("response.done").await;
    assert_eq!(types(&next)[0], "input_audio_buffer.speech_stopped");
    assert_eq!(next.last().unwrap()["response"]["status"], "completed");
}

#[tokio::test]
async fn audio_interleaves_with_the_transcript_and_cancel_stops_the_speech() {
    let llm = ScriptedLlm::new([ScriptedReply::text(
        "A fairly long sentence to speak out loud, word by word.",
    )])
    .with_token_delay(Duration::from_millis(40));
    // Synthesis faster than the model's tokens, so speech keeps up with the text.
    let tts = ToneTts::default().with_chunk_delay(Duration::from_millis(5));
    let mut h = Harness::start_with_tts(
        Dialect::Beta,
        config(OutputModalities::Audio),
        &llm,
        ScriptedStt::new([""; 0]),
        tts,
    );
    connected(&mut h).await;
    h.send(user_text("Speak")).await;
    h.until("conversation.item.created").await;
    h.send(json!({"type": "response.create"})).await;
    let mut events = h.until("response.audio.delta").await;
    // Speech streams while the model is still writing: more transcript follows the first audio.
    events.extend(h.until("response.audio_transcript.delta").await);
    assert!(
        events.iter().all(|e| e["type"] != "response.done"),
        "{:?}",
        types(&events)
    );
    h.send(json!({"type": "response.cancel"})).await;
    events.extend(h.until("response.done").await);
    let last_delta = events
        .iter()
        .rposition(|e| e["type"].as_str().unwrap().ends_with(".delta"))
        .unwrap();
    assert_eq!(
        types(&events[last_delta + 1..]),
        ["response.output_item.done", "response.done"]
    );
    let done = events.last().unwrap();
    assert_eq!(done["response"]["status"], "cancelled");
    assert_eq!(done["response"]["output"][0]["status"], "incomplete");
    h.quiet().await;
}

#[tokio::test]
async fn per_response_overrides_and_out_of_band_responses() {
    let llm = ScriptedLlm::new([ScriptedReply::text("Summary."), ScriptedReply::text("In band.")]);
    let mut h = Harness::start(
        Dialect::Ga,
        config(OutputModalities::Audio),
        &llm,
        ScriptedStt::new([""; 0]),
    );
    connected(&mut h).await;
    h.send(user_text("Hi")).await;
    h.until("conversation.item.done").await;
    h.send(
        json!({"type": "response.create", "response": {"conversation": "none", "instructions": "Summarize.",
        "output_modalities": ["text"], "metadata": {"topic": "summary"}}}),
    )
    .await;
    let events = h.until("response.done").await;
    assert_eq!(
        shape(&events),
        [
            "response.created",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta*",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.done",
        ],
        "an out-of-band text response leaves the conversation alone"
    );
    let done = &events.last().unwrap()["response"];
    assert_eq!(done["metadata"], json!({"topic": "summary"}));
    assert_eq!(done["output_modalities"], json!(["text"]));
    assert_eq!(llm.requests()[0].instructions.as_deref(), Some("Summarize."));

    // The next response sees the conversation without the out-of-band reply, and speaks again.
    h.send(json!({"type": "response.create"})).await;
    let events = h.until("response.done").await;
    assert!(events.iter().any(|e| e["type"] == "response.output_audio.delta"));
    assert_eq!(
        llm.requests()[1].messages,
        [ChatMessage::User { content: "Hi".into() }]
    );
    assert_eq!(llm.requests()[1].instructions, None);

    // Audio was produced: the voice is now fixed, and the refusal names the parameter.
    h.send(
        json!({"type": "session.update", "event_id": "evt_v", "session": {"type": "realtime",
        "audio": {"output": {"voice": "ash"}}}}),
    )
    .await;
    let error = h.next().await;
    assert_eq!(error["type"], "error");
    assert_eq!(error["error"]["event_id"], "evt_v");
    assert_eq!(error["error"]["param"], "session.audio.output.voice");
}

#[tokio::test(start_paused = true)]
async fn audio_is_paced_to_real_time_plus_the_lead() {
    // 80 characters of 50 ms: 4 s of speech, synthesised instantly, sent in 100 ms chunks.
    let reply = "abcdefghij ".repeat(8);
    let llm = ScriptedLlm::new([ScriptedReply::text(reply.trim_end())]);
    let mut h = Harness::start(
        Dialect::Ga,
        config(OutputModalities::Audio),
        &llm,
        ScriptedStt::new([""; 0]),
    );
    connected(&mut h).await;
    h.send(json!({"type": "response.create"})).await;
    let mut first: Option<tokio::time::Instant> = None;
    let mut sent_ms = 0u64;
    let mut deltas = 0;
    loop {
        let event = h.next().await;
        match event["type"].as_str().unwrap() {
            "response.output_audio.delta" => {
                let now = tokio::time::Instant::now();
                let start = *first.get_or_insert(now);
                // A chunk leaves only while the audio already sent is at most the lead ahead of real time.
                let elapsed = now.duration_since(start).as_millis() as u64;
                assert!(
                    sent_ms <= elapsed + DEFAULT_OUTPUT_LEAD.as_millis() as u64,
                    "{sent_ms} ms sent after {elapsed} ms"
                );
                sent_ms += BASE64.decode(event["delta"].as_str().unwrap()).unwrap().len() as u64 / 48;
                deltas += 1;
            }
            "response.done" => break,
            _ => {}
        }
    }
    let total = tokio::time::Instant::now().duration_since(first.unwrap());
    assert!(deltas > 30, "{deltas} deltas");
    assert!(sent_ms >= 3_500, "{sent_ms} ms of audio");
    // Not sent at once: the whole reply took about its length minus the lead.
    let expected = Duration::from_millis(sent_ms) - DEFAULT_OUTPUT_LEAD;
    assert!(
        total + Duration::from_millis(150) >= expected && total <= expected + Duration::from_millis(150),
        "{total:?} for {sent_ms} ms of audio"
    );
}
