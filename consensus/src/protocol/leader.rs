//! Leader selection with reputation: a crashed validator leaves the rotation.
//!
//! The leader of view `v` for a proposal extending block `P` is
//! `active[v mod |active|]`, where `active` is the ascending list of validators that proposed
//! one of the last `W` blocks of `P`'s chain (`P` included, the epoch's root block excluded) or signed the QC a
//! block in that window carries. If fewer than a quorum are active (a young chain), every
//! validator is.
//!
//! # Determinism
//! The result depends only on `(v, P's ancestry)`, which is the same bytes on every replica that
//! has `P`: every honest replica agrees on who may propose on top of `P`. A replica that lacks
//! `P` cannot judge a proposal extending it and fetches `P` by block sync first.
//!
//! # Why this keeps commits steady
//! A crashed validator neither proposes nor votes, so once `W` blocks have been certified
//! without it, it is never chosen again and no view is wasted waiting for it. A recovered
//! validator's votes land in QCs again and bring it back into the rotation within `W` blocks.

use std::collections::BTreeSet;

use super::block_tree::BlockTree;
use super::hash::BlockHash;
use super::validators::{ValidatorIndex, ValidatorSet};

/// The leader of `view` for a proposal whose parent is `parent`; `None` if `parent` is unknown.
pub(crate) fn leader(
    view: u64,
    parent: BlockHash,
    tree: &BlockTree,
    validators: &ValidatorSet,
    window: usize,
) -> Option<ValidatorIndex> {
    if !tree.contains(&parent) {
        return None;
    }
    if window == 0 {
        // Reputation off: plain round-robin over every validator.
        let all: Vec<ValidatorIndex> = validators.indices().collect();
        let pick = usize::try_from(view % all.len() as u64).ok()?;
        return all.get(pick).copied();
    }
    let mut active = BTreeSet::new();
    let mut failed = BTreeSet::new();
    for block in tree.ancestors(parent).take(window) {
        if block.height() <= tree.floor() {
            break;
        }
        active.insert(block.proposer());
        active.extend(block.justify().signers());
        failed.extend(block.failed_leaders().iter().copied());
    }
    let base: Vec<ValidatorIndex> = if active.len() >= validators.quorum() {
        active.into_iter().collect()
    } else {
        validators.indices().collect()
    };
    let candidates: Vec<ValidatorIndex> = base
        .iter()
        .copied()
        .filter(|v| !failed.contains(v))
        .collect();
    let active = if candidates.is_empty() {
        base
    } else {
        candidates
    };
    let len = active.len() as u64;
    let pick = usize::try_from(view % len).ok()?;
    active.get(pick).copied()
}

/// The leaders of the views strictly between `justify_view` and `view` (at most the last
/// `validators.len()` of them), for a block extending `parent`: what
/// [`Block::failed_leaders`](super::block::Block::failed_leaders) must list.
pub(crate) fn failed_leaders(
    view: u64,
    justify_view: u64,
    parent: BlockHash,
    tree: &BlockTree,
    validators: &ValidatorSet,
    window: usize,
) -> Vec<ValidatorIndex> {
    let first = justify_view
        .saturating_add(1)
        .max(view.saturating_sub(validators.len() as u64));
    let mut failed: Vec<ValidatorIndex> = (first..view)
        .filter_map(|w| leader(w, parent, tree, validators, window))
        .collect();
    failed.sort_unstable();
    failed.dedup();
    failed
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use ed25519_dalek::{Signature, SigningKey};

    use super::*;
    use crate::protocol::block::Block;
    use crate::protocol::certificate::QuorumCert;

    fn validators(n: u8) -> ValidatorSet {
        ValidatorSet::new((1..=n).map(|i| SigningKey::from_bytes(&[i; 32]).verifying_key()))
            .unwrap()
    }

    /// A chain where block `h` is proposed by `proposers[h-1]`, its QC signed by `signers`.
    fn chain(proposers: &[u16], signers: &[u16], failed_at_tip: &[u16]) -> (BlockTree, BlockHash) {
        let genesis = Block::genesis(0, Vec::new());
        let mut parent = genesis.hash();
        let mut tree = BlockTree::new(genesis, 1000);
        for (i, p) in proposers.iter().enumerate() {
            let h = i as u64 + 1;
            let qc = QuorumCert {
                block: parent,
                view: h - 1,
                height: h - 1,
                signatures: signers
                    .iter()
                    .map(|s| (ValidatorIndex(*s), Signature::from_bytes(&[0; 64])))
                    .collect(),
            };
            let mut block = Block::new(h, h, ValidatorIndex(*p), h * 500, qc, Vec::new());
            if i + 1 == proposers.len() {
                block = block.with_failed_leaders(
                    failed_at_tip.iter().map(|v| ValidatorIndex(*v)).collect(),
                );
            }
            parent = block.hash();
            tree.insert(Arc::new(block));
        }
        (tree, parent)
    }

    fn leaders(
        tree: &BlockTree,
        tip: BlockHash,
        set: &ValidatorSet,
        window: usize,
    ) -> BTreeSet<u16> {
        (100..140)
            .filter_map(|v| leader(v, tip, tree, set, window))
            .map(|v| v.0)
            .collect()
    }

    #[test]
    fn crashed_validator_leaves_and_failed_leaders_are_skipped() {
        let set = validators(4);
        // Young chain: fewer than a quorum active, so everyone leads.
        let (tree, tip) = chain(&[1], &[], &[]);
        assert_eq!(leaders(&tree, tip, &set, 5), BTreeSet::from([0, 1, 2, 3]));
        // Validator 0 neither proposed nor signed in the window: it never leads.
        let (tree, tip) = chain(&[1, 2, 3, 1, 2, 3], &[1, 2, 3], &[]);
        assert_eq!(leaders(&tree, tip, &set, 5), BTreeSet::from([1, 2, 3]));
        // ...unless reputation is off.
        assert_eq!(leaders(&tree, tip, &set, 0), BTreeSet::from([0, 1, 2, 3]));
        // Everyone active, but the tip records validator 2 as a failed leader.
        let (tree, tip) = chain(&[0, 1, 2, 3, 0, 1], &[0, 1, 2, 3], &[2]);
        assert_eq!(leaders(&tree, tip, &set, 5), BTreeSet::from([0, 1, 3]));
        // Out of the window again after W more blocks (window 1 = the tip only, here without).
        let (tree, tip) = chain(&[0, 1, 2, 3, 0, 1], &[0, 1, 2, 3], &[]);
        assert_eq!(leaders(&tree, tip, &set, 5), BTreeSet::from([0, 1, 2, 3]));
        // Deterministic: the same inputs give the same leader.
        assert_eq!(
            leader(7, tip, &tree, &set, 5),
            leader(7, tip, &tree, &set, 5)
        );
        // Unknown parent: no answer.
        assert_eq!(leader(7, BlockHash([9; 32]), &tree, &set, 5), None);
    }

    #[test]
    fn failed_leaders_are_the_leaders_of_skipped_views() {
        let set = validators(4);
        let (tree, tip) = chain(&[0, 1, 2, 3, 0, 1], &[0, 1, 2, 3], &[]);
        assert!(failed_leaders(9, 8, tip, &tree, &set, 5).is_empty());
        let skipped = failed_leaders(10, 7, tip, &tree, &set, 5);
        let expected: BTreeSet<ValidatorIndex> = [8, 9]
            .iter()
            .filter_map(|w| leader(*w, tip, &tree, &set, 5))
            .collect();
        assert_eq!(skipped, expected.into_iter().collect::<Vec<_>>());
        // A long gap lists at most n views' leaders.
        assert!(failed_leaders(1_000, 1, tip, &tree, &set, 5).len() <= 4);
    }
}
