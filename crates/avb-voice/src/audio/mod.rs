//! Audio on the wire and inside the engine (reference §7.2, issue 6).
//!
//! - [`AudioFormat`]: pcm16 little-endian mono at a sample rate (24 kHz in the protocol), G.711 µ-law and A-law
//!   (8 kHz), with the beta tokens (`pcm16`, `g711_ulaw`, `g711_alaw`) and the GA types (`audio/pcm` + rate,
//!   `audio/pcmu`, `audio/pcma`).
//! - [`pcm`] and [`g711`]: the codecs. Decoders never panic: a partial sample is an error.
//! - [`framing`]: base64 inside JSON events, size-checked before anything is allocated.
//! - [`Resampler`]: streaming rate conversion between 8, 16, 22.05, 24, 44.1 and 48 kHz on `rubato`.
//! - [`timing`]: exact millisecond accounting from sample counters (`audio_start_ms`, `audio_end_ms`).
//! - [`InputAudioBuffer`]: the per-session input buffer with a byte cap and commit/clear.
//! - [`synth`]: deterministic tones, noise and a synthetic vowel for the tone TTS, tests and benchmarks.

mod buffer;
mod format;
pub mod framing;
pub mod g711;
pub mod pcm;
mod resample;
pub mod synth;
pub mod timing;

pub use buffer::{CommittedAudio, DEFAULT_INPUT_BUFFER_CAP_BYTES, InputAudioBuffer};
pub use format::{
    AudioFormat, G711_SAMPLE_RATE, PROTOCOL_PCM16_RATE, SUPPORTED_SAMPLE_RATES, check_sample_rate,
};
pub use framing::{
    DEFAULT_MAX_APPEND_BYTES, decode_audio_base64, decode_base64, encode_audio_base64, encode_base64,
};
pub use resample::{Resampler, expected_len};
pub use timing::{SampleClock, ms_to_samples, samples_to_ms};
