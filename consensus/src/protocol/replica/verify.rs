//! Certificate verification with a cache of verified digests.
//!
//! # Invariants
//! - A QC or TC is accepted only if every signature it carries verifies against the chain's
//!   validator set, or is byte-identical to a vote this replica already verified and counted
//!   (`votes`), or the whole certificate's digest is in the cache.
//! - Only certificates that passed every check enter the cache; the cache holds at most
//!   [`VERIFIED_CACHE`] digests and forgets the oldest first.
//! - A QC or TC that failed is remembered with its error in a second cache of the same bound,
//!   so a re-sent invalid certificate costs no signature checks (audit M1).
//! - The genesis QC needs no signatures.
//! - Nothing here changes the view, the safety state or the outputs.

use super::{App, Replica};
use crate::protocol::block::Block;
use crate::protocol::certificate::{check_signers, vote_message, QuorumCert};
use crate::protocol::codec::Encoder;
use crate::protocol::error::VerifyError;
use crate::protocol::hash::sha256;
use crate::protocol::timeout::TimeoutCert;
use crate::protocol::validators::ValidatorIndex;

/// Verified certificates remembered, so re-sent ones are not verified again.
const VERIFIED_CACHE: usize = 256;

/// Distinct blocks kept per (view, proposer) (audit H2).
pub(super) const MAX_PROPOSALS_PER_VIEW: usize = 2;

impl<A: App> Replica<A> {
    /// Remembers a certificate that failed verification (audit M1), forgetting the oldest.
    fn remember_invalid(&mut self, digest: [u8; 32], err: &VerifyError) {
        if self.invalid_certs.insert(digest, err.clone()).is_none() {
            self.invalid_certs_order.push_back(digest);
            if self.invalid_certs_order.len() > VERIFIED_CACHE {
                if let Some(old) = self.invalid_certs_order.pop_front() {
                    self.invalid_certs.remove(&old);
                }
            }
        }
    }

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

    /// Audit H2: a proposal at or below the committed tip's view can never extend the
    /// committed chain (the tip already holds that view or a later one), so it is refused
    /// before its block reaches the tree or the store.
    pub(super) fn proposal_is_stale(&self, view: u64) -> bool {
        view <= self.tree.committed_tip().view()
    }

    /// Audit H2: whether a proposed block may enter the tree: at most
    /// [`MAX_PROPOSALS_PER_VIEW`] distinct blocks per (view, proposer) are kept (two are
    /// evidence of equivocation; more only fill the tree and the store). Entries at or below
    /// the committed view are forgotten.
    pub(super) fn admit_proposed_block(&mut self, block: &Block) -> bool {
        let committed_view = self.tree.committed_tip().view();
        self.sync.proposed = self
            .sync
            .proposed
            .split_off(&(committed_view + 1, ValidatorIndex(0)));
        let seen = self
            .sync
            .proposed
            .entry((block.view(), block.proposer()))
            .or_default();
        if seen.contains(&block.hash()) {
            return true;
        }
        if seen.len() >= MAX_PROPOSALS_PER_VIEW {
            return false;
        }
        seen.insert(block.hash());
        true
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
        if let Some(err) = self.invalid_certs.get(&digest) {
            return Err(err.clone());
        }
        let result = self.verify_qc_signatures(qc);
        match &result {
            Ok(()) => self.remember(digest),
            Err(err) => self.remember_invalid(digest, err),
        }
        result
    }

    fn verify_qc_signatures(&mut self, qc: &QuorumCert) -> Result<(), VerifyError> {
        // Signatures we already verified as individual votes need no second check.
        let validators = self.chain.validators();
        check_signers(qc.signers(), validators.quorum())?;
        let known = self.votes.get(&(qc.view, qc.block, qc.height));
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
            self.stats.signature_checks += 1;
            if !validators.verify(*index, &msg, sig) {
                return Err(VerifyError::BadSignature(*index));
            }
        }
        Ok(())
    }

    pub(super) fn verify_tc(&mut self, tc: &TimeoutCert) -> Result<(), VerifyError> {
        let mut enc = Encoder::with_domain(b"tc");
        tc.encode(&mut enc);
        let digest = sha256(&enc.finish());
        if self.verified.contains(&digest) {
            return Ok(());
        }
        if let Some(err) = self.invalid_certs.get(&digest) {
            return Err(err.clone());
        }
        let result = self.verify_qc(&tc.high_qc).and_then(|()| {
            self.stats.signature_checks += tc.entries.len() as u64;
            tc.verify(&self.chain)
        });
        match &result {
            Ok(()) => self.remember(digest),
            Err(err) => self.remember_invalid(digest, err),
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{v, Net, ME, T0};
    use super::VERIFIED_CACHE;
    use crate::protocol::error::VerifyError;

    #[test]
    fn the_genesis_qc_needs_no_signatures() {
        let net = Net::new();
        let mut r = net.replica(ME);
        assert_eq!(r.verify_qc(&net.genesis_qc()), Ok(()));
        assert!(r.verified.is_empty(), "genesis is not cached");
    }

    #[test]
    fn a_valid_qc_verifies_and_is_cached() {
        let net = Net::new();
        let mut r = net.replica(ME);
        let b1 = net.child(&net.genesis(), net.genesis_qc(), 1, T0);
        let qc = net.qc(&b1, &[1, 2, 3]);

        assert_eq!(r.verify_qc(&qc), Ok(()));
        assert_eq!(r.verified.len(), 1);
        assert_eq!(r.verify_qc(&qc), Ok(()));
        assert_eq!(r.verified.len(), 1);
    }

    #[test]
    fn a_qc_with_a_bad_signature_is_rejected_and_not_cached() {
        let net = Net::new();
        let mut r = net.replica(ME);
        let b1 = net.child(&net.genesis(), net.genesis_qc(), 1, T0);
        let mut qc = net.qc(&b1, &[1, 2, 3]);
        qc.signatures[1].1 = net.vote(3, &b1).signature;

        assert_eq!(r.verify_qc(&qc), Err(VerifyError::BadSignature(v(2))));
        assert!(r.verified.is_empty());
    }

    #[test]
    fn a_qc_without_a_quorum_or_with_repeated_signers_is_rejected() {
        let net = Net::new();
        let mut r = net.replica(ME);
        let b1 = net.child(&net.genesis(), net.genesis_qc(), 1, T0);

        assert_eq!(
            r.verify_qc(&net.qc(&b1, &[1, 2])),
            Err(VerifyError::NoQuorum { got: 2, need: 3 })
        );
        assert_eq!(
            r.verify_qc(&net.qc(&b1, &[1, 1, 2])),
            Err(VerifyError::UnsortedSigners)
        );
    }

    #[test]
    fn a_tc_is_checked_entry_by_entry() {
        let net = Net::new();
        let mut r = net.replica(ME);
        let tc = net.tc(1, net.genesis_qc(), &[1, 2, 3]);
        assert_eq!(r.verify_tc(&tc), Ok(()));
        assert_eq!(r.verified.len(), 1);

        let mut forged = net.tc(2, net.genesis_qc(), &[1, 2, 3]);
        forged.entries[0].2 = tc.entries[0].2; // signed for view 1, not 2
        assert_eq!(r.verify_tc(&forged), Err(VerifyError::BadSignature(v(1))));
        assert_eq!(r.verified.len(), 1);
    }

    #[test]
    fn an_invalid_tc_is_verified_once() {
        let net = Net::new();
        let mut r = net.replica(ME);
        let mut forged = net.tc(2, net.genesis_qc(), &[1, 2, 3]);
        forged.entries[2].2 = net.tc(1, net.genesis_qc(), &[1, 2, 3]).entries[2].2;

        assert_eq!(r.verify_tc(&forged), Err(VerifyError::BadSignature(v(3))));
        let checks = r.stats.signature_checks;
        assert!(checks > 0);
        for _ in 0..10 {
            assert_eq!(r.verify_tc(&forged), Err(VerifyError::BadSignature(v(3))));
        }
        assert_eq!(r.stats.signature_checks, checks);
    }

    #[test]
    fn the_cache_forgets_the_oldest_digest_first() {
        let net = Net::new();
        let mut r = net.replica(ME);
        for i in 0..=VERIFIED_CACHE {
            let mut digest = [0u8; 32];
            digest[..8].copy_from_slice(&(i as u64).to_be_bytes());
            r.remember(digest);
        }
        assert_eq!(r.verified.len(), VERIFIED_CACHE);
        assert!(!r.verified.contains(&[0u8; 32]));
        assert_eq!(r.verified_order.len(), VERIFIED_CACHE);
    }
}
