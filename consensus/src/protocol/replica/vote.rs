//! Votes, quorum certificates and the 2-chain commit rule.
//!
//! # Invariants
//! - At most one vote per `(view, voter)` is counted; a second one (even for another block) is
//!   ignored. Votes more than one view behind or [`MAX_VIEWS_AHEAD`] ahead are dropped.
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
        _from: ValidatorIndex,
        vote: Vote,
    ) -> Result<(), VerifyError> {
        if vote.view + 1 < self.view || vote.view > self.view + MAX_VIEWS_AHEAD {
            return Ok(());
        }
        if self.voted.contains_key(&(vote.view, vote.voter)) {
            return Ok(());
        }
        vote.verify(&self.chain)?;
        self.add_vote(now, vote);
        Ok(())
    }

    pub(super) fn add_vote(&mut self, now: u64, vote: Vote) {
        if self
            .voted
            .insert((vote.view, vote.voter), vote.block)
            .is_some()
        {
            return;
        }
        let acc = self
            .votes
            .entry((vote.view, vote.block))
            .or_insert_with(|| VoteAcc {
                height: vote.height,
                signatures: BTreeMap::new(),
            });
        if acc.height != vote.height {
            return; // signed for a different height: cannot be combined
        }
        acc.signatures.insert(vote.voter, vote.signature);
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
            self.try_commit(qc);
        } else if qc.height > self.tree.committed_height() {
            self.request_sync(now, from, qc.block);
        }
        self.advance_view(now, qc.view + 1, true);
    }

    /// `(B, B')` if `qc` certifies `B'` whose parent `B` is one view older (a direct chain).
    fn direct_chain(&self, qc: &QuorumCert) -> Option<(BlockHash, BlockHash)> {
        let child = self.tree.get(&qc.block)?;
        if child.height() == 0 || qc.view != child.view() {
            return None;
        }
        let parent = self.tree.get(&child.parent())?;
        (child.view() == parent.view() + 1).then_some((parent.hash(), child.hash()))
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
