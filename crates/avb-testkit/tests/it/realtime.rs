//! `/v1/realtime` over a real socket (the server as the binary builds it, scripted engines), every test under
//! both adapters (`realtime::axum::…`, `realtime::actix::…`): the upgrade's authentication and refusals, the
//! protocol in both dialects, message size, client secrets, and what is stored about the session afterwards. The
//! official OpenAI SDKs are driven against the binary in avb-server's tests.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use avb_testkit::blackbox::{Call, Framework, Server};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::time::Duration;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{self, Message};

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

/// Every test of this file runs once per framework, as `realtime::axum::<test>` and `realtime::actix::<test>`.
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
    an_upgrade_without_or_with_a_bad_credential_is_refused_before_the_socket_with_an_openai_error,
    a_text_turn_in_the_ga_dialect_is_stored_with_its_transcript_response_and_usage,
    the_browser_style_beta_handshake_authenticates_by_subprotocol_and_speaks_beta,
    a_15_mib_audio_append_in_one_message_is_accepted,
    a_ping_is_answered_with_a_pong_and_the_session_goes_on,
    a_client_secret_opens_a_session_with_its_bound_config_and_nothing_else,
    keys_without_the_realtime_scope_and_other_tenants_are_refused,
    the_open_session_cap_refuses_the_next_connect_and_terminate_closes_a_live_socket,
    an_idle_session_is_closed_with_an_error_event_first,
    session_start_and_end_are_announced_to_the_tenant_group,
    responses_count_against_the_callers_rate_limit_and_report_it,
    an_audio_turn_is_metered_in_the_engine_and_storage_metrics,
);

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

const SCRIPT: &str = r#"{
  "replies": [{"text": "Hello from the scripted agent."}],
  "transcripts": ["hello there"],
  "tts_ms_per_char": 10
}"#;

async fn server(fw: Framework, extra: Value) -> (Server, tempdir::Dir) {
    let dir = tempdir::Dir::new();
    let script = dir.path().join("voice.json");
    std::fs::write(&script, SCRIPT).unwrap();
    let mut settings = json!({ "avb_voice_script": script });
    if let (Some(map), Value::Object(extra)) = (settings.as_object_mut(), extra) {
        map.extend(extra);
    }
    (fw.start_with(settings).await.unwrap(), dir)
}

/// A tiny self-deleting temporary directory (no extra dependency).
mod tempdir {
    use std::path::{Path, PathBuf};

    pub struct Dir(PathBuf);

    impl Dir {
        pub fn new() -> Self {
            let path = std::env::temp_dir().join(format!("avb-rt-{}", uuid::Uuid::new_v4()));
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

fn ws_url(server: &Server, path_and_query: &str) -> String {
    format!(
        "{}{path_and_query}",
        server.base_url.replacen("http://", "ws://", 1)
    )
}

async fn connect(
    server: &Server,
    path_and_query: &str,
    headers: &[(&str, &str)],
) -> Result<(Socket, tungstenite::handshake::client::Response), tungstenite::Error> {
    let mut request = ws_url(server, path_and_query).into_client_request().unwrap();
    for (name, value) in headers {
        request.headers_mut().insert(
            tungstenite::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    tokio_tungstenite::connect_async(request).await
}

async fn next_event(socket: &mut Socket) -> Value {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("no server event within 10 s")
            .expect("socket ended")
            .expect("socket error");
        match message {
            Message::Text(text) => return serde_json::from_str(text.as_str()).expect("server sent non-JSON"),
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("unexpected frame {other:?}"),
        }
    }
}

/// Events up to and including the first of type `last`.
async fn events_until(socket: &mut Socket, last: &str) -> Vec<Value> {
    let mut seen = Vec::new();
    loop {
        let event = next_event(socket).await;
        let done = event["type"] == last;
        seen.push(event);
        if done {
            return seen;
        }
    }
}

async fn send(socket: &mut Socket, event: Value) {
    socket
        .send(Message::Text(event.to_string().into()))
        .await
        .unwrap();
}

fn types(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["type"].as_str().unwrap_or("?")).collect()
}

async fn close(mut socket: Socket) {
    socket.close(None).await.unwrap();
    // Drain until the server's close arrives.
    while let Some(Ok(message)) = socket.next().await {
        if matches!(message, Message::Close(_)) {
            break;
        }
    }
}

async fn sessions(server: &Server) -> Value {
    server
        .get("/api/v2/sessions")
        .bearer(&server.admin_token)
        .pipe_expect(200)
        .await
}

/// Polls until the session is no longer active (the server closes it after the socket).
async fn finished_session(server: &Server, id: &str) -> Value {
    for _ in 0..100 {
        let reply = server
            .get(&format!("/api/v2/sessions/{id}"))
            .bearer(&server.admin_token)
            .pipe_expect(200)
            .await;
        let session = reply;
        if session["status"] != "active" && session["status"] != "created" {
            return session;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("session {id} never ended");
}

fn record_id(session_created: &Value) -> String {
    let sess = session_created["session"]["id"].as_str().unwrap();
    let simple = sess.strip_prefix("sess_").expect("sess_ prefix");
    uuid::Uuid::parse_str(simple).unwrap().to_string()
}

async fn an_upgrade_without_or_with_a_bad_credential_is_refused_before_the_socket_with_an_openai_error(
    fw: Framework,
) {
    let (server, _dir) = server(fw, json!({})).await;
    for headers in [
        vec![],
        vec![(
            "authorization",
            "Bearer avb_not_a_real_key_000000000000000000000000",
        )],
        vec![("authorization", "Bearer ek_not_a_real_secret")],
        vec![("authorization", "Basic abc")],
    ] {
        let err = connect(&server, "/v1/realtime?model=gpt-realtime", &headers)
            .await
            .expect_err("the upgrade must be refused");
        let tungstenite::Error::Http(response) = err else {
            panic!("expected an HTTP refusal, got {err:?}");
        };
        assert_eq!(response.status(), 401, "{headers:?}");
        let body: Value = serde_json::from_slice(response.body().as_deref().unwrap_or_default()).unwrap();
        assert_eq!(body["error"]["type"], "invalid_request_error");
        assert!(
            ["authentication_failed", "invalid_token"].contains(&body["error"]["code"].as_str().unwrap()),
            "{body}"
        );
        assert!(response.headers().contains_key("x-request-id"));
    }
    // Nothing was opened.
    assert_eq!(sessions(&server).await["total"], 0);
}

async fn a_text_turn_in_the_ga_dialect_is_stored_with_its_transcript_response_and_usage(fw: Framework) {
    let (server, _dir) = server(fw, json!({})).await;
    let bearer = format!("Bearer {}", server.api_key);
    let (mut socket, response) = connect(
        &server,
        "/v1/realtime?model=gpt-realtime",
        &[("authorization", &bearer), ("sec-websocket-protocol", "realtime")],
    )
    .await
    .unwrap();
    assert_eq!(response.headers()["sec-websocket-protocol"], "realtime");
    let created = next_event(&mut socket).await;
    assert_eq!(created["type"], "session.created", "{created}");
    assert_eq!(created["session"]["type"], "realtime");
    assert_eq!(created["session"]["model"], "gpt-realtime");
    let id = record_id(&created);

    // The record exists and is active while the socket is open.
    let live = server
        .get(&format!("/api/v2/sessions/{id}"))
        .bearer(&server.admin_token)
        .pipe_expect(200)
        .await;
    assert_eq!(live["status"], "active");

    send(
        &mut socket,
        json!({"type": "session.update", "session": {"type": "realtime", "output_modalities": ["text"], "instructions": "Be brief."}}),
    )
    .await;
    let updated = next_event(&mut socket).await;
    assert_eq!(updated["type"], "session.updated");
    assert_eq!(updated["session"]["instructions"], "Be brief.");

    send(
        &mut socket,
        json!({"type": "conversation.item.create", "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hi!"}]}}),
    )
    .await;
    let added = events_until(&mut socket, "conversation.item.done").await;
    assert_eq!(
        types(&added),
        ["conversation.item.added", "conversation.item.done"]
    );
    send(&mut socket, json!({"type": "response.create"})).await;
    let turn = events_until(&mut socket, "response.done").await;
    assert_eq!(turn.first().unwrap()["type"], "response.created");
    let text: String = turn
        .iter()
        .filter(|e| e["type"] == "response.output_text.delta")
        .map(|e| e["delta"].as_str().unwrap())
        .collect();
    assert_eq!(text, "Hello from the scripted agent.");
    let done = turn.last().unwrap();
    assert_eq!(done["response"]["status"], "completed");
    let output_tokens = done["response"]["usage"]["output_tokens"].as_u64().unwrap();
    assert!(output_tokens > 0);

    // Malformed input is answered with an error event; the session stays usable.
    socket.send(Message::Text("{not json".into())).await.unwrap();
    let error = next_event(&mut socket).await;
    assert_eq!(error["type"], "error");
    send(
        &mut socket,
        json!({"type": "no.such.event", "event_id": "evt_42"}),
    )
    .await;
    let error = next_event(&mut socket).await;
    assert_eq!(
        (error["type"].as_str(), error["error"]["event_id"].as_str()),
        (Some("error"), Some("evt_42"))
    );
    // A binary frame is not part of the protocol: an error event, stored like the others.
    socket
        .send(Message::Binary(vec![1u8, 2, 3].into()))
        .await
        .unwrap();
    let error = next_event(&mut socket).await;
    assert_eq!(error["error"]["code"], "invalid_frame", "{error}");
    close(socket).await;

    let stored = finished_session(&server, &id).await;
    assert_eq!(stored["status"], "completed", "{stored}");
    assert_eq!(stored["output_tokens"].as_u64(), Some(output_tokens));
    assert!(stored["ended_at"].is_string());
    let events = server
        .get(&format!("/api/v2/sessions/{id}/events?limit=100"))
        .bearer(&server.admin_token)
        .pipe_expect(200)
        .await;
    let items = events["items"].as_array().unwrap().clone();
    let kinds: Vec<&str> = items.iter().map(|e| e["event_type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "system",
            "system",
            "transcript",
            "response",
            "error",
            "error",
            "error"
        ],
        "{items:?}"
    );
    let sequences: Vec<u64> = items.iter().map(|e| e["sequence"].as_u64().unwrap()).collect();
    assert_eq!(sequences, [1, 2, 3, 4, 5, 6, 7]);
    assert_eq!(items[2]["content"]["text"], "Hi!");
    assert_eq!(items[3]["content"]["text"], "Hello from the scripted agent.");
    assert_eq!(items[3]["content"]["status"], "completed");
}

async fn the_browser_style_beta_handshake_authenticates_by_subprotocol_and_speaks_beta(fw: Framework) {
    let (server, _dir) = server(fw, json!({})).await;
    let offered = format!(
        "realtime, openai-insecure-api-key.{}, openai-beta.realtime-v1",
        server.api_key
    );
    let (mut socket, response) = connect(
        &server,
        "/v1/realtime?model=gpt-4o-realtime-preview",
        &[("sec-websocket-protocol", &offered)],
    )
    .await
    .unwrap();
    // Exactly `realtime` is selected; the key-bearing entry is never echoed.
    assert_eq!(response.headers()["sec-websocket-protocol"], "realtime");
    let created = next_event(&mut socket).await;
    assert_eq!(created["type"], "session.created");
    assert_eq!(created["session"]["object"], "realtime.session");
    assert!(
        created["session"]["modalities"].is_array(),
        "beta session shape: {created}"
    );
    send(
        &mut socket,
        json!({"type": "conversation.item.create", "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hi"}]}}),
    )
    .await;
    let created_item = next_event(&mut socket).await;
    assert_eq!(created_item["type"], "conversation.item.created");
    send(
        &mut socket,
        json!({"type": "response.create", "response": {"modalities": ["text"]}}),
    )
    .await;
    let turn = events_until(&mut socket, "response.done").await;
    assert!(
        types(&turn).contains(&"response.text.delta"),
        "{:?}",
        types(&turn)
    );
    assert!(
        !types(&turn)
            .iter()
            .any(|t| t.starts_with("response.output_text") || t.starts_with("response.output_audio")),
        "GA names leaked"
    );
    close(socket).await;
}

/// The reference service takes up to 15 MiB of audio per `input_audio_buffer.append`: ~20 MiB of base64 in one
/// text frame, which both adapters' message limit (32 MiB) admits.
async fn a_15_mib_audio_append_in_one_message_is_accepted(fw: Framework) {
    use base64::Engine as _;
    let (server, _dir) = server(fw, json!({})).await;
    let bearer = format!("Bearer {}", server.api_key);
    let (mut socket, _) = connect(&server, "/v1/realtime", &[("authorization", &bearer)])
        .await
        .unwrap();
    assert_eq!(next_event(&mut socket).await["type"], "session.created");
    send(
        &mut socket,
        json!({"type": "session.update", "session": {"type": "realtime", "audio": {"input": {"turn_detection": null}}}}),
    )
    .await;
    assert_eq!(next_event(&mut socket).await["type"], "session.updated");
    let audio = base64::engine::general_purpose::STANDARD.encode(vec![0u8; 15 * 1024 * 1024]);
    let append =
        json!({"type": "input_audio_buffer.append", "event_id": "evt_big", "audio": audio}).to_string();
    assert!(append.len() > 20 * 1024 * 1024, "{}", append.len());
    socket.send(Message::Text(append.into())).await.unwrap();
    send(
        &mut socket,
        json!({"type": "input_audio_buffer.commit", "event_id": "evt_commit"}),
    )
    .await;
    // The whole append arrived: the commit finds audio (an empty buffer would be an error) and nothing failed.
    let events = events_until(&mut socket, "input_audio_buffer.committed").await;
    assert!(!types(&events).contains(&"error"), "{events:?}");
    close(socket).await;
}

/// WebSocket pings are answered by the adapter with a pong carrying the same payload.
async fn a_ping_is_answered_with_a_pong_and_the_session_goes_on(fw: Framework) {
    let (server, _dir) = server(fw, json!({})).await;
    let bearer = format!("Bearer {}", server.api_key);
    let (mut socket, _) = connect(&server, "/v1/realtime", &[("authorization", &bearer)])
        .await
        .unwrap();
    assert_eq!(next_event(&mut socket).await["type"], "session.created");
    socket
        .send(Message::Ping(b"are you there".to_vec().into()))
        .await
        .unwrap();
    let pong = tokio::time::timeout(Duration::from_secs(10), socket.next())
        .await
        .expect("no pong within 10 s");
    match pong {
        Some(Ok(Message::Pong(payload))) => assert_eq!(&payload[..], b"are you there"),
        other => panic!("expected a pong, got {other:?}"),
    }
    send(
        &mut socket,
        json!({"type": "no.such.event", "event_id": "evt_after_ping"}),
    )
    .await;
    assert_eq!(
        next_event(&mut socket).await["error"]["event_id"],
        "evt_after_ping"
    );
    close(socket).await;
}

async fn a_client_secret_opens_a_session_with_its_bound_config_and_nothing_else(fw: Framework) {
    let (server, _dir) = server(fw, json!({})).await;
    let minted = server
        .post("/v1/realtime/client_secrets")
        .bearer(&server.api_key)
        .json(&json!({
            "expires_after": {"anchor": "created_at", "seconds": 60},
            "session": {"type": "realtime", "model": "gpt-realtime", "instructions": "You are a kiosk."}
        }))
        .pipe_expect(200)
        .await;
    let secret = minted["value"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("ek_"));
    assert_eq!(minted["session"]["instructions"], "You are a kiosk.");
    assert!(minted["expires_at"].as_i64().unwrap() > 0);

    // A bad TTL and a bad session are validation errors.
    for body in [
        json!({"expires_after": {"anchor": "created_at", "seconds": 5}}),
        json!({"session": {"type": "realtime", "audio": {"output": {"speed": 99}}}}),
    ] {
        server
            .post("/v1/realtime/client_secrets")
            .bearer(&server.api_key)
            .json(&body)
            .pipe_expect(400)
            .await;
    }
    // The secret is not a credential for the REST API, and cannot mint another secret.
    server
        .get("/api/v2/tenants/me")
        .bearer(&secret)
        .pipe_expect(401)
        .await;

    let bearer = format!("Bearer {secret}");
    let (mut socket, _) = connect(&server, "/v1/realtime", &[("authorization", &bearer)])
        .await
        .unwrap();
    let created = next_event(&mut socket).await;
    assert_eq!(created["session"]["instructions"], "You are a kiosk.");
    close(socket).await;

    // Beta minting answers the flat session with `client_secret`.
    let beta = server
        .post("/v1/realtime/sessions")
        .bearer(&server.api_key)
        .json(&json!({"model": "gpt-4o-realtime-preview", "voice": "verse", "modalities": ["text", "audio"]}))
        .pipe_expect(200)
        .await;
    assert!(
        beta["client_secret"]["value"]
            .as_str()
            .unwrap()
            .starts_with("ek_")
    );
    assert_eq!(beta["voice"], "verse");
}

async fn keys_without_the_realtime_scope_and_other_tenants_are_refused(fw: Framework) {
    let (server, _dir) = server(fw, json!({})).await;
    let created = server
        .post("/api/v2/api-keys")
        .bearer(&server.admin_token)
        .json(&json!({"name": "billing only", "scopes": ["billing"]}))
        .pipe_expect(201)
        .await;
    let billing_key = created["key"].as_str().unwrap().to_owned();
    let bearer = format!("Bearer {billing_key}");
    let err = connect(&server, "/v1/realtime", &[("authorization", &bearer)])
        .await
        .unwrap_err();
    let tungstenite::Error::Http(response) = err else {
        panic!("expected an HTTP refusal");
    };
    assert_eq!(response.status(), 403);
    let body: Value = serde_json::from_slice(response.body().as_deref().unwrap_or_default()).unwrap();
    assert_eq!(body["error"]["code"], "insufficient_scope");

    // A user of another tenant naming this tenant is refused.
    let bearer = format!("Bearer {}", server.other.admin_token);
    let err = connect(
        &server,
        "/v1/realtime",
        &[("authorization", &bearer), ("x-tenant-id", &server.tenant_id)],
    )
    .await
    .unwrap_err();
    let tungstenite::Error::Http(response) = err else {
        panic!("expected an HTTP refusal");
    };
    assert!(
        [403, 404].contains(&response.status().as_u16()),
        "{}",
        response.status()
    );
    assert_eq!(sessions(&server).await["total"], 0);
}

async fn the_open_session_cap_refuses_the_next_connect_and_terminate_closes_a_live_socket(fw: Framework) {
    let (server, _dir) = server(fw, json!({ "realtime_max_sessions_per_tenant": 1 })).await;
    let bearer = format!("Bearer {}", server.api_key);
    let (mut first, _) = connect(&server, "/v1/realtime", &[("authorization", &bearer)])
        .await
        .unwrap();
    let created = next_event(&mut first).await;
    let id = record_id(&created);

    let err = connect(&server, "/v1/realtime", &[("authorization", &bearer)])
        .await
        .unwrap_err();
    let tungstenite::Error::Http(response) = err else {
        panic!("expected an HTTP refusal");
    };
    // Spec §13.2: `tenant_limit_exceeded` is a 403.
    assert_eq!(response.status(), 403);
    let body: Value = serde_json::from_slice(response.body().as_deref().unwrap_or_default()).unwrap();
    assert_eq!(body["error"]["code"], "tenant_limit_exceeded");
    assert_eq!(body["error"]["details"]["resource"], "concurrent_sessions");

    // An operator terminates the live session: the socket gets an error event and a policy close.
    server
        .post(&format!("/api/v2/sessions/{id}/terminate"))
        .bearer(&server.admin_token)
        .pipe_expect(200)
        .await;
    let notice = next_event(&mut first).await;
    assert_eq!(notice["error"]["code"], "session_terminated", "{notice}");
    let closing = tokio::time::timeout(Duration::from_secs(5), first.next())
        .await
        .unwrap();
    match closing {
        Some(Ok(Message::Close(Some(frame)))) => assert_eq!(u16::from(frame.code), 1008),
        other => panic!("expected a close frame, got {other:?}"),
    }
    let stored = finished_session(&server, &id).await;
    assert_eq!(stored["status"], "terminated");

    // The slot is free again.
    let (second, _) = connect(&server, "/v1/realtime", &[("authorization", &bearer)])
        .await
        .unwrap();
    close(second).await;
}

async fn an_idle_session_is_closed_with_an_error_event_first(fw: Framework) {
    let (server, _dir) = server(fw, json!({ "realtime_idle_timeout_seconds": 1 })).await;
    let bearer = format!("Bearer {}", server.api_key);
    let (mut socket, _) = connect(&server, "/v1/realtime", &[("authorization", &bearer)])
        .await
        .unwrap();
    let created = next_event(&mut socket).await;
    let id = record_id(&created);
    let notice = next_event(&mut socket).await;
    assert_eq!(notice["error"]["code"], "idle_timeout");
    let closing = tokio::time::timeout(Duration::from_secs(5), socket.next())
        .await
        .unwrap();
    assert!(
        matches!(closing, Some(Ok(Message::Close(Some(ref f)))) if u16::from(f.code) == 1000),
        "{closing:?}"
    );
    assert_eq!(finished_session(&server, &id).await["status"], "completed");
}

async fn session_start_and_end_are_announced_to_the_tenant_group(fw: Framework) {
    use avb_core::events::{Delivery, Group};
    let (server, _dir) = server(fw, json!({})).await;
    let tenant: avb_core::TenantId = server.tenant_id.parse().unwrap();
    let ctx = avb_core::Ctx::system(
        avb_core::RequestId::generate(&avb_core::UuidV7Ids),
        "test",
        Some(tenant),
    );
    let mut sub = server
        .app()
        .inner()
        .events
        .subscribe(&ctx, &[Group::Tenant { tenant }])
        .await
        .unwrap();
    let bearer = format!("Bearer {}", server.api_key);
    let (mut socket, _) = connect(&server, "/v1/realtime", &[("authorization", &bearer)])
        .await
        .unwrap();
    let id = record_id(&next_event(&mut socket).await);
    close(socket).await;
    let mut kinds = Vec::new();
    while kinds.len() < 2 {
        let delivery = tokio::time::timeout(Duration::from_secs(5), sub.next())
            .await
            .unwrap()
            .unwrap();
        if let Delivery::Event { event, .. } = delivery {
            assert_eq!(event.data["session_id"], id.as_str());
            kinds.push(event.kind);
        }
    }
    assert_eq!(kinds, ["session.started", "session.ended"]);
}

async fn responses_count_against_the_callers_rate_limit_and_report_it(fw: Framework) {
    // The upgrade counts once, each response once more: the third response exceeds a limit of 3.
    let (server, _dir) = server(fw, json!({ "rate_limit_api_key_per_minute": 3 })).await;
    let bearer = format!("Bearer {}", server.api_key);
    let (mut socket, _) = connect(&server, "/v1/realtime", &[("authorization", &bearer)])
        .await
        .unwrap();
    next_event(&mut socket).await;
    send(
        &mut socket,
        json!({"type": "session.update", "session": {"type": "realtime", "output_modalities": ["text"]}}),
    )
    .await;
    next_event(&mut socket).await;
    for remaining in [1, 0] {
        send(&mut socket, json!({"type": "response.create"})).await;
        let created = next_event(&mut socket).await;
        assert_eq!(created["type"], "response.created", "{created}");
        let limits = next_event(&mut socket).await;
        assert_eq!(limits["type"], "rate_limits.updated", "{limits}");
        assert_eq!(limits["rate_limits"][0]["name"], "requests");
        assert_eq!(limits["rate_limits"][0]["limit"], 3);
        assert_eq!(limits["rate_limits"][0]["remaining"], remaining);
        events_until(&mut socket, "response.done").await;
    }
    send(
        &mut socket,
        json!({"type": "response.create", "event_id": "one_too_many"}),
    )
    .await;
    let refused = next_event(&mut socket).await;
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(refused["error"]["code"], "rate_limit_exceeded");
    assert_eq!(refused["error"]["event_id"], "one_too_many");
    // The session is still open (an item is acknowledged) and the REST API sees the same budget.
    send(
        &mut socket,
        json!({"type": "conversation.item.create", "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "ok"}]}}),
    )
    .await;
    assert_eq!(next_event(&mut socket).await["type"], "conversation.item.added");
    let reply = server
        .get("/api/v2/tenants/me")
        .bearer(&server.api_key)
        .send()
        .await
        .unwrap();
    reply.expect(429).unwrap();
    close(socket).await;
}

/// Sum of the samples of `name` whose labels include every pair of `labels` (Prometheus text).
fn metric_sum(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.rsplit_once(' '))
        .filter(|(series, _)| {
            series.split('{').next() == Some(name)
                && labels
                    .iter()
                    .all(|(k, v)| series.contains(&format!("{k}=\"{v}\"")))
        })
        .map(|(_, value)| value.parse::<f64>().unwrap())
        .sum()
}

/// A push-to-talk audio turn with transcription shows up in `/metrics` as one STT, one LLM and one TTS request
/// with the session's labels, the reply's tokens and characters, and the audio's seconds (spec §12.3 worker
/// metrics), and its storage operations in `avb_db_query_duration_seconds`.
async fn an_audio_turn_is_metered_in_the_engine_and_storage_metrics(fw: Framework) {
    let (server, _dir) = server(fw, json!({})).await;
    let bearer = format!("Bearer {}", server.api_key);
    let (mut socket, _) = connect(
        &server,
        "/v1/realtime?model=gpt-realtime",
        &[("authorization", &bearer)],
    )
    .await
    .unwrap();
    let created = next_event(&mut socket).await;
    let id = record_id(&created);
    send(
        &mut socket,
        json!({"type": "session.update", "session": {"type": "realtime", "audio": {"input": {
            "transcription": {"model": "whisper-1", "language": "en"}, "turn_detection": null
        }}}}),
    )
    .await;
    assert_eq!(next_event(&mut socket).await["type"], "session.updated");
    // Half a second of a 440 Hz tone at 24 kHz.
    let pcm: Vec<u8> = (0..12_000)
        .flat_map(|i| {
            {
                let t = f64::from(i) / 24_000.0;
                ((t * 440.0 * std::f64::consts::TAU).sin() * 8_000.0) as i16
            }
            .to_le_bytes()
        })
        .collect();
    use base64::Engine as _;
    let audio = base64::engine::general_purpose::STANDARD.encode(pcm);
    send(
        &mut socket,
        json!({"type": "input_audio_buffer.append", "audio": audio}),
    )
    .await;
    send(&mut socket, json!({"type": "input_audio_buffer.commit"})).await;
    events_until(
        &mut socket,
        "conversation.item.input_audio_transcription.completed",
    )
    .await;
    send(&mut socket, json!({"type": "response.create"})).await;
    let turn = events_until(&mut socket, "response.done").await;
    let done = turn.last().unwrap();
    assert_eq!(done["response"]["status"], "completed", "{done}");
    let output_tokens = done["response"]["usage"]["output_tokens"].as_f64().unwrap();
    assert!(
        types(&turn).contains(&"response.output_audio.delta"),
        "{:?}",
        types(&turn)
    );
    close(socket).await;
    finished_session(&server, &id).await;

    let metrics = server.get("/metrics").send().await.unwrap();
    metrics.expect(200).unwrap();
    let text = String::from_utf8_lossy(&metrics.body).into_owned();
    // The engine's own model names the series (a client's OpenAI model name means nothing to our engines); the
    // language is the session's.
    let stt = [("model", "scripted")];
    assert_eq!(
        metric_sum(
            &text,
            "avb_stt_requests_total",
            &[("model", "scripted"), ("language", "en")]
        ),
        1.0,
        "{text}"
    );
    assert_eq!(metric_sum(&text, "avb_stt_audio_duration_seconds_sum", &stt), 0.5);
    assert_eq!(metric_sum(&text, "avb_stt_duration_seconds_count", &stt), 1.0);
    let llm = [("provider", "scripted")];
    assert_eq!(metric_sum(&text, "avb_llm_requests_total", &llm), 1.0, "{text}");
    assert_eq!(
        metric_sum(
            &text,
            "avb_llm_tokens_total",
            &[("provider", "scripted"), ("type", "output")]
        ),
        output_tokens
    );
    assert_eq!(metric_sum(&text, "avb_llm_duration_seconds_count", &llm), 1.0);
    let tts = [("voice", "alloy")];
    assert_eq!(metric_sum(&text, "avb_tts_requests_total", &tts), 1.0, "{text}");
    assert_eq!(
        metric_sum(&text, "avb_tts_characters_total", &tts),
        "Hello from the scripted agent.".len() as f64
    );
    assert_eq!(metric_sum(&text, "avb_tts_duration_seconds_count", &tts), 1.0);
    assert!(
        metric_sum(
            &text,
            "avb_db_query_duration_seconds_count",
            &[("operation", "sessions.insert")]
        ) >= 1.0,
        "{text}"
    );
    // The spec's buckets for storage operations (1 ms … 1 s).
    assert!(
        text.contains(r#"avb_db_query_duration_seconds_bucket{operation="sessions.insert",le="0.001"}"#),
        "{text}"
    );
}
