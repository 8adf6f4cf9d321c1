//! The driver's replica timer: when to deliver the next [`Input::Tick`](crate::protocol::Input).
//!
//! # Invariants
//! - **The latest request replaces earlier ones** (the replica's `ScheduleTick` contract, audit
//!   L3): [`TickTimer::schedule`] overwrites the deadline, whether it is earlier or later.
//! - **Monotonic** (audit L11): a request for wall-clock time `at_ms` made at wall time `now_ms`
//!   becomes a deadline on the monotonic clock, `now + (at_ms - now_ms)`, computed once. Later
//!   steps of the wall clock (NTP) do not move it; the wall clock is only read for the
//!   timestamps handed to the replica.
//! - Without a request the driver still ticks after [`IDLE_TICK`], which is harmless (extra
//!   ticks are allowed).

use std::time::Duration;

use tokio::time::Instant;

/// How long the driver waits for a tick when the replica asked for none.
pub(crate) const IDLE_TICK: Duration = Duration::from_secs(1);

/// The next tick's deadline on the monotonic clock.
#[derive(Debug, Default)]
pub(crate) struct TickTimer {
    deadline: Option<Instant>,
}

impl TickTimer {
    /// The replica asked for a tick at wall time `at_ms`; `now_ms` and `now` are the current wall
    /// and monotonic times. Replaces any earlier request.
    pub(crate) fn schedule(&mut self, at_ms: u64, now_ms: u64, now: Instant) {
        self.deadline = Some(now + Duration::from_millis(at_ms.saturating_sub(now_ms)));
    }

    /// When to deliver the next tick, given the monotonic time `now`.
    pub(crate) fn deadline(&self, now: Instant) -> Instant {
        self.deadline.unwrap_or(now + IDLE_TICK)
    }

    /// The tick was delivered.
    pub(crate) fn fired(&mut self) {
        self.deadline = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_latest_request_replaces_earlier_ones() {
        let t0 = Instant::now();
        let mut timer = TickTimer::default();
        timer.schedule(10_300, 10_000, t0);
        timer.schedule(12_000, 10_000, t0);
        assert_eq!(timer.deadline(t0), t0 + Duration::from_millis(2_000));
        timer.schedule(10_100, 10_000, t0);
        assert_eq!(timer.deadline(t0), t0 + Duration::from_millis(100));
    }

    #[test]
    fn deadline_is_fixed_on_the_monotonic_clock_when_requested() {
        let t0 = Instant::now();
        let mut timer = TickTimer::default();
        // Asked at wall 10 000 ms for 10 500 ms: half a second later on the monotonic clock,
        // however the wall clock moves afterwards (it is not an input any more).
        timer.schedule(10_500, 10_000, t0);
        let later = t0 + Duration::from_millis(200);
        assert_eq!(timer.deadline(later), t0 + Duration::from_millis(500));
        // A request in the past is due at once.
        timer.schedule(9_000, 10_000, t0);
        assert_eq!(timer.deadline(later), t0);
    }

    #[test]
    fn without_a_request_the_driver_ticks_after_the_idle_wait() {
        let t0 = Instant::now();
        let mut timer = TickTimer::default();
        assert_eq!(timer.deadline(t0), t0 + IDLE_TICK);
        timer.schedule(10_500, 10_000, t0);
        timer.fired();
        assert_eq!(timer.deadline(t0), t0 + IDLE_TICK);
    }
}
