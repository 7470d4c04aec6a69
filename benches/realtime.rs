//! Realtime load harness (issue 6): `/v1/realtime` sessions streaming 20 ms pcm16 frames at real time with server
//! VAD and the scripted engines, against the targets: ≥ 1,000 concurrent streaming sessions on this 2-core
//! machine, server-added latency from end of speech to the first `response.output_audio.delta` p99 ≤ 10 ms at that
//! load, barge-in reaction ≤ one 20 ms frame, ≤ 100 KiB per idle session with 10,000 idle sessions held.
//!
//! ```text
//! ulimit -n 65536   # each process needs a descriptor per session (10,000 idle + spare)
//! cargo bench --bench realtime
//! ```
//! Environment: `AVB_BENCH_SESSIONS` (streaming sessions, default 1000), `AVB_BENCH_IDLE` (idle sessions, default
//! 10000), `AVB_BENCH_CYCLES` (speech turns per streaming session, default 5), `AVB_BENCH_PHASES` (any of
//! `stream,barge,idle`, default all three), `AVB_BENCH_JSON` (summary path; default
//! `$CARGO_TARGET_DIR/bench-realtime.json`, else `target/bench-realtime.json`), `AVB_BENCH_SERVER_WRAP` (a
//! profiler command to run the server under, e.g. `heaptrack -o /tmp/ht`), `AVB_BENCH_SAMPLES` (a directory:
//! every latency and barge-in sample with its send time, one CSV per phase).
//!
//! # Processes
//! The server runs in a **child process** (this binary re-executed with `--avb-serve <script>`): the server is
//! assembled exactly as the binary does it (`avb_server::assemble` over a `ServerConfig`, `bootstrap` for the
//! demo API key, the job runner and API-key usage flusher running) and served by `avb_http_axum::serve` on
//! 127.0.0.1 with a multi-thread runtime (one worker per core). The load client is this process, on its own
//! 2-worker runtime. Both share the machine's two cores; their CPU use is reported next to the figures. Memory
//! figures are the child's `VmRSS` (`/proc/<pid>/status`), so the client's memory is excluded. The configuration
//! raises only what would stop a load test: the API-key rate limits, the per-tenant open-session cap (no cap) and
//! the demo tenant's monthly session quota.
//!
//! # Audio and turn bounds
//! Each streaming session sends the speech fixture `crates/avb-voice/tests/fixtures/hello_16k.wav` (0.5 s of
//! silence, ~1.6 s of speech, trailing silence; resampled to 24 kHz) followed by a gap of silence, `AVB_BENCH_CYCLES`
//! times, as base64 `input_audio_buffer.append` events, one per 20 ms on a per-session timer; sessions start
//! staggered over one cycle. The frames are encoded once up front, so sending costs the client only the write.
//!
//! The frame on which the server decides a turn boundary is not guessed from the fixture: the client runs the
//! server's own turn detector (`avb_voice::vad::TurnDetector` over `EarshotVad`, the same settings, the same 20 ms
//! pushes — the detector is deterministic) over the exact frame sequence it sends. That gives, per turn, the
//! **deciding frame**: the append whose processing completes `silence_duration_ms` (500 ms) of detected silence
//! (`speech_stopped`), or completes the speech minimum (`speech_started`). Every server `audio_end_ms` /
//! `audio_start_ms` is checked against the simulation; mismatches are counted and excluded.
//!
//! # Figures
//! - **Server-added latency** (phase `stream`, instant scripted engines: zero model and synthesis time):
//!   `t(first response.output_audio.delta of the turn's response received) − t(deciding frame sent)`, where
//!   "sent" is when the client's WebSocket write of that frame returned (the frame is in the kernel) and
//!   "received" is when the client's reader task got the message. It includes both loopback transits, the
//!   server's work on the deciding frame (JSON, base64, resampling, VAD), the commit of the turn (the item is
//!   announced without its audio), transcription, response creation, first token, first speech
//!   chunk, encoding, and client-side scheduling delay (see "client event-loop lag").
//! - **Barge-in reaction** (phase `barge`, paced engines: a long reply, one word per 150 ms, so a response lasts
//!   ~7 s and is still streaming audio when the next utterance starts): from the deciding frame of the
//!   interrupting `speech_started` — the append after which the detected speech reaches
//!   `min_interrupt_duration_ms` (500 ms, fixed by the server) — to the arrival of (a) `speech_started` and
//!   (b) `response.done` with status `cancelled`. "Algorithmic lag" is how much input audio the detector holds
//!   back unscored at that frame (resampler + detector frame), which the server cannot avoid.
//! - **Real time**: a frame counts as late when its write returned more than 20 ms after its schedule
//!   (`start + i × 20 ms`); a session kept real time when none of its frames was late. Late frames mean the
//!   machine (client or server) could not keep up; the latency figures of such a run are not meaningful.
//! - **Client event-loop lag**: how late a 5 ms timer on the client runtime fires (p50/p99/max) — the client's own
//!   contribution to every measured time.
//! - **Memory**: server `VmRSS` before any session, with the sessions connected and configured (idle), and at the
//!   end of streaming (active, after all turns) — per session = difference / sessions.

// Benchmark harness code fails loudly like test code does.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::too_many_lines,
    clippy::cast_precision_loss
)]

use base64::Engine as _;
use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

const FRAME: Duration = Duration::from_millis(20);
/// Samples per 20 ms frame at 24 kHz.
const FRAME_SAMPLES: usize = 480;
const RATE: u32 = 24_000;
/// Silence after each fixture: the instant engines answer within it; with the paced engines the next utterance
/// then starts while the reply is still streaming.
const GAP_STREAM_FRAMES: usize = 75;
const GAP_BARGE_FRAMES: usize = 25;
/// Silence after the last cycle before closing (lets the last response start).
const TAIL_FRAMES: usize = 75;
/// Concurrent WebSocket handshakes while connecting.
const CONNECT_CONCURRENCY: usize = 64;
/// The scripted language model's delay per word in the paced phase.
const PACED_TOKEN_DELAY_MS: u64 = 150;
/// `min_interrupt_duration_ms` of the server's turn detection (not configurable over the protocol).
const MIN_INTERRUPT_MS: u32 = 500;
const SILENCE_DURATION_MS: u32 = 500;

const INSTANT_SCRIPT: &str = r#"{
  "replies": [{"text": "Sure, I can help with that."}],
  "transcripts": ["hello can you hear me"]
}"#;

fn paced_script() -> String {
    let reply = "This is a deliberately long scripted answer that keeps talking for several seconds so that \
                 the caller can interrupt it at any moment while the audio is still streaming from the server \
                 to the client and the turn detector keeps listening for new speech from the caller";
    json!({
        "replies": [{"text": reply}],
        "transcripts": ["hello can you hear me"],
        "token_delay_ms": PACED_TOKEN_DELAY_MS,
    })
    .to_string()
}

fn session_update() -> String {
    json!({
        "type": "session.update",
        "session": {
            "type": "realtime",
            "output_modalities": ["audio"],
            "audio": {
                "input": {
                    "format": {"type": "audio/pcm", "rate": RATE},
                    "turn_detection": {
                        "type": "server_vad",
                        "threshold": 0.5,
                        "prefix_padding_ms": 300,
                        "silence_duration_ms": SILENCE_DURATION_MS,
                        "create_response": true,
                        "interrupt_response": true
                    }
                },
                "output": {"format": {"type": "audio/pcm", "rate": RATE}}
            }
        }
    })
    .to_string()
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

// ---- server (child process) -------------------------------------------------------------------------------------

/// `--avb-serve <script>`: serve until stdin closes. Prints `READY <addr> <api key>` once listening.
fn serve_main(script: &Path) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let mut config = avb_server::ServerConfig::defaults()?;
        config.rate_limit_api_key_per_minute = Some(100_000_000);
        config.rate_limit_api_key_per_hour = Some(100_000_000);
        config.realtime_max_sessions_per_tenant = Some(0);
        config.avb_voice_script = Some(script.to_path_buf());
        let assembled = avb_server::assemble(&config).await?;
        let app = assembled.app.clone();
        let identity = assembled.dev_identity.clone().ok_or("static identity")?;
        let made = avb_server::bootstrap::bootstrap(&app, &identity).await?;
        // The demo tenant is on the free tier (100 sessions a month): lift its quota for the load.
        let inner = app.inner();
        let system = avb_core::Ctx::system(avb_core::RequestId::generate(inner.ids.as_ref()), "bench", None);
        let raise: avb_tenancy::tenant::UpdateTenantRequest =
            serde_json::from_value(json!({"max_sessions_per_month": 100_000_000}))?;
        inner.tenants.update(&system, made.tenant_id, raise).await?;
        // As the binary's `serve`: permission-graph jobs and batched API-key usage keep running.
        let _jobs = avb_api::jobs::JobRunner::new(app.clone()).spawn(Duration::from_secs(1));
        let _flusher = inner
            .authenticator
            .api_keys()
            .usage()
            .spawn_flusher(Duration::from_secs(5), inner.ids.clone());
        let listener = avb_http_axum::bind("127.0.0.1:0".parse()?)?;
        let addr = listener.local_addr()?;
        println!("READY {addr} {}", made.api_key);
        std::io::stdout().flush()?;
        // The parent closes our stdin to stop us.
        std::thread::spawn(|| {
            let mut sink = String::new();
            while std::io::stdin().read_line(&mut sink).is_ok_and(|n| n > 0) {}
            std::process::exit(0);
        });
        avb_http_axum::serve(listener, app.clone(), std::future::pending()).await?;
        Ok(())
    })
}

/// The server child process.
struct Server {
    child: std::process::Child,
    /// Kept open so that late output (a wrapper's) never meets a closed pipe.
    _stdout: std::io::BufReader<std::process::ChildStdout>,
    addr: String,
    api_key: String,
}

impl Server {
    fn start(script: &Path) -> Self {
        let exe = std::env::current_exe().expect("current exe");
        // `AVB_BENCH_SERVER_WRAP` runs the server under a profiler (`heaptrack -o /tmp/ht`, `perf record -g --`);
        // memory figures are then the wrapper's.
        let wrap = std::env::var("AVB_BENCH_SERVER_WRAP").unwrap_or_default();
        let mut words = wrap.split_whitespace();
        let mut command = match words.next() {
            Some(program) => {
                let mut command = std::process::Command::new(program);
                command.args(words).arg(exe);
                command
            }
            None => std::process::Command::new(exe),
        };
        let mut child = command
            .arg("--avb-serve")
            .arg(script)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .expect("start the server process");
        let stdout = child.stdout.take().expect("stdout");
        let mut stdout = std::io::BufReader::new(stdout);
        let mut line = String::new();
        // A wrapper may print first.
        while !line.starts_with("READY ") {
            line.clear();
            let read = stdout.read_line(&mut line).expect("server output");
            assert!(read > 0, "the server exited before listening");
        }
        let mut parts = line.split_whitespace();
        assert_eq!(parts.next(), Some("READY"), "server said {line:?}");
        let addr = parts.next().expect("address").to_owned();
        let api_key = parts.next().expect("api key").to_owned();
        Self {
            child,
            _stdout: stdout,
            addr,
            api_key,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn rss_kib(&self) -> u64 {
        rss_kib(self.pid())
    }

    async fn stop(mut self) {
        drop(self.child.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---- /proc ------------------------------------------------------------------------------------------------------

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// User + system CPU time of a process, in clock ticks (1/100 s on Linux).
fn cpu_ticks(pid: &str) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the command: state(0) … utime(11) stime(12).
    let field = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    field(11) + field(12)
}

/// Machine-wide (busy, total) clock ticks over all cores.
fn machine_ticks() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let line = stat.lines().next().unwrap_or_default();
    let values: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let total: u64 = values.iter().take(8).sum();
    let idle = values.get(3).copied().unwrap_or(0) + values.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// CPU use over a window: the server, this client, and everything else on the machine.
struct CpuWindow {
    server_pid: String,
    at: Instant,
    server: u64,
    client: u64,
    machine: (u64, u64),
}

#[derive(Debug, Clone, Copy, Default)]
struct CpuUse {
    /// Percent of one core.
    server: f64,
    client: f64,
    others: f64,
    /// Percent of all cores.
    machine_busy: f64,
    /// CPU seconds the server used in the window.
    server_seconds: f64,
}

impl CpuWindow {
    fn start(server_pid: u32) -> Self {
        let server_pid = server_pid.to_string();
        Self {
            server: cpu_ticks(&server_pid),
            client: cpu_ticks("self"),
            machine: machine_ticks(),
            server_pid,
            at: Instant::now(),
        }
    }

    fn stop(&self) -> CpuUse {
        let secs = self.at.elapsed().as_secs_f64().max(1e-3);
        let server = (cpu_ticks(&self.server_pid) - self.server) as f64;
        let client = (cpu_ticks("self") - self.client) as f64;
        let (busy, total) = machine_ticks();
        let busy = (busy - self.machine.0) as f64;
        let total = (total - self.machine.1) as f64;
        // Ticks are 1/100 s: ticks / secs = percent of one core.
        CpuUse {
            server: server / secs,
            client: client / secs,
            others: ((busy - server - client) / secs).max(0.0),
            machine_busy: 100.0 * busy / total.max(1.0),
            server_seconds: server / 100.0,
        }
    }
}

fn open_files_limit() -> u64 {
    std::fs::read_to_string("/proc/self/limits")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

// ---- audio and the turn-detector simulation ---------------------------------------------------------------------

/// The 20 ms frames the client sends: the fixture's frames, then one silent frame (index `fixture_frames`).
struct Audio {
    samples: Vec<Vec<i16>>,
    messages: Vec<Utf8Bytes>,
    fixture_frames: usize,
}

impl Audio {
    fn load() -> Self {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/crates/avb-voice/tests/fixtures/hello_16k.wav"
        );
        let reader = hound::WavReader::open(path).expect("speech fixture");
        let spec = reader.spec();
        assert_eq!(
            (spec.sample_rate, spec.channels, spec.bits_per_sample),
            (16_000, 1, 16)
        );
        let speech: Vec<i16> = reader.into_samples::<i16>().map(Result::unwrap).collect();
        let speech = avb_voice::audio::Resampler::process_all(16_000, RATE, &speech).expect("resample");
        let mut samples: Vec<Vec<i16>> = speech
            .chunks(FRAME_SAMPLES)
            .map(|c| {
                let mut frame = c.to_vec();
                frame.resize(FRAME_SAMPLES, 0);
                frame
            })
            .collect();
        let fixture_frames = samples.len();
        samples.push(vec![0; FRAME_SAMPLES]);
        let messages = samples
            .iter()
            .map(|frame| {
                let bytes: Vec<u8> = frame.iter().flat_map(|s| s.to_le_bytes()).collect();
                let audio = base64::engine::general_purpose::STANDARD.encode(bytes);
                Utf8Bytes::from(format!(
                    r#"{{"type":"input_audio_buffer.append","audio":"{audio}"}}"#
                ))
            })
            .collect();
        Self {
            samples,
            messages,
            fixture_frames,
        }
    }

    /// `cycles` × (fixture, `gap` silent frames), then the tail: frame indices into `samples`.
    fn schedule(&self, cycles: usize, gap: usize) -> Vec<u16> {
        let silence = self.fixture_frames as u16;
        let mut schedule = Vec::new();
        for _ in 0..cycles {
            schedule.extend(0..self.fixture_frames as u16);
            schedule.extend(std::iter::repeat_n(silence, gap));
        }
        schedule.extend(std::iter::repeat_n(silence, TAIL_FRAMES));
        schedule
    }
}

/// A turn boundary as the server's detector decides it over the client's frames.
#[derive(Debug, Clone, Copy)]
struct Boundary {
    /// Index (in the schedule) of the append whose processing emits it.
    frame: usize,
    /// `audio_start_ms` / `audio_end_ms` the server reports.
    audio_ms: u64,
    /// Speech start while a response is in progress (needs `min_interrupt_duration_ms`).
    barge: bool,
    /// Input audio pushed but not yet scored by the detector at that frame, ms.
    held_back_ms: u64,
}

struct Simulated {
    starts: Vec<Boundary>,
    stops: Vec<Boundary>,
}

/// Runs the server's turn detector over `schedule`. With `reply_outlasts_gap`, a response is in progress from
/// each `speech_stopped` to the next `speech_started` (the paced engines), as the engine tells its detector.
fn simulate(audio: &Audio, schedule: &[u16], reply_outlasts_gap: bool) -> Simulated {
    use avb_voice::adapters::earshot::EarshotVad;
    use avb_voice::vad::{TurnDetectionConfig, TurnDetector, TurnEvent};
    let config = TurnDetectionConfig::default()
        .with_threshold(0.5)
        .with_prefix_padding_ms(300)
        .with_silence_duration_ms(SILENCE_DURATION_MS);
    assert_eq!(config.min_interrupt_duration_ms, MIN_INTERRUPT_MS);
    let mut detector = TurnDetector::new(config, Box::new(EarshotVad::new()), RATE).expect("detector");
    let mut responding = false;
    let mut out = Simulated {
        starts: Vec::new(),
        stops: Vec::new(),
    };
    let mut events = Vec::new();
    for (frame, &index) in schedule.iter().enumerate() {
        detector.set_agent_speaking(reply_outlasts_gap && responding);
        events.clear();
        detector
            .push(&audio.samples[usize::from(index)], &mut events)
            .expect("vad");
        let held_back_ms = detector.input_ms().saturating_sub(detector.position_ms());
        for event in &events {
            match *event {
                TurnEvent::SpeechStarted { audio_start_ms } => {
                    out.starts.push(Boundary {
                        frame,
                        audio_ms: audio_start_ms,
                        barge: reply_outlasts_gap && responding,
                        held_back_ms,
                    });
                    responding = false;
                }
                TurnEvent::SpeechStopped { audio_end_ms } => {
                    out.stops.push(Boundary {
                        frame,
                        audio_ms: audio_end_ms,
                        barge: false,
                        held_back_ms,
                    });
                    responding = true;
                }
            }
        }
    }
    out
}

// ---- client -----------------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Ev {
    Started(u64),
    Stopped(u64),
    Created,
    FirstDelta,
    Done(String),
}

#[derive(Debug, Default)]
struct Received {
    events: Vec<(Instant, Ev)>,
    messages: u64,
    bytes: u64,
    errors: Vec<String>,
}

#[derive(serde::Deserialize)]
struct Head {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    audio_start_ms: Option<u64>,
    #[serde(default)]
    audio_end_ms: Option<u64>,
    #[serde(default)]
    response: Option<ResponseHead>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(serde::Deserialize)]
struct ResponseHead {
    #[serde(default)]
    status: Option<String>,
}

/// Reads server events until the socket ends; signals `ready` at `session.updated`.
async fn read_events(mut stream: SplitStream<Ws>, ready: tokio::sync::oneshot::Sender<()>) -> Received {
    let mut ready = Some(ready);
    let mut received = Received::default();
    let mut want_delta = false;
    while let Some(message) = stream.next().await {
        let Ok(message) = message else {
            break;
        };
        let text = match message {
            Message::Text(text) => text,
            Message::Close(_) => break,
            _ => continue,
        };
        let now = Instant::now();
        received.messages += 1;
        received.bytes += text.len() as u64;
        // Audio deltas are most of the traffic: recognised without parsing their base64 — at the end of the
        // frame first, where this server writes the type (keys in sorted order), else anywhere in it.
        const DELTA_TYPE: &str = r#""type":"response.output_audio.delta""#;
        let tail = text.as_str().trim_end().strip_suffix('}').unwrap_or_default();
        if text.len() > 512 && (tail.ends_with(DELTA_TYPE) || text.as_str().contains(DELTA_TYPE)) {
            if want_delta {
                received.events.push((now, Ev::FirstDelta));
                want_delta = false;
            }
            continue;
        }
        let Ok(head) = serde_json::from_str::<Head>(text.as_str()) else {
            received.errors.push(format!(
                "unparsable event: {}",
                &text.as_str()[..text.len().min(200)]
            ));
            continue;
        };
        let event = match head.kind.as_str() {
            "session.updated" => {
                if let Some(ready) = ready.take() {
                    let _ = ready.send(());
                }
                continue;
            }
            "input_audio_buffer.speech_started" => Ev::Started(head.audio_start_ms.unwrap_or(u64::MAX)),
            "input_audio_buffer.speech_stopped" => Ev::Stopped(head.audio_end_ms.unwrap_or(u64::MAX)),
            "response.created" => {
                want_delta = true;
                Ev::Created
            }
            "response.done" => {
                want_delta = false;
                Ev::Done(head.response.and_then(|r| r.status).unwrap_or_default())
            }
            "error" => {
                received
                    .errors
                    .push(head.error.map(|e| e.to_string()).unwrap_or_default());
                continue;
            }
            _ => continue,
        };
        received.events.push((now, event));
    }
    received
}

/// A connected, configured session.
struct Conn {
    sink: SplitSink<Ws, Message>,
    reader: tokio::task::JoinHandle<Received>,
}

/// Connects and configures one session; returns it with the handshake time.
async fn connect(url: Arc<String>, key: Arc<String>) -> Result<(Conn, Duration), String> {
    let begun = Instant::now();
    let mut request = url.as_str().into_client_request().map_err(|e| e.to_string())?;
    request.headers_mut().insert(
        "authorization",
        HeaderValue::from_str(&format!("Bearer {key}")).map_err(|e| e.to_string())?,
    );
    let config = WebSocketConfig::default().read_buffer_size(8 * 1024);
    let (socket, _) = tokio_tungstenite::connect_async_with_config(request, Some(config), true)
        .await
        .map_err(|e| e.to_string())?;
    let handshake = begun.elapsed();
    let (mut sink, stream) = socket.split();
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let reader = tokio::spawn(read_events(stream, ready_tx));
    sink.send(Message::Text(session_update().into()))
        .await
        .map_err(|e| e.to_string())?;
    tokio::time::timeout(Duration::from_secs(30), ready_rx)
        .await
        .map_err(|_| "no session.updated within 30 s".to_owned())?
        .map_err(|_| "socket ended before session.updated".to_owned())?;
    Ok((Conn { sink, reader }, handshake))
}

/// Connects `n` sessions, `CONNECT_CONCURRENCY` handshakes at a time.
async fn connect_all(server: &Server, n: usize) -> (Vec<Conn>, Vec<Duration>, Vec<String>) {
    let url = Arc::new(format!("ws://{}/v1/realtime", server.addr));
    let key = Arc::new(server.api_key.clone());
    let gate = Arc::new(tokio::sync::Semaphore::new(CONNECT_CONCURRENCY));
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let (url, key, gate) = (url.clone(), key.clone(), gate.clone());
            tokio::spawn(async move {
                let _permit = gate.acquire_owned().await.expect("semaphore");
                connect(url, key).await
            })
        })
        .collect();
    let mut conns = Vec::with_capacity(n);
    let mut times = Vec::with_capacity(n);
    let mut errors = Vec::new();
    for task in tasks {
        match task.await.expect("connect task") {
            Ok((conn, time)) => {
                conns.push(conn);
                times.push(time);
            }
            Err(err) => errors.push(err),
        }
    }
    (conns, times, errors)
}

/// What the sender saw.
struct Sent {
    /// When each frame's write returned.
    at: Vec<Instant>,
    /// Per frame: how late its write returned relative to its schedule.
    late: Vec<Duration>,
    failed: bool,
}

/// Streams `schedule` at real time from `start`, then closes the socket.
async fn stream_frames(
    mut sink: SplitSink<Ws, Message>,
    audio: Arc<Audio>,
    schedule: Arc<Vec<u16>>,
    start: tokio::time::Instant,
) -> Sent {
    let mut ticks = tokio::time::interval_at(start, FRAME);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut sent = Sent {
        at: Vec::with_capacity(schedule.len()),
        late: Vec::with_capacity(schedule.len()),
        failed: false,
    };
    for &index in schedule.iter() {
        let due = ticks.tick().await;
        let message = Message::Text(audio.messages[usize::from(index)].clone());
        if sink.send(message).await.is_err() {
            sent.failed = true;
            break;
        }
        let now = tokio::time::Instant::now();
        sent.at.push(now.into_std());
        sent.late.push(now.saturating_duration_since(due));
    }
    let _ = sink.send(Message::Close(None)).await;
    let _ = sink.close().await;
    sent
}

/// Lateness of a 5 ms timer on the client runtime until `stop`.
async fn lag_probe(stop: Arc<AtomicBool>) -> Vec<Duration> {
    let mut ticks = tokio::time::interval(Duration::from_millis(5));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut lags = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let due = ticks.tick().await;
        lags.push(tokio::time::Instant::now().saturating_duration_since(due));
    }
    lags
}

// ---- analysis ---------------------------------------------------------------------------------------------------

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Nearest-rank percentiles of `values` (ms): (p50, p99, max, count).
#[derive(Debug, Clone, Copy, Default)]
struct Pct {
    p50: f64,
    p99: f64,
    max: f64,
    n: usize,
}

impl Pct {
    fn of(values: &[f64]) -> Self {
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        let at = |p: f64| {
            if v.is_empty() {
                return f64::NAN;
            }
            let rank = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len());
            v[rank - 1]
        };
        Self {
            p50: at(0.50),
            p99: at(0.99),
            max: v.last().copied().unwrap_or(f64::NAN),
            n: v.len(),
        }
    }

    fn json(&self) -> Value {
        let num = |x: f64| {
            if x.is_finite() {
                json!((x * 1000.0).round() / 1000.0)
            } else {
                Value::Null
            }
        };
        json!({"p50_ms": num(self.p50), "p99_ms": num(self.p99), "max_ms": num(self.max), "samples": self.n})
    }

    fn line(&self) -> String {
        format!(
            "p50 {:>7.2} ms   p99 {:>7.2} ms   max {:>7.2} ms   (n = {})",
            self.p50, self.p99, self.max, self.n
        )
    }
}

#[derive(Debug, Default)]
struct Tally {
    /// Every measured sample as (deciding frame sent, figure, ms), for `AVB_BENCH_SAMPLES`.
    samples: Vec<(Instant, &'static str, f64)>,
    latency_ms: Vec<f64>,
    /// Of which: deciding frame sent → `speech_stopped` received.
    to_stopped_ms: Vec<f64>,
    /// Latency by turn of the session (the conversation grows turn by turn).
    by_turn_ms: Vec<Vec<f64>>,
    barge_started_ms: Vec<f64>,
    barge_done_ms: Vec<f64>,
    barge_held_back_ms: Vec<f64>,
    stop_mismatches: usize,
    start_mismatches: usize,
    missing_delta: usize,
    barge_not_cancelled: usize,
    reply_ended_before_barge: usize,
    missing_events: usize,
}

/// Matches what a session received against the simulated boundaries.
fn analyse(sim: &Simulated, sent: &Sent, received: &Received, tally: &mut Tally) {
    let events = &received.events;
    let index_of = |pred: &dyn Fn(&Ev) -> bool, nth: usize| {
        events
            .iter()
            .enumerate()
            .filter(|(_, (_, e))| pred(e))
            .nth(nth)
            .map(|(i, _)| i)
    };
    for (n, stop) in sim.stops.iter().enumerate() {
        let Some(&sent_at) = sent.at.get(stop.frame) else {
            continue;
        };
        let Some(i) = index_of(&|e| matches!(e, Ev::Stopped(_)), n) else {
            tally.missing_events += 1;
            continue;
        };
        if !matches!(events[i].1, Ev::Stopped(ms) if ms == stop.audio_ms) {
            tally.stop_mismatches += 1;
            continue;
        }
        match events[i..].iter().find(|(_, e)| matches!(e, Ev::FirstDelta)) {
            Some((at, _)) => {
                let latency = ms(at.saturating_duration_since(sent_at));
                tally.latency_ms.push(latency);
                tally.samples.push((sent_at, "latency", latency));
                if tally.by_turn_ms.len() <= n {
                    tally.by_turn_ms.resize(n + 1, Vec::new());
                }
                tally.by_turn_ms[n].push(latency);
                tally
                    .to_stopped_ms
                    .push(ms(events[i].0.saturating_duration_since(sent_at)));
            }
            None => tally.missing_delta += 1,
        }
    }
    for (n, start) in sim.starts.iter().enumerate() {
        let Some(&sent_at) = sent.at.get(start.frame) else {
            continue;
        };
        let Some(i) = index_of(&|e| matches!(e, Ev::Started(_)), n) else {
            tally.missing_events += 1;
            continue;
        };
        if !matches!(events[i].1, Ev::Started(ms) if ms == start.audio_ms) {
            tally.start_mismatches += 1;
            continue;
        }
        if !start.barge {
            continue;
        }
        // The reply must still have been in progress when the deciding frame went out.
        let ended_before = events[..i]
            .iter()
            .rev()
            .take_while(|(_, e)| !matches!(e, Ev::Created))
            .any(|(at, e)| matches!(e, Ev::Done(_)) && *at <= sent_at);
        if ended_before {
            tally.reply_ended_before_barge += 1;
            continue;
        }
        tally
            .barge_started_ms
            .push(ms(events[i].0.saturating_duration_since(sent_at)));
        tally.barge_held_back_ms.push(start.held_back_ms as f64);
        match events[i..].iter().find(|(_, e)| matches!(e, Ev::Done(_))) {
            Some((at, Ev::Done(status))) if status == "cancelled" => {
                let done = ms(at.saturating_duration_since(sent_at));
                tally.barge_done_ms.push(done);
                tally.samples.push((sent_at, "barge_in", done));
            }
            _ => tally.barge_not_cancelled += 1,
        }
    }
}

/// Writes `<dir>/<phase>-samples.csv`: every measured figure with the time its deciding frame was sent (ms
/// from the first), in time order — to tell a load-wide stall (a tail of samples close in time) from queueing.
fn write_samples(dir: &Path, phase: &str, samples: &mut [(Instant, &'static str, f64)]) {
    samples.sort_by_key(|(at, _, _)| *at);
    let Some(&(first, _, _)) = samples.first() else {
        return;
    };
    let mut csv = String::from("figure,sent_ms,ms\n");
    for (at, figure, value) in samples.iter() {
        csv.push_str(&format!(
            "{figure},{:.3},{value:.3}\n",
            ms(at.saturating_duration_since(first))
        ));
    }
    let path = dir.join(format!("{phase}-samples.csv"));
    if let Err(err) = std::fs::write(&path, csv) {
        eprintln!("could not write {}: {err}", path.display());
    }
}

// ---- phases -----------------------------------------------------------------------------------------------------

struct StreamReport {
    name: &'static str,
    sessions: usize,
    cycles: usize,
    frames_per_session: usize,
    connected: usize,
    connect_errors: Vec<String>,
    handshake: Pct,
    tally: Tally,
    sessions_on_time: usize,
    late_frames: usize,
    frames: usize,
    frame_lateness: Pct,
    failed_sends: usize,
    client_lag: Pct,
    cpu: CpuUse,
    rss_base_kib: u64,
    rss_connected_kib: u64,
    rss_active_kib: u64,
    server_errors: usize,
    first_server_error: Option<String>,
    messages_in: u64,
    bytes_in: u64,
    seconds: f64,
    load_before: String,
    load_after: String,
}

async fn streaming_phase(
    name: &'static str,
    script: &Path,
    sessions: usize,
    cycles: usize,
    paced: bool,
) -> StreamReport {
    let audio = Arc::new(Audio::load());
    let gap = if paced {
        GAP_BARGE_FRAMES
    } else {
        GAP_STREAM_FRAMES
    };
    let schedule = Arc::new(audio.schedule(cycles, gap));
    let sim = Arc::new(simulate(&audio, &schedule, paced));
    assert_eq!(sim.stops.len(), cycles, "one turn per fixture");

    let load_before = loadavg();
    let server = Server::start(script);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_base_kib = server.rss_kib();
    println!(
        "[{name}] server pid {}; connecting {sessions} sessions…",
        server.pid()
    );
    let (conns, handshakes, connect_errors) = connect_all(&server, sessions).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_connected_kib = server.rss_kib();
    let connected = conns.len();
    println!(
        "[{name}] {connected} connected; streaming {cycles} turns each ({:.1} s per session)…",
        schedule.len() as f64 * 0.02
    );

    let stop_probe = Arc::new(AtomicBool::new(false));
    let probe = tokio::spawn(lag_probe(stop_probe.clone()));
    let cpu = CpuWindow::start(server.pid());
    let began = Instant::now();
    let cycle = (audio.fixture_frames + gap) as u32;
    let t0 = tokio::time::Instant::now() + Duration::from_millis(200);
    let mut streams = Vec::with_capacity(connected);
    let mut readers = Vec::with_capacity(connected);
    for (i, conn) in conns.into_iter().enumerate() {
        // Staggered over one cycle, on a 1 ms grid.
        let offset = Duration::from_millis(u64::from(cycle) * 20 * i as u64 / connected.max(1) as u64);
        streams.push(tokio::spawn(stream_frames(
            conn.sink,
            audio.clone(),
            schedule.clone(),
            t0 + offset,
        )));
        readers.push(conn.reader);
    }
    // Active memory: sampled when every session has sent its last turn (before the tail and closing).
    let last_turn_end =
        t0 + Duration::from_millis(u64::from(cycle) * 20) + FRAME * (schedule.len() - TAIL_FRAMES) as u32;
    tokio::time::sleep_until(last_turn_end).await;
    let rss_active_kib = server.rss_kib();
    let mut sents = Vec::with_capacity(connected);
    for s in streams {
        sents.push(s.await.expect("stream task"));
    }
    let cpu = cpu.stop();
    let seconds = began.elapsed().as_secs_f64();
    stop_probe.store(true, Ordering::Relaxed);
    let lags: Vec<f64> = probe.await.expect("probe").into_iter().map(ms).collect();
    let mut receiveds = Vec::with_capacity(connected);
    for r in readers {
        let received = tokio::time::timeout(Duration::from_secs(20), r)
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default();
        receiveds.push(received);
    }
    server.stop().await;
    let load_after = loadavg();

    let mut tally = Tally::default();
    let mut lateness = Vec::new();
    let mut sessions_on_time = 0;
    let mut late_frames = 0;
    let mut frames = 0;
    let mut failed_sends = 0;
    let mut server_errors = 0;
    let mut first_server_error = None;
    let (mut messages_in, mut bytes_in) = (0, 0);
    for (sent, received) in sents.iter().zip(&receiveds) {
        analyse(&sim, sent, received, &mut tally);
        let late = sent.late.iter().filter(|l| **l > FRAME).count();
        if late == 0 && !sent.failed && sent.at.len() == schedule.len() {
            sessions_on_time += 1;
        }
        late_frames += late;
        frames += sent.late.len();
        failed_sends += usize::from(sent.failed);
        lateness.extend(sent.late.iter().map(|d| ms(*d)));
        server_errors += received.errors.len();
        if first_server_error.is_none() {
            first_server_error = received.errors.first().cloned();
        }
        messages_in += received.messages;
        bytes_in += received.bytes;
    }
    if let Ok(dir) = std::env::var("AVB_BENCH_SAMPLES") {
        write_samples(Path::new(&dir), name, &mut tally.samples);
    }
    StreamReport {
        name,
        sessions,
        cycles,
        frames_per_session: schedule.len(),
        connected,
        connect_errors,
        handshake: Pct::of(&handshakes.iter().map(|d| ms(*d)).collect::<Vec<_>>()),
        tally,
        sessions_on_time,
        late_frames,
        frames,
        frame_lateness: Pct::of(&lateness),
        failed_sends,
        client_lag: Pct::of(&lags),
        cpu,
        rss_base_kib,
        rss_connected_kib,
        rss_active_kib,
        server_errors,
        first_server_error,
        messages_in,
        bytes_in,
        seconds,
        load_before,
        load_after,
    }
}

struct IdleReport {
    sessions: usize,
    connected: usize,
    connect_errors: Vec<String>,
    handshake: Pct,
    connect_seconds: f64,
    rss_base_kib: u64,
    rss_idle_kib: u64,
    still_open: usize,
    load: String,
}

async fn idle_phase(script: &Path, sessions: usize) -> IdleReport {
    let server = Server::start(script);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_base_kib = server.rss_kib();
    println!(
        "[idle] server pid {}; connecting {sessions} sessions…",
        server.pid()
    );
    let began = Instant::now();
    let (conns, handshakes, connect_errors) = connect_all(&server, sessions).await;
    let connect_seconds = began.elapsed().as_secs_f64();
    let connected = conns.len();
    println!("[idle] {connected} connected in {connect_seconds:.1} s; holding them 5 s…");
    tokio::time::sleep(Duration::from_secs(5)).await;
    let rss_idle_kib = server.rss_kib();
    let still_open = conns.iter().filter(|c| !c.reader.is_finished()).count();
    let load = loadavg();
    for mut conn in conns {
        let _ = conn.sink.close().await;
    }
    server.stop().await;
    IdleReport {
        sessions,
        connected,
        connect_errors,
        handshake: Pct::of(&handshakes.iter().map(|d| ms(*d)).collect::<Vec<_>>()),
        connect_seconds,
        rss_base_kib,
        rss_idle_kib,
        still_open,
        load,
    }
}

// ---- report -----------------------------------------------------------------------------------------------------

fn per_session(after: u64, before: u64, n: usize) -> f64 {
    (after as f64 - before as f64) / n.max(1) as f64
}

fn verdict(ok: bool) -> &'static str {
    if ok { "meets" } else { "MISSES" }
}

impl StreamReport {
    /// Server CPU time over the phase / (sessions × seconds of audio each streamed).
    fn server_us_per_session_second(&self) -> f64 {
        let streamed = self.connected.max(1) as f64 * self.frames_per_session as f64 * FRAME.as_secs_f64();
        self.cpu.server_seconds * 1e6 / streamed
    }
}

fn print_stream(r: &StreamReport) {
    let t = &r.tally;
    println!("\n== phase {} ==", r.name);
    println!(
        "sessions              {} requested, {} connected ({} connect errors{})",
        r.sessions,
        r.connected,
        r.connect_errors.len(),
        r.connect_errors
            .first()
            .map(|e| format!(", first: {e}"))
            .unwrap_or_default()
    );
    println!("handshake+update      {}", r.handshake.line());
    println!(
        "kept real time        {} of {} sessions (no frame > 20 ms late); late frames {} of {} ({:.3} %), failed sends {}",
        r.sessions_on_time,
        r.connected,
        r.late_frames,
        r.frames,
        100.0 * r.late_frames as f64 / r.frames.max(1) as f64,
        r.failed_sends
    );
    println!("frame send lateness   {}", r.frame_lateness.line());
    println!("client event-loop lag {}", r.client_lag.line());
    println!(
        "CPU (% of one core)   server {:.0} %, client {:.0} %, other processes {:.0} %; machine busy {:.0} % of 2 cores over {:.1} s",
        r.cpu.server, r.cpu.client, r.cpu.others, r.cpu.machine_busy, r.seconds
    );
    println!(
        "server CPU per session {:.0} µs per second of streamed audio (CPU time, so roughly independent of other load)",
        r.server_us_per_session_second()
    );
    println!(
        "load average          before {} / after {}",
        r.load_before, r.load_after
    );
    println!(
        "server → client       {} events, {:.1} MiB",
        r.messages_in,
        r.bytes_in as f64 / 1_048_576.0
    );
    println!(
        "latency end of speech → first audio delta   {}",
        Pct::of(&t.latency_ms).line()
    );
    println!(
        "  of which → speech_stopped received        {}",
        Pct::of(&t.to_stopped_ms).line()
    );
    let by_turn: Vec<String> = t
        .by_turn_ms
        .iter()
        .enumerate()
        .map(|(n, v)| {
            let p = Pct::of(v);
            format!("{}: {:.2}/{:.2}", n + 1, p.p50, p.p99)
        })
        .collect();
    println!(
        "  p50/p99 ms by turn of the session          {}",
        by_turn.join("   ")
    );
    if !t.barge_started_ms.is_empty() || !t.barge_done_ms.is_empty() {
        println!(
            "barge-in → speech_started                   {}",
            Pct::of(&t.barge_started_ms).line()
        );
        println!(
            "barge-in → response.done (cancelled)        {}",
            Pct::of(&t.barge_done_ms).line()
        );
        println!(
            "detector audio held back at deciding frame  {}",
            Pct::of(&t.barge_held_back_ms).line()
        );
    }
    println!(
        "checks                turn-end mismatches {}, speech-start mismatches {}, missing events {}, turns without audio {}, barge-ins not cancelled {}, replies over before barge-in {}, server error events {}{}",
        t.stop_mismatches,
        t.start_mismatches,
        t.missing_events,
        t.missing_delta,
        t.barge_not_cancelled,
        t.reply_ended_before_barge,
        r.server_errors,
        r.first_server_error
            .as_ref()
            .map(|e| format!(" (first: {e})"))
            .unwrap_or_default()
    );
    println!(
        "server RSS            {} KiB before, {} KiB connected ({:.1} KiB/session), {} KiB after all turns ({:.1} KiB/active session)",
        r.rss_base_kib,
        r.rss_connected_kib,
        per_session(r.rss_connected_kib, r.rss_base_kib, r.connected),
        r.rss_active_kib,
        per_session(r.rss_active_kib, r.rss_base_kib, r.connected)
    );
    println!(
        "                      growth while streaming: {:.1} KiB per session per turn ({} turns)",
        per_session(r.rss_active_kib, r.rss_connected_kib, r.connected) / r.cycles as f64,
        r.cycles
    );
}

fn stream_json(r: &StreamReport) -> Value {
    let t = &r.tally;
    json!({
        "sessions_requested": r.sessions,
        "sessions_connected": r.connected,
        "connect_errors": r.connect_errors.len(),
        "handshake": r.handshake.json(),
        "sessions_kept_real_time": r.sessions_on_time,
        "late_frames": r.late_frames,
        "frames": r.frames,
        "frame_send_lateness": r.frame_lateness.json(),
        "client_event_loop_lag": r.client_lag.json(),
        "cpu_percent_of_one_core": {"server": r.cpu.server.round(), "client": r.cpu.client.round(), "other_processes": r.cpu.others.round()},
        "machine_busy_percent": r.cpu.machine_busy.round(),
        "server_cpu_us_per_session_second": r.server_us_per_session_second().round(),
        "load_average_before": r.load_before,
        "load_average_after": r.load_after,
        "seconds": (r.seconds * 10.0).round() / 10.0,
        "latency_end_of_speech_to_first_audio_delta": Pct::of(&t.latency_ms).json(),
        "latency_end_of_speech_to_speech_stopped": Pct::of(&t.to_stopped_ms).json(),
        "latency_by_turn": t.by_turn_ms.iter().map(|v| Pct::of(v).json()).collect::<Vec<_>>(),
        "barge_in_to_speech_started": Pct::of(&t.barge_started_ms).json(),
        "barge_in_to_response_cancelled": Pct::of(&t.barge_done_ms).json(),
        "detector_held_back_at_barge_in": Pct::of(&t.barge_held_back_ms).json(),
        "checks": {
            "turn_end_mismatches": t.stop_mismatches,
            "speech_start_mismatches": t.start_mismatches,
            "missing_events": t.missing_events,
            "turns_without_audio": t.missing_delta,
            "barge_ins_not_cancelled": t.barge_not_cancelled,
            "replies_over_before_barge_in": t.reply_ended_before_barge,
            "server_error_events": r.server_errors,
        },
        "server_rss_kib": {"before": r.rss_base_kib, "connected": r.rss_connected_kib, "after_all_turns": r.rss_active_kib},
        "kib_per_connected_session": per_session(r.rss_connected_kib, r.rss_base_kib, r.connected).round(),
        "kib_per_active_session": per_session(r.rss_active_kib, r.rss_base_kib, r.connected).round(),
        "kib_growth_per_session_per_turn": (per_session(r.rss_active_kib, r.rss_connected_kib, r.connected) / r.cycles as f64).round(),
    })
}

fn json_path() -> PathBuf {
    if let Ok(path) = std::env::var("AVB_BENCH_JSON") {
        return PathBuf::from(path);
    }
    let dir = std::env::var("CARGO_TARGET_DIR").map_or_else(
        |_| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"),
        PathBuf::from,
    );
    dir.join("bench-realtime.json")
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--avb-serve") {
        let script = PathBuf::from(args.get(i + 1).expect("--avb-serve <script>"));
        if let Err(err) = serve_main(&script) {
            eprintln!("server: {err}");
            std::process::exit(1);
        }
        return;
    }

    let sessions = env_usize("AVB_BENCH_SESSIONS", 1000);
    let idle = env_usize("AVB_BENCH_IDLE", 10_000);
    let cycles = env_usize("AVB_BENCH_CYCLES", 5).max(2);
    let phases = std::env::var("AVB_BENCH_PHASES").unwrap_or_else(|_| "stream,barge,idle".into());
    let wants = |p: &str| phases.split(',').any(|x| x.trim() == p);
    let needed = (sessions.max(if wants("idle") { idle } else { 0 }) + 256) as u64;
    let limit = open_files_limit();
    if limit < needed {
        eprintln!(
            "error: the open-files limit is {limit}, this run needs ≥ {needed} per process \
             (server and client each hold one descriptor per session): run `ulimit -n 65536` first"
        );
        std::process::exit(2);
    }

    let dir = std::env::temp_dir().join(format!("avb-bench-realtime-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let instant = dir.join("instant.json");
    let paced = dir.join("paced.json");
    std::fs::write(&instant, INSTANT_SCRIPT).expect("script");
    std::fs::write(&paced, paced_script()).expect("script");

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    println!(
        "realtime load: {sessions} streaming sessions × {cycles} turns, {idle} idle sessions; machine: {} cores, load average {}",
        std::thread::available_parallelism().map_or(0, std::num::NonZero::get),
        loadavg()
    );
    println!(
        "server in a child process (2 runtime workers), client in this process (2 workers); server VAD \
         silence_duration_ms {SILENCE_DURATION_MS}, min_interrupt_duration_ms {MIN_INTERRUPT_MS}"
    );
    let mut summary = json!({
        "machine": {
            "cores": std::thread::available_parallelism().map_or(0, std::num::NonZero::get),
            "load_average_at_start": loadavg(),
        },
        "definitions": {
            "latency": "t(first response.output_audio.delta received) - t(write returned of the append whose processing completes silence_duration_ms of detected silence), instant scripted engines",
            "barge_in": "t(speech_started / response.done cancelled received) - t(write returned of the append after which detected speech reaches min_interrupt_duration_ms while a reply streams)",
            "kept_real_time": "no frame's write returned more than 20 ms after its schedule",
            "memory": "server child process VmRSS difference / sessions",
        },
        "silence_duration_ms": SILENCE_DURATION_MS,
        "min_interrupt_duration_ms": MIN_INTERRUPT_MS,
        "cycles": cycles,
    });

    let stream = wants("stream")
        .then(|| runtime.block_on(streaming_phase("stream", &instant, sessions, cycles, false)));
    if let Some(r) = &stream {
        print_stream(r);
        summary["stream"] = stream_json(r);
    }
    let barge =
        wants("barge").then(|| runtime.block_on(streaming_phase("barge", &paced, sessions, cycles, true)));
    if let Some(r) = &barge {
        print_stream(r);
        let mut j = stream_json(r);
        j["scripted_first_token_delay_ms"] = json!(PACED_TOKEN_DELAY_MS);
        summary["barge"] = j;
    }
    let idle_report = wants("idle").then(|| runtime.block_on(idle_phase(&instant, idle)));
    if let Some(r) = &idle_report {
        println!("\n== phase idle ==");
        println!(
            "sessions              {} requested, {} connected in {:.1} s ({} connect errors{}), {} still open after 5 s",
            r.sessions,
            r.connected,
            r.connect_seconds,
            r.connect_errors.len(),
            r.connect_errors
                .first()
                .map(|e| format!(", first: {e}"))
                .unwrap_or_default(),
            r.still_open
        );
        println!("handshake+update      {}", r.handshake.line());
        println!(
            "server RSS            {} KiB before, {} KiB with the idle sessions: {:.1} KiB per idle session (load average {})",
            r.rss_base_kib,
            r.rss_idle_kib,
            per_session(r.rss_idle_kib, r.rss_base_kib, r.connected),
            r.load
        );
        summary["idle"] = json!({
            "sessions_requested": r.sessions,
            "sessions_connected": r.connected,
            "still_open_after_5s": r.still_open,
            "connect_errors": r.connect_errors.len(),
            "connect_seconds": (r.connect_seconds * 10.0).round() / 10.0,
            "handshake": r.handshake.json(),
            "server_rss_kib": {"before": r.rss_base_kib, "idle": r.rss_idle_kib},
            "kib_per_idle_session": per_session(r.rss_idle_kib, r.rss_base_kib, r.connected).round(),
            "load_average": r.load,
        });
    }
    let _ = std::fs::remove_dir_all(&dir);

    println!("\n== targets ==");
    if let Some(r) = &stream {
        let lat = Pct::of(&r.tally.latency_ms);
        println!(
            "≥ 1000 concurrent streaming sessions kept real time: {} of {} → {}",
            r.sessions_on_time,
            r.sessions,
            verdict(r.sessions_on_time >= 1000)
        );
        println!(
            "server-added latency p99 ≤ 10 ms at that load: {:.2} ms → {}",
            lat.p99,
            verdict(lat.p99 <= 10.0 && r.sessions_on_time >= 1000)
        );
        println!(
            "memory per active session: {:.1} KiB (after {cycles} turns; no target)",
            per_session(r.rss_active_kib, r.rss_base_kib, r.connected)
        );
    }
    if let Some(r) = &barge {
        let done = Pct::of(&r.tally.barge_done_ms);
        println!(
            "barge-in ≤ one 20 ms frame after the {MIN_INTERRUPT_MS} ms minimum: response.done(cancelled) p99 {:.2} ms → {}",
            done.p99,
            verdict(done.p99 <= 20.0)
        );
    }
    if let Some(r) = &idle_report {
        let kib = per_session(r.rss_idle_kib, r.rss_base_kib, r.connected);
        println!(
            "≤ 100 KiB per idle session with 10,000 held: {kib:.1} KiB, {} held → {}",
            r.still_open,
            verdict(kib <= 100.0 && r.still_open >= 10_000)
        );
    }
    summary["load_average_at_end"] = json!(loadavg());
    let path = json_path();
    if let Some(parent) = path.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    std::fs::write(&path, serde_json::to_string_pretty(&summary).expect("json")).expect("write summary");
    println!("\nsummary written to {}", path.display());
}
