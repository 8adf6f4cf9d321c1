//! Per-validator flow control for outbound consensus messages.
//!
//! libp2p request-response opens one stream per message and, past its concurrent-stream limit,
//! fails new streams; its own per-connection queue is unbounded. The outbox sits in front of it:
//! at most `max_in_flight` messages per validator are on the wire; the rest wait in a FIFO capped
//! both in count and in bytes; beyond that new messages are refused (and the caller counts them).

use std::collections::VecDeque;

/// Limits of one validator's outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OutboxLimits {
    /// Messages handed to request-response and not yet acknowledged or failed.
    pub(crate) max_in_flight: usize,
    /// Messages waiting for an in-flight slot.
    pub(crate) max_queued: usize,
    /// Bytes waiting for an in-flight slot.
    pub(crate) max_queued_bytes: usize,
}

/// What to do with a message offered to the outbox.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Admit {
    /// Send it now (a slot was taken).
    SendNow(Vec<u8>),
    /// Queued behind the in-flight messages.
    Queued,
    /// The queue is full; the message was refused.
    Full,
}

/// One validator's outbox.
///
/// Invariants: `in_flight <= limits.max_in_flight`; `queue.len() <= limits.max_queued`;
/// `queued_bytes` is the sum of the queued lengths and `<= limits.max_queued_bytes`; messages
/// leave the queue in the order they entered it.
#[derive(Debug)]
pub(crate) struct Outbox {
    limits: OutboxLimits,
    in_flight: usize,
    queue: VecDeque<Vec<u8>>,
    queued_bytes: usize,
}

impl Outbox {
    pub(crate) fn new(limits: OutboxLimits) -> Self {
        Self {
            limits,
            in_flight: 0,
            queue: VecDeque::new(),
            queued_bytes: 0,
        }
    }

    /// Offers a message: take a slot, queue it, or refuse it.
    pub(crate) fn admit(&mut self, bytes: Vec<u8>) -> Admit {
        if self.in_flight < self.limits.max_in_flight && self.queue.is_empty() {
            self.in_flight += 1;
            return Admit::SendNow(bytes);
        }
        let fits = self.queue.len() < self.limits.max_queued
            && self.queued_bytes.saturating_add(bytes.len()) <= self.limits.max_queued_bytes;
        if !fits {
            return Admit::Full;
        }
        self.queued_bytes += bytes.len();
        self.queue.push_back(bytes);
        Admit::Queued
    }

    /// An in-flight message was acknowledged or failed: frees its slot and returns the next
    /// queued message to send, which takes the slot again.
    pub(crate) fn complete(&mut self) -> Option<Vec<u8>> {
        self.in_flight = self.in_flight.saturating_sub(1);
        self.next()
    }

    /// The next queued message if a slot is free (the message takes the slot).
    pub(crate) fn next(&mut self) -> Option<Vec<u8>> {
        if self.in_flight >= self.limits.max_in_flight {
            return None;
        }
        let bytes = self.queue.pop_front()?;
        self.queued_bytes -= bytes.len();
        self.in_flight += 1;
        Some(bytes)
    }

    /// The validator disconnected: in-flight messages are lost with their connection and queued
    /// ones are discarded. Returns how many were queued.
    pub(crate) fn reset(&mut self) -> usize {
        let dropped = self.queue.len();
        self.queue.clear();
        self.queued_bytes = 0;
        self.in_flight = 0;
        dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outbox() -> Outbox {
        Outbox::new(OutboxLimits {
            max_in_flight: 2,
            max_queued: 2,
            max_queued_bytes: 5,
        })
    }

    #[test]
    fn fills_slots_then_queue_then_refuses() {
        let mut o = outbox();
        assert_eq!(o.admit(vec![1]), Admit::SendNow(vec![1]));
        assert_eq!(o.admit(vec![2]), Admit::SendNow(vec![2]));
        assert_eq!(o.admit(vec![3; 3]), Admit::Queued);
        assert_eq!(o.admit(vec![4; 3]), Admit::Full, "byte cap");
        assert_eq!(o.admit(vec![5; 2]), Admit::Queued);
        assert_eq!(o.admit(vec![6]), Admit::Full, "count cap");
        assert_eq!(o.complete(), Some(vec![3; 3]), "FIFO");
        assert_eq!(o.complete(), Some(vec![5; 2]));
        assert_eq!(o.complete(), None);
        assert_eq!(o.admit(vec![7]), Admit::SendNow(vec![7]));
    }

    #[test]
    fn queued_messages_keep_their_turn() {
        let mut o = outbox();
        let _ = o.admit(vec![1]);
        let _ = o.admit(vec![2]);
        assert_eq!(o.admit(vec![3]), Admit::Queued);
        // A slot frees but nobody pumps yet: a new message must not overtake the queued one.
        o.in_flight -= 1;
        assert_eq!(o.admit(vec![4]), Admit::Queued);
        assert_eq!(o.next(), Some(vec![3]));
        assert_eq!(o.next(), None);
    }

    #[test]
    fn reset_discards_and_frees() {
        let mut o = outbox();
        let _ = o.admit(vec![1]);
        let _ = o.admit(vec![2]);
        let _ = o.admit(vec![3]);
        assert_eq!(o.reset(), 1);
        assert_eq!(o.admit(vec![4]), Admit::SendNow(vec![4]));
        // Late completions of lost messages never underflow.
        assert_eq!(o.complete(), None);
        assert_eq!(o.complete(), None);
        assert_eq!(o.admit(vec![5]), Admit::SendNow(vec![5]));
    }
}
