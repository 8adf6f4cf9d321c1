//! Why an order is refused, and the stable name of each reason (the API's `error` field).

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
    /// The nonce is not above the participant's last. Nodes no longer send it (audit finding M3:
    /// replays are `duplicate_id` or `closed_interval`); kept so that clients of older nodes still
    /// classify it.
    #[error("replayed nonce {nonce} (last accepted {last})")]
    ReplayedNonce {
        /// The order's nonce.
        nonce: u64,
        /// The participant's last accepted nonce.
        last: u64,
    },
    /// The order id is not allowed ([`crate::order::check_order_id`]).
    #[error("bad order id: {0}")]
    BadOrderId(#[from] crate::order::OrderIdError),
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
            OrderRejection::BadOrderId(_) => "bad_order_id",
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
