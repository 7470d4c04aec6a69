//! The speech-to-text port: a streaming session that takes audio and yields partial and final transcripts.
//!
//! The engine opens one [`SttStream`] per input transcription (an utterance committed by server VAD or by the
//! client), pushes the utterance's audio as it arrives, calls [`SttStream::finish`] at commit, and forwards
//! partials as `…input_audio_transcription.delta` and the final as `…input_audio_transcription.completed`.

use crate::audio::check_sample_rate;
use crate::audio::timing::samples_to_ms;
use crate::error::Result;
use async_trait::async_trait;
use avb_core::Ctx;
use serde::{Deserialize, Serialize};
use std::fmt;

/// What to recognise and how (reference §7.1 `input_audio_transcription {model, language, prompt}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SttConfig {
    /// Samples per second of the pushed audio (mono pcm16); adapters convert to their engine's native rate
    /// (with [`Resampler`](crate::audio::Resampler)), so the engine can push the session's input rate as is.
    pub sample_rate: u32,
    /// BCP-47 / ISO-639-1 language hint (`"en"`); `None` lets the engine detect it.
    pub language: Option<String>,
    /// Engine-specific model name; `None` is the adapter's default.
    pub model: Option<String>,
    /// Text that biases recognition (vocabulary, previous turn).
    pub prompt: Option<String>,
}

impl SttConfig {
    /// Audio at `sample_rate`, default model, no language or prompt.
    pub fn new(sample_rate: u32) -> Self {
        Self {
            sample_rate,
            language: None,
            model: None,
            prompt: None,
        }
    }

    /// Sets the language hint.
    #[must_use]
    pub fn with_language(mut self, language: impl Into<String>) -> Self {
        self.language = Some(language.into());
        self
    }

    /// Sets the model.
    #[must_use]
    pub fn with_model(mut self, model: impl Into<String>) -> Self {
        self.model = Some(model.into());
        self
    }

    /// Sets the prompt.
    #[must_use]
    pub fn with_prompt(mut self, prompt: impl Into<String>) -> Self {
        self.prompt = Some(prompt.into());
        self
    }

    /// Refuses an unsupported sample rate with [`Error::UnsupportedFormat`](crate::Error::UnsupportedFormat).
    pub fn validate(&self) -> Result<()> {
        check_sample_rate(self.sample_rate)
    }
}

/// A recognised stretch of speech. Times are milliseconds from the stream's first pushed sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transcript {
    /// The text.
    pub text: String,
    /// Where the speech starts.
    pub start_ms: u64,
    /// Where the speech ends.
    pub end_ms: u64,
    /// Engine confidence in `[0, 1]`, when the engine gives one.
    pub confidence: Option<f32>,
}

/// What a stream yields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SttEvent {
    /// The current hypothesis for the utterance in progress. It replaces the previous partial (it may revise it,
    /// not only extend it).
    Partial(Transcript),
    /// The settled text of one utterance; no partial for it follows.
    Final(Transcript),
}

/// Audio recognised so far, for metering.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SttUsage {
    /// Milliseconds of audio pushed (from the sample count).
    pub audio_ms: u64,
}

impl SttUsage {
    /// Usage of `samples` samples at `sample_rate`.
    pub fn from_samples(samples: u64, sample_rate: u32) -> Self {
        Self {
            audio_ms: samples_to_ms(samples, sample_rate),
        }
    }

    /// Seconds of audio (for billing in seconds).
    pub fn audio_seconds(&self) -> f64 {
        self.audio_ms as f64 / 1000.0
    }
}

/// Speech-to-text engines.
///
/// # Contract
/// - `open` validates the config first: an unsupported sample rate is
///   [`Error::UnsupportedFormat`](crate::Error::UnsupportedFormat), an unknown model or language
///   [`Error::InvalidConfig`](crate::Error::InvalidConfig); an unreachable engine is
///   [`Error::Unavailable`](crate::Error::Unavailable).
/// - Streams of one adapter are independent: audio pushed to one never shows up in another's transcripts.
/// - See [`SttStream`] for the stream's own contract.
#[async_trait]
pub trait SpeechToText: Send + Sync + fmt::Debug + 'static {
    /// Opens a recognition stream.
    async fn open(&self, ctx: &Ctx, config: SttConfig) -> Result<Box<dyn SttStream>>;
}

/// One recognition session.
///
/// # Contract
/// - `push_audio` takes mono pcm16 at the config's rate, in pieces of any size (possibly empty), and does not
///   wait for recognition (it may wait briefly for buffer space).
/// - After `finish`, `push_audio` and a second `finish` fail with [`Error::InvalidState`](crate::Error::InvalidState).
/// - `next_event` yields zero or more partials and finals, then, only after `finish`, `Ok(None)` once every
///   final is out; it keeps returning `Ok(None)` after that. Before `finish` it waits for the next event.
/// - At least one [`SttEvent::Final`] follows `finish` when speech was pushed (its text may be empty for
///   silence).
/// - Times lie within the pushed audio: `start_ms <= end_ms <= usage().audio_ms`; finals come in time order.
/// - `next_event` is cancel-safe: dropping its future (a `select!` losing the race) loses no event.
/// - `usage().audio_ms` is exactly the duration of the samples pushed.
/// - Dropping the stream stops recognition and frees its resources.
#[async_trait]
pub trait SttStream: Send + fmt::Debug {
    /// Adds audio.
    async fn push_audio(&mut self, samples: &[i16]) -> Result<()>;

    /// Declares the end of the audio; the remaining transcripts follow.
    async fn finish(&mut self) -> Result<()>;

    /// The next partial or final transcript; `None` when the finished stream has nothing more.
    async fn next_event(&mut self) -> Result<Option<SttEvent>>;

    /// Audio pushed so far.
    fn usage(&self) -> SttUsage;
}
