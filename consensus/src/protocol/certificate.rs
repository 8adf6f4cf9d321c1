//! Votes and quorum certificates (QCs).
//!
//! A vote signs `("voltmesh/vote/v1", chain id, view, height, block hash)`. A QC is a quorum of
//! such signatures from distinct validators over the same `(view, height, block)`.
//!
//! # Invariants
//! - Signers in a QC are strictly ascending by index (canonical; no duplicates).
//! - A QC verifies iff it has at least `quorum()` signers and every signature verifies, or it is
//!   exactly the chain's genesis QC (no signatures, view 0, the genesis block).

use ed25519_dalek::{Signature, SigningKey};

use super::block::Block;
use super::chain::Chain;
use super::codec::{DecodeError, Decoder, Encoder, MAX_COUNT};
use super::error::VerifyError;
use super::hash::BlockHash;
use super::validators::{sign, ValidatorIndex};

/// A quorum certificate: proof that a quorum voted for `block` in `view`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumCert {
    /// The certified block.
    pub block: BlockHash,
    /// The view in which it was proposed and voted.
    pub view: u64,
    /// Its height.
    pub height: u64,
    /// `(signer, signature)`, strictly ascending by signer.
    pub signatures: Vec<(ValidatorIndex, Signature)>,
}

pub(crate) fn vote_message(chain: &Chain, view: u64, height: u64, block: &BlockHash) -> Vec<u8> {
    let mut enc = Encoder::with_domain(b"voltmesh/vote/v1");
    enc.raw(chain.id()).u64(view).u64(height).raw(&block.0);
    enc.finish()
}

impl QuorumCert {
    /// A QC without signatures at view 0 and height 0 (the genesis QC when `block` is genesis).
    #[must_use]
    pub fn empty(block: BlockHash) -> Self {
        Self {
            block,
            view: 0,
            height: 0,
            signatures: Vec::new(),
        }
    }

    /// The root QC of an epoch whose root is `root` (the genesis QC in epoch 0): no
    /// signatures, `root`'s view and height.
    #[must_use]
    pub fn root(root: &Block) -> Self {
        Self {
            block: root.hash(),
            view: root.view(),
            height: root.height(),
            signatures: Vec::new(),
        }
    }

    /// Whether this is the chain's root QC ([`Chain::genesis_qc`]), valid in this epoch only.
    #[must_use]
    pub fn is_genesis(&self, chain: &Chain) -> bool {
        let root = chain.genesis();
        self.view == root.view()
            && self.height == root.height()
            && self.signatures.is_empty()
            && self.block == root.hash()
    }

    /// Checks the quorum and every signature.
    ///
    /// # Errors
    /// [`VerifyError`] naming the first problem found.
    pub fn verify(&self, chain: &Chain) -> Result<(), VerifyError> {
        if self.is_genesis(chain) {
            return Ok(());
        }
        let validators = chain.validators();
        check_signers(self.signatures.iter().map(|(i, _)| *i), validators.quorum())?;
        let msg = vote_message(chain, self.view, self.height, &self.block);
        for (index, sig) in &self.signatures {
            if validators.key(*index).is_none() {
                return Err(VerifyError::UnknownValidator(*index));
            }
            if !validators.verify(*index, &msg, sig) {
                return Err(VerifyError::BadSignature(*index));
            }
        }
        Ok(())
    }

    /// The signers.
    pub fn signers(&self) -> impl Iterator<Item = ValidatorIndex> + '_ {
        self.signatures.iter().map(|(i, _)| *i)
    }

    pub(crate) fn encode(&self, enc: &mut Encoder) {
        enc.raw(&self.block.0).u64(self.view).u64(self.height);
        enc.count(self.signatures.len());
        for (index, sig) in &self.signatures {
            enc.u16(index.0).raw(&sig.to_bytes());
        }
    }

    pub(crate) fn decode(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let block = BlockHash(dec.array()?);
        let view = dec.u64()?;
        let height = dec.u64()?;
        let n = dec.count("qc signers", MAX_COUNT)?;
        let mut signatures = Vec::with_capacity(n);
        for _ in 0..n {
            let index = ValidatorIndex(dec.u16()?);
            let sig = Signature::from_bytes(&dec.array()?);
            if signatures.last().is_some_and(|(prev, _)| *prev >= index) {
                return Err(DecodeError::NonCanonical(
                    "qc signers not strictly ascending",
                ));
            }
            signatures.push((index, sig));
        }
        Ok(Self {
            block,
            view,
            height,
            signatures,
        })
    }
}

/// Fails unless `signers` are strictly ascending and at least `quorum` many.
pub(crate) fn check_signers(
    signers: impl Iterator<Item = ValidatorIndex>,
    quorum: usize,
) -> Result<(), VerifyError> {
    let mut prev: Option<ValidatorIndex> = None;
    let mut n = 0;
    for s in signers {
        if prev.is_some_and(|p| p >= s) {
            return Err(VerifyError::UnsortedSigners);
        }
        prev = Some(s);
        n += 1;
    }
    if n < quorum {
        return Err(VerifyError::NoQuorum {
            got: n,
            need: quorum,
        });
    }
    Ok(())
}

/// One validator's vote for a block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vote {
    /// The block voted for.
    pub block: BlockHash,
    /// Its view.
    pub view: u64,
    /// Its height.
    pub height: u64,
    /// The voter.
    pub voter: ValidatorIndex,
    /// Signature over `("voltmesh/vote/v1", chain id, view, height, block)`.
    pub signature: Signature,
}

impl Vote {
    /// Signs a vote.
    #[must_use]
    pub fn new(
        chain: &Chain,
        key: &SigningKey,
        voter: ValidatorIndex,
        view: u64,
        height: u64,
        block: BlockHash,
    ) -> Self {
        let signature = sign(key, &vote_message(chain, view, height, &block));
        Self {
            block,
            view,
            height,
            voter,
            signature,
        }
    }

    /// Checks the signature.
    ///
    /// # Errors
    /// [`VerifyError::BadSignature`] or [`VerifyError::UnknownValidator`].
    pub fn verify(&self, chain: &Chain) -> Result<(), VerifyError> {
        if chain.validators().key(self.voter).is_none() {
            return Err(VerifyError::UnknownValidator(self.voter));
        }
        let msg = vote_message(chain, self.view, self.height, &self.block);
        if chain.validators().verify(self.voter, &msg, &self.signature) {
            Ok(())
        } else {
            Err(VerifyError::BadSignature(self.voter))
        }
    }

    pub(crate) fn encode(&self, enc: &mut Encoder) {
        enc.raw(&self.block.0)
            .u64(self.view)
            .u64(self.height)
            .u16(self.voter.0)
            .raw(&self.signature.to_bytes());
    }

    pub(crate) fn decode(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            block: BlockHash(dec.array()?),
            view: dec.u64()?,
            height: dec.u64()?,
            voter: ValidatorIndex(dec.u16()?),
            signature: Signature::from_bytes(&dec.array()?),
        })
    }
}
