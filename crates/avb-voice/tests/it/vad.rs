//! The earshot detector on synthetic and real (espeak-ng) audio, and server-VAD turn detection over it.

use avb_voice::Error;
use avb_voice::adapters::earshot::{EARSHOT_FRAME_SAMPLES, EarshotVad};
use avb_voice::audio::{AudioFormat, Resampler, synth};
use avb_voice::vad::{TurnDetectionConfig, TurnDetector, TurnEvent, VoiceActivityDetector};

pub fn fixture(name: &str) -> Vec<i16> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let reader = hound::WavReader::open(&path).unwrap();
    let spec = reader.spec();
    assert_eq!(
        (spec.sample_rate, spec.channels, spec.bits_per_sample),
        (16_000, 1, 16),
        "{path}"
    );
    reader.into_samples::<i16>().map(Result::unwrap).collect()
}

fn scores(samples: &[i16]) -> Vec<f32> {
    let mut vad = EarshotVad::new();
    samples
        .chunks_exact(EARSHOT_FRAME_SAMPLES)
        .map(|f| vad.speech_probability(f).unwrap())
        .collect()
}

fn max(scores: &[f32]) -> f32 {
    scores.iter().copied().fold(0.0, f32::max)
}

/// Runs `samples` (at `rate`) through a fresh detector in 20 ms frames.
fn turns(config: TurnDetectionConfig, rate: u32, samples: &[i16], agent_speaking: bool) -> Vec<TurnEvent> {
    let mut detector = TurnDetector::new(config, Box::new(EarshotVad::new()), rate).unwrap();
    detector.set_agent_speaking(agent_speaking);
    let mut events = Vec::new();
    for frame in samples.chunks(rate as usize / 50) {
        detector.push(frame, &mut events).unwrap();
    }
    events
}

fn concat(parts: &[Vec<i16>]) -> Vec<i16> {
    parts.concat()
}

#[test]
fn earshot_tells_speech_from_silence_and_low_noise() {
    assert!(max(&scores(&synth::silence(16_000, 1000))) < 0.5);
    assert!(max(&scores(&synth::white_noise(16_000, 1000, 300, 7))) < 0.5);
    let vowel = scores(&synth::synthetic_vowel(16_000, 1000, 8000));
    assert!(vowel.iter().skip(10).all(|s| *s > 0.5), "{vowel:?}");
    let hello = scores(&fixture("hello_16k.wav"));
    // 0.5 s of silence, then speech: the first 30 frames (480 ms) are silence, frames around 1.5 s are speech.
    assert!(hello.iter().take(30).all(|s| *s < 0.5), "{hello:?}");
    assert!(hello[1600 / 16] > 0.8, "{hello:?}");
}

#[test]
fn earshot_refuses_wrong_frames_and_is_deterministic() {
    let mut vad = EarshotVad::new();
    assert!(matches!(
        vad.speech_probability(&[0; 255]),
        Err(Error::InvalidAudio(_))
    ));
    assert!(matches!(
        vad.speech_probability(&[0; 320]),
        Err(Error::InvalidAudio(_))
    ));
    let speech = fixture("hello_16k.wav");
    let first = scores(&speech);
    let mut again = vad.fresh();
    let second: Vec<f32> = speech
        .chunks_exact(256)
        .map(|f| again.speech_probability(f).unwrap())
        .collect();
    assert_eq!(first, second);
    again.reset();
    let third: Vec<f32> = speech
        .chunks_exact(256)
        .map(|f| again.speech_probability(f).unwrap())
        .collect();
    assert_eq!(first, third);
}

const HELLO_START: TurnEvent = TurnEvent::SpeechStarted { audio_start_ms: 260 };
const HELLO_STOP: TurnEvent = TurnEvent::SpeechStopped { audio_end_ms: 2608 };

#[test]
fn a_spoken_sentence_is_one_turn_with_padding_and_silence_included() {
    // Speech is detected at 560 ms (the sound starts at 500 ms) and ends 16 ms frames later; the default 300 ms of
    // prefix padding and 500 ms of silence are in the reported bounds.
    let hello = fixture("hello_16k.wav");
    assert_eq!(
        turns(TurnDetectionConfig::default(), 16_000, &hello, false),
        vec![HELLO_START, HELLO_STOP]
    );
}

#[test]
fn turn_bounds_are_the_same_at_every_input_rate() {
    let hello = fixture("hello_16k.wav");
    for rate in [24_000, 48_000] {
        let resampled = Resampler::process_all(16_000, rate, &hello).unwrap();
        assert_eq!(
            turns(TurnDetectionConfig::default(), rate, &resampled, false),
            vec![HELLO_START, HELLO_STOP],
            "{rate} Hz"
        );
    }
    // Telephone audio through µ-law and A-law loses the band above 4 kHz; the turn is still found, within a
    // few frames of the wide-band bounds.
    let narrow = Resampler::process_all(16_000, 8_000, &hello).unwrap();
    for format in [AudioFormat::G711Ulaw, AudioFormat::G711Alaw] {
        let decoded = format.decode(&format.encode(&narrow)).unwrap();
        let events = turns(TurnDetectionConfig::default(), 8_000, &decoded, false);
        let [
            TurnEvent::SpeechStarted { audio_start_ms },
            TurnEvent::SpeechStopped { audio_end_ms },
        ] = events[..]
        else {
            panic!("{format}: {events:?}");
        };
        assert!(audio_start_ms.abs_diff(260) <= 48, "{format}: {events:?}");
        assert!(audio_end_ms.abs_diff(2608) <= 96, "{format}: {events:?}");
    }
}

#[test]
fn frame_size_does_not_change_the_result() {
    let hello = Resampler::process_all(16_000, 24_000, &fixture("hello_16k.wav")).unwrap();
    for frame in [1, 7, 240, 480, 720, 4_800, hello.len()] {
        let mut detector = TurnDetector::new(
            TurnDetectionConfig::default(),
            Box::new(EarshotVad::new()),
            24_000,
        )
        .unwrap();
        let mut events = Vec::new();
        for piece in hello.chunks(frame) {
            detector.push(piece, &mut events).unwrap();
        }
        assert_eq!(events, vec![HELLO_START, HELLO_STOP], "frames of {frame}");
    }
}

#[test]
fn padding_and_silence_settings_move_the_bounds_exactly() {
    let hello = fixture("hello_16k.wav");
    let config = TurnDetectionConfig::default()
        .with_prefix_padding_ms(100)
        .with_silence_duration_ms(800);
    assert_eq!(
        turns(config, 16_000, &hello, false),
        vec![
            TurnEvent::SpeechStarted { audio_start_ms: 460 },
            // The last speech frame ends at 2096 ms; the stop is the first frame end at least 800 ms later.
            TurnEvent::SpeechStopped { audio_end_ms: 2896 },
        ]
    );
    let long_padding = TurnDetectionConfig::default().with_prefix_padding_ms(2_000);
    assert_eq!(
        turns(long_padding, 16_000, &hello, false)[0],
        TurnEvent::SpeechStarted { audio_start_ms: 0 }
    );
    // Silence longer than what follows the speech: the turn never ends.
    let long_silence = TurnDetectionConfig::default().with_silence_duration_ms(1_500);
    assert_eq!(turns(long_silence, 16_000, &hello, false), vec![HELLO_START]);
}

#[test]
fn a_higher_threshold_needs_clearer_speech() {
    let quiet = concat(&[
        synth::silence(16_000, 500),
        synth::synthetic_vowel(16_000, 1_000, 2_000),
        synth::silence(16_000, 1_000),
    ]);
    let relaxed = turns(TurnDetectionConfig::default(), 16_000, &quiet, false);
    assert_eq!(relaxed.len(), 2, "{relaxed:?}");
    let strict = turns(
        TurnDetectionConfig::default().with_threshold(0.95),
        16_000,
        &quiet,
        false,
    );
    assert_eq!(strict, vec![]);
    assert_eq!(
        turns(
            TurnDetectionConfig::default().with_threshold(0.0),
            16_000,
            &quiet,
            false
        )
        .len(),
        1
    );
}

#[test]
fn silence_and_noise_never_start_a_turn() {
    let config = TurnDetectionConfig::default();
    assert_eq!(
        turns(config.clone(), 24_000, &synth::silence(24_000, 3_000), false),
        vec![]
    );
    for amplitude in [100, 300, 1_000, 3_000, 8_000] {
        for seed in [1, 2, 3] {
            // Noise arriving after digital silence is the case that fools earshot without dither.
            let noise = concat(&[
                synth::silence(24_000, 500),
                synth::white_noise(24_000, 2_500, amplitude, seed),
            ]);
            assert_eq!(
                turns(config.clone(), 24_000, &noise, false),
                vec![],
                "noise {amplitude}/{seed}"
            );
        }
    }
    // Clicks: loud broadband bursts.
    for ms in [10, 50, 150, 300] {
        let click = concat(&[
            synth::silence(24_000, 500),
            synth::white_noise(24_000, ms, 20_000, 9),
            synth::silence(24_000, 800),
        ]);
        assert_eq!(
            turns(config.clone(), 24_000, &click, false),
            vec![],
            "click {ms} ms"
        );
    }
}

#[test]
fn short_bursts_and_backchannels_do_not_interrupt_the_agent() {
    let config = TurnDetectionConfig::default();
    let burst = |ms| {
        concat(&[
            synth::silence(16_000, 500),
            synth::synthetic_vowel(16_000, ms, 8_000),
            synth::silence(16_000, 800),
        ])
    };
    // A short voiced burst is a turn when the agent is silent…
    assert_eq!(turns(config.clone(), 16_000, &burst(150), false).len(), 2);
    // …but not while it speaks, and neither is a one-word "yeah".
    assert_eq!(turns(config.clone(), 16_000, &burst(150), true), vec![]);
    assert_eq!(turns(config.clone(), 16_000, &burst(300), true), vec![]);
    let yeah = fixture("yeah_16k.wav");
    assert_eq!(turns(config.clone(), 16_000, &yeah, true), vec![]);
    assert_eq!(
        turns(config.clone(), 16_000, &yeah, false).len(),
        2,
        "idle, \"yeah\" is an answer"
    );
    // Sustained speech interrupts, with the same bounds as when the agent is silent.
    assert_eq!(
        turns(config.clone(), 16_000, &fixture("hello_16k.wav"), true),
        vec![HELLO_START, HELLO_STOP]
    );
    assert_eq!(turns(config.clone(), 16_000, &burst(800), true).len(), 2);
    // The minimum is a setting.
    let eager = config.with_min_interrupt_duration_ms(250);
    assert_eq!(turns(eager, 16_000, &yeah, true).len(), 2);
}

#[test]
fn speech_started_is_decided_after_the_minimum_but_dated_at_the_onset() {
    let vowel = concat(&[
        synth::silence(24_000, 700),
        synth::synthetic_vowel(24_000, 1_500, 8_000),
        synth::silence(24_000, 800),
    ]);
    let mut starts = Vec::new();
    for (speaking, minimum) in [(false, 80u64), (true, 500)] {
        let mut detector = TurnDetector::new(
            TurnDetectionConfig::default(),
            Box::new(EarshotVad::new()),
            24_000,
        )
        .unwrap();
        detector.set_agent_speaking(speaking);
        let mut events = Vec::new();
        let mut decided_at = None;
        for frame in vowel.chunks(480) {
            detector.push(frame, &mut events).unwrap();
            if decided_at.is_none() && !events.is_empty() {
                decided_at = Some(detector.input_ms());
                assert!(detector.in_speech());
            }
        }
        let TurnEvent::SpeechStarted { audio_start_ms } = events[0] else {
            panic!("{events:?}")
        };
        starts.push(audio_start_ms);
        let onset = audio_start_ms + 300;
        assert!((700..=760).contains(&onset), "{events:?}");
        // Decided once `minimum` of speech is in, plus at most the resampler's latency (under 15 ms), one VAD frame
        // and one 20 ms input frame.
        let decided_at = decided_at.unwrap();
        assert!(decided_at >= onset + minimum, "{decided_at}");
        assert!(decided_at <= onset + minimum + 15 + 16 + 20, "{decided_at}");
    }
    assert_eq!(starts[0], starts[1], "the same onset whoever is speaking");
}

#[test]
fn timeline_continues_from_an_origin_and_across_reset() {
    let hello = fixture("hello_16k.wav");
    let mut detector = TurnDetector::new(
        TurnDetectionConfig::default(),
        Box::new(EarshotVad::new()),
        16_000,
    )
    .unwrap()
    .with_origin_ms(10_000);
    let mut events = Vec::new();
    detector.push(&hello, &mut events).unwrap();
    assert_eq!(
        events,
        vec![
            TurnEvent::SpeechStarted {
                audio_start_ms: 10_260
            },
            TurnEvent::SpeechStopped { audio_end_ms: 12_608 }
        ]
    );
    assert_eq!(detector.input_ms(), 10_000 + 2_977);

    // A reset mid-speech (buffer cleared) drops the turn in progress; the next one is dated on the same timeline.
    let mut detector = TurnDetector::new(
        TurnDetectionConfig::default(),
        Box::new(EarshotVad::new()),
        16_000,
    )
    .unwrap();
    let mut events = Vec::new();
    let (head, _) = hello.split_at(16 * 1_000);
    detector.push(head, &mut events).unwrap();
    assert_eq!(events, vec![HELLO_START]);
    detector.reset();
    assert!(!detector.in_speech());
    events.clear();
    detector.push(&hello, &mut events).unwrap();
    assert_eq!(
        events,
        vec![
            TurnEvent::SpeechStarted {
                audio_start_ms: 1_000 + 260
            },
            TurnEvent::SpeechStopped {
                audio_end_ms: 1_000 + 2_608
            }
        ]
    );
}

#[test]
fn config_is_validated() {
    let vad = || Box::new(EarshotVad::new());
    for bad in [
        TurnDetectionConfig::default().with_threshold(1.5),
        TurnDetectionConfig::default().with_threshold(-0.1),
        TurnDetectionConfig::default().with_threshold(f32::NAN),
        TurnDetectionConfig::default().with_silence_duration_ms(600_000),
    ] {
        assert!(matches!(
            TurnDetector::new(bad, vad(), 24_000),
            Err(Error::InvalidConfig { .. })
        ));
    }
    assert!(matches!(
        TurnDetector::new(TurnDetectionConfig::default(), vad(), 11_025),
        Err(Error::UnsupportedFormat(_))
    ));
    let mut detector = TurnDetector::new(TurnDetectionConfig::default(), vad(), 24_000).unwrap();
    assert!(
        detector
            .set_config(TurnDetectionConfig::default().with_threshold(2.0))
            .is_err()
    );
    assert_eq!(detector.config(), &TurnDetectionConfig::default());
    let json = serde_json::to_value(TurnDetectionConfig::default()).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"threshold": 0.5, "prefix_padding_ms": 300, "silence_duration_ms": 500,
            "min_speech_duration_ms": 80, "min_interrupt_duration_ms": 500})
    );
}

#[test]
fn session_state_can_move_between_threads() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<TurnDetector>();
    send_sync::<Resampler>();
    send_sync::<avb_voice::audio::InputAudioBuffer>();
    send_sync::<EarshotVad>();
    send_sync::<avb_voice::adapters::ScriptedStt>();
    send_sync::<avb_voice::adapters::ToneTts>();
    send_sync::<avb_voice::adapters::ScriptedLlm>();
    send::<Box<dyn avb_voice::stt::SttStream>>();
    send::<Box<dyn avb_voice::tts::TtsStream>>();
    send::<Box<dyn avb_voice::llm::ChatStream>>();
}

/// Runs `samples` in 20 ms frames through a detector that scores every frame and one that skips settled quiet
/// frames; returns both event lists.
fn gated_and_ungated(samples: &[i16], rate: u32, agent_speaking: bool) -> [Vec<TurnEvent>; 2] {
    [false, true].map(|every| {
        let detector =
            TurnDetector::new(TurnDetectionConfig::default(), Box::new(EarshotVad::new()), rate).unwrap();
        let mut detector = if every {
            detector.scoring_every_frame()
        } else {
            detector
        };
        detector.set_agent_speaking(agent_speaking);
        let mut events = Vec::new();
        for frame in samples.chunks(rate as usize / 50) {
            detector.push(frame, &mut events).unwrap();
        }
        events
    })
}

#[test]
fn skipping_quiet_frames_keeps_the_turns_within_one_detector_frame() {
    let hello = fixture("hello_16k.wav");
    let yeah = fixture("yeah_16k.wav");
    let gap = |ms| synth::silence(16_000, ms);
    let quiet_noise = |ms, seed| synth::white_noise(16_000, ms, 90, seed);
    let cases: Vec<(&str, Vec<i16>, bool)> = vec![
        ("hello", hello.clone(), false),
        ("hello, agent speaking", hello.clone(), true),
        (
            "two turns",
            concat(&[hello.clone(), gap(1_500), hello.clone()]),
            false,
        ),
        (
            "turn, quiet noise, turn",
            concat(&[hello.clone(), quiet_noise(2_000, 4), hello.clone()]),
            false,
        ),
        (
            "yeah after long silence",
            concat(&[gap(3_000), yeah.clone(), gap(1_000)]),
            false,
        ),
        (
            "yeah while speaking",
            concat(&[gap(3_000), yeah, gap(1_000)]),
            true,
        ),
        (
            "noise after silence",
            concat(&[gap(2_000), synth::white_noise(16_000, 2_500, 1_000, 2)]),
            false,
        ),
        (
            "click",
            concat(&[gap(2_000), synth::white_noise(16_000, 50, 20_000, 9), gap(800)]),
            false,
        ),
        (
            "vowel",
            concat(&[gap(2_000), synth::synthetic_vowel(16_000, 400, 8_000), gap(800)]),
            false,
        ),
    ];
    let cases = cases.into_iter().flat_map(|(name, samples, speaking)| {
        // At 24 kHz quiet input is not even resampled (`Resampler::skip_silence`).
        let upsampled = Resampler::process_all(16_000, 24_000, &samples).unwrap();
        [
            (format!("{name} (16 kHz)"), samples, 16_000, speaking),
            (format!("{name} (24 kHz)"), upsampled, 24_000, speaking),
        ]
    });
    for (name, samples, rate, speaking) in cases {
        let [gated, every] = gated_and_ungated(&samples, rate, speaking);
        // The same turns; a bound may move by one detector frame (see `TurnDetector`, "Quiet frames").
        assert_eq!(gated.len(), every.len(), "{name}: {gated:?} vs {every:?}");
        for (a, b) in gated.iter().zip(&every) {
            let (a, b) = match (a, b) {
                (
                    TurnEvent::SpeechStarted { audio_start_ms: a },
                    TurnEvent::SpeechStarted { audio_start_ms: b },
                )
                | (
                    TurnEvent::SpeechStopped { audio_end_ms: a },
                    TurnEvent::SpeechStopped { audio_end_ms: b },
                ) => (*a, *b),
                _ => panic!("{name}: {gated:?} vs {every:?}"),
            };
            assert!(a.abs_diff(b) <= 16, "{name}: {gated:?} vs {every:?}");
        }
    }
    // The cases are not vacuous: the speech ones do produce turns.
    let [gated, _] = gated_and_ungated(&concat(&[hello.clone(), gap(1_500), hello]), 16_000, false);
    assert_eq!(gated.len(), 4);
}
