//! Deterministic synthetic signals: tones for the tone TTS, and test and benchmark material for VAD and the
//! engine (silence, low-level white noise, a harmonic-rich synthetic vowel).

use std::f32::consts::TAU;

/// `ms` milliseconds of digital silence.
pub fn silence(sample_rate: u32, ms: u32) -> Vec<i16> {
    vec![0; samples_for(sample_rate, ms)]
}

/// The sample at global position `n` of a sine of `hz` at `amplitude` (phase 0 at `n = 0`), so a tone split into
/// chunks stays phase-continuous.
pub fn sine_at(n: u64, sample_rate: u32, hz: f32, amplitude: i16) -> i16 {
    let rate = u64::from(sample_rate.max(1));
    // Reduce the position modulo one second first so the f32 phase stays exact over long streams.
    let within = (n % rate) as f32 / rate as f32;
    let whole = (n / rate) as f32;
    let phase = (whole * hz).fract() + within * hz;
    (f32::from(amplitude) * (TAU * phase).sin()) as i16
}

/// `ms` milliseconds of a sine tone.
pub fn sine(sample_rate: u32, ms: u32, hz: f32, amplitude: i16) -> Vec<i16> {
    (0..samples_for(sample_rate, ms) as u64)
        .map(|n| sine_at(n, sample_rate, hz, amplitude))
        .collect()
}

/// `ms` milliseconds of uniform white noise with peak `amplitude`, from a fixed-seed generator.
pub fn white_noise(sample_rate: u32, ms: u32, amplitude: i16, seed: u64) -> Vec<i16> {
    let mut state = seed ^ 0x9E37_79B9_7F4A_7C15;
    (0..samples_for(sample_rate, ms))
        .map(|_| {
            // xorshift64*: good enough for noise, fixed for a seed.
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            let r = state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40; // 24 random bits
            let unit = r as f32 / (1u64 << 23) as f32 - 1.0; // [-1, 1)
            (unit * f32::from(amplitude)) as i16
        })
        .collect()
}

/// Formant frequencies and bandwidths (Hz) of an /a/ as in "father" (Peterson & Barney averages).
const FORMANTS_A: [(f32, f32); 4] = [(730.0, 90.0), (1090.0, 110.0), (2440.0, 170.0), (3400.0, 250.0)];

/// `ms` milliseconds of a synthetic sustained vowel /a/ with a peak near `amplitude`: a glottal source at a
/// fundamental gliding between 120 and 180 Hz, every harmonic below 4 kHz weighted by four formant resonances
/// and a −6 dB/octave tilt, with a 4 Hz syllable-like loudness modulation. Speech detectors take it for voice.
pub fn synthetic_vowel(sample_rate: u32, ms: u32, amplitude: i16) -> Vec<i16> {
    let rate = sample_rate.max(1) as f32;
    let nyquist = (rate / 2.0).min(4_000.0);
    let n = samples_for(sample_rate, ms);
    let mut phase = 0.0f32;
    let mut raw: Vec<f32> = Vec::with_capacity(n);
    for i in 0..n {
        let t = i as f32 / rate;
        // Intonation: a slow glide of the fundamental, as in a spoken phrase.
        let f0 = 150.0 + 30.0 * (TAU * 0.7 * t).sin();
        phase = (phase + f0 / rate).fract();
        let mut value = 0.0;
        let mut k = 1.0f32;
        while k * f0 < nyquist {
            let f = k * f0;
            value += formant_gain(f) / k * (TAU * k * phase).sin();
            k += 1.0;
        }
        // Syllable rhythm: loudness between 30% and 100%.
        let envelope = 0.65 + 0.35 * (TAU * 4.0 * t).sin();
        raw.push(value * envelope);
    }
    let peak = raw.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(f32::EPSILON);
    let scale = f32::from(amplitude) / peak;
    raw.into_iter().map(|v| (v * scale) as i16).collect()
}

fn formant_gain(f: f32) -> f32 {
    FORMANTS_A
        .iter()
        .map(|(centre, bandwidth)| {
            let x = f / centre;
            let damping = f * bandwidth / (centre * centre);
            1.0 / ((1.0 - x * x).powi(2) + damping * damping).sqrt()
        })
        .sum()
}

fn samples_for(sample_rate: u32, ms: u32) -> usize {
    usize::try_from(u64::from(sample_rate) * u64::from(ms) / 1000).unwrap_or(0)
}
