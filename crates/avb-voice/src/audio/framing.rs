//! Base64 framing of audio inside JSON events (reference §7.2: `input_audio_buffer.append.audio`,
//! `response.*audio.delta.delta`; no binary frames).
//!
//! Decoding checks the decoded size against a limit before allocating anything, so a hostile 1 GiB string costs
//! a length check, not a 750 MiB buffer. Padding is accepted but not required (browsers and SDKs differ).

use crate::audio::AudioFormat;
use crate::error::{Error, Result};
use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

/// The default per-append limit on decoded audio: 16 MiB, above the 15 MiB that clients may send in one
/// `input_audio_buffer.append` (issue 6).
pub const DEFAULT_MAX_APPEND_BYTES: usize = 16 * 1024 * 1024;

const ENGINE: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_encode_padding(true)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The exact number of bytes that `encoded` decodes to, assuming it is valid base64 (trailing `=` ignored).
pub fn decoded_len(encoded: &str) -> usize {
    let unpadded = encoded.trim_end_matches('=').len();
    // Four symbols carry three bytes; a trailing group of 2 or 3 symbols carries 1 or 2.
    unpadded / 4 * 3 + (unpadded % 4 * 3 / 4)
}

/// Decodes standard base64, refusing (before allocating) anything that would decode to more than `max_bytes`
/// with [`Error::LimitExceeded`]; malformed input is [`Error::InvalidAudio`].
pub fn decode_base64(encoded: &str, max_bytes: usize) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    decode_base64_into(encoded, max_bytes, &mut out)?;
    Ok(out)
}

/// Like [`decode_base64`], appending to `out`; on error `out` is left as it was.
pub fn decode_base64_into(encoded: &str, max_bytes: usize, out: &mut Vec<u8>) -> Result<()> {
    let size = decoded_len(encoded);
    if size > max_bytes {
        return Err(Error::LimitExceeded {
            what: "append",
            limit: max_bytes,
            actual: size,
        });
    }
    let before = out.len();
    out.reserve(size);
    ENGINE.decode_vec(encoded.as_bytes(), out).map_err(|e| {
        out.truncate(before);
        Error::invalid_audio(format!("bad base64: {e}"))
    })
}

/// Encodes bytes as padded standard base64.
pub fn encode_base64(bytes: &[u8]) -> String {
    ENGINE.encode(bytes)
}

/// Decodes a base64 audio payload of `format` into samples, with the same size check as [`decode_base64`].
pub fn decode_audio_base64(format: AudioFormat, encoded: &str, max_bytes: usize) -> Result<Vec<i16>> {
    let bytes = decode_base64(encoded, max_bytes)?;
    format.decode(&bytes)
}

/// Encodes samples in `format` as base64.
pub fn encode_audio_base64(format: AudioFormat, samples: &[i16]) -> String {
    encode_base64(&format.encode(samples))
}
