//! The replica's in-memory tree of blocks and the recent part of its committed chain.
//!
//! # Invariants
//! - Every block in the tree has its parent in the tree, except the root: the oldest committed
//!   block held (genesis on a fresh chain).
//! - `committed[i]` is the hash of the committed block at height `base + i`; each entry is the
//!   parent of the next, and the last is the committed tip.
//! - After a commit at height `h`, blocks at heights `<= h` off the committed chain are pruned.
//! - At most `retain` committed blocks stay in memory (the tip and its `retain - 1` ancestors):
//!   older ones leave the tree, so memory follows the uncommitted blocks and a fixed window,
//!   not the chain's length. Heights below the window are served from the store
//!   ([`super::Output::ServeCommitted`]).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use super::block::{Block, BlockHash};

/// A committed block would not extend the committed chain: two conflicting blocks got
/// committed, which the protocol excludes while at most `f` validators are faulty.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("commit of {block:?} conflicts with the committed chain at height {height}")]
pub struct CommitConflict {
    /// The block that was to be committed.
    pub block: BlockHash,
    /// Height where the chains differ.
    pub height: u64,
}

#[derive(Debug)]
pub(crate) struct BlockTree {
    blocks: BTreeMap<BlockHash, Arc<Block>>,
    by_height: BTreeMap<u64, Vec<BlockHash>>,
    /// Hashes of the committed blocks held, heights `base..=tip`.
    committed: VecDeque<BlockHash>,
    /// Height of `committed[0]`.
    base: u64,
    /// Most committed blocks held (at least 1: the tip).
    retain: usize,
    /// Height of the epoch's root block (0 in epoch 0): ancestor walks stop there.
    floor: u64,
}

impl BlockTree {
    /// A tree whose root is `genesis`, holding at most `retain` committed blocks.
    pub(crate) fn new(genesis: Block, retain: usize) -> Self {
        let floor = genesis.height();
        Self::rooted(Arc::new(genesis), floor, retain)
    }

    /// A tree whose root is `root`, a committed block (genesis, or the oldest committed block a
    /// restarted replica reads back from its store), holding at most `retain` committed
    /// blocks, in the epoch whose root block is at height `floor` (at or below `root`).
    pub(crate) fn rooted(root: Arc<Block>, floor: u64, retain: usize) -> Self {
        let hash = root.hash();
        let height = root.height();
        let mut blocks = BTreeMap::new();
        blocks.insert(hash, root);
        let mut by_height = BTreeMap::new();
        by_height.insert(height, vec![hash]);
        Self {
            blocks,
            by_height,
            committed: VecDeque::from([hash]),
            base: height,
            retain: retain.max(1),
            floor,
        }
    }

    /// Commits `block`, whose parent is the committed tip, without a certificate check: for a
    /// restarted replica re-reading committed blocks from its store. Returns whether it
    /// extended the tip.
    pub(crate) fn extend_committed(&mut self, block: Arc<Block>) -> bool {
        let tip = self.committed_tip();
        if block.parent() != tip.hash() || block.height() != tip.height() + 1 {
            return false;
        }
        let hash = block.hash();
        self.by_height.entry(block.height()).or_default().push(hash);
        self.blocks.insert(hash, block);
        self.committed.push_back(hash);
        self.forget_old_committed();
        true
    }

    /// Lowest committed height held in memory.
    pub(crate) fn lowest_committed_held(&self) -> u64 {
        self.base
    }

    /// Blocks held in memory.
    pub(crate) fn len(&self) -> usize {
        self.blocks.len()
    }

    /// Drops committed blocks below the retained window.
    fn forget_old_committed(&mut self) {
        while self.committed.len() > self.retain {
            if let Some(old) = self.committed.pop_front() {
                self.blocks.remove(&old);
                self.by_height.remove(&self.base);
                self.base += 1;
            }
        }
    }

    pub(crate) fn get(&self, hash: &BlockHash) -> Option<&Arc<Block>> {
        self.blocks.get(hash)
    }

    pub(crate) fn contains(&self, hash: &BlockHash) -> bool {
        self.blocks.contains_key(hash)
    }

    /// Inserts a block whose parent is present. Returns whether it was new.
    pub(crate) fn insert(&mut self, block: Arc<Block>) -> bool {
        let hash = block.hash();
        if self.blocks.contains_key(&hash) || !self.blocks.contains_key(&block.parent()) {
            return false;
        }
        if block.height() <= self.committed_height() {
            // Below the committed tip and not committed: a dead fork.
            return false;
        }
        self.by_height.entry(block.height()).or_default().push(hash);
        self.blocks.insert(hash, block);
        true
    }

    pub(crate) fn committed_height(&self) -> u64 {
        self.base + (self.committed.len() as u64).saturating_sub(1)
    }

    fn committed_tip_hash(&self) -> BlockHash {
        self.committed[self.committed.len() - 1]
    }

    pub(crate) fn committed_tip(&self) -> &Arc<Block> {
        &self.blocks[&self.committed_tip_hash()]
    }

    /// The committed block at `height`, if it is still held in memory.
    pub(crate) fn committed_at(&self, height: u64) -> Option<&Arc<Block>> {
        let offset = usize::try_from(height.checked_sub(self.base)?).ok()?;
        self.blocks.get(self.committed.get(offset)?)
    }

    /// Commits `target` and its uncommitted ancestors; returns them in ascending height order.
    ///
    /// # Errors
    /// [`CommitConflict`] if `target` does not extend the committed tip.
    pub(crate) fn commit(&mut self, target: BlockHash) -> Result<Vec<Arc<Block>>, CommitConflict> {
        let tip = self.committed_height();
        let mut chain = Vec::new();
        let mut cursor = target;
        loop {
            let Some(block) = self.blocks.get(&cursor) else {
                return Err(CommitConflict {
                    block: target,
                    height: tip,
                });
            };
            if block.height() <= tip {
                if block.height() == tip && cursor == self.committed_tip_hash() {
                    break;
                }
                return Err(CommitConflict {
                    block: target,
                    height: block.height(),
                });
            }
            chain.push(Arc::clone(block));
            cursor = block.parent();
        }
        chain.reverse();
        for block in &chain {
            self.committed.push_back(block.hash());
        }
        self.prune(tip + 1);
        self.forget_old_committed();
        Ok(chain)
    }

    /// Drops blocks at the newly committed heights `from..=tip` that are off the committed
    /// chain (dead forks), and their descendants.
    fn prune(&mut self, from: u64) {
        let tip = self.committed_height();
        let mut dead_set: BTreeSet<BlockHash> = BTreeSet::new();
        for height in from..=tip {
            let Some(keep) = self.committed_at(height).map(|b| b.hash()) else {
                continue;
            };
            if let Some(hashes) = self.by_height.get_mut(&height) {
                for h in hashes.iter().filter(|h| **h != keep) {
                    dead_set.insert(*h);
                }
                hashes.retain(|h| *h == keep);
            }
        }
        if dead_set.is_empty() {
            return;
        }
        for hash in &dead_set {
            self.blocks.remove(hash);
        }
        // Descendants of dead blocks, level by level (only uncommitted heights remain above).
        let above: Vec<u64> = self.by_height.range(tip + 1..).map(|(h, _)| *h).collect();
        for height in above {
            if let Some(hashes) = self.by_height.get_mut(&height) {
                let blocks = &mut self.blocks;
                hashes.retain(|h| {
                    let orphan = blocks.get(h).is_none_or(|b| dead_set.contains(&b.parent()));
                    if orphan {
                        blocks.remove(h);
                        dead_set.insert(*h);
                    }
                    !orphan
                });
            }
        }
    }

    /// Blocks from `from_height` up to `target`, ascending, at most `limit` of them.
    /// Empty if `target` is unknown or below `from_height`, or `from_height` is a committed
    /// height no longer held in memory.
    pub(crate) fn chain_to(
        &self,
        target: BlockHash,
        from_height: u64,
        limit: usize,
    ) -> Vec<Arc<Block>> {
        let Some(top) = self.blocks.get(&target) else {
            return Vec::new();
        };
        if top.height() < from_height || from_height == 0 {
            return Vec::new();
        }
        // Uncommitted suffix, walking back from target to the committed chain.
        let mut suffix = Vec::new();
        let mut cursor = Some(Arc::clone(top));
        while let Some(b) = cursor {
            if b.height() < from_height
                || self
                    .committed_at(b.height())
                    .is_some_and(|c| c.hash() == b.hash())
            {
                break;
            }
            cursor = self.blocks.get(&b.parent()).cloned();
            suffix.push(b);
        }
        suffix.reverse();
        let committed_top = suffix
            .first()
            .map_or(top.height(), |b| b.height().saturating_sub(1));
        let mut out = Vec::new();
        let mut h = from_height;
        while h <= committed_top && out.len() < limit {
            match self.committed_at(h) {
                Some(b) => out.push(Arc::clone(b)),
                // Below the window held in memory: the store serves it, not this.
                None => return Vec::new(),
            }
            h += 1;
        }
        for b in suffix {
            if out.len() >= limit {
                break;
            }
            out.push(b);
        }
        out
    }

    /// Ancestors of `hash`, starting with `hash` itself, newest first.
    /// Height of the epoch's root block (see [`crate::protocol::Chain::next_epoch`]).
    pub(crate) fn floor(&self) -> u64 {
        self.floor
    }

    pub(crate) fn ancestors(&self, hash: BlockHash) -> impl Iterator<Item = &Arc<Block>> + '_ {
        let mut cursor = self.blocks.get(&hash);
        std::iter::from_fn(move || {
            let block = cursor?;
            cursor = if block.height() <= self.floor {
                None
            } else {
                self.blocks.get(&block.parent())
            };
            Some(block)
        })
    }

    /// Blocks stored at `height`.
    pub(crate) fn blocks_at(&self, height: u64) -> impl Iterator<Item = &Arc<Block>> + '_ {
        self.by_height
            .get(&height)
            .into_iter()
            .flatten()
            .filter_map(|h| self.blocks.get(h))
    }

    /// Highest block height present.
    pub(crate) fn max_height(&self) -> u64 {
        self.by_height.keys().next_back().copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::certificate::QuorumCert;
    use crate::protocol::validators::ValidatorIndex;

    fn child(parent: &Block, view: u64, tag: u8) -> Arc<Block> {
        let mut qc = QuorumCert::empty(parent.hash());
        qc.view = parent.view();
        qc.height = parent.height();
        Arc::new(Block::new(
            parent.height() + 1,
            view,
            ValidatorIndex(0),
            view * 500,
            qc,
            vec![tag],
        ))
    }

    #[test]
    fn commit_prunes_forks_and_rejects_conflicts() {
        let genesis = Block::genesis(0, Vec::new());
        let mut tree = BlockTree::new(genesis.clone(), 100);
        let a1 = child(&genesis, 1, 1);
        let b1 = child(&genesis, 2, 2); // fork at height 1
        let b2 = child(&b1, 3, 3); // extends the fork
        let a2 = child(&a1, 4, 4);
        for b in [&a1, &b1, &b2, &a2] {
            assert!(tree.insert(Arc::clone(b)));
        }
        assert!(!tree.insert(Arc::clone(&a1)), "duplicates are not new");
        let committed = tree.commit(a2.hash()).unwrap();
        assert_eq!(
            committed.iter().map(|b| b.height()).collect::<Vec<_>>(),
            vec![1, 2]
        );
        assert_eq!(tree.committed_height(), 2);
        assert!(
            !tree.contains(&b1.hash()) && !tree.contains(&b2.hash()),
            "fork pruned"
        );
        assert_eq!(tree.committed_at(1).map(|b| b.hash()), Some(a1.hash()));
        // A block off the committed chain can no longer be inserted or committed.
        assert!(!tree.insert(child(&genesis, 5, 5)));
        let a3 = child(&a2, 6, 6);
        assert!(tree.insert(Arc::clone(&a3)));
        assert!(tree.commit(a3.hash()).is_ok());
        assert!(tree.commit(b2.hash()).is_err());
        // Sync serves committed blocks and the uncommitted suffix, in order, bounded.
        let a4 = child(&a3, 7, 7);
        tree.insert(Arc::clone(&a4));
        let served: Vec<u64> = tree
            .chain_to(a4.hash(), 2, 10)
            .iter()
            .map(|b| b.height())
            .collect();
        assert_eq!(served, vec![2, 3, 4]);
        assert_eq!(tree.chain_to(a4.hash(), 2, 2).len(), 2);
        assert!(tree.chain_to(a4.hash(), 5, 10).is_empty());
    }

    #[test]
    fn only_the_retained_window_of_committed_blocks_stays_in_memory() {
        let genesis = Block::genesis(0, Vec::new());
        let mut tree = BlockTree::new(genesis.clone(), 3);
        let mut chain = vec![Arc::new(genesis)];
        for view in 1..=10 {
            let next = child(&chain[chain.len() - 1], view, 0);
            assert!(tree.insert(Arc::clone(&next)));
            chain.push(next);
        }
        tree.commit(chain[9].hash()).unwrap();
        assert_eq!(tree.committed_height(), 9);
        assert_eq!(tree.lowest_committed_held(), 7);
        assert_eq!(tree.len(), 4, "heights 7, 8, 9 committed and 10 pending");
        assert!(tree.committed_at(6).is_none() && tree.committed_at(7).is_some());
        assert!(
            !tree.contains(&chain[0].hash()),
            "genesis left with the window"
        );
        // Sync from memory serves only what it holds, never a gapped answer.
        assert!(tree.chain_to(chain[10].hash(), 5, 10).is_empty());
        assert_eq!(tree.chain_to(chain[10].hash(), 8, 10).len(), 3);
        // The leader window walks what is held; a restart re-roots at a stored block.
        assert_eq!(tree.ancestors(chain[10].hash()).count(), 4);
        let mut restarted = BlockTree::rooted(Arc::clone(&chain[5]), 0, 3);
        for block in &chain[6..=9] {
            assert!(restarted.extend_committed(Arc::clone(block)));
        }
        assert!(!restarted.extend_committed(Arc::clone(&chain[3])));
        assert_eq!(restarted.committed_height(), 9);
        assert_eq!(restarted.lowest_committed_held(), 7);
        assert!(restarted.insert(Arc::clone(&chain[10])));
    }
}
