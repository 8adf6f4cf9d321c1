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

use std::sync::Arc;

use super::{App, Output, Persist, Replica};
use crate::protocol::block::{Block, BlockHash};
use crate::protocol::certificate::QuorumCert;
use crate::protocol::codec::{MAX_MESSAGE_BYTES, MAX_PAYLOAD_BYTES};
use crate::protocol::error::VerifyError;
use crate::protocol::message::Msg;
use crate::protocol::timeout::TimeoutCert;
use crate::protocol::validators::ValidatorIndex;

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

    pub(super) fn request_sync(&mut self, now: u64, peer: ValidatorIndex, target: BlockHash) {
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

    pub(super) fn on_sync_request(
        &mut self,
        from: ValidatorIndex,
        from_height: u64,
        target: BlockHash,
    ) {
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

    pub(super) fn on_sync_response(
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

    pub(super) fn next_sync_peer(&mut self) -> ValidatorIndex {
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
