//! Streaming sample-rate conversion on `rubato`'s synchronous FFT resampler.
//!
//! Rates are fixed per stream and locked to each other, which is exactly what rubato's `Fft` resampler is for
//! (fast, band-limited). A [`Resampler`] keeps its filter state across 20 ms frames of any size, hides the
//! resampler's start-up delay (output sample `n` is the signal at time `n / to_rate`), and [`Resampler::flush`]
//! ends the stream with exactly `round(consumed × to / from)` output samples in total.

use crate::audio::format::check_sample_rate;
use crate::audio::pcm::{f32_to_i16, i16_to_f32};
use crate::error::{Error, Result};
use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler as _};
use std::fmt;

/// Input chunk per FFT, in milliseconds. Smaller chunks cut latency (delay is half a chunk plus the chunk being
/// filled) at the price of a lower anti-aliasing cutoff; 10 ms keeps the cutoff near Nyquist for speech.
const CHUNK_MS: usize = 10;

/// A mono resampler from one supported rate to another that keeps state across calls.
pub struct Resampler {
    from: u32,
    to: u32,
    engine: Option<Box<FftEngine>>,
    consumed: u64,
    produced: u64,
}

struct FftEngine {
    fft: Fft<f32>,
    chunk_in: usize,
    delay: usize,
    input: Vec<f32>,
    filled: usize,
    output: Vec<f32>,
    delay_left: usize,
    /// Nothing was pushed since the last reset: resetting again would only re-zero rubato's buffers, which
    /// [`Resampler::skip_silence`] would otherwise do on every quiet frame.
    pristine: bool,
}

impl fmt::Debug for Resampler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resampler")
            .field("from", &self.from)
            .field("to", &self.to)
            .field("chunk_in", &self.engine.as_ref().map(|e| e.chunk_in))
            .field("consumed", &self.consumed)
            .field("produced", &self.produced)
            .finish()
    }
}

impl Resampler {
    /// A resampler from `from` Hz to `to` Hz; both must be in
    /// [`SUPPORTED_SAMPLE_RATES`](crate::audio::SUPPORTED_SAMPLE_RATES). Equal rates pass samples through.
    pub fn new(from: u32, to: u32) -> Result<Self> {
        check_sample_rate(from)?;
        check_sample_rate(to)?;
        let engine = if from == to {
            None
        } else {
            Some(Box::new(FftEngine::new(from, to)?))
        };
        Ok(Self {
            from,
            to,
            engine,
            consumed: 0,
            produced: 0,
        })
    }

    /// The input rate.
    pub fn from_rate(&self) -> u32 {
        self.from
    }

    /// The output rate.
    pub fn to_rate(&self) -> u32 {
        self.to
    }

    /// Input samples accepted since the stream started.
    pub fn consumed(&self) -> u64 {
        self.consumed
    }

    /// Output samples emitted since the stream started.
    pub fn produced(&self) -> u64 {
        self.produced
    }

    /// The most input samples that can be held back before the matching output appears (the chunk being filled
    /// plus the filter delay, in input samples). Zero for a pass-through.
    pub fn latency_samples(&self) -> usize {
        self.engine.as_ref().map_or(0, |e| {
            let delay_in = (e.delay as u64).saturating_mul(u64::from(self.from)) / u64::from(self.to).max(1);
            e.chunk_in
                .saturating_add(usize::try_from(delay_in).unwrap_or(usize::MAX))
        })
    }

    /// Resamples `input`, appending whatever output is ready to `out` (possibly nothing until a chunk fills).
    pub fn process(&mut self, input: &[i16], out: &mut Vec<i16>) -> Result<()> {
        self.consumed = self.consumed.saturating_add(input.len() as u64);
        let before = out.len();
        match self.engine.as_mut() {
            None => out.extend_from_slice(input),
            Some(engine) => engine.push(input, out)?,
        }
        self.produced = self.produced.saturating_add((out.len() - before) as u64);
        Ok(())
    }

    /// Advances the stream over `samples` input samples of silence without computing them: appends zeros until
    /// the output totals `round(consumed × to / from)` again, and restarts the filter there. Audio still held
    /// back from earlier calls (at most [`latency_samples`](Self::latency_samples)) becomes silence too, so use
    /// this only where that tail is known to be quiet. Positions stay exact (within one output sample when the
    /// input position is not a multiple of `from / gcd(from, to)`).
    pub fn skip_silence(&mut self, samples: usize, out: &mut Vec<i16>) {
        self.consumed = self.consumed.saturating_add(samples as u64);
        let expected = self.expected_output();
        let missing = usize::try_from(expected.saturating_sub(self.produced)).unwrap_or(0);
        out.resize(out.len().saturating_add(missing), 0);
        self.produced = expected;
        if let Some(engine) = self.engine.as_mut() {
            engine.reset();
        }
    }

    /// Ends the stream: appends the held-back tail so that the stream's total output is exactly
    /// `round(consumed × to / from)` samples, then resets for a new stream.
    pub fn flush(&mut self, out: &mut Vec<i16>) -> Result<()> {
        let expected = self.expected_output();
        if let Some(engine) = self.engine.as_mut() {
            let mut missing = usize::try_from(expected.saturating_sub(self.produced)).unwrap_or(usize::MAX);
            // Each round pushes one chunk of silence through; the tail is at most the delay plus one chunk.
            let mut rounds = 0;
            while missing > 0 && rounds < 8 {
                let before = out.len();
                engine.pad_and_run(out)?;
                let emitted = out.len() - before;
                if emitted > missing {
                    out.truncate(before + missing);
                    missing = 0;
                } else {
                    missing -= emitted;
                }
                rounds += 1;
            }
            if missing > 0 {
                return Err(Error::Internal(format!(
                    "resampler tail short by {missing} samples"
                )));
            }
        }
        self.reset();
        Ok(())
    }

    /// Drops held-back audio and filter state; the next sample starts a new stream.
    pub fn reset(&mut self) {
        if let Some(engine) = self.engine.as_mut() {
            engine.reset();
        }
        self.consumed = 0;
        self.produced = 0;
    }

    /// Resamples a whole clip in one go (a fresh stream, flushed).
    pub fn process_all(from: u32, to: u32, input: &[i16]) -> Result<Vec<i16>> {
        let mut resampler = Self::new(from, to)?;
        let mut out = Vec::with_capacity(expected_len(input.len() as u64, from, to) as usize);
        resampler.process(input, &mut out)?;
        resampler.flush(&mut out)?;
        Ok(out)
    }

    fn expected_output(&self) -> u64 {
        expected_len(self.consumed, self.from, self.to)
    }
}

/// `round(samples × to / from)`: the output length of a flushed stream.
pub fn expected_len(samples: u64, from: u32, to: u32) -> u64 {
    if from == 0 {
        return 0;
    }
    let (from, to) = (u128::from(from), u128::from(to));
    let rounded = (u128::from(samples) * to * 2 + from) / (from * 2);
    u64::try_from(rounded).unwrap_or(u64::MAX)
}

fn resample_error(e: impl fmt::Display) -> Error {
    Error::Internal(format!("resampler: {e}"))
}

impl FftEngine {
    fn new(from: u32, to: u32) -> Result<Self> {
        let (from, to) = (from as usize, to as usize);
        let chunk_hint = from * CHUNK_MS / 1000;
        let fft = Fft::<f32>::new(from, to, chunk_hint, 1, FixedSync::Both).map_err(resample_error)?;
        let chunk_in = fft.input_frames_next();
        let delay = fft.output_delay();
        let output = vec![0.0; fft.output_frames_max()];
        Ok(Self {
            fft,
            chunk_in,
            delay,
            input: vec![0.0; chunk_in],
            filled: 0,
            output,
            delay_left: delay,
            pristine: true,
        })
    }

    fn push(&mut self, mut input: &[i16], out: &mut Vec<i16>) -> Result<()> {
        self.pristine &= input.is_empty();
        while !input.is_empty() {
            let space = self.chunk_in - self.filled;
            let (head, rest) = input
                .split_at_checked(space.min(input.len()))
                .unwrap_or((input, &[]));
            let end = self.filled + head.len();
            if let Some(slot) = self.input.get_mut(self.filled..end) {
                for (dst, src) in slot.iter_mut().zip(head) {
                    *dst = i16_to_f32(*src);
                }
            }
            self.filled = end;
            input = rest;
            if self.filled == self.chunk_in {
                self.run(out)?;
            }
        }
        Ok(())
    }

    /// Pads the chunk being filled with silence and runs it (flush).
    fn pad_and_run(&mut self, out: &mut Vec<i16>) -> Result<()> {
        self.pristine = false;
        if let Some(rest) = self.input.get_mut(self.filled..) {
            rest.fill(0.0);
        }
        self.filled = self.chunk_in;
        self.run(out)
    }

    fn run(&mut self, out: &mut Vec<i16>) -> Result<()> {
        let frames_out = self.output.len();
        let input = InterleavedSlice::new(&self.input[..], 1, self.chunk_in).map_err(resample_error)?;
        let mut output =
            InterleavedSlice::new_mut(&mut self.output[..], 1, frames_out).map_err(resample_error)?;
        let (_, written) = self
            .fft
            .process_into_buffer(&input, &mut output, None)
            .map_err(resample_error)?;
        self.filled = 0;
        let skip = self.delay_left.min(written);
        self.delay_left -= skip;
        if let Some(ready) = self.output.get(skip..written) {
            out.extend(ready.iter().map(|s| f32_to_i16(*s)));
        }
        Ok(())
    }

    fn reset(&mut self) {
        if self.pristine {
            return;
        }
        self.fft.reset();
        self.filled = 0;
        self.delay_left = self.delay;
        self.pristine = true;
    }
}
