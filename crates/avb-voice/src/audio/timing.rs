//! Exact duration accounting: positions are sample counts, milliseconds are derived from them on demand.
//!
//! `audio_start_ms` and `audio_end_ms` are integers measured from the first sample of the session. Adding up
//! per-frame float milliseconds drifts (22.05 kHz frames are not whole milliseconds); dividing a sample counter
//! does not.

/// Milliseconds covered by `samples` samples at `sample_rate`, rounded down (0 for a rate of 0).
pub fn samples_to_ms(samples: u64, sample_rate: u32) -> u64 {
    if sample_rate == 0 {
        return 0;
    }
    let ms = u128::from(samples) * 1000 / u128::from(sample_rate);
    u64::try_from(ms).unwrap_or(u64::MAX)
}

/// Samples in `ms` milliseconds at `sample_rate`, rounded down.
pub fn ms_to_samples(ms: u64, sample_rate: u32) -> u64 {
    let samples = u128::from(ms) * u128::from(sample_rate) / 1000;
    u64::try_from(samples).unwrap_or(u64::MAX)
}

/// Converts a sample position from one rate to another, rounding down.
pub fn rescale_samples(samples: u64, from_rate: u32, to_rate: u32) -> u64 {
    if from_rate == 0 {
        return 0;
    }
    let scaled = u128::from(samples) * u128::from(to_rate) / u128::from(from_rate);
    u64::try_from(scaled).unwrap_or(u64::MAX)
}

/// A running position in a mono stream: how many samples have passed at a fixed rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SampleClock {
    sample_rate: u32,
    samples: u64,
}

impl SampleClock {
    /// A clock at position zero.
    pub const fn new(sample_rate: u32) -> Self {
        Self {
            sample_rate,
            samples: 0,
        }
    }

    /// A clock that starts at `ms` (a detector created mid-session continues the session's timeline).
    pub fn starting_at_ms(sample_rate: u32, ms: u64) -> Self {
        Self {
            sample_rate,
            samples: ms_to_samples(ms, sample_rate),
        }
    }

    /// Moves the clock forward by `samples`.
    pub fn advance(&mut self, samples: usize) {
        self.samples = self
            .samples
            .saturating_add(u64::try_from(samples).unwrap_or(u64::MAX));
    }

    /// The sample rate.
    pub const fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    /// Samples passed.
    pub const fn samples(&self) -> u64 {
        self.samples
    }

    /// Milliseconds passed, rounded down.
    pub fn ms(&self) -> u64 {
        samples_to_ms(self.samples, self.sample_rate)
    }

    /// Milliseconds at sample position `position` of this clock's stream, rounded down.
    pub fn ms_at(&self, position: u64) -> u64 {
        samples_to_ms(position, self.sample_rate)
    }
}
