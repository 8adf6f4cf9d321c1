//! How a genesis becomes a consensus chain: the validator set and the genesis block every node
//! derives from the same genesis file (the driver and the auditor both start here).

use ed25519_dalek::VerifyingKey;
use sha2::{Digest, Sha256};
use voltmesh_wire::governance::Epoch;
use voltmesh_wire::{Genesis, GenesisValidator};

use crate::node::NodeError;
use crate::protocol::{Block, Chain, ValidatorSet};

/// The genesis block every node derives from the same genesis file.
pub(crate) fn genesis_block(genesis: &Genesis, genesis_text: &[u8]) -> Block {
    Block::genesis(
        genesis.genesis_time_ms(),
        Sha256::digest(genesis_text).to_vec(),
    )
}

/// The consensus chain (validator set and genesis block) of a genesis and the exact text of
/// its file.
///
/// # Errors
/// [`NodeError::Genesis`] or [`NodeError::Replica`] if the validator keys are unusable.
pub fn chain_of(genesis: &Genesis, genesis_text: &[u8]) -> Result<Chain, NodeError> {
    Ok(Chain::new(
        validator_set(&genesis.validators)?,
        genesis_block(genesis, genesis_text),
    ))
}

/// The consensus validator set of a list of validators (keys sorted by bytes).
///
/// # Errors
/// [`NodeError::Genesis`] or [`NodeError::Replica`] if the keys are unusable.
pub(crate) fn validator_set(validators: &[GenesisValidator]) -> Result<ValidatorSet, NodeError> {
    let keys: Vec<VerifyingKey> = validators
        .iter()
        .map(|v| v.public_key.verifying_key())
        .collect::<Result<_, _>>()
        .map_err(|e| NodeError::Genesis {
            path: String::new(),
            message: e.to_string(),
        })?;
    ValidatorSet::new(keys).map_err(|e| NodeError::Replica(e.to_string()))
}

/// The chain of the last of `epochs` (the ledger's, oldest first, the genesis one first),
/// derived from the genesis chain one root after the other ([`Chain::next_epoch`]); `root`
/// gives the committed block each later epoch is rooted at.
///
/// # Errors
/// [`NodeError::Replica`] if a root is missing or not at its epoch's root height; `root`'s own
/// errors.
pub(crate) fn epoch_chain(
    genesis_chain: &Chain,
    epochs: &[Epoch],
    mut root: impl FnMut(&Epoch) -> Result<Option<Block>, NodeError>,
) -> Result<Chain, NodeError> {
    let mut chain = genesis_chain.clone();
    for epoch in epochs.iter().skip(1) {
        let block = root(epoch)?.ok_or_else(|| {
            NodeError::Replica(format!(
                "the block epoch {} is rooted at (height {}) is not in the store",
                epoch.number, epoch.root_height
            ))
        })?;
        if block.height() != epoch.root_height {
            return Err(NodeError::Replica(format!(
                "epoch {} is rooted at height {}, the stored root is at {}",
                epoch.number,
                epoch.root_height,
                block.height()
            )));
        }
        chain = chain.next_epoch(block, validator_set(&epoch.validators)?);
    }
    Ok(chain)
}
