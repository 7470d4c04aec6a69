//! The official OpenAI SDKs against the real binary's `/v1/realtime`: scripted conversations (a text turn, a
//! server-VAD audio turn, push-to-talk, barge-in during a spoken reply, a function call round trip,
//! `session.update`, item insert/retrieve/delete/truncate, bad input answered with `error` while the session stays
//! usable) with exact event sequences and fields, in both protocol dialects.
//!
//! - Plain `ws://`: Python `openai` GA (`client.realtime.connect`) and beta (`client.beta.realtime.connect` with
//!   `websocket_base_url`).
//! - TLS (`wss://`, a CA and server certificate made here): Node `openai` GA and beta (`OpenAIRealtimeWS` with
//!   `options: { ca }`: the Node SDK only dials `wss://`), and Python beta *without* `websocket_base_url` (the beta
//!   client then always dials `wss://`).
//!
//! The scripts live in `tests/sdk/` (`realtime_sdk.py`, `realtime_sdk.mjs`); the server's engines follow
//! `tests/sdk/voice_script.json`. Afterwards every session the scripts opened is checked over REST: completed, with
//! its transcript, responses, tool calls and errors stored.
//!
//! The SDKs are installed by `scripts/install-peers.sh` into `$AVB_PEERS_DIR/openai-sdk` (default
//! `<repo>/.peers`); without them these tests fail and say so.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};

const SCENARIOS: [&str; 7] = [
    "text",
    "vad",
    "push_to_talk",
    "barge_in",
    "function_call",
    "items",
    "bad_input",
];

/// Longest one SDK run may take (seven scenarios take ~10 s on a 2-core machine).
const RUN_TIMEOUT: Duration = Duration::from_secs(120);

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("..")
        .canonicalize()
        .unwrap()
}

fn sdk_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("sdk")
}

/// What the server's scripted engines say (the scripts read the same file).
struct Script {
    reply: String,
    transcript: String,
    tool: String,
}

fn script() -> Script {
    let text = std::fs::read_to_string(sdk_dir().join("voice_script.json")).unwrap();
    let script: Value = serde_json::from_str(&text).unwrap();
    let replies = script["replies"].as_array().unwrap();
    let reply = replies.iter().find_map(|r| r["text"].as_str()).unwrap();
    let tool = replies
        .iter()
        .find_map(|r| r["tool_call"]["name"].as_str())
        .unwrap();
    Script {
        reply: reply.to_owned(),
        transcript: script["transcripts"][0].as_str().unwrap().to_owned(),
        tool: tool.to_owned(),
    }
}

/// The installed SDKs.
struct Peers {
    python: PathBuf,
    node_modules: PathBuf,
}

fn peers() -> Peers {
    let dir = std::env::var_os("AVB_PEERS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".peers"))
        .join("openai-sdk");
    let python = dir.join("venv").join("bin").join("python");
    let node_modules = dir.join("node_modules");
    let missing: Vec<String> = [
        python.clone(),
        node_modules.join("openai").join("package.json"),
        node_modules.join("ws").join("package.json"),
    ]
    .into_iter()
    .filter(|p| !p.exists())
    .map(|p| p.display().to_string())
    .collect();
    assert!(
        missing.is_empty(),
        "the OpenAI SDK test peers are not installed (missing {missing:?}): run scripts/install-peers.sh \
         (or `scripts/install-peers.sh openai_sdk`) with the same AVB_PEERS_DIR"
    );
    let node = std::process::Command::new("node").arg("--version").output();
    assert!(
        node.as_ref().is_ok_and(|o| o.status.success()),
        "`node` (Node.js 20+) must be on PATH for the Node OpenAI SDK: {node:?}"
    );
    Peers { python, node_modules }
}

/// A self-deleting temporary directory.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let path = std::env::temp_dir().join(format!("avb-openai-sdk-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A CA and a server certificate for `localhost` / `127.0.0.1`, written as PEM files.
struct Tls {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

fn make_tls(dir: &Path) -> Tls {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
    };
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "AgentVoiceBox test CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let mut params = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    params.distinguished_name.push(DnType::CommonName, "localhost");
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &ca).unwrap();
    let tls = Tls {
        ca: dir.join("ca.pem"),
        cert: dir.join("server.pem"),
        key: dir.join("server.key"),
    };
    std::fs::write(&tls.ca, ca.pem()).unwrap();
    std::fs::write(&tls.cert, cert.pem()).unwrap();
    std::fs::write(&tls.key, key.serialize_pem()).unwrap();
    tls
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// The binary, in-memory storage, the scripted engines, plain or TLS.
struct Server {
    child: tokio::process::Child,
    port: u16,
    tls: bool,
    output: Arc<Mutex<Vec<String>>>,
}

impl Server {
    /// Starts `avb-server serve` configured by a TOML file (`AVB_CONFIG`) and waits for its banner and port.
    async fn start(dir: &Path, tls: Option<&Tls>) -> Self {
        let port = free_port();
        let quote = |p: &Path| serde_json::to_string(&p.display().to_string()).unwrap();
        let mut config = format!(
            "host = \"127.0.0.1\"\nport = {port}\navb_voice_script = {}\n",
            quote(&sdk_dir().join("voice_script.json"))
        );
        if let Some(tls) = tls {
            config.push_str(&format!(
                "avb_tls_cert = {}\navb_tls_key = {}\n",
                quote(&tls.cert),
                quote(&tls.key)
            ));
        }
        let config_path = dir.join("avb.toml");
        std::fs::write(&config_path, config).unwrap();
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_avb-server"))
            .arg("serve")
            .env_clear()
            .env("AVB_CONFIG", &config_path)
            .env("RUST_LOG", "warn")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn avb-server");
        let output = Arc::new(Mutex::new(Vec::new()));
        let streams: [Option<Box<dyn tokio::io::AsyncRead + Send + Unpin>>; 2] = [
            child.stdout.take().map(|s| Box::new(s) as _),
            child.stderr.take().map(|s| Box::new(s) as _),
        ];
        for stream in streams.into_iter().flatten() {
            let output = output.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stream).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    output.lock().unwrap().push(line);
                }
            });
        }
        let mut server = Self {
            child,
            port,
            tls: tls.is_some(),
            output,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("avb-server exited with {status}:\n{}", server.output());
            }
            let banner = server.find("api key:").is_some();
            if banner && tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                return server;
            }
            assert!(
                Instant::now() < deadline,
                "avb-server did not start within 60 s:\n{}",
                server.output()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn output(&self) -> String {
        self.output.lock().unwrap().join("\n")
    }

    fn find(&self, label: &str) -> Option<String> {
        self.output.lock().unwrap().iter().find_map(|line| {
            line.strip_prefix(label)
                .and_then(|rest| rest.split_whitespace().next())
                .map(str::to_owned)
        })
    }

    /// A credential printed by the bootstrap banner (`api key:`, `admin token:`).
    fn banner(&self, label: &str) -> String {
        self.find(label)
            .unwrap_or_else(|| panic!("no {label:?} line in the output:\n{}", self.output()))
    }

    fn http_base(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }
}

/// Runs one SDK script to its end and returns its JSON summary; any failure panics with the script's message.
async fn run_sdk(
    server: &Server,
    program: &Path,
    args: &[String],
    env: &[(&str, &Path)],
    label: &str,
) -> Value {
    let started = Instant::now();
    let mut command = tokio::process::Command::new(program);
    command
        .args(args)
        .envs(env.iter().copied())
        .env("OPENAI_API_KEY", server.banner("api key:"))
        .env_remove("OPENAI_BASE_URL")
        .env_remove("OPENAI_ORG_ID")
        .env_remove("OPENAI_PROJECT_ID")
        .env("PYTHONUNBUFFERED", "1")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let output = tokio::time::timeout(RUN_TIMEOUT, command.output())
        .await
        .unwrap_or_else(|_| {
            panic!(
                "{label}: no result within {RUN_TIMEOUT:?}\nserver output:\n{}",
                server.output()
            )
        })
        .unwrap_or_else(|e| panic!("{label}: could not run {}: {e}", program.display()));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{label} failed ({}):\n{stderr}\n{stdout}\nserver output (tail):\n{}",
        output.status,
        tail(&server.output(), 60)
    );
    let summary: Value = stdout
        .lines()
        .rev()
        .find_map(|line| serde_json::from_str(line).ok())
        .unwrap_or_else(|| panic!("{label}: no JSON summary on stdout:\n{stdout}\n{stderr}"));
    assert_eq!(summary["ok"], true, "{label}: {summary}");
    let ran: Vec<&str> = summary["scenarios"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut expected: Vec<&str> = SCENARIOS.to_vec();
    expected.sort_unstable();
    let mut sorted = ran.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, expected, "{label}: every scenario ran");
    eprintln!(
        "{label}: {} scenarios in {:.1} s",
        ran.len(),
        started.elapsed().as_secs_f64()
    );
    summary
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn python_args(dialect: &str, base_url: &str, ws_base: Option<&str>, ca: Option<&Path>) -> Vec<String> {
    let mut args = vec![
        sdk_dir().join("realtime_sdk.py").display().to_string(),
        "--dialect".into(),
        dialect.into(),
        "--base-url".into(),
        base_url.into(),
    ];
    if let Some(ws) = ws_base {
        args.extend(["--websocket-base-url".into(), ws.into()]);
    }
    if let Some(ca) = ca {
        args.extend(["--ca".into(), ca.display().to_string()]);
    }
    args
}

fn node_args(dialect: &str, base_url: &str, ca: &Path) -> Vec<String> {
    vec![
        sdk_dir().join("realtime_sdk.mjs").display().to_string(),
        "--dialect".into(),
        dialect.into(),
        "--base-url".into(),
        base_url.into(),
        "--ca".into(),
        ca.display().to_string(),
    ]
}

/// REST client for the server (trusting the test CA when it speaks TLS).
fn rest_client(ca: Option<&Path>) -> reqwest::Client {
    let mut builder = reqwest::Client::builder().timeout(Duration::from_secs(30));
    if let Some(ca) = ca {
        let pem = std::fs::read(ca).unwrap();
        builder = builder.add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap());
    }
    builder.build().unwrap()
}

async fn get_json(client: &reqwest::Client, server: &Server, path: &str) -> Value {
    let response = client
        .get(format!("{}{path}", server.http_base()))
        .bearer_auth(server.banner("admin token:"))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert_eq!(status, 200, "GET {path}: {body}");
    body
}

/// The stored record id of a protocol session id (`sess_<uuid simple>`).
fn record_id(session: &str) -> String {
    let simple = session.strip_prefix("sess_").expect("sess_ prefix");
    uuid::Uuid::parse_str(simple).unwrap().to_string()
}

/// Every session the runs opened is stored as completed, with what happened in it.
async fn check_stored_sessions(server: &Server, ca: Option<&Path>, runs: &[&Value], script: &Script) {
    let client = rest_client(ca);
    let mut expected_ids = Vec::new();
    for run in runs {
        let label = format!("{} {}", run["sdk"], run["dialect"]);
        for (scenario, facts) in run["scenarios"].as_object().unwrap() {
            let id = record_id(facts["session"].as_str().unwrap());
            expected_ids.push(id.clone());
            // The socket is closed; the record is closed right after (poll briefly).
            let mut record = Value::Null;
            for _ in 0..50 {
                record = get_json(&client, server, &format!("/api/v2/sessions/{id}")).await;
                if record["status"] != "active" && record["status"] != "created" {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let what = format!("{label} {scenario} session {id}");
            assert_eq!(record["status"], "completed", "{what}: {record}");
            assert!(record["ended_at"].is_string(), "{what}: {record}");
            assert!(
                record["output_tokens"].as_u64().unwrap_or(0) > 0,
                "{what}: {record}"
            );
            let events = get_json(
                &client,
                server,
                &format!("/api/v2/sessions/{id}/events?limit=100"),
            )
            .await;
            let items = events["items"].as_array().unwrap();
            assert!(items.len() < 100, "{what}: all events on one page");
            let of = |kind: &str| -> Vec<&Value> {
                items
                    .iter()
                    .filter(|e| e["event_type"] == kind)
                    .map(|e| &e["content"])
                    .collect()
            };
            let sequences: Vec<u64> = items.iter().map(|e| e["sequence"].as_u64().unwrap()).collect();
            let in_order: Vec<u64> = (1..=items.len() as u64).collect();
            assert_eq!(sequences, in_order, "{what}: events stored in order");
            let responses = of("response");
            assert!(
                responses
                    .iter()
                    .any(|r| r["status"] == "completed" && r["text"] == script.reply.as_str()),
                "{what}: a completed response with the reply: {responses:?}"
            );
            let transcripts = of("transcript");
            let heard = |source: &str, text: &str| {
                transcripts
                    .iter()
                    .any(|t| t["source"] == source && t["text"] == text && t["role"] == "user")
            };
            let errors: Vec<&str> = of("error").iter().filter_map(|e| e["code"].as_str()).collect();
            let system: Vec<&str> = of("system").iter().filter_map(|e| e["event"].as_str()).collect();
            assert_eq!(system.first(), Some(&"session.created"), "{what}: {system:?}");
            match scenario.as_str() {
                "text" => {
                    assert!(
                        heard("text", "Hi there!") && heard("text", "And again?"),
                        "{what}: {transcripts:?}"
                    );
                    assert_eq!(responses.len(), 2, "{what}");
                    assert_eq!(errors, ["invalid_value"], "{what}");
                }
                "vad" | "push_to_talk" => {
                    assert!(heard("audio", &script.transcript), "{what}: {transcripts:?}");
                }
                "barge_in" => {
                    assert!(heard("audio", &script.transcript), "{what}: {transcripts:?}");
                    assert!(
                        responses.iter().any(|r| r["status"] == "cancelled"),
                        "{what}: the interrupted response is stored as cancelled: {responses:?}"
                    );
                    assert!(
                        system.contains(&"conversation.item.truncated"),
                        "{what}: {system:?}"
                    );
                }
                "function_call" => {
                    let calls = of("tool_call");
                    assert_eq!(calls.len(), 1, "{what}: {calls:?}");
                    assert_eq!(calls[0]["name"], script.tool.as_str(), "{what}");
                    assert_eq!(calls[0]["call_id"], facts["call_id"], "{what}");
                    let results = of("tool_result");
                    assert_eq!(results.len(), 1, "{what}: {results:?}");
                    assert_eq!(results[0]["call_id"], facts["call_id"], "{what}");
                }
                "items" => {
                    assert!(
                        system.contains(&"conversation.item.deleted"),
                        "{what}: {system:?}"
                    );
                    assert!(heard("text", "first") && heard("text", "between"), "{what}");
                }
                "bad_input" => {
                    // `invalid_frame` (a binary frame) is answered by the connection layer, outside the engine's
                    // observer, and is not stored.
                    for code in [
                        "invalid_json",
                        "unknown_event",
                        "invalid_value",
                        "missing_required_parameter",
                        "input_audio_buffer_full",
                        "response_cancel_not_active",
                    ] {
                        assert!(errors.contains(&code), "{what}: error {code} stored: {errors:?}");
                    }
                }
                other => panic!("unknown scenario {other}"),
            }
        }
    }
    // Nothing else was opened, and nothing is left open.
    let listed = get_json(&client, server, "/api/v2/sessions?limit=100").await;
    let mut listed_ids: Vec<String> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            assert_eq!(s["status"], "completed", "{s}");
            s["id"].as_str().unwrap().to_owned()
        })
        .collect();
    listed_ids.sort();
    expected_ids.sort();
    assert_eq!(
        listed_ids, expected_ids,
        "the sessions stored are the ones the SDKs opened"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_sdk_ga_and_beta_clients_hold_scripted_conversations_over_ws() {
    let peers = peers();
    let script = script();
    let dir = TempDir::new();
    let server = Server::start(&dir.0, None).await;
    let base = format!("{}/v1", server.http_base());
    let ws_base = format!("ws://127.0.0.1:{}/v1", server.port);

    let ga = run_sdk(
        &server,
        &peers.python,
        &python_args("ga", &base, None, None),
        &[],
        "python GA (ws)",
    )
    .await;
    let beta = run_sdk(
        &server,
        &peers.python,
        &python_args("beta", &base, Some(&ws_base), None),
        &[],
        "python beta (ws, websocket_base_url)",
    )
    .await;
    for run in [&ga, &beta] {
        assert_eq!(run["version"], "3.57.0", "the pinned Python SDK ran: {run}");
        assert_eq!(run["transport"], "ws");
    }
    check_stored_sessions(&server, None, &[&ga, &beta], &script).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_sdk_and_python_beta_hold_scripted_conversations_over_tls() {
    let peers = peers();
    let script = script();
    let dir = TempDir::new();
    let tls = make_tls(&dir.0);
    let server = Server::start(&dir.0, Some(&tls)).await;
    let base = format!("{}/v1", server.http_base());
    let node = PathBuf::from("node");

    let mut runs = Vec::new();
    for dialect in ["ga", "beta"] {
        let mut args = node_args(dialect, &base, &tls.ca);
        args.insert(0, "--no-warnings".into());
        let label = format!("node {dialect} (wss)");
        let modules = [("AVB_OPENAI_NODE_MODULES", peers.node_modules.as_path())];
        let summary = run_sdk(&server, &node, &args, &modules, &label).await;
        assert_eq!(summary["version"], "6.49.0", "the pinned Node SDK ran: {summary}");
        assert_eq!(summary["transport"], "wss");
        runs.push(summary);
    }
    // The beta Python client without websocket_base_url always dials wss:// (reference §1).
    let beta = run_sdk(
        &server,
        &peers.python,
        &python_args("beta", &base, None, Some(&tls.ca)),
        &[],
        "python beta (wss, base_url only)",
    )
    .await;
    assert_eq!(beta["transport"], "wss");
    runs.push(beta);
    let refs: Vec<&Value> = runs.iter().collect();
    check_stored_sessions(&server, Some(&tls.ca), &refs, &script).await;
}
