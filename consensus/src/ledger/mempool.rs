//! Orders waiting for a block, indexed by participant and by interval.
//!
//! # Invariants
//! At most `capacity` orders; at most one order per (participant, interval, id); every pending
//! order appears exactly once in `orders`, once in its participant's queue (in arrival order) and
//! once in its interval's set, and the counters equal the sizes of those indexes.
//!
//! # Fairness (audit finding M2)
//! [`Mempool::round_robin`] offers the first pending order of every participant, then the second
//! of every participant, and so on, so a participant with many pending orders cannot push another
//! participant's order out of a block; within one participant, orders go in arrival order.
//!
//! # Pruning
//! After a commit only the participants the block touched are re-checked
//! ([`Mempool::prune`]), plus whole intervals whose gate closed (an index range), so a commit
//! costs time in proportion to what changed, not to the pool's size.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use voltmesh_engine::{OrderId, ParticipantId};
use voltmesh_wire::{Genesis, OrderRejection, SignedOrder};

use super::LedgerState;

/// What identifies an order: participant, interval, id (its signature covers all three).
pub type OrderKey = (ParticipantId, i64, OrderId);

/// What identifies an order.
pub fn key_of(order: &SignedOrder) -> OrderKey {
    let ticket = &order.ticket;
    (
        ticket.participant.clone(),
        ticket.interval_start,
        ticket.id.clone(),
    )
}

/// Pending orders, by participant (arrival order) and by interval.
#[derive(Debug)]
pub struct Mempool {
    orders: HashMap<OrderKey, SignedOrder>,
    /// Each participant's pending orders in arrival order.
    by_participant: BTreeMap<ParticipantId, BTreeMap<u64, OrderKey>>,
    /// Arrival number of every pending order (to find it in `by_participant`).
    arrival: HashMap<OrderKey, u64>,
    /// Each interval's pending orders.
    by_interval: BTreeMap<i64, BTreeSet<OrderKey>>,
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
            orders: HashMap::new(),
            by_participant: BTreeMap::new(),
            arrival: HashMap::new(),
            by_interval: BTreeMap::new(),
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
        if self.orders.contains_key(&key) {
            return Err(MempoolError::Duplicate);
        }
        if self.orders.len() >= self.capacity {
            return Err(MempoolError::Full);
        }
        let arrival = self.next_arrival;
        self.next_arrival += 1;
        self.by_participant
            .entry(key.0.clone())
            .or_default()
            .insert(arrival, key.clone());
        self.by_interval
            .entry(key.1)
            .or_default()
            .insert(key.clone());
        *self
            .per_participant_interval
            .entry((key.0.clone(), key.1))
            .or_insert(0) += 1;
        self.arrival.insert(key.clone(), arrival);
        self.orders.insert(key, order);
        Ok(())
    }

    /// Removes a pending order.
    pub fn remove(&mut self, key: &OrderKey) -> Option<SignedOrder> {
        let order = self.orders.remove(key)?;
        if let Some(arrival) = self.arrival.remove(key) {
            if let Some(queue) = self.by_participant.get_mut(&key.0) {
                queue.remove(&arrival);
                if queue.is_empty() {
                    self.by_participant.remove(&key.0);
                }
            }
        }
        if let Some(set) = self.by_interval.get_mut(&key.1) {
            set.remove(key);
            if set.is_empty() {
                self.by_interval.remove(&key.1);
            }
        }
        let count_key = (key.0.clone(), key.1);
        if let Some(count) = self.per_participant_interval.get_mut(&count_key) {
            *count -= 1;
            if *count == 0 {
                self.per_participant_interval.remove(&count_key);
            }
        }
        Some(order)
    }

    /// A pending order.
    pub fn get(&self, key: &OrderKey) -> Option<&SignedOrder> {
        self.orders.get(key)
    }

    /// Whether `order`, to the byte (signature included), is pending here: its signature was
    /// verified when it was admitted.
    pub fn holds(&self, order: &SignedOrder) -> bool {
        self.orders.get(&key_of(order)) == Some(order)
    }

    /// Pending orders, one per participant per round (module docs: fairness), each participant's
    /// in arrival order; participants in id order within a round.
    pub fn round_robin(&self) -> Vec<&SignedOrder> {
        let mut queues: Vec<_> = self
            .by_participant
            .values()
            .map(|queue| queue.values())
            .collect();
        let mut out = Vec::with_capacity(self.orders.len());
        while !queues.is_empty() {
            queues.retain_mut(|queue| match queue.next() {
                Some(key) => {
                    if let Some(order) = self.orders.get(key) {
                        out.push(order);
                    }
                    true
                }
                None => false,
            });
        }
        out
    }

    /// Pending orders in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &SignedOrder> {
        self.orders.values()
    }

    /// Pending orders for the interval.
    pub fn orders_in(&self, interval_start: i64) -> u32 {
        self.by_interval
            .get(&interval_start)
            .map_or(0, |set| u32::try_from(set.len()).unwrap_or(u32::MAX))
    }

    /// Pending orders of `participant` for the interval.
    pub fn participant_orders_in(&self, participant: &ParticipantId, interval_start: i64) -> u32 {
        self.per_participant_interval
            .get(&(participant.clone(), interval_start))
            .copied()
            .unwrap_or(0)
    }

    /// The intervals in which `participant` has an order `id` pending.
    pub fn pending_intervals(&self, participant: &ParticipantId, id: &str) -> Vec<i64> {
        self.by_participant
            .get(participant)
            .map(|queue| {
                queue
                    .values()
                    .filter(|key| key.2.as_str() == id)
                    .map(|key| key.1)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Pending orders of `participant`.
    pub fn pending_of(&self, participant: &ParticipantId) -> usize {
        self.by_participant
            .get(participant)
            .map_or(0, BTreeMap::len)
    }

    /// Participants with pending orders.
    pub fn participants(&self) -> impl Iterator<Item = &ParticipantId> + '_ {
        self.by_participant.keys()
    }

    /// Number of pending orders.
    pub fn len(&self) -> usize {
        self.orders.len()
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.orders.is_empty()
    }

    /// After a commit: drops every order of an interval whose gate has closed at `now_ms`, and
    /// every order of the `changed` participants that `committed` now refuses (included in the
    /// block, or over a limit because another node's orders filled it). Signatures are not
    /// re-verified (they were at submission). Returns what was dropped, with why.
    pub fn prune<'a>(
        &mut self,
        genesis: &Genesis,
        committed: &LedgerState,
        now_ms: u64,
        changed: impl IntoIterator<Item = &'a ParticipantId>,
    ) -> Vec<(SignedOrder, OrderRejection)> {
        let lead_secs = i64::from(genesis.market.interval.gate_closure_lead_secs());
        let now_secs = i64::try_from(now_ms / 1000).unwrap_or(i64::MAX);
        // A gate closes at start - lead; every interval starting at or before now + lead is shut.
        let closed: Vec<OrderKey> = self
            .by_interval
            .range(..=now_secs.saturating_add(lead_secs))
            .flat_map(|(_, set)| set.iter().cloned())
            .collect();
        let mut stale: Vec<(OrderKey, Option<OrderRejection>)> =
            closed.into_iter().map(|key| (key, None)).collect();
        for participant in changed {
            let Some(queue) = self.by_participant.get(participant) else {
                continue;
            };
            for key in queue.values() {
                if let Some(order) = self.orders.get(key) {
                    if let Err(reason) = committed.admit_unsigned(genesis, order, now_ms) {
                        stale.push((key.clone(), Some(reason)));
                    }
                }
            }
        }
        let mut dropped = Vec::new();
        for (key, reason) in stale {
            if let Some(order) = self.remove(&key) {
                let reason =
                    reason.unwrap_or(OrderRejection::ClosedInterval(order.ticket.interval_start));
                dropped.push((order, reason));
            }
        }
        dropped
    }
}
