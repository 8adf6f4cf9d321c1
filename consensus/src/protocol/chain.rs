//! The chain's identity: validators, genesis block and the chain id every signature binds to.
//!
//! # Invariants
//! - `id = SHA-256("voltmesh/chain/v1" ‖ genesis hash ‖ validator digest)`; every signed
//!   message includes it, so a signature can never be replayed on another chain or validator set.
//! - The genesis block is certified by the *genesis QC*, a QC with no signatures for view 0
//!   that is valid on this chain only.

use super::block::Block;
use super::certificate::QuorumCert;
use super::codec::Encoder;
use super::hash::sha256;
use super::validators::ValidatorSet;

/// Everything fixed for the life of a chain.
#[derive(Debug, Clone)]
pub struct Chain {
    id: [u8; 32],
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
            validators,
            genesis,
        }
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

    /// The genesis block.
    #[must_use]
    pub fn genesis(&self) -> &Block {
        &self.genesis
    }

    /// The QC that certifies genesis.
    #[must_use]
    pub fn genesis_qc(&self) -> QuorumCert {
        QuorumCert::empty(self.genesis.hash())
    }
}
