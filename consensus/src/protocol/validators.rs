//! The validator set: ed25519 public keys, indexed, and the quorum size.
//!
//! # Invariants
//! - Keys are sorted by their 32 bytes and distinct; a validator's index is its position in
//!   that order, so every replica built from the same keys numbers validators the same way.
//! - `quorum() = n - f` with `f = (n - 1) / 3`: any two quorums intersect in at least `f + 1`
//!   validators, hence in at least one honest validator while at most `f` are faulty.
//! - Every validator has equal voting power.

use std::collections::BTreeMap;
use std::fmt;

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};
use thiserror::Error;

/// A validator's position in the [`ValidatorSet`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ValidatorIndex(pub u16);

impl fmt::Display for ValidatorIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}", self.0)
    }
}

/// Largest validator set we accept (message sizes and sequence counts are bounded by it).
pub const MAX_VALIDATORS: usize = 256;

/// Why a validator set could not be built.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ValidatorSetError {
    /// No validators.
    #[error("the validator set is empty")]
    Empty,
    /// More than [`MAX_VALIDATORS`].
    #[error("{0} validators exceed the limit of {MAX_VALIDATORS}")]
    TooMany(usize),
    /// The same key twice.
    #[error("validator key {0} appears twice")]
    Duplicate(String),
    /// Bytes that are not an ed25519 public key.
    #[error("invalid ed25519 public key {0}")]
    InvalidKey(String),
}

/// The fixed set of validators of a chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatorSet {
    keys: Vec<VerifyingKey>,
    by_key: BTreeMap<[u8; 32], ValidatorIndex>,
}

impl ValidatorSet {
    /// Builds the set from public keys in any order.
    ///
    /// # Errors
    /// [`ValidatorSetError`] if the set is empty, too large or has a duplicate key.
    pub fn new(keys: impl IntoIterator<Item = VerifyingKey>) -> Result<Self, ValidatorSetError> {
        let mut keys: Vec<VerifyingKey> = keys.into_iter().collect();
        if keys.is_empty() {
            return Err(ValidatorSetError::Empty);
        }
        if keys.len() > MAX_VALIDATORS {
            return Err(ValidatorSetError::TooMany(keys.len()));
        }
        keys.sort_by_key(VerifyingKey::to_bytes);
        let mut by_key = BTreeMap::new();
        for (i, key) in keys.iter().enumerate() {
            let index =
                ValidatorIndex(u16::try_from(i).map_err(|_| ValidatorSetError::TooMany(i))?);
            if by_key.insert(key.to_bytes(), index).is_some() {
                return Err(ValidatorSetError::Duplicate(hex::encode(key.to_bytes())));
            }
        }
        Ok(Self { keys, by_key })
    }

    /// Builds the set from raw 32-byte public keys.
    ///
    /// # Errors
    /// [`ValidatorSetError`] if a key is not a valid ed25519 point, or as [`ValidatorSet::new`].
    pub fn from_bytes(keys: &[[u8; 32]]) -> Result<Self, ValidatorSetError> {
        let parsed = keys
            .iter()
            .map(|k| {
                VerifyingKey::from_bytes(k)
                    .map_err(|_| ValidatorSetError::InvalidKey(hex::encode(k)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(parsed)
    }

    /// Number of validators `n`.
    #[must_use]
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Always false: a set is never empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Faulty validators tolerated, `f = (n - 1) / 3`.
    #[must_use]
    pub fn max_faulty(&self) -> usize {
        (self.len() - 1) / 3
    }

    /// Votes needed for a certificate, `n - f`.
    #[must_use]
    pub fn quorum(&self) -> usize {
        self.len() - self.max_faulty()
    }

    /// The index of a public key, if it is a validator.
    #[must_use]
    pub fn index_of(&self, key: &VerifyingKey) -> Option<ValidatorIndex> {
        self.by_key.get(&key.to_bytes()).copied()
    }

    /// The public key at an index.
    #[must_use]
    pub fn key(&self, index: ValidatorIndex) -> Option<&VerifyingKey> {
        self.keys.get(usize::from(index.0))
    }

    /// All indices in order.
    pub fn indices(&self) -> impl Iterator<Item = ValidatorIndex> + '_ {
        (0..self.keys.len()).filter_map(|i| u16::try_from(i).ok().map(ValidatorIndex))
    }

    /// Whether `signature` by validator `index` over `msg` verifies.
    #[must_use]
    pub fn verify(&self, index: ValidatorIndex, msg: &[u8], signature: &Signature) -> bool {
        self.key(index)
            .is_some_and(|key| key.verify(msg, signature).is_ok())
    }

    /// A digest of the keys in order, bound into the chain id.
    #[must_use]
    pub fn digest(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(b"voltmesh/validators/v1");
        for key in &self.keys {
            h.update(key.as_bytes());
        }
        h.finalize().into()
    }
}

/// Signs `msg` with `key`; ed25519 signing is deterministic.
pub(crate) fn sign(key: &SigningKey, msg: &[u8]) -> Signature {
    key.sign(msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    #[test]
    fn quorum_sizes_and_indexing() {
        for (n, q) in [(1, 1), (4, 3), (5, 4), (6, 5), (7, 5), (10, 7)] {
            let set = ValidatorSet::new((0..n).map(|i| key(i as u8 + 1).verifying_key())).unwrap();
            assert_eq!(set.quorum(), q, "n = {n}");
            assert!(2 * set.quorum() > set.len() + set.max_faulty());
        }
        let a = ValidatorSet::new([key(1), key(2)].map(|k| k.verifying_key())).unwrap();
        let b = ValidatorSet::new([key(2), key(1)].map(|k| k.verifying_key())).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.index_of(&key(3).verifying_key()), None);
        assert!(matches!(
            ValidatorSet::new([key(1), key(1)].map(|k| k.verifying_key())),
            Err(ValidatorSetError::Duplicate(_))
        ));
        assert_eq!(ValidatorSet::new([]), Err(ValidatorSetError::Empty));
    }
}
