//! [`EarshotVad`]: the [`VoiceActivityDetector`] on `earshot`, a pure-Rust neural VAD (16 kHz, 16 ms frames).
//!
//! Chosen over `webrtc-vad` because it needs no C toolchain, gives a probability (so `threshold` maps onto it
//! directly, as in OpenAI's server VAD) and holds about 8 KiB of state per session.
//!
//! Measured quirk: after digitally silent input (exact zeros, or a few LSBs of noise), earshot's recurrent state
//! takes the arrival of moderate broadband noise (white noise at −35 dBFS) for speech and keeps scoring it above
//! 0.8 for seconds; the same noise without the silence before it scores about 0.25. Real microphones never
//! deliver exact zeros, but SDK clients, tests and muted lines do. The adapter therefore adds a fixed,
//! deterministic dither of ±64 LSB (about −60 dBFS RMS) to the frames it scores (never to the session's
//! audio), which removes the effect in our measurements without changing how speech scores.

use crate::error::Result;
use crate::vad::{VoiceActivityDetector, check_frame};
use std::fmt;

/// earshot's frame: 256 samples at 16 kHz (16 ms).
pub const EARSHOT_FRAME_SAMPLES: usize = 256;
/// earshot's sample rate.
pub const EARSHOT_SAMPLE_RATE: u32 = 16_000;

/// Peak of the dither added to scored frames (see the module docs).
pub const DEFAULT_DITHER: i16 = 64;

const DITHER_SEED: u64 = 0x5EED_D17E;

/// earshot's default model behind the VAD port.
pub struct EarshotVad {
    detector: Box<earshot::Detector>,
    dither: i16,
    rng: u64,
}

impl EarshotVad {
    /// A detector with fresh state (allocated on the heap: the state is about 8 KiB) and the default dither.
    pub fn new() -> Self {
        Self::with_dither(DEFAULT_DITHER)
    }

    /// A detector adding dither of peak `dither` LSB to scored frames (0 turns it off).
    pub fn with_dither(dither: i16) -> Self {
        Self {
            detector: earshot::Detector::default_boxed(),
            dither: dither.max(0),
            rng: DITHER_SEED,
        }
    }

    /// Next dither value in `-dither..=dither` (xorshift64: a fixed sequence, restarted by `reset`).
    fn next_dither(&mut self) -> i16 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let span = u64::from(self.dither.unsigned_abs()) * 2 + 1;
        // Scales the high 32 random bits onto `0..span` (a multiply and a shift: a 64-bit remainder per sample
        // cost about as much as the detector's own FFT). Below `span` <= 65535, so the result stays within
        // `-dither..=dither`.
        i32::try_from(((self.rng >> 32) * span) >> 32)
            .ok()
            .and_then(|v| i16::try_from(v - i32::from(self.dither)).ok())
            .unwrap_or(0)
    }
}

impl Default for EarshotVad {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for EarshotVad {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EarshotVad").finish_non_exhaustive()
    }
}

impl VoiceActivityDetector for EarshotVad {
    fn sample_rate(&self) -> u32 {
        EARSHOT_SAMPLE_RATE
    }

    fn frame_samples(&self) -> usize {
        EARSHOT_FRAME_SAMPLES
    }

    fn speech_probability(&mut self, frame: &[i16]) -> Result<f32> {
        check_frame(frame, EARSHOT_FRAME_SAMPLES)?;
        let score = if self.dither == 0 {
            self.detector.predict_i16(frame)
        } else {
            let mut dithered = [0i16; EARSHOT_FRAME_SAMPLES];
            for (out, sample) in dithered.iter_mut().zip(frame) {
                *out = sample.saturating_add(self.next_dither());
            }
            self.detector.predict_i16(&dithered)
        };
        // earshot returns -1 only for a wrong frame size, which `check_frame` rules out; clamp regardless.
        Ok(if score.is_nan() {
            0.0
        } else {
            score.clamp(0.0, 1.0)
        })
    }

    fn reset(&mut self) {
        self.detector.reset();
        self.rng = DITHER_SEED;
    }

    fn fresh(&self) -> Box<dyn VoiceActivityDetector> {
        Box::new(Self::with_dither(self.dither))
    }
}
