//! Votes, quorum certificates and the 2-chain commit rule.
//!
//! # Invariants
//! - At most one vote per `(view, voter)` is counted; a second one (even for another block) is
//!   ignored. Votes more than one view behind or [`MAX_VIEWS_AHEAD`] ahead are dropped.
//! - Votes accumulate per `(view, block, height)`. A vote for a block we hold must carry that
//!   block's height and view, or it is refused; for a block we do not hold yet, a vote naming a
//!   wrong height gets its own accumulator, which never reaches a quorum of honest signatures
//!   and never blocks the right one (audit H1). `voted` records a voter only once its vote
//!   verified and was counted.
//! - A QC forms from `quorum` distinct signatures on the same `(view, height, block)`.
//! - `process_qc` raises the high QC monotonically (persisting it), commits through
//!   `try_commit`, asks for block sync if the certified block is unknown, and enters
//!   `qc.view + 1`.
//! - A block commits only when a QC certifies a child exactly one view newer (`direct_chain`);
//!   commits arrive in height order, each passed to the app before `Output::Commit`.
//!
//! [`MAX_VIEWS_AHEAD`]: super::MAX_VIEWS_AHEAD

use std::collections::BTreeMap;

use super::{App, Output, Replica, VoteAcc, MAX_VIEWS_AHEAD};
use crate::protocol::block::BlockHash;
use crate::protocol::certificate::{QuorumCert, Vote};
use crate::protocol::error::VerifyError;
use crate::protocol::validators::ValidatorIndex;

impl<A: App> Replica<A> {
    pub(super) fn on_vote(
        &mut self,
        now: u64,
        from: ValidatorIndex,
        vote: Vote,
    ) -> Result<(), VerifyError> {
        if vote.view.saturating_add(1) < self.view
            || vote.view > self.view.saturating_add(MAX_VIEWS_AHEAD)
        {
            return Ok(());
        }
        if self.voted.contains_key(&(vote.view, vote.voter))
            || self.invalid_senders.contains(&(vote.view, from))
        {
            return Ok(());
        }
        // A vote for a block we hold must name that block's height and view; such a vote can
        // never be part of a QC, so it is refused before the signature check and not recorded.
        if let Some(block) = self.tree.get(&vote.block) {
            if block.height() != vote.height || block.view() != vote.view {
                return Err(VerifyError::VoteMismatch {
                    block: vote.block,
                    height: vote.height,
                    view: vote.view,
                });
            }
        }
        self.stats.signature_checks += 1;
        if let Err(err) = vote.verify(&self.chain) {
            self.invalid_senders.insert((vote.view, from));
            return Err(err);
        }
        self.note_report(from, vote.voter, vote.view);
        self.add_vote(now, vote);
        Ok(())
    }

    /// Counts a verified vote: the first one per `(view, voter)`, in the accumulator of its own
    /// `(view, block, height)`, so a vote that names a wrong height only ever sits beside the
    /// honest ones (audit H1).
    pub(super) fn add_vote(&mut self, now: u64, vote: Vote) {
        if self.voted.contains_key(&(vote.view, vote.voter)) {
            return;
        }
        let acc = self
            .votes
            .entry((vote.view, vote.block, vote.height))
            .or_insert_with(|| VoteAcc {
                height: vote.height,
                signatures: BTreeMap::new(),
            });
        acc.signatures.insert(vote.voter, vote.signature);
        self.voted.insert((vote.view, vote.voter), vote.block);
        if acc.signatures.len() < self.chain.validators().quorum() {
            return;
        }
        let qc = QuorumCert {
            block: vote.block,
            view: vote.view,
            height: acc.height,
            signatures: acc.signatures.iter().map(|(i, s)| (*i, *s)).collect(),
        };
        self.process_qc(now, &qc, vote.voter);
    }

    /// Takes a verified QC into account: high QC, view, commits, sync.
    pub(super) fn process_qc(&mut self, now: u64, qc: &QuorumCert, from: ValidatorIndex) {
        self.note_certificate(qc.view);
        if qc.view > self.safety.high_qc.view {
            self.safety.high_qc = qc.clone();
            self.persist_safety();
        } else if qc.view == self.safety.high_qc.view
            && qc.block == self.safety.high_qc.block
            && qc.signatures.len() > self.safety.high_qc.signatures.len()
        {
            // Same certificate with more signers: better for leader reputation.
            self.safety.high_qc = qc.clone();
        }
        if self.tree.contains(&qc.block) {
            self.report_certified(qc.block);
            self.try_commit(qc);
        } else if qc.height > self.tree.committed_height() {
            self.request_sync(now, from, qc.block);
        }
        self.advance_view(now, qc.view.saturating_add(1), true);
    }

    /// `(B, B')` if `qc` certifies `B'` whose parent `B` is one view older (a direct chain).
    fn direct_chain(&self, qc: &QuorumCert) -> Option<(BlockHash, BlockHash)> {
        let child = self.tree.get(&qc.block)?;
        if child.height() == 0 || qc.view != child.view() {
            return None;
        }
        let parent = self.tree.get(&child.parent())?;
        (parent.view().checked_add(1) == Some(child.view()))
            .then_some((parent.hash(), child.hash()))
    }

    pub(super) fn try_commit(&mut self, qc: &QuorumCert) {
        if let Some((b0, _)) = self.direct_chain(qc) {
            if self
                .tree
                .get(&b0)
                .is_some_and(|b| b.height() > self.tree.committed_height())
            {
                self.commit(b0);
            }
        }
    }

    fn commit(&mut self, target: BlockHash) {
        match self.tree.commit(target) {
            Ok(blocks) => {
                for block in blocks {
                    tracing::debug!(replica = %self.me, height = block.height(), view = block.view(), "commit");
                    self.app.commit(&block);
                    self.stats.commits += 1;
                    self.out.push(Output::Commit(block));
                }
            }
            Err(err) => {
                self.stats.commit_conflicts += 1;
                tracing::error!(replica = %self.me, cause = %err, "safety violation: conflicting commit");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::super::test_support::{from, last_safety, v, Net, TestApp, ME, T0, VIEW_TIMEOUT};
    use super::super::{Output, Persist, Replica};
    use crate::protocol::block::Block;
    use crate::protocol::certificate::Vote;
    use crate::protocol::message::Msg;
    use crate::protocol::safety::SafetyState;

    /// A replica that received block 1 from its leader and voted for it.
    fn voted_on_b1() -> (Net, Replica<TestApp>, Block) {
        let net = Net::new();
        let mut r = net.replica(ME);
        let b1 = net.child(&net.genesis(), net.genesis_qc(), 1, T0);
        r.handle(T0, from(1, net.proposal(b1.clone(), None)));
        assert_eq!(r.stats().votes, 1);
        (net, r, b1)
    }

    #[test]
    fn three_of_four_votes_form_a_qc_and_enter_the_next_view() {
        let (net, mut r, b1) = voted_on_b1();

        assert_eq!(
            r.handle(T0 + 10, from(1, Msg::Vote(net.vote(1, &b1)))),
            vec![]
        );
        assert_eq!(r.status().view, 1);
        let out = r.handle(T0 + 20, from(2, Msg::Vote(net.vote(2, &b1))));

        let safety = SafetyState {
            last_voted_view: 1,
            locked_view: 0,
            high_qc: net.qc(&b1, &[0, 1, 2]),
            high_tc: None,
        };
        assert_eq!(
            out,
            vec![
                Output::Persist(Persist::Safety(safety)),
                // The timer of view 2 runs from b1's time + the block interval (audit H4).
                Output::ScheduleTick(T0 + 500 + VIEW_TIMEOUT),
            ]
        );
        assert_eq!(r.status().view, 2);
        assert_eq!(r.status().high_qc_view, 1);
        assert_eq!(r.status().committed_height, 0);
    }

    #[test]
    fn a_repeated_or_second_vote_from_one_validator_counts_once() {
        let (net, mut r, b1) = voted_on_b1();
        let b1x = net.child(&net.genesis(), net.genesis_qc(), 1, T0 + 1);
        r.handle(T0 + 10, from(1, Msg::Vote(net.vote(1, &b1))));

        assert_eq!(
            r.handle(T0 + 11, from(1, Msg::Vote(net.vote(1, &b1)))),
            vec![]
        );
        assert_eq!(
            r.handle(T0 + 12, from(1, Msg::Vote(net.vote(1, &b1x)))),
            vec![]
        );
        assert_eq!(r.status().view, 1, "two distinct voters are not a quorum");

        let out = r.handle(T0 + 20, from(3, Msg::Vote(net.vote(3, &b1))));
        assert_eq!(
            last_safety(&out).map(|s| s.high_qc),
            Some(net.qc(&b1, &[0, 1, 3]))
        );
        assert_eq!(r.status().view, 2);
    }

    #[test]
    fn a_vote_with_a_bad_signature_is_dropped() {
        let (net, mut r, b1) = voted_on_b1();
        let mut forged = net.vote(1, &b1);
        forged.signature = net.vote(2, &b1).signature;

        // Sent by validator 3 in validator 1's name (a sender that sends a bad signature is
        // ignored for the rest of the view, see the next test).
        assert_eq!(r.handle(T0 + 10, from(3, Msg::Vote(forged))), vec![]);
        assert_eq!(r.stats().invalid_messages, 1);
        // Validator 1's real vote still counts: the forged one was not recorded.
        r.handle(T0 + 11, from(1, Msg::Vote(net.vote(1, &b1))));
        r.handle(T0 + 12, from(2, Msg::Vote(net.vote(2, &b1))));
        assert_eq!(r.status().view, 2);
    }

    #[test]
    fn repeated_bad_signatures_from_one_sender_cost_one_verification_per_view() {
        let (net, mut r, b1) = voted_on_b1();
        let mut forged = net.vote(1, &b1);
        forged.signature = net.vote(2, &b1).signature;
        let before = r.stats().signature_checks;

        for i in 0..10 {
            r.handle(T0 + 10 + i, from(1, Msg::Vote(forged.clone())));
        }

        assert_eq!(r.stats().signature_checks, before + 1);
        assert_eq!(r.stats().invalid_messages, 1);
        // Its votes are ignored for the rest of view 1, others' still count.
        r.handle(T0 + 30, from(1, Msg::Vote(net.vote(1, &b1))));
        assert_eq!(r.stats().signature_checks, before + 1);
        r.handle(T0 + 31, from(2, Msg::Vote(net.vote(2, &b1))));
        r.handle(T0 + 32, from(3, Msg::Vote(net.vote(3, &b1))));
        assert_eq!(r.status().view, 2);
    }

    #[test]
    fn an_invalid_qc_is_verified_once() {
        let net = Net::new();
        let mut r = net.replica(ME);
        let b1 = net.child(&net.genesis(), net.genesis_qc(), 1, T0);
        let mut qc = net.qc(&b1, &[1, 2, 3]);
        qc.signatures[2].1 = net.vote(1, &b1).signature; // the bad one last
        let sync = Msg::SyncInfo {
            high_qc: qc,
            high_tc: None,
        };

        r.handle(T0, from(1, sync.clone()));
        assert_eq!(r.stats().signature_checks, 3);
        for i in 0..10 {
            r.handle(T0 + 1 + i, from(1, sync.clone()));
        }

        assert_eq!(r.stats().signature_checks, 3);
        assert_eq!(r.stats().invalid_messages, 11);
        assert_eq!(r.status().view, 1);
    }

    /// A validly signed vote for `block` that names another height.
    fn wrong_height_vote(net: &Net, voter: u16, block: &Block) -> Vote {
        Vote::new(
            &net.chain,
            net.key(v(voter)),
            v(voter),
            block.view(),
            block.height() + 7,
            block.hash(),
        )
    }

    #[test]
    fn a_wrong_height_vote_that_arrives_before_the_block_does_not_stop_the_qc() {
        let net = Net::new();
        let mut r = net.replica(ME);
        let b1 = net.child(&net.genesis(), net.genesis_qc(), 1, T0);
        // Validator 1 poisons first: the block is not known yet, so the height cannot be checked.
        r.handle(T0, from(1, Msg::Vote(wrong_height_vote(&net, 1, &b1))));
        r.handle(T0 + 1, from(1, net.proposal(b1.clone(), None)));
        assert_eq!(r.stats().votes, 1);
        r.handle(T0 + 10, from(2, Msg::Vote(net.vote(2, &b1))));

        let out = r.handle(T0 + 20, from(3, Msg::Vote(net.vote(3, &b1))));

        assert_eq!(
            last_safety(&out).map(|s| s.high_qc),
            Some(net.qc(&b1, &[0, 2, 3]))
        );
        assert_eq!(r.status().view, 2);
    }

    #[test]
    fn a_wrong_height_vote_for_a_known_block_is_refused_and_the_real_vote_still_counts() {
        let (net, mut r, b1) = voted_on_b1();

        assert_eq!(
            r.handle(T0 + 10, from(1, Msg::Vote(wrong_height_vote(&net, 1, &b1)))),
            vec![]
        );
        assert_eq!(r.stats().invalid_messages, 1);
        r.handle(T0 + 11, from(1, Msg::Vote(net.vote(1, &b1))));
        let out = r.handle(T0 + 12, from(2, Msg::Vote(net.vote(2, &b1))));

        assert_eq!(
            last_safety(&out).map(|s| s.high_qc),
            Some(net.qc(&b1, &[0, 1, 2]))
        );
        assert_eq!(r.status().view, 2);
    }

    #[test]
    fn a_qc_for_a_child_one_view_newer_commits_the_parent() {
        let (net, mut r, b1) = voted_on_b1();
        let b2 = net.child(&b1, net.qc(&b1, &[1, 2, 3]), 2, T0 + 500);
        r.handle(T0 + 500, from(2, net.proposal(b2.clone(), None)));
        assert_eq!(r.status().view, 2);
        assert_eq!(r.stats().votes, 2);
        r.handle(T0 + 510, from(2, Msg::Vote(net.vote(2, &b2))));

        let out = r.handle(T0 + 520, from(3, Msg::Vote(net.vote(3, &b2))));

        let safety = SafetyState {
            last_voted_view: 2,
            locked_view: 1,
            high_qc: net.qc(&b2, &[0, 2, 3]),
            high_tc: None,
        };
        assert_eq!(
            out,
            vec![
                Output::Persist(Persist::Safety(safety)),
                Output::Commit(Arc::new(b1)),
                Output::ScheduleTick(T0 + 1_000 + VIEW_TIMEOUT),
            ]
        );
        assert_eq!(r.app().committed, [1]);
        assert_eq!(r.status().committed_height, 1);
        assert_eq!(r.status().view, 3);
    }

    #[test]
    fn a_qc_after_a_skipped_view_does_not_commit_the_parent() {
        let (net, mut r, b1) = voted_on_b1();
        let qc1 = net.qc(&b1, &[1, 2, 3]);
        // View 2 failed; block 3 extends block 1 after a TC for view 2.
        let tc2 = net.tc(2, qc1.clone(), &[1, 2, 3]);
        let b3 = Block::new(
            2,
            3,
            v(3), // the leader of view 3 on top of block 1
            T0 + 5_000,
            qc1,
            2u64.to_be_bytes().to_vec(),
        );
        let failed = crate::protocol::leader::failed_leaders(
            3,
            1,
            b1.hash(),
            &r.tree,
            r.chain.validators(),
            r.config.reputation_window,
        );
        let b3 = b3.with_failed_leaders(failed);
        r.handle(T0 + 5_000, from(3, net.proposal(b3.clone(), Some(tc2))));
        assert_eq!(r.status().view, 3);

        assert!(r.tree.contains(&b3.hash()));
        let sync = Msg::SyncInfo {
            high_qc: net.qc(&b3, &[1, 2, 3]),
            high_tc: None,
        };

        let out = r.handle(T0 + 5_010, from(2, sync));

        assert!(!out.iter().any(|o| matches!(o, Output::Commit(_))));
        assert_eq!(r.status().committed_height, 0);
        assert_eq!(r.status().view, 4);
    }
}
