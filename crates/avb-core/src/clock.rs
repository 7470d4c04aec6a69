//! Time and id generation as ports, so tests can fix both.

use chrono::{DateTime, Duration, Utc};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use uuid::Uuid;

/// Wall-clock time.
///
/// # Contract
/// - `now` never goes backwards by more than the host clock does; [`SystemClock`] is the only reader of the host
///   clock in the workspace (clippy bans the others).
pub trait Clock: Send + Sync + std::fmt::Debug + 'static {
    /// The current UTC time.
    fn now(&self) -> DateTime<Utc>;
}

/// The host's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // the one sanctioned clock read
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that only moves when told to: for tests of expiry, windows and ordering.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<DateTime<Utc>>,
}

impl ManualClock {
    /// A clock stopped at `start`.
    pub fn new(start: DateTime<Utc>) -> Self {
        Self {
            now: Mutex::new(start),
        }
    }

    /// Moves the clock forward (or backward, with a negative duration).
    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *now += by;
    }

    /// Sets the clock.
    pub fn set(&self, to: DateTime<Utc>) {
        *self.now.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = to;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Source of new ids.
///
/// # Contract
/// - Ids are unique for the life of the process (and, for [`UuidV7Ids`], globally).
pub trait IdGen: Send + Sync + std::fmt::Debug + 'static {
    /// A new UUID.
    fn new_uuid(&self) -> Uuid;
}

/// Time-ordered UUID v7 ids: new rows land at the right edge of B-tree indexes.
#[derive(Debug, Clone, Copy, Default)]
pub struct UuidV7Ids;

impl IdGen for UuidV7Ids {
    fn new_uuid(&self) -> Uuid {
        Uuid::now_v7()
    }
}

/// Deterministic ids (`00000000-0000-4000-8000-<counter>` shape) for reproducible tests.
#[derive(Debug, Default)]
pub struct SequentialIds {
    next: AtomicU64,
}

impl IdGen for SequentialIds {
    fn new_uuid(&self) -> Uuid {
        let n = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        Uuid::from_u64_pair(0x0000_0000_0000_4000, 0x8000_0000_0000_0000 | n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let start = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let clock = ManualClock::new(start);
        assert_eq!(clock.now(), start);
        clock.advance(Duration::seconds(5));
        assert_eq!(clock.now(), start + Duration::seconds(5));
    }

    #[test]
    fn sequential_ids_are_unique() {
        let ids = SequentialIds::default();
        assert_ne!(ids.new_uuid(), ids.new_uuid());
    }
}
