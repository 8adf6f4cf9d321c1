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

use std::collections::BTreeMap;
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
        self.prune();
        Ok(chain)
    }

    /// Drops uncommitted blocks at committed heights (dead forks) and their descendants.
    fn prune(&mut self) {
        let tip = self.committed_height();
        let mut dead: Vec<BlockHash> = Vec::new();
        for (&height, hashes) in self.by_height.range(1..=tip) {
            let keep = self.committed[usize::try_from(height).unwrap_or(usize::MAX)];
            dead.extend(hashes.iter().filter(|h| **h != keep));
        }
        for height in 1..=tip {
            if let Some(hashes) = self.by_height.get_mut(&height) {
                let keep = self.committed[usize::try_from(height).unwrap_or(usize::MAX)];
                hashes.retain(|h| *h == keep);
            }
        }
        // Descendants of dead blocks, level by level.
        let mut dead_set: std::collections::BTreeSet<BlockHash> = dead.iter().copied().collect();
        for hash in &dead {
            self.blocks.remove(hash);
        }
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
