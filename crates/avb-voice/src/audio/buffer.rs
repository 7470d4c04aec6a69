//! The per-session input audio buffer (`input_audio_buffer.*`): decoded samples with a byte cap, commit and clear.
//!
//! Positions are absolute sample counts since the session's first appended sample, so `audio_start_ms` and
//! `audio_end_ms` stay exact across commits and clears: clearing or committing drops samples but never moves the
//! timeline back.

use crate::audio::timing::{ms_to_samples, samples_to_ms};
use crate::error::{Error, Result};
use std::collections::VecDeque;

/// The default cap on buffered audio: 32 MiB of decoded pcm16 (about 11 minutes at 24 kHz). It admits a 15 MiB
/// append in any input format (15 MiB of G.711 decodes to 30 MiB).
pub const DEFAULT_INPUT_BUFFER_CAP_BYTES: usize = 32 * 1024 * 1024;

/// Audio taken out of the buffer by a commit, with its place on the session timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedAudio {
    /// The samples, mono, at `sample_rate`.
    pub samples: Vec<i16>,
    /// Samples per second.
    pub sample_rate: u32,
    /// Session milliseconds of the first sample, rounded down.
    pub start_ms: u64,
    /// Session milliseconds just past the last sample, rounded down.
    pub end_ms: u64,
}

impl CommittedAudio {
    /// Duration in milliseconds, from the sample count (rounded down).
    pub fn duration_ms(&self) -> u64 {
        samples_to_ms(self.samples.len() as u64, self.sample_rate)
    }
}

/// Decoded input audio waiting to be committed, capped in bytes of pcm16 (two bytes a sample).
#[derive(Debug, Clone)]
pub struct InputAudioBuffer {
    sample_rate: u32,
    cap_bytes: usize,
    samples: VecDeque<i16>,
    /// Absolute position of `samples.front()`.
    start: u64,
}

impl InputAudioBuffer {
    /// An empty buffer for audio at `sample_rate`, holding at most `cap_bytes` bytes of pcm16.
    pub fn new(sample_rate: u32, cap_bytes: usize) -> Self {
        Self {
            sample_rate,
            cap_bytes,
            samples: VecDeque::new(),
            start: 0,
        }
    }

    /// Samples per second.
    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    /// The cap, in bytes.
    pub fn cap_bytes(&self) -> usize {
        self.cap_bytes
    }

    /// Appends all of `samples` or, when the cap would be exceeded, none of them ([`Error::LimitExceeded`]).
    pub fn append(&mut self, samples: &[i16]) -> Result<()> {
        let wanted = self.len_bytes().saturating_add(samples.len().saturating_mul(2));
        if wanted > self.cap_bytes {
            return Err(Error::LimitExceeded {
                what: "input_audio_buffer",
                limit: self.cap_bytes,
                actual: wanted,
            });
        }
        self.samples.extend(samples.iter().copied());
        Ok(())
    }

    /// Buffered samples.
    pub fn len_samples(&self) -> usize {
        self.samples.len()
    }

    /// Buffered bytes (pcm16).
    pub fn len_bytes(&self) -> usize {
        self.samples.len().saturating_mul(2)
    }

    /// True when nothing is buffered.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// Absolute sample position of the first buffered sample.
    pub fn start_position(&self) -> u64 {
        self.start
    }

    /// Absolute sample position just past the last buffered sample (the total appended this session).
    pub fn end_position(&self) -> u64 {
        self.start.saturating_add(self.samples.len() as u64)
    }

    /// Session milliseconds of the first buffered sample.
    pub fn start_ms(&self) -> u64 {
        samples_to_ms(self.start, self.sample_rate)
    }

    /// Session milliseconds just past the last buffered sample.
    pub fn end_ms(&self) -> u64 {
        samples_to_ms(self.end_position(), self.sample_rate)
    }

    /// Buffered duration in milliseconds.
    pub fn duration_ms(&self) -> u64 {
        samples_to_ms(self.samples.len() as u64, self.sample_rate)
    }

    /// Drops everything (`input_audio_buffer.clear`); the timeline keeps its position.
    pub fn clear(&mut self) {
        self.start = self.end_position();
        self.samples = VecDeque::new();
    }

    /// Takes everything (`input_audio_buffer.commit`).
    pub fn commit(&mut self) -> CommittedAudio {
        let start = self.start;
        self.start = self.end_position();
        let samples = Vec::from(std::mem::take(&mut self.samples));
        self.audio(samples, start)
    }

    /// Takes the audio between session milliseconds `start_ms` and `end_ms` (a server-VAD turn, prefix padding
    /// included), drops what came before it and keeps what came after for the next turn. Bounds outside the
    /// buffer are clamped to it.
    pub fn commit_range_ms(&mut self, start_ms: u64, end_ms: u64) -> CommittedAudio {
        let end = ms_to_samples(end_ms, self.sample_rate).clamp(self.start, self.end_position());
        let start = ms_to_samples(start_ms, self.sample_rate).clamp(self.start, end);
        self.discard_before(start);
        let take = usize::try_from(end.saturating_sub(start)).unwrap_or(usize::MAX);
        let samples: Vec<i16> = self.samples.drain(..take.min(self.samples.len())).collect();
        self.start = start.saturating_add(samples.len() as u64);
        self.audio(samples, start)
    }

    /// Drops buffered audio older than session millisecond `ms` (keeping only the pre-roll that prefix padding
    /// needs while no one is speaking).
    pub fn discard_before_ms(&mut self, ms: u64) {
        self.discard_before(ms_to_samples(ms, self.sample_rate));
    }

    /// Keeps at most the last `ms` milliseconds.
    pub fn retain_last_ms(&mut self, ms: u64) {
        let keep = ms_to_samples(ms, self.sample_rate);
        self.discard_before(self.end_position().saturating_sub(keep));
    }

    fn discard_before(&mut self, position: u64) {
        let drop = usize::try_from(position.saturating_sub(self.start)).unwrap_or(usize::MAX);
        let drop = drop.min(self.samples.len());
        self.samples.drain(..drop);
        self.start = self.start.saturating_add(drop as u64);
    }

    fn audio(&self, samples: Vec<i16>, start: u64) -> CommittedAudio {
        let end = start.saturating_add(samples.len() as u64);
        CommittedAudio {
            samples,
            sample_rate: self.sample_rate,
            start_ms: samples_to_ms(start, self.sample_rate),
            end_ms: samples_to_ms(end, self.sample_rate),
        }
    }
}
