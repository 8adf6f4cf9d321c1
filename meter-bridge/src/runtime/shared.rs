//! The state the runtime's tasks share: the [`Ingest`] core behind one mutex, and the gauge of
//! messages not yet acknowledged.
//!
//! The subscribing connection writes the ingest state on every message; the planner, the
//! follow-ups and the metrics task read it briefly. Nobody holds the lock across an `.await`.

use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex, PoisonError};

use crate::config::Config;
use crate::ingest::Ingest;

/// The ingest state shared by the subscribing connection (writes) and the order planner (reads).
pub type SharedIngest = Arc<Mutex<Ingest>>;

/// Locks `ingest`, recovering from a poisoned lock (the state is still consistent: `Ingest`
/// never panics half-way through a message).
pub fn lock(ingest: &SharedIngest) -> std::sync::MutexGuard<'_, Ingest> {
    ingest.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Messages received from the broker and not yet acknowledged to it, as a gauge for health
/// metrics (the messages in hand and the acks waiting for the next flush).
pub type Unacked = Arc<AtomicUsize>;

/// A fresh shared [`Ingest`] for `config`.
pub fn new_ingest(config: &Config) -> SharedIngest {
    Arc::new(Mutex::new(
        Ingest::new(
            config.ingest.clone(),
            config.registry.clone(),
            config.market,
        )
        .with_household_topics(
            config.topics.households_prefix.clone(),
            config.settlement.tariffs(),
        ),
    ))
}
