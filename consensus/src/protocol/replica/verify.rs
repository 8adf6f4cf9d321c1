//! Certificate verification with a cache of verified digests.
//!
//! # Invariants
//! - A QC or TC is accepted only if every signature it carries verifies against the chain's
//!   validator set, or is byte-identical to a vote this replica already verified and counted
//!   (`votes`), or the whole certificate's digest is in the cache.
//! - Only certificates that passed every check enter the cache; the cache holds at most
//!   [`VERIFIED_CACHE`] digests and forgets the oldest first.
//! - The genesis QC needs no signatures.
//! - Nothing here changes the view, the safety state or the outputs.

use super::{App, Replica};
use crate::protocol::certificate::{check_signers, vote_message, QuorumCert};
use crate::protocol::codec::Encoder;
use crate::protocol::error::VerifyError;
use crate::protocol::timeout::TimeoutCert;
use crate::protocol::validators::sha256;

/// Verified certificates remembered, so re-sent ones are not verified again.
const VERIFIED_CACHE: usize = 256;

impl<A: App> Replica<A> {
    fn remember(&mut self, digest: [u8; 32]) {
        if self.verified.insert(digest) {
            self.verified_order.push_back(digest);
            if self.verified_order.len() > VERIFIED_CACHE {
                if let Some(old) = self.verified_order.pop_front() {
                    self.verified.remove(&old);
                }
            }
        }
    }

    pub(super) fn verify_qc(&mut self, qc: &QuorumCert) -> Result<(), VerifyError> {
        if qc.is_genesis(&self.chain) {
            return Ok(());
        }
        let mut enc = Encoder::with_domain(b"qc");
        qc.encode(&mut enc);
        let digest = sha256(&enc.finish());
        if self.verified.contains(&digest) {
            return Ok(());
        }
        // Signatures we already verified as individual votes need no second check.
        let validators = self.chain.validators();
        check_signers(qc.signers(), validators.quorum())?;
        let known = self.votes.get(&(qc.view, qc.block));
        let msg = vote_message(&self.chain, qc.view, qc.height, &qc.block);
        for (index, sig) in &qc.signatures {
            if known.is_some_and(|acc| {
                acc.height == qc.height && acc.signatures.get(index) == Some(sig)
            }) {
                continue;
            }
            if validators.key(*index).is_none() {
                return Err(VerifyError::UnknownValidator(*index));
            }
            if !validators.verify(*index, &msg, sig) {
                return Err(VerifyError::BadSignature(*index));
            }
        }
        self.remember(digest);
        Ok(())
    }

    pub(super) fn verify_tc(&mut self, tc: &TimeoutCert) -> Result<(), VerifyError> {
        let mut enc = Encoder::with_domain(b"tc");
        tc.encode(&mut enc);
        let digest = sha256(&enc.finish());
        if self.verified.contains(&digest) {
            return Ok(());
        }
        self.verify_qc(&tc.high_qc)?;
        tc.verify(&self.chain)?;
        self.remember(digest);
        Ok(())
    }
}
