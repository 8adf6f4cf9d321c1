//! The amnesia guard (audit M5): a replica restored without a trustworthy safety record (a
//! restored backup, a wiped or lost store) does not know which views it already signed in.
//! Signing again could be a second, conflicting vote in one view, or a timeout that reports an
//! older high QC than the one it had, and either one weakens the quorum intersection that
//! safety rests on. Such a replica is built with [`Replica::restore_untrusted`] and abstains
//! until it is provably past every view it could have signed in.
//!
//! # The rule
//! While guarded, the replica proposes nothing, votes for nothing and sends no timeout (with
//! one exception, below). It listens:
//! 1. **Reports.** Every validly signed vote, timeout or proposal that a validator sent itself
//!    (the authenticated sender is the signer) reports that validator's view. Once reports
//!    from a quorum of *other* validators are in, `floor = (highest reported view) + 1`.
//! 2. **Certificate.** The guard lifts when a verified QC or TC for a view `>= floor` is
//!    processed. The replica is then in a view above `floor` and signs normally.
//!
//! # Why it is safe
//! Let `c` be the highest view with a certificate when the old incarnation stopped. It could
//! only have signed in views `<= c + 1` (a view is entered through a certificate for the one
//! before). The certificate for `c` was signed by a quorum; at most `f` of them are Byzantine
//! and one may be the old incarnation, so at least `f` honest *other* validators signed in `c`
//! and never report a view below `c` afterwards. Any quorum of other validators (`2f + 1` out
//! of `3f`) contains one of them, so `floor > c`, i.e. `floor >= c + 1`: every view the old
//! incarnation could have signed in is `<= floor`. Messages received after a restart were sent
//! on connections opened after it, so they are not stale reports from before the crash.
//! A certificate for a view `>= floor` was formed without us (we signed nothing), so its high
//! QC is at least as high as anything a quorum of honest voters locked before the crash; taking
//! it into account restores a high QC that is safe to report in timeouts.
//!
//! # A fresh chain
//! (View 1 and genesis below stand for an epoch's first view and its root block: in epoch
//! `e > 0` the first view is the root's view + 1; see `Chain::next_epoch`.)
//! If every replica starts guarded on a new chain, nobody would ever sign. Two things keep a
//! fresh chain alive:
//! - A timeout for view 1 is always signed over `(view 1, high QC view 0)`: the only QC before
//!   view 1 ends is genesis. Re-signing it gives the same bytes as before, so a guarded replica
//!   may send it.
//! - If the replica restored nothing beyond genesis (no blocks, no vote), a quorum of other
//!   validators signed and sent something *in view 1* since the restart, and no certificate
//!   above view 1 was heard, the chain is taken to be fresh and the guard lifts at once (all
//!   guarded replicas time out view 1 together, which costs one view at the start). By the
//!   argument above, that quorum holds an honest signer of the highest certificate `c` at the
//!   crash, which would never sign in view 1 again if `c >= 2`; so `c <= 1`.
//!
//!   Residual risk, accepted: `c = 1`, and the old incarnation entered view 2 through that
//!   view-1 certificate and signed there.
//!
//! # Liveness
//! The guarded replica counts as one faulty validator until the guard lifts: with `f` other
//! faults it may wait until they recover.

use std::collections::{BTreeMap, BTreeSet};

use super::{App, Replica};
use crate::protocol::validators::ValidatorIndex;

/// What a guarded replica has learned so far.
#[derive(Debug, Default)]
pub(super) struct AmnesiaGuard {
    /// Highest view each other validator reported in a message it signed and sent itself.
    reports: BTreeMap<ValidatorIndex, u64>,
    /// `highest report + 1` once a quorum of other validators reported.
    floor: Option<u64>,
    /// Other validators that signed and sent something for view 1 since the restart.
    in_view_1: BTreeSet<ValidatorIndex>,
    /// The replica restored nothing beyond genesis (no blocks, no vote).
    restored_genesis_only: bool,
    /// A verified certificate for a view above 1 was processed.
    saw_certificate_above_1: bool,
}

impl AmnesiaGuard {
    pub(super) fn new(restored_genesis_only: bool) -> Self {
        Self {
            restored_genesis_only,
            ..Self::default()
        }
    }
}

impl<A: App> Replica<A> {
    /// Whether the guard is up.
    #[must_use]
    pub fn is_guarded(&self) -> bool {
        self.amnesia.is_some()
    }

    /// Whether a timeout for the current view may be signed (always, unless guarded; while
    /// guarded only the view-1 timeout over the genesis QC, which is byte-identical to any
    /// timeout signed in view 1 before).
    pub(super) fn may_time_out(&self) -> bool {
        self.amnesia.is_none()
            || (self.view == self.first_view()
                && self.safety.high_qc.view == self.chain.genesis().view())
    }

    /// `signer`, which sent this message itself when `from == signer`, is in view `view`.
    pub(super) fn note_report(&mut self, from: ValidatorIndex, signer: ValidatorIndex, view: u64) {
        if from != signer || signer == self.me {
            return;
        }
        let quorum = self.chain.validators().quorum();
        let first_view = self.first_view();
        let Some(guard) = self.amnesia.as_mut() else {
            return;
        };
        let seen = guard.reports.entry(signer).or_insert(0);
        *seen = (*seen).max(view);
        if view <= first_view {
            guard.in_view_1.insert(signer);
        }
        if guard.restored_genesis_only
            && guard.in_view_1.len() >= quorum
            && !guard.saw_certificate_above_1
        {
            tracing::info!(replica = %self.me, "amnesia guard lifted: nothing beyond genesis exists");
            self.amnesia = None;
            return;
        }
        if guard.floor.is_some() || guard.reports.len() < quorum {
            return;
        }
        let highest = guard.reports.values().copied().max().unwrap_or(0);
        let floor = highest.saturating_add(1);
        guard.floor = Some(floor);
        tracing::info!(replica = %self.me, floor, "amnesia guard: waiting for a certificate at or above the floor");
    }

    /// A verified certificate for `view` was processed.
    pub(super) fn note_certificate(&mut self, view: u64) {
        let first_view = self.first_view();
        let Some(guard) = self.amnesia.as_mut() else {
            return;
        };
        if view > first_view {
            guard.saw_certificate_above_1 = true;
        }
        if guard.floor.is_some_and(|floor| view >= floor) {
            tracing::info!(replica = %self.me, view, "amnesia guard lifted by a certificate");
            self.amnesia = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{from, Net, TestApp, ME, T0, VIEW_TIMEOUT};
    use super::super::{Input, Output, Replica};
    use crate::protocol::block::Block;
    use crate::protocol::config::Config;
    use crate::protocol::message::Msg;
    use crate::protocol::safety::SafetyState;

    fn restored(net: &Net, blocks: Vec<Block>, trusted: bool) -> Replica<TestApp> {
        let safety = SafetyState::initial(net.genesis_qc());
        let args = (
            net.chain.clone(),
            net.key(ME).clone(),
            Config::default(),
            TestApp::default(),
        );
        let genesis = net.genesis().hash();
        if trusted {
            Replica::restore(args.0, args.1, args.2, args.3, safety, blocks, genesis)
        } else {
            Replica::restore_untrusted(args.0, args.1, args.2, args.3, safety, blocks, genesis)
        }
        .expect("restore")
    }

    fn votes(out: &[Output]) -> usize {
        out.iter()
            .filter(|o| matches!(o, Output::Broadcast(Msg::Vote(_))))
            .count()
    }

    fn timeouts(out: &[Output]) -> usize {
        out.iter()
            .filter(|o| matches!(o, Output::Broadcast(Msg::Timeout(_))))
            .count()
    }

    #[test]
    fn a_replica_that_lost_its_safety_record_does_not_vote_again_in_a_view_it_voted_in() {
        let net = Net::new();
        let b1 = net.child(&net.genesis(), net.genesis_qc(), 1, T0);
        let b1x = net.child(&net.genesis(), net.genesis_qc(), 1, T0 + 1);
        let mut before = net.replica(ME);
        assert_eq!(
            votes(&before.handle(T0, from(1, net.proposal(b1.clone(), None)))),
            1
        );

        // The store lost the safety record; the leader of view 1 equivocates.
        let mut guarded = restored(&net, vec![b1.clone()], false);
        let out = guarded.handle(T0 + 5, from(1, net.proposal(b1x.clone(), None)));
        assert_eq!(votes(&out), 0, "{out:?}");
        assert_eq!(guarded.stats().abstained, 1);
        assert!(guarded.is_guarded());

        // Control: restored as if the record were trustworthy, it signs the double vote.
        let mut amnesiac = restored(&net, vec![b1], true);
        assert_eq!(
            votes(&amnesiac.handle(T0 + 5, from(1, net.proposal(b1x, None)))),
            1
        );
    }

    #[test]
    fn a_guarded_replica_sends_no_timeout_past_view_one() {
        let net = Net::new();
        let b1 = net.child(&net.genesis(), net.genesis_qc(), 1, T0);
        let mut guarded = restored(&net, vec![b1.clone()], false);
        // It learns QC(b1) and enters view 2, where nothing happens.
        guarded.handle(
            T0,
            from(
                2,
                Msg::SyncInfo {
                    high_qc: net.qc(&b1, &[1, 2, 3]),
                    high_tc: None,
                },
            ),
        );
        assert_eq!(guarded.status().view, 2);
        let out = guarded.handle(T0 + 10 * VIEW_TIMEOUT, Input::Tick);
        assert_eq!(timeouts(&out), 0, "{out:?}");
        assert_eq!(guarded.stats().timeouts, 0);
    }

    #[test]
    fn the_guard_lifts_after_a_quorum_of_reports_and_a_certificate_at_the_floor() {
        let net = Net::new();
        let b1 = net.child(&net.genesis(), net.genesis_qc(), 1, T0);
        let mut r = restored(&net, vec![b1.clone()], false);
        // Validators 1, 2 and 3 report view 1 by voting for b1 themselves: the floor is 2.
        r.handle(T0 + 1, from(1, Msg::Vote(net.vote(1, &b1))));
        r.handle(T0 + 2, from(2, Msg::Vote(net.vote(2, &b1))));
        r.handle(T0 + 3, from(3, Msg::Vote(net.vote(3, &b1))));
        assert_eq!(r.amnesia.as_ref().and_then(|g| g.floor), Some(2));
        assert_eq!(r.status().view, 2, "QC(b1) formed from their votes");
        assert!(r.is_guarded(), "QC for view 1 is below the floor");

        // View 2: no vote while guarded.
        let b2 = net.child(&b1, net.qc(&b1, &[1, 2, 3]), 2, T0 + 500);
        assert_eq!(
            votes(&r.handle(T0 + 500, from(2, net.proposal(b2.clone(), None)))),
            0
        );
        // QC(b2) is a certificate at the floor: the guard lifts and view 3 gets our vote.
        for voter in 1..=3 {
            r.handle(T0 + 510, from(voter, Msg::Vote(net.vote(voter, &b2))));
        }
        assert!(!r.is_guarded());
        assert_eq!(r.status().view, 3);
        let leader = crate::protocol::leader::leader(
            3,
            b2.hash(),
            &r.tree,
            r.chain.validators(),
            r.config.reputation_window,
        )
        .expect("a leader");
        let b3 = Block::new(
            3,
            3,
            leader,
            T0 + 1_000,
            net.qc(&b2, &[1, 2, 3]),
            3u64.to_be_bytes().to_vec(),
        );
        let out = r.handle(T0 + 1_000, from(leader.0, net.proposal(b3, None)));
        assert_eq!(votes(&out), 1, "{out:?}");
    }

    #[test]
    fn a_fresh_chain_of_guarded_replicas_starts() {
        let net = Net::new();
        let mut r = restored(&net, Vec::new(), false);
        r.handle(0, Input::Tick);
        // The view-1 timeout over the genesis QC is the only thing a guarded replica signs.
        let out = r.handle(VIEW_TIMEOUT + 500, Input::Tick);
        assert_eq!(timeouts(&out), 1, "{out:?}");
        for sender in 1..=3 {
            r.handle(
                VIEW_TIMEOUT + 510,
                from(
                    sender,
                    Msg::Timeout(net.timeout(sender, 1, net.genesis_qc())),
                ),
            );
        }
        assert!(!r.is_guarded(), "nothing beyond genesis exists");
        assert_eq!(r.status().view, 2);
    }
}
