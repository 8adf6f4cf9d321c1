//! The pacemaker: the view timer, timeouts, timeout certificates and entering views.
//!
//! # Invariants
//! - The view only grows (`advance_view` ignores older views); entering a view resets its timer
//!   and our timeout, and forgets votes and timeouts older than the previous view.
//! - The view timer doubles with each view entered through a TC in a row (`tc_streak`) and resets
//!   when a view is entered through a QC. It runs from the later of entering the view and
//!   `parent.timestamp + min_block_interval_ms` (audit H4).
//! - Before a timeout is broadcast, `last_voted_view` is raised to the view and the safety state
//!   is queued for persistence: a replica never votes in a view it timed out in.
//! - `f + 1` timeouts for our view make us time out too; `quorum` timeouts form a TC, which
//!   moves every replica to `tc.view + 1`.

use std::collections::BTreeMap;

use super::{App, Output, Replica, TimeoutAcc, MAX_VIEWS_AHEAD};
use crate::protocol::config::TestFault;
use crate::protocol::error::VerifyError;
use crate::protocol::message::Msg;
use crate::protocol::timeout::{timeout_message, Timeout, TimeoutCert};
use crate::protocol::validators::ValidatorIndex;

impl<A: App> Replica<A> {
    /// When the current view times out: its timeout after the later of entering the view and
    /// the earliest time its leader may propose (`parent.timestamp + min_block_interval_ms`,
    /// the parent being our high QC's block). A parent stamped in the future therefore delays
    /// the timer instead of eating the next leader's view (audit H4). Under idle pacing the
    /// start moves as `idle.rs` says.
    pub(super) fn view_deadline(&self) -> u64 {
        let parent_ms = self
            .tree
            .get(&self.safety.high_qc.block)
            .map(|parent| parent.timestamp_ms());
        let paced = parent_ms.map_or(0, |ms| ms.saturating_add(self.config.min_block_interval_ms));
        let start = self.view_started_ms.max(paced);
        // Idle pacing (`idle.rs`): a quiet chain's leader waits, and so does the timer.
        let start = parent_ms.map_or(start, |ms| self.idle_timer_start(ms, start));
        start.saturating_add(self.config.view_timeout_ms(self.tc_streak))
    }

    pub(super) fn local_timeout(&mut self, now: u64) {
        if !self.may_time_out() {
            return;
        }
        let view = self.view;
        self.safety.last_voted_view = self.safety.last_voted_view.max(view);
        self.persist_safety();
        let last_tc = self
            .safety
            .high_tc
            .clone()
            .filter(|tc| tc.view.checked_add(1) == Some(view));
        let timeout = Timeout::new(
            &self.chain,
            &self.key,
            self.me,
            view,
            self.safety.high_qc.clone(),
            last_tc,
        );
        tracing::debug!(replica = %self.me, view, "view timed out");
        self.stats.timeouts += 1;
        self.my_timeout = Some(timeout.clone());
        self.last_timeout_sent_ms = now;
        self.broadcast_timeout(&timeout);
        self.add_timeout(now, timeout);
    }

    /// Broadcasts our timeout (the test fault [`TestFault::Flood`] repeats it).
    pub(super) fn broadcast_timeout(&mut self, t: &Timeout) {
        let copies = match self.config.test_fault {
            Some(TestFault::Flood(n)) => n.max(1),
            _ => 1,
        };
        for _ in 0..copies {
            self.out.push(Output::Broadcast(Msg::Timeout(t.clone())));
        }
    }

    pub(super) fn on_timeout(
        &mut self,
        now: u64,
        from: ValidatorIndex,
        t: Timeout,
    ) -> Result<(), VerifyError> {
        if t.view > self.view.saturating_add(MAX_VIEWS_AHEAD) {
            return Ok(());
        }
        if (t.view < self.view && self.answered_laggards.contains(&from))
            || self.invalid_senders.contains(&(t.view, from))
            || self
                .timeouts
                .get(&t.view)
                .is_some_and(|acc| acc.entries.contains_key(&t.sender))
        {
            return Ok(());
        }
        if self.chain.validators().key(t.sender).is_none() {
            return Err(VerifyError::UnknownValidator(t.sender));
        }
        // Verify before anything else, answers to laggards included (audit M1).
        let msg = timeout_message(&self.chain, t.view, t.high_qc.view);
        self.stats.signature_checks += 1;
        if !self.chain.validators().verify(t.sender, &msg, &t.signature) {
            self.invalid_senders.insert((t.view, from));
            return Err(VerifyError::BadSignature(t.sender));
        }
        self.note_report(from, t.sender, t.view);
        if t.view < self.view {
            // A laggard: hand it our certificates, once per view of ours (audit M1).
            self.answered_laggards.insert(from);
            self.out.push(Output::Send(
                from,
                Msg::SyncInfo {
                    high_qc: self.safety.high_qc.clone(),
                    high_tc: self.safety.high_tc.clone(),
                },
            ));
            return Ok(());
        }
        self.verify_qc(&t.high_qc)?;
        if let Some(tc) = &t.last_tc {
            self.verify_tc(tc)?;
            self.process_tc(now, tc, from);
        }
        self.process_qc(now, &t.high_qc, from);
        self.add_timeout(now, t);
        Ok(())
    }

    fn add_timeout(&mut self, now: u64, t: Timeout) {
        if t.view < self.view {
            return;
        }
        let acc = self.timeouts.entry(t.view).or_insert_with(|| TimeoutAcc {
            high_qc: t.high_qc.clone(),
            entries: BTreeMap::new(),
            formed: false,
        });
        if t.high_qc.view > acc.high_qc.view {
            acc.high_qc = t.high_qc.clone();
        }
        acc.entries.insert(t.sender, (t.high_qc.view, t.signature));
        let count = acc.entries.len();
        let validators = self.chain.validators();
        // f + 1 timeouts mean at least one honest replica gave up on this view: join it.
        if t.view == self.view
            && self.my_timeout.is_none()
            && count > validators.max_faulty()
            && t.sender != self.me
        {
            self.local_timeout(now);
            return;
        }
        let Some(acc) = self.timeouts.get_mut(&t.view) else {
            return;
        };
        if acc.formed || acc.entries.len() < self.chain.validators().quorum() {
            return;
        }
        acc.formed = true;
        let tc = TimeoutCert {
            view: t.view,
            high_qc: acc.high_qc.clone(),
            entries: acc.entries.iter().map(|(i, (v, s))| (*i, *v, *s)).collect(),
        };
        let me = self.me;
        self.process_tc(now, &tc, me);
    }

    pub(super) fn process_tc(&mut self, now: u64, tc: &TimeoutCert, from: ValidatorIndex) {
        self.note_certificate(tc.view);
        self.process_qc(now, &tc.high_qc, from);
        if self
            .safety
            .high_tc
            .as_ref()
            .is_none_or(|h| tc.view > h.view)
        {
            self.safety.high_tc = Some(tc.clone());
            self.persist_safety();
        }
        self.advance_view(now, tc.view.saturating_add(1), false);
    }

    pub(super) fn advance_view(&mut self, now: u64, view: u64, via_qc: bool) {
        if view <= self.view {
            return;
        }
        tracing::trace!(replica = %self.me, view, via_qc, "enter view");
        self.view = view;
        self.view_started_ms = now;
        self.tc_streak = if via_qc {
            0
        } else {
            self.tc_streak.saturating_add(1)
        };
        self.my_timeout = None;
        let keep_from = view.saturating_sub(1);
        self.votes.retain(|(v, _, _), _| *v >= keep_from);
        self.voted.retain(|(v, _), _| *v >= keep_from);
        self.timeouts.retain(|v, _| *v >= keep_from);
        self.invalid_senders.retain(|(v, _)| *v >= keep_from);
        self.answered_laggards.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{from, v, Net, TestApp, ME, T0, VIEW_TIMEOUT};
    use super::super::{Input, Output, Persist, Replica};
    use crate::protocol::message::Msg;
    use crate::protocol::safety::SafetyState;
    use crate::protocol::timeout::TimeoutCert;

    fn timed_out_in(view: u64, tc: Option<TimeoutCert>) -> SafetyState {
        let mut safety = SafetyState::initial(Net::new().genesis_qc());
        safety.last_voted_view = view;
        safety.high_tc = tc;
        safety
    }

    /// A replica that saw timeouts for view 1 from validators 1 and 2, joined, and so formed a
    /// TC; returns it with the outputs of the second timeout.
    fn through_a_tc() -> (Net, Replica<TestApp>, Vec<Output>) {
        let net = Net::new();
        let mut r = net.replica(ME);
        r.handle(
            T0,
            from(1, Msg::Timeout(net.timeout(1, 1, net.genesis_qc()))),
        );
        let out = r.handle(
            T0 + 10,
            from(2, Msg::Timeout(net.timeout(2, 1, net.genesis_qc()))),
        );
        (net, r, out)
    }

    #[test]
    fn the_view_timer_persists_then_broadcasts_a_timeout_and_resends_it() {
        let net = Net::new();
        let mut r = net.replica(ME);
        assert_eq!(
            r.handle(T0, Input::Tick),
            vec![Output::ScheduleTick(T0 + VIEW_TIMEOUT)]
        );

        let out = r.handle(T0 + VIEW_TIMEOUT, Input::Tick);

        let timeout = net.timeout(0, 1, net.genesis_qc());
        let resend = r.config.timeout_resend_ms;
        assert_eq!(
            out,
            vec![
                Output::Persist(Persist::Safety(timed_out_in(1, None))),
                Output::Broadcast(Msg::Timeout(timeout.clone())),
                Output::ScheduleTick(T0 + VIEW_TIMEOUT + resend),
            ]
        );
        assert_eq!(r.stats().timeouts, 1);
        assert_eq!(
            r.handle(T0 + VIEW_TIMEOUT + resend, Input::Tick),
            vec![
                Output::Broadcast(Msg::Timeout(timeout)),
                Output::ScheduleTick(T0 + VIEW_TIMEOUT + 2 * resend),
            ]
        );
        assert_eq!(r.stats().timeouts, 1, "a resend is not a new timeout");
    }

    #[test]
    fn a_parent_stamped_in_the_future_delays_the_view_timer_instead_of_killing_the_next_view() {
        let net = Net::new();
        let mut r = net.replica(ME);
        let drift = r.config.max_clock_drift_ms;
        let interval = r.config.min_block_interval_ms;
        // The leader of view 1 stamps its block as far ahead as voters accept.
        let b1 = net.child(&net.genesis(), net.genesis_qc(), 1, T0 + drift);
        r.handle(T0, from(1, net.proposal(b1.clone(), None)));
        r.handle(T0 + 10, from(1, Msg::Vote(net.vote(1, &b1))));
        r.handle(T0 + 20, from(2, Msg::Vote(net.vote(2, &b1))));
        assert_eq!(r.status().view, 2);

        // Without pacing, view 2 would time out at T0 + 20 + VIEW_TIMEOUT.
        let out = r.handle(T0 + 20 + VIEW_TIMEOUT, Input::Tick);
        assert!(
            !out.iter()
                .any(|o| matches!(o, Output::Broadcast(Msg::Timeout(_)))),
            "{out:?}"
        );
        assert_eq!(r.stats().timeouts, 0);

        // A leader of view 2 that is slower than a view timeout after the QC still gets our
        // vote: the timer runs until b1's time + interval + timeout.
        let late = T0 + 50 + VIEW_TIMEOUT;
        assert!(late < T0 + drift + interval + VIEW_TIMEOUT);
        let b2 = net.child(&b1, net.qc(&b1, &[0, 1, 2]), 2, late);
        r.handle(late, from(2, net.proposal(b2, None)));
        assert_eq!(r.stats().votes, 2);
        assert_eq!(r.stats().timeouts, 0);
    }

    #[test]
    fn one_peer_timeout_changes_nothing() {
        let net = Net::new();
        let mut r = net.replica(ME);

        let out = r.handle(
            T0,
            from(1, Msg::Timeout(net.timeout(1, 1, net.genesis_qc()))),
        );

        assert_eq!(out, vec![Output::ScheduleTick(T0 + VIEW_TIMEOUT)]);
        assert_eq!(r.status().view, 1);
        assert_eq!(r.stats().timeouts, 0);
    }

    #[test]
    fn f_plus_one_timeouts_make_us_join_and_a_quorum_forms_a_tc_and_enters_the_next_view() {
        let (net, r, out) = through_a_tc();

        let own = net.timeout(0, 1, net.genesis_qc());
        let tc = net.tc(1, net.genesis_qc(), &[0, 1, 2]);
        // Entered through a TC: the next view's timer is doubled.
        let doubled = r.config.view_timeout_ms(1);
        assert_eq!(doubled, 2 * VIEW_TIMEOUT);
        assert_eq!(
            out,
            vec![
                Output::Persist(Persist::Safety(timed_out_in(1, None))),
                Output::Broadcast(Msg::Timeout(own)),
                Output::Persist(Persist::Safety(timed_out_in(1, Some(tc)))),
                Output::ScheduleTick(T0 + 10 + doubled),
            ]
        );
        assert_eq!(r.status().view, 2);
    }

    #[test]
    fn a_timeout_from_a_laggard_is_answered_with_our_certificates() {
        let (net, mut r, _) = through_a_tc();

        let out = r.handle(
            T0 + 20,
            from(3, Msg::Timeout(net.timeout(3, 1, net.genesis_qc()))),
        );

        assert_eq!(
            out,
            vec![Output::Send(
                v(3),
                Msg::SyncInfo {
                    high_qc: net.genesis_qc(),
                    high_tc: Some(net.tc(1, net.genesis_qc(), &[0, 1, 2])),
                }
            )]
        );
        assert_eq!(r.status().view, 2);
    }

    #[test]
    fn a_laggards_timeout_is_verified_before_it_is_answered() {
        let (net, mut r, _) = through_a_tc();
        let mut forged = net.timeout(3, 1, net.genesis_qc());
        forged.signature = net.timeout(2, 1, net.genesis_qc()).signature;
        let checks = r.stats().signature_checks;

        for i in 0..5 {
            assert_eq!(
                r.handle(T0 + 20 + i, from(3, Msg::Timeout(forged.clone()))),
                vec![]
            );
        }

        assert_eq!(r.stats().invalid_messages, 1);
        assert_eq!(r.stats().signature_checks, checks + 1);
    }

    #[test]
    fn a_laggard_is_answered_once_per_view() {
        let (net, mut r, _) = through_a_tc();
        assert_eq!(r.status().view, 2);
        let mut answers = 0;
        for i in 0..5 {
            let out = r.handle(
                T0 + 20 + i,
                from(3, Msg::Timeout(net.timeout(3, 1, net.genesis_qc()))),
            );
            answers += out
                .iter()
                .filter(|o| matches!(o, Output::Send(_, Msg::SyncInfo { .. })))
                .count();
        }
        assert_eq!(answers, 1);
    }

    #[test]
    fn a_timeout_with_a_bad_signature_is_not_counted() {
        let net = Net::new();
        let mut r = net.replica(ME);
        let mut forged = net.timeout(1, 1, net.genesis_qc());
        forged.signature = net.timeout(2, 1, net.genesis_qc()).signature;
        r.handle(T0, from(1, Msg::Timeout(forged)));
        assert_eq!(r.stats().invalid_messages, 1);

        // Only one valid timeout so far: not f + 1, so we do not join.
        let out = r.handle(
            T0 + 10,
            from(2, Msg::Timeout(net.timeout(2, 1, net.genesis_qc()))),
        );
        assert_eq!(out, vec![]);
        assert_eq!(r.stats().timeouts, 0);
    }

    #[test]
    fn a_tc_in_a_timeout_moves_a_replica_that_missed_the_view() {
        let net = Net::new();
        let mut r = net.replica(ME);
        let tc1 = net.tc(1, net.genesis_qc(), &[1, 2, 3]);
        let mut t2 = net.timeout(1, 2, net.genesis_qc());
        t2.last_tc = Some(tc1.clone());
        // A timeout signs only (view, high QC view), so attaching the TC keeps it valid.

        let out = r.handle(T0, from(1, Msg::Timeout(t2)));

        let mut safety = SafetyState::initial(net.genesis_qc());
        safety.high_tc = Some(tc1);
        assert_eq!(
            out,
            vec![
                Output::Persist(Persist::Safety(safety)),
                Output::ScheduleTick(T0 + r.config.view_timeout_ms(1)),
            ]
        );
        assert_eq!(r.status().view, 2);
        assert_eq!(r.status().last_voted_view, 0);
    }
}
