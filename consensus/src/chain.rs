//! How a genesis becomes a consensus chain: the validator set and the genesis block every node
//! derives from the same genesis file (the driver and the auditor both start here).

use ed25519_dalek::VerifyingKey;
use sha2::{Digest, Sha256};
use voltmesh_wire::Genesis;

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
    let keys: Vec<VerifyingKey> = genesis
        .validators
        .iter()
        .map(|v| v.public_key.verifying_key())
        .collect::<Result<_, _>>()
        .map_err(|e| NodeError::Genesis {
            path: String::new(),
            message: e.to_string(),
        })?;
    let set = ValidatorSet::new(keys).map_err(|e| NodeError::Replica(e.to_string()))?;
    Ok(Chain::new(set, genesis_block(genesis, genesis_text)))
}
