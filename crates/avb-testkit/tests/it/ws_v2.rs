//! The spec's `/ws/v2` WebSocket protocol over a real socket (the server as the binary builds it, scripted
//! engines), every test under both adapters (`ws_v2::axum::…`, `ws_v2::actix::…`): refusals as close codes 4001–4004 after the upgrade, cross-tenant session ids refused like unknown
//! ones, a voice turn on `/ws/v2/sessions/{id}` stored on the session record, the event stream's tenant and user
//! isolation, and the speech-to-text and text-to-speech streams.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use avb_core::events::{BusEvent, Group};
use avb_core::{Ctx, RequestId, Role, TenantId, UserId};
use avb_testkit::blackbox::{Call, Framework, Server};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::time::Duration;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{self, Message};

/// Every test of this file runs once per framework, as `ws_v2::axum::<test>` and `ws_v2::actix::<test>`.
macro_rules! per_framework {
    ($($test:ident),+ $(,)?) => {
        per_framework!(@module axum, Axum; $($test),+);
        per_framework!(@module actix, Actix; $($test),+);
    };
    (@module $module:ident, $framework:ident; $($test:ident),+) => {
        mod $module {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test(avb_testkit::blackbox::Framework::$framework).await;
                }
            )+
        }
    };
}

per_framework!(
    missing_or_bad_credentials_close_with_4001_after_the_upgrade,
    tenant_problems_close_with_4002,
    forbidden_operations_close_with_4003,
    unknown_and_other_tenant_sessions_close_with_4004,
    an_audio_turn_runs_on_the_engine_and_session_end_completes_the_stored_session,
    a_text_turn_with_messages_and_bad_messages_answered_with_errors,
    the_event_stream_delivers_its_tenant_and_user_events_and_nothing_else,
    the_transcription_stream_transcribes_committed_audio,
    the_speech_stream_speaks_text_as_audio_deltas_and_stops_on_cancel,
    admin_monitoring_pushes_metric_snapshots_to_sysadmins_only,
);

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

const SCRIPT: &str = r#"{
  "replies": [{"text": "Hello from the scripted agent."}],
  "transcripts": ["hello there"],
  "tts_ms_per_char": 10
}"#;

/// 200 ms of pcm16 silence at 24 kHz, base64 (the default input format; enough to commit).
fn silence_200ms() -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(vec![0u8; 24_000 * 2 / 5])
}

async fn server(fw: Framework) -> (Server, tempdir::Dir) {
    let dir = tempdir::Dir::new();
    let script = dir.path().join("voice.json");
    std::fs::write(&script, SCRIPT).unwrap();
    let server = fw
        .start_with(json!({ "avb_voice_script": script }))
        .await
        .unwrap();
    (server, dir)
}

/// A tiny self-deleting temporary directory (no extra dependency).
mod tempdir {
    use std::path::{Path, PathBuf};

    pub struct Dir(PathBuf);

    impl Dir {
        pub fn new() -> Self {
            let path = std::env::temp_dir().join(format!("avb-ws2-{}", uuid::Uuid::new_v4()));
            std::fs::create_dir_all(&path).unwrap();
            Self(path)
        }

        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Sends a call, requires `status`, and returns the JSON body.
trait PipeExpect {
    async fn pipe_expect(self, status: u16) -> Value;
}

impl PipeExpect for Call<'_> {
    async fn pipe_expect(self, status: u16) -> Value {
        let reply = self.send().await.unwrap();
        reply.expect(status).unwrap();
        reply.json()
    }
}

fn ws_url(server: &Server, path_and_query: &str) -> String {
    format!(
        "{}{path_and_query}",
        server.base_url.replacen("http://", "ws://", 1)
    )
}

async fn connect_with(server: &Server, path_and_query: &str, headers: &[(&str, &str)]) -> Socket {
    let mut request = ws_url(server, path_and_query).into_client_request().unwrap();
    for (name, value) in headers {
        request.headers_mut().insert(
            tungstenite::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    let (socket, response) = tokio_tungstenite::connect_async(request)
        .await
        .unwrap_or_else(|e| {
            panic!("{path_and_query}: the upgrade must succeed (refusals are close codes): {e}")
        });
    assert!(response.headers().contains_key("x-request-id"));
    socket
}

async fn connect(server: &Server, path_and_query: &str) -> Socket {
    connect_with(server, path_and_query, &[]).await
}

/// The next text message, as JSON.
async fn next_message(socket: &mut Socket) -> Value {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("no server message within 10 s")
            .expect("socket ended")
            .expect("socket error");
        match message {
            Message::Text(text) => return serde_json::from_str(text.as_str()).expect("server sent non-JSON"),
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("unexpected frame {other:?}"),
        }
    }
}

/// Messages up to and including the first of type `last`.
async fn messages_until(socket: &mut Socket, last: &str) -> Vec<Value> {
    let mut seen = Vec::new();
    loop {
        let message = next_message(socket).await;
        let done = message["type"] == last;
        seen.push(message);
        if done {
            return seen;
        }
    }
}

/// The close code the server ends with (after any remaining text messages, which are returned).
async fn close_code(socket: &mut Socket) -> (u16, Vec<Value>) {
    let mut before = Vec::new();
    loop {
        let message = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("no close within 10 s");
        match message {
            Some(Ok(Message::Close(Some(frame)))) => return (u16::from(frame.code), before),
            Some(Ok(Message::Text(text))) => before.push(serde_json::from_str(text.as_str()).unwrap()),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}

/// Connects to `path_and_query` and requires the refusal: one `error` with `error_code`, then `close`.
async fn expect_refused(
    server: &Server,
    path_and_query: &str,
    headers: &[(&str, &str)],
    close: u16,
    error_code: &str,
) {
    let mut socket = connect_with(server, path_and_query, headers).await;
    let (code, messages) = close_code(&mut socket).await;
    assert_eq!(code, close, "{path_and_query} {headers:?}: {messages:?}");
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(messages[0]["type"], "error");
    assert_eq!(
        messages[0]["error"]["code"], error_code,
        "{path_and_query}: {messages:?}"
    );
    assert!(messages[0]["timestamp"].is_string());
}

async fn send(socket: &mut Socket, message: Value) {
    socket
        .send(Message::Text(message.to_string().into()))
        .await
        .unwrap();
}

fn types(messages: &[Value]) -> Vec<&str> {
    messages
        .iter()
        .map(|m| m["type"].as_str().unwrap_or("?"))
        .collect()
}

/// A new session of the demo tenant (status `created`), with `config`.
async fn new_session(server: &Server, token: &str, config: Value) -> String {
    let created = server
        .post("/api/v2/sessions")
        .bearer(token)
        .json(&json!({ "config": config }))
        .pipe_expect(201)
        .await;
    assert_eq!(created["status"], "created");
    created["id"].as_str().unwrap().to_owned()
}

/// A user of the demo tenant with `roles`, and their token.
async fn member(server: &Server, email: &str, roles: &[Role]) -> String {
    let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
    server
        .post("/api/v2/users")
        .bearer(&server.admin_token)
        .json(&json!({ "email": email, "first_name": "Web", "last_name": "Socket", "roles": names }))
        .pipe_expect(201)
        .await;
    server.token_for(email, Some(&server.tenant_id), roles).unwrap()
}

async fn missing_or_bad_credentials_close_with_4001_after_the_upgrade(fw: Framework) {
    let (server, _dir) = server(fw).await;
    let id = new_session(&server, &server.admin_token, json!({})).await;
    for path in [
        "/ws/v2/events",
        &format!("/ws/v2/sessions/{id}"),
        "/ws/v2/stt/transcription",
        "/ws/v2/tts/stream",
    ] {
        expect_refused(&server, path, &[], 4001, "authentication_failed").await;
        let bad_key = format!("{path}?api_key=avb_not_a_real_key_000000000000000000000000");
        let mut socket = connect(&server, &bad_key).await;
        assert_eq!(close_code(&mut socket).await.0, 4001, "{bad_key}");
        let expired = format!("{path}?token={}", server.expired_token);
        expect_refused(&server, &expired, &[], 4001, "token_expired").await;
    }
    // A bad Authorization header and a client secret (only for /v1/realtime) are refused the same way.
    expect_refused(
        &server,
        "/ws/v2/events",
        &[("authorization", "Basic abc")],
        4001,
        "authentication_failed",
    )
    .await;
    let secret = server
        .post("/v1/realtime/client_secrets")
        .bearer(&server.api_key)
        .json(&json!({}))
        .pipe_expect(200)
        .await["value"]
        .as_str()
        .unwrap()
        .to_owned();
    expect_refused(
        &server,
        &format!("/ws/v2/events?token={secret}"),
        &[],
        4001,
        "authentication_failed",
    )
    .await;
    // Nothing was started.
    let session = server
        .get(&format!("/api/v2/sessions/{id}"))
        .bearer(&server.admin_token)
        .pipe_expect(200)
        .await;
    assert_eq!(session["status"], "created");
    // A path that names no consumer is answered before the upgrade.
    let err = tokio_tungstenite::connect_async(ws_url(
        &server,
        &format!("/ws/v2/nope?api_key={}", server.api_key),
    ))
    .await
    .unwrap_err();
    let tungstenite::Error::Http(response) = err else {
        panic!("expected an HTTP refusal, got {err:?}");
    };
    assert_eq!(response.status(), 404);
}

async fn tenant_problems_close_with_4002(fw: Framework) {
    let (server, _dir) = server(fw).await;
    // A user the identity provider puts in no tenant.
    let drifter = server.token_for("drifter@nowhere.test", None, &[]).unwrap();
    expect_refused(
        &server,
        &format!("/ws/v2/events?token={drifter}"),
        &[],
        4002,
        "tenant_required",
    )
    .await;

    // A suspended tenant: its admin was fine a moment ago.
    let other = format!("/ws/v2/events?token={}", server.other.admin_token);
    let mut socket = connect(&server, &other).await;
    assert_eq!(next_message(&mut socket).await["type"], "connection.established");
    socket.close(None).await.unwrap();
    server
        .post(&format!(
            "/api/v2/admin/tenants/{}/suspend",
            server.other.tenant_id
        ))
        .bearer(&server.sysadmin_token)
        .json(&json!({ "reason": "unpaid invoices" }))
        .pipe_expect(200)
        .await;
    expect_refused(&server, &other, &[], 4002, "tenant_suspended").await;
}

async fn forbidden_operations_close_with_4003(fw: Framework) {
    let (server, _dir) = server(fw).await;
    let id = new_session(&server, &server.admin_token, json!({})).await;
    let session = format!("/ws/v2/sessions/{id}");

    // A viewer may read the session over REST but not drive it.
    let viewer = member(&server, "watcher@demo.local", &[Role::Viewer]).await;
    server
        .get(&format!("/api/v2/sessions/{id}"))
        .bearer(&viewer)
        .pipe_expect(200)
        .await;
    expect_refused(
        &server,
        &format!("{session}?token={viewer}"),
        &[],
        4003,
        "permission_denied",
    )
    .await;
    expect_refused(
        &server,
        &format!("/ws/v2/stt/transcription?token={viewer}"),
        &[],
        4003,
        "permission_denied",
    )
    .await;

    // A key without the `realtime` scope opens no voice connection.
    let billing = server
        .post("/api/v2/api-keys")
        .bearer(&server.admin_token)
        .json(&json!({"name": "billing only", "scopes": ["billing"]}))
        .pipe_expect(201)
        .await["key"]
        .as_str()
        .unwrap()
        .to_owned();
    for path in [session.as_str(), "/ws/v2/stt/transcription", "/ws/v2/tts/stream"] {
        expect_refused(
            &server,
            &format!("{path}?api_key={billing}"),
            &[],
            4003,
            "insufficient_scope",
        )
        .await;
    }
    // …and a realtime-only key reads no tenant events.
    let realtime = server
        .post("/api/v2/api-keys")
        .bearer(&server.admin_token)
        .json(&json!({"name": "voice only", "scopes": ["realtime"]}))
        .pipe_expect(201)
        .await["key"]
        .as_str()
        .unwrap()
        .to_owned();
    expect_refused(
        &server,
        &format!("/ws/v2/events?api_key={realtime}"),
        &[],
        4003,
        "permission_denied",
    )
    .await;
    // The refusals left the session untouched; the realtime key may drive it.
    let mut socket = connect(&server, &format!("{session}?api_key={realtime}")).await;
    assert_eq!(next_message(&mut socket).await["type"], "connection.established");
    assert_eq!(next_message(&mut socket).await["type"], "session.state");
    socket.close(None).await.unwrap();
}

async fn unknown_and_other_tenant_sessions_close_with_4004(fw: Framework) {
    let (server, _dir) = server(fw).await;
    let ours = new_session(&server, &server.admin_token, json!({})).await;
    let theirs = new_session(&server, &server.other.admin_token, json!({})).await;
    let key = format!("api_key={}", server.api_key);
    let unknown = uuid::Uuid::new_v4();
    for id in [unknown.to_string(), "not-a-session".to_owned(), theirs.clone()] {
        expect_refused(
            &server,
            &format!("/ws/v2/sessions/{id}?{key}"),
            &[],
            4004,
            "not_found",
        )
        .await;
        let admin = format!("/ws/v2/sessions/{id}?token={}", server.admin_token);
        expect_refused(&server, &admin, &[], 4004, "not_found").await;
    }
    // The other tenant's admin cannot reach ours either, by id or by naming our tenant.
    let other = format!("/ws/v2/sessions/{ours}?token={}", server.other.admin_token);
    expect_refused(&server, &other, &[], 4004, "not_found").await;
    let mut socket = connect_with(&server, &other, &[("x-tenant-id", &server.tenant_id)]).await;
    let code = close_code(&mut socket).await.0;
    assert!([4002, 4003, 4004].contains(&code), "{code}");
    // Both sessions are still unopened.
    for (id, token) in [(&ours, &server.admin_token), (&theirs, &server.other.admin_token)] {
        let session = server
            .get(&format!("/api/v2/sessions/{id}"))
            .bearer(token)
            .pipe_expect(200)
            .await;
        assert_eq!(session["status"], "created");
    }
}

async fn an_audio_turn_runs_on_the_engine_and_session_end_completes_the_stored_session(fw: Framework) {
    let (server, _dir) = server(fw).await;
    let id = new_session(
        &server,
        &server.admin_token,
        json!({ "instructions": "Be brief.", "voice": "verse" }),
    )
    .await;
    let mut socket = connect(
        &server,
        &format!("/ws/v2/sessions/{id}?api_key={}", server.api_key),
    )
    .await;

    let established = next_message(&mut socket).await;
    assert_eq!(established["type"], "connection.established", "{established}");
    assert!(established["timestamp"].is_string());
    let state = next_message(&mut socket).await;
    assert_eq!(state["type"], "session.state", "{state}");
    assert_eq!(state["data"]["session_id"], id.as_str());
    assert_eq!(state["data"]["status"], "active");
    // The stored config applies.
    assert_eq!(state["data"]["config"]["instructions"], "Be brief.");
    assert_eq!(state["data"]["config"]["audio"]["output"]["voice"], "verse");
    let live = server
        .get(&format!("/api/v2/sessions/{id}"))
        .bearer(&server.admin_token)
        .pipe_expect(200)
        .await;
    assert_eq!(live["status"], "active");

    send(&mut socket, json!({"type": "ping"})).await;
    assert_eq!(next_message(&mut socket).await, json!({"type": "pong"}));

    // Push-to-talk: audio, then a reply to it.
    send(
        &mut socket,
        json!({"type": "session.update", "config": {"turn_detection": null}}),
    )
    .await;
    let updated = next_message(&mut socket).await;
    assert_eq!(updated["type"], "session.updated", "{updated}");
    assert!(updated["data"]["config"]["audio"]["input"]["turn_detection"].is_null());
    for _ in 0..2 {
        send(
            &mut socket,
            json!({"type": "audio.chunk", "audio": silence_200ms()}),
        )
        .await;
    }
    send(&mut socket, json!({"type": "ping"})).await;
    send(&mut socket, json!({"type": "response.create"})).await;
    let turn = messages_until(&mut socket, "response.done").await;
    let kinds = types(&turn);
    assert!(!kinds.contains(&"error"), "{turn:?}");
    assert_eq!(kinds.iter().filter(|k| **k == "pong").count(), 1, "{kinds:?}");
    let spoken: Vec<&Value> = turn.iter().filter(|m| m["type"] != "pong").collect();
    assert_eq!(spoken[0]["type"], "transcription.final", "{kinds:?}");
    assert_eq!(spoken[0]["data"]["text"], "hello there");
    assert_eq!(spoken[1]["type"], "response.started", "{kinds:?}");
    let response_id = spoken[1]["data"]["response_id"].as_str().unwrap().to_owned();
    let text: String = turn
        .iter()
        .filter(|m| m["type"] == "response.delta")
        .map(|m| m["data"]["delta"].as_str().unwrap())
        .collect();
    assert_eq!(text, "Hello from the scripted agent.");
    assert!(
        turn.iter()
            .any(|m| m["type"] == "audio.delta" && m["data"]["audio"].as_str().is_some_and(|a| !a.is_empty())),
        "{kinds:?}"
    );
    let done = turn.last().unwrap();
    assert_eq!(done["data"]["response_id"], response_id.as_str());
    assert_eq!(done["data"]["status"], "completed");
    assert_eq!(done["data"]["text"], "Hello from the scripted agent.");
    let output_tokens = done["data"]["usage"]["output_tokens"].as_u64().unwrap();
    assert!(output_tokens > 0);

    send(&mut socket, json!({"type": "session.end"})).await;
    let ended = messages_until(&mut socket, "session.ended").await;
    let ended = ended.last().unwrap();
    assert_eq!(ended["data"]["session_id"], id.as_str());
    assert_eq!(ended["data"]["status"], "completed");
    assert_eq!(ended["data"]["output_tokens"].as_u64(), Some(output_tokens));
    assert!(ended["data"]["audio_duration_seconds"].as_f64().unwrap() >= 0.4);
    assert_eq!(close_code(&mut socket).await.0, 1000);

    let stored = server
        .get(&format!("/api/v2/sessions/{id}"))
        .bearer(&server.admin_token)
        .pipe_expect(200)
        .await;
    assert_eq!(stored["status"], "completed", "{stored}");
    assert_eq!(stored["output_tokens"].as_u64(), Some(output_tokens));
    let events = server
        .get(&format!("/api/v2/sessions/{id}/events?limit=100"))
        .bearer(&server.admin_token)
        .pipe_expect(200)
        .await;
    let items = events["items"].as_array().unwrap();
    let transcript: Vec<&Value> = items.iter().filter(|e| e["event_type"] == "transcript").collect();
    assert_eq!(transcript.len(), 1, "{items:?}");
    assert_eq!(transcript[0]["content"]["text"], "hello there");
    assert_eq!(transcript[0]["content"]["source"], "audio");
    let responses: Vec<&Value> = items.iter().filter(|e| e["event_type"] == "response").collect();
    assert_eq!(responses.len(), 1, "{items:?}");
    assert_eq!(responses[0]["content"]["text"], "Hello from the scripted agent.");

    // A finished session cannot be joined again.
    expect_refused(
        &server,
        &format!("/ws/v2/sessions/{id}?api_key={}", server.api_key),
        &[],
        4009,
        "conflict",
    )
    .await;
}

async fn a_text_turn_with_messages_and_bad_messages_answered_with_errors(fw: Framework) {
    let (server, _dir) = server(fw).await;
    let id = new_session(&server, &server.admin_token, json!({})).await;
    let mut socket = connect(
        &server,
        &format!("/ws/v2/sessions/{id}?token={}", server.admin_token),
    )
    .await;
    assert_eq!(
        types(&messages_until(&mut socket, "session.state").await),
        ["connection.established", "session.state"]
    );

    // Malformed and unknown messages are errors; the session stays usable.
    socket.send(Message::Text("{not json".into())).await.unwrap();
    let error = next_message(&mut socket).await;
    assert_eq!(
        (error["type"].as_str(), error["error"]["code"].as_str()),
        (Some("error"), Some("invalid_message"))
    );
    send(&mut socket, json!({"type": "no.such.message"})).await;
    let error = next_message(&mut socket).await;
    assert_eq!(error["error"]["code"], "unknown_message_type");
    assert_eq!(error["error"]["message"], "Unknown type: no.such.message");
    send(&mut socket, json!({"type": "audio.chunk"})).await;
    assert_eq!(next_message(&mut socket).await["error"]["code"], "invalid_audio");
    socket
        .send(Message::Binary(vec![1u8, 2, 3].into()))
        .await
        .unwrap();
    assert_eq!(next_message(&mut socket).await["error"]["code"], "invalid_frame");

    send(
        &mut socket,
        json!({"type": "response.create", "modalities": ["text"], "messages": [{"role": "user", "content": "Hi!"}]}),
    )
    .await;
    let turn = messages_until(&mut socket, "response.done").await;
    let kinds = types(&turn);
    assert_eq!(kinds.first(), Some(&"response.started"), "{kinds:?}");
    assert!(!kinds.contains(&"audio.delta"), "text only: {kinds:?}");
    assert_eq!(
        turn.last().unwrap()["data"]["text"],
        "Hello from the scripted agent."
    );

    // Closing the socket without session.end also completes the session.
    socket.close(None).await.unwrap();
    let mut status = Value::Null;
    for _ in 0..100 {
        status = server
            .get(&format!("/api/v2/sessions/{id}"))
            .bearer(&server.admin_token)
            .pipe_expect(200)
            .await["status"]
            .clone();
        if status != "active" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status, "completed");
    let events = server
        .get(&format!("/api/v2/sessions/{id}/events?event_type=transcript"))
        .bearer(&server.admin_token)
        .pipe_expect(200)
        .await;
    assert_eq!(events["items"][0]["content"]["text"], "Hi!");
}

async fn the_event_stream_delivers_its_tenant_and_user_events_and_nothing_else(fw: Framework) {
    let (server, _dir) = server(fw).await;
    let me = server
        .get("/api/v2/users/me")
        .bearer(&server.admin_token)
        .pipe_expect(200)
        .await;
    let my_id: UserId = me["id"].as_str().unwrap().parse().unwrap();
    let tenant: TenantId = server.tenant_id.parse().unwrap();
    let other_tenant: TenantId = server.other.tenant_id.parse().unwrap();
    let someone = member(&server, "someone@demo.local", &[Role::Viewer]).await;
    let someone_id: UserId = server
        .get("/api/v2/users/me")
        .bearer(&someone)
        .pipe_expect(200)
        .await["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();

    let mut socket = connect(&server, &format!("/ws/v2/events?token={}", server.admin_token)).await;
    assert_eq!(next_message(&mut socket).await["type"], "connection.established");
    send(&mut socket, json!({"type": "ping"})).await;
    assert_eq!(next_message(&mut socket).await, json!({"type": "pong"}));

    let app = server.app().inner();
    let publish = |group: Group, kind: &str, data: Value| {
        let ctx = Ctx::system(
            RequestId::generate(app.ids.as_ref()),
            "ws-v2-test",
            Some(group.tenant()),
        );
        let event = BusEvent {
            kind: kind.to_owned(),
            data,
            timestamp: app.clock.now(),
        };
        async move { app.events.publish(&ctx, group, event).await.unwrap() }
    };
    // Another tenant's event and another user's event, then ours: only ours arrive, in order.
    publish(
        Group::Tenant { tenant: other_tenant },
        "theme.changed",
        json!({"n": 0}),
    )
    .await;
    publish(
        Group::User {
            tenant,
            user: someone_id,
        },
        "notification",
        json!({"n": 1}),
    )
    .await;
    publish(Group::Tenant { tenant }, "settings.changed", json!({"n": 2})).await;
    publish(
        Group::User { tenant, user: my_id },
        "notification",
        json!({"n": 3}),
    )
    .await;
    let first = next_message(&mut socket).await;
    assert_eq!(first["type"], "settings.changed", "{first}");
    assert_eq!(first["data"], json!({"n": 2}));
    assert!(first["timestamp"].is_string());
    let second = next_message(&mut socket).await;
    assert_eq!(
        (second["type"].as_str(), &second["data"]),
        (Some("notification"), &json!({"n": 3}))
    );

    // Other message types are answered with an error; the stream stays open.
    send(
        &mut socket,
        json!({"type": "subscribe", "group": format!("tenant_{other_tenant}")}),
    )
    .await;
    assert_eq!(
        next_message(&mut socket).await["error"]["code"],
        "unknown_message_type"
    );
    publish(Group::Tenant { tenant }, "billing.alert", json!({"n": 4})).await;
    assert_eq!(next_message(&mut socket).await["data"], json!({"n": 4}));

    // An API key sees the tenant group.
    let mut keyed = connect(&server, &format!("/ws/v2/events?api_key={}", server.api_key)).await;
    assert_eq!(next_message(&mut keyed).await["type"], "connection.established");
    publish(Group::Tenant { tenant }, "theme.changed", json!({"n": 5})).await;
    assert_eq!(next_message(&mut keyed).await["data"], json!({"n": 5}));
    assert_eq!(next_message(&mut socket).await["data"], json!({"n": 5}));
    socket.close(None).await.unwrap();
    keyed.close(None).await.unwrap();
}

async fn the_transcription_stream_transcribes_committed_audio(fw: Framework) {
    let (server, _dir) = server(fw).await;
    let mut socket = connect(
        &server,
        &format!("/ws/v2/stt/transcription?api_key={}", server.api_key),
    )
    .await;
    assert_eq!(next_message(&mut socket).await["type"], "connection.established");

    send(
        &mut socket,
        json!({"type": "session.update", "config": {"language": "en", "sample_rate": 16000}}),
    )
    .await;
    let updated = next_message(&mut socket).await;
    assert_eq!(updated["type"], "session.updated", "{updated}");
    assert_eq!(updated["data"]["config"]["sample_rate"], 16000);
    send(
        &mut socket,
        json!({"type": "session.update", "config": {"sample_rate": 12345}}),
    )
    .await;
    assert_eq!(
        next_message(&mut socket).await["error"]["code"],
        "validation_error"
    );
    send(&mut socket, json!({"type": "audio.commit"})).await;
    assert_eq!(next_message(&mut socket).await["error"]["code"], "conflict");

    // 250 ms of a tone at 16 kHz.
    let samples: Vec<u8> = (0..4000)
        .flat_map(|i: i32| (((i % 40) - 20) as i16 * 500).to_le_bytes())
        .collect();
    let audio = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(&samples)
    };
    send(&mut socket, json!({"type": "audio.chunk", "audio": audio})).await;
    send(&mut socket, json!({"type": "ping"})).await;
    send(&mut socket, json!({"type": "audio.commit"})).await;
    let messages = messages_until(&mut socket, "transcription.done").await;
    let kinds = types(&messages);
    assert!(kinds.contains(&"pong"), "{kinds:?}");
    let finals: Vec<&Value> = messages
        .iter()
        .filter(|m| m["type"] == "transcription.final")
        .collect();
    assert_eq!(finals.len(), 1, "{kinds:?}");
    assert_eq!(finals[0]["data"]["text"], "hello there");
    let done = messages.last().unwrap();
    assert_eq!(done["data"]["text"], "hello there");
    assert_eq!(done["data"]["audio_ms"], 250);
    socket.close(None).await.unwrap();
}

async fn the_speech_stream_speaks_text_as_audio_deltas_and_stops_on_cancel(fw: Framework) {
    let (server, _dir) = server(fw).await;
    let mut socket = connect(
        &server,
        &format!("/ws/v2/tts/stream?token={}", server.admin_token),
    )
    .await;
    assert_eq!(next_message(&mut socket).await["type"], "connection.established");
    send(&mut socket, json!({"type": "text.commit"})).await;
    assert_eq!(next_message(&mut socket).await["error"]["code"], "conflict");

    send(&mut socket, json!({"type": "text.chunk", "text": "Hello"})).await;
    send(&mut socket, json!({"type": "text.chunk", "text": " world"})).await;
    send(&mut socket, json!({"type": "text.commit"})).await;
    let messages = messages_until(&mut socket, "audio.done").await;
    let deltas: Vec<&Value> = messages.iter().filter(|m| m["type"] == "audio.delta").collect();
    assert!(!deltas.is_empty(), "{messages:?}");
    let spoken: String = deltas
        .iter()
        .map(|d| d["data"]["text"].as_str().unwrap())
        .collect();
    assert_eq!(spoken, "Hello world");
    let bytes: usize = deltas
        .iter()
        .map(|d| {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD
                .decode(d["data"]["audio"].as_str().unwrap())
                .unwrap()
                .len()
        })
        .sum();
    assert!(bytes > 0);
    assert_eq!(deltas[0]["data"]["format"], "pcm16");
    let done = messages.last().unwrap();
    assert_eq!(done["data"]["status"], "completed");
    assert_eq!(done["data"]["characters"], 11);
    assert_eq!(
        done["data"]["audio_ms"].as_u64(),
        deltas.last().unwrap()["data"]["end_ms"].as_u64()
    );

    // Another voice, then an utterance cancelled before it is committed.
    send(
        &mut socket,
        json!({"type": "session.update", "config": {"voice": "verse", "speed": 1.25}}),
    )
    .await;
    assert_eq!(
        next_message(&mut socket).await["data"]["config"]["voice"],
        "verse"
    );
    send(
        &mut socket,
        json!({"type": "text.chunk", "text": "This will not be finished."}),
    )
    .await;
    send(&mut socket, json!({"type": "audio.cancel"})).await;
    let messages = messages_until(&mut socket, "audio.done").await;
    assert_eq!(messages.last().unwrap()["data"]["status"], "cancelled");
    send(&mut socket, json!({"type": "ping"})).await;
    assert_eq!(next_message(&mut socket).await, json!({"type": "pong"}));
    socket.close(None).await.unwrap();
}

/// `/ws/v2/admin/monitoring`: a sysadmin gets `connection.established`, then a snapshot at once whose numbers are
/// the app's own (an open realtime session shows in `open_sessions`, the monitor itself among the connections),
/// on request and at the configured interval; configure is validated; tenant admins and API keys get 4003,
/// no credential 4001.
async fn admin_monitoring_pushes_metric_snapshots_to_sysadmins_only(fw: Framework) {
    let (server, _dir) = server(fw).await;
    let refusals = [
        (String::new(), 4001, "authentication_failed"),
        (
            format!("?token={}", server.admin_token),
            4003,
            "permission_denied",
        ),
        (format!("?api_key={}", server.api_key), 4003, "permission_denied"),
    ];
    for (credential, close, code) in refusals {
        let path = format!("/ws/v2/admin/monitoring{credential}");
        expect_refused(&server, &path, &[], close, code).await;
    }

    // A live session of the demo tenant, to be seen by the monitor.
    let id = new_session(&server, &server.admin_token, json!({})).await;
    let mut session = connect(
        &server,
        &format!("/ws/v2/sessions/{id}?token={}", server.admin_token),
    )
    .await;
    assert_eq!(next_message(&mut session).await["type"], "connection.established");

    let mut monitor = connect(
        &server,
        &format!("/ws/v2/admin/monitoring?token={}", server.sysadmin_token),
    )
    .await;
    assert_eq!(next_message(&mut monitor).await["type"], "connection.established");
    let first = next_message(&mut monitor).await;
    assert_eq!(first["type"], "monitoring.snapshot", "{first}");
    assert!(first["timestamp"].is_string());
    let data = &first["data"];
    assert_eq!(data["interval_ms"], 5000);
    assert_eq!(data["summary"]["open_sessions"], 1.0, "{data}");
    assert_eq!(
        data["summary"]["websocket_connections"]["admin_monitoring"], 1.0,
        "{data}"
    );
    assert_eq!(data["summary"]["websocket_connections"]["session"], 1.0, "{data}");
    let active = data["metrics"]["avb_active_sessions"].as_array().unwrap();
    assert!(
        active
            .iter()
            .any(|s| s["labels"]["tenant_id"] == server.tenant_id.as_str() && s["value"] == 1.0),
        "{active:?}"
    );
    assert!(
        data["metrics"]["avb_http_requests_total"]
            .as_array()
            .is_some_and(|a| !a.is_empty()),
        "{data}"
    );
    assert!(
        data["metrics"]
            .get("avb_http_request_duration_seconds_bucket")
            .is_none()
    );
    // Totals read from their source at render time are current in a snapshot too, without a `/metrics` scrape
    // (the requests above resolved the demo tenant through its cache).
    let cache_lookups: f64 = ["avb_cache_hits_total", "avb_cache_misses_total"]
        .iter()
        .filter_map(|name| data["metrics"][*name].as_array())
        .flatten()
        .filter(|s| s["labels"]["cache"] == "tenant")
        .map(|s| s["value"].as_f64().unwrap())
        .sum();
    assert!(cache_lookups >= 1.0, "{data}");

    // The session ends: the next snapshot, asked for, says so.
    session.close(None).await.unwrap();
    let mut open = f64::NAN;
    for _ in 0..50 {
        send(&mut monitor, json!({"type": "monitoring.snapshot"})).await;
        let snapshot = next_message(&mut monitor).await;
        assert_eq!(snapshot["type"], "monitoring.snapshot");
        open = snapshot["data"]["summary"]["open_sessions"].as_f64().unwrap();
        if open == 0.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(open, 0.0);

    // Configure: bounds checked, the connection stays open; a valid interval is acknowledged and kept.
    send(
        &mut monitor,
        json!({"type": "monitoring.configure", "interval_ms": 10}),
    )
    .await;
    let refused = next_message(&mut monitor).await;
    assert_eq!(refused["error"]["code"], "validation_error", "{refused}");
    send(
        &mut monitor,
        json!({"type": "monitoring.configure", "interval_ms": 1000}),
    )
    .await;
    let configured = next_message(&mut monitor).await;
    assert_eq!(configured["type"], "monitoring.configured");
    assert_eq!(configured["data"]["interval_ms"], 1000);
    let started = std::time::Instant::now();
    let pushed = next_message(&mut monitor).await;
    assert_eq!(pushed["type"], "monitoring.snapshot");
    assert_eq!(pushed["data"]["interval_ms"], 1000);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(800) && waited < Duration::from_secs(4),
        "{waited:?}"
    );
    send(&mut monitor, json!({"type": "ping"})).await;
    assert_eq!(next_message(&mut monitor).await["type"], "pong");
    send(&mut monitor, json!({"type": "nope"})).await;
    assert_eq!(
        next_message(&mut monitor).await["error"]["code"],
        "unknown_message_type"
    );
    monitor.close(None).await.unwrap();
}
