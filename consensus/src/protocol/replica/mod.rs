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

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use ed25519_dalek::{Signature, SigningKey};

use super::app::App;
use super::block::{Block, BlockHash};
use super::block_tree::BlockTree;
use super::certificate::{check_signers, vote_message, QuorumCert, Vote};
use super::chain::Chain;
use super::codec::{Encoder, MAX_MESSAGE_BYTES, MAX_PAYLOAD_BYTES};
use super::config::{Config, TestFault};
use super::error::{ReplicaError, VerifyError};
use super::leader::{failed_leaders, leader};
use super::message::{Msg, Proposal};
use super::safety::SafetyState;
use super::timeout::{Timeout, TimeoutCert};
use super::validators::{sha256, ValidatorIndex};

/// Votes and timeouts further ahead of our view than this are dropped (bounds memory).
const MAX_VIEWS_AHEAD: u64 = 64;
/// Verified certificates remembered, so re-sent ones are not verified again.
const VERIFIED_CACHE: usize = 256;

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
    /// A new block in the tree (store it by hash; pass them all to [`Replica::restore`]).
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
    /// Blocks committed.
    pub commits: u64,
    /// Commits that conflicted with the committed chain (must stay 0).
    pub commit_conflicts: u64,
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

#[derive(Debug)]
struct VoteAcc {
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
    votes: BTreeMap<(u64, BlockHash), VoteAcc>,
    voted: BTreeMap<(u64, ValidatorIndex), BlockHash>,
    timeouts: BTreeMap<u64, TimeoutAcc>,
    sync: SyncState,
    verified: BTreeSet<[u8; 32]>,
    verified_order: VecDeque<[u8; 32]>,
    scheduled: Option<u64>,
    out: Vec<Output>,
    stats: Stats,
    started: bool,
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
        let tree = BlockTree::new(chain.genesis().clone());
        Ok(Self {
            chain,
            key,
            me,
            config,
            app,
            tree,
            safety,
            view: 1,
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
            scheduled: None,
            out: Vec::new(),
            stats: Stats::default(),
            started: false,
        })
    }

    /// A replica restarted from its store: the last persisted [`SafetyState`], every persisted
    /// block (any order), and the hash of the last committed block `app` already applied
    /// (the genesis hash if none).
    ///
    /// Blocks above `last_committed` that the stored certificates prove committed are committed
    /// again: the first [`Replica::handle`] call returns them as [`Output::Commit`] (after
    /// passing them to [`App::commit`]).
    ///
    /// # Errors
    /// [`ReplicaError`] if the key or config is bad, or `last_committed` and its ancestors are
    /// not among the stored blocks.
    pub fn restore(
        chain: Chain,
        key: SigningKey,
        config: Config,
        app: A,
        safety: SafetyState,
        mut blocks: Vec<Block>,
        last_committed: BlockHash,
    ) -> Result<Self, ReplicaError> {
        let mut replica = Self::build(chain, key, config, app, safety)?;
        blocks.sort_by_key(Block::height);
        for block in blocks {
            replica.tree.insert(Arc::new(block));
        }
        if last_committed != replica.chain.genesis().hash() {
            replica
                .tree
                .commit(last_committed)
                .map_err(|_| ReplicaError::MissingCommitted(last_committed))?;
        }
        // Re-derive commits the app has not applied yet from the stored certificates.
        let mut qcs = replica.stored_qcs();
        qcs.push(replica.safety.high_qc.clone());
        for qc in &qcs {
            replica.try_commit(qc);
        }
        replica.view = (replica.safety.high_qc.view + 1)
            .max(replica.safety.high_tc.as_ref().map_or(0, |tc| tc.view + 1))
            .max(replica.safety.last_voted_view)
            .max(1);
        replica.proposed_view = replica.safety.last_voted_view;
        Ok(replica)
    }

    fn stored_qcs(&self) -> Vec<QuorumCert> {
        let mut qcs = Vec::new();
        for height in 1..=self.tree.max_height() {
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

    /// The committed block at `height`, if this replica still holds it.
    #[must_use]
    pub fn committed_block(&self, height: u64) -> Option<&Arc<Block>> {
        self.tree.committed_at(height)
    }

    /// Handles one input at time `now_ms` and returns what to do, in order.
    pub fn handle(&mut self, now_ms: u64, input: Input) -> Vec<Output> {
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
                self.on_sync_request(from, from_height, target);
                Ok(())
            }
            Msg::SyncResponse { blocks, qc } => self.on_sync_response(now, from, blocks, qc),
        };
        if let Err(err) = result {
            self.stats.invalid_messages += 1;
            tracing::debug!(%from, cause = %err, "dropped invalid consensus message");
        }
    }

    // ----- verification with a cache -------------------------------------------------------

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

    fn verify_qc(&mut self, qc: &QuorumCert) -> Result<(), VerifyError> {
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

    fn verify_tc(&mut self, tc: &TimeoutCert) -> Result<(), VerifyError> {
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

    // ----- certificates and views ----------------------------------------------------------

    fn persist_safety(&mut self) {
        self.out
            .push(Output::Persist(Persist::Safety(self.safety.clone())));
    }

    /// Takes a verified QC into account: high QC, view, commits, sync.
    fn process_qc(&mut self, now: u64, qc: &QuorumCert, from: ValidatorIndex) {
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

    fn process_tc(&mut self, now: u64, tc: &TimeoutCert, from: ValidatorIndex) {
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
        self.advance_view(now, tc.view + 1, false);
    }

    fn advance_view(&mut self, now: u64, view: u64, via_qc: bool) {
        if view <= self.view {
            return;
        }
        tracing::trace!(replica = %self.me, view, via_qc, "enter view");
        self.view = view;
        self.view_started_ms = now;
        self.tc_streak = if via_qc { 0 } else { self.tc_streak + 1 };
        self.my_timeout = None;
        let keep_from = view.saturating_sub(1);
        self.votes.retain(|(v, _), _| *v >= keep_from);
        self.voted.retain(|(v, _), _| *v >= keep_from);
        self.timeouts.retain(|v, _| *v >= keep_from);
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

    fn try_commit(&mut self, qc: &QuorumCert) {
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

    // ----- proposals and votes -------------------------------------------------------------

    fn on_proposal(
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
        let justify = block.justify().clone();
        self.verify_qc(&justify)?;
        if let Some(tc) = &tc {
            self.verify_tc(tc)?;
        }
        self.process_qc(now, &justify, from);
        if let Some(tc) = &tc {
            self.process_tc(now, tc, from);
        }
        let justified = justify.view + 1 == block.view()
            || tc.as_ref().is_some_and(|tc| tc.view + 1 == block.view());
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
            return Ok(());
        };
        if block.height() != parent.height() + 1
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
        self.out.push(Output::Broadcast(Msg::Vote(vote.clone())));
        self.add_vote(now, vote);
        Ok(())
    }

    fn on_vote(&mut self, now: u64, _from: ValidatorIndex, vote: Vote) -> Result<(), VerifyError> {
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

    fn add_vote(&mut self, now: u64, vote: Vote) {
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

    fn can_propose(&self) -> Option<Arc<Block>> {
        if self.proposed_view >= self.view {
            return None;
        }
        let entered = self.safety.high_qc.view + 1 == self.view
            || self
                .safety
                .high_tc
                .as_ref()
                .is_some_and(|tc| tc.view + 1 == self.view);
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
    fn maybe_propose(&mut self, now: u64) -> Option<u64> {
        let parent = self.can_propose()?;
        let earliest = parent
            .timestamp_ms()
            .saturating_add(self.config.min_block_interval_ms);
        if now < earliest {
            return Some(earliest);
        }
        let payload = match self.config.test_fault {
            Some(TestFault::InvalidPayload) => self.app.propose_invalid(&parent, now),
            None => self.app.propose(&parent, now),
        };
        if payload.len() > MAX_PAYLOAD_BYTES {
            tracing::error!(replica = %self.me, len = payload.len(), "app proposed an oversized payload");
            self.proposed_view = self.view;
            return None;
        }
        let tc = if self.safety.high_qc.view + 1 == self.view {
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
            parent.height() + 1,
            self.view,
            self.me,
            now,
            self.safety.high_qc.clone(),
            payload,
        )
        .with_failed_leaders(failed);
        tracing::debug!(replica = %self.me, view = self.view, height = block.height(), "propose");
        let proposal = Proposal::new(&self.chain, &self.key, block, tc);
        self.proposed_view = self.view;
        self.stats.proposals += 1;
        self.out
            .push(Output::Broadcast(Msg::Proposal(proposal.clone())));
        // Vote for our own proposal through the normal path (persists before the vote leaves).
        if let Err(err) = self.on_own_proposal(now, proposal) {
            tracing::error!(replica = %self.me, cause = %err, "own proposal invalid");
        }
        None
    }

    fn on_own_proposal(&mut self, now: u64, p: Proposal) -> Result<(), VerifyError> {
        let me = self.me;
        self.on_proposal(now, me, p)
    }

    // ----- timeouts ------------------------------------------------------------------------

    fn view_deadline(&self) -> u64 {
        self.view_started_ms
            .saturating_add(self.config.view_timeout_ms(self.tc_streak))
    }

    fn local_timeout(&mut self, now: u64) {
        let view = self.view;
        self.safety.last_voted_view = self.safety.last_voted_view.max(view);
        self.persist_safety();
        let last_tc = self.safety.high_tc.clone().filter(|tc| tc.view + 1 == view);
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
        self.out
            .push(Output::Broadcast(Msg::Timeout(timeout.clone())));
        self.add_timeout(now, timeout);
    }

    fn on_timeout(
        &mut self,
        now: u64,
        from: ValidatorIndex,
        t: Timeout,
    ) -> Result<(), VerifyError> {
        if t.view > self.view + MAX_VIEWS_AHEAD {
            return Ok(());
        }
        if t.view < self.view {
            // A laggard: hand it our certificates (cheap to verify, no state change here).
            self.out.push(Output::Send(
                from,
                Msg::SyncInfo {
                    high_qc: self.safety.high_qc.clone(),
                    high_tc: self.safety.high_tc.clone(),
                },
            ));
            return Ok(());
        }
        if self
            .timeouts
            .get(&t.view)
            .is_some_and(|acc| acc.entries.contains_key(&t.sender))
        {
            return Ok(());
        }
        if self.chain.validators().key(t.sender).is_none() {
            return Err(VerifyError::UnknownValidator(t.sender));
        }
        let msg = super::timeout::timeout_message(&self.chain, t.view, t.high_qc.view);
        if !self.chain.validators().verify(t.sender, &msg, &t.signature) {
            return Err(VerifyError::BadSignature(t.sender));
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

    fn on_sync_info(
        &mut self,
        now: u64,
        from: ValidatorIndex,
        high_qc: QuorumCert,
        high_tc: Option<TimeoutCert>,
    ) -> Result<(), VerifyError> {
        self.verify_qc(&high_qc)?;
        if let Some(tc) = &high_tc {
            self.verify_tc(tc)?;
        }
        self.process_qc(now, &high_qc, from);
        if let Some(tc) = &high_tc {
            self.process_tc(now, tc, from);
        }
        Ok(())
    }

    // ----- block sync ----------------------------------------------------------------------

    fn sync_from_height(&self) -> u64 {
        self.sync
            .continue_from
            .unwrap_or(self.tree.committed_height() + 1)
            .max(self.tree.committed_height() + 1)
    }

    fn request_sync(&mut self, now: u64, peer: ValidatorIndex, target: BlockHash) {
        if self
            .sync
            .inflight
            .is_some_and(|(_, deadline)| now < deadline)
            || peer == self.me
        {
            return;
        }
        let from_height = self.sync_from_height();
        tracing::debug!(replica = %self.me, %peer, from_height, "block sync request");
        self.stats.sync_requests += 1;
        self.sync.inflight = Some((peer, now.saturating_add(self.config.sync_retry_ms)));
        self.out.push(Output::Send(
            peer,
            Msg::SyncRequest {
                from_height,
                target,
            },
        ));
    }

    fn on_sync_request(&mut self, from: ValidatorIndex, from_height: u64, target: BlockHash) {
        let target = if self.tree.contains(&target) {
            target
        } else {
            self.safety.high_qc.block
        };
        let blocks = self
            .tree
            .chain_to(target, from_height, self.config.max_sync_blocks);
        if blocks.is_empty() {
            return;
        }
        // Keep the response well under the message limit.
        let mut size = 0usize;
        let mut keep = 0;
        for b in &blocks {
            size += b.payload().len() + 512 + 80 * b.justify().signatures.len();
            if size > MAX_MESSAGE_BYTES / 2 && keep > 0 {
                break;
            }
            keep += 1;
        }
        let last = blocks[keep - 1].hash();
        let qc = if self.safety.high_qc.block == last {
            Some(self.safety.high_qc.clone())
        } else if let Some(next) = blocks.get(keep) {
            Some(next.justify().clone())
        } else {
            // A child of `last` on the way to the target carries its QC, if we have one.
            self.tree
                .ancestors(target)
                .find(|b| b.parent() == last)
                .map(|child| child.justify().clone())
        };
        let blocks = blocks[..keep].iter().map(|b| Block::clone(b)).collect();
        self.out
            .push(Output::Send(from, Msg::SyncResponse { blocks, qc }));
    }

    fn on_sync_response(
        &mut self,
        now: u64,
        from: ValidatorIndex,
        mut blocks: Vec<Block>,
        qc: Option<QuorumCert>,
    ) -> Result<(), VerifyError> {
        if self.sync.inflight.is_some_and(|(peer, _)| peer == from) {
            self.sync.inflight = None;
        }
        let Some(first) = blocks.first() else {
            return Ok(());
        };
        if !self.tree.contains(&first.parent()) {
            return Err(VerifyError::BadParent(first.hash()));
        }
        for pair in blocks.windows(2) {
            if pair[1].parent() != pair[0].hash() || pair[1].height() != pair[0].height() + 1 {
                return Err(VerifyError::BadParent(pair[1].hash()));
            }
        }
        let full = blocks.len() >= self.config.max_sync_blocks;
        // Every block is certified by its child's justify; the last one by `qc`, or by a QC
        // we already hold. An uncertified last block is dropped.
        let last_hash = blocks[blocks.len() - 1].hash();
        match &qc {
            Some(qc) if qc.block == last_hash => self.verify_qc(qc)?,
            Some(qc) => return Err(VerifyError::BadParent(qc.block)),
            None if self.safety.high_qc.block == last_hash => {}
            None => {
                blocks.pop();
            }
        }
        for block in &blocks {
            if block.payload().len() > MAX_PAYLOAD_BYTES {
                return Err(VerifyError::PayloadTooLarge(block.payload().len()));
            }
            let justify = block.justify().clone();
            self.verify_qc(&justify)?;
        }
        let mut inserted = 0;
        for block in blocks {
            let block = Arc::new(block);
            let parent_ok = self.tree.get(&block.parent()).is_some_and(|p| {
                p.height() + 1 == block.height() && block.justify().view == p.view()
            });
            if !parent_ok {
                break;
            }
            let justify = block.justify().clone();
            let height = block.height();
            if self.tree.insert(Arc::clone(&block)) {
                inserted += 1;
                self.out.push(Output::Persist(Persist::Block(block)));
            }
            self.process_qc(now, &justify, from);
            self.sync.continue_from = Some(height + 1);
        }
        if let Some(qc) = &qc {
            self.process_qc(now, qc, from);
        } else {
            let high = self.safety.high_qc.clone();
            self.try_commit(&high);
        }
        tracing::debug!(replica = %self.me, %from, inserted, committed = self.tree.committed_height(), "block sync response");
        if full && inserted > 0 {
            let target = self.safety.high_qc.block;
            self.request_sync(now, from, target);
        } else {
            self.sync.continue_from = None;
        }
        Ok(())
    }

    // ----- timers --------------------------------------------------------------------------

    fn drive(&mut self, now: u64) {
        let mut next = u64::MAX;
        if let Some(at) = self.maybe_propose(now) {
            next = next.min(at);
        }
        // View timer.
        if self.my_timeout.is_none() {
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
                self.out.push(Output::Broadcast(Msg::Timeout(t)));
                next = next.min(now.saturating_add(self.config.timeout_resend_ms));
            } else {
                next = next.min(resend);
            }
        }
        // Block sync: retry with another peer while the highest QC's block is missing.
        let behind =
            !self.tree.contains(&self.safety.high_qc.block) || self.sync.continue_from.is_some();
        match self.sync.inflight {
            Some((_, deadline)) if now >= deadline => {
                self.sync.inflight = None;
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

    fn next_sync_peer(&mut self) -> ValidatorIndex {
        let n = u16::try_from(self.chain.validators().len()).unwrap_or(u16::MAX);
        loop {
            self.sync.next_peer = (self.sync.next_peer + 1) % n.max(1);
            let peer = ValidatorIndex(self.sync.next_peer);
            if peer != self.me || n <= 1 {
                return peer;
            }
        }
    }
}
