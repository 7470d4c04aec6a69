//! The metering decorators: one record per engine request (at its end or its drop, never twice), labels from
//! the request or the decorator's defaults, usage and durations as the inner stream and the clock say, and
//! streams that pass through unchanged.

use async_trait::async_trait;
use avb_core::{Ctx, RequestId, UuidV7Ids};
use avb_voice::Error;
use avb_voice::adapters::{EarshotVad, ScriptedLlm, ScriptedReply, ScriptedStt, ToneTts};
use avb_voice::audio::{AudioFormat, synth};
use avb_voice::llm::{ChatEvent, ChatMessage, ChatRequest, ChatStream, LanguageModel};
use avb_voice::metered::{
    LlmRecord, MeterLabels, MeteredLanguageModel, MeteredSpeechToText, MeteredTextToSpeech, SttRecord,
    TtsRecord, VoiceMeter,
};
use avb_voice::realtime::engine::SessionPorts;
use avb_voice::stt::{SpeechToText, SttConfig, SttEvent, SttStream};
use avb_voice::tts::{TextToSpeech, TtsChunk, TtsConfig, TtsStream};
use avb_voice::vad::VoiceActivityDetector;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

fn ctx() -> Ctx {
    Ctx::system(RequestId::generate(&UuidV7Ids), "test", None)
}

#[derive(Debug, Default)]
struct Recorder {
    stt: Mutex<Vec<SttRecord>>,
    tts: Mutex<Vec<TtsRecord>>,
    llm: Mutex<Vec<LlmRecord>>,
}

impl Recorder {
    fn stt(&self) -> Vec<SttRecord> {
        self.stt.lock().unwrap().clone()
    }
    fn tts(&self) -> Vec<TtsRecord> {
        self.tts.lock().unwrap().clone()
    }
    fn llm(&self) -> Vec<LlmRecord> {
        self.llm.lock().unwrap().clone()
    }
}

impl VoiceMeter for Recorder {
    fn stt(&self, record: &SttRecord) {
        self.stt.lock().unwrap().push(record.clone());
    }
    fn tts(&self, record: &TtsRecord) {
        self.tts.lock().unwrap().push(record.clone());
    }
    fn llm(&self, record: &LlmRecord) {
        self.llm.lock().unwrap().push(record.clone());
    }
}

/// Engines that cannot be reached.
#[derive(Debug)]
struct Down;

#[async_trait]
impl SpeechToText for Down {
    async fn open(&self, _ctx: &Ctx, _config: SttConfig) -> avb_voice::Result<Box<dyn SttStream>> {
        Err(Error::unavailable("down", "connection refused"))
    }
}

#[async_trait]
impl TextToSpeech for Down {
    async fn open(&self, _ctx: &Ctx, _config: TtsConfig) -> avb_voice::Result<Box<dyn TtsStream>> {
        Err(Error::unavailable("down", "connection refused"))
    }
}

#[async_trait]
impl LanguageModel for Down {
    async fn stream(
        &self,
        _ctx: &Ctx,
        _request: ChatRequest,
        _cancel: CancellationToken,
    ) -> avb_voice::Result<Box<dyn ChatStream>> {
        Err(Error::unavailable("down", "connection refused"))
    }
}

fn speech() -> Vec<i16> {
    [
        synth::silence(16_000, 200),
        synth::synthetic_vowel(16_000, 900, 9_000),
        synth::silence(16_000, 150),
    ]
    .concat()
}

const LINE: &str = "book a table for two";

async fn stt_events(stream: &mut dyn SttStream) -> Vec<SttEvent> {
    let mut out = Vec::new();
    while let Some(event) = stream.next_event().await.unwrap() {
        out.push(event);
    }
    out
}

async fn push(stream: &mut dyn SttStream, audio: &[i16]) {
    for frame in audio.chunks(320) {
        stream.push_audio(frame).await.unwrap();
    }
}

#[tokio::test]
async fn metered_stt_records_once_with_the_requests_labels_and_passes_events_through() {
    let meter = Arc::new(Recorder::default());
    let stt = MeteredSpeechToText::new(Arc::new(ScriptedStt::new([LINE])), meter.clone()).with_model("base");
    let config = SttConfig::new(16_000).with_model("whisper-1").with_language("en");
    let mut stream = stt.open(&ctx(), config.clone()).await.unwrap();
    push(stream.as_mut(), &speech()).await;
    stream.finish().await.unwrap();
    let got = stt_events(stream.as_mut()).await;
    let usage = stream.usage();

    let mut plain = ScriptedStt::new([LINE]).open(&ctx(), config).await.unwrap();
    push(plain.as_mut(), &speech()).await;
    plain.finish().await.unwrap();
    assert_eq!(got, stt_events(plain.as_mut()).await);
    assert!(got.len() > 1, "partials and a final: {got:?}");

    // The end is recorded at once; reading past it and dropping add nothing.
    assert_eq!(meter.stt().len(), 1);
    assert_eq!(stream.next_event().await.unwrap(), None);
    drop(stream);
    let records = meter.stt();
    assert_eq!(records.len(), 1, "{records:?}");
    let record = &records[0];
    assert_eq!(record.model, "whisper-1");
    assert_eq!(record.language, "en");
    assert_eq!(usage.audio_ms, 1_250);
    assert_eq!(record.audio_seconds, usage.audio_seconds());
    assert!(record.processing.is_some());
}

#[tokio::test]
async fn metered_stt_labels_default_to_the_decorators_model_and_auto() {
    let meter = Arc::new(Recorder::default());
    let inner: Arc<dyn SpeechToText> = Arc::new(ScriptedStt::new([LINE, LINE, LINE]));
    let configured = MeteredSpeechToText::new(inner.clone(), meter.clone()).with_model("base");
    let plain = MeteredSpeechToText::new(inner, meter.clone());
    drop(configured.open(&ctx(), SttConfig::new(16_000)).await.unwrap());
    drop(plain.open(&ctx(), SttConfig::new(16_000)).await.unwrap());
    // An empty model or language is no label at all.
    let mut empty = SttConfig::new(16_000);
    empty.model = Some(String::new());
    empty.language = Some(String::new());
    drop(plain.open(&ctx(), empty).await.unwrap());
    let labels: Vec<(String, String)> = meter.stt().into_iter().map(|r| (r.model, r.language)).collect();
    assert_eq!(
        labels,
        [
            ("base".to_owned(), "auto".to_owned()),
            ("default".to_owned(), "auto".to_owned()),
            ("default".to_owned(), "auto".to_owned()),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn metered_stt_processing_runs_from_finish_to_the_end_of_the_stream() {
    let meter = Arc::new(Recorder::default());
    let stt = MeteredSpeechToText::new(Arc::new(ScriptedStt::new([LINE])), meter.clone());
    let mut stream = stt.open(&ctx(), SttConfig::new(16_000)).await.unwrap();
    push(stream.as_mut(), &speech()).await;
    // Time before `finish` (the user speaking) is not processing.
    tokio::time::advance(Duration::from_secs(5)).await;
    stream.finish().await.unwrap();
    tokio::time::advance(Duration::from_millis(300)).await;
    // A refused second `finish` does not restart the clock.
    assert!(matches!(stream.finish().await, Err(Error::InvalidState(_))));
    tokio::time::advance(Duration::from_millis(120)).await;
    stt_events(stream.as_mut()).await;
    tokio::time::advance(Duration::from_secs(1)).await;
    drop(stream);
    let records = meter.stt();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].processing, Some(Duration::from_millis(420)));
}

#[tokio::test]
async fn metered_stt_dropped_early_records_once_without_processing() {
    let meter = Arc::new(Recorder::default());
    let stt = MeteredSpeechToText::new(Arc::new(ScriptedStt::new([LINE, LINE])), meter.clone());

    // Finished, one event read, then dropped: no end, so no processing time.
    let mut stream = stt.open(&ctx(), SttConfig::new(16_000)).await.unwrap();
    push(stream.as_mut(), &speech()).await;
    stream.finish().await.unwrap();
    assert!(matches!(
        stream.next_event().await.unwrap(),
        Some(SttEvent::Partial(_))
    ));
    drop(stream);

    // Never finished (a cleared buffer).
    let mut stream = stt.open(&ctx(), SttConfig::new(16_000)).await.unwrap();
    push(stream.as_mut(), &synth::silence(16_000, 300)).await;
    drop(stream);

    let records = meter.stt();
    assert_eq!(records.len(), 2, "{records:?}");
    assert_eq!(records[0].audio_seconds, 1.25);
    assert_eq!(records[0].processing, None);
    assert_eq!(records[1].audio_seconds, 0.3);
    assert_eq!(records[1].processing, None);
}

#[tokio::test]
async fn metered_ports_record_nothing_and_pass_the_error_when_open_fails() {
    let meter = Arc::new(Recorder::default());
    let ports = SessionPorts {
        llm: Arc::new(Down),
        stt: Arc::new(Down),
        tts: Arc::new(Down),
        vad: None,
    }
    .metered(meter.clone(), MeterLabels::new());
    let stt = ports.stt.open(&ctx(), SttConfig::new(16_000)).await.unwrap_err();
    assert!(
        matches!(stt, Error::Unavailable { provider: "down", .. }),
        "{stt:?}"
    );
    let tts = ports
        .tts
        .open(&ctx(), TtsConfig::new("alloy", AudioFormat::PCM16_24K))
        .await
        .unwrap_err();
    assert!(
        matches!(tts, Error::Unavailable { provider: "down", .. }),
        "{tts:?}"
    );
    let llm = ports
        .llm
        .stream(&ctx(), ChatRequest::default(), CancellationToken::new())
        .await
        .unwrap_err();
    assert!(
        matches!(llm, Error::Unavailable { provider: "down", .. }),
        "{llm:?}"
    );

    // A real adapter refusing its config: same.
    let stt = MeteredSpeechToText::new(Arc::new(ScriptedStt::new([LINE])), meter.clone());
    let refused = stt.open(&ctx(), SttConfig::new(12_345)).await.unwrap_err();
    assert!(matches!(refused, Error::UnsupportedFormat(_)), "{refused:?}");
    let tts = MeteredTextToSpeech::new(Arc::new(ToneTts::default()), meter.clone());
    let refused = tts
        .open(&ctx(), TtsConfig::new(" ", AudioFormat::PCM16_24K))
        .await
        .unwrap_err();
    assert!(
        matches!(refused, Error::InvalidConfig { field: "voice", .. }),
        "{refused:?}"
    );

    assert!(meter.stt().is_empty());
    assert!(meter.tts().is_empty());
    assert!(meter.llm().is_empty());
}

async fn tts_chunks(tts: &dyn TextToSpeech, config: TtsConfig) -> (Vec<TtsChunk>, Box<dyn TtsStream>) {
    let mut stream = tts.open(&ctx(), config).await.unwrap();
    stream.push_text("Hello there, ").await.unwrap();
    stream.push_text("général!").await.unwrap();
    stream.finish().await.unwrap();
    let mut chunks = Vec::new();
    while let Some(chunk) = stream.next_chunk().await.unwrap() {
        chunks.push(chunk);
    }
    (chunks, stream)
}

#[tokio::test(start_paused = true)]
async fn metered_tts_records_once_with_usage_and_the_time_from_open_to_the_end() {
    let meter = Arc::new(Recorder::default());
    let tone = ToneTts::default().with_chunk_delay(Duration::from_millis(40));
    let config = TtsConfig::new("alloy", AudioFormat::PCM16_24K);
    let tts = MeteredTextToSpeech::new(Arc::new(tone.clone()), meter.clone()).with_language("fr");
    // Cancel-safe: a call that loses a race (dropped before its chunk is ready) loses nothing.
    let mut raced = tts.open(&ctx(), config.clone()).await.unwrap();
    raced.push_text("ab ").await.unwrap();
    let lost = tokio::time::timeout(Duration::from_millis(10), raced.next_chunk()).await;
    assert!(lost.is_err(), "{lost:?}");
    let chunk = raced.next_chunk().await.unwrap().unwrap();
    assert_eq!(
        (chunk.start_ms, chunk.text_range.start),
        (0, 0),
        "the first chunk, not lost"
    );
    drop(raced);
    meter.tts.lock().unwrap().clear();

    let (chunks, mut stream) = tts_chunks(&tts, config.clone()).await;
    let usage = stream.usage();
    let (plain, _) = tts_chunks(&tone, config).await;
    assert_eq!(chunks, plain);

    assert_eq!(stream.next_chunk().await.unwrap(), None);
    tokio::time::advance(Duration::from_secs(3)).await;
    drop(stream);
    let records = meter.tts();
    assert_eq!(records.len(), 1, "{records:?}");
    let record = &records[0];
    assert_eq!((record.voice.as_str(), record.language.as_str()), ("alloy", "fr"));
    assert_eq!(record.characters, 21);
    assert_eq!(record.characters, usage.characters);
    assert_eq!(record.audio_seconds, usage.audio_ms as f64 / 1000.0);
    assert_eq!(record.audio_seconds, 1.05);
    // One chunk delay per chunk, on the paused clock; the time after the end does not count.
    assert_eq!(record.duration, Duration::from_millis(40) * chunks.len() as u32);
}

#[tokio::test(start_paused = true)]
async fn metered_tts_cancelled_or_dropped_midway_records_once_at_drop() {
    let meter = Arc::new(Recorder::default());
    let tts = MeteredTextToSpeech::new(Arc::new(ToneTts::default()), meter.clone());
    let mut stream = tts
        .open(&ctx(), TtsConfig::new("verse", AudioFormat::PCM16_24K))
        .await
        .unwrap();
    stream.push_text("one two three four ").await.unwrap();
    let first = stream.next_chunk().await.unwrap().unwrap();
    tokio::time::advance(Duration::from_millis(250)).await;
    stream.cancel();
    assert!(matches!(stream.next_chunk().await, Err(Error::Cancelled)));
    assert!(matches!(stream.push_text("five").await, Err(Error::Cancelled)));
    assert!(meter.tts().is_empty(), "cancelled is not dropped yet");
    drop(stream);

    let records = meter.tts();
    assert_eq!(records.len(), 1, "{records:?}");
    let record = &records[0];
    assert_eq!(
        (record.voice.as_str(), record.language.as_str()),
        ("verse", "und")
    );
    assert_eq!(record.characters, 19);
    assert_eq!(record.audio_seconds, first.end_ms as f64 / 1000.0);
    assert_eq!(record.duration, Duration::from_millis(250));
}

fn chat() -> ChatRequest {
    ChatRequest::new(vec![ChatMessage::User { content: "hi".into() }])
}

async fn chat_events(stream: &mut dyn ChatStream) -> Vec<ChatEvent> {
    let mut out = Vec::new();
    while let Some(event) = stream.next_event().await.unwrap() {
        out.push(event);
    }
    out
}

#[tokio::test(start_paused = true)]
async fn metered_llm_records_once_with_tokens_labels_and_the_time_to_the_end() {
    let meter = Arc::new(Recorder::default());
    let reply = || ScriptedReply::text("Sure, a table for two.").with_input_tokens(42);
    let llm = MeteredLanguageModel::new(Arc::new(ScriptedLlm::new([reply(), reply()])), meter.clone())
        .with_provider("openai_compat")
        .with_model("gpt-x");

    let mut request = chat();
    request.model = Some("gpt-4o-mini".into());
    let mut stream = llm
        .stream(&ctx(), request.clone(), CancellationToken::new())
        .await
        .unwrap();
    tokio::time::advance(Duration::from_millis(750)).await;
    let events = chat_events(stream.as_mut()).await;
    let usage = stream.usage();
    tokio::time::advance(Duration::from_secs(2)).await;
    assert_eq!(stream.next_event().await.unwrap(), None);
    drop(stream);

    let plain = ScriptedLlm::new([reply()]);
    let mut unwrapped = plain
        .stream(&ctx(), request, CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(events, chat_events(unwrapped.as_mut()).await);
    let Some(ChatEvent::Done { usage: done, .. }) = events.last() else {
        panic!("no Done: {events:?}");
    };
    assert_eq!(*done, usage);

    // No model in the request: the decorator's.
    drop(
        llm.stream(&ctx(), chat(), CancellationToken::new())
            .await
            .unwrap(),
    );

    let records = meter.llm();
    assert_eq!(records.len(), 2, "{records:?}");
    assert_eq!(
        records[0],
        LlmRecord::new(
            "openai_compat",
            "gpt-4o-mini",
            42,
            usage.output_tokens,
            Duration::from_millis(750)
        )
    );
    assert_eq!(usage.output_tokens, 5);
    assert_eq!(
        (records[1].provider.as_str(), records[1].model.as_str()),
        ("openai_compat", "gpt-x")
    );
    assert_eq!(records[1].output_tokens, 0);
    assert_eq!(records[1].duration, Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn metered_llm_cancelled_midway_records_the_tokens_so_far_at_drop() {
    let meter = Arc::new(Recorder::default());
    let llm = MeteredLanguageModel::new(
        Arc::new(ScriptedLlm::new([ScriptedReply::text("one two three four five")])),
        meter.clone(),
    );
    let cancel = CancellationToken::new();
    let mut stream = llm.stream(&ctx(), chat(), cancel.clone()).await.unwrap();
    stream.next_event().await.unwrap().unwrap();
    stream.next_event().await.unwrap().unwrap();
    tokio::time::advance(Duration::from_millis(80)).await;
    cancel.cancel();
    assert!(matches!(stream.next_event().await, Err(Error::Cancelled)));
    assert!(meter.llm().is_empty());
    drop(stream);

    let records = meter.llm();
    assert_eq!(records.len(), 1, "{records:?}");
    let record = &records[0];
    assert_eq!(
        (record.provider.as_str(), record.model.as_str()),
        ("unknown", "default")
    );
    assert_eq!(record.output_tokens, 2);
    assert_eq!(record.input_tokens, 1);
    assert_eq!(record.duration, Duration::from_millis(80));
}

#[tokio::test]
async fn metered_session_ports_label_every_engine_and_keep_the_vad() {
    let meter = Arc::new(Recorder::default());
    let vad: Arc<dyn VoiceActivityDetector> = Arc::new(EarshotVad::new());
    let ports = SessionPorts {
        llm: Arc::new(ScriptedLlm::new([ScriptedReply::text("ok")])),
        stt: Arc::new(ScriptedStt::new([LINE])),
        tts: Arc::new(ToneTts::default()),
        vad: Some(vad.clone()),
    }
    .metered(
        meter.clone(),
        MeterLabels::new()
            .with_provider("local")
            .with_stt_model("whisper-small")
            .with_tts_language("en")
            .with_llm_model("llama"),
    );
    assert!(Arc::ptr_eq(ports.vad.as_ref().unwrap(), &vad));

    drop(ports.stt.open(&ctx(), SttConfig::new(16_000)).await.unwrap());
    drop(
        ports
            .tts
            .open(&ctx(), TtsConfig::new("alloy", AudioFormat::PCM16_24K))
            .await
            .unwrap(),
    );
    drop(
        ports
            .llm
            .stream(&ctx(), chat(), CancellationToken::new())
            .await
            .unwrap(),
    );
    let stt = meter.stt();
    let tts = meter.tts();
    let llm = meter.llm();
    assert_eq!(
        (stt.len(), stt[0].model.as_str(), stt[0].language.as_str()),
        (1, "whisper-small", "auto")
    );
    assert_eq!(
        (tts.len(), tts[0].voice.as_str(), tts[0].language.as_str()),
        (1, "alloy", "en")
    );
    assert_eq!(
        (llm.len(), llm[0].provider.as_str(), llm[0].model.as_str()),
        (1, "local", "llama")
    );

    // Without a VAD it stays without.
    let ports = SessionPorts {
        llm: Arc::new(ScriptedLlm::new([])),
        stt: Arc::new(ScriptedStt::new([LINE])),
        tts: Arc::new(ToneTts::default()),
        vad: None,
    }
    .metered(meter, MeterLabels::default());
    assert!(ports.vad.is_none());
}
