//! The writer's counters, shared between the task and every handle.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// A snapshot of the writer's counters (all since the writer started).
///
/// Every recorded point ends up in exactly one of `written`, `dropped_*`, `invalid` or
/// `rejected`, or is still `buffered`/in the channel.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Points handed to [`crate::MetricsHandle::record`] while enabled.
    pub recorded: u64,
    /// Points the database accepted.
    pub written: u64,
    /// Points dropped because the channel to the writer task was full.
    pub dropped_queue_full: u64,
    /// Points dropped (oldest first) because the database was down longer than the buffer lasts.
    pub dropped_overflow: u64,
    /// Points dropped because a tag key already had `max_tag_values` distinct values.
    pub dropped_cardinality: u64,
    /// Points still buffered when the writer shut down and its last attempts failed.
    pub dropped_shutdown: u64,
    /// Points that could not be encoded (no finite field, time out of range).
    pub invalid: u64,
    /// Points in batches the database refused as malformed (HTTP 4xx other than 429).
    pub rejected: u64,
    /// Successful write requests.
    pub batches: u64,
    /// Failed write attempts that will be retried.
    pub retries: u64,
    /// Points held by the task, waiting to be written.
    pub buffered: u64,
    /// The last write error, if any write has failed.
    pub last_error: Option<String>,
}

impl WriterStats {
    /// Every point that will never be written, whatever the reason.
    pub fn dropped(&self) -> u64 {
        self.dropped_queue_full
            + self.dropped_overflow
            + self.dropped_cardinality
            + self.dropped_shutdown
            + self.invalid
            + self.rejected
    }

    /// Logs these final counts at `info` as "metrics writer stopped", as a node or bridge does
    /// on shutdown.
    pub fn log_stopped(&self) {
        tracing::info!(
            recorded = self.recorded,
            written = self.written,
            dropped = self.dropped(),
            last_error = self.last_error.as_deref().unwrap_or(""),
            "metrics writer stopped"
        );
    }
}

/// The live counters.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) recorded: AtomicU64,
    pub(crate) written: AtomicU64,
    pub(crate) dropped_queue_full: AtomicU64,
    pub(crate) dropped_overflow: AtomicU64,
    pub(crate) dropped_cardinality: AtomicU64,
    pub(crate) dropped_shutdown: AtomicU64,
    pub(crate) invalid: AtomicU64,
    pub(crate) rejected: AtomicU64,
    pub(crate) batches: AtomicU64,
    pub(crate) retries: AtomicU64,
    pub(crate) buffered: AtomicU64,
    pub(crate) last_error: Mutex<Option<String>>,
}

impl Counters {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn set_error(&self, error: String) {
        // A poisoned lock only means another thread panicked mid-assignment of a String; the
        // value is still a valid Option, so keep using it.
        let mut slot = self.last_error.lock().unwrap_or_else(|p| p.into_inner());
        *slot = Some(error);
    }

    pub(crate) fn snapshot(&self) -> WriterStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        WriterStats {
            recorded: get(&self.recorded),
            written: get(&self.written),
            dropped_queue_full: get(&self.dropped_queue_full),
            dropped_overflow: get(&self.dropped_overflow),
            dropped_cardinality: get(&self.dropped_cardinality),
            dropped_shutdown: get(&self.dropped_shutdown),
            invalid: get(&self.invalid),
            rejected: get(&self.rejected),
            batches: get(&self.batches),
            retries: get(&self.retries),
            buffered: get(&self.buffered),
            last_error: self
                .last_error
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        }
    }
}
