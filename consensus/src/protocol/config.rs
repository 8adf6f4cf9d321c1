//! Replica timing and limits.
//!
//! # Timing invariant (audit H4, L12)
//! `max_clock_drift_ms + min_block_interval_ms + TIMING_MARGIN_MS < base_view_timeout_ms`.
//! A block may be stamped up to `max_clock_drift_ms` ahead of a voter's clock, and its child
//! may not be stamped earlier than `min_block_interval_ms` after it. A next leader therefore
//! may have to wait up to `drift + interval` for pacing alone; the view timer must leave room
//! for that plus network delay, or a leader that stamps its blocks in the future kills the next
//! (honest) leader's view. The replica also starts a view's timer no earlier than
//! `parent.timestamp + min_block_interval_ms`, and a leader may stamp its block up to half the
//! drift ahead of its own clock instead of waiting.
//!
//! The drift also bounds a proposer's discretion over block time (and so over when a market
//! gate counts as closed): at most `max_clock_drift_ms` either way, 500 ms by default.

use super::error::ReplicaError;

/// Room `Config::validate` demands between the worst pacing wait (`max_clock_drift_ms +
/// min_block_interval_ms`) and the base view timeout, for network delay and processing.
pub const TIMING_MARGIN_MS: u64 = 500;

/// Test-only misbehaviour, to show that honest replicas contain it.
///
/// The simulation harness sets them in code; a node takes one from its config's `[testing]`
/// section (`crate::node::config::NodeFault`), for tests with real processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestFault {
    /// Propose payloads from [`super::app::App::propose_invalid`] instead of `propose`.
    InvalidPayload,
    /// Before each proposal and each vote, broadcast a validly signed vote for the same block
    /// that names a wrong height (audit H1).
    WrongHeightVotes,
    /// Stamp every proposal `now + max_clock_drift_ms`, the latest time voters accept
    /// (audit H4, L12).
    FutureTimestamps,
    /// Never send votes (still proposes and times out).
    WithholdVotes,
    /// Send every vote and every timeout this many times.
    Flood(u16),
}

/// Replica configuration. All durations are milliseconds of the driver's clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// A leader proposes no earlier than `parent.timestamp + min_block_interval_ms`, and
    /// validators reject blocks closer to their parent. Paces idle networks.
    pub min_block_interval_ms: u64,
    /// View timeout after a view entered through a QC.
    pub base_view_timeout_ms: u64,
    /// Cap of the exponential backoff (doubling per consecutive view entered through a TC).
    pub max_view_timeout_ms: u64,
    /// How often a replica stuck in a timed-out view re-broadcasts its timeout.
    pub timeout_resend_ms: u64,
    /// A proposal's timestamp must be within this of the validator's clock. It bounds how far
    /// a proposer can move block time (gate closures) either way, and how long a next leader
    /// can be made to wait; see the module docs for the timing invariant.
    pub max_clock_drift_ms: u64,
    /// Leader reputation window: blocks whose proposers and voters stay in the rotation, and
    /// whose recorded failed leaders stay out. `0` turns reputation off (plain round-robin).
    pub reputation_window: usize,
    /// A block sync request not answered in this time is sent to another peer.
    pub sync_retry_ms: u64,
    /// Most blocks in one sync response.
    pub max_sync_blocks: usize,
    /// Idle pacing: when the chain is quiet (the app has no work, [`super::App::has_work`], and
    /// the newest blocks are empty, so every replica has committed everything that carried
    /// something), the leader proposes no earlier than the parent's time plus this, and replicas
    /// start their view timer from then. `0` turns it off (a block every
    /// `min_block_interval_ms`, work or not).
    pub idle_block_interval_ms: u64,
    /// Committed blocks the replica keeps in memory (the tip and its ancestors), at least the
    /// reputation window. Older committed blocks live only in the store: sync requests for
    /// them are answered from there ([`super::Output::ServeCommitted`]).
    pub retained_committed_blocks: usize,
    /// Test-only fault injection; `None` in production.
    pub test_fault: Option<TestFault>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            min_block_interval_ms: 500,
            base_view_timeout_ms: 2_000,
            max_view_timeout_ms: 30_000,
            timeout_resend_ms: 1_000,
            max_clock_drift_ms: 500,
            reputation_window: 5,
            sync_retry_ms: 1_000,
            max_sync_blocks: 64,
            retained_committed_blocks: 32,
            idle_block_interval_ms: 0,
            test_fault: None,
        }
    }
}

impl Config {
    /// Checks ranges.
    ///
    /// # Errors
    /// [`ReplicaError::Config`] naming the bad field.
    pub fn validate(&self) -> Result<(), ReplicaError> {
        if self.min_block_interval_ms == 0 {
            return Err(ReplicaError::Config("min_block_interval_ms must be > 0"));
        }
        if self.base_view_timeout_ms <= self.min_block_interval_ms {
            return Err(ReplicaError::Config(
                "base_view_timeout_ms must exceed min_block_interval_ms",
            ));
        }
        let pacing = self
            .max_clock_drift_ms
            .saturating_add(self.min_block_interval_ms)
            .saturating_add(TIMING_MARGIN_MS);
        if pacing >= self.base_view_timeout_ms {
            return Err(ReplicaError::Config(
                "max_clock_drift_ms + min_block_interval_ms + 500 ms must be below base_view_timeout_ms",
            ));
        }
        if self.max_view_timeout_ms < self.base_view_timeout_ms {
            return Err(ReplicaError::Config(
                "max_view_timeout_ms < base_view_timeout_ms",
            ));
        }
        if self.timeout_resend_ms == 0 || self.sync_retry_ms == 0 {
            return Err(ReplicaError::Config(
                "resend and retry intervals must be > 0",
            ));
        }
        if self.max_sync_blocks == 0 || self.max_sync_blocks > 1024 {
            return Err(ReplicaError::Config("max_sync_blocks must be in 1..=1024"));
        }
        if self.idle_block_interval_ms != 0
            && self.idle_block_interval_ms < self.min_block_interval_ms
        {
            return Err(ReplicaError::Config(
                "idle_block_interval_ms must be 0 or at least min_block_interval_ms",
            ));
        }
        if self.retained_committed_blocks == 0
            || self.retained_committed_blocks < self.reputation_window
        {
            return Err(ReplicaError::Config(
                "retained_committed_blocks must be at least 1 and the reputation window",
            ));
        }
        Ok(())
    }

    /// The view timeout after `k` consecutive views entered through a TC:
    /// `min(base · 2^k, max)`.
    #[must_use]
    pub fn view_timeout_ms(&self, k: u32) -> u64 {
        self.base_view_timeout_ms
            .saturating_mul(1u64 << k.min(20))
            .min(self.max_view_timeout_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::{Config, TIMING_MARGIN_MS};
    use crate::protocol::error::ReplicaError;

    #[test]
    fn the_default_passes_and_pacing_must_fit_inside_the_view_timeout() {
        let config = Config::default();
        assert_eq!(config.validate(), Ok(()));
        assert_eq!(config.max_clock_drift_ms, 500);
        // Audit H4: the old default drift (2 s) no longer validates against a 2 s timeout.
        let old = Config {
            max_clock_drift_ms: 2_000,
            ..Config::default()
        };
        assert!(matches!(old.validate(), Err(ReplicaError::Config(_))));
        let edge = config.base_view_timeout_ms - config.min_block_interval_ms - TIMING_MARGIN_MS;
        let at_edge = Config {
            max_clock_drift_ms: edge,
            ..Config::default()
        };
        assert!(at_edge.validate().is_err());
        let below = Config {
            max_clock_drift_ms: edge - 1,
            ..Config::default()
        };
        assert_eq!(below.validate(), Ok(()));
    }
}
