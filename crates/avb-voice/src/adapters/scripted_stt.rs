//! [`ScriptedStt`]: speech-to-text from a script, for tests and load runs.
//!
//! The n-th utterance recognised by an adapter (counting every stream it opened, in the order they first need a
//! transcript) is the script's n-th line. Timing comes from the audio pushed: the transcript spans the first to
//! the last sample above a small amplitude, and a partial revealing one more word is emitted for every
//! `partial_every_ms` of audio pushed.

use crate::audio::check_sample_rate;
use crate::audio::timing::samples_to_ms;
use crate::error::{Error, Result};
use crate::stt::{SpeechToText, SttConfig, SttEvent, SttStream, SttUsage, Transcript};
use async_trait::async_trait;
use avb_core::Ctx;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

/// Samples whose magnitude is above this count as sound when timing a transcript (about −50 dBFS).
pub const SOUND_LEVEL: i16 = 100;

/// A transcript-from-script STT. Clones share the script position.
#[derive(Debug, Clone)]
pub struct ScriptedStt {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    lines: Vec<String>,
    cycle: bool,
    partial_every_ms: u64,
    confidence: f32,
    state: Mutex<Progress>,
}

#[derive(Debug, Default)]
struct Progress {
    next: usize,
    opened: usize,
}

impl ScriptedStt {
    /// Transcripts from `lines`, in order; once they run out, transcripts are empty.
    pub fn new<I, S>(lines: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            shared: Arc::new(Shared {
                lines: lines.into_iter().map(Into::into).collect(),
                cycle: false,
                partial_every_ms: 200,
                confidence: 1.0,
                state: Mutex::new(Progress::default()),
            }),
        }
    }

    /// Starts the script over when it runs out (load runs).
    #[must_use]
    pub fn cycling(self) -> Self {
        self.rebuild(|s| s.cycle = true)
    }

    /// One more word of partial transcript per `ms` of audio (0 turns partials off).
    #[must_use]
    pub fn with_partial_every_ms(self, ms: u64) -> Self {
        self.rebuild(|s| s.partial_every_ms = ms)
    }

    /// The confidence reported with every transcript.
    #[must_use]
    pub fn with_confidence(self, confidence: f32) -> Self {
        self.rebuild(|s| s.confidence = confidence)
    }

    /// Streams opened so far.
    pub fn streams_opened(&self) -> usize {
        self.shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .opened
    }

    /// Utterances that have taken their script line so far.
    pub fn utterances(&self) -> usize {
        self.shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .next
    }

    fn rebuild(self, change: impl FnOnce(&mut Shared)) -> Self {
        let mut shared = Shared {
            lines: self.shared.lines.clone(),
            cycle: self.shared.cycle,
            partial_every_ms: self.shared.partial_every_ms,
            confidence: self.shared.confidence,
            state: Mutex::new(Progress::default()),
        };
        change(&mut shared);
        Self {
            shared: Arc::new(shared),
        }
    }

    fn claim_line(shared: &Shared) -> String {
        let mut progress = shared.state.lock().unwrap_or_else(PoisonError::into_inner);
        let index = progress.next;
        progress.next += 1;
        let line = if shared.cycle && !shared.lines.is_empty() {
            shared.lines.get(index % shared.lines.len())
        } else {
            shared.lines.get(index)
        };
        line.cloned().unwrap_or_default()
    }
}

#[async_trait]
impl SpeechToText for ScriptedStt {
    async fn open(&self, _ctx: &Ctx, config: SttConfig) -> Result<Box<dyn SttStream>> {
        check_sample_rate(config.sample_rate)?;
        self.shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .opened += 1;
        Ok(Box::new(ScriptedSttStream {
            shared: Arc::clone(&self.shared),
            sample_rate: config.sample_rate,
            samples: 0,
            first_sound: None,
            last_sound: None,
            line: None,
            partials: 0,
            events: VecDeque::new(),
            finished: false,
        }))
    }
}

#[derive(Debug)]
struct ScriptedSttStream {
    shared: Arc<Shared>,
    sample_rate: u32,
    samples: u64,
    first_sound: Option<u64>,
    /// One past the last loud sample.
    last_sound: Option<u64>,
    line: Option<String>,
    partials: usize,
    events: VecDeque<SttEvent>,
    finished: bool,
}

impl ScriptedSttStream {
    fn line(&mut self) -> &str {
        let shared = &self.shared;
        self.line.get_or_insert_with(|| ScriptedStt::claim_line(shared))
    }

    fn transcript(&self, text: String) -> Transcript {
        let ms = |samples: u64| samples_to_ms(samples, self.sample_rate);
        let (start, end) = match (self.first_sound, self.last_sound) {
            (Some(first), Some(last)) => (ms(first), ms(last)),
            _ => (0, ms(self.samples)),
        };
        Transcript {
            text,
            start_ms: start,
            end_ms: end,
            confidence: Some(self.shared.confidence),
        }
    }
}

#[async_trait]
impl SttStream for ScriptedSttStream {
    async fn push_audio(&mut self, samples: &[i16]) -> Result<()> {
        if self.finished {
            return Err(Error::after_finish("push_audio"));
        }
        // The first and the last loud sample bound the sound: found from either end, so a turn's speech is not
        // walked sample by sample (a branch per sample was the adapter's whole cost).
        let loud = |sample: &i16| sample.unsigned_abs() > SOUND_LEVEL.unsigned_abs();
        if let Some(first) = samples.iter().position(loud) {
            self.first_sound.get_or_insert(self.samples + first as u64);
            let last = samples.iter().rposition(loud).unwrap_or(first);
            self.last_sound = Some(self.samples + last as u64 + 1);
        }
        self.samples += samples.len() as u64;
        let every = self.shared.partial_every_ms;
        if every == 0 {
            return Ok(());
        }
        let due =
            usize::try_from(samples_to_ms(self.samples, self.sample_rate) / every).unwrap_or(usize::MAX);
        while self.partials < due {
            let words: Vec<String> = self.line().split_whitespace().map(str::to_owned).collect();
            // A partial never gives away the whole line: the last word comes with the final.
            if self.partials + 1 >= words.len() {
                break;
            }
            self.partials += 1;
            let text = words
                .iter()
                .take(self.partials)
                .cloned()
                .collect::<Vec<_>>()
                .join(" ");
            let partial = self.transcript(text);
            self.events.push_back(SttEvent::Partial(partial));
        }
        Ok(())
    }

    async fn finish(&mut self) -> Result<()> {
        if self.finished {
            return Err(Error::after_finish("finish"));
        }
        self.finished = true;
        if self.samples > 0 {
            let text = self.line().to_owned();
            let final_transcript = self.transcript(text);
            self.events.push_back(SttEvent::Final(final_transcript));
        }
        Ok(())
    }

    async fn next_event(&mut self) -> Result<Option<SttEvent>> {
        if let Some(event) = self.events.pop_front() {
            return Ok(Some(event));
        }
        if self.finished {
            return Ok(None);
        }
        // Nothing until more audio or `finish`, which only this stream's owner can supply.
        std::future::pending().await
    }

    fn usage(&self) -> SttUsage {
        SttUsage::from_samples(self.samples, self.sample_rate)
    }
}
