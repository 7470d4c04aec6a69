//! Voice activity detection and server-VAD turn detection (reference §7.3, issue 6).
//!
//! [`VoiceActivityDetector`] is the per-frame port: a small synchronous object (no I/O; it runs once per
//! 10–30 ms frame on the session task). [`TurnDetector`] implements `turn_detection: server_vad` on top of any
//! detector: it resamples the session's input audio to the detector's rate, applies the threshold, and emits
//! [`TurnEvent::SpeechStarted`] / [`TurnEvent::SpeechStopped`] with exact session milliseconds.

use crate::audio::timing::{SampleClock, ms_to_samples, rescale_samples, samples_to_ms};
use crate::audio::{Resampler, check_sample_rate};
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::fmt;

/// A frame-by-frame speech detector.
///
/// # Contract
/// - `sample_rate()` and `frame_samples()` never change over the detector's life; frames are mono pcm16 at that
///   rate.
/// - `speech_probability` refuses a frame whose length is not `frame_samples()` with [`Error::InvalidAudio`] and
///   leaves its state unchanged; otherwise it returns a score in `[0, 1]` (higher = more likely speech).
/// - Digital silence scores below 0.5.
/// - The score depends only on the frames seen since construction or the last `reset`: two detectors fed the
///   same frames return the same scores.
/// - `fresh()` returns a detector with the same settings and the state of a new one.
pub trait VoiceActivityDetector: Send + Sync + fmt::Debug + 'static {
    /// Samples per second of the frames this detector takes.
    fn sample_rate(&self) -> u32;

    /// Samples per frame.
    fn frame_samples(&self) -> usize;

    /// Scores one frame.
    fn speech_probability(&mut self, frame: &[i16]) -> Result<f32>;

    /// Forgets all frames seen so far.
    fn reset(&mut self);

    /// A new detector with the same settings (one per session, from a shared prototype).
    fn fresh(&self) -> Box<dyn VoiceActivityDetector>;
}

/// A frame's length must match the detector's; shared by adapters.
pub fn check_frame(frame: &[i16], expected: usize) -> Result<()> {
    if frame.len() == expected {
        Ok(())
    } else {
        Err(Error::invalid_audio(format!(
            "VAD frame of {} samples, expected {expected}",
            frame.len()
        )))
    }
}

/// `server_vad` parameters (reference §7.3) plus the minimum speech durations that keep coughs, clicks and
/// one-word backchannels from starting a turn or interrupting the agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct TurnDetectionConfig {
    /// Frames whose speech probability reaches this value count as speech (0–1; higher needs clearer speech).
    pub threshold: f32,
    /// Audio kept before the detected start of speech, in milliseconds.
    pub prefix_padding_ms: u32,
    /// Silence that ends a turn, in milliseconds.
    pub silence_duration_ms: u32,
    /// Speech needed before a turn starts while the agent is silent, in milliseconds.
    pub min_speech_duration_ms: u32,
    /// Speech needed before a turn starts while the agent is speaking (barge-in), in milliseconds.
    ///
    /// Durations are of *detected* speech, which outlasts the sound by the detector's decay (about 70–100 ms
    /// for earshot): the default of 500 ms (LiveKit Agents' `min_interruption_duration` too) lets a 330 ms
    /// "yeah" or a cough pass under the agent and stops it for a real interjection.
    pub min_interrupt_duration_ms: u32,
}

impl Default for TurnDetectionConfig {
    fn default() -> Self {
        Self {
            threshold: 0.5,
            prefix_padding_ms: 300,
            silence_duration_ms: 500,
            min_speech_duration_ms: 80,
            min_interrupt_duration_ms: 500,
        }
    }
}

/// Longest dip below the threshold that an onset survives while its speech adds up to the minimum: one word's
/// syllables add up, separate clicks or coughs do not. The turn is still dated from the first speech after
/// `silence_duration_ms` of silence, so "Hello, … can you hear me?" keeps its "Hello" even when only the second
/// phrase is long enough to interrupt.
pub const MAX_ONSET_GAP_MS: u32 = 96;

/// Upper bound for every duration field (a minute): longer settings are configuration mistakes.
const MAX_DURATION_MS: u32 = 60_000;

/// Frames whose every sample is within ±`QUIET_PEAK` (about −50 dBFS peak) are not scored by the detector once
/// it has settled on silence: they count as silence. Speech, even whispered into a distant microphone, peaks far
/// above this; what stays below is a muted line, digital silence or a very quiet room — a large share of a
/// conversation's frames, so skipping the detector there removes much of its cost (the per-session hot path at
/// thousands of sessions). See [`TurnDetector`] ("Quiet frames") for how the decisions are kept.
pub const QUIET_PEAK: i16 = 96;

/// How many of the last skipped quiet frames (256 ms of earshot frames) are scored, results discarded, before the
/// next sound, so that the detector meets it in the state that silence would have left it in rather than in
/// whatever state it was in when it settled (a recurrent model such as earshot judges a sound by what preceded
/// it). Measured on the test fixtures: with 4 or 8 frames noise after silence started a turn; with 16 every
/// fixture gives the same turns as scoring every frame, bounds at most one frame apart (32 is no closer).
pub const QUIET_WARMUP_FRAMES: usize = 16;

/// Quiet frames are skipped only after the detector has scored this many frames in a row below half the
/// threshold: it has settled on silence (its hangover after speech has run out).
pub const QUIET_SETTLE_FRAMES: u32 = 16;

impl TurnDetectionConfig {
    /// Sets the threshold.
    #[must_use]
    pub fn with_threshold(mut self, threshold: f32) -> Self {
        self.threshold = threshold;
        self
    }

    /// Sets the prefix padding.
    #[must_use]
    pub fn with_prefix_padding_ms(mut self, ms: u32) -> Self {
        self.prefix_padding_ms = ms;
        self
    }

    /// Sets the silence that ends a turn.
    #[must_use]
    pub fn with_silence_duration_ms(mut self, ms: u32) -> Self {
        self.silence_duration_ms = ms;
        self
    }

    /// Sets the speech needed to start a turn while the agent is silent.
    #[must_use]
    pub fn with_min_speech_duration_ms(mut self, ms: u32) -> Self {
        self.min_speech_duration_ms = ms;
        self
    }

    /// Sets the speech needed to interrupt the agent.
    #[must_use]
    pub fn with_min_interrupt_duration_ms(mut self, ms: u32) -> Self {
        self.min_interrupt_duration_ms = ms;
        self
    }

    /// Refuses out-of-range values with [`Error::InvalidConfig`].
    pub fn validate(&self) -> Result<()> {
        if !(0.0..=1.0).contains(&self.threshold) {
            return Err(Error::invalid_config(
                "threshold",
                format!("{} is outside 0..=1", self.threshold),
            ));
        }
        for (field, value) in [
            ("prefix_padding_ms", self.prefix_padding_ms),
            ("silence_duration_ms", self.silence_duration_ms),
            ("min_speech_duration_ms", self.min_speech_duration_ms),
            ("min_interrupt_duration_ms", self.min_interrupt_duration_ms),
        ] {
            if value > MAX_DURATION_MS {
                return Err(Error::invalid_config(
                    field,
                    format!("{value} ms is above {MAX_DURATION_MS} ms"),
                ));
            }
        }
        Ok(())
    }
}

/// A turn boundary, in session milliseconds (from the first sample the detector's timeline counts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TurnEvent {
    /// Sustained speech began (`input_audio_buffer.speech_started`).
    SpeechStarted {
        /// Where the turn's audio begins: the onset of speech minus `prefix_padding_ms` (never below 0).
        audio_start_ms: u64,
    },
    /// Speech was followed by `silence_duration_ms` of silence (`input_audio_buffer.speech_stopped`).
    SpeechStopped {
        /// Where the turn's audio ends: the end of the last speech frame plus the silence that ended the turn.
        audio_end_ms: u64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Idle,
    /// Speech seen but not yet long enough to count: `voiced` samples since the last dip longer than the onset gap.
    Onset {
        voiced: u64,
    },
    Speaking,
}

/// Durations of the config, in detector-rate samples.
#[derive(Debug, Clone, Copy)]
struct Thresholds {
    prefix: u64,
    silence: u64,
    min_speech: u64,
    min_interrupt: u64,
    max_gap: u64,
}

impl Thresholds {
    fn new(config: &TurnDetectionConfig, rate: u32) -> Self {
        let samples = |ms: u32| ms_to_samples(u64::from(ms), rate);
        Self {
            prefix: samples(config.prefix_padding_ms),
            silence: samples(config.silence_duration_ms),
            min_speech: samples(config.min_speech_duration_ms),
            min_interrupt: samples(config.min_interrupt_duration_ms),
            max_gap: samples(MAX_ONSET_GAP_MS),
        }
    }
}

/// Server-VAD turn detection over a [`VoiceActivityDetector`].
///
/// Feed it the session's input audio in frames of any size ([`TurnDetector::push`]). Positions are counted in
/// samples from the detector's origin (0, or [`TurnDetector::with_origin_ms`]), so the milliseconds it reports
/// are exact and match [`InputAudioBuffer`](crate::audio::InputAudioBuffer) positions of the same session. The
/// decision lags the audio by the resampler's latency plus one detector frame (about 30 ms); the timestamps
/// do not.
///
/// # Quiet frames
/// The detector is the most expensive step of a session's audio path (earshot: ~7 µs per 16 ms frame), and
/// most frames of a conversation are silence. Once the detector has scored [`QUIET_SETTLE_FRAMES`] frames in a
/// row below half the threshold, frames that stay within ±[`QUIET_PEAK`] are not scored (they count as
/// silence); the last [`QUIET_WARMUP_FRAMES`] of them are scored (results discarded) just before the next
/// louder frame, so the detector meets the sound in the state the silence leaves it in. Quiet input met in that
/// state is not even resampled ([`Resampler::skip_silence`]): it becomes digital silence at the detector's rate. On every fixture of the
/// test suite (speech, noise after silence, clicks, backchannels) this gives the same turns as scoring every
/// frame ([`TurnDetector::scoring_every_frame`], still available), with bounds equal or one detector frame
/// (16 ms) apart: a recurrent detector's state still carries a trace of audio seconds old.
#[derive(Debug)]
pub struct TurnDetector {
    config: TurnDetectionConfig,
    thresholds: Thresholds,
    vad: Box<dyn VoiceActivityDetector>,
    resampler: Resampler,
    input_rate: u32,
    /// Input samples pushed since the origin.
    input_samples: u64,
    /// Detector-rate samples at the origin.
    origin: u64,
    /// Detector-rate position of the first sample in `pending` (relative to the origin).
    clock: SampleClock,
    pending: Vec<i16>,
    scratch: Vec<i16>,
    state: State,
    /// Start of the current run of speech (first voiced frame after at least the silence duration).
    run_start: u64,
    /// End of the last voiced frame, if any.
    last_voice_end: Option<u64>,
    agent_speaking: bool,
    /// Peak at or below which a frame is quiet (not scored once settled); `None` scores every frame.
    quiet_peak: Option<i16>,
    /// Consecutive scored frames below half the threshold (settled on silence at [`QUIET_SETTLE_FRAMES`]).
    low_run: u32,
    /// The previous push was all quiet (so the resampler holds back only quiet audio).
    last_push_quiet: bool,
    /// The last skipped quiet frames (up to [`QUIET_WARMUP_FRAMES`]), oldest first, replayed before a sound. A
    /// ring: dropping the oldest frame of a `Vec` moved the other fifteen on every skipped frame.
    skipped: VecDeque<i16>,
}

impl TurnDetector {
    /// A detector for input audio at `input_rate` (resampled to the VAD's rate internally).
    pub fn new(
        config: TurnDetectionConfig,
        vad: Box<dyn VoiceActivityDetector>,
        input_rate: u32,
    ) -> Result<Self> {
        config.validate()?;
        check_sample_rate(input_rate)?;
        let vad_rate = vad.sample_rate();
        if vad.frame_samples() == 0 {
            return Err(Error::invalid_config(
                "frame_samples",
                "the VAD reports empty frames",
            ));
        }
        let resampler = Resampler::new(input_rate, vad_rate)?;
        Ok(Self {
            thresholds: Thresholds::new(&config, vad_rate),
            config,
            vad,
            resampler,
            input_rate,
            input_samples: 0,
            origin: 0,
            clock: SampleClock::new(vad_rate),
            pending: Vec::new(),
            scratch: Vec::new(),
            state: State::Idle,
            run_start: 0,
            last_voice_end: None,
            agent_speaking: false,
            quiet_peak: Some(QUIET_PEAK),
            low_run: 0,
            last_push_quiet: false,
            skipped: VecDeque::new(),
        })
    }

    /// Scores every frame with the detector, quiet ones included (see [`QUIET_PEAK`]); for comparisons and for
    /// detectors that must see every frame.
    #[must_use]
    pub fn scoring_every_frame(mut self) -> Self {
        self.quiet_peak = None;
        self
    }

    /// Starts the timeline at session millisecond `ms` (a detector created after audio already flowed, e.g. when
    /// `session.update` switches from push-to-talk to server VAD).
    #[must_use]
    pub fn with_origin_ms(mut self, ms: u64) -> Self {
        self.origin = ms_to_samples(ms, self.vad.sample_rate());
        self
    }

    /// The effective configuration.
    pub fn config(&self) -> &TurnDetectionConfig {
        &self.config
    }

    /// Replaces the configuration (`session.update`) without losing the timeline or an ongoing turn.
    pub fn set_config(&mut self, config: TurnDetectionConfig) -> Result<()> {
        config.validate()?;
        self.thresholds = Thresholds::new(&config, self.vad.sample_rate());
        self.config = config;
        Ok(())
    }

    /// Tells the detector whether the agent is speaking: while it is, a turn needs `min_interrupt_duration_ms`
    /// of speech instead of `min_speech_duration_ms`.
    pub fn set_agent_speaking(&mut self, speaking: bool) {
        self.agent_speaking = speaking;
    }

    /// True between `SpeechStarted` and `SpeechStopped`.
    pub fn in_speech(&self) -> bool {
        self.state == State::Speaking
    }

    /// Session milliseconds of audio the detector has scored so far.
    pub fn position_ms(&self) -> u64 {
        self.ms_at(self.clock.samples())
    }

    /// Session milliseconds of audio pushed so far (scored or still held back).
    pub fn input_ms(&self) -> u64 {
        samples_to_ms(self.input_samples, self.input_rate)
            .saturating_add(samples_to_ms(self.origin, self.vad.sample_rate()))
    }

    /// Feeds input audio, appending any turn boundaries it completes to `events`.
    pub fn push(&mut self, samples: &[i16], events: &mut Vec<TurnEvent>) -> Result<()> {
        self.input_samples = self.input_samples.saturating_add(samples.len() as u64);
        self.scratch.clear();
        // A max over the whole push (vectorised) rather than `all` (a branch per sample).
        let quiet = self.quiet_peak.is_some_and(|peak| {
            samples
                .iter()
                .fold(0u16, |loudest, s| loudest.max(s.unsigned_abs()))
                <= peak.unsigned_abs()
        });
        // Pushes of at least 10 ms only: a trickle of tiny pushes at a speech onset would each count as quiet.
        let substantial = samples.len() >= (self.input_rate / 100) as usize;
        if quiet
            && substantial
            && self.last_push_quiet
            && self.low_run >= QUIET_SETTLE_FRAMES
            && self.resampler.from_rate() != self.resampler.to_rate()
        {
            // Settled, and this audio and what the resampler holds back are quiet: its frames would not be
            // scored, so they need not be computed either (the resampler is the next most expensive step).
            self.resampler.skip_silence(samples.len(), &mut self.scratch);
        } else {
            self.resampler.process(samples, &mut self.scratch)?;
        }
        self.last_push_quiet = quiet && substantial;
        self.pending.extend_from_slice(&self.scratch);
        let frame_len = self.vad.frame_samples();
        // Taken out so that `step` can borrow `self`; put back (allocation reused) whatever the outcome.
        let mut pending = std::mem::take(&mut self.pending);
        let mut consumed = 0;
        let mut outcome = Ok(());
        for frame in pending.chunks_exact(frame_len) {
            match self.score(frame) {
                Ok(probability) => {
                    let start = self.clock.samples();
                    self.clock.advance(frame_len);
                    let end = self.clock.samples();
                    self.step(start, end, probability >= self.config.threshold, events);
                    consumed += frame_len;
                }
                Err(e) => {
                    outcome = Err(e);
                    break;
                }
            }
        }
        pending.drain(..consumed);
        self.pending = pending;
        outcome
    }

    /// Forgets speech in progress and held-back audio (`input_audio_buffer.clear`, a commit in the middle of
    /// speech); the timeline continues at the input position.
    pub fn reset(&mut self) {
        self.vad.reset();
        self.low_run = 0;
        self.last_push_quiet = false;
        self.skipped.clear();
        self.resampler.reset();
        self.pending.clear();
        self.state = State::Idle;
        self.last_voice_end = None;
        let position = rescale_samples(self.input_samples, self.input_rate, self.vad.sample_rate());
        self.clock = SampleClock::new(self.vad.sample_rate());
        self.clock
            .advance(usize::try_from(position).unwrap_or(usize::MAX));
    }

    /// The detector's score, or 0 without asking it for a quiet frame once it has settled on silence.
    fn score(&mut self, frame: &[i16]) -> Result<f32> {
        if let Some(peak) = self.quiet_peak {
            let quiet = frame.iter().all(|s| s.unsigned_abs() <= peak.unsigned_abs());
            if quiet && self.low_run >= QUIET_SETTLE_FRAMES {
                // Keep the last few for the warm-up (the buffer never exceeds QUIET_WARMUP_FRAMES frames).
                let keep = QUIET_WARMUP_FRAMES.saturating_sub(1).saturating_mul(frame.len());
                if self.skipped.len() > keep {
                    let excess = self.skipped.len() - keep;
                    self.skipped.drain(..excess);
                }
                self.skipped.extend(frame);
                return Ok(0.0);
            }
            if !self.skipped.is_empty() {
                for warm in self.skipped.make_contiguous().chunks_exact(frame.len()) {
                    self.vad.speech_probability(warm)?;
                }
                self.skipped.clear();
            }
        }
        let probability = self.vad.speech_probability(frame)?;
        self.low_run = if probability < self.config.threshold / 2.0 {
            self.low_run.saturating_add(1)
        } else {
            0
        };
        Ok(probability)
    }

    fn ms_at(&self, position: u64) -> u64 {
        samples_to_ms(self.origin.saturating_add(position), self.vad.sample_rate())
    }

    fn step(&mut self, start: u64, end: u64, voiced: bool, events: &mut Vec<TurnEvent>) {
        let t = self.thresholds;
        if voiced {
            if self
                .last_voice_end
                .is_none_or(|last| start.saturating_sub(last) >= t.silence)
            {
                self.run_start = start;
            }
            self.last_voice_end = Some(end);
        }
        let since_voice = end.saturating_sub(self.last_voice_end.unwrap_or(0));
        self.state = match self.state {
            State::Idle if voiced => State::Onset { voiced: end - start },
            State::Idle => State::Idle,
            State::Onset { voiced: so_far } if voiced => State::Onset {
                voiced: so_far + (end - start),
            },
            State::Onset { .. } if since_voice > t.max_gap => State::Idle,
            State::Onset { voiced: so_far } => State::Onset { voiced: so_far },
            State::Speaking if !voiced && since_voice >= t.silence => {
                events.push(TurnEvent::SpeechStopped {
                    audio_end_ms: self.ms_at(end),
                });
                State::Idle
            }
            State::Speaking => State::Speaking,
        };
        let needed = if self.agent_speaking {
            t.min_interrupt
        } else {
            t.min_speech
        };
        if let State::Onset { voiced: so_far } = self.state
            && so_far >= needed
        {
            let padded = self
                .origin
                .saturating_add(self.run_start)
                .saturating_sub(t.prefix);
            events.push(TurnEvent::SpeechStarted {
                audio_start_ms: samples_to_ms(padded, self.vad.sample_rate()),
            });
            self.state = State::Speaking;
        }
    }
}
