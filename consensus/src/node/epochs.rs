//! Epochs on the wire: which peers the network adapter knows, how a consensus message names its
//! epoch, and how each epoch's validator indices map to the adapter's.
//!
//! # Frames
//! A consensus message travels as `epoch (u64, big-endian) ‖ message bytes`. The driver hands a
//! frame of its current epoch to the current replica and one of the epoch before to the retired
//! replica ([`crate::protocol::Replica::retire_into_parts`]); it drops every other frame (a
//! message of another epoch would not verify anyway: every signature is bound to its epoch's
//! chain id).
//!
//! # Indices
//! The adapter numbers its peers by their position in the list it was built with
//! ([`crate::net::NetConfig::validators`]): the current epoch's validators in their consensus
//! order, then those of the epoch before that left. A replica numbers its validators by its own
//! set; [`Peers`] translates between the two by public key, so each replica sends to and hears
//! from exactly its epoch's validators.

use std::collections::HashMap;

use voltmesh_wire::GenesisValidator;

use super::NodeError;
use crate::net;
use crate::protocol::{Chain, ValidatorIndex};

/// Bytes of the epoch number in front of each consensus message.
const EPOCH_BYTES: usize = 8;

/// `epoch ‖ message`.
#[must_use]
pub(crate) fn frame(epoch: u64, message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(EPOCH_BYTES + message.len());
    out.extend_from_slice(&epoch.to_be_bytes());
    out.extend_from_slice(message);
    out
}

/// The epoch and the message of a frame; `None` if it is too short to name an epoch.
#[must_use]
pub(crate) fn unframe(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let (epoch, message) = bytes.split_first_chunk::<EPOCH_BYTES>()?;
    Some((u64::from_be_bytes(*epoch), message))
}

/// The adapter's peers, by public key.
///
/// # Invariant
/// `keys[i]` is the key of the adapter's validator `i`, and `index` maps each key back to `i`.
#[derive(Debug, Clone, Default)]
pub(crate) struct Peers {
    keys: Vec<[u8; 32]>,
    index: HashMap<[u8; 32], u16>,
}

impl Peers {
    /// The adapter's index of `chain`'s validator `v`.
    pub(crate) fn net_of(&self, chain: &Chain, v: ValidatorIndex) -> Option<net::ValidatorIndex> {
        let key = chain.validators().key(v)?;
        self.index
            .get(key.as_bytes())
            .map(|&i| net::ValidatorIndex(i))
    }

    /// `chain`'s index of the adapter's validator `from`, if it is one of `chain`'s.
    pub(crate) fn of_net(
        &self,
        chain: &Chain,
        from: net::ValidatorIndex,
    ) -> Option<ValidatorIndex> {
        let key = self.keys.get(usize::from(from.0))?;
        let key = ed25519_dalek::VerifyingKey::from_bytes(key).ok()?;
        chain.validators().index_of(&key)
    }
}

/// The adapter's validator list for a node in `chain`'s epoch (whose validators, with their
/// addresses, are `current`), followed by `previous`'s validators not in it (the epoch before,
/// whose retired replica still answers laggards), and the [`Peers`] that translate.
///
/// # Errors
/// [`NodeError::Genesis`] if a key or an address is unusable, or the keys are not `chain`'s.
pub(crate) fn net_validators(
    chain: &Chain,
    current: &[GenesisValidator],
    previous: &[GenesisValidator],
) -> Result<(Vec<net::Validator>, Peers), NodeError> {
    let bad = |message: String| NodeError::Genesis {
        path: "validators".into(),
        message,
    };
    let mut ordered: Vec<(u32, &GenesisValidator)> = Vec::with_capacity(current.len());
    for v in current {
        let key = v
            .public_key
            .verifying_key()
            .map_err(|e| bad(format!("validator {}: {e}", v.public_key)))?;
        let index = chain
            .validators()
            .index_of(&key)
            .ok_or_else(|| bad(format!("{} is not a validator of the epoch", v.public_key)))?;
        ordered.push((u32::from(index.0), v));
    }
    ordered.sort_by_key(|(index, _)| *index);
    if ordered.len() != chain.validators().len() {
        return Err(bad("the validators do not match the epoch's set".into()));
    }
    let extra = previous
        .iter()
        .filter(|p| current.iter().all(|c| c.public_key != p.public_key));
    let mut validators = Vec::new();
    let mut peers = Peers::default();
    for v in ordered.into_iter().map(|(_, v)| v).chain(extra) {
        let public_key = libp2p::identity::ed25519::PublicKey::try_from_bytes(&v.public_key.0)
            .map_err(|e| bad(format!("validator {}: {e}", v.public_key)))?;
        let addr = v.address.parse().map_err(|e: libp2p::multiaddr::Error| {
            bad(format!("validator {} address: {e}", v.public_key))
        })?;
        let position =
            u16::try_from(validators.len()).map_err(|_| bad("too many validators".into()))?;
        peers.keys.push(v.public_key.0);
        peers.index.insert(v.public_key.0, position);
        validators.push(net::Validator { public_key, addr });
    }
    Ok((validators, peers))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_names_its_epoch_and_a_short_one_names_none() {
        let f = frame(7, b"msg");
        assert_eq!(unframe(&f), Some((7, &b"msg"[..])));
        assert_eq!(unframe(&f[..7]), None);
        assert_eq!(unframe(&frame(0, b"")), Some((0, &b""[..])));
    }
}
