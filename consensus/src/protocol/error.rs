//! Why a consensus message was not accepted.

use thiserror::Error;

use super::hash::BlockHash;
use super::validators::ValidatorIndex;

/// A certificate, signature or block failed verification. The replica drops the message.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum VerifyError {
    /// The signer index is not in the validator set.
    #[error("unknown validator {0}")]
    UnknownValidator(ValidatorIndex),
    /// A signature does not verify.
    #[error("bad signature by {0}")]
    BadSignature(ValidatorIndex),
    /// Fewer distinct signers than a quorum.
    #[error("certificate has {got} signers, a quorum is {need}")]
    NoQuorum {
        /// Distinct signers present.
        got: usize,
        /// Quorum size.
        need: usize,
    },
    /// Signers are not strictly ascending (duplicate or unsorted).
    #[error("certificate signers are not strictly ascending")]
    UnsortedSigners,
    /// A timeout certificate's high QC is not the highest its signers reported.
    #[error("timeout certificate's high QC view {got} differs from its signers' highest {want}")]
    TcHighQcMismatch {
        /// View of the enclosed QC.
        got: u64,
        /// Highest view the signers reported.
        want: u64,
    },
    /// A block does not fit the parent its QC certifies.
    #[error("block {0} does not extend the block its QC certifies")]
    BadParent(BlockHash),
    /// A proposal's view is not justified by its QC or TC.
    #[error("proposal view {view} is not justified by QC view {qc_view} or a TC for view {prev}")]
    UnjustifiedView {
        /// Proposal view.
        view: u64,
        /// View of its QC.
        qc_view: u64,
        /// `view - 1`.
        prev: u64,
    },
    /// A vote names a block we hold but another height or view than that block's.
    #[error("vote for block {block} names height {height} and view {view}, which the block does not have")]
    VoteMismatch {
        /// The block voted for.
        block: BlockHash,
        /// The height the vote names.
        height: u64,
        /// The view the vote names.
        view: u64,
    },
    /// The proposal's payload is larger than allowed.
    #[error("payload of {0} bytes is too large")]
    PayloadTooLarge(usize),
}

/// Why a replica could not be constructed or restored.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ReplicaError {
    /// Our key is not in the validator set.
    #[error("this node's key is not a validator")]
    NotAValidator,
    /// A configuration value is out of range.
    #[error("invalid config: {0}")]
    Config(&'static str),
    /// The last committed block (or one of its ancestors) is not among the stored blocks.
    #[error("committed block {0} is not covered by the stored blocks")]
    MissingCommitted(BlockHash),
}
