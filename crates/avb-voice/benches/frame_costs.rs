//! CPU cost per 20 ms frame of the audio path of one session: decode, resample, VAD, turn detection, encode.
//! Run with `cargo bench -p avb-voice --bench frame_costs`; prints nanoseconds per 20 ms frame.
//!
//! Time is the thread's on-CPU time (Linux `/proc/thread-self/schedstat`) so that other load on a shared machine
//! does not inflate the figures; elsewhere it falls back to wall time.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use avb_voice::adapters::EarshotVad;
use avb_voice::audio::{AudioFormat, Resampler, decode_audio_base64, encode_audio_base64, synth};
use avb_voice::realtime::protocol::{Dialect, decode_client};
use avb_voice::vad::{TurnDetectionConfig, TurnDetector, TurnEvent, VoiceActivityDetector};
use std::hint::black_box;
use std::time::Instant;

/// Resident memory of the process in bytes (Linux), to estimate per-session state from many instances.
fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace()
        .nth(1)?
        .parse::<u64>()
        .ok()
        .map(|kb| kb * 1024)
}

/// Average resident bytes per value, from building 2,000 of them. The values are returned so that the caller
/// keeps them alive: freed pages would be reused by the next measurement and hide its cost.
fn memory_of<T>(mut build: impl FnMut() -> T) -> (u64, Vec<T>) {
    let before = rss_bytes().unwrap_or(0);
    let held: Vec<T> = (0..2_000).map(|_| build()).collect();
    let after = rss_bytes().unwrap_or(0);
    (after.saturating_sub(before) / 2_000, held)
}

const FRAMES: usize = 20_000;

/// Nanoseconds this thread has run on a CPU, or wall-clock nanoseconds where the kernel does not say.
fn cpu_ns(wall: Instant) -> u128 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse::<u128>().ok()))
        .unwrap_or_else(|| wall.elapsed().as_nanos())
}

fn report(name: &str, mut per_frame: impl FnMut(usize)) {
    for i in 0..500 {
        per_frame(i);
    }
    let wall = Instant::now();
    let started = cpu_ns(wall);
    for i in 0..FRAMES {
        per_frame(i);
    }
    let ns = (cpu_ns(wall) - started) / FRAMES as u128;
    println!("{name:<48} {ns:>8} ns / 20 ms frame");
}

fn frames(rate: u32) -> Vec<Vec<i16>> {
    let speech = [
        synth::synthetic_vowel(rate, 1_000, 9_000),
        synth::white_noise(rate, 1_000, 300, 1),
    ]
    .concat();
    speech.chunks(rate as usize / 50).map(<[i16]>::to_vec).collect()
}

fn main() {
    let (bytes, resamplers) = memory_of(|| Resampler::new(24_000, 16_000).unwrap());
    println!("{:<48} {:>8} bytes", "memory of a Resampler 24 -> 16 kHz", bytes);
    let (bytes, detectors) = memory_of(|| {
        TurnDetector::new(
            TurnDetectionConfig::default(),
            Box::new(EarshotVad::new()),
            24_000,
        )
        .unwrap()
    });
    println!(
        "{:<48} {:>8} bytes",
        "memory of a TurnDetector (24 kHz input)", bytes
    );
    drop(black_box((resamplers, detectors)));
    let wall = Instant::now();
    let started = cpu_ns(wall);
    for _ in 0..200 {
        black_box(
            TurnDetector::new(
                TurnDetectionConfig::default(),
                Box::new(EarshotVad::new()),
                24_000,
            )
            .unwrap(),
        );
    }
    println!(
        "{:<48} {:>8} ns",
        "TurnDetector::new (24 kHz input)",
        (cpu_ns(wall) - started) / 200
    );
    let pcm = frames(24_000);
    let narrow = frames(8_000);
    let b64: Vec<String> = pcm
        .iter()
        .map(|f| encode_audio_base64(AudioFormat::PCM16_24K, f))
        .collect();
    let ulaw: Vec<String> = narrow
        .iter()
        .map(|f| encode_audio_base64(AudioFormat::G711Ulaw, f))
        .collect();

    report("decode base64 pcm16 24 kHz (960 B)", |i| {
        black_box(decode_audio_base64(AudioFormat::PCM16_24K, &b64[i % b64.len()], 1 << 20).unwrap());
    });
    let appends: Vec<String> = b64
        .iter()
        .map(|audio| serde_json::json!({"type": "input_audio_buffer.append", "audio": audio}).to_string())
        .collect();
    report("decode_client input_audio_buffer.append (24 kHz)", |i| {
        black_box(decode_client(Dialect::Ga, &appends[i % appends.len()]).unwrap());
    });
    report("decode base64 g711_ulaw 8 kHz (160 B)", |i| {
        black_box(decode_audio_base64(AudioFormat::G711Ulaw, &ulaw[i % ulaw.len()], 1 << 20).unwrap());
    });
    report("encode pcm16 24 kHz + base64", |i| {
        black_box(encode_audio_base64(AudioFormat::PCM16_24K, &pcm[i % pcm.len()]));
    });
    report("encode g711_alaw 8 kHz + base64", |i| {
        black_box(encode_audio_base64(
            AudioFormat::G711Alaw,
            &narrow[i % narrow.len()],
        ));
    });
    for (from, to) in [
        (24_000, 16_000),
        (8_000, 16_000),
        (16_000, 24_000),
        (22_050, 24_000),
        (24_000, 8_000),
    ] {
        let input = frames(from);
        let mut resampler = Resampler::new(from, to).unwrap();
        let mut out = Vec::with_capacity(4_096);
        report(&format!("resample {from} -> {to} Hz (streaming)"), |i| {
            out.clear();
            resampler.process(&input[i % input.len()], &mut out).unwrap();
            black_box(&out);
        });
    }
    let vad_frames: Vec<Vec<i16>> = frames(16_000)
        .concat()
        .chunks_exact(256)
        .map(<[i16]>::to_vec)
        .collect();
    let mut vad = EarshotVad::new();
    // earshot scores 16 ms frames: a 20 ms frame costs 1.25 of them.
    let wall = Instant::now();
    let started = cpu_ns(wall);
    for i in 0..FRAMES {
        black_box(vad.speech_probability(&vad_frames[i % vad_frames.len()]).unwrap());
    }
    let per_vad_frame = (cpu_ns(wall) - started) as f64 / FRAMES as f64;
    println!(
        "{:<48} {:>8} ns / 20 ms frame",
        "earshot VAD (16 kHz)",
        (per_vad_frame * 1.25) as u128
    );
    let mut detector = TurnDetector::new(
        TurnDetectionConfig::default(),
        Box::new(EarshotVad::new()),
        24_000,
    )
    .unwrap();
    let mut events: Vec<TurnEvent> = Vec::new();
    report("turn detection from 24 kHz (resample + VAD)", |i| {
        events.clear();
        detector.push(&pcm[i % pcm.len()], &mut events).unwrap();
        black_box(&events);
    });
    // Quiet input is not scored by the VAD (`avb_voice::vad::QUIET_PEAK`); with and without that gate.
    let quiet: Vec<Vec<i16>> = [
        synth::silence(24_000, 1_000),
        synth::white_noise(24_000, 1_000, 60, 7),
    ]
    .concat()
    .chunks(480)
    .map(<[i16]>::to_vec)
    .collect();
    for (name, every) in [
        ("turn detection, quiet input (gated)", false),
        ("turn detection, quiet input (every frame scored)", true),
    ] {
        let detector = TurnDetector::new(
            TurnDetectionConfig::default(),
            Box::new(EarshotVad::new()),
            24_000,
        )
        .unwrap();
        let mut detector = if every {
            detector.scoring_every_frame()
        } else {
            detector
        };
        report(name, |i| {
            events.clear();
            detector.push(&quiet[i % quiet.len()], &mut events).unwrap();
            black_box(&events);
        });
    }
}
