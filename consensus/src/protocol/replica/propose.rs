//! Leading a view (`maybe_propose`) and receiving proposals (`on_proposal`).
//!
//! # Invariants
//! - A leader's block and its raised `last_voted_view` are queued for persistence before the
//!   proposal is broadcast (audit L1): after a crash it never proposes twice in one view.
//! - A replica proposes at most once per view (`proposed_view`), only as the view's leader, only
//!   after entering the view through a QC or TC for the previous view. Its block is stamped
//!   `max(now, parent.timestamp + min_block_interval_ms)`; it waits only while that is more
//!   than half of `max_clock_drift_ms` ahead of its clock (audit H4).
//! - A proposal's signature, justify QC and TC are verified before any state changes; its
//!   certificates are processed (they may advance the view) before it is judged.
//! - A valid block is stored (and `Persist::Block` emitted) even when we do not vote for it.
//! - We vote only in the current view, only if [`SafetyState::safe_to_vote`] and the app's
//!   `validate` agree, and the new safety state is queued for persistence *before* the vote is
//!   broadcast. Our own proposal goes through the same path.
//!
//! [`SafetyState::safe_to_vote`]: crate::protocol::safety::SafetyState::safe_to_vote

use std::sync::Arc;

use super::{App, Output, Persist, Replica};
use crate::protocol::block::Block;
use crate::protocol::certificate::Vote;
use crate::protocol::codec::MAX_PAYLOAD_BYTES;
use crate::protocol::config::TestFault;
use crate::protocol::error::VerifyError;
use crate::protocol::leader::{failed_leaders, leader};
use crate::protocol::message::{Msg, Proposal};
use crate::protocol::validators::ValidatorIndex;

impl<A: App> Replica<A> {
    fn can_propose(&self) -> Option<Arc<Block>> {
        if self.proposed_view >= self.view || self.amnesia.is_some() {
            return None;
        }
        let entered = self.safety.high_qc.view.checked_add(1) == Some(self.view)
            || self
                .safety
                .high_tc
                .as_ref()
                .is_some_and(|tc| tc.view.checked_add(1) == Some(self.view));
        if !entered {
            return None;
        }
        let parent = self.tree.get(&self.safety.high_qc.block)?;
        let leader = leader(
            self.view,
            parent.hash(),
            &self.tree,
            self.chain.validators(),
            self.config.reputation_window,
        )?;
        (leader == self.me).then(|| Arc::clone(parent))
    }

    /// Proposes if we lead this view and pacing allows; returns when to try again.
    pub(super) fn maybe_propose(&mut self, now: u64) -> Option<u64> {
        let parent = self.can_propose()?;
        let earliest = self.idle_earliest_proposal(
            parent.timestamp_ms(),
            parent
                .timestamp_ms()
                .saturating_add(self.config.min_block_interval_ms),
        );
        // Stamp the block `max(now, earliest)` rather than wait, while that is at most half the
        // drift ahead of our clock (the other half is slack for voters whose clocks are behind
        // ours): a parent stamped in the future costs us little time (audit H4).
        let slack = self.config.max_clock_drift_ms / 2;
        if earliest > now.saturating_add(slack) {
            return Some(earliest - slack);
        }
        let ts = match self.config.test_fault {
            Some(TestFault::FutureTimestamps) => now
                .saturating_add(self.config.max_clock_drift_ms)
                .max(earliest),
            _ => now.max(earliest),
        };
        let payload = match self.config.test_fault {
            Some(TestFault::InvalidPayload) => self.app.propose_invalid(&parent, ts),
            _ => self.app.propose(&parent, ts),
        };
        if payload.len() > MAX_PAYLOAD_BYTES {
            tracing::error!(replica = %self.me, len = payload.len(), "app proposed an oversized payload");
            self.proposed_view = self.view;
            return None;
        }
        let tc = if self.safety.high_qc.view.saturating_add(1) == self.view {
            None
        } else {
            self.safety.high_tc.clone()
        };
        let failed = failed_leaders(
            self.view,
            self.safety.high_qc.view,
            parent.hash(),
            &self.tree,
            self.chain.validators(),
            self.config.reputation_window,
        );
        let block = Block::new(
            parent.height().saturating_add(1),
            self.view,
            self.me,
            ts,
            self.safety.high_qc.clone(),
            payload,
        )
        .with_failed_leaders(failed);
        tracing::debug!(replica = %self.me, view = self.view, height = block.height(), "propose");
        let proposal = Proposal::new(&self.chain, &self.key, block, tc);
        let view = self.view;
        self.proposed_view = view;
        self.stats.proposals += 1;
        // Store the block and vote for it through the normal path first: the block and the
        // raised `last_voted_view` are persisted before the proposal leaves (audit L1), so a
        // replica that crashes right after sending never proposes a second block in this view.
        let mark = self.out.len();
        if let Err(err) = self.on_own_proposal(now, proposal.clone()) {
            tracing::error!(replica = %self.me, cause = %err, "own proposal invalid");
        }
        if self.safety.last_voted_view < view {
            // We did not vote for our own block; still never propose again in this view.
            self.safety.last_voted_view = view;
            self.persist_safety();
        }
        let at = self.out[mark..]
            .iter()
            .position(|o| !matches!(o, Output::Persist(_)))
            .map_or(self.out.len(), |i| mark + i);
        self.out
            .insert(at, Output::Broadcast(Msg::Proposal(proposal.clone())));
        if self.config.test_fault == Some(TestFault::WrongHeightVotes) {
            let poison = self.wrong_height_vote(&proposal.block);
            self.out.insert(at, Output::Broadcast(Msg::Vote(poison)));
        }
        None
    }

    /// Test fault [`TestFault::WrongHeightVotes`]: a validly signed vote for `block` that names
    /// a height it does not have.
    fn wrong_height_vote(&self, block: &Block) -> Vote {
        Vote::new(
            &self.chain,
            &self.key,
            self.me,
            block.view(),
            block.height().wrapping_add(7),
            block.hash(),
        )
    }

    /// Broadcasts our vote (test faults may withhold, poison or repeat it).
    fn send_vote(&mut self, block: &Block, vote: &Vote) {
        let copies = match self.config.test_fault {
            Some(TestFault::WithholdVotes) => 0,
            Some(TestFault::WrongHeightVotes) => {
                let poison = self.wrong_height_vote(block);
                self.out.push(Output::Broadcast(Msg::Vote(poison)));
                1
            }
            Some(TestFault::Flood(n)) => n.max(1),
            _ => 1,
        };
        for _ in 0..copies {
            self.out.push(Output::Broadcast(Msg::Vote(vote.clone())));
        }
    }

    fn on_own_proposal(&mut self, now: u64, p: Proposal) -> Result<(), VerifyError> {
        let me = self.me;
        self.on_proposal(now, me, p)
    }

    pub(super) fn on_proposal(
        &mut self,
        now: u64,
        from: ValidatorIndex,
        p: Proposal,
    ) -> Result<(), VerifyError> {
        let Proposal {
            block,
            tc,
            signature,
        } = p;
        if self.tree.contains(&block.hash()) && block.view() <= self.safety.last_voted_view {
            return Ok(()); // duplicate
        }
        if self.proposal_is_stale(block.view()) {
            self.stats.rejected_proposals += 1;
            return Ok(());
        }
        if block.payload().len() > MAX_PAYLOAD_BYTES {
            return Err(VerifyError::PayloadTooLarge(block.payload().len()));
        }
        let proposal = Proposal {
            block,
            tc: None,
            signature,
        };
        proposal.verify_signature(&self.chain)?;
        let block = proposal.block;
        self.note_report(from, block.proposer(), block.view());
        let justify = block.justify().clone();
        self.verify_qc(&justify)?;
        if let Some(tc) = &tc {
            self.verify_tc(tc)?;
        }
        self.process_qc(now, &justify, from);
        if let Some(tc) = &tc {
            self.process_tc(now, tc, from);
        }
        let justified = justify.view.checked_add(1) == Some(block.view())
            || tc
                .as_ref()
                .is_some_and(|tc| tc.view.checked_add(1) == Some(block.view()));
        if !justified {
            return Err(VerifyError::UnjustifiedView {
                view: block.view(),
                qc_view: justify.view,
                prev: block.view().saturating_sub(1),
            });
        }
        if block.view() > self.view {
            return Ok(()); // cannot happen after processing its own certificates
        }
        let Some(parent) = self.tree.get(&block.parent()).cloned() else {
            self.request_sync(now, from, block.parent());
            let signature = proposal.signature;
            self.keep_orphan(
                from,
                Proposal {
                    block,
                    tc,
                    signature,
                },
            );
            return Ok(());
        };
        if parent.height().checked_add(1) != Some(block.height())
            || block.view() <= parent.view()
            || justify.view != parent.view()
            || justify.height != parent.height()
        {
            return Err(VerifyError::BadParent(block.hash()));
        }
        let expected = leader(
            block.view(),
            parent.hash(),
            &self.tree,
            self.chain.validators(),
            self.config.reputation_window,
        );
        if expected != Some(block.proposer()) {
            self.stats.rejected_proposals += 1;
            tracing::debug!(replica = %self.me, proposer = %block.proposer(), "proposal from a non-leader");
            return Ok(());
        }
        let failed = failed_leaders(
            block.view(),
            justify.view,
            parent.hash(),
            &self.tree,
            self.chain.validators(),
            self.config.reputation_window,
        );
        if block.failed_leaders() != failed.as_slice() {
            self.stats.rejected_proposals += 1;
            tracing::debug!(replica = %self.me, "proposal lists the wrong failed leaders");
            return Ok(());
        }
        let ts = block.timestamp_ms();
        if ts
            < parent
                .timestamp_ms()
                .saturating_add(self.config.min_block_interval_ms)
        {
            self.stats.rejected_proposals += 1;
            tracing::debug!(replica = %self.me, ts, "proposal too close to its parent");
            return Ok(());
        }
        let current = block.view() == self.view;
        let drift = self.config.max_clock_drift_ms;
        if current && (ts > now.saturating_add(drift) || ts.saturating_add(drift) < now) {
            self.stats.rejected_proposals += 1;
            tracing::debug!(replica = %self.me, ts, now, "proposal block time too far from our clock");
            return Ok(());
        }
        if !self.tree.contains(&block.hash()) && !self.admit_proposed_block(&block) {
            self.stats.rejected_proposals += 1;
            tracing::debug!(replica = %self.me, proposer = %block.proposer(), view = block.view(), "equivocating proposal beyond the evidence kept");
            return Ok(());
        }
        // Keep the block even when we will not vote: its QC may already be on its way.
        let block = Arc::new(block);
        if self.tree.insert(Arc::clone(&block)) {
            self.out
                .push(Output::Persist(Persist::Block(Arc::clone(&block))));
            if self.safety.high_qc.block == block.hash() {
                let qc = self.safety.high_qc.clone();
                self.try_commit(&qc);
            }
        }
        if !current
            || !self
                .safety
                .safe_to_vote(block.view(), justify.view, tc.as_ref())
        {
            return Ok(());
        }
        if self.amnesia.is_some() {
            self.stats.abstained += 1;
            tracing::debug!(replica = %self.me, view = block.view(), "amnesia guard: not voting");
            return Ok(());
        }
        if let Err(reject) = self.app.validate(&parent, block.payload(), ts) {
            self.stats.rejected_proposals += 1;
            tracing::info!(replica = %self.me, height = block.height(), cause = %reject, "refused to vote");
            return Ok(());
        }
        self.safety.last_voted_view = block.view();
        self.safety.locked_view = self.safety.locked_view.max(justify.view);
        self.persist_safety();
        let vote = Vote::new(
            &self.chain,
            &self.key,
            self.me,
            block.view(),
            block.height(),
            block.hash(),
        );
        self.stats.votes += 1;
        // All-to-all votes: every replica forms the QC and moves on, so a crashed next leader
        // costs one view, not two, and every replica's high QC stays current.
        self.send_vote(&block, &vote);
        self.add_vote(now, vote);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::super::test_support::{from, v, Net, TestApp, ME, T0, VIEW_TIMEOUT};
    use super::super::{Input, Output, Persist, Replica};
    use crate::protocol::block::Block;
    use crate::protocol::certificate::Vote;
    use crate::protocol::config::Config;
    use crate::protocol::message::{Msg, Proposal};
    use crate::protocol::safety::SafetyState;

    fn voted(view: u64) -> SafetyState {
        let mut safety = SafetyState::initial(Net::new().genesis_qc());
        safety.last_voted_view = view;
        safety
    }

    #[test]
    fn leader_proposal_is_stored_then_safety_persisted_then_vote_broadcast() {
        let net = Net::new();
        let mut r = net.replica(ME);
        let b1 = net.child(&net.genesis(), net.genesis_qc(), 1, T0);

        let out = r.handle(T0, from(1, net.proposal(b1.clone(), None)));

        let vote = Vote::new(&net.chain, net.key(ME), ME, 1, 1, b1.hash());
        assert_eq!(
            out,
            vec![
                Output::Persist(Persist::Block(Arc::new(b1))),
                Output::Persist(Persist::Safety(voted(1))),
                Output::Broadcast(Msg::Vote(vote)),
                Output::ScheduleTick(T0 + VIEW_TIMEOUT),
            ]
        );
        assert_eq!(r.stats().votes, 1);
        assert_eq!(r.status().last_voted_view, 1);
    }

    #[test]
    fn proposal_from_a_non_leader_is_refused() {
        let net = Net::new();
        let mut r = net.replica(ME);
        // View 1 belongs to validator 1; validator 2 proposes anyway (validly signed).
        let block = Block::new(
            1,
            1,
            v(2),
            T0,
            net.genesis_qc(),
            1u64.to_be_bytes().to_vec(),
        );

        let out = r.handle(T0, from(2, net.proposal(block.clone(), None)));

        assert_eq!(out, vec![Output::ScheduleTick(T0 + VIEW_TIMEOUT)]);
        assert_eq!(r.stats().rejected_proposals, 1);
        assert_eq!(r.stats().votes, 0);
        assert!(!r.tree.contains(&block.hash()));
    }

    #[test]
    fn proposal_with_a_forged_signature_is_dropped() {
        let net = Net::new();
        let mut r = net.replica(ME);
        let b1 = net.child(&net.genesis(), net.genesis_qc(), 1, T0);
        // Signed by validator 2, although validator 1 is the proposer.
        let forged = Proposal::new(&net.chain, net.key(v(2)), b1.clone(), None);

        let out = r.handle(T0, from(1, Msg::Proposal(forged)));

        assert_eq!(out, vec![Output::ScheduleTick(T0 + VIEW_TIMEOUT)]);
        assert_eq!(r.stats().invalid_messages, 1);
        assert!(!r.tree.contains(&b1.hash()));
    }

    #[test]
    fn second_conflicting_proposal_in_a_voted_view_is_stored_but_not_voted() {
        let net = Net::new();
        let mut r = net.replica(ME);
        let b1 = net.child(&net.genesis(), net.genesis_qc(), 1, T0);
        let b1x = net.child(&net.genesis(), net.genesis_qc(), 1, T0 + 1);
        r.handle(T0, from(1, net.proposal(b1, None)));

        let out = r.handle(T0 + 5, from(1, net.proposal(b1x.clone(), None)));

        assert_eq!(out, vec![Output::Persist(Persist::Block(Arc::new(b1x)))]);
        assert_eq!(r.stats().votes, 1);
    }

    #[test]
    fn late_proposal_in_a_timed_out_view_gets_no_vote() {
        let net = Net::new();
        let mut r = net.replica(ME);
        r.handle(T0, Input::Tick);
        let timed_out = r.handle(T0 + VIEW_TIMEOUT, Input::Tick);
        assert!(matches!(timed_out[1], Output::Broadcast(Msg::Timeout(_))));
        let b1 = net.child(&net.genesis(), net.genesis_qc(), 1, T0 + VIEW_TIMEOUT);

        let out = r.handle(T0 + VIEW_TIMEOUT, from(1, net.proposal(b1.clone(), None)));

        assert_eq!(out, vec![Output::Persist(Persist::Block(Arc::new(b1)))]);
        assert_eq!(r.stats().votes, 0);
    }

    #[test]
    fn leader_proposes_once_the_parent_is_old_enough_and_votes_for_it() {
        let net = Net::new();
        let me = v(1); // the leader of view 1
        let mut r = net.replica(me);
        let interval = r.config.min_block_interval_ms;
        // Audit H4: the leader need not wait for `parent + interval`; it may stamp the block up
        // to half the drift ahead of its clock.
        let early = interval - r.config.max_clock_drift_ms / 2;

        assert_eq!(r.handle(0, Input::Tick), vec![Output::ScheduleTick(early)]);
        let out = r.handle(early, Input::Tick);

        let block = Block::new(
            1,
            1,
            me,
            interval,
            net.genesis_qc(),
            1u64.to_be_bytes().to_vec(),
        );
        let proposal = Proposal::new(&net.chain, net.key(me), block.clone(), None);
        let vote = Vote::new(&net.chain, net.key(me), me, 1, 1, block.hash());
        assert_eq!(
            out,
            // Audit L1: block and vote are durable before the proposal leaves.
            vec![
                Output::Persist(Persist::Block(Arc::new(block))),
                Output::Persist(Persist::Safety(voted(1))),
                Output::Broadcast(Msg::Proposal(proposal)),
                Output::Broadcast(Msg::Vote(vote)),
                // The view timer runs from `parent + interval`.
                Output::ScheduleTick(interval + VIEW_TIMEOUT),
            ]
        );
        assert_eq!(r.stats().proposals, 1);
        // Never twice in one view.
        assert!(r.handle(interval + 1, Input::Tick).is_empty());
    }

    #[test]
    fn a_leader_that_cannot_vote_for_its_block_still_persists_the_view_before_proposing() {
        let net = Net::new();
        let me = v(1);
        let mut r = net.replica(me);
        r.app_mut().refuse = true;
        let interval = r.config.min_block_interval_ms;
        r.handle(0, Input::Tick);

        let out = r.handle(interval, Input::Tick);

        let proposal_at = out
            .iter()
            .position(|o| matches!(o, Output::Broadcast(Msg::Proposal(_))))
            .expect("proposes");
        let safety_at = out
            .iter()
            .position(
                |o| matches!(o, Output::Persist(Persist::Safety(s)) if s.last_voted_view == 1),
            )
            .expect("persists view 1 as used");
        assert!(safety_at < proposal_at, "{out:?}");
        assert_eq!(r.stats().votes, 0);
        // Restored from that safety state, it does not propose again in view 1.
        let mut restored = Replica::restore(
            net.chain.clone(),
            net.key(me).clone(),
            Config::default(),
            TestApp::default(),
            voted(1),
            Vec::new(),
            net.genesis().hash(),
        )
        .expect("restore");
        let again = restored.handle(interval + 5, Input::Tick);
        assert!(
            !again
                .iter()
                .any(|o| matches!(o, Output::Broadcast(Msg::Proposal(_)))),
            "{again:?}"
        );
    }
}
