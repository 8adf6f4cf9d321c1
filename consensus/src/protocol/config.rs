//! Replica timing and limits.

use super::error::ReplicaError;

/// Test-only misbehaviour, to show that honest replicas contain it.
///
/// Only code can set these (the simulation harness, and the node's `[testing]` section for
/// `InvalidPayload` alone): no node config field maps to any other variant.
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
    /// A proposal's timestamp must be within this of the validator's clock.
    pub max_clock_drift_ms: u64,
    /// Leader reputation window: blocks whose proposers and voters stay in the rotation, and
    /// whose recorded failed leaders stay out. `0` turns reputation off (plain round-robin).
    pub reputation_window: usize,
    /// A block sync request not answered in this time is sent to another peer.
    pub sync_retry_ms: u64,
    /// Most blocks in one sync response.
    pub max_sync_blocks: usize,
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
            max_clock_drift_ms: 2_000,
            reputation_window: 5,
            sync_retry_ms: 1_000,
            max_sync_blocks: 64,
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
