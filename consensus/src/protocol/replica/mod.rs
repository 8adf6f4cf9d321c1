//! The sans-I/O replica: a deterministic state machine for chained HotStuff with the 2-chain
//! commit rule, a pacemaker with timeout certificates, reputation-based leaders and block sync.
//!
//! # Driving it
//! Call [`Replica::handle`] with the current time and one [`Input`]; execute the returned
//! [`Output`]s **in order**. In particular a [`Persist`] must be durable (fsynced) before any
//! later `Send`/`Broadcast` of the same batch leaves the node: that is what stops a restarted
//! replica from double-voting. `ScheduleTick(at)` asks for an [`Input::Tick`] at `at`; the latest
//! one replaces earlier ones, and extra ticks are harmless. The core never reads a clock and
//! uses no randomness: the same inputs give the same outputs.
//!
//! # Commit rule
//! Block `B` is committed (with all its ancestors) when a QC exists for a child `B'` of `B` with
//! `B'.view == B.view + 1`.
//!
//! # Files
//! This file holds the types, construction, [`Replica::handle`] (dispatch) and the timers
//! (`drive`). The handlers live beside it, each an `impl<A: App> Replica<A>` block with its own
//! handler-level tests (one input in, the outputs asserted): `retired.rs` (a replica whose
//! epoch ended),
//! `verify.rs` (certificate checks with a cache), `propose.rs` (leading a view and receiving
//! proposals), `vote.rs` (votes, QCs, the commit rule), `pacemaker.rs` (view timer, timeouts,
//! TCs, entering views), `sync.rs` (certificate sync and block sync), `amnesia.rs` (the guard
//! of a replica restored without a trustworthy safety record) and `idle.rs` (idle pacing).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use ed25519_dalek::{Signature, SigningKey};

use self::amnesia::AmnesiaGuard;
use super::app::App;
use super::block::{Block, BlockHash};
use super::block_tree::BlockTree;
use super::certificate::QuorumCert;
use super::chain::Chain;
use super::config::Config;
use super::error::{ReplicaError, VerifyError};
use super::message::Msg;
use super::safety::SafetyState;
use super::timeout::Timeout;
use super::validators::ValidatorIndex;

mod amnesia;
mod idle;
mod pacemaker;
mod propose;
mod retired;
mod sync;
pub use retired::RetiredApp;
pub use sync::committed_sync_response;
#[cfg(test)]
mod test_support;
mod verify;
mod vote;

/// Votes and timeouts further ahead of our view than this are dropped (bounds memory).
const MAX_VIEWS_AHEAD: u64 = 64;

/// What the driver feeds the replica.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)] // moved once into `handle`, never stored
pub enum Input {
    /// Time passed; check timers.
    Tick,
    /// A message from an authenticated validator.
    Message {
        /// The sending validator (the authenticated peer).
        from: ValidatorIndex,
        /// The decoded message.
        msg: Msg,
    },
}

/// What the replica must make durable before its next sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Persist {
    /// A new block in the tree (store it by hash; [`Replica::restore`] takes the committed
    /// tail and the uncommitted ones back).
    Block(Arc<Block>),
    /// The new safety state (replace the stored one).
    Safety(SafetyState),
}

/// What the driver must do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send to one validator.
    Send(ValidatorIndex, Msg),
    /// Send to every other validator.
    Broadcast(Msg),
    /// Make durable before executing later outputs.
    Persist(Persist),
    /// A block is final; heights arrive in order without gaps.
    Commit(Arc<Block>),
    /// Answer `to`'s block sync request from the store: read the committed blocks
    /// `from_height..=to_height + 1` (all committed, so all stored) and send
    /// [`committed_sync_response`] of them. The replica emits this for heights older than the
    /// committed blocks it keeps in memory ([`Config::retained_committed_blocks`]); it has
    /// already counted the answer against `to`'s sync budget.
    ServeCommitted {
        /// The requesting validator.
        to: ValidatorIndex,
        /// First height to send.
        from_height: u64,
        /// Last height to send (the block above it is read only for its justify, the QC
        /// certifying this one).
        to_height: u64,
    },
    /// Deliver [`Input::Tick`] at this time (ms).
    ScheduleTick(u64),
}

/// Counters for observability and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Blocks proposed.
    pub proposals: u64,
    /// Votes cast.
    pub votes: u64,
    /// Views this replica timed out in.
    pub timeouts: u64,
    /// Messages dropped because a signature or certificate failed.
    pub invalid_messages: u64,
    /// Proposals refused by [`App::validate`] or the block-time rules.
    pub rejected_proposals: u64,
    /// Block sync requests sent.
    pub sync_requests: u64,
    /// Sync responses dropped because no request to that peer for those heights was
    /// outstanding (audit H2).
    pub unasked_sync_responses: u64,
    /// Sync requests not answered because the peer used up its answers for the window
    /// (audit M1).
    pub throttled_sync_requests: u64,
    /// Sync requests for heights older than the committed blocks held in memory, handed to
    /// the store ([`Output::ServeCommitted`]).
    pub store_sync_answers: u64,
    /// Blocks committed.
    pub commits: u64,
    /// Commits that conflicted with the committed chain (must stay 0).
    pub commit_conflicts: u64,
    /// Votes not cast because the amnesia guard was up.
    pub abstained: u64,
    /// Signature verifications of votes, timeouts and certificates (audit M1: repeated
    /// invalid messages must not cost new ones).
    pub signature_checks: u64,
    /// Retired ([`Replica::retire`]): laggards' timeouts answered with our certificates.
    pub retired_answers: u64,
}

/// A snapshot of where the replica is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// Current view.
    pub view: u64,
    /// Highest committed height.
    pub committed_height: u64,
    /// Hash of the highest committed block.
    pub committed_hash: BlockHash,
    /// View of the highest QC.
    pub high_qc_view: u64,
    /// Highest view voted or timed out in.
    pub last_voted_view: u64,
}

/// Signatures on one `(view, block, height)`; votes that name another height for the same block
/// go to their own accumulator, so they can never push honest votes out (audit H1).
#[derive(Debug)]
struct VoteAcc {
    /// The height every signature here was made over (also part of the map key).
    height: u64,
    signatures: BTreeMap<ValidatorIndex, Signature>,
}

#[derive(Debug)]
struct TimeoutAcc {
    high_qc: QuorumCert,
    entries: BTreeMap<ValidatorIndex, (u64, Signature)>,
    formed: bool,
}

#[derive(Debug, Default)]
struct SyncState {
    /// Outstanding request: (peer, retry deadline).
    inflight: Option<(ValidatorIndex, u64)>,
    /// Next peer to ask when retrying (round robin).
    next_peer: u16,
    /// First height to ask for when continuing a long catch-up.
    continue_from: Option<u64>,
    /// `from_height` of the outstanding request (meaningful while `inflight` is set).
    asked_from: u64,
    /// Peers whose last request went unanswered; skipped until they answer (audit L4).
    silent: BTreeSet<ValidatorIndex>,
    /// Per peer: (start of the current serving window, answers sent in it) (audit M1).
    served: BTreeMap<ValidatorIndex, (u64, u32)>,
    /// A proposal for the current view whose parent is missing, with its sender: re-processed
    /// once sync delivers the parent (audit L7). At most one.
    orphan: Option<(ValidatorIndex, super::message::Proposal)>,
    /// Distinct blocks taken from proposals, per (view, proposer), above the committed view:
    /// at most two are kept (the second is equivocation evidence) (audit H2).
    proposed: BTreeMap<(u64, ValidatorIndex), BTreeSet<BlockHash>>,
}

/// A consensus replica. See the module docs for how to drive it.
#[derive(Debug)]
pub struct Replica<A: App> {
    chain: Chain,
    key: SigningKey,
    me: ValidatorIndex,
    config: Config,
    app: A,
    tree: BlockTree,
    safety: SafetyState,
    view: u64,
    view_started_ms: u64,
    tc_streak: u32,
    my_timeout: Option<Timeout>,
    last_timeout_sent_ms: u64,
    proposed_view: u64,
    /// Vote accumulators keyed by `(view, block, height)`.
    votes: BTreeMap<(u64, BlockHash, u64), VoteAcc>,
    /// The one accepted vote per `(view, voter)`, recorded only once it was verified and
    /// counted.
    voted: BTreeMap<(u64, ValidatorIndex), BlockHash>,
    timeouts: BTreeMap<u64, TimeoutAcc>,
    sync: SyncState,
    verified: BTreeSet<[u8; 32]>,
    verified_order: VecDeque<[u8; 32]>,
    /// Digests of certificates that failed verification, with the error (bounded, oldest
    /// forgotten first).
    invalid_certs: BTreeMap<[u8; 32], VerifyError>,
    invalid_certs_order: VecDeque<[u8; 32]>,
    /// `(view, sender)` pairs that sent a vote or timeout with a bad signature: their further
    /// votes and timeouts for that view are ignored unverified. Pruned with the view window,
    /// so at most `(MAX_VIEWS_AHEAD + 2) · n` entries.
    invalid_senders: BTreeSet<(u64, ValidatorIndex)>,
    /// Laggards already answered with our certificates in this view (once each per view).
    answered_laggards: BTreeSet<ValidatorIndex>,
    scheduled: Option<u64>,
    out: Vec<Output>,
    stats: Stats,
    started: bool,
    /// Up while a replica restored without a trustworthy safety record may not sign.
    amnesia: Option<AmnesiaGuard>,
    /// Idle pacing: whether the chain was quiet at the last `drive` (see `idle.rs`).
    quiet: bool,
    /// Idle pacing: since when the chain has not been quiet (`None` while quiet).
    busy_since: Option<u64>,
    /// The epoch ended ([`Replica::retire`]): only laggards are answered.
    retired: bool,
    /// Retired: when each validator's timeout was last answered.
    retired_answers: BTreeMap<ValidatorIndex, u64>,
}

impl<A: App> Replica<A> {
    /// A replica on a fresh chain.
    ///
    /// # Errors
    /// [`ReplicaError`] if `key` is not a validator of `chain` or `config` is out of range.
    pub fn new(
        chain: Chain,
        key: SigningKey,
        config: Config,
        app: A,
    ) -> Result<Self, ReplicaError> {
        let safety = SafetyState::initial(chain.genesis_qc());
        Self::build(chain, key, config, app, safety)
    }

    fn build(
        chain: Chain,
        key: SigningKey,
        config: Config,
        app: A,
        safety: SafetyState,
    ) -> Result<Self, ReplicaError> {
        config.validate()?;
        let me = chain
            .validators()
            .index_of(&key.verifying_key())
            .ok_or(ReplicaError::NotAValidator)?;
        let tree = BlockTree::new(chain.genesis().clone(), config.retained_committed_blocks);
        let first_view = chain.genesis().view() + 1;
        Ok(Self {
            chain,
            key,
            me,
            config,
            app,
            tree,
            safety,
            view: first_view,
            view_started_ms: 0,
            tc_streak: 0,
            my_timeout: None,
            last_timeout_sent_ms: 0,
            proposed_view: 0,
            votes: BTreeMap::new(),
            voted: BTreeMap::new(),
            timeouts: BTreeMap::new(),
            sync: SyncState::default(),
            verified: BTreeSet::new(),
            verified_order: VecDeque::new(),
            invalid_certs: BTreeMap::new(),
            invalid_certs_order: VecDeque::new(),
            invalid_senders: BTreeSet::new(),
            answered_laggards: BTreeSet::new(),
            scheduled: None,
            out: Vec::new(),
            stats: Stats::default(),
            started: false,
            amnesia: None,
            quiet: false,
            busy_since: None,
            retired: false,
            retired_answers: BTreeMap::new(),
        })
    }

    /// A replica restarted from its store: the last persisted [`SafetyState`], the persisted
    /// blocks (any order), and the hash of the last committed block `app` already applied
    /// (the genesis hash if none).
    ///
    /// `blocks` must hold `last_committed` and, when the chain is that long, its
    /// [`Config::retained_committed_blocks`]` - 1` committed ancestors (more are ignored: the
    /// store reads back only that tail, [`crate::store::Store::recover`]), plus the uncommitted
    /// blocks above it. Blocks at or below the committed height off the committed chain are
    /// ignored.
    ///
    /// Blocks above `last_committed` that the stored certificates prove committed are committed
    /// again: the first [`Replica::handle`] call returns them as [`Output::Commit`] (after
    /// passing them to [`App::commit`]).
    ///
    /// # Errors
    /// [`ReplicaError`] if the key or config is bad, or `last_committed` is not among the
    /// blocks.
    pub fn restore(
        chain: Chain,
        key: SigningKey,
        config: Config,
        app: A,
        safety: SafetyState,
        blocks: Vec<Block>,
        last_committed: BlockHash,
    ) -> Result<Self, ReplicaError> {
        let mut replica = Self::build(chain, key, config, app, safety)?;
        let genesis = replica.chain.genesis().hash();
        let mut by_hash: std::collections::HashMap<BlockHash, Block> =
            blocks.into_iter().map(|b| (b.hash(), b)).collect();
        if last_committed != genesis {
            // The committed tail, newest first, as far back as the window (or genesis).
            let mut tail = Vec::new();
            let mut cursor = last_committed;
            while tail.len() < replica.config.retained_committed_blocks && cursor != genesis {
                let Some(block) = by_hash.remove(&cursor) else {
                    break;
                };
                cursor = block.parent();
                tail.push(Arc::new(block));
            }
            let Some(oldest) = tail.pop() else {
                return Err(ReplicaError::MissingCommitted(last_committed));
            };
            if oldest.parent() != genesis {
                replica.tree = BlockTree::rooted(
                    oldest,
                    replica.chain.genesis().height(),
                    replica.config.retained_committed_blocks,
                );
            } else if !replica.tree.extend_committed(oldest) {
                return Err(ReplicaError::MissingCommitted(last_committed));
            }
            while let Some(block) = tail.pop() {
                replica.tree.extend_committed(block);
            }
        }
        let committed = replica.tree.committed_height();
        let mut rest: Vec<Block> = by_hash
            .into_values()
            .filter(|b| b.height() > committed)
            .collect();
        rest.sort_by_key(Block::height);
        for block in rest {
            replica.tree.insert(Arc::new(block));
        }
        // Re-derive commits the app has not applied yet from the stored certificates.
        let mut qcs = replica.stored_qcs();
        qcs.push(replica.safety.high_qc.clone());
        for qc in &qcs {
            replica.try_commit(qc);
        }
        replica.view = (replica.safety.high_qc.view.saturating_add(1))
            .max(
                replica
                    .safety
                    .high_tc
                    .as_ref()
                    .map_or(0, |tc| tc.view.saturating_add(1)),
            )
            .max(replica.safety.last_voted_view)
            .max(replica.first_view());
        replica.proposed_view = replica.safety.last_voted_view;
        Ok(replica)
    }

    /// As [`Replica::restore`], for a store whose safety record cannot be trusted: a restored
    /// backup, or a wiped or lost store with the same key (pass
    /// `SafetyState::initial(chain.genesis_qc())` and no blocks when nothing is left). The
    /// replica signs nothing until the amnesia guard lifts; see the `amnesia` module docs
    /// for the rule and why it is safe (audit M5).
    ///
    /// # Errors
    /// As [`Replica::restore`].
    pub fn restore_untrusted(
        chain: Chain,
        key: SigningKey,
        config: Config,
        app: A,
        safety: SafetyState,
        blocks: Vec<Block>,
        last_committed: BlockHash,
    ) -> Result<Self, ReplicaError> {
        let root = chain.genesis();
        let genesis_only = blocks.iter().all(|b| b.height() <= root.height())
            && safety.last_voted_view == 0
            && safety.high_qc.view == root.view()
            && safety.high_tc.is_none();
        let mut replica = Self::restore(chain, key, config, app, safety, blocks, last_committed)?;
        tracing::warn!(replica = %replica.me, "restored without a trusted safety record: amnesia guard up");
        replica.amnesia = Some(AmnesiaGuard::new(genesis_only));
        Ok(replica)
    }

    /// The epoch's first view: one above its root block's (1 on a fresh chain).
    fn first_view(&self) -> u64 {
        self.chain.genesis().view() + 1
    }

    fn stored_qcs(&self) -> Vec<QuorumCert> {
        let mut qcs = Vec::new();
        let above_root = self.chain.genesis().height() + 1;
        for height in self.tree.lowest_committed_held().max(above_root)..=self.tree.max_height() {
            for block in self.tree.blocks_at(height) {
                qcs.push(block.justify().clone());
            }
        }
        qcs
    }

    /// The replica's validator index.
    #[must_use]
    pub fn index(&self) -> ValidatorIndex {
        self.me
    }

    /// The chain.
    #[must_use]
    pub fn chain(&self) -> &Chain {
        &self.chain
    }

    /// The app.
    #[must_use]
    pub fn app(&self) -> &A {
        &self.app
    }

    /// The application, mutably (the node feeds its mempool between inputs).
    pub fn app_mut(&mut self) -> &mut A {
        &mut self.app
    }

    /// Counters.
    #[must_use]
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Where the replica is.
    #[must_use]
    pub fn status(&self) -> Status {
        Status {
            view: self.view,
            committed_height: self.tree.committed_height(),
            committed_hash: self.tree.committed_tip().hash(),
            high_qc_view: self.safety.high_qc.view,
            last_voted_view: self.safety.last_voted_view,
        }
    }

    /// Blocks held in memory: the retained committed window plus the uncommitted tree
    /// (bounded whatever the chain's length).
    #[must_use]
    pub fn blocks_held(&self) -> usize {
        self.tree.len()
    }

    /// The committed block at `height`, if this replica still holds it.
    #[must_use]
    pub fn committed_block(&self, height: u64) -> Option<&Arc<Block>> {
        self.tree.committed_at(height)
    }

    /// Handles one input at time `now_ms` and returns what to do, in order.
    pub fn handle(&mut self, now_ms: u64, input: Input) -> Vec<Output> {
        if self.retired {
            return self.handle_retired(now_ms, input);
        }
        if !self.started {
            self.started = true;
            self.view_started_ms = now_ms;
        }
        match input {
            Input::Tick => {}
            Input::Message { from, msg } => self.on_message(now_ms, from, msg),
        }
        self.drive(now_ms);
        std::mem::take(&mut self.out)
    }

    fn on_message(&mut self, now: u64, from: ValidatorIndex, msg: Msg) {
        if self.chain.validators().key(from).is_none() || from == self.me {
            return;
        }
        let result = match msg {
            Msg::Proposal(p) => self.on_proposal(now, from, p),
            Msg::Vote(v) => self.on_vote(now, from, v),
            Msg::Timeout(t) => self.on_timeout(now, from, t),
            Msg::SyncInfo { high_qc, high_tc } => self.on_sync_info(now, from, high_qc, high_tc),
            Msg::SyncRequest {
                from_height,
                target,
            } => {
                self.on_sync_request(now, from, from_height, target);
                Ok(())
            }
            Msg::SyncResponse { blocks, qc } => self.on_sync_response(now, from, blocks, qc),
        };
        if let Err(err) = result {
            self.stats.invalid_messages += 1;
            tracing::debug!(%from, cause = %err, "dropped invalid consensus message");
        }
    }

    /// Queues the current safety state for persistence; every vote and timeout is preceded by
    /// one of these in the same batch.
    fn persist_safety(&mut self) {
        self.out
            .push(Output::Persist(Persist::Safety(self.safety.clone())));
    }

    /// Proposes if due, runs the view and timeout-resend timers and block sync retries, and
    /// schedules the next tick.
    fn drive(&mut self, now: u64) {
        let mut next = u64::MAX;
        if let Some(at) = self.update_quiet(now) {
            next = next.min(at);
        }
        // A proposal can advance the view at once (a one-validator chain certifies its own
        // block with its own vote): the next view's leader, maybe us, gets its turn now rather
        // than at the next tick. Pacing bounds the loop (each block is at least
        // `min_block_interval_ms` after its parent, and we stamp at most half the drift ahead).
        loop {
            let view = self.view;
            if let Some(at) = self.maybe_propose(now) {
                next = next.min(at);
            }
            if self.view == view {
                break;
            }
        }
        // View timer.
        if self.my_timeout.is_none() && self.may_time_out() {
            let deadline = self.view_deadline();
            if now >= deadline {
                self.local_timeout(now);
            } else {
                next = next.min(deadline);
            }
        }
        if let Some(t) = self.my_timeout.clone() {
            let resend = self
                .last_timeout_sent_ms
                .saturating_add(self.config.timeout_resend_ms);
            if now >= resend {
                self.last_timeout_sent_ms = now;
                self.broadcast_timeout(&t);
                next = next.min(now.saturating_add(self.config.timeout_resend_ms));
            } else {
                next = next.min(resend);
            }
        }
        // Block sync: retry with another peer while the highest QC's block is missing.
        let behind =
            !self.tree.contains(&self.safety.high_qc.block) || self.sync.continue_from.is_some();
        match self.sync.inflight {
            Some((peer, deadline)) if now >= deadline => {
                self.sync_unanswered(peer);
                if behind {
                    let peer = self.next_sync_peer();
                    let target = self.safety.high_qc.block;
                    self.request_sync(now, peer, target);
                }
            }
            Some((_, deadline)) => next = next.min(deadline),
            None if behind => {
                let peer = self.next_sync_peer();
                let target = self.safety.high_qc.block;
                self.request_sync(now, peer, target);
            }
            None => {}
        }
        if let Some((_, deadline)) = self.sync.inflight {
            next = next.min(deadline);
        }
        if next != u64::MAX && self.scheduled.is_none_or(|s| s != next || s <= now) {
            self.scheduled = Some(next);
            self.out.push(Output::ScheduleTick(next));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::{from, Net, ME, T0};
    use crate::protocol::block::Block;
    use crate::protocol::certificate::{QuorumCert, Vote};
    use crate::protocol::message::Msg;
    use crate::protocol::timeout::Timeout;

    /// Audit L2: views and heights at `u64::MAX` from a peer are dropped or refused, and never
    /// overflow (tests build with overflow checks, so an overflow panics here).
    #[test]
    fn peer_input_at_u64_max_never_overflows() {
        let net = Net::new();
        let mut r = net.replica(ME);
        let b1 = net.child(&net.genesis(), net.genesis_qc(), 1, T0);
        let max_vote = Vote::new(
            &net.chain,
            net.key(b1.proposer()),
            b1.proposer(),
            u64::MAX,
            u64::MAX,
            b1.hash(),
        );
        r.handle(T0, from(1, Msg::Vote(max_vote)));
        let max_timeout = Timeout::new(
            &net.chain,
            net.key(b1.proposer()),
            b1.proposer(),
            u64::MAX,
            net.genesis_qc(),
            None,
        );
        r.handle(T0, from(1, Msg::Timeout(max_timeout)));
        // A block at the highest height and view on top of genesis, and a child above it.
        let top = Block::new(
            u64::MAX,
            u64::MAX,
            b1.proposer(),
            T0,
            net.genesis_qc(),
            vec![1],
        );
        r.handle(T0, from(1, net.proposal(top.clone(), None)));
        let above = QuorumCert {
            block: top.hash(),
            view: u64::MAX,
            height: u64::MAX,
            signatures: Vec::new(),
        };
        let child = Block::new(0, 0, b1.proposer(), T0, above, vec![2]);
        let response = Msg::SyncResponse {
            blocks: vec![top, child],
            qc: None,
        };
        r.handle(T0, from(1, response));

        assert_eq!(r.status().view, 1);
        assert_eq!(r.status().committed_height, 0);
        // The unasked sync response is now dropped before it is read (audit H2); the checked
        // arithmetic in `on_sync_response` stays for answers to a real request.
        let stats = r.stats();
        assert!(
            stats.invalid_messages + stats.unasked_sync_responses >= 2,
            "{stats:?}"
        );
    }
}
