//! pcm16 little-endian bytes ↔ `i16` samples, and `i16` ↔ `f32` in [-1, 1] for engines that want floats.

use crate::error::{Error, Result};

/// Decodes pcm16 little-endian `bytes`, appending the samples to `out`. An odd byte count is
/// [`Error::InvalidAudio`] and appends nothing.
pub fn decode_pcm16_le_into(bytes: &[u8], out: &mut Vec<i16>) -> Result<()> {
    let pairs = bytes.chunks_exact(2);
    if !pairs.remainder().is_empty() {
        return Err(Error::invalid_audio(format!(
            "pcm16 needs an even number of bytes, got {}",
            bytes.len()
        )));
    }
    out.reserve(bytes.len() / 2);
    out.extend(pairs.map(|pair| match pair {
        [lo, hi] => i16::from_le_bytes([*lo, *hi]),
        // `chunks_exact(2)` yields only two-byte slices.
        _ => 0,
    }));
    Ok(())
}

/// Decodes pcm16 little-endian `bytes` into a new vector.
pub fn decode_pcm16_le(bytes: &[u8]) -> Result<Vec<i16>> {
    let mut out = Vec::new();
    decode_pcm16_le_into(bytes, &mut out)?;
    Ok(out)
}

/// Encodes `samples` as pcm16 little-endian, appending to `out`.
pub fn encode_pcm16_le_into(samples: &[i16], out: &mut Vec<u8>) {
    out.reserve(samples.len() * 2);
    for sample in samples {
        out.extend_from_slice(&sample.to_le_bytes());
    }
}

/// Encodes `samples` as pcm16 little-endian into a new vector.
pub fn encode_pcm16_le(samples: &[i16]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_pcm16_le_into(samples, &mut out);
    out
}

/// `i16` → `f32` in [-1, 1) (divides by 32768, the convention of whisper.cpp and earshot).
pub fn i16_to_f32(sample: i16) -> f32 {
    f32::from(sample) / 32_768.0
}

/// `f32` → `i16`, rounding to nearest (halves away from zero) and clamping to the `i16` range; NaN becomes 0.
///
/// Rounds by truncating `scaled ± 0.5` rather than calling `f32::round`, which on baseline x86-64 is a libm
/// call and was the largest single cost of resampling (it runs once per output sample). The two differ only
/// within one float step below a half (`0.49999997` rounds up), one least significant bit.
pub fn f32_to_i16(sample: f32) -> i16 {
    let scaled = sample * 32_768.0;
    // `as` truncates toward zero, saturates at the `i16` range and maps NaN to 0.
    (scaled + 0.5f32.copysign(scaled)) as i16
}
