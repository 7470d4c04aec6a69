//! [`ToneTts`]: text-to-speech that "speaks" a sine tone for every character and silence for every space, for
//! tests and load runs. Audio length is proportional to the text (`ms_per_char / speed` per character), so
//! truncation and barge-in arithmetic can be checked exactly.
//!
//! Like a real engine it speaks only whole words until `finish` (a word may still be growing), produces audio
//! lazily one chunk per `next_chunk` (so cancelling or dropping costs nothing), and can pace chunks with a delay.

use crate::audio::synth::sine_at;
use crate::audio::timing::ms_to_samples;
use crate::deadline::Deadline;
use crate::error::{Error, Result};
use crate::tts::{TextToSpeech, TtsChunk, TtsConfig, TtsStream, TtsUsage, chunk_ms};
use async_trait::async_trait;
use avb_core::Ctx;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::time::Instant;

/// Settings of the tone voice.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ToneTtsConfig {
    /// Milliseconds of audio per character at speed 1.0.
    pub ms_per_char: u32,
    /// Tone frequency.
    pub tone_hz: f32,
    /// Tone peak amplitude.
    pub amplitude: i16,
    /// Audio per chunk, in milliseconds.
    pub chunk_ms: u32,
    /// Synthesis time of each chunk, counted from the first `next_chunk` call that asks for it (`None` = none).
    pub chunk_delay: Option<Duration>,
}

impl Default for ToneTtsConfig {
    fn default() -> Self {
        Self {
            ms_per_char: 50,
            tone_hz: 440.0,
            amplitude: 8_000,
            chunk_ms: 100,
            chunk_delay: None,
        }
    }
}

/// The tone TTS.
#[derive(Debug, Clone, Default)]
pub struct ToneTts {
    config: ToneTtsConfig,
    /// One second of the tone per sample rate, shared by every stream (see [`ToneTts::period_table`]).
    tables: Arc<Mutex<Vec<PeriodTable>>>,
}

/// A sample rate and one second of the tone at that rate.
type PeriodTable = (u32, Arc<[i16]>);

impl ToneTts {
    /// A tone TTS with `config`.
    pub fn new(config: ToneTtsConfig) -> Self {
        Self {
            config,
            tables: Arc::default(),
        }
    }

    /// With a whole-number frequency the tone repeats every second exactly (`sine_at` depends only on
    /// `n % rate` then), so one second is computed once per rate and every stream copies from it instead of
    /// calling `sin` per sample — the scripted voice should cost a load test next to nothing.
    fn period_table(&self, rate: u32) -> Option<Arc<[i16]>> {
        let hz = self.config.tone_hz;
        if hz.fract() != 0.0 || hz < 0.0 || rate == 0 {
            return None;
        }
        let mut tables = self.tables.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, table)) = tables.iter().find(|(r, _)| *r == rate) {
            return Some(table.clone());
        }
        let table: Arc<[i16]> = (0..u64::from(rate))
            .map(|n| sine_at(n, rate, hz, self.config.amplitude))
            .collect();
        tables.push((rate, table.clone()));
        Some(table)
    }

    /// Sets the audio per character.
    #[must_use]
    pub fn with_ms_per_char(mut self, ms: u32) -> Self {
        self.config.ms_per_char = ms;
        self
    }

    /// Sets the chunk length.
    #[must_use]
    pub fn with_chunk_ms(mut self, ms: u32) -> Self {
        self.config.chunk_ms = ms;
        self
    }

    /// Sets a delay before every chunk.
    #[must_use]
    pub fn with_chunk_delay(mut self, delay: Duration) -> Self {
        self.config.chunk_delay = Some(delay);
        self
    }
}

#[async_trait]
impl TextToSpeech for ToneTts {
    async fn open(&self, _ctx: &Ctx, config: TtsConfig) -> Result<Box<dyn TtsStream>> {
        config.validate()?;
        if self.config.ms_per_char == 0 || self.config.chunk_ms == 0 {
            return Err(Error::invalid_config(
                "ms_per_char",
                "tone durations must be positive",
            ));
        }
        let rate = config.sample_rate();
        let per_char = (ms_to_samples(u64::from(self.config.ms_per_char), rate) as f64
            / f64::from(config.speed))
        .round()
        .max(1.0) as u64;
        let chunk = ms_to_samples(u64::from(self.config.chunk_ms), rate).max(1);
        Ok(Box::new(ToneStream {
            table: self.period_table(rate),
            tone: self.config.clone(),
            config,
            per_char,
            chunk,
            text: String::new(),
            chars: Vec::new(),
            position: 0,
            spoken_bytes: 0,
            finished: false,
            cancelled: false,
            ready_at: None,
            timer: Deadline::default(),
            usage: TtsUsage::default(),
        }))
    }
}

#[derive(Debug)]
struct ToneStream {
    /// One second of the tone at this stream's rate, when the frequency allows it.
    table: Option<Arc<[i16]>>,
    tone: ToneTtsConfig,
    config: TtsConfig,
    /// Samples per character.
    per_char: u64,
    /// Samples per chunk.
    chunk: u64,
    text: String,
    /// Byte offset and whether it sounds (non-whitespace), per character.
    chars: Vec<(usize, bool)>,
    /// Samples produced so far.
    position: u64,
    /// Bytes of text covered by the chunks so far.
    spoken_bytes: usize,
    finished: bool,
    cancelled: bool,
    /// When the chunk being synthesised is ready (with `chunk_delay`).
    ready_at: Option<Instant>,
    /// Kept across calls: the engine drops and re-makes this call on every client frame.
    timer: Deadline,
    usage: TtsUsage,
}

impl ToneStream {
    /// Characters that may be spoken now: everything once finished, else up to the last whitespace.
    fn speakable_chars(&self) -> usize {
        if self.finished {
            return self.chars.len();
        }
        self.chars
            .iter()
            .rposition(|(_, sounds)| !sounds)
            .map_or(0, |last_space| last_space + 1)
    }

    fn byte_of_char(&self, index: usize) -> usize {
        self.chars
            .get(index)
            .map_or(self.text.len(), |(offset, _)| *offset)
    }

    fn render(&self, from: u64, to: u64) -> Vec<i16> {
        // One character's span at a time, so the per-sample work is a copy or a fill (a division per sample to
        // find its character and table position was most of a load run's synthesis cost).
        let mut out = Vec::with_capacity(usize::try_from(to.saturating_sub(from)).unwrap_or(0));
        let per_char = self.per_char.max(1);
        let rate = u64::from(self.config.sample_rate().max(1));
        let mut n = from;
        while n < to {
            let char_end = (n / per_char + 1).saturating_mul(per_char).min(to);
            let sounds = usize::try_from(n / per_char)
                .ok()
                .and_then(|c| self.chars.get(c))
                .is_some_and(|(_, sounds)| *sounds);
            let len = usize::try_from(char_end - n).unwrap_or(0);
            if !sounds {
                out.resize(out.len() + len, 0);
            } else if let Some(table) = &self.table {
                // The table holds one second; copy it in pieces that do not cross its end.
                let mut at = n;
                while at < char_end {
                    let offset = usize::try_from(at % rate).unwrap_or(0);
                    let piece = usize::try_from(char_end - at)
                        .unwrap_or(0)
                        .min(table.len().saturating_sub(offset));
                    match table.get(offset..offset + piece) {
                        Some(samples) if piece > 0 => out.extend_from_slice(samples),
                        _ => {
                            // A table shorter than a second (never built so): fall back to silence.
                            out.resize(out.len() + usize::try_from(char_end - at).unwrap_or(0), 0);
                            break;
                        }
                    }
                    at += piece as u64;
                }
            } else {
                let rate = self.config.sample_rate();
                out.extend((n..char_end).map(|k| sine_at(k, rate, self.tone.tone_hz, self.tone.amplitude)));
            }
            n = char_end;
        }
        out
    }
}

#[async_trait]
impl TtsStream for ToneStream {
    async fn push_text(&mut self, text: &str) -> Result<()> {
        if self.cancelled {
            return Err(Error::Cancelled);
        }
        if self.finished {
            return Err(Error::after_finish("push_text"));
        }
        let base = self.text.len();
        self.chars
            .extend(text.char_indices().map(|(i, c)| (base + i, !c.is_whitespace())));
        self.text.push_str(text);
        self.usage.characters += text.chars().count() as u64;
        Ok(())
    }

    async fn finish(&mut self) -> Result<()> {
        if self.cancelled {
            return Err(Error::Cancelled);
        }
        if self.finished {
            return Err(Error::after_finish("finish"));
        }
        self.finished = true;
        Ok(())
    }

    async fn next_chunk(&mut self) -> Result<Option<TtsChunk>> {
        if self.cancelled {
            return Err(Error::Cancelled);
        }
        let speakable = self.speakable_chars() as u64;
        let end_of_audio = speakable.saturating_mul(self.per_char);
        if self.position >= end_of_audio {
            if self.finished {
                return Ok(None);
            }
            // Waiting for more text, which only this stream's owner can push.
            return std::future::pending().await;
        }
        if let Some(delay) = self.tone.chunk_delay {
            // Synthesis of this chunk started at the first call that asked for it: a call dropped in a lost
            // `select!` race neither loses the chunk nor restarts the wait.
            let ready_at = *self.ready_at.get_or_insert_with(|| Instant::now() + delay);
            self.timer.until(ready_at).await;
            self.ready_at = None;
        }
        let from = self.position;
        let to = (from + self.chunk).min(end_of_audio);
        let samples = self.render(from, to);
        // A chunk speaks the characters whose audio starts inside it; the previous chunk ended where these begin.
        let last_char = usize::try_from(to.div_ceil(self.per_char)).unwrap_or(usize::MAX);
        let start_byte = self.spoken_bytes;
        let end_byte = if to == end_of_audio && self.finished {
            self.text.len()
        } else {
            self.byte_of_char(last_char).max(start_byte)
        };
        self.position = to;
        self.spoken_bytes = end_byte;
        let format = self.config.format;
        let chunk = TtsChunk {
            audio: format.encode(&samples),
            format,
            text: self.text.get(start_byte..end_byte).unwrap_or_default().to_owned(),
            text_range: start_byte..end_byte,
            start_ms: chunk_ms(from, format),
            end_ms: chunk_ms(to, format),
        };
        self.usage.audio_ms = chunk.end_ms;
        Ok(Some(chunk))
    }

    fn cancel(&mut self) {
        self.cancelled = true;
    }

    fn usage(&self) -> TtsUsage {
        self.usage
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    /// The per-sample definition `render` must match: sample n belongs to character n / per_char, and a
    /// sounding character plays the tone at n.
    fn reference(stream: &ToneStream, from: u64, to: u64) -> Vec<i16> {
        let rate = stream.config.sample_rate();
        (from..to)
            .map(|n| {
                let sounds = stream
                    .chars
                    .get((n / stream.per_char) as usize)
                    .is_some_and(|c| c.1);
                if sounds {
                    sine_at(n, rate, stream.tone.tone_hz, stream.tone.amplitude)
                } else {
                    0
                }
            })
            .collect()
    }

    #[test]
    fn rendering_by_character_equals_the_per_sample_definition() {
        for tone_hz in [440.0, 440.5] {
            let tts = ToneTts::new(ToneTtsConfig {
                tone_hz,
                ms_per_char: 37,
                ..ToneTtsConfig::default()
            });
            let rate = 24_000;
            let per_char = ms_to_samples(37, rate);
            let mut stream = ToneStream {
                table: tts.period_table(rate),
                tone: tts.config.clone(),
                config: TtsConfig::new("alloy", crate::audio::AudioFormat::PCM16_24K),
                per_char,
                chunk: 2_400,
                text: String::new(),
                chars: Vec::new(),
                position: 0,
                spoken_bytes: 0,
                finished: true,
                cancelled: false,
                ready_at: None,
                timer: Deadline::default(),
                usage: TtsUsage::default(),
            };
            let text = "ab c  défg hij klm nopq rst uvw xyz 0123 456 789 ab c  défg hij klm";
            stream.chars = text
                .char_indices()
                .map(|(i, c)| (i, !c.is_whitespace()))
                .collect();
            let end = stream.chars.len() as u64 * per_char;
            for (from, to) in [
                (0, end),
                (1, 2),
                (per_char - 1, per_char + 1),
                (5, 24_000 + 7),
                (23_999, 48_001),
                (end - 3, end + 5),
            ] {
                assert_eq!(
                    stream.render(from, to),
                    reference(&stream, from, to),
                    "{tone_hz} Hz {from}..{to}"
                );
            }
        }
    }

    #[test]
    fn the_shared_second_is_the_tone_at_every_position() {
        let tts = ToneTts::default();
        for rate in [8_000, 16_000, 24_000] {
            let table = tts.period_table(rate).unwrap();
            // Three seconds, far into a stream too: the table is exactly what `sine_at` gives.
            for n in (0..3 * u64::from(rate)).chain(1_000_000_000..1_000_000_000 + u64::from(rate)) {
                let expected = sine_at(n, rate, 440.0, 8_000);
                assert_eq!(
                    table[(n % u64::from(rate)) as usize],
                    expected,
                    "{rate} Hz, n = {n}"
                );
            }
            assert!(
                Arc::ptr_eq(&table, &tts.period_table(rate).unwrap()),
                "computed once"
            );
        }
        let odd = ToneTts::new(ToneTtsConfig {
            tone_hz: 440.5,
            ..ToneTtsConfig::default()
        });
        assert!(odd.period_table(24_000).is_none(), "no whole period in a second");
    }
}
