//! `/ws/v2/stt/transcription`: streaming speech-to-text over the [`SpeechToText`] port, without a conversation.
//!
//! The spec names the consumer (`TranscriptionConsumer`) but not its messages; these follow the session
//! consumer's names:
//!
//! | client | server |
//! |---|---|
//! | `session.update {config: {format, sample_rate, language, model, prompt}}` (between utterances) | `session.updated {config}` |
//! | `audio.chunk {audio}` (base64, default pcm16 24 kHz) — opens an utterance on the first chunk | `transcription.partial {text, start_ms, end_ms, confidence}` as recognition goes, `transcription.final {…}` per settled stretch |
//! | `audio.commit` — ends the utterance | the remaining finals, then `transcription.done {text, audio_ms}` |
//! | `ping` | `pong` |
//!
//! Partials replace the previous partial (they may revise it). The connection idles out and expires like a
//! realtime session. Audio transcribed here is not metered on a session record (there is none).

use super::wire::{Inbound, Meter, Outbox, codes, config_field, refuse_non_message, str_field, unknown_type};
use super::{ClientFrame, CloseFrame, Consumer, FrameSource, Limits, normal_close};
use crate::app::App;
use avb_core::Ctx;
use avb_core::error::HasCode;
use avb_voice::audio::AudioFormat;
use avb_voice::audio::framing::{DEFAULT_MAX_APPEND_BYTES, decode_base64};
use avb_voice::stt::{SpeechToText, SttConfig, SttEvent, SttStream, Transcript};
use serde_json::{Map, Value, json};
use std::sync::Arc;
use tokio::sync::mpsc;

/// An accepted transcription stream.
#[derive(Debug)]
pub(crate) struct SttConsumer {
    app: App,
    ctx: Ctx,
    stt: Arc<dyn SpeechToText>,
}

/// What the client configured.
#[derive(Debug, Clone, PartialEq)]
struct Settings {
    format: AudioFormat,
    language: Option<String>,
    model: Option<String>,
    prompt: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            format: AudioFormat::PCM16_24K,
            language: None,
            model: None,
            prompt: None,
        }
    }
}

impl Settings {
    /// Applies a `session.update` config (absent keys keep their value; `null` clears the optional ones).
    fn update(&self, config: &Map<String, Value>) -> Result<Self, String> {
        let mut next = self.clone();
        let text = |name: &str, current: &Option<String>| -> Result<Option<String>, String> {
            match config.get(name) {
                None => Ok(current.clone()),
                Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.chars().take(1000).collect())),
                Some(_) => Err(format!("\"{name}\" must be a string")),
            }
        };
        next.language = text("language", &self.language)?;
        next.model = text("model", &self.model)?;
        next.prompt = text("prompt", &self.prompt)?;
        next.format = audio_format(config, self.format)?;
        next.stt_config().validate().map_err(|e| e.to_string())?;
        Ok(next)
    }

    fn stt_config(&self) -> SttConfig {
        let mut config = SttConfig::new(self.format.sample_rate());
        config.language = self.language.clone();
        config.model = self.model.clone();
        config.prompt = self.prompt.clone();
        config
    }

    fn describe(&self) -> Value {
        json!({
            "format": format_name(self.format),
            "sample_rate": self.format.sample_rate(),
            "language": self.language,
            "model": self.model,
            "prompt": self.prompt,
        })
    }
}

/// `format` (`pcm16`, `g711_ulaw`, `g711_alaw`) and `sample_rate` (pcm16 only) of a config, over `current`.
pub(crate) fn audio_format(config: &Map<String, Value>, current: AudioFormat) -> Result<AudioFormat, String> {
    let name = match config.get("format") {
        None | Some(Value::Null) => format_name(current),
        Some(Value::String(name)) => name.as_str(),
        Some(_) => return Err("\"format\" must be one of pcm16, g711_ulaw, g711_alaw".into()),
    };
    let rate = match config.get("sample_rate") {
        None | Some(Value::Null) => None,
        Some(value) => Some(
            value
                .as_u64()
                .and_then(|r| u32::try_from(r).ok())
                .ok_or("\"sample_rate\" must be a positive integer")?,
        ),
    };
    match name {
        "pcm16" => {
            let rate = rate.unwrap_or(match current {
                AudioFormat::Pcm16 { sample_rate } => sample_rate,
                AudioFormat::G711Ulaw | AudioFormat::G711Alaw => AudioFormat::PCM16_24K.sample_rate(),
            });
            AudioFormat::pcm16(rate).map_err(|e| e.to_string())
        }
        "g711_ulaw" | "g711_alaw" => {
            let format = AudioFormat::from_beta_name(name).map_err(|e| e.to_string())?;
            match rate {
                Some(rate) if rate != format.sample_rate() => {
                    Err(format!("{name} is 8000 Hz, not {rate} Hz"))
                }
                _ => Ok(format),
            }
        }
        other => Err(format!(
            "\"format\" {other:?} is not one of pcm16, g711_ulaw, g711_alaw"
        )),
    }
}

/// The config name of a format.
pub(crate) fn format_name(format: AudioFormat) -> &'static str {
    match format {
        AudioFormat::Pcm16 { .. } => "pcm16",
        AudioFormat::G711Ulaw => "g711_ulaw",
        AudioFormat::G711Alaw => "g711_alaw",
    }
}

/// The code of a speech-port error in an `error` message (`invalid_audio` as the spec names it, else the stable
/// [`ErrorCode`](avb_core::ErrorCode)).
pub(crate) fn voice_error_code(err: &avb_voice::Error) -> &'static str {
    match err {
        avb_voice::Error::InvalidAudio(_) => codes::INVALID_AUDIO,
        other => other.code().as_str(),
    }
}

/// The utterance in progress.
#[derive(Debug)]
struct Utterance {
    stream: Box<dyn SttStream>,
    finals: Vec<String>,
}

/// What woke the loop.
enum Wake {
    Frame(Option<ClientFrame>),
    Stt(avb_voice::Result<Option<SttEvent>>),
    Limit,
}

impl SttConsumer {
    pub(crate) fn new(app: App, ctx: Ctx, stt: Arc<dyn SpeechToText>) -> Self {
        Self { app, ctx, stt }
    }

    pub(crate) async fn run<S: FrameSource>(
        self,
        mut incoming: S,
        outgoing: mpsc::Sender<String>,
    ) -> CloseFrame {
        let meter = Meter::open(&self.app, Consumer::Transcription);
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
            let wake = tokio::select! {
                biased;
                frame = incoming.next_frame() => Wake::Frame(frame),
                event = next_event(&mut utterance) => Wake::Stt(event),
                () = tokio::time::sleep_until(idle_at) => Wake::Limit,
            };
            match wake {
                Wake::Frame(None) => break normal_close(),
                Wake::Frame(Some(frame)) => {
                    received += 1;
                    idle_at = limits.idle_from_now();
                    open = self.on_frame(frame, &out, &mut settings, &mut utterance).await;
                }
                Wake::Stt(event) => open = on_event(event, &out, &mut utterance).await,
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
                            "commit the utterance in progress before changing the configuration",
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
            "audio.chunk" => {
                let samples = match decode_chunk(body, settings.format) {
                    Ok(samples) => samples,
                    Err((code, message)) => return out.error(code, message).await,
                };
                if utterance.is_none() {
                    match self.stt.open(&self.ctx, settings.stt_config()).await {
                        Ok(stream) => {
                            *utterance = Some(Utterance {
                                stream,
                                finals: Vec::new(),
                            });
                        }
                        Err(err) => return out.error(voice_error_code(&err), err.to_string()).await,
                    }
                }
                let Some(current) = utterance.as_mut() else {
                    return true;
                };
                match current.stream.push_audio(&samples).await {
                    Ok(()) => true,
                    Err(err) => {
                        *utterance = None;
                        out.error(voice_error_code(&err), err.to_string()).await
                    }
                }
            }
            "audio.commit" => {
                let Some(current) = utterance.take() else {
                    return out.error("conflict", "no audio to commit").await;
                };
                self.finish(current, out).await
            }
            other => unknown_type(out, other).await,
        }
    }

    /// Ends the utterance: its remaining transcripts, then `transcription.done`.
    async fn finish(&self, mut current: Utterance, out: &Outbox) -> bool {
        if let Err(err) = current.stream.finish().await {
            return out.error(voice_error_code(&err), err.to_string()).await;
        }
        let deadline = tokio::time::Instant::now() + self.app.inner().config.request_timeout;
        loop {
            match tokio::time::timeout_at(deadline, current.stream.next_event()).await {
                Ok(Ok(Some(event))) => {
                    if !send_transcript(out, &event, &mut current.finals).await {
                        return false;
                    }
                }
                Ok(Ok(None)) => break,
                Ok(Err(err)) => return out.error(voice_error_code(&err), err.to_string()).await,
                Err(_) => {
                    return out
                        .error("timeout", "the transcription did not finish in time")
                        .await;
                }
            }
        }
        let usage = current.stream.usage();
        out.event(
            "transcription.done",
            json!({ "text": current.finals.join(" "), "audio_ms": usage.audio_ms }),
        )
        .await
    }
}

/// The next transcript of the utterance in progress (never, without one). Cancel-safe, as the port's is.
async fn next_event(utterance: &mut Option<Utterance>) -> avb_voice::Result<Option<SttEvent>> {
    match utterance.as_mut() {
        Some(current) => current.stream.next_event().await,
        None => std::future::pending().await,
    }
}

/// A transcript that arrived before `audio.commit`.
async fn on_event(
    event: avb_voice::Result<Option<SttEvent>>,
    out: &Outbox,
    utterance: &mut Option<Utterance>,
) -> bool {
    match event {
        Ok(Some(event)) => match utterance.as_mut() {
            Some(current) => send_transcript(out, &event, &mut current.finals).await,
            None => true,
        },
        // Only a finished stream ends, and a finished one is no longer here; nothing to do.
        Ok(None) => true,
        Err(err) => {
            *utterance = None;
            out.error(voice_error_code(&err), err.to_string()).await
        }
    }
}

async fn send_transcript(out: &Outbox, event: &SttEvent, finals: &mut Vec<String>) -> bool {
    let (kind, transcript) = match event {
        SttEvent::Partial(t) => ("transcription.partial", t),
        SttEvent::Final(t) => {
            if !t.text.is_empty() {
                finals.push(t.text.clone());
            }
            ("transcription.final", t)
        }
    };
    out.event(kind, transcript_data(transcript)).await
}

fn transcript_data(t: &Transcript) -> Value {
    json!({ "text": t.text, "start_ms": t.start_ms, "end_ms": t.end_ms, "confidence": t.confidence })
}

/// The samples of an `audio.chunk` in `format`, or the `error` code and message.
fn decode_chunk(body: &Map<String, Value>, format: AudioFormat) -> Result<Vec<i16>, (&'static str, String)> {
    let audio = str_field(body, "audio")
        .filter(|a| !a.is_empty())
        .ok_or((codes::INVALID_AUDIO, "Audio data required".to_owned()))?;
    let bytes =
        decode_base64(audio, DEFAULT_MAX_APPEND_BYTES).map_err(|e| (voice_error_code(&e), e.to_string()))?;
    format
        .decode(&bytes)
        .map_err(|e| (voice_error_code(&e), e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use avb_voice::audio::framing::encode_base64;

    fn config(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn settings_update_validates_and_keeps_what_is_absent() {
        let base = Settings::default();
        let next = base
            .update(&config(json!({"language": "en", "sample_rate": 16000})))
            .unwrap();
        assert_eq!(next.format, AudioFormat::Pcm16 { sample_rate: 16000 });
        assert_eq!(next.language.as_deref(), Some("en"));
        let next = next
            .update(&config(json!({"format": "g711_ulaw", "language": null})))
            .unwrap();
        assert_eq!(next.format, AudioFormat::G711Ulaw);
        assert_eq!(next.language, None);
        for bad in [
            json!({"format": "mp3"}),
            json!({"sample_rate": 12345}),
            json!({"format": "g711_alaw", "sample_rate": 16000}),
            json!({"sample_rate": "fast"}),
            json!({"language": 5}),
        ] {
            assert!(base.update(&config(bad.clone())).is_err(), "{bad}");
        }
    }

    #[test]
    fn chunks_decode_in_the_configured_format() {
        let pcm = encode_base64(&[1, 0, 2, 0]);
        assert_eq!(
            decode_chunk(&config(json!({"audio": pcm})), AudioFormat::PCM16_24K),
            Ok(vec![1, 2])
        );
        let odd = encode_base64(&[1, 0, 2]);
        assert_eq!(
            decode_chunk(&config(json!({"audio": odd})), AudioFormat::PCM16_24K).map_err(|e| e.0),
            Err(codes::INVALID_AUDIO)
        );
        assert_eq!(
            decode_chunk(&config(json!({})), AudioFormat::PCM16_24K).map_err(|e| e.0),
            Err(codes::INVALID_AUDIO)
        );
        assert_eq!(
            decode_chunk(&config(json!({"audio": "!!"})), AudioFormat::PCM16_24K).map_err(|e| e.0),
            Err(codes::INVALID_AUDIO)
        );
        assert_eq!(
            decode_chunk(
                &config(json!({"audio": encode_base64(&[0xff])})),
                AudioFormat::G711Ulaw
            )
            .map(|s| s.len()),
            Ok(1)
        );
    }
}
