//! Blocks and their hashes.
//!
//! # Invariants
//! - A [`Block`]'s hash is computed once, at construction or decoding, as
//!   `SHA-256("voltmesh/block/v1" ‖ canonical encoding of every field)`; fields are private so
//!   the hash can never go stale.
//! - `justify` is a quorum certificate for the parent: `justify.block == parent`, and a valid
//!   block has `height == parent.height + 1` and `view > parent.view` (checked by the replica,
//!   which knows the parent).

use super::certificate::QuorumCert;
use super::codec::{DecodeError, Decoder, Encoder, MAX_PAYLOAD_BYTES};
use super::hash::sha256;
pub use super::hash::BlockHash;
use super::validators::{ValidatorIndex, MAX_VALIDATORS};

/// One block of the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    parent: BlockHash,
    height: u64,
    view: u64,
    proposer: ValidatorIndex,
    timestamp_ms: u64,
    justify: QuorumCert,
    failed_leaders: Vec<ValidatorIndex>,
    payload: Vec<u8>,
    hash: BlockHash,
}

impl Block {
    /// Builds a block and computes its hash. The parent is `justify.block`.
    #[must_use]
    pub fn new(
        height: u64,
        view: u64,
        proposer: ValidatorIndex,
        timestamp_ms: u64,
        justify: QuorumCert,
        payload: Vec<u8>,
    ) -> Self {
        let parent = justify.block;
        let mut block = Self {
            parent,
            height,
            view,
            proposer,
            timestamp_ms,
            justify,
            failed_leaders: Vec::new(),
            payload,
            hash: BlockHash::default(),
        };
        block.hash = block.compute_hash();
        block
    }

    /// The genesis block: height 0, view 0, no parent, `app_data` as payload.
    #[must_use]
    pub fn genesis(timestamp_ms: u64, app_data: Vec<u8>) -> Self {
        Self::new(
            0,
            0,
            ValidatorIndex(0),
            timestamp_ms,
            QuorumCert::empty(BlockHash::default()),
            app_data,
        )
    }

    /// The same block recording the leaders of the views skipped since its parent's view
    /// (see [`Block::failed_leaders`]); sorts and dedups them, and recomputes the hash.
    #[must_use]
    pub fn with_failed_leaders(mut self, mut failed: Vec<ValidatorIndex>) -> Self {
        failed.sort_unstable();
        failed.dedup();
        self.failed_leaders = failed;
        self.hash = self.compute_hash();
        self
    }

    fn compute_hash(&self) -> BlockHash {
        let mut enc = Encoder::with_domain(b"voltmesh/block/v1");
        self.encode_fields(&mut enc);
        BlockHash(sha256(&enc.finish()))
    }

    fn encode_fields(&self, enc: &mut Encoder) {
        enc.raw(&self.parent.0)
            .u64(self.height)
            .u64(self.view)
            .u16(self.proposer.0)
            .u64(self.timestamp_ms);
        self.justify.encode(enc);
        enc.count(self.failed_leaders.len());
        for v in &self.failed_leaders {
            enc.u16(v.0);
        }
        enc.bytes(&self.payload);
    }

    pub(crate) fn encode(&self, enc: &mut Encoder) {
        self.encode_fields(enc);
    }

    pub(crate) fn decode(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let parent = BlockHash(dec.array()?);
        let height = dec.u64()?;
        let view = dec.u64()?;
        let proposer = ValidatorIndex(dec.u16()?);
        let timestamp_ms = dec.u64()?;
        let justify = QuorumCert::decode(dec)?;
        let n = dec.count("failed leaders", MAX_VALIDATORS)?;
        let mut failed: Vec<ValidatorIndex> = Vec::with_capacity(n);
        for _ in 0..n {
            let v = ValidatorIndex(dec.u16()?);
            if failed.last().is_some_and(|prev| *prev >= v) {
                return Err(DecodeError::NonCanonical(
                    "failed leaders not strictly ascending",
                ));
            }
            failed.push(v);
        }
        let payload = dec.bytes("payload", MAX_PAYLOAD_BYTES)?;
        if justify.block != parent {
            return Err(DecodeError::NonCanonical(
                "block justify does not certify its parent",
            ));
        }
        let block = Self::new(height, view, proposer, timestamp_ms, justify, payload);
        Ok(if failed.is_empty() {
            block
        } else {
            block.with_failed_leaders(failed)
        })
    }

    /// The canonical encoding, as stored on disk and hashed.
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut enc = Encoder::new();
        self.encode(&mut enc);
        enc.finish()
    }

    /// Decodes [`Block::to_bytes`].
    ///
    /// # Errors
    /// [`DecodeError`] if the bytes are not exactly one canonical block.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut dec = Decoder::new(bytes);
        let block = Self::decode(&mut dec)?;
        dec.finish()?;
        Ok(block)
    }

    /// This block's hash.
    #[must_use]
    pub fn hash(&self) -> BlockHash {
        self.hash
    }
    /// The parent's hash (equal to `justify().block`).
    #[must_use]
    pub fn parent(&self) -> BlockHash {
        self.parent
    }
    /// Height: genesis is 0, each block is its parent's height + 1.
    #[must_use]
    pub fn height(&self) -> u64 {
        self.height
    }
    /// The view in which the block was proposed.
    #[must_use]
    pub fn view(&self) -> u64 {
        self.view
    }
    /// Who proposed it.
    #[must_use]
    pub fn proposer(&self) -> ValidatorIndex {
        self.proposer
    }
    /// Block time: the proposer's clock in ms since the Unix epoch, strictly increasing along
    /// the chain. Applications must take time from here, never from a local clock.
    #[must_use]
    pub fn timestamp_ms(&self) -> u64 {
        self.timestamp_ms
    }
    /// The quorum certificate for the parent.
    #[must_use]
    pub fn justify(&self) -> &QuorumCert {
        &self.justify
    }
    /// Leaders of the views between the parent's view and this one that produced no QC, as
    /// the leader-selection rule names them (ascending). Voters check the list; leader
    /// selection keeps these validators out of the rotation while the block is in its window.
    #[must_use]
    pub fn failed_leaders(&self) -> &[ValidatorIndex] {
        &self.failed_leaders
    }
    /// The opaque application payload.
    #[must_use]
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_covers_every_field_and_roundtrips() {
        let g = Block::genesis(1000, b"net".to_vec());
        let qc = QuorumCert::empty(g.hash());
        let b = Block::new(1, 1, ValidatorIndex(2), 1500, qc.clone(), b"x".to_vec());
        assert_eq!(Block::from_bytes(&b.to_bytes()), Ok(b.clone()));
        let variants = [
            Block::new(2, 1, ValidatorIndex(2), 1500, qc.clone(), b"x".to_vec()),
            Block::new(1, 2, ValidatorIndex(2), 1500, qc.clone(), b"x".to_vec()),
            Block::new(1, 1, ValidatorIndex(3), 1500, qc.clone(), b"x".to_vec()),
            Block::new(1, 1, ValidatorIndex(2), 1501, qc.clone(), b"x".to_vec()),
            Block::new(1, 1, ValidatorIndex(2), 1500, qc, b"y".to_vec()),
            b.clone().with_failed_leaders(vec![ValidatorIndex(0)]),
        ];
        for v in variants {
            assert_ne!(v.hash(), b.hash());
        }
        let f = b
            .clone()
            .with_failed_leaders(vec![ValidatorIndex(3), ValidatorIndex(1)]);
        assert_eq!(f.failed_leaders(), &[ValidatorIndex(1), ValidatorIndex(3)]);
        assert_eq!(Block::from_bytes(&f.to_bytes()), Ok(f));
        let mut bytes = b.to_bytes();
        bytes.push(0);
        assert_eq!(
            Block::from_bytes(&bytes),
            Err(DecodeError::TrailingBytes(1))
        );
    }
}
