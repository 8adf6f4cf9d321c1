//! The chain's identity: validators, root block and the chain id every signature binds to.
//!
//! # Epochs
//! A chain runs in epochs, each with a fixed validator set. Epoch 0 starts at the genesis block.
//! Epoch `e + 1` starts at the *reconfiguration block* `B` of epoch `e`, the committed block
//! that changed the validator set (the application decides which block that is; see
//! `consensus/README.md`, "Validator set changes"): [`Chain::next_epoch`] gives the new epoch's
//! `Chain`, whose root is `B`. A replica runs one epoch; the driver starts a new replica on the
//! next epoch's `Chain` once its old replica has committed `B`.
//!
//! # Invariants
//! - Epoch 0: `id = SHA-256("voltmesh/chain/v1" ‖ genesis hash ‖ validator digest)`.
//! - Epoch `e + 1`: `id = SHA-256("voltmesh/chain/epoch/v1" ‖ epoch e's id ‖ e + 1 ‖ B's hash ‖
//!   the new validator digest)`. Every signed message includes the id, so a signature can never
//!   be replayed on another chain, another epoch or another validator set, and two honest
//!   replicas agree on an epoch's id exactly when they agree on every reconfiguration block
//!   before it.
//! - The root block (genesis, or `B`) is certified by the *root QC*: a QC with no signatures,
//!   for the root's view and height, valid in this epoch only. The epoch's first view is the
//!   root's view + 1, so every view of an epoch is above its root's.

use super::block::Block;
use super::certificate::QuorumCert;
use super::codec::Encoder;
use super::hash::sha256;
use super::validators::ValidatorSet;

/// Everything fixed for the life of one epoch of a chain.
#[derive(Debug, Clone)]
pub struct Chain {
    id: [u8; 32],
    epoch: u64,
    validators: ValidatorSet,
    genesis: Block,
}

impl Chain {
    /// Builds the chain from its validators and genesis block (see [`Block::genesis`]).
    #[must_use]
    pub fn new(validators: ValidatorSet, genesis: Block) -> Self {
        let mut enc = Encoder::with_domain(b"voltmesh/chain/v1");
        enc.raw(&genesis.hash().0).raw(&validators.digest());
        let id = sha256(&enc.finish());
        Self {
            id,
            epoch: 0,
            validators,
            genesis,
        }
    }

    /// The next epoch: rooted at `root`, this epoch's committed reconfiguration block, with
    /// `validators` from then on. The caller must pass the block this epoch committed (the
    /// replica does not check); every honest replica derives the same `Chain` from the same
    /// committed block.
    #[must_use]
    pub fn next_epoch(&self, root: Block, validators: ValidatorSet) -> Self {
        let epoch = self.epoch + 1;
        let mut enc = Encoder::with_domain(b"voltmesh/chain/epoch/v1");
        enc.raw(&self.id)
            .u64(epoch)
            .raw(&root.hash().0)
            .raw(&validators.digest());
        let id = sha256(&enc.finish());
        Self {
            id,
            epoch,
            validators,
            genesis: root,
        }
    }

    /// The epoch: 0 from genesis, one more after each reconfiguration.
    #[must_use]
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The chain id.
    #[must_use]
    pub fn id(&self) -> &[u8; 32] {
        &self.id
    }

    /// The validators.
    #[must_use]
    pub fn validators(&self) -> &ValidatorSet {
        &self.validators
    }

    /// The epoch's root block: the genesis block in epoch 0, the reconfiguration block that
    /// ended the previous epoch after.
    #[must_use]
    pub fn genesis(&self) -> &Block {
        &self.genesis
    }

    /// The root QC, which certifies [`Chain::genesis`] in this epoch without signatures.
    #[must_use]
    pub fn genesis_qc(&self) -> QuorumCert {
        QuorumCert::root(&self.genesis)
    }
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::SigningKey;

    use super::*;
    use crate::protocol::validators::ValidatorIndex;

    fn set(seeds: &[u8]) -> ValidatorSet {
        ValidatorSet::new(
            seeds
                .iter()
                .map(|s| SigningKey::from_bytes(&[*s; 32]).verifying_key()),
        )
        .expect("set")
    }

    fn block_at(chain: &Chain, height: u64, view: u64) -> Block {
        Block::new(
            height,
            view,
            ValidatorIndex(0),
            1_000 + view,
            QuorumCert::root(chain.genesis()),
            vec![1],
        )
    }

    #[test]
    fn the_next_epoch_is_rooted_at_the_reconfiguration_and_binds_it_and_the_new_set() {
        let first = Chain::new(set(&[1, 2, 3, 4]), Block::genesis(0, b"g".to_vec()));
        let b = block_at(&first, 7, 9);
        let next = first.next_epoch(b.clone(), set(&[2, 3, 4, 5]));
        assert_eq!(next.epoch(), 1);
        assert_eq!(next.genesis(), &b);
        // The root QC certifies the root at its own view and height, in that epoch only.
        let root_qc = next.genesis_qc();
        assert_eq!(
            (root_qc.view, root_qc.height, root_qc.block),
            (9, 7, b.hash())
        );
        assert!(root_qc.is_genesis(&next));
        assert!(!root_qc.is_genesis(&first));
        assert!(first.genesis_qc().is_genesis(&first));
        // Same inputs, same id; another root, set or previous epoch, another id.
        assert_eq!(
            first.next_epoch(b.clone(), set(&[5, 4, 3, 2])).id(),
            next.id()
        );
        assert_ne!(first.next_epoch(b.clone(), set(&[2, 3, 4])).id(), next.id());
        assert_ne!(
            first
                .next_epoch(block_at(&first, 7, 10), set(&[2, 3, 4, 5]))
                .id(),
            next.id()
        );
        let other = Chain::new(set(&[1, 2, 3, 5]), Block::genesis(0, b"g".to_vec()));
        assert_ne!(other.next_epoch(b, set(&[2, 3, 4, 5])).id(), next.id());
        assert_ne!(next.id(), first.id());
    }
}
