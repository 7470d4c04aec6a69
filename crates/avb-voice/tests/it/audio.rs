//! Audio formats, codecs, base64 framing, exact timing, the input buffer and the resampler.

use avb_voice::Error;
use avb_voice::audio::framing::decoded_len;
use avb_voice::audio::{
    AudioFormat, DEFAULT_MAX_APPEND_BYTES, InputAudioBuffer, Resampler, SUPPORTED_SAMPLE_RATES,
    decode_audio_base64, decode_base64, encode_audio_base64, encode_base64, expected_len, g711,
    ms_to_samples, pcm, samples_to_ms, synth,
};
use std::str::FromStr;

#[test]
fn protocol_format_names_map_both_ways() {
    for (beta, ga, rate, format) in [
        ("pcm16", "audio/pcm", Some(24_000), AudioFormat::PCM16_24K),
        ("g711_ulaw", "audio/pcmu", None, AudioFormat::G711Ulaw),
        ("g711_alaw", "audio/pcma", None, AudioFormat::G711Alaw),
    ] {
        assert_eq!(AudioFormat::from_beta_name(beta).unwrap(), format);
        assert_eq!(format.beta_name(), Some(beta));
        assert_eq!(AudioFormat::from_ga(ga, rate).unwrap(), format);
        assert_eq!(AudioFormat::from_ga(ga, None).unwrap(), format);
        assert_eq!((format.ga_type(), format.ga_rate()), (ga, rate));
        assert_eq!(AudioFormat::from_str(beta).unwrap(), format);
        assert_eq!(format.to_string(), beta);
    }
    assert_eq!(AudioFormat::G711Ulaw.sample_rate(), 8_000);
    assert_eq!(
        AudioFormat::from_ga("audio/pcmu", Some(8_000)).unwrap(),
        AudioFormat::G711Ulaw
    );
    let wide = AudioFormat::from_ga("audio/pcm", Some(16_000)).unwrap();
    assert_eq!(wide, AudioFormat::Pcm16 { sample_rate: 16_000 });
    assert_eq!(wide.beta_name(), None);
    assert_eq!(wide.to_string(), "audio/pcm@16000");
    assert_eq!(AudioFormat::from_str("audio/pcm@16000").unwrap(), wide);
    for bad in ["pcm24", "audio/opus", "", "PCM16"] {
        assert!(
            matches!(AudioFormat::from_str(bad), Err(Error::UnsupportedFormat(_))),
            "{bad}"
        );
    }
    assert!(AudioFormat::from_ga("audio/pcmu", Some(16_000)).is_err());
    assert!(AudioFormat::from_ga("audio/pcm", Some(11_025)).is_err());
    assert!(AudioFormat::from_str("audio/pcm@x").is_err());
    assert_eq!(AudioFormat::default(), AudioFormat::PCM16_24K);
}

#[test]
fn pcm16_is_little_endian_and_refuses_half_samples() {
    assert_eq!(
        pcm::decode_pcm16_le(&[0x01, 0x00, 0xFF, 0x7F, 0x00, 0x80, 0xFF, 0xFF]).unwrap(),
        vec![1, i16::MAX, i16::MIN, -1]
    );
    assert_eq!(pcm::encode_pcm16_le(&[1, -2]), vec![0x01, 0x00, 0xFE, 0xFF]);
    let mut out = vec![7];
    assert!(matches!(
        pcm::decode_pcm16_le_into(&[1, 2, 3], &mut out),
        Err(Error::InvalidAudio(_))
    ));
    assert_eq!(out, vec![7], "nothing appended on error");
    assert!(matches!(
        AudioFormat::PCM16_24K.samples_in(5),
        Err(Error::InvalidAudio(_))
    ));
    assert_eq!(AudioFormat::PCM16_24K.samples_in(960).unwrap(), 480);
    assert_eq!(AudioFormat::G711Alaw.samples_in(5).unwrap(), 5);
    assert_eq!(pcm::f32_to_i16(2.0), i16::MAX);
    assert_eq!(pcm::f32_to_i16(-2.0), i16::MIN);
    assert_eq!(pcm::f32_to_i16(f32::NAN), 0);
    assert_eq!(pcm::f32_to_i16(pcm::i16_to_f32(-12_345)), -12_345);
}

/// Half the µ-law quantisation step around `x` (or the clipping error above 32635).
fn ulaw_bound(x: i16) -> i32 {
    let magnitude = i32::from(x).abs();
    if magnitude > 32_635 {
        return magnitude - 32_124;
    }
    let biased = magnitude + 0x84;
    let segment = (31 - biased.leading_zeros() as i32 - 7).clamp(0, 7);
    4 << segment
}

/// Half the A-law quantisation step around `x`, plus the 3 bits A-law drops.
fn alaw_bound(x: i16) -> i32 {
    let magnitude = (i32::from(x) >> 3).abs();
    let segment = (32 - magnitude.leading_zeros() as i32 - 5).clamp(1, 7);
    (8 << segment) + 8
}

#[test]
fn g711_round_trips_every_sample_within_half_a_step() {
    let mut previous = (i16::MIN, i16::MIN);
    for x in i16::MIN..=i16::MAX {
        let u = g711::ulaw_to_linear(g711::linear_to_ulaw(x));
        let a = g711::alaw_to_linear(g711::linear_to_alaw(x));
        assert!(
            (i32::from(u) - i32::from(x)).abs() <= ulaw_bound(x),
            "µ-law {x} -> {u}"
        );
        assert!(
            (i32::from(a) - i32::from(x)).abs() <= alaw_bound(x),
            "A-law {x} -> {a}"
        );
        // Companding is monotonic.
        assert!(u >= previous.0 && a >= previous.1, "{x}");
        previous = (u, a);
    }
}

#[test]
fn g711_codes_are_fixed_points() {
    for code in 0..=255u8 {
        let u = g711::ulaw_to_linear(code);
        // 0x7F is µ-law's negative zero, which re-encodes as positive zero.
        let expected = if code == 0x7F { 0xFF } else { code };
        assert_eq!(g711::linear_to_ulaw(u), expected, "µ-law {code:#04x}");
        assert_eq!(
            g711::linear_to_alaw(g711::alaw_to_linear(code)),
            code,
            "A-law {code:#04x}"
        );
    }
    // Even bits are inverted on the A-law wire: the smallest positive step is 0xD5, silence is not 0x00.
    assert_eq!(AudioFormat::G711Alaw.encode(&[0, 0]), vec![0xD5, 0xD5]);
    assert_eq!(AudioFormat::G711Ulaw.encode(&[0, 0]), vec![0xFF, 0xFF]);
}

#[test]
fn base64_frames_audio_and_checks_the_size_first() {
    let samples = synth::sine(24_000, 20, 440.0, 10_000);
    let encoded = encode_audio_base64(AudioFormat::PCM16_24K, &samples);
    assert_eq!(
        decode_audio_base64(AudioFormat::PCM16_24K, &encoded, 960).unwrap(),
        samples
    );
    assert!(matches!(
        decode_audio_base64(AudioFormat::PCM16_24K, &encoded, 959),
        Err(Error::LimitExceeded {
            what: "append",
            limit: 959,
            actual: 960
        })
    ));
    // Padding is optional; a bad symbol is invalid audio, not a panic.
    assert_eq!(decode_base64("AAE", 10).unwrap(), vec![0, 1]);
    assert_eq!(decode_base64("AAE=", 10).unwrap(), vec![0, 1]);
    assert!(matches!(decode_base64("AA*E", 10), Err(Error::InvalidAudio(_))));
    assert!(matches!(
        decode_audio_base64(AudioFormat::PCM16_24K, "AAEC", 10),
        Err(Error::InvalidAudio(_))
    ));
    for n in 0..64 {
        let bytes = vec![0xA5; n];
        let text = encode_base64(&bytes);
        assert_eq!(decoded_len(&text), n);
        assert_eq!(decoded_len(text.trim_end_matches('=')), n);
    }
}

#[test]
fn a_15_mib_append_is_accepted() {
    let bytes: Vec<u8> = (0..15 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
    let encoded = encode_base64(&bytes);
    let decoded = decode_base64(&encoded, DEFAULT_MAX_APPEND_BYTES).unwrap();
    assert_eq!(decoded, bytes);
    let samples = decode_audio_base64(AudioFormat::PCM16_24K, &encoded, DEFAULT_MAX_APPEND_BYTES).unwrap();
    assert_eq!(samples.len(), bytes.len() / 2);
    let mut buffer = InputAudioBuffer::new(24_000, avb_voice::audio::DEFAULT_INPUT_BUFFER_CAP_BYTES);
    buffer.append(&samples).unwrap();
    // 15 MiB of G.711 doubles when decoded and still fits the default buffer.
    let ulaw = AudioFormat::G711Ulaw.decode(&bytes).unwrap();
    let mut buffer = InputAudioBuffer::new(8_000, avb_voice::audio::DEFAULT_INPUT_BUFFER_CAP_BYTES);
    buffer.append(&ulaw).unwrap();
    assert_eq!(buffer.len_bytes(), 30 * 1024 * 1024);
}

#[test]
fn milliseconds_come_from_sample_counts_without_drift() {
    // 100-sample frames at 24 kHz last 4.1666… ms: adding up whole milliseconds per frame drifts by 10 s an hour,
    // dividing the sample counter does not.
    let frames = 864_000u64;
    let per_frame: u64 = (0..frames).map(|_| samples_to_ms(100, 24_000)).sum();
    assert_eq!(samples_to_ms(frames * 100, 24_000), 3_600_000);
    assert_eq!(per_frame, 3_456_000);
    // 20 ms at 22.05 kHz is 441 samples: exact too.
    assert_eq!(samples_to_ms(441 * 180_000, 22_050), 3_600_000);
    assert_eq!(samples_to_ms(23, 24_000), 0);
    assert_eq!(samples_to_ms(24, 24_000), 1);
    assert_eq!(ms_to_samples(1_500, 8_000), 12_000);
    assert_eq!(samples_to_ms(u64::MAX, 8_000), u64::MAX / 8);
    assert_eq!(samples_to_ms(5, 0), 0);
}

#[test]
fn input_buffer_caps_commits_and_clears_on_one_timeline() {
    let mut capped = InputAudioBuffer::new(24_000, 48_000);
    capped.append(&[1; 12_000]).unwrap(); // 500 ms, 24 000 bytes
    capped.append(&[2; 11_999]).unwrap();
    assert!(matches!(
        capped.append(&[3; 2]),
        Err(Error::LimitExceeded {
            what: "input_audio_buffer",
            limit: 48_000,
            actual: 48_002
        })
    ));
    assert_eq!(capped.len_samples(), 23_999, "a refused append adds nothing");
    let committed = capped.commit();
    assert_eq!(
        (committed.start_ms, committed.end_ms, committed.samples.len()),
        (0, 999, 23_999)
    );
    assert_eq!(committed.duration_ms(), 999);
    assert!(capped.is_empty());
    capped.append(&[3; 2]).unwrap();

    let mut buffer = InputAudioBuffer::new(24_000, 1 << 20);
    buffer.append(&[1; 23_999]).unwrap();
    buffer.commit();
    buffer.append(&[4; 24_001]).unwrap();
    assert_eq!((buffer.start_ms(), buffer.end_ms()), (999, 2_000));
    buffer.clear();
    assert_eq!(
        (buffer.start_position(), buffer.end_position(), buffer.len_bytes()),
        (48_000, 48_000, 0)
    );
    let empty = buffer.commit();
    assert_eq!(
        (empty.start_ms, empty.end_ms, empty.samples.len()),
        (2_000, 2_000, 0)
    );

    // Server VAD: keep the pre-roll while idle, then commit exactly the turn and keep what follows.
    buffer.append(&vec![5; 24_000]).unwrap(); // 2000..3000 ms
    buffer.retain_last_ms(300);
    assert_eq!(buffer.start_ms(), 2_700);
    buffer.append(&vec![6; 24_000]).unwrap(); // 3000..4000 ms
    let turn = buffer.commit_range_ms(2_800, 3_500);
    assert_eq!(
        (turn.start_ms, turn.end_ms, turn.samples.len()),
        (2_800, 3_500, 16_800)
    );
    assert_eq!(turn.samples.iter().filter(|s| **s == 5).count(), 4_800);
    assert_eq!((buffer.start_ms(), buffer.end_ms()), (3_500, 4_000));
    // Bounds outside the buffer are clamped to it.
    let rest = buffer.commit_range_ms(0, 99_999);
    assert_eq!((rest.start_ms, rest.end_ms), (3_500, 4_000));
    buffer.discard_before_ms(10_000);
    assert_eq!(buffer.end_ms(), 4_000);
}

const RATES: [u32; 5] = [8_000, 16_000, 22_050, 24_000, 48_000];

#[test]
fn flushed_streams_have_exactly_the_ratio_length() {
    for from in RATES {
        for to in RATES {
            for len in [0usize, 1, 159, 480, 4_410, 12_345] {
                let input = synth::synthetic_vowel(from, 1_000, 8_000);
                let input = &input[..len.min(input.len())];
                let out = Resampler::process_all(from, to, input).unwrap();
                assert_eq!(
                    out.len() as u64,
                    expected_len(input.len() as u64, from, to),
                    "{from}->{to} x{len}"
                );
            }
        }
    }
    assert_eq!(expected_len(441, 22_050, 16_000), 320);
    assert_eq!(expected_len(1, 48_000, 8_000), 0);
    assert_eq!(expected_len(3, 48_000, 8_000), 1);
}

#[test]
fn streaming_in_any_frame_size_equals_one_shot() {
    let input = synth::synthetic_vowel(24_000, 700, 12_000);
    let whole = Resampler::process_all(24_000, 16_000, &input).unwrap();
    for frame in [1, 13, 480, 960, 5_000] {
        let mut resampler = Resampler::new(24_000, 16_000).unwrap();
        let mut out = Vec::new();
        for piece in input.chunks(frame) {
            resampler.process(piece, &mut out).unwrap();
            // Before the flush, output lags input by at most the resampler's latency.
            let due = expected_len(resampler.consumed(), 24_000, 16_000);
            let latency = expected_len(resampler.latency_samples() as u64, 24_000, 16_000);
            assert!(
                resampler.produced() <= due && due - resampler.produced() <= latency + 1,
                "{frame}"
            );
        }
        resampler.flush(&mut out).unwrap();
        assert_eq!(out, whole, "frames of {frame}");
        assert_eq!(
            (resampler.consumed(), resampler.produced()),
            (0, 0),
            "flush starts a new stream"
        );
    }
}

/// Goertzel power of `hz` in `samples`, normalised by length.
fn tone_power(samples: &[i16], rate: u32, hz: f32) -> f32 {
    let w = std::f32::consts::TAU * hz / rate as f32;
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f32, 0.0f32);
    for x in samples {
        let s = f32::from(*x) + coeff * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    (s1 * s1 + s2 * s2 - coeff * s1 * s2).sqrt() / samples.len() as f32
}

fn rms(samples: &[i16]) -> f32 {
    (samples.iter().map(|x| f32::from(*x).powi(2)).sum::<f32>() / samples.len().max(1) as f32).sqrt()
}

#[test]
fn resampling_keeps_pitch_level_and_timing() {
    for (from, to) in [
        (24_000, 16_000),
        (8_000, 24_000),
        (22_050, 24_000),
        (48_000, 16_000),
        (16_000, 22_050),
    ] {
        let input = synth::sine(from, 1_000, 1_000.0, 10_000);
        let out = Resampler::process_all(from, to, &input).unwrap();
        // Skip the edges (the filter rings at the start and end of a clip).
        let middle = &out[out.len() / 10..out.len() * 9 / 10];
        let at_tone = tone_power(middle, to, 1_000.0);
        assert!(at_tone > 10.0 * tone_power(middle, to, 1_100.0), "{from}->{to}");
        let level = rms(middle) / rms(&input);
        assert!((0.97..1.03).contains(&level), "{from}->{to}: level {level}");

        // An impulse comes out where its time says it should: the start-up delay is hidden.
        let mut click = vec![0i16; from as usize / 2];
        click[from as usize / 4] = 30_000;
        let out = Resampler::process_all(from, to, &click).unwrap();
        let peak = out
            .iter()
            .enumerate()
            .max_by_key(|(_, x)| x.unsigned_abs())
            .unwrap()
            .0;
        assert!(
            peak.abs_diff(to as usize / 4) <= 1,
            "{from}->{to}: peak at {peak}"
        );
    }
    // Downsampling filters what the lower rate cannot hold instead of folding it back.
    let high = synth::sine(24_000, 1_000, 10_000.0, 10_000);
    let out = Resampler::process_all(24_000, 16_000, &high).unwrap();
    assert!(
        rms(&out[1_600..14_400]) < 0.02 * rms(&high),
        "aliasing: {}",
        rms(&out)
    );
}

#[test]
fn equal_rates_pass_through_and_unknown_rates_are_refused() {
    let input = synth::white_noise(16_000, 100, 5_000, 1);
    let mut resampler = Resampler::new(16_000, 16_000).unwrap();
    let mut out = Vec::new();
    resampler.process(&input, &mut out).unwrap();
    assert_eq!(out, input);
    assert_eq!(resampler.latency_samples(), 0);
    for (from, to) in [(11_025, 16_000), (16_000, 0), (0, 16_000), (96_000, 48_000)] {
        assert!(
            matches!(Resampler::new(from, to), Err(Error::UnsupportedFormat(_))),
            "{from}->{to}"
        );
    }
    assert!(SUPPORTED_SAMPLE_RATES.contains(&44_100));
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    fn format() -> impl Strategy<Value = AudioFormat> {
        prop_oneof![
            Just(AudioFormat::PCM16_24K),
            Just(AudioFormat::Pcm16 { sample_rate: 16_000 }),
            Just(AudioFormat::G711Ulaw),
            Just(AudioFormat::G711Alaw),
        ]
    }

    proptest! {
        #[test]
        fn decoders_never_panic_and_refuse_only_partial_samples(format in format(), bytes in prop::collection::vec(any::<u8>(), 0..2_000)) {
            let whole = bytes.len() % format.bytes_per_sample() == 0;
            match format.decode(&bytes) {
                Ok(samples) => {
                    prop_assert!(whole);
                    prop_assert_eq!(samples.len(), bytes.len() / format.bytes_per_sample());
                    if matches!(format, AudioFormat::Pcm16 { .. }) {
                        prop_assert_eq!(format.encode(&samples), bytes);
                    }
                }
                Err(e) => {
                    prop_assert!(!whole);
                    prop_assert!(matches!(e, Error::InvalidAudio(_)), "{e}");
                }
            }
        }

        #[test]
        fn base64_framing_never_panics(text in ".{0,400}", limit in 0usize..400) {
            if let Ok(bytes) = decode_base64(&text, limit) {
                prop_assert!(bytes.len() <= limit);
                prop_assert_eq!(bytes.len(), decoded_len(&text));
            }
            for format in [AudioFormat::PCM16_24K, AudioFormat::G711Ulaw] {
                let _ = decode_audio_base64(format, &text, limit);
            }
        }

        #[test]
        fn base64_framing_never_panics_on_base64_alphabet(text in "[A-Za-z0-9+/=]{0,400}", limit in 0usize..400) {
            if let Ok(bytes) = decode_base64(&text, limit) {
                prop_assert!(bytes.len() <= limit);
                let again = encode_base64(&bytes);
                prop_assert_eq!(again.trim_end_matches('='), text.trim_end_matches('='));
            }
        }

        #[test]
        fn base64_round_trips(bytes in prop::collection::vec(any::<u8>(), 0..3_000)) {
            let text = encode_base64(&bytes);
            prop_assert_eq!(decode_base64(&text, bytes.len()).unwrap(), bytes.clone());
            prop_assert_eq!(decode_base64(text.trim_end_matches('='), bytes.len()).unwrap(), bytes.clone());
            if !bytes.is_empty() {
                let refused = decode_base64(&text, bytes.len() - 1);
                prop_assert!(matches!(refused, Err(Error::LimitExceeded { .. })), "not refused");
            }
        }

        #[test]
        fn g711_round_trips_within_quantisation_error(samples in prop::collection::vec(any::<i16>(), 0..500)) {
            for format in [AudioFormat::G711Ulaw, AudioFormat::G711Alaw] {
                let back = format.decode(&format.encode(&samples)).unwrap();
                prop_assert_eq!(back.len(), samples.len());
                for (x, y) in samples.iter().zip(&back) {
                    let bound = if format == AudioFormat::G711Ulaw { ulaw_bound(*x) } else { alaw_bound(*x) };
                    prop_assert!((i32::from(*x) - i32::from(*y)).abs() <= bound, "{format}: {x} -> {y}");
                }
                // Companded audio survives a second round trip unchanged.
                prop_assert_eq!(format.decode(&format.encode(&back)).unwrap(), back);
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn resampler_length_follows_the_ratio(
            from in prop::sample::select(RATES.to_vec()),
            to in prop::sample::select(RATES.to_vec()),
            frames in prop::collection::vec(0usize..2_000, 0..20),
        ) {
            let mut resampler = Resampler::new(from, to).unwrap();
            let mut out = Vec::new();
            let mut pushed = 0u64;
            // One internal frame: the chunk being filled plus the filter delay, in output samples.
            let one_frame = expected_len(resampler.latency_samples() as u64, from, to) + 1;
            for len in frames {
                let input = synth::white_noise(from, 1_000, 4_000, len as u64);
                let input = &input[..len.min(input.len())];
                resampler.process(input, &mut out).unwrap();
                pushed += input.len() as u64;
                let due = expected_len(pushed, from, to);
                prop_assert_eq!(out.len() as u64, resampler.produced());
                prop_assert!(resampler.produced() <= due);
                prop_assert!(due - resampler.produced() <= one_frame, "{} behind", due - resampler.produced());
            }
            resampler.flush(&mut out).unwrap();
            prop_assert_eq!(out.len() as u64, expected_len(pushed, from, to));
        }

        #[test]
        fn input_buffer_never_exceeds_its_cap(ops in prop::collection::vec((0u8..4, 0usize..3_000), 0..60), cap in 0usize..20_000) {
            let mut buffer = InputAudioBuffer::new(16_000, cap);
            let mut total = 0u64;
            for (op, n) in ops {
                match op {
                    0 | 1 => {
                        if buffer.append(&vec![1; n]).is_ok() {
                            total += n as u64;
                        }
                    }
                    2 => {
                        let committed = buffer.commit();
                        prop_assert_eq!(committed.end_ms, samples_to_ms(total, 16_000));
                    }
                    _ => buffer.clear(),
                }
                prop_assert!(buffer.len_bytes() <= cap);
                prop_assert_eq!(buffer.end_position(), total);
            }
        }
    }
}

#[test]
fn skipping_silence_keeps_the_timeline_and_restarts_cleanly() {
    for (from, to) in [
        (24_000u32, 16_000u32),
        (8_000, 16_000),
        (16_000, 24_000),
        (48_000, 16_000),
    ] {
        let tone = synth::sine(from, 300, 440.0, 8_000);
        let frame = from as usize / 50;
        let mut resampler = Resampler::new(from, to).unwrap();
        let mut out = Vec::new();
        for chunk in tone.chunks(frame) {
            resampler.process(chunk, &mut out).unwrap();
        }
        // 0.5 s of silence skipped in 20 ms steps: output catches up to the exact position each time.
        for _ in 0..25 {
            resampler.skip_silence(frame, &mut out);
            assert_eq!(
                out.len() as u64,
                expected_len(resampler.consumed(), from, to),
                "{from} -> {to}"
            );
        }
        let at_restart = out.len();
        for chunk in tone.chunks(frame) {
            resampler.process(chunk, &mut out).unwrap();
        }
        resampler.flush(&mut out).unwrap();
        assert_eq!(
            out.len() as u64,
            expected_len((tone.len() * 2 + 25 * frame) as u64, from, to)
        );
        // The tone after the restart starts where it should: no start-up delay, the level of the input.
        let resumed = &out[at_restart..];
        let expected = Resampler::process_all(from, to, &tone).unwrap();
        let peak = |s: &[i16]| s.iter().map(|v| v.unsigned_abs()).max().unwrap_or(0);
        assert!(peak(&resumed[..resumed.len() / 2]) > 7_000, "{from} -> {to}");
        let differs = resumed
            .iter()
            .zip(&expected)
            .skip(expected.len() / 10)
            .take(expected.len() / 2)
            .filter(|(a, b)| a.abs_diff(**b) > 200)
            .count();
        assert_eq!(
            differs, 0,
            "{from} -> {to}: the restarted stream matches a fresh one"
        );
    }
}
