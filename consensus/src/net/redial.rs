//! Exponential redial backoff per validator.

use std::{collections::HashMap, hash::Hash, time::Duration};

/// Per-key exponential backoff: `initial`, `2·initial`, `4·initial`, ... capped at `max`, reset
/// to `initial` after a successful connection.
///
/// Invariant: every delay returned lies in `initial..=max`. Holds no clock: the caller sleeps.
#[derive(Debug, Clone)]
pub(crate) struct Backoff<K> {
    initial: Duration,
    max: Duration,
    next: HashMap<K, Duration>,
}

impl<K: Eq + Hash> Backoff<K> {
    /// Requires `initial <= max` (checked by config validation).
    pub(crate) fn new(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max: max.max(initial),
            next: HashMap::new(),
        }
    }

    /// The delay to wait before the next dial of `key`; doubles the following one.
    pub(crate) fn next_delay(&mut self, key: K) -> Duration {
        let slot = self.next.entry(key).or_insert(self.initial);
        let delay = *slot;
        *slot = delay.saturating_mul(2).min(self.max);
        delay
    }

    /// Forgets the failures of `key` (after a connection succeeded).
    pub(crate) fn reset(&mut self, key: &K) {
        self.next.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_and_resets() {
        let ms = Duration::from_millis;
        let mut b = Backoff::new(ms(100), ms(500));
        let seq: Vec<_> = (0..5).map(|_| b.next_delay("a")).collect();
        assert_eq!(seq, vec![ms(100), ms(200), ms(400), ms(500), ms(500)]);
        assert_eq!(b.next_delay("b"), ms(100), "keys are independent");
        b.reset(&"a");
        assert_eq!(b.next_delay("a"), ms(100));
    }
}
