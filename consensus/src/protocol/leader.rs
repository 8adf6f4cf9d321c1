//! Leader selection with reputation: a crashed validator leaves the rotation.
//!
//! The leader of view `v` for a proposal extending block `P` is
//! `active[v mod |active|]`, where `active` is the ascending list of validators that proposed
//! one of the last `W` blocks of `P`'s chain (`P` included, genesis excluded) or signed the QC a
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

use super::block::BlockHash;
use super::block_tree::BlockTree;
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
    let mut active = BTreeSet::new();
    for block in tree.ancestors(parent).take(window) {
        if block.height() == 0 {
            break;
        }
        active.insert(block.proposer());
        active.extend(block.justify().signers());
    }
    let active: Vec<ValidatorIndex> = if active.len() >= validators.quorum() {
        active.into_iter().collect()
    } else {
        validators.indices().collect()
    };
    let len = active.len() as u64;
    let pick = usize::try_from(view % len).ok()?;
    active.get(pick).copied()
}
