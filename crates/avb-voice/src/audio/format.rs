//! Wire audio formats (reference §7.2): pcm16 little-endian mono at a sample rate, G.711 µ-law and A-law at 8 kHz.

use crate::audio::{g711, pcm};
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Sample rates the crate converts between (resampling, VAD, engines). The protocol itself uses 24 kHz pcm16 and
/// 8 kHz G.711; speech engines want 16 kHz (whisper, earshot) or 22.05 kHz (Piper voices).
pub const SUPPORTED_SAMPLE_RATES: [u32; 6] = [8_000, 16_000, 22_050, 24_000, 44_100, 48_000];

/// The sample rate of the protocol's `pcm16` (beta) and `audio/pcm` (GA) formats.
pub const PROTOCOL_PCM16_RATE: u32 = 24_000;

/// The sample rate of G.711 telephony audio (the protocol types carry no rate for µ-law and A-law).
pub const G711_SAMPLE_RATE: u32 = 8_000;

/// An audio encoding on the wire: mono, one of pcm16 at a sample rate, G.711 µ-law or G.711 A-law.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AudioFormat {
    /// Signed 16-bit little-endian PCM, mono.
    Pcm16 {
        /// Samples per second (one of [`SUPPORTED_SAMPLE_RATES`]).
        sample_rate: u32,
    },
    /// G.711 µ-law, 8 kHz, one byte per sample.
    G711Ulaw,
    /// G.711 A-law, 8 kHz, one byte per sample.
    G711Alaw,
}

impl Default for AudioFormat {
    fn default() -> Self {
        Self::PCM16_24K
    }
}

impl AudioFormat {
    /// The protocol's default: pcm16 at 24 kHz.
    pub const PCM16_24K: Self = Self::Pcm16 {
        sample_rate: PROTOCOL_PCM16_RATE,
    };

    /// pcm16 at `sample_rate`, refusing rates outside [`SUPPORTED_SAMPLE_RATES`].
    pub fn pcm16(sample_rate: u32) -> Result<Self> {
        check_sample_rate(sample_rate)?;
        Ok(Self::Pcm16 { sample_rate })
    }

    /// Samples per second.
    pub const fn sample_rate(self) -> u32 {
        match self {
            Self::Pcm16 { sample_rate } => sample_rate,
            Self::G711Ulaw | Self::G711Alaw => G711_SAMPLE_RATE,
        }
    }

    /// Bytes per sample: 2 for pcm16, 1 for G.711.
    pub const fn bytes_per_sample(self) -> usize {
        match self {
            Self::Pcm16 { .. } => 2,
            Self::G711Ulaw | Self::G711Alaw => 1,
        }
    }

    /// The number of samples in `bytes` bytes of this format; a partial sample is [`Error::InvalidAudio`].
    pub fn samples_in(self, bytes: usize) -> Result<usize> {
        let width = self.bytes_per_sample();
        if !bytes.is_multiple_of(width) {
            return Err(Error::invalid_audio(format!(
                "{bytes} bytes is not a whole number of {width}-byte {self} samples"
            )));
        }
        Ok(bytes / width)
    }

    /// The beta dialect's token (`pcm16`, `g711_ulaw`, `g711_alaw`). Beta's `pcm16` means 24 kHz, so pcm16 at any
    /// other rate has no beta name.
    pub const fn beta_name(self) -> Option<&'static str> {
        match self {
            Self::Pcm16 {
                sample_rate: PROTOCOL_PCM16_RATE,
            } => Some("pcm16"),
            Self::Pcm16 { .. } => None,
            Self::G711Ulaw => Some("g711_ulaw"),
            Self::G711Alaw => Some("g711_alaw"),
        }
    }

    /// Parses a beta token (`pcm16` is 24 kHz).
    pub fn from_beta_name(name: &str) -> Result<Self> {
        match name {
            "pcm16" => Ok(Self::PCM16_24K),
            "g711_ulaw" => Ok(Self::G711Ulaw),
            "g711_alaw" => Ok(Self::G711Alaw),
            other => Err(Error::UnsupportedFormat(format!(
                "unknown audio format {other:?}"
            ))),
        }
    }

    /// The GA dialect's `type` (`audio/pcm`, `audio/pcmu`, `audio/pcma`).
    pub const fn ga_type(self) -> &'static str {
        match self {
            Self::Pcm16 { .. } => "audio/pcm",
            Self::G711Ulaw => "audio/pcmu",
            Self::G711Alaw => "audio/pcma",
        }
    }

    /// The GA dialect's `rate` (pcm only; the µ-law and A-law objects carry none).
    pub const fn ga_rate(self) -> Option<u32> {
        match self {
            Self::Pcm16 { sample_rate } => Some(sample_rate),
            Self::G711Ulaw | Self::G711Alaw => None,
        }
    }

    /// Parses a GA format object's `type` and optional `rate`. `audio/pcm` without a rate is 24 kHz; a rate on
    /// `audio/pcmu`/`audio/pcma` must be 8000 when present.
    pub fn from_ga(kind: &str, rate: Option<u32>) -> Result<Self> {
        match kind {
            "audio/pcm" => Self::pcm16(rate.unwrap_or(PROTOCOL_PCM16_RATE)),
            "audio/pcmu" | "audio/pcma" => {
                if let Some(rate) = rate.filter(|r| *r != G711_SAMPLE_RATE) {
                    return Err(Error::UnsupportedFormat(format!(
                        "{kind} is 8000 Hz, not {rate} Hz"
                    )));
                }
                Ok(if kind == "audio/pcmu" {
                    Self::G711Ulaw
                } else {
                    Self::G711Alaw
                })
            }
            other => Err(Error::UnsupportedFormat(format!("unknown audio type {other:?}"))),
        }
    }

    /// Decodes `bytes` of this format, appending the samples to `out`. A partial trailing sample is an error and
    /// appends nothing.
    pub fn decode_into(self, bytes: &[u8], out: &mut Vec<i16>) -> Result<()> {
        match self {
            Self::Pcm16 { .. } => pcm::decode_pcm16_le_into(bytes, out),
            Self::G711Ulaw => {
                out.extend(bytes.iter().map(|b| g711::ulaw_to_linear(*b)));
                Ok(())
            }
            Self::G711Alaw => {
                out.extend(bytes.iter().map(|b| g711::alaw_to_linear(*b)));
                Ok(())
            }
        }
    }

    /// Decodes `bytes` of this format into a new sample vector.
    pub fn decode(self, bytes: &[u8]) -> Result<Vec<i16>> {
        let mut out = Vec::with_capacity(bytes.len() / self.bytes_per_sample());
        self.decode_into(bytes, &mut out)?;
        Ok(out)
    }

    /// Encodes `samples` in this format, appending the bytes to `out`.
    pub fn encode_into(self, samples: &[i16], out: &mut Vec<u8>) {
        match self {
            Self::Pcm16 { .. } => pcm::encode_pcm16_le_into(samples, out),
            Self::G711Ulaw => out.extend(samples.iter().map(|s| g711::linear_to_ulaw(*s))),
            Self::G711Alaw => out.extend(samples.iter().map(|s| g711::linear_to_alaw(*s))),
        }
    }

    /// Encodes `samples` in this format into a new byte vector.
    pub fn encode(self, samples: &[i16]) -> Vec<u8> {
        let mut out = Vec::with_capacity(samples.len() * self.bytes_per_sample());
        self.encode_into(samples, &mut out);
        out
    }
}

/// Refuses sample rates outside [`SUPPORTED_SAMPLE_RATES`] with [`Error::UnsupportedFormat`].
pub fn check_sample_rate(sample_rate: u32) -> Result<()> {
    if SUPPORTED_SAMPLE_RATES.contains(&sample_rate) {
        Ok(())
    } else {
        Err(Error::UnsupportedFormat(format!(
            "sample rate {sample_rate} Hz (supported: {SUPPORTED_SAMPLE_RATES:?})"
        )))
    }
}

/// Beta tokens where one exists, else `audio/pcm@<rate>`.
impl fmt::Display for AudioFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.beta_name() {
            Some(name) => f.write_str(name),
            None => write!(f, "{}@{}", self.ga_type(), self.sample_rate()),
        }
    }
}

/// Accepts the beta tokens and the GA types (`audio/pcm` is 24 kHz unless written `audio/pcm@16000`).
impl FromStr for AudioFormat {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        if let Ok(format) = Self::from_beta_name(s) {
            return Ok(format);
        }
        match s.split_once('@') {
            Some((kind, rate)) => {
                let rate = rate
                    .parse::<u32>()
                    .map_err(|_| Error::UnsupportedFormat(format!("bad sample rate in {s:?}")))?;
                Self::from_ga(kind, Some(rate))
            }
            None => Self::from_ga(s, None),
        }
    }
}
