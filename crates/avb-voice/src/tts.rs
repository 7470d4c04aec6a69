//! The text-to-speech port: a streaming session that takes text as the model writes it and yields audio chunks,
//! each tagged with the text it speaks, and that stops at once when cancelled (barge-in).

use crate::audio::AudioFormat;
use crate::audio::timing::samples_to_ms;
use crate::error::{Error, Result};
use async_trait::async_trait;
use avb_core::Ctx;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::ops::Range;

/// Slowest speed accepted (the protocol's lower bound).
pub const MIN_SPEED: f32 = 0.25;
/// Fastest speed accepted.
pub const MAX_SPEED: f32 = 4.0;

/// How to speak (reference §7.1: `voice`, `speed`, output format).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TtsConfig {
    /// Voice name (`"alloy"`, an engine voice id); adapters map or refuse names they do not know.
    pub voice: String,
    /// Encoding and sample rate of the audio chunks (the adapter converts from its native rate).
    pub format: AudioFormat,
    /// Speaking rate, 1.0 = normal, within [`MIN_SPEED`]..=[`MAX_SPEED`].
    pub speed: f32,
}

impl TtsConfig {
    /// `voice` in `format` at normal speed.
    pub fn new(voice: impl Into<String>, format: AudioFormat) -> Self {
        Self {
            voice: voice.into(),
            format,
            speed: 1.0,
        }
    }

    /// Sets the speed.
    #[must_use]
    pub fn with_speed(mut self, speed: f32) -> Self {
        self.speed = speed;
        self
    }

    /// Samples per second of the chunks.
    pub fn sample_rate(&self) -> u32 {
        self.format.sample_rate()
    }

    /// Refuses an empty voice or a speed out of range with [`Error::InvalidConfig`].
    pub fn validate(&self) -> Result<()> {
        if self.voice.trim().is_empty() {
            return Err(Error::invalid_config("voice", "must not be empty"));
        }
        if !(MIN_SPEED..=MAX_SPEED).contains(&self.speed) {
            return Err(Error::invalid_config(
                "speed",
                format!("{} is outside {MIN_SPEED}..={MAX_SPEED}", self.speed),
            ));
        }
        if let AudioFormat::Pcm16 { sample_rate } = self.format {
            crate::audio::check_sample_rate(sample_rate)?;
        }
        Ok(())
    }
}

/// A piece of synthesised audio and the text it speaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TtsChunk {
    /// Encoded audio in the stream's format: a whole number of samples, never empty.
    pub audio: Vec<u8>,
    /// The encoding of `audio`.
    pub format: AudioFormat,
    /// The text this chunk speaks (may be empty: a pause, or the middle of a long word).
    pub text: String,
    /// Byte range of `text` within the concatenation of all pushed text.
    pub text_range: Range<usize>,
    /// Stream milliseconds of the first sample (the previous chunk's `end_ms`; 0 for the first).
    pub start_ms: u64,
    /// Stream milliseconds just past the last sample.
    pub end_ms: u64,
}

impl TtsChunk {
    /// Samples in the chunk.
    pub fn samples(&self) -> usize {
        self.audio.len() / self.format.bytes_per_sample()
    }

    /// The chunk's audio as linear samples.
    pub fn decode(&self) -> Result<Vec<i16>> {
        self.format.decode(&self.audio)
    }
}

/// Synthesis so far, for metering.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TtsUsage {
    /// Characters (Unicode scalar values) accepted by `push_text`.
    pub characters: u64,
    /// Milliseconds of audio delivered by `next_chunk`.
    pub audio_ms: u64,
}

/// Text-to-speech engines.
///
/// # Contract
/// - `open` validates the config first ([`TtsConfig::validate`]; an unknown voice is [`Error::InvalidConfig`]);
///   an unreachable engine is [`Error::Unavailable`].
/// - Streams of one adapter are independent.
/// - See [`TtsStream`] for the stream's own contract.
#[async_trait]
pub trait TextToSpeech: Send + Sync + fmt::Debug + 'static {
    /// Opens a synthesis stream.
    async fn open(&self, ctx: &Ctx, config: TtsConfig) -> Result<Box<dyn TtsStream>>;
}

/// One synthesis session.
///
/// # Contract
/// - `push_text` takes text in pieces of any size (a model's deltas); it does not wait for synthesis.
///   After `finish`, `push_text` and a second `finish` fail with [`Error::InvalidState`].
/// - `next_chunk` yields chunks in order, then, only after `finish`, `Ok(None)` once all pushed text is
///   spoken; it keeps returning `Ok(None)` after that. Before `finish` it waits for audio.
/// - Chunk audio is in the config's format, non-empty and a whole number of samples. `start_ms`/`end_ms` are
///   derived from sample counts: the first chunk starts at 0, each starts where the previous ended.
/// - `text_range`s are contiguous, in order, on character boundaries and `text` is the pushed text in that
///   range; when the stream ends they have covered all the pushed text.
/// - `cancel` (or dropping the stream) stops generation at once: afterwards `next_chunk` and `push_text` return
///   [`Error::Cancelled`] without waiting, and no further audio is produced.
/// - `next_chunk` is cancel-safe: dropping its future loses no chunk.
/// - `usage().characters` counts the characters pushed; `usage().audio_ms` the audio delivered.
#[async_trait]
pub trait TtsStream: Send + fmt::Debug {
    /// Adds text to speak.
    async fn push_text(&mut self, text: &str) -> Result<()>;

    /// Declares the end of the text; the remaining audio follows.
    async fn finish(&mut self) -> Result<()>;

    /// The next audio chunk; `None` when the finished stream has spoken everything.
    async fn next_chunk(&mut self) -> Result<Option<TtsChunk>>;

    /// Stops generation now.
    fn cancel(&mut self);

    /// Characters and audio so far.
    fn usage(&self) -> TtsUsage;
}

/// Milliseconds of `samples` samples of `format` (helper for adapters computing `start_ms`/`end_ms`).
pub fn chunk_ms(samples: u64, format: AudioFormat) -> u64 {
    samples_to_ms(samples, format.sample_rate())
}
