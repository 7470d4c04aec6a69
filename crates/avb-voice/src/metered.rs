//! Metering decorators over the speech and language ports: how the application exports the spec's STT, TTS
//! and LLM metrics (`avb_stt_*`, `avb_tts_*`, `avb_llm_*`) without any engine knowing about metrics.
//!
//! [`MeteredSpeechToText`], [`MeteredTextToSpeech`] and [`MeteredLanguageModel`] wrap a port and its streams and
//! hand one record per engine request to a [`VoiceMeter`]: when the stream ends (`Ok(None)`) or is dropped,
//! whichever comes first, so a cancelled or abandoned request is counted too, and never twice. Usage comes from
//! the inner stream at that moment. A request whose `open`/`stream` fails is not recorded (its error is
//! returned unchanged). Everything else passes through untouched, so the wrapped streams keep the ports'
//! contracts (ordering, cancel-safety of `next_event`/`next_chunk`, errors).
//!
//! Durations are read from [`tokio::time::Instant`], so they follow a paused test clock.

use crate::error::Result;
use crate::llm::{ChatEvent, ChatRequest, ChatStream, LanguageModel, TokenUsage};
use crate::realtime::engine::SessionPorts;
use crate::stt::{SpeechToText, SttConfig, SttEvent, SttStream, SttUsage};
use crate::tts::{TextToSpeech, TtsChunk, TtsConfig, TtsStream, TtsUsage};
use async_trait::async_trait;
use avb_core::Ctx;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Model label when neither the request nor the decorator names one.
pub const DEFAULT_MODEL: &str = "default";
/// STT language label when the request gives no hint (the engine detects the language).
pub const AUTO_LANGUAGE: &str = "auto";
/// TTS language label when none is configured (BCP-47 "undetermined"; [`TtsConfig`] carries no language).
pub const UNDETERMINED_LANGUAGE: &str = "und";
/// LLM provider label when none is configured.
pub const UNKNOWN_PROVIDER: &str = "unknown";

/// Receives one record per finished engine request (stream ended or dropped): how the application turns engine
/// use into metrics without the engines knowing about them.
///
/// Called inline — from `next_event`/`next_chunk` or from a stream's `Drop` — so it must be cheap and must not
/// block or panic: update counters/histograms, or copy the record into a channel.
pub trait VoiceMeter: Send + Sync + fmt::Debug + 'static {
    /// One speech-to-text stream.
    fn stt(&self, record: &SttRecord);
    /// One text-to-speech stream.
    fn tts(&self, record: &TtsRecord);
    /// One language-model reply.
    fn llm(&self, record: &LlmRecord);
}

/// A finished speech-to-text stream (`avb_stt_requests_total{model,language}`,
/// `avb_stt_duration_seconds{model}`, `avb_stt_audio_duration_seconds{model}`).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct SttRecord {
    /// The request's model, else the decorator's default.
    pub model: String,
    /// The request's language hint, else [`AUTO_LANGUAGE`].
    pub language: String,
    /// Seconds of audio pushed ([`SttUsage::audio_seconds`]).
    pub audio_seconds: f64,
    /// Processing time: from `finish` to the end of the stream. `None` when the stream was dropped before
    /// both happened, so an abandoned stream does not skew the histogram with a made-up time.
    pub processing: Option<Duration>,
}

impl SttRecord {
    /// A record with these values (for meters' own tests; the decorator builds the real ones).
    pub fn new(
        model: impl Into<String>,
        language: impl Into<String>,
        audio_seconds: f64,
        processing: Option<Duration>,
    ) -> Self {
        Self {
            model: model.into(),
            language: language.into(),
            audio_seconds,
            processing,
        }
    }
}

/// A finished text-to-speech stream (`avb_tts_requests_total{voice,language}`,
/// `avb_tts_duration_seconds{voice}`, `avb_tts_characters_total{voice}`).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct TtsRecord {
    /// The configured voice.
    pub voice: String,
    /// The decorator's language label (default [`UNDETERMINED_LANGUAGE`]).
    pub language: String,
    /// Characters pushed ([`TtsUsage::characters`]).
    pub characters: u64,
    /// Seconds of audio delivered ([`TtsUsage::audio_ms`]).
    pub audio_seconds: f64,
    /// From `open` to the end of the stream or its drop.
    pub duration: Duration,
}

impl TtsRecord {
    /// A record with these values (for meters' own tests; the decorator builds the real ones).
    pub fn new(
        voice: impl Into<String>,
        language: impl Into<String>,
        characters: u64,
        audio_seconds: f64,
        duration: Duration,
    ) -> Self {
        Self {
            voice: voice.into(),
            language: language.into(),
            characters,
            audio_seconds,
            duration,
        }
    }
}

/// A finished language-model reply (`avb_llm_requests_total{provider,model}`,
/// `avb_llm_tokens_total{provider,model,type}`, `avb_llm_duration_seconds{provider,model}`).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct LlmRecord {
    /// The decorator's provider label (default [`UNKNOWN_PROVIDER`]).
    pub provider: String,
    /// The request's model, else the decorator's default.
    pub model: String,
    /// Prompt tokens ([`TokenUsage::input_tokens`]; an estimate for a cancelled reply).
    pub input_tokens: u64,
    /// Generated tokens ([`TokenUsage::output_tokens`]).
    pub output_tokens: u64,
    /// From the `stream` call to the end of the reply or its drop.
    pub duration: Duration,
}

impl LlmRecord {
    /// A record with these values (for meters' own tests; the decorator builds the real ones).
    pub fn new(
        provider: impl Into<String>,
        model: impl Into<String>,
        input_tokens: u64,
        output_tokens: u64,
        duration: Duration,
    ) -> Self {
        Self {
            provider: provider.into(),
            model: model.into(),
            input_tokens,
            output_tokens,
            duration,
        }
    }
}

/// The request's label, unless it is absent or empty (an empty Prometheus label reads as a missing one).
fn label_or(requested: Option<&str>, fallback: &str) -> String {
    requested
        .filter(|label| !label.is_empty())
        .unwrap_or(fallback)
        .to_owned()
}

// ---------------------------------------------------------------------------------------------------------------
// Speech-to-text
// ---------------------------------------------------------------------------------------------------------------

/// A [`SpeechToText`] that reports every stream it opens to a [`VoiceMeter`] as an [`SttRecord`].
#[derive(Debug, Clone)]
pub struct MeteredSpeechToText {
    inner: Arc<dyn SpeechToText>,
    meter: Arc<dyn VoiceMeter>,
    model: String,
}

impl MeteredSpeechToText {
    /// Meters `inner`; the model label defaults to [`DEFAULT_MODEL`].
    pub fn new(inner: Arc<dyn SpeechToText>, meter: Arc<dyn VoiceMeter>) -> Self {
        Self {
            inner,
            meter,
            model: DEFAULT_MODEL.to_owned(),
        }
    }

    /// The model label of requests that name none (the engine's actual default model, ideally).
    #[must_use]
    pub fn with_model(mut self, model: impl Into<String>) -> Self {
        self.model = model.into();
        self
    }
}

#[async_trait]
impl SpeechToText for MeteredSpeechToText {
    async fn open(&self, ctx: &Ctx, config: SttConfig) -> Result<Box<dyn SttStream>> {
        let model = label_or(config.model.as_deref(), &self.model);
        let language = label_or(config.language.as_deref(), AUTO_LANGUAGE);
        let inner = self.inner.open(ctx, config).await?;
        Ok(Box::new(MeteredSttStream {
            inner,
            meter: Arc::clone(&self.meter),
            model,
            language,
            finished_at: None,
            recorded: false,
        }))
    }
}

struct MeteredSttStream {
    inner: Box<dyn SttStream>,
    meter: Arc<dyn VoiceMeter>,
    model: String,
    language: String,
    /// When the first successful `finish` was called.
    finished_at: Option<Instant>,
    recorded: bool,
}

impl MeteredSttStream {
    /// Reports the stream once; `processing` only when the stream reached its end after `finish`.
    fn record(&mut self, ended: bool) {
        if std::mem::replace(&mut self.recorded, true) {
            return;
        }
        let processing = self
            .finished_at
            .filter(|_| ended)
            .map(|at| Instant::now().saturating_duration_since(at));
        self.meter.stt(&SttRecord {
            model: std::mem::take(&mut self.model),
            language: std::mem::take(&mut self.language),
            audio_seconds: self.inner.usage().audio_seconds(),
            processing,
        });
    }
}

#[async_trait]
impl SttStream for MeteredSttStream {
    async fn push_audio(&mut self, samples: &[i16]) -> Result<()> {
        self.inner.push_audio(samples).await
    }

    async fn finish(&mut self) -> Result<()> {
        let called = Instant::now();
        self.inner.finish().await?;
        // A refused second `finish` must not move the start of processing.
        self.finished_at.get_or_insert(called);
        Ok(())
    }

    async fn next_event(&mut self) -> Result<Option<SttEvent>> {
        // Recording happens after the inner call completed, with no await in between: dropping this future
        // drops only the inner call, which is cancel-safe itself.
        let event = self.inner.next_event().await?;
        if event.is_none() {
            self.record(true);
        }
        Ok(event)
    }

    fn usage(&self) -> SttUsage {
        self.inner.usage()
    }
}

impl Drop for MeteredSttStream {
    fn drop(&mut self) {
        self.record(false);
    }
}

impl fmt::Debug for MeteredSttStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MeteredSttStream")
            .field("inner", &self.inner)
            .field("model", &self.model)
            .field("language", &self.language)
            .field("recorded", &self.recorded)
            .finish_non_exhaustive()
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Text-to-speech
// ---------------------------------------------------------------------------------------------------------------

/// A [`TextToSpeech`] that reports every stream it opens to a [`VoiceMeter`] as a [`TtsRecord`].
#[derive(Debug, Clone)]
pub struct MeteredTextToSpeech {
    inner: Arc<dyn TextToSpeech>,
    meter: Arc<dyn VoiceMeter>,
    language: String,
}

impl MeteredTextToSpeech {
    /// Meters `inner`; the language label defaults to [`UNDETERMINED_LANGUAGE`].
    pub fn new(inner: Arc<dyn TextToSpeech>, meter: Arc<dyn VoiceMeter>) -> Self {
        Self {
            inner,
            meter,
            language: UNDETERMINED_LANGUAGE.to_owned(),
        }
    }

    /// The language label of every stream: [`TtsConfig`] carries none, so it is the deployment's.
    #[must_use]
    pub fn with_language(mut self, language: impl Into<String>) -> Self {
        self.language = language.into();
        self
    }
}

#[async_trait]
impl TextToSpeech for MeteredTextToSpeech {
    async fn open(&self, ctx: &Ctx, config: TtsConfig) -> Result<Box<dyn TtsStream>> {
        let started = Instant::now();
        let voice = config.voice.clone();
        let inner = self.inner.open(ctx, config).await?;
        Ok(Box::new(MeteredTtsStream {
            inner,
            meter: Arc::clone(&self.meter),
            voice,
            language: self.language.clone(),
            started,
            recorded: false,
        }))
    }
}

struct MeteredTtsStream {
    inner: Box<dyn TtsStream>,
    meter: Arc<dyn VoiceMeter>,
    voice: String,
    language: String,
    started: Instant,
    recorded: bool,
}

impl MeteredTtsStream {
    /// Reports the stream once.
    fn record(&mut self) {
        if std::mem::replace(&mut self.recorded, true) {
            return;
        }
        let usage = self.inner.usage();
        self.meter.tts(&TtsRecord {
            voice: std::mem::take(&mut self.voice),
            language: std::mem::take(&mut self.language),
            characters: usage.characters,
            audio_seconds: usage.audio_ms as f64 / 1000.0,
            duration: Instant::now().saturating_duration_since(self.started),
        });
    }
}

#[async_trait]
impl TtsStream for MeteredTtsStream {
    async fn push_text(&mut self, text: &str) -> Result<()> {
        self.inner.push_text(text).await
    }

    async fn finish(&mut self) -> Result<()> {
        self.inner.finish().await
    }

    async fn next_chunk(&mut self) -> Result<Option<TtsChunk>> {
        // As for STT: no await after the inner call, so cancel-safety is the inner stream's.
        let chunk = self.inner.next_chunk().await?;
        if chunk.is_none() {
            self.record();
        }
        Ok(chunk)
    }

    fn cancel(&mut self) {
        // Recorded at drop: the owner may still read `usage()` or the `Cancelled` errors.
        self.inner.cancel();
    }

    fn usage(&self) -> TtsUsage {
        self.inner.usage()
    }
}

impl Drop for MeteredTtsStream {
    fn drop(&mut self) {
        self.record();
    }
}

impl fmt::Debug for MeteredTtsStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MeteredTtsStream")
            .field("inner", &self.inner)
            .field("voice", &self.voice)
            .field("language", &self.language)
            .field("recorded", &self.recorded)
            .finish_non_exhaustive()
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Language model
// ---------------------------------------------------------------------------------------------------------------

/// A [`LanguageModel`] that reports every reply it streams to a [`VoiceMeter`] as an [`LlmRecord`].
#[derive(Debug, Clone)]
pub struct MeteredLanguageModel {
    inner: Arc<dyn LanguageModel>,
    meter: Arc<dyn VoiceMeter>,
    provider: String,
    model: String,
}

impl MeteredLanguageModel {
    /// Meters `inner`; labels default to [`UNKNOWN_PROVIDER`] and [`DEFAULT_MODEL`].
    pub fn new(inner: Arc<dyn LanguageModel>, meter: Arc<dyn VoiceMeter>) -> Self {
        Self {
            inner,
            meter,
            provider: UNKNOWN_PROVIDER.to_owned(),
            model: DEFAULT_MODEL.to_owned(),
        }
    }

    /// The provider label (`"openai_compat"`): requests do not carry one.
    #[must_use]
    pub fn with_provider(mut self, provider: impl Into<String>) -> Self {
        self.provider = provider.into();
        self
    }

    /// The model label of requests that name none (the engine's actual default model, ideally).
    #[must_use]
    pub fn with_model(mut self, model: impl Into<String>) -> Self {
        self.model = model.into();
        self
    }
}

#[async_trait]
impl LanguageModel for MeteredLanguageModel {
    async fn stream(
        &self,
        ctx: &Ctx,
        request: ChatRequest,
        cancel: CancellationToken,
    ) -> Result<Box<dyn ChatStream>> {
        let started = Instant::now();
        let model = label_or(request.model.as_deref(), &self.model);
        let inner = self.inner.stream(ctx, request, cancel).await?;
        Ok(Box::new(MeteredChatStream {
            inner,
            meter: Arc::clone(&self.meter),
            provider: self.provider.clone(),
            model,
            started,
            recorded: false,
        }))
    }
}

struct MeteredChatStream {
    inner: Box<dyn ChatStream>,
    meter: Arc<dyn VoiceMeter>,
    provider: String,
    model: String,
    started: Instant,
    recorded: bool,
}

impl MeteredChatStream {
    /// Reports the reply once.
    fn record(&mut self) {
        if std::mem::replace(&mut self.recorded, true) {
            return;
        }
        let usage = self.inner.usage();
        self.meter.llm(&LlmRecord {
            provider: std::mem::take(&mut self.provider),
            model: std::mem::take(&mut self.model),
            input_tokens: usage.input_tokens,
            output_tokens: usage.output_tokens,
            duration: Instant::now().saturating_duration_since(self.started),
        });
    }
}

#[async_trait]
impl ChatStream for MeteredChatStream {
    async fn next_event(&mut self) -> Result<Option<ChatEvent>> {
        // As for STT: no await after the inner call, so cancel-safety is the inner stream's.
        let event = self.inner.next_event().await?;
        if event.is_none() {
            self.record();
        }
        Ok(event)
    }

    fn usage(&self) -> TokenUsage {
        self.inner.usage()
    }
}

impl Drop for MeteredChatStream {
    fn drop(&mut self) {
        self.record();
    }
}

impl fmt::Debug for MeteredChatStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MeteredChatStream")
            .field("inner", &self.inner)
            .field("provider", &self.provider)
            .field("model", &self.model)
            .field("recorded", &self.recorded)
            .finish_non_exhaustive()
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Session ports
// ---------------------------------------------------------------------------------------------------------------

/// The labels [`SessionPorts::metered`] gives the decorators: what requests do not say about the engines.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MeterLabels {
    /// The language model's provider (default [`UNKNOWN_PROVIDER`]).
    pub provider: String,
    /// STT model label of requests that name none (default [`DEFAULT_MODEL`]).
    pub stt_model: String,
    /// TTS language label (default [`UNDETERMINED_LANGUAGE`]).
    pub tts_language: String,
    /// LLM model label of requests that name none (default [`DEFAULT_MODEL`]).
    pub llm_model: String,
}

impl Default for MeterLabels {
    fn default() -> Self {
        Self {
            provider: UNKNOWN_PROVIDER.to_owned(),
            stt_model: DEFAULT_MODEL.to_owned(),
            tts_language: UNDETERMINED_LANGUAGE.to_owned(),
            llm_model: DEFAULT_MODEL.to_owned(),
        }
    }
}

impl MeterLabels {
    /// The default labels.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the language model's provider.
    #[must_use]
    pub fn with_provider(mut self, provider: impl Into<String>) -> Self {
        self.provider = provider.into();
        self
    }

    /// Sets the STT default model label.
    #[must_use]
    pub fn with_stt_model(mut self, model: impl Into<String>) -> Self {
        self.stt_model = model.into();
        self
    }

    /// Sets the TTS language label.
    #[must_use]
    pub fn with_tts_language(mut self, language: impl Into<String>) -> Self {
        self.tts_language = language.into();
        self
    }

    /// Sets the LLM default model label.
    #[must_use]
    pub fn with_llm_model(mut self, model: impl Into<String>) -> Self {
        self.llm_model = model.into();
        self
    }
}

impl SessionPorts {
    /// The same engines, each wrapped in its metering decorator, so every session built from these ports is
    /// metered. The VAD is kept as is: it is per-frame and has no spec metric.
    #[must_use]
    pub fn metered(self, meter: Arc<dyn VoiceMeter>, labels: MeterLabels) -> SessionPorts {
        let MeterLabels {
            provider,
            stt_model,
            tts_language,
            llm_model,
        } = labels;
        SessionPorts {
            llm: Arc::new(
                MeteredLanguageModel::new(self.llm, Arc::clone(&meter))
                    .with_provider(provider)
                    .with_model(llm_model),
            ),
            stt: Arc::new(MeteredSpeechToText::new(self.stt, Arc::clone(&meter)).with_model(stt_model)),
            tts: Arc::new(MeteredTextToSpeech::new(self.tts, meter).with_language(tts_language)),
            vad: self.vad,
        }
    }
}
