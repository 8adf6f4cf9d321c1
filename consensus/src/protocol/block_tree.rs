//! The replica's in-memory tree of blocks and its committed chain.
//!
//! # Invariants
//! - Every block in the tree has its parent in the tree (genesis excepted).
//! - `committed[h]` is the hash of the committed block at height `h`; `committed[0]` is genesis,
//!   and each entry is the parent of the next.
//! - After a commit at height `h`, blocks at heights `<= h` off the committed chain are pruned.
//!
//! # Known limitations
//! Committed blocks stay in memory so peers can be served block sync from here; a node with a
//! very long chain should serve old heights from its store instead.

use std::collections::{BTreeMap, BTreeSet};
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
    committed: Vec<BlockHash>,
}

impl BlockTree {
    pub(crate) fn new(genesis: Block) -> Self {
        let hash = genesis.hash();
        let mut blocks = BTreeMap::new();
        blocks.insert(hash, Arc::new(genesis));
        let mut by_height = BTreeMap::new();
        by_height.insert(0, vec![hash]);
        Self {
            blocks,
            by_height,
            committed: vec![hash],
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
        (self.committed.len() as u64).saturating_sub(1)
    }

    pub(crate) fn committed_tip(&self) -> &Arc<Block> {
        let hash = self.committed[self.committed.len() - 1];
        &self.blocks[&hash]
    }

    pub(crate) fn committed_at(&self, height: u64) -> Option<&Arc<Block>> {
        let hash = self.committed.get(usize::try_from(height).ok()?)?;
        self.blocks.get(hash)
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
                if block.height() == tip && cursor == self.committed[self.committed.len() - 1] {
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
            self.committed.push(block.hash());
        }
        self.prune(tip + 1);
        Ok(chain)
    }

    /// Drops blocks at the newly committed heights `from..=tip` that are off the committed
    /// chain (dead forks), and their descendants.
    fn prune(&mut self, from: u64) {
        let tip = self.committed_height();
        let mut dead_set: BTreeSet<BlockHash> = BTreeSet::new();
        for height in from..=tip {
            let Some(keep) = usize::try_from(height)
                .ok()
                .and_then(|h| self.committed.get(h))
                .copied()
            else {
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
    /// Empty if `target` is unknown or below `from_height`.
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
                None => break,
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
    pub(crate) fn ancestors(&self, hash: BlockHash) -> impl Iterator<Item = &Arc<Block>> + '_ {
        let mut cursor = self.blocks.get(&hash);
        std::iter::from_fn(move || {
            let block = cursor?;
            cursor = if block.height() == 0 {
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
        let mut tree = BlockTree::new(genesis.clone());
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
}
