//! The runtime's one source of time: every task reads the [`Clock`] it is handed in
//! [`Io::clock`](crate::runtime::Io::clock), and nothing else in the crate reads a clock.
//!
//! * [`WallClock`]: the system clock, in production (the only `SystemTime::now` in the crate;
//!   `meter-bridge/clippy.toml` bans it everywhere else).
//! * [`TokioClock`]: UTC time that advances with [`tokio::time::Instant`], from a start you
//!   choose. Under `tokio::time::pause` (or `#[tokio::test(start_paused = true)]`) tokio's
//!   time only moves when every task waits on a timer, and then jumps straight to the next
//!   deadline, so a test runs a whole interval's planning and follow-ups in milliseconds of real
//!   time, and the times the bridge stamps and plans with are exactly reproducible.
//!
//! The tasks wait with [`tokio::time::sleep`] for [`Clock::until`] a deadline: with
//! [`TokioClock`] a sleep and the clock move together; with [`WallClock`] a wall-clock step
//! (NTP) is noticed at the next deadline, as before.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

/// Where the runtime's tasks read the time.
pub trait Clock: Debug + Send + Sync + 'static {
    /// The current time, UTC.
    fn now(&self) -> DateTime<Utc>;

    /// How long until `t` by this clock; zero if `t` has passed.
    fn until(&self, t: DateTime<Utc>) -> Duration {
        (t - self.now()).to_std().unwrap_or(Duration::ZERO)
    }
}

/// A clock as the runtime's tasks share it.
pub type SharedClock = Arc<dyn Clock>;

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct WallClock;

impl WallClock {
    /// The wall clock, ready for [`Io::clock`](crate::runtime::Io::clock).
    pub fn shared() -> SharedClock {
        Arc::new(WallClock)
    }
}

impl Clock for WallClock {
    #[allow(clippy::disallowed_methods)] // The crate's one wall-clock read.
    fn now(&self) -> DateTime<Utc> {
        DateTime::<Utc>::from(std::time::SystemTime::now())
    }
}

/// UTC time on tokio's clock: `start` at the moment it was made, then advancing with
/// [`tokio::time::Instant`] (module docs). Paused tokio time pauses it too.
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    start: DateTime<Utc>,
    origin: tokio::time::Instant,
}

impl TokioClock {
    /// A clock that reads `start` now. Call it inside a tokio runtime when time is paused
    /// (`tokio::time::Instant::now` then reads the paused clock).
    pub fn starting_at(start: DateTime<Utc>) -> TokioClock {
        TokioClock {
            start,
            origin: tokio::time::Instant::now(),
        }
    }

    /// [`TokioClock::starting_at`], shared.
    pub fn shared(start: DateTime<Utc>) -> SharedClock {
        Arc::new(TokioClock::starting_at(start))
    }
}

impl Clock for TokioClock {
    fn now(&self) -> DateTime<Utc> {
        let elapsed = tokio::time::Instant::now().saturating_duration_since(self.origin);
        self.start + TimeDelta::from_std(elapsed).unwrap_or(TimeDelta::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_tokio_clock_moves_with_paused_time_only() {
        let start = DateTime::from_timestamp(1_790_000_000, 0).unwrap();
        let clock = TokioClock::starting_at(start);
        assert_eq!(clock.now(), start);
        let real = std::time::Instant::now();
        tokio::time::sleep(Duration::from_secs(3_600)).await;
        assert_eq!(clock.now(), start + TimeDelta::hours(1));
        assert!(
            real.elapsed() < Duration::from_secs(1),
            "no real hour passed"
        );
        assert_eq!(
            clock.until(start + TimeDelta::minutes(61)),
            Duration::from_secs(60)
        );
        assert_eq!(clock.until(start), Duration::ZERO, "the past is zero away");
    }

    #[test]
    fn the_wall_clock_is_near_the_system_time() {
        let now = WallClock.now();
        assert!(now.timestamp() > 1_700_000_000);
    }
}
