//! Conformance checks for adapters of the voice ports: one check per point of each port's `# Contract`.
//!
//! Each check is a plain `pub async fn` (plain `fn` for the synchronous VAD) over the port; the macros turn
//! every check into its own test, so an adapter crate runs a whole suite with one line:
//!
//! ```text
//! avb_voice::stt_conformance!(async { MySpeechToText::new() });
//! avb_voice::tts_conformance!(async { MyTextToSpeech::new() });
//! avb_voice::llm_conformance!(async { MyModel::new() });
//! avb_voice::vad_conformance!(MyVad::new());
//! ```
//!
//! Checks synthesise their own audio ([`crate::audio::synth`]) and need no network. What they assume of the
//! engine beyond the contracts is stated per check: the LLM checks ask for a plain answer to "Say hello." and for
//! a call of a `get_weather(city)` function, which any chat model (and a [`ScriptedLlm`](crate::adapters::ScriptedLlm)
//! scripted with those two replies) can give.
// These are test assertions shipped as a library so adapter crates can run them: failing loudly is their job.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::Error;
use crate::audio::timing::samples_to_ms;
use crate::audio::{AudioFormat, synth};
use crate::llm::{
    ChatEvent, ChatMessage, ChatRequest, FinishReason, LanguageModel, ToolCall, ToolChoice, ToolSpec,
};
use crate::stt::{SpeechToText, SttConfig, SttEvent, SttStream};
use crate::tts::{TextToSpeech, TtsChunk, TtsConfig, TtsStream};
use crate::vad::VoiceActivityDetector;
use avb_core::{Ctx, RequestId, TenantId, UuidV7Ids};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;

/// How long a check waits for an engine before failing (real engines are slow on a loaded 2-core machine).
const PATIENCE: Duration = Duration::from_secs(60);
/// What "at once" means for cancellation.
const AT_ONCE: Duration = Duration::from_millis(100);

fn ctx(check: &str) -> Ctx {
    Ctx::system(
        RequestId::generate(&UuidV7Ids),
        check,
        Some(TenantId::generate(&UuidV7Ids)),
    )
}

/// 300 ms silence, 900 ms of a synthetic vowel, 300 ms silence.
fn utterance(rate: u32) -> Vec<i16> {
    [
        synth::silence(rate, 300),
        synth::synthetic_vowel(rate, 900, 12_000),
        synth::silence(rate, 300),
    ]
    .concat()
}

// ---------------------------------------------------------------------------------------------------------------
// Speech to text

async fn push_in_frames(stream: &mut dyn SttStream, samples: &[i16], rate: u32) {
    for frame in samples.chunks(rate as usize / 50) {
        stream.push_audio(frame).await.unwrap();
    }
}

async fn drain_stt(stream: &mut dyn SttStream) -> Vec<SttEvent> {
    let mut events = Vec::new();
    while let Some(event) = timeout(PATIENCE, stream.next_event())
        .await
        .expect("STT stalled after finish")
        .unwrap()
    {
        events.push(event);
    }
    events
}

fn times(event: &SttEvent) -> (u64, u64) {
    match event {
        SttEvent::Partial(t) | SttEvent::Final(t) => (t.start_ms, t.end_ms),
    }
}

/// After `finish`, at least one final arrives, every time lies within the pushed audio, finals are in order and no
/// partial follows the last final; then the stream ends (`None`, repeatedly).
pub async fn stt_final_follows_finish_within_the_pushed_audio(stt: Arc<dyn SpeechToText>) {
    let mut stream = stt
        .open(&ctx("conformance:stt"), SttConfig::new(16_000))
        .await
        .unwrap();
    let audio = utterance(16_000);
    push_in_frames(stream.as_mut(), &audio, 16_000).await;
    stream.finish().await.unwrap();
    let events = drain_stt(stream.as_mut()).await;
    let duration = samples_to_ms(audio.len() as u64, 16_000);
    let last_final = events
        .iter()
        .rposition(|e| matches!(e, SttEvent::Final(_)))
        .expect("no final transcript");
    assert!(
        events[last_final..]
            .iter()
            .skip(1)
            .all(|e| !matches!(e, SttEvent::Partial(_))),
        "{events:?}"
    );
    let mut previous = (0, 0);
    for event in &events {
        let (start, end) = times(event);
        assert!(
            start <= end && end <= duration,
            "times outside the audio: {event:?}"
        );
        if let SttEvent::Final(t) = event {
            assert!(
                t.start_ms >= previous.0 && t.end_ms >= previous.1,
                "finals out of order: {events:?}"
            );
            previous = (t.start_ms, t.end_ms);
            assert!(t.confidence.is_none_or(|c| (0.0..=1.0).contains(&c)), "{t:?}");
        }
    }
    assert_eq!(stream.next_event().await.unwrap(), None);
    assert_eq!(stream.next_event().await.unwrap(), None);
}

/// `usage().audio_ms` is exactly the duration of the samples pushed, however they were split.
pub async fn stt_usage_counts_pushed_audio_exactly(stt: Arc<dyn SpeechToText>) {
    let mut stream = stt
        .open(&ctx("conformance:stt"), SttConfig::new(24_000))
        .await
        .unwrap();
    let audio = utterance(24_000);
    let mut pushed = 0;
    for piece in audio.chunks(333).take(70) {
        stream.push_audio(piece).await.unwrap();
        stream.push_audio(&[]).await.unwrap();
        pushed += piece.len();
        assert_eq!(stream.usage().audio_ms, samples_to_ms(pushed as u64, 24_000));
    }
    stream.finish().await.unwrap();
    drain_stt(stream.as_mut()).await;
    assert_eq!(stream.usage().audio_ms, samples_to_ms(pushed as u64, 24_000));
}

/// `push_audio` and `finish` after `finish` are `InvalidState`.
pub async fn stt_refuses_calls_after_finish(stt: Arc<dyn SpeechToText>) {
    let mut stream = stt
        .open(&ctx("conformance:stt"), SttConfig::new(16_000))
        .await
        .unwrap();
    stream.push_audio(&utterance(16_000)).await.unwrap();
    stream.finish().await.unwrap();
    assert!(matches!(
        stream.push_audio(&[0; 160]).await,
        Err(Error::InvalidState(_))
    ));
    assert!(matches!(stream.finish().await, Err(Error::InvalidState(_))));
    assert!(
        drain_stt(stream.as_mut())
            .await
            .iter()
            .any(|e| matches!(e, SttEvent::Final(_)))
    );
}

/// A sample rate outside [`SUPPORTED_SAMPLE_RATES`](crate::audio::SUPPORTED_SAMPLE_RATES) is refused at `open`.
pub async fn stt_refuses_unsupported_sample_rates(stt: Arc<dyn SpeechToText>) {
    for rate in [0, 12_345] {
        let refused = stt.open(&ctx("conformance:stt"), SttConfig::new(rate)).await;
        assert!(
            matches!(refused, Err(Error::UnsupportedFormat(_))),
            "{rate} Hz: {refused:?}"
        );
    }
}

/// Dropping a pending `next_event` future (a lost `select!` race) loses no event.
pub async fn stt_next_event_is_cancel_safe(stt: Arc<dyn SpeechToText>) {
    let mut stream = stt
        .open(&ctx("conformance:stt"), SttConfig::new(16_000))
        .await
        .unwrap();
    let audio = utterance(16_000);
    let mut events = Vec::new();
    for frame in audio.chunks(1_600) {
        stream.push_audio(frame).await.unwrap();
        if let Ok(event) = timeout(Duration::from_millis(5), stream.next_event()).await {
            events.extend(event.unwrap());
        }
    }
    stream.finish().await.unwrap();
    events.extend(drain_stt(stream.as_mut()).await);
    assert!(
        events.iter().any(|e| matches!(e, SttEvent::Final(_))),
        "{events:?}"
    );
}

/// Two streams of one adapter do not share audio.
pub async fn stt_streams_are_independent(stt: Arc<dyn SpeechToText>) {
    let ctx = ctx("conformance:stt");
    let mut spoken = stt.open(&ctx, SttConfig::new(16_000)).await.unwrap();
    let mut silent = stt.open(&ctx, SttConfig::new(16_000)).await.unwrap();
    let audio = utterance(16_000);
    push_in_frames(spoken.as_mut(), &audio, 16_000).await;
    silent.push_audio(&synth::silence(16_000, 100)).await.unwrap();
    spoken.finish().await.unwrap();
    silent.finish().await.unwrap();
    assert_eq!(silent.usage().audio_ms, 100);
    for event in drain_stt(silent.as_mut()).await {
        assert!(times(&event).1 <= 100, "{event:?}");
    }
    assert_eq!(spoken.usage().audio_ms, 1_500);
    assert!(
        drain_stt(spoken.as_mut())
            .await
            .iter()
            .any(|e| matches!(e, SttEvent::Final(_)))
    );
}

// ---------------------------------------------------------------------------------------------------------------
// Text to speech

const SPEECH_TEXT: &str = "Hello there. How are you today?";

async fn speak(
    tts: &dyn TextToSpeech,
    config: TtsConfig,
    pieces: &[&str],
) -> (Vec<TtsChunk>, Box<dyn TtsStream>) {
    let mut stream = tts.open(&ctx("conformance:tts"), config).await.unwrap();
    for piece in pieces {
        stream.push_text(piece).await.unwrap();
    }
    stream.finish().await.unwrap();
    let mut chunks = Vec::new();
    while let Some(chunk) = timeout(PATIENCE, stream.next_chunk())
        .await
        .expect("TTS stalled after finish")
        .unwrap()
    {
        chunks.push(chunk);
    }
    (chunks, stream)
}

fn check_chunks(chunks: &[TtsChunk], format: AudioFormat, text: &str) -> u64 {
    assert!(!chunks.is_empty(), "no audio for {text:?}");
    let mut samples = 0u64;
    let mut text_end = 0;
    for chunk in chunks {
        assert_eq!(chunk.format, format);
        assert!(!chunk.audio.is_empty(), "empty chunk");
        assert_eq!(chunk.audio.len() % format.bytes_per_sample(), 0, "partial sample");
        assert_eq!(
            chunk.start_ms,
            samples_to_ms(samples, format.sample_rate()),
            "start_ms of {chunk:?}"
        );
        samples += chunk.samples() as u64;
        assert_eq!(
            chunk.end_ms,
            samples_to_ms(samples, format.sample_rate()),
            "end_ms"
        );
        assert_eq!(chunk.text_range.start, text_end, "text ranges must be contiguous");
        assert_eq!(
            Some(chunk.text.as_str()),
            text.get(chunk.text_range.clone()),
            "text of the range"
        );
        text_end = chunk.text_range.end;
    }
    assert_eq!(text_end, text.len(), "the chunks must cover all the text");
    samples
}

/// Everything pushed is spoken: chunks in the asked format with exact, contiguous times and text ranges that
/// cover the text; usage counts characters and audio.
pub async fn tts_speaks_all_pushed_text(tts: Arc<dyn TextToSpeech>) {
    let format = AudioFormat::PCM16_24K;
    let (chunks, stream) = speak(
        tts.as_ref(),
        TtsConfig::new("alloy", format),
        &["Hello the", "re. How", " are you today?"],
    )
    .await;
    let samples = check_chunks(&chunks, format, SPEECH_TEXT);
    let decoded: Vec<i16> = chunks.iter().flat_map(|c| c.decode().unwrap()).collect();
    assert!(
        decoded.iter().any(|s| s.unsigned_abs() > 1_000),
        "the audio is silent"
    );
    let usage = stream.usage();
    assert_eq!(usage.characters, SPEECH_TEXT.chars().count() as u64);
    assert_eq!(usage.audio_ms, samples_to_ms(samples, 24_000));
}

/// Every supported output format is honoured, and the same text lasts about as long in each.
pub async fn tts_honours_every_output_format(tts: Arc<dyn TextToSpeech>) {
    let mut durations = Vec::new();
    for format in [
        AudioFormat::PCM16_24K,
        AudioFormat::Pcm16 { sample_rate: 16_000 },
        AudioFormat::Pcm16 { sample_rate: 48_000 },
        AudioFormat::G711Ulaw,
        AudioFormat::G711Alaw,
    ] {
        let (chunks, _) = speak(tts.as_ref(), TtsConfig::new("alloy", format), &[SPEECH_TEXT]).await;
        let samples = check_chunks(&chunks, format, SPEECH_TEXT);
        durations.push((format, samples_to_ms(samples, format.sample_rate())));
    }
    let reference = durations[0].1 as f64;
    for (format, ms) in durations {
        let ratio = ms as f64 / reference;
        assert!(
            (0.9..1.1).contains(&ratio),
            "{format} lasts {ms} ms, 24 kHz pcm16 {reference} ms"
        );
    }
}

/// Speaking faster makes shorter audio.
pub async fn tts_speed_changes_duration(tts: Arc<dyn TextToSpeech>) {
    let format = AudioFormat::PCM16_24K;
    let normal = speak(tts.as_ref(), TtsConfig::new("alloy", format), &[SPEECH_TEXT])
        .await
        .0;
    let fast = speak(
        tts.as_ref(),
        TtsConfig::new("alloy", format).with_speed(2.0),
        &[SPEECH_TEXT],
    )
    .await
    .0;
    let (normal, fast) = (
        normal.last().unwrap().end_ms as f64,
        fast.last().unwrap().end_ms as f64,
    );
    assert!(
        (0.3..0.8).contains(&(fast / normal)),
        "speed 2.0: {fast} ms against {normal} ms"
    );
}

/// After `cancel`, `next_chunk` and `push_text` fail with `Cancelled` at once.
pub async fn tts_cancel_stops_generation_at_once(tts: Arc<dyn TextToSpeech>) {
    let mut stream = tts
        .open(
            &ctx("conformance:tts"),
            TtsConfig::new("alloy", AudioFormat::PCM16_24K),
        )
        .await
        .unwrap();
    for _ in 0..20 {
        stream
            .push_text("This is a long answer that the caller is about to interrupt. ")
            .await
            .unwrap();
    }
    stream.finish().await.unwrap();
    timeout(PATIENCE, stream.next_chunk())
        .await
        .unwrap()
        .unwrap()
        .expect("a first chunk");
    stream.cancel();
    let after = timeout(AT_ONCE, stream.next_chunk())
        .await
        .expect("next_chunk waited after cancel");
    assert!(matches!(after, Err(Error::Cancelled)), "{after:?}");
    assert!(matches!(
        timeout(AT_ONCE, stream.next_chunk()).await.unwrap(),
        Err(Error::Cancelled)
    ));
    assert!(matches!(stream.push_text("more").await, Err(Error::Cancelled)));
}

/// A stream dropped mid-speech leaves the adapter usable.
pub async fn tts_drop_mid_stream_leaves_the_adapter_usable(tts: Arc<dyn TextToSpeech>) {
    let mut stream = tts
        .open(
            &ctx("conformance:tts"),
            TtsConfig::new("alloy", AudioFormat::PCM16_24K),
        )
        .await
        .unwrap();
    stream.push_text(SPEECH_TEXT).await.unwrap();
    stream.finish().await.unwrap();
    timeout(PATIENCE, stream.next_chunk()).await.unwrap().unwrap();
    drop(stream);
    let (chunks, _) = speak(
        tts.as_ref(),
        TtsConfig::new("alloy", AudioFormat::PCM16_24K),
        &[SPEECH_TEXT],
    )
    .await;
    check_chunks(&chunks, AudioFormat::PCM16_24K, SPEECH_TEXT);
}

/// Before `finish`, a stream with no text produces nothing; after `finish`, more text or a second `finish` is
/// `InvalidState`.
pub async fn tts_waits_for_text_and_refuses_calls_after_finish(tts: Arc<dyn TextToSpeech>) {
    let mut stream = tts
        .open(
            &ctx("conformance:tts"),
            TtsConfig::new("alloy", AudioFormat::PCM16_24K),
        )
        .await
        .unwrap();
    assert!(
        timeout(Duration::from_millis(50), stream.next_chunk())
            .await
            .is_err(),
        "audio out of nothing"
    );
    stream.push_text(SPEECH_TEXT).await.unwrap();
    stream.finish().await.unwrap();
    assert!(matches!(
        stream.push_text("more").await,
        Err(Error::InvalidState(_))
    ));
    assert!(matches!(stream.finish().await, Err(Error::InvalidState(_))));
}

/// An empty voice or a speed out of range is `InvalidConfig`; an unsupported pcm16 rate `UnsupportedFormat`.
pub async fn tts_refuses_invalid_config(tts: Arc<dyn TextToSpeech>) {
    let ctx = ctx("conformance:tts");
    let format = AudioFormat::PCM16_24K;
    for config in [
        TtsConfig::new("", format),
        TtsConfig::new("alloy", format).with_speed(0.0),
        TtsConfig::new("alloy", format).with_speed(10.0),
        TtsConfig::new("alloy", format).with_speed(f32::NAN),
    ] {
        let refused = tts.open(&ctx, config.clone()).await;
        assert!(
            matches!(refused, Err(Error::InvalidConfig { .. })),
            "{config:?}: {refused:?}"
        );
    }
    let refused = tts
        .open(
            &ctx,
            TtsConfig::new("alloy", AudioFormat::Pcm16 { sample_rate: 12_345 }),
        )
        .await;
    assert!(matches!(refused, Err(Error::UnsupportedFormat(_))), "{refused:?}");
}

// ---------------------------------------------------------------------------------------------------------------
// Language model

fn weather_tool() -> ToolSpec {
    ToolSpec {
        name: "get_weather".into(),
        description: Some("Current weather in a city.".into()),
        parameters: serde_json::json!({
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        }),
    }
}

fn hello_request() -> ChatRequest {
    ChatRequest::new(vec![ChatMessage::User {
        content: "Say hello.".into(),
    }])
    .with_instructions("You are a helpful voice assistant. Answer in one short sentence.")
}

async fn collect_chat(llm: &dyn LanguageModel, request: ChatRequest) -> Vec<ChatEvent> {
    let mut stream = llm
        .stream(&ctx("conformance:llm"), request, CancellationToken::new())
        .await
        .unwrap();
    let mut events = Vec::new();
    while let Some(event) = timeout(PATIENCE, stream.next_event())
        .await
        .expect("LLM stalled")
        .unwrap()
    {
        events.push(event);
    }
    assert_eq!(
        stream.next_event().await.unwrap(),
        None,
        "None must repeat after Done"
    );
    events
}

fn done_of(events: &[ChatEvent]) -> (crate::llm::TokenUsage, FinishReason) {
    match events.last() {
        Some(ChatEvent::Done { usage, finish_reason }) => (*usage, *finish_reason),
        other => panic!("the last event must be Done, got {other:?}"),
    }
}

/// A plain request streams text deltas, then exactly one `Done` (last) with usage, then `None`.
pub async fn llm_streams_text_then_done(llm: Arc<dyn LanguageModel>) {
    let events = collect_chat(llm.as_ref(), hello_request()).await;
    let (usage, finish) = done_of(&events);
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, ChatEvent::Done { .. }))
            .count(),
        1
    );
    let text: String = events
        .iter()
        .filter_map(|e| match e {
            ChatEvent::TextDelta { delta } => Some(delta.as_str()),
            _ => None,
        })
        .collect();
    assert!(!text.trim().is_empty(), "no text: {events:?}");
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, ChatEvent::ToolCallDelta { .. })),
        "a call without tools"
    );
    assert!(
        matches!(finish, FinishReason::Stop | FinishReason::Length),
        "{finish:?}"
    );
    assert!(usage.input_tokens > 0 && usage.output_tokens > 0, "{usage:?}");
}

/// A forced function is called: its deltas share one id and name, the arguments are a JSON object, and the
/// reply ends with `ToolCalls`.
pub async fn llm_forced_function_is_called(llm: Arc<dyn LanguageModel>) {
    let request = ChatRequest::new(vec![ChatMessage::User {
        content: "What's the weather in Paris?".into(),
    }])
    .with_tools(
        vec![weather_tool()],
        ToolChoice::Function {
            name: "get_weather".into(),
        },
    );
    let events = collect_chat(llm.as_ref(), request).await;
    let (_, finish) = done_of(&events);
    assert_eq!(finish, FinishReason::ToolCalls);
    let mut calls: Vec<(String, String, String)> = Vec::new();
    for event in &events {
        if let ChatEvent::ToolCallDelta {
            call_id,
            name,
            arguments_delta,
        } = event
        {
            match calls.last_mut() {
                Some((id, _, args)) if id == call_id => args.push_str(arguments_delta),
                _ => {
                    assert!(
                        calls.iter().all(|(id, _, _)| id != call_id),
                        "deltas of {call_id} interleave"
                    );
                    calls.push((call_id.clone(), name.clone(), arguments_delta.clone()));
                }
            }
        }
    }
    assert!(
        calls.iter().any(|(_, name, _)| name == "get_weather"),
        "{events:?}"
    );
    for (id, _, arguments) in &calls {
        assert!(!id.is_empty());
        let parsed: serde_json::Value = serde_json::from_str(arguments).expect("arguments must be JSON");
        assert!(parsed.is_object(), "{parsed}");
    }
}

/// With `tool_choice: none` the reply calls nothing.
pub async fn llm_tool_choice_none_calls_nothing(llm: Arc<dyn LanguageModel>) {
    let request = hello_request().with_tools(vec![weather_tool()], ToolChoice::None);
    let events = collect_chat(llm.as_ref(), request).await;
    done_of(&events);
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, ChatEvent::ToolCallDelta { .. })),
        "{events:?}"
    );
}

/// A conversation holding a function call and its output gets a reply.
pub async fn llm_answers_after_a_function_output(llm: Arc<dyn LanguageModel>) {
    let request = ChatRequest::new(vec![
        ChatMessage::User {
            content: "What's the weather in Paris?".into(),
        },
        ChatMessage::Assistant {
            content: String::new(),
            tool_calls: vec![ToolCall {
                call_id: "call_1".into(),
                name: "get_weather".into(),
                arguments: r#"{"city":"Paris"}"#.into(),
            }],
        },
        ChatMessage::Tool {
            call_id: "call_1".into(),
            content: r#"{"temperature_c":21,"sky":"clear"}"#.into(),
        },
    ])
    .with_tools(vec![weather_tool()], ToolChoice::None);
    let events = collect_chat(llm.as_ref(), request).await;
    done_of(&events);
    assert!(
        events.iter().any(|e| matches!(e, ChatEvent::TextDelta { .. })),
        "{events:?}"
    );
}

/// `max_output_tokens` caps the reply.
pub async fn llm_respects_max_output_tokens(llm: Arc<dyn LanguageModel>) {
    let events = collect_chat(llm.as_ref(), hello_request().with_max_output_tokens(1)).await;
    let (usage, finish) = done_of(&events);
    assert!(usage.output_tokens <= 1, "{usage:?}");
    assert!(
        matches!(finish, FinishReason::Length | FinishReason::Stop),
        "{finish:?}"
    );
}

/// Once the token fires, `next_event` is `Cancelled` at once and stays so.
pub async fn llm_cancel_stops_at_once(llm: Arc<dyn LanguageModel>) {
    let cancel = CancellationToken::new();
    let mut stream = llm
        .stream(&ctx("conformance:llm"), hello_request(), cancel.clone())
        .await
        .unwrap();
    timeout(PATIENCE, stream.next_event())
        .await
        .unwrap()
        .unwrap()
        .expect("a first event");
    cancel.cancel();
    for _ in 0..2 {
        let after = timeout(AT_ONCE, stream.next_event())
            .await
            .expect("next_event waited after cancel");
        assert!(matches!(after, Err(Error::Cancelled)), "{after:?}");
    }
    drop(stream);
    // The adapter is still usable.
    done_of(&collect_chat(llm.as_ref(), hello_request()).await);
}

/// Forcing a function that is not among the tools is `InvalidConfig`.
pub async fn llm_refuses_a_forced_unknown_function(llm: Arc<dyn LanguageModel>) {
    let request =
        hello_request().with_tools(vec![weather_tool()], ToolChoice::Function { name: "nope".into() });
    let refused = llm
        .stream(&ctx("conformance:llm"), request, CancellationToken::new())
        .await;
    assert!(matches!(refused, Err(Error::InvalidConfig { .. })), "{refused:?}");
}

// ---------------------------------------------------------------------------------------------------------------
// Voice activity detection

fn vad_frames(vad: &mut dyn VoiceActivityDetector, samples: &[i16]) -> Vec<f32> {
    let n = vad.frame_samples();
    samples
        .chunks_exact(n)
        .map(|f| vad.speech_probability(f).unwrap())
        .collect()
}

/// A frame of the wrong length is `InvalidAudio`, and leaves the state as it was.
pub fn vad_refuses_wrong_frame_sizes(mut vad: Box<dyn VoiceActivityDetector>) {
    let n = vad.frame_samples();
    assert!(n > 0);
    let vowel = synth::synthetic_vowel(vad.sample_rate(), 600, 12_000);
    let mut reference = vad.fresh();
    for (i, frame) in vowel.chunks_exact(n).enumerate() {
        for bad in [0, 1, n - 1, n + 1, 2 * n] {
            let wrong = vec![0i16; bad];
            assert!(
                matches!(vad.speech_probability(&wrong), Err(Error::InvalidAudio(_))),
                "{bad} samples"
            );
        }
        let (a, b) = (
            vad.speech_probability(frame).unwrap(),
            reference.speech_probability(frame).unwrap(),
        );
        assert_eq!(a, b, "frame {i}: a refused frame changed the state");
    }
}

/// Scores are in `[0, 1]` for any input, including full-scale square waves and noise.
pub fn vad_scores_are_probabilities(mut vad: Box<dyn VoiceActivityDetector>) {
    let rate = vad.sample_rate();
    let square: Vec<i16> = (0..rate as usize)
        .map(|i| if i / 40 % 2 == 0 { i16::MAX } else { i16::MIN })
        .collect();
    for input in [
        square,
        synth::white_noise(rate, 1_000, i16::MAX, 3),
        synth::silence(rate, 500),
    ] {
        for score in vad_frames(vad.as_mut(), &input) {
            assert!((0.0..=1.0).contains(&score), "{score}");
        }
    }
}

/// Digital silence scores below 0.5; a sustained vowel scores at least 0.5 once 300 ms have passed.
pub fn vad_tells_silence_from_a_vowel(mut vad: Box<dyn VoiceActivityDetector>) {
    let rate = vad.sample_rate();
    assert!(
        vad_frames(vad.as_mut(), &synth::silence(rate, 1_000))
            .iter()
            .all(|s| *s < 0.5)
    );
    let per_frame_ms = samples_to_ms(vad.frame_samples() as u64, rate).max(1) as usize;
    let vowel = vad_frames(vad.as_mut(), &synth::synthetic_vowel(rate, 1_000, 16_000));
    let settled = &vowel[300 / per_frame_ms..];
    assert!(settled.iter().all(|s| *s >= 0.5), "{vowel:?}");
}

/// Scores depend only on the frames since construction or `reset`; `fresh()` keeps the settings.
pub fn vad_is_deterministic_and_resettable(mut vad: Box<dyn VoiceActivityDetector>) {
    let rate = vad.sample_rate();
    let input = [
        synth::synthetic_vowel(rate, 500, 12_000),
        synth::white_noise(rate, 500, 2_000, 5),
    ]
    .concat();
    let first = vad_frames(vad.as_mut(), &input);
    vad.reset();
    assert_eq!(vad_frames(vad.as_mut(), &input), first, "after reset");
    let mut fresh = vad.fresh();
    assert_eq!(
        (fresh.sample_rate(), fresh.frame_samples()),
        (vad.sample_rate(), vad.frame_samples())
    );
    assert_eq!(vad_frames(fresh.as_mut(), &input), first, "fresh detector");
}

// ---------------------------------------------------------------------------------------------------------------
// Macros

/// Runs every speech-to-text check against the adapter built by `$factory` (an `async` block).
#[macro_export]
macro_rules! stt_conformance {
    ($factory:expr) => {
        $crate::stt_conformance!(@checks $factory;
            stt_final_follows_finish_within_the_pushed_audio,
            stt_usage_counts_pushed_audio_exactly,
            stt_refuses_calls_after_finish,
            stt_refuses_unsupported_sample_rates,
            stt_next_event_is_cancel_safe,
            stt_streams_are_independent,
        );
    };
    (@checks $factory:expr; $($check:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let port: ::std::sync::Arc<dyn $crate::stt::SpeechToText> = ::std::sync::Arc::new(($factory).await);
                $crate::conformance::$check(port).await;
            }
        )+
    };
}

/// Runs every text-to-speech check against the adapter built by `$factory` (an `async` block).
#[macro_export]
macro_rules! tts_conformance {
    ($factory:expr) => {
        $crate::tts_conformance!(@checks $factory;
            tts_speaks_all_pushed_text,
            tts_honours_every_output_format,
            tts_speed_changes_duration,
            tts_cancel_stops_generation_at_once,
            tts_drop_mid_stream_leaves_the_adapter_usable,
            tts_waits_for_text_and_refuses_calls_after_finish,
            tts_refuses_invalid_config,
        );
    };
    (@checks $factory:expr; $($check:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let port: ::std::sync::Arc<dyn $crate::tts::TextToSpeech> = ::std::sync::Arc::new(($factory).await);
                $crate::conformance::$check(port).await;
            }
        )+
    };
}

/// Runs every language-model check against the adapter built by `$factory` (an `async` block).
#[macro_export]
macro_rules! llm_conformance {
    ($factory:expr) => {
        $crate::llm_conformance!(@checks $factory;
            llm_streams_text_then_done,
            llm_forced_function_is_called,
            llm_tool_choice_none_calls_nothing,
            llm_answers_after_a_function_output,
            llm_respects_max_output_tokens,
            llm_cancel_stops_at_once,
            llm_refuses_a_forced_unknown_function,
        );
    };
    (@checks $factory:expr; $($check:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let port: ::std::sync::Arc<dyn $crate::llm::LanguageModel> = ::std::sync::Arc::new(($factory).await);
                $crate::conformance::$check(port).await;
            }
        )+
    };
}

/// Runs every voice-activity-detector check against detectors built by `$factory` (an expression).
#[macro_export]
macro_rules! vad_conformance {
    ($factory:expr) => {
        $crate::vad_conformance!(@checks $factory;
            vad_refuses_wrong_frame_sizes,
            vad_scores_are_probabilities,
            vad_tells_silence_from_a_vowel,
            vad_is_deterministic_and_resettable,
        );
    };
    (@checks $factory:expr; $($check:ident),+ $(,)?) => {
        $(
            #[test]
            fn $check() {
                let vad: ::std::boxed::Box<dyn $crate::vad::VoiceActivityDetector> = ::std::boxed::Box::new($factory);
                $crate::conformance::$check(vad);
            }
        )+
    };
}
