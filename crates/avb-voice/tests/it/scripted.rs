//! Behaviour of the deterministic adapters beyond the shared contracts: what engine tests rely on.

use avb_core::{Ctx, RequestId, UuidV7Ids};
use avb_voice::Error;
use avb_voice::adapters::{ScriptedLlm, ScriptedReply, ScriptedStt, ToneTts};
use avb_voice::audio::{AudioFormat, synth};
use avb_voice::llm::{
    ChatEvent, ChatMessage, ChatRequest, FinishReason, LanguageModel, ToolChoice, ToolSpec,
};
use avb_voice::stt::{SpeechToText, SttConfig, SttEvent, SttStream, Transcript};
use avb_voice::tts::{TextToSpeech, TtsChunk, TtsConfig};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

fn ctx() -> Ctx {
    Ctx::system(RequestId::generate(&UuidV7Ids), "test", None)
}

async fn events(stream: &mut dyn SttStream) -> Vec<SttEvent> {
    let mut out = Vec::new();
    while let Some(event) = stream.next_event().await.unwrap() {
        out.push(event);
    }
    out
}

#[tokio::test]
async fn scripted_stt_gives_the_nth_line_to_the_nth_utterance_timed_by_the_audio() {
    let stt = ScriptedStt::new(["book a table for two", "at eight"]);
    let audio = [
        synth::silence(24_000, 250),
        synth::synthetic_vowel(24_000, 700, 9_000),
        synth::silence(24_000, 450),
    ]
    .concat();
    let mut first = stt.open(&ctx(), SttConfig::new(24_000)).await.unwrap();
    for frame in audio.chunks(480) {
        first.push_audio(frame).await.unwrap();
    }
    // An abandoned stream (a cleared buffer) that never needed a transcript takes no line.
    let abandoned = stt.open(&ctx(), SttConfig::new(24_000)).await.unwrap();
    drop(abandoned);
    first.finish().await.unwrap();
    let got = events(first.as_mut()).await;
    let texts: Vec<&str> = got
        .iter()
        .map(|e| match e {
            SttEvent::Partial(t) | SttEvent::Final(t) => t.text.as_str(),
        })
        .collect();
    // 1.4 s of audio, a partial every 200 ms, but never the whole line before the final.
    assert_eq!(
        texts,
        [
            "book",
            "book a",
            "book a table",
            "book a table for",
            "book a table for two"
        ]
    );
    let SttEvent::Final(Transcript {
        start_ms,
        end_ms,
        confidence,
        ..
    }) = got.last().unwrap().clone()
    else {
        panic!("{got:?}")
    };
    // The transcript spans the sound, not the silence around it (first sample above the level is ~250 ms in).
    assert!((250..=252).contains(&start_ms), "{start_ms}");
    assert!((948..=950).contains(&end_ms), "{end_ms}");
    assert_eq!(confidence, Some(1.0));
    assert_eq!(first.usage().audio_ms, 1_400);

    let mut second = stt
        .open(&ctx(), SttConfig::new(16_000).with_language("en"))
        .await
        .unwrap();
    second
        .push_audio(&synth::synthetic_vowel(16_000, 100, 9_000))
        .await
        .unwrap();
    second.finish().await.unwrap();
    assert!(matches!(&events(second.as_mut()).await[..], [SttEvent::Final(t)] if t.text == "at eight"));

    // Out of script: empty transcripts; no audio at all: no final.
    let mut third = stt.open(&ctx(), SttConfig::new(16_000)).await.unwrap();
    third.push_audio(&synth::silence(16_000, 300)).await.unwrap();
    third.finish().await.unwrap();
    assert!(
        matches!(&events(third.as_mut()).await[..], [SttEvent::Final(t)] if t.text.is_empty() && t.end_ms == 300)
    );
    let mut empty = stt.open(&ctx(), SttConfig::new(16_000)).await.unwrap();
    empty.finish().await.unwrap();
    assert_eq!(events(empty.as_mut()).await, vec![]);
    assert_eq!((stt.streams_opened(), stt.utterances()), (5, 3));
}

#[tokio::test]
async fn scripted_stt_can_cycle_and_skip_partials() {
    let stt = ScriptedStt::new(["yes", "no"])
        .cycling()
        .with_partial_every_ms(0)
        .with_confidence(0.5);
    let mut texts = Vec::new();
    for _ in 0..5 {
        let mut stream = stt.open(&ctx(), SttConfig::new(8_000)).await.unwrap();
        stream
            .push_audio(&synth::synthetic_vowel(8_000, 1_000, 9_000))
            .await
            .unwrap();
        stream.finish().await.unwrap();
        for event in events(stream.as_mut()).await {
            let SttEvent::Final(t) = event else {
                panic!("a partial: {event:?}")
            };
            assert_eq!(t.confidence, Some(0.5));
            texts.push(t.text);
        }
    }
    assert_eq!(texts, ["yes", "no", "yes", "no", "yes"]);
}

async fn speak(tts: &ToneTts, config: TtsConfig, text: &str) -> Vec<TtsChunk> {
    let mut stream = tts.open(&ctx(), config).await.unwrap();
    stream.push_text(text).await.unwrap();
    stream.finish().await.unwrap();
    let mut chunks = Vec::new();
    while let Some(chunk) = stream.next_chunk().await.unwrap() {
        chunks.push(chunk);
    }
    chunks
}

#[tokio::test]
async fn tone_tts_length_follows_text_and_speed_exactly() {
    let tts = ToneTts::default().with_ms_per_char(40).with_chunk_ms(100);
    // 11 characters x 40 ms = 440 ms: four 100 ms chunks and a 40 ms one.
    let chunks = speak(
        &tts,
        TtsConfig::new("alloy", AudioFormat::PCM16_24K),
        "hello world",
    )
    .await;
    let lengths: Vec<usize> = chunks.iter().map(TtsChunk::samples).collect();
    assert_eq!(lengths, [2_400, 2_400, 2_400, 2_400, 960]);
    assert_eq!(chunks.last().unwrap().end_ms, 440);
    // Characters belong to the chunk where their audio starts: 0-39 ms is "h", 200-239 ms is " ".
    let texts: Vec<&str> = chunks.iter().map(|c| c.text.as_str()).collect();
    assert_eq!(texts, ["hel", "lo", " wo", "rl", "d"]);
    // Letters are tone, the space is silence.
    let audio: Vec<i16> = chunks.iter().flat_map(|c| c.decode().unwrap()).collect();
    let space = &audio[5 * 960..6 * 960];
    assert!(space.iter().all(|s| *s == 0));
    assert!(audio[..960].iter().any(|s| s.unsigned_abs() > 7_000));

    let fast = speak(
        &tts,
        TtsConfig::new("alloy", AudioFormat::G711Ulaw).with_speed(2.0),
        "hello world",
    )
    .await;
    assert_eq!(fast.last().unwrap().end_ms, 220);
    assert!(fast.iter().all(|c| c.format == AudioFormat::G711Ulaw));
}

#[tokio::test]
async fn tone_tts_speaks_whole_words_until_finish() {
    let tts = ToneTts::default().with_ms_per_char(10).with_chunk_ms(1_000);
    let mut stream = tts
        .open(&ctx(), TtsConfig::new("alloy", AudioFormat::PCM16_24K))
        .await
        .unwrap();
    stream.push_text("Hello wor").await.unwrap();
    let chunk = stream.next_chunk().await.unwrap().unwrap();
    assert_eq!(
        (chunk.text.as_str(), chunk.text_range.clone(), chunk.end_ms),
        ("Hello ", 0..6, 60)
    );
    // "wor" may still grow: nothing more until a space or finish.
    assert!(
        tokio::time::timeout(Duration::from_millis(20), stream.next_chunk())
            .await
            .is_err()
    );
    stream.push_text("ld, héllo").await.unwrap();
    let chunk = stream.next_chunk().await.unwrap().unwrap();
    assert_eq!(chunk.text, "world, ");
    stream.finish().await.unwrap();
    let chunk = stream.next_chunk().await.unwrap().unwrap();
    assert_eq!((chunk.text.as_str(), chunk.text_range.clone()), ("héllo", 13..19));
    assert_eq!(stream.next_chunk().await.unwrap(), None);
    assert_eq!(stream.usage().characters, 18);
    assert_eq!(stream.usage().audio_ms, 180);
}

#[tokio::test(start_paused = true)]
async fn tone_tts_paces_chunks_and_cancels_during_a_wait() {
    let tts = ToneTts::default()
        .with_chunk_ms(20)
        .with_chunk_delay(Duration::from_millis(20));
    let mut stream = tts
        .open(&ctx(), TtsConfig::new("alloy", AudioFormat::PCM16_24K))
        .await
        .unwrap();
    stream.push_text("one two three").await.unwrap();
    stream.finish().await.unwrap();
    let started = tokio::time::Instant::now();
    for _ in 0..5 {
        stream.next_chunk().await.unwrap().unwrap();
    }
    assert_eq!(started.elapsed(), Duration::from_millis(100));
    // A pending chunk that loses a race is not lost, and a cancel lands at once.
    assert!(
        tokio::time::timeout(Duration::from_millis(5), stream.next_chunk())
            .await
            .is_err()
    );
    let sixth = stream.next_chunk().await.unwrap().unwrap();
    assert_eq!(sixth.start_ms, 100);
    // The dropped call had started the chunk: it is ready 20 ms after that call, not after this one.
    assert_eq!(started.elapsed(), Duration::from_millis(120));
    stream.cancel();
    assert!(matches!(stream.next_chunk().await, Err(Error::Cancelled)));
    assert!(matches!(stream.finish().await, Err(Error::Cancelled)));
}

fn tool(name: &str) -> ToolSpec {
    ToolSpec {
        name: name.into(),
        description: None,
        parameters: serde_json::json!({"type": "object"}),
    }
}

fn ask(text: &str) -> ChatRequest {
    ChatRequest::new(vec![ChatMessage::User { content: text.into() }])
}

async fn chat(llm: &ScriptedLlm, request: ChatRequest) -> Vec<ChatEvent> {
    let mut stream = llm
        .stream(&ctx(), request, CancellationToken::new())
        .await
        .unwrap();
    let mut out = Vec::new();
    while let Some(event) = stream.next_event().await.unwrap() {
        out.push(event);
    }
    out
}

#[tokio::test]
async fn scripted_llm_streams_words_and_calls_and_picks_replies_the_request_allows() {
    let llm = ScriptedLlm::new([
        ScriptedReply::tool_call("lookup", serde_json::json!({"q": "a long query string"}))
            .with_input_tokens(42),
        ScriptedReply::text("Sure, one moment."),
        ScriptedReply::text("Here it is.")
            .and_call("lookup", "{}")
            .and_call("save", r#"{"ok":true}"#),
    ]);
    // No tools: the first reply the request can legally get is the text one.
    let events = chat(&llm, ask("hi")).await;
    assert_eq!(
        events,
        vec![
            ChatEvent::TextDelta {
                delta: "Sure, ".into()
            },
            ChatEvent::TextDelta { delta: "one ".into() },
            ChatEvent::TextDelta {
                delta: "moment.".into()
            },
            ChatEvent::Done {
                usage: avb_voice::llm::TokenUsage {
                    input_tokens: 1,
                    output_tokens: 3
                },
                finish_reason: FinishReason::Stop
            },
        ]
    );
    // A forced call takes the call reply, streamed in pieces under one id.
    let request = ask("find it").with_tools(
        vec![tool("lookup")],
        ToolChoice::Function {
            name: "lookup".into(),
        },
    );
    let events = chat(&llm, request).await;
    let arguments: String = events
        .iter()
        .filter_map(|e| match e {
            ChatEvent::ToolCallDelta {
                call_id,
                name,
                arguments_delta,
            } => {
                assert_eq!((call_id.as_str(), name.as_str()), ("call_000000", "lookup"));
                Some(arguments_delta.as_str())
            }
            _ => None,
        })
        .collect();
    assert_eq!(arguments, r#"{"q":"a long query string"}"#);
    assert!(matches!(
        events.last(),
        Some(ChatEvent::Done { usage, finish_reason: FinishReason::ToolCalls }) if usage.input_tokens == 42
    ));
    // Text and two calls; the second call needs its tool too.
    let request = ask("go").with_tools(vec![tool("lookup")], ToolChoice::Auto);
    assert!(matches!(
        llm.stream(&ctx(), request, CancellationToken::new()).await,
        Err(Error::InvalidState(_))
    ));
    let request = ask("go").with_tools(vec![tool("lookup"), tool("save")], ToolChoice::Required);
    let events = chat(&llm, request).await;
    let mut ids: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            ChatEvent::ToolCallDelta { call_id, .. } => Some(call_id.as_str()),
            _ => None,
        })
        .collect();
    ids.dedup();
    assert_eq!(
        ids,
        ["call_000001", "call_000002"],
        "ids are unique and their deltas do not interleave"
    );
    assert!(matches!(events[0], ChatEvent::TextDelta { .. }));
    assert_eq!(llm.remaining(), 0);
    assert!(matches!(
        llm.stream(&ctx(), ask("more"), CancellationToken::new()).await,
        Err(Error::InvalidState(_))
    ));
    assert_eq!(
        llm.requests().len(),
        5,
        "every request is recorded, answered or not"
    );
}

#[tokio::test]
async fn scripted_llm_caps_output_tokens() {
    let llm = ScriptedLlm::new([ScriptedReply::text("one two three four")]);
    let events = chat(&llm, ask("count").with_max_output_tokens(2)).await;
    assert_eq!(events.len(), 3);
    assert!(matches!(
        events[2],
        ChatEvent::Done { usage, finish_reason: FinishReason::Length } if usage.output_tokens == 2
    ));
}

#[tokio::test(start_paused = true)]
async fn scripted_llm_paces_tokens_and_stops_at_the_cut() {
    let words = vec!["word"; 50].join(" ");
    let llm = ScriptedLlm::new([ScriptedReply::text(words)]).with_token_delay(Duration::from_millis(10));
    let cancel = CancellationToken::new();
    let mut stream = llm.stream(&ctx(), ask("talk"), cancel.clone()).await.unwrap();
    let started = tokio::time::Instant::now();
    for _ in 0..3 {
        stream.next_event().await.unwrap().unwrap();
    }
    assert_eq!(started.elapsed(), Duration::from_millis(30));
    // A call that loses a race does not restart the wait for its delta.
    assert!(
        tokio::time::timeout(Duration::from_millis(4), stream.next_event())
            .await
            .is_err()
    );
    stream.next_event().await.unwrap().unwrap();
    assert_eq!(started.elapsed(), Duration::from_millis(40));
    // Cancel while a delta is pending: the wait ends at once with `Cancelled`.
    let waiting = tokio::spawn(async move {
        let result = stream.next_event().await;
        (result, stream)
    });
    tokio::time::sleep(Duration::from_millis(3)).await;
    cancel.cancel();
    let (result, mut stream) = waiting.await.unwrap();
    assert!(matches!(result, Err(Error::Cancelled)));
    assert_eq!(started.elapsed(), Duration::from_millis(43));
    assert!(matches!(stream.next_event().await, Err(Error::Cancelled)));
    assert_eq!(stream.usage().output_tokens, 4, "usage of the cut reply");
}
