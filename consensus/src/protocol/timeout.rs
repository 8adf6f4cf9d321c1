//! Timeouts and timeout certificates (TCs), the pacemaker's way out of a view without a QC.
//!
//! A replica whose view timer fires signs `("voltmesh/timeout/v1", chain id, view, high QC
//! view)` and broadcasts it with its highest QC (and the TC that brought it into the view, if
//! any, so laggards can follow). A quorum of timeouts for one view forms a TC, which lets every
//! replica enter `view + 1`.
//!
//! # Invariants
//! - Entries of a TC are strictly ascending by signer.
//! - A TC carries the QC with the highest view among those its signers reported, and
//!   `high_qc.view == max(entry.high_qc_view)`. A proposal that follows a TC must extend a QC at
//!   least that high: this is what keeps a block committed by the 2-chain rule locked in.

use ed25519_dalek::{Signature, SigningKey};

use super::certificate::{check_signers, QuorumCert};
use super::chain::Chain;
use super::codec::{DecodeError, Decoder, Encoder, MAX_COUNT};
use super::error::VerifyError;
use super::validators::{sign, ValidatorIndex};

pub(crate) fn timeout_message(chain: &Chain, view: u64, high_qc_view: u64) -> Vec<u8> {
    let mut enc = Encoder::with_domain(b"voltmesh/timeout/v1");
    enc.raw(chain.id()).u64(view).u64(high_qc_view);
    enc.finish()
}

/// A quorum of timeouts for one view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeoutCert {
    /// The view that timed out.
    pub view: u64,
    /// The highest QC any signer reported.
    pub high_qc: QuorumCert,
    /// `(signer, its high QC view, signature)`, strictly ascending by signer.
    pub entries: Vec<(ValidatorIndex, u64, Signature)>,
}

impl TimeoutCert {
    /// Checks quorum, signatures and the high QC.
    ///
    /// # Errors
    /// [`VerifyError`] naming the first problem found.
    pub fn verify(&self, chain: &Chain) -> Result<(), VerifyError> {
        let validators = chain.validators();
        check_signers(self.entries.iter().map(|(i, _, _)| *i), validators.quorum())?;
        let mut max = 0;
        for (index, hqc_view, sig) in &self.entries {
            if validators.key(*index).is_none() {
                return Err(VerifyError::UnknownValidator(*index));
            }
            if !validators.verify(*index, &timeout_message(chain, self.view, *hqc_view), sig) {
                return Err(VerifyError::BadSignature(*index));
            }
            max = max.max(*hqc_view);
        }
        if self.high_qc.view != max {
            return Err(VerifyError::TcHighQcMismatch {
                got: self.high_qc.view,
                want: max,
            });
        }
        self.high_qc.verify(chain)
    }

    pub(crate) fn encode(&self, enc: &mut Encoder) {
        enc.u64(self.view);
        self.high_qc.encode(enc);
        enc.count(self.entries.len());
        for (index, hqc_view, sig) in &self.entries {
            enc.u16(index.0).u64(*hqc_view).raw(&sig.to_bytes());
        }
    }

    pub(crate) fn decode(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let view = dec.u64()?;
        let high_qc = QuorumCert::decode(dec)?;
        let n = dec.count("tc entries", MAX_COUNT)?;
        let mut entries: Vec<(ValidatorIndex, u64, Signature)> = Vec::with_capacity(n);
        for _ in 0..n {
            let index = ValidatorIndex(dec.u16()?);
            let hqc_view = dec.u64()?;
            let sig = Signature::from_bytes(&dec.array()?);
            if entries.last().is_some_and(|(prev, _, _)| *prev >= index) {
                return Err(DecodeError::NonCanonical(
                    "tc signers not strictly ascending",
                ));
            }
            entries.push((index, hqc_view, sig));
        }
        Ok(Self {
            view,
            high_qc,
            entries,
        })
    }
}

/// One validator's timeout for a view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timeout {
    /// The view that timed out.
    pub view: u64,
    /// The sender's highest QC.
    pub high_qc: QuorumCert,
    /// The TC for `view - 1`, if the sender entered `view` through one.
    pub last_tc: Option<TimeoutCert>,
    /// The sender.
    pub sender: ValidatorIndex,
    /// Signature over `("voltmesh/timeout/v1", chain id, view, high_qc.view)`.
    pub signature: Signature,
}

impl Timeout {
    /// Signs a timeout.
    #[must_use]
    pub fn new(
        chain: &Chain,
        key: &SigningKey,
        sender: ValidatorIndex,
        view: u64,
        high_qc: QuorumCert,
        last_tc: Option<TimeoutCert>,
    ) -> Self {
        let signature = sign(key, &timeout_message(chain, view, high_qc.view));
        Self {
            view,
            high_qc,
            last_tc,
            sender,
            signature,
        }
    }

    /// Checks the signature, the high QC and the enclosed TC.
    ///
    /// # Errors
    /// [`VerifyError`] naming the first problem found.
    pub fn verify(&self, chain: &Chain) -> Result<(), VerifyError> {
        if chain.validators().key(self.sender).is_none() {
            return Err(VerifyError::UnknownValidator(self.sender));
        }
        let msg = timeout_message(chain, self.view, self.high_qc.view);
        if !chain
            .validators()
            .verify(self.sender, &msg, &self.signature)
        {
            return Err(VerifyError::BadSignature(self.sender));
        }
        self.high_qc.verify(chain)?;
        if let Some(tc) = &self.last_tc {
            tc.verify(chain)?;
        }
        Ok(())
    }

    pub(crate) fn encode(&self, enc: &mut Encoder) {
        enc.u64(self.view);
        self.high_qc.encode(enc);
        match &self.last_tc {
            None => {
                enc.u8(0);
            }
            Some(tc) => {
                enc.u8(1);
                tc.encode(enc);
            }
        }
        enc.u16(self.sender.0).raw(&self.signature.to_bytes());
    }

    pub(crate) fn decode(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let view = dec.u64()?;
        let high_qc = QuorumCert::decode(dec)?;
        let last_tc = if dec.flag()? {
            Some(TimeoutCert::decode(dec)?)
        } else {
            None
        };
        Ok(Self {
            view,
            high_qc,
            last_tc,
            sender: ValidatorIndex(dec.u16()?),
            signature: Signature::from_bytes(&dec.array()?),
        })
    }
}
