//! Why orders and blocks are refused.

use voltmesh_engine::RejectReason;

/// Why an order is refused (by the node API, the mempool or a validator).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderRejection {
    /// The signature does not verify.
    #[error("bad signature")]
    BadSignature,
    /// Genesis does not know the participant.
    #[error("unknown participant {0}")]
    UnknownParticipant(String),
    /// The key is not one genesis allows for the participant.
    #[error("key {key} may not sign for participant {participant}")]
    KeyNotAllowed {
        /// The participant.
        participant: String,
        /// The signer's key.
        key: String,
    },
    /// The nonce is not above the participant's last.
    #[error("replayed nonce {nonce} (last accepted {last})")]
    ReplayedNonce {
        /// The order's nonce.
        nonce: u64,
        /// The participant's last accepted nonce.
        last: u64,
    },
    /// The interval is not on the grid or too far ahead.
    #[error("wrong interval {0}: not aligned to the interval length or too far ahead")]
    WrongInterval(i64),
    /// The interval's gate has closed.
    #[error("interval {0} is closed (gate closure passed)")]
    ClosedInterval(i64),
    /// The node holds as many pending orders as it may; retry later.
    #[error("the node's mempool is full; retry later")]
    MempoolFull,
    /// The engine's rules refused it (price outside the tariffs, quantity, duplicate id).
    #[error("{0}")]
    Market(#[from] RejectReason),
}

impl OrderRejection {
    /// A stable, low-cardinality name for metrics and API error codes.
    pub fn kind(&self) -> &'static str {
        match self {
            OrderRejection::BadSignature => "bad_signature",
            OrderRejection::UnknownParticipant(_) => "unknown_participant",
            OrderRejection::KeyNotAllowed { .. } => "key_not_allowed",
            OrderRejection::ReplayedNonce { .. } => "replayed_nonce",
            OrderRejection::WrongInterval(_) => "wrong_interval",
            OrderRejection::ClosedInterval(_) => "closed_interval",
            OrderRejection::MempoolFull => "mempool_full",
            OrderRejection::Market(
                RejectReason::BelowFeedIn { .. } | RejectReason::AboveRetail { .. },
            ) => "price_outside_tariffs",
            OrderRejection::Market(RejectReason::DuplicateId(_)) => "duplicate_id",
            OrderRejection::Market(_) => "market_rules",
        }
    }
}

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
    /// The clearings differ from what the engine computes.
    #[error("clearings differ from the engine's: expected {expected} interval(s), got {got}")]
    WrongClearing {
        /// How many clearings the validator computed.
        expected: usize,
        /// How many the body carried.
        got: usize,
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
