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

fn decrement<K: std::hash::Hash + Eq>(counts: &mut HashMap<K, u32>, key: K) {
    if let std::collections::hash_map::Entry::Occupied(mut entry) = counts.entry(key) {
        *entry.get_mut() -= 1;
        if *entry.get() == 0 {
            entry.remove();
        }
    }
}

/// Pending orders in arrival order.
#[derive(Debug)]
pub struct Mempool {
    by_arrival: BTreeMap<u64, SignedOrder>,
    keys: HashMap<(ParticipantId, i64, OrderId), u64>,
    /// Pending orders per interval.
    per_interval: HashMap<i64, u32>,
    /// Pending orders per (participant, interval).
    per_participant_interval: HashMap<(ParticipantId, i64), u32>,
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
            per_interval: HashMap::new(),
            per_participant_interval: HashMap::new(),
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
        *self.per_interval.entry(key.1).or_insert(0) += 1;
        *self
            .per_participant_interval
            .entry((key.0.clone(), key.1))
            .or_insert(0) += 1;
        self.keys.insert(key, self.next_arrival);
        self.by_arrival.insert(self.next_arrival, order);
        self.next_arrival += 1;
        Ok(())
    }

    /// Pending orders, first come first.
    pub fn iter(&self) -> impl Iterator<Item = &SignedOrder> {
        self.by_arrival.values()
    }

    /// Pending orders for the interval.
    pub fn orders_in(&self, interval_start: i64) -> u32 {
        self.per_interval.get(&interval_start).copied().unwrap_or(0)
    }

    /// Pending orders of `participant` for the interval.
    pub fn participant_orders_in(&self, participant: &ParticipantId, interval_start: i64) -> u32 {
        self.per_participant_interval
            .get(&(participant.clone(), interval_start))
            .copied()
            .unwrap_or(0)
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
                let (participant, interval, id) = key_of(&order);
                decrement(&mut self.per_interval, interval);
                decrement(
                    &mut self.per_participant_interval,
                    (participant.clone(), interval),
                );
                self.keys.remove(&(participant, interval, id));
            }
        }
    }
}
