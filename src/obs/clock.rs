//! Where latchkey's time comes from: one `Clock`, built with the `App` and
//! handed to whatever needs "now" (the memory store, sign-in, the gate),
//! never read from a global. In production it is the system clock; tests
//! build a manual one they move by hand (`Clock::manual`, `advance`), so a
//! ten-minute link or an idle session ends in an instant, exactly when the
//! test says, without sleeping.
//!
//! Times are Unix milliseconds (`now_ms`), the unit every record and the
//! store contract use: wall time, not monotonic, because session and token
//! ends are absolute times shared by every instance behind one Redis. A
//! clone shares its original (a manual clock moved through one clone moves
//! for all); reading it costs a system call (system) or one atomic load
//! (manual). Durations measured within one process (drain, timeouts) keep
//! using `Instant`: they are not "now" anyone stores.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// A source of the current time, cheap to clone and to read.
#[derive(Clone, Debug, Default)]
pub struct Clock(Source);

#[derive(Clone, Debug, Default)]
enum Source {
    #[default]
    System,
    /// Unix ms, moved only by [`Clock::advance`].
    Manual(Arc<AtomicU64>),
}

impl Clock {
    /// The system's wall clock.
    pub fn system() -> Clock {
        Clock(Source::System)
    }

    /// A clock that stands still at `start_ms` (Unix ms) until advanced.
    pub fn manual(start_ms: u64) -> Clock {
        Clock(Source::Manual(Arc::new(AtomicU64::new(start_ms))))
    }

    /// Milliseconds since the Unix epoch.
    #[inline]
    pub fn now_ms(&self) -> u64 {
        match &self.0 {
            Source::System => crate::unix_ms(SystemTime::now()),
            Source::Manual(ms) => ms.load(Ordering::Acquire),
        }
    }

    /// Moves a manual clock (and every clone of it) forward by `by`. Real
    /// time cannot be moved: on the system clock this does nothing.
    pub fn advance(&self, by: Duration) {
        if let Source::Manual(ms) = &self.0 {
            let by = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
            // Saturating, so an absurd step cannot wrap time around.
            let _ = ms.fetch_update(Ordering::AcqRel, Ordering::Acquire, |t| {
                Some(t.saturating_add(by))
            });
        }
    }

    /// Whether this clock only moves when told to (a test's clock).
    pub fn is_manual(&self) -> bool {
        matches!(self.0, Source::Manual(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_advanced_and_for_every_clone() {
        let clock = Clock::manual(1_000);
        let clone = clock.clone();
        assert_eq!(clock.now_ms(), 1_000);
        clone.advance(Duration::from_millis(250));
        assert_eq!(clock.now_ms(), 1_250);
        clock.advance(Duration::MAX);
        assert_eq!(clone.now_ms(), u64::MAX, "saturates, never wraps");
        assert!(clock.is_manual());
    }

    #[test]
    fn the_system_clock_is_wall_time_and_cannot_be_moved() {
        let clock = Clock::system();
        let before = crate::unix_ms(SystemTime::now());
        clock.advance(Duration::from_secs(3600));
        let now = clock.now_ms();
        let after = crate::unix_ms(SystemTime::now());
        assert!(before <= now && now <= after, "{before} {now} {after}");
        assert!(!clock.is_manual());
    }
}
