//! ITU-T G.711 µ-law and A-law companding, on 16-bit linear samples.
//!
//! The classic bit-level formulation (CCITT reference, as in Sun's public-domain `g711.c`): µ-law works on the
//! 14-bit magnitude with a bias of 0x84 (decoded range ±32124), A-law on the 13-bit magnitude (decoded range
//! ±32256). Decoding returns the midpoint of the quantisation interval, so `decode(encode(x))` is within half a
//! step of `x` (except beyond µ-law's clip level of 32635).

const ULAW_BIAS: i32 = 0x84;
const ULAW_CLIP: i32 = 32_635;

/// Linear sample → µ-law byte.
pub fn linear_to_ulaw(sample: i16) -> u8 {
    let mut magnitude = i32::from(sample);
    let sign: u8 = if magnitude < 0 {
        magnitude = -magnitude;
        0x80
    } else {
        0
    };
    magnitude = magnitude.min(ULAW_CLIP) + ULAW_BIAS;
    // The segment (exponent) is the position of the highest set bit above bit 7: 0x84..=0xFF → 0, … → 7.
    let exponent = (31 - magnitude.leading_zeros()).saturating_sub(7).min(7);
    let mantissa = (magnitude >> (exponent + 3)) & 0x0F;
    // Both fit in a byte: exponent ≤ 7, mantissa ≤ 15.
    let code = sign | ((exponent as u8) << 4) | (mantissa as u8);
    !code
}

/// Linear sample → A-law byte.
pub fn linear_to_alaw(sample: i16) -> u8 {
    // A-law quantises the 13-bit value.
    let mut value = i32::from(sample) >> 3;
    let mask: u8 = if value >= 0 {
        0xD5
    } else {
        value = -value - 1;
        0x55
    };
    // Segment ends of the 13-bit magnitude: 0x1F, 0x3F, 0x7F, … 0xFFF.
    let segment = (32 - value.leading_zeros()).saturating_sub(5);
    let code = if segment >= 8 {
        0x7F
    } else {
        let shift = if segment < 2 { 1 } else { segment };
        // segment ≤ 7, the masked mantissa ≤ 15.
        ((segment as u8) << 4) | (((value >> shift) & 0x0F) as u8)
    };
    code ^ mask
}

/// µ-law byte → linear sample.
pub const fn ulaw_to_linear(code: u8) -> i16 {
    let code = !code;
    let exponent = ((code & 0x70) >> 4) as i32;
    let mantissa = (code & 0x0F) as i32;
    let magnitude = (((mantissa << 3) + ULAW_BIAS) << exponent) - ULAW_BIAS;
    // |magnitude| ≤ 32124.
    if code & 0x80 != 0 {
        -magnitude as i16
    } else {
        magnitude as i16
    }
}

/// A-law byte → linear sample.
pub const fn alaw_to_linear(code: u8) -> i16 {
    let code = code ^ 0x55;
    let segment = ((code & 0x70) >> 4) as i32;
    let mut magnitude = ((code & 0x0F) as i32) << 4;
    magnitude = match segment {
        0 => magnitude + 8,
        1 => magnitude + 0x108,
        _ => (magnitude + 0x108) << (segment - 1),
    };
    // |magnitude| ≤ 32256.
    if code & 0x80 != 0 {
        magnitude as i16
    } else {
        -magnitude as i16
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_ulaw_vectors() {
        // ITU-T G.711 Table 2a extremes and zeros (×4 from the 14-bit values in the table).
        assert_eq!(ulaw_to_linear(0xFF), 0);
        assert_eq!(ulaw_to_linear(0x7F), 0);
        assert_eq!(ulaw_to_linear(0x80), 32_124);
        assert_eq!(ulaw_to_linear(0x00), -32_124);
        assert_eq!(ulaw_to_linear(0xFE), 8);
        assert_eq!(ulaw_to_linear(0x7E), -8);
        assert_eq!(linear_to_ulaw(0), 0xFF);
        assert_eq!(linear_to_ulaw(i16::MAX), 0x80);
        assert_eq!(linear_to_ulaw(i16::MIN), 0x00);
        assert_eq!(linear_to_ulaw(-1), 0x7F);
    }

    #[test]
    fn known_alaw_vectors() {
        // ITU-T G.711 Table 1a: the smallest steps decode to ±8 (×8 from the 13-bit ±1), the largest to ±32256.
        assert_eq!(alaw_to_linear(0xD5), 8);
        assert_eq!(alaw_to_linear(0x55), -8);
        assert_eq!(alaw_to_linear(0xAA), 32_256);
        assert_eq!(alaw_to_linear(0x2A), -32_256);
        assert_eq!(linear_to_alaw(0), 0xD5);
        assert_eq!(linear_to_alaw(-1), 0x55);
        assert_eq!(linear_to_alaw(i16::MAX), 0xAA);
        assert_eq!(linear_to_alaw(i16::MIN), 0x2A);
    }
}
