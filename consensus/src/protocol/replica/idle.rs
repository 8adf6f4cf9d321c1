//! Idle pacing: a quiet chain makes a block every `idle_block_interval_ms`, not every
//! `min_block_interval_ms` (issue 12: a node's disk follows its work, not its age).
//!
//! # The rule
//! The chain is *quiet* at `now` when the app has no work ([`App::has_work`]) and the newest
//! blocks carry nothing ([`App::is_empty`]): every uncommitted block of the certified chain,
//! the certified tip, and either the proposals on top of it or, if there is none yet, the tip's
//! parent. While quiet, a leader proposes no earlier than `parent.timestamp +
//! idle_block_interval_ms`, and every replica runs its view timer from then; once not quiet,
//! from the later of entering the view and the moment it stopped being quiet.
//!
//! # Why leaders and voters agree
//! A voter sees one certificate less than the next leader: it holds the proposal `P` but not
//! yet the certificate for `P`, which the leader of the next view assembles. Counting the
//! proposals on top of the certified tip makes both look at the same two newest blocks
//! (`P` and its parent), so a voter expects a block exactly when the leader will make one:
//! while a block that carried something lacks the child and grandchild that commit it
//! everywhere (2-chain rule), the chain is not quiet. The app's work (pending orders, a closed
//! gate) is judged by each replica on its own mempool: a voter that holds an order its leader
//! lacks may time out that view, as it would with a slow leader; gossip makes that rare.

use super::{App, Replica};

impl<A: App> Replica<A> {
    /// Whether the chain is quiet at `now` (module docs); never with idle pacing off.
    fn is_quiet_at(&self, now: u64) -> bool {
        if self.config.idle_block_interval_ms == 0 || self.app.has_work(now) {
            return false;
        }
        let Some(high) = self.tree.get(&self.safety.high_qc.block) else {
            // Still fetching the certified tip: behave as without idle pacing.
            return false;
        };
        let floor = self.tree.floor();
        let empty = |b: &crate::protocol::block::Block| {
            b.height() <= floor || self.app.is_empty(b.payload())
        };
        let committed = self.tree.committed_height();
        let uncommitted_empty = self
            .tree
            .ancestors(high.hash())
            .take_while(|b| b.height() > committed)
            .all(|b| empty(b));
        let mut proposals = self
            .tree
            .blocks_at(high.height().saturating_add(1))
            .filter(|b| b.parent() == high.hash())
            .peekable();
        let newest_empty = if proposals.peek().is_some() {
            proposals.all(|b| empty(b))
        } else {
            self.tree.get(&high.parent()).is_none_or(|p| empty(p))
        };
        uncommitted_empty && empty(high) && newest_empty
    }

    /// Re-judges quietness at `now` and returns when to look again if the app's work is due
    /// before anything else would wake us (the next gate closure).
    pub(super) fn update_quiet(&mut self, now: u64) -> Option<u64> {
        self.quiet = self.is_quiet_at(now);
        if self.quiet {
            self.busy_since = None;
            self.app.work_due_at().filter(|at| *at > now)
        } else {
            self.busy_since.get_or_insert(now);
            None
        }
    }

    /// Whether the chain was quiet at the last input: the driver then feeds the replica a tick
    /// when the app gains work (an order), so that a waiting leader proposes at once.
    #[must_use]
    pub fn is_quiet(&self) -> bool {
        self.quiet
    }

    /// The earliest a leader proposes on a parent stamped `parent_ms`, given the pacing's
    /// `earliest`: while quiet, not before the idle interval has passed.
    pub(super) fn idle_earliest_proposal(&self, parent_ms: u64, earliest: u64) -> u64 {
        if self.config.idle_block_interval_ms != 0 && self.quiet {
            earliest.max(parent_ms.saturating_add(self.config.idle_block_interval_ms))
        } else {
            earliest
        }
    }

    /// When the view timer starts, given the pacing's `start`: while quiet, once a leader could
    /// have proposed after the idle interval; otherwise not before the chain stopped being quiet
    /// (work that appears after a long quiet view gets a full view timeout).
    pub(super) fn idle_timer_start(&self, parent_ms: u64, start: u64) -> u64 {
        if self.config.idle_block_interval_ms == 0 {
            start
        } else if self.quiet {
            start.max(parent_ms.saturating_add(self.config.idle_block_interval_ms))
        } else {
            start.max(self.busy_since.unwrap_or(0))
        }
    }
}
