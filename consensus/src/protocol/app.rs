//! The application the replica replicates, called synchronously.
//!
//! The replica asks the leader's app for a payload, asks every voter's app to re-execute and
//! validate it (a validator votes only if `validate` passes: this is how validators re-run the
//! engine and vote only for identical result bytes), and hands committed blocks to `commit` in
//! height order, exactly once each.

use thiserror::Error;

use super::block::Block;

/// Why an application refused a payload; the replica does not vote for the block.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("payload rejected: {reason}")]
pub struct Reject {
    /// Human-readable cause, logged.
    pub reason: String,
}

impl Reject {
    /// A rejection with a reason.
    #[must_use]
    pub fn new(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
        }
    }
}

/// The replicated application.
///
/// # Determinism
/// `validate` must be a pure function of `(parent chain, payload, block_time_ms)`, identical on
/// every honest replica, and must never read a clock: time comes only from `block_time_ms`.
/// `parent` may be uncommitted; the app keys any speculative state by block hash.
pub trait App {
    /// Builds the payload of a new block extending `parent` at block time `block_time_ms`.
    fn propose(&mut self, parent: &Block, block_time_ms: u64) -> Vec<u8>;

    /// Re-executes a proposed payload on top of `parent`.
    ///
    /// # Errors
    /// [`Reject`] if the payload is not exactly what this replica would accept.
    fn validate(
        &mut self,
        parent: &Block,
        payload: &[u8],
        block_time_ms: u64,
    ) -> Result<(), Reject>;

    /// Tells the app that `block` is certified (a verified QC names it), so that it can compute
    /// and keep the state after it even if it never validated the block (it arrived by sync, or
    /// this replica did not vote for it). The replica calls it for every block it accepts with a
    /// verified certificate, parents before children; a block may be reported more than once.
    /// Without this, a replica that lacks the state of an uncommitted ancestor could refuse every
    /// proposal on top of it (audit finding H3). The default does nothing (stateless apps).
    fn certified(&mut self, block: &Block) {
        let _ = block;
    }

    /// Applies a committed block. Called once per block, in height order.
    fn commit(&mut self, block: &Block);

    /// Idle pacing ([`super::config::Config::idle_block_interval_ms`]): whether the app has
    /// something for a block at `now_ms` (pending orders, a gate that has closed). A quiet
    /// chain waits for this, or for the idle interval. The default (a stateless app): always.
    fn has_work(&self, now_ms: u64) -> bool {
        let _ = now_ms;
        true
    }

    /// Idle pacing: when [`App::has_work`] becomes true with no new input (the next gate
    /// closure), if ever.
    fn work_due_at(&self) -> Option<u64> {
        None
    }

    /// Idle pacing: whether `payload` carries nothing that needs committing promptly (an empty
    /// block, made only to keep the chain moving). The default: never.
    fn is_empty(&self, payload: &[u8]) -> bool {
        let _ = payload;
        false
    }

    /// Test-only fault injection: a payload honest replicas reject (see
    /// [`super::config::TestFault::InvalidPayload`]). Override it to produce a realistic bad
    /// payload (for Voltmesh, a wrong clearing result); the default appends a byte.
    fn propose_invalid(&mut self, parent: &Block, block_time_ms: u64) -> Vec<u8> {
        let mut payload = self.propose(parent, block_time_ms);
        payload.push(0xFF);
        payload
    }
}
