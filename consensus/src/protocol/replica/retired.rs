//! A retired replica: the replica of an epoch that has ended.
//!
//! When a replica commits its epoch's reconfiguration block `B`, the driver starts the next
//! epoch's replica ([`crate::protocol::Chain::next_epoch`]) and calls [`Replica::retire`] on
//! the old one. A retired replica signs nothing more in its epoch (no proposal, vote or
//! timeout), so the old epoch can never certify anything new without the validators that
//! left it; it only helps validators still in that epoch finish it:
//! - a timeout from a validator of the old epoch is answered with our highest certificates
//!   (the QC that commits `B`, or one leading to it), at most once per sender per
//!   `timeout_resend_ms` (a laggard resends its timeout that often; an answer that got lost is
//!   sent again, and a flood costs one signature check per window);
//! - block sync requests are answered as before, from memory or from the store.
//!
//! Everything else (proposals, votes, sync responses, ticks) is ignored; the replica schedules
//! no ticks.
//!
//! # Invariants
//! - A retired replica emits only `Send(SyncInfo)`, sync responses and
//!   [`Output::ServeCommitted`]: never a signature, a `Persist` or a `Commit`.

use super::{App, Input, Output, Replica};
use crate::protocol::app::Reject;
use crate::protocol::block::Block;
use crate::protocol::error::VerifyError;
use crate::protocol::message::Msg;
use crate::protocol::timeout::{timeout_message, Timeout};
use crate::protocol::validators::ValidatorIndex;

impl<A: App> Replica<A> {
    /// Ends this replica's epoch: from now on it only answers laggards (module docs). The
    /// driver calls it once the replica has committed the epoch's reconfiguration block and
    /// discards any later [`Output::Commit`] of this epoch. Outputs not handed out yet (the
    /// commits [`Replica::restore`] re-derives for a restarted node) belong to the ended epoch
    /// and are dropped.
    pub fn retire(&mut self) {
        self.retired = true;
        self.out.clear();
        self.my_timeout = None;
        self.votes.clear();
        self.voted.clear();
        self.timeouts.clear();
        self.sync.orphan = None;
        self.scheduled = None;
    }

    /// Retires this replica ([`Replica::retire`]) and hands its application back, for the next
    /// epoch's replica: the retired one keeps everything it needs to answer laggards (its tree,
    /// certificates and safety state) and runs on [`RetiredApp`], which it never calls.
    #[must_use]
    pub fn retire_into_parts(mut self) -> (Replica<RetiredApp>, A) {
        self.retire();
        let Replica {
            chain,
            key,
            me,
            config,
            app,
            tree,
            safety,
            view,
            view_started_ms,
            tc_streak,
            my_timeout,
            last_timeout_sent_ms,
            proposed_view,
            votes,
            voted,
            timeouts,
            sync,
            verified,
            verified_order,
            invalid_certs,
            invalid_certs_order,
            invalid_senders,
            answered_laggards,
            scheduled,
            out,
            stats,
            started,
            amnesia,
            quiet,
            busy_since,
            retired,
            retired_answers,
        } = self;
        (
            Replica {
                chain,
                key,
                me,
                config,
                app: RetiredApp,
                tree,
                safety,
                view,
                view_started_ms,
                tc_streak,
                my_timeout,
                last_timeout_sent_ms,
                proposed_view,
                votes,
                voted,
                timeouts,
                sync,
                verified,
                verified_order,
                invalid_certs,
                invalid_certs_order,
                invalid_senders,
                answered_laggards,
                scheduled,
                out,
                stats,
                started,
                amnesia,
                quiet,
                busy_since,
                retired,
                retired_answers,
            },
            app,
        )
    }

    /// Whether [`Replica::retire`] was called.
    #[must_use]
    pub fn is_retired(&self) -> bool {
        self.retired
    }

    pub(super) fn handle_retired(&mut self, now: u64, input: Input) -> Vec<Output> {
        let Input::Message { from, msg } = input else {
            return Vec::new();
        };
        if self.chain.validators().key(from).is_none() || from == self.me {
            return Vec::new();
        }
        let result = match msg {
            Msg::Timeout(t) => self.answer_retired_timeout(now, from, &t),
            Msg::SyncRequest {
                from_height,
                target,
            } => {
                self.on_sync_request(now, from, from_height, target);
                Ok(())
            }
            Msg::Proposal(_) | Msg::Vote(_) | Msg::SyncInfo { .. } | Msg::SyncResponse { .. } => {
                Ok(())
            }
        };
        if let Err(err) = result {
            self.stats.invalid_messages += 1;
            tracing::debug!(%from, cause = %err, "retired replica dropped an invalid message");
        }
        std::mem::take(&mut self.out)
    }

    fn answer_retired_timeout(
        &mut self,
        now: u64,
        from: ValidatorIndex,
        t: &Timeout,
    ) -> Result<(), VerifyError> {
        if t.sender != from {
            return Ok(()); // a forwarded timeout: its sender asks for itself
        }
        let window = self.config.timeout_resend_ms;
        if self
            .retired_answers
            .get(&from)
            .is_some_and(|at| now < at.saturating_add(window))
        {
            return Ok(());
        }
        let msg = timeout_message(&self.chain, t.view, t.high_qc.view);
        self.stats.signature_checks += 1;
        if !self.chain.validators().verify(t.sender, &msg, &t.signature) {
            return Err(VerifyError::BadSignature(t.sender));
        }
        self.retired_answers.insert(from, now);
        self.stats.retired_answers += 1;
        self.out.push(Output::Send(
            from,
            Msg::SyncInfo {
                high_qc: self.safety.high_qc.clone(),
                high_tc: self.safety.high_tc.clone(),
            },
        ));
        Ok(())
    }
}

/// The application of a retired replica ([`Replica::retire_into_parts`]): a retired replica
/// proposes, validates and commits nothing, so this is never called; if it were, it would
/// propose nothing and refuse everything.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetiredApp;

impl App for RetiredApp {
    fn propose(&mut self, _parent: &Block, _block_time_ms: u64) -> Vec<u8> {
        Vec::new()
    }

    fn validate(
        &mut self,
        _parent: &Block,
        _payload: &[u8],
        _block_time_ms: u64,
    ) -> Result<(), Reject> {
        Err(Reject::new("the epoch ended"))
    }

    fn commit(&mut self, _block: &Block) {}

    fn has_work(&self, _now_ms: u64) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{from, v, Net, ME, T0};
    use super::*;
    use crate::protocol::config::Config;

    #[test]
    fn retiring_into_parts_hands_the_app_back_and_keeps_answering_laggards() {
        let net = Net::new();
        let mut r = net.replica(ME);
        let _ = r.handle(T0, Input::Tick);
        let (mut retired, _app) = r.retire_into_parts();
        assert!(retired.is_retired());
        let timeout = from(2, Msg::Timeout(net.timeout(2, 1, net.genesis_qc())));
        assert_eq!(retired.handle(T0 + 10, timeout).len(), 1);
        assert!(retired.handle(T0 + 20, Input::Tick).is_empty());
    }

    #[test]
    fn a_retired_replica_answers_a_laggard_once_per_resend_window_and_signs_nothing() {
        let net = Net::new();
        let mut r = net.replica(ME);
        let _ = r.handle(T0, Input::Tick);
        r.retire();
        let timeout = || from(2, Msg::Timeout(net.timeout(2, 1, net.genesis_qc())));

        let out = r.handle(T0 + 10, timeout());
        assert_eq!(
            out,
            vec![Output::Send(
                v(2),
                Msg::SyncInfo {
                    high_qc: net.genesis_qc(),
                    high_tc: None,
                }
            )]
        );
        // Within the window: nothing; after it, the answer again (it may have been lost).
        assert!(r.handle(T0 + 20, timeout()).is_empty());
        let resend = Config::default().timeout_resend_ms;
        assert_eq!(r.handle(T0 + 10 + resend, timeout()).len(), 1);
        // Ticks, proposals and votes do nothing: no timer, no vote, no timeout of our own.
        assert!(r.handle(T0 + 100_000, Input::Tick).is_empty());
        let b1 = net.child(&net.genesis(), net.genesis_qc(), 1, T0);
        assert!(r
            .handle(T0 + 100_001, from(1, net.proposal(b1, None)))
            .is_empty());
        assert_eq!(r.stats().votes, 0);
        assert_eq!(r.stats().retired_answers, 2);
        assert!(r.is_retired());
    }

    #[test]
    fn a_restored_then_retired_replica_hands_out_no_commit() {
        let net = Net::new();
        let b1 = net.child(&net.genesis(), net.genesis_qc(), 1, T0);
        let b2 = net.child(&b1, net.qc(&b1, &[0, 1, 2]), 2, T0 + 600);
        let b3 = net.child(&b2, net.qc(&b2, &[0, 1, 2]), 3, T0 + 1_200);
        // The stored certificates commit b1 again: restore queues it for the first `handle`.
        let mut r = Replica::restore(
            net.chain.clone(),
            net.key(ME).clone(),
            Config::default(),
            super::super::test_support::TestApp::default(),
            crate::protocol::safety::SafetyState::initial(net.genesis_qc()),
            vec![b1, b2, b3],
            net.genesis().hash(),
        )
        .expect("restore");
        r.retire();

        let out = r.handle(
            T0 + 2_000,
            from(2, Msg::Timeout(net.timeout(2, 1, net.genesis_qc()))),
        );
        assert!(
            out.iter()
                .all(|o| matches!(o, Output::Send(_, Msg::SyncInfo { .. }))),
            "{out:?}"
        );
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn a_retired_replica_drops_a_forged_timeout() {
        let net = Net::new();
        let mut r = net.replica(ME);
        r.retire();
        let mut forged = net.timeout(2, 1, net.genesis_qc());
        forged.signature = net.timeout(3, 1, net.genesis_qc()).signature;

        assert!(r.handle(T0, from(2, Msg::Timeout(forged))).is_empty());
        assert_eq!(r.stats().invalid_messages, 1);
        assert_eq!(r.stats().retired_answers, 0);
    }
}
