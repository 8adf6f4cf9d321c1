//! Why blocks are refused (why orders are refused is [`OrderRejection`], in the wire contract).

use voltmesh_wire::OrderRejection;

/// Why a validator refuses a block's payload.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockRejection {
    /// The payload is not a canonical body.
    #[error("malformed body: {0}")]
    Malformed(String),
    /// An order in the body is invalid.
    #[error("order {index} is invalid: {reason}")]
    Order {
        /// Position in the body.
        index: usize,
        /// Why.
        reason: OrderRejection,
    },
    /// A signed proposal in the body is refused.
    #[error("proposal {index} is refused: {reason}")]
    Proposal {
        /// Position in the body.
        index: usize,
        /// Why.
        reason: voltmesh_wire::governance::GovernanceRejection,
    },
    /// A metered delivery in the body is refused.
    #[error("delivery {index} is refused: {reason}")]
    Delivery {
        /// Position in the body.
        index: usize,
        /// Why.
        reason: voltmesh_wire::delivery::DeliveryRejection,
    },
    /// A correction import in the body is refused.
    #[error("correction {index} is refused: {reason}")]
    Correction {
        /// Position in the body.
        index: usize,
        /// Why.
        reason: voltmesh_wire::correction::CorrectionRejection,
    },
    /// The clearings differ from what the engine computes.
    #[error("clearings differ from the engine's: expected {expected} interval(s), got {got}")]
    WrongClearing {
        /// How many clearings the validator computed.
        expected: usize,
        /// How many the body carried.
        got: usize,
    },
    /// The bills differ from what the settlement computes ([`voltmesh_wire::bill`]).
    #[error("bills differ from the settlement's: expected {expected} interval(s), got {got}")]
    WrongBills {
        /// How many intervals the validator settled.
        expected: usize,
        /// How many the body carried.
        got: usize,
    },
    /// An interval's settlement does not balance: participants' totals differ from the
    /// utility's and the network operator's revenue (a bug, never a proposer's fault alone).
    #[error("settlement of interval {interval_start} does not balance by {imbalance}")]
    Unbalanced {
        /// The interval.
        interval_start: i64,
        /// Participants' totals minus everyone else's revenue.
        imbalance: voltmesh_engine::Money,
    },
    /// The state digest is missing, wrong, or present at a height that carries none
    /// ([`super::snapshot`]).
    #[error("state digest: expected {expected:?}, got {got:?}")]
    WrongStateDigest {
        /// What this validator computed (`None`: no digest at this height).
        expected: Option<String>,
        /// What the body carried.
        got: Option<String>,
    },
    /// A block above the last block of its epoch (whose validator change committed or may
    /// commit) carries a payload: those blocks only commit it, and are never applied.
    #[error("a block after the end of epoch {epoch} must be empty")]
    AfterEpochEnd {
        /// The epoch the block belongs to.
        epoch: u64,
    },
    /// Block time went backwards.
    #[error("block time {block_ms} is before the parent's {parent_ms}")]
    TimeWentBackwards {
        /// This block's time.
        block_ms: u64,
        /// The parent's time.
        parent_ms: u64,
    },
}
