//! Capped exponential reconnect backoff.

use std::time::Duration;

/// Delays `min, 2·min, 4·min, …` capped at `max`; [`Backoff::reset`] after a success.
///
/// # Invariant
/// Every delay returned is within `min..=max` (given `min <= max`).
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    /// A backoff between `min` and `max` (swapped if given the wrong way round).
    pub fn new(min: Duration, max: Duration) -> Self {
        let (min, max) = if min <= max { (min, max) } else { (max, min) };
        Backoff {
            min,
            max,
            next: min,
        }
    }

    /// The delay before the next attempt; doubles the one after.
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = self.next.saturating_mul(2).min(self.max);
        delay
    }

    /// Back to `min` (call once connected).
    pub fn reset(&mut self) {
        self.next = self.min;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_and_resets() {
        let ms = Duration::from_millis;
        let mut b = Backoff::new(ms(100), ms(1000));
        let seen: Vec<_> = (0..6).map(|_| b.next_delay()).collect();
        assert_eq!(
            seen,
            [ms(100), ms(200), ms(400), ms(800), ms(1000), ms(1000)]
        );
        b.reset();
        assert_eq!(b.next_delay(), ms(100));
        let mut swapped = Backoff::new(ms(5), ms(1));
        assert_eq!(swapped.next_delay(), ms(1));
    }
}
