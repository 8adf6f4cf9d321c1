//! Consensus messages and their wire encoding.
//!
//! Wire format: one version byte (`1`), one tag byte, then the variant's canonical encoding
//! (see [`super::codec`]). At most [`MAX_MESSAGE_BYTES`]; decoding rejects anything longer,
//! unknown tags, non-canonical certificates and trailing bytes.
//!
//! | tag | message | sent to |
//! |---|---|---|
//! | 1 | [`Proposal`] | broadcast by the view's leader |
//! | 2 | [`Vote`] | broadcast by every voter (all-to-all) |
//! | 3 | [`Timeout`] | broadcast when a view times out (re-sent while stuck) |
//! | 4 | `SyncInfo` | a peer that sent something for an older view |
//! | 5 | `SyncRequest` | a peer that showed a QC we cannot place |
//! | 6 | `SyncResponse` | the requester |

use ed25519_dalek::{Signature, SigningKey};

use super::block::{Block, BlockHash};
use super::certificate::{QuorumCert, Vote};
use super::chain::Chain;
use super::codec::{DecodeError, Decoder, Encoder, MAX_COUNT, MAX_MESSAGE_BYTES};
use super::error::VerifyError;
use super::timeout::{Timeout, TimeoutCert};
use super::validators::sign;

const VERSION: u8 = 1;

/// A leader's proposal of a block for its view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal {
    /// The block; `block.proposer()` is the signer.
    pub block: Block,
    /// The TC for `block.view() - 1` when the view was not entered through a QC.
    pub tc: Option<TimeoutCert>,
    /// The proposer's signature over the block hash.
    pub signature: Signature,
}

fn proposal_message(chain: &Chain, block: &Block) -> Vec<u8> {
    let mut enc = Encoder::with_domain(b"voltmesh/proposal/v1");
    enc.raw(chain.id()).raw(&block.hash().0);
    enc.finish()
}

impl Proposal {
    /// Signs a proposal.
    #[must_use]
    pub fn new(chain: &Chain, key: &SigningKey, block: Block, tc: Option<TimeoutCert>) -> Self {
        let signature = sign(key, &proposal_message(chain, &block));
        Self {
            block,
            tc,
            signature,
        }
    }

    /// Checks the proposer's signature (certificates are checked by the replica).
    ///
    /// # Errors
    /// [`VerifyError::BadSignature`] or [`VerifyError::UnknownValidator`].
    pub fn verify_signature(&self, chain: &Chain) -> Result<(), VerifyError> {
        let proposer = self.block.proposer();
        if chain.validators().key(proposer).is_none() {
            return Err(VerifyError::UnknownValidator(proposer));
        }
        if chain.validators().verify(
            proposer,
            &proposal_message(chain, &self.block),
            &self.signature,
        ) {
            Ok(())
        } else {
            Err(VerifyError::BadSignature(proposer))
        }
    }
}

/// Every consensus message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Msg {
    /// A block proposal.
    Proposal(Proposal),
    /// A vote.
    Vote(Vote),
    /// A view timeout.
    Timeout(Timeout),
    /// The sender's highest certificates, to pull a lagging peer forward.
    SyncInfo {
        /// Highest QC.
        high_qc: QuorumCert,
        /// Highest TC, if newer than the QC.
        high_tc: Option<TimeoutCert>,
    },
    /// Asks for the blocks from `from_height` up to `target` (or, if the responder does not
    /// have `target`, up to its highest certified block).
    SyncRequest {
        /// First height wanted (the requester's committed height + 1).
        from_height: u64,
        /// The block the requester holds a QC for but not the block.
        target: BlockHash,
    },
    /// Consecutive blocks, each certified by the next one's `justify`, the last by `qc` (or
    /// by a QC the requester already holds).
    SyncResponse {
        /// Blocks in ascending height order.
        blocks: Vec<Block>,
        /// QC for the last block, if the responder has one.
        qc: Option<QuorumCert>,
    },
}

fn put_opt_tc(enc: &mut Encoder, tc: Option<&TimeoutCert>) {
    match tc {
        None => {
            enc.u8(0);
        }
        Some(tc) => {
            enc.u8(1);
            tc.encode(enc);
        }
    }
}

fn get_opt_tc(dec: &mut Decoder<'_>) -> Result<Option<TimeoutCert>, DecodeError> {
    Ok(if dec.flag()? {
        Some(TimeoutCert::decode(dec)?)
    } else {
        None
    })
}

impl Msg {
    /// A short name for logs.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Proposal(_) => "proposal",
            Self::Vote(_) => "vote",
            Self::Timeout(_) => "timeout",
            Self::SyncInfo { .. } => "sync_info",
            Self::SyncRequest { .. } => "sync_request",
            Self::SyncResponse { .. } => "sync_response",
        }
    }

    /// The wire encoding.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut enc = Encoder::new();
        enc.u8(VERSION);
        match self {
            Self::Proposal(p) => {
                enc.u8(1);
                p.block.encode(&mut enc);
                put_opt_tc(&mut enc, p.tc.as_ref());
                enc.raw(&p.signature.to_bytes());
            }
            Self::Vote(v) => {
                enc.u8(2);
                v.encode(&mut enc);
            }
            Self::Timeout(t) => {
                enc.u8(3);
                t.encode(&mut enc);
            }
            Self::SyncInfo { high_qc, high_tc } => {
                enc.u8(4);
                high_qc.encode(&mut enc);
                put_opt_tc(&mut enc, high_tc.as_ref());
            }
            Self::SyncRequest {
                from_height,
                target,
            } => {
                enc.u8(5).u64(*from_height).raw(&target.0);
            }
            Self::SyncResponse { blocks, qc } => {
                enc.u8(6).count(blocks.len());
                for b in blocks {
                    b.encode(&mut enc);
                }
                match qc {
                    None => {
                        enc.u8(0);
                    }
                    Some(qc) => {
                        enc.u8(1);
                        qc.encode(&mut enc);
                    }
                }
            }
        }
        enc.finish()
    }

    /// Decodes [`Msg::encode`].
    ///
    /// # Errors
    /// [`DecodeError`] if `bytes` is too large, truncated, has an unknown version or tag, is not
    /// canonical or has trailing bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        if bytes.len() > MAX_MESSAGE_BYTES {
            return Err(DecodeError::TooLarge {
                len: bytes.len(),
                max: MAX_MESSAGE_BYTES,
            });
        }
        let mut dec = Decoder::new(bytes);
        let version = dec.u8()?;
        if version != VERSION {
            return Err(DecodeError::UnknownTag {
                what: "version",
                tag: version,
            });
        }
        let msg = match dec.u8()? {
            1 => {
                let block = Block::decode(&mut dec)?;
                let tc = get_opt_tc(&mut dec)?;
                let signature = Signature::from_bytes(&dec.array()?);
                Self::Proposal(Proposal {
                    block,
                    tc,
                    signature,
                })
            }
            2 => Self::Vote(Vote::decode(&mut dec)?),
            3 => Self::Timeout(Timeout::decode(&mut dec)?),
            4 => Self::SyncInfo {
                high_qc: QuorumCert::decode(&mut dec)?,
                high_tc: get_opt_tc(&mut dec)?,
            },
            5 => Self::SyncRequest {
                from_height: dec.u64()?,
                target: BlockHash(dec.array()?),
            },
            6 => {
                let n = dec.count("sync blocks", MAX_COUNT)?;
                let mut blocks = Vec::with_capacity(n.min(64));
                for _ in 0..n {
                    blocks.push(Block::decode(&mut dec)?);
                }
                let qc = if dec.flag()? {
                    Some(QuorumCert::decode(&mut dec)?)
                } else {
                    None
                };
                Self::SyncResponse { blocks, qc }
            }
            tag => {
                return Err(DecodeError::UnknownTag {
                    what: "message",
                    tag,
                })
            }
        };
        dec.finish()?;
        Ok(msg)
    }
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::SigningKey;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::*;
    use crate::protocol::validators::{ValidatorIndex, ValidatorSet};

    fn fixture() -> (Chain, Vec<SigningKey>) {
        let keys: Vec<SigningKey> = (1..=4u8)
            .map(|i| SigningKey::from_bytes(&[i; 32]))
            .collect();
        let set = ValidatorSet::new(keys.iter().map(SigningKey::verifying_key)).unwrap();
        let mut keys = keys;
        keys.sort_by_key(|k| set.index_of(&k.verifying_key()));
        (Chain::new(set, Block::genesis(1_000, b"g".to_vec())), keys)
    }

    fn all_messages() -> (Chain, Vec<Msg>) {
        let (chain, keys) = fixture();
        let g = chain.genesis().hash();
        let votes: Vec<Vote> = (0..3u16)
            .map(|i| Vote::new(&chain, &keys[usize::from(i)], ValidatorIndex(i), 1, 1, g))
            .collect();
        let qc = QuorumCert {
            block: g,
            view: 1,
            height: 1,
            signatures: votes.iter().map(|v| (v.voter, v.signature)).collect(),
        };
        let timeouts: Vec<Timeout> = (0..3u16)
            .map(|i| {
                Timeout::new(
                    &chain,
                    &keys[usize::from(i)],
                    ValidatorIndex(i),
                    2,
                    qc.clone(),
                    None,
                )
            })
            .collect();
        let tc = TimeoutCert {
            view: 2,
            high_qc: qc.clone(),
            entries: timeouts
                .iter()
                .map(|t| (t.sender, 1, t.signature))
                .collect(),
        };
        assert_eq!(tc.verify(&chain), Ok(()));
        let block = Block::new(
            1,
            3,
            ValidatorIndex(1),
            1_500,
            chain.genesis_qc(),
            b"p".to_vec(),
        );
        let proposal = Proposal::new(&chain, &keys[1], block.clone(), Some(tc.clone()));
        let msgs = vec![
            Msg::Proposal(proposal),
            Msg::Vote(votes[0].clone()),
            Msg::Timeout(Timeout::new(
                &chain,
                &keys[3],
                ValidatorIndex(3),
                3,
                qc.clone(),
                Some(tc.clone()),
            )),
            Msg::SyncInfo {
                high_qc: qc.clone(),
                high_tc: Some(tc),
            },
            Msg::SyncRequest {
                from_height: 7,
                target: block.hash(),
            },
            Msg::SyncResponse {
                blocks: vec![block],
                qc: Some(qc),
            },
            Msg::SyncResponse {
                blocks: vec![],
                qc: None,
            },
        ];
        (chain, msgs)
    }

    #[test]
    fn every_message_roundtrips() {
        let (chain, msgs) = all_messages();
        for msg in msgs {
            let bytes = msg.encode();
            assert_eq!(Msg::decode(&bytes).as_ref(), Ok(&msg), "{}", msg.kind());
            if let Msg::Proposal(p) = &msg {
                assert_eq!(p.verify_signature(&chain), Ok(()));
            }
            // Every strict prefix is an error, never a panic.
            for cut in 0..bytes.len() {
                assert!(
                    Msg::decode(&bytes[..cut]).is_err(),
                    "{} cut at {cut}",
                    msg.kind()
                );
            }
            let mut longer = bytes.clone();
            longer.push(0);
            assert_eq!(Msg::decode(&longer), Err(DecodeError::TrailingBytes(1)));
        }
    }

    #[test]
    fn tampering_is_detected() {
        let (chain, msgs) = all_messages();
        let Msg::Proposal(p) = &msgs[0] else {
            panic!("first is a proposal");
        };
        // Another payload under the same signature: the block hash differs, the signature fails.
        let b = &p.block;
        let forged = Block::new(
            b.height(),
            b.view(),
            b.proposer(),
            b.timestamp_ms(),
            b.justify().clone(),
            b"other".to_vec(),
        );
        let forged = Proposal {
            block: forged,
            tc: p.tc.clone(),
            signature: p.signature,
        };
        assert!(forged.verify_signature(&chain).is_err());
        // A TC whose claimed high QC view is not its signers' maximum is rejected.
        let mut tc = p.tc.clone().unwrap();
        tc.entries[0].1 = 0;
        tc.entries[1].1 = 0;
        tc.entries[2].1 = 0;
        assert!(tc.verify(&chain).is_err());
        let Msg::Vote(mut v) = msgs[1].clone() else {
            panic!("second is a vote");
        };
        v.view += 1;
        assert!(v.verify(&chain).is_err());
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let (_, msgs) = all_messages();
        for _ in 0..2_000 {
            let len = rng.gen_range(0..600);
            let mut bytes: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
            if !bytes.is_empty() {
                bytes[0] = 1;
            }
            let _ = Msg::decode(&bytes);
            // Mutate a valid message at a random position.
            let mut valid = msgs[rng.gen_range(0..msgs.len())].encode();
            let at = rng.gen_range(0..valid.len());
            valid[at] = rng.gen();
            let _ = Msg::decode(&valid);
        }
        let huge = vec![0u8; MAX_MESSAGE_BYTES + 1];
        assert!(matches!(
            Msg::decode(&huge),
            Err(DecodeError::TooLarge { .. })
        ));
    }
}
