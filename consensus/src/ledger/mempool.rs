//! Orders waiting for a block.
//!
//! # Invariants
//! At most `capacity` orders; at most one order per (participant, interval, id); iteration is in arrival
//! order, so every proposer offers orders first come, first served.

use std::collections::{BTreeMap, HashMap};

use voltmesh_engine::{OrderId, ParticipantId};
use voltmesh_wire::{Genesis, SignedOrder};

use super::LedgerState;

/// What identifies an order (its signature covers all three).
fn key_of(order: &SignedOrder) -> (ParticipantId, i64, OrderId) {
    let ticket = &order.ticket;
    (
        ticket.participant.clone(),
        ticket.interval_start,
        ticket.id.clone(),
    )
}

/// Pending orders in arrival order.
#[derive(Debug)]
pub struct Mempool {
    by_arrival: BTreeMap<u64, SignedOrder>,
    keys: HashMap<(ParticipantId, i64, OrderId), u64>,
    next_arrival: u64,
    capacity: usize,
}

/// Why the mempool did not take an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MempoolError {
    /// The pool is at capacity.
    #[error("the mempool is full")]
    Full,
    /// An order with this participant, interval and id is already pending.
    #[error("an order with this id is already pending for the interval")]
    Duplicate,
}

impl Mempool {
    /// An empty pool holding at most `capacity` orders.
    pub fn new(capacity: usize) -> Self {
        Mempool {
            by_arrival: BTreeMap::new(),
            keys: HashMap::new(),
            next_arrival: 0,
            capacity,
        }
    }

    /// Adds an order.
    ///
    /// # Errors
    /// [`MempoolError`] if full or already pending.
    pub fn add(&mut self, order: SignedOrder) -> Result<(), MempoolError> {
        let key = key_of(&order);
        if self.keys.contains_key(&key) {
            return Err(MempoolError::Duplicate);
        }
        if self.by_arrival.len() >= self.capacity {
            return Err(MempoolError::Full);
        }
        self.keys.insert(key, self.next_arrival);
        self.by_arrival.insert(self.next_arrival, order);
        self.next_arrival += 1;
        Ok(())
    }

    /// Pending orders, first come first.
    pub fn iter(&self) -> impl Iterator<Item = &SignedOrder> {
        self.by_arrival.values()
    }

    /// Number of pending orders.
    pub fn len(&self) -> usize {
        self.by_arrival.len()
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.by_arrival.is_empty()
    }

    /// Drops every order that `committed` would now refuse at `now_ms` (included in a block,
    /// interval closed).
    pub fn prune(&mut self, genesis: &Genesis, committed: &LedgerState, now_ms: u64) {
        let stale: Vec<u64> = self
            .by_arrival
            .iter()
            .filter(|(_, order)| committed.admit(genesis, order, now_ms).is_err())
            .map(|(&arrival, _)| arrival)
            .collect();
        for arrival in stale {
            if let Some(order) = self.by_arrival.remove(&arrival) {
                self.keys.remove(&key_of(&order));
            }
        }
    }
}
