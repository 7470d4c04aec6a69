//! [`EarshotVad`]: the [`VoiceActivityDetector`] on `earshot`, a pure-Rust neural VAD (16 kHz, 16 ms frames).
//!
//! Chosen over `webrtc-vad` because it needs no C toolchain, gives a probability (so `threshold` maps onto it
//! directly, as in OpenAI's server VAD) and holds about 8 KiB of state per session.

use crate::error::Result;
use crate::vad::{VoiceActivityDetector, check_frame};
use std::fmt;

/// earshot's frame: 256 samples at 16 kHz (16 ms).
pub const EARSHOT_FRAME_SAMPLES: usize = 256;
/// earshot's sample rate.
pub const EARSHOT_SAMPLE_RATE: u32 = 16_000;

/// earshot's default model behind the VAD port.
pub struct EarshotVad {
    detector: Box<earshot::Detector>,
}

impl EarshotVad {
    /// A detector with fresh state (allocated on the heap: the state is about 8 KiB).
    pub fn new() -> Self {
        Self {
            detector: earshot::Detector::default_boxed(),
        }
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
        let score = self.detector.predict_i16(frame);
        // earshot returns -1 only for a wrong frame size, which `check_frame` rules out; clamp regardless.
        Ok(if score.is_nan() {
            0.0
        } else {
            score.clamp(0.0, 1.0)
        })
    }

    fn reset(&mut self) {
        self.detector.reset();
    }

    fn fresh(&self) -> Box<dyn VoiceActivityDetector> {
        Box::new(Self::new())
    }
}
