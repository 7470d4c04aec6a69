//! `/ws/v2/tts/stream`: streaming text-to-speech over the [`TextToSpeech`] port.
//!
//! The spec names the consumer (`TTSConsumer`) but not its messages; these mirror the transcription stream, with
//! text in and `audio.delta` (the session consumer's name) out:
//!
//! | client | server |
//! |---|---|
//! | `session.update {config: {voice, speed, format, sample_rate}}` (between utterances) | `session.updated {config}` |
//! | `text.chunk {text}` — opens an utterance on the first chunk; text may arrive in pieces (a model's deltas) | `audio.delta {audio, format, text, start_ms, end_ms}` as speech is synthesised |
//! | `text.commit` — no more text for this utterance | the remaining audio, then `audio.done {status: "completed", characters, audio_ms}` |
//! | `audio.cancel` — stop now (barge-in) | `audio.done {status: "cancelled", …}`; no further audio of it |
//! | `ping` | `pong` |
//!
//! One utterance at a time: text after `text.commit` waits for `audio.done`. The connection idles out and expires
//! like a realtime session (not while audio is still being produced). Speech synthesised here is not metered on a
//! session record (there is none).

use super::stt::{audio_format, format_name, voice_error_code};
use super::wire::{Inbound, Meter, Outbox, config_field, refuse_non_message, str_field, unknown_type};
use super::{ClientFrame, CloseFrame, Consumer, FrameSource, Limits, normal_close};
use crate::app::App;
use avb_core::Ctx;
use avb_voice::audio::AudioFormat;
use avb_voice::audio::framing::encode_base64;
use avb_voice::tts::{MAX_SPEED, MIN_SPEED, TextToSpeech, TtsChunk, TtsConfig, TtsStream, TtsUsage};
use serde_json::{Map, Value, json};
use std::sync::Arc;
use tokio::sync::mpsc;

/// Longest text accepted in one `text.chunk` (characters): a paragraph streams in many chunks.
const MAX_CHUNK_CHARS: usize = 64 * 1024;

/// An accepted synthesis stream.
#[derive(Debug)]
pub(crate) struct TtsConsumer {
    app: App,
    ctx: Ctx,
    tts: Arc<dyn TextToSpeech>,
}

/// What the client configured.
#[derive(Debug, Clone, PartialEq)]
struct Settings {
    voice: String,
    speed: f32,
    format: AudioFormat,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            voice: "alloy".to_owned(),
            speed: 1.0,
            format: AudioFormat::PCM16_24K,
        }
    }
}

impl Settings {
    /// Applies a `session.update` config (absent keys keep their value).
    fn update(&self, config: &Map<String, Value>) -> Result<Self, String> {
        let mut next = self.clone();
        match config.get("voice") {
            None | Some(Value::Null) => {}
            Some(Value::String(voice)) => next.voice = voice.chars().take(200).collect(),
            Some(_) => return Err("\"voice\" must be a string".into()),
        }
        match config.get("speed") {
            None | Some(Value::Null) => {}
            Some(value) => {
                let speed = value
                    .as_f64()
                    .filter(|s| (f64::from(MIN_SPEED)..=f64::from(MAX_SPEED)).contains(s))
                    .ok_or_else(|| format!("\"speed\" must be a number within {MIN_SPEED}..={MAX_SPEED}"))?;
                next.speed = speed as f32;
            }
        }
        next.format = audio_format(config, self.format)?;
        next.tts_config().validate().map_err(|e| e.to_string())?;
        Ok(next)
    }

    fn tts_config(&self) -> TtsConfig {
        TtsConfig::new(self.voice.clone(), self.format).with_speed(self.speed)
    }

    fn describe(&self) -> Value {
        json!({
            "voice": self.voice,
            "speed": self.speed,
            "format": format_name(self.format),
            "sample_rate": self.format.sample_rate(),
        })
    }
}

/// The utterance in progress.
#[derive(Debug)]
struct Utterance {
    stream: Box<dyn TtsStream>,
    /// `text.commit` was received: the rest of the audio is coming.
    committed: bool,
}

/// What woke the loop.
enum Wake {
    Frame(Option<ClientFrame>),
    Speech(avb_voice::Result<Option<TtsChunk>>),
    Limit,
}

impl TtsConsumer {
    pub(crate) fn new(app: App, ctx: Ctx, tts: Arc<dyn TextToSpeech>) -> Self {
        Self { app, ctx, tts }
    }

    pub(crate) async fn run<S: FrameSource>(
        self,
        mut incoming: S,
        outgoing: mpsc::Sender<String>,
    ) -> CloseFrame {
        let meter = Meter::open(&self.app, Consumer::Tts);
        let out = Outbox::new(&self.app, outgoing);
        let limits = Limits::of(&self.app);
        let mut settings = Settings::default();
        let mut utterance: Option<Utterance> = None;
        let mut received = 0u64;
        let mut idle_at = limits.idle_from_now();
        let mut open = out.established().await;
        let close = loop {
            if !open {
                break normal_close();
            }
            let speaking = utterance.as_ref().is_some_and(|u| u.committed);
            let wake = tokio::select! {
                biased;
                frame = incoming.next_frame() => Wake::Frame(frame),
                chunk = next_chunk(&mut utterance) => Wake::Speech(chunk),
                () = tokio::time::sleep_until(idle_at), if !speaking => Wake::Limit,
            };
            match wake {
                Wake::Frame(None) => break normal_close(),
                Wake::Frame(Some(frame)) => {
                    received += 1;
                    idle_at = limits.idle_from_now();
                    open = self.on_frame(frame, &out, &mut settings, &mut utterance).await;
                }
                Wake::Speech(chunk) => {
                    open = on_chunk(chunk, &out, &mut utterance).await;
                    // Idle time counts from the end of the audio too, not only from the last client message.
                    if utterance.is_none() {
                        idle_at = limits.idle_from_now();
                    }
                }
                Wake::Limit => {
                    let (code, message, close) = limits.ending(tokio::time::Instant::now());
                    out.error(code, message).await;
                    break close;
                }
            }
        };
        meter.close(received, out.sent());
        close
    }

    /// Handles one client frame; `false` once the socket is gone.
    async fn on_frame(
        &self,
        frame: ClientFrame,
        out: &Outbox,
        settings: &mut Settings,
        utterance: &mut Option<Utterance>,
    ) -> bool {
        let inbound = Inbound::parse(frame);
        let Inbound::Message { kind, body } = &inbound else {
            return refuse_non_message(out, &inbound).await;
        };
        match kind.as_str() {
            "ping" => out.pong().await,
            "session.update" => {
                if utterance.is_some() {
                    return out
                        .error(
                            "conflict",
                            "wait for audio.done before changing the configuration",
                        )
                        .await;
                }
                match config_field(body).and_then(|config| settings.update(&config)) {
                    Ok(next) => {
                        *settings = next;
                        out.event("session.updated", json!({ "config": settings.describe() }))
                            .await
                    }
                    Err(message) => out.error("validation_error", message).await,
                }
            }
            "text.chunk" => {
                let Some(text) = str_field(body, "text") else {
                    return out.error("validation_error", "\"text\" must be a string").await;
                };
                if text.chars().count() > MAX_CHUNK_CHARS {
                    return out
                        .error(
                            "validation_error",
                            format!("a text.chunk carries at most {MAX_CHUNK_CHARS} characters"),
                        )
                        .await;
                }
                if utterance.as_ref().is_some_and(|u| u.committed) {
                    return out
                        .error("conflict", "the utterance was committed; wait for audio.done")
                        .await;
                }
                if utterance.is_none() {
                    match self.tts.open(&self.ctx, settings.tts_config()).await {
                        Ok(stream) => {
                            *utterance = Some(Utterance {
                                stream,
                                committed: false,
                            });
                        }
                        Err(err) => return out.error(voice_error_code(&err), err.to_string()).await,
                    }
                }
                let Some(current) = utterance.as_mut() else {
                    return true;
                };
                match current.stream.push_text(text).await {
                    Ok(()) => true,
                    Err(err) => {
                        *utterance = None;
                        out.error(voice_error_code(&err), err.to_string()).await
                    }
                }
            }
            "text.commit" => {
                let Some(current) = utterance.as_mut().filter(|u| !u.committed) else {
                    return out.error("conflict", "no text to commit").await;
                };
                match current.stream.finish().await {
                    Ok(()) => {
                        current.committed = true;
                        true
                    }
                    Err(err) => {
                        *utterance = None;
                        out.error(voice_error_code(&err), err.to_string()).await
                    }
                }
            }
            "audio.cancel" => {
                let Some(mut current) = utterance.take() else {
                    return out.error("conflict", "no audio in progress").await;
                };
                current.stream.cancel();
                done(out, current.stream.usage(), "cancelled").await
            }
            other => unknown_type(out, other).await,
        }
    }
}

/// The next chunk of the utterance in progress (never, without one). Cancel-safe, as the port's is.
async fn next_chunk(utterance: &mut Option<Utterance>) -> avb_voice::Result<Option<TtsChunk>> {
    match utterance.as_mut() {
        Some(current) => current.stream.next_chunk().await,
        None => std::future::pending().await,
    }
}

async fn on_chunk(
    chunk: avb_voice::Result<Option<TtsChunk>>,
    out: &Outbox,
    utterance: &mut Option<Utterance>,
) -> bool {
    match chunk {
        Ok(Some(chunk)) => {
            out.event(
                "audio.delta",
                json!({
                    "audio": encode_base64(&chunk.audio),
                    "format": format_name(chunk.format),
                    "sample_rate": chunk.format.sample_rate(),
                    "text": chunk.text,
                    "start_ms": chunk.start_ms,
                    "end_ms": chunk.end_ms,
                }),
            )
            .await
        }
        Ok(None) => match utterance.take() {
            Some(current) => done(out, current.stream.usage(), "completed").await,
            None => true,
        },
        Err(avb_voice::Error::Cancelled) => {
            *utterance = None;
            true
        }
        Err(err) => {
            let failed = utterance.take();
            if !out.error(voice_error_code(&err), err.to_string()).await {
                return false;
            }
            match failed {
                Some(current) => done(out, current.stream.usage(), "failed").await,
                None => true,
            }
        }
    }
}

/// `audio.done`: how the utterance ended and what it cost. Takes the usage, not the stream: a stream is `Send`
/// but not `Sync`, so no reference to it may live across an await.
async fn done(out: &Outbox, usage: TtsUsage, status: &str) -> bool {
    out.event(
        "audio.done",
        json!({ "status": status, "characters": usage.characters, "audio_ms": usage.audio_ms }),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn settings_update_validates_and_keeps_what_is_absent() {
        let base = Settings::default();
        let next = base
            .update(&config(json!({"voice": "verse", "speed": 1.5})))
            .unwrap();
        assert_eq!(
            (next.voice.as_str(), next.speed, next.format),
            ("verse", 1.5, AudioFormat::PCM16_24K)
        );
        let next = next.update(&config(json!({"format": "g711_alaw"}))).unwrap();
        assert_eq!(
            (next.voice.as_str(), next.format),
            ("verse", AudioFormat::G711Alaw)
        );
        for bad in [
            json!({"voice": ""}),
            json!({"voice": 3}),
            json!({"speed": 9}),
            json!({"speed": "fast"}),
            json!({"format": "wav"}),
        ] {
            assert!(base.update(&config(bad.clone())).is_err(), "{bad}");
        }
    }
}
