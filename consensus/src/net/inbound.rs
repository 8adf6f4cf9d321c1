//! The inbound consensus queue, fair between validators (audit M1): one bounded queue per
//! validator, drained round-robin, plus one bounded queue for the adapter's own events (peer
//! up/down, listen addresses).
//!
//! # Invariants
//! - A validator's messages only ever wait in, and are only ever dropped from, its own queue:
//!   a validator that floods fills its queue and loses its own newest messages, while every
//!   other validator keeps its full share.
//! - Every queue is bounded: `per_validator` messages per validator (the configured total
//!   `message_capacity` split evenly between the other validators, at least one each) and
//!   `max(16, 4 × validators)` adapter events.
//! - The reader takes adapter events first (they are rare and cheap), then one message from
//!   each validator with something queued in turn, so a message waits behind at most one
//!   message per other validator for each of its own queued before it.
//! - Once the sending side is dropped and every queue is empty, reading returns `None`.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use tokio::sync::mpsc::error::TryRecvError;

use super::events::Event;

#[derive(Debug)]
struct State {
    control: VecDeque<Event>,
    control_capacity: usize,
    peers: Vec<VecDeque<Event>>,
    per_validator: usize,
    /// The validator whose turn is next.
    next: usize,
    sender_alive: bool,
    waker: Option<Waker>,
}

impl State {
    fn pop(&mut self) -> Option<Event> {
        if let Some(event) = self.control.pop_front() {
            return Some(event);
        }
        let n = self.peers.len();
        for offset in 0..n {
            let index = (self.next + offset) % n;
            if let Some(event) = self.peers[index].pop_front() {
                self.next = (index + 1) % n;
                return Some(event);
            }
        }
        None
    }
}

type Shared = Arc<Mutex<State>>;

fn lock(shared: &Shared) -> MutexGuard<'_, State> {
    // The critical sections cannot panic half-way; a poisoned lock still holds a valid state.
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A fair inbound queue for validators `0..validators`, each with room for `per_validator`
/// messages (at least one).
pub(crate) fn fair_inbound(
    validators: usize,
    per_validator: usize,
) -> (InboundSender, ConsensusEvents) {
    let validators = validators.max(1);
    let shared = Arc::new(Mutex::new(State {
        control: VecDeque::new(),
        control_capacity: (4 * validators).max(16),
        peers: (0..validators).map(|_| VecDeque::new()).collect(),
        per_validator: per_validator.max(1),
        next: 0,
        sender_alive: true,
        waker: None,
    }));
    (
        InboundSender {
            shared: Arc::clone(&shared),
        },
        ConsensusEvents { shared },
    )
}

/// The event loop's side.
#[derive(Debug)]
pub(crate) struct InboundSender {
    shared: Shared,
}

impl InboundSender {
    /// Queues `event` without waiting: a [`Event::Message`] in its sender's queue, anything
    /// else in the adapter's. Returns `false` (and drops the event) if that queue is full.
    pub(crate) fn try_push(&self, event: Event) -> bool {
        let mut state = lock(&self.shared);
        let queued = match &event {
            Event::Message { from, .. } => {
                let per_validator = state.per_validator;
                match state.peers.get_mut(usize::from(from.0)) {
                    Some(queue) if queue.len() < per_validator => {
                        queue.push_back(event);
                        true
                    }
                    _ => false,
                }
            }
            _ if state.control.len() < state.control_capacity => {
                state.control.push_back(event);
                true
            }
            _ => false,
        };
        if queued {
            if let Some(waker) = state.waker.take() {
                waker.wake();
            }
        }
        queued
    }
}

impl Drop for InboundSender {
    fn drop(&mut self) {
        let mut state = lock(&self.shared);
        state.sender_alive = false;
        if let Some(waker) = state.waker.take() {
            waker.wake();
        }
    }
}

/// The node's side: consensus events, fair between validators (see the module docs).
#[derive(Debug)]
pub struct ConsensusEvents {
    shared: Shared,
}

impl ConsensusEvents {
    /// Waits for the next event. Returns `None` once the event loop has stopped and every
    /// queue is drained.
    ///
    /// # Cancel safety
    /// Cancel-safe: an event is taken from its queue only when the future completes.
    pub async fn recv(&mut self) -> Option<Event> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// Takes the next event without waiting.
    ///
    /// # Errors
    /// [`TryRecvError::Empty`] if nothing is queued, [`TryRecvError::Disconnected`] if the event
    /// loop has stopped and every queue is drained.
    pub fn try_recv(&mut self) -> Result<Event, TryRecvError> {
        let mut state = lock(&self.shared);
        match state.pop() {
            Some(event) => Ok(event),
            None if state.sender_alive => Err(TryRecvError::Empty),
            None => Err(TryRecvError::Disconnected),
        }
    }

    /// Polls for the next event (for a hand-written `Future` or `Stream`).
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        let mut state = lock(&self.shared);
        match state.pop() {
            Some(event) => Poll::Ready(Some(event)),
            None if !state.sender_alive => Poll::Ready(None),
            None => {
                state.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use libp2p::PeerId;

    use super::*;
    use crate::net::ValidatorIndex;

    fn message(from: u16, tag: u8) -> Event {
        Event::Message {
            from: ValidatorIndex(from),
            peer_id: PeerId::random(),
            bytes: vec![tag],
        }
    }

    fn tag(event: &Event) -> (u16, u8) {
        match event {
            Event::Message { from, bytes, .. } => (from.0, bytes[0]),
            other => panic!("not a message: {other:?}"),
        }
    }

    #[test]
    fn a_flooding_validator_fills_only_its_own_queue_and_others_take_turns() {
        let (tx, mut rx) = fair_inbound(3, 10);
        for k in 0..100 {
            let _ = tx.try_push(message(0, k));
        }
        assert!(tx.try_push(message(1, 200)), "validator 1 still has room");
        assert!(tx.try_push(message(1, 201)));
        assert!(tx.try_push(message(2, 250)));
        let order: Vec<(u16, u8)> = std::iter::from_fn(|| rx.try_recv().ok())
            .map(|e| tag(&e))
            .collect();
        assert_eq!(order.len(), 13, "10 of the flood, 3 others: {order:?}");
        assert_eq!(
            &order[..5],
            &[(0, 0), (1, 200), (2, 250), (0, 1), (1, 201)],
            "round robin"
        );
    }

    #[test]
    fn control_events_come_first_and_the_end_is_reported() {
        let (tx, mut rx) = fair_inbound(2, 2);
        assert!(tx.try_push(message(1, 1)));
        let listening = Event::Listening {
            address: "/ip4/127.0.0.1/tcp/1".parse().expect("addr"),
        };
        assert!(tx.try_push(listening.clone()));
        assert_eq!(rx.try_recv(), Ok(listening));
        assert_eq!(rx.try_recv().map(|e| tag(&e)), Ok((1, 1)));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
        drop(tx);
        assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    }
}
