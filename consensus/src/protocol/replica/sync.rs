//! Certificate sync (`SyncInfo`) and block sync (`SyncRequest`/`SyncResponse`).
//!
//! # Invariants
//! - At most one block sync request is in flight; it is retried with the next peer (round robin,
//!   never ourselves) after `sync_retry_ms`.
//! - A response is answered from the blocks we hold on the way to the requested target (or our
//!   high QC's block), at most `max_sync_blocks` and about half the message limit, with a QC
//!   for its last block when we have one.
//! - Received blocks are accepted only as a chain hanging off a block we hold, each certified by
//!   its child's verified justify and the last by a verified QC (an uncertified last block is
//!   dropped); accepted blocks are persisted, their QCs processed as if received directly.
//! - Each peer gets at most [`SYNC_ANSWERS_PER_WINDOW`] answers per `sync_retry_ms` window;
//!   further requests in the window are dropped and counted.
//! - A response is considered only from the peer the outstanding request went to and only when
//!   it starts at the requested height; any other response is dropped and counted
//!   ([`super::Stats::unasked_sync_responses`]).

use std::sync::Arc;

use super::{App, Output, Persist, Replica};
use crate::protocol::block::{Block, BlockHash};
use crate::protocol::certificate::QuorumCert;
use crate::protocol::codec::{MAX_MESSAGE_BYTES, MAX_PAYLOAD_BYTES};
use crate::protocol::error::VerifyError;
use crate::protocol::message::{Msg, Proposal};
use crate::protocol::timeout::TimeoutCert;
use crate::protocol::validators::ValidatorIndex;

/// Sync requests answered per peer per `sync_retry_ms` window (audit M1).
pub(super) const SYNC_ANSWERS_PER_WINDOW: u32 = 8;

impl<A: App> Replica<A> {
    pub(super) fn on_sync_info(
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

    fn sync_from_height(&self) -> u64 {
        self.sync
            .continue_from
            .unwrap_or(self.tree.committed_height() + 1)
            .max(self.tree.committed_height() + 1)
    }

    /// Audit H3: tells the app that `hash` (named by a verified QC) and its uncommitted
    /// ancestors (certified by their children's verified justifies) are certified, parents
    /// before children, so a stateful app can compute the state of any certified block, also
    /// one it never validated (synced, or received after a restart). Blocks at or below the
    /// committed height are not reported: the app has them through `commit`. A block may be
    /// reported more than once (once per QC processed above it).
    pub(super) fn report_certified(&mut self, hash: BlockHash) {
        let committed = self.tree.committed_height();
        let mut chain: Vec<Arc<Block>> = self
            .tree
            .ancestors(hash)
            .take_while(|b| b.height() > committed)
            .cloned()
            .collect();
        chain.reverse();
        for block in chain {
            self.app.certified(&block);
        }
    }

    /// Audit L7: keeps a proposal whose parent is missing (verified, for the current view), so
    /// that it can be voted on once sync delivers the parent. One slot: a later proposal for
    /// the current view replaces an older-view one; one for the same view does not replace it.
    pub(super) fn keep_orphan(&mut self, from: ValidatorIndex, p: Proposal) {
        if p.block.view() != self.view {
            return;
        }
        if self
            .sync
            .orphan
            .as_ref()
            .is_some_and(|(_, kept)| kept.block.view() >= p.block.view())
        {
            return;
        }
        self.sync.orphan = Some((from, p));
    }

    /// Re-processes the kept orphan proposal once its parent is in the tree (dropped once its
    /// view has passed).
    fn retry_orphan(&mut self, now: u64) {
        let Some((from, p)) = self.sync.orphan.take() else {
            return;
        };
        if p.block.view() != self.view {
            return;
        }
        if !self.tree.contains(&p.block.parent()) {
            self.sync.orphan = Some((from, p));
            return;
        }
        if let Err(err) = self.on_proposal(now, from, p) {
            tracing::debug!(replica = %self.me, %from, cause = %err, "kept proposal refused");
        }
    }

    /// The outstanding request to `peer` timed out unanswered: forget it and skip `peer` in
    /// later requests until it answers (audit L4).
    pub(super) fn sync_unanswered(&mut self, peer: ValidatorIndex) {
        self.sync.inflight = None;
        self.sync.silent.insert(peer);
    }

    pub(super) fn request_sync(&mut self, now: u64, peer: ValidatorIndex, target: BlockHash) {
        match self.sync.inflight {
            Some((_, deadline)) if now < deadline => return,
            Some((asked, _)) => self.sync_unanswered(asked),
            None => {}
        }
        if peer == self.me {
            return;
        }
        // Audit L4: a peer that left our last request unanswered (say, one that streams
        // SyncInfo but never serves blocks) does not get the retry; the next peer does.
        let peer = if self.sync.silent.contains(&peer) {
            self.next_sync_peer()
        } else {
            peer
        };
        let from_height = self.sync_from_height();
        tracing::debug!(replica = %self.me, %peer, from_height, "block sync request");
        self.stats.sync_requests += 1;
        self.sync.inflight = Some((peer, now.saturating_add(self.config.sync_retry_ms)));
        self.sync.asked_from = from_height;
        self.out.push(Output::Send(
            peer,
            Msg::SyncRequest {
                from_height,
                target,
            },
        ));
    }

    pub(super) fn on_sync_request(
        &mut self,
        now: u64,
        from: ValidatorIndex,
        from_height: u64,
        target: BlockHash,
    ) {
        // Audit M1: at most `SYNC_ANSWERS_PER_WINDOW` answers per peer per `sync_retry_ms`
        // window (an honest peer sends one request per window, plus continuations).
        let window = self.config.sync_retry_ms;
        let (start, answered) = self.sync.served.entry(from).or_insert((now, 0));
        if now >= start.saturating_add(window) {
            (*start, *answered) = (now, 0);
        }
        if *answered >= SYNC_ANSWERS_PER_WINDOW {
            self.stats.throttled_sync_requests += 1;
            tracing::debug!(replica = %self.me, %from, from_height, "sync request throttled");
            return;
        }
        let held = self.tree.lowest_committed_held();
        if from_height > self.tree.floor() && from_height < held {
            // Older than the committed blocks kept in memory: the store answers, up to the
            // oldest one held (the peer's next request is served from memory).
            let to_height = from_height
                .saturating_add(self.config.max_sync_blocks as u64 - 1)
                .min(held - 1);
            if let Some((_, answered)) = self.sync.served.get_mut(&from) {
                *answered += 1;
            }
            self.stats.store_sync_answers += 1;
            self.out.push(Output::ServeCommitted {
                to: from,
                from_height,
                to_height,
            });
            return;
        }
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
        let keep = fitting_in_response(blocks.iter().map(|b| &**b));
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
        if let Some((_, answered)) = self.sync.served.get_mut(&from) {
            *answered += 1;
        }
        self.out
            .push(Output::Send(from, Msg::SyncResponse { blocks, qc }));
    }

    pub(super) fn on_sync_response(
        &mut self,
        now: u64,
        from: ValidatorIndex,
        mut blocks: Vec<Block>,
        qc: Option<QuorumCert>,
    ) -> Result<(), VerifyError> {
        // Audit H2: only the peer the outstanding request went to may answer, and only with
        // the heights asked for; anything else is dropped (and counted).
        let asked = self.sync.inflight.is_some_and(|(peer, _)| peer == from)
            && blocks
                .first()
                .is_none_or(|b| b.height() == self.sync.asked_from)
            && blocks.len() <= self.config.max_sync_blocks;
        if !asked {
            self.stats.unasked_sync_responses += 1;
            tracing::debug!(replica = %self.me, %from, blocks = blocks.len(), "unasked sync response dropped");
            return Ok(());
        }
        self.sync.inflight = None;
        self.sync.silent.remove(&from);
        let Some(first) = blocks.first() else {
            return Ok(());
        };
        if !self.tree.contains(&first.parent()) {
            return Err(VerifyError::BadParent(first.hash()));
        }
        // Audit H2: each block's justify certifies its predecessor in the response (a block's
        // parent is its justify's block, enforced by `Block`), and every justify, including the
        // one of a last block about to be dropped, is verified first: a block is only ever
        // inserted under a verified QC.
        for pair in blocks.windows(2) {
            if pair[1].parent() != pair[0].hash()
                || pair[0].height().checked_add(1) != Some(pair[1].height())
            {
                return Err(VerifyError::BadParent(pair[1].hash()));
            }
        }
        for block in &blocks {
            if block.payload().len() > MAX_PAYLOAD_BYTES {
                return Err(VerifyError::PayloadTooLarge(block.payload().len()));
            }
            self.verify_qc(block.justify())?;
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
        let mut inserted = 0;
        // Blocks of the answer that hang off our tree, new or already held (a proposal we
        // kept without voting, say): the next request continues after them.
        let mut reached = 0;
        for block in blocks {
            let block = Arc::new(block);
            let parent_ok = self.tree.get(&block.parent()).is_some_and(|p| {
                p.height().checked_add(1) == Some(block.height())
                    && block.justify().view == p.view()
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
            self.sync.continue_from = Some(height.saturating_add(1));
            reached += 1;
        }
        if let Some(qc) = &qc {
            self.process_qc(now, qc, from);
        } else {
            let high = self.safety.high_qc.clone();
            self.try_commit(&high);
        }
        tracing::debug!(replica = %self.me, %from, inserted, committed = self.tree.committed_height(), "block sync response");
        if inserted > 0 {
            self.retry_orphan(now);
        }
        // Go on while the answer reached further and the high QC's block is still missing (an
        // answer can be short of `max_sync_blocks`: the size cap, or a store answer that stops
        // where the peer's memory starts). Blocks we already held count as progress: with
        // large blocks an answer may carry one block only, and if that one was held, asking
        // again from the committed height would get the same answer forever.
        let behind = !self.tree.contains(&self.safety.high_qc.block);
        if reached > 0 && (full || behind) {
            let target = self.safety.high_qc.block;
            self.request_sync(now, from, target);
        } else {
            self.sync.continue_from = None;
        }
        Ok(())
    }

    /// The next peer to ask, round robin, never ourselves and never a peer that left a
    /// request unanswered, unless every other peer has (then all get another chance).
    pub(super) fn next_sync_peer(&mut self) -> ValidatorIndex {
        let n = u16::try_from(self.chain.validators().len()).unwrap_or(u16::MAX);
        if (0..n)
            .map(ValidatorIndex)
            .all(|p| p == self.me || self.sync.silent.contains(&p))
        {
            self.sync.silent.clear();
        }
        loop {
            self.sync.next_peer = (self.sync.next_peer + 1) % n.max(1);
            let peer = ValidatorIndex(self.sync.next_peer);
            if n <= 1 || (peer != self.me && !self.sync.silent.contains(&peer)) {
                return peer;
            }
        }
    }
}

/// How many of `blocks` (at least one) fit in one sync response, well under the message
/// limit.
fn fitting_in_response<'a>(blocks: impl IntoIterator<Item = &'a Block>) -> usize {
    let mut size = 0usize;
    let mut keep = 0;
    for b in blocks {
        size += b.payload().len() + 512 + 80 * b.justify().signatures.len();
        if size > MAX_MESSAGE_BYTES / 2 && keep > 0 {
            break;
        }
        keep += 1;
    }
    keep
}

/// The sync response for [`Output::ServeCommitted`]: `blocks` are the committed blocks
/// `from_height..=to_height + 1` read from the store, in height order. The response carries as
/// many as fit from the front (the last one is never sent, only its justify, which certifies
/// the block below it). `None` if fewer than two blocks were found.
#[must_use]
pub fn committed_sync_response(mut blocks: Vec<Block>) -> Option<Msg> {
    if blocks.len() < 2 {
        return None;
    }
    let keep = fitting_in_response(&blocks[..blocks.len() - 1]);
    let qc = blocks[keep].justify().clone();
    blocks.truncate(keep);
    Some(Msg::SyncResponse {
        blocks,
        qc: Some(qc),
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::super::test_support::{
        from, persisted_blocks, v, Net, TestApp, ME, T0, VIEW_TIMEOUT,
    };
    use super::super::{Output, Persist, Replica};
    use crate::protocol::block::{Block, BlockHash};
    use crate::protocol::message::Msg;
    use crate::protocol::safety::SafetyState;

    /// Blocks 1 (view 1) and 2 (view 2, carrying a QC for block 1).
    fn two_blocks(net: &Net) -> (Block, Block) {
        let b1 = net.child(&net.genesis(), net.genesis_qc(), 1, T0);
        let b2 = net.child(&b1, net.qc(&b1, &[1, 2, 3]), 2, T0 + 500);
        (b1, b2)
    }

    /// A replica whose outstanding block sync request went to `peer` for `from_height`.
    fn asking(net: &Net, peer: u16, from_height: u64, now: u64) -> Replica<TestApp> {
        let mut r = net.replica(ME);
        r.sync.inflight = Some((v(peer), now + r.config.sync_retry_ms));
        r.sync.asked_from = from_height;
        r
    }

    /// A replica that asked peer 2 and got both blocks, certified by a QC of block 2, at
    /// `T0 + 600`; the outputs of that answer.
    fn synced_two_blocks(net: &Net) -> (Replica<TestApp>, Vec<Output>, Block, Block) {
        let (b1, b2) = two_blocks(net);
        let mut r = asking(net, 2, 1, T0);
        let response = Msg::SyncResponse {
            qc: Some(net.qc(&b2, &[1, 2, 3])),
            blocks: vec![b1.clone(), b2.clone()],
        };
        let out = r.handle(T0 + 600, from(2, response));
        (r, out, b1, b2)
    }

    /// A replica that received both blocks as proposals.
    fn holding_two_blocks(net: &Net) -> (Replica<TestApp>, Block, Block) {
        let (b1, b2) = two_blocks(net);
        let mut r = net.replica(ME);
        r.handle(T0, from(1, net.proposal(b1.clone(), None)));
        r.handle(T0 + 500, from(2, net.proposal(b2.clone(), None)));
        assert!(r.tree.contains(&b2.hash()));
        (r, b1, b2)
    }

    #[test]
    fn sync_info_with_a_qc_for_an_unknown_block_asks_that_peer_for_it() {
        let net = Net::new();
        let (b1, _) = two_blocks(&net);
        let qc1 = net.qc(&b1, &[1, 2, 3]);
        let mut r = net.replica(ME);

        let out = r.handle(
            T0,
            from(
                2,
                Msg::SyncInfo {
                    high_qc: qc1.clone(),
                    high_tc: None,
                },
            ),
        );

        let mut safety = SafetyState::initial(net.genesis_qc());
        safety.high_qc = qc1;
        let retry = r.config.sync_retry_ms;
        assert_eq!(
            out,
            vec![
                Output::Persist(Persist::Safety(safety)),
                Output::Send(
                    v(2),
                    Msg::SyncRequest {
                        from_height: 1,
                        target: b1.hash(),
                    }
                ),
                Output::ScheduleTick(T0 + retry),
            ]
        );
        assert_eq!(r.stats().sync_requests, 1);
        assert_eq!(r.status().view, 2);
    }

    #[test]
    fn a_sync_request_is_answered_with_the_blocks_up_to_the_target() {
        let net = Net::new();
        let (mut r, b1, b2) = holding_two_blocks(&net);

        let out = r.handle(
            T0 + 600,
            from(
                3,
                Msg::SyncRequest {
                    from_height: 1,
                    target: b2.hash(),
                },
            ),
        );

        // Nothing certifies block 2 yet, so no QC comes with it.
        assert_eq!(
            out,
            vec![Output::Send(
                v(3),
                Msg::SyncResponse {
                    blocks: vec![b1, b2],
                    qc: None,
                }
            )]
        );
    }

    #[test]
    fn a_sync_request_for_an_unknown_target_gets_our_certified_chain() {
        let net = Net::new();
        let (mut r, b1, _) = holding_two_blocks(&net);
        let unknown = BlockHash([0xAB; 32]);

        let out = r.handle(
            T0 + 600,
            from(
                3,
                Msg::SyncRequest {
                    from_height: 1,
                    target: unknown,
                },
            ),
        );

        // Up to our high QC's block, with that QC.
        assert_eq!(
            out,
            vec![Output::Send(
                v(3),
                Msg::SyncResponse {
                    blocks: vec![b1.clone()],
                    qc: Some(net.qc(&b1, &[1, 2, 3])),
                }
            )]
        );
    }

    #[test]
    fn a_certified_sync_response_is_persisted_and_committed() {
        let net = Net::new();
        let (r, out, b1, b2) = synced_two_blocks(&net);
        let qc2 = net.qc(&b2, &[1, 2, 3]);

        let mut after_b2 = SafetyState::initial(net.genesis_qc());
        after_b2.high_qc = net.qc(&b1, &[1, 2, 3]);
        let mut after_qc2 = after_b2.clone();
        after_qc2.high_qc = qc2;
        assert_eq!(
            out,
            vec![
                Output::Persist(Persist::Block(Arc::new(b1.clone()))),
                Output::Persist(Persist::Block(Arc::new(b2))),
                Output::Persist(Persist::Safety(after_b2)),
                Output::Persist(Persist::Safety(after_qc2)),
                Output::Commit(Arc::new(b1)),
                // The view timer runs from b2's time + the block interval.
                Output::ScheduleTick(T0 + 1_000 + VIEW_TIMEOUT),
            ]
        );
        assert_eq!(r.app().committed, [1]);
        assert_eq!(r.status().view, 3);
        assert_eq!(r.stats().votes, 0, "synced blocks are not voted for");
    }

    #[test]
    fn an_uncertified_last_block_is_dropped_and_a_detached_chain_refused() {
        let net = Net::new();
        let (b1, b2) = two_blocks(&net);
        let mut r = asking(&net, 2, 1, T0);

        let out = r.handle(
            T0,
            from(
                2,
                Msg::SyncResponse {
                    blocks: vec![b1.clone(), b2.clone()],
                    qc: None,
                },
            ),
        );
        assert_eq!(persisted_blocks(&out), vec![Arc::new(b1)]);
        assert!(!r.tree.contains(&b2.hash()));

        let mut fresh = asking(&net, 2, 2, T0);
        let qc2 = net.qc(&b2, &[1, 2, 3]);
        let out = fresh.handle(
            T0,
            from(
                2,
                Msg::SyncResponse {
                    blocks: vec![b2],
                    qc: Some(qc2),
                },
            ),
        );
        assert_eq!(out, vec![Output::ScheduleTick(T0 + VIEW_TIMEOUT)]);
        assert_eq!(fresh.stats().invalid_messages, 1);
    }

    #[test]
    fn a_response_whose_dropped_last_block_has_a_forged_justify_is_refused() {
        // Audit H2: block 2's justify for block 1 carries one signature, not a quorum.
        // Dropping the uncertified last block must not leave block 1 accepted on the strength
        // of that never-verified justify.
        let net = Net::new();
        let (b1, _) = two_blocks(&net);
        let forged = net.child(&b1, net.qc(&b1, &[1]), 2, T0 + 500);
        let mut r = asking(&net, 2, 1, T0);

        let out = r.handle(
            T0,
            from(
                2,
                Msg::SyncResponse {
                    blocks: vec![b1.clone(), forged],
                    qc: None,
                },
            ),
        );

        assert!(persisted_blocks(&out).is_empty());
        assert!(!r.tree.contains(&b1.hash()));
        assert_eq!(r.stats().invalid_messages, 1);
    }

    #[test]
    fn unasked_sync_responses_are_dropped_and_counted() {
        // Audit H2: a valid, certified chain is still refused when nobody asked for it, when
        // it comes from another peer than the one asked, or starts at another height.
        let net = Net::new();
        let (b1, b2) = two_blocks(&net);
        let response = Msg::SyncResponse {
            blocks: vec![b1.clone(), b2.clone()],
            qc: Some(net.qc(&b2, &[1, 2, 3])),
        };
        let late = Msg::SyncResponse {
            blocks: vec![b2.clone()],
            qc: Some(net.qc(&b2, &[1, 2, 3])),
        };
        for (mut r, msg) in [
            (net.replica(ME), response.clone()),
            (asking(&net, 3, 1, T0), response.clone()),
            (asking(&net, 2, 1, T0), late),
        ] {
            let out = r.handle(T0, from(2, msg));
            assert!(persisted_blocks(&out).is_empty());
            assert!(!r.tree.contains(&b1.hash()));
            assert_eq!(r.stats().unasked_sync_responses, 1);
            assert_eq!(r.stats().invalid_messages, 0);
        }

        // The asked-for answer goes through, once; a replay is unasked.
        let mut r = asking(&net, 2, 1, T0);
        let out = r.handle(T0, from(2, response.clone()));
        assert_eq!(persisted_blocks(&out).len(), 2);
        let out = r.handle(T0, from(2, response));
        assert!(persisted_blocks(&out).is_empty());
        assert_eq!(r.stats().unasked_sync_responses, 1);
    }

    #[test]
    fn a_peer_that_streams_sync_info_but_never_answers_does_not_capture_retries() {
        // Audit L4: peer 2 keeps sending the QC for a block we miss, and never answers.
        let net = Net::new();
        let (b1, _) = two_blocks(&net);
        let sync_info = Msg::SyncInfo {
            high_qc: net.qc(&b1, &[1, 2, 3]),
            high_tc: None,
        };
        let mut r = net.replica(ME);
        let retry = r.config.sync_retry_ms;
        let mut asked = Vec::new();
        for round in 0..4 {
            let out = r.handle(T0 + round * retry, from(2, sync_info.clone()));
            asked.extend(out.iter().filter_map(|o| match o {
                Output::Send(peer, Msg::SyncRequest { .. }) => Some(peer.0),
                _ => None,
            }));
        }
        // Peer 2 is asked once; the retries go round robin to the others, and once every
        // peer has been silent the rotation starts over.
        assert_eq!(asked, [2, 1, 3, 1]);
    }

    #[test]
    fn a_flood_of_sync_requests_gets_a_bounded_number_of_answers_per_window() {
        // Audit M1: one peer floods requests; it gets at most N answers per window, another
        // peer is still served, and the next window serves the flooder again.
        let net = Net::new();
        let (mut r, _, b2) = holding_two_blocks(&net);
        let window = r.config.sync_retry_ms;
        let request = Msg::SyncRequest {
            from_height: 1,
            target: b2.hash(),
        };
        let answers = |out: &[Output], to: u16| {
            out.iter()
                .filter(|o| matches!(o, Output::Send(p, Msg::SyncResponse { .. }) if p.0 == to))
                .count()
        };
        let now = T0 + 600;
        let flood: usize = (0..100)
            .map(|i| answers(&r.handle(now + i, from(3, request.clone())), 3))
            .sum();
        assert_eq!(flood, super::SYNC_ANSWERS_PER_WINDOW as usize);
        assert_eq!(
            r.stats().throttled_sync_requests,
            100 - u64::from(super::SYNC_ANSWERS_PER_WINDOW)
        );
        assert_eq!(
            answers(&r.handle(now + 100, from(2, request.clone())), 2),
            1
        );
        assert_eq!(answers(&r.handle(now + window, from(3, request)), 3), 1);
    }

    #[test]
    fn synced_blocks_are_reported_certified_to_the_app_parents_first() {
        // Audit H3: a replica that never validated blocks 1 and 2 learns they are certified,
        // in height order, before anything builds on them.
        let (r, _, _, _) = synced_two_blocks(&Net::new());

        // Block 1 is reported when block 2's justify is processed, then again (it is committed
        // afterwards) together with block 2 for the QC of block 2.
        assert_eq!(r.app().committed, [1]);
        assert_eq!(r.app().certified, [1, 1, 2]);
    }

    #[test]
    fn an_answer_of_blocks_already_held_moves_the_next_request_on() {
        // Found with 5,000-order blocks: an answer then carries one block, and when the
        // replica already held it (a proposal it kept but did not vote for), the next request
        // started again at the committed height, got the same block, and so on forever.
        let net = Net::new();
        let (b1, b2) = two_blocks(&net);
        let b3 = net.child(&b2, net.qc(&b2, &[1, 2, 3]), 3, T0 + 1_000);
        let mut r = net.replica(ME);
        r.handle(T0, from(1, net.proposal(b1.clone(), None)));
        assert!(r.tree.contains(&b1.hash()));
        let out = r.handle(
            T0 + 100,
            from(
                2,
                Msg::SyncInfo {
                    high_qc: net.qc(&b3, &[1, 2, 3]),
                    high_tc: None,
                },
            ),
        );
        assert!(out.contains(&Output::Send(
            v(2),
            Msg::SyncRequest {
                from_height: 1,
                target: b3.hash(),
            }
        )));

        let out = r.handle(
            T0 + 200,
            from(
                2,
                Msg::SyncResponse {
                    blocks: vec![b1],
                    // Block 2's justify certifies block 1.
                    qc: Some(b2.justify().clone()),
                },
            ),
        );

        assert!(persisted_blocks(&out).is_empty(), "block 1 was held");
        assert!(
            out.contains(&Output::Send(
                v(2),
                Msg::SyncRequest {
                    from_height: 2,
                    target: b3.hash(),
                }
            )),
            "{out:?}"
        );
    }

    #[test]
    fn a_proposal_with_a_missing_parent_is_voted_on_once_sync_delivers_the_parent() {
        // Audit L7: block 2 arrives before block 1; once block 1 is synced, we still vote.
        let net = Net::new();
        let (b1, b2) = two_blocks(&net);
        let mut r = net.replica(ME);

        let out = r.handle(T0 + 500, from(2, net.proposal(b2.clone(), None)));
        assert!(out
            .iter()
            .any(|o| matches!(o, Output::Send(p, Msg::SyncRequest { .. }) if *p == v(2))));
        assert_eq!(r.stats().votes, 0);

        let out = r.handle(
            T0 + 600,
            from(
                2,
                Msg::SyncResponse {
                    blocks: vec![b1.clone()],
                    qc: Some(net.qc(&b1, &[1, 2, 3])),
                },
            ),
        );
        assert_eq!(r.stats().votes, 1);
        assert!(persisted_blocks(&out).contains(&Arc::new(b2.clone())));
        assert!(r.tree.contains(&b2.hash()));
    }

    #[test]
    fn a_proposal_at_or_below_the_committed_view_is_neither_kept_nor_persisted() {
        // Audit H2: after committing block 1 (view 1), a conflicting view-1 proposal is junk.
        let net = Net::new();
        let (mut r, _, b1, _) = synced_two_blocks(&net);
        assert_eq!(r.app().committed, [1]);
        let sibling = net.child(&net.genesis(), net.genesis_qc(), 1, T0 + 1);
        assert_ne!(sibling.hash(), b1.hash());

        let out = r.handle(T0 + 700, from(1, net.proposal(sibling.clone(), None)));

        assert!(persisted_blocks(&out).is_empty());
        assert!(!r.tree.contains(&sibling.hash()));
        assert_eq!(r.stats().rejected_proposals, 1);
    }

    #[test]
    fn an_equivocating_leader_gets_at_most_two_blocks_per_view_into_the_tree() {
        // Audit H2: the view-1 leader sends five different blocks for view 1.
        let net = Net::new();
        let mut r = net.replica(ME);
        let mut persisted = 0;
        let mut hashes = Vec::new();
        for i in 0..5 {
            let b = net.child(&net.genesis(), net.genesis_qc(), 1, T0 + i);
            hashes.push(b.hash());
            let out = r.handle(T0 + i, from(1, net.proposal(b, None)));
            persisted += persisted_blocks(&out).len();
        }
        assert_eq!(persisted, super::super::verify::MAX_PROPOSALS_PER_VIEW);
        let kept = hashes.iter().filter(|h| r.tree.contains(h)).count();
        assert_eq!(kept, 2);
        assert_eq!(r.stats().votes, 1, "only the first is voted for");
    }

    #[test]
    fn sync_peers_rotate_and_skip_ourselves() {
        let net = Net::new();
        let mut r = net.replica(ME);
        let peers: Vec<u16> = (0..5).map(|_| r.next_sync_peer().0).collect();
        assert_eq!(peers, [1, 2, 3, 1, 2]);
    }
}
