//! The state a replica must persist before it sends a vote or a timeout, and the voting rules.
//!
//! # Safety rules (2-chain, as in Jolteon / DiemBFT v4)
//! - Vote at most once per view, and never in a view at or below one already voted or timed
//!   out in: `block.view > last_voted_view`.
//! - Vote only for a block whose QC is from the previous view (`qc.view + 1 == block.view`), or
//!   which follows a TC for the previous view and extends a QC at least as high as the highest
//!   QC in that TC (`qc.view >= tc.high_qc.view`).
//! - After timing out in view `v`, never vote in `v` (`last_voted_view >= v`).
//!
//! # Invariant
//! A restarted replica restores this state from disk before handling any input, so it can
//! never sign two different votes for one view.

use super::certificate::QuorumCert;
use super::codec::{DecodeError, Decoder, Encoder};
use super::timeout::TimeoutCert;

/// Persisted safety and liveness state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SafetyState {
    /// Highest view this replica voted or timed out in.
    pub last_voted_view: u64,
    /// Highest QC view embedded in a block this replica voted for (its 2-chain lock).
    pub locked_view: u64,
    /// Highest QC known.
    pub high_qc: QuorumCert,
    /// Highest TC known, if any.
    pub high_tc: Option<TimeoutCert>,
}

impl SafetyState {
    /// The initial state on a fresh chain.
    #[must_use]
    pub fn initial(genesis_qc: QuorumCert) -> Self {
        Self {
            last_voted_view: 0,
            locked_view: 0,
            high_qc: genesis_qc,
            high_tc: None,
        }
    }

    /// Whether voting for a block of `block_view` carrying a QC of `qc_view` (after `tc`) is safe.
    #[must_use]
    pub fn safe_to_vote(&self, block_view: u64, qc_view: u64, tc: Option<&TimeoutCert>) -> bool {
        if block_view <= self.last_voted_view.max(qc_view) {
            return false;
        }
        qc_view.checked_add(1) == Some(block_view)
            || tc.is_some_and(|tc| {
                tc.view.checked_add(1) == Some(block_view) && qc_view >= tc.high_qc.view
            })
    }

    /// Canonical bytes for the driver's store.
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut enc = Encoder::with_domain(b"voltmesh/safety/v1");
        enc.u64(self.last_voted_view).u64(self.locked_view);
        self.high_qc.encode(&mut enc);
        match &self.high_tc {
            None => {
                enc.u8(0);
            }
            Some(tc) => {
                enc.u8(1);
                tc.encode(&mut enc);
            }
        }
        enc.finish()
    }

    /// Decodes [`SafetyState::to_bytes`].
    ///
    /// # Errors
    /// [`DecodeError`] if the bytes are not a canonical safety state.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut dec = Decoder::new(bytes);
        if dec.bytes("domain", 64)? != b"voltmesh/safety/v1" {
            return Err(DecodeError::NonCanonical("not a safety state"));
        }
        let last_voted_view = dec.u64()?;
        let locked_view = dec.u64()?;
        let high_qc = QuorumCert::decode(&mut dec)?;
        let high_tc = if dec.flag()? {
            Some(TimeoutCert::decode(&mut dec)?)
        } else {
            None
        };
        dec.finish()?;
        Ok(Self {
            last_voted_view,
            locked_view,
            high_qc,
            high_tc,
        })
    }
}
