//! Counters of the network adapter, readable without a round trip to the event loop.

use std::sync::atomic::{AtomicU64, Ordering};

/// Live counters shared by the event loop, the codec and every [`super::Client`].
///
/// Invariant: counters only grow, except the gauges `connected_validators`,
/// `order_topic_peers` and `redials_pending`, which the event loop alone writes.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) messages_sent: AtomicU64,
    pub(crate) messages_acked: AtomicU64,
    pub(crate) messages_failed: AtomicU64,
    pub(crate) messages_not_connected: AtomicU64,
    pub(crate) messages_outbox_full: AtomicU64,
    pub(crate) messages_received: AtomicU64,
    pub(crate) messages_oversized: AtomicU64,
    pub(crate) messages_dropped_full: AtomicU64,
    pub(crate) orders_published: AtomicU64,
    pub(crate) orders_received: AtomicU64,
    pub(crate) orders_dropped_full: AtomicU64,
    pub(crate) orders_foreign: AtomicU64,
    pub(crate) events_dropped_full: AtomicU64,
    pub(crate) connections_denied: AtomicU64,
    pub(crate) dials: AtomicU64,
    pub(crate) connected_validators: AtomicU64,
    pub(crate) order_topic_peers: AtomicU64,
    pub(crate) redials_pending: AtomicU64,
}

impl Counters {
    pub(crate) fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn add(counter: &AtomicU64, n: usize) {
        counter.fetch_add(u64::try_from(n).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    pub(crate) fn set(gauge: &AtomicU64, value: usize) {
        gauge.store(u64::try_from(value).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> NetStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        NetStats {
            messages_sent: get(&self.messages_sent),
            messages_acked: get(&self.messages_acked),
            messages_failed: get(&self.messages_failed),
            messages_not_connected: get(&self.messages_not_connected),
            messages_outbox_full: get(&self.messages_outbox_full),
            messages_received: get(&self.messages_received),
            messages_oversized: get(&self.messages_oversized),
            messages_dropped_full: get(&self.messages_dropped_full),
            orders_published: get(&self.orders_published),
            orders_received: get(&self.orders_received),
            orders_dropped_full: get(&self.orders_dropped_full),
            orders_foreign: get(&self.orders_foreign),
            events_dropped_full: get(&self.events_dropped_full),
            connections_denied: get(&self.connections_denied),
            dials: get(&self.dials),
            connected_validators: get(&self.connected_validators),
            order_topic_peers: get(&self.order_topic_peers),
            redials_pending: get(&self.redials_pending),
        }
    }
}

/// A snapshot of the adapter's counters (see [`super::Client::stats`]).
///
/// Each field is read atomically on its own; the snapshot as a whole is not one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NetStats {
    /// Consensus messages handed to a connection for sending (queued ones count when they leave
    /// the outbox).
    pub messages_sent: u64,
    /// Consensus messages the remote acknowledged having read.
    pub messages_acked: u64,
    /// Consensus messages whose delivery failed (timeout, connection closed, stream error).
    pub messages_failed: u64,
    /// Consensus messages dropped because the target validator was not connected (or
    /// disconnected while they waited in its outbox).
    pub messages_not_connected: u64,
    /// Consensus messages dropped because the target validator's outbox was full.
    pub messages_outbox_full: u64,
    /// Consensus messages received from genesis validators and queued for the app (not counting
    /// dropped ones).
    pub messages_received: u64,
    /// Inbound consensus messages refused for exceeding `max_message_size`.
    pub messages_oversized: u64,
    /// Inbound consensus messages dropped because the app's queue was full.
    pub messages_dropped_full: u64,
    /// Orders published by this node.
    pub orders_published: u64,
    /// Orders received by gossip and queued for the app (not counting dropped ones).
    pub orders_received: u64,
    /// Inbound orders dropped because the app's order queue was full.
    pub orders_dropped_full: u64,
    /// Inbound orders dropped because their author is not a genesis validator.
    pub orders_foreign: u64,
    /// Peer and listen events dropped because the app's queue was full.
    pub events_dropped_full: u64,
    /// Connections refused because the remote is not a genesis validator.
    pub connections_denied: u64,
    /// Dials started towards genesis validators (first dials and redials).
    pub dials: u64,
    /// Genesis validators currently connected (gauge).
    pub connected_validators: u64,
    /// Peers currently subscribed to the order topic (gauge).
    pub order_topic_peers: u64,
    /// Validators with a redial timer running (gauge).
    pub redials_pending: u64,
}
