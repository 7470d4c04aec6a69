//! A timer a stream keeps for all its waits.
//!
//! The session engine polls its response's streams inside `select!` next to the client's frames, so with a
//! response in progress every 20 ms audio frame drops the stream's pending call and makes a new one. A fresh
//! `tokio::time::sleep_until` per call registers a timer in the runtime's wheel and the dropped one removes it:
//! two locked timer-wheel operations per frame per session. A [`Deadline`] keeps one timer and only re-arms it
//! when the instant changes, so polling the same wait again costs a check.

use std::pin::Pin;
use tokio::time::{Instant, Sleep};

/// One reusable timer (see the [module docs](self)).
#[derive(Debug, Default)]
pub(crate) struct Deadline {
    sleep: Option<Pin<Box<Sleep>>>,
}

impl Deadline {
    /// Completes at `at` (at once if it is past). Cancel-safe: dropping the future keeps the timer armed for
    /// the next call with the same instant.
    pub(crate) async fn until(&mut self, at: Instant) {
        let sleep = match &mut self.sleep {
            Some(sleep) => {
                if sleep.deadline() != at {
                    sleep.as_mut().reset(at);
                }
                sleep
            }
            None => self.sleep.insert(Box::pin(tokio::time::sleep_until(at))),
        };
        sleep.as_mut().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn waits_until_each_instant_and_survives_dropped_waits() {
        let mut deadline = Deadline::default();
        let start = Instant::now();
        deadline.until(start + Duration::from_millis(100)).await;
        assert_eq!(Instant::now() - start, Duration::from_millis(100));
        // A wait dropped before its instant, then resumed: still ends at that instant.
        let at = start + Duration::from_millis(250);
        let dropped = tokio::time::timeout(Duration::from_millis(50), deadline.until(at)).await;
        assert!(dropped.is_err());
        deadline.until(at).await;
        assert_eq!(Instant::now(), at);
        // A past instant completes at once; an earlier one than the armed one is honoured.
        deadline.until(start).await;
        assert_eq!(Instant::now(), at);
    }
}
